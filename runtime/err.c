/* err.c — the error table (shoal.h's SHOAL_ERRNO_MAP) as strings, the
 * version, the log helper and the text buffer's append. */
#include <stdarg.h>
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

void shoal__text_put(shoal__text *t, const char *fmt, ...) {
  va_list ap;
  int n;
  va_start(ap, fmt);
  n = vsnprintf(t->len < t->cap ? t->buf + t->len : NULL,
                t->len < t->cap ? t->cap - t->len : 0, fmt, ap);
  va_end(ap);
  if (n > 0)
    t->len += (size_t)n;
}
