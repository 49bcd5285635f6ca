/* task.c — fork-join on the workers: the slow paths of spawn and sync
 * (publishing private frames to the Chase-Lev deque, waiting on a stolen
 * child by leapfrogging), parallel_for by recursive halving, and the entry
 * of a host thread (shoal_runtime_run).
 *
 * Frames are spawned onto a private stack while every worker is busy and
 * move to the deque only when some worker looks for work, so that the
 * common spawn and sync pay no fence (receiver-initiated publication, as
 * in Acar, Charguéraud and Rainey, "Scheduling parallel programs by work
 * stealing with private deques", PPoPP 2013, and Lace's split deque, van
 * Dijk and van de Pol, Euro-Par 2014 workshops). */
#include <limits.h>

#include "runtime/sched/scheduler.h"

/* How long sync spins for a stolen child before it sleeps on it. */
#define SYNC_SPINS 4096

void shoal__publish(shoal_worker *w) {
  struct shoal__worker_head *h = &w->head;
  uint32_t i;
  for (i = 0; i < h->top; i++) {
    shoal__task *t = (shoal__task *)h->stack[i];
    t->kind = SHOAL__KIND_FRAME;
    atomic_store_explicit(&t->state, SHOAL__TASK_PENDING, memory_order_relaxed);
    atomic_store_explicit(&t->thief, NULL, memory_order_relaxed);
    /* The push's release publishes the fields above with the frame. */
    if (shoal__deque_push_owner(&w->dq, t) != SHOAL_OK)
      break;
  }
  if (i != 0 && i < h->top)
    memmove(h->stack, h->stack + i, (h->top - i) * sizeof *h->stack);
  h->top -= i;
}

void shoal__spawn_slow(shoal_worker *w, shoal_task *pt) {
  shoal__task *t = (shoal__task *)pt;
  struct shoal__worker_head *h = &w->head;
  shoal__publish(w);
  if (h->top == 0) {
    t->kind = SHOAL__KIND_FRAME;
    atomic_store_explicit(&t->state, SHOAL__TASK_PENDING, memory_order_relaxed);
    atomic_store_explicit(&t->thief, NULL, memory_order_relaxed);
    if (shoal__deque_push_owner(&w->dq, t) == SHOAL_OK) {
      shoal__signal_work(w->rt);
      return;
    }
  }
  /* Out of memory for the deque: older frames are still private, so this
   * newer one must be too; with no room there either, it runs now. */
  if (h->top < h->cap) {
    h->stack[h->top++] = pt;
    return;
  }
  t->kind = SHOAL__KIND_RAN;
  t->fn(w, pt);
}

static void wait_stolen(shoal_worker *w, shoal__task *t) {
  unsigned rounds = 0;
  for (;;) {
    uint32_t s = atomic_load_explicit(&t->state, memory_order_acquire);
    shoal_worker *thief;
    shoal__task *x = NULL;
    void *p;
    /* acquire (above): pairs with the thief's exchange to DONE, so the
     * child's results are visible. */
    if (s == SHOAL__TASK_DONE)
      break;
    /* Leapfrogging (Wagner and Calder 1993): the thief's deque holds
     * only the child's own descendants, so helping there shortens the
     * wait without taking on unrelated work. */
    thief = atomic_load_explicit(&t->thief, memory_order_relaxed);
    if (thief != NULL && shoal__deque_size_hint(&thief->dq) != 0 &&
        shoal__deque_steal(&thief->dq, &p) == SHOAL__STEAL_OK) {
      w->local[SHOAL__ST_STEALS]++;
      x = p;
    } else if ((rounds & 63) == 63) {
      x = shoal__steal_round(w);
    }
    if (x != NULL) {
      shoal__set_wanting(w, 0);
      shoal__run_taken(w, x);
      rounds = 0;
      continue;
    }
    if (++rounds == 64)
      shoal__set_wanting(w, 1); /* ask busy workers to publish */
    if (rounds < SYNC_SPINS) {
      shoal__cpu_relax();
      continue;
    }
    shoal__set_wanting(w, 0);
    s = SHOAL__TASK_PENDING;
    if (atomic_compare_exchange_strong_explicit(
            &t->state, &s, SHOAL__TASK_WAITER, memory_order_relaxed,
            memory_order_relaxed) ||
        s == SHOAL__TASK_WAITER)
      shoal__futex_wait(&t->state, SHOAL__TASK_WAITER, 0);
  }
  shoal__set_wanting(w, 0);
}

int shoal__sync_take_slow(shoal_worker *w, shoal_task *pt) {
  shoal__task *t = (shoal__task *)pt;
  if (t->kind == SHOAL__KIND_RAN)
    return 0;
  for (;;) {
    shoal__task *x = shoal__deque_take_owner(&w->dq);
    if (x == t)
      return 1; /* taken back: the caller runs it */
    if (x == NULL)
      break;
    /* Something pushed after t: a closure of a group. */
    shoal__run_taken(w, x);
  }
  wait_stolen(w, t);
  return 0;
}

void shoal_spawn_call(shoal_worker *w, shoal_task *t, shoal_task_fn fn) {
  shoal_spawn(w, t, fn);
}

void shoal_sync_call(shoal_worker *w, shoal_task *t) { shoal_sync(w, t); }

int shoal_sync_take_call(shoal_worker *w, shoal_task *t) {
  return shoal_sync_take(w, t);
}

/* ------------------------------------------------------------------------ */
/* parallel_for                                                             */
/* ------------------------------------------------------------------------ */

typedef struct pfor {
  shoal_range_fn fn;
  void *ctx;
  size_t grain, begin, end;
} pfor;

typedef struct pfor_frame {
  shoal_task t;
  const pfor *p;
  size_t begin, end;
} pfor_frame;

static void pfor_rec(shoal_worker *w, const pfor *p, size_t b, size_t e);

static void pfor_task(shoal_worker *w, shoal_task *t) {
  pfor_frame *f = (pfor_frame *)t;
  pfor_rec(w, f->p, f->begin, f->end);
}

static void pfor_rec(shoal_worker *w, const pfor *p, size_t b, size_t e) {
  if (e - b > p->grain) {
    /* Split on a multiple of the grain: every batch but the last is full. */
    size_t chunks = (e - b) / p->grain + ((e - b) % p->grain != 0);
    pfor_frame f;
    f.p = p;
    f.begin = b + chunks / 2 * p->grain;
    f.end = e;
    shoal_spawn(w, &f.t, pfor_task);
    pfor_rec(w, p, b, f.begin);
    shoal_sync(w, &f.t);
    return;
  }
  if (w->spans != NULL) {
    uint64_t t0 = shoal__now_ns();
    p->fn(p->ctx, b, e);
    shoal__span_add(w, SHOAL__SPAN_BATCH, t0, shoal__now_ns());
  } else {
    p->fn(p->ctx, b, e);
  }
}

static void pfor_root(shoal_worker *w, void *arg) {
  const pfor *p = arg;
  pfor_rec(w, p, p->begin, p->end);
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
  last =
      atomic_exchange_explicit(&rt->entry_last_ns, now, memory_order_relaxed);
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

static void run_tramp(void *arg) {
  run_closure *r = arg;
  r->fn(shoal__current_any(), r->ctx);
}

int shoal_runtime_run(shoal_runtime *rt, shoal_run_fn fn, void *ctx) {
  shoal_worker *w;
  shoal_group g;
  run_closure r;
  int rc;
  if (rt == NULL || fn == NULL)
    return SHOAL_EINVAL;
  if ((w = shoal__current(rt)) != NULL) {
    fn(w, ctx);
    return SHOAL_OK;
  }
  if (atomic_load_explicit(&rt->stopping, memory_order_relaxed))
    return SHOAL_ESTATE;
  note_entry(rt);
  if (shoal__host_try_enter(rt)) {
    fn(rt->w[0], ctx);
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
