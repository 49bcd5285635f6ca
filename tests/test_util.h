/* test_util.h — what the cmocka unit tests share: cmocka's includes, TAP
 * output for meson, and the path of the topology fixtures. */
#ifndef SHOAL_TEST_UTIL_H
#define SHOAL_TEST_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "shoal.h"

#define SHOAL_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* cmocka's asserts belong to the thread that runs the test: one that fails
 * in a handler on a worker would jump into another thread's stack. Code
 * that runs on workers or helper threads checks with TEST_OFF_MAIN, which
 * says on stderr what failed (stderr reaches CI's log; the TAP stream on
 * stdout does not) and counts it; the test asserts the count is 0. */
static _Atomic unsigned long test_off_main_failures __attribute__((unused));
#define TEST_OFF_MAIN(cond, ...)                                               \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: %s failed: ", __FILE__, __LINE__, #cond);        \
      fprintf(stderr, __VA_ARGS__);                                            \
      fputc('\n', stderr);                                                     \
      atomic_fetch_add(&test_off_main_failures, 1);                            \
    }                                                                          \
  } while (0)
#define TEST_OFF_MAIN_CLEAN()                                                  \
  assert_int_equal(atomic_exchange(&test_off_main_failures, 0), 0)

/* Fixtures live in tests/topologies; meson passes the folder. */
static inline void test_fixture_path(char *buf, size_t cap, const char *name) {
  const char *dir = getenv("SHOAL_TOPOLOGIES");
  snprintf(buf, cap, "%s/%s", dir != NULL ? dir : "tests/topologies", name);
}

/* A log callback that keeps the output clean (a runtime with more workers
 * than PUs warns, as do quarantines the tests cause on purpose). */
static inline void test_quiet_log(void *user, shoal_log_level level,
                                  const char *msg) {
  (void)user;
  (void)level;
  (void)msg;
}

/* A quiet runtime of `workers` (0: one per core of t) that may grow to
 * `max` (0: the default), on t (NULL: this machine); created or the test
 * fails. */
static inline shoal_runtime *test_runtime(unsigned workers, unsigned max,
                                          const shoal_topo *t) {
  shoal_runtime_config cfg;
  shoal_runtime *rt = NULL;
  shoal_runtime_config_defaults(&cfg);
  cfg.workers = workers;
  if (max != 0)
    cfg.max_workers = max;
  cfg.topo = t;
  cfg.log = test_quiet_log;
  assert_int_equal(shoal_runtime_create(&rt, &cfg), SHOAL_OK);
  return rt;
}

/* fib by fork-join (a spawn, then shoal_sync_take: the child run inline
 * when nobody stole it), for tests that check a result: run
 * test_fib_root through shoal_runtime_run with n set; r holds fib(n). */
typedef struct test_fib_args {
  int n;
  long r;
} test_fib_args;

static inline long test_fib(shoal_worker *w, int n);

static inline void test_fib_task(shoal_worker *w, void *args) {
  test_fib_args *f = (test_fib_args *)args;
  f->r = test_fib(w, f->n);
}

static inline long test_fib(shoal_worker *w, int n) {
  test_fib_args *f;
  long b;
  if (n < 2)
    return n;
  f = (test_fib_args *)shoal_args(w);
  f->n = n - 1;
  b = test_fib(shoal_spawn(w, test_fib_task), n - 2);
  if (shoal_sync_take(w))
    return test_fib(w, n - 1) + b;
  return f->r + b;
}

static inline void test_fib_root(shoal_worker *w, void *arg) {
  test_fib_args *r = (test_fib_args *)arg;
  r->r = test_fib(w, r->n);
}

/* An update callback that does nothing and reports no work. */
static inline int test_nop_update(void *host, uint32_t id, void *user,
                                  uint32_t diff) {
  (void)host;
  (void)id;
  (void)user;
  (void)diff;
  return 0;
}

/* A packet handler that does nothing. */
static inline int test_nop_packet(void *host, uint32_t session, void *user,
                                  const shoal_packet *p) {
  (void)host;
  (void)session;
  (void)user;
  (void)p;
  return 0;
}

/* Hibernation callbacks for sessions with no state of their own: the
 * record keeps the id; a wake gives the session user NULL. */
static inline long test_hib_keep_id(void *host, uint32_t id, void *user,
                                    shoal_hib_writer *w) {
  (void)host;
  (void)user;
  return shoal_hib_write(w, &id, sizeof id) == SHOAL_OK ? 0 : -1;
}

static inline int test_hib_wake_null(void *host, uint32_t id,
                                     const void *blob, size_t len,
                                     void **user) {
  (void)host;
  (void)id;
  (void)blob;
  (void)len;
  *user = NULL;
  return 0;
}

static inline int test_run(const char *group, const struct CMUnitTest *tests,
                           size_t n) {
  cmocka_set_message_output(CM_OUTPUT_TAP);
  return _cmocka_run_group_tests(group, tests, n, NULL, NULL);
}

#endif
