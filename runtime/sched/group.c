/* group.c — task groups: closures submitted from any thread and waited for
 * together. Records come from a pool sized at creation, so submitting does
 * not allocate; from outside the runtime they go through the bounded MPMC
 * injection queue, from a task onto the worker's own deque. */
#include "runtime/sched/scheduler.h"

static shoal__group *group_of(shoal_group *g) {
  return (shoal__group *)(void *)g;
}

int shoal_group_init(shoal_group *pg, shoal_runtime *rt) {
  shoal__group *g = group_of(pg);
  if (pg == NULL || rt == NULL)
    return SHOAL_EINVAL;
  memset(pg, 0, sizeof *pg);
  g->rt = rt;
  atomic_init(&g->pending, 0);
  return SHOAL_OK;
}

static void closure_run(shoal_worker *at, shoal__task *t) {
  shoal__closure *c = (shoal__closure *)(void *)t;
  shoal__worker *w = shoal__worker_of(at);
  shoal_closure_fn fn = c->fn;
  void *ctx = c->ctx;
  shoal__group *g = c->group;
  shoal_runtime *rt = w->rt;
  int finished;
  /* The record goes back first: fn may submit more. */
  shoal__mpmc_push_held(&rt->free_q, c);
  w->local[SHOAL__ST_TASKS]++;
  fn(ctx);
  /* acq_rel: fn's effects before the count that the waiter reads with
   * acquire. g may be gone once the count is zero: not touched after. */
  finished = atomic_fetch_sub_explicit(&g->pending, 1,
                                       memory_order_acq_rel) == 1;
  shoal__ext_notify(rt, finished);
}

static int pool_has_room(void *arg) {
  shoal_runtime *rt = arg;
  return atomic_load_explicit(&rt->free_q.tail, memory_order_relaxed) !=
         atomic_load_explicit(&rt->free_q.head, memory_order_relaxed);
}

static int room_or_host_free(void *arg) {
  shoal_runtime *rt = arg;
  return pool_has_room(rt) ||
         atomic_load_explicit(&rt->host, memory_order_relaxed) == 0 ||
         atomic_load_explicit(&rt->stopping, memory_order_relaxed);
}

int shoal__group_submit(shoal__group *g, shoal_closure_fn fn, void *ctx,
                        int block) {
  shoal_runtime *rt;
  shoal__worker *w;
  shoal__closure *c;
  void *rec;
  if (g == NULL || fn == NULL || g->rt == NULL)
    return SHOAL_EINVAL;
  rt = g->rt;
  w = shoal__self(rt);
  for (;;) {
    /* Tasks may still submit while destroy drains what is left. */
    if (w == NULL && atomic_load_explicit(&rt->stopping, memory_order_acquire))
      return SHOAL_ESTATE;
    if (shoal__mpmc_try_pop(&rt->free_q, &rec) == SHOAL_OK)
      break;
    if (!block)
      return SHOAL_EAGAIN;
    if (w != NULL) {
      /* A worker makes room by running work. */
      shoal__task *t = shoal__steal_round(w);
      if (t != NULL) {
        shoal__level l;
        shoal_worker *at = shoal__level_enter(w, &l);
        shoal__run_taken_at(w, at, t);
        shoal__level_leave(w, &l);
      } else
        shoal__cpu_relax();
    } else if (shoal__host_try_enter(rt)) {
      /* Outside the runtime: join as worker 0 and run work until there is
       * room (with one worker, nobody else would). */
      shoal__task *t;
      while (!pool_has_room(rt) && (t = shoal__find_work(rt->w[0])) != NULL)
        shoal__run_taken_at(rt->w[0], rt->w[0]->base, t);
      shoal__host_leave(rt);
    } else {
      shoal__ext_wait(rt, room_or_host_free, rt);
    }
  }
  c = rec;
  c->task.fn = closure_run;
  c->task.kind = SHOAL__KIND_CLOSURE;
  c->fn = fn;
  c->ctx = ctx;
  c->group = g;
  atomic_fetch_add_explicit(&g->pending, 1, memory_order_relaxed);
  if (w != NULL) {
    if (shoal__deque_push_owner(&w->dq, &c->task) != SHOAL_OK) {
      /* No memory: run it now, on a level of its own (the caller's
       * handle is not known here). */
      shoal__level l;
      closure_run(shoal__level_enter(w, &l), &c->task);
      shoal__level_leave(w, &l);
      return SHOAL_OK;
    }
  } else {
    /* The queue has a cell for every record of the pool; the push's
     * release publishes the record's fields. */
    shoal__mpmc_push_held(&rt->inject, c);
  }
  shoal__signal_work(rt);
  return SHOAL_OK;
}

int shoal_group_run(shoal_group *g, shoal_closure_fn fn, void *ctx) {
  return shoal__group_submit(g != NULL ? group_of(g) : NULL, fn, ctx, 1);
}

int shoal_group_try_run(shoal_group *g, shoal_closure_fn fn, void *ctx) {
  return shoal__group_submit(g != NULL ? group_of(g) : NULL, fn, ctx, 0);
}

static int group_done(void *arg) {
  shoal__group *g = arg;
  /* acquire: pairs with the closures' acq_rel decrements. */
  return atomic_load_explicit(&g->pending, memory_order_acquire) == 0;
}

int shoal_group_wait(shoal_group *pg) {
  shoal__group *g = pg != NULL ? group_of(pg) : NULL;
  if (g == NULL || g->rt == NULL)
    return SHOAL_EINVAL;
  (void)shoal__wait_until(g->rt, group_done, g, 0);
  return SHOAL_OK;
}
