/* test_mgr.c — the session manager through shoal.h: create / release / get
 * and their errors, every session updated exactly once per tick over many
 * (sessions, batch size, workers) combinations including 8 workers on 2
 * cores, callbacks only on the runtime's threads, update intervals and
 * their spread, releases and creates during a tick (from callbacks and
 * from other threads; ASan checks no callback touches a released
 * session's memory), quarantine, lock-free get while others churn,
 * sessions by map, top-k, metrics and the run-time setters; on a
 * synthetic two-node topology, the active array's per-node segments
 * through churn and each node's batches started by a worker of that
 * node. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>

#include "runtime/sched/scheduler.h"
#include "sessions/mgr.h"
#include "test_util.h"

#if SHOAL__TSAN
#define SCALE 4
#else
#define SCALE 1
#endif

/* A runtime of `workers` (0: one per core of t) on t (NULL: this
 * machine). */
static shoal_runtime *runtime_on(unsigned workers, const shoal_topo *t) {
  return test_runtime(workers, 0, t);
}

static shoal_config make_cfg(unsigned max, unsigned prealloc, unsigned bs) {
  shoal_config c;
  shoal_config_defaults(&c);
  c.max_sessions = max;
  c.pool_preallocate = prealloc;
  c.batch_size = bs;
  c.log = test_quiet_log;
  return c;
}

/* ---- a host ------------------------------------------------------------- */

#define IDS_MAX 20000

typedef struct host {
  shoal_runtime *rt;
  shoal_mgr *mgr;
  _Atomic uint32_t updates[IDS_MAX];
  _Atomic uint64_t diff_sum[IDS_MAX];
  _Atomic uint32_t released[IDS_MAX];
  _Atomic uint32_t off_thread;   /* callbacks on a thread not of rt */
  _Atomic uint32_t bad_user;     /* user pointer not the one given */
  int fail_mod;                  /* ids with id % fail_mod == 0 fail */
  int activity_mod;              /* return id % activity_mod */
  int release_mod;               /* callbacks release id + 1 when
                                    id % release_mod == 0 */
  _Atomic uint32_t created_in_cb;
  int nested_rc;                 /* what an update from a callback got */
} host;

static int on_update(void *h_, uint32_t id, void *user, uint32_t diff) {
  host *h = h_;
  if (shoal__current(h->rt) == NULL)
    atomic_fetch_add(&h->off_thread, 1);
  if (user != NULL && *(uint32_t *)user != id)
    atomic_fetch_add(&h->bad_user, 1);
  atomic_fetch_add(&h->updates[id], 1);
  atomic_fetch_add(&h->diff_sum[id], diff);
  if (h->release_mod != 0 && id % (uint32_t)h->release_mod == 0) {
    shoal_session_release(h->mgr, id + 1);
    /* and a newcomer, which joins the next tick */
    if (shoal_session_create(h->mgr, id + IDS_MAX / 2, NULL) == SHOAL_OK)
      atomic_fetch_add(&h->created_in_cb, 1);
  }
  if (h->fail_mod != 0 && id % (uint32_t)h->fail_mod == 0)
    return -5;
  if (h->activity_mod != 0)
    return (int)(id % (uint32_t)h->activity_mod);
  return 0;
}

/* The batch callback (shoal_mgr_set_update_batch), through on_update
 * for each session; mgr_on sets it while g_batched. */
static int g_batched;
static _Atomic uint32_t g_batch_calls, g_batch_bad, g_batch_setter_rc;

static int on_update_batch(void *h_, uint32_t n, const uint32_t *ids,
                           void *const *users, const uint32_t *diff_ms,
                           int *rc) {
  host *h = h_;
  int any = 0;
  atomic_fetch_add(&g_batch_calls, 1);
  if (n == 0 || n > SHOAL_UPDATE_BATCH_MAX)
    atomic_fetch_add(&g_batch_bad, 1);
  for (uint32_t k = 0; k < n; k++)
    for (uint32_t j = 0; j < k; j++)
      if (ids[j] == ids[k])
        atomic_fetch_add(&g_batch_bad, 1);
  /* from inside a callback the setter is refused */
  atomic_store(&g_batch_setter_rc,
               (uint32_t)-shoal_mgr_set_update_batch(h->mgr, NULL));
  for (uint32_t k = 0; k < n; k++)
    any |= (rc[k] = on_update(h, ids[k], users[k], diff_ms[k])) != 0;
  return any;
}

static void on_release(void *h_, uint32_t id, void *user) {
  host *h = h_;
  atomic_fetch_add(&h->released[id], 1);
  free(user); /* a later update of this session would touch freed memory */
}

static host *host_new(unsigned workers) {
  host *h = calloc(1, sizeof *h);
  h->rt = runtime_on(workers, NULL);
  return h;
}

static void host_free(host *h) {
  assert_int_equal(shoal_mgr_destroy(h->mgr), SHOAL_OK);
  shoal_runtime_destroy(h->rt);
  free(h);
}

static void mgr_on(host *h, const shoal_config *cfg) {
  shoal_mgr_callbacks cb = {on_update, on_release, h};
  assert_int_equal(shoal_mgr_create(&h->mgr, h->rt, cfg, &cb), SHOAL_OK);
  if (g_batched)
    assert_int_equal(shoal_mgr_set_update_batch(h->mgr, on_update_batch),
                     SHOAL_OK);
}

static uint32_t *id_box(uint32_t id) {
  uint32_t *p = malloc(sizeof *p);
  *p = id;
  return p;
}

/* ---- tests -------------------------------------------------------------- */

static void basics(void **state) {
  host *h = host_new(2);
  shoal_config cfg = make_cfg(10, 5, 64);
  shoal_session_info info;
  shoal_mgr_callbacks none = {NULL, NULL, NULL};
  shoal_mgr *bad = NULL;
  uint32_t ids[4] = {20, 21, 20, 0};
  int res[4];
  (void)state;
  assert_int_equal(shoal_mgr_create(&bad, h->rt, &cfg, &none), SHOAL_EINVAL);
  cfg.pool_preallocate = 11;
  {
    shoal_mgr_callbacks cb = {on_update, NULL, h};
    assert_int_equal(shoal_mgr_create(&bad, h->rt, &cfg, &cb), SHOAL_EINVAL);
    cfg.pool_preallocate = 5;
    cfg.batch_size = 257;
    assert_int_equal(shoal_mgr_create(&bad, h->rt, &cfg, &cb), SHOAL_EINVAL);
    cfg.batch_size = 64;
  }
  assert_null(bad);
  mgr_on(h, &cfg);
  assert_int_equal(shoal_session_create(h->mgr, 0, NULL), SHOAL_EINVAL);
  for (uint32_t id = 1; id <= 10; id++)
    assert_int_equal(shoal_session_create(h->mgr, id, id_box(id)), SHOAL_OK);
  {
    uint32_t *extra = id_box(11);
    assert_int_equal(shoal_session_create(h->mgr, 11, extra), SHOAL_ELIMIT);
    free(extra);
  }
  assert_int_equal(shoal_session_create(h->mgr, 3, NULL), SHOAL_EEXIST);
  assert_int_equal(shoal_session_get(h->mgr, 3, &info), SHOAL_OK);
  assert_int_equal(info.id, 3);
  assert_int_equal(*(uint32_t *)info.user, 3);
  assert_int_equal(info.map, 0);
  assert_int_equal(info.interval, 1);
  assert_int_equal(info.state, SHOAL_SESSION_ACTIVE);
  assert_int_equal(shoal_session_get(h->mgr, 11, &info), SHOAL_ENOENT);
  assert_int_equal(shoal_session_get(h->mgr, 0, &info), SHOAL_ENOENT);
  assert_int_equal(shoal_session_set_map(h->mgr, 3, 530), SHOAL_OK);
  assert_int_equal(shoal_session_set_group(h->mgr, 3, 7), SHOAL_OK);
  assert_int_equal(shoal_session_set_interval(h->mgr, 3, 0), SHOAL_EINVAL);
  assert_int_equal(shoal_session_set_interval(h->mgr, 3, 65536), SHOAL_EINVAL);
  assert_int_equal(shoal_session_set_interval(h->mgr, 3, 4), SHOAL_OK);
  assert_int_equal(shoal_session_set_map(h->mgr, 99, 1), SHOAL_ENOENT);
  assert_int_equal(shoal_session_get(h->mgr, 3, &info), SHOAL_OK);
  assert_int_equal(info.map, 530);
  assert_int_equal(info.group, 7);
  assert_int_equal(info.interval, 4);
  assert_int_equal(shoal_session_clear_quarantine(h->mgr, 3), SHOAL_ESTATE);
  assert_int_equal(shoal_session_release(h->mgr, 99), SHOAL_ENOENT);
  assert_int_equal(shoal_session_release(h->mgr, 0), SHOAL_EINVAL);
  assert_int_equal(shoal_session_release(h->mgr, 3), SHOAL_OK);
  assert_int_equal(atomic_load(&h->released[3]), 1);
  assert_int_equal(shoal_session_release(h->mgr, 3), SHOAL_ENOENT);
  assert_int_equal(shoal_session_get(h->mgr, 3, NULL), SHOAL_ENOENT);
  /* a moved session (10 took 3's slot) keeps its own columns */
  assert_int_equal(shoal_session_get(h->mgr, 10, &info), SHOAL_OK);
  assert_int_equal(*(uint32_t *)info.user, 10);
  /* batch: one good, one over the limit, one duplicate, id 0 */
  {
    void *users[4] = {id_box(20), id_box(21), NULL, NULL};
    assert_int_equal(shoal_session_create_batch(h->mgr, ids, users, 4, res), 1);
    assert_int_equal(res[0], SHOAL_OK);
    assert_int_equal(res[1], SHOAL_ELIMIT);
    assert_int_equal(res[2], SHOAL_EEXIST);
    assert_int_equal(res[3], SHOAL_EINVAL);
    free(users[1]);
  }
  /* raising the limit lets 21 … 39 in: 9 + 1 + 19 = 29 in use */
  assert_int_equal(shoal_mgr_set_max_sessions(h->mgr, 0), SHOAL_EINVAL);
  assert_int_equal(shoal_mgr_set_max_sessions(h->mgr, 29), SHOAL_OK);
  for (uint32_t id = 21; id < 40; id++)
    assert_int_equal(shoal_session_create(h->mgr, id, id_box(id)), SHOAL_OK);
  assert_int_equal(shoal_session_create(h->mgr, 40, NULL), SHOAL_ELIMIT);
  {
    uint32_t rel[3] = {21, 21, 77};
    assert_int_equal(shoal_session_release_batch(h->mgr, rel, 3, res), 1);
    assert_int_equal(res[0], SHOAL_OK);
    assert_int_equal(res[1], SHOAL_ENOENT);
    assert_int_equal(res[2], SHOAL_ENOENT);
  }
  assert_int_equal(shoal_mgr_set_batch_size(h->mgr, 257), SHOAL_EINVAL);
  assert_int_equal(shoal_mgr_set_batch_size(h->mgr, 0), SHOAL_OK);
  assert_int_equal(shoal_mgr_set_hibernation_ms(h->mgr, 0), SHOAL_EINVAL);
  assert_int_equal(shoal_mgr_set_hibernation_ms(h->mgr, 50), SHOAL_OK);
  assert_int_equal(shoal_mgr_update(h->mgr, 50), SHOAL_OK);
  assert_int_equal(atomic_load(&h->bad_user), 0);
  /* destroy releases the rest: 1…10 less 3, 20, 22…39 */
  assert_int_equal(shoal_mgr_destroy(h->mgr), SHOAL_OK);
  h->mgr = NULL;
  for (uint32_t id = 1; id < 40; id++)
    assert_int_equal(atomic_load(&h->released[id]),
                     (id <= 10 || id >= 20) ? 1 : 0);
  shoal_runtime_destroy(h->rt);
  free(h);
}

/* Every session once per tick, on the runtime's threads only. */
static void exactly_once(void **state) {
  static const unsigned workers[] = {1, 2, 8};
  static const uint32_t sessions[] = {0, 1, 63, 64, 65, 1000, 5000};
  static const unsigned batches[] = {1, 7, 64, 256, 0};
  (void)state;
  for (size_t w = 0; w < SHOAL_ARRAY_LEN(workers); w++) {
    host *h = host_new(workers[w]);
    for (size_t s = 0; s < SHOAL_ARRAY_LEN(sessions); s++) {
      uint32_t n = sessions[s] / (SCALE > 1 && sessions[s] > 1000 ? SCALE : 1);
      for (size_t b = 0; b < SHOAL_ARRAY_LEN(batches); b++) {
        shoal_config cfg = make_cfg(5000, 100, batches[b]);
        const unsigned ticks = 3;
        mgr_on(h, &cfg);
        for (uint32_t id = 1; id <= n; id++)
          assert_int_equal(shoal_session_create(h->mgr, id, id_box(id)),
                           SHOAL_OK);
        for (unsigned t = 0; t < ticks; t++)
          assert_int_equal(shoal_mgr_update(h->mgr, 50), SHOAL_OK);
        for (uint32_t id = 1; id <= n; id++) {
          if (atomic_load(&h->updates[id]) != ticks)
            fail_msg("workers %u sessions %u batch %u: id %u updated %u "
                     "times in %u ticks", workers[w], n, batches[b], id,
                     atomic_load(&h->updates[id]), ticks);
          atomic_store(&h->updates[id], 0);
          atomic_store(&h->diff_sum[id], 0);
        }
        assert_int_equal(atomic_load(&h->updates[n + 1]), 0);
        assert_int_equal(atomic_load(&h->off_thread), 0);
        assert_int_equal(atomic_load(&h->bad_user), 0);
        assert_int_equal(shoal_mgr_destroy(h->mgr), SHOAL_OK);
        h->mgr = NULL;
      }
    }
    shoal_runtime_destroy(h->rt);
    free(h);
  }
}

/* Intervals: counts exact, diffs cover the ticks, phases spread. */
static void intervals(void **state) {
  host *h = host_new(2);
  shoal_config cfg = make_cfg(1000, 100, 16);
  const uint32_t n = 400;
  const unsigned ticks = 24; /* a multiple of 1, 2, 3, 4 */
  uint32_t per_tick_max = 0;
  (void)state;
  mgr_on(h, &cfg);
  for (uint32_t id = 1; id <= n; id++) {
    assert_int_equal(shoal_session_create(h->mgr, id, NULL), SHOAL_OK);
    assert_int_equal(
        shoal_session_set_interval(h->mgr, id, (id / 4) % 4 + 1), SHOAL_OK);
  }
  for (unsigned t = 1; t <= ticks; t++) {
    uint32_t before = 0, after = 0;
    for (uint32_t id = 1; id <= n; id++)
      if ((id / 4) % 4 + 1 == 4)
        before += atomic_load(&h->updates[id]);
    assert_int_equal(shoal_mgr_update(h->mgr, 10), SHOAL_OK);
    for (uint32_t id = 1; id <= n; id++)
      if ((id / 4) % 4 + 1 == 4)
        after += atomic_load(&h->updates[id]);
    if (after - before > per_tick_max)
      per_tick_max = after - before;
  }
  for (uint32_t id = 1; id <= n; id++) {
    uint32_t iv = (id / 4) % 4 + 1;
    assert_int_equal(atomic_load(&h->updates[id]), ticks / iv);
    /* the diffs add up to the time up to its last update */
    uint64_t last = 0;
    for (unsigned t = 1; t <= ticks; t++)
      if (t % iv == id % iv)
        last = t;
    assert_int_equal(atomic_load(&h->diff_sum[id]), last * 10);
  }
  /* 100 sessions of interval 4: 25 per tick when spread, 100 when not */
  assert_true(per_tick_max <= 30);
  host_free(h);
}

/* Callbacks release their neighbours and create newcomers mid-tick. */
static void release_during_tick(void **state) {
  static const unsigned workers[] = {2, 8};
  (void)state;
  for (size_t w = 0; w < SHOAL_ARRAY_LEN(workers); w++) {
    host *h = host_new(workers[w]);
    shoal_config cfg = make_cfg(IDS_MAX, 1000, 16);
    const uint32_t n = 4000 / SCALE;
    shoal_mgr_metrics m;
    h->release_mod = 2; /* even ids release id + 1 and create id + 10000 */
    mgr_on(h, &cfg);
    for (uint32_t id = 1; id <= n; id++)
      assert_int_equal(shoal_session_create(h->mgr, id, id_box(id)),
                       SHOAL_OK);
    assert_int_equal(shoal_mgr_update(h->mgr, 50), SHOAL_OK);
    /* every session of the tick ran once, released ones included (their
     * release takes effect after the tick); each on_release ran once */
    for (uint32_t id = 1; id <= n; id++) {
      assert_int_equal(atomic_load(&h->updates[id]), 1);
      assert_int_equal(atomic_load(&h->released[id]),
                       id % 2 == 1 && id > 1 ? 1 : 0);
    }
    h->release_mod = 0;
    assert_int_equal(shoal_mgr_update(h->mgr, 50), SHOAL_OK);
    for (uint32_t id = 1; id <= n; id++)
      assert_int_equal(atomic_load(&h->updates[id]),
                       id % 2 == 0 || id == 1 ? 2 : 1);
    /* the newcomers joined the second tick only */
    for (uint32_t id = 2; id <= n; id += 2)
      assert_int_equal(atomic_load(&h->updates[id + IDS_MAX / 2]), 1);
    assert_int_equal(shoal_mgr_metrics_get(h->mgr, &m, 0), SHOAL_OK);
    assert_int_equal(m.active, n / 2 + 1 + atomic_load(&h->created_in_cb));
    host_free(h);
  }
}

static void quarantine(void **state) {
  host *h = host_new(2);
  shoal_config cfg = make_cfg(1000, 100, 8);
  shoal_mgr_metrics m;
  shoal_session_info info;
  (void)state;
  h->fail_mod = 10;
  mgr_on(h, &cfg);
  for (uint32_t id = 1; id <= 100; id++)
    assert_int_equal(shoal_session_create(h->mgr, id, NULL), SHOAL_OK);
  assert_int_equal(shoal_mgr_update(h->mgr, 50), SHOAL_OK);
  assert_int_equal(shoal_mgr_update(h->mgr, 50), SHOAL_OK);
  for (uint32_t id = 1; id <= 100; id++)
    assert_int_equal(atomic_load(&h->updates[id]), id % 10 == 0 ? 1 : 2);
  assert_int_equal(shoal_mgr_metrics_get(h->mgr, &m, 0), SHOAL_OK);
  assert_int_equal(m.quarantined, 10);
  assert_int_equal(m.quarantines, 10);
  assert_int_equal(shoal_session_get(h->mgr, 30, &info), SHOAL_OK);
  assert_int_equal(info.state, SHOAL_SESSION_QUARANTINED);
  assert_int_equal(info.last_error, -5);
  /* a new interval does not lift the quarantine */
  assert_int_equal(shoal_session_set_interval(h->mgr, 30, 1), SHOAL_OK);
  assert_int_equal(shoal_session_get(h->mgr, 30, &info), SHOAL_OK);
  assert_int_equal(info.state, SHOAL_SESSION_QUARANTINED);
  h->fail_mod = 0;
  assert_int_equal(shoal_session_clear_quarantine(h->mgr, 30), SHOAL_OK);
  assert_int_equal(shoal_session_clear_quarantine(h->mgr, 30), SHOAL_ESTATE);
  assert_int_equal(shoal_session_release(h->mgr, 40), SHOAL_OK);
  assert_int_equal(shoal_mgr_update(h->mgr, 50), SHOAL_OK);
  assert_int_equal(atomic_load(&h->updates[30]), 2);
  assert_int_equal(atomic_load(&h->updates[20]), 1);
  assert_int_equal(shoal_mgr_metrics_get(h->mgr, &m, 0), SHOAL_OK);
  assert_int_equal(m.quarantined, 8); /* 30 cleared, 40 released */
  host_free(h);
}

/* Calls a callback may not make. */
static int nested_update(void *h_, uint32_t id, void *user, uint32_t diff) {
  host *h = h_;
  shoal_mgr_metrics m;
  (void)user;
  (void)diff;
  if (id == 1) {
    h->nested_rc = shoal_mgr_update(h->mgr, 1);
    if (h->nested_rc == SHOAL_ESTATE)
      h->nested_rc = shoal_mgr_metrics_get(h->mgr, &m, 0);
  }
  return 0;
}

static void reentry(void **state) {
  host *h = host_new(2);
  shoal_mgr_callbacks cb = {nested_update, NULL, h};
  (void)state;
  assert_int_equal(shoal_mgr_create(&h->mgr, h->rt, NULL, &cb), SHOAL_OK);
  assert_int_equal(shoal_session_create(h->mgr, 1, NULL), SHOAL_OK);
  assert_int_equal(shoal_mgr_update(h->mgr, 1), SHOAL_OK);
  assert_int_equal(h->nested_rc, SHOAL_ESTATE);
  assert_int_equal(shoal_mgr_update(NULL, 1), SHOAL_EINVAL);
  host_free(h);
}

static void maps_top_metrics(void **state) {
  host *h = host_new(2);
  shoal_config cfg = make_cfg(1000, 100, 0);
  shoal_map_count maps[8];
  shoal_session_activity top[5];
  shoal_mgr_metrics m;
  size_t n;
  uint64_t act = 0;
  (void)state;
  h->activity_mod = 1000;
  mgr_on(h, &cfg);
  for (uint32_t id = 1; id <= 600; id++) {
    assert_int_equal(shoal_session_create(h->mgr, id, NULL), SHOAL_OK);
    /* map 1: 300, map 2: 200, map 3: 100 */
    assert_int_equal(shoal_session_set_map(h->mgr, id,
                                           id <= 300 ? 1 : id <= 500 ? 2 : 3),
                     SHOAL_OK);
    act += id;
  }
  for (unsigned t = 0; t < 4; t++)
    assert_int_equal(shoal_mgr_update(h->mgr, 50), SHOAL_OK);
  assert_int_equal(shoal_mgr_maps(h->mgr, maps, 2, &n), SHOAL_OK);
  assert_int_equal(n, 3);
  assert_int_equal(maps[0].map, 1);
  assert_int_equal(maps[0].sessions, 300);
  assert_int_equal(maps[1].map, 2);
  assert_int_equal(maps[1].sessions, 200);
  assert_int_equal(shoal_mgr_top(h->mgr, top, 5, &n), SHOAL_OK);
  assert_int_equal(n, 5);
  for (uint32_t i = 0; i < 5; i++) {
    assert_int_equal(top[i].id, 600 - i);
    assert_int_equal(top[i].activity, 4 * (600 - i));
    assert_int_equal(top[i].updates, 4);
  }
  assert_int_equal(shoal_mgr_metrics_get(h->mgr, &m, 1), SHOAL_OK);
  assert_int_equal(m.active, 600);
  assert_int_equal(m.ticks, 4);
  assert_int_equal(m.updates, 4 * 600);
  assert_int_equal(m.activity, 4 * act);
  assert_true(m.batches >= 4);
  assert_true(m.tick_p50_ns > 0);
  assert_true(m.tick_p50_ns <= m.tick_p99_ns);
  assert_true(m.tick_p99_ns <= m.tick_max_ns);
  assert_true(m.pool_bytes > 0 && m.table_bytes > 0);
  assert_true(m.pool_allocated >= 600);
  assert_non_null(m.simd);
  /* the reset cleared the window */
  assert_int_equal(shoal_mgr_metrics_get(h->mgr, &m, 0), SHOAL_OK);
  assert_int_equal(m.ticks, 0);
  assert_int_equal(m.updates, 0);
  assert_int_equal(m.activity, 0);
  assert_int_equal(m.tick_max_ns, 0);
  assert_int_equal(shoal_mgr_top(h->mgr, top, 5, &n), SHOAL_OK);
  assert_int_equal(top[0].activity, 0);
  host_free(h);
}

/* get from readers while writers create and release and the main thread
 * ticks: ids 1…500 stay (found, with their map), churned ids are found
 * only with their own map. 3 readers + 3 writers + main on 2 cores. */
typedef struct churn {
  host *h;
  _Atomic int stop;
  _Atomic uint32_t errors;
  unsigned seed;
} churn;

static void *reader(void *arg) {
  churn *c = arg;
  unsigned seed = c->seed;
  while (!atomic_load(&c->stop)) {
    shoal_session_info info;
    uint32_t id = (uint32_t)rand_r(&seed) % 2000 + 1;
    int rc = shoal_session_get(c->h->mgr, id, &info);
    if (id <= 500 && rc != SHOAL_OK)
      atomic_fetch_add(&c->errors, 1);
    if (rc == SHOAL_OK && (info.id != id || (info.map != 0 && info.map != id)))
      atomic_fetch_add(&c->errors, 1);
  }
  return NULL;
}

static void *writer(void *arg) {
  churn *c = arg;
  unsigned seed = c->seed;
  while (!atomic_load(&c->stop)) {
    uint32_t id = 501 + (uint32_t)rand_r(&seed) % 1500;
    uint32_t *box = id_box(id);
    if (shoal_session_create(c->h->mgr, id, box) == SHOAL_OK)
      shoal_session_set_map(c->h->mgr, id, id);
    else
      free(box);
    id = 501 + (uint32_t)rand_r(&seed) % 1500;
    shoal_session_release(c->h->mgr, id);
  }
  return NULL;
}

static void concurrent(void **state) {
  host *h = host_new(4);
  shoal_config cfg = make_cfg(5000, 1000, 32);
  churn c[6];
  pthread_t th[6];
  (void)state;
  mgr_on(h, &cfg);
  for (uint32_t id = 1; id <= 500; id++) {
    assert_int_equal(shoal_session_create(h->mgr, id, id_box(id)), SHOAL_OK);
    assert_int_equal(shoal_session_set_map(h->mgr, id, id), SHOAL_OK);
  }
  for (int i = 0; i < 6; i++) {
    c[i].h = h;
    atomic_init(&c[i].stop, 0);
    atomic_init(&c[i].errors, 0);
    c[i].seed = 17u + (unsigned)i;
    pthread_create(&th[i], NULL, i < 3 ? reader : writer, &c[i]);
  }
  for (unsigned t = 0; t < 400 / SCALE; t++)
    assert_int_equal(shoal_mgr_update(h->mgr, 50), SHOAL_OK);
  for (int i = 0; i < 6; i++)
    atomic_store(&c[i].stop, 1);
  for (int i = 0; i < 6; i++) {
    pthread_join(th[i], NULL);
    assert_int_equal(atomic_load(&c[i].errors), 0);
  }
  for (uint32_t id = 1; id <= 500; id++)
    assert_int_equal(atomic_load(&h->updates[id]), 400 / SCALE);
  assert_int_equal(atomic_load(&h->bad_user), 0);
  /* every churned session was released exactly once or is still in */
  host_free(h);
  /* (host_free ran destroy: every session left got its on_release) */
}

/* A manager that creates its own runtime. */
static void own_runtime(void **state) {
  shoal_config cfg = make_cfg(100, 10, 64);
  shoal_mgr *mgr = NULL;
  host *h = calloc(1, sizeof *h);
  shoal_mgr_callbacks cb = {on_update, on_release, h};
  (void)state;
  cfg.worker_threads = 3;
  assert_int_equal(shoal_mgr_create(&mgr, NULL, &cfg, &cb), SHOAL_OK);
  h->mgr = mgr;
  h->rt = shoal_mgr_runtime(mgr);
  assert_int_equal(shoal_runtime_workers(h->rt), 3);
  assert_int_equal(shoal_session_create(mgr, 5, NULL), SHOAL_OK);
  assert_int_equal(shoal_mgr_update(mgr, 50), SHOAL_OK);
  assert_int_equal(atomic_load(&h->updates[5]), 1);
  assert_int_equal(atomic_load(&h->off_thread), 0);
  assert_int_equal(shoal_mgr_destroy(mgr), SHOAL_OK);
  assert_int_equal(atomic_load(&h->released[5]), 1);
  free(h);
}

/* ---- two NUMA nodes ------------------------------------------------------ */

static shoal_topo *two_nodes(void) {
  shoal_topo_opts to;
  shoal_topo *t = NULL;
  shoal_topo_opts_defaults(&to);
  to.synthetic = "pack:1 numa:2 l3:1 core:2 pu:1";
  assert_int_equal(shoal_topo_load(&t, &to), SHOAL_OK);
  return t;
}

/* The active array is cut into one segment per home node, in node order,
 * each slot's record pointing back at it. Between ticks. */
static void check_segments(shoal_mgr *mgr) {
  shoal__cols *c = atomic_load(&mgr->cols);
  uint32_t b = 0;
  assert_int_equal(mgr->seg_end[mgr->nodes - 1], mgr->nact);
  for (unsigned k = 0; k < mgr->nodes; k++) {
    for (uint32_t i = b; i < mgr->seg_end[k]; i++) {
      shoal__session *s = shoal__pool_at(&mgr->pool, c->rec[i]);
      if (atomic_load(&s->node) != k || atomic_load(&s->slot) != i ||
          atomic_load(&s->id) != c->ids[i])
        fail_msg("slot %u (segment %u): node %u slot %u id %u/%u", i, k,
                 atomic_load(&s->node), atomic_load(&s->slot),
                 atomic_load(&s->id), c->ids[i]);
    }
    b = mgr->seg_end[k];
  }
}

/* Creates and releases between and during ticks keep the segments, and
 * every session is still updated exactly once per tick. */
static void numa_segments(void **state) {
  shoal_topo *t = two_nodes();
  host *h = calloc(1, sizeof *h);
  shoal_config cfg = make_cfg(IDS_MAX, 1000, 16);
  shoal_mgr_metrics m;
  const uint32_t n = 3000 / SCALE;
  unsigned seed = 7;
  uint32_t nb = 0, live = 0;
  (void)state;
  h->rt = runtime_on(0, t);
  mgr_on(h, &cfg);
  for (uint32_t id = 1; id <= n; id++)
    assert_int_equal(shoal_session_create(h->mgr, id, id_box(id)), SHOAL_OK);
  assert_int_equal(h->mgr->nodes, 2);
  assert_true(h->mgr->seg_end[0] > 0 && h->mgr->seg_end[0] < n);
  check_segments(h->mgr);
  for (int i = 0; i < 1000 / SCALE; i++) { /* release some at random */
    uint32_t id = (uint32_t)rand_r(&seed) % n + 1;
    int rc = shoal_session_release(h->mgr, id);
    assert_true(rc == SHOAL_OK || rc == SHOAL_ENOENT);
  }
  check_segments(h->mgr);
  for (uint32_t id = 1; id <= n; id++)
    live += shoal_session_get(h->mgr, id, NULL) == SHOAL_OK;
  /* the tick covers each segment in its own batches */
  for (unsigned k = 0, b = 0; k < 2; b = h->mgr->seg_end[k++])
    nb += (h->mgr->seg_end[k] - b + 15) / 16;
  assert_int_equal(shoal_mgr_metrics_get(h->mgr, &m, 1), SHOAL_OK);
  assert_int_equal(shoal_mgr_update(h->mgr, 50), SHOAL_OK);
  assert_int_equal(shoal_mgr_metrics_get(h->mgr, &m, 1), SHOAL_OK);
  assert_int_equal(m.home_nodes, 2);
  assert_int_equal(m.batches, nb);
  assert_int_equal(m.updates, live);
  check_segments(h->mgr);
  /* callbacks release their neighbours and create newcomers mid-tick */
  h->release_mod = 3;
  assert_int_equal(shoal_mgr_update(h->mgr, 50), SHOAL_OK);
  h->release_mod = 0;
  check_segments(h->mgr);
  for (uint32_t id = 1; id < IDS_MAX; id++)
    atomic_store(&h->updates[id], 0);
  for (unsigned k = 0; k < 3; k++)
    assert_int_equal(shoal_mgr_update(h->mgr, 50), SHOAL_OK);
  for (uint32_t id = 1; id < IDS_MAX; id++) {
    uint32_t want = shoal_session_get(h->mgr, id, NULL) == SHOAL_OK ? 3 : 0;
    if (atomic_load(&h->updates[id]) != want)
      fail_msg("id %u updated %u times in 3 ticks", id,
               atomic_load(&h->updates[id]));
  }
  assert_true(atomic_load(&h->created_in_cb) > 0);
  assert_int_equal(atomic_load(&h->off_thread), 0);
  assert_int_equal(atomic_load(&h->bad_user), 0);
  host_free(h);
  shoal_topo_destroy(t);
}

/* Node 1's batches start on a worker of node 1: the updating thread (on
 * node 0) is held in node 0's first session until node 1's first session
 * has run, so that it cannot take node 1's part itself; whoever runs the
 * first slot of a part is the worker that claimed it. */
typedef struct homing {
  shoal_runtime *rt;
  uint32_t first[2];          /* the first session of each segment */
  _Atomic int started1;
  _Atomic int node_of_first1; /* the node of the worker that ran it */
  _Atomic int timed_out;
} homing;

static int worker_node_now(shoal_runtime *rt) {
  shoal_worker *w = shoal__current(rt);
  return w == NULL ? -1
                   : (int)shoal_plan_worker_at(shoal_runtime_plan(rt),
                                               shoal_worker_index(w))
                         ->numa_logical;
}

static int homing_update(void *h_, uint32_t id, void *user, uint32_t diff) {
  homing *h = h_;
  (void)user;
  (void)diff;
  if (id == h->first[1]) {
    atomic_store(&h->node_of_first1, worker_node_now(h->rt));
    atomic_store(&h->started1, 1);
  } else if (id == h->first[0]) {
    uint64_t deadline = shoal__now_ns() + 10 * 1000000000ull;
    while (!atomic_load(&h->started1))
      if (shoal__now_ns() > deadline) {
        atomic_store(&h->timed_out, 1);
        break;
      } else {
        sched_yield();
      }
  }
  return 0;
}

static void numa_home_first(void **state) {
  shoal_topo *t = two_nodes();
  homing h = {0};
  shoal_mgr *mgr;
  shoal_config cfg = make_cfg(1000, 100, 8);
  shoal_mgr_callbacks cb = {homing_update, NULL, &h};
  shoal_mgr_metrics m;
  (void)state;
  h.rt = runtime_on(0, t);
  assert_int_equal(shoal_mgr_create(&mgr, h.rt, &cfg, &cb), SHOAL_OK);
  for (uint32_t id = 1; id <= 400; id++)
    assert_int_equal(shoal_session_create(mgr, id, NULL), SHOAL_OK);
  for (int tick = 0; tick < 20; tick++) {
    shoal__cols *c = atomic_load(&mgr->cols);
    h.first[0] = c->ids[0];
    h.first[1] = c->ids[mgr->seg_end[0]];
    atomic_store(&h.started1, 0);
    atomic_store(&h.node_of_first1, -1);
    assert_int_equal(shoal_mgr_update(mgr, 50), SHOAL_OK);
    assert_int_equal(atomic_load(&h.timed_out), 0);
    assert_int_equal(atomic_load(&h.node_of_first1), 1);
    /* a different first session next time */
    assert_int_equal(shoal_session_release(mgr, h.first[1]), SHOAL_OK);
  }
  assert_int_equal(shoal_mgr_metrics_get(mgr, &m, 0), SHOAL_OK);
  assert_int_equal(m.home_nodes, 2);
  assert_true(m.batches_away <= m.batches);
  assert_int_equal(shoal_mgr_destroy(mgr), SHOAL_OK);
  assert_int_equal(shoal_runtime_destroy(h.rt), SHOAL_OK);
  shoal_topo_destroy(t);
}

/* The same tests through the batch callback: every session once per
 * tick, intervals and their diffs, releases during a tick, quarantine and
 * activity from rc[k]; calls of 1 … SHOAL_UPDATE_BATCH_MAX distinct
 * sessions; the setter's errors; and back to one call per session. */
static void batched(void **state) {
  host *h;
  uint32_t calls;
  g_batched = 1;
  exactly_once(state);
  intervals(state);
  release_during_tick(state);
  quarantine(state);
  g_batched = 0;
  calls = atomic_load(&g_batch_calls);
  assert_true(calls > 0);
  assert_int_equal(atomic_load(&g_batch_bad), 0);
  assert_int_equal(atomic_load(&g_batch_setter_rc), (uint32_t)-SHOAL_ESTATE);
  assert_int_equal(shoal_mgr_set_update_batch(NULL, on_update_batch),
                   SHOAL_EINVAL);
  /* NULL goes back to on_update, one call each */
  h = host_new(2);
  {
    shoal_config cfg = make_cfg(1000, 100, 16);
    mgr_on(h, &cfg);
  }
  for (uint32_t id = 1; id <= 100; id++)
    assert_int_equal(shoal_session_create(h->mgr, id, NULL), SHOAL_OK);
  assert_int_equal(shoal_mgr_set_update_batch(h->mgr, on_update_batch),
                   SHOAL_OK);
  assert_int_equal(shoal_mgr_update(h->mgr, 50), SHOAL_OK);
  assert_true(atomic_load(&g_batch_calls) >= calls + 100 / 8);
  calls = atomic_load(&g_batch_calls);
  assert_int_equal(shoal_mgr_set_update_batch(h->mgr, NULL), SHOAL_OK);
  assert_int_equal(shoal_mgr_update(h->mgr, 50), SHOAL_OK);
  assert_int_equal(atomic_load(&g_batch_calls), calls);
  for (uint32_t id = 1; id <= 100; id++)
    assert_int_equal(atomic_load(&h->updates[id]), 2);
  host_free(h);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(basics),
    cmocka_unit_test(exactly_once),
    cmocka_unit_test(intervals),
    cmocka_unit_test(release_during_tick),
    cmocka_unit_test(quarantine),
    cmocka_unit_test(reentry),
    cmocka_unit_test(maps_top_metrics),
    cmocka_unit_test(concurrent),
    cmocka_unit_test(own_runtime),
    cmocka_unit_test(numa_segments),
    cmocka_unit_test(numa_home_first),
    cmocka_unit_test(batched),
  };
  return test_run("mgr", tests, SHOAL_ARRAY_LEN(tests));
}
