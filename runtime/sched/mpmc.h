/* mpmc.h — a bounded multi-producer multi-consumer queue: Dmitry Vyukov's
 * array queue with a sequence number per cell ("Bounded MPMC queue",
 * 1024cores.net, 2010). The runtime's injection queue uses it for work
 * submitted by threads that are not workers.
 *
 * Synchronization table:
 *
 *   call                      caller        may run concurrently with
 *   shoal__mpmc_try_push      any thread    try_push, try_pop
 *   shoal__mpmc_try_pop       any thread    try_push, try_pop
 *   shoal__mpmc_init/destroy  one thread, no other thread touching it
 *
 * Neither call blocks nor allocates: a full queue fails the push with
 * SHOAL_EAGAIN (the caller chooses back-pressure or counting a drop), an
 * empty one fails the pop with SHOAL_EAGAIN. A push also fails while the
 * pop of the same cell one lap earlier has claimed its index but not yet
 * released the cell, even when the queue holds fewer than capacity
 * elements; likewise a pop while the push of its cell is unfinished. Elements
 * are pointers; FIFO holds per producer as seen by any one consumer. */
#ifndef SHOAL_MPMC_H
#define SHOAL_MPMC_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>

#include "runtime/atomics.h"
#include "runtime/common.h"

typedef struct shoal__mpmc_cell {
  /* == index: free for the push of that index; == index + 1: holds the
   * element of that index, for its pop. */
  _Atomic uint64_t seq;
  void *data;
} shoal__mpmc_cell;

typedef struct shoal__mpmc {
  alignas(SHOAL__FALSE_SHARING) _Atomic uint64_t head; /* next pop index */
  alignas(SHOAL__FALSE_SHARING) _Atomic uint64_t tail; /* next push index */
  alignas(SHOAL__FALSE_SHARING) uint64_t mask;         /* read-only */
  shoal__mpmc_cell *cells;
} shoal__mpmc;

/* capacity is rounded up to a power of two (at least 2). */
int shoal__mpmc_init(shoal__mpmc *q, size_t capacity);
void shoal__mpmc_destroy(shoal__mpmc *q);

/* Vyukov's claim loop, shared by both sides: finds the cell of the next
 * index of `counter` whose sequence says it is ready (index + `ready`:
 * 0 for a push, 1 for a pop) and claims the index; NULL when the queue is
 * full (push) or empty (pop). */
static inline shoal__mpmc_cell *shoal__mpmc_claim(shoal__mpmc *q,
                                                  _Atomic uint64_t *counter,
                                                  uint64_t ready,
                                                  uint64_t *pos_out) {
  uint64_t pos = shoal__load(counter, memory_order_relaxed);
  for (;;) {
    shoal__mpmc_cell *c = &q->cells[pos & q->mask];
    /* acquire: pairs with the release store of seq by the other side, so
     * that its access to the cell's data happens before ours. */
    int64_t dif =
        (int64_t)(shoal__load(&c->seq, memory_order_acquire) - (pos + ready));
    if (dif == 0) {
      if (shoal__cas_weak(counter, &pos, pos + 1, memory_order_relaxed,
                          memory_order_relaxed)) {
        *pos_out = pos;
        return c;
      }
    } else if (dif < 0) {
      return NULL; /* the other side has not been here yet this lap */
    } else {
      pos = shoal__load(counter, memory_order_relaxed);
    }
  }
}

static inline int shoal__mpmc_try_push(shoal__mpmc *q, void *x) {
  uint64_t pos;
  shoal__mpmc_cell *c = shoal__mpmc_claim(q, &q->tail, 0, &pos);
  if (c == NULL)
    return SHOAL_EAGAIN; /* full */
  c->data = x;
  /* release: the element before the sequence that hands it to a pop. */
  shoal__store(&c->seq, pos + 1, memory_order_release);
  return SHOAL_OK;
}

static inline int shoal__mpmc_try_pop(shoal__mpmc *q, void **out) {
  uint64_t pos;
  shoal__mpmc_cell *c = shoal__mpmc_claim(q, &q->head, 1, &pos);
  if (c == NULL)
    return SHOAL_EAGAIN; /* empty */
  *out = c->data;
  /* release: the read above before the cell is offered to the push one lap
   * later. */
  shoal__store(&c->seq, pos + q->mask + 1, memory_order_release);
  return SHOAL_OK;
}

/* Pushes into a queue that has a cell for every element that can exist
 * (a pool's free list): the push can still fail while the pop of the cell
 * one lap back is between its two stores, so it retries, yielding to that
 * consumer should it have been preempted. */
void shoal__mpmc_push_held(shoal__mpmc *q, void *x);

#endif /* SHOAL_MPMC_H */
