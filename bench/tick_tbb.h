// tick_tbb.h — oneTBB's session tick, shared by the runtime and sessions
// suites: parallel_for over blocked_range(0, 5000, 64) with the default
// auto_partitioner, inside the given arena.
#ifndef SHOAL_BENCH_TICK_TBB_H
#define SHOAL_BENCH_TICK_TBB_H

#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include "bench.h"

struct tick_ctx {
  bench_tick *t;
  tbb::task_arena *arena;
};

static inline void tick_auto(void *arg) {
  tick_ctx *c = static_cast<tick_ctx *>(arg);
  c->arena->execute([c] {
    tbb::parallel_for(tbb::blocked_range<size_t>(0, TICK_SESSIONS, 64),
                      [c](const tbb::blocked_range<size_t> &r) {
                        bench_tick_range(c->t, r.begin(), r.end());
                      },
                      tbb::auto_partitioner());
  });
}

#endif
