/* actor.h — the actor layer's internal structures, shared by actor.c
 * (records, mailboxes, turns, sending), router.c (the id table), reply.c
 * (request-reply, the host's waiters) and topic.c (publish-subscribe). */
#ifndef SHOAL_ACTOR_H
#define SHOAL_ACTOR_H

#include <pthread.h>

#include "runtime/actors/mpsc.h"
#include "runtime/idtable.h"
#include "runtime/os.h"
#include "runtime/sched/mpmc.h"
#include "runtime/sched/sched.h"

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
};

/* A blocking call's rendezvous. Reply addresses name (slot, seq): seq is
 * odd while the call waits, even once it has left. */
typedef struct shoal__waiter {
  alignas(SHOAL__FALSE_SHARING) _Atomic uint64_t seq;
  _Atomic uint32_t inflight; /* replies being copied in */
  _Atomic uint32_t got;      /* replies claimed */
  shoal_msg *out;
  unsigned cap;
} shoal__waiter;

/* A reply address of a waiter: the top bit, then seq, then the slot. */
#define SHOAL__HOST_BIT (UINT64_C(1) << 63)
#define SHOAL__WAITER_BITS 20

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
  /* Actors that reached max_per_tick, for the next tick. */
  shoal__inbox deferred;
  shoal__node deferred_stub;
  uint64_t warn_depth;
  alignas(SHOAL__FALSE_SHARING) _Atomic uint64_t tick;
  alignas(SHOAL__FALSE_SHARING) _Atomic uint64_t live; /* not yet finished */
  _Atomic uint64_t routing_failures, late_replies, deferrals;
  _Atomic uint32_t closing;
};

/* router.c (writers hold sys->mu) */
shoal_actor *shoal__router_find(shoal_actors *sys, uint64_t id);
int shoal__router_insert(shoal_actors *sys, uint64_t id, unsigned slot);
int shoal__router_remove(shoal_actors *sys, uint64_t id);

/* actor.c */
/* Pushes a copy of *m (to and time set) into a's mailbox of generation
 * gen and schedules a when it was idle. `quiet`: a worker defers the
 * runtime's wake-up to the caller (a publish signals once). */
int shoal__actor_push(shoal_actor *a, uint64_t gen, shoal_msg *m, int quiet);
/* Looks id up and pushes; counts a routing failure. */
int shoal__send(shoal_actors *sys, uint64_t to, shoal_msg *m);
/* The actor whose handler the calling thread runs, or NULL. */
shoal_actor *shoal__actor_current(void);

/* reply.c */
int shoal__deliver_reply(shoal_actors *sys, shoal_msg *m);
int shoal__waiters_init(shoal_actors *sys);
void shoal__waiters_destroy(shoal_actors *sys);

/* The ranges shoal_actors_create accepts (shoal.h): SHOAL_EINVAL for a
 * field out of its range. Any thread. */
int shoal__actors_config_check(const shoal_actors_config *c);

#endif /* SHOAL_ACTOR_H */
