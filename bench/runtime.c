/* runtime.c — the runtime suite for shoal, the serial programs and the
 * floor (threads pinned to the cores, each updating a fixed share of the
 * sessions, no runtime at all). Prints JSON rows; bench/run makes the
 * table and the derived figures (T1/Tserial, ns per spawn, speedup). */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <unistd.h>

#include "bench.h"
#include "shoal.h"

static unsigned pu_of(const shoal_plan *p, unsigned w) {
  const shoal_plan_worker *pw = shoal_plan_worker_at(p, w);
  return pw != NULL && pw->pu_os_index >= 0 ? (unsigned)pw->pu_os_index : 0;
}

static void pin_to(unsigned pu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(pu, &set);
  pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

static shoal_runtime *runtime_new(unsigned workers) {
  shoal_runtime_config cfg;
  shoal_runtime *rt;
  const char *e = getenv("SHOAL_BENCH_ANTICIPATE_US");
  int rc;
  shoal_runtime_config_defaults(&cfg);
  cfg.workers = workers;
  if (e != NULL)
    cfg.anticipate_us = (unsigned)atoi(e);
  if ((rc = shoal_runtime_create(&rt, &cfg)) != SHOAL_OK) {
    fprintf(stderr, "runtime: %s\n", shoal_strerror(rc));
    exit(1);
  }
  shoal_runtime_bind_host(rt); /* the host thread is placed like worker 0 */
  return rt;
}

/* ---- fib ---------------------------------------------------------------- */

typedef struct fib_args {
  int n;
  long r;
} fib_args;

BENCH_KERNEL long fib(shoal_worker *w, int n);
static void fib_task(shoal_worker *w, void *args) {
  fib_args *a = args;
  a->r = fib(w, a->n);
}
BENCH_KERNEL long fib(shoal_worker *w, int n) {
  fib_args *a;
  long b;
  if (n < 2)
    return n;
  a = shoal_args(w);
  a->n = n - 1;
  b = fib(shoal_spawn(w, fib_task), n - 2);
  if (shoal_sync_take(w))
    return fib(w, n - 1) + b;
  return a->r + b;
}

/* ---- nqueens ------------------------------------------------------------ */

typedef struct queens_args {
  int n;
  unsigned cols, d1, d2;
  long r;
} queens_args;

static long queens(shoal_worker *w, int n, unsigned cols, unsigned d1,
                   unsigned d2);
static void queens_task(shoal_worker *w, void *args) {
  queens_args *a = args;
  a->r = queens(w, a->n, a->cols, a->d1, a->d2);
}
static long queens(shoal_worker *w, int n, unsigned cols, unsigned d1,
                   unsigned d2) {
  shoal_worker *h[32];
  unsigned all = (1u << n) - 1, free_ = all & ~(cols | d1 | d2);
  int k = 0;
  long r = 0;
  if (cols == all)
    return 1;
  while (free_ != 0) {
    unsigned bit = free_ & -free_;
    queens_args *a = shoal_args(w);
    free_ ^= bit;
    a->n = n;
    a->cols = cols | bit;
    a->d1 = (d1 | bit) << 1;
    a->d2 = (d2 | bit) >> 1;
    h[k++] = w;
    w = shoal_spawn(w, queens_task);
  }
  while (k-- > 0) {
    queens_args *a = shoal_args(h[k]);
    if (shoal_sync_take(h[k]))
      r += queens(h[k], a->n, a->cols, a->d1, a->d2);
    else
      r += a->r;
  }
  return r;
}

/* ---- uts ---------------------------------------------------------------- */

typedef struct uts_args {
  uint64_t id;
  long r;
} uts_args;

static long uts(shoal_worker *w, uint64_t id);
static void uts_task(shoal_worker *w, void *args) {
  uts_args *a = args;
  a->r = uts(w, a->id);
}
static long uts_children(shoal_worker *w, uint64_t id, unsigned k) {
  shoal_worker *h[UTS_M];
  long n = 0;
  for (unsigned i = 0; i < k; i++) {
    uts_args *a = shoal_args(w);
    a->id = bench_uts_child(id, i);
    h[i] = w;
    w = shoal_spawn(w, uts_task);
  }
  while (k-- > 0) {
    uts_args *a = shoal_args(h[k]);
    if (shoal_sync_take(h[k]))
      n += uts(h[k], a->id);
    else
      n += a->r;
  }
  return n;
}
static long uts(shoal_worker *w, uint64_t id) {
  return 1 + uts_children(w, id, bench_uts_children(id));
}

/* The root's UTS_B0 children, split in halves so that they spread. */
#define UTS_B0 2000
#define UTS_SEED 19
typedef struct uts_root_args {
  unsigned b, e;
  long r;
} uts_root_args;
static long uts_root_range(shoal_worker *w, unsigned b, unsigned e);
static void uts_root_task(shoal_worker *w, void *args) {
  uts_root_args *a = args;
  a->r = uts_root_range(w, a->b, a->e);
}
static long uts_root_range(shoal_worker *w, unsigned b, unsigned e) {
  uts_root_args *a;
  unsigned mid;
  long n;
  if (e - b == 1)
    return uts(w, bench_uts_child(UTS_SEED, b));
  mid = b + (e - b) / 2;
  a = shoal_args(w);
  a->b = mid;
  a->e = e;
  n = uts_root_range(shoal_spawn(w, uts_root_task), b, mid);
  if (shoal_sync_take(w))
    return n + uts_root_range(w, mid, e);
  return n + a->r;
}
static long uts_serial_root(void) {
  long n = 1;
  for (unsigned i = 0; i < UTS_B0; i++)
    n += bench_uts_serial(bench_uts_child(UTS_SEED, i));
  return n;
}

/* ---- the recursive cases ------------------------------------------------ */

typedef struct rec_run {
  const bench_rec_case *c;
  int n;
  long result, spawns;
  shoal_runtime *rt;
} rec_run;

static void rec_serial(void *arg) {
  rec_run *r = arg;
  if (r->c->kind == 0)
    r->result = bench_fib_serial(r->n);
  else if (r->c->kind == 1)
    r->result = bench_queens_serial(r->n, 0, 0, 0);
  else
    r->result = uts_serial_root();
}

static void rec_root(shoal_worker *w, void *arg) {
  rec_run *r = arg;
  if (r->c->kind == 0)
    r->result = fib(w, r->n);
  else if (r->c->kind == 1)
    r->result = queens(w, r->n, 0, 0, 0);
  else
    r->result = 1 + uts_root_range(w, 0, UTS_B0);
}

static void rec_shoal(void *arg) {
  rec_run *r = arg;
  shoal_runtime_run(r->rt, rec_root, r);
}

/* The spawns of one run, counted from the program's shape (the workers'
 * task counters see only the frames that left their spawner's array). */
static double spawns_of(const rec_run *r) {
  if (r->c->kind == 0) { /* fib(n) spawns fib(n+1) - 1 frames */
    long a = 0, b = 1;
    for (int i = 0; i < r->n + 1; i++) {
      long t = a + b;
      a = b;
      b = t;
    }
    return (double)(a - 1);
  }
  if (r->c->kind == 1) /* every node but the root */
    return (double)(bench_queens_nodes(r->n, 0, 0, 0) - 1);
  /* every node but the root and the root's children, plus the halving of
   * the root's UTS_B0 children (UTS_B0 - 1): nodes - 2 */
  return (double)(r->result - 2);
}

static void run_rec(const bench_args *a, shoal_runtime *rt1,
                    shoal_runtime *rtn) {
  for (size_t i = 0; i < BENCH_REC_CASES; i++) {
    const bench_rec_case *c = &bench_rec_cases[i];
    rec_run r = {c, a->quick ? c->quick_n : c->n, 0, 0, NULL};
    const char *name = bench_rec_name(c, a->quick);
    long want;
    double t;
    if (!bench_want(a, c->name) && !bench_want(a, name))
      continue;
    t = bench_median(c->reps, rec_serial, &r);
    want = r.result;
    bench_row(name, "serial", 1, "median_s", t, "s");
    r.rt = rt1;
    bench_row(name, "serial", 1, "spawns", spawns_of(&r), "tasks");
    bench_row(name, "shoal", 1, "median_s",
              bench_median(c->reps, rec_shoal, &r), "s");
    if (r.result != want)
      fprintf(stderr, "%s: shoal(1) gave %ld, serial %ld\n", name, r.result,
              want);
    r.rt = rtn;
    bench_row(name, "shoal", shoal_runtime_workers(rtn), "median_s",
              bench_median(c->reps, rec_shoal, &r), "s");
    if (r.result != want)
      fprintf(stderr, "%s: shoal(n) gave %ld, serial %ld\n", name, r.result,
              want);
  }
}

/* ---- ticks: serial, shoal, floor ---------------------------------------- */

static void tick_serial(void *ctx) {
  bench_tick_range(ctx, 0, TICK_SESSIONS);
}

typedef struct shoal_tick {
  shoal_runtime *rt;
  bench_tick t;
} shoal_tick;

static void tick_shoal(void *ctx) {
  shoal_tick *s = ctx;
  shoal_parallel_for(s->rt, 0, TICK_SESSIONS, 64, bench_tick_body, &s->t);
}

typedef struct floor_team {
  bench_tick *t;
  unsigned n;
  const shoal_plan *plan;
  _Atomic unsigned epoch, done;
  _Atomic int stop;
} floor_team;

typedef struct floor_arg {
  floor_team *team;
  unsigned index;
} floor_arg;

static void floor_share(floor_team *f, unsigned i) {
  bench_tick_range(f->t, (size_t)TICK_SESSIONS * i / f->n,
                   (size_t)TICK_SESSIONS * (i + 1) / f->n);
}

static void *floor_main(void *arg) {
  floor_arg *a = arg;
  floor_team *f = a->team;
  unsigned seen = 0;
  pin_to(pu_of(f->plan, a->index));
  for (;;) {
    unsigned e;
    while ((e = atomic_load_explicit(&f->epoch, memory_order_acquire)) == seen)
      if (atomic_load_explicit(&f->stop, memory_order_relaxed))
        return NULL;
    seen = e;
    floor_share(f, a->index);
    atomic_fetch_add_explicit(&f->done, 1, memory_order_release);
  }
}

static void tick_floor(void *ctx) {
  floor_team *f = ctx;
  atomic_store_explicit(&f->done, 0, memory_order_relaxed);
  atomic_fetch_add_explicit(&f->epoch, 1, memory_order_release);
  floor_share(f, 0);
  while (atomic_load_explicit(&f->done, memory_order_acquire) != f->n - 1) {
  }
}

static void run_ticks(const bench_args *a, shoal_runtime *rtn, double ipn) {
  unsigned n = shoal_runtime_workers(rtn);
  const shoal_plan *plan = shoal_runtime_plan(rtn);
  for (size_t i = 0; i < BENCH_TICK_CASES; i++) {
    const bench_tick_case *c = &bench_tick_cases[i];
    bench_tick t;
    shoal_tick st;
    floor_team f;
    pthread_t th[64];
    floor_arg fa[64];
    if (!bench_want(a, c->name))
      continue;
    t.s = bench_sessions_new();
    t.iters = bench_tick_iters(&t, c->work_ns, ipn);
    if (c->period_ms == 0)
      bench_run_ticks(c, a->quick, "serial", 1, tick_serial, &t);
    st.rt = rtn;
    st.t = t;
    bench_run_ticks(c, a->quick, "shoal", n, tick_shoal, &st);
    /* The floor spins between ticks: its idle CPU is all of its threads. */
    f.t = &t;
    f.n = n < 64 ? n : 64;
    f.plan = plan;
    atomic_init(&f.epoch, 0);
    atomic_init(&f.done, 0);
    atomic_init(&f.stop, 0);
    for (unsigned k = 1; k < f.n; k++) {
      fa[k].team = &f;
      fa[k].index = k;
      pthread_create(&th[k], NULL, floor_main, &fa[k]);
    }
    bench_run_ticks(c, a->quick, "floor", f.n, tick_floor, &f);
    atomic_store(&f.stop, 1);
    for (unsigned k = 1; k < f.n; k++)
      pthread_join(th[k], NULL);
    free(t.s);
  }
}

/* ---- an idle runtime ---------------------------------------------------- */

static void run_idle(const bench_args *a, shoal_runtime *rtn) {
  double secs = a->quick ? 2.0 : 10.0, c0, t0;
  uint64_t cpu0 = 0, cpu1 = 0;
  unsigned n = shoal_runtime_workers(rtn);
  if (!bench_want(a, "idle"))
    return;
  usleep(200000); /* past the last spin */
  for (unsigned i = 0; i < n; i++) {
    shoal_worker_stats st;
    shoal_worker_stats_get(rtn, i, &st);
    cpu0 += st.cpu_ns;
  }
  c0 = bench_cpu_now();
  t0 = bench_now();
  usleep((useconds_t)(secs * 1e6));
  for (unsigned i = 0; i < n; i++) {
    shoal_worker_stats st;
    shoal_worker_stats_get(rtn, i, &st);
    cpu1 += st.cpu_ns;
  }
  bench_row("idle", "shoal", n, "idle_cpu_percent",
            100.0 * (double)(cpu1 - cpu0) * 1e-9 / (bench_now() - t0), "%");
  bench_row("idle", "shoal", n, "process_cpu_percent",
            100.0 * (bench_cpu_now() - c0) / (bench_now() - t0), "%");
}

/* ---- the worker count at run time -------------------------------------- */

/* Ten ticks of tick5000_w1000, 2 ms of idle after each (a server's
 * ticks are spaced): their times into out[0 … 10). */
static void ten_ticks(shoal_tick *st, double *out) {
  for (int k = 0; k < 10; k++) {
    double t0 = bench_now();
    tick_shoal(st);
    out[k] = bench_now() - t0;
    bench_sleep_until(t0 + out[k] + 2e-3);
  }
}

/* The first of each run of ten. */
static double first_of_tens(const double *v, unsigned reps) {
  double *f = calloc(reps, sizeof *f), q;
  for (unsigned r = 0; r < reps; r++)
    f[r] = v[10 * (size_t)r];
  q = bench_quantile(f, reps, 0.5);
  free(f);
  return q;
}

/* Adding and removing the highest worker of an n-worker runtime, each
 * timed; the ten ticks after each against ten steady ones at that count. */
static void run_resize(const bench_args *a, unsigned workers, double ipn) {
  static const bench_tick_case *c = &bench_tick_cases[1]; /* w1000 */
  unsigned reps = a->quick ? 20 : 100, n;
  shoal_runtime *rt = runtime_new(workers);
  double *add, *rem, *after_add, *after_rem, *steady_n, *steady_m;
  shoal_tick st;
  if (!bench_want(a, "resize") || (n = shoal_runtime_workers(rt)) < 2) {
    if (bench_want(a, "resize") && n < 2)
      fprintf(stderr, "resize: needs 2 workers or more\n");
    shoal_runtime_destroy(rt);
    return;
  }
  add = calloc(reps, sizeof *add);
  rem = calloc(reps, sizeof *rem);
  after_add = calloc(10 * (size_t)reps, sizeof *after_add);
  after_rem = calloc(10 * (size_t)reps, sizeof *after_rem);
  steady_n = calloc(10 * (size_t)reps, sizeof *steady_n);
  steady_m = calloc(10 * (size_t)reps, sizeof *steady_m);
  st.rt = rt;
  st.t.s = bench_sessions_new();
  st.t.iters = bench_tick_iters(&st.t, c->work_ns, ipn);
  for (unsigned r = 0; r < reps; r++) {
    double t0;
    ten_ticks(&st, &steady_n[10 * r]);
    t0 = bench_now();
    shoal_runtime_set_workers(rt, n - 1);
    rem[r] = bench_now() - t0;
    ten_ticks(&st, &after_rem[10 * r]);
    ten_ticks(&st, &steady_m[10 * r]);
    t0 = bench_now();
    shoal_runtime_set_workers(rt, n);
    add[r] = bench_now() - t0;
    ten_ticks(&st, &after_add[10 * r]);
  }
  bench_row("resize", "shoal", n, "add_worker_us",
            1e6 * bench_quantile(add, reps, 0.5), "us");
  bench_row("resize", "shoal", n, "remove_worker_us",
            1e6 * bench_quantile(rem, reps, 0.5), "us");
  bench_row("resize", "shoal", n, "tick_steady_us",
            1e6 * bench_quantile(steady_n, 10 * (size_t)reps, 0.5), "us");
  bench_row("resize", "shoal", n, "tick_first_after_add_us",
            1e6 * first_of_tens(after_add, reps), "us");
  bench_row("resize", "shoal", n, "tick_after_add_us",
            1e6 * bench_quantile(after_add, 10 * (size_t)reps, 0.5), "us");
  bench_row("resize", "shoal", n, "tick_after_add_p99_us",
            1e6 * bench_quantile(after_add, 10 * (size_t)reps, 0.99), "us");
  bench_row("resize", "shoal", n - 1, "tick_steady_us",
            1e6 * bench_quantile(steady_m, 10 * (size_t)reps, 0.5), "us");
  bench_row("resize", "shoal", n - 1, "tick_first_after_remove_us",
            1e6 * first_of_tens(after_rem, reps), "us");
  bench_row("resize", "shoal", n - 1, "tick_after_remove_us",
            1e6 * bench_quantile(after_rem, 10 * (size_t)reps, 0.5), "us");
  bench_row("resize", "shoal", n - 1, "tick_after_remove_p99_us",
            1e6 * bench_quantile(after_rem, 10 * (size_t)reps, 0.99), "us");
  free(st.t.s);
  free(add);
  free(rem);
  free(after_add);
  free(after_rem);
  free(steady_n);
  free(steady_m);
  shoal_runtime_destroy(rt);
}

int main(int argc, char **argv) {
  bench_args a = bench_parse(argc, argv);
  shoal_runtime *rt1, *rtn;
  double ipn = bench_calibrate();
  rtn = runtime_new(a.workers);
  rt1 = runtime_new(1);
  run_rec(&a, rt1, rtn);
  shoal_runtime_destroy(rt1);
  run_ticks(&a, rtn, ipn);
  run_idle(&a, rtn);
  shoal_runtime_destroy(rtn);
  run_resize(&a, a.workers, ipn);
  return 0;
}
