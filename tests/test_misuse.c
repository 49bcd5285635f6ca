/* test_misuse.c — a host that does what the contract allows but no host
 * should be expected to get right first time: releases from on_release
 * while the manager is destroyed, a limit lowered below the sessions in
 * use, wakes that fail, blobs past the record limit, configuration
 * fields out of range. Each case: nothing lost, nothing twice, the error
 * returned or logged and counted. */
#include <stddef.h>
#include <string.h>

#include "runtime/common.h"
#include "test_util.h"

#define MAXID 64

typedef struct host {
  shoal_mgr *mgr;
  _Atomic unsigned released[MAXID + 1]; /* on_release per id */
  int release_self, release_next;       /* what on_release calls */
  int rc_self[MAXID + 1];
  _Atomic int wake_fail; /* wakes failing still */
  _Atomic unsigned wakes_tried;
  size_t blob;           /* the bytes a hibernate callback writes */
  uint32_t big_id;       /* this session's blob passes the limit */
  _Atomic uint32_t work_id; /* this session's next update reports work */
  _Atomic unsigned hib_calls;
  _Atomic unsigned errors, warns;
  char last[256];
} host;

static host H;

static void host_log(void *user, shoal_log_level level, const char *msg) {
  host *h = user;
  if (level == SHOAL_LOG_ERROR)
    atomic_fetch_add(&h->errors, 1);
  if (level == SHOAL_LOG_WARN)
    atomic_fetch_add(&h->warns, 1);
  if (level <= SHOAL_LOG_WARN)
    snprintf(h->last, sizeof h->last, "%s", msg);
}

static int upd(void *hp, uint32_t id, void *user, uint32_t diff) {
  host *h = hp;
  uint32_t want = id;
  (void)user;
  (void)diff;
  return atomic_compare_exchange_strong(&h->work_id, &want, 0) ? 1 : 0;
}

static int handler(void *hp, uint32_t id, void *user, const shoal_packet *p) {
  (void)hp;
  (void)id;
  (void)user;
  (void)p;
  return 0;
}

/* A host's "make sure it is gone": releases itself and its neighbour. */
static void on_release(void *hp, uint32_t id, void *user) {
  host *h = hp;
  (void)user;
  assert_true(id >= 1 && id <= MAXID);
  atomic_fetch_add(&h->released[id], 1);
  if (h->release_self)
    h->rc_self[id] = shoal_session_release(h->mgr, id);
  if (h->release_next && id < MAXID)
    (void)shoal_session_release(h->mgr, id + 1);
  if (h->release_next && id > 1)
    (void)shoal_session_release(h->mgr, id - 1);
  /* Nothing new enters a manager being destroyed. */
  if (h->release_self)
    assert_int_not_equal(shoal_session_create(h->mgr, id + 1000, NULL),
                         SHOAL_OK);
}

static long hib_save(void *hp, uint32_t id, void *user, shoal_hib_writer *w) {
  host *h = hp;
  static const char zeros[4096];
  size_t left = h->blob != 0 ? h->blob : sizeof id;
  (void)user;
  atomic_fetch_add(&h->hib_calls, 1);
  if (id == h->big_id) { /* a host that does not look at the result */
    assert_int_equal(shoal_hib_write(w, &id, SHOAL_HIB_BLOB_MAX + 1ull),
                     SHOAL_ELIMIT);
    return 0;
  }
  if (h->blob == 0)
    return shoal_hib_write(w, &id, sizeof id) == SHOAL_OK ? 0 : -1;
  while (left > 0) {
    size_t n = left < sizeof zeros ? left : sizeof zeros;
    if (shoal_hib_write(w, zeros, n) != SHOAL_OK)
      return -1;
    left -= n;
  }
  return 0;
}

static int hib_wake(void *hp, uint32_t id, const void *blob, size_t len,
                    void **user) {
  host *h = hp;
  (void)id;
  (void)blob;
  (void)len;
  *user = NULL;
  atomic_fetch_add(&h->wakes_tried, 1);
  if (atomic_load(&h->wake_fail) > 0) {
    atomic_fetch_sub(&h->wake_fail, 1);
    return -5;
  }
  return 0;
}

static shoal_mgr *make(unsigned sessions, int hibernation) {
  shoal_config cfg;
  shoal_mgr_callbacks cb = {upd, on_release, &H};
  shoal_hib_callbacks hc = {hib_save, hib_wake, NULL};
  memset(&H, 0, sizeof H);
  shoal_config_defaults(&cfg);
  cfg.worker_threads = 3; /* more than the cores CI has */
  cfg.max_sessions = MAXID;
  cfg.pool_preallocate = MAXID;
  cfg.log = host_log;
  cfg.log_user = &H;
  assert_int_equal(shoal_mgr_create(&H.mgr, NULL, &cfg, &cb), SHOAL_OK);
  assert_int_equal(shoal_mgr_register_opcode(H.mgr, 10, SHOAL_PACKET_INPLACE,
                                             SHOAL_CAT_MOVEMENT, handler,
                                             NULL),
                   SHOAL_OK);
  if (hibernation) {
    assert_int_equal(shoal_mgr_set_hibernation(H.mgr, &hc), SHOAL_OK);
    assert_int_equal(shoal_mgr_set_hibernation_ms(H.mgr, 1000), SHOAL_OK);
  }
  for (uint32_t id = 1; id <= sessions; id++)
    assert_int_equal(shoal_session_create(H.mgr, id, NULL), SHOAL_OK);
  return H.mgr;
}

/* Hibernates every session idle past the threshold; returns how many are
 * hibernated now. */
static unsigned hibernate_all(shoal_mgr *mgr) {
  shoal_hib_stats hs;
  assert_int_equal(shoal_mgr_update(mgr, 1500), SHOAL_OK);
  assert_true(shoal_mgr_hibernate_idle(mgr, 0) >= 0);
  assert_int_equal(shoal_hib_stats_get(mgr, &hs, 0), SHOAL_OK);
  return (unsigned)hs.hibernated;
}

/* Every session hears on_release exactly once at destroy, whatever its
 * on_release releases (itself, its neighbours), active or hibernated. */
static void destroy_releases_once(void **state) {
  (void)state;
  for (int mode = 0; mode < 4; mode++) {
    shoal_mgr *mgr = make(MAXID, mode >= 2);
    if (mode >= 2) { /* half of them hibernated */
      assert_int_equal(hibernate_all(mgr), MAXID);
      for (uint32_t id = 2; id <= MAXID; id += 2)
        assert_int_equal(shoal_mgr_wake(mgr, id), SHOAL_OK);
      assert_int_equal(shoal_mgr_run_wakes(mgr), MAXID / 2);
    }
    H.release_self = mode == 0 || mode == 2;
    H.release_next = mode == 1 || mode == 3;
    assert_int_equal(shoal_mgr_destroy(mgr), SHOAL_OK);
    for (uint32_t id = 1; id <= MAXID; id++) {
      if (atomic_load(&H.released[id]) != 1)
        fail_msg("mode %d: session %u heard on_release %u times", mode, id,
                 atomic_load(&H.released[id]));
      if (H.release_self)
        assert_int_equal(H.rc_self[id], SHOAL_ENOENT);
    }
  }
}

/* A limit lowered below the sessions in use stops creation only: every
 * hibernated session still wakes, and a packet sent to one is handled. */
static void lowered_limit_still_wakes(void **state) {
  shoal_mgr *mgr = make(10, 1);
  shoal_packet_stats ps;
  shoal_hib_stats hs;
  (void)state;
  assert_int_equal(hibernate_all(mgr), 10);
  assert_int_equal(shoal_mgr_set_max_sessions(mgr, 5), SHOAL_OK);
  assert_int_equal(shoal_session_create(mgr, 11, NULL), SHOAL_ELIMIT);
  for (uint32_t id = 1; id <= 5; id++)
    assert_int_equal(shoal_mgr_wake(mgr, id), SHOAL_OK);
  assert_int_equal(shoal_mgr_run_wakes(mgr), 5);
  assert_int_equal(shoal_session_send(mgr, 9, 10, 0, "x", 1), SHOAL_OK);
  for (int k = 0; k < 3; k++)
    assert_int_equal(shoal_mgr_update(mgr, 1), SHOAL_OK);
  assert_int_equal(shoal_packet_stats_get(mgr, &ps, 0), SHOAL_OK);
  assert_int_equal(ps.pending, 0);
  assert_int_equal(ps.handled, 1);
  assert_int_equal(shoal_hib_stats_get(mgr, &hs, 0), SHOAL_OK);
  assert_int_equal(hs.hibernated, 4);
  /* Still full: 10 sessions against a limit of 5. */
  assert_int_equal(shoal_session_create(mgr, 11, NULL), SHOAL_ELIMIT);
  for (uint32_t id = 1; id <= 5; id++)
    assert_int_equal(shoal_session_release(mgr, id), SHOAL_OK);
  assert_int_equal(shoal_session_create(mgr, 11, NULL), SHOAL_ELIMIT);
  assert_int_equal(shoal_session_release(mgr, 6), SHOAL_OK); /* hibernated */
  assert_int_equal(shoal_session_create(mgr, 11, NULL), SHOAL_OK);
  assert_int_equal(shoal_mgr_destroy(mgr), SHOAL_OK);
  for (uint32_t id = 1; id <= 11; id++)
    assert_int_equal(atomic_load(&H.released[id]), id == 11 || id <= 10);
}

/* A wake the host refuses is tried again (backing off) until it works:
 * the packet that asked for it is handled, each failure counted, the
 * first one logged. */
static void failed_wake_retried(void **state) {
  shoal_mgr *mgr = make(4, 1);
  shoal_packet_stats ps;
  shoal_hib_stats hs;
  unsigned ticks = 0;
  (void)state;
  assert_int_equal(hibernate_all(mgr), 4);
  atomic_store(&H.wake_fail, 4);
  atomic_store(&H.errors, 0);
  assert_int_equal(shoal_session_send(mgr, 3, 10, 0, "x", 1), SHOAL_OK);
  do {
    assert_int_equal(shoal_mgr_update(mgr, 1), SHOAL_OK);
    assert_int_equal(shoal_packet_stats_get(mgr, &ps, 0), SHOAL_OK);
  } while (ps.pending != 0 && ++ticks < 100);
  assert_int_equal(ps.handled, 1);
  assert_int_equal(atomic_load(&H.wakes_tried), 5);
  /* 1, 2, 4, 8 ticks apart: the fifth try at most 16 ticks in. */
  assert_in_range(ticks, 8, 16);
  assert_int_equal(shoal_hib_stats_get(mgr, &hs, 0), SHOAL_OK);
  assert_int_equal(hs.wake_failures, 4);
  assert_int_equal(hs.hibernated, 3);
  assert_int_equal(atomic_load(&H.errors), 1);
  assert_int_equal(shoal_mgr_destroy(mgr), SHOAL_OK);
}

/* Each field out of its documented range is refused by name. */
static void config_out_of_range(void **state) {
  shoal_mgr_callbacks cb = {upd, on_release, &H};
  shoal_runtime_config rc;
  shoal_runtime *rt = NULL;
  shoal_mgr *mgr = NULL;
  static const struct {
    const char *key; /* in the log line */
    size_t off;
    int bool_field;
    long v;
  } bad[] = {
      {"EnableSIMD", offsetof(shoal_config, enable_simd), 1, 7},
      {"EnableSIMD", offsetof(shoal_config, enable_simd), 1, -1},
      {"EnableAutoDefragmentation", offsetof(shoal_config, auto_defragment),
       1, 2},
      {"StrictPacketOrder", offsetof(shoal_config, strict_packet_order), 1,
       3},
      {"DeferPackets", offsetof(shoal_config, defer_packets), 1, 9},
      {"UpdateBatchSize", offsetof(shoal_config, batch_size), 0, 257},
      {"InboxSize", offsetof(shoal_config, inbox_size), 0, 0},
      {"MessageQueueSize", offsetof(shoal_config, actors.queue_size), 0, 0},
      {"MessageQueueSize", offsetof(shoal_config, actors.queue_size), 0,
       (1L << 20) + 1},
      {"BatchSize", offsetof(shoal_config, actors.batch_size), 0, 0},
      {"actors", offsetof(shoal_config, actors.max_actors), 0, 0},
  };
  (void)state;
  memset(&H, 0, sizeof H);
  for (size_t i = 0; i < SHOAL_ARRAY_LEN(bad); i++) {
    shoal_config cfg;
    char *f;
    shoal_config_defaults(&cfg);
    cfg.log = host_log;
    cfg.log_user = &H;
    f = (char *)&cfg + bad[i].off;
    if (bad[i].bool_field)
      *(int *)(void *)f = (int)bad[i].v;
    else
      *(unsigned *)(void *)f = (unsigned)bad[i].v;
    H.last[0] = '\0';
    if (shoal_mgr_create(&mgr, NULL, &cfg, &cb) != SHOAL_EINVAL)
      fail_msg("%s = %ld accepted", bad[i].key, bad[i].v);
    assert_null(mgr);
    if (strstr(H.last, bad[i].key) == NULL)
      fail_msg("%s = %ld: the log says '%s'", bad[i].key, bad[i].v, H.last);
  }
  shoal_runtime_config_defaults(&rc);
  rc.log = test_quiet_log;
  rc.pin = 2;
  assert_int_equal(shoal_runtime_create(&rt, &rc), SHOAL_EINVAL);
  assert_null(rt);
}

/* A blob past the record limit is said for what it is, counted, and not
 * tried again until the session's state changes (it reports work). */
static void blob_too_large(void **state) {
  shoal_mgr *mgr = make(3, 1);
  shoal_hib_stats hs;
  (void)state;
  H.big_id = 2;
  assert_int_equal(hibernate_all(mgr), 2);
  assert_int_equal(shoal_hib_stats_get(mgr, &hs, 0), SHOAL_OK);
  assert_int_equal(hs.too_large, 1);
  assert_int_equal(hs.failures, 1);
  assert_non_null(strstr(H.last, "SHOAL_HIB_BLOB_MAX"));
  assert_null(strstr(H.last, "out of memory"));
  assert_int_equal(atomic_load(&H.hib_calls), 3);
  for (int k = 0; k < 3; k++) /* unchanged: not tried again */
    assert_int_equal(hibernate_all(mgr), 2);
  assert_int_equal(atomic_load(&H.hib_calls), 3);
  assert_int_equal(shoal_hib_stats_get(mgr, &hs, 0), SHOAL_OK);
  assert_int_equal(hs.too_large, 1);
  atomic_store(&H.work_id, 2); /* its state changes: tried again */
  assert_int_equal(shoal_mgr_update(mgr, 1), SHOAL_OK);
  assert_int_equal(atomic_load(&H.work_id), 0);
  assert_int_equal(hibernate_all(mgr), 2);
  assert_int_equal(atomic_load(&H.hib_calls), 4);
  assert_int_equal(shoal_hib_stats_get(mgr, &hs, 0), SHOAL_OK);
  assert_int_equal(hs.too_large, 2);
  assert_int_equal(shoal_mgr_destroy(mgr), SHOAL_OK);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(destroy_releases_once),
      cmocka_unit_test(lowered_limit_still_wakes),
      cmocka_unit_test(failed_wake_retried),
      cmocka_unit_test(config_out_of_range),
      cmocka_unit_test(blob_too_large),
  };
  return test_run("misuse", tests, SHOAL_ARRAY_LEN(tests));
}
