/* stats.c — per-worker counters and the Chrome trace-event export. */
#include <inttypes.h>
#include <stdio.h>

#include "runtime/sched/scheduler.h"

void shoal__stats_flush(shoal__worker *w) {
  for (unsigned k = 0; k < SHOAL__ST_COUNT; k++) {
    uint64_t v = w->local[k];
    /* Single writer: a relaxed store; readers may see a slightly old
     * value, never a torn one. */
    atomic_store_explicit(&w->stats[k], v, memory_order_relaxed);
  }
}

int shoal_worker_stats_get(const shoal_runtime *rt, unsigned worker,
                           shoal_worker_stats *out) {
  shoal_runtime *mrt = (shoal_runtime *)(uintptr_t)rt;
  shoal__worker *w;
  if (rt == NULL || out == NULL || worker >= rt->cap)
    return SHOAL_EINVAL;
  memset(out, 0, sizeof *out);
  if ((w = rt->w[worker]) == NULL)
    return SHOAL_OK; /* never started */
  out->tasks =
      atomic_load_explicit(&w->stats[SHOAL__ST_TASKS], memory_order_relaxed);
  out->steals =
      atomic_load_explicit(&w->stats[SHOAL__ST_STEALS], memory_order_relaxed);
  out->failed_steals =
      atomic_load_explicit(&w->stats[SHOAL__ST_FAILED], memory_order_relaxed);
  out->parks =
      atomic_load_explicit(&w->stats[SHOAL__ST_PARKS], memory_order_relaxed);
  out->wakes =
      atomic_load_explicit(&w->stats[SHOAL__ST_WAKES], memory_order_relaxed);
  out->busy_ns =
      atomic_load_explicit(&w->stats[SHOAL__ST_BUSY], memory_order_relaxed);
  out->trace_dropped =
      atomic_load_explicit(&w->stats[SHOAL__ST_DROPPED], memory_order_relaxed);
  /* Under resize_mu: a removed worker's thread is joined under it. */
  pthread_mutex_lock(&mrt->resize_mu);
  out->cpu_ns = atomic_load_explicit(&w->cpu_done, memory_order_relaxed);
  if (w->has_thread)
    out->cpu_ns += shoal__thread_cpu_ns_of(w->thread);
  pthread_mutex_unlock(&mrt->resize_mu);
  return SHOAL_OK;
}

static const char *const span_names[] = {"task", "closure", "batch"};

int shoal_runtime_trace_write(const shoal_runtime *rt, const char *path) {
  FILE *f;
  int first = 1, bad;
  if (rt == NULL || path == NULL)
    return SHOAL_EINVAL;
  if (rt->cfg.trace_events == 0)
    return SHOAL_ENOTSUP;
  if ((f = fopen(path, "w")) == NULL) {
    shoal__log(rt->cfg.log, rt->cfg.log_user, SHOAL_LOG_ERROR,
               "trace: cannot open %s for writing", path);
    return SHOAL_EIO;
  }
  fputs("{\"displayTimeUnit\":\"ns\",\"traceEvents\":[\n", f);
  for (unsigned i = 0; i < rt->cap; i++) {
    shoal__worker *w = rt->w[i];
    uint32_t n;
    if (w == NULL)
      continue;
    /* acquire: pairs with the release in shoal__span_add. */
    n = atomic_load_explicit(&w->nspans, memory_order_acquire);
    fprintf(f,
            "%s{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":1,"
            "\"tid\":%u,\"args\":{\"name\":\"worker %u\"}}",
            first ? "" : ",\n", i, i);
    first = 0;
    for (uint32_t k = 0; k < n; k++) {
      const shoal__span *s = &w->spans[k];
      fprintf(f,
              ",\n{\"name\":\"%s\",\"ph\":\"X\",\"pid\":1,\"tid\":%u,"
              "\"ts\":%.3f,\"dur\":%.3f}",
              span_names[s->kind], i, (double)s->begin_ns / 1e3,
              (double)(s->end_ns - s->begin_ns) / 1e3);
    }
  }
  fputs("\n]}\n", f);
  bad = ferror(f);
  if (fclose(f) != 0 || bad) {
    shoal__log(rt->cfg.log, rt->cfg.log_user, SHOAL_LOG_ERROR,
               "trace: writing %s failed", path);
    return SHOAL_EIO;
  }
  return SHOAL_OK;
}
