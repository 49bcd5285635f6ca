/* inbox.h — a worker's inbox: tasks that other threads hand to one worker
 * (an actor homed there, or a task submitted from outside the runtime).
 * Vyukov's intrusive MPSC node-based queue ("Intrusive MPSC node-based
 * queue", 1024cores.net): a push is one exchange, wait-free; nodes are the
 * tasks themselves (their `link`), so it is unbounded and allocates
 * nothing.
 *
 * Synchronization table:
 *
 *   call                   caller                     concurrent with
 *   shoal__inbox_push      any thread                 pushes, the owner
 *   shoal__inbox_pop       the owner (one thread)     pushes
 *   shoal__inbox_nonempty  the owner                  pushes
 *   shoal__inbox_init      one thread, nobody else touching it
 *
 * A push stopped between its exchange and its link hides the tasks behind
 * it from pop until it runs again; nonempty still answers 1 then, so the
 * owner does not sleep on them. A task is in at most one inbox at once. */
#ifndef SHOAL_INBOX_H
#define SHOAL_INBOX_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>

#include "runtime/common.h"

/* A link embedded in what the inbox carries (a task's `link`). */
typedef struct shoal__node {
  _Atomic(struct shoal__node *) next;
} shoal__node;

typedef struct shoal__inbox {
  alignas(SHOAL__FALSE_SHARING) _Atomic(shoal__node *) head; /* pushes */
  alignas(SHOAL__FALSE_SHARING) shoal__node *tail;           /* owner */
  /* Vyukov's permanent dummy node: the queue is never without a node, so
   * a push touches only head and its predecessor's link. */
  shoal__node *stub;
} shoal__inbox;

static inline void shoal__inbox_init(shoal__inbox *q, shoal__node *stub) {
  atomic_init(&stub->next, NULL);
  atomic_init(&q->head, stub);
  q->tail = stub;
  q->stub = stub;
}

/* The algorithm on its three words, wherever they live: the worker's
 * inbox keeps head and tail on separate lines; a session's inbox
 * (sessions/packets.c) keeps all three in its record. */
static inline void shoal__mpsc_push(_Atomic(shoal__node *) *head,
                                    shoal__node *n) {
  shoal__node *prev;
  atomic_store_explicit(&n->next, NULL, memory_order_relaxed);
  /* acq_rel: n's container before it becomes reachable (release); the
   * previous node's link after its own push (acquire). */
  prev = atomic_exchange_explicit(head, n, memory_order_acq_rel);
  /* release: pairs with the owner's acquire load of next. */
  atomic_store_explicit(&prev->next, n, memory_order_release);
}

static inline shoal__node *shoal__mpsc_pop(_Atomic(shoal__node *) *headp,
                                           shoal__node **tailp,
                                           shoal__node *stub) {
  shoal__node *tail = *tailp, *next, *head;
  /* acquire (every load of next): pairs with the push's release. */
  next = atomic_load_explicit(&tail->next, memory_order_acquire);
  if (tail == stub) {
    if (next == NULL)
      return NULL;
    *tailp = tail = next;
    next = atomic_load_explicit(&next->next, memory_order_acquire);
  }
  if (next != NULL) {
    *tailp = next;
    return tail;
  }
  head = atomic_load_explicit(headp, memory_order_acquire);
  if (tail != head)
    return NULL; /* a push is between its exchange and its link */
  shoal__mpsc_push(headp, stub); /* tail is the last: put the stub behind */
  next = atomic_load_explicit(&tail->next, memory_order_acquire);
  if (next != NULL) {
    *tailp = next;
    return tail;
  }
  return NULL;
}

static inline void shoal__inbox_push(shoal__inbox *q, shoal__node *n) {
  shoal__mpsc_push(&q->head, n);
}

static inline shoal__node *shoal__inbox_pop(shoal__inbox *q) {
  return shoal__mpsc_pop(&q->head, &q->tail, q->stub);
}

static inline int shoal__inbox_nonempty(shoal__inbox *q) {
  return q->tail != q->stub ||
         atomic_load_explicit(&q->head, memory_order_relaxed) != q->stub;
}

#endif /* SHOAL_INBOX_H */
