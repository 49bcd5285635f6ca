/* test_limits.c — rate limits per session per category and the figures
 * per opcode: a flooding session's excess past its category's bucket is
 * dropped on the worker and counted exactly (drop hook, rate_limited,
 * by category), other categories and other sessions untouched, the
 * bucket refilled by the manager's clock; too many limited categories
 * refuse the configuration; per-opcode counts, failures and sampled
 * times, with a reset. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test_util.h"

#define OP_CHAT 40 /* INPLACE, chat */
#define OP_MOVE 41 /* INPLACE, movement */
#define OP_ITEM 42 /* MAIN, item */
#define OP_UNREG 999

typedef struct host {
  _Atomic uint64_t handled[3];
  _Atomic uint64_t limited_seen;
} host;

static host H;

static int handler(void *hp, uint32_t id, void *user, const shoal_packet *p) {
  host *h = hp;
  (void)user;
  if (id >= 1 && id <= 2)
    atomic_fetch_add(&h->handled[id], 1);
  return p->flags == 1 ? -1 : 0;
}

static void on_drop(void *hp, uint32_t id, const shoal_packet *p,
                    shoal_drop_reason reason) {
  (void)id;
  if (reason == SHOAL_DROP_RATE_LIMITED && p->opcode == OP_CHAT)
    atomic_fetch_add(&((host *)hp)->limited_seen, 1);
}

static shoal_mgr *make(unsigned chat_rate) {
  shoal_config cfg;
  shoal_mgr_callbacks cb = {test_nop_update, NULL, &H};
  shoal_mgr *mgr = NULL;
  memset(&H, 0, sizeof H);
  shoal_config_defaults(&cfg);
  cfg.worker_threads = 3;
  cfg.max_sessions = 16;
  cfg.pool_preallocate = 16;
  cfg.rate_limit[SHOAL_CAT_CHAT] = chat_rate;
  cfg.rate_burst_ms = 1000;
  cfg.log = test_quiet_log;
  assert_int_equal(shoal_mgr_create(&mgr, NULL, &cfg, &cb), SHOAL_OK);
  assert_int_equal(shoal_mgr_register_opcode(mgr, OP_CHAT,
                                             SHOAL_PACKET_INPLACE,
                                             SHOAL_CAT_CHAT, handler, NULL),
                   SHOAL_OK);
  assert_int_equal(shoal_mgr_register_opcode(mgr, OP_MOVE,
                                             SHOAL_PACKET_INPLACE,
                                             SHOAL_CAT_MOVEMENT, handler,
                                             NULL),
                   SHOAL_OK);
  assert_int_equal(shoal_mgr_register_opcode(mgr, OP_ITEM, SHOAL_PACKET_MAIN,
                                             SHOAL_CAT_ITEM, handler, NULL),
                   SHOAL_OK);
  assert_int_equal(shoal_mgr_set_drop_hook(mgr, on_drop), SHOAL_OK);
  for (uint32_t id = 1; id <= 2; id++)
    assert_int_equal(shoal_session_create(mgr, id, NULL), SHOAL_OK);
  return mgr;
}

static void send_n(shoal_mgr *mgr, uint32_t id, uint16_t op, int n,
                   uint16_t flags) {
  for (int k = 0; k < n; k++)
    assert_int_equal(shoal_session_send(mgr, id, op, flags, "x", 1), SHOAL_OK);
}

/* 10 chat packets a second, a bucket of 10: the excess of a flood is
 * dropped and counted exactly, and the bucket refills with the clock. */
static void rate_limit(void **state) {
  shoal_mgr *mgr = make(10);
  shoal_packet_stats st;
  (void)state;
  send_n(mgr, 1, OP_CHAT, 100, 0);
  send_n(mgr, 1, OP_MOVE, 50, 0); /* another category: no limit */
  send_n(mgr, 2, OP_CHAT, 12, 0); /* another session: its own bucket */
  assert_int_equal(shoal_mgr_update(mgr, 50), SHOAL_OK);
  assert_int_equal(shoal_mgr_update(mgr, 0), SHOAL_OK); /* 1's last 50 */
  assert_int_equal(atomic_load(&H.handled[1]), 10 + 50);
  assert_int_equal(atomic_load(&H.handled[2]), 10);
  assert_int_equal(shoal_packet_stats_get(mgr, &st, 0), SHOAL_OK);
  assert_int_equal(st.rate_limited, 90 + 2);
  assert_int_equal(st.rate_limited_by_category[SHOAL_CAT_CHAT], 92);
  assert_int_equal(st.rate_limited_by_category[SHOAL_CAT_MOVEMENT], 0);
  assert_int_equal(st.dropped, 92);
  assert_int_equal(atomic_load(&H.limited_seen), 92);
  /* half a second later: 5 more (one per 100 ms) */
  send_n(mgr, 1, OP_CHAT, 20, 0);
  assert_int_equal(shoal_mgr_update(mgr, 500), SHOAL_OK);
  assert_int_equal(atomic_load(&H.handled[1]), 60 + 5);
  /* two seconds of quiet: a full bucket again, and no more */
  assert_int_equal(shoal_mgr_update(mgr, 2000), SHOAL_OK);
  send_n(mgr, 1, OP_CHAT, 30, 0);
  assert_int_equal(shoal_mgr_update(mgr, 0), SHOAL_OK);
  assert_int_equal(atomic_load(&H.handled[1]), 65 + 10);
  assert_int_equal(shoal_packet_stats_get(mgr, &st, 0), SHOAL_OK);
  assert_int_equal(st.rate_limited, 92 + 15 + 20);
  assert_int_equal(st.handled + st.dropped + st.rejected + st.pending,
                   st.sent);
  assert_int_equal(shoal_mgr_destroy(mgr), SHOAL_OK);
}

/* More than eight limited categories: the configuration is refused. */
static void too_many_limits(void **state) {
  shoal_config cfg;
  shoal_mgr_callbacks cb = {test_nop_update, NULL, &H};
  shoal_mgr *mgr = NULL;
  char err[160];
  (void)state;
  shoal_config_defaults(&cfg);
  cfg.log = test_quiet_log;
  for (int k = 0; k < 9; k++)
    cfg.rate_limit[k] = 5;
  assert_int_not_equal(shoal_mgr_create(&mgr, NULL, &cfg, &cb), SHOAL_OK);
  assert_null(mgr);
  /* one key at a time is taken; the whole file is checked */
  {
    char path[] = "/tmp/shoal-limits-XXXXXX";
    int fd = mkstemp(path);
    FILE *f;
    assert_true(fd >= 0);
    assert_non_null(f = fdopen(fd, "w"));
    for (int k = 0; k < 9; k++)
      fprintf(f, "SessionMgr.RateLimit.%s = 5\n",
              shoal_packet_category_name((shoal_packet_category)k));
    fclose(f);
    shoal_config_defaults(&cfg);
    assert_int_not_equal(shoal_config_load(&cfg, path, err, sizeof err),
                         SHOAL_OK);
    assert_non_null(strstr(err, "at most 8"));
    assert_int_equal(cfg.rate_limit[0], 0); /* left as it was */
    unlink(path);
  }
}

/* Counts, failures and sampled times per opcode; the unregistered ones
 * in one row; a reset. */
static void opcode_figures(void **state) {
  shoal_mgr *mgr = make(0);
  shoal_opcode_stats os[8];
  uint64_t timed = 0;
  long n;
  (void)state;
  assert_int_equal(shoal_mgr_set_default_handler(mgr, handler), SHOAL_OK);
  send_n(mgr, 1, OP_MOVE, 100, 0);
  send_n(mgr, 2, OP_ITEM, 30, 0);
  send_n(mgr, 2, OP_ITEM, 10, 1); /* these fail */
  send_n(mgr, 1, OP_UNREG, 5, 0);
  assert_int_equal(shoal_mgr_update(mgr, 50), SHOAL_OK);
  assert_int_equal(shoal_mgr_update(mgr, 50), SHOAL_OK);
  assert_true(shoal_mgr_drain_deferred(mgr, 0, NULL) >= 0);
  assert_int_equal(shoal_mgr_opcode_stats(NULL, os, 8, 0), SHOAL_EINVAL);
  assert_int_equal(shoal_mgr_opcode_stats(mgr, NULL, 1, 0), SHOAL_EINVAL);
  n = shoal_mgr_opcode_stats(mgr, os, 8, 0);
  assert_int_equal(n, 4); /* three registered, the unregistered row */
  assert_int_equal(os[0].opcode, OP_MOVE);
  assert_int_equal(os[0].handled, 100);
  assert_int_equal(os[0].failed, 0);
  assert_int_equal(os[0].category, SHOAL_CAT_MOVEMENT);
  assert_int_equal(os[0].cls, SHOAL_PACKET_INPLACE);
  assert_int_equal(os[1].opcode, OP_ITEM);
  assert_int_equal(os[1].handled, 40);
  assert_int_equal(os[1].failed, 10);
  assert_int_equal(os[1].cls, SHOAL_PACKET_MAIN);
  assert_int_equal(os[2].registered, 0);
  assert_int_equal(os[2].handled, 5);
  assert_int_equal(os[3].opcode, OP_CHAT);
  assert_int_equal(os[3].handled, 0);
  for (long k = 0; k < n; k++) {
    assert_true(os[k].timed <= os[k].handled);
    assert_true(os[k].time_p50_ns <= os[k].time_p99_ns);
    timed += os[k].timed;
  }
  /* one in 16 of each thread's: the 100 on one worker give 6 at least */
  assert_true(timed >= 6);
  assert_int_equal(shoal_mgr_opcode_stats(mgr, os, 1, 1), 4);
  assert_int_equal(shoal_mgr_opcode_stats(mgr, os, 8, 0), 4);
  for (int k = 0; k < 4; k++)
    assert_int_equal(os[k].handled, 0);
  assert_int_equal(shoal_mgr_destroy(mgr), SHOAL_OK);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(rate_limit),
      cmocka_unit_test(too_many_limits),
      cmocka_unit_test(opcode_figures),
  };
  return test_run("limits", tests, SHOAL_ARRAY_LEN(tests));
}
