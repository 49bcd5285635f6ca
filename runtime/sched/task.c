/* task.c — parallel_for by recursive halving on the fork-join frames, and
 * the entry of a host thread or of a task without a handle
 * (shoal_runtime_run). The frames themselves are frames.c's. */
#include "runtime/sched/scheduler.h"

/* ------------------------------------------------------------------------ */
/* parallel_for                                                             */
/* ------------------------------------------------------------------------ */

typedef struct pfor {
  shoal_range_fn fn;
  void *ctx;
  size_t grain, begin, end;
} pfor;

typedef struct pfor_args {
  const pfor *p;
  size_t begin, end;
} pfor_args;
_Static_assert(sizeof(pfor_args) <= SHOAL_FRAME_ARGS, "pfor's frame");

static void pfor_rec(shoal_worker *w, const pfor *p, size_t b, size_t e);

static void pfor_task(shoal_worker *w, void *args) {
  pfor_args *a = args;
  pfor_rec(w, a->p, a->begin, a->end);
}

/* Calls the body with w recorded as the worker's frontier, the handle
 * shoal__current gives a body that takes none (the session tick's). */
static inline __attribute__((always_inline)) void
pfor_leaf(shoal_worker *w, const pfor *p, size_t b, size_t e) {
  shoal__worker *wk = shoal__worker_of(w);
  shoal_worker *saved = wk->frontier;
  wk->frontier = w;
  if (wk->spans != NULL) {
    uint64_t t0 = shoal__now_ns();
    p->fn(p->ctx, b, e);
    shoal__span_add(wk, SHOAL__SPAN_BATCH, t0, shoal__now_ns());
  } else {
    p->fn(p->ctx, b, e);
  }
  wk->frontier = saved;
}

/* Batch k of the range: [begin + k*grain, …). Every batch but the last
 * is full. */
static inline __attribute__((always_inline)) void
pfor_batch(shoal_worker *w, const pfor *p, size_t k) {
  size_t lo = p->begin + k * p->grain;
  pfor_leaf(w, p, lo, p->end - lo > p->grain ? lo + p->grain : p->end);
}

/* Over batches [b, e) of the range: halving counts of batches needs no
 * division. */
static void pfor_rec(shoal_worker *w, const pfor *p, size_t b, size_t e) {
  while (e - b > 1) {
    size_t mid = b + (e - b) / 2;
    pfor_args *a = shoal_args(w);
    shoal_worker *c;
    a->p = p;
    a->begin = mid;
    a->end = e;
    c = shoal_spawn(w, pfor_task);
    if (mid - b == 1) /* half of the leaves: no call of their own */
      pfor_batch(c, p, b);
    else
      pfor_rec(c, p, b, mid);
    if (!shoal_sync_take(w))
      return; /* the upper half ran elsewhere */
    b = mid;  /* taken back: run the upper half here, in place */
  }
  pfor_batch(w, p, b);
}

static void pfor_root(shoal_worker *w, void *arg) {
  const pfor *p = arg;
  pfor_rec(w, p, 0, (p->end - p->begin + p->grain - 1) / p->grain);
}

int shoal_parallel_for(shoal_runtime *rt, size_t begin, size_t end,
                       size_t grain, shoal_range_fn fn, void *ctx) {
  pfor p;
  if (rt == NULL || fn == NULL || end < begin)
    return SHOAL_EINVAL;
  if (begin == end)
    return SHOAL_OK;
  p.fn = fn;
  p.ctx = ctx;
  p.grain = grain != 0 ? grain : 1;
  p.begin = begin;
  p.end = end;
  return shoal_runtime_run(rt, pfor_root, &p);
}

/* ------------------------------------------------------------------------ */
/* Entry from a host thread                                                 */
/* ------------------------------------------------------------------------ */

/* Learns the period at which the host enters (an EWMA, reset when the
 * tempo changes by 2x), so that parked workers can be up just before the
 * next tick. */
static void note_entry(shoal_runtime *rt) {
  uint64_t now, last, iv, p;
  if (rt->cfg.anticipate_us == 0)
    return;
  now = shoal__now_ns();
  /* A load and a store, not an exchange: the line is read by searching
   * workers, and a locked write would wait for it here, at the start of
   * the host's work. Two hosts entering at once lose an interval. */
  last = atomic_load_explicit(&rt->entry_last_ns, memory_order_relaxed);
  atomic_store_explicit(&rt->entry_last_ns, now, memory_order_relaxed);
  if (last == 0 || now <= last)
    return;
  iv = now - last;
  p = atomic_load_explicit(&rt->entry_period_ns, memory_order_relaxed);
  p = p == 0 || iv > 2 * p || 2 * iv < p ? iv : p - p / 8 + iv / 8;
  atomic_store_explicit(&rt->entry_period_ns, p, memory_order_relaxed);
}

typedef struct run_closure {
  shoal_run_fn fn;
  void *ctx;
} run_closure;

/* fn(at, ctx) with `at` recorded as w's frontier for the call. */
static void call_at(shoal__worker *w, shoal_worker *at, shoal_run_fn fn,
                    void *ctx) {
  shoal_worker *saved = w->frontier;
  w->frontier = at;
  fn(at, ctx);
  w->frontier = saved;
}

static void run_tramp(void *arg) {
  run_closure *r = arg;
  shoal__worker *w = shoal__self_any();
  /* closure_run was given a free frame, kept as the frontier. */
  call_at(w, w->frontier, r->fn, r->ctx);
}

int shoal_runtime_run(shoal_runtime *rt, shoal_run_fn fn, void *ctx) {
  shoal__worker *w;
  shoal_group g;
  run_closure r;
  int rc;
  if (rt == NULL || fn == NULL)
    return SHOAL_EINVAL;
  if ((w = shoal__self(rt)) != NULL) {
    /* From a task: its handle is not known here, so fn runs on a level
     * of frames of its own. */
    shoal__level l;
    call_at(w, shoal__level_enter(w, &l), fn, ctx);
    shoal__level_leave(w, &l);
    return SHOAL_OK;
  }
  if (atomic_load_explicit(&rt->stopping, memory_order_relaxed))
    return SHOAL_ESTATE;
  note_entry(rt);
  if (shoal__host_try_enter(rt)) {
    w = rt->w[0];
    call_at(w, w->base, fn, ctx);
    shoal__host_leave(rt);
    return SHOAL_OK;
  }
  /* Another thread holds worker 0: a worker runs it as a closure. */
  r.fn = fn;
  r.ctx = ctx;
  shoal_group_init(&g, rt);
  if ((rc = shoal_group_run(&g, run_tramp, &r)) != SHOAL_OK)
    return rc;
  return shoal_group_wait(&g);
}
