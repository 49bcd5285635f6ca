/* messaging.c — the messaging suite for shoal (and Concurrency Kit's
 * ck_ring when built with it): queue throughput and ping-pong
 * (queues.h), then the actor cases: ping-pong between two actors on
 * different workers through the router, send+process throughput,
 * broadcast cost per subscriber, and the wake-up latency of a parked
 * worker, reported apart from polling. */
#include <stdatomic.h>

#include "bench/queues.h"
#include "runtime/actors/mpsc.h"
#include "bench/spsc.h"
#include "shoal.h"
#ifdef SHOAL_BENCH_CK
#include <ck_ring.h>
#endif

/* ---- shoal's queues ----------------------------------------------------- */

SHOAL__SPSC_DEFINE(b_spsc, uint64_t)
SHOAL__MPSC_DEFINE(b_mpsc, uint64_t)

static b_spsc *spsc_new(size_t cap) {
  b_spsc *q = shoal__aligned_alloc(SHOAL__FALSE_SHARING, sizeof *q);
  b_spsc_init(q, cap);
  return q;
}
#define SPSC_PUSH(q, v) (b_spsc_try_push((q), (v)) == SHOAL_OK)
#define SPSC_POP(q, p) (b_spsc_try_pop((q), (p)) == SHOAL_OK)
MQ_DEFINE(shoal_spsc, b_spsc, spsc_new, SPSC_PUSH, SPSC_POP)

static b_mpsc *mpsc_new(size_t cap) {
  b_mpsc *q = shoal__aligned_alloc(SHOAL__FALSE_SHARING, sizeof *q);
  b_mpsc_init(q, cap, SHOAL__MPSC_BACKPRESSURE, 0);
  return q;
}
static inline int mpsc_push(b_mpsc *q, uint64_t v) {
  return b_mpsc_try_push(q, 0, &v) >= 0;
}
#define MPSC_PUSH(q, v) mpsc_push((q), (v))
#define MPSC_POP(q, p) (b_mpsc_try_pop((q), (p)) == SHOAL_OK)
MQ_DEFINE(shoal_mpsc, b_mpsc, mpsc_new, MPSC_PUSH, MPSC_POP)

/* ---- ck_ring ------------------------------------------------------------ */

#ifdef SHOAL_BENCH_CK
typedef struct ckq {
  ck_ring_t ring;
  ck_ring_buffer_t *buf;
} ckq;
static ckq *ck_new(size_t cap) {
  ckq *q = calloc(1, sizeof *q);
  q->buf = calloc(cap, sizeof *q->buf);
  ck_ring_init(&q->ring, (unsigned)cap);
  return q;
}
static inline int ck_pop_u64(ckq *q, uint64_t *v, int mpsc) {
  void *x;
  int ok = mpsc ? ck_ring_dequeue_mpsc(&q->ring, q->buf, &x)
                : ck_ring_dequeue_spsc(&q->ring, q->buf, &x);
  if (ok)
    *v = (uint64_t)(uintptr_t)x;
  return ok;
}
#define CK_SPSC_PUSH(q, v)                                                     \
  ck_ring_enqueue_spsc(&(q)->ring, (q)->buf, (void *)(uintptr_t)(v))
#define CK_SPSC_POP(q, p) ck_pop_u64((q), (p), 0)
#define CK_MPSC_PUSH(q, v)                                                     \
  ck_ring_enqueue_mpsc(&(q)->ring, (q)->buf, (void *)(uintptr_t)(v))
#define CK_MPSC_POP(q, p) ck_pop_u64((q), (p), 1)
MQ_DEFINE(ck_spsc, ckq, ck_new, CK_SPSC_PUSH, CK_SPSC_POP)
MQ_DEFINE(ck_mpsc, ckq, ck_new, CK_MPSC_PUSH, CK_MPSC_POP)
#endif

/* ---- actors ------------------------------------------------------------- */

enum { M_START = 1, M_PING, M_PONG, M_GO, M_DATA };

typedef struct pp {
  uint64_t rounds, done_rounds, c0;
  double *rtt;
  shoal_msg req; /* the host's call, answered at the end */
} pp;

static void ping_fn(shoal_actor *self, void *state, const shoal_msg *m) {
  pp *p = state;
  shoal_msg out;
  memset(&out, 0, sizeof out);
  if (m->type == M_START)
    p->req = *m;
  if (m->type == M_PONG) {
    p->rtt[p->done_rounds++] = (double)(mq_tsc() - p->c0) * mq_tsc_ns_per_tick;
    if (p->done_rounds == p->rounds) {
      (void)shoal_actor_reply(self, &p->req, &out);
      return;
    }
  }
  out.type = M_PING;
  p->c0 = mq_tsc();
  (void)shoal_actor_try_send(self, 2, &out);
}

static void pong_fn(shoal_actor *self, void *state, const shoal_msg *m) {
  shoal_msg out;
  (void)state;
  (void)m;
  memset(&out, 0, sizeof out);
  out.type = M_PONG;
  (void)shoal_actor_try_send(self, 1, &out);
}

/* One send in this many traced (0: tracing off, the default). */
static unsigned trace_every;

static int make_actors(shoal_runtime **rt, shoal_actors **sys, unsigned workers) {
  shoal_runtime_config rc;
  shoal_actors_config ac;
  shoal_runtime_config_defaults(&rc);
  rc.workers = workers;
  if (shoal_runtime_create(rt, &rc) != SHOAL_OK)
    return -1;
  (void)shoal_runtime_bind_host(*rt); /* the host joins as worker 0 */
  shoal_actors_config_defaults(&ac);
  ac.queue_size = 4096;
  if (trace_every != 0) {
    ac.trace_ring = 65536;
    ac.trace_every = trace_every;
  }
  return shoal_actors_create(sys, *rt, &ac) == SHOAL_OK ? 0 : -1;
}

static int reg(shoal_actors *sys, uint64_t id, shoal_actor_fn fn, void *st,
               int home) {
  shoal_actor_opts o;
  shoal_actor_opts_defaults(&o);
  o.handler = fn;
  o.state = st;
  o.home = home;
  return shoal_actor_register(sys, id, &o);
}

/* Two pinned workers on two cores: actor 1 (a) homed on worker 1, actor 2
 * (b) on worker 0, which the host thread (bound to its PU) becomes while
 * it waits in shoal_call; the call's message of `type` starts actor 1,
 * which answers it when the case is over. */
static void run_pair(const char *name, shoal_actor_fn a, void *sa,
                     shoal_actor_fn b, void *sb, uint32_t type) {
  shoal_runtime *rt;
  shoal_actors *sys;
  shoal_msg go;
  memset(&go, 0, sizeof go);
  if (make_actors(&rt, &sys, 2) != 0 || reg(sys, 1, a, sa, 1) != 0 ||
      reg(sys, 2, b, sb, 0) != 0) {
    fprintf(stderr, "%s: set-up failed\n", name);
    exit(1);
  }
  go.type = type;
  if (shoal_call(sys, 1, &go, &go, 0) != SHOAL_OK)
    fprintf(stderr, "%s: call failed\n", name);
  shoal_actors_destroy(sys);
  shoal_runtime_destroy(rt);
}

/* "shoal", or "shoal-trace1%" with one send in 100 traced. */
static const char *impl(void) { return trace_every ? "shoal-trace1%" : "shoal"; }

static void actor_pingpong(int quick) {
  pp p;
  memset(&p, 0, sizeof p);
  p.rounds = quick ? 200000 : 1000000;
  p.rtt = malloc(p.rounds * sizeof(double));
  run_pair("actor_pingpong", ping_fn, &p, pong_fn, NULL, M_START);
  qsort(p.rtt, p.rounds, sizeof(double), mq_cmp);
  mq_row("actor_pingpong", impl(), 2, "rtt_p50_ns", p.rtt[p.rounds / 2], "ns");
  mq_row("actor_pingpong", impl(), 2, "rtt_p99_ns", p.rtt[p.rounds * 99 / 100],
         "ns");
  free(p.rtt);
}

/* The source's and the sink's counters on lines of their own: each side
 * writes its own per message. */
typedef struct thru {
  _Alignas(128) uint64_t n, sent;
  double t0;
  shoal_msg req;
  _Alignas(128) uint64_t got;
  double t1;
} thru;

/* Sends until the sink's mailbox is full, then yields with a message to
 * itself (a turn never spins on a full mailbox). */
static void source_fn(shoal_actor *self, void *state, const shoal_msg *m) {
  thru *t = state;
  shoal_msg d;
  memset(&d, 0, sizeof d);
  d.type = M_DATA;
  if (m->flags & SHOAL_MSG_REQUEST)
    t->req = *m;
  if (t->sent == 0)
    t->t0 = mq_now();
  while (t->sent < t->n && shoal_actor_try_send(self, 2, &d) == SHOAL_OK)
    t->sent++;
  if (t->sent < t->n) {
    d.type = M_GO;
    (void)shoal_actor_try_send(self, 1, &d);
  }
}

static void sink_fn(shoal_actor *self, void *state, const shoal_msg *m) {
  thru *t = state;
  (void)m;
  if (++t->got == t->n) {
    shoal_msg r;
    memset(&r, 0, sizeof r);
    t->t1 = mq_now();
    (void)shoal_actor_reply(self, &t->req, &r);
  }
}

static void actor_throughput(int quick) {
  thru t;
  memset(&t, 0, sizeof t);
  t.n = quick ? 20000000u : 100000000u;
  run_pair("actor_throughput", source_fn, &t, sink_fn, &t, M_GO);
  mq_row("actor_throughput", impl(), 2, "mmsgs_per_s",
         (double)t.n / (t.t1 - t.t0) / 1e6, "M/s");
}

typedef struct subc { /* a line each: subscribers run on different workers */
  _Alignas(128) _Atomic uint64_t got;
} subc;

static void sub_fn(shoal_actor *self, void *state, const shoal_msg *m) {
  subc *s = state;
  (void)self;
  (void)m;
  atomic_fetch_add_explicit(&s->got, 1, memory_order_relaxed);
}

/* The host publishes to 100 subscribers while the workers consume. */
static void broadcast(int quick) {
  enum { SUBS = 100 };
  shoal_runtime *rt;
  shoal_actors *sys;
  shoal_topic *topic;
  static subc s[SUBS];
  shoal_msg m;
  unsigned rounds = quick ? 20 : 100, per = 1000;
  double spent = 0, samples[100];
  memset(&m, 0, sizeof m);
  if (make_actors(&rt, &sys, 3) != 0 ||
      shoal_topic_create(sys, &topic, SUBS) != SHOAL_OK) {
    fprintf(stderr, "broadcast: set-up failed\n");
    exit(1);
  }
  for (unsigned i = 0; i < SUBS; i++) {
    atomic_init(&s[i].got, 0);
    reg(sys, 10 + i, sub_fn, &s[i], -1);
    shoal_topic_subscribe(topic, 10 + i);
  }
  for (unsigned r = 0; r < rounds; r++) {
    double t0 = mq_now();
    unsigned delivered = 0, sum = 0;
    for (unsigned k = 0; k < per; k++) {
      shoal_topic_publish(topic, &m, &delivered);
      sum += delivered;
    }
    samples[r] = (mq_now() - t0) * 1e9 / ((double)per * SUBS);
    spent += samples[r];
    if (sum != per * SUBS)
      fprintf(stderr, "broadcast: %u of %u delivered\n", sum, per * SUBS);
    for (unsigned i = 0; i < SUBS; i++) /* drained before the next round */
      while (atomic_load(&s[i].got) < (uint64_t)(r + 1) * per)
        usleep(100);
  }
  qsort(samples, rounds, sizeof samples[0], mq_cmp);
  mq_row("broadcast", "shoal", 2, "ns_per_subscriber", samples[rounds / 2], "ns");
  shoal_topic_destroy(topic);
  shoal_actors_destroy(sys);
  shoal_runtime_destroy(rt);
}

typedef struct wk {
  double lat[64];
  _Atomic unsigned n;
} wk;

static void wake_fn(shoal_actor *self, void *state, const shoal_msg *m) {
  wk *w = state;
  struct timespec ts;
  (void)self;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  w->lat[atomic_load(&w->n)] =
      (double)((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec) -
      (double)m->payload.u64[0];
  atomic_fetch_add(&w->n, 1);
}

/* A message to an actor whose worker is parked: send to handler, with the
 * futex wake-up in between. */
static void wake(int quick) {
  shoal_runtime *rt;
  shoal_actors *sys;
  static wk w;
  unsigned n = quick ? 20 : 60;
  if (make_actors(&rt, &sys, 2) != 0 || reg(sys, 1, wake_fn, &w, 1) != 0) {
    fprintf(stderr, "wake: set-up failed\n");
    exit(1);
  }
  for (unsigned i = 0; i < n; i++) {
    shoal_msg m;
    struct timespec ts;
    memset(&m, 0, sizeof m);
    usleep(5000); /* past the spin and linger: the worker is parked */
    clock_gettime(CLOCK_MONOTONIC, &ts);
    m.payload.u64[0] = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    shoal_try_send(sys, 1, &m);
    while (atomic_load(&w.n) <= i)
      usleep(100);
  }
  qsort(w.lat, n, sizeof(double), mq_cmp);
  mq_row("wake", "shoal", 2, "wake_p50_ns", w.lat[n / 2], "ns");
  mq_row("wake", "shoal", 2, "wake_p99_ns", w.lat[n * 99 / 100], "ns");
  shoal_actors_destroy(sys);
  shoal_runtime_destroy(rt);
}

int main(int argc, char **argv) {
  int quick;
  const char *only;
  mq_parse(argc, argv, &quick, &only);
  mq_tsc_calibrate();
  shoal_spsc_cases("shoal", quick, only, MQ_SPSC);
  shoal_mpsc_cases("shoal", quick, only, MQ_MPSC);
#ifdef SHOAL_BENCH_CK
  ck_spsc_cases("ck", quick, only, MQ_SPSC);
  ck_mpsc_cases("ck", quick, only, MQ_MPSC);
#endif
#define WANT(c) (only == NULL || strncmp(c, only, strlen(only)) == 0)
  /* untraced (tracing compiled in, off), then one send in 100 traced */
  for (trace_every = 0;; trace_every = 100) {
    if (WANT("actor_pingpong"))
      actor_pingpong(quick);
    if (WANT("actor_throughput"))
      actor_throughput(quick);
    if (trace_every != 0)
      break;
  }
  trace_every = 0;
  if (WANT("broadcast"))
    broadcast(quick);
  if (WANT("wake"))
    wake(quick);
  return 0;
}
