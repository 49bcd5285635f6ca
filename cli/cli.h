/* cli.h — what the `shoal` subcommands share: exit codes, argument parsing
 * and the log callback that turns library messages into one stderr line. */
#ifndef SHOAL_CLI_H
#define SHOAL_CLI_H

#include <stdio.h>

#include "shoal.h"

enum {
  CLI_OK = 0,      /* done */
  CLI_FAIL = 1,    /* the work ran and failed (or a verdict was FAIL) */
  CLI_USAGE = 2    /* bad input: flags, values, files, a closed output */
};

typedef struct cli_log {
  const char *prog;   /* "shoal topo" */
  char last_error[512];
} cli_log;

/* shoal_log_fn: keeps the last error for the caller's one-line report and
 * prints warnings and information at once. */
void cli_log_fn(void *user, shoal_log_level level, const char *msg);

/* Prints "prog: message" on stderr. Returns CLI_USAGE, for `return`. */
int cli_usage_error(const char *prog, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Parses a decimal unsigned integer in [lo, hi]: no sign, no trailing
 * characters. Returns 0 on success. */
int cli_parse_uint(const char *s, unsigned long lo, unsigned long hi,
                   unsigned long *out);

/* Flushes stdout; on a write error (a closed pipe) reports it and returns
 * CLI_USAGE, else `status`. */
int cli_finish_output(const char *prog, int status);

/* Reports an unknown option or a missing value seen by getopt_long. */
int cli_bad_option(const char *prog, int optopt_, const char *arg);

/* `shoal topo`'s options. */
typedef struct topo_args {
  int json;
  int latency;
  int whole_system;
  unsigned workers;
  const char *synthetic;
  const char *xml;
} topo_args;
/* Parses them: 0 go on, -1 --help was printed, else an exit status (a
 * line on stderr said why). Also the fuzzer's entry (tests/fuzz). */
int topo_parse_args(int argc, char **argv, topo_args *a);

/* topo_plan.c: the plan's text rows and JSON object, and the helpers. */
struct json_writer;
void topo_ranges(char *buf, size_t cap, unsigned *v, unsigned n);
const char *topo_victim_label(const shoal_plan_worker *pw, unsigned i,
                              char *buf, size_t cap);
void topo_print_plan(const shoal_plan *plan, unsigned asked);
void topo_json_plan(struct json_writer *j, const shoal_plan *plan);

/* listen.c: the metrics of a manager (and its actors, may be NULL) served
 * over HTTP. _bind takes the socket on "HOST:PORT" (HOST defaults to
 * 127.0.0.1; port 0: the system picks one) and says the address on
 * stderr: 0, or -1 with the reason said as bad input. _serve answers from then on (0, or -1 when
 * its thread cannot start) until _stop, which closes the socket, frees
 * the listener (NULL: nothing) and returns how many scrapes were
 * answered. */
typedef struct cli_listener cli_listener;
int cli_listen_bind(cli_listener **out, const char *prog, const char *spec);
int cli_listen_serve(cli_listener *l, shoal_mgr *mgr, shoal_actors *actors);
unsigned long cli_listen_stop(cli_listener *l);
/* shoal_metrics_prometheus into *buf (malloc'd, *cap bytes; both may start
 * NULL and 0), grown until the text fits: its length, or -1. */
long cli_prom_text(shoal_mgr *mgr, shoal_actors *actors, char **buf,
                   size_t *cap);

int cmd_topo(int argc, char **argv);
int cmd_stress(int argc, char **argv);

#endif
