/* actor.c — actors on the runtime: records allocated with the system,
 * mailboxes (mpsc.h), the turn that handles a batch and yields, sending,
 * unregistering while messages are in flight, and per-actor figures.
 *
 * Scheduling: the push that finds a mailbox idle (the idle bit in its tail
 * word) is the one that hands the actor's task to the runtime, so "empty
 * to non-empty" costs no atomic beyond the push's own CAS. A turn ends by
 * setting the idle bit with a CAS that succeeds only when every claimed
 * cell has been consumed; the actor is therefore never queued twice and
 * never runs on two threads at once. */
#include <sched.h>
#include <stdio.h>

#include "runtime/actors/actor.h"

static _Thread_local shoal_actor *tls_actor;
/* Messages this thread has pushed: a turn tells from it whether a handler
 * sent anything. */
static _Thread_local uint64_t tls_sends;

shoal_actor *shoal__actor_current(void) { return tls_actor; }

void shoal_actors_config_defaults(shoal_actors_config *cfg) {
  if (cfg == NULL)
    return;
  memset(cfg, 0, sizeof *cfg);
  cfg->max_actors = 16384;
  cfg->queue_size = 1024;
  cfg->batch_size = 64;
  cfg->linger_us = 20;
  cfg->host_waiters = 64;
  cfg->max_requests = 4096;
  cfg->stuck_ms = 5000;
  cfg->struct_size = sizeof *cfg;
}

void shoal_actor_opts_defaults(shoal_actor_opts *opts) {
  if (opts == NULL)
    return;
  memset(opts, 0, sizeof *opts);
  opts->home = -1;
  opts->max_restarts = 3;
  opts->restart_window_ms = 5000;
  opts->struct_size = sizeof *opts;
}

/* ------------------------------------------------------------------------ */
/* Finishing an unregistered actor                                          */
/* ------------------------------------------------------------------------ */

/* Runs once per registration, on the thread that finds the actor closed
 * and idle: discards what is left, calls stop, frees the record. */
static void finish(shoal_actor *a) {
  shoal_actors *sys = a->sys;
  shoal_runtime *rt;
  /* acquire: the closing CAS fixed the tail; claims before it are ours to
   * wait for. */
  uint64_t end = shoal__mpsc_index(
      atomic_load_explicit(&a->box.tail, memory_order_acquire));
  unsigned spins = 0;
  while (shoal__mpsc_dif(end, atomic_load_explicit(&a->box.head,
                                                   memory_order_relaxed)) > 0) {
    shoal_msg *m = shoal__mailbox_peek(&a->box);
    if (m == NULL) { /* a push between its claim and its publication */
      if (++spins > 64)
        sched_yield();
      else
        shoal__cpu_relax();
      continue;
    }
    if (a->fail_stop && (m->flags & SHOAL_MSG_REQUEST))
      shoal__answer_failed(a, m);
    if (sys->trace != NULL && m->trace != 0)
      shoal__trace_hop(sys, m, atomic_load_explicit(&a->id,
                                                    memory_order_relaxed),
                       SHOAL_HOP_DROP, -1, 0);
    if (a->drop != NULL)
      a->drop(a->state, m);
    shoal__mailbox_release(&a->box);
    atomic_fetch_add_explicit(&a->discarded, 1, memory_order_relaxed);
  }
  shoal__mailbox_publish(
      &a->box, atomic_load_explicit(&a->box.head, memory_order_relaxed));
  if (a->stop != NULL)
    a->stop(a->state);
  atomic_store_explicit(&a->id, 0, memory_order_relaxed);
  shoal__mpmc_push_held(&sys->free_slots, (void *)((uintptr_t)a->slot + 1));
  rt = sys->rt; /* sys may be gone once the count reaches zero */
  /* acq_rel: everything above before the count that destroy waits on. */
  if (atomic_fetch_sub_explicit(&sys->live, 1, memory_order_acq_rel) == 1)
    shoal__ext_notify(rt, 1);
}

/* ------------------------------------------------------------------------ */
/* Turns                                                                    */
/* ------------------------------------------------------------------------ */

static void schedule(shoal_actor *a, int quiet) {
  shoal__submit(a->sys->rt, &a->task, a->home, quiet);
}

/* Keeps watching a's mailbox while the worker has nothing else to do, so
 * that the answer to a message a just sent is handled without a trip
 * through the scheduler. 1 when a message came.
 *
 * *streaming says, from one call to the next within a turn, that messages
 * keep coming at once while a sends nothing: a sink fed as fast as its
 * senders can. Then the looks are SHOAL__SLIP_NS apart ("temporal
 * slipping", Giacomoni et al., FastForward, PPoPP 2008), so that a sender
 * fills several cells before a reads them, instead of the two cores
 * trading each cell's cache line while it is written. An actor that has
 * just sent may be waiting for the answer: it looks without pause, so a
 * round trip never slips. */
enum { SHOAL__SLIP_NS = 500, SHOAL__QUICK_NS = 100 };

static int linger(shoal_worker *w, shoal_actor *a, int *streaming) {
  uint64_t ns = (uint64_t)a->sys->cfg.linger_us * 1000u, start, now;
  uint64_t look = 0;
  if (ns == 0)
    return 0;
  start = now = shoal__fast_ns();
  for (unsigned i = 1;; i++) {
    if (now >= look) {
      if (shoal__mailbox_peek(&a->box) != NULL) {
        *streaming = i == 1 || shoal__fast_ns() - start < SHOAL__QUICK_NS;
        return 1;
      }
      look = *streaming ? now + SHOAL__SLIP_NS : 0;
    }
    if ((i & 63) == 0 && (shoal__has_local_work(w) || now - start >= ns ||
                          shoal__runtime_stopping(a->sys->rt)))
      return 0;
    shoal__cpu_relax();
    if (look != 0 || (i & 63) == 63)
      now = shoal__fast_ns();
  }
}

static void note_depth(shoal_actor *a, uint64_t depth) {
  shoal_actors *sys = a->sys;
  uint64_t warn = sys->cfg.depth_warn != 0
                      ? sys->cfg.depth_warn
                      : shoal__mailbox_capacity(&a->box) / 4 * 3;
  if (depth > atomic_load_explicit(&a->max_depth, memory_order_relaxed))
    atomic_store_explicit(&a->max_depth, depth, memory_order_relaxed);
  if (depth >= warn && warn != 0 && !a->warned) {
    a->warned = 1;
    shoal__log(
        sys->cfg.log, sys->cfg.log_user, SHOAL_LOG_WARN,
        "actor %llu (%s): %llu messages waiting, capacity %llu",
        (unsigned long long)atomic_load_explicit(&a->id, memory_order_relaxed),
        a->name[0] != '\0' ? a->name : "unnamed", (unsigned long long)depth,
        (unsigned long long)shoal__mailbox_capacity(&a->box));
  } else if (depth < warn / 2) {
    a->warned = 0;
  }
}

static void defer(shoal_actor *a) {
  atomic_fetch_add_explicit(&a->sys->deferrals, 1, memory_order_relaxed);
  shoal__inbox_push(&a->sys->deferred, &a->task.link);
}

/* Adds a turn's figures to the record. */
static void flush(shoal_actor *a, uint64_t n, uint64_t *hsum, uint64_t hmax) {
  a->tick_count += n;
  atomic_fetch_add_explicit(&a->processed, n, memory_order_relaxed);
  atomic_fetch_add_explicit(&a->handler_ns, *hsum, memory_order_relaxed);
  *hsum = 0;
  if (hmax > atomic_load_explicit(&a->handler_max_ns, memory_order_relaxed))
    atomic_store_explicit(&a->handler_max_ns, hmax, memory_order_relaxed);
}

/* The watch's heartbeat word of w's worker (NULL: not watched), and what
 * it held (*prev). */
static _Atomic uint64_t *beat_of(shoal_actors *sys, shoal_worker *w,
                                 uint64_t *prev) {
  _Atomic uint64_t *b;
  *prev = 0;
  if (sys->beats == NULL)
    return NULL;
  b = &sys->beats[shoal_worker_index(w)].w;
  *prev = atomic_load_explicit(b, memory_order_relaxed);
  return b;
}

/* The turn ends or pauses: an outer turn's handler, or none, runs again
 * (a new count, so that the watch sees the change). */
static void beat_end(_Atomic uint64_t *b, uint64_t *seq, uint64_t prev) {
  *seq += (uint64_t)1 << 32;
  if (b != NULL)
    atomic_store_explicit(b, *seq | (prev & UINT32_MAX), memory_order_relaxed);
}

/* A traced message's turn begins. */
static void trace_run(shoal_actor *a, const shoal_msg *m, shoal_worker *w) {
  uint64_t id = atomic_load_explicit(&a->id, memory_order_relaxed);
  shoal__trace_hop(a->sys, m, id, SHOAL_HOP_RUN, (int)shoal_worker_index(w),
                   0);
}

static void turn(shoal_worker *w, shoal__task *t) {
  shoal_actor *a = (shoal_actor *)(void *)t;
  shoal_actors *sys = a->sys;
  uint64_t gen = a->gen, seen = 0, n = 0, flushed = 0;
  uint64_t budget = sys->cfg.batch_size;
  uint64_t hsum = 0, hmax = 0, t0, t1;
  int closing = 0, again = 0, streaming = 0, stopping = 0;
  const int tracing = sys->trace != NULL;
  shoal_actor *outer = tls_actor;
  _Atomic uint64_t *beat = NULL;
  uint64_t beat_prev = 0, beat_seq = 0;
  /* acquire: pairs with unregister's CAS. */
  if (shoal__mpsc_gen(
          atomic_load_explicit(&a->box.tail, memory_order_acquire)) !=
      (gen & SHOAL__MPSC_GEN_MASK)) {
    finish(a);
    return;
  }
  if (sys->cfg.max_per_tick != 0 &&
      !atomic_load_explicit(&sys->closing, memory_order_relaxed)) {
    uint64_t tick = atomic_load_explicit(&sys->tick, memory_order_relaxed);
    if (a->tick_seen != tick) {
      a->tick_seen = tick;
      a->tick_count = 0;
    }
    if (a->tick_count >= sys->cfg.max_per_tick) {
      defer(a);
      return;
    }
    if (sys->cfg.max_per_tick - a->tick_count < budget)
      budget = sys->cfg.max_per_tick - a->tick_count;
  }
  note_depth(a, shoal__mailbox_depth(&a->box));
  beat = beat_of(sys, w, &beat_prev);
  beat_seq = beat_prev & ~(uint64_t)UINT32_MAX;
  tls_actor = a;
  t0 = shoal__fast_ns();
  /* a failure marked from outside, or escalated here */
  if (atomic_load_explicit(&a->fail, memory_order_acquire) != 0 &&
      shoal__supervise(a))
    stopping = 1;
  for (;;) {
    shoal_msg *m;
    while (!stopping && n < budget &&
           (m = shoal__mailbox_peek(&a->box)) != NULL) {
      uint64_t sends = tls_sends;
      /* What piled up while the first one ran (reading the tail costs the
       * senders a cache miss: a few times a turn, not per message). */
      if (n == 1)
        note_depth(a, shoal__mailbox_depth(&a->box));
      if (beat != NULL) { /* the watch's heartbeat: one store */
        beat_seq += (uint64_t)1 << 32;
        atomic_store_explicit(beat, beat_seq | (a->slot + 1u),
                              memory_order_relaxed);
      }
      if (SHOAL__UNLIKELY(tracing) && m->trace != 0)
        trace_run(a, m, w);
      a->handler(a, a->state, m);
      if (tls_sends != sends)
        streaming = 0;
      shoal__mailbox_release(&a->box);
      t1 = shoal__fast_ns();
      hsum += t1 - t0;
      if (t1 - t0 > hmax)
        hmax = t1 - t0;
      t0 = t1;
      n++;
      if (atomic_load_explicit(&a->fail, memory_order_relaxed) != 0 &&
          shoal__supervise(a))
        stopping = 1; /* unregistered: the rest is finish's */
    }
    if (stopping) {
      closing = 1; /* finished below, its figures first */
      break;
    }
    if (n == budget) {
      note_depth(a, shoal__mailbox_depth(&a->box));
      again = 1; /* yield: others get their turn */
      break;
    }
    if (linger(w, a, &streaming)) {
      t0 = shoal__fast_ns();
      continue;
    }
    /* Once idle, the record may be unregistered and reused at once:
     * everything the turn writes to it is written before. */
    flush(a, n - flushed, &hsum, hmax);
    flushed = n;
    /* Before it may go idle: from then on the system may be destroyed
     * under this turn, beats and all. */
    beat_end(beat, &beat_seq, beat_prev);
    if (shoal__mailbox_try_idle(&a->box, gen, &seen))
      break; /* the next push schedules it again */
    if (shoal__mpsc_gen(seen) != (gen & SHOAL__MPSC_GEN_MASK)) {
      closing = 1;
      break;
    }
    if (shoal__mailbox_peek(&a->box) == NULL) {
      again = 1; /* a push is unfinished: come back after others */
      break;
    }
  }
  tls_actor = outer;
  if (!closing && !again)
    return; /* idle: the record (and maybe the system) is no longer ours */
  beat_end(beat, &beat_seq, beat_prev);
  flush(a, n - flushed, &hsum, hmax);
  if (closing) {
    finish(a);
  } else if (again) {
    /* Behind the work already waiting: through an inbox, which is FIFO
     * (the deque would hand it straight back). Worker 0 may leave the
     * runtime at any time, so an actor free to move goes elsewhere. */
    int home = a->home;
    if (home < 0)
      home = shoal_worker_index(w) == 0 ? SHOAL__ELSEWHERE
                                        : (int)shoal_worker_index(w);
    shoal__submit(sys->rt, &a->task, home, 0);
  }
}

/* ------------------------------------------------------------------------ */
/* Sending                                                                  */
/* ------------------------------------------------------------------------ */

int shoal__actor_push(shoal_actor *a, uint64_t gen, shoal_msg *m, int quiet) {
  int rc;
  tls_sends++;
  rc = shoal__mailbox_try_push(&a->box, gen, m);
  if (rc == SHOAL__MPSC_WOKE) {
    schedule(a, quiet);
    return SHOAL_OK;
  }
  if (rc == SHOAL_EAGAIN)
    atomic_fetch_add_explicit(&a->rejected, 1, memory_order_relaxed);
  return rc;
}

shoal_actor *shoal__resolve(shoal_actors *sys, uint64_t id, uint64_t *gen) {
  for (int tries = 0; tries < 2; tries++) {
    shoal_actor *a = shoal__router_find(sys, id);
    uint64_t g;
    if (a == NULL)
      return NULL;
    /* acquire: pairs with register's release of the tail word, so that the
     * id read next is this registration's or a later one's. */
    g = shoal__mpsc_gen(
        atomic_load_explicit(&a->box.tail, memory_order_acquire));
    if ((g & 1) == 0 &&
        atomic_load_explicit(&a->id, memory_order_relaxed) == id) {
      *gen = g;
      return a;
    }
  }
  return NULL;
}

int shoal__send(shoal_actors *sys, uint64_t to, shoal_msg *m) {
  uint64_t gen = 0;
  shoal_actor *a = shoal__resolve(sys, to, &gen);
  int rc = SHOAL_ENOENT;
  m->to = to;
  m->time_ns = shoal__fast_ns();
  if (SHOAL__UNLIKELY(sys->trace != NULL))
    rc = shoal__trace_send(sys, a, gen, m); /* the one branch when off */
  else if (a != NULL)
    rc = shoal__actor_push(a, gen, m, 0);
  if (rc == SHOAL_ENOENT)
    atomic_fetch_add_explicit(&sys->routing_failures, 1, memory_order_relaxed);
  return rc;
}

int shoal_try_send(shoal_actors *sys, uint64_t to, const shoal_msg *m) {
  shoal_msg c;
  if (sys == NULL || m == NULL)
    return SHOAL_EINVAL;
  c = *m;
  return shoal__send(sys, to, &c);
}

int shoal_actor_try_send(shoal_actor *self, uint64_t to, const shoal_msg *m) {
  shoal_msg c;
  if (self == NULL || m == NULL)
    return SHOAL_EINVAL;
  c = *m;
  c.from = atomic_load_explicit(&self->id, memory_order_relaxed);
  return shoal__send(self->sys, to, &c);
}

static uint32_t next_corr(shoal_actor *self) {
  if (++self->corr_next == 0)
    self->corr_next = 1;
  return self->corr_next;
}

int shoal_actor_request(shoal_actor *self, uint64_t to, const shoal_msg *m,
                        uint32_t *corr) {
  shoal_msg c;
  int rc;
  if (self == NULL || m == NULL)
    return SHOAL_EINVAL;
  c = *m;
  c.from = atomic_load_explicit(&self->id, memory_order_relaxed);
  c.flags = (uint8_t)((c.flags & ~SHOAL_MSG_REPLY) | SHOAL_MSG_REQUEST);
  c.corr = next_corr(self);
  rc = shoal__send(self->sys, to, &c);
  if (rc == SHOAL_OK && corr != NULL)
    *corr = c.corr;
  return rc;
}

int shoal_actor_request_timeout(shoal_actor *self, uint64_t to,
                                const shoal_msg *m, unsigned timeout_ms,
                                uint32_t *corr) {
  uint32_t k;
  int rc;
  if (self == NULL || m == NULL || timeout_ms == 0)
    return SHOAL_EINVAL;
  if (self->sys->areqs == NULL)
    return SHOAL_EAGAIN; /* max_requests 0 */
  k = next_corr(self);
  rc = shoal__actor_request_timeout(
      self->sys, atomic_load_explicit(&self->id, memory_order_relaxed), k, to,
      m, timeout_ms);
  if (rc == SHOAL_OK && corr != NULL)
    *corr = k;
  return rc;
}

int shoal_actor_scatter(shoal_actor *self, const uint64_t *to, unsigned n,
                        const shoal_msg *m, uint32_t *corr, unsigned *sent) {
  shoal_msg c;
  unsigned ok = 0;
  if (sent != NULL)
    *sent = 0;
  if (self == NULL || m == NULL || (to == NULL && n != 0))
    return SHOAL_EINVAL;
  c = *m;
  c.from = atomic_load_explicit(&self->id, memory_order_relaxed);
  c.flags = (uint8_t)((c.flags & ~SHOAL_MSG_REPLY) | SHOAL_MSG_REQUEST);
  c.corr = next_corr(self);
  for (unsigned i = 0; i < n; i++) {
    shoal_msg d = c;
    if (shoal__send(self->sys, to[i], &d) == SHOAL_OK)
      ok++;
  }
  if (corr != NULL)
    *corr = c.corr;
  if (sent != NULL)
    *sent = ok;
  return SHOAL_OK;
}

int shoal_actor_reply(shoal_actor *self, const shoal_msg *req,
                      const shoal_msg *m) {
  shoal_msg c;
  if (self == NULL || req == NULL || m == NULL ||
      !(req->flags & SHOAL_MSG_REQUEST))
    return SHOAL_EINVAL;
  c = *m;
  c.from = atomic_load_explicit(&self->id, memory_order_relaxed);
  c.flags = (uint8_t)((c.flags & ~SHOAL_MSG_REQUEST) | SHOAL_MSG_REPLY);
  c.corr = req->corr;
  c.to = req->from;
  c.trace = req->trace;
  if (req->from & SHOAL__SINK_BIT)
    return shoal__sink_deliver(self->sys, &c);
  if (req->from & SHOAL__HOST_BIT) {
    if (self->sys->trace != NULL && c.trace != 0)
      shoal__trace_hop(self->sys, &c, c.to, SHOAL_HOP_SEND,
                       shoal__trace_worker(self->sys), 0);
    return shoal__deliver_reply(self->sys, &c);
  }
  return shoal__send(self->sys, req->from, &c);
}

uint64_t shoal_actor_id(const shoal_actor *self) {
  return self != NULL ? atomic_load_explicit(&self->id, memory_order_relaxed)
                      : 0;
}

shoal_actors *shoal_actor_system(const shoal_actor *self) {
  return self != NULL ? self->sys : NULL;
}

/* ------------------------------------------------------------------------ */
/* Registration                                                             */
/* ------------------------------------------------------------------------ */

/* Gives a a mailbox ring of cap cells. The old ring is retired, not
 * freed, until the system goes: a sender that resolved the previous
 * registration may still read a cell's sequence before its generation
 * check fails. Under sys->mu, while the record is free. */
static int new_cells(shoal_actors *sys, shoal_actor *a, uint64_t cap) {
  shoal__mailbox_ring *old =
      atomic_load_explicit(&a->box.ring, memory_order_relaxed);
  shoal__mailbox_ring *fresh;
  if (old != NULL && sys->nretired == sys->cap_retired) {
    size_t c = sys->cap_retired != 0 ? 2 * sys->cap_retired : 16;
    void **r = shoal__realloc(sys->retired, c * sizeof *r);
    if (r == NULL)
      return SHOAL_ENOMEM;
    sys->retired = r;
    sys->cap_retired = c;
  }
  if ((fresh = shoal__mailbox_ring_new(cap)) == NULL)
    return SHOAL_ENOMEM;
  if (old != NULL)
    sys->retired[sys->nretired++] = old;
  /* The fresh ring's sequences start at 0: so do the indices. The tail
   * keeps its closed generation until register publishes the new one. */
  shoal__mailbox_reset(&a->box, a->gen + 1, 0);
  /* release: the ring's initial sequences before a reader uses it. */
  atomic_store_explicit(&a->box.ring, fresh, memory_order_release);
  a->cap_alloc = cap;
  return SHOAL_OK;
}


int shoal_actor_register(shoal_actors *sys, uint64_t id,
                         const shoal_actor_opts *user) {
  shoal_actor_opts o;
  shoal_actor *a;
  void *slot;
  uint64_t cap, start, gen;
  int rc;
  if (sys == NULL || user == NULL || !shoal__valid_id(id))
    return SHOAL_EINVAL;
  shoal_actor_opts_defaults(&o);
  shoal__copy_opts(&o, sizeof o, user, user->struct_size);
  if (o.handler == NULL || o.home < -1 ||
      (o.home >= 0 && (unsigned)o.home >= shoal_runtime_workers_max(sys->rt)) ||
      (o.full != SHOAL_FULL_BACKPRESSURE && o.full != SHOAL_FULL_DROP) ||
      o.queue_size > (1u << 24) || (unsigned)o.on_failure > 2u ||
      o.parent == id || (o.parent != 0 && !shoal__valid_id(o.parent)))
    return SHOAL_EINVAL;
  if (atomic_load_explicit(&sys->closing, memory_order_acquire))
    return SHOAL_ESTATE;
  pthread_mutex_lock(&sys->mu);
  if (shoal__router_find(sys, id) != NULL) {
    pthread_mutex_unlock(&sys->mu);
    return SHOAL_EEXIST;
  }
  if (shoal__mpmc_try_pop(&sys->free_slots, &slot) != SHOAL_OK) {
    pthread_mutex_unlock(&sys->mu);
    return SHOAL_ELIMIT;
  }
  a = &sys->recs[(uintptr_t)slot - 1];
  cap = shoal__pow2_at_least(o.queue_size != 0 ? o.queue_size
                                               : sys->cfg.queue_size);
  gen = a->gen + 2;
  if (a->cap_alloc != cap && (rc = new_cells(sys, a, cap)) != SHOAL_OK) {
    shoal__mpmc_push_held(&sys->free_slots, slot);
    pthread_mutex_unlock(&sys->mu);
    return rc;
  }
  atomic_store_explicit(&a->box.policy, (int)o.full, memory_order_relaxed);
  atomic_store_explicit(&a->box.dropped, 0, memory_order_relaxed);
  a->handler = o.handler;
  a->state = o.state;
  a->drop = o.drop;
  a->stop = o.stop;
  a->home = o.home;
  a->task.fn = turn;
  a->task.kind = o.home >= 0 ? SHOAL__KIND_PINNED : SHOAL__KIND_CLOSURE;
  memset(a->name, 0, sizeof a->name);
  if (o.name != NULL)
    strncpy(a->name, o.name, sizeof a->name - 1);
  a->init = o.init;
  a->on_failure = (int)o.on_failure;
  a->max_restarts = o.max_restarts;
  a->window_ms = o.restart_window_ms;
  a->parent = o.parent;
  a->window_start_ns = 0;
  a->window_restarts = 0;
  a->fail_stop = 0;
  atomic_store_explicit(&a->fail, 0, memory_order_relaxed);
  atomic_store_explicit(&a->failures, 0, memory_order_relaxed);
  atomic_store_explicit(&a->restarts, 0, memory_order_relaxed);
  atomic_store_explicit(&a->stuck, 0, memory_order_relaxed);
  atomic_store_explicit(&a->stalls, 0, memory_order_relaxed);
  if (a->init != NULL)
    a->init(a, a->state); /* before the id is published: no message yet */
  a->corr_next = 0;
  a->tick_seen = 0;
  a->tick_count = 0;
  a->warned = 0;
  atomic_store_explicit(&a->processed, 0, memory_order_relaxed);
  atomic_store_explicit(&a->max_depth, 0, memory_order_relaxed);
  atomic_store_explicit(&a->handler_ns, 0, memory_order_relaxed);
  atomic_store_explicit(&a->handler_max_ns, 0, memory_order_relaxed);
  atomic_store_explicit(&a->discarded, 0, memory_order_relaxed);
  atomic_store_explicit(&a->rejected, 0, memory_order_relaxed);
  a->gen = gen;
  atomic_store_explicit(&a->id, id, memory_order_relaxed);
  start = shoal__mpsc_index(
      atomic_load_explicit(&a->box.tail, memory_order_relaxed));
  atomic_fetch_add_explicit(&sys->live, 1, memory_order_relaxed);
  /* release: the record's fields and id before the open generation that
   * senders acquire. The mailbox starts idle: the first push schedules. */
  atomic_store_explicit(&a->box.tail, shoal__mpsc_word(gen, start, 1),
                        memory_order_release);
  rc = shoal__router_insert(sys, id, a->slot);
  pthread_mutex_unlock(&sys->mu);
  return rc;
}

/* Closes a's mailbox (the odd generation after its own); finishes it here
 * when it was idle, else its scheduled turn will. */
static void close_actor(shoal_actor *a) {
  uint64_t w = atomic_load_explicit(&a->box.tail, memory_order_relaxed);
  /* acq_rel: the removal from the router before the closed generation;
   * acquire the pushes before it when we finish the actor here. */
  while (!atomic_compare_exchange_weak_explicit(
      &a->box.tail, &w,
      shoal__mpsc_word(a->gen + 1, shoal__mpsc_index(w), w & 1),
      memory_order_acq_rel, memory_order_relaxed))
    ;
  if (w & 1)
    finish(a);
}

int shoal_actor_unregister(shoal_actors *sys, uint64_t id) {
  shoal_actor *a;
  if (sys == NULL || !shoal__valid_id(id))
    return SHOAL_EINVAL;
  pthread_mutex_lock(&sys->mu);
  a = shoal__router_find(sys, id);
  if (a == NULL) {
    pthread_mutex_unlock(&sys->mu);
    return SHOAL_ENOENT;
  }
  shoal__router_remove(sys, id);
  /* Closed under the lock: a register of the same id that follows finds
   * this record already refusing pushes. */
  close_actor(a);
  pthread_mutex_unlock(&sys->mu);
  return SHOAL_OK;
}

/* ------------------------------------------------------------------------ */
/* The system                                                               */
/* ------------------------------------------------------------------------ */

/* Frees what create allocated (the records' mailboxes excepted). */
static void system_free(shoal_actors *sys) {
  for (size_t i = 0; i < sys->nretired; i++)
    shoal__free(sys->retired[i]);
  shoal__free(sys->retired);
  shoal__waiters_destroy(sys);
  shoal__requests_destroy(sys);
  shoal__trace_free(sys);
  shoal__mpmc_destroy(&sys->free_slots);
  shoal__free(sys->recs);
  shoal__idtable_destroy(&sys->table);
  pthread_mutex_destroy(&sys->mu);
  shoal__free(sys);
}

int shoal__actors_config_check(const shoal_actors_config *c) {
  if (c->max_actors < 1 || c->max_actors > (1u << 20) || c->queue_size < 1 ||
      c->queue_size > (1u << 20) || c->batch_size < 1 ||
      c->batch_size > 65536 || c->host_waiters > (1u << 20) ||
      c->max_requests > (1u << 20) || c->stuck_ms > 3600000u ||
      c->stall_ms > 3600000u || c->trace_ring > (1u << 24) ||
      c->trace_every > (1u << 30))
    return SHOAL_EINVAL;
  return SHOAL_OK;
}

int shoal_actors_create(shoal_actors **out, shoal_runtime *rt,
                        const shoal_actors_config *user) {
  shoal_actors *sys;
  int rc;
  if (out == NULL)
    return SHOAL_EINVAL;
  *out = NULL;
  if (rt == NULL || user == NULL)
    return SHOAL_EINVAL;
  sys = shoal__aligned_alloc(SHOAL__FALSE_SHARING, sizeof *sys);
  if (sys == NULL)
    return SHOAL_ENOMEM;
  memset(sys, 0, sizeof *sys);
  shoal_actors_config_defaults(&sys->cfg);
  shoal__copy_opts(&sys->cfg, sizeof sys->cfg, user, user->struct_size);
  sys->cfg.struct_size = sizeof sys->cfg;
  if (shoal__actors_config_check(&sys->cfg) != SHOAL_OK) {
    shoal__free(sys);
    return SHOAL_EINVAL;
  }
  shoal__fast_clock_init();
  sys->rt = rt;
  pthread_mutex_init(&sys->mu, NULL);
  shoal__inbox_init(&sys->deferred, &sys->deferred_stub);
  sys->recs = shoal__aligned_alloc(SHOAL__FALSE_SHARING,
                                   sys->cfg.max_actors * sizeof *sys->recs);
  /* twice as many entries as records: a free entry always exists */
  rc = shoal__idtable_init(&sys->table, 2 * (uint64_t)sys->cfg.max_actors);
  if (rc == SHOAL_OK && sys->recs == NULL)
    rc = SHOAL_ENOMEM;
  if (rc == SHOAL_OK)
    rc = shoal__mpmc_init(&sys->free_slots, sys->cfg.max_actors);
  if (rc == SHOAL_OK)
    rc = shoal__waiters_init(sys);
  if (rc == SHOAL_OK)
    rc = shoal__requests_init(sys);
  if (rc == SHOAL_OK)
    rc = shoal__trace_init(sys);
  if (rc != SHOAL_OK) {
    system_free(sys);
    return rc;
  }
  memset(sys->recs, 0, sys->cfg.max_actors * sizeof *sys->recs);
  for (unsigned i = 0; i < sys->cfg.max_actors; i++) {
    shoal_actor *a = &sys->recs[i];
    a->sys = sys;
    a->slot = i;
    a->gen = 0;
    /* No mailbox yet: the first registration allocates one, which the
     * record keeps for the next. The closed generation refuses pushes. */
    atomic_init(&a->box.tail, shoal__mpsc_word(1, 0, 0));
    atomic_init(&a->id, 0);
    shoal__mpmc_push_held(&sys->free_slots, (void *)((uintptr_t)i + 1));
  }
  if ((rc = shoal__watch_start(sys)) != SHOAL_OK) {
    system_free(sys);
    return rc;
  }
  *out = sys;
  return SHOAL_OK;
}

void shoal_actors_tick(shoal_actors *sys) {
  shoal__task *t;
  if (sys == NULL)
    return;
  atomic_fetch_add_explicit(&sys->tick, 1, memory_order_relaxed);
  shoal__requests_tick(sys);
  while ((t = shoal__task_of(shoal__inbox_pop(&sys->deferred))) != NULL)
    schedule((shoal_actor *)(void *)t, 0);
}

static int all_finished(void *arg) {
  shoal_actors *sys = arg;
  /* acquire: pairs with finish's decrement. */
  return atomic_load_explicit(&sys->live, memory_order_acquire) == 0;
}

int shoal_actors_destroy(shoal_actors *sys) {
  if (sys == NULL)
    return SHOAL_OK;
  if (tls_actor != NULL && tls_actor->sys == sys)
    return SHOAL_ESTATE;
  if (shoal__sinks_busy(sys))
    return SHOAL_ESTATE; /* a session manager is still attached */
  atomic_store_explicit(&sys->closing, 1, memory_order_release);
  for (unsigned i = 0; i < sys->cfg.max_actors; i++) {
    uint64_t id = atomic_load_explicit(&sys->recs[i].id, memory_order_relaxed);
    if (id != 0)
      (void)shoal_actor_unregister(sys, id);
  }
  /* Deferred actors finish in a turn of their own. */
  shoal_actors_tick(sys);
  (void)shoal__wait_until(sys->rt, all_finished, sys, 0);
  shoal__watch_stop(sys);
  for (unsigned i = 0; i < sys->cfg.max_actors; i++)
    shoal__mailbox_destroy(&sys->recs[i].box);
  system_free(sys);
  return SHOAL_OK;
}
