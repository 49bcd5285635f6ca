/* mpsc.h — a bounded multi-producer single-consumer queue, typed by a
 * macro: the mailbox of an actor, written by workers, the host and network
 * threads. Vyukov's bounded array queue ("Bounded MPMC queue",
 * 1024cores.net) with a sequence number per cell, specialized to one
 * consumer:
 *
 * - The consumer owns the head, so a pop takes no atomic read-modify-write
 *   and writes nothing into the cell: a cell's sequence only says "element
 *   of index i published" (seq == i + 1).
 * - A producer learns that cells are free from the consumer's published
 *   head (head_pub), not from each cell: cells are freed in index order,
 *   so tail - head < capacity means the tail's cell is free. The consumer
 *   publishes its head every `pub` pops and whenever it finds the queue
 *   empty; producers keep the last head they read beside the tail
 *   (head_seen), so that they read the consumer's line about once per
 *   `pub` pushes. A full queue thus frees room in runs, and the two sides
 *   do not trade a cache line per element at the full end either (as
 *   Lamport-style rings with cached indices do; Lee et al., MCRingBuffer,
 *   ANCS 2009).
 *
 * The tail word carries, besides the next index, an idle bit and a
 * generation (see shoal__mpsc_word): the consumer sets the idle bit when it
 * finds the queue empty (try_idle), and the push that clears it learns that
 * it is the one to wake the consumer (try_push returns SHOAL__MPSC_WOKE).
 * Enqueueing and detecting "empty to non-empty" are then one CAS, the way
 * Pony's actor mailboxes detect it in their exchange. The generation lets
 * the owner close the queue (pushes that name an older generation fail);
 * head_seen carries it too, so that a producer of an older generation
 * cannot lend its stale head to the producers of a newer one.
 *
 * Synchronization table:
 *
 *   call                           caller            concurrent with
 *   NAME_try_push, _push_batch     any thread        pushes, the consumer
 *   NAME_peek, _release, _try_pop  the one consumer  pushes
 *   NAME_try_idle, NAME_publish    the one consumer  pushes
 *   NAME_depth, NAME_capacity      any thread        anything (a snapshot)
 *   NAME_init, _reset, _destroy    one thread, no other thread touching it
 *
 * Full policy, chosen per queue at init: SHOAL__MPSC_BACKPRESSURE fails a
 * push on a full queue with SHOAL_EAGAIN (the caller retries later);
 * SHOAL__MPSC_DROP fails it with SHOAL_ELIMIT and counts it in `dropped`.
 * Either way the caller learns it; nothing is lost silently. No call
 * blocks or allocates. A queue may report full while up to `pub` - 1
 * elements have been popped and their head not yet published; a consumer
 * that finds it empty publishes, so room is never withheld from a waiting
 * producer.
 *
 * Caveat of Vyukov's queue: a producer stopped between claiming a cell and
 * publishing it holds back the consumer (it sees the queue empty at that
 * cell) until it runs again; other producers are not held back. */
#ifndef SHOAL_MPSC_H
#define SHOAL_MPSC_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/atomics.h"
#include "runtime/common.h"

enum {
  SHOAL__MPSC_BACKPRESSURE = 0,
  SHOAL__MPSC_DROP = 1,
  /* try_push's positive result: the queue was idle, wake its consumer. */
  SHOAL__MPSC_WOKE = 1
};

/* The tail word: bit 0 idle, bits 1…48 the next index (it wraps at 2^48;
 * indices are compared by their 48-bit difference), bits 49…63 the
 * generation. */
#define SHOAL__MPSC_INDEX_MASK ((UINT64_C(1) << 48) - 1)
#define SHOAL__MPSC_GEN_MASK ((UINT64_C(1) << 15) - 1)
/* How many cells past its own a push asks for (try_push), on rings of at
 * least 4 × that many cells. */
#define SHOAL__MPSC_AHEAD 4u

static inline uint64_t shoal__mpsc_word(uint64_t gen, uint64_t index,
                                        uint64_t idle) {
  return ((gen & SHOAL__MPSC_GEN_MASK) << 49) |
         ((index & SHOAL__MPSC_INDEX_MASK) << 1) | (idle & 1);
}
static inline uint64_t shoal__mpsc_index(uint64_t w) {
  return (w >> 1) & SHOAL__MPSC_INDEX_MASK;
}
static inline uint64_t shoal__mpsc_gen(uint64_t w) { return w >> 49; }
/* a - b for 48-bit indices, signed. */
static inline int64_t shoal__mpsc_dif(uint64_t a, uint64_t b) {
  return (int64_t)((a - b) << 16) >> 16;
}

#define SHOAL__MPSC_DEFINE(name, T)                                            \
  typedef struct name##_cell {                                                 \
    /* == index: free for the push of that index; == index + 1: holds its      \
     * element (48-bit arithmetic). */                                         \
    _Atomic uint64_t seq;                                                      \
    T data;                                                                    \
  } name##_cell;                                                               \
                                                                               \
  /* The cells with their mask in one block, so that a reader that loads       \
   * the ring pointer once sees a matching pair even if the owner replaces     \
   * the ring (actor records do, keeping the old one readable). pub - 1:       \
   * how many pops between two publications of the head, less one.             \
   */                                                                          \
  typedef struct name##_ring {                                                 \
    uint64_t mask, pub;                                                        \
    alignas(SHOAL__CACHE_LINE) name##_cell cells[];                            \
  } name##_ring;                                                               \
                                                                               \
  typedef struct name {                                                        \
    /* producers: the tail word, and a head some producer read (a word         \
     * with the generation, idle bit clear) */                                 \
    alignas(SHOAL__FALSE_SHARING) _Atomic uint64_t tail;                       \
    _Atomic uint64_t head_seen;                                                \
    /* the consumer's (others read it for depth only) */                       \
    alignas(SHOAL__FALSE_SHARING) _Atomic uint64_t head;                       \
    /* the consumer publishes its head here for producers: a line of its       \
     * own, so that a producer polling a full queue does not take the line     \
     * the consumer writes per element */                                      \
    alignas(SHOAL__FALSE_SHARING) _Atomic uint64_t head_pub;                   \
    alignas(SHOAL__FALSE_SHARING) _Atomic uint64_t dropped; /* DROP policy */  \
    _Atomic(name##_ring *) ring;                            /* read-mostly */  \
    _Atomic int policy;                                     /* read-mostly */  \
  } name;                                                                      \
                                                                               \
  /* A ring of capacity rounded up to a power of two (at least 2), or NULL.    \
   * Free it with shoal__free. */                                              \
  static inline name##_ring *name##_ring_new(size_t capacity) {                \
    uint64_t cap = shoal__pow2_at_least(capacity);                             \
    name##_ring *r = shoal__aligned_alloc(                                     \
        SHOAL__CACHE_LINE, sizeof(name##_ring) + cap * sizeof(name##_cell));   \
    if (r == NULL)                                                             \
      return NULL;                                                             \
    for (uint64_t i = 0; i < cap; i++)                                         \
      atomic_init(&r->cells[i].seq, i);                                        \
    r->mask = cap - 1;                                                         \
    r->pub = cap >= 128 ? 31 : cap / 4 != 0 ? cap / 4 - 1 : 0;                 \
    return r;                                                                  \
  }                                                                            \
                                                                               \
  /* acquire: pairs with the release that installed the ring, so that its      \
   * cells' initial sequences are visible. */                                  \
  static inline name##_ring *name##_ring_(name *q) {                           \
    return shoal__load(&q->ring, memory_order_acquire);                        \
  }                                                                            \
                                                                               \
  /* Empties q at index `start`, not idle, generation gen. No cell may         \
   * hold a published element of an index in start … start + capacity - 1    \
   * (a fresh ring holds none at start 0). No other thread may touch q. */     \
  static inline void name##_reset(name *q, uint64_t gen, uint64_t start) {     \
    shoal__store(&q->tail, shoal__mpsc_word(gen, start, 0),                    \
                 memory_order_relaxed);                                        \
    shoal__store(&q->head_seen, shoal__mpsc_word(gen, start, 0),               \
                 memory_order_relaxed);                                        \
    shoal__store(&q->head, start, memory_order_relaxed);                       \
    shoal__store(&q->head_pub, start, memory_order_relaxed);                   \
  }                                                                            \
                                                                               \
  /* The queue starts empty, not idle, with generation `gen`. */               \
  static inline int name##_init(name *q, size_t capacity, int policy,          \
                                uint64_t gen) {                                \
    name##_ring *r;                                                            \
    if (capacity == 0 || capacity > ((size_t)1 << 32) ||                       \
        (policy != SHOAL__MPSC_BACKPRESSURE && policy != SHOAL__MPSC_DROP))    \
      return SHOAL_EINVAL;                                                     \
    if ((r = name##_ring_new(capacity)) == NULL)                               \
      return SHOAL_ENOMEM;                                                     \
    atomic_init(&q->ring, r);                                                  \
    atomic_init(&q->policy, policy);                                           \
    name##_reset(q, gen, 0);                                                   \
    atomic_init(&q->dropped, 0);                                               \
    return SHOAL_OK;                                                           \
  }                                                                            \
                                                                               \
  static inline void name##_destroy(name *q) {                                 \
    shoal__free(shoal__load(&q->ring, memory_order_relaxed));                  \
    shoal__store(&q->ring, NULL, memory_order_relaxed);                        \
  }                                                                            \
                                                                               \
  static inline int name##_full_(name *q) {                                    \
    if (shoal__load(&q->policy, memory_order_relaxed) == SHOAL__MPSC_DROP) {   \
      shoal__fetch_add(&q->dropped, 1, memory_order_relaxed);                  \
      return SHOAL_ELIMIT;                                                     \
    }                                                                          \
    return SHOAL_EAGAIN;                                                       \
  }                                                                            \
                                                                               \
  /* Free cells at tail index idx of generation gen, by the head producers     \
   * last read; when that shows fewer than n, reads the consumer's head.       \
   * acquire (both loads): pairs with the consumer's release of head_pub       \
   * (directly, or through the producer that stored head_seen), so that        \
   * its reads of the old elements happen before our writes. */                \
  static inline uint64_t name##_room_(name *q, name##_ring *r, uint64_t gen,   \
                                      uint64_t idx, uint64_t n) {              \
    uint64_t cap = r->mask + 1, seen, h;                                       \
    int64_t used;                                                              \
    seen = shoal__load(&q->head_seen, memory_order_acquire);                   \
    used = shoal__mpsc_dif(idx, shoal__mpsc_index(seen));                      \
    if (shoal__mpsc_gen(seen) == gen && used >= 0 &&                           \
        (uint64_t)used + n <= cap)                                             \
      return cap - (uint64_t)used;                                             \
    h = shoal__load(&q->head_pub, memory_order_acquire);                       \
    used = shoal__mpsc_dif(idx, h);                                            \
    if (used < 0 || (uint64_t)used > cap)                                      \
      return 0; /* idx is stale: the caller's CAS will fail */                 \
    if (shoal__mpsc_index(seen) != h || shoal__mpsc_gen(seen) != gen)          \
      /* release: passes on what the acquire of head_pub gave us. */           \
      shoal__store(&q->head_seen, shoal__mpsc_word(gen, h, 0),                 \
                   memory_order_release);                                      \
    return cap - (uint64_t)used;                                               \
  }                                                                            \
                                                                               \
  /* Claims up to n cells at the tail for generation gen: returns how many     \
   * (0: full, with *t the tail word seen), or -1 when the generation          \
   * differs. *t receives the tail word the claim replaced, *rp the ring.      \
   */                                                                          \
  static inline int64_t name##_claim_(name *q, uint64_t gen, uint64_t n,       \
                                      uint64_t *t, name##_ring **rp) {         \
    name##_ring *r = name##_ring_(q);                                          \
    /* acquire: pairs with the release that set the generation (the owner's    \
     * setup of what the consumer needs happens before our wake-up). */        \
    uint64_t w = shoal__load(&q->tail, memory_order_acquire);                  \
    gen &= SHOAL__MPSC_GEN_MASK;                                               \
    for (;;) {                                                                 \
      uint64_t idx = shoal__mpsc_index(w), k;                                  \
      if (shoal__mpsc_gen(w) != gen)                                           \
        return -1;                                                             \
      k = name##_room_(q, r, gen, idx, n);                                     \
      if (k == 0) {                                                            \
        uint64_t again = shoal__load(&q->tail, memory_order_acquire);          \
        if (again != w) { /* moved on while we looked: look again */           \
          w = again;                                                           \
          continue;                                                            \
        }                                                                      \
        *t = w;                                                                \
        return 0;                                                              \
      }                                                                        \
      if (k > n)                                                               \
        k = n;                                                                 \
      *rp = r;                                                                 \
      /* acquire on success: as the load above; clearing idle here makes       \
       * this producer the one that wakes the consumer. */                     \
      if (shoal__cas_weak(&q->tail, &w, shoal__mpsc_word(gen, idx + k, 0),     \
                          memory_order_acquire, memory_order_acquire)) {       \
        *t = w;                                                                \
        return (int64_t)k;                                                     \
      }                                                                        \
    }                                                                          \
  }                                                                            \
                                                                               \
  /* Returns SHOAL_OK, SHOAL__MPSC_WOKE (the queue was idle: the caller        \
   * must wake the consumer), SHOAL_EAGAIN / SHOAL_ELIMIT (full, by the        \
   * policy) or SHOAL_ENOENT (the generation is no longer gen). */             \
  static inline int name##_try_push(name *q, uint64_t gen, const T *x) {       \
    uint64_t w;                                                                \
    name##_ring *r;                                                            \
    int64_t k = name##_claim_(q, gen, 1, &w, &r);                              \
    name##_cell *c;                                                            \
    if (k <= 0)                                                                \
      return k < 0 ? SHOAL_ENOENT : name##_full_(q);                           \
    c = &r->cells[shoal__mpsc_index(w) & r->mask];                             \
    /* The cell SHOAL__MPSC_AHEAD pushes on, which the consumer read a lap     \
     * ago: asked for now, exclusive, its transfer overlaps the pushes         \
     * between, where the next push's CAS would otherwise wait for this        \
     * cell's write to miss. Not in small rings, where it may be a cell        \
     * still to be read. */                                                    \
    if (r->mask >= 4 * SHOAL__MPSC_AHEAD - 1)                                  \
      shoal__prefetch_excl(                                                    \
          &r->cells[(shoal__mpsc_index(w) + SHOAL__MPSC_AHEAD) & r->mask]);    \
    c->data = *x;                                                              \
    /* release: the element before the seq that hands it to the consumer. */   \
    shoal__store(&c->seq, shoal__mpsc_index(w) + 1, memory_order_release);     \
    return (w & 1) ? SHOAL__MPSC_WOKE : SHOAL_OK;                              \
  }                                                                            \
                                                                               \
  /* Pushes up to n elements with one CAS; *pushed receives how many (the      \
   * rest found the queue full: counted once as dropped under DROP).           \
   * Returns as try_push. */                                                   \
  static inline int name##_push_batch(name *q, uint64_t gen, const T *xs,      \
                                      size_t n, size_t *pushed) {              \
    uint64_t w, idx;                                                           \
    name##_ring *r;                                                            \
    int64_t k = n != 0 ? name##_claim_(q, gen, n, &w, &r) : 0;                 \
    *pushed = 0;                                                               \
    if (k <= 0)                                                                \
      return k < 0 ? SHOAL_ENOENT : n != 0 ? name##_full_(q) : SHOAL_OK;       \
    idx = shoal__mpsc_index(w);                                                \
    for (int64_t i = 0; i < k; i++) {                                          \
      name##_cell *c = &r->cells[(idx + (uint64_t)i) & r->mask];               \
      c->data = xs[i];                                                         \
      /* release: as in try_push. */                                           \
      shoal__store(&c->seq, idx + (uint64_t)i + 1, memory_order_release);      \
    }                                                                          \
    *pushed = (size_t)k;                                                       \
    if ((size_t)k < n &&                                                       \
        shoal__load(&q->policy, memory_order_relaxed) == SHOAL__MPSC_DROP)     \
      shoal__fetch_add(&q->dropped, n - (size_t)k, memory_order_relaxed);      \
    return (w & 1) ? SHOAL__MPSC_WOKE : SHOAL_OK;                              \
  }                                                                            \
                                                                               \
  /* Asks for the cell the next push would fill, and the tail's line, for      \
   * writing: a producer about to push into many queues asks for them all      \
   * first, so that their misses overlap instead of each waiting behind the    \
   * CAS of the push before it. A hint only: the tail may move meanwhile.      \
   * Any thread. */                                                            \
  static inline void name##_prefetch_push(name *q) {                           \
    name##_ring *r = shoal__load(&q->ring, memory_order_acquire);              \
    uint64_t w = shoal__load(&q->tail, memory_order_relaxed);                  \
    if (r != NULL)                                                             \
      shoal__prefetch_write(&r->cells[shoal__mpsc_index(w) & r->mask]);        \
    shoal__prefetch_write((const void *)&q->tail);                             \
  }                                                                            \
                                                                               \
  /* Makes the consumer's head h visible to producers (peek, release and       \
   * try_idle call it; a consumer that stops popping calls it once).           \
   * release: our reads of the elements before h, before a producer            \
   * reuses their cells. */                                                    \
  static inline void name##_publish(name *q, uint64_t h) {                     \
    if (shoal__load(&q->head_pub, memory_order_relaxed) != h)                  \
      shoal__store(&q->head_pub, h, memory_order_release);                     \
  }                                                                            \
                                                                               \
  /* The element at the head, or NULL when there is none yet (empty, or        \
   * its push unfinished). It stays in its cell until _release. */             \
  static inline T *name##_peek(name *q) {                                      \
    uint64_t h = shoal__load(&q->head, memory_order_relaxed);                  \
    name##_ring *r = name##_ring_(q);                                          \
    name##_cell *c = &r->cells[h & r->mask];                                   \
    /* acquire: pairs with the producer's release of seq. */                   \
    if (shoal__mpsc_dif(shoal__load(&c->seq, memory_order_acquire), h + 1) !=  \
        0) {                                                                   \
      name##_publish(q, h); /* empty: hand back all the room */                \
      return NULL;                                                             \
    }                                                                          \
    return &c->data;                                                           \
  }                                                                            \
                                                                               \
  /* Frees the cell _peek returned. */                                         \
  static inline void name##_release(name *q) {                                 \
    uint64_t h = (shoal__load(&q->head, memory_order_relaxed) + 1) &           \
                 SHOAL__MPSC_INDEX_MASK;                                       \
    shoal__store(&q->head, h, memory_order_relaxed);                           \
    if ((h & name##_ring_(q)->pub) == 0)                                       \
      name##_publish(q, h);                                                    \
  }                                                                            \
                                                                               \
  static inline int name##_try_pop(name *q, T *out) {                          \
    T *p = name##_peek(q);                                                     \
    if (p == NULL)                                                             \
      return SHOAL_EAGAIN;                                                     \
    *out = *p;                                                                 \
    name##_release(q);                                                         \
    return SHOAL_OK;                                                           \
  }                                                                            \
                                                                               \
  /* Marks the queue idle if every claimed cell has been consumed: returns     \
   * 1 when it did (the next push returns SHOAL__MPSC_WOKE), else 0 with       \
   * *seen the tail word that stopped it (more claimed, or a new               \
   * generation). */                                                           \
  static inline int name##_try_idle(name *q, uint64_t gen, uint64_t *seen) {   \
    uint64_t h = shoal__load(&q->head, memory_order_relaxed);                  \
    uint64_t w = shoal__mpsc_word(gen, h, 0);                                  \
    name##_publish(q, h);                                                      \
    /* acq_rel: our consumption before the idle bit (release, for the          \
     * producer that clears it); on failure, acquire the newer claims. */      \
    if (shoal__cas(&q->tail, &w, w | 1, memory_order_acq_rel,                  \
                   memory_order_acquire))                                      \
      return 1;                                                                \
    *seen = w;                                                                 \
    return 0;                                                                  \
  }                                                                            \
                                                                               \
  /* Elements claimed and not yet consumed. Any thread; a snapshot. */         \
  /* Capacity. Any thread. */                                                  \
  static inline uint64_t name##_capacity(name *q) {                            \
    name##_ring *r = name##_ring_(q);                                          \
    return r != NULL ? r->mask + 1 : 0;                                        \
  }                                                                            \
                                                                               \
  static inline uint64_t name##_depth(name *q) {                               \
    uint64_t t =                                                               \
        shoal__mpsc_index(shoal__load(&q->tail, memory_order_relaxed));        \
    int64_t d =                                                                \
        shoal__mpsc_dif(t, shoal__load(&q->head, memory_order_relaxed));       \
    return d > 0 ? (uint64_t)d : 0;                                            \
  }

#endif /* SHOAL_MPSC_H */
