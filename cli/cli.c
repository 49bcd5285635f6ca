/* cli.c — helpers shared by the `shoal` subcommands (see cli.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

void cli_log_fn(void *user, shoal_log_level level, const char *msg) {
  cli_log *l = user;
  if (level == SHOAL_LOG_ERROR) {
    snprintf(l->last_error, sizeof l->last_error, "%s", msg);
    return;
  }
  if (level <= SHOAL_LOG_INFO)
    fprintf(stderr, "%s: %s\n", l->prog, msg);
}

int cli_usage_error(const char *prog, const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "%s: ", prog);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  return CLI_USAGE;
}

int cli_parse_uint(const char *s, unsigned long lo, unsigned long hi,
                   unsigned long *out) {
  char *end;
  unsigned long v;
  if (s == NULL || *s < '0' || *s > '9')
    return -1;
  errno = 0;
  v = strtoul(s, &end, 10);
  if (errno != 0 || *end != '\0' || v < lo || v > hi)
    return -1;
  *out = v;
  return 0;
}

int cli_finish_output(const char *prog, int status) {
  if (fflush(stdout) != 0 || ferror(stdout)) {
    fprintf(stderr, "%s: cannot write output: %s\n", prog,
            errno != 0 ? strerror(errno) : "write error");
    return CLI_USAGE;
  }
  return status;
}

int cli_bad_option(const char *prog, int optopt_, const char *arg) {
  if (optopt_ != 0 && arg != NULL && strncmp(arg, "--", 2) != 0)
    return cli_usage_error(prog, "unknown option '-%c' (see '%s --help')",
                           optopt_, prog);
  return cli_usage_error(prog, "unknown option '%s' (see '%s --help')",
                         arg != NULL ? arg : "?", prog);
}
