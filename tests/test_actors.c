/* test_actors.c — actors on a runtime with more workers than cores: per
 * sender FIFO with an in-handler reentrancy check, back-pressure and drop
 * with exact conservation, request-reply under load and with timeouts,
 * scatter-gather, pub-sub while subscribers come and go, unregistering
 * while pointer payloads are in flight (ASan checks every one is freed
 * once), the per-tick limit, pinned actors, figures and reports. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "runtime/actors/actor.h"
#include "test_util.h"

#if defined(__SANITIZE_THREAD__)
#define SCALE 1
#else
#define SCALE 8
#endif
#define WORKERS 4

static shoal_runtime *rt;
static shoal_actors *sys;

static void make(unsigned max_actors, unsigned max_per_tick,
                 shoal_log_fn log, void *log_user) {
  shoal_runtime_config rc;
  shoal_actors_config ac;
  atomic_store(&test_off_main_failures, 0); /* a failed test's are its own */
  shoal_runtime_config_defaults(&rc);
  rc.workers = WORKERS;
  assert_int_equal(shoal_runtime_create(&rt, &rc), SHOAL_OK);
  shoal_actors_config_defaults(&ac);
  ac.max_actors = max_actors;
  ac.max_per_tick = max_per_tick;
  ac.queue_size = 256;
  ac.log = log;
  ac.log_user = log_user;
  assert_int_equal(shoal_actors_create(&sys, rt, &ac), SHOAL_OK);
}

static void unmake(void) {
  TEST_OFF_MAIN_CLEAN();
  assert_int_equal(shoal_actors_destroy(sys), SHOAL_OK);
  assert_int_equal(shoal_runtime_destroy(rt), SHOAL_OK);
  sys = NULL;
  rt = NULL;
}

/* Registers; a record freed by an unregister is reusable once the actor
 * has finished its last turn, so ELIMIT is retried for a while. */
static int reg_opts(uint64_t id, const shoal_actor_opts *o) {
  int rc;
  for (int i = 0; (rc = shoal_actor_register(sys, id, o)) == SHOAL_ELIMIT &&
                  i < 1000; i++)
    usleep(1000);
  return rc;
}

static int reg(uint64_t id, shoal_actor_fn fn, void *state) {
  shoal_actor_opts o;
  shoal_actor_opts_defaults(&o);
  o.handler = fn;
  o.state = state;
  return reg_opts(id, &o);
}

static shoal_msg msg(uint32_t type, uint64_t a, uint64_t b) {
  shoal_msg m;
  memset(&m, 0, sizeof m);
  m.type = type;
  m.payload.u64[0] = a;
  m.payload.u64[1] = b;
  return m;
}

/* Sends until accepted (back-pressure). */
static void send_all(uint64_t to, const shoal_msg *m) {
  int rc;
  while ((rc = shoal_try_send(sys, to, m)) == SHOAL_EAGAIN)
    sched_yield();
  assert_int_equal(rc, SHOAL_OK);
}

/* ---- a sink: FIFO per sender, never reentered ------------------------- */

#define SENDERS 8
typedef struct sink {
  _Atomic int inside;
  int reentered;
  uint64_t next[SENDERS];
  uint64_t broken;
  _Atomic uint64_t got; /* read while it runs; the rest after destroy */
} sink;

enum { T_DATA = 1, T_PING, T_ECHO, T_START, T_DONE };

static void sink_fn(shoal_actor *self, void *state, const shoal_msg *m) {
  sink *s = state;
  (void)self;
  if (atomic_fetch_add(&s->inside, 1) != 0)
    s->reentered = 1;
  if (m->type == T_DATA) {
    uint64_t from = m->payload.u64[0], seq = m->payload.u64[1];
    if (from >= SENDERS || seq != s->next[from])
      s->broken++;
    else
      s->next[from]++;
    s->got++;
  }
  atomic_fetch_sub(&s->inside, 1);
}

/* Sender actors: on T_START, send `n` messages to the sink, requeueing
 * themselves when the sink is full. */
typedef struct sender {
  unsigned index;
  uint64_t n, sent;
} sender;

static void sender_fn(shoal_actor *self, void *state, const shoal_msg *m) {
  sender *s = state;
  (void)m;
  while (s->sent < s->n) {
    shoal_msg d = msg(T_DATA, s->index, s->sent);
    if (shoal_actor_try_send(self, 1, &d) != SHOAL_OK)
      break;
    s->sent++;
  }
  if (s->sent < s->n) { /* full: try again in a later turn */
    shoal_msg again = msg(T_START, 0, 0);
    int rc = shoal_actor_try_send(self, shoal_actor_id(self), &again);
    TEST_OFF_MAIN(rc == SHOAL_OK, "requeue: rc %d", rc);
  }
}

typedef struct host_sender {
  unsigned index;
  uint64_t n;
} host_sender;

static void *host_send_main(void *p) {
  host_sender *h = p;
  for (uint64_t i = 0; i < h->n; i++) {
    shoal_msg d = msg(T_DATA, h->index, i);
    send_all(1, &d);
  }
  return NULL;
}

static int sink_has(sink *s, uint64_t n) {
  shoal_actor_stats in;
  return shoal_actor_stats_get(sys, 1, &in) == SHOAL_OK && in.processed >= n &&
         s->got >= n;
}

static void wait_for(int (*cond)(void *), void *arg) {
  for (int i = 0; i < 20000 && !cond(arg); i++)
    usleep(1000);
  assert_true(cond(arg));
}

typedef struct sink_goal {
  sink *s;
  uint64_t n;
} sink_goal;
static int sink_goal_met(void *p) {
  sink_goal *g = p;
  return sink_has(g->s, g->n);
}

static void fifo_per_sender(void **state) {
  sink s = {0};
  sender act[SENDERS / 2];
  host_sender hs[SENDERS / 2];
  pthread_t th[SENDERS / 2];
  const uint64_t per = 2000 * SCALE;
  (void)state;
  make(64, 0, NULL, NULL);
  assert_int_equal(reg(1, sink_fn, &s), SHOAL_OK);
  for (unsigned i = 0; i < SENDERS / 2; i++) {
    shoal_msg go = msg(T_START, 0, 0);
    act[i] = (sender){.index = i, .n = per};
    assert_int_equal(reg(100 + i, sender_fn, &act[i]), SHOAL_OK);
    assert_int_equal(shoal_try_send(sys, 100 + i, &go), SHOAL_OK);
  }
  for (unsigned i = 0; i < SENDERS / 2; i++) {
    hs[i] = (host_sender){.index = SENDERS / 2 + i, .n = per};
    assert_int_equal(pthread_create(&th[i], NULL, host_send_main, &hs[i]), 0);
  }
  for (unsigned i = 0; i < SENDERS / 2; i++)
    pthread_join(th[i], NULL);
  {
    sink_goal g = {&s, per * SENDERS};
    wait_for(sink_goal_met, &g);
  }
  unmake(); /* the handler's last writes happen before destroy returns */
  assert_int_equal(s.reentered, 0);
  assert_int_equal(s.broken, 0);
  for (unsigned i = 0; i < SENDERS; i++)
    assert_int_equal(s.next[i], per);
}

/* ---- errors and the router --------------------------------------------- */

static void noop_fn(shoal_actor *self, void *state, const shoal_msg *m) {
  (void)self;
  (void)state;
  (void)m;
}

static void errors(void **state) {
  shoal_actors_stats st;
  shoal_actor_opts o;
  shoal_msg m = msg(T_DATA, 0, 0);
  shoal_actors_config ac;
  shoal_actors *bad = NULL;
  (void)state;
  make(4, 0, NULL, NULL);
  shoal_actors_config_defaults(&ac);
  ac.batch_size = 0;
  assert_int_equal(shoal_actors_create(&bad, rt, &ac), SHOAL_EINVAL);
  assert_null(bad);
  assert_int_equal(shoal_actors_create(&bad, NULL, &ac), SHOAL_EINVAL);
  assert_int_equal(reg(0, noop_fn, NULL), SHOAL_EINVAL);
  assert_int_equal(reg(UINT64_C(1) << 63, noop_fn, NULL), SHOAL_EINVAL);
  assert_int_equal(reg(5, NULL, NULL), SHOAL_EINVAL);
  shoal_actor_opts_defaults(&o);
  o.handler = noop_fn;
  o.home = WORKERS;
  assert_int_equal(shoal_actor_register(sys, 5, &o), SHOAL_EINVAL);
  o.home = -1;
  o.full = (shoal_full_policy)7;
  assert_int_equal(shoal_actor_register(sys, 5, &o), SHOAL_EINVAL);
  for (uint64_t id = 1; id <= 4; id++)
    assert_int_equal(reg(id, noop_fn, NULL), SHOAL_OK);
  assert_int_equal(reg(2, noop_fn, NULL), SHOAL_EEXIST);
  o.full = SHOAL_FULL_BACKPRESSURE;
  assert_int_equal(shoal_actor_register(sys, 9, &o), SHOAL_ELIMIT);
  assert_int_equal(shoal_try_send(sys, 77, &m), SHOAL_ENOENT);
  assert_int_equal(shoal_try_send(sys, 78, &m), SHOAL_ENOENT);
  assert_int_equal(shoal_try_send(sys, 1, NULL), SHOAL_EINVAL);
  assert_int_equal(shoal_actors_stats_get(sys, &st), SHOAL_OK);
  assert_int_equal(st.routing_failures, 2);
  assert_int_equal(st.registered, 4);
  assert_int_equal(shoal_actor_unregister(sys, 3), SHOAL_OK);
  assert_int_equal(shoal_actor_unregister(sys, 3), SHOAL_ENOENT);
  assert_int_equal(shoal_try_send(sys, 3, &m), SHOAL_ENOENT);
  /* The freed record is reusable, under the same id or another. */
  assert_int_equal(reg(3, noop_fn, NULL), SHOAL_OK);
  assert_int_equal(shoal_try_send(sys, 3, &m), SHOAL_OK);
  /* Many ids through a small table: deletions keep lookups right. */
  assert_int_equal(shoal_actor_unregister(sys, 4), SHOAL_OK);
  for (int round = 0; round < 200; round++) {
    uint64_t id = 1000 + (uint64_t)round;
    assert_int_equal(reg(id, noop_fn, NULL), SHOAL_OK);
    assert_int_equal(shoal_try_send(sys, id, &m), SHOAL_OK);
    assert_int_equal(shoal_try_send(sys, 1, &m), SHOAL_OK);
    assert_int_equal(shoal_actor_unregister(sys, id), SHOAL_OK);
    assert_int_equal(shoal_try_send(sys, id, &m), SHOAL_ENOENT);
  }
  unmake();
}

/* ---- full mailboxes: back-pressure, drop, conservation ----------------- */

typedef struct gate {
  _Atomic int open, entered;
  _Atomic uint64_t handled;
} gate;

static void gate_fn(shoal_actor *self, void *state, const shoal_msg *m) {
  gate *g = state;
  (void)self;
  (void)m;
  atomic_store(&g->entered, 1);
  while (!atomic_load(&g->open))
    sched_yield();
  atomic_fetch_add(&g->handled, 1);
}

static int gate_done(void *p) {
  gate *g = p;
  shoal_actor_stats a, b;
  return shoal_actor_stats_get(sys, 1, &a) == SHOAL_OK &&
         shoal_actor_stats_get(sys, 2, &b) == SHOAL_OK && a.depth == 0 &&
         b.depth == 0 && atomic_load(&g->handled) == a.processed + b.processed;
}

static void full_policies(void **state) {
  gate g = {0};
  shoal_actor_opts o;
  shoal_actor_stats a, b;
  shoal_msg m = msg(T_DATA, 0, 0);
  uint64_t ok1 = 0, again = 0, ok2 = 0, limited = 0;
  (void)state;
  make(8, 0, NULL, NULL);
  shoal_actor_opts_defaults(&o);
  o.handler = gate_fn;
  o.state = &g;
  o.queue_size = 8;
  assert_int_equal(shoal_actor_register(sys, 1, &o), SHOAL_OK);
  o.full = SHOAL_FULL_DROP;
  assert_int_equal(shoal_actor_register(sys, 2, &o), SHOAL_OK);
  for (int i = 0; i < 40; i++) {
    int r1 = shoal_try_send(sys, 1, &m), r2 = shoal_try_send(sys, 2, &m);
    if (r1 == SHOAL_OK) ok1++;
    else if (r1 == SHOAL_EAGAIN) again++;
    else fail_msg("back-pressure send returned %d", r1);
    if (r2 == SHOAL_OK) ok2++;
    else if (r2 == SHOAL_ELIMIT) limited++;
    else fail_msg("drop send returned %d", r2);
  }
  /* Each gate holds one message in its handler and eight in its mailbox. */
  assert_true(ok1 >= 8 && ok1 <= 9);
  assert_true(ok2 >= 8 && ok2 <= 9);
  atomic_store(&g.open, 1);
  wait_for(gate_done, &g);
  assert_int_equal(shoal_actor_stats_get(sys, 1, &a), SHOAL_OK);
  assert_int_equal(shoal_actor_stats_get(sys, 2, &b), SHOAL_OK);
  /* accepted == handled; tried == handled + dropped (exactly). */
  assert_int_equal(a.processed, ok1);
  assert_int_equal(a.rejected, again);
  assert_int_equal(a.dropped, 0);
  assert_int_equal(b.processed, ok2);
  assert_int_equal(b.dropped, limited);
  assert_int_equal(b.processed + b.dropped, 40);
  unmake();
}

/* ---- request-reply ----------------------------------------------------- */

static void echo_fn(shoal_actor *self, void *state, const shoal_msg *m) {
  shoal_msg r = msg(T_ECHO, m->payload.u64[0] * 2, m->payload.u64[1]);
  (void)state;
  if (m->flags & SHOAL_MSG_REQUEST) {
    int rc = shoal_actor_reply(self, m, &r);
    TEST_OFF_MAIN(rc == SHOAL_OK, "echo's reply to %#llx: rc %d",
                  (unsigned long long)m->from, rc);
  }
}

typedef struct asker {
  uint64_t n, asked, answered, wrong;
  uint32_t last_corr;
  _Atomic int done;
} asker;

/* Asks the echo (id 1) n times, one request in flight at a time. */
static void asker_fn(shoal_actor *self, void *state, const shoal_msg *m) {
  asker *a = state;
  if (m->flags & SHOAL_MSG_REPLY) {
    int right = m->corr == a->last_corr &&
                m->payload.u64[0] == 2 * a->answered && m->from == 1;
    TEST_OFF_MAIN(right, "reply %llu: corr %u (asked %u), value %llu, from %llu",
                  (unsigned long long)a->answered, m->corr, a->last_corr,
                  (unsigned long long)m->payload.u64[0],
                  (unsigned long long)m->from);
    a->wrong += !right;
    a->answered++;
  }
  if (a->asked < a->n && a->asked == a->answered) {
    shoal_msg q = msg(T_PING, a->asked, 0);
    int rc = shoal_actor_request(self, 1, &q, &a->last_corr);
    TEST_OFF_MAIN(rc == SHOAL_OK, "request %llu: rc %d",
                  (unsigned long long)a->asked, rc);
    a->asked += rc == SHOAL_OK;
  }
  if (a->answered == a->n)
    atomic_store(&a->done, 1);
}

static void *caller_main(void *p) {
  uint64_t *bad = p;
  for (uint64_t i = 0; i < 200u * SCALE; i++) {
    shoal_msg q = msg(T_PING, i, 7), r = msg(0, 0, 0);
    int rc = shoal_call(sys, 1, &q, &r, 10000), right;
    right = rc == SHOAL_OK && r.payload.u64[0] == 2 * i &&
            r.payload.u64[1] == 7 && (r.flags & SHOAL_MSG_REPLY) && r.from == 1;
    TEST_OFF_MAIN(right, "call %llu: rc %d, reply %llu %llu, flags %#x, from %llu",
                  (unsigned long long)i, rc,
                  (unsigned long long)r.payload.u64[0],
                  (unsigned long long)r.payload.u64[1], r.flags,
                  (unsigned long long)r.from);
    *bad += !right;
  }
  return NULL;
}

static int askers_done(void *p) {
  asker *a = p;
  for (int i = 0; i < 4; i++)
    if (!atomic_load(&a[i].done))
      return 0;
  return 1;
}

static void silent_fn(shoal_actor *self, void *state, const shoal_msg *m) {
  /* Holds the request; answers it when told to. */
  shoal_msg *held = state;
  shoal_msg r = msg(T_ECHO, 0, 0);
  if (m->flags & SHOAL_MSG_REQUEST)
    *held = *m;
  else
    (void)shoal_actor_reply(self, held, &r);
}

static int late_counted(void *p) {
  shoal_actors_stats st;
  (void)p;
  return shoal_actors_stats_get(sys, &st) == SHOAL_OK && st.late_replies == 1;
}

/* A call while one call's give-back of its waiter is half done (its cell
 * claimed, not yet written: a thread preempted between the two steps)
 * and another's is whole behind it: a waiter is free, so the call waits
 * for the unfinished one and goes on, where it used to fail with
 * SHOAL_EAGAIN as if every waiter were in use. */
typedef struct half_push {
  shoal__mpmc_cell *cell;
  uint64_t pos;
  void *x;
} half_push;

static void *finish_push(void *arg) {
  half_push *h = arg;
  usleep(20000);
  h->cell->data = h->x;
  atomic_store_explicit(&h->cell->seq, h->pos + 1, memory_order_release);
  return NULL;
}

static void call_beside_give_back(void **state) {
  shoal_actors_config ac;
  shoal_runtime *r2;
  shoal_actors *s2;
  shoal_actor_opts o;
  half_push h;
  pthread_t th;
  void *w0 = NULL, *w1 = NULL;
  int call_rc;
  shoal_msg q = msg(T_PING, 21, 5), r = msg(0, 0, 0);
  (void)state;
  r2 = test_runtime(WORKERS, 0, NULL);
  shoal_actors_config_defaults(&ac);
  ac.host_waiters = 2;
  assert_int_equal(shoal_actors_create(&s2, r2, &ac), SHOAL_OK);
  shoal_actor_opts_defaults(&o);
  o.handler = echo_fn;
  assert_int_equal(shoal_actor_register(s2, 1, &o), SHOAL_OK);
  /* Two calls hold the two waiters. */
  assert_int_equal(shoal__mpmc_try_pop(&s2->free_waiters, &w0), SHOAL_OK);
  assert_int_equal(shoal__mpmc_try_pop(&s2->free_waiters, &w1), SHOAL_OK);
  atomic_store(&s2->waiters_held, 2);
  /* The first gives w0 back and stops after its claim; the second gives
   * w1 back whole, into the next cell, and lets go of its reservation. */
  h.cell = shoal__mpmc_claim(&s2->free_waiters, &s2->free_waiters.tail, 0,
                             &h.pos);
  assert_non_null(h.cell);
  h.x = w0;
  shoal__mpmc_push_held(&s2->free_waiters, w1);
  atomic_fetch_sub(&s2->waiters_held, 1);
  assert_int_equal(pthread_create(&th, NULL, finish_push, &h), 0);
  call_rc = shoal_call(s2, 1, &q, &r, 10000);
  pthread_join(th, NULL); /* before any assertion: it writes into h */
  assert_int_equal(call_rc, SHOAL_OK);
  assert_int_equal(r.payload.u64[0], 42);
  assert_int_equal(r.payload.u64[1], 5);
  assert_int_equal(atomic_load(&s2->waiters_held), 1); /* the first's */
  shoal_actors_destroy(s2);
  assert_int_equal(shoal_runtime_destroy(r2), SHOAL_OK);
}

static void request_reply(void **state) {
  asker a[4];
  pthread_t th[2];
  uint64_t bad[2] = {0, 0};
  shoal_msg held, q = msg(T_PING, 1, 0), r;
  (void)state;
  make(64, 0, NULL, NULL);
  assert_int_equal(reg(1, echo_fn, NULL), SHOAL_OK);
  for (int i = 0; i < 4; i++) {
    shoal_msg go = msg(T_START, 0, 0);
    memset(&a[i], 0, sizeof a[i]);
    a[i].n = 500u * SCALE;
    assert_int_equal(reg(10 + (uint64_t)i, asker_fn, &a[i]), SHOAL_OK);
    assert_int_equal(shoal_try_send(sys, 10 + (uint64_t)i, &go), SHOAL_OK);
  }
  for (int i = 0; i < 2; i++)
    assert_int_equal(pthread_create(&th[i], NULL, caller_main, &bad[i]), 0);
  for (int i = 0; i < 2; i++)
    pthread_join(th[i], NULL);
  wait_for(askers_done, a);
  assert_int_equal(bad[0] + bad[1], 0);
  for (int i = 0; i < 4; i++) {
    assert_int_equal(a[i].wrong, 0);
    assert_int_equal(a[i].answered, a[i].n);
  }
  /* A call that times out; its reply comes late and is counted. */
  assert_int_equal(reg(2, silent_fn, &held), SHOAL_OK);
  assert_int_equal(shoal_call(sys, 2, &q, &r, 30), SHOAL_ETIMEDOUT);
  q.flags = 0;
  assert_int_equal(shoal_try_send(sys, 2, &q), SHOAL_OK);
  wait_for(late_counted, NULL);
  assert_int_equal(shoal_call(sys, 99, &q, &r, 30), SHOAL_ENOENT);
  unmake();
}

/* ---- scatter-gather ---------------------------------------------------- */

typedef struct gatherer {
  shoal_gather g;
  shoal_msg req;
  uint64_t sum;
} gatherer;

static void gatherer_fn(shoal_actor *self, void *state, const shoal_msg *m) {
  gatherer *ga = state;
  if (m->flags & SHOAL_MSG_REQUEST) {
    uint64_t to[5] = {1, 2, 3, 4, 5};
    shoal_msg q = msg(T_PING, 10, 0);
    ga->req = *m;
    ga->sum = 0;
    ga->g.received = 0;
    int rc = shoal_actor_scatter(self, to, 5, &q, &ga->g.corr,
                                 &ga->g.expected);
    TEST_OFF_MAIN(rc == SHOAL_OK, "scatter: rc %d", rc);
    return;
  }
  if (shoal_gather_add(&ga->g, m)) {
    ga->sum += m->payload.u64[0];
    if (shoal_gather_done(&ga->g)) {
      shoal_msg r = msg(T_DONE, ga->sum, ga->g.received);
      int rc = shoal_actor_reply(self, &ga->req, &r);
      TEST_OFF_MAIN(rc == SHOAL_OK, "gatherer's reply: rc %d", rc);
    }
  }
}

static void scatter_gather(void **state) {
  gatherer ga;
  shoal_msg q = msg(T_START, 0, 0), r, rs[5];
  uint64_t to[5] = {1, 2, 3, 4, 5};
  unsigned got = 0;
  (void)state;
  memset(&ga, 0, sizeof ga);
  make(16, 0, NULL, NULL);
  for (uint64_t i = 1; i <= 5; i++)
    assert_int_equal(reg(i, echo_fn, NULL), SHOAL_OK);
  assert_int_equal(reg(9, gatherer_fn, &ga), SHOAL_OK);
  assert_int_equal(shoal_call(sys, 9, &q, &r, 10000), SHOAL_OK);
  assert_int_equal(r.payload.u64[0], 5 * 20);
  assert_int_equal(r.payload.u64[1], 5);
  /* The host's own scatter-gather. */
  q = msg(T_PING, 21, 0);
  assert_int_equal(shoal_call_many(sys, to, 5, &q, rs, 10000, &got), SHOAL_OK);
  assert_int_equal(got, 5);
  {
    uint64_t seen = 0;
    for (unsigned i = 0; i < 5; i++) {
      assert_int_equal(rs[i].payload.u64[0], 42);
      seen |= UINT64_C(1) << rs[i].from;
    }
    assert_int_equal(seen, 0x3e);
  }
  unmake();
}

/* ---- pub-sub with churn ------------------------------------------------ */

#define SUBS 12
typedef struct sub {
  uint64_t last, broken;
  _Atomic uint64_t got;
} sub;

static void sub_fn(shoal_actor *self, void *state, const shoal_msg *m) {
  sub *s = state;
  (void)self;
  if (s->got != 0 && m->payload.u64[0] <= s->last)
    s->broken++; /* a duplicate or a reordering */
  s->last = m->payload.u64[0];
  s->got++;
}

typedef struct churn {
  shoal_topic *t;
  _Atomic int stop;
} churn;

static void *churn_main(void *p) {
  churn *c = p;
  uint64_t rng = 88172645463325252u;
  while (!atomic_load(&c->stop)) {
    uint64_t id = 100 + SUBS / 2 + (rng % (SUBS / 2));
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    if (shoal_topic_unsubscribe(c->t, id) == SHOAL_ENOENT)
      assert_int_equal(shoal_topic_subscribe(c->t, id), SHOAL_OK);
  }
  return NULL;
}

typedef struct subs_goal {
  sub *s;
  uint64_t n;
} subs_goal;
static int stable_subs_done(void *p) {
  subs_goal *g = p;
  for (int i = g->n > 3000u * SCALE ? 1 : 0; i < SUBS / 2; i++)
    if (g->s[i].got < g->n)
      return 0;
  return 1;
}

static void pubsub_churn(void **state) {
  sub s[SUBS];
  churn c;
  pthread_t th;
  const uint64_t n = 3000u * SCALE;
  subs_goal goal = {s, n};
  (void)state;
  memset(s, 0, sizeof s);
  make(64, 0, NULL, NULL);
  assert_int_equal(shoal_topic_create(sys, &c.t, SUBS), SHOAL_OK);
  atomic_init(&c.stop, 0);
  for (int i = 0; i < SUBS; i++) {
    shoal_actor_opts o;
    shoal_actor_opts_defaults(&o);
    o.handler = sub_fn;
    o.state = &s[i];
    o.queue_size = 1u << 16; /* room for every publish: none refused */
    assert_int_equal(shoal_actor_register(sys, 100 + (uint64_t)i, &o), SHOAL_OK);
    if (i < SUBS / 2)
      assert_int_equal(shoal_topic_subscribe(c.t, 100 + (uint64_t)i), SHOAL_OK);
  }
  assert_int_equal(shoal_topic_subscribe(c.t, 100), SHOAL_EEXIST);
  assert_int_equal(shoal_topic_subscribe(c.t, 5), SHOAL_ENOENT);
  assert_int_equal(pthread_create(&th, NULL, churn_main, &c), 0);
  for (uint64_t i = 0; i < n; i++) {
    shoal_msg m = msg(T_DATA, i, 0);
    unsigned delivered = 0;
    assert_int_equal(shoal_topic_publish(c.t, &m, &delivered), SHOAL_OK);
    assert_true(delivered >= SUBS / 2);
  }
  atomic_store(&c.stop, 1);
  pthread_join(th, NULL);
  wait_for(stable_subs_done, &goal);
  /* An unregistered actor leaves its topics; its entry is reused. */
  assert_int_equal(shoal_actor_unregister(sys, 100), SHOAL_OK);
  {
    shoal_msg m = msg(T_DATA, n, 0);
    unsigned delivered = 0;
    assert_int_equal(shoal_topic_publish(c.t, &m, &delivered), SHOAL_OK);
    assert_true(delivered >= SUBS / 2 - 1);
    assert_true(delivered <= SUBS - 1);
  }
  goal.n = n + 1; /* handled before destroy, which would discard it */
  wait_for(stable_subs_done, &goal);
  shoal_topic_destroy(c.t);
  unmake();
  for (int i = 0; i < SUBS; i++) {
    assert_int_equal(s[i].broken, 0);
    if (i < SUBS / 2) /* subscribed throughout: every one */
      assert_int_equal(s[i].got, n + (i == 0 ? 0 : 1));
    else
      assert_true(s[i].got <= n + 1);
  }
}

/* ---- unregister while pointer payloads are in flight ------------------- */

typedef struct ledger {
  _Atomic uint64_t handled, dropped, stopped;
} ledger;

static void owned_fn(shoal_actor *self, void *state, const shoal_msg *m) {
  ledger *l = state;
  (void)self;
  TEST_OFF_MAIN(m->flags & SHOAL_MSG_PTR, "flags %#x", m->flags);
  TEST_OFF_MAIN(*(uint64_t *)m->payload.ptr == m->type, "payload %llu, type %u",
                (unsigned long long)*(uint64_t *)m->payload.ptr, m->type);
  free(m->payload.ptr);
  atomic_fetch_add(&l->handled, 1);
}

static void owned_drop(void *state, const shoal_msg *m) {
  ledger *l = state;
  free(m->payload.ptr);
  atomic_fetch_add(&l->dropped, 1);
}

static void owned_stop(void *state) {
  ledger *l = state;
  atomic_fetch_add(&l->stopped, 1);
}

typedef struct blaster {
  _Atomic int stop;
  _Atomic uint64_t accepted;
} blaster;

static void *blast_main(void *p) {
  blaster *b = p;
  uint64_t k = 0, accepted = 0;
  while (!atomic_load(&b->stop)) {
    shoal_msg m = msg((uint32_t)(k & 0xffff), 0, 0);
    uint64_t *box = malloc(sizeof *box);
    assert_non_null(box);
    *box = m.type;
    m.flags = SHOAL_MSG_PTR;
    m.size = sizeof *box;
    m.payload.ptr = box;
    if (shoal_try_send(sys, 1 + (k % 3), &m) == SHOAL_OK)
      accepted++;
    else
      free(box); /* refused: still the sender's */
    k++;
  }
  atomic_fetch_add(&b->accepted, accepted);
  return NULL;
}

static int ledger_settled(void *p) {
  void **a = p;
  ledger *l = a[0];
  blaster *b = a[1];
  uint64_t *regs = a[2];
  return atomic_load(&l->stopped) == *regs &&
         atomic_load(&l->handled) + atomic_load(&l->dropped) ==
             atomic_load(&b->accepted);
}

static void unregister_in_flight(void **state) {
  ledger l = {0};
  blaster b = {0};
  pthread_t th[2];
  uint64_t regs = 0;
  void *args[3] = {&l, &b, &regs};
  (void)state;
  make(16, 0, NULL, NULL);
  for (int i = 0; i < 2; i++)
    assert_int_equal(pthread_create(&th[i], NULL, blast_main, &b), 0);
  for (int round = 0; round < 100 * SCALE; round++) {
    uint64_t id = 1 + (uint64_t)(round % 3);
    shoal_actor_opts o;
    shoal_actor_opts_defaults(&o);
    o.handler = owned_fn;
    o.drop = owned_drop;
    o.stop = owned_stop;
    o.state = &l;
    o.queue_size = (round & 1) ? 64 : 16; /* capacity changes reuse cells */
    assert_int_equal(reg_opts(id, &o), SHOAL_OK);
    regs++;
    usleep(200);
    assert_int_equal(shoal_actor_unregister(sys, id), SHOAL_OK);
  }
  atomic_store(&b.stop, 1);
  for (int i = 0; i < 2; i++)
    pthread_join(th[i], NULL);
  wait_for(ledger_settled, args);
  print_message("# %llu accepted: %llu handled, %llu dropped at unregister\n",
                (unsigned long long)atomic_load(&b.accepted),
                (unsigned long long)atomic_load(&l.handled),
                (unsigned long long)atomic_load(&l.dropped));
  unmake();
}

/* ---- per-tick limit, pinned actors, figures ---------------------------- */

typedef struct counter {
  _Atomic uint64_t n;
} counter;

static void count_fn(shoal_actor *self, void *state, const shoal_msg *m) {
  counter *c = state;
  (void)self;
  (void)m;
  atomic_fetch_add(&c->n, 1);
}

static int quiet_for_a_while(counter *c, uint64_t want) {
  for (int i = 0; i < 5000 && atomic_load(&c->n) < want; i++)
    usleep(1000);
  usleep(20000); /* and nothing more comes */
  return atomic_load(&c->n) == want;
}

/* The system's deferrals once they reach want (or 5 s pass): the turn
 * that finds the tick's limit reached may run well after the last message
 * it allowed (a loaded machine, ThreadSanitizer's yields), and a tick
 * before it would let it through without a deferral. */
static uint64_t deferred_at_least(uint64_t want) {
  shoal_actors_stats st;
  memset(&st, 0, sizeof st);
  for (int i = 0; i < 5000; i++) {
    assert_int_equal(shoal_actors_stats_get(sys, &st), SHOAL_OK);
    if (st.deferred >= want)
      break;
    usleep(1000);
  }
  return st.deferred;
}

static void per_tick_limit(void **state) {
  counter c = {0};
  shoal_msg m = msg(T_DATA, 0, 0);
  (void)state;
  make(4, 10, NULL, NULL);
  assert_int_equal(reg(1, count_fn, &c), SHOAL_OK);
  for (int i = 0; i < 25; i++)
    assert_int_equal(shoal_try_send(sys, 1, &m), SHOAL_OK);
  assert_true(quiet_for_a_while(&c, 10));
  assert_true(deferred_at_least(1) >= 1);
  shoal_actors_tick(sys);
  assert_true(quiet_for_a_while(&c, 20));
  assert_true(deferred_at_least(2) >= 2);
  shoal_actors_tick(sys);
  assert_true(quiet_for_a_while(&c, 25));
  unmake();
}

/* ---- the watch: a stuck handler, a stalled actor ---------------------- */

typedef struct watch_log {
  _Atomic unsigned stuck, stalled, returned, other;
} watch_log;

static void watch_log_fn(void *user, shoal_log_level level, const char *msg) {
  watch_log *l = user;
  if (level == SHOAL_LOG_ERROR && strstr(msg, "has run") != NULL &&
      strstr(msg, "actor 1 ") != NULL)
    atomic_fetch_add(&l->stuck, 1);
  else if (level == SHOAL_LOG_ERROR && strstr(msg, "none handled") != NULL &&
           strstr(msg, "actor 2 ") != NULL)
    atomic_fetch_add(&l->stalled, 1);
  else if (strstr(msg, "returned after") != NULL)
    atomic_fetch_add(&l->returned, 1);
  else if (level == SHOAL_LOG_ERROR)
    atomic_fetch_add(&l->other, 1);
}

typedef struct blocker {
  _Atomic int go, in;
} blocker;

static void blocking_fn(shoal_actor *self, void *state, const shoal_msg *m) {
  blocker *b = state;
  (void)self;
  (void)m;
  atomic_store(&b->in, 1);
  while (!atomic_load(&b->go))
    usleep(1000);
}

static int stuck_seen(void *p) { return atomic_load(&((watch_log *)p)->stuck) > 0; }
static int stall_seen(void *p) {
  return atomic_load(&((watch_log *)p)->stalled) > 0;
}
static int returned_seen(void *p) {
  return atomic_load(&((watch_log *)p)->returned) > 0;
}

/* A handler that blocks is reported once, however long it blocks, and
 * said to have returned; an actor held back by MaxMessagesPerTick with no
 * tick is reported stalled once, and a tick lets it go on. */
static void watched(void **state) {
  watch_log l = {0, 0, 0, 0};
  blocker b = {0, 0};
  counter c = {0};
  shoal_actor_stats st;
  shoal_msg m = msg(T_DATA, 0, 0);
  shoal_runtime_config rc;
  shoal_actors_config ac;
  (void)state;
  shoal_runtime_config_defaults(&rc);
  rc.workers = WORKERS;
  assert_int_equal(shoal_runtime_create(&rt, &rc), SHOAL_OK);
  shoal_actors_config_defaults(&ac);
  assert_int_equal(ac.stuck_ms, 5000);
  assert_int_equal(ac.stall_ms, 0);
  ac.max_actors = 8;
  ac.max_per_tick = 10;
  ac.stuck_ms = 30;
  ac.stall_ms = 30;
  ac.log = watch_log_fn;
  ac.log_user = &l;
  assert_int_equal(shoal_actors_create(&sys, rt, &ac), SHOAL_OK);
  assert_int_equal(reg(1, blocking_fn, &b), SHOAL_OK);
  assert_int_equal(reg(2, count_fn, &c), SHOAL_OK);
  assert_int_equal(shoal_try_send(sys, 1, &m), SHOAL_OK);
  wait_for(stuck_seen, &l);
  usleep(200 * 1000); /* several limits more: still once */
  assert_int_equal(atomic_load(&l.stuck), 1);
  assert_int_equal(atomic_load(&l.returned), 0);
  atomic_store(&b.go, 1);
  wait_for(returned_seen, &l);
  assert_int_equal(shoal_actor_stats_get(sys, 1, &st), SHOAL_OK);
  assert_int_equal(st.stuck, 1);
  assert_int_equal(st.processed, 1);
  /* 25 messages, 10 a tick: 15 wait for a tick that does not come */
  for (int i = 0; i < 25; i++)
    assert_int_equal(shoal_try_send(sys, 2, &m), SHOAL_OK);
  wait_for(stall_seen, &l);
  usleep(200 * 1000);
  assert_int_equal(atomic_load(&l.stalled), 1);
  assert_int_equal(atomic_load(&c.n), 10);
  assert_int_equal(shoal_actor_stats_get(sys, 2, &st), SHOAL_OK);
  assert_int_equal(st.stalls, 1);
  assert_int_equal(st.stuck, 0);
  shoal_actors_tick(sys);
  assert_true(quiet_for_a_while(&c, 20));
  shoal_actors_tick(sys);
  assert_true(quiet_for_a_while(&c, 25));
  assert_int_equal(atomic_load(&l.other), 0);
  unmake();
}

/* ---- supervision ------------------------------------------------------ */

enum { T_FAIL = 40, T_COUNT = 41 };

typedef struct ward {
  _Atomic unsigned inits, handled, downs;
  _Atomic int64_t down_status;
  _Atomic uint64_t down_from;
  unsigned since_init; /* reset by init: the state a restart rebuilds */
  _Atomic unsigned max_since_init;
} ward;

static void ward_init(shoal_actor *self, void *state) {
  ward *w = state;
  (void)self;
  w->since_init = 0;
  atomic_fetch_add(&w->inits, 1);
}

static void ward_fn(shoal_actor *self, void *state, const shoal_msg *m) {
  ward *w = state;
  if (m->flags & SHOAL_MSG_DOWN) {
    atomic_store(&w->down_from, m->from);
    atomic_store(&w->down_status, (int64_t)m->payload.u64[0]);
    atomic_fetch_add(&w->downs, 1);
    return;
  }
  w->since_init++;
  if (w->since_init > atomic_load(&w->max_since_init))
    atomic_store(&w->max_since_init, w->since_init);
  atomic_fetch_add(&w->handled, 1);
  if (m->type == T_FAIL)
    shoal_actor_fail(self, -7);
}

static int reg_ward(uint64_t id, ward *w, shoal_supervise policy,
                    uint64_t parent) {
  shoal_actor_opts o;
  shoal_actor_opts_defaults(&o);
  o.handler = ward_fn;
  o.state = w;
  o.init = ward_init;
  o.on_failure = policy;
  o.parent = parent;
  o.max_restarts = 2;
  o.restart_window_ms = 3600000;
  return reg_opts(id, &o);
}

typedef struct ward_goal {
  ward *w;
  unsigned handled;
} ward_goal;
static int ward_handled(void *p) {
  ward_goal *g = p;
  return atomic_load(&g->w->handled) >= g->handled;
}
static int unregistered(void *p) {
  shoal_actor_stats st;
  return shoal_actor_stats_get(sys, (uint64_t)(uintptr_t)p, &st) ==
         SHOAL_ENOENT;
}
static int down_heard(void *p) { return atomic_load(&((ward *)p)->downs) > 0; }

/* RESTART: init again, the mailbox kept, up to max_restarts, then stop;
 * STOP: the requests still waiting are answered FAILED; ESCALATE: the
 * parent's policy runs and it hears of it. */
static void supervision(void **state) {
  ward r, s, c, p;
  shoal_actor_stats st;
  shoal_msg f = msg(T_FAIL, 0, 0), k = msg(T_COUNT, 0, 0), q, rep;
  ward_goal g;
  (void)state;
  memset(&r, 0, sizeof r);
  memset(&s, 0, sizeof s);
  memset(&c, 0, sizeof c);
  memset(&p, 0, sizeof p);
  make(16, 0, NULL, NULL);
  /* RESTART */
  assert_int_equal(reg_ward(1, &r, SHOAL_SUPERVISE_RESTART, 0), SHOAL_OK);
  assert_int_equal(atomic_load(&r.inits), 1); /* at registration */
  send_all(1, &k);
  send_all(1, &f); /* fails: restarted, the next three still run */
  send_all(1, &k);
  send_all(1, &k);
  send_all(1, &k);
  g = (ward_goal){&r, 5};
  wait_for(ward_handled, &g);
  assert_int_equal(atomic_load(&r.inits), 2);
  assert_int_equal(shoal_actor_stats_get(sys, 1, &st), SHOAL_OK);
  assert_int_equal(st.failures, 1);
  assert_int_equal(st.restarts, 1);
  assert_int_equal(atomic_load(&r.max_since_init), 3); /* state rebuilt */
  send_all(1, &f); /* the second restart of two */
  send_all(1, &f); /* past them: stopped */
  wait_for(unregistered, (void *)(uintptr_t)1);
  assert_int_equal(atomic_load(&r.inits), 3);
  /* marked from outside: its policy runs before its next message */
  assert_int_equal(reg_ward(2, &s, SHOAL_SUPERVISE_STOP, 0), SHOAL_OK);
  assert_int_equal(shoal_actor_mark_failed(sys, 2, -3), SHOAL_OK);
  assert_int_equal(shoal_actor_mark_failed(sys, 99, -3), SHOAL_ENOENT);
  q = msg(T_COUNT, 0, 0);
  /* the request finds it stopped: answered FAILED, not left to time out */
  assert_int_equal(shoal_call(sys, 2, &q, &rep, 10000), SHOAL_OK);
  assert_true(rep.flags & SHOAL_MSG_REPLY);
  assert_true(rep.flags & SHOAL_MSG_FAILED);
  assert_int_equal(atomic_load(&s.handled), 0);
  wait_for(unregistered, (void *)(uintptr_t)2);
  /* ESCALATE: the child stops, the parent (RESTART) restarts and hears */
  assert_int_equal(reg_ward(10, &p, SHOAL_SUPERVISE_RESTART, 0), SHOAL_OK);
  assert_int_equal(reg_ward(11, &c, SHOAL_SUPERVISE_ESCALATE, 10), SHOAL_OK);
  send_all(11, &f);
  wait_for(unregistered, (void *)(uintptr_t)11);
  wait_for(down_heard, &p);
  assert_int_equal(atomic_load(&p.down_from), 11);
  assert_int_equal(atomic_load(&p.down_status), -7);
  assert_int_equal(atomic_load(&p.inits), 2);
  assert_int_equal(shoal_actor_stats_get(sys, 10, &st), SHOAL_OK);
  assert_int_equal(st.failures, 1);
  assert_int_equal(st.restarts, 1);
  /* bad options */
  {
    shoal_actor_opts o;
    shoal_actor_opts_defaults(&o);
    o.handler = ward_fn;
    o.on_failure = (shoal_supervise)3;
    assert_int_equal(shoal_actor_register(sys, 20, &o), SHOAL_EINVAL);
    o.on_failure = SHOAL_SUPERVISE_ESCALATE;
    o.parent = 20;
    assert_int_equal(shoal_actor_register(sys, 20, &o), SHOAL_EINVAL);
  }
  unmake();
}

static void pinned_fn(shoal_actor *self, void *state, const shoal_msg *m) {
  counter *c = state;
  if (m->flags & SHOAL_MSG_REQUEST) {
    shoal_msg r = msg(T_ECHO, atomic_load(&c->n), 0);
    int rc = shoal_actor_reply(self, m, &r);
    TEST_OFF_MAIN(rc == SHOAL_OK, "pinned's reply: rc %d", rc);
    return;
  }
  atomic_fetch_add(&c->n, 1);
}

static void pinned(void **state) {
  counter c[WORKERS];
  (void)state;
  make(16, 0, NULL, NULL);
  for (int h = 0; h < WORKERS; h++) {
    shoal_actor_opts o;
    shoal_actor_opts_defaults(&o);
    o.handler = pinned_fn;
    o.state = &c[h];
    o.home = h;
    atomic_init(&c[h].n, 0);
    assert_int_equal(shoal_actor_register(sys, 1 + (uint64_t)h, &o), SHOAL_OK);
  }
  /* Worker 0 runs only while the host is inside: its actor's mailbox
   * holds all that is sent before the call. */
  for (int i = 0; i < 200; i++)
    for (int h = 0; h < WORKERS; h++) {
      shoal_msg m = msg(T_DATA, 0, 0);
      send_all(1 + (uint64_t)h, &m);
    }
  /* The call waits as worker 0, which runs the actor homed there. */
  for (int h = WORKERS - 1; h >= 0; h--) {
    shoal_msg q = msg(T_PING, 0, 0), r;
    assert_int_equal(shoal_call(sys, 1 + (uint64_t)h, &q, &r, 10000), SHOAL_OK);
    assert_int_equal(r.payload.u64[0], 200);
  }
  unmake();
}

typedef struct log_seen {
  _Atomic int warns;
} log_seen;

static void log_fn(void *user, shoal_log_level level, const char *msg_) {
  log_seen *l = user;
  if (level == SHOAL_LOG_WARN && strstr(msg_, "messages waiting") != NULL)
    atomic_fetch_add(&l->warns, 1);
}

static void line_count(void *user, unsigned depth, const char *line) {
  int *n = user;
  (void)depth;
  assert_true(strlen(line) > 20);
  (*n)++;
}

static void figures(void **state) {
  gate g = {0};
  log_seen seen = {0};
  shoal_actor_opts o;
  shoal_actor_stats in[4];
  size_t count = 0;
  int lines = 0;
  shoal_msg m = msg(T_DATA, 0, 0);
  (void)state;
  make(8, 0, log_fn, &seen);
  shoal_actor_opts_defaults(&o);
  o.handler = gate_fn;
  o.state = &g;
  o.queue_size = 16;
  o.name = "auction";
  assert_int_equal(shoal_actor_register(sys, 1, &o), SHOAL_OK);
  assert_int_equal(reg(2, noop_fn, NULL), SHOAL_OK);
  /* The first message holds the handler; fifteen more wait. */
  assert_int_equal(shoal_try_send(sys, 1, &m), SHOAL_OK);
  for (int i = 0; i < 20000 && !atomic_load(&g.entered); i++)
    usleep(100);
  assert_true(atomic_load(&g.entered));
  for (int i = 0; i < 15; i++)
    assert_int_equal(shoal_try_send(sys, 1, &m), SHOAL_OK);
  atomic_store(&g.open, 1);
  wait_for(gate_done, &g); /* gate_done reads actor 2 too: it is idle */
  assert_int_equal(shoal_actors_list(sys, in, 4, &count), SHOAL_OK);
  assert_int_equal(count, 2);
  for (size_t i = 0; i < count; i++) {
    if (in[i].id != 1)
      continue;
    assert_string_equal(in[i].name, "auction");
    assert_int_equal(in[i].processed, 16);
    assert_int_equal(in[i].queue_size, 16);
    assert_true(in[i].max_depth >= 12);
    assert_true(in[i].handler_max_ns >= in[i].handler_mean_ns);
  }
  assert_true(atomic_load(&seen.warns) >= 1);
  assert_int_equal(shoal_actors_report(sys, "status", line_count, &lines), SHOAL_OK);
  assert_int_equal(lines, 3);
  lines = 0;
  assert_int_equal(shoal_actors_report(sys, "queue", line_count, &lines), SHOAL_OK);
  assert_int_equal(lines, 3);
  assert_int_equal(shoal_actors_report(sys, "bogus", line_count, &lines), SHOAL_EINVAL);
  lines = 0;
  assert_int_equal(shoal_actors_report(sys, "queue 1", line_count, &lines), SHOAL_OK);
  assert_int_equal(lines, 2); /* the header and actor 1 */
  assert_int_equal(shoal_actors_report(sys, "queue 77", line_count, &lines), SHOAL_ENOENT);
  assert_int_equal(shoal_actors_report(sys, "queue x", line_count, &lines), SHOAL_ENOENT);
  lines = 0;
  assert_int_equal(shoal_actors_report(sys, "queue auction", line_count, &lines), SHOAL_OK);
  assert_int_equal(lines, 2);
  assert_int_equal(shoal_actors_report(sys, "queue ", line_count, &lines), SHOAL_EINVAL);
  assert_int_equal(shoal_actors_report(sys, "trace 5", line_count, &lines), SHOAL_ENOTSUP);
  unmake();
}

/* ---- tracing ------------------------------------------------------------ */

typedef struct relay {
  uint64_t next;          /* where a message goes on (0: the end) */
  _Atomic unsigned got, traced;
  _Atomic unsigned last_trace;
} relay;

static void relay_fn(shoal_actor *self, void *state, const shoal_msg *m) {
  relay *r = state;
  atomic_fetch_add(&r->got, 1);
  if (m->trace != 0) {
    atomic_fetch_add(&r->traced, 1);
    atomic_store(&r->last_trace, m->trace);
  }
  if (r->next != 0) {
    shoal_msg c = *m; /* a copy sent on keeps its trace */
    int rc = shoal_actor_try_send(self, r->next, &c);
    TEST_OFF_MAIN(rc == SHOAL_OK, "relay: rc %d", rc);
  }
}

typedef struct relay_goal {
  relay *r;
  unsigned n;
} relay_goal;
static int relay_got(void *p) {
  relay_goal *g = p;
  return atomic_load(&g->r->got) >= g->n;
}

/* A marked message's hops, in order, from the host through two actors;
 * one send in four traced when sampled; a refusal recorded; the Chrome
 * events; the console's view; off, nothing is traced. */
static void tracing(void **state) {
  relay a = {2, 0, 0, 0}, b = {0, 0, 0, 0};
  shoal_actors_config ac;
  shoal_runtime_config rc;
  shoal_hop h[16];
  relay_goal g;
  shoal_msg m = msg(T_DATA, 0, 0);
  unsigned id;
  int lines = 0;
  size_t len = 0;
  char *buf;
  long n;
  (void)state;
  /* off: a marked message gets no id */
  make(8, 0, NULL, NULL);
  assert_int_equal(reg(1, relay_fn, &a), SHOAL_OK);
  assert_int_equal(reg(2, relay_fn, &b), SHOAL_OK);
  m.flags = SHOAL_MSG_TRACE;
  assert_int_equal(shoal_try_send(sys, 1, &m), SHOAL_OK);
  g = (relay_goal){&b, 1};
  wait_for(relay_got, &g);
  assert_int_equal(atomic_load(&b.traced), 0);
  assert_int_equal(shoal_actors_trace(sys, 1, h, 16), SHOAL_ENOTSUP);
  unmake();
  /* on */
  memset(&a, 0, sizeof a);
  memset(&b, 0, sizeof b);
  a.next = 2;
  shoal_runtime_config_defaults(&rc);
  rc.workers = WORKERS;
  assert_int_equal(shoal_runtime_create(&rt, &rc), SHOAL_OK);
  shoal_actors_config_defaults(&ac);
  ac.max_actors = 8;
  ac.trace_ring = 1024;
  ac.trace_every = 4;
  assert_int_equal(shoal_actors_create(&sys, rt, &ac), SHOAL_OK);
  assert_int_equal(reg(1, relay_fn, &a), SHOAL_OK);
  assert_int_equal(reg(2, relay_fn, &b), SHOAL_OK);
  /* sampled: the host's 40 sends to actor 2 (sends 1 … 40), one in four */
  m.flags = 0;
  for (int i = 0; i < 40; i++)
    send_all(2, &m);
  g = (relay_goal){&b, 40};
  wait_for(relay_got, &g);
  assert_int_equal(atomic_load(&b.traced), 10);
  /* marked: host → 1 → 2 */
  m.flags = SHOAL_MSG_TRACE;
  assert_int_equal(shoal_try_send(sys, 1, &m), SHOAL_OK);
  g = (relay_goal){&b, 41};
  wait_for(relay_got, &g);
  id = atomic_load(&b.last_trace);
  assert_true(id != 0);
  n = shoal_actors_trace(sys, id, h, 16);
  assert_int_equal(n, 4);
  assert_int_equal(h[0].kind, SHOAL_HOP_SEND);
  assert_int_equal(h[0].to, 1);
  assert_int_equal(h[0].worker, -1); /* the host's thread */
  assert_int_equal(h[1].kind, SHOAL_HOP_RUN);
  assert_int_equal(h[1].to, 1);
  assert_true(h[1].worker >= 0);
  assert_int_equal(h[2].kind, SHOAL_HOP_SEND);
  assert_int_equal(h[2].from, 1);
  assert_int_equal(h[2].to, 2);
  assert_int_equal(h[3].kind, SHOAL_HOP_RUN);
  assert_int_equal(h[3].to, 2);
  for (int k = 1; k < 4; k++)
    assert_true(h[k].ns >= h[k - 1].ns);
  /* a refusal: to nobody */
  assert_int_equal(shoal_try_send(sys, 7, &m), SHOAL_ENOENT);
  /* the Chrome events: asked for the size, then written */
  assert_int_equal(shoal_actors_trace_chrome(sys, NULL, 0, &len),
                   SHOAL_ENOSPC);
  assert_true(len > 0);
  buf = malloc(len + 1);
  assert_int_equal(shoal_actors_trace_chrome(sys, buf, len + 1, &len),
                   SHOAL_OK);
  assert_true(strncmp(buf, "{\"traceEvents\":[", 16) == 0);
  assert_non_null(strstr(buf, "\"name\":\"refused\""));
  assert_non_null(strstr(buf, "\"ph\":\"s\""));
  assert_non_null(strstr(buf, "\"ph\":\"f\""));
  free(buf);
  {
    char what[32];
    snprintf(what, sizeof what, "trace %u", id);
    assert_int_equal(shoal_actors_report(sys, what, line_count, &lines),
                     SHOAL_OK);
    assert_int_equal(lines, 2 + 4); /* a title, a header, the hops */
  }
  assert_int_equal(shoal_actors_trace(sys, 0, h, 16), SHOAL_EINVAL);
  unmake();
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(errors),
    cmocka_unit_test(fifo_per_sender),
    cmocka_unit_test(full_policies),
    cmocka_unit_test(request_reply),
    cmocka_unit_test(call_beside_give_back),
    cmocka_unit_test(scatter_gather),
    cmocka_unit_test(pubsub_churn),
    cmocka_unit_test(unregister_in_flight),
    cmocka_unit_test(per_tick_limit),
    cmocka_unit_test(pinned),
    cmocka_unit_test(watched),
    cmocka_unit_test(supervision),
    cmocka_unit_test(tracing),
    cmocka_unit_test(figures),
  };
  return test_run("actors", tests, SHOAL_ARRAY_LEN(tests));
}
