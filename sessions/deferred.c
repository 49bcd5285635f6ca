/* deferred.c — the deferred queues: packets a session's updater did not
 * run in place wait, in the session's send order, on its own queue (a
 * list through the packets' links, appended to by shoal__pk_take); the
 * sessions that have one form a ring, which shoal_mgr_drain_deferred
 * walks on the host's main thread, one packet per session per turn, at
 * most DeferredPerSession per session per call. Synchronization:
 * packets.c's table. */
#include "runtime/os.h"
#include "sessions/mgr.h"

/* The drain reads the clock once per this many packets. */
#define DRAIN_CLOCK_EVERY 32u

/* ------------------------------------------------------------------------ */
/* The ring of sessions with deferred packets                               */
/* ------------------------------------------------------------------------ */

static void ring_insert(shoal_mgr *mgr, uint32_t index) {
  shoal__session *s = shoal__mgr_rec(mgr, index);
  if (mgr->pk.ring == 0) {
    s->r_prev = s->r_next = index + 1;
    mgr->pk.ring = index + 1;
  } else {
    /* Before the cursor: the last to come round. */
    shoal__session *at = shoal__mgr_rec(mgr, mgr->pk.ring - 1);
    shoal__session *prev = shoal__mgr_rec(mgr, at->r_prev - 1);
    s->r_next = mgr->pk.ring;
    s->r_prev = at->r_prev;
    prev->r_next = index + 1;
    at->r_prev = index + 1;
  }
  mgr->pk.ring_n++;
}

static void ring_remove(shoal_mgr *mgr, uint32_t index) {
  shoal__session *s = shoal__mgr_rec(mgr, index);
  if (s->r_next == index + 1) {
    mgr->pk.ring = 0;
  } else {
    shoal__mgr_rec(mgr, s->r_prev - 1)->r_next = s->r_next;
    shoal__mgr_rec(mgr, s->r_next - 1)->r_prev = s->r_prev;
    if (mgr->pk.ring == index + 1)
      mgr->pk.ring = s->r_next;
  }
  s->r_prev = s->r_next = 0;
  mgr->pk.ring_n--;
}

void shoal__deferred_tick_end(shoal_mgr *mgr) {
  unsigned nw = shoal_runtime_workers_max(mgr->rt);
  for (unsigned w = 0; w < nw; w++) {
    shoal__mgr_sample *smp = &mgr->samples[w];
    uint32_t list = smp->new_deferred;
    smp->new_deferred = 0;
    while (list != 0) {
      shoal__session *s = shoal__mgr_rec(mgr, list - 1);
      uint32_t next = s->w_next;
      ring_insert(mgr, list - 1);
      list = next;
    }
    mgr->pk.deferred_now += smp->pk.deferred;
    smp->pk.deferred = 0;
  }
  if (mgr->pk.deferred_now > mgr->pk.deferred_max)
    mgr->pk.deferred_max = mgr->pk.deferred_now;
  /* The depth alarm: once per crossing of DeferredDepthWarn, re-armed
   * when a drain brings the queue under half of it. */
  if (mgr->cfg.deferred_warn != 0 && !mgr->pk.alarm_on &&
      mgr->pk.deferred_now >= mgr->cfg.deferred_warn) {
    mgr->pk.alarm_on = 1;
    mgr->pk.alarms++;
    shoal__log(mgr->cfg.log, mgr->cfg.log_user, SHOAL_LOG_WARN,
               "deferred queue: %llu packets wait for the main thread "
               "(SessionMgr.DeferredDepthWarn %u); is "
               "shoal_mgr_drain_deferred called every tick, with budget "
               "enough?",
               (unsigned long long)mgr->pk.deferred_now,
               mgr->cfg.deferred_warn);
  }
}

void shoal__deferred_discard(shoal_mgr *mgr, shoal__session *s) {
  shoal__ends done;
  shoal__pkt *p = s->d_head;
  shoal__ends_init(&done);
  if (p != NULL)
    ring_remove(mgr, s->self);
  while (p != NULL) {
    shoal__node *next = atomic_load_explicit(&p->link.next,
                                             memory_order_relaxed);
    shoal__pkt_drop(mgr, &done, p,
                    atomic_load_explicit(&s->id, memory_order_relaxed));
    p = next != NULL ? shoal__pkt_of(next) : NULL;
  }
  shoal__ends_flush(mgr, &done);
  uint32_t nd = atomic_load_explicit(&s->ndeferred, memory_order_relaxed);
  mgr->pk.mu_dropped += nd;
  mgr->pk.deferred_now -= nd;
  s->d_head = s->d_tail = NULL;
  atomic_store_explicit(&s->ndeferred, 0, memory_order_relaxed);
}

void shoal__deferred_take(shoal_mgr *mgr, shoal__session *s, shoal__out *o) {
  shoal__pkt *p = s->d_head;
  uint32_t nd = atomic_load_explicit(&s->ndeferred, memory_order_relaxed);
  if (p != NULL)
    ring_remove(mgr, s->self);
  while (p != NULL) {
    shoal__node *next = atomic_load_explicit(&p->link.next,
                                             memory_order_relaxed);
    shoal__pk_held_add(mgr, o, p);
    p = next != NULL ? shoal__pkt_of(next) : NULL;
  }
  mgr->pk.deferred_now -= nd;
  s->d_head = s->d_tail = NULL;
  atomic_store_explicit(&s->ndeferred, 0, memory_order_relaxed);
}

/* ------------------------------------------------------------------------ */
/* The drain                                                                */
/* ------------------------------------------------------------------------ */

typedef struct drain_arg {
  size_t budget;
  uint64_t deadline_ns; /* 0: no time budget */
  long ran;
} drain_arg;

/* Holding the manager (shoal__mgr_hold): no tick runs, no slot moves, and
 * a release waits for the end, so a session's column slot and user
 * pointer hold still. */
static void drain(shoal_mgr *mgr, void *arg_) {
  drain_arg *a = arg_;
  shoal__cols *c = shoal__mgr_cols(mgr);
  shoal__ends done;
  const uint32_t cap = mgr->cfg.deferred_per_session;
  const shoal_mgr *prev = shoal__cb_enter(mgr);
  uint32_t stalled = 0, call = ++mgr->pk.drain_no;
  uint64_t now = 0;
  long ran = 0;
  shoal__ends_init(&done);
  while (mgr->pk.ring != 0 && (a->budget == 0 || (size_t)ran < a->budget) &&
         stalled < mgr->pk.ring_n &&
         (a->deadline_ns == 0 || ran == 0 ||
          shoal__fast_ns() < a->deadline_ns)) {
    uint32_t index = mgr->pk.ring - 1;
    shoal__session *s = shoal__mgr_rec(mgr, index);
    shoal__pkt *p = s->d_head;
    shoal__node *next;
    uint32_t slot;
    uint8_t cls;
    if (s->drain_no != call) {
      s->drain_no = call;
      s->drain_n = 0;
    }
    if (s->drain_n >= cap) { /* its share of this call is spent */
      stalled++;
      mgr->pk.ring = s->r_next;
      continue;
    }
    stalled = 0;
    next = atomic_load_explicit(&p->link.next, memory_order_relaxed);
    s->d_head = next != NULL ? shoal__pkt_of(next) : NULL;
    if (s->d_head != NULL)
      __builtin_prefetch(s->d_head);
    /* relaxed load and store: one writer at a time (the holder) */
    atomic_store_explicit(
        &s->ndeferred,
        atomic_load_explicit(&s->ndeferred, memory_order_relaxed) - 1,
        memory_order_relaxed);
    s->drain_n++;
    /* One packet per session per turn: round-robin. */
    if (s->d_head == NULL) {
      s->d_tail = NULL;
      ring_remove(mgr, index);
    } else {
      mgr->pk.ring = s->r_next;
    }
    if ((uint32_t)ran % DRAIN_CLOCK_EVERY == 0)
      now = shoal__fast_ns();
    cls = shoal__pk_classify(&mgr->pk, p->opcode);
    slot = atomic_load_explicit(&s->slot, memory_order_relaxed);
    shoal__pk_run(mgr, cls,
                  atomic_load_explicit(&s->id, memory_order_relaxed),
                  atomic_load_explicit(&c->user[slot], memory_order_relaxed),
                  p, now, &mgr->pk.main, &mgr->pk.main_wait,
                  &mgr->main_beat, SHOAL__CB_DEFERRED,
                  &mgr->pk.figs[shoal_runtime_workers_max(mgr->rt)], NULL);
    shoal__pkt_end(mgr, &mgr->pk.pool, &done, p);
    ran++;
  }
  shoal__cb_leave(prev);
  shoal__beat(&mgr->main_beat, SHOAL__CB_NONE, 0);
  shoal__ends_flush(mgr, &done);
  mgr->pk.deferred_now -= (uint64_t)ran;
  if (mgr->pk.deferred_now < mgr->cfg.deferred_warn / 2)
    mgr->pk.alarm_on = 0;
  mgr->pk.drain_calls++;
  mgr->pk.drained += (uint64_t)ran;
  mgr->pk.drained_last = (uint64_t)ran;
  a->ran = ran;
}

long shoal_mgr_drain_deferred(shoal_mgr *mgr, size_t budget,
                              size_t *remaining) {
  return shoal_mgr_drain_deferred_timed(mgr, budget, 0, remaining);
}

long shoal_mgr_drain_deferred_timed(shoal_mgr *mgr, size_t budget,
                                    uint64_t budget_us, size_t *remaining) {
  drain_arg a = {budget, 0, 0};
  int rc;
  if (mgr == NULL)
    return SHOAL_EINVAL;
  if (budget_us != 0)
    a.deadline_ns = shoal__fast_ns() + budget_us * 1000u;
  if ((rc = shoal__mgr_hold(mgr, drain, &a)) != SHOAL_OK)
    return rc;
  if (remaining != NULL) {
    pthread_mutex_lock(&mgr->mu);
    *remaining = (size_t)mgr->pk.deferred_now;
    pthread_mutex_unlock(&mgr->mu);
  }
  return a.ran;
}

