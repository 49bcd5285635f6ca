/* maps.c — the map phase of the tick (shoal.h, "The map phase";
 * docs/maps.md): the MAP packets each worker took in the session phase
 * wait in its own table, by map, in the order it took them; after the
 * session phase the updating thread gathers each map's chains (worker by
 * worker) into one job per map, and the jobs run as a parallel_for: a
 * map's packets, then the host's map update, on one thread. A map is one
 * job, so its handlers never overlap; the phase starts after every
 * session update has returned and ends before the update does.
 *
 * Synchronization: a worker's table is its own during the session phase
 * and the holder's after it (the parallel_for's join orders the two); the
 * jobs are the holder's until the phase's parallel_for hands each to one
 * thread. */
#include <stdlib.h>
#include <string.h>

#include "runtime/common.h"
#include "runtime/os.h"
#include "runtime/sched/sched.h"
#include "sessions/mgr.h"

#define MQ_INIT 64u

/* A map's packets on one worker in this tick: a chain through `link`. */
typedef struct shoal__mapq {
  uint32_t map, used;
  shoal__pkt *head, *tail;
} shoal__mapq;

/* A map's turn in the phase, and what it took. */
typedef struct shoal__mapjob {
  uint32_t map;
  uint32_t task, task_tail; /* its map tasks due: tm.due index + 1 */
  shoal__pkt *head, *tail;
  uint64_t n, ns;
} shoal__mapjob;

/* A map's figures since creation or the last reset (shoal_map_stats). */
typedef struct shoal__mapfig {
  uint32_t map, used;
  uint64_t packets, turns, ns;
} shoal__mapfig;

static uint32_t home(uint32_t map, uint32_t cap) {
  return (uint32_t)(((uint64_t)map * UINT64_C(0x9E3779B97F4A7C15)) >> 32) &
         (cap - 1);
}

/* A table of cap entries (a power of two) for worker sample smp. */
static int mq_alloc(shoal__mgr_sample *smp, uint32_t cap) {
  shoal__mapq *q = shoal__calloc(cap, sizeof *q);
  uint32_t *used = shoal__malloc(cap * sizeof *used);
  if (q == NULL || used == NULL) {
    shoal__free(q);
    shoal__free(used);
    return SHOAL_ENOMEM;
  }
  shoal__free(smp->mq);
  shoal__free(smp->mq_used);
  smp->mq = q;
  smp->mq_used = used;
  smp->mq_cap = cap;
  smp->mq_n = 0;
  return SHOAL_OK;
}

int shoal__maps_init(shoal_mgr *mgr) {
  for (unsigned w = 0; w < shoal_runtime_workers_max(mgr->rt); w++)
    if (mq_alloc(&mgr->samples[w], MQ_INIT) != SHOAL_OK)
      return SHOAL_ENOMEM; /* shoal__maps_destroy frees what was made */
  return SHOAL_OK;
}

void shoal__maps_destroy(shoal_mgr *mgr) {
  for (unsigned w = 0; mgr->samples != NULL &&
                       w < shoal_runtime_workers_max(mgr->rt); w++) {
    shoal__free(mgr->samples[w].mq);
    shoal__free(mgr->samples[w].mq_used);
    mgr->samples[w].mq = NULL;
    mgr->samples[w].mq_used = NULL;
  }
  shoal__free(mgr->mjobs);
  mgr->mjobs = NULL;
  shoal__free(mgr->mfigs);
  mgr->mfigs = NULL;
  mgr->mfigs_cap = mgr->mfigs_n = 0;
}

static void chain_add(shoal__pkt **head, shoal__pkt **tail, shoal__pkt *p) {
  if (*tail != NULL)
    atomic_store_explicit(&(*tail)->link.next, &p->link, memory_order_relaxed);
  else
    *head = p;
  *tail = p;
}

void shoal__maps_queue(shoal_mgr *mgr, unsigned wi, uint32_t map,
                       shoal__session *s, shoal__pkt *p) {
  shoal__mgr_sample *smp = &mgr->samples[wi];
  uint32_t i = home(map, smp->mq_cap);
  /* its session, for the phase (the pool's key word is unused in a
   * packet) */
  atomic_store_explicit(&p->key, s->self + 1, memory_order_relaxed);
  atomic_store_explicit(&p->link.next, NULL, memory_order_relaxed);
  for (;; i = (i + 1) & (smp->mq_cap - 1)) {
    shoal__mapq *q = &smp->mq[i];
    if (q->used && q->map == map) {
      chain_add(&q->head, &q->tail, p);
      return;
    }
    if (!q->used)
      break;
  }
  if (smp->mq_n >= smp->mq_cap / 4 * 3) {
    /* Full for this tick (it grows between ticks): the map's packets of
     * this worker run after every map's job, on one thread. */
    chain_add(&smp->spill_head, &smp->spill_tail, p);
    return;
  }
  smp->mq[i] = (shoal__mapq){map, 1, NULL, NULL};
  smp->mq_used[smp->mq_n++] = i;
  chain_add(&smp->mq[i].head, &smp->mq[i].tail, p);
}

/* ---- the phase ---------------------------------------------------------- */

typedef struct phase {
  shoal_mgr *mgr;
  shoal__cols *c;
  uint32_t diff_ms;
  shoal__mapjob *jobs;
  uint32_t njobs, cap;
  uint32_t *index; /* map → job + 1, open addressing over [icap] */
  uint32_t icap;
  int full;        /* a job could not be added: the rest run serially */
  int updates;     /* call the host's map update after each job */
  uint32_t spill_task, spill_task_tail; /* tasks with no job */
} phase;

/* The job of map (made when new); NULL when there is no room. */
static shoal__mapjob *job_of(phase *ph, uint32_t map) {
  uint32_t i = home(map, ph->icap);
  for (;; i = (i + 1) & (ph->icap - 1)) {
    uint32_t j = ph->index[i];
    if (j == 0)
      break;
    if (ph->jobs[j - 1].map == map)
      return &ph->jobs[j - 1];
  }
  if (ph->njobs == ph->cap) {
    ph->full = 1;
    return NULL;
  }
  ph->jobs[ph->njobs] = (shoal__mapjob){map, 0, 0, NULL, NULL, 0, 0};
  ph->index[i] = ++ph->njobs;
  return &ph->jobs[ph->njobs - 1];
}

static void add_map(void *arg, const shoal__mlist *l) {
  (void)job_of(arg, l->key);
}

/* Runs the chain from p on worker wi (or the drain's figures: wi ==
 * workers), ending each packet into e; how many. */
static uint64_t run_chain(phase *ph, unsigned wi, shoal__pkt *p,
                          shoal__ends *e) {
  shoal_mgr *mgr = ph->mgr;
  unsigned nw = shoal_runtime_workers_max(mgr->rt);
  shoal__pkt_counts *k = wi < nw ? &mgr->samples[wi].pk : &mgr->pk.main;
  shoal__hist *wait = wi < nw ? mgr->samples[wi].wait : &mgr->pk.main_wait;
  _Atomic uint64_t *beat = wi < nw ? &mgr->samples[wi].beat : &mgr->main_beat;
  uint64_t now = shoal__fast_ns(), n = 0;
  while (p != NULL) {
    shoal__node *next = atomic_load_explicit(&p->link.next,
                                             memory_order_relaxed);
    shoal__session *s = shoal__mgr_rec(
        mgr, atomic_load_explicit(&p->key, memory_order_relaxed) - 1);
    uint32_t slot = atomic_load_explicit(&s->slot, memory_order_relaxed);
    shoal__pk_run(mgr, shoal__pk_classify(&mgr->pk, p->opcode),
                  atomic_load_explicit(&s->id, memory_order_relaxed),
                  atomic_load_explicit(&ph->c->user[slot],
                                       memory_order_relaxed),
                  p, now, k, wait, beat, SHOAL__CB_PACKET,
                  &mgr->pk.figs[wi], NULL);
    shoal__pkt_end(mgr, &mgr->pk.pool, e, p);
    p = next != NULL ? shoal__pkt_of(next) : NULL;
    n++;
  }
  shoal__beat(beat, SHOAL__CB_NONE, 0);
  return n;
}

/* The map tasks of a chain from task k (tm.due index + 1), in order. */
static void run_tasks(shoal_mgr *mgr, uint32_t k) {
  while (k != 0) {
    shoal__maptask *d = &mgr->tm.due[k - 1];
    d->fn(mgr->cb.host, d->map, d->arg);
    k = d->next;
  }
}

static void job_range(void *arg, size_t b, size_t end) {
  phase *ph = arg;
  shoal_mgr *mgr = ph->mgr;
  const shoal_mgr *prev = shoal__cb_enter(mgr);
  unsigned wi = shoal_worker_index(shoal__current(mgr->rt));
  shoal_map_update_fn fn = ph->updates ? mgr->map_update : NULL;
  shoal__ends e;
  shoal__ends_init(&e);
  for (size_t k = b; k < end; k++) {
    shoal__mapjob *j = &ph->jobs[k];
    uint64_t t0 = shoal__fast_ns();
    j->n = run_chain(ph, wi, j->head, &e);
    run_tasks(mgr, j->task);
    if (fn != NULL)
      fn(mgr->cb.host, j->map, ph->diff_ms);
    j->ns = shoal__fast_ns() - t0;
  }
  shoal__ends_flush(mgr, &e);
  shoal__cb_leave(prev);
}

/* The figures of map (made when new, the table grown to keep its load
 * under a half); NULL when memory is short (the turn is not counted). */
static shoal__mapfig *fig_of(shoal_mgr *mgr, uint32_t map) {
  uint32_t i;
  if (2 * (mgr->mfigs_n + 1) > mgr->mfigs_cap) {
    uint32_t cap = mgr->mfigs_cap ? 2 * mgr->mfigs_cap : 64;
    shoal__mapfig *t = shoal__calloc(cap, sizeof *t), *old = mgr->mfigs;
    if (t == NULL)
      return NULL;
    for (uint32_t k = 0; k < mgr->mfigs_cap; k++)
      if (old[k].used) {
        for (i = home(old[k].map, cap); t[i].used; i = (i + 1) & (cap - 1))
          ;
        t[i] = old[k];
      }
    /* the readers take mu and wait for the tick: none reads it now */
    pthread_mutex_lock(&mgr->mu);
    mgr->mfigs = t;
    mgr->mfigs_cap = cap;
    pthread_mutex_unlock(&mgr->mu);
    shoal__free(old);
  }
  for (i = home(map, mgr->mfigs_cap);; i = (i + 1) & (mgr->mfigs_cap - 1)) {
    shoal__mapfig *f = &mgr->mfigs[i];
    if (f->used && f->map == map)
      return f;
    if (!f->used) {
      *f = (shoal__mapfig){map, 1, 0, 0, 0};
      mgr->mfigs_n++;
      return f;
    }
  }
}

/* Room for n jobs (and their index) in the manager's buffer. */
static int jobs_room(shoal_mgr *mgr, phase *ph, uint32_t n) {
  uint32_t cap = mgr->mjobs_cap, icap;
  if (n > cap) {
    void *j;
    cap = (uint32_t)shoal__pow2_at_least(n);
    icap = 2 * cap;
    if ((j = shoal__realloc(mgr->mjobs, cap * sizeof *ph->jobs +
                                            icap * sizeof *ph->index)) ==
        NULL)
      return SHOAL_ENOMEM;
    mgr->mjobs = j;
    mgr->mjobs_cap = cap;
  }
  ph->jobs = mgr->mjobs;
  ph->cap = mgr->mjobs_cap;
  ph->icap = 2 * mgr->mjobs_cap;
  ph->index = (uint32_t *)(void *)(ph->jobs + ph->cap);
  memset(ph->index, 0, ph->icap * sizeof *ph->index);
  return SHOAL_OK;
}

/* The map tasks due in this update, each to its map's job (in the order
 * they fell due), or to the spill chain when no job can be had. */
static void tasks_to_jobs(shoal_mgr *mgr, phase *ph) {
  shoal__timers *tm = &mgr->tm;
  for (uint32_t k = 0; k < tm->ndue; k++) {
    shoal__mapjob *j = ph->jobs != NULL ? job_of(ph, tm->due[k].map) : NULL;
    uint32_t *head = j != NULL ? &j->task : &ph->spill_task;
    uint32_t *tail = j != NULL ? &j->task_tail : &ph->spill_task_tail;
    tm->due[k].next = 0;
    if (*tail != 0)
      tm->due[*tail - 1].next = k + 1;
    else
      *head = k + 1;
    *tail = k + 1;
  }
}

void shoal__maps_phase(shoal_mgr *mgr, uint32_t diff_ms) {
  unsigned nw = shoal_runtime_workers_max(mgr->rt);
  phase ph;
  uint64_t want = 0;
  int spill = 0;
  memset(&ph, 0, sizeof ph);
  ph.mgr = mgr;
  ph.c = shoal__mgr_cols(mgr);
  ph.diff_ms = diff_ms;
  for (unsigned w = 0; w < nw; w++) {
    want += mgr->samples[w].mq_n;
    spill |= mgr->samples[w].spill_head != NULL;
  }
  if ((ph.updates = mgr->map_update != NULL)) {
    /* the maps now; one made meanwhile may find no room (then its
     * update waits for the next tick: it has no packets in this one) */
    pthread_mutex_lock(&mgr->mu);
    want += mgr->members[0].keys;
    pthread_mutex_unlock(&mgr->mu);
  }
  want += mgr->tm.ndue;
  if (want == 0 && !spill)
    return;
  if (jobs_room(mgr, &ph, (uint32_t)(want < 64 ? 64 : want + want / 4)) !=
      SHOAL_OK) {
    ph.full = 1; /* every worker's packets run as spills, serially */
    ph.jobs = NULL;
  }
  /* Each map once, its chains worker after worker (each session's packets
   * are on the one worker that updated it, in its send order). */
  for (unsigned w = 0; w < nw; w++) {
    shoal__mgr_sample *smp = &mgr->samples[w];
    for (uint32_t u = 0; u < smp->mq_n; u++) {
      shoal__mapq *q = &smp->mq[smp->mq_used[u]];
      shoal__mapjob *j = ph.jobs != NULL ? job_of(&ph, q->map) : NULL;
      if (j == NULL) { /* no room: with the spills */
        atomic_store_explicit(&q->tail->link.next,
                              smp->spill_head != NULL ? &smp->spill_head->link
                                                      : NULL,
                              memory_order_relaxed);
        if (smp->spill_head == NULL)
          smp->spill_tail = q->tail;
        smp->spill_head = q->head;
        continue;
      }
      if (j->tail != NULL)
        atomic_store_explicit(&j->tail->link.next, &q->head->link,
                              memory_order_relaxed);
      else
        j->head = q->head;
      j->tail = q->tail;
    }
  }
  tasks_to_jobs(mgr, &ph);
  if (ph.updates && ph.jobs != NULL)
    shoal__members_each(&mgr->members[0], add_map, &ph);
  if (ph.njobs > 0)
    (void)shoal_parallel_for(mgr->rt, 0, ph.njobs, 1, job_range, &ph);
  for (uint32_t k = 0; k < ph.njobs; k++) {
    shoal__mapfig *f = fig_of(mgr, ph.jobs[k].map);
    if (f != NULL) {
      f->packets += ph.jobs[k].n;
      f->turns++;
      f->ns += ph.jobs[k].ns;
    }
  }
  /* The spills, after every map's job, on one thread: nothing of any map
   * runs beside them. */
  for (unsigned w = 0; w < nw; w++) {
    shoal__mgr_sample *smp = &mgr->samples[w];
    if (smp->spill_head != NULL) {
      shoal__mapjob one = {0, 0, 0, smp->spill_head, smp->spill_tail, 0, 0};
      phase single = ph;
      single.jobs = &one;
      single.njobs = 1;
      single.updates = 0; /* the maps had their update */
      (void)shoal_parallel_for(mgr->rt, 0, 1, 1, job_range, &single);
      smp->spill_head = smp->spill_tail = NULL;
    }
  }
  if (ph.spill_task != 0) { /* tasks whose map found no room: alone */
    const shoal_mgr *prev = shoal__cb_enter(mgr);
    run_tasks(mgr, ph.spill_task);
    shoal__cb_leave(prev);
  }
  mgr->tm.ndue = 0;
  /* The tables for the next tick: emptied, and grown where they filled. */
  for (unsigned w = 0; w < nw; w++) {
    shoal__mgr_sample *smp = &mgr->samples[w];
    uint32_t n = smp->mq_n;
    for (uint32_t u = 0; u < n; u++)
      smp->mq[smp->mq_used[u]].used = 0;
    smp->mq_n = 0;
    if (n > smp->mq_cap / 4)
      (void)mq_alloc(smp, smp->mq_cap * 4); /* kept as is if it fails */
  }
}

/* ---- figures ------------------------------------------------------------ */

static int most_time_first(const void *a, const void *b) {
  const shoal_map_stats *x = a, *y = b;
  if (x->phase_ns != y->phase_ns)
    return x->phase_ns > y->phase_ns ? -1 : 1;
  return x->map < y->map ? -1 : x->map > y->map;
}

long shoal_mgr_map_stats(shoal_mgr *mgr, shoal_map_stats *out, size_t cap,
                         int reset) {
  shoal_map_stats *all;
  uint32_t n = 0;
  if (mgr == NULL || (out == NULL && cap > 0))
    return SHOAL_EINVAL;
  if (shoal__mgr_in_callback(mgr))
    return SHOAL_ESTATE;
  pthread_mutex_lock(&mgr->mu);
  shoal__mgr_wait_tick(mgr);
  if ((all = shoal__malloc((mgr->mfigs_n + 1) * sizeof *all)) == NULL) {
    pthread_mutex_unlock(&mgr->mu);
    return SHOAL_ENOMEM;
  }
  for (uint32_t k = 0; k < mgr->mfigs_cap; k++) {
    shoal__mapfig *f = &mgr->mfigs[k];
    const shoal__mlist *l;
    if (!f->used)
      continue;
    l = shoal__members_lock(&mgr->members[0], f->map);
    all[n] = (shoal_map_stats){f->map, l != NULL ? l->n : 0, f->packets,
                               f->turns, f->ns};
    shoal__members_unlock(&mgr->members[0], f->map);
    n++;
    if (reset)
      f->packets = f->turns = f->ns = 0;
  }
  pthread_mutex_unlock(&mgr->mu);
  qsort(all, n, sizeof *all, most_time_first);
  memcpy(out, all, (n < cap ? n : cap) * sizeof *all);
  shoal__free(all);
  return (long)n;
}

double shoal__maps_biggest_share(shoal_mgr *mgr) {
  uint64_t most = 0, sum = 0;
  for (uint32_t k = 0; k < mgr->mfigs_cap; k++)
    if (mgr->mfigs[k].used) {
      sum += mgr->mfigs[k].ns;
      if (mgr->mfigs[k].ns > most)
        most = mgr->mfigs[k].ns;
    }
  return sum > 0 ? (double)most / (double)sum : 0;
}
