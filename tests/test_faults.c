/* test_faults.c — fault injection: host callbacks that fail, hang past the
 * watchdog or run over budget; pool exhaustion; full inboxes; allocation
 * failures injected in the pool and hibernation paths; sessions released
 * and managers destroyed with packets, wakes and hibernation in flight;
 * 1000 create/destroy cycles (LeakSanitizer checks them in the ASan tree).
 * In each case the tick goes on, the error is reported, and every packet
 * accepted is accounted for: sent = rejected + handled + dropped + pending. */
#include <pthread.h>
#include <semaphore.h>
#include <string.h>
#include <time.h>

#include "runtime/common.h"
#include "test_util.h"

#define OP_INPLACE 10
#define OP_MAIN 11
#define OP_FAIL 12

typedef struct host {
  pthread_mutex_t mu;
  char log[8][256]; /* the latest ERROR/WARN lines */
  int nlog;
  sem_t release;    /* posted by the log callback when the watchdog speaks */
  _Atomic uint32_t hang_id; /* this session's callback waits for `release` */
  _Atomic uint32_t fail_id; /* this session's update fails */
  _Atomic unsigned sleep_ms;
  _Atomic uint64_t updates, handled, released;
  uint32_t state[128]; /* per session: what hibernation keeps */
} host;

static host H;

static void host_log(void *user, shoal_log_level level, const char *msg) {
  host *h = user;
  if (level > SHOAL_LOG_WARN)
    return;
  pthread_mutex_lock(&h->mu);
  snprintf(h->log[h->nlog % 8], sizeof h->log[0], "%s", msg);
  h->nlog++;
  pthread_mutex_unlock(&h->mu);
  if (strstr(msg, "watchdog:") != NULL && strstr(msg, "the tick waits"))
    sem_post(&h->release);
}

static int logged(const char *a, const char *b) {
  int found = 0;
  pthread_mutex_lock(&H.mu);
  for (int i = 0; i < 8 && i < H.nlog; i++)
    if (strstr(H.log[i], a) != NULL && (b == NULL || strstr(H.log[i], b)))
      found = 1;
  pthread_mutex_unlock(&H.mu);
  return found;
}

static void sleep_ms(unsigned ms) {
  struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0)
    ;
}

/* Whether this callback is the one that must hang (once). */
static int hang_here(host *h, uint32_t id) {
  uint32_t want = id;
  return id == atomic_load(&h->hang_id) &&
         atomic_compare_exchange_strong(&h->hang_id, &want, 0);
}

static int upd(void *hp, uint32_t id, void *user, uint32_t diff) {
  host *h = hp;
  (void)user;
  (void)diff;
  atomic_fetch_add(&h->updates, 1);
  if (hang_here(h, id))
    sem_wait(&h->release); /* until the watchdog has reported us */
  if (id == h->fail_id)
    return -7;
  if (id == 1) {
    unsigned ms = atomic_exchange(&h->sleep_ms, 0);
    if (ms != 0)
      sleep_ms(ms);
  }
  return 0;
}

static void on_release(void *hp, uint32_t id, void *user) {
  (void)id;
  (void)user;
  atomic_fetch_add(&((host *)hp)->released, 1);
}

static int handler(void *hp, uint32_t id, void *user, const shoal_packet *p) {
  host *h = hp;
  (void)user;
  atomic_fetch_add(&h->handled, 1);
  if (hang_here(h, id))
    sem_wait(&h->release);
  return p->opcode == OP_FAIL ? -1 : 0;
}

static long hib_save(void *hp, uint32_t id, void *user, shoal_hib_writer *w) {
  host *h = hp;
  (void)user;
  if (shoal_hib_write(w, &h->state[id], sizeof h->state[id]) != SHOAL_OK)
    return -1;
  h->state[id] = 0; /* "freed": only the record has it now */
  return 4;
}

static int hib_wake(void *hp, uint32_t id, const void *blob, size_t len,
                    void **user) {
  host *h = hp;
  (void)user;
  if (len != sizeof h->state[id])
    return -1;
  memcpy(&h->state[id], blob, len);
  return 0;
}

static shoal_mgr *make(shoal_config *cfg) {
  shoal_mgr *mgr = NULL;
  shoal_mgr_callbacks cb = {upd, on_release, &H};
  cfg->log = host_log;
  cfg->log_user = &H;
  if (cfg->worker_threads == 0)
    cfg->worker_threads = 4; /* more than the cores CI has */
  assert_int_equal(shoal_mgr_create(&mgr, NULL, cfg, &cb), SHOAL_OK);
  assert_int_equal(shoal_mgr_register_opcode(mgr, OP_INPLACE,
                                             SHOAL_PACKET_INPLACE,
                                             SHOAL_CAT_MOVEMENT, handler, NULL),
                   SHOAL_OK);
  assert_int_equal(shoal_mgr_register_opcode(mgr, OP_MAIN, SHOAL_PACKET_MAIN,
                                             SHOAL_CAT_LOOT, handler, NULL),
                   SHOAL_OK);
  assert_int_equal(shoal_mgr_register_opcode(mgr, OP_FAIL, SHOAL_PACKET_INPLACE,
                                             SHOAL_CAT_OTHER, handler, NULL),
                   SHOAL_OK);
  return mgr;
}

static int setup(void **state) {
  (void)state;
  memset(&H, 0, sizeof H);
  pthread_mutex_init(&H.mu, NULL);
  sem_init(&H.release, 0, 0);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  shoal__fault_alloc(0, 0);
  sem_destroy(&H.release);
  pthread_mutex_destroy(&H.mu);
  return 0;
}

/* The accounting identity; returns the stats for more checks. */
static shoal_packet_stats accounted(shoal_mgr *mgr) {
  shoal_packet_stats ps;
  assert_int_equal(shoal_packet_stats_get(mgr, &ps, 0), SHOAL_OK);
  if (ps.sent != ps.rejected + ps.handled + ps.dropped + ps.pending)
    fail_msg("sent %llu != rejected %llu + handled %llu + dropped %llu + "
             "pending %llu",
             (unsigned long long)ps.sent, (unsigned long long)ps.rejected,
             (unsigned long long)ps.handled, (unsigned long long)ps.dropped,
             (unsigned long long)ps.pending);
  return ps;
}

static void settle(shoal_mgr *mgr) {
  for (int i = 0; i < 4; i++) {
    assert_int_equal(shoal_mgr_update(mgr, 10), SHOAL_OK);
    assert_true(shoal_mgr_drain_deferred(mgr, 0, NULL) >= 0);
  }
}

/* Failing update, failing handlers, a refusing hibernate callback. */
static void failing_callbacks(void **state) {
  shoal_config cfg;
  shoal_mgr *mgr;
  shoal_session_info si;
  shoal_packet_stats ps;
  (void)state;
  shoal_config_defaults(&cfg);
  mgr = make(&cfg);
  for (uint32_t id = 1; id <= 100; id++)
    assert_int_equal(shoal_session_create(mgr, id, NULL), SHOAL_OK);
  H.fail_id = 42;
  for (uint32_t id = 1; id <= 100; id++)
    assert_int_equal(
        shoal_session_send(mgr, id, id % 2 ? OP_FAIL : OP_MAIN, 0, NULL, 0),
        SHOAL_OK);
  settle(mgr);
  assert_int_equal(shoal_session_get(mgr, 42, &si), SHOAL_OK);
  assert_int_equal(si.state, SHOAL_SESSION_QUARANTINED);
  assert_int_equal(si.last_error, -7);
  assert_true(logged("session 42", NULL));
  /* The others kept ticking. */
  H.fail_id = 0;
  atomic_store(&H.updates, 0);
  assert_int_equal(shoal_mgr_update(mgr, 10), SHOAL_OK);
  assert_int_equal(atomic_load(&H.updates), 99);
  ps = accounted(mgr);
  assert_int_equal(ps.handled, 100);
  assert_int_equal(ps.failed, 50);
  assert_int_equal(ps.pending, 0);
  assert_int_equal(shoal_mgr_destroy(mgr), SHOAL_OK);
  assert_int_equal(atomic_load(&H.released), 100);
}

/* A callback that hangs: the watchdog names the worker and the session
 * through the log, and the tick finishes once the callback returns. */
static void hanging_callbacks(void **state) {
  shoal_config cfg;
  shoal_mgr *mgr;
  shoal_mgr_metrics m;
  (void)state;
  shoal_config_defaults(&cfg);
  cfg.watchdog_ms = 100;
  mgr = make(&cfg);
  for (uint32_t id = 1; id <= 200; id++)
    assert_int_equal(shoal_session_create(mgr, id, NULL), SHOAL_OK);
  /* The update of session 77: the log callback releases it. */
  H.hang_id = 77;
  assert_int_equal(shoal_mgr_update(mgr, 10), SHOAL_OK);
  assert_int_equal(atomic_load(&H.updates), 200);
  assert_true(logged("session 77's update callback", "worker "));
  /* A deferred handler in drain_deferred. */
  assert_int_equal(shoal_session_send(mgr, 5, OP_MAIN, 0, NULL, 0), SHOAL_OK);
  assert_int_equal(shoal_mgr_update(mgr, 10), SHOAL_OK);
  H.hang_id = 5;
  assert_int_equal(shoal_mgr_drain_deferred(mgr, 0, NULL), 1);
  assert_true(
      logged("session 5's deferred packet handler", "the draining thread"));
  /* An INPLACE handler on a worker. */
  assert_int_equal(shoal_session_send(mgr, 9, OP_INPLACE, 0, NULL, 0),
                   SHOAL_OK);
  H.hang_id = 9;
  assert_int_equal(shoal_mgr_update(mgr, 10), SHOAL_OK);
  assert_true(logged("session 9's packet handler", "worker "));
  assert_int_equal(shoal_mgr_metrics_get(mgr, &m, 0), SHOAL_OK);
  assert_int_equal(m.watchdog_stalls, 3);
  assert_int_equal(accounted(mgr).handled, 2);
  assert_int_equal(shoal_mgr_destroy(mgr), SHOAL_OK);
}

/* A callback far over budget is counted and logged; nothing else. */
static void over_budget(void **state) {
  shoal_config cfg;
  shoal_mgr *mgr;
  shoal_mgr_metrics m;
  (void)state;
  shoal_config_defaults(&cfg);
  cfg.callback_budget_ms = 20;
  mgr = make(&cfg);
  assert_int_equal(shoal_session_create(mgr, 1, NULL), SHOAL_OK);
  H.sleep_ms = 300;
  assert_int_equal(shoal_mgr_update(mgr, 10), SHOAL_OK);
  assert_int_equal(shoal_mgr_metrics_get(mgr, &m, 0), SHOAL_OK);
  assert_int_equal(m.over_budget, 1);
  assert_int_equal(m.watchdog_stalls, 0);
  assert_true(logged("session 1's update callback has run", "Budget"));
  assert_int_equal(shoal_mgr_destroy(mgr), SHOAL_OK);
}

/* A full pool refuses with ELIMIT and keeps everyone it has. */
static void pool_exhaustion(void **state) {
  shoal_config cfg;
  shoal_mgr *mgr;
  (void)state;
  shoal_config_defaults(&cfg);
  cfg.max_sessions = 64;
  cfg.pool_preallocate = 16;
  cfg.pool_grow = 16;
  mgr = make(&cfg);
  for (uint32_t id = 1; id <= 64; id++)
    assert_int_equal(shoal_session_create(mgr, id, NULL), SHOAL_OK);
  assert_int_equal(shoal_session_create(mgr, 65, NULL), SHOAL_ELIMIT);
  assert_int_equal(shoal_session_get(mgr, 65, NULL), SHOAL_ENOENT);
  assert_int_equal(shoal_mgr_update(mgr, 10), SHOAL_OK);
  assert_int_equal(atomic_load(&H.updates), 64);
  assert_int_equal(shoal_session_release(mgr, 3), SHOAL_OK);
  assert_int_equal(shoal_session_create(mgr, 65, NULL), SHOAL_OK);
  assert_int_equal(shoal_mgr_destroy(mgr), SHOAL_OK);
  assert_int_equal(atomic_load(&H.released), 65);
}

/* A full inbox applies back-pressure; what it took is all handled. */
static void full_inbox(void **state) {
  shoal_config cfg;
  shoal_mgr *mgr;
  shoal_packet_stats ps;
  int rc, ok = 0, again = 0;
  (void)state;
  shoal_config_defaults(&cfg);
  cfg.inbox_size = 4;
  mgr = make(&cfg);
  assert_int_equal(shoal_session_create(mgr, 1, NULL), SHOAL_OK);
  for (int i = 0; i < 10; i++) {
    rc = shoal_session_send(mgr, 1, OP_INPLACE, 0, &i, sizeof i);
    ok += rc == SHOAL_OK;
    again += rc == SHOAL_EAGAIN;
  }
  assert_int_equal(ok, 4);
  assert_int_equal(again, 6);
  settle(mgr);
  ps = accounted(mgr);
  assert_int_equal(ps.rejected, 6);
  assert_int_equal(ps.handled, 4);
  assert_int_equal(shoal_session_send(mgr, 1, OP_INPLACE, 0, NULL, 0),
                   SHOAL_OK); /* room again */
  assert_int_equal(shoal_mgr_destroy(mgr), SHOAL_OK);
}

/* Allocation failures while the pool grows: creates fail with ENOMEM,
 * nothing else changes, and creates work again afterwards. */
static void alloc_fail_pool(void **state) {
  shoal_config cfg;
  shoal_mgr *mgr;
  uint64_t before;
  int rc;
  (void)state;
  shoal_config_defaults(&cfg);
  cfg.pool_preallocate = 8;
  cfg.pool_grow = 8;
  mgr = make(&cfg);
  for (uint32_t id = 1; id <= 8; id++)
    assert_int_equal(shoal_session_create(mgr, id, NULL), SHOAL_OK);
  before = shoal__fault_alloc_failed();
  shoal__fault_alloc(0, 1000000);
  rc = shoal_session_create(mgr, 9, NULL);
  shoal__fault_alloc(0, 0);
  assert_int_equal(rc, SHOAL_ENOMEM);
  assert_true(shoal__fault_alloc_failed() > before);
  assert_int_equal(shoal_session_get(mgr, 9, NULL), SHOAL_ENOENT);
  assert_int_equal(shoal_mgr_update(mgr, 10), SHOAL_OK);
  assert_int_equal(atomic_load(&H.updates), 8);
  for (uint32_t id = 9; id <= 40; id++)
    assert_int_equal(shoal_session_create(mgr, id, NULL), SHOAL_OK);
  assert_int_equal(shoal_mgr_destroy(mgr), SHOAL_OK);
  assert_int_equal(atomic_load(&H.released), 40);
}

static void hibernate_all(shoal_mgr *mgr) {
  assert_int_equal(shoal_mgr_set_hibernation_ms(mgr, 1), SHOAL_OK);
  assert_int_equal(shoal_mgr_set_hibernation_hysteresis_ms(mgr, 0), SHOAL_OK);
  assert_int_equal(shoal_mgr_update(mgr, 1000), SHOAL_OK);
  assert_int_equal(shoal_mgr_update(mgr, 1000), SHOAL_OK);
}

/* Allocation failures in the hibernation path: the records cannot be
 * kept, the host gets its bytes back at once, nothing is lost. */
static void alloc_fail_hibernate(void **state) {
  shoal_config cfg;
  shoal_mgr *mgr;
  shoal_hib_callbacks hc = {hib_save, hib_wake, NULL};
  shoal_hib_stats hs;
  long n;
  (void)state;
  shoal_config_defaults(&cfg);
  cfg.auto_defragment = 0;
  mgr = make(&cfg);
  assert_int_equal(shoal_mgr_set_hibernation(mgr, &hc), SHOAL_OK);
  for (uint32_t id = 1; id <= 100; id++) {
    H.state[id] = id * 1000u + 7;
    assert_int_equal(shoal_session_create(mgr, id, NULL), SHOAL_OK);
  }
  assert_int_equal(shoal_mgr_set_hibernation_ms(mgr, 1), SHOAL_OK);
  assert_int_equal(shoal_mgr_set_hibernation_hysteresis_ms(mgr, 0), SHOAL_OK);
  /* A long idle time passes without a hibernation pass… */
  assert_int_equal(shoal_mgr_set_hibernation_ms(mgr, 3600000), SHOAL_OK);
  assert_int_equal(shoal_mgr_update(mgr, 5000), SHOAL_OK);
  assert_int_equal(shoal_mgr_set_hibernation_ms(mgr, 1), SHOAL_OK);
  /* …then passes in which every allocation after the first `skip` fails:
   * the pass fails whole with ENOMEM (nothing changed), or records cannot
   * be kept (the host got its bytes back), or some sessions hibernate. */
  for (int64_t skip = 0; skip < 400; skip++) {
    uint64_t hib = 0;
    shoal__fault_alloc(skip, 1000000);
    n = shoal_mgr_hibernate_idle(mgr, 0);
    shoal__fault_alloc(0, 0);
    if (n < 0)
      assert_int_equal(n, SHOAL_ENOMEM);
    for (uint32_t id = 1; id <= 100; id++) {
      shoal_session_info si;
      assert_int_equal(shoal_session_get(mgr, id, &si), SHOAL_OK);
      if (si.state == SHOAL_SESSION_HIBERNATED)
        hib++;
      else
        assert_int_equal(H.state[id], id * 1000u + 7);
    }
    assert_int_equal(shoal_hib_stats_get(mgr, &hs, 0), SHOAL_OK);
    assert_int_equal(hs.hibernated, hib);
    printf("# skip %ld: n %ld hib %lu failures %lu refused %lu\n", (long)skip,
           n, (unsigned long)hib, (unsigned long)hs.failures,
           (unsigned long)hs.refused);
    if (hs.failures > 0)
      break;
  }
  assert_true(hs.failures > 0); /* the record path was reached */
  /* Without faults, all hibernate, and wake with their state. */
  assert_true(shoal_mgr_hibernate_idle(mgr, 0) >= 0);
  assert_int_equal(shoal_hib_stats_get(mgr, &hs, 0), SHOAL_OK);
  assert_int_equal(hs.hibernated, 100);
  for (uint32_t id = 1; id <= 100; id++)
    assert_int_equal(shoal_mgr_wake(mgr, id), SHOAL_OK);
  assert_int_equal(shoal_mgr_run_wakes(mgr), 100);
  for (uint32_t id = 1; id <= 100; id++)
    assert_int_equal(H.state[id], id * 1000u + 7);
  assert_int_equal(shoal_mgr_destroy(mgr), SHOAL_OK);
}

/* Released with packets in the inbox, packets deferred, a wake asked for
 * and hibernated: each packet is counted dropped, on_release runs once. */
static void release_in_flight(void **state) {
  shoal_config cfg;
  shoal_mgr *mgr;
  shoal_hib_callbacks hc = {hib_save, hib_wake, NULL};
  shoal_packet_stats ps;
  (void)state;
  shoal_config_defaults(&cfg);
  cfg.auto_defragment = 0;
  mgr = make(&cfg);
  assert_int_equal(shoal_mgr_set_hibernation(mgr, &hc), SHOAL_OK);
  for (uint32_t id = 1; id <= 30; id++)
    assert_int_equal(shoal_session_create(mgr, id, NULL), SHOAL_OK);
  hibernate_all(mgr);
  /* 1…10: hibernated, a packet each (held for them), then released with a
   * wake asked for. */
  for (uint32_t id = 1; id <= 10; id++) {
    assert_int_equal(shoal_session_send(mgr, id, OP_INPLACE, 0, NULL, 0),
                     SHOAL_OK);
    assert_int_equal(shoal_mgr_wake(mgr, id), SHOAL_OK);
    assert_int_equal(shoal_session_release(mgr, id), SHOAL_OK);
  }
  /* 11…20: woken, a MAIN packet deferred, released before the drain. */
  for (uint32_t id = 11; id <= 20; id++)
    assert_int_equal(shoal_mgr_wake(mgr, id), SHOAL_OK);
  assert_int_equal(shoal_mgr_run_wakes(mgr), 10);
  for (uint32_t id = 11; id <= 20; id++)
    assert_int_equal(shoal_session_send(mgr, id, OP_MAIN, 0, NULL, 0),
                     SHOAL_OK);
  assert_int_equal(shoal_mgr_set_hibernation_ms(mgr, 3600000), SHOAL_OK);
  assert_int_equal(shoal_mgr_update(mgr, 10), SHOAL_OK);
  for (uint32_t id = 11; id <= 20; id++)
    assert_int_equal(shoal_session_release(mgr, id), SHOAL_OK);
  /* 21…30: hibernated with two packets waiting each, released. */
  for (uint32_t id = 21; id <= 30; id++) {
    assert_int_equal(shoal_session_send(mgr, id, OP_INPLACE, 0, NULL, 0),
                     SHOAL_OK);
    assert_int_equal(shoal_session_send(mgr, id, OP_MAIN, 0, NULL, 0),
                     SHOAL_OK);
    assert_int_equal(shoal_session_release(mgr, id), SHOAL_OK);
  }
  settle(mgr);
  ps = accounted(mgr);
  assert_int_equal(ps.sent, 40);
  assert_int_equal(ps.pending, 0);
  assert_int_equal(ps.handled + ps.dropped, 40);
  assert_int_equal(atomic_load(&H.released), 30);
  assert_int_equal(shoal_mgr_destroy(mgr), SHOAL_OK);
  assert_int_equal(atomic_load(&H.released), 30);
}

/* Destroyed with packets pending: one WARN says how many. */
static void shutdown_in_flight(void **state) {
  shoal_config cfg;
  shoal_mgr *mgr;
  char want[64];
  (void)state;
  shoal_config_defaults(&cfg);
  mgr = make(&cfg);
  for (uint32_t id = 1; id <= 50; id++) {
    assert_int_equal(shoal_session_create(mgr, id, NULL), SHOAL_OK);
    assert_int_equal(shoal_session_send(mgr, id, OP_INPLACE, 0, NULL, 0),
                     SHOAL_OK);
    assert_int_equal(shoal_session_send(mgr, id, OP_MAIN, 0, NULL, 0),
                     SHOAL_OK);
  }
  /* 50 handled, 50 deferred; then 50 more wait in the inboxes. */
  assert_int_equal(shoal_mgr_update(mgr, 10), SHOAL_OK);
  for (uint32_t id = 1; id <= 50; id++)
    assert_int_equal(shoal_session_send(mgr, id, OP_INPLACE, 0, NULL, 0),
                     SHOAL_OK);
  assert_int_equal(accounted(mgr).pending, 100);
  assert_int_equal(shoal_mgr_destroy(mgr), SHOAL_OK);
  snprintf(want, sizeof want, "destroyed with %d packets pending", 100);
  assert_true(logged(want, "of 150 sent: 50 handled"));
  assert_int_equal(atomic_load(&H.released), 50);
}

/* 1000 managers (each with its own runtime) created, loaded and
 * destroyed; LeakSanitizer checks at exit in the ASan tree. */
static void cycles(void **state) {
  shoal_hib_callbacks hc = {hib_save, hib_wake, NULL};
  (void)state;
  for (int cycle = 0; cycle < 1000; cycle++) {
    shoal_config cfg;
    shoal_mgr *mgr;
    shoal_config_defaults(&cfg);
    cfg.worker_threads = 1 + (unsigned)cycle % 4;
    cfg.pool_preallocate = 16;
    cfg.auto_defragment = 0;
    mgr = make(&cfg);
    if (cycle % 4 == 0)
      assert_int_equal(shoal_mgr_set_hibernation(mgr, &hc), SHOAL_OK);
    for (uint32_t id = 1; id <= 40; id++) {
      assert_int_equal(shoal_session_create(mgr, id, NULL), SHOAL_OK);
      assert_int_equal(shoal_session_send(
                           mgr, id, id % 2 ? OP_MAIN : OP_INPLACE, 0, NULL, 0),
                       SHOAL_OK);
    }
    assert_int_equal(shoal_mgr_update(mgr, 10), SHOAL_OK);
    if (cycle % 4 == 0)
      hibernate_all(mgr);
    if (cycle % 3 == 0)
      assert_true(shoal_mgr_drain_deferred(mgr, 0, NULL) >= 0);
    (void)accounted(mgr);
    assert_int_equal(shoal_mgr_destroy(mgr), SHOAL_OK);
  }
  printf("# 1000 managers created, loaded and destroyed\n");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(failing_callbacks, setup, teardown),
      cmocka_unit_test_setup_teardown(hanging_callbacks, setup, teardown),
      cmocka_unit_test_setup_teardown(over_budget, setup, teardown),
      cmocka_unit_test_setup_teardown(pool_exhaustion, setup, teardown),
      cmocka_unit_test_setup_teardown(full_inbox, setup, teardown),
      cmocka_unit_test_setup_teardown(alloc_fail_pool, setup, teardown),
      cmocka_unit_test_setup_teardown(alloc_fail_hibernate, setup, teardown),
      cmocka_unit_test_setup_teardown(release_in_flight, setup, teardown),
      cmocka_unit_test_setup_teardown(shutdown_in_flight, setup, teardown),
      cmocka_unit_test_setup_teardown(cycles, setup, teardown),
  };
  return test_run("faults", tests, SHOAL_ARRAY_LEN(tests));
}
