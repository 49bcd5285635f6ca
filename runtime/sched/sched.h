/* sched.h — what the scheduler offers the layers above it (runtime/actors/,
 * sessions/, hibernate/): a task record they may embed, and a few named
 * calls. The workers' and the runtime's structures stay in scheduler.h,
 * which only runtime/sched/ includes. Internal. */
#ifndef SHOAL_SCHED_SCHED_H
#define SHOAL_SCHED_SCHED_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/common.h"
#include "runtime/sched/inbox.h"

/* How the runtime runs a task handed to it. SHOAL__KIND_PINNED runs like a
 * closure but only on the worker whose inbox it was handed to (an actor
 * homed there): never moved to a deque. */
enum {
  SHOAL__KIND_FRAME = 0,
  SHOAL__KIND_CLOSURE = 1,
  SHOAL__KIND_RAN = 2,
  SHOAL__KIND_PINNED = 3
};

/* A task record a layer above embeds and hands to the runtime (a
 * closure, an actor's turn, a handed-off part): fn(w, t) runs once, with w
 * a handle of the running worker (shoal.h's fork-join handle, so that fn
 * may spawn). state is the scheduler's; kind, fn and link are set by
 * whoever hands the task over. Its first fields are laid out as a frame's
 * (struct shoal__frame), so that the deques hold both. */
typedef struct shoal__task shoal__task;
typedef void (*shoal__task_fn)(shoal_worker *w, shoal__task *t);
struct shoal__task {
  shoal__task_fn fn;
  _Atomic uint32_t state;
  uint32_t kind;
  void *_Atomic thief; /* unused by records */
  shoal__node link;    /* in an inbox, or a worker's list of held tasks */
};

static inline shoal__task *shoal__task_of(shoal__node *n) {
  return n != NULL ? (shoal__task *)(void *)((char *)n -
                                             offsetof(shoal__task, link))
                   : NULL;
}

_Static_assert(offsetof(shoal__task, state) ==
                       offsetof(struct shoal__frame, state) &&
                   offsetof(shoal__task, kind) ==
                       offsetof(struct shoal__frame, kind),
               "records and frames share the fields run_taken reads first");

/* A handle of the worker of `rt` the calling thread is, or NULL: the
 * handle the library gave the innermost body that took none (a
 * parallel_for body, a closure), which that body may spawn through as long
 * as it holds no frames spawned otherwise. Any thread. */
shoal_worker *shoal__current(const shoal_runtime *rt);

/* shoal.h's shoal__wanted(w): 1 when some worker of w's runtime looks
 * for work or is parked, the moment to split what w holds (the inline
 * spawn reads the same word). The owner of w. */

/* Hands t (SHOAL__KIND_CLOSURE or SHOAL__KIND_PINNED, fn set) to the
 * runtime. home: SHOAL__ANY, any worker (from a worker, its own deque;
 * from outside, the inbox of a parked worker, else of the next in turn);
 * SHOAL__ELSEWHERE, as from outside; else the inbox of worker `home`
 * (of another when `home` has been removed by a resize). Wakes the
 * receiving worker when it is parked; `quiet` leaves a push onto the
 * caller's own deque unannounced (the caller calls shoal__signal_work once
 * for many). Never allocates; blocks only on the rare path where the
 * receiving worker left meanwhile (the runtime's resize lock, briefly).
 * Any thread. */
enum { SHOAL__ANY = -1, SHOAL__ELSEWHERE = -2 };
void shoal__submit(shoal_runtime *rt, shoal__task *t, int home, int quiet);
/* fn(w, t) run once as a closure by worker `worker` (its inbox): for a
 * record a layer above keeps in a shoal__task of its own. Any thread. */
void shoal__handoff(shoal_runtime *rt, shoal__task *t, shoal__task_fn fn,
                    unsigned worker);
/* Wakes a worker for work pushed quietly. Any thread. */
void shoal__signal_work(shoal_runtime *rt);
/* 1 when w has work of its own waiting: its deque, inbox, or the
 * injection queue. The owner. */
int shoal__has_local_work(shoal_worker *w);
/* 1 once the runtime's destroy has begun. Any thread. */
int shoal__runtime_stopping(const shoal_runtime *rt);

/* Wakes the threads outside the workers that wait on rt's event count;
 * `finished` (a group or a condition reached its end) also wakes workers
 * parked in a wait. Any thread. */
void shoal__ext_notify(shoal_runtime *rt, int finished);
/* Waits until cond(arg) holds or the deadline passes (shoal__now_ns; 0
 * none), from any thread: a worker of rt runs work meanwhile; another
 * thread joins as worker 0 when that slot is free, else sleeps. Whoever
 * makes cond true calls shoal__ext_notify(rt, 1). Returns 1 when cond
 * held. */
int shoal__wait_until(shoal_runtime *rt, int (*cond)(void *), void *arg,
                      uint64_t deadline_ns);
/* Runs work on w until done(arg) holds, parking when there is none; a
 * finished condition wakes it (shoal__ext_notify). The owner of w. */
void shoal__work_until(shoal_worker *w, int (*done)(void *), void *arg);

/* The topology the runtime's plan was made from. Any thread. */
const shoal_topo *shoal__runtime_topo(const shoal_runtime *rt);
/* Runs fn(arg) once on each worker's own thread (for what only a thread
 * can do for itself, such as its allocator's collection): the caller's
 * share inline, the rest as pinned tasks; returns when all have run.
 * SHOAL_ENOMEM. Any thread that may wait on rt. */
int shoal__runtime_each(shoal_runtime *rt, void (*fn)(void *), void *arg);
/* The allocator's free memory back to the system from every worker's own
 * thread (shoal__alloc_collect_here on each; rt NULL: this thread only).
 * Any thread that may wait on rt. */
void shoal__runtime_collect(shoal_runtime *rt, int force);

#endif /* SHOAL_SCHED_SCHED_H */
