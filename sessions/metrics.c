/* metrics.c — the manager's figures: tick times (hist.c), the window's
 * counters, the per-session columns summed with the SIMD path, the CPU
 * split between shoal and the host, sessions by map and the most active
 * sessions. */
#include <stdlib.h>
#include <string.h>

#include "runtime/alloc.h"
#include "runtime/common.h"
#include "runtime/os.h"
#include "runtime/sched/sched.h"
#include "sessions/mgr.h"


/* ------------------------------------------------------------------------ */
/* The window                                                               */
/* ------------------------------------------------------------------------ */

uint64_t shoal__mgr_runtime_cpu(shoal_mgr *mgr) {
  uint64_t sum = 0;
  shoal_worker_stats st;
  for (unsigned w = 1; w < shoal_runtime_workers_max(mgr->rt); w++)
    if (shoal_worker_stats_get(mgr->rt, w, &st) == SHOAL_OK)
      sum += st.cpu_ns;
  return sum;
}

uint64_t shoal__mgr_table_bytes(shoal_mgr *mgr) {
  return atomic_load_explicit(&mgr->cols, memory_order_relaxed)->bytes +
         shoal__registry_bytes(&mgr->reg);
}

int shoal_mgr_metrics_get(shoal_mgr *mgr, shoal_mgr_metrics *out, int reset) {
  shoal__pool_stats ps;
  shoal__cols *c;
  uint64_t now, cpu, host = 0, own = 0, sampled = 0;
  unsigned nw;
  if (mgr == NULL || out == NULL)
    return SHOAL_EINVAL;
  if (shoal__mgr_in_callback(mgr))
    return SHOAL_ESTATE;
  memset(out, 0, sizeof *out);
  nw = shoal_runtime_workers_max(mgr->rt);
  pthread_mutex_lock(&mgr->mu);
  shoal__mgr_wait_tick(mgr);
  c = atomic_load_explicit(&mgr->cols, memory_order_relaxed);
  now = shoal__now_ns();
  cpu = shoal__mgr_runtime_cpu(mgr);
  out->active = mgr->nact;
  out->hibernated = mgr->hooks != NULL ? mgr->hooks->count(mgr, NULL) : 0;
  out->quarantined = atomic_load_explicit(&mgr->quarantined,
                                          memory_order_relaxed);
  out->watchdog_stalls =
      atomic_load_explicit(&mgr->wd_stalls, memory_order_relaxed);
  out->over_budget = atomic_load_explicit(&mgr->wd_over, memory_order_relaxed);
  out->quarantines = atomic_load_explicit(&mgr->quarantines,
                                          memory_order_relaxed);
  out->ticks = mgr->w_ticks;
  if (mgr->w_main_ns > 0) {
    out->session_phase_share =
        (double)mgr->w_session_ns / (double)mgr->w_main_ns;
    out->map_phase_share = (double)mgr->w_map_ns / (double)mgr->w_main_ns;
  }
  out->biggest_map_share = shoal__maps_biggest_share(mgr);
  out->batches = mgr->w_batches;
  out->updates = mgr->sum(c->updates, mgr->nact, reset);
  out->activity = mgr->sum(c->activity, mgr->nact, reset);
  out->window_s = (double)(now - mgr->w_start_ns) * 1e-9;
  out->ticks_per_s = out->window_s > 0 ? (double)out->ticks / out->window_s
                                       : 0;
  out->tick_p50_ns = shoal__hist_quantile(&mgr->hist, 0.50);
  out->tick_p99_ns = shoal__hist_quantile(&mgr->hist, 0.99);
  out->tick_max_ns = mgr->hist.max;
  for (unsigned w = 0; w < nw; w++) {
    host += atomic_load_explicit(&mgr->samples[w].host_ns,
                                 memory_order_relaxed);
    own += atomic_load_explicit(&mgr->samples[w].shoal_ns,
                                memory_order_relaxed);
    sampled += atomic_load_explicit(&mgr->samples[w].timed,
                                    memory_order_relaxed);
    out->batches_away += atomic_load_explicit(&mgr->samples[w].away,
                                              memory_order_relaxed);
  }
  out->home_nodes = mgr->nodes;
  {
    uint64_t h = shoal__pk_handled(mgr);
    if (out->window_s > 0)
      out->packets_per_s = (double)(h - mgr->w_handled0) / out->window_s;
    if (reset)
      mgr->w_handled0 = h;
  }
  /* Measured, not inferred: in the timed batches (one in 32), each host
   * callback is stamped, and so is the batch's whole time, so that
   * shoal's share is a difference inside the same batches. The sampled
   * updates stand for all of the window's. */
  out->overhead_samples = sampled;
  if (sampled > 0) {
    out->host_ns_per_update = (double)host / (double)sampled;
    out->shoal_ns_per_update = (double)own / (double)sampled;
    out->host_ns = (uint64_t)(out->host_ns_per_update * (double)out->updates);
  }
  cpu = cpu - mgr->w_cpu0_ns + mgr->w_main_ns;
  out->shoal_ns = cpu > out->host_ns ? cpu - out->host_ns : 0;
  shoal__pool_stats_get(&mgr->pool, &ps);
  out->pool_bytes = ps.bytes;
  out->pool_allocated = ps.allocated;
  out->pool_available = ps.available;
  out->pool_high_water = ps.high_water;
  out->table_bytes = shoal__mgr_table_bytes(mgr);
  out->simd = mgr->simd;
  out->heap_committed = shoal__alloc_committed();
  if (reset) {
    memset(&mgr->hist, 0, sizeof mgr->hist);
    mgr->w_ticks = mgr->w_batches = mgr->w_main_ns = 0;
    mgr->w_session_ns = mgr->w_map_ns = 0;
    mgr->w_start_ns = now;
    mgr->w_cpu0_ns = shoal__mgr_runtime_cpu(mgr);
    atomic_store_explicit(&mgr->quarantines, 0, memory_order_relaxed);
    for (unsigned w = 0; w < nw; w++) {
      atomic_store_explicit(&mgr->samples[w].host_ns, 0,
                            memory_order_relaxed);
      atomic_store_explicit(&mgr->samples[w].shoal_ns, 0,
                            memory_order_relaxed);
      atomic_store_explicit(&mgr->samples[w].timed, 0, memory_order_relaxed);
      atomic_store_explicit(&mgr->samples[w].away, 0, memory_order_relaxed);
    }
  }
  pthread_mutex_unlock(&mgr->mu);
  return SHOAL_OK;
}

/* ------------------------------------------------------------------------ */
/* Sessions by map; the most active                                         */
/* ------------------------------------------------------------------------ */

static int cmp_map_count(const void *a, const void *b) {
  const shoal_map_count *x = a, *y = b;
  if (x->sessions != y->sessions)
    return x->sessions > y->sessions ? -1 : 1;
  return x->map < y->map ? -1 : x->map > y->map;
}

typedef struct map_runs {
  shoal_map_count *runs;
  size_t n, cap;
} map_runs;

static void count_map(void *arg, const shoal__mlist *l) {
  map_runs *r = arg;
  if (r->n < r->cap) {
    r->runs[r->n].map = l->key;
    r->runs[r->n].sessions = l->n;
  }
  r->n++;
}

int shoal_mgr_maps(shoal_mgr *mgr, shoal_map_count *out, size_t cap,
                   size_t *count) {
  map_runs r = {NULL, 0, 0};
  if (mgr == NULL || count == NULL || (out == NULL && cap > 0))
    return SHOAL_EINVAL;
  if (shoal__mgr_in_callback(mgr))
    return SHOAL_ESTATE;
  /* The maps' count under mu (no map appears or goes meanwhile: every
   * change of the lists is made under it), then the lists themselves. */
  pthread_mutex_lock(&mgr->mu);
  r.cap = mgr->members[0].keys;
  if ((r.runs = shoal__malloc((r.cap + 1) * sizeof *r.runs)) == NULL) {
    pthread_mutex_unlock(&mgr->mu);
    return SHOAL_ENOMEM;
  }
  shoal__members_each(&mgr->members[0], count_map, &r);
  pthread_mutex_unlock(&mgr->mu);
  qsort(r.runs, r.n, sizeof *r.runs, cmp_map_count);
  memcpy(out, r.runs, (r.n < cap ? r.n : cap) * sizeof *r.runs);
  *count = r.n;
  shoal__free(r.runs);
  return SHOAL_OK;
}

/* Min-heap on activity (ties: the higher id is the smaller), so that the
 * root is the weakest of the k kept. */
static int weaker(const shoal_session_activity *a,
                  const shoal_session_activity *b) {
  return a->activity != b->activity ? a->activity < b->activity
                                    : a->id > b->id;
}

static void sift_down(shoal_session_activity *h, size_t n, size_t i) {
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    shoal_session_activity t;
    if (l < n && weaker(&h[l], &h[m]))
      m = l;
    if (r < n && weaker(&h[r], &h[m]))
      m = r;
    if (m == i)
      return;
    t = h[i];
    h[i] = h[m];
    h[m] = t;
    i = m;
  }
}

static int cmp_activity(const void *a, const void *b) {
  const shoal_session_activity *x = a, *y = b;
  return weaker(x, y) ? 1 : weaker(y, x) ? -1 : 0;
}

int shoal_mgr_top(shoal_mgr *mgr, shoal_session_activity *out, size_t k,
                  size_t *count) {
  shoal__cols *c;
  size_t n = 0;
  if (mgr == NULL || count == NULL || (out == NULL && k > 0))
    return SHOAL_EINVAL;
  if (shoal__mgr_in_callback(mgr))
    return SHOAL_ESTATE;
  pthread_mutex_lock(&mgr->mu);
  shoal__mgr_wait_tick(mgr);
  c = atomic_load_explicit(&mgr->cols, memory_order_relaxed);
  for (uint32_t i = 0; i < mgr->nact && k > 0; i++) {
    shoal_session_activity a;
    a.id = c->ids[i];
    a.activity = c->activity[i];
    a.updates = c->updates[i];
    if (n < k) {
      /* sift up */
      size_t j = n++;
      out[j] = a;
      while (j > 0 && weaker(&out[j], &out[(j - 1) / 2])) {
        shoal_session_activity t = out[j];
        out[j] = out[(j - 1) / 2];
        out[(j - 1) / 2] = t;
        j = (j - 1) / 2;
      }
    } else if (weaker(&out[0], &a)) {
      out[0] = a;
      sift_down(out, n, 0);
    }
  }
  pthread_mutex_unlock(&mgr->mu);
  qsort(out, n, sizeof *out, cmp_activity);
  *count = n;
  return SHOAL_OK;
}
