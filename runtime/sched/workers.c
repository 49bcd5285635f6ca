/* workers.c — a runtime's workers over its life: creation, each thread
 * binding itself to its PU by the plan before it allocates its worker;
 * the count changed at run time (shoal_runtime_set_workers), a removed
 * worker handing its tasks back; destruction. */
#include <errno.h>
#include <stdlib.h>

#include "runtime/alloc.h"
#include "runtime/sched/scheduler.h"

void shoal_runtime_config_defaults(shoal_runtime_config *cfg) {
  if (cfg == NULL)
    return;
  memset(cfg, 0, sizeof *cfg);
  cfg->pin = 1;
  cfg->spin_us = 50;
  cfg->anticipate_us = 200;
  cfg->queue_capacity = 65536;
  cfg->struct_size = sizeof *cfg;
}

/* ------------------------------------------------------------------------ */
/* A worker's record                                                        */
/* ------------------------------------------------------------------------ */

static void worker_free(shoal__worker *w) {
  if (w == NULL)
    return;
  shoal__deque_destroy(&w->dq);
  shoal__frames_free(w);
  shoal__free(w->victims);
  shoal__free(w->order);
  shoal__free(w->spans);
  shoal__free(w);
}

/* w's victims, their levels, from worker i of plan p (none when p has
 * fewer workers: w is leaving). */
static void victims_copy(shoal__worker *w, const shoal_plan *p, unsigned i) {
  const shoal_plan_worker *pw =
      i < shoal_plan_worker_count(p) ? shoal_plan_worker_at(p, i) : NULL;
  unsigned l = 0, nv = pw != NULL ? pw->nvictims : 0;
  for (unsigned k = 0; k < nv; k++) {
    w->victims[k] = pw->victims[k];
    while (l < pw->victim_level[k])
      w->level_end[l++] = k;
  }
  w->nvictims = nv;
  w->nlevels = nv > 0 ? pw->victim_level[nv - 1] + 1u : 0;
  while (l < SHOAL_PLAN_LEVELS_MAX)
    w->level_end[l++] = nv;
}

void shoal__victims_load(shoal__worker *w) {
  shoal_runtime *rt = w->rt;
  pthread_mutex_lock(&rt->resize_mu);
  victims_copy(w, rt->plan, w->index);
  w->gen = atomic_load_explicit(&rt->gen, memory_order_relaxed);
  pthread_mutex_unlock(&rt->resize_mu);
}

/* Allocates worker i with its victims from plan p (generation gen);
 * called by the worker's own thread after binding, so that its memory is
 * first touched on its NUMA node. */
static int worker_new(shoal_runtime *rt, unsigned i, const shoal_plan *p,
                      uint32_t gen, shoal__worker **out) {
  shoal__worker *w = shoal__aligned_alloc(SHOAL__FALSE_SHARING, sizeof *w);
  *out = NULL;
  if (w == NULL)
    return SHOAL_ENOMEM;
  memset(w, 0, sizeof *w);
  shoal__inbox_init(&w->inbox, &w->inbox_stub);
  if (shoal__deque_init(&w->dq, 256) != SHOAL_OK) {
    shoal__free(w);
    return SHOAL_ENOMEM;
  }
  w->rt = rt;
  w->victims = shoal__malloc(rt->cap * sizeof(unsigned));
  w->order = shoal__malloc(rt->cap * sizeof(unsigned));
  if (rt->cfg.trace_events != 0) {
    w->span_cap = rt->cfg.trace_events;
    w->spans = shoal__malloc((size_t)w->span_cap * sizeof(shoal__span));
  }
  if (shoal__frames_init(w) != SHOAL_OK || w->victims == NULL ||
      w->order == NULL || (rt->cfg.trace_events != 0 && w->spans == NULL)) {
    worker_free(w);
    return SHOAL_ENOMEM;
  }
  w->rt = rt;
  w->index = i;
  victims_copy(w, p, i);
  w->gen = gen;
  w->rng = 0x9E3779B97F4A7C15ULL * (i + 1);
  atomic_init(&w->park, SHOAL__PARK_AWAKE);
  atomic_init(&w->retired, 0);
  atomic_init(&w->nspans, 0);
  atomic_init(&w->cpu_done, 0);
  atomic_init(&w->left, 0);
  for (unsigned k = 0; k < SHOAL__ST_COUNT; k++)
    atomic_init(&w->stats[k], 0);
  *out = w;
  return SHOAL_OK;
}

/* ------------------------------------------------------------------------ */
/* Worker threads                                                           */
/* ------------------------------------------------------------------------ */

/* Binds the calling thread, worker i, to its PU and its memory to its
 * node (the plan's pu_os_index and numa_os_index). */
static void pin_self(shoal_runtime *rt, unsigned i, int pu_os,
                     unsigned numa_os) {
  int rc;
  if (!rt->cfg.pin || !shoal_topo_is_this_system(rt->topo) || pu_os < 0)
    return;
  rc = shoal__topo_bind_self(rt->topo, (unsigned)pu_os);
  if (rc != SHOAL_OK)
    shoal__log(rt->cfg.log, rt->cfg.log_user, SHOAL_LOG_WARN,
               "worker %u: binding to PU %d refused (%s); it runs unbound", i,
               pu_os, shoal_strerror(rc));
  if (shoal_topo_numa_count(rt->topo) > 1) {
    rc = shoal__topo_membind_self(rt->topo, numa_os);
    if (rc != SHOAL_OK)
      shoal__log(rt->cfg.log, rt->cfg.log_user, SHOAL_LOG_WARN,
                 "worker %u: binding memory to NUMA node %u refused (%s)", i,
                 numa_os, shoal_strerror(rc));
  }
}

/* The tasks a removed worker held, gathered under resize_mu, go to the
 * workers that stay once it is let go (a resubmission may itself meet a
 * removed worker and adopt). */
static void gather(shoal__task **list, shoal__task *t) {
  atomic_store_explicit(&t->link.next, *list != NULL ? &(*list)->link : NULL,
                        memory_order_relaxed);
  *list = t;
}

static void hand_on(shoal_runtime *rt, shoal__task *list) {
  shoal__task *t;
  while ((t = list) != NULL) {
    list = shoal__task_of(
        atomic_load_explicit(&t->link.next, memory_order_relaxed));
    shoal__submit(rt, t, SHOAL__ELSEWHERE, 0);
  }
}

/* A removed worker's tasks go to live workers: its deque (what its tasks
 * pushed and nobody stole), the pinned tasks it held, its inbox. The
 * retired flag goes up first, then a Dekker fence, then the last look at
 * the inbox: a task pushed there after that look is seen by its pusher,
 * whose fence comes after its push, to have landed at a retired worker
 * (shoal__adopt). The inbox has one consumer at a time: resize_mu. */
static void retire(shoal__worker *w) {
  shoal_runtime *rt = w->rt;
  shoal__task *list = NULL, *t;
  pthread_mutex_lock(&rt->resize_mu);
  atomic_store_explicit(&w->retired, 1, memory_order_seq_cst);
  shoal__dekker(rt);
  for (;;) {
    if ((t = shoal__deque_take_owner(&w->dq)) == NULL && (t = w->held) != NULL)
      w->held = shoal__task_of(
          atomic_load_explicit(&t->link.next, memory_order_relaxed));
    if (t == NULL &&
        (t = shoal__task_of(shoal__inbox_pop(&w->inbox))) == NULL)
      break;
    gather(&list, t);
  }
  pthread_mutex_unlock(&rt->resize_mu);
  hand_on(rt, list);
}

void shoal__adopt(shoal_runtime *rt, unsigned i) {
  shoal__worker *o = rt->w[i];
  shoal__task *list = NULL, *t;
  pthread_mutex_lock(&rt->resize_mu);
  /* Again under the lock: a grow may have brought it back meanwhile, and
   * then its new thread takes the inbox. */
  while (atomic_load_explicit(&o->retired, memory_order_relaxed) &&
         (t = shoal__task_of(shoal__inbox_pop(&o->inbox))) != NULL)
    gather(&list, t);
  pthread_mutex_unlock(&rt->resize_mu);
  /* A push still between its exchange and its link stops the pops above
   * short; its pusher sees the worker retired too and adopts the rest. */
  hand_on(rt, list);
}

/* One thread's start; the array is the starter's until the gate opens. */
typedef struct start_arg {
  shoal_runtime *rt;
  const shoal_plan *plan; /* alive until the start's gate opens */
  unsigned index, gate;   /* gate 0: a worker coming back (grow_back) */
  uint32_t gen;
  int pu_os;              /* its PU and node (the plan's) */
  unsigned numa_os;
  shoal__worker *made; /* a new record, for the starter to install */
} start_arg;

static start_arg start_arg_of(shoal_runtime *rt, const shoal_plan *p,
                              unsigned i, unsigned gate, uint32_t gen) {
  const shoal_plan_worker *pw = shoal_plan_worker_at(p, i);
  start_arg a = {rt, p, i, gate, gen, pw->pu_os_index, pw->numa_os_index,
                 NULL};
  return a;
}

static void *worker_main(void *arg);

/* A worker's thread, started on its PU when it is pinned: started on this
 * thread's PU instead, it would wait there for this thread (a host thread
 * bound to worker 0's PU, about to tick) to give the CPU up before it could
 * move. 0 or pthread_create's error. */
static int thread_start(shoal_runtime *rt, pthread_t *th, start_arg *a) {
  pthread_attr_t attr;
  int e = EINVAL;
  pthread_attr_init(&attr);
  if (rt->cfg.pin && a->pu_os >= 0 &&
      shoal__topo_bind_attr(rt->topo, (unsigned)a->pu_os, &attr) == SHOAL_OK)
    e = pthread_create(th, &attr, worker_main, a);
  pthread_attr_destroy(&attr);
  if (e == EINVAL) /* not pinned, or its PU refused: pin_self says so */
    e = pthread_create(th, NULL, worker_main, a);
  return e;
}

static void *worker_main(void *arg) {
  start_arg a = *(start_arg *)arg;
  shoal_runtime *rt = a.rt;
  shoal__worker *w = rt->w[a.index]; /* set: a worker coming back */
  int rc = SHOAL_OK;
  shoal__set_timer_slack(1000); /* anticipation deadlines to ~1 µs */
  pin_self(rt, a.index, a.pu_os, a.numa_os);
  if (a.gate == 0) {
    /* Its record is there and counted: straight into the loop. */
    shoal__free(arg);
  } else {
    if (w == NULL)
      rc = worker_new(rt, a.index, a.plan, a.gen, &w);
    pthread_mutex_lock(&rt->start_mu);
    ((start_arg *)arg)->made = rt->w[a.index] == NULL ? w : NULL;
    if (rc != SHOAL_OK && rt->start_err == SHOAL_OK)
      rt->start_err = rc;
    rt->started++;
    pthread_cond_broadcast(&rt->start_cv);
    while (rt->gate < a.gate)
      pthread_cond_wait(&rt->start_cv, &rt->start_mu);
    pthread_mutex_unlock(&rt->start_mu);
    /* A start that failed as a whole left its workers retired. */
    if (w == NULL || atomic_load_explicit(&w->retired, memory_order_relaxed))
      return NULL;
  }
  shoal__set_self(w);
  (void)shoal__work_until_deadline(w, w->base, NULL, NULL, 0);
  if (w->index >= shoal__live(rt))
    retire(w);
  shoal__stats_flush(w);
  shoal__set_self(NULL);
  pthread_mutex_lock(&rt->resize_mu);
  atomic_fetch_add_explicit(&w->cpu_done, shoal__thread_cpu_ns(),
                            memory_order_relaxed);
  w->has_thread = 0;
  pthread_mutex_unlock(&rt->resize_mu);
  /* release: the hand-back before the flag; pairs with gone()'s acquire.
   * What is left of the thread's exit (its allocator's heap given up, a
   * few tens of µs) is not waited for: it is joined later. */
  atomic_store_explicit(&w->left, 1, memory_order_release);
  shoal__ext_notify(rt, 0);
  return NULL;
}

/* A start: threads for workers from … to-1. */
typedef struct start {
  unsigned from, to, nth; /* nth: threads started */
  pthread_t *th;
  start_arg *a;
} start;

/* Starts threads for st's workers by plan p (generation gen), each ready
 * (its worker allocated, or found) before this returns; they wait at the
 * start's gate (start_end). SHOAL_OK, or the first error. */
static int start_threads(shoal_runtime *rt, const shoal_plan *p, uint32_t gen,
                         start *st) {
  unsigned gate, n = st->to - st->from;
  int rc = SHOAL_OK;
  st->nth = 0;
  st->th = shoal__calloc(n, sizeof *st->th);
  st->a = shoal__calloc(n, sizeof *st->a);
  if (st->th == NULL || st->a == NULL)
    return SHOAL_ENOMEM;
  pthread_mutex_lock(&rt->start_mu);
  rt->started = 0;
  rt->start_err = SHOAL_OK;
  gate = rt->gate + 1;
  pthread_mutex_unlock(&rt->start_mu);
  for (unsigned k = 0; k < n; k++) {
    int e;
    st->a[k] = start_arg_of(rt, p, st->from + k, gate, gen);
    if ((e = pthread_create(&st->th[k], NULL, worker_main, &st->a[k])) != 0) {
      shoal__log(rt->cfg.log, rt->cfg.log_user, SHOAL_LOG_ERROR,
                 "runtime: starting worker %u failed: %s", st->from + k,
                 strerror(e));
      rc = e == ENOMEM ? SHOAL_ENOMEM : SHOAL_EAGAIN;
      break;
    }
    st->nth++;
  }
  pthread_mutex_lock(&rt->start_mu);
  while (rt->started < st->nth)
    pthread_cond_wait(&rt->start_cv, &rt->start_mu);
  if (rc == SHOAL_OK)
    rc = rt->start_err;
  pthread_mutex_unlock(&rt->start_mu);
  return rc;
}

/* The records the threads made go in (retired when the start failed, so
 * that their threads leave; a later start finds them), the threads are
 * recorded for joins and figures, then the gate opens. On failure the
 * threads are joined. */
static void start_end(shoal_runtime *rt, start *st, int ok) {
  pthread_mutex_lock(&rt->resize_mu);
  for (unsigned k = 0; k < st->nth; k++) {
    shoal__worker *w = rt->w[st->from + k];
    if (w == NULL) /* grow installs its records before the count moves */
      rt->w[st->from + k] = w = st->a[k].made;
    if (w == NULL)
      continue;
    atomic_store_explicit(&w->retired, !ok, memory_order_relaxed);
    atomic_store_explicit(&w->left, 0, memory_order_relaxed);
    w->thread = st->th[k];
    w->has_thread = ok;
    w->joinable = ok;
  }
  pthread_mutex_unlock(&rt->resize_mu);
  pthread_mutex_lock(&rt->start_mu);
  rt->gate++;
  pthread_cond_broadcast(&rt->start_cv);
  pthread_mutex_unlock(&rt->start_mu);
  for (unsigned k = 0; !ok && k < st->nth; k++)
    pthread_join(st->th[k], NULL);
  shoal__free(st->th);
  shoal__free(st->a);
}

/* The thread that ran w, once done (it has cleared has_thread). */
static void thread_join(shoal__worker *w) {
  if (w != NULL && w->joinable) {
    pthread_join(w->thread, NULL);
    w->joinable = 0;
  }
}

/* ------------------------------------------------------------------------ */
/* Creation and destruction                                                 */
/* ------------------------------------------------------------------------ */

static void runtime_free(shoal_runtime *rt) {
  if (rt->w != NULL)
    for (unsigned i = 0; i < rt->cap; i++)
      worker_free(rt->w[i]);
  shoal__free(rt->w);
  shoal__mpmc_destroy(&rt->inject);
  shoal__mpmc_destroy(&rt->free_q);
  shoal__free(rt->closures);
  shoal_plan_destroy(rt->plan);
  shoal_topo_destroy(rt->own_topo);
  pthread_mutex_destroy(&rt->start_mu);
  pthread_cond_destroy(&rt->start_cv);
  pthread_mutex_destroy(&rt->resize_mu);
  pthread_mutex_destroy(&rt->size_mu);
  shoal__free(rt);
}

static int runtime_alloc(shoal_runtime *rt) {
  unsigned cap = rt->cfg.queue_capacity;
  int rc;
  if ((rc = shoal__mpmc_init(&rt->inject, cap)) != SHOAL_OK)
    return rc;
  if ((rc = shoal__mpmc_init(&rt->free_q, cap)) != SHOAL_OK)
    return rc;
  rt->closures = shoal__calloc(cap, sizeof *rt->closures);
  rt->w = shoal__calloc(rt->cap, sizeof *rt->w);
  if (rt->closures == NULL || rt->w == NULL)
    return SHOAL_ENOMEM;
  for (unsigned i = 0; i < cap; i++)
    shoal__mpmc_try_push(&rt->free_q, &rt->closures[i]);
  return worker_new(rt, 0, rt->plan, 1, &rt->w[0]);
}

/* The configuration checked, the plan made, the sizes set. */
static int runtime_plan(shoal_runtime *rt) {
  unsigned n, pus;
  int rc;
  if (rt->cfg.workers > SHOAL_WORKERS_MAX ||
      rt->cfg.max_workers > SHOAL_WORKERS_MAX ||
      (rt->cfg.max_workers != 0 && rt->cfg.workers > rt->cfg.max_workers) ||
      rt->cfg.queue_capacity == 0 || rt->cfg.queue_capacity > (1u << 24) ||
      (rt->cfg.pin != 0 && rt->cfg.pin != 1)) {
    shoal__log(rt->cfg.log, rt->cfg.log_user, SHOAL_LOG_ERROR,
               "runtime: workers must be 0…%u and at most max_workers (0…%u), "
               "queue_capacity 1…%u and pin 0 or 1",
               SHOAL_WORKERS_MAX, SHOAL_WORKERS_MAX, 1u << 24);
    return SHOAL_EINVAL;
  }
  rt->topo = rt->cfg.topo;
  if (rt->topo == NULL) {
    shoal_topo_opts to;
    shoal_topo_opts_defaults(&to);
    to.log = rt->cfg.log;
    to.log_user = rt->cfg.log_user;
    if ((rc = shoal_topo_load(&rt->own_topo, &to)) != SHOAL_OK)
      return rc;
    rt->topo = rt->own_topo;
  }
  if ((rc = shoal_plan_compute(&rt->plan, rt->topo, rt->cfg.workers)) !=
      SHOAL_OK)
    return rc;
  n = shoal_plan_worker_count(rt->plan);
  if (rt->cfg.max_workers != 0 && n > rt->cfg.max_workers) {
    shoal__log(rt->cfg.log, rt->cfg.log_user, SHOAL_LOG_ERROR,
               "runtime: one worker per core is %u, over max_workers %u", n,
               rt->cfg.max_workers);
    return SHOAL_EINVAL;
  }
  pus = shoal_topo_pu_count(rt->topo);
  rt->cap = rt->cfg.max_workers != 0 ? rt->cfg.max_workers
            : n > pus                 ? n
            : pus < SHOAL_WORKERS_MAX ? pus
                                      : SHOAL_WORKERS_MAX;
  rt->nwords = (rt->cap + 63) / 64;
  atomic_init(&rt->n, n);
  atomic_init(&rt->gen, 1);
  return SHOAL_OK;
}

int shoal_runtime_create(shoal_runtime **out, const shoal_runtime_config *cfg) {
  shoal_runtime *rt;
  start st;
  unsigned n;
  int rc;
  if (out == NULL)
    return SHOAL_EINVAL;
  *out = NULL;
  if (cfg == NULL)
    return SHOAL_EINVAL;
  rt = shoal__calloc(1, sizeof *rt);
  if (rt == NULL)
    return SHOAL_ENOMEM;
  shoal_runtime_config_defaults(&rt->cfg);
  shoal__copy_opts(&rt->cfg, sizeof rt->cfg, cfg, cfg->struct_size);
  rt->cfg.struct_size = sizeof rt->cfg;
  pthread_mutex_init(&rt->start_mu, NULL);
  pthread_cond_init(&rt->start_cv, NULL);
  pthread_mutex_init(&rt->resize_mu, NULL);
  pthread_mutex_init(&rt->size_mu, NULL);
  if ((rc = runtime_plan(rt)) != SHOAL_OK ||
      (rc = runtime_alloc(rt)) != SHOAL_OK) {
    runtime_free(rt);
    return rc;
  }
  n = shoal__live(rt);
  if (rt->cfg.pin && n > shoal_topo_pu_count(rt->topo))
    shoal__log(rt->cfg.log, rt->cfg.log_user, SHOAL_LOG_WARN,
               "runtime: %u workers for %u PUs; workers past %u run unbound",
               n, shoal_topo_pu_count(rt->topo),
               shoal_topo_pu_count(rt->topo));
  else if (rt->cfg.pin && !shoal_topo_is_this_system(rt->topo))
    shoal__log(rt->cfg.log, rt->cfg.log_user, SHOAL_LOG_INFO,
               "runtime: the topology is not this machine; workers run "
               "unbound");
  rt->poll_relax = shoal__relax_count(SHOAL__POLL_NS);
  shoal__fast_clock_init(); /* the workers' busy time is read from it */
  /* Each worker counts itself in `wanted` when it first goes idle. */
  atomic_init(&rt->wanted, 0);
  st = (start){1, n, 0, NULL, NULL};
  rc = start_threads(rt, rt->plan, 1, &st);
  start_end(rt, &st, rc == SHOAL_OK);
  if (rc != SHOAL_OK) {
    runtime_free(rt);
    return rc;
  }
  *out = rt;
  return SHOAL_OK;
}

/* ------------------------------------------------------------------------ */
/* The count at run time                                                    */
/* ------------------------------------------------------------------------ */

/* Plan p (for m workers) in force: the count, the generation the workers
 * copy their victims from. */
static void plan_swap(shoal_runtime *rt, shoal_plan *p, unsigned m) {
  shoal_plan *old;
  pthread_mutex_lock(&rt->resize_mu);
  old = rt->plan;
  rt->plan = p;
  atomic_fetch_add_explicit(&rt->gen, 1, memory_order_relaxed);
  /* seq_cst: a release (the records of the workers counted before the
   * count; pairs with the acquire in shoal__live) and the first half of
   * shrink's Dekker pattern. */
  atomic_store_explicit(&rt->n, m, memory_order_seq_cst);
  pthread_mutex_unlock(&rt->resize_mu);
  shoal_plan_destroy(old);
}

typedef struct span {
  shoal_runtime *rt;
  unsigned from, to;
} span;

static int gone(void *arg) {
  const span *s = arg;
  for (unsigned i = s->from; i < s->to; i++)
    /* acquire: pairs with the release at the end of worker_main. */
    if (!atomic_load_explicit(&s->rt->w[i]->left, memory_order_acquire))
      return 0;
  return 1;
}

/* Workers n … m-1 that ran before, each with its record: the count
 * moves first and their threads go straight into their loops, so the
 * caller does not wait for them to run (a thread's start and its move to
 * its PU cost a few hundred µs on a VM whose idle vCPUs are slow to
 * wake). Owns p. A thread refused: back to n, and what was sent to the
 * workers meanwhile is adopted. */
static int grow_back(shoal_runtime *rt, shoal_plan *p, unsigned n,
                     unsigned m) {
  shoal_plan *back = NULL;
  span s = {rt, n, n};
  int rc = shoal_plan_compute(&back, rt->topo, n);
  if (rc != SHOAL_OK) {
    shoal_plan_destroy(p);
    return rc;
  }
  pthread_mutex_lock(&rt->resize_mu);
  for (unsigned i = n; i < m; i++) {
    atomic_store_explicit(&rt->w[i]->retired, 0, memory_order_relaxed);
    atomic_store_explicit(&rt->w[i]->left, 0, memory_order_relaxed);
  }
  pthread_mutex_unlock(&rt->resize_mu);
  plan_swap(rt, p, m);
  for (; s.to < m; s.to++) { /* p is rt->plan: only this thread swaps it */
    start_arg *a = shoal__malloc(sizeof *a);
    pthread_t th;
    int e = ENOMEM;
    if (a != NULL) {
      *a = start_arg_of(rt, p, s.to, 0, 0);
      if ((e = thread_start(rt, &th, a)) != 0)
        shoal__free(a);
    }
    if (e != 0) {
      rc = e == ENOMEM ? SHOAL_ENOMEM : SHOAL_EAGAIN;
      break;
    }
    pthread_mutex_lock(&rt->resize_mu);
    rt->w[s.to]->thread = th;
    rt->w[s.to]->has_thread = rt->w[s.to]->joinable = 1;
    pthread_mutex_unlock(&rt->resize_mu);
  }
  if (rc == SHOAL_OK) {
    shoal_plan_destroy(back);
    return SHOAL_OK;
  }
  /* Those without a thread retire here, as retire() does; those started
   * leave on their own, as a shrink's do. */
  plan_swap(rt, back, n);
  pthread_mutex_lock(&rt->resize_mu);
  for (unsigned i = s.to; i < m; i++) {
    atomic_store_explicit(&rt->w[i]->retired, 1, memory_order_seq_cst);
    atomic_store_explicit(&rt->w[i]->left, 1, memory_order_relaxed);
  }
  shoal__dekker(rt);
  pthread_mutex_unlock(&rt->resize_mu);
  for (unsigned i = s.to; i < m; i++)
    shoal__adopt(rt, i);
  for (unsigned i = n; i < s.to; i++)
    shoal__wake_worker(rt, i);
  shoal__ext_wait(rt, gone, &s);
  return rc;
}

/* Workers n … m-1 start (again) on the PUs of plan p: installed and
 * counted before the gate opens, so that they start under the new count.
 * A worker that never ran allocates its record on its own thread (on its
 * node), which this waits for; when every one ran before, grow_back.
 * Owns p. */
static int grow(shoal_runtime *rt, shoal_plan *p, unsigned n, unsigned m) {
  start st = {n, m, 0, NULL, NULL};
  uint32_t gen = atomic_load_explicit(&rt->gen, memory_order_relaxed) + 1;
  int rc, back = 1;
  for (unsigned i = n; i < m; i++) {
    thread_join(rt->w[i]); /* a thread that left, not joined yet */
    back &= rt->w[i] != NULL;
  }
  if (back)
    return grow_back(rt, p, n, m);
  rc = start_threads(rt, p, gen, &st);
  if (rc != SHOAL_OK) {
    start_end(rt, &st, 0);
    shoal_plan_destroy(p);
    return rc;
  }
  /* the records in, then the count: start_end's gate after plan_swap */
  pthread_mutex_lock(&rt->resize_mu);
  for (unsigned k = 0; k < st.nth; k++)
    if (st.a[k].made != NULL)
      rt->w[n + k] = st.a[k].made;
  pthread_mutex_unlock(&rt->resize_mu);
  plan_swap(rt, p, m);
  start_end(rt, &st, 1);
  return SHOAL_OK;
}

/* Workers m … n-1 leave for good once their current task returns; this
 * returns when they have handed their tasks back and their threads are
 * done with them (the threads are joined at the next resize or the
 * destroy). */
static void shrink(shoal_runtime *rt, shoal_plan *p, unsigned n, unsigned m) {
  span s = {rt, m, n};
  plan_swap(rt, p, m);
  /* Dekker fence: the count before the idle bits; pairs with park's
   * (a parking worker sets its bit, fences, then reads the count). */
  shoal__dekker(rt);
  for (unsigned i = m; i < n; i++)
    shoal__wake_worker(rt, i);
  shoal__ext_wait(rt, gone, &s);
}

int shoal_runtime_set_workers(shoal_runtime *rt, unsigned workers) {
  shoal_plan *p;
  unsigned n;
  int rc;
  if (rt == NULL || workers == 0)
    return SHOAL_EINVAL;
  if (shoal__self(rt) != NULL)
    return SHOAL_ESTATE; /* a worker cannot wait for itself to leave */
  if (workers > rt->cap) {
    shoal__log(rt->cfg.log, rt->cfg.log_user, SHOAL_LOG_ERROR,
               "runtime: %u workers asked for, max_workers is %u", workers,
               rt->cap);
    return SHOAL_ELIMIT;
  }
  pthread_mutex_lock(&rt->size_mu);
  n = shoal__live(rt);
  rc = SHOAL_OK;
  if (workers != n &&
      (rc = shoal_plan_compute(&p, rt->topo, workers)) == SHOAL_OK) {
    if (workers > n)
      rc = grow(rt, p, n, workers); /* it owns p */
    else
      shrink(rt, p, n, workers);
  }
  pthread_mutex_unlock(&rt->size_mu);
  if (rc != SHOAL_OK)
    shoal__log(rt->cfg.log, rt->cfg.log_user, SHOAL_LOG_ERROR,
               "runtime: changing to %u workers failed (%s); %u still run",
               workers, shoal_strerror(rc), n);
  return rc;
}

static int drained(void *arg) {
  (void)arg;
  return 1;
}

int shoal_runtime_destroy(shoal_runtime *rt) {
  shoal__task *t;
  unsigned n;
  if (rt == NULL)
    return SHOAL_OK;
  if (shoal__self_any() != NULL && shoal__self_any()->rt == rt)
    return SHOAL_ESTATE;
  n = shoal__live(rt);
  atomic_store_explicit(&rt->stopping, 1, memory_order_seq_cst);
  /* Dekker fence: stopping before the idle bits; pairs with park's. */
  shoal__dekker(rt);
  for (unsigned i = 1; i < n; i++)
    shoal__wake_worker(rt, i);
  for (unsigned i = 1; i < rt->cap; i++)
    thread_join(rt->w[i]);
  /* What was submitted after the workers left (or with one worker, all of
   * it) runs here, as worker 0. */
  while (!shoal__host_try_enter(rt))
    shoal__ext_wait(rt, drained, NULL);
  for (int more = 1; more;) {
    more = 0;
    while ((t = shoal__find_work(rt->w[0])) != NULL)
      shoal__run_taken_at(rt->w[0], rt->w[0]->base, t);
    /* The other workers have left: their inboxes are ours now. */
    for (unsigned i = 1; i < rt->cap; i++) {
      shoal__worker *o = rt->w[i];
      while (o != NULL &&
             ((t = o->held) != NULL ||
              (t = shoal__task_of(shoal__inbox_pop(&o->inbox))) != NULL)) {
        if (t == o->held)
          o->held = shoal__task_of(
              atomic_load_explicit(&t->link.next, memory_order_relaxed));
        shoal__run_taken_at(rt->w[0], rt->w[0]->base, t);
        more = 1;
      }
    }
  }
  shoal__host_leave(rt);
  runtime_free(rt);
  return SHOAL_OK;
}
