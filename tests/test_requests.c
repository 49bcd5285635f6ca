/* test_requests.c — session request-reply and the timers that drive it:
 * a session's request answered in its inbox by the actor's reply or, at
 * exactly its timeout of manager time, by a timeout; a reply after the
 * timeout counted late and never delivered; every request answered
 * exactly once while an actor replies and sessions are released and
 * created again; actor-to-actor requests with a timeout; map tasks on
 * timers (exact counts, cancel, in the map's turn before its update); and
 * the attach contract. */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "runtime/common.h"
#include "test_util.h"

#define OP_ANS 70
#define ECHO 1      /* replies value * 10, ignores values ≡ 0 mod 4 (and
                       odd ones in the first test) */
#define HOLDER 2    /* keeps requests until told to answer them */
#define ASKER 3     /* asks SILENT and ECHO with timeouts */
#define NS 256u

#if SHOAL__TSAN
#define RACE_ROUNDS 300
#else
#define RACE_ROUNDS 3000
#endif

enum { T_ASK = 1, T_FLUSH = 2, T_GO = 3 };

typedef struct host {
  shoal_runtime *rt; /* the manager's and the actors' */
  shoal_mgr *mgr;
  shoal_actors *sys;
  int odd_silent;                  /* ECHO ignores odd values */
  _Atomic uint32_t want[NS];       /* the corr a session waits for; 0 none */
  _Atomic uint64_t value[NS];      /* what it asked */
  _Atomic uint64_t to[NS];         /* whom */
  _Atomic uint64_t replies, timeouts, bad, dropped_answers;
  /* HOLDER's requests, and ASKER's answers by corr */
  shoal_msg held[NS];
  unsigned nheld;
  _Atomic uint32_t asker_seen[1024];
  _Atomic uint64_t asker_replies, asker_timeouts, asker_bad;
  /* map tasks */
  _Atomic uint64_t task_runs, task_bad, in_map;
  uint64_t seen_at_update;
} host;

static host H;

static void sleep_ms(unsigned ms) {
  struct timespec ts = {0, (long)ms * 1000000L};
  nanosleep(&ts, NULL);
}

static int answer(void *hp, uint32_t id, void *user, const shoal_packet *p) {
  host *h = hp;
  shoal_msg m;
  uint32_t want;
  (void)user;
  if (p->len != sizeof m || id >= NS) {
    atomic_fetch_add(&h->bad, 1);
    return 0;
  }
  memcpy(&m, p->data, sizeof m);
  want = atomic_exchange(&h->want[id], 0);
  if (want == 0 || m.corr != want || !(m.flags & SHOAL_MSG_REPLY)) {
    atomic_fetch_add(&h->bad, 1); /* a second answer, or another's */
    return 0;
  }
  if (m.flags & SHOAL_MSG_TIMEOUT) {
    if (m.payload.u64[0] != atomic_load(&h->value[id]) ||
        m.from != atomic_load(&h->to[id]))
      atomic_fetch_add(&h->bad, 1);
    atomic_fetch_add(&h->timeouts, 1);
  } else {
    if (m.payload.u64[0] != atomic_load(&h->value[id]) * 10)
      atomic_fetch_add(&h->bad, 1);
    atomic_fetch_add(&h->replies, 1);
  }
  return 0;
}

static void drop_hook(void *hp, uint32_t id, const shoal_packet *p,
                      shoal_drop_reason why) {
  host *h = hp;
  (void)id;
  (void)why;
  if (p->opcode == OP_ANS)
    atomic_fetch_add(&h->dropped_answers, 1);
}

static void echo(shoal_actor *self, void *state, const shoal_msg *m) {
  shoal_msg r;
  uint64_t v = m->payload.u64[0];
  (void)state;
  if (!(m->flags & SHOAL_MSG_REQUEST) || v % 4 == 0 ||
      (H.odd_silent && v % 2 == 1))
    return;
  memset(&r, 0, sizeof r);
  r.payload.u64[0] = v * 10;
  r.size = 8;
  (void)shoal_actor_reply(self, m, &r);
}

static void holder(shoal_actor *self, void *state, const shoal_msg *m) {
  (void)state;
  if (m->type == T_FLUSH) {
    for (unsigned i = 0; i < H.nheld; i++) {
      shoal_msg r;
      memset(&r, 0, sizeof r);
      r.payload.u64[0] = H.held[i].payload.u64[0] * 10;
      (void)shoal_actor_reply(self, &H.held[i], &r);
    }
    H.nheld = 0;
  } else if ((m->flags & SHOAL_MSG_REQUEST) && H.nheld < NS) {
    H.held[H.nheld++] = *m;
  }
}

static void add_actor(uint64_t id, shoal_actor_fn fn) {
  shoal_actor_opts o;
  shoal_actor_opts_defaults(&o);
  o.handler = fn;
  assert_int_equal(shoal_actor_register(H.sys, id, &o), SHOAL_OK);
}

static void make(void) {
  shoal_config cfg;
  shoal_actors_config ac;
  shoal_runtime_config rc;
  shoal_mgr_callbacks cb = {test_nop_update, NULL, &H};
  memset(&H, 0, sizeof H);
  shoal_runtime_config_defaults(&rc);
  rc.workers = 4; /* more than the machine's cores */
  rc.log = test_quiet_log;
  assert_int_equal(shoal_runtime_create(&H.rt, &rc), SHOAL_OK);
  shoal_config_defaults(&cfg);
  cfg.max_sessions = NS;
  cfg.pool_preallocate = 64;
  cfg.inbox_size = 4096;
  cfg.log = test_quiet_log;
  assert_int_equal(shoal_mgr_create(&H.mgr, H.rt, &cfg, &cb), SHOAL_OK);
  assert_int_equal(shoal_mgr_register_opcode(H.mgr, OP_ANS,
                                             SHOAL_PACKET_INPLACE,
                                             SHOAL_CAT_OTHER, answer, NULL),
                   SHOAL_OK);
  assert_int_equal(shoal_mgr_set_drop_hook(H.mgr, drop_hook), SHOAL_OK);
  shoal_actors_config_defaults(&ac);
  ac.log = test_quiet_log;
  assert_int_equal(shoal_actors_create(&H.sys, H.rt, &ac), SHOAL_OK);
  add_actor(ECHO, echo);
  add_actor(HOLDER, holder);
}

static void unmake(void) {
  /* attached: the system refuses to go first */
  assert_int_equal(shoal_actors_destroy(H.sys), SHOAL_ESTATE);
  assert_int_equal(shoal_mgr_destroy(H.mgr), SHOAL_OK);
  assert_int_equal(shoal_actors_destroy(H.sys), SHOAL_OK);
  assert_int_equal(shoal_runtime_destroy(H.rt), SHOAL_OK);
}

/* Until actor id has handled n messages (5 s at most). */
static void wait_processed(uint64_t id, uint64_t n) {
  shoal_actor_stats st;
  for (int i = 0; i < 5000; i++) {
    assert_int_equal(shoal_actor_stats_get(H.sys, id, &st), SHOAL_OK);
    if (st.processed >= n)
      return;
    sleep_ms(1);
  }
  fail_msg("actor %llu handled %llu of %llu", (unsigned long long)id,
           (unsigned long long)st.processed, (unsigned long long)n);
}

static int ask(uint32_t id, uint64_t to, uint64_t v, uint64_t timeout) {
  shoal_msg m;
  uint32_t corr = 0;
  int rc;
  memset(&m, 0, sizeof m);
  m.type = T_ASK;
  m.payload.u64[0] = v;
  m.size = 8;
  atomic_store(&H.value[id], v);
  atomic_store(&H.to[id], to);
  rc = shoal_session_request(H.mgr, id, to, &m, OP_ANS, timeout, &corr);
  if (rc == SHOAL_OK) {
    assert_int_not_equal(corr, 0);
    atomic_store(&H.want[id], corr);
  }
  return rc;
}

static void stats_sum(uint64_t pending) {
  shoal_request_stats rs;
  assert_int_equal(shoal_request_stats_get(H.mgr, &rs), SHOAL_OK);
  assert_int_equal(rs.pending, pending);
  assert_int_equal(rs.requests,
                   rs.replies + rs.timeouts + rs.dropped + rs.pending);
}

/* Replies come in the next update; timeouts in exactly the update whose
 * clock reaches them, not one before. */
static void replies_and_timeouts(void **state) {
  shoal_request_stats rs;
  shoal_msg m;
  (void)state;
  make();
  H.odd_silent = 1;
  memset(&m, 0, sizeof m);
  assert_int_equal(shoal_session_request(H.mgr, 1, ECHO, &m, OP_ANS, 50,
                                         NULL),
                   SHOAL_ESTATE); /* nothing attached */
  assert_int_equal(shoal_mgr_attach_actors(H.mgr, H.sys), SHOAL_OK);
  assert_int_equal(shoal_mgr_attach_actors(H.mgr, H.sys), SHOAL_OK);
  for (uint32_t id = 1; id <= 100; id++)
    assert_int_equal(shoal_session_create(H.mgr, id, NULL), SHOAL_OK);
  assert_int_equal(shoal_session_request(H.mgr, 1, ECHO, &m, OP_ANS, 0,
                                         NULL),
                   SHOAL_EINVAL);
  assert_int_equal(shoal_session_request(H.mgr, 101, ECHO, &m, OP_ANS, 50,
                                         NULL),
                   SHOAL_ENOENT);
  assert_int_equal(shoal_session_request(H.mgr, 1, 999, &m, OP_ANS, 50, NULL),
                   SHOAL_ENOENT); /* no such actor: not counted */
  assert_int_equal(shoal_mgr_update(H.mgr, 10), SHOAL_OK);
  for (uint32_t id = 1; id <= 100; id++)
    assert_int_equal(ask(id, ECHO, id, 50), SHOAL_OK);
  wait_processed(ECHO, 100);
  for (int u = 1; u <= 4; u++) {
    assert_int_equal(shoal_mgr_update(H.mgr, 10), SHOAL_OK);
    assert_int_equal(atomic_load(&H.timeouts), 0);
  }
  assert_int_equal(shoal_mgr_update(H.mgr, 10), SHOAL_OK);
  assert_int_equal(atomic_load(&H.bad), 0);
  /* ECHO answers ids ≡ 2 mod 4; the others time out */
  assert_int_equal(atomic_load(&H.replies), 25);
  assert_int_equal(atomic_load(&H.timeouts), 75);
  for (uint32_t id = 1; id <= 100; id++)
    assert_int_equal(atomic_load(&H.want[id]), 0);
  assert_int_equal(shoal_request_stats_get(H.mgr, &rs), SHOAL_OK);
  assert_int_equal(rs.requests, 100);
  assert_int_equal(rs.replies, 25);
  assert_int_equal(rs.timeouts, 75);
  assert_int_equal(rs.dropped + rs.late + rs.pending, 0);
  unmake();
}

/* A reply after the timeout is late: counted, never delivered. */
static void late_replies(void **state) {
  shoal_request_stats rs;
  shoal_msg f;
  (void)state;
  make();
  assert_int_equal(shoal_mgr_attach_actors(H.mgr, H.sys), SHOAL_OK);
  for (uint32_t id = 1; id <= 40; id++) {
    assert_int_equal(shoal_session_create(H.mgr, id, NULL), SHOAL_OK);
    assert_int_equal(ask(id, HOLDER, id, 20), SHOAL_OK);
  }
  wait_processed(HOLDER, 40);
  for (int u = 0; u < 3; u++)
    assert_int_equal(shoal_mgr_update(H.mgr, 10), SHOAL_OK);
  assert_int_equal(atomic_load(&H.timeouts), 40);
  memset(&f, 0, sizeof f);
  f.type = T_FLUSH;
  assert_int_equal(shoal_try_send(H.sys, HOLDER, &f), SHOAL_OK);
  wait_processed(HOLDER, 41);
  for (int u = 0; u < 3; u++)
    assert_int_equal(shoal_mgr_update(H.mgr, 10), SHOAL_OK);
  assert_int_equal(atomic_load(&H.replies), 0);
  assert_int_equal(atomic_load(&H.bad), 0);
  assert_int_equal(shoal_request_stats_get(H.mgr, &rs), SHOAL_OK);
  assert_int_equal(rs.late, 40);
  assert_int_equal(rs.timeouts, 40);
  stats_sum(0);
  unmake();
}

/* Replies from ECHO's workers race with timeouts and with releases and
 * creations of the sessions between updates: each request is answered
 * once or dropped, never twice, never to the id's next session. */
static void answered_once_with_releases(void **state) {
  shoal_request_stats rs;
  uint64_t asked = 0, seed = 12345;
  (void)state;
  make();
  assert_int_equal(shoal_mgr_attach_actors(H.mgr, H.sys), SHOAL_OK);
  for (uint32_t id = 1; id < NS; id++)
    assert_int_equal(shoal_session_create(H.mgr, id, NULL), SHOAL_OK);
  for (int r = 0; r < RACE_ROUNDS; r++) {
    for (int k = 0; k < 40; k++) {
      uint32_t id;
      seed = seed * 6364136223846793005u + 1442695040888963407u;
      id = 1 + (uint32_t)(seed >> 33) % (NS - 1);
      if (atomic_load(&H.want[id]) == 0) {
        int rc = ask(id, ECHO, seed >> 40, 1 + (seed >> 20) % 8);
        if (rc == SHOAL_OK)
          asked++;
        else if (rc != SHOAL_ENOENT && rc != SHOAL_EAGAIN) /* released;
                                                       ECHO's mailbox full */
          fail_msg("request: %s", shoal_err_name(rc));
      }
    }
    for (int k = 0; k < 3; k++) { /* a few sessions go, a few come back */
      uint32_t id;
      seed = seed * 6364136223846793005u + 1442695040888963407u;
      id = 1 + (uint32_t)(seed >> 33) % (NS - 1);
      if (shoal_session_release(H.mgr, id) == SHOAL_OK)
        atomic_store(&H.want[id], 0); /* its answer is dropped */
      else
        assert_int_equal(shoal_session_create(H.mgr, id, NULL), SHOAL_OK);
    }
    assert_int_equal(shoal_mgr_update(H.mgr, 2), SHOAL_OK);
  }
  wait_processed(ECHO, asked);
  for (int u = 0; u < 10; u++)
    assert_int_equal(shoal_mgr_update(H.mgr, 2), SHOAL_OK);
  assert_int_equal(atomic_load(&H.bad), 0);
  for (uint32_t id = 1; id < NS; id++)
    assert_int_equal(atomic_load(&H.want[id]), 0);
  assert_int_equal(shoal_request_stats_get(H.mgr, &rs), SHOAL_OK);
  assert_int_equal(rs.requests, asked);
  stats_sum(0);
  /* what went in was handled, or dropped with its session */
  assert_int_equal(rs.replies + rs.timeouts,
                   atomic_load(&H.replies) + atomic_load(&H.timeouts) +
                       atomic_load(&H.dropped_answers));
  assert_true(rs.timeouts > 0 && rs.replies > 0 && rs.dropped > 0);
  unmake();
}

/* ---- actor to actor ----------------------------------------------------- */

static void asker(shoal_actor *self, void *state, const shoal_msg *m) {
  (void)state;
  if (m->type == T_GO) {
    for (uint64_t v = 1; v <= 200; v++) {
      shoal_msg q;
      uint32_t corr;
      memset(&q, 0, sizeof q);
      q.payload.u64[0] = v;
      if (shoal_actor_request_timeout(self, ECHO, &q, 30, &corr) !=
              SHOAL_OK ||
          corr >= 1024)
        atomic_fetch_add(&H.asker_bad, 1);
      else
        atomic_store(&H.asker_seen[corr], (uint32_t)v);
    }
    return;
  }
  if (!(m->flags & SHOAL_MSG_REPLY) || m->corr >= 1024 ||
      atomic_exchange(&H.asker_seen[m->corr], 0) == 0) {
    atomic_fetch_add(&H.asker_bad, 1); /* unknown, or a second answer */
    return;
  }
  if (m->flags & SHOAL_MSG_TIMEOUT) {
    if (m->payload.u64[0] % 4 != 0 || m->from != ECHO)
      atomic_fetch_add(&H.asker_bad, 1);
    atomic_fetch_add(&H.asker_timeouts, 1);
  } else {
    if (m->payload.u64[0] % 40 == 0)
      atomic_fetch_add(&H.asker_bad, 1);
    atomic_fetch_add(&H.asker_replies, 1);
  }
}

static void actor_timeouts(void **state) {
  shoal_actors_stats st;
  shoal_msg go;
  (void)state;
  make();
  add_actor(ASKER, asker);
  memset(&go, 0, sizeof go);
  go.type = T_GO;
  assert_int_equal(shoal_try_send(H.sys, ASKER, &go), SHOAL_OK);
  for (int i = 0; i < 5000 && atomic_load(&H.asker_replies) +
                                      atomic_load(&H.asker_timeouts) <
                                  200;
       i++) {
    shoal_actors_tick(H.sys);
    sleep_ms(1);
  }
  assert_int_equal(atomic_load(&H.asker_bad), 0);
  assert_int_equal(atomic_load(&H.asker_replies), 150);
  assert_int_equal(atomic_load(&H.asker_timeouts), 50);
  assert_int_equal(shoal_actors_stats_get(H.sys, &st), SHOAL_OK);
  assert_int_equal(st.requests, 200);
  assert_int_equal(st.replies, 150);
  assert_int_equal(st.timeouts, 50);
  assert_int_equal(st.requests_dropped, 0);
  assert_int_equal(shoal_mgr_destroy(H.mgr), SHOAL_OK); /* never attached */
  assert_int_equal(shoal_actors_destroy(H.sys), SHOAL_OK);
  assert_int_equal(shoal_runtime_destroy(H.rt), SHOAL_OK);
}

/* ---- map tasks ---------------------------------------------------------- */

static void task(void *hp, uint32_t map, void *arg) {
  host *h = hp;
  if (map != 7 || arg != &H || atomic_exchange(&h->in_map, 1) != 0)
    atomic_fetch_add(&h->task_bad, 1);
  atomic_fetch_add(&h->task_runs, 1);
  atomic_store(&h->in_map, 0);
}

static void map_update(void *hp, uint32_t map, uint32_t diff) {
  host *h = hp;
  (void)diff;
  if (map == 7) {
    if (atomic_exchange(&h->in_map, 1) != 0)
      atomic_fetch_add(&h->task_bad, 1);
    h->seen_at_update = atomic_load(&h->task_runs);
    atomic_store(&h->in_map, 0);
  }
}

static void map_tasks(void **state) {
  shoal_timer_id every = 0, once = 0, gone = 0;
  shoal_timer_stats ts;
  (void)state;
  make();
  assert_int_equal(shoal_mgr_set_map_update(H.mgr, map_update), SHOAL_OK);
  assert_int_equal(shoal_map_timer_start(H.mgr, 7, 10, 10, NULL, NULL, NULL),
                   SHOAL_EINVAL);
  assert_int_equal(shoal_map_timer_start(H.mgr, 7, 10, 10, task, &H, &every),
                   SHOAL_OK);
  assert_int_equal(shoal_map_timer_start(H.mgr, 7, 35, 0, task, &H, &once),
                   SHOAL_OK);
  assert_int_equal(shoal_map_timer_start(H.mgr, 7, 500, 0, task, &H, &gone),
                   SHOAL_OK);
  assert_int_equal(shoal_timer_cancel(H.mgr, gone), SHOAL_OK);
  for (int u = 1; u <= 100; u++) {
    assert_int_equal(shoal_mgr_update(H.mgr, 10), SHOAL_OK);
    /* every 10 ms once, and the one-shot at 35 ms */
    assert_int_equal(atomic_load(&H.task_runs), (uint64_t)u + (u >= 4));
    /* the tasks ran in the map's turn before its update */
    assert_int_equal(H.seen_at_update, atomic_load(&H.task_runs));
  }
  assert_int_equal(shoal_mgr_update(H.mgr, 1000), SHOAL_OK); /* 100 more */
  assert_int_equal(atomic_load(&H.task_runs), 201);
  assert_int_equal(shoal_timer_cancel(H.mgr, every), SHOAL_OK);
  assert_int_equal(shoal_timer_cancel(H.mgr, once), SHOAL_ENOENT);
  assert_int_equal(shoal_mgr_update(H.mgr, 100), SHOAL_OK);
  assert_int_equal(atomic_load(&H.task_runs), 201);
  assert_int_equal(atomic_load(&H.task_bad), 0);
  assert_int_equal(shoal_timer_stats_get(H.mgr, &ts), SHOAL_OK);
  assert_int_equal(ts.started, 3);
  assert_int_equal(ts.fired, 201);
  assert_int_equal(ts.cancelled, 2);
  assert_int_equal(shoal_mgr_destroy(H.mgr), SHOAL_OK);
  assert_int_equal(shoal_actors_destroy(H.sys), SHOAL_OK);
  assert_int_equal(shoal_runtime_destroy(H.rt), SHOAL_OK);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(replies_and_timeouts),
      cmocka_unit_test(late_replies),
      cmocka_unit_test(answered_once_with_releases),
      cmocka_unit_test(actor_timeouts),
      cmocka_unit_test(map_tasks),
  };
  return test_run("requests", tests, SHOAL_ARRAY_LEN(tests));
}
