/* deque.h — the work-stealing deque of one worker: Chase and Lev's dynamic
 * circular deque (SPAA 2005) in the C11 form proven correct for weak memory
 * models by Lê, Pop, Cohen and Zappa Nardelli, "Correct and Efficient
 * Work-Stealing for Weak Memory Models", PPoPP 2013, figure 1.
 *
 * Synchronization table (who may call what):
 *
 *   call                        caller                 may run concurrently
 * with shoal__deque_push_owner     the owning worker      steal
 *   shoal__deque_take_owner     the owning worker      steal
 *   shoal__deque_steal          any thread             push, take, steal
 *   shoal__deque_init/destroy   one thread, no other thread touching the deque
 *
 * Elements are non-NULL pointers. Indices are signed 64-bit (the paper's
 * size_t makes `bottom - 1` wrap on an empty deque); they never wrap in
 * practice (2^63 pushes). A full buffer grows to twice its size; the old
 * one is kept until destroy because a thief that loaded it may still read
 * from it (the paper leaves reclamation open; keeping them costs at most
 * the final size again, as sizes double). */
#ifndef SHOAL_DEQUE_H
#define SHOAL_DEQUE_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>

#include "runtime/atomics.h"
#include "runtime/common.h"

/* SHOAL__DEQUE_BROKEN, set only by the harnesses that must prove they can
 * fail (tests/torture, tests/dsched), weakens one ordering:
 *   1: take's seq_cst fence is dropped, so the owner may read top before
 *      its new bottom is visible (a store-load reordering x86 performs);
 *   2: steal's CAS on top becomes a load, a compare and a store, so two
 *      thieves may take the same element.
 * Never set it elsewhere. */
#ifndef SHOAL__DEQUE_BROKEN
#define SHOAL__DEQUE_BROKEN 0
#endif

/* ThreadSanitizer does not model standalone fences and reports races that
 * cannot happen; its build (SHOAL__TSAN) uses the equivalent orderings on
 * the accesses themselves (stronger, so still correct). */

typedef struct shoal__dq_buf {
  int64_t mask;               /* capacity - 1; capacity a power of two */
  struct shoal__dq_buf *prev; /* retired buffers, freed at destroy */
  _Atomic(void *) slot[];
} shoal__dq_buf;

typedef struct shoal__deque {
  /* Thieves CAS `top`: it gets a line of its own. */
  alignas(SHOAL__FALSE_SHARING) _Atomic int64_t top;
  /* Written by the owner only, read by thieves. */
  alignas(SHOAL__FALSE_SHARING) _Atomic int64_t bottom;
  _Atomic(shoal__dq_buf *) buf;
  char pad_[SHOAL__FALSE_SHARING - sizeof(int64_t) - sizeof(void *)];
} shoal__deque;

_Static_assert(sizeof(shoal__deque) == 2 * SHOAL__FALSE_SHARING,
               "top and bottom each own a false-sharing unit");

typedef enum shoal__steal_rc {
  SHOAL__STEAL_OK = 0,
  SHOAL__STEAL_EMPTY = 1,
  SHOAL__STEAL_LOST = 2 /* another thief or the owner won the race: retry */
} shoal__steal_rc;

/* capacity: initial size, rounded up to a power of two (at least 2). */
int shoal__deque_init(shoal__deque *d, size_t capacity);
void shoal__deque_destroy(shoal__deque *d);
/* The owner's slow path when the buffer is full. */
int shoal__deque_grow_owner(shoal__deque *d, int64_t top, int64_t bottom);

/* Pushes `x` at the bottom. SHOAL_ENOMEM when growth fails (the deque is
 * unchanged). Owner only. */
static inline int shoal__deque_push_owner(shoal__deque *d, void *x) {
  int64_t b = shoal__load(&d->bottom, memory_order_relaxed);
  /* acquire: pairs with the thieves' CAS on top, so that a slot a thief has
   * taken is not overwritten before the thief has read it. */
  int64_t t = shoal__load(&d->top, memory_order_acquire);
  shoal__dq_buf *a = shoal__load(&d->buf, memory_order_relaxed);
  if (SHOAL__UNLIKELY(b - t > a->mask)) {
    if (shoal__deque_grow_owner(d, t, b) != SHOAL_OK)
      return SHOAL_ENOMEM;
    a = shoal__load(&d->buf, memory_order_relaxed);
  }
  shoal__store(&a->slot[b & a->mask], x, memory_order_relaxed);
#if SHOAL__TSAN
  /* release store: the fence below, as TSan understands it. */
  shoal__store(&d->bottom, b + 1, memory_order_release);
#else
  /* release fence: publishes the slot (and what x points to) before the new
   * bottom; pairs with the thief's acquire load of bottom. */
  shoal__fence(memory_order_release);
  shoal__store(&d->bottom, b + 1, memory_order_relaxed);
#endif
  return SHOAL_OK;
}

/* Takes the most recently pushed element; NULL when empty. Owner only. */
static inline void *shoal__deque_take_owner(shoal__deque *d) {
  int64_t b = shoal__load(&d->bottom, memory_order_relaxed) - 1;
  shoal__dq_buf *a = shoal__load(&d->buf, memory_order_relaxed);
  int64_t t;
  void *x;
#if SHOAL__TSAN
  /* seq_cst store and load: the store-load fence below, as TSan sees it. */
  shoal__store(&d->bottom, b, memory_order_seq_cst);
  t = shoal__load(&d->top, memory_order_seq_cst);
#else
  shoal__store(&d->bottom, b, memory_order_relaxed);
  /* seq_cst fence: the new bottom must be visible before top is read, or
   * the owner and a thief could both take the last element (the fence
   * pairs with the one in steal). */
#if SHOAL__DEQUE_BROKEN != 1
  shoal__fence(memory_order_seq_cst);
#endif
  t = shoal__load(&d->top, memory_order_relaxed);
#endif
  if (t > b) { /* empty */
    shoal__store(&d->bottom, b + 1, memory_order_relaxed);
    return NULL;
  }
  x = shoal__load(&a->slot[b & a->mask], memory_order_relaxed);
  if (t == b) {
    /* The last element: race the thieves for it on top. seq_cst: the CAS
     * is ordered with the thieves' CAS in the total order. */
    if (!shoal__cas(&d->top, &t, t + 1, memory_order_seq_cst,
                    memory_order_relaxed))
      x = NULL;
    shoal__store(&d->bottom, b + 1, memory_order_relaxed);
  }
  return x;
}

/* Steals the oldest element into *out. Any thread. */
static inline shoal__steal_rc shoal__deque_steal(shoal__deque *d, void **out) {
  int64_t t, b;
#if SHOAL__TSAN
  t = shoal__load(&d->top, memory_order_seq_cst);
  b = shoal__load(&d->bottom, memory_order_seq_cst);
#else
  /* acquire on top: pairs with the CAS of another thief or the owner. */
  t = shoal__load(&d->top, memory_order_acquire);
  /* seq_cst fence: pairs with the owner's fence in take. */
  shoal__fence(memory_order_seq_cst);
  /* acquire on bottom: pairs with the owner's release fence in push. */
  b = shoal__load(&d->bottom, memory_order_acquire);
#endif
  if (t >= b)
    return SHOAL__STEAL_EMPTY;
  {
    /* acquire (the paper's consume): the buffer's contents as the owner
     * wrote them before publishing it in grow. */
    shoal__dq_buf *a = shoal__load(&d->buf, memory_order_acquire);
    /* The element is read before the CAS: once top moves, the owner may
     * overwrite the slot. */
    void *x = shoal__load(&a->slot[t & a->mask], memory_order_relaxed);
#if SHOAL__DEQUE_BROKEN == 2
    if (shoal__load(&d->top, memory_order_seq_cst) != t)
      return SHOAL__STEAL_LOST;
    shoal__store(&d->top, t + 1, memory_order_seq_cst);
#else
    if (!shoal__cas(&d->top, &t, t + 1, memory_order_seq_cst,
                    memory_order_relaxed))
      return SHOAL__STEAL_LOST;
#endif
    *out = x;
    return SHOAL__STEAL_OK;
  }
}

/* Elements present, as seen by the caller: exact for the owner when no
 * thief runs, a hint otherwise. Any thread. */
static inline int64_t shoal__deque_size_hint(shoal__deque *d) {
  int64_t b = shoal__load(&d->bottom, memory_order_relaxed);
  int64_t t = shoal__load(&d->top, memory_order_relaxed);
  return b > t ? b - t : 0;
}

#endif /* SHOAL_DEQUE_H */
