// runtime_tbb.cpp — the runtime suite with oneTBB: task_group for fib,
// nqueens and uts; parallel_for with grain 64 (auto_partitioner and
// simple_partitioner) for the session tick.
#include <tbb/global_control.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>
#include <tbb/task_group.h>

#include "bench.h"
#include "tick_tbb.h"

static long fib(int n) {
  if (n < 2)
    return n;
  long a, b;
  tbb::task_group g;
  g.run([&] { a = fib(n - 1); });
  b = fib(n - 2);
  g.wait();
  return a + b;
}

static long queens(int n, unsigned cols, unsigned d1, unsigned d2) {
  unsigned all = (1u << n) - 1, free_ = all & ~(cols | d1 | d2);
  if (cols == all)
    return 1;
  long r[32] = {0}, sum = 0;
  int k = 0;
  tbb::task_group g;
  while (free_ != 0) {
    unsigned bit = free_ & -free_;
    free_ ^= bit;
    long *slot = &r[k++];
    g.run([=] { *slot = queens(n, cols | bit, (d1 | bit) << 1, (d2 | bit) >> 1); });
  }
  g.wait();
  for (int i = 0; i < k; i++)
    sum += r[i];
  return sum;
}

static long uts(uint64_t id) {
  unsigned k = bench_uts_children(id);
  long r[UTS_M] = {0}, n = 1;
  tbb::task_group g;
  for (unsigned i = 0; i < k; i++)
    g.run([&r, id, i] { r[i] = uts(bench_uts_child(id, i)); });
  g.wait();
  for (unsigned i = 0; i < k; i++)
    n += r[i];
  return n;
}

struct rec_run {
  int kind, n;
  long result;
  tbb::task_arena *arena;
};

static void rec_tbb(void *arg) {
  rec_run *r = static_cast<rec_run *>(arg);
  r->arena->execute([r] {
    if (r->kind == 0) {
      r->result = fib(r->n);
    } else if (r->kind == 1) {
      r->result = queens(r->n, 0, 0, 0);
    } else {
      static long c[2000];
      tbb::task_group g;
      for (unsigned i = 0; i < 2000; i++)
        g.run([i] { c[i] = uts(bench_uts_child(19, i)); });
      g.wait();
      long n = 1;
      for (unsigned i = 0; i < 2000; i++)
        n += c[i];
      r->result = n;
    }
  });
}

static void tick_simple(void *arg) {
  tick_ctx *c = static_cast<tick_ctx *>(arg);
  c->arena->execute([c] {
    tbb::parallel_for(tbb::blocked_range<size_t>(0, TICK_SESSIONS, 64),
                      [c](const tbb::blocked_range<size_t> &r) {
                        bench_tick_range(c->t, r.begin(), r.end());
                      },
                      tbb::simple_partitioner());
  });
}

int main(int argc, char **argv) {
  bench_args a = bench_parse(argc, argv);
  double ipn = bench_calibrate();
  tbb::global_control gc(tbb::global_control::max_allowed_parallelism,
                         a.workers);
  tbb::task_arena one(1), all((int)a.workers);
  for (const auto &c : bench_rec_cases) {
    const char *name = bench_rec_name(&c, a.quick);
    if (!bench_want(&a, c.name) && !bench_want(&a, name))
      continue;
    rec_run r1 = {c.kind, a.quick ? c.quick_n : c.n, 0, &one};
    rec_run rn = {c.kind, a.quick ? c.quick_n : c.n, 0, &all};
    bench_row(name, "tbb", 1, "median_s", bench_median(c.reps, rec_tbb, &r1), "s");
    bench_row(name, "tbb", a.workers, "median_s",
              bench_median(c.reps, rec_tbb, &rn), "s");
  }
  for (size_t i = 0; i < BENCH_TICK_CASES; i++) {
    const bench_tick_case *c = &bench_tick_cases[i];
    if (!bench_want(&a, c->name))
      continue;
    bench_tick t;
    t.s = bench_sessions_new();
    t.iters = bench_tick_iters(&t, c->work_ns, ipn);
    tick_ctx ctx = {&t, &all};
    bench_run_ticks(c, a.quick, "tbb", a.workers, tick_auto, &ctx);
    bench_run_ticks(c, a.quick, "tbb_simple", a.workers, tick_simple, &ctx);
    free(t.s);
  }
  return 0;
}
