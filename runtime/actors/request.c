/* request.c — replies that do not go to a mailbox: the reply sinks (a
 * session manager's requests, sessions/requests.c), and the actors' own
 * requests with a timeout (shoal_actor_request_timeout). A request with a
 * timeout is a one-shot timer in the system's wheel (runtime/sched/
 * wheel.h) whose handle travels as the request's reply address: the reply
 * claims the timer (one CAS) and the timeout fires it, so exactly one of
 * them reaches the requester. The wheel runs in shoal_actors_tick, in
 * milliseconds since the system's creation. */
#include <string.h>

#include "runtime/actors/actor.h"

#define TAKE_MAX 65536u

/* ---- sinks -------------------------------------------------------------- */

uint64_t shoal__sink_address(unsigned k, uint64_t tag) {
  return SHOAL__HOST_BIT | SHOAL__SINK_BIT |
         (uint64_t)(k & (SHOAL__SINKS - 1)) << SHOAL__SINK_TAG_BITS |
         (tag & ((UINT64_C(1) << SHOAL__SINK_TAG_BITS) - 1));
}

int shoal__sink_add(shoal_actors *sys, shoal__sink_fn fn, void *ctx,
                    unsigned *k) {
  int rc = SHOAL_ELIMIT;
  pthread_mutex_lock(&sys->mu);
  for (unsigned i = 1; i < SHOAL__SINKS; i++) {
    shoal__sink *s = &sys->sinks[i];
    if (atomic_load_explicit(&s->fn, memory_order_relaxed) == NULL) {
      s->ctx = ctx;
      /* release: ctx before a delivery that finds fn */
      atomic_store_explicit(&s->fn, fn, memory_order_release);
      *k = i;
      rc = SHOAL_OK;
      break;
    }
  }
  pthread_mutex_unlock(&sys->mu);
  return rc;
}

void shoal__sink_remove(shoal_actors *sys, unsigned k) {
  shoal__sink *s = &sys->sinks[k];
  /* seq_cst: the other half of deliver's Dekker pair */
  atomic_store_explicit(&s->fn, NULL, memory_order_seq_cst);
  while (atomic_load_explicit(&s->inflight, memory_order_seq_cst) != 0)
    shoal__cpu_relax(); /* a delivery in progress: a few stores */
}

int shoal__sinks_busy(shoal_actors *sys) {
  for (unsigned i = 1; i < SHOAL__SINKS; i++)
    if (atomic_load_explicit(&sys->sinks[i].fn, memory_order_relaxed) !=
        NULL)
      return 1;
  return 0;
}

static int own_reply(shoal_actors *sys, uint64_t tag, shoal_msg *m);

int shoal__sink_deliver(shoal_actors *sys, shoal_msg *m) {
  unsigned k = (unsigned)(m->to >> SHOAL__SINK_TAG_BITS) & (SHOAL__SINKS - 1);
  uint64_t tag = m->to & ((UINT64_C(1) << SHOAL__SINK_TAG_BITS) - 1);
  shoal__sink *s = &sys->sinks[k];
  shoal__sink_fn fn;
  int rc;
  if (k == 0)
    return own_reply(sys, tag, m);
  atomic_fetch_add_explicit(&s->inflight, 1, memory_order_seq_cst);
  /* seq_cst: after the announcement, so remove sees one or the other */
  fn = atomic_load_explicit(&s->fn, memory_order_seq_cst);
  if (fn != NULL) {
    rc = fn(s->ctx, tag, m);
  } else {
    atomic_fetch_add_explicit(&sys->late_replies, 1, memory_order_relaxed);
    rc = SHOAL_OK;
  }
  /* release: the delivery's reads of ctx before remove returns */
  atomic_fetch_sub_explicit(&s->inflight, 1, memory_order_release);
  return rc;
}

/* ---- the actors' requests with a timeout -------------------------------- */

static shoal__wentry *areq_at(void *ctx, uint32_t i) {
  return &((shoal_actors *)ctx)->areqs[i].w;
}

static shoal__areq *areq_of(shoal__wentry *e) {
  return (shoal__areq *)(void *)((char *)e - offsetof(shoal__areq, w));
}

/* The timeout: the request as sent, marked, back to its requester from
 * the actor that did not answer. */
static int areq_fire(void *ctx, shoal__wentry *e) {
  shoal_actors *sys = ctx;
  shoal__areq *r = areq_of(e);
  shoal_msg c = r->req;
  c.from = r->req.to;
  /* the pointer's owner is the addressee: only its value comes back */
  c.flags = SHOAL_MSG_REPLY | SHOAL_MSG_TIMEOUT;
  if (shoal__send(sys, r->requester, &c) == SHOAL_OK)
    atomic_fetch_add_explicit(&sys->timeouts, 1, memory_order_relaxed);
  else
    atomic_fetch_add_explicit(&sys->req_dropped, 1, memory_order_relaxed);
  return 0;
}

static void areq_done(void *ctx, shoal__wentry *e) {
  shoal_actors *sys = ctx;
  shoal__mpmc_push_held(&sys->free_areqs, (void *)(uintptr_t)(e->index + 1));
}

static const shoal__wheel_ops areq_ops = {areq_at, areq_fire, areq_done};

int shoal__requests_init(shoal_actors *sys) {
  unsigned n = sys->cfg.max_requests;
  int rc;
  sys->t0_ns = shoal__now_ns();
  shoal__wheel_init(&sys->wheel, &areq_ops, sys);
  if (n == 0)
    return SHOAL_OK;
  sys->areqs = shoal__aligned_alloc(SHOAL__FALSE_SHARING,
                                    n * sizeof *sys->areqs);
  if (sys->areqs == NULL)
    return SHOAL_ENOMEM;
  memset(sys->areqs, 0, n * sizeof *sys->areqs);
  if ((rc = shoal__mpmc_init(&sys->free_areqs, n)) != SHOAL_OK)
    return rc;
  for (unsigned i = 0; i < n; i++) {
    sys->areqs[i].w.index = i;
    shoal__mpmc_push_held(&sys->free_areqs, (void *)(uintptr_t)(i + 1));
  }
  return SHOAL_OK;
}

void shoal__requests_tick(shoal_actors *sys) {
  if (sys->areqs != NULL)
    shoal__wheel_tick(&sys->wheel, (shoal__now_ns() - sys->t0_ns) / 1000000u,
                      TAKE_MAX);
}

static void areq_count_dropped(void *ctx, shoal__wentry *e) {
  shoal_actors *sys = ctx;
  uint32_t st = atomic_load_explicit(&e->state, memory_order_relaxed);
  if ((st & 3u) == 1u) /* still waiting: never answered */
    atomic_fetch_add_explicit(&sys->req_dropped, 1, memory_order_relaxed);
  areq_done(ctx, e);
}

void shoal__requests_destroy(shoal_actors *sys) {
  if (sys->areqs != NULL) {
    static const shoal__wheel_ops last = {areq_at, areq_fire,
                                          areq_count_dropped};
    sys->wheel.ops = &last;
    shoal__wheel_clear(&sys->wheel);
    shoal__mpmc_destroy(&sys->free_areqs);
  }
  shoal__free(sys->areqs);
  sys->areqs = NULL;
}

static int own_reply(shoal_actors *sys, uint64_t tag, shoal_msg *m) {
  uint64_t h = shoal__wheel_untag(tag);
  uint32_t i = (uint32_t)h, gen = (uint32_t)(h >> 32);
  shoal__areq *r;
  uint64_t requester;
  if (i == 0 || i > sys->cfg.max_requests) {
    atomic_fetch_add_explicit(&sys->routing_failures, 1, memory_order_relaxed);
    return SHOAL_ENOENT;
  }
  r = &sys->areqs[i - 1];
  if (!shoal__wheel_claim(&r->w, gen)) {
    atomic_fetch_add_explicit(&sys->late_replies, 1, memory_order_relaxed);
    return SHOAL_OK; /* timed out first: counted, not an error */
  }
  requester = r->requester;
  shoal__wheel_unclaim(&r->w, gen, 0);
  if (shoal__send(sys, requester, m) == SHOAL_OK)
    atomic_fetch_add_explicit(&sys->replies, 1, memory_order_relaxed);
  else
    atomic_fetch_add_explicit(&sys->req_dropped, 1, memory_order_relaxed);
  return SHOAL_OK;
}

int shoal__actor_request_timeout(shoal_actors *sys, uint64_t self_id,
                                 uint32_t corr, uint64_t to,
                                 const shoal_msg *m, unsigned timeout_ms) {
  shoal__areq *r;
  shoal_msg c;
  void *x;
  uint64_t handle;
  int rc;
  if (shoal__mpmc_try_pop(&sys->free_areqs, &x) != SHOAL_OK)
    return SHOAL_EAGAIN;
  r = &sys->areqs[(uintptr_t)x - 1];
  r->requester = self_id;
  c = *m;
  c.flags = (uint8_t)((c.flags & ~(SHOAL_MSG_REPLY | SHOAL_MSG_TIMEOUT)) |
                      SHOAL_MSG_REQUEST);
  c.corr = corr;
  c.to = to;
  c.time_ns = shoal__fast_ns();
  r->req = c;
  atomic_fetch_add_explicit(&sys->requests, 1, memory_order_relaxed);
  /* armed before it is sent: a reply always finds it */
  handle = shoal__wheel_arm_at(
      &sys->wheel, &r->w,
      (shoal__now_ns() - sys->t0_ns) / 1000000u + timeout_ms + 1, 0);
  c.from = shoal__sink_address(0, shoal__wheel_tag(handle));
  if ((rc = shoal__send(sys, to, &c)) != SHOAL_OK) {
    if (shoal__wheel_cancel(&r->w, (uint32_t)(handle >> 32))) {
      atomic_fetch_sub_explicit(&sys->requests, 1, memory_order_relaxed);
      return rc;
    }
    /* its timeout came first (a tick ran meanwhile): answered by that */
  }
  return SHOAL_OK;
}
