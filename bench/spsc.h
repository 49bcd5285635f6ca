/* spsc.h — a bounded single-producer single-consumer ring, typed by a macro
 * (as Concurrency Kit's CK_RING_PROTOTYPE is). Lamport's ring (CACM 1983)
 * with each side keeping a private copy of the other side's index and
 * re-reading the shared one only when the copy says full or empty, as in
 * MCRingBuffer (Lee, Bu, Chandranmenon, IPDPS 2010) and FastForward.
 *
 * The producer publishes its tail at every push (a consumer waiting for
 * one element sees it at once). The consumer publishes its head every
 * `pub` + 1 pops (capacity / 8, at most 512) and whenever it finds the ring
 * empty, as MCRingBuffer's batched control updates: a full ring then frees
 * room in runs, and the two sides work on different cache lines instead of
 * trading the head's line per element. The producer may therefore see the
 * ring full while up to `pub` popped slots are not yet handed back; a
 * consumer that runs dry hands them all back.
 *
 * Synchronization table:
 *
 *   call                          caller               concurrent with
 *   NAME_try_push, _push_batch    the one producer     the consumer's calls
 *   NAME_try_pop, _pop_batch,     the one consumer     the producer's calls
 *   NAME_peek, _release
 *   NAME_size_hint                any thread           anything (a snapshot,
 *                                                      high by up to pub)
 *   NAME_init, NAME_destroy       one thread, no other thread touching it
 *
 * Which thread is the producer may change only with a synchronization
 * between the old one and the new one (a join, a mutex); the same for the
 * consumer. No call blocks or allocates; elements are copied by value. */
#ifndef SHOAL_SPSC_H
#define SHOAL_SPSC_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/atomics.h"
#include "runtime/common.h"

/* SHOAL__SPSC_DEFINE(name, T) defines the ring type `name` of elements T
 * and its functions name_init … name_size_hint. */
#define SHOAL__SPSC_DEFINE(name, T)                                            \
  typedef struct name {                                                        \
    /* consumer's line: the head it publishes, its own head, its copy of       \
     * tail */                                                                 \
    alignas(SHOAL__FALSE_SHARING) _Atomic uint64_t head;                        \
    uint64_t head_own;                                                         \
    uint64_t tail_seen;                                                        \
    /* producer's line */                                                      \
    alignas(SHOAL__FALSE_SHARING) _Atomic uint64_t tail;                        \
    uint64_t head_seen;                                                        \
    /* read-only: pub + 1 pops between two publications of the head */         \
    alignas(SHOAL__FALSE_SHARING) uint64_t mask, pub;                           \
    T *slots;                                                                  \
  } name;                                                                      \
                                                                               \
  /* capacity is rounded up to a power of two (at least 2). */                 \
  static inline int name##_init(name *q, size_t capacity) {                    \
    uint64_t cap;                                                              \
    if (capacity == 0 || capacity > ((size_t)1 << 40))                         \
      return SHOAL_EINVAL;                                                     \
    cap = shoal__pow2_at_least(capacity);                                      \
    q->slots = shoal__aligned_alloc(SHOAL__CACHE_LINE, cap * sizeof(T));        \
    if (q->slots == NULL)                                                      \
      return SHOAL_ENOMEM;                                                     \
    q->mask = cap - 1;                                                         \
    q->pub = cap >= 4096 ? 511 : cap >= 8 ? cap / 8 - 1 : 0;                   \
    atomic_init(&q->head, 0);                                                  \
    atomic_init(&q->tail, 0);                                                  \
    q->head_own = q->tail_seen = q->head_seen = 0;                             \
    return SHOAL_OK;                                                           \
  }                                                                            \
                                                                               \
  static inline void name##_destroy(name *q) {                                 \
    shoal__free(q->slots);                                                     \
    q->slots = NULL;                                                           \
  }                                                                            \
                                                                               \
  /* Room for up to `want` elements: how many may be written from tail. */     \
  static inline uint64_t name##_room_(name *q, uint64_t tail, uint64_t want) { \
    uint64_t room = q->mask + 1 - (tail - q->head_seen);                       \
    if (room < want) {                                                         \
      /* acquire: pairs with the consumer's release of head, so that its       \
       * reads of the slots happen before we overwrite them. */                \
      q->head_seen = shoal__load(&q->head, memory_order_acquire);              \
      room = q->mask + 1 - (tail - q->head_seen);                              \
    }                                                                          \
    return room < want ? room : want;                                          \
  }                                                                            \
                                                                               \
  static inline int name##_try_push(name *q, T x) {                            \
    uint64_t t = shoal__load(&q->tail, memory_order_relaxed);                  \
    if (name##_room_(q, t, 1) == 0)                                            \
      return SHOAL_EAGAIN;                                                     \
    q->slots[t & q->mask] = x;                                                 \
    /* release: the slot before the index that hands it to the consumer. */    \
    shoal__store(&q->tail, t + 1, memory_order_release);                       \
    return SHOAL_OK;                                                           \
  }                                                                            \
                                                                               \
  /* Pushes up to n elements with one publication; returns how many. */        \
  static inline size_t name##_push_batch(name *q, const T *xs, size_t n) {     \
    uint64_t t = shoal__load(&q->tail, memory_order_relaxed);                  \
    uint64_t k = name##_room_(q, t, n);                                        \
    for (uint64_t i = 0; i < k; i++)                                           \
      q->slots[(t + i) & q->mask] = xs[i];                                     \
    if (k != 0) /* release: as in try_push */                                  \
      shoal__store(&q->tail, t + k, memory_order_release);                     \
    return (size_t)k;                                                          \
  }                                                                            \
                                                                               \
  /* Makes the consumer's head h visible to the producer. release: our         \
   * reads of the slots before h, before the producer may reuse them. */       \
  static inline void name##_publish_(name *q, uint64_t h) {                    \
    if (shoal__load(&q->head, memory_order_relaxed) != h)                      \
      shoal__store(&q->head, h, memory_order_release);                         \
  }                                                                            \
                                                                               \
  /* Elements readable from head, up to `want`; when there are none, hands     \
   * back all the room. */                                                     \
  static inline uint64_t name##_avail_(name *q, uint64_t head,                 \
                                       uint64_t want) {                        \
    uint64_t avail = q->tail_seen - head;                                      \
    if (avail < want) {                                                        \
      /* acquire: pairs with the producer's release of tail. */                \
      q->tail_seen = shoal__load(&q->tail, memory_order_acquire);              \
      avail = q->tail_seen - head;                                             \
      if (avail == 0)                                                          \
        name##_publish_(q, head);                                              \
    }                                                                          \
    return avail < want ? avail : want;                                        \
  }                                                                            \
                                                                               \
  /* Advances the consumer's head by k, publishing it each pub + 1. */         \
  static inline void name##_advance_(name *q, uint64_t h, uint64_t k) {        \
    q->head_own = h + k;                                                       \
    if ((h | q->pub) != ((h + k) | q->pub))                                    \
      name##_publish_(q, h + k);                                               \
  }                                                                            \
                                                                               \
  /* The element at the head, or NULL when empty; it stays in its slot         \
   * until _release (zero-copy consumption). */                                \
  static inline T *name##_peek(name *q) {                                      \
    uint64_t h = q->head_own;                                                  \
    return name##_avail_(q, h, 1) != 0 ? &q->slots[h & q->mask] : NULL;        \
  }                                                                            \
                                                                               \
  static inline void name##_release(name *q) {                                 \
    name##_advance_(q, q->head_own, 1);                                        \
  }                                                                            \
                                                                               \
  static inline int name##_try_pop(name *q, T *out) {                          \
    uint64_t h = q->head_own;                                                  \
    if (name##_avail_(q, h, 1) == 0)                                           \
      return SHOAL_EAGAIN;                                                     \
    *out = q->slots[h & q->mask];                                              \
    name##_advance_(q, h, 1);                                                  \
    return SHOAL_OK;                                                           \
  }                                                                            \
                                                                               \
  /* Pops up to n elements; returns how many. */                               \
  static inline size_t name##_pop_batch(name *q, T *out, size_t n) {           \
    uint64_t h = q->head_own;                                                  \
    uint64_t k = name##_avail_(q, h, n);                                       \
    for (uint64_t i = 0; i < k; i++)                                           \
      out[i] = q->slots[(h + i) & q->mask];                                    \
    name##_advance_(q, h, k);                                                  \
    return (size_t)k;                                                          \
  }                                                                            \
                                                                               \
  static inline size_t name##_size_hint(name *q) {                             \
    uint64_t h = shoal__load(&q->head, memory_order_relaxed);                  \
    uint64_t t = shoal__load(&q->tail, memory_order_relaxed);                  \
    return t > h ? (size_t)(t - h) : 0;                                        \
  }

#endif /* SHOAL_SPSC_H */
