/* stress_find.c — `shoal stress --find-max`: how many sessions does this
 * machine hold inside the tick budget? Short real runs (the whole run of
 * stress.c, invariants included), the population doubled from 250 until a
 * step fails, then bisected between the last pass and the first failure
 * to within 5 %, all inside --max-seconds. The ceiling is --sessions when
 * given, and what the memory available allows (from the resident bytes
 * per session the steps measure). The report is the capacity step's, with
 * the search (its curve and the limiting resource) added. */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "stress.h"

#define FIRST_STEP 250u
#define MEMORY_USE 0.7 /* of MemAvailable, at most */

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* /proc/meminfo's MemAvailable in bytes; 0 when unknown. */
static double mem_available(void) {
  FILE *f = fopen("/proc/meminfo", "r");
  char line[128];
  unsigned long kb = 0;
  if (f == NULL)
    return 0;
  while (fgets(line, sizeof line, f) != NULL)
    if (sscanf(line, "MemAvailable: %lu kB", &kb) == 1)
      break;
  fclose(f);
  return (double)kb * 1024.0;
}

/* What failed in a finished step; "" when it passed. */
static void why_failed(const st_result *r, char *buf, size_t cap) {
  static const char *const names[] = {"packets", "economy", "order",
                                      "hibernation", "messaging", "payloads",
                                      "limits", "maps", "timers"};
  const int oks[] = {r->packets_ok,   r->economy_ok,   r->order_ok,
                     r->hibernation_ok, r->messaging_ok, r->payloads_ok,
                     r->limits_ok,    r->maps_ok,      r->timers_ok};
  buf[0] = '\0';
  if (!r->budget_ok)
    snprintf(buf, cap, "tick p99 %.1f ms over %u", r->tick_p99,
             r->a->budget_ms);
  for (size_t k = 0; k < sizeof oks / sizeof oks[0] && buf[0] == '\0'; k++)
    if (!oks[k])
      snprintf(buf, cap, "check %s failed", names[k]);
}

static void step_of(const st_result *r, unsigned n, st_step *s) {
  double u = 0;
  memset(s, 0, sizeof *s);
  s->sessions = n;
  s->tick_p50 = r->tick_p50;
  s->tick_p99 = r->tick_p99;
  for (unsigned w = 0; w < r->workers && w < ST_WORKERS_SHOWN; w++)
    u += r->workers_st[w].utilization;
  s->utilization = r->workers > 0 ? u / (r->workers < ST_WORKERS_SHOWN
                                             ? r->workers
                                             : ST_WORKERS_SHOWN)
                                  : 0;
  s->drain_p99_ms = r->drain_p99_ms;
  s->map_phase_share = r->map_phase_share;
  s->biggest_map_share = r->biggest_map_share;
  s->cpu_us_per_session = r->cpu_us_per_session;
  s->rss_per_session = r->active_bytes_per_session;
  s->pass = r->pass;
  why_failed(r, s->why, sizeof s->why);
}

/* What limits the capacity, read off the first failing step above it
 * (or the last passing one when none failed). */
static const char *limit_of(const st_capacity *c, const st_step *s,
                            unsigned budget_ms) {
  if (c->memory_bound && c->sessions == c->ceiling)
    return "memory";
  if (s == NULL)
    return "the ceiling asked for (--sessions)";
  if (s->map_phase_share > 0.5 && s->biggest_map_share > 0.5)
    return "the biggest map's phase";
  if (s->drain_p99_ms > 0.5 * budget_ms)
    return "the main thread's drain";
  if (s->why[0] != '\0' && strncmp(s->why, "check", 5) == 0)
    return s->why; /* an invariant broke before the budget did */
  return "worker CPU";
}

static int by_sessions(const void *x, const void *y) {
  const st_step *a = x, *b = y;
  return (a->sessions > b->sessions) - (a->sessions < b->sessions);
}

/* One step of n sessions with the search's arguments in *sa (which r
 * points at); its result in *r (buffers the caller frees), or the status
 * of a run that could not finish. */
static int step(const st_args *a, st_args *sa, shoal_config *cfg, unsigned n,
                st_result *r) {
  *sa = *a;
  sa->sessions = n;
  sa->duration_s = a->step_s;
  sa->json = sa->html = sa->prometheus = sa->trace = sa->listen = NULL;
  memset(r, 0, sizeof *r);
  r->a = sa;
  return st_run(sa, cfg, r, NULL);
}

static void free_result(st_result *r) {
  free(r->tick_ms);
  free(r->seconds);
  free(r->prom_lib);
  memset(r, 0, sizeof *r);
}

static unsigned ceiling_for(const st_capacity *c, double rss_per_session) {
  double avail = mem_available(), n;
  if (avail <= 0 || rss_per_session <= 0)
    return c->ceiling;
  n = avail * MEMORY_USE / rss_per_session;
  return n < c->ceiling ? (unsigned)n : c->ceiling;
}

int st_find_max(const st_args *a, shoal_config *cfg) {
  static st_capacity cap;
  /* the steps' arguments: the best's, the first failure's, the current */
  static st_args sa_best, sa_fail, sa_cur;
  st_args out = *a;
  st_result best, fail, cur;
  unsigned lo = 0, hi = 0, n;
  double t0 = now_s(), last = 0;
  int have_best = 0, have_fail = 0;
  memset(&cap, 0, sizeof cap);
  cap.ceiling = a->sessions;
  cap.ceiling_by = a->sessions_set ? "--sessions" : "the search's own limit";
  n = FIRST_STEP < cap.ceiling ? FIRST_STEP : cap.ceiling;
  fprintf(stderr, "%s: capacity search: %u ms budget, steps of %u s, at "
          "most %u s, up to %u sessions\n", ST_PROG, a->budget_ms, a->step_s,
          a->max_s, cap.ceiling);
  while (cap.nsteps < ST_STEPS_MAX) {
    double s0 = now_s();
    st_step *s = &cap.steps[cap.nsteps];
    int rc = step(a, &sa_cur, cfg, n, &cur);
    if (rc == CLI_USAGE)
      return rc;
    if (rc != CLI_OK) { /* a run that could not finish fails its step */
      memset(s, 0, sizeof *s);
      s->sessions = n;
      snprintf(s->why, sizeof s->why, "the run could not finish");
    } else {
      step_of(&cur, n, s);
    }
    cap.nsteps++;
    last = now_s() - s0;
    fprintf(stderr, "%s: step %u: %u sessions: tick p50 %.2f ms, p99 %.2f "
            "ms, workers %.0f %% busy: %s%s%s\n", ST_PROG, cap.nsteps, n,
            s->tick_p50, s->tick_p99, 100.0 * s->utilization,
            s->pass ? "PASS" : "FAIL", s->pass ? "" : " — ", s->why);
    if (s->pass) {
      lo = n;
      if (have_best)
        free_result(&best);
      best = cur;
      sa_best = sa_cur;
      best.a = &sa_best;
      have_best = 1;
      if (s->rss_per_session > 0) {
        unsigned c = ceiling_for(&cap, s->rss_per_session);
        if (c < cap.ceiling) {
          cap.ceiling = c < lo ? lo : c;
          cap.memory_bound = 1;
          cap.ceiling_by = "the memory available";
        }
      }
    } else {
      hi = n;
      if (rc == CLI_OK && !have_fail && lo == 0) {
        fail = cur; /* the report when nothing passes */
        sa_fail = sa_cur;
        fail.a = &sa_fail;
        have_fail = 1;
      } else if (rc == CLI_OK) {
        free_result(&cur);
      }
    }
    if (lo == 0 && hi != 0)
      break; /* the smallest step failed */
    if (lo == cap.ceiling ||
        (hi != 0 && hi - lo <= (lo / 20 > 25 ? lo / 20 : 25))) {
      cap.converged = 1;
      break;
    }
    n = hi == 0 ? (lo * 2 < cap.ceiling ? lo * 2 : cap.ceiling)
                : lo + (hi - lo) / 2;
    /* the next step takes about as long as this one, more for more */
    if (now_s() - t0 + last * ((double)n / (double)(lo ? lo : n)) >
        (double)a->max_s)
      break;
  }
  cap.elapsed_s = now_s() - t0;
  cap.sessions = lo;
  qsort(cap.steps, cap.nsteps, sizeof cap.steps[0], by_sessions);
  if (lo == 0) {
    cap.limit = "even the smallest step";
  } else {
    const st_step *first_fail = NULL;
    for (unsigned k = 0; k < cap.nsteps && first_fail == NULL; k++)
      if (!cap.steps[k].pass && cap.steps[k].sessions > lo)
        first_fail = &cap.steps[k];
    cap.limit = limit_of(&cap, first_fail, a->budget_ms);
  }
  if (have_best && have_fail)
    free_result(&fail);
  if (!have_best && !have_fail)
    return CLI_FAIL; /* no step finished: each said why on stderr */
  if (!have_best)
    best = fail;
  out.sessions = best.a->sessions;
  out.duration_s = a->step_s;
  best.a = &out;
  best.capacity = &cap;
  return st_outputs(&out, &best);
}
