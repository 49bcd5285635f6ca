// sessions_tbb.cpp — the sessions suite's oneTBB rows: the 5000-session
// tick as parallel_for over blocked_range with grain 64 (the default
// auto_partitioner), doing the same per-session work as shoal's host
// callback, in an arena of the same number of threads.
#include <tbb/global_control.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include "bench.h"
#include "tick_tbb.h"

int main(int argc, char **argv) {
  bench_args a = bench_parse(argc, argv);
  double ipn = bench_calibrate();
  tbb::global_control gc(tbb::global_control::max_allowed_parallelism,
                         a.workers);
  tbb::task_arena all((int)a.workers);
  for (size_t i = 0; i < BENCH_MGR_CASES; i++) {
    const bench_tick_case *c = &bench_mgr_cases[i];
    if (!bench_want(&a, c->name))
      continue;
    bench_tick t;
    t.s = bench_sessions_new();
    t.iters = bench_tick_iters(&t, c->work_ns, ipn);
    tick_ctx ctx = {&t, &all};
    bench_run_ticks(c, a.quick, "tbb", a.workers, tick_auto, &ctx);
    free(t.s);
  }
  return 0;
}
