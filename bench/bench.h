/* bench.h — what every benchmark program shares, in C and C++: the clock,
 * medians and percentiles, JSON rows for bench/run, and the workloads
 * (serial fib, nqueens, an unbalanced tree, the session tick). */
#ifndef SHOAL_BENCH_H
#define SHOAL_BENCH_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <dirent.h>
#include <sys/syscall.h>
#include <unistd.h>

static inline double bench_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* CPU time of the process's other threads (the runtime's, while the host
 * thread sleeps). CLOCK_PROCESS_CPUTIME_ID will not do: the kernel adds a
 * running thread's time to the process total only at scheduler ticks, so
 * work done in a tick shows up after it. A thread's own CPU clock is read
 * exactly. The threads are listed once (bench_threads_list), after the
 * runtime under test has started its pool. */
#define BENCH_MAX_THREADS 256
static clockid_t bench_clocks[BENCH_MAX_THREADS];
static unsigned bench_nclocks;

static inline void bench_threads_list(void) {
  DIR *d = opendir("/proc/self/task");
  struct dirent *e;
  long self = (long)syscall(SYS_gettid);
  bench_nclocks = 0;
  while (d != NULL && (e = readdir(d)) != NULL &&
         bench_nclocks < BENCH_MAX_THREADS) {
    long tid = atol(e->d_name);
    if (tid <= 0 || tid == self)
      continue;
    /* The kernel's MAKE_THREAD_CPUCLOCK(tid, CPUCLOCK_SCHED). */
    bench_clocks[bench_nclocks++] = (clockid_t)((~(unsigned long)tid) << 3) | 6;
  }
  if (d != NULL)
    closedir(d);
}

static inline double bench_cpu_now(void) {
  double sum = 0;
  for (unsigned i = 0; i < bench_nclocks; i++) {
    struct timespec ts;
    if (clock_gettime(bench_clocks[i], &ts) == 0)
      sum += (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
  }
  return sum;
}

/* Resident bytes of the process (/proc/self/statm). */
static inline uint64_t bench_rss(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  unsigned long size = 0, res = 0;
  if (f == NULL)
    return 0;
  if (fscanf(f, "%lu %lu", &size, &res) != 2)
    res = 0;
  fclose(f);
  return (uint64_t)res * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* The least-squares line through (x[i], y[i]): its slope and R². */
static inline void bench_fit(const double *x, const double *y, size_t n,
                             double *slope, double *r2) {
  double sx = 0, sy = 0, sxx = 0, sxy = 0, syy = 0, k = (double)n, num;
  for (size_t i = 0; i < n; i++) {
    sx += x[i];
    sy += y[i];
    sxx += x[i] * x[i];
    sxy += x[i] * y[i];
    syy += y[i] * y[i];
  }
  num = k * sxy - sx * sy;
  *slope = num / (k * sxx - sx * sx);
  *r2 = num * num / ((k * sxx - sx * sx) * (k * syy - sy * sy));
}

static inline int bench_cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* The q-quantile (0…1) of v[0…n), nearest rank; sorts v. */
static inline double bench_quantile(double *v, size_t n, double q) {
  size_t k;
  qsort(v, n, sizeof *v, bench_cmp_double);
  k = (size_t)(q * (double)n);
  return v[k < n ? k : n - 1];
}

/* One row of bench/run's JSON. */
static inline void bench_row(const char *cas, const char *impl,
                             unsigned workers, const char *metric,
                             double value, const char *unit) {
  printf("{\"case\":\"%s\",\"impl\":\"%s\",\"workers\":%u,\"metric\":\"%s\","
         "\"value\":%.6g,\"unit\":\"%s\"}\n",
         cas, impl, workers, metric, value, unit);
  fflush(stdout);
}

/* Command line shared by the programs: --quick, --workers N, --case NAME. */
typedef struct bench_args {
  int quick;
  unsigned workers;
  const char *only; /* NULL: every case */
} bench_args;

static inline bench_args bench_parse(int argc, char **argv) {
  bench_args a;
  a.quick = 0;
  a.workers = 2;
  a.only = NULL;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--quick") == 0)
      a.quick = 1;
    else if (strcmp(argv[i], "--workers") == 0 && i + 1 < argc)
      a.workers = (unsigned)atoi(argv[++i]);
    else if (strcmp(argv[i], "--case") == 0 && i + 1 < argc)
      a.only = argv[++i];
    else {
      fprintf(stderr, "usage: %s [--quick] [--workers N] [--case NAME]\n",
              argv[0]);
      exit(2);
    }
  }
  return a;
}

static inline int bench_want(const bench_args *a, const char *cas) {
  return a->only == NULL || strncmp(cas, a->only, strlen(a->only)) == 0;
}

/* The recursive kernels make one real call per node, like their task
 * versions (whose recursion goes through spawn): `inline` would let gcc
 * inline the serial recursion into itself and compare a different program.
 * Where the linker places them is left alone: docs/runtime.md ("Measuring
 * fork-join") says what their placement does to the ratios on this
 * machine.
 */
#define BENCH_KERNEL __attribute__((noinline, unused)) static

/* ---- fib ---------------------------------------------------------------- */

BENCH_KERNEL long bench_fib_serial(int n) {
  return n < 2 ? n : bench_fib_serial(n - 1) + bench_fib_serial(n - 2);
}

/* ---- nqueens: boards as bitmasks --------------------------------------- */

BENCH_KERNEL long bench_queens_serial(int n, unsigned cols, unsigned d1, unsigned d2) {
  unsigned all = (1u << n) - 1, free_ = all & ~(cols | d1 | d2);
  long r = 0;
  if (cols == all)
    return 1;
  while (free_ != 0) {
    unsigned bit = free_ & -free_;
    free_ ^= bit;
    r += bench_queens_serial(n, cols | bit, (d1 | bit) << 1, (d2 | bit) >> 1);
  }
  return r;
}

/* The number of calls of the serial search from this node (the task
 * version spawns every call but the root's). */
BENCH_KERNEL long bench_queens_nodes(int n, unsigned cols, unsigned d1,
                                     unsigned d2) {
  unsigned all = (1u << n) - 1, free_ = all & ~(cols | d1 | d2);
  long r = 1;
  if (cols == all)
    return 1;
  while (free_ != 0) {
    unsigned bit = free_ & -free_;
    free_ ^= bit;
    r += bench_queens_nodes(n, cols | bit, (d1 | bit) << 1, (d2 | bit) >> 1);
  }
  return r;
}

/* ---- unbalanced tree search --------------------------------------------
 * A binomial tree in the manner of UTS (Olivier et al., LCPC 2006, tree
 * T3): the root has UTS_B0 children, every other node has UTS_M children
 * with probability UTS_Q, else none. Node identities come from splitmix64
 * instead of UTS's SHA-1, so the shape differs from T3's; its size is
 * fixed by the seed and checked across implementations. */
#define UTS_M 8
#define UTS_Q 0.124875
static inline uint64_t bench_mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}
static inline unsigned bench_uts_children(uint64_t id) {
  /* UTS_Q of 2^53 */
  return (double)(bench_mix(id) >> 11) * (1.0 / 9007199254740992.0) < UTS_Q
             ? UTS_M
             : 0;
}
static inline uint64_t bench_uts_child(uint64_t id, unsigned i) {
  return bench_mix(id * 31 + i + 1);
}
BENCH_KERNEL long bench_uts_serial(uint64_t id) {
  long n = 1;
  unsigned k = bench_uts_children(id);
  for (unsigned i = 0; i < k; i++)
    n += bench_uts_serial(bench_uts_child(id, i));
  return n;
}

/* ---- the session tick ---------------------------------------------------
 * 5000 sessions; updating one advances its state and, for W > 0, does a
 * fixed amount of arithmetic calibrated to W ns on this machine (a fixed
 * amount of work, not a clock: a preempted update takes longer). */
#define TICK_SESSIONS 5000
typedef struct bench_session {
  uint64_t state;
  uint64_t acc;
} bench_session;

typedef struct bench_tick {
  bench_session *s;
  uint64_t iters; /* per session */
} bench_tick;

static inline uint64_t bench_spin_iters(uint64_t iters, uint64_t x) {
  for (uint64_t i = 0; i < iters; i++) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    __asm__ __volatile__("" : "+r"(x));
  }
  return x;
}

/* One session's update: what a host's per-session callback does. */
static inline void bench_session_step(bench_session *s, uint64_t iters) {
  uint64_t x = s->state * 6364136223846793005ULL + 1442695040888963407ULL;
  if (iters != 0)
    x = bench_spin_iters(iters, x);
  s->state = x;
  s->acc += x >> 60;
}

static inline void bench_tick_range(const bench_tick *t, size_t b, size_t e) {
  for (size_t i = b; i < e; i++)
    bench_session_step(&t->s[i], t->iters);
}

/* The same as a parallel_for body: ctx is the bench_tick. */
static inline void bench_tick_body(void *ctx, size_t b, size_t e) {
  bench_tick_range((const bench_tick *)ctx, b, e);
}

/* Iterations of bench_spin_iters per nanosecond on this machine. */
static inline double bench_calibrate(void) {
  double best = 0;
  for (int r = 0; r < 5; r++) {
    double t0 = bench_now();
    volatile uint64_t sink = bench_spin_iters(20000000, 7);
    double dt = bench_now() - t0;
    (void)sink;
    if (20000000 / (dt * 1e9) > best)
      best = 20000000 / (dt * 1e9);
  }
  return best;
}

/* The iterations per session that make one serial tick take
 * TICK_SESSIONS × work_ns: starts from the loop's rate and corrects it on
 * the tick itself (memory and the per-session update included), so that the
 * ideal tick on N workers is TICK_SESSIONS × work_ns / N. */
static inline uint64_t bench_tick_iters(bench_tick *t, unsigned work_ns,
                                        double ipn) {
  double target = (double)TICK_SESSIONS * work_ns * 1e-9;
  if (work_ns == 0)
    return 0;
  t->iters = (uint64_t)(work_ns * ipn + 0.5);
  for (int round = 0; round < 4; round++) {
    double best = 1e9;
    for (int r = 0; r < 5; r++) {
      double t0 = bench_now();
      bench_tick_range(t, 0, TICK_SESSIONS);
      if (bench_now() - t0 < best)
        best = bench_now() - t0;
    }
    t->iters = (uint64_t)((double)t->iters * target / best + 0.5);
  }
  return t->iters;
}

static inline bench_session *bench_sessions_new(void) {
  bench_session *s = (bench_session *)calloc(TICK_SESSIONS, sizeof *s);
  for (size_t i = 0; i < TICK_SESSIONS; i++)
    s[i].state = i + 1;
  return s;
}

/* The recursive cases, one table for every implementation. */
typedef struct bench_rec_case {
  const char *name, *quick_name; /* each names what it runs */
  int kind; /* 0 fib, 1 nqueens, 2 uts */
  int n, quick_n;
  unsigned reps;
} bench_rec_case;

static const bench_rec_case bench_rec_cases[] = {
  {"fib35", "fib30", 0, 35, 30, 7},
  {"fib40", "fib32", 0, 40, 32, 3},
  {"nqueens12", "nqueens10", 1, 12, 10, 5},
  {"uts", "uts", 2, 0, 0, 5},
};

/* The case's name as run (--quick runs smaller sizes, named for them). */
static inline const char *bench_rec_name(const bench_rec_case *c, int quick) {
  return quick ? c->quick_name : c->name;
}
#define BENCH_REC_CASES (sizeof bench_rec_cases / sizeof bench_rec_cases[0])

/* Tick counts per case (quick / full) and the per-session work. */
typedef struct bench_tick_case {
  const char *name;
  unsigned work_ns;
  unsigned ticks, quick_ticks;
  unsigned period_ms; /* 0: back to back */
} bench_tick_case;

static const bench_tick_case bench_tick_cases[] = {
  {"tick5000_w0", 0, 20000, 4000, 0},
  {"tick5000_w1000", 1000, 1000, 200, 0},
  {"tick5000_w10000", 10000, 100, 20, 0},
  {"tick5000_w1000_paced", 1000, 500, 100, 10},
  {"tick5000_w1000_paced50ms", 1000, 100, 20, 50},
};
#define BENCH_TICK_CASES (sizeof bench_tick_cases / sizeof bench_tick_cases[0])

/* The sessions suite's ticks: the same work through the session manager
 * (shoal), a serial loop and oneTBB's parallel_for. */
static const bench_tick_case bench_mgr_cases[] = {
  {"mgr_tick5000_w0", 0, 20000, 4000, 0},
  {"mgr_tick5000_w1000", 1000, 1000, 200, 0},
  {"mgr_tick5000_w10000", 10000, 100, 20, 0},
};
#define BENCH_MGR_CASES (sizeof bench_mgr_cases / sizeof bench_mgr_cases[0])

/* Sleeps until an absolute CLOCK_MONOTONIC time (seconds). */
static inline void bench_sleep_until(double t) {
  struct timespec ts;
  ts.tv_sec = (time_t)t;
  ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) != 0) {
  }
}

/* Runs the ticks of one case through `tick` (which updates all sessions
 * once) and prints p50/p99, and for paced cases the CPU the process used
 * between ticks (the host thread sleeps then, so it is the runtime's). */
typedef void (*bench_tick_fn)(void *ctx);
static inline void bench_run_ticks(const bench_tick_case *c, int quick,
                                   const char *impl, unsigned workers,
                                   bench_tick_fn tick, void *ctx) {
  unsigned n = quick ? c->quick_ticks : c->ticks, warm = n / 10 + 1;
  double *lat = (double *)malloc(n * sizeof *lat);
  double idle_cpu = 0, idle_wall = 0, next = bench_now();
  for (unsigned k = 0; k < warm + n; k++) {
    double t0, t1, c0, c1;
    if (k == warm)
      bench_threads_list(); /* the pool under test is up by now */
    if (c->period_ms != 0) {
      c1 = bench_cpu_now();
      next += c->period_ms * 1e-3;
      bench_sleep_until(next);
      c0 = bench_cpu_now();
      if (k >= warm)
        idle_cpu += c0 - c1;
    }
    t0 = bench_now();
    tick(ctx);
    t1 = bench_now();
    if (k >= warm) {
      lat[k - warm] = (t1 - t0) * 1e6;
      if (c->period_ms != 0)
        idle_wall += c->period_ms * 1e-3 - (t1 - t0);
    }
    if (c->period_ms != 0 && t1 > next + c->period_ms * 1e-3)
      next = t1; /* fell behind: do not burst */
  }
  bench_row(c->name, impl, workers, "tick_p50_us", bench_quantile(lat, n, 0.5),
            "us");
  bench_row(c->name, impl, workers, "tick_p99_us", bench_quantile(lat, n, 0.99),
            "us");
  if (c->period_ms != 0)
    bench_row(c->name, impl, workers, "idle_cpu_percent",
              100.0 * idle_cpu / idle_wall, "%");
  free(lat);
}

/* Median of `reps` timings of fn(ctx), seconds. */
typedef void (*bench_fn)(void *ctx);
static inline double bench_median(unsigned reps, bench_fn fn, void *ctx) {
  double v[32];
  if (reps > 32)
    reps = 32;
  for (unsigned r = 0; r < reps; r++) {
    double t0 = bench_now();
    fn(ctx);
    v[r] = bench_now() - t0;
  }
  return bench_quantile(v, reps, 0.5);
}

#endif /* SHOAL_BENCH_H */
