/* test_timers.c — timers on the manager's clock: exact firing counts for
 * one-shot and periodic timers over many intervals and across every level
 * of the wheel; cancel once (twice, or after the firing: SHOAL_ENOENT); a
 * hibernated session woken by its timer; a released session's timers
 * never reach the session created again with its id (counted as gone);
 * four threads starting and cancelling against ticks and releases, where
 * every timer ends exactly one way. */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "runtime/common.h"
#include "test_util.h"

#define OP_A 50
#define OP_B 51
#define OP_C 52
#define OP_D 53

#if SHOAL__TSAN
#define RACE_OPS 5000
#else
#define RACE_OPS 50000
#endif

typedef struct host {
  shoal_mgr *mgr;
  _Atomic uint64_t got[4];       /* by opcode − OP_A */
  _Atomic uint64_t got_by[64][4]; /* by session and opcode */
  _Atomic uint64_t bad;
} host;

static host H;

static int handler(void *hp, uint32_t id, void *user, const shoal_packet *p) {
  host *h = hp;
  uint32_t v;
  (void)user;
  if (p->opcode < OP_A || p->opcode > OP_D || p->len != sizeof v) {
    atomic_fetch_add(&h->bad, 1);
    return 0;
  }
  memcpy(&v, p->data, sizeof v);
  if (v != id) /* every timer carries its session's id */
    atomic_fetch_add(&h->bad, 1);
  atomic_fetch_add(&h->got[p->opcode - OP_A], 1);
  if (id < 64)
    atomic_fetch_add(&h->got_by[id][p->opcode - OP_A], 1);
  return 0;
}

static shoal_mgr *make(int hibernate) {
  shoal_config cfg;
  shoal_mgr_callbacks cb = {test_nop_update, NULL, &H};
  shoal_hib_callbacks hc = {test_hib_keep_id, test_hib_wake_null, NULL};
  memset(&H, 0, sizeof H);
  shoal_config_defaults(&cfg);
  cfg.worker_threads = 3;
  cfg.max_sessions = 256;
  cfg.pool_preallocate = 64;
  cfg.inbox_size = 4096;
  cfg.log = test_quiet_log;
  assert_int_equal(shoal_mgr_create(&H.mgr, NULL, &cfg, &cb), SHOAL_OK);
  for (uint16_t op = OP_A; op <= OP_D; op++)
    assert_int_equal(shoal_mgr_register_opcode(H.mgr, op,
                                               SHOAL_PACKET_INPLACE,
                                               SHOAL_CAT_OTHER, handler, NULL),
                     SHOAL_OK);
  if (hibernate) {
    assert_int_equal(shoal_mgr_set_hibernation(H.mgr, &hc), SHOAL_OK);
    assert_int_equal(shoal_mgr_set_hibernation_ms(H.mgr, 1000), SHOAL_OK);
    assert_int_equal(shoal_mgr_set_hibernation_hysteresis_ms(H.mgr, 0),
                     SHOAL_OK);
  }
  return H.mgr;
}

static shoal_timer_id start(uint32_t id, uint64_t delay, uint64_t every,
                            uint16_t op) {
  shoal_timer_id t = 0;
  assert_int_equal(shoal_timer_start(H.mgr, id, delay, every, op, 0, &id,
                                     sizeof id, &t),
                   SHOAL_OK);
  assert_true(t != 0);
  return t;
}

static void run(uint32_t ticks, uint32_t diff) {
  for (uint32_t k = 0; k < ticks; k++)
    assert_int_equal(shoal_mgr_update(H.mgr, diff), SHOAL_OK);
}

/* One-shot and periodic timers fire exactly as often as their time says,
 * across every level of the wheel. */
static void exact_counts(void **state) {
  shoal_timer_id a, b, c;
  shoal_timer_stats st;
  unsigned char big[SHOAL_TIMER_DATA_MAX + 1] = {0};
  (void)state;
  make(0);
  assert_int_equal(shoal_session_create(H.mgr, 1, NULL), SHOAL_OK);
  assert_int_equal(shoal_timer_start(NULL, 1, 1, 0, OP_A, 0, NULL, 0, NULL),
                   SHOAL_EINVAL);
  assert_int_equal(shoal_timer_start(H.mgr, 0, 1, 0, OP_A, 0, NULL, 0, NULL),
                   SHOAL_EINVAL);
  assert_int_equal(shoal_timer_start(H.mgr, 1, 1, 0, OP_A, 0, big,
                                     sizeof big, NULL),
                   SHOAL_EINVAL);
  assert_int_equal(shoal_timer_start(H.mgr, 9, 1, 0, OP_A, 0, NULL, 0, NULL),
                   SHOAL_ENOENT);
  assert_int_equal(shoal_timer_cancel(H.mgr, 0), SHOAL_EINVAL);
  assert_int_equal(shoal_timer_cancel(H.mgr, ((uint64_t)1 << 32) | 999999),
                   SHOAL_ENOENT);
  a = start(1, 100, 0, OP_A);  /* once, at 100 */
  b = start(1, 10, 10, OP_B);  /* 10, 20, … */
  c = start(1, 7, 7, OP_C);    /* 7, 14, … */
  run(10, 50);                 /* clock 500 */
  assert_int_equal(atomic_load(&H.got[0]), 1);
  assert_int_equal(atomic_load(&H.got[1]), 50);
  assert_int_equal(atomic_load(&H.got[2]), 500 / 7);
  assert_int_equal(shoal_timer_cancel(H.mgr, a), SHOAL_ENOENT); /* fired */
  assert_int_equal(shoal_timer_cancel(H.mgr, b), SHOAL_OK);
  assert_int_equal(shoal_timer_cancel(H.mgr, b), SHOAL_ENOENT);
  run(10, 50);                 /* clock 1000 */
  assert_int_equal(atomic_load(&H.got[1]), 50);
  assert_int_equal(atomic_load(&H.got[2]), 1000 / 7);
  /* a long update: one packet per interval of it (in the inbox; a session
   * takes MaxPacketsPerUpdate of them per update) */
  run(1, 700);
  assert_int_equal(shoal_timer_cancel(H.mgr, c), SHOAL_OK);
  run(2, 1); /* the rest of them taken */
  assert_int_equal(atomic_load(&H.got[2]), 1700 / 7);
  /* the higher levels: 5 s (level 2), 300 s (level 3), 2^25 ms (past the
   * wheel: put back until its time) */
  (void)start(1, 5000, 0, OP_D);
  (void)start(1, 300000, 0, OP_D);
  (void)start(1, UINT64_C(1) << 25, 0, OP_D);
  run(4, 1000); /* 5000 after the start: fires in the 5th update */
  assert_int_equal(atomic_load(&H.got[3]), 0);
  run(1, 1000);
  assert_int_equal(atomic_load(&H.got[3]), 1);
  run(1, 300000 - 5000 - 1);
  assert_int_equal(atomic_load(&H.got[3]), 1);
  run(1, 1);
  assert_int_equal(atomic_load(&H.got[3]), 2);
  run(1, (1u << 25) - 300000);
  assert_int_equal(atomic_load(&H.got[3]), 3);
  assert_int_equal(atomic_load(&H.bad), 0);
  assert_int_equal(shoal_timer_stats_get(H.mgr, &st), SHOAL_OK);
  assert_int_equal(st.started, 6);
  assert_int_equal(st.cancelled, 2);
  assert_int_equal(st.fired, 1 + 50 + atomic_load(&H.got[2]) + 3);
  assert_int_equal(shoal_mgr_destroy(H.mgr), SHOAL_OK);
}

/* A timer for a sleeping session wakes it; a released session's timers
 * never reach the session created again with its id. */
static void asleep_and_released(void **state) {
  shoal_hib_stats hs;
  shoal_timer_stats st;
  (void)state;
  make(1);
  for (uint32_t id = 1; id <= 3; id++)
    assert_int_equal(shoal_session_create(H.mgr, id, NULL), SHOAL_OK);
  run(1, 1500); /* idle: hibernated by the update's pass */
  assert_true(shoal_mgr_hibernate_idle(H.mgr, 0) >= 0);
  assert_int_equal(shoal_hib_stats_get(H.mgr, &hs, 0), SHOAL_OK);
  assert_int_equal(hs.hibernated, 3);
  (void)start(1, 100, 0, OP_A); /* asleep: started all the same */
  (void)start(2, 100, 100, OP_B);
  run(1, 100); /* fires: held, the session asked to wake */
  run(1, 1);   /* woken and updated */
  assert_int_equal(atomic_load(&H.got_by[1][0]), 1);
  /* 2 released: its periodic timer stops; a new 2 gets nothing of it */
  assert_int_equal(shoal_session_release(H.mgr, 2), SHOAL_OK);
  assert_int_equal(shoal_session_create(H.mgr, 2, NULL), SHOAL_OK);
  run(5, 100);
  assert_int_equal(atomic_load(&H.got_by[2][1]), 1); /* the one before */
  assert_int_equal(shoal_timer_stats_get(H.mgr, &st), SHOAL_OK);
  assert_int_equal(st.gone, 1);
  assert_int_equal(st.fired, 2);
  assert_int_equal(atomic_load(&H.bad), 0);
  assert_int_equal(shoal_mgr_destroy(H.mgr), SHOAL_OK);
}

typedef struct racer {
  unsigned seed;
  _Atomic int *done; /* racers finished */
  uint64_t cancelled;
} racer;

static void *race_main(void *arg) {
  racer *r = arg;
  unsigned x = r->seed;
  shoal_timer_id mine[16] = {0};
  for (int op = 0; op < RACE_OPS; op++) {
    uint32_t id = 1 + (x = x * 1103515245u + 12345u) % 32, k = (x >> 8) % 16;
    if (mine[k] != 0 && shoal_timer_cancel(H.mgr, mine[k]) == SHOAL_OK)
      r->cancelled++;
    mine[k] = 0;
    (void)shoal_timer_start(H.mgr, id, (x >> 12) % 40, 0, OP_A, 0, &id,
                            sizeof id, &mine[k]);
  }
  atomic_fetch_add(r->done, 1);
  return NULL;
}

/* Four threads start and cancel one-shots against ticks and releases:
 * each ends exactly one way (fired, cancelled or gone), and every firing
 * reached a handler. */
static void cancel_race(void **state) {
  _Atomic int done = 0;
  racer r[4];
  pthread_t t[4];
  shoal_timer_stats st;
  shoal_packet_stats ps;
  uint64_t cancelled = 0;
  (void)state;
  make(0);
  for (uint32_t id = 1; id <= 32; id++)
    assert_int_equal(shoal_session_create(H.mgr, id, NULL), SHOAL_OK);
  for (int k = 0; k < 4; k++) {
    r[k] = (racer){(unsigned)k * 7919u + 3u, &done, 0};
    assert_int_equal(pthread_create(&t[k], NULL, race_main, &r[k]), 0);
  }
  /* ticks and releases until the racers are done (progress, not time) */
  for (int k = 0; atomic_load(&done) < 4; k++) {
    assert_int_equal(shoal_mgr_update(H.mgr, 1), SHOAL_OK);
    if (k % 50 == 0) {
      uint32_t id = 1 + (uint32_t)k % 32;
      assert_int_equal(shoal_session_release(H.mgr, id), SHOAL_OK);
      assert_int_equal(shoal_session_create(H.mgr, id, NULL), SHOAL_OK);
    }
  }
  for (int k = 0; k < 4; k++) {
    pthread_join(t[k], NULL);
    cancelled += r[k].cancelled;
  }
  /* every delay passes and every start is taken (an update takes at most
   * 65 536 from the queue) */
  for (int k = 0; k < 1000; k++) {
    run(1, 50);
    assert_int_equal(shoal_timer_stats_get(H.mgr, &st), SHOAL_OK);
    if (st.fired + st.cancelled + st.gone == st.started)
      break;
  }
  assert_int_equal(shoal_packet_stats_get(H.mgr, &ps, 0), SHOAL_OK);
  print_message("# %llu started: %llu fired, %llu cancelled, %llu gone\n",
                (unsigned long long)st.started, (unsigned long long)st.fired,
                (unsigned long long)st.cancelled, (unsigned long long)st.gone);
  assert_true(st.started > 100);
  assert_int_equal(st.cancelled, cancelled);
  assert_int_equal(st.fired + st.cancelled + st.gone, st.started);
  assert_int_equal(atomic_load(&H.got[0]) + ps.dropped + ps.rejected,
                   st.fired);
  assert_int_equal(atomic_load(&H.bad), 0);
  assert_int_equal(shoal_mgr_destroy(H.mgr), SHOAL_OK);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(exact_counts),
      cmocka_unit_test(asleep_and_released),
      cmocka_unit_test(cancel_race),
  };
  return test_run("timers", tests, SHOAL_ARRAY_LEN(tests));
}
