/* stress.h — `shoal stress`: what the run (stress.c) hands to its reports
 * (stress_out.c). */
#ifndef SHOAL_CLI_STRESS_H
#define SHOAL_CLI_STRESS_H

#include <stdint.h>
#include <stdio.h>

#include "shoal.h"

#define ST_PROG "shoal stress"
#define ST_WORKERS_SHOWN 1024

typedef struct st_args {
  unsigned sessions;     /* --sessions (5000) */
  unsigned tps;          /* --tps (20) */
  unsigned duration_s;   /* --duration (30) */
  unsigned budget_ms;    /* --budget-ms (50) */
  unsigned workers;      /* --workers (0: one per core) */
  unsigned batch;        /* --batch (0: the configuration's) */
  uint64_t seed;         /* --seed (1) */
  unsigned work_us;      /* --work-us: AI work per bot update (5) */
  unsigned idle_pct;     /* --idle-share: bots that go idle, % (10) */
  unsigned state_kib;    /* --state-kib: a bot's host state (64) */
  unsigned maps;         /* --maps: the world's maps (8) */
  int pace_max;          /* --pace max */
  const char *config;    /* --config FILE */
  const char *json;      /* --json FILE */
  const char *trace;     /* --trace FILE */
  const char *prometheus;/* --prometheus FILE */
  const char *html;      /* --html FILE */
  const char *listen;    /* --listen HOST:PORT */
  int find_max;          /* --find-max: the capacity search */
  unsigned step_s;       /* --step-seconds (5) */
  unsigned max_s;        /* --max-seconds (120) */
  int sessions_set;      /* --sessions was given */
  int duration_set;      /* --duration was given */
  int step_s_set;        /* --step-seconds or --max-seconds was given */
  const char *compare[2];/* --compare A.json B.json: no run */
  unsigned tolerance;    /* --tolerance PCT (10) */
  unsigned run_opts;     /* options of a run seen (not with --compare) */
} st_args;

/* Parses `shoal stress`'s options: 0 go on, -1 --help was printed, else an
 * exit status (a line on stderr said why). Also the fuzzer's entry. */
int st_parse_args(int argc, char **argv, st_args *a);

#define ST_SERIES_WORKERS 16 /* workers with a line of their own */
#define ST_MAPS_SHOWN 64       /* maps with a bar of their own */

/* A sample per simulated second, for the charts. */
typedef struct st_second {
  double t_s;
  uint64_t rss;
  uint64_t active, hibernated;
  double tick_p50_ms, tick_p99_ms, tick_max_ms; /* the second's ticks */
  double drain_max_ms;     /* the main thread's longest drain in it */
  uint64_t deferred_max;   /* the most one drain in it ran: the deferred
                              queue's depth */
  double handled[3];       /* packets handled in it, by class (INPLACE,
                              MAP, MAIN: shoal_packet_class) */
  double hibernations, wakes; /* in it */
  double util_mean;        /* the workers' busy share in it */
  double util[ST_SERIES_WORKERS];
} st_second;

typedef struct st_worker {
  double utilization;    /* busy over wall time, 0 … 1 */
  uint64_t tasks, steals, parks;
} st_worker;

/* One step of the capacity search: a short real run of `sessions`. */
typedef struct st_step {
  unsigned sessions;
  double tick_p50, tick_p99;      /* ms */
  double utilization;             /* the workers' mean, 0 … 1 */
  double drain_p99_ms;            /* the main thread's drain */
  double map_phase_share, biggest_map_share;
  double cpu_us_per_session;
  double rss_per_session;         /* resident bytes per active session */
  int pass;
  char why[96];                   /* what failed; "" on PASS */
} st_step;

#define ST_STEPS_MAX 64
#define ST_FIND_CEILING 1000000u /* --find-max without --sessions */

/* What --find-max found: the largest passing step, what limits it, and
 * every step (sorted by sessions for the curve). */
typedef struct st_capacity {
  unsigned sessions;      /* 0: even the smallest step failed */
  const char *limit;      /* "worker CPU", "the main thread's drain",
                             "the biggest map's phase", "memory" */
  int converged;          /* within 5 % (or 25 sessions); 0: the time
                             bound ended it first */
  unsigned ceiling;       /* the most it would try (--sessions, or what
                             memory allows) */
  int memory_bound;       /* the ceiling is memory's */
  const char *ceiling_by; /* "the memory available", "--sessions", "the
                             search's own limit" */
  double elapsed_s;
  unsigned nsteps;
  st_step steps[ST_STEPS_MAX];
} st_capacity;

/* Everything the reports print. */
typedef struct st_result {
  const st_args *a;
  unsigned workers;
  uint64_t ticks;
  double wall_s;
  double *tick_ms;       /* [ticks] */
  double tick_p50, tick_p99, tick_p999, tick_max; /* ms */
  double headroom_ms;    /* budget − p99 */
  double overhead_ns_per_session; /* shoal's own time per session update,
                                     measured in the timed batches */
  uint64_t overhead_samples;      /* the updates timed for it */
  double host_ns_per_session;
  double cpu_us_per_session; /* the process's CPU per session per tick */
  /* packets */
  uint64_t sent, handled, pending, rejected, dropped, failed;
  uint64_t by_class[3];
  uint64_t by_category[SHOAL_CAT_COUNT];
  double packets_per_s;
  uint64_t deferred_max;
  double drain_p99_ms, drain_max_ms;
  uint64_t wait_p99_ns;
  /* payloads, broadcasts, drops and rate limits */
  uint64_t payloads_taken, payloads_freed, payload_bad;
  uint32_t largest_packet;
  double payload_bytes_per_s;
  uint64_t broadcasts, deliveries, heard;
  uint64_t drops[5];       /* by shoal_drop_reason, as the hook heard */
  uint64_t rate_limited;   /* shoal's count */
  uint64_t limit_strays;   /* rate-limited packets not the flooder's */
  char limits_why[200];    /* why the flooder got past; "" when not */
  /* maps */
  uint64_t map_owner_violations;  /* a map entered while someone was in it */
  uint64_t map_spells, map_combats, map_loots; /* the maps' own counts */
  uint64_t teleports;
  double main_share;              /* handled on the main thread / handled */
  double map_phase_share, biggest_map_share;
  uint64_t drained;               /* packets the drains ran */
  /* messaging */
  /* auction price requests (session request-reply): the host's books,
   * then shoal's (shoal_request_stats) */
  uint64_t auction_requests, auction_replies, auction_timeouts,
      auction_ignored, auction_dropped;
  shoal_request_stats rq;
  char messaging_why[200]; /* why messaging failed; "" when it did not */
  /* timers: quests (session timers) and buffs (map tasks) */
  uint64_t quest_timers, quest_done, quest_abandoned, quest_stale;
  uint64_t buffs_applied, buffs_expired, buffs_active, buff_failures;
  shoal_timer_stats ts;
  uint64_t quest_published, quest_delivered, quest_expected;
  /* economy */
  int64_t gold_before, gold_after, items_before, items_after;
  int64_t gold_minted, gold_to_auction, items_minted, items_from_auction,
      items_used;
  uint64_t trades;
  /* checks */
  uint64_t order_violations;
  int strict_order;   /* SessionMgr.StrictPacketOrder: reorders fail */
  unsigned inbox_size;
  uint64_t hibernated_run_max; /* during the run, before the end's */
  uint64_t hibernated_max, hibernations, wakes, wake_failures,
      state_mismatches;
  uint64_t bytes_saved;
  uint64_t rss_base, rss_active, rss_hibernated;
  double active_bytes_per_session, hibernated_bytes_per_session;
  int hibernated_unresolved; /* resident memory after defragmentation at
                                or below the baseline: the figure is below
                                what /proc can tell */
  double record_bytes_per_session; /* shoal's own count of the records */
  int packets_ok, economy_ok, order_ok, hibernation_ok, messaging_ok,
      budget_ok, payloads_ok, limits_ok, maps_ok, timers_ok;
  int pass;
  int trace_failed; /* --trace could not be written (said on stderr) */
  const char *simd;
  st_worker workers_st[ST_WORKERS_SHOWN];
  st_second *seconds;
  size_t nseconds;
  /* shoal_metrics_prometheus at the run's end (--prometheus), NUL-ended;
   * and the scrapes --listen answered */
  char *prom_lib;
  unsigned long scrapes;
  const st_capacity *capacity; /* --find-max: the search; NULL otherwise */
  double session_phase_share;  /* of the updates' wall time */
  shoal_map_stats maps[ST_MAPS_SHOWN]; /* the most phase time first */
  unsigned nmaps;
} st_result;

/* stress_out.c */
void st_print_table(FILE *f, const st_result *r, int color);
int st_write_json(const char *path, const st_result *r);
int st_write_prometheus(const char *path, const st_result *r);
int st_write_html(const char *path, const st_result *r);

/* stress.c: one run of a->sessions for a->duration_s (CLI_OK, or the
 * status of a run that could not finish); the reports of a finished run
 * printed and written, r's buffers freed (the exit status). */
struct cli_listener;
int st_run(const st_args *a, shoal_config *cfg, st_result *r,
           struct cli_listener *lis);
int st_outputs(const st_args *a, st_result *r);
/* stress_find.c: `--find-max` (the exit status). */
int st_find_max(const st_args *a, shoal_config *cfg);

/* compare.c: `--compare`: two reports side by side; the exit status
 * (0 no regression beyond tol percent, 1 some, 2 bad input). */
int st_compare(const char *a, const char *b, double tol);

#endif
