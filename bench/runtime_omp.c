/* runtime_omp.c — the runtime suite with OpenMP tasks (fib, nqueens, uts)
 * and OpenMP loops (the session tick, schedule(static) and
 * schedule(dynamic, 64)), as the baseline that libgomp sets. */
#include <omp.h>

#include "bench.h"

static long fib(int n) {
  long a, b;
  if (n < 2)
    return n;
#pragma omp task shared(a)
  a = fib(n - 1);
  b = fib(n - 2);
#pragma omp taskwait
  return a + b;
}

static long queens(int n, unsigned cols, unsigned d1, unsigned d2) {
  unsigned all = (1u << n) - 1, free_ = all & ~(cols | d1 | d2);
  long r[32] = {0}, sum = 0;
  int k = 0;
  if (cols == all)
    return 1;
  while (free_ != 0) {
    unsigned bit = free_ & -free_;
    free_ ^= bit;
#pragma omp task shared(r) firstprivate(k, bit)
    r[k] = queens(n, cols | bit, (d1 | bit) << 1, (d2 | bit) >> 1);
    k++;
  }
#pragma omp taskwait
  for (int i = 0; i < k; i++)
    sum += r[i];
  return sum;
}

static long uts(uint64_t id) {
  unsigned k = bench_uts_children(id);
  long r[UTS_M] = {0}, n = 1;
  for (unsigned i = 0; i < k; i++) {
#pragma omp task shared(r) firstprivate(i)
    r[i] = uts(bench_uts_child(id, i));
  }
#pragma omp taskwait
  for (unsigned i = 0; i < k; i++)
    n += r[i];
  return n;
}

typedef struct rec_run {
  int kind, n;
  long result;
} rec_run;

static void rec_omp(void *arg) {
  rec_run *r = arg;
#pragma omp parallel
#pragma omp single
  {
    if (r->kind == 0)
      r->result = fib(r->n);
    else if (r->kind == 1)
      r->result = queens(r->n, 0, 0, 0);
    else {
      long c[2000] = {0}, n = 1;
      for (unsigned i = 0; i < 2000; i++) {
#pragma omp task shared(c) firstprivate(i)
        c[i] = uts(bench_uts_child(19, i));
      }
#pragma omp taskwait
      for (unsigned i = 0; i < 2000; i++)
        n += c[i];
      r->result = n;
    }
  }
}

static bench_tick *g_tick;
static void tick_static(void *ctx) {
  (void)ctx;
#pragma omp parallel for schedule(static)
  for (int i = 0; i < TICK_SESSIONS; i += 64)
    bench_tick_range(g_tick, (size_t)i,
                     (size_t)(i + 64 < TICK_SESSIONS ? i + 64 : TICK_SESSIONS));
}
static void tick_dynamic(void *ctx) {
  (void)ctx;
#pragma omp parallel for schedule(dynamic, 1)
  for (int i = 0; i < TICK_SESSIONS; i += 64)
    bench_tick_range(g_tick, (size_t)i,
                     (size_t)(i + 64 < TICK_SESSIONS ? i + 64 : TICK_SESSIONS));
}

int main(int argc, char **argv) {
  bench_args a = bench_parse(argc, argv);
  double ipn = bench_calibrate();
  unsigned counts[2] = {1, a.workers};
  for (size_t i = 0; i < BENCH_REC_CASES; i++) {
    const bench_rec_case *rc = &bench_rec_cases[i];
    rec_run r = {rc->kind, a.quick ? rc->quick_n : rc->n, 0};
    const char *name = bench_rec_name(rc, a.quick);
    if (!bench_want(&a, rc->name) && !bench_want(&a, name))
      continue;
    for (int k = 0; k < 2; k++) {
      omp_set_num_threads((int)counts[k]);
      bench_row(name, "omp", counts[k], "median_s",
                bench_median(rc->reps, rec_omp, &r), "s");
    }
  }
  omp_set_num_threads((int)a.workers);
  for (size_t i = 0; i < BENCH_TICK_CASES; i++) {
    const bench_tick_case *c = &bench_tick_cases[i];
    bench_tick t;
    if (!bench_want(&a, c->name))
      continue;
    t.s = bench_sessions_new();
    t.iters = bench_tick_iters(&t, c->work_ns, ipn);
    g_tick = &t;
    bench_run_ticks(c, a.quick, "omp", a.workers, tick_static, NULL);
    bench_run_ticks(c, a.quick, "omp_dynamic64", a.workers, tick_dynamic, NULL);
    free(t.s);
  }
  return 0;
}
