/* err.c — the error table (shoal.h's SHOAL_ERRNO_MAP) as strings, the
 * version, and the log helper. */
#include <stdio.h>

#include "shoal_build.h"
#include "runtime/common.h"

const char *shoal_version(void) { return SHOAL__VERSION_STRING; }

const char *shoal_strerror(int err) {
  if (err == SHOAL_OK)
    return "success";
  switch (err) {
#define ERR_TEXT(name, code, text) case code: return text;
    SHOAL_ERRNO_MAP(ERR_TEXT)
#undef ERR_TEXT
  }
  return "unknown error";
}

const char *shoal_err_name(int err) {
  if (err == SHOAL_OK)
    return "OK";
  switch (err) {
#define ERR_NAME(name, code, text) case code: return #name;
    SHOAL_ERRNO_MAP(ERR_NAME)
#undef ERR_NAME
  }
  return "UNKNOWN";
}

void shoal__log(shoal_log_fn fn, void *user, shoal_log_level level,
                const char *fmt, ...) {
  char buf[512];
  va_list ap;
  if (fn == NULL)
    return;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  fn(user, level, buf);
}
