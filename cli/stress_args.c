/* stress_args.c — `shoal stress`'s options: the usage text, the numeric
 * options with their ranges, and the parser (also the fuzzer's entry),
 * which checks the combinations a run, --find-max and --compare allow. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "stress.h"

static void usage(FILE *f) {
  fprintf(f,
    "usage: shoal stress [options]\n"
    "\n"
    "Runs a simulated bot population on shoal's session manager and says\n"
    "whether this machine holds it inside the tick budget (PASS/FAIL).\n"
    "\n"
    "  --sessions N      bot sessions (5000)\n"
    "  --tps N           ticks per second (20)\n"
    "  --duration S      seconds of simulated play (30)\n"
    "  --budget-ms MS    the tick budget (50)\n"
    "  --workers N       workers; 0: one per core (0)\n"
    "  --batch N         sessions per batch; 0: the configuration's (0)\n"
    "  --seed N          the population's random seed (1)\n"
    "  --work-us US      a bot's AI work per update, in microseconds (5)\n"
    "  --idle-share PCT  bots that go idle and hibernate, percent (10)\n"
    "  --state-kib KIB   a bot's host state, KiB (64)\n"
    "  --maps N          the world's maps (8)\n"
    "  --pace realtime|max  realtime: a tick every 1/tps s; max: back to\n"
    "                    back, to find the headroom (realtime)\n"
    "  --config FILE     a host's key = value configuration file\n"
    "  --json FILE       the report as JSON (docs/stress.md)\n"
    "  --html FILE       the report as one self-contained page with charts\n"
    "  --trace FILE      per-worker batch spans, Chrome trace-event JSON\n"
    "  --prometheus FILE the final metrics, Prometheus text format\n"
    "  --listen HOST:PORT  serve the metrics live over HTTP at /metrics\n"
    "                    during the run (HOST: 127.0.0.1 when left out;\n"
    "                    port 0: any free one, printed on stderr)\n"
    "\n"
    "  --find-max        search for the most sessions this machine holds\n"
    "                    inside the budget: short runs, doubling, then\n"
    "                    bisecting (up to --sessions when given)\n"
    "  --step-seconds S  each step's simulated play (5)\n"
    "  --max-seconds S   the whole search's bound (120)\n"
    "\n"
    "  --compare A.json B.json  runs nothing: prints two reports side by\n"
    "                    side with each figure's change, and the\n"
    "                    regressions from A to B\n"
    "  --tolerance PCT   a change counts as a regression past PCT %% (10)\n"
    "\n"
    "Exit status: 0 PASS, 1 FAIL, 2 bad input; with --find-max: 0 a\n"
    "capacity found, 1 even the smallest step failed; with --compare: 0 no\n"
    "regression, 1 some.\n");
}

static int parse_num(const char *opt, const char *v, unsigned long lo,
                     unsigned long hi, unsigned long *out) {
  if (cli_parse_uint(v, lo, hi, out) != 0) {
    cli_usage_error(ST_PROG, "%s wants a whole number in %lu … %lu, not '%s'",
                    opt, lo, hi, v);
    return -1;
  }
  return 0;
}

/* The numeric options: their names and ranges. */
typedef struct num_opt {
  int c;
  const char *name;
  unsigned long lo, hi;
} num_opt;

static const num_opt num_opts[] = {
  {'s', "--sessions", 1, 1u << 24}, {'t', "--tps", 1, 1000},
  {'d', "--duration", 1, 86400},    {'b', "--budget-ms", 1, 60000},
  {'w', "--workers", 0, SHOAL_WORKERS_MAX}, {'B', "--batch", 0, 256},
  {'S', "--seed", 0, ~0ul},         {'u', "--work-us", 0, 1000000},
  {'i', "--idle-share", 0, 100},    {'k', "--state-kib", 0, 65536},
  {'m', "--maps", 1, 65536}};

static const num_opt *num_opt_of(int c) {
  for (size_t i = 0; i < sizeof num_opts / sizeof num_opts[0]; i++)
    if (num_opts[i].c == c)
      return &num_opts[i];
  return &num_opts[0]; /* not reached: the caller's cases are the table's */
}

static void num_set(st_args *a, int c, unsigned long v) {
  switch (c) {
  case 's': a->sessions = (unsigned)v; break;
  case 't': a->tps = (unsigned)v; break;
  case 'd': a->duration_s = (unsigned)v; break;
  case 'b': a->budget_ms = (unsigned)v; break;
  case 'w': a->workers = (unsigned)v; break;
  case 'B': a->batch = (unsigned)v; break;
  case 'S': a->seed = v; break;
  case 'u': a->work_us = (unsigned)v; break;
  case 'i': a->idle_pct = (unsigned)v; break;
  case 'm': a->maps = (unsigned)v; break;
  default: a->state_kib = (unsigned)v; break;
  }
}

/* 0: go on; -1: --help printed; else an exit status. */
int st_parse_args(int argc, char **argv, st_args *a) {
  static const struct option longopts[] = {
    {"sessions", required_argument, NULL, 's'},
    {"tps", required_argument, NULL, 't'},
    {"duration", required_argument, NULL, 'd'},
    {"budget-ms", required_argument, NULL, 'b'},
    {"workers", required_argument, NULL, 'w'},
    {"batch", required_argument, NULL, 'B'},
    {"seed", required_argument, NULL, 'S'},
    {"work-us", required_argument, NULL, 'u'},
    {"idle-share", required_argument, NULL, 'i'},
    {"state-kib", required_argument, NULL, 'k'},
    {"maps", required_argument, NULL, 'm'},
    {"pace", required_argument, NULL, 'p'},
    {"config", required_argument, NULL, 'c'},
    {"json", required_argument, NULL, 'j'},
    {"html", required_argument, NULL, 'H'},
    {"trace", required_argument, NULL, 'T'},
    {"prometheus", required_argument, NULL, 'P'},
    {"listen", required_argument, NULL, 'L'},
    {"compare", required_argument, NULL, 'C'},
    {"find-max", no_argument, NULL, 'F'},
    {"step-seconds", required_argument, NULL, 'E'},
    {"max-seconds", required_argument, NULL, 'X'},
    {"tolerance", required_argument, NULL, 'O'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0}};
  unsigned long v;
  int c;
  memset(a, 0, sizeof *a);
  a->sessions = 5000;
  a->tps = 20;
  a->duration_s = 30;
  a->budget_ms = 50;
  a->seed = 1;
  a->work_us = 5;
  a->idle_pct = 10;
  a->state_kib = 64;
  a->maps = 8;
  a->tolerance = 10;
  a->step_s = 5;
  a->max_s = 120;
  opterr = 0;
  optind = 0; /* 0: glibc resets all of getopt's state */
  while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
    const char *opt = argv[optind - 1];
    a->run_opts += c != 'C' && c != 'O' && c != 'h' && c != ':' && c != '?';
    switch (c) {
    case 's': case 't': case 'd': case 'b': case 'w': case 'B': case 'S':
    case 'u': case 'i': case 'k': case 'm': {
      const num_opt *o = num_opt_of(c);
      if (parse_num(o->name, optarg, o->lo, o->hi, &v))
        return CLI_USAGE;
      num_set(a, c, v);
      a->sessions_set |= c == 's';
      a->duration_set |= c == 'd';
      break;
    }
    case 'p':
      if (strcmp(optarg, "max") == 0)
        a->pace_max = 1;
      else if (strcmp(optarg, "realtime") != 0)
        return cli_usage_error(ST_PROG, "--pace is realtime or max, not '%s'",
                               optarg);
      break;
    case 'c': a->config = optarg; break;
    case 'j': a->json = optarg; break;
    case 'H': a->html = optarg; break;
    case 'T': a->trace = optarg; break;
    case 'P': a->prometheus = optarg; break;
    case 'L': a->listen = optarg; break;
    case 'C': a->compare[0] = optarg; break;
    case 'F': a->find_max = 1; break;
    case 'E': case 'X':
      if (parse_num(c == 'E' ? "--step-seconds" : "--max-seconds", optarg,
                    c == 'E' ? 1 : 10, c == 'E' ? 3600 : 86400, &v))
        return CLI_USAGE;
      if (c == 'E')
        a->step_s = (unsigned)v;
      else
        a->max_s = (unsigned)v;
      a->step_s_set = 1;
      break;
    case 'O':
      if (parse_num("--tolerance", optarg, 0, 1000, &v))
        return CLI_USAGE;
      a->tolerance = (unsigned)v;
      break;
    case 'h': usage(stdout); return -1;
    case ':':
      return cli_usage_error(ST_PROG, "option '%s' needs a value", opt);
    default:
      return cli_bad_option(ST_PROG, optopt, opt);
    }
  }
  if (a->compare[0] != NULL) {
    /* the second report is the one argument left */
    if (optind >= argc)
      return cli_usage_error(ST_PROG, "--compare wants two reports: "
                             "--compare A.json B.json");
    a->compare[1] = argv[optind++];
    if (a->run_opts != 0)
      return cli_usage_error(ST_PROG, "--compare runs nothing: it takes only "
                             "--tolerance");
  }
  if (optind < argc)
    return cli_usage_error(ST_PROG, "unexpected argument '%s' (see '%s "
                           "--help')", argv[optind], ST_PROG);
  if (a->find_max && (a->duration_set || a->listen != NULL ||
                      a->trace != NULL))
    return cli_usage_error(ST_PROG, "--find-max runs many short runs: "
                           "--duration, --listen and --trace are for one");
  if (!a->find_max && a->step_s_set)
    return cli_usage_error(ST_PROG, "--step-seconds and --max-seconds go "
                           "with --find-max");
  return 0;
}

