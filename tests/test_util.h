/* test_util.h — what the cmocka unit tests share: cmocka's includes, TAP
 * output for meson, and the path of the topology fixtures. */
#ifndef SHOAL_TEST_UTIL_H
#define SHOAL_TEST_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "shoal.h"

#define SHOAL_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

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

static inline int test_run(const char *group, const struct CMUnitTest *tests,
                           size_t n) {
  cmocka_set_message_output(CM_OUTPUT_TAP);
  return _cmocka_run_group_tests(group, tests, n, NULL, NULL);
}

#endif
