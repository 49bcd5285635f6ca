/* service.c — what the scheduler does for the layers above it (sched.h)
 * and the host: a task handed to one worker, a function run on every
 * worker's own thread, the allocator collected there, and the read-only
 * answers (worker count, plan, a worker's index and runtime). */
#include "runtime/alloc.h"
#include "runtime/sched/scheduler.h"

void shoal__handoff(shoal_runtime *rt, shoal__task *task, shoal__task_fn fn,
                    unsigned worker) {
  task->fn = fn;
  task->kind = SHOAL__KIND_CLOSURE;
  shoal__submit(rt, task, (int)worker, 0);
}

void shoal__work_until(shoal_worker *c, int (*done)(void *), void *arg) {
  (void)shoal__work_until_deadline(shoal__worker_of(c), c, done, arg, 0);
}

int shoal__runtime_stopping(const shoal_runtime *rt) {
  return atomic_load_explicit(&rt->stopping, memory_order_relaxed) != 0;
}

const shoal_topo *shoal__runtime_topo(const shoal_runtime *rt) {
  return rt->topo;
}

unsigned shoal_runtime_workers(const shoal_runtime *rt) {
  return rt != NULL ? shoal__live(rt) : 0;
}

unsigned shoal_runtime_workers_max(const shoal_runtime *rt) {
  return rt != NULL ? rt->cap : 0;
}

const shoal_plan *shoal_runtime_plan(const shoal_runtime *rt) {
  return rt != NULL ? rt->plan : NULL;
}

int shoal_runtime_bind_host(shoal_runtime *rt) {
  const shoal_plan_worker *pw;
  if (rt == NULL)
    return SHOAL_EINVAL;
  pw = shoal_plan_worker_at(rt->plan, 0);
  if (!shoal_topo_is_this_system(rt->topo) || pw->pu_os_index < 0)
    return SHOAL_ENOTSUP;
  return shoal__topo_bind_self(rt->topo, (unsigned)pw->pu_os_index);
}

unsigned shoal_worker_index(const shoal_worker *w) {
  return w != NULL ? shoal__worker_of(w)->index : 0;
}

shoal_runtime *shoal_worker_runtime(const shoal_worker *w) {
  return w != NULL ? shoal__worker_of(w)->rt : NULL;
}

typedef struct each_job {
  void (*fn)(void *);
  void *arg;
  _Atomic unsigned left;
} each_job;

typedef struct each_task {
  shoal__task task; /* first: the task is the struct */
  each_job *job;
} each_task;

static void each_run(shoal_worker *w, shoal__task *t) {
  each_job *j = ((each_task *)(void *)t)->job;
  shoal_runtime *rt = shoal_worker_runtime(w);
  j->fn(j->arg);
  /* release: fn's effects before the count; pairs with each_done. Once
   * the count is 0 the caller may return: j (on its stack) and t (freed
   * by it) are not touched after. */
  if (atomic_fetch_sub_explicit(&j->left, 1, memory_order_acq_rel) == 1)
    shoal__ext_notify(rt, 1);
}

static int each_done(void *p) {
  each_job *j = p;
  return atomic_load_explicit(&j->left, memory_order_acquire) == 0;
}

int shoal__runtime_each(shoal_runtime *rt, void (*fn)(void *), void *arg) {
  shoal__worker *me = shoal__self(rt);
  each_job j;
  each_task *ts;
  unsigned k = 0, n = shoal__live(rt);
  /* A worker removed meanwhile runs none: its task goes to another. */
  if ((ts = shoal__calloc(n, sizeof *ts)) == NULL)
    return SHOAL_ENOMEM;
  j.fn = fn;
  j.arg = arg;
  atomic_init(&j.left, me != NULL ? n - 1 : n);
  for (unsigned i = 0; i < n; i++) {
    if (rt->w[i] == me)
      continue;
    ts[k].job = &j;
    ts[k].task.fn = each_run;
    ts[k].task.kind = SHOAL__KIND_PINNED;
    shoal__submit(rt, &ts[k].task, (int)i, 0);
    k++;
  }
  if (me != NULL)
    fn(arg);
  (void)shoal__wait_until(rt, each_done, &j, 0);
  shoal__free(ts);
  return SHOAL_OK;
}

static void collect_here(void *arg) {
  shoal__alloc_collect_here(*(const int *)arg);
}

void shoal__runtime_collect(shoal_runtime *rt, int force) {
  /* What the collects free goes back at once (runtime/alloc.c). */
  shoal__alloc_release_begin();
  if (shoal__alloc_per_thread() &&
      (rt == NULL ||
       shoal__runtime_each(rt, collect_here, &force) != SHOAL_OK))
    shoal__alloc_collect_here(force); /* this thread's, at least */
  shoal__alloc_release_end();
  shoal__alloc_trim();
}
