/* actor.h — the actor layer's internal structures, shared by actor.c
 * (records, mailboxes, turns, sending), router.c (the id table), reply.c
 * (request-reply, the host's waiters) and topic.c (publish-subscribe). */
#ifndef SHOAL_ACTOR_H
#define SHOAL_ACTOR_H

#include <pthread.h>

#include "runtime/actors/mpsc.h"
#include "runtime/actors/sink.h"
#include "runtime/idtable.h"
#include "runtime/os.h"
#include "runtime/sched/mpmc.h"
#include "runtime/sched/sched.h"
#include "runtime/sched/wheel.h"

_Static_assert(sizeof(shoal_msg) == 56, "an envelope and its sequence fill "
                                        "one cache line");
SHOAL__MPSC_DEFINE(shoal__mailbox, shoal_msg)

/* Generations of a record: even while registered, odd once unregistered
 * (its mailbox refuses pushes); the next registration takes the next
 * even one. */

struct shoal_actor {
  shoal__task task; /* first: how the runtime runs a turn */
  shoal__mailbox box;
  /* --- set at registration; read by turns and senders --- */
  shoal_actors *sys;
  _Atomic uint64_t id; /* 0 while free; written before the generation */
  uint64_t gen;
  shoal_actor_fn handler;
  void *state;
  shoal_actor_drop_fn drop;
  shoal_actor_stop_fn stop;
  int home;
  unsigned slot;
  uint64_t cap_alloc; /* cells allocated for box (kept across reuse) */
  char name[24];
  /* --- the running turn's own (a line apart from what senders read) --- */
  alignas(SHOAL__FALSE_SHARING) uint32_t corr_next;
  uint64_t tick_seen, tick_count;
  int warned;
  /* --- figures: written by turns, read by anyone --- */
  alignas(SHOAL__FALSE_SHARING) _Atomic uint64_t processed;
  _Atomic uint64_t max_depth, handler_ns, handler_max_ns, discarded;
  _Atomic uint64_t rejected; /* back-pressure refusals (senders) */
  _Atomic uint64_t stuck, stalls; /* the watch's reports (watch.c) */
  /* --- supervision (supervise.c) --- */
  _Atomic int fail;        /* a failure to handle: its status; 0 none */
  int fail_stop;           /* stopped by a failure: finish answers its
                              requests */
  shoal_actor_init_fn init;
  int on_failure;
  unsigned max_restarts, window_ms;
  uint64_t parent;
  uint64_t window_start_ns; /* its turn's */
  unsigned window_restarts;
  _Atomic uint64_t failures, restarts;
};

/* A worker's heartbeat for the watch (watch.c): before each handler its
 * turn stores a count << 32 | the record's slot + 1; slot 0: none
 * running. On the worker's own line. */
typedef struct shoal__abeat {
  alignas(SHOAL__FALSE_SHARING) _Atomic uint64_t w;
} shoal__abeat;

/* A blocking call's rendezvous. Reply addresses name (slot, seq): seq is
 * odd while the call waits, even once it has left. */
typedef struct shoal__waiter {
  alignas(SHOAL__FALSE_SHARING) _Atomic uint64_t seq;
  _Atomic uint32_t inflight; /* replies being copied in */
  _Atomic uint32_t got;      /* replies claimed */
  shoal_msg *out;
  unsigned cap;
} shoal__waiter;

/* A reply address of a waiter: the top bit, then seq (42 bits), then the
 * slot. A sink's: the top bit, the sink bit, the sink (4 bits), its tag
 * (58 bits). Sink 0 is the system's own requests with a timeout. */
#define SHOAL__HOST_BIT (UINT64_C(1) << 63)
#define SHOAL__SINK_BIT (UINT64_C(1) << 62)
#define SHOAL__WAITER_BITS 20
#define SHOAL__SINKS 16u

/* A sink (request.c): fn is NULL while free or removed; a delivery
 * announces itself in inflight before it reads fn (a Dekker pair with
 * remove, as the waiters'). */
typedef struct shoal__sink {
  alignas(SHOAL__FALSE_SHARING) _Atomic(shoal__sink_fn) fn;
  void *ctx;
  _Atomic uint32_t inflight;
} shoal__sink;

/* An actor's request with a timeout, waiting (request.c): the record of
 * its timer in the system's wheel, the requester, and the request as sent
 * (the timeout message is made of it). */
typedef struct shoal__areq {
  shoal__wentry w;
  uint64_t requester;
  shoal_msg req;
} shoal__areq;

struct shoal_actors {
  shoal_actors_config cfg;
  shoal_runtime *rt;
  shoal_actor *recs;      /* max_actors records */
  shoal__mpmc free_slots; /* record indices + 1, FIFO: slots rest long */
  /* The router (idtable.h) over the records. Readers take no lock;
   * writers take mu. */
  shoal__idtable table;
  uint64_t table_removes; /* since its last sweep; under mu */
  pthread_mutex_t mu;
  void **retired; /* mailbox cells replaced by a new capacity (see
                     new_cells in actor.c) */
  size_t nretired, cap_retired;
  shoal__waiter *waiters;
  shoal__mpmc free_waiters; /* waiter indices + 1 */
  /* Waiters reserved by calls (reply.c), at most host_waiters: a call
   * that reserved one finds one in free_waiters, once a give-back's
   * unfinished push completes. */
  alignas(SHOAL__FALSE_SHARING) _Atomic unsigned waiters_held;
  /* Reply sinks, and the actors' requests with a timeout (request.c):
   * their records, the free ones (index + 1), the wheel that
   * shoal_actors_tick runs, in ms since creation. */
  shoal__sink sinks[SHOAL__SINKS];
  shoal__areq *areqs;
  shoal__mpmc free_areqs;
  shoal__wheel wheel;
  uint64_t t0_ns;
  alignas(SHOAL__FALSE_SHARING) _Atomic uint64_t requests, replies,
      timeouts, req_dropped;
  /* Actors that reached max_per_tick, for the next tick. */
  shoal__inbox deferred;
  shoal__node deferred_stub;
  uint64_t warn_depth;
  alignas(SHOAL__FALSE_SHARING) _Atomic uint64_t tick;
  alignas(SHOAL__FALSE_SHARING) _Atomic uint64_t live; /* not yet finished */
  _Atomic uint64_t routing_failures, late_replies, deferrals;
  _Atomic uint32_t closing;
  /* Tracing (trace.c): NULL when off. */
  struct shoal__trace *trace;
  /* The watch (watch.c): a heartbeat per worker, its thread, its state. */
  shoal__abeat *beats; /* NULL: not watched */
  unsigned nbeats;
  shoal__ticker watch;
  struct shoal__awatch *watch_state;
};

/* router.c (writers hold sys->mu) */
shoal_actor *shoal__router_find(shoal_actors *sys, uint64_t id);
int shoal__router_insert(shoal_actors *sys, uint64_t id, unsigned slot);
int shoal__router_remove(shoal_actors *sys, uint64_t id);

/* actor.c */
/* An id an actor may have: not 0, not a reply address. */
static inline int shoal__valid_id(uint64_t id) {
  return id != 0 && !(id & SHOAL__HOST_BIT);
}
/* The record registered under id with its generation, or NULL. Any
 * thread. */
shoal_actor *shoal__resolve(shoal_actors *sys, uint64_t id, uint64_t *gen);
/* Pushes a copy of *m (to and time set) into a's mailbox of generation
 * gen and schedules a when it was idle. `quiet`: a worker defers the
 * runtime's wake-up to the caller (a publish signals once). */
int shoal__actor_push(shoal_actor *a, uint64_t gen, shoal_msg *m, int quiet);
/* shoal__send (sink.h): looks id up and pushes; counts a routing
 * failure. */
/* The actor whose handler the calling thread runs, or NULL. */
shoal_actor *shoal__actor_current(void);

/* supervise.c: a's failure handled in its own turn (a->fail set), on
 * its worker: 1 when it stopped (the turn ends and finishes it). finish's
 * answer to a request left in the mailbox of an actor stopped by a
 * failure: the thread finishing it. */
int shoal__supervise(shoal_actor *a);
void shoal__answer_failed(shoal_actor *a, const shoal_msg *m);

/* trace.c. Create and free the ring (Actors.TraceRing): SHOAL_ENOMEM; the
 * system's creating and destroying thread. A send with tracing on
 * (sys->trace not NULL): tags m, pushes it into a (NULL: no such actor)
 * and records the hop; returns as the push; any thread. A hop recorded:
 * any thread (the turn running m, the thread finishing its actor). The
 * calling thread's worker index, or -1 outside the runtime. */
int shoal__trace_init(shoal_actors *sys);
void shoal__trace_free(shoal_actors *sys);
int shoal__trace_send(shoal_actors *sys, shoal_actor *a, uint64_t gen,
                      shoal_msg *m);
void shoal__trace_hop(shoal_actors *sys, const shoal_msg *m, uint64_t to,
                      int kind, int worker, int status);
int shoal__trace_worker(shoal_actors *sys);
/* A hop kind's name ("send", "refused", "run", "drop"). */
const char *shoal__hop_name(unsigned kind);

/* watch.c: stuck handlers and stalled actors (Actors.StuckMs, StallMs).
 * Start: SHOAL_ENOMEM, SHOAL_EAGAIN. Stop joins the thread. The system's
 * creating and destroying thread. */
int shoal__watch_start(shoal_actors *sys);
void shoal__watch_stop(shoal_actors *sys);

/* request.c */
int shoal__requests_init(shoal_actors *sys);
/* Fires the requests' timeouts due by now. The ticking thread. */
void shoal__requests_tick(shoal_actors *sys);
/* Drops the waiting requests (counted) and frees the records. */
void shoal__requests_destroy(shoal_actors *sys);
/* shoal_actor_request_timeout's work once checked. */
int shoal__actor_request_timeout(shoal_actors *sys, uint64_t self_id,
                                 uint32_t corr, uint64_t to,
                                 const shoal_msg *m, unsigned timeout_ms);
/* A reply to a sink address. */
int shoal__sink_deliver(shoal_actors *sys, shoal_msg *m);
/* 1 while a sink other than the system's own is added. */
int shoal__sinks_busy(shoal_actors *sys);

/* reply.c */
int shoal__deliver_reply(shoal_actors *sys, shoal_msg *m);
int shoal__waiters_init(shoal_actors *sys);
void shoal__waiters_destroy(shoal_actors *sys);

/* The ranges shoal_actors_create accepts (shoal.h): SHOAL_EINVAL for a
 * field out of its range. Any thread. */
int shoal__actors_config_check(const shoal_actors_config *c);

#endif /* SHOAL_ACTOR_H */
