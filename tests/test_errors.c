/* test_errors.c — the error table: every code has a name and a message,
 * codes are distinct and negative, unknown codes are reported as such. */
#include <string.h>

#include "test_util.h"

static void table(void **state) {
  static const int codes[] = {
#define CODE(name, code, text) SHOAL_##name,
    SHOAL_ERRNO_MAP(CODE)
#undef CODE
  };
  (void)state;
  for (size_t i = 0; i < SHOAL_ARRAY_LEN(codes); i++) {
    assert_true(codes[i] < 0);
    assert_string_not_equal(shoal_strerror(codes[i]), "unknown error");
    assert_string_not_equal(shoal_err_name(codes[i]), "UNKNOWN");
    for (size_t j = 0; j < i; j++)
      assert_int_not_equal(codes[i], codes[j]);
  }
  assert_string_equal(shoal_err_name(SHOAL_EAGAIN), "EAGAIN");
  assert_string_equal(shoal_strerror(SHOAL_OK), "success");
  assert_string_equal(shoal_err_name(SHOAL_OK), "OK");
  assert_string_equal(shoal_strerror(-1000), "unknown error");
  assert_string_equal(shoal_err_name(7), "UNKNOWN");
}

static void version(void **state) {
  char want[32];
  (void)state;
  snprintf(want, sizeof want, "%d.%d.%d", SHOAL_VERSION_MAJOR,
           SHOAL_VERSION_MINOR, SHOAL_VERSION_PATCH);
  assert_string_equal(shoal_version(), want);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(table),
    cmocka_unit_test(version),
  };
  return test_run("errors", tests, SHOAL_ARRAY_LEN(tests));
}
