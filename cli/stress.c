/* stress.c — `shoal stress`: will this machine hold N bot sessions inside
 * the tick budget? The command, and the run over the bot population of
 * stress_bots.c, in steps: build the world and the population, run the
 * ticks as a host's main loop does (update, drain the deferred packets,
 * tick the actors, sleep to the next tick), let traffic settle, hibernate
 * and wake everyone, check the invariants. */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cli.h"
#include "stress.h"
#include "stress_bots.h"

/* ---- the run ------------------------------------------------------------ */

static uint64_t rss_now(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  unsigned long size = 0, res = 0;
  if (f == NULL)
    return 0;
  if (fscanf(f, "%lu %lu", &size, &res) != 2)
    res = 0;
  fclose(f);
  return (uint64_t)res * (uint64_t)sysconf(_SC_PAGESIZE);
}

static double cpu_s(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
         (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}

static int cmp_double(const void *x, const void *y) {
  double a = *(const double *)x, b = *(const double *)y;
  return a < b ? -1 : a > b;
}

/* q-quantile of v[0 … n) (sorts a copy). */
static double quantile(const double *v, size_t n, double q) {
  double *c, r;
  size_t k;
  if (n == 0 || (c = malloc(n * sizeof *c)) == NULL)
    return 0;
  memcpy(c, v, n * sizeof *c);
  qsort(c, n, sizeof *c, cmp_double);
  k = (size_t)(q * (double)n);
  r = c[k < n ? k : n - 1];
  free(c);
  return r;
}

static void sleep_until(double t) {
  struct timespec ts;
  ts.tv_sec = (time_t)t;
  ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
    ;
}

typedef struct loop {
  host *h;
  st_result *r;
  double *drain_ms;
  uint32_t *drain_n;     /* packets each drain ran: the queue's depth */
  size_t ndrain, drain_cap;
} loop;

/* One host tick: update, the deferred packets, the actors' tick. Returns
 * its milliseconds, or < 0 on an error (reported). */
static double one_tick(loop *l, uint32_t diff_ms) {
  host *h = l->h;
  double t0 = st_now_s(), t1, t2;
  int rc;
  long n;
  if ((rc = shoal_mgr_update(h->mgr, diff_ms)) != SHOAL_OK) {
    fprintf(stderr, "%s: update: %s\n", ST_PROG, shoal_strerror(rc));
    return -1;
  }
  t1 = st_now_s();
  if ((n = shoal_mgr_drain_deferred(h->mgr, 0, NULL)) < 0) {
    fprintf(stderr, "%s: drain: %s\n", ST_PROG, shoal_strerror((int)n));
    return -1;
  }
  t2 = st_now_s();
  if (l->ndrain < l->drain_cap) {
    l->drain_n[l->ndrain] = (uint32_t)n;
    l->drain_ms[l->ndrain++] = (t2 - t1) * 1e3;
  }
  shoal_actors_tick(h->actors);
  atomic_fetch_add_explicit(&h->tick, 1, memory_order_relaxed);
  return (st_now_s() - t0) * 1e3;
}

static int64_t sum_field(host *h, int gold) {
  /* every session active here (the caller woke them all) */
  int64_t s = 0;
  for (uint32_t id = 1; id <= h->a->sessions; id++) {
    shoal_session_info v;
    if (shoal_session_get(h->mgr, id, &v) == SHOAL_OK && v.user != NULL) {
      const bot *b = v.user;
      s += gold ? b->k.gold : b->k.items;
    }
  }
  return s;
}

static void progress(const st_args *a, double done, double p99, int color) {
  int width = 30, fill = (int)(done * width);
  fprintf(stderr, "\r%s%s [", color ? "\033[36m" : "", ST_PROG);
  for (int i = 0; i < width; i++)
    fputc(i < fill ? '#' : ' ', stderr);
  fprintf(stderr, "] %3.0f%%  tick p99 %.2f ms / %u ms%s", done * 100, p99,
          a->budget_ms, color ? "\033[0m" : "");
  fflush(stderr);
}

/* One run's world: the host (its bots, auction house and quest board),
 * the runtime and the tick loop's state. */
typedef struct world {
  host *h;
  loop l;
  shoal_runtime *rt;
  cli_log log;
  uint32_t diff_ms;
  uint64_t ticks;
  size_t sec_cap;
  double cpu0;
  shoal_worker_stats w0[ST_WORKERS_SHOWN];
  /* the cumulative figures at the last second's end, for its deltas */
  uint64_t prev_class[3], prev_hib, prev_wakes;
  uint64_t prev_busy[ST_SERIES_WORKERS];
  double prev_busy_sum, prev_wall, t_start;
  size_t prev_drain;
} world;

/* The host's tables, the runtime, the manager with hibernation, the
 * actors and the opcodes. */
static int world_build(world *w, const st_args *a, shoal_config *cfg,
                       st_result *r) {
  static host h;
  shoal_runtime_config rc_cfg;
  int rc;
  memset(&h, 0, sizeof h);
  w->h = &h;
  w->log.prog = ST_PROG;
  w->diff_ms = 1000 / a->tps ? 1000 / a->tps : 1;
  w->ticks = (uint64_t)a->tps * a->duration_s;
  w->sec_cap = a->duration_s + 2;
  h.a = a;
  h.dt_s = 1.0 / a->tps;
  h.cache_len = (size_t)a->state_kib * 1024;
  h.iters = st_calibrate(a->work_us);
  h.kept_hash = calloc((size_t)a->sessions + 1, sizeof *h.kept_hash);
  h.maps = calloc(a->maps, sizeof *h.maps);
  h.map_of = calloc((size_t)a->sessions + 1, sizeof *h.map_of);
  h.wake_at = calloc((size_t)a->sessions + 1, sizeof *h.wake_at);
  r->tick_ms = calloc(w->ticks, sizeof *r->tick_ms);
  r->seconds = calloc(w->sec_cap, sizeof *r->seconds);
  w->l.drain_cap = w->ticks + 1024;
  w->l.drain_ms = calloc(w->l.drain_cap, sizeof *w->l.drain_ms);
  w->l.drain_n = calloc(w->l.drain_cap, sizeof *w->l.drain_n);
  w->l.h = &h;
  w->l.r = r;
  if (h.kept_hash == NULL || h.wake_at == NULL || h.maps == NULL ||
      h.map_of == NULL || r->tick_ms == NULL ||
      r->seconds == NULL || w->l.drain_ms == NULL ||
      w->l.drain_n == NULL) {
    fprintf(stderr, "%s: out of memory\n", ST_PROG);
    return CLI_FAIL;
  }

  shoal_runtime_config_defaults(&rc_cfg);
  rc_cfg.workers = a->workers ? a->workers : cfg->worker_threads;
  rc_cfg.log = cli_log_fn;
  rc_cfg.log_user = &w->log;
  if (a->trace != NULL)
    rc_cfg.trace_events = 1u << 16;
  if ((rc = shoal_runtime_create(&w->rt, &rc_cfg)) != SHOAL_OK)
    return cli_usage_error(ST_PROG, "cannot start the runtime: %s",
                           w->log.last_error[0] ? w->log.last_error
                                                : shoal_strerror(rc));
  r->workers = shoal_runtime_workers(w->rt);
  cfg->log = cli_log_fn;
  cfg->log_user = &w->log;
  cfg->auto_defragment = 0; /* the run measures its own defragmentation */
  if (a->batch)
    cfg->batch_size = a->batch;
  if ((rc = st_bots_start(&h, w->rt, cfg, &w->log)) != CLI_OK)
    return rc;
  return CLI_OK;
}

/* The bots, one session each, spread over the maps, in groups of five.
 * What they add is
 * measured over the runtime, the empty manager and the actors. */
static int population_build(world *w, st_result *r) {
  const st_args *a = w->h->a;
  int rc;
  r->rss_base = rss_now();
  r->gold_before = (int64_t)a->sessions * START_GOLD;
  r->items_before = (int64_t)a->sessions * START_ITEMS;
  for (uint32_t id = 1; id <= a->sessions; id++) {
    bot *b = st_bot_new(w->h, id, a->seed);
    if (b == NULL) {
      fprintf(stderr, "%s: out of memory at session %u\n", ST_PROG, id);
      return CLI_FAIL;
    }
    w->h->map_of[id] = id % a->maps;
    if ((rc = shoal_session_create(w->h->mgr, id, b)) != SHOAL_OK ||
        (rc = shoal_session_set_map(w->h->mgr, id, id % a->maps)) !=
            SHOAL_OK ||
        (rc = shoal_session_set_group(w->h->mgr, id,
                                      (id - 1) / GROUP_SIZE + 1)) !=
            SHOAL_OK) {
      fprintf(stderr, "%s: session %u: %s\n", ST_PROG, id,
              w->log.last_error[0] ? w->log.last_error : shoal_strerror(rc));
      st_bot_free(b);
      return CLI_FAIL;
    }
  }
  r->rss_active = rss_now();
  return CLI_OK;
}

/* A few bots teleport to another map (about one in 2000 a second): their
 * later packets go to the new map. Between ticks. */
static void teleports(world *w, uint64_t t) {
  const st_args *a = w->h->a;
  uint32_t n = a->sessions / 2000 + 1;
  if (a->maps < 2)
    return;
  for (uint32_t k = 0; k < n; k++) {
    uint32_t id = 1 + (uint32_t)((t * 7919u + k * 104729u) % a->sessions);
    uint32_t to = (w->h->map_of[id] + 1 + k) % a->maps;
    if (shoal_session_set_map(w->h->mgr, id, to) == SHOAL_OK) {
      w->h->map_of[id] = to;
      w->h->teleports++;
    }
  }
}

/* The second's packets by class, deferred queue, drains and workers: the
 * deltas of the cumulative figures (nothing resets their window during
 * the run). */
static void second_flow(world *w, st_result *r, st_second *s) {
  shoal_packet_stats ps;
  double busy_sum = 0, now = st_now_s();
  double dt = w->prev_wall > 0 ? now - w->prev_wall : now - w->t_start;
  unsigned nw = r->workers < ST_WORKERS_SHOWN ? r->workers
                                               : ST_WORKERS_SHOWN;
  w->prev_wall = now;
  if (dt <= 0)
    dt = 1e-9;
  if (shoal_packet_stats_get(w->h->mgr, &ps, 0) == SHOAL_OK) {
    for (int k = 0; k < 3; k++) {
      s->handled[k] = (double)(ps.by_class[k] - w->prev_class[k]);
      w->prev_class[k] = ps.by_class[k];
    }
  }
  for (size_t i = w->prev_drain; i < w->l.ndrain; i++) {
    if (w->l.drain_ms[i] > s->drain_max_ms)
      s->drain_max_ms = w->l.drain_ms[i];
    if (w->l.drain_n[i] > s->deferred_max)
      s->deferred_max = w->l.drain_n[i];
  }
  w->prev_drain = w->l.ndrain;
  for (unsigned k = 0; k < nw; k++) {
    shoal_worker_stats ws;
    shoal_worker_stats_get(w->rt, k, &ws);
    busy_sum += (double)ws.busy_ns;
    if (k < ST_SERIES_WORKERS) {
      uint64_t prev = w->prev_busy[k] ? w->prev_busy[k] : w->w0[k].busy_ns;
      s->util[k] = (double)(ws.busy_ns - prev) * 1e-9 / dt;
      w->prev_busy[k] = ws.busy_ns;
    }
  }
  if (w->prev_busy_sum == 0)
    for (unsigned k = 0; k < nw; k++)
      w->prev_busy_sum += (double)w->w0[k].busy_ns;
  s->util_mean = nw > 0 ? (busy_sum - w->prev_busy_sum) * 1e-9 / dt / nw
                         : 0;
  w->prev_busy_sum = busy_sum;
}

/* After each second of ticks: the bots whose idle time is over are woken
 * (the hibernation pass runs inside the update, never beside this), a few
 * teleport, and the second's figures kept. */
static void second_done(world *w, st_result *r, uint64_t t) {
  const st_args *a = w->h->a;
  shoal_hib_stats hs;
  teleports(w, t);
  for (uint32_t id = 1; id <= a->sessions; id++)
    if (w->h->wake_at[id] != 0 && w->h->wake_at[id] <= t + 1) {
      w->h->wake_at[id] = 0;
      (void)shoal_mgr_wake(w->h->mgr, id);
    }
  if (r->nseconds < w->sec_cap) {
    st_second *s = &r->seconds[r->nseconds++];
    size_t from = t + 1 - a->tps;
    s->t_s = (double)(t + 1) / a->tps;
    s->rss = rss_now();
    s->tick_p50_ms = quantile(r->tick_ms + from, a->tps, 0.50);
    s->tick_p99_ms = quantile(r->tick_ms + from, a->tps, 0.99);
    s->tick_max_ms = quantile(r->tick_ms + from, a->tps, 1.0);
    if (shoal_hib_stats_get(w->h->mgr, &hs, 0) == SHOAL_OK) {
      s->hibernated = hs.hibernated;
      s->hibernations = (double)(hs.hibernations - w->prev_hib);
      s->wakes = (double)(hs.wakes - w->prev_wakes);
      w->prev_hib = hs.hibernations;
      w->prev_wakes = hs.wakes;
    }
    s->active = a->sessions - s->hibernated;
    if (s->hibernated > r->hibernated_max)
      r->hibernated_max = s->hibernated;
    r->hibernated_run_max = r->hibernated_max;
    second_flow(w, r, s);
  }
}

/* The timed run: ticks at the pace asked for, with progress on a
 * terminal. Returns the wall time, or < 0 on an error. */
static double run_ticks(world *w, st_result *r) {
  const st_args *a = w->h->a;
  shoal_mgr_metrics m;
  shoal_packet_stats ps;
  shoal_hib_stats hs;
  int tty = isatty(2), color = tty && getenv("NO_COLOR") == NULL;
  double t_start, t_next, last_progress = 0;
  (void)shoal_mgr_metrics_get(w->h->mgr, &m, 1);
  (void)shoal_packet_stats_get(w->h->mgr, &ps, 1);
  (void)shoal_hib_stats_get(w->h->mgr, &hs, 1);
  for (unsigned k = 0; k < r->workers && k < ST_WORKERS_SHOWN; k++)
    shoal_worker_stats_get(w->rt, k, &w->w0[k]);
  w->cpu0 = cpu_s();
  t_start = t_next = w->t_start = st_now_s();
  for (uint64_t t = 0; t < w->ticks; t++) {
    double ms = one_tick(&w->l, w->diff_ms);
    if (ms < 0)
      return -1;
    r->tick_ms[t] = ms;
    r->ticks = t + 1;
    if ((t + 1) % a->tps == 0)
      second_done(w, r, t);
    if (tty && st_now_s() - last_progress > 0.25) {
      size_t last = t + 1 < a->tps ? t + 1 : a->tps;
      last_progress = st_now_s();
      progress(a, (double)(t + 1) / (double)w->ticks,
               quantile(r->tick_ms + (t + 1 - last), last, 0.99), color);
    }
    if (!a->pace_max) {
      t_next += w->h->dt_s;
      if (t_next > st_now_s())
        sleep_until(t_next);
      else
        t_next = st_now_s(); /* late: no catching up in a burst */
    }
  }
  if (tty)
    fprintf(stderr, "\r%*s\r", 80, "");
  return st_now_s() - t_start;
}

/* The run's figures: CPU, shoal's overhead, packets, workers, ticks. */
static void run_figures(world *w, st_result *r, double wall) {
  const st_args *a = w->h->a;
  shoal_mgr_metrics m;
  shoal_packet_stats ps;
  int rc;
  r->wall_s = wall;
  r->cpu_us_per_session = (cpu_s() - w->cpu0) * 1e6 /
                          ((double)a->sessions * (double)r->ticks);
  (void)shoal_mgr_metrics_get(w->h->mgr, &m, 0);
  r->overhead_ns_per_session = m.shoal_ns_per_update;
  r->overhead_samples = m.overhead_samples;
  r->host_ns_per_session = m.host_ns_per_update;
  r->simd = m.simd;
  r->map_phase_share = m.map_phase_share;
  r->biggest_map_share = m.biggest_map_share;
  r->session_phase_share = m.session_phase_share;
  if ((rc = (int)shoal_mgr_map_stats(w->h->mgr, r->maps, ST_MAPS_SHOWN, 0)) >
      0)
    r->nmaps = rc < ST_MAPS_SHOWN ? (unsigned)rc : ST_MAPS_SHOWN;
  (void)shoal_packet_stats_get(w->h->mgr, &ps, 0);
  r->payload_bytes_per_s =
      (double)atomic_load(&w->h->payload_bytes) / (wall > 0 ? wall : 1);
  r->deferred_max = ps.deferred_max;
  r->wait_p99_ns = ps.wait_p99_ns;
  for (unsigned k = 0; k < r->workers && k < ST_WORKERS_SHOWN; k++) {
    shoal_worker_stats s;
    shoal_worker_stats_get(w->rt, k, &s);
    r->workers_st[k].utilization =
        (double)(s.busy_ns - w->w0[k].busy_ns) * 1e-9 / wall;
    r->workers_st[k].tasks = s.tasks - w->w0[k].tasks;
    r->workers_st[k].steals = s.steals - w->w0[k].steals;
    r->workers_st[k].parks = s.parks - w->w0[k].parks;
  }
  r->tick_p50 = quantile(r->tick_ms, r->ticks, 0.50);
  r->tick_p99 = quantile(r->tick_ms, r->ticks, 0.99);
  r->tick_p999 = quantile(r->tick_ms, r->ticks, 0.999);
  r->tick_max = quantile(r->tick_ms, r->ticks, 1.0);
  r->headroom_ms = (double)a->budget_ms - r->tick_p99;
  r->drain_p99_ms = quantile(w->l.drain_ms, w->l.ndrain, 0.99);
  r->drain_max_ms = quantile(w->l.drain_ms, w->l.ndrain, 1.0);
  if (a->trace != NULL &&
      (rc = shoal_runtime_trace_write(w->rt, a->trace)) != SHOAL_OK) {
    (void)cli_usage_error(ST_PROG, "cannot write %s: %s", a->trace,
                          shoal_strerror(rc));
    r->trace_failed = 1;
  }
}

/* No quest running and no buff left on a map. Between ticks. */
static int timers_settled(host *h) {
  for (uint32_t m = 0; m < h->a->maps; m++)
    if (h->maps[m].buffs_active != 0)
      return 0;
  return h->quest_timers ==
         atomic_load(&h->quest_done) + h->quest_abandoned;
}

/* The end: traffic stops; what is in flight lands. */
static int settle(world *w) {
  host *h = w->h;
  shoal_packet_stats ps;
  atomic_store(&h->quiet, 1);
  for (int i = 0; i < 20 * 60; i++) {
    if (one_tick(&w->l, w->diff_ms) < 0)
      return CLI_FAIL;
    (void)shoal_packet_stats_get(h->mgr, &ps, 0);
    if (ps.pending == 0 && atomic_load(&h->auction_outstanding) == 0 &&
        h->quest_expected == atomic_load(&h->quest_delivered) &&
        timers_settled(h) && i >= 2)
      break;
    if (h->a->pace_max == 0 || i > 100)
      sleep_until(st_now_s() + 0.01); /* let the actors finish */
  }
  return CLI_OK;
}

/* Memory: every bot hibernated, then defragmented, the resident size
 * read; then every one woken again by map. */
static int memory_round(world *w, st_result *r, shoal_hib_stats *hs) {
  const st_args *a = w->h->a;
  shoal_mgr *mgr = w->h->mgr;
  shoal_defrag_report dr;
  (void)shoal_mgr_set_hibernation_hysteresis_ms(mgr, 0);
  (void)shoal_mgr_set_hibernation_ms(mgr, 1);
  if (one_tick(&w->l, w->diff_ms) < 0 || one_tick(&w->l, w->diff_ms) < 0)
    return CLI_FAIL;
  (void)shoal_mgr_hibernate_idle(mgr, 0); /* those the updates left */
  (void)shoal_mgr_defragment(mgr, &dr);
  r->rss_hibernated = rss_now();
  (void)shoal_hib_stats_get(mgr, hs, 0);
  if (hs->hibernated > r->hibernated_max)
    r->hibernated_max = hs->hibernated;
  r->bytes_saved = hs->bytes_saved;
  r->active_bytes_per_session =
      (double)(r->rss_active - r->rss_base) / a->sessions;
  r->hibernated_unresolved = r->rss_hibernated <= r->rss_base;
  r->hibernated_bytes_per_session =
      hs->hibernated > 0 && !r->hibernated_unresolved
          ? (double)(r->rss_hibernated - r->rss_base) / (double)hs->hibernated
          : 0;
  r->record_bytes_per_session =
      hs->hibernated > 0 ? (double)hs->record_bytes / (double)hs->hibernated
                         : 0;
  (void)shoal_mgr_set_hibernation_ms(mgr, 1ull << 40);
  for (uint32_t map = 0; map < a->maps; map++)
    (void)shoal_mgr_wake_map(mgr, map);
  if (one_tick(&w->l, w->diff_ms) < 0)
    return CLI_FAIL;
  (void)shoal_hib_stats_get(mgr, hs, 0);
  return CLI_OK;
}

/* The timers' books: quests (session timers) and buffs (map tasks)
 * against shoal's figures. Every timer started ended one way: fired
 * (a quest handled, a buff expired) or cancelled (a quest abandoned);
 * none was gone (no bot is released during the run). */
static void timers_books(host *h, st_result *r) {
  r->quest_timers = h->quest_timers;
  r->quest_done = atomic_load(&h->quest_done);
  r->quest_abandoned = h->quest_abandoned;
  r->quest_stale = atomic_load(&h->quest_stale);
  r->buff_failures = atomic_load(&h->buff_failures);
  for (uint32_t m = 0; m < h->a->maps; m++) {
    r->buffs_applied += h->maps[m].buffs_applied;
    r->buffs_expired += h->maps[m].buffs_expired;
    r->buffs_active += h->maps[m].buffs_active;
  }
  (void)shoal_timer_stats_get(h->mgr, &r->ts);
  r->timers_ok = r->quest_stale == 0 && r->buff_failures == 0 &&
                 r->buffs_active == 0 &&
                 r->buffs_applied == r->buffs_expired &&
                 r->quest_timers == r->quest_done + r->quest_abandoned &&
                 r->ts.started == r->quest_timers + r->buffs_applied &&
                 r->ts.fired == r->quest_done + r->buffs_expired &&
                 r->ts.cancelled == r->quest_abandoned && r->ts.gone == 0;
}

/* What broke messaging, in words for the table and the JSON. */
static void messaging_why(st_result *r) {
  size_t n = 0, cap = sizeof r->messaging_why;
  char *b = r->messaging_why;
  b[0] = '\0';
  if (r->rq.requests != r->auction_requests || r->rq.pending != 0)
    n += (size_t)snprintf(b + n, cap - n, "%llu of %llu auction requests "
                          "unanswered; ",
                          (unsigned long long)r->rq.pending,
                          (unsigned long long)r->rq.requests);
  if (r->rq.replies + r->rq.timeouts !=
          r->auction_replies + r->auction_timeouts + r->auction_dropped &&
      n < cap)
    n += (size_t)snprintf(b + n, cap - n, "answers in %llu, handled %llu; ",
                          (unsigned long long)(r->rq.replies +
                                               r->rq.timeouts),
                          (unsigned long long)(r->auction_replies +
                                               r->auction_timeouts +
                                               r->auction_dropped));
  if ((r->rq.timeouts != r->auction_ignored || r->rq.late != 0) && n < cap)
    n += (size_t)snprintf(b + n, cap - n, "%llu timeouts for %llu asks "
                          "ignored, %llu late replies; ",
                          (unsigned long long)r->rq.timeouts,
                          (unsigned long long)r->auction_ignored,
                          (unsigned long long)r->rq.late);
  /* no bot is released in the run: an answer dropped found its inbox
   * full */
  if (r->rq.dropped != 0 && n < cap)
    n += (size_t)snprintf(b + n, cap - n, "%llu answers refused by the "
                          "bot's full inbox (SessionMgr.InboxSize %u); ",
                          (unsigned long long)r->rq.dropped, r->inbox_size);
  if (r->quest_delivered != r->quest_expected && n < cap)
    n += (size_t)snprintf(b + n, cap - n, "%llu quest deliveries missing; ",
                          (unsigned long long)(r->quest_expected -
                                               r->quest_delivered));
  if (n >= 2 && n < cap)
    b[n - 2] = '\0'; /* the last "; " */
}

/* The packets', payloads' and limits' checks. */
static void packet_checks(world *w, st_result *r,
                          const shoal_packet_stats *pps,
                          const shoal_config *cfg) {
  host *h = w->h;
  uint64_t drops = 0;
  for (int k = 0; k < 5; k++)
    drops += r->drops[k];
  /* Every drop is a rate limit's: the bots are never released with
   * packets in flight, and every opcode has a handler. */
  r->packets_ok = r->sent == r->handled + r->pending + r->rejected +
                                 r->dropped &&
                  r->pending == 0 && r->dropped == drops &&
                  r->dropped == r->drops[SHOAL_DROP_RATE_LIMITED] &&
                  r->rate_limited == r->dropped;
  r->payloads_ok = r->payloads_taken == r->payloads_freed &&
                   pps->payload_bytes == 0 && r->payload_bad == 0 &&
                   r->heard == r->deliveries &&
                   atomic_load(&h->deliveries) == r->deliveries;
  r->limits_ok =
      r->limit_strays == 0 &&
      st_flood_held(h, cfg,
                    (uint64_t)atomic_load(&h->tick) * w->diff_ms,
                    r->limits_why, sizeof r->limits_why) &&
      /* a flood of 10× for two seconds or more meets the limits */
      (h->a->sessions < 2 || r->ticks < 2u * h->a->tps ||
       r->rate_limited > 0);
  if (r->limits_ok == 0 && r->limits_why[0] == '\0')
    snprintf(r->limits_why, sizeof r->limits_why,
             r->limit_strays != 0 ? "%llu packets of other bots limited"
                                  : "the flood was never limited (%llu)",
             (unsigned long long)(r->limit_strays != 0 ? r->limit_strays
                                                        : r->rate_limited));
}

/* The invariants, from the host's own books and shoal's figures: every
 * packet accounted for, the economy balanced, each session's order kept,
 * every hibernated bot woken intact, every request answered. */
static void check_invariants(world *w, st_result *r,
                             const shoal_hib_stats *hs,
                             const shoal_config *cfg) {
  host *h = w->h;
  shoal_packet_stats ps;
  uint64_t drops = 0;
  (void)shoal_packet_stats_get(h->mgr, &ps, 0);
  r->hibernations = hs->hibernations;
  r->wakes = hs->wakes;
  r->wake_failures = hs->wake_failures;
  r->state_mismatches = atomic_load(&h->state_mismatches);
  r->sent = ps.sent;
  r->handled = ps.handled;
  r->pending = ps.pending;
  r->rejected = ps.rejected;
  r->dropped = ps.dropped;
  r->failed = ps.failed;
  /* Run totals, taken with handled (after the end's drain); per second
   * of play, as the classes' and categories' rates are (the library's own
   * rate is over its last window, the run's end). */
  r->packets_per_s = (double)r->handled / (r->wall_s > 0 ? r->wall_s : 1);
  memcpy(r->by_class, ps.by_class, sizeof r->by_class);
  memcpy(r->by_category, ps.by_category, sizeof r->by_category);
  r->gold_after = sum_field(h, 1);
  r->items_after = sum_field(h, 0);
  for (uint32_t m = 0; m < h->a->maps; m++) {
    r->gold_minted += h->maps[m].gold_minted;
    r->items_minted += h->maps[m].items_minted;
    r->map_spells += h->maps[m].spells;
    r->map_combats += h->maps[m].combats;
    r->map_loots += h->maps[m].loots;
  }
  r->map_owner_violations = atomic_load(&h->map_owner_violations);
  r->teleports = h->teleports;
  r->drained = ps.drained;
  r->main_share = ps.handled > 0 ? (double)ps.drained / (double)ps.handled
                                 : 0;
  r->gold_to_auction = h->gold_to_auction;
  r->items_from_auction = h->items_from_auction;
  r->items_used = h->items_used;
  r->trades = atomic_load(&h->trades);
  r->order_violations = atomic_load(&h->order_violations);
  r->auction_requests = atomic_load(&h->auction_requests);
  r->auction_replies = h->auction_replies;
  r->auction_timeouts = h->auction_timeouts;
  r->auction_ignored = atomic_load(&h->auction_ignored);
  r->auction_dropped = atomic_load(&h->auction_dropped);
  (void)shoal_request_stats_get(h->mgr, &r->rq);
  timers_books(h, r);
  r->quest_published = h->quest_published;
  r->quest_expected = h->quest_expected;
  r->quest_delivered = atomic_load(&h->quest_delivered);

  r->payloads_taken = ps.payloads_taken;
  r->payloads_freed = ps.payloads_freed;
  r->payload_bad = atomic_load(&h->payload_bad);
  r->largest_packet = atomic_load(&h->largest);
  r->broadcasts = ps.broadcasts;
  r->deliveries = ps.deliveries;
  r->heard = atomic_load(&h->heard);
  for (int k = 0; k < 5; k++)
    drops += r->drops[k] = atomic_load(&h->drops[k]);
  r->rate_limited = ps.rate_limited;
  r->limit_strays = atomic_load(&h->limit_strays);

  packet_checks(w, r, &ps, cfg);
  r->economy_ok =
      r->gold_after + r->gold_to_auction ==
          r->gold_before + r->gold_minted &&
      r->items_after ==
          r->items_before + r->items_minted + r->items_from_auction -
              r->items_used &&
      atomic_load(&h->trade_gold_in_flight) == 0 &&
      atomic_load(&h->trade_items_in_flight) == 0;
  /* Without strict order the docs allow a later packet to run before an
   * earlier deferred one: reported, not a failure. */
  r->order_ok = r->order_violations == 0 || !r->strict_order;
  r->hibernation_ok = r->wake_failures == 0 && r->state_mismatches == 0 &&
                      hs->hibernated == 0 &&
                      atomic_load(&h->alloc_failures) == 0 &&
                      (h->a->sessions < 2 || r->hibernated_max > 0);
  /* every request answered once, a timeout exactly for each ask the
   * house ignored, and every answer that went in handled */
  r->messaging_ok = r->rq.requests == r->auction_requests &&
                    r->rq.pending == 0 && r->rq.dropped == 0 &&
                    r->rq.late == 0 &&
                    r->rq.timeouts == r->auction_ignored &&
                    r->rq.replies + r->rq.timeouts ==
                        r->auction_replies + r->auction_timeouts +
                            r->auction_dropped &&
                    r->quest_delivered == r->quest_expected;
  messaging_why(r);
  r->budget_ok = r->tick_p99 <= (double)h->a->budget_ms;
  /* the maps' own counts against shoal's: every MAP packet handled once,
   * and never two threads in a map */
  r->maps_ok = r->map_owner_violations == 0 &&
               r->map_spells == ps.by_category[SHOAL_CAT_SPELL] &&
               r->map_combats == ps.by_category[SHOAL_CAT_COMBAT] &&
               r->map_loots == ps.by_category[SHOAL_CAT_LOOT];
  r->pass = r->packets_ok && r->economy_ok && r->order_ok &&
            r->hibernation_ok && r->messaging_ok && r->budget_ok &&
            r->payloads_ok && r->limits_ok && r->maps_ok && r->timers_ok;
}

static void world_free(world *w) {
  shoal_topic_destroy(w->h->quests);
  (void)shoal_mgr_destroy(w->h->mgr); /* detaches from the actors */
  (void)shoal_actors_destroy(w->h->actors);
  shoal_runtime_destroy(w->rt);
  free(w->h->kept_hash);
  free(w->h->maps);
  free(w->h->map_of);
  free(w->h->wake_at);
  free(w->l.drain_ms);
  free(w->l.drain_n);
}

/* The run, step by step: build the world and the population, run the
 * ticks, let the traffic settle, the memory round, the invariants. */
int st_run(const st_args *a, shoal_config *cfg, st_result *r,
           cli_listener *lis) {
  world w;
  shoal_hib_stats hs;
  double wall;
  int rc;
  memset(&w, 0, sizeof w);
  r->strict_order = cfg->strict_packet_order;
  r->inbox_size = cfg->inbox_size;
  if ((rc = world_build(&w, a, cfg, r)) != CLI_OK ||
      (rc = population_build(&w, r)) != CLI_OK)
    return rc;
  if (lis != NULL && cli_listen_serve(lis, w.h->mgr, w.h->actors) != 0) {
    world_free(&w);
    return cli_usage_error(ST_PROG, "--listen: cannot start its thread");
  }
  if ((wall = run_ticks(&w, r)) < 0)
    return CLI_FAIL;
  run_figures(&w, r, wall);
  if ((rc = settle(&w)) != CLI_OK || (rc = memory_round(&w, r, &hs)) != CLI_OK)
    return rc;
  check_invariants(&w, r, &hs, cfg);
  r->scrapes = cli_listen_stop(lis); /* before the manager goes */
  if (a->prometheus != NULL) { /* the library's exposition, at the end */
    size_t cap = 0;
    if (cli_prom_text(w.h->mgr, w.h->actors, &r->prom_lib, &cap) < 0) {
      free(r->prom_lib); /* the file keeps the run's own figures only */
      r->prom_lib = NULL;
    }
  }
  world_free(&w);
  return CLI_OK;
}

int cmd_stress(int argc, char **argv) {
  st_args a;
  st_result r;
  shoal_config cfg;
  char err[512];
  int rc;
  FILE *probe;
  const char *outs[4];
  cli_listener *lis = NULL;

  if ((rc = st_parse_args(argc, argv, &a)) != 0)
    return rc < 0 ? cli_finish_output(ST_PROG, CLI_OK) : rc;
  if (a.compare[0] != NULL)
    return st_compare(a.compare[0], a.compare[1], a.tolerance);
  shoal_config_defaults(&cfg);
  st_rate_defaults(&cfg); /* a --config file may set others */
  if (a.config != NULL &&
      shoal_config_load(&cfg, a.config, err, sizeof err) != SHOAL_OK)
    return cli_usage_error(ST_PROG, "%s", err);
  if (shoal_config_apply_env(&cfg, err, sizeof err) != SHOAL_OK)
    return cli_usage_error(ST_PROG, "%s", err);
  if ((uint64_t)a.tps * a.duration_s > 10000000u)
    return cli_usage_error(ST_PROG, "--tps × --duration is above 10 000 000 "
                           "ticks");
  if (a.find_max && !a.sessions_set)
    a.sessions = ST_FIND_CEILING; /* the search's own ceiling */
  if (a.find_max && a.sessions > cfg.max_sessions)
    cfg.max_sessions = a.sessions; /* the search may go as far */
  if (a.sessions > cfg.max_sessions)
    return cli_usage_error(ST_PROG,
                           "--sessions %u is above SessionMgr."
                           "MaxConcurrentSessions (%u)%s",
                           a.sessions, cfg.max_sessions,
                           a.config != NULL ? "" : "; raise it with --config");
  /* Outputs that cannot be written are bad input, found before the run. */
  outs[0] = a.json;
  outs[1] = a.html;
  outs[2] = a.trace;
  outs[3] = a.prometheus;
  for (int i = 0; i < 4; i++) {
    if (outs[i] == NULL)
      continue;
    if ((probe = fopen(outs[i], "a")) == NULL)
      return cli_usage_error(ST_PROG, "cannot write %s: %s", outs[i],
                             strerror(errno));
    fclose(probe);
  }

  if (a.listen != NULL && cli_listen_bind(&lis, ST_PROG, a.listen) != 0)
    return CLI_USAGE;

  if (a.find_max)
    return st_find_max(&a, &cfg);

  memset(&r, 0, sizeof r);
  r.a = &a;
  rc = st_run(&a, &cfg, &r, lis);
  if (rc != CLI_OK) {
    /* the run's early failures keep the world (the process ends); the
     * listener answers no more */
    (void)cli_listen_stop(lis);
    return rc;
  }
  return st_outputs(&a, &r);
}

int st_outputs(const st_args *a, st_result *r) {
  int rc = CLI_OK;
  st_print_table(stdout, r, isatty(1) && getenv("NO_COLOR") == NULL);
  if (a->json != NULL && st_write_json(a->json, r) != 0)
    rc = cli_usage_error(ST_PROG, "cannot write %s", a->json);
  if (a->prometheus != NULL && st_write_prometheus(a->prometheus, r) != 0)
    rc = cli_usage_error(ST_PROG, "cannot write %s", a->prometheus);
  if (a->html != NULL && st_write_html(a->html, r) != 0)
    rc = cli_usage_error(ST_PROG, "cannot write %s", a->html);
  if (r->trace_failed)
    rc = CLI_USAGE; /* said when it was written */
  free(r->tick_ms);
  free(r->seconds);
  free(r->prom_lib);
  if (rc != CLI_OK)
    return rc;
  if (r->capacity != NULL)
    return cli_finish_output(ST_PROG,
                             r->capacity->sessions > 0 ? CLI_OK : CLI_FAIL);
  return cli_finish_output(ST_PROG, r->pass ? CLI_OK : CLI_FAIL);
}
