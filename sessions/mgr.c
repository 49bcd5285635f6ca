/* mgr.c — the session manager: sessions created and released by account
 * id, the active array with its columns, and the tick that updates every
 * due session in batches on the runtime. Layout and locking: mgr.h. */
#include "sessions/mgr.h"

#include <errno.h>
#include <string.h>

#include "runtime/common.h"
#include "runtime/os.h"
#include "runtime/sched/sched.h"

#define SLAB_SESSIONS_MAX 65536u
#define INTERVAL_MAX 65535u
/* One batch in SAMPLE_EVERY has its host callbacks timed one by one. */
#define SAMPLE_EVERY 32u

/* The manager whose callback the calling thread is in (NULL outside). */
_Thread_local const shoal_mgr *shoal__tls_in_cb;
#define tls_in_cb shoal__tls_in_cb

static int parts_idle(void *arg);

int shoal__mgr_in_callback(const shoal_mgr *mgr) {
  return tls_in_cb == mgr;
}

/* ------------------------------------------------------------------------ */
/* Columns                                                                  */
/* ------------------------------------------------------------------------ */

static void cols_free(shoal__cols *c) {
  if (c == NULL)
    return;
  shoal__free(c->rec);
  shoal__free((void *)c->sess);
  shoal__free(c->ids);
  shoal__free((void *)c->sched);
  shoal__free((void *)c->map);
  shoal__free((void *)c->group);
  shoal__free((void *)c->user);
  shoal__free(c->last_ms);
  shoal__free(c->updates);
  shoal__free(c->activity);
  shoal__free(c->last_active);
  shoal__free(c);
}

/* cap slots and the spare one that swap_slots goes through. */
static void *col_alloc(shoal__cols *c, size_t elem) {
  size_t n = (((size_t)c->cap + 1) * elem + SHOAL_CACHE_LINE - 1) &
             ~(size_t)(SHOAL_CACHE_LINE - 1);
  void *p = shoal__aligned_alloc(SHOAL_CACHE_LINE, n);
  if (p != NULL) {
    memset(p, 0, n);
    c->bytes += n;
  }
  return p;
}

/* Columns for cap slots, with the first n copied from old (may be NULL). */
static shoal__cols *cols_new(uint32_t cap, const shoal__cols *old,
                             uint32_t n) {
  shoal__cols *c = shoal__calloc(1, sizeof *c);
  if (c == NULL)
    return NULL;
  c->cap = cap;
  c->bytes = sizeof *c;
  c->rec = col_alloc(c, sizeof *c->rec);
  c->sess = col_alloc(c, sizeof *c->sess);
  c->ids = col_alloc(c, sizeof *c->ids);
  c->sched = col_alloc(c, sizeof *c->sched);
  c->map = col_alloc(c, sizeof *c->map);
  c->group = col_alloc(c, sizeof *c->group);
  c->user = col_alloc(c, sizeof *c->user);
  c->last_ms = col_alloc(c, sizeof *c->last_ms);
  c->updates = col_alloc(c, sizeof *c->updates);
  c->activity = col_alloc(c, sizeof *c->activity);
  c->last_active = col_alloc(c, sizeof *c->last_active);
  if (c->rec == NULL || c->sess == NULL || c->ids == NULL || c->sched == NULL ||
      c->map == NULL || c->group == NULL || c->user == NULL ||
      c->last_ms == NULL || c->updates == NULL || c->activity == NULL ||
      c->last_active == NULL) {
    cols_free(c);
    return NULL;
  }
  for (uint32_t i = 0; old != NULL && i < n; i++) {
    c->rec[i] = old->rec[i];
    c->sess[i] = old->sess[i];
    c->ids[i] = old->ids[i];
    atomic_init(&c->sched[i], atomic_load_explicit(&old->sched[i],
                                                   memory_order_relaxed));
    atomic_init(&c->map[i], atomic_load_explicit(&old->map[i],
                                                 memory_order_relaxed));
    atomic_init(&c->group[i], atomic_load_explicit(&old->group[i],
                                                   memory_order_relaxed));
    atomic_init(&c->user[i], atomic_load_explicit(&old->user[i],
                                                  memory_order_relaxed));
    c->last_ms[i] = old->last_ms[i];
    c->updates[i] = old->updates[i];
    c->activity[i] = old->activity[i];
    c->last_active[i] = old->last_active[i];
  }
  return c;
}

static shoal__cols *cols_of(shoal_mgr *mgr) {
  /* acquire: pairs with the release in grow_cols. */
  return atomic_load_explicit(&mgr->cols, memory_order_acquire);
}

/* The seqlock around slot moves (mgr.h). Writers hold mu. */
static void moves_begin(shoal_mgr *mgr) {
  uint32_t s = atomic_load_explicit(&mgr->moves, memory_order_relaxed);
  atomic_store_explicit(&mgr->moves, s + 1, memory_order_relaxed);
  /* release fence: a reader that sees a moved value also sees the odd
   * count (its acquire fence pairs with this). */
  atomic_thread_fence(memory_order_release);
}

static void moves_end(shoal_mgr *mgr) {
  uint32_t s = atomic_load_explicit(&mgr->moves, memory_order_relaxed);
  /* release: the moves before it are visible to a reader that reads the
   * even count. */
  atomic_store_explicit(&mgr->moves, s + 1, memory_order_release);
}

void shoal__mgr_wait_tick(shoal_mgr *mgr) {
  while (mgr->ticking)
    pthread_cond_wait(&mgr->tick_done, &mgr->mu);
}

/* Room for cap slots. Under mu, no tick running. */
static int grow_cols(shoal_mgr *mgr, uint32_t cap) {
  shoal__cols *old = cols_of(mgr), *c;
  void **r;
  if (cap <= old->cap)
    return SHOAL_OK;
  r = shoal__realloc(mgr->retired, (mgr->nretired + 1) * sizeof *r);
  if (r == NULL)
    return SHOAL_ENOMEM;
  mgr->retired = r;
  if ((c = cols_new(cap, old, mgr->nact)) == NULL)
    return SHOAL_ENOMEM;
  moves_begin(mgr);
  atomic_store_explicit(&mgr->cols, c, memory_order_release);
  moves_end(mgr);
  mgr->retired[mgr->nretired++] = old;
  mgr->cols_hw = cap + 1; /* cols_new wrote every slot */
  return SHOAL_OK;
}

/* The column tail [from, to) of c, by pages. */
static size_t cols_discard(shoal__cols *c, uint32_t from, uint32_t to) {
#define TAIL(col)                                                         \
  shoal__pages_discard((char *)(void *)(col) + (size_t)from * sizeof *(col), \
                       (size_t)(to - from) * sizeof *(col))
  return TAIL(c->rec) + TAIL(c->sess) + TAIL(c->ids) + TAIL(c->sched) +
         TAIL(c->map) + TAIL(c->group) + TAIL(c->user) + TAIL(c->last_ms) +
         TAIL(c->updates) + TAIL(c->activity) + TAIL(c->last_active);
#undef TAIL
}

size_t shoal__mgr_trim_columns(shoal_mgr *mgr) {
  shoal__cols *c = cols_of(mgr);
  uint32_t from = mgr->nact + 1; /* the spare slot stays */
  size_t n = 0;
  if (from < mgr->cols_hw)
    n = cols_discard(c, from, mgr->cols_hw);
  mgr->cols_hw = from;
  return n;
}

/* ------------------------------------------------------------------------ */
/* Creation and destruction                                                 */
/* ------------------------------------------------------------------------ */

/* What two back-to-back stamps of the fast clock read (the least of 64
 * tries), taken off each timed callback. */
static uint64_t stamp_cost(void) {
  uint64_t best = UINT64_MAX;
  for (int i = 0; i < 64; i++) {
    uint64_t a = shoal__fast_ns(), b = shoal__fast_ns();
    if (b - a < best)
      best = b - a;
  }
  return best;
}

static int check_config(const shoal_config *c) {
  if (c->max_sessions < 1 || c->max_sessions > (1u << 24) ||
      c->batch_size > 256 || c->worker_threads > SHOAL_WORKERS_MAX ||
      c->hibernation_minutes < 1 || c->hibernation_minutes > 10080 ||
      c->defragment_seconds < 1 || c->defragment_seconds > 86400 ||
      c->hysteresis_seconds > 86400 || c->hibernate_per_update < 1 ||
      c->hibernate_per_update > (1u << 24) ||
      c->pool_preallocate > c->max_sessions ||
      c->pool_grow < 1 || c->pool_grow > SLAB_SESSIONS_MAX ||
      c->packets_per_update < 1 || c->packets_per_update > 65536 ||
      c->watchdog_ms > 3600000 || c->callback_budget_ms > 3600000 ||
      c->deferred_per_session < 1 || c->deferred_per_session > (1u << 20) ||
      c->inbox_size < 1 || c->inbox_size > 65536 ||
      c->max_queued_packets < 64 || c->max_queued_packets > (1u << 26))
    return SHOAL_EINVAL;
  return SHOAL_OK;
}

/* The home nodes: those the plan's workers sit on (a slab per node is
 * only worth it where workers of that node take its sessions); each
 * worker's node; with several, a part per node handed to its first worker
 * other than the host's slot. */
static int numa_setup(shoal_mgr *mgr, const shoal_topo **topo) {
  const shoal_plan *p = shoal_runtime_plan(mgr->rt);
  unsigned nw = shoal_runtime_workers(mgr->rt), n = 1;
  *topo = NULL;
  if ((mgr->worker_node = shoal__calloc(nw, sizeof(unsigned))) == NULL)
    return SHOAL_ENOMEM;
  for (unsigned i = 0; p != NULL && i < nw; i++) {
    const shoal_plan_worker *w = shoal_plan_worker_at(p, i);
    unsigned k = w != NULL ? w->numa_logical : 0;
    mgr->worker_node[i] =
        k < SHOAL__POOL_NODES_MAX ? k : SHOAL__POOL_NODES_MAX - 1;
    if (mgr->worker_node[i] + 1 > n)
      n = mgr->worker_node[i] + 1;
  }
  mgr->nodes = n;
  if (n == 1)
    return SHOAL_OK;
  if (shoal_topo_is_this_system(shoal__runtime_topo(mgr->rt)))
    *topo = shoal__runtime_topo(mgr->rt);
  mgr->parts = shoal__aligned_alloc(SHOAL_FALSE_SHARING, n * sizeof *mgr->parts);
  if (mgr->parts == NULL)
    return SHOAL_ENOMEM;
  memset(mgr->parts, 0, n * sizeof *mgr->parts);
  for (unsigned k = 0; k < n; k++) {
    mgr->parts[k].mgr = mgr;
    mgr->parts[k].home = -1;
  }
  for (unsigned i = nw; i-- > 1;)
    mgr->parts[mgr->worker_node[i]].home = (int)i;
  return SHOAL_OK;
}

int shoal_mgr_create(shoal_mgr **out, shoal_runtime *rt,
                     const shoal_config *cfg, const shoal_mgr_callbacks *cb) {
  shoal_mgr *mgr;
  shoal_config c;
  const shoal_topo *topo;
  int rc;
  if (out != NULL)
    *out = NULL;
  if (out == NULL || cb == NULL || cb->update == NULL)
    return SHOAL_EINVAL;
  shoal_config_defaults(&c);
  if (cfg != NULL)
    shoal__copy_opts(&c, sizeof c, cfg, cfg->struct_size);
  c.struct_size = sizeof c;
  if ((rc = check_config(&c)) != SHOAL_OK) {
    shoal__log(c.log, c.log_user, SHOAL_LOG_ERROR,
               "session manager: a configuration field is out of range "
               "(see shoal_config)");
    return rc;
  }
  if ((mgr = shoal__aligned_alloc(SHOAL_FALSE_SHARING, sizeof *mgr)) == NULL)
    return SHOAL_ENOMEM;
  memset(mgr, 0, sizeof *mgr);
  mgr->cfg = c;
  mgr->cb = *cb;
  if (rt == NULL) {
    shoal_runtime_config rc_;
    shoal_runtime_config_defaults(&rc_);
    rc_.workers = c.worker_threads;
    rc_.log = c.log;
    rc_.log_user = c.log_user;
    if ((rc = shoal_runtime_create(&rt, &rc_)) != SHOAL_OK) {
      shoal__free(mgr);
      return rc;
    }
    mgr->own_rt = 1;
  }
  mgr->rt = rt;
  if ((rc = numa_setup(mgr, &topo)) != SHOAL_OK)
    goto fail_rt;
  mgr->sum = shoal__simd_pick(c.enable_simd, &mgr->simd, &mgr->older);
  atomic_init(&mgr->batch_size, c.batch_size);
  atomic_init(&mgr->hib_ms, (uint64_t)c.hibernation_minutes * 60000u);
  atomic_init(&mgr->hyst_ms, (uint64_t)c.hysteresis_seconds * 1000u);
  rc = shoal__pool_init(&mgr->pool, sizeof(shoal__session), c.pool_grow,
                        c.pool_preallocate, c.max_sessions, mgr->nodes, topo);
  if (rc != SHOAL_OK)
    goto fail_rt;
  mgr->pool.owner_resets = 1; /* create_locked resets every field */
  if ((rc = shoal__registry_init(&mgr->reg, &mgr->pool,
                                 c.pool_preallocate)) != SHOAL_OK)
    goto fail_pool;
  rc = SHOAL_ENOMEM;
  mgr->samples = shoal__aligned_alloc(
      SHOAL_FALSE_SHARING,
      shoal_runtime_workers(rt) * sizeof *mgr->samples);
  if (mgr->samples == NULL)
    goto fail_reg;
  memset(mgr->samples, 0, shoal_runtime_workers(rt) * sizeof *mgr->samples);
  if ((rc = shoal__pk_init(mgr)) != SHOAL_OK)
    goto fail_samples;
  rc = SHOAL_ENOMEM;
  atomic_init(&mgr->cols, cols_new(c.max_sessions, NULL, 0));
  mgr->cols_hw = c.max_sessions + 1;
  if (atomic_load(&mgr->cols) == NULL)
    goto fail_samples;
  if (pthread_mutex_init(&mgr->mu, NULL) != 0)
    goto fail_cols;
  if (pthread_cond_init(&mgr->tick_done, NULL) != 0) {
    pthread_mutex_destroy(&mgr->mu);
    goto fail_cols;
  }
  if ((rc = shoal__wd_start(mgr)) != SHOAL_OK) {
    pthread_cond_destroy(&mgr->tick_done);
    pthread_mutex_destroy(&mgr->mu);
    goto fail_cols;
  }
  mgr->w_start_ns = shoal__now_ns();
  mgr->w_cpu0_ns = shoal__mgr_runtime_cpu(mgr);
  shoal__fast_clock_init();
  mgr->stamp_ns = stamp_cost();
  *out = mgr;
  return SHOAL_OK;
fail_cols:
  cols_free(atomic_load(&mgr->cols));
fail_samples:
  shoal__pk_destroy(mgr);
  shoal__free(mgr->samples);
fail_reg:
  shoal__registry_destroy(&mgr->reg);
fail_pool:
  shoal__pool_destroy(&mgr->pool);
fail_rt:
  shoal__free(mgr->parts);
  shoal__free(mgr->worker_node);
  if (mgr->own_rt)
    shoal_runtime_destroy(rt);
  shoal__free(mgr);
  return rc;
}

static shoal__session *rec_at(shoal_mgr *mgr, uint32_t index) {
  return shoal__pool_at(&mgr->pool, index);
}

int shoal_mgr_destroy(shoal_mgr *mgr) {
  shoal_packet_stats ps;
  shoal__cols *c;
  if (mgr == NULL)
    return SHOAL_OK;
  if (shoal__mgr_in_callback(mgr) ||
      atomic_load_explicit(&mgr->updating, memory_order_relaxed))
    return SHOAL_ESTATE;
  /* A part's task may still wait in the inbox of a busy worker. */
  if (mgr->parts != NULL)
    (void)shoal__wait_until(mgr->rt, parts_idle, mgr, 0);
  shoal__wd_stop(mgr);
  /* Every packet accepted and not yet handled is dropped now: said once,
   * with the count, so that the host's accounting can close. */
  if (shoal_mgr_packet_stats(mgr, &ps, 0) == SHOAL_OK && ps.pending != 0)
    shoal__log(mgr->cfg.log, mgr->cfg.log_user, SHOAL_LOG_WARN,
               "session manager destroyed with %llu packets pending (of "
               "%llu sent: %llu handled, %llu dropped before, %llu "
               "rejected); they are dropped",
               (unsigned long long)ps.pending, (unsigned long long)ps.sent,
               (unsigned long long)ps.handled, (unsigned long long)ps.dropped,
               (unsigned long long)ps.rejected);
  c = cols_of(mgr);
  for (uint32_t i = 0; i < mgr->nact; i++) {
    void *user = atomic_load_explicit(&c->user[i], memory_order_relaxed);
    if (mgr->cb.on_release != NULL)
      mgr->cb.on_release(mgr->cb.host, c->ids[i], user);
  }
  if (mgr->hooks != NULL)
    mgr->hooks->destroy(mgr); /* the hibernated ones */
  pthread_cond_destroy(&mgr->tick_done);
  pthread_mutex_destroy(&mgr->mu);
  for (size_t i = 0; i < mgr->nretired; i++)
    cols_free(mgr->retired[i]);
  shoal__free(mgr->retired);
  cols_free(c);
  shoal__pk_destroy(mgr);
  shoal__free(mgr->samples);
  shoal__free(mgr->parts);
  shoal__free(mgr->worker_node);
  shoal__registry_destroy(&mgr->reg);
  shoal__pool_destroy(&mgr->pool);
  if (mgr->own_rt)
    shoal_runtime_destroy(mgr->rt);
  shoal__free(mgr);
  return SHOAL_OK;
}

shoal_runtime *shoal_mgr_runtime(const shoal_mgr *mgr) {
  return mgr != NULL ? mgr->rt : NULL;
}

/* ------------------------------------------------------------------------ */
/* Sessions                                                                 */
/* ------------------------------------------------------------------------ */

/* Slot moves. Under mu, no tick running, inside moves_begin/moves_end. */
static void move_slot(shoal_mgr *mgr, shoal__cols *c, uint32_t from,
                      uint32_t to) {
  c->rec[to] = c->rec[from];
  c->sess[to] = c->sess[from];
  c->ids[to] = c->ids[from];
  atomic_store_explicit(&c->sched[to],
                        atomic_load_explicit(&c->sched[from],
                                             memory_order_relaxed),
                        memory_order_relaxed);
  atomic_store_explicit(&c->map[to],
                        atomic_load_explicit(&c->map[from],
                                             memory_order_relaxed),
                        memory_order_relaxed);
  atomic_store_explicit(&c->group[to],
                        atomic_load_explicit(&c->group[from],
                                             memory_order_relaxed),
                        memory_order_relaxed);
  atomic_store_explicit(&c->user[to],
                        atomic_load_explicit(&c->user[from],
                                             memory_order_relaxed),
                        memory_order_relaxed);
  c->last_ms[to] = c->last_ms[from];
  c->updates[to] = c->updates[from];
  c->activity[to] = c->activity[from];
  c->last_active[to] = c->last_active[from];
  atomic_store_explicit(&rec_at(mgr, c->rec[to])->slot, to,
                        memory_order_relaxed);
}

/* Exchanges two slots through the spare slot past the last one in use
 * (the columns always keep one: see create_locked). */
static void swap_slots(shoal_mgr *mgr, shoal__cols *c, uint32_t a,
                       uint32_t b) {
  uint32_t spare = mgr->nact;
  move_slot(mgr, c, a, spare);
  move_slot(mgr, c, b, a);
  move_slot(mgr, c, spare, b);
}

/* Moves the session at slot p, the first past the segments, into the end
 * of its node's segment: each later segment passes its first session to
 * its own end (mgr.h). Under mu, no tick running. */
static void sort_in(shoal_mgr *mgr, shoal__cols *c, uint32_t p) {
  unsigned k = atomic_load_explicit(&rec_at(mgr, c->rec[p])->node,
                                    memory_order_relaxed);
  for (unsigned j = mgr->nodes - 1; j > k; j--) {
    uint32_t first = mgr->seg_end[j - 1];
    if (first != p) {
      swap_slots(mgr, c, first, p);
      p = first;
    }
    mgr->seg_end[j]++;
  }
  mgr->seg_end[k]++;
}

/* Sorts the sessions waiting past the segments into them. Under mu, no
 * tick running. */
static void join_segments(shoal_mgr *mgr) {
  shoal__cols *c = cols_of(mgr);
  uint32_t *sorted = &mgr->seg_end[mgr->nodes - 1];
  if (mgr->nodes == 1) {
    *sorted = mgr->nact;
    return;
  }
  moves_begin(mgr);
  while (*sorted < mgr->nact)
    sort_in(mgr, c, *sorted);
  moves_end(mgr);
}

/* Takes s out of the active array (mgr.h): its segment's last session
 * fills its slot, each later segment's last fills the hole in front of
 * it, and a session waiting past the segments fills the last hole. Under
 * mu, no tick running. */
static void take_slot(shoal_mgr *mgr, shoal__session *s) {
  shoal__cols *c = cols_of(mgr);
  uint32_t hole = atomic_load_explicit(&s->slot, memory_order_relaxed);
  uint32_t sorted = mgr->seg_end[mgr->nodes - 1];
  uint32_t last = mgr->nact - 1;
  s->user = atomic_load_explicit(&c->user[hole], memory_order_relaxed);
  if (atomic_load_explicit(&c->sched[hole], memory_order_relaxed) == 0)
    atomic_fetch_sub_explicit(&mgr->quarantined, 1, memory_order_relaxed);
  s->where = SHOAL__IN_NONE;
  if (hole < sorted) {
    for (unsigned j = atomic_load_explicit(&s->node, memory_order_relaxed);
         j < mgr->nodes; j++) {
      uint32_t end = --mgr->seg_end[j];
      if (end != hole)
        move_slot(mgr, c, end, hole);
      hole = end;
    }
  }
  if (hole != last)
    move_slot(mgr, c, last, hole);
  mgr->nact = last;
}

static void remove_slot(shoal_mgr *mgr, shoal__session *s) {
  shoal__pk_discard(mgr, s);
  moves_begin(mgr);
  take_slot(mgr, s);
  moves_end(mgr);
}

/* Whatever holds a released session lets it go; its packets are dropped.
 * Under mu, no tick running. */
static void release_now(shoal_mgr *mgr, shoal__session *s) {
  if (s->where == SHOAL__IN_ACTIVE)
    remove_slot(mgr, s);
}

void shoal__mgr_drop_chosen(shoal_mgr *mgr, shoal__session *s) {
  if (s->where == SHOAL__IN_ACTIVE)
    remove_slot(mgr, s);
  s->user = NULL; /* the host freed its state; its record goes too */
}

int shoal__mgr_detach(shoal_mgr *mgr, shoal__session *s, shoal__out *o,
                      shoal__kept *kept) {
  shoal__cols *c = cols_of(mgr);
  uint32_t slot = atomic_load_explicit(&s->slot, memory_order_relaxed);
  uint32_t id = atomic_load_explicit(&s->id, memory_order_relaxed);
  uint64_t w = atomic_load_explicit(&s->in_word, memory_order_relaxed);
  int rc;
  /* The slot's id first: unpublished until the registry names it. */
  if ((rc = shoal__registry_out_set(&mgr->reg, o->slot, id)) != SHOAL_OK)
    return rc;
  /* The inbox closes only while empty. A send reserves on the same word,
   * so one of the two fails: a send that reserved first keeps the session
   * here; one that comes after sees CLOSED and looks again under mu,
   * where it finds the out slot (shoal_session_send). */
  if (SHOAL__IN_COUNT(w) != 0 || (w & SHOAL__IN_CLOSED) ||
      !atomic_compare_exchange_strong_explicit(&s->in_word, &w,
                                               w | SHOAL__IN_CLOSED,
                                               memory_order_acq_rel,
                                               memory_order_relaxed))
    return 0;
  o->id = id;
  o->map = atomic_load_explicit(&c->map[slot], memory_order_relaxed);
  o->group = atomic_load_explicit(&c->group[slot], memory_order_relaxed);
  o->interval = atomic_load_explicit(&s->interval, memory_order_relaxed);
  o->node = (uint16_t)atomic_load_explicit(&s->node, memory_order_relaxed);
  o->flags = 0;
  o->nheld = 0;
  o->held_head = o->held_tail = 0;
  o->wk_next = NULL;
  kept->updates = c->updates[slot];
  kept->activity = c->activity[slot];
  /* Not released (the caller checked, under mu), so the id is in. */
  (void)shoal__registry_replace(&mgr->reg, id, SHOAL__REG_OUT | o->slot);
  moves_begin(mgr);
  take_slot(mgr, s);
  atomic_store_explicit(&s->state, 0, memory_order_relaxed);
  atomic_store_explicit(&s->id, 0, memory_order_relaxed);
  moves_end(mgr);
  s->user = NULL;
  shoal__pk_retire(mgr, s->self); /* empty and closed: back to the pool */
  mgr->nout++;
  return 1;
}

void shoal__mgr_attach(shoal_mgr *mgr, shoal__out *o, uint32_t index,
                       void *user, const shoal__kept *kept) {
  shoal__cols *c = cols_of(mgr);
  uint32_t slot = mgr->nact;
  shoal__session *s = rec_at(mgr, index);
  atomic_store_explicit(&s->state, SHOAL__S_LIVE, memory_order_relaxed);
  atomic_store_explicit(&s->slot, slot, memory_order_relaxed);
  atomic_store_explicit(&s->interval, o->interval, memory_order_relaxed);
  atomic_store_explicit(&s->last_error, 0, memory_order_relaxed);
  atomic_store_explicit(&s->node, shoal__pool_node_of(&mgr->pool, index),
                        memory_order_relaxed);
  atomic_store_explicit(&s->touch_ms, mgr->clock_ms, memory_order_relaxed);
  s->user = user;
  s->self = index;
  s->where = SHOAL__IN_ACTIVE;
  s->woke_ms = mgr->clock_ms;
  c->rec[slot] = index;
  c->sess[slot] = s;
  c->ids[slot] = o->id;
  atomic_store_explicit(&c->sched[slot], SHOAL__SCHED(o->interval, o->id),
                        memory_order_relaxed);
  atomic_store_explicit(&c->map[slot], o->map, memory_order_relaxed);
  atomic_store_explicit(&c->group[slot], o->group, memory_order_relaxed);
  atomic_store_explicit(&c->user[slot], user, memory_order_relaxed);
  c->last_ms[slot] = mgr->clock_ms;
  c->updates[slot] = kept->updates;
  c->activity[slot] = kept->activity;
  c->last_active[slot] = mgr->clock_ms; /* a wake is activity */
  atomic_store_explicit(&s->id, o->id, memory_order_relaxed);
  shoal__pk_open(s);
  shoal__pk_unhold(mgr, s, o); /* before a send can reach the inbox */
  /* release (the registry's): the record above before the id names it. */
  (void)shoal__registry_replace(&mgr->reg, o->id, index);
  mgr->nact = slot + 1;
  if (mgr->cols_hw < slot + 2)
    mgr->cols_hw = slot + 2;
  mgr->nout--;
}

int shoal__mgr_reserve(shoal_mgr *mgr, uint32_t more) {
  shoal__cols *c = cols_of(mgr);
  if ((uint64_t)mgr->nact + more <= c->cap)
    return SHOAL_OK;
  if ((uint64_t)mgr->nact + more > UINT32_MAX - 1)
    return SHOAL_ELIMIT;
  return grow_cols(mgr, mgr->nact + more);
}

void shoal__mgr_join(shoal_mgr *mgr) {
  join_segments(mgr);
}

shoal__session *shoal__mgr_rec(shoal_mgr *mgr, uint32_t index) {
  return rec_at(mgr, index);
}

shoal__cols *shoal__mgr_cols(shoal_mgr *mgr) {
  return cols_of(mgr);
}

shoal__out *shoal__mgr_out(shoal_mgr *mgr, uint32_t id) {
  int64_t v = shoal__registry_find(&mgr->reg, id);
  shoal__out *o;
  if (v < 0 || !(v & SHOAL__REG_OUT) || mgr->hooks == NULL)
    return NULL;
  o = mgr->hooks->out(mgr, (uint32_t)v & ~SHOAL__REG_OUT);
  return o != NULL && o->id == id ? o : NULL;
}

/* Under mu. */
static int create_locked(shoal_mgr *mgr, uint32_t id, void *user) {
  shoal__cols *c = cols_of(mgr);
  shoal__session *s;
  uint32_t index, slot;
  int rc;
  if (id == 0)
    return SHOAL_EINVAL;
  if (shoal__registry_find(&mgr->reg, id) >= 0)
    return SHOAL_EEXIST;
  /* The hibernated sessions keep their place under the maximum. */
  if (mgr->nout > 0 &&
      atomic_load_explicit(&mgr->pool.in_use, memory_order_relaxed) +
              mgr->nout >= mgr->cfg.max_sessions)
    return SHOAL_ELIMIT;
  if ((rc = shoal__pool_get(&mgr->pool, id % mgr->nodes, &index)) !=
      SHOAL_OK)
    return rc;
  if (mgr->nact == c->cap) { /* max raised while a tick ran */
    if (mgr->ticking || (rc = grow_cols(mgr, mgr->nact + 1)) != SHOAL_OK) {
      shoal__pool_put(&mgr->pool, index);
      return mgr->ticking ? SHOAL_ELIMIT : rc;
    }
    c = cols_of(mgr);
  }
  s = rec_at(mgr, index);
  slot = mgr->nact;
  atomic_store_explicit(&s->state, SHOAL__S_LIVE, memory_order_relaxed);
  atomic_store_explicit(&s->slot, slot, memory_order_relaxed);
  atomic_store_explicit(&s->interval, 1, memory_order_relaxed);
  atomic_store_explicit(&s->last_error, 0, memory_order_relaxed);
  atomic_store_explicit(&s->node, shoal__pool_node_of(&mgr->pool, index),
                        memory_order_relaxed);
  s->user = user;
  s->self = index;
  s->where = SHOAL__IN_ACTIVE;
  s->woke_ms = 0;
  atomic_store_explicit(&s->touch_ms, mgr->clock_ms, memory_order_relaxed);
  c->rec[slot] = index;
  c->sess[slot] = s;
  c->ids[slot] = id;
  atomic_store_explicit(&c->sched[slot], SHOAL__SCHED_EVERY,
                        memory_order_relaxed);
  atomic_store_explicit(&c->map[slot], 0, memory_order_relaxed);
  atomic_store_explicit(&c->group[slot], 0, memory_order_relaxed);
  atomic_store_explicit(&c->user[slot], user, memory_order_relaxed);
  c->last_ms[slot] = mgr->clock_ms;
  c->updates[slot] = 0;
  c->activity[slot] = 0;
  c->last_active[slot] = mgr->clock_ms;
  /* Published last: a find that sees the id sees a filled record (the
   * registry's insert is a release under the shard's mutex). */
  atomic_store_explicit(&s->id, id, memory_order_relaxed);
  shoal__pk_open(s); /* after the id: see shoal_session_send */
  if ((rc = shoal__registry_insert(&mgr->reg, id, index)) != SHOAL_OK) {
    shoal__pk_close(s);
    atomic_store_explicit(&s->id, 0, memory_order_relaxed);
    atomic_store_explicit(&s->state, 0, memory_order_relaxed);
    shoal__pk_retire(mgr, index);
    return rc;
  }
  mgr->nact = slot + 1;
  if (mgr->cols_hw < slot + 2)
    mgr->cols_hw = slot + 2;
  if (!mgr->ticking)
    join_segments(mgr);
  return SHOAL_OK;
}

int shoal_session_create(shoal_mgr *mgr, uint32_t id, void *user) {
  int rc;
  if (mgr == NULL)
    return SHOAL_EINVAL;
  pthread_mutex_lock(&mgr->mu);
  rc = create_locked(mgr, id, user);
  pthread_mutex_unlock(&mgr->mu);
  return rc;
}

long shoal_session_create_batch(shoal_mgr *mgr, const uint32_t *ids,
                                void *const *users, size_t n, int *results) {
  long ok = 0;
  if (mgr == NULL || (ids == NULL && n > 0))
    return SHOAL_EINVAL;
  pthread_mutex_lock(&mgr->mu);
  for (size_t i = 0; i < n; i++) {
    int rc = create_locked(mgr, ids[i], users != NULL ? users[i] : NULL);
    ok += rc == SHOAL_OK;
    if (results != NULL)
      results[i] = rc;
  }
  pthread_mutex_unlock(&mgr->mu);
  return ok;
}

/* The active session of id, or NULL. Under mu. */
static shoal__session *live_locked(shoal_mgr *mgr, uint32_t id,
                                   uint32_t *index) {
  int64_t i = shoal__registry_find(&mgr->reg, id);
  shoal__session *s;
  if (i < 0 || (i & SHOAL__REG_OUT))
    return NULL; /* hibernated: shoal__mgr_out */
  s = rec_at(mgr, (uint32_t)i);
  if (atomic_load_explicit(&s->id, memory_order_relaxed) != id ||
      atomic_load_explicit(&s->state, memory_order_relaxed) == 0)
    return NULL;
  if (index != NULL)
    *index = (uint32_t)i;
  return s;
}

/* Hibernated sessions released under mu, whose on_release (user NULL)
 * runs once mu is let go. */
typedef struct out_done {
  size_t n;
  uint32_t ids[64];
} out_done;

static void finish_out(shoal_mgr *mgr, out_done *od) {
  for (size_t k = 0; k < od->n && mgr->cb.on_release != NULL; k++)
    mgr->cb.on_release(mgr->cb.host, od->ids[k], NULL);
  od->n = 0;
}

/* A hibernated session released: its held packets are dropped and its
 * record goes; the host hears of it through od, or from its wake phase
 * when one is running its wake callback. Under mu. */
static void release_out(shoal_mgr *mgr, shoal__out *o, out_done *od) {
  shoal__registry_remove(&mgr->reg, o->id);
  shoal__pk_drop_held(mgr, o);
  mgr->nout--;
  if (!(o->flags & SHOAL__OUT_WAKING))
    od->ids[od->n++] = o->id;
  mgr->hooks->forget(mgr, o);
}

/* Releases id: at once (the session joins the list `*done` for its
 * on_release outside the lock), or at the tick's end. Under mu; od has
 * room for one more. */
static int release_locked(shoal_mgr *mgr, uint32_t id, uint32_t *done,
                          out_done *od) {
  uint32_t index;
  shoal__session *s = live_locked(mgr, id, &index);
  shoal__out *o;
  if (s == NULL) {
    if (id != 0 && (o = shoal__mgr_out(mgr, id)) != NULL) {
      release_out(mgr, o, od);
      return SHOAL_OK;
    }
    return id == 0 ? SHOAL_EINVAL : SHOAL_ENOENT;
  }
  shoal__registry_remove(&mgr->reg, id);
  (void)atomic_exchange_explicit(&s->state, 0, memory_order_acq_rel);
  shoal__pk_close(s);
  if (mgr->ticking) {
    s->next = mgr->deferred;
    mgr->deferred = index + 1;
  } else {
    release_now(mgr, s);
    s->next = *done;
    *done = index + 1;
  }
  return SHOAL_OK;
}

/* Runs on_release for each session of the list and returns them to the
 * pool. Outside mu: the host may call back into the manager. */
static void finish_releases(shoal_mgr *mgr, uint32_t list) {
  while (list != 0) {
    uint32_t index = list - 1;
    shoal__session *s = rec_at(mgr, index);
    uint32_t id = atomic_load_explicit(&s->id, memory_order_relaxed);
    void *user = s->user;
    list = s->next;
    if (mgr->cb.on_release != NULL)
      mgr->cb.on_release(mgr->cb.host, id, user);
    pthread_mutex_lock(&mgr->mu);
    shoal__pk_retire(mgr, index);
    pthread_mutex_unlock(&mgr->mu);
  }
}

int shoal_session_release(shoal_mgr *mgr, uint32_t id) {
  uint32_t done = 0;
  out_done od;
  int rc;
  if (mgr == NULL)
    return SHOAL_EINVAL;
  od.n = 0;
  pthread_mutex_lock(&mgr->mu);
  rc = release_locked(mgr, id, &done, &od);
  pthread_mutex_unlock(&mgr->mu);
  finish_releases(mgr, done);
  finish_out(mgr, &od);
  return rc;
}

long shoal_session_release_batch(shoal_mgr *mgr, const uint32_t *ids,
                                 size_t n, int *results) {
  uint32_t done = 0;
  out_done od;
  long ok = 0;
  if (mgr == NULL || (ids == NULL && n > 0))
    return SHOAL_EINVAL;
  od.n = 0;
  pthread_mutex_lock(&mgr->mu);
  for (size_t i = 0; i < n; i++) {
    int rc;
    if (od.n == sizeof od.ids / sizeof od.ids[0]) {
      pthread_mutex_unlock(&mgr->mu);
      finish_out(mgr, &od);
      pthread_mutex_lock(&mgr->mu);
    }
    rc = release_locked(mgr, ids[i], &done, &od);
    ok += rc == SHOAL_OK;
    if (results != NULL)
      results[i] = rc;
  }
  pthread_mutex_unlock(&mgr->mu);
  finish_releases(mgr, done);
  finish_out(mgr, &od);
  return ok;
}

/* What get says of an active session at slot (c's). */
static void active_view(shoal__session *s, shoal__cols *c, uint32_t slot,
                        shoal_session_info *v) {
  uint32_t sched = atomic_load_explicit(&c->sched[slot], memory_order_relaxed);
  v->interval = atomic_load_explicit(&s->interval, memory_order_relaxed);
  v->map = atomic_load_explicit(&c->map[slot], memory_order_relaxed);
  v->group = atomic_load_explicit(&c->group[slot], memory_order_relaxed);
  v->user = atomic_load_explicit(&c->user[slot], memory_order_relaxed);
  v->state = sched == 0 ? SHOAL_SESSION_QUARANTINED : SHOAL_SESSION_ACTIVE;
  v->last_error = atomic_load_explicit(&s->last_error, memory_order_relaxed);
  v->node = atomic_load_explicit(&s->node, memory_order_relaxed);
}

/* get under mu, where nothing moves: for a hibernated session, and for an
 * active one whose record changed under a lock-free look. */
static int get_locked(shoal_mgr *mgr, uint32_t id, shoal_session_info *v) {
  shoal__session *s = live_locked(mgr, id, NULL);
  shoal__out *o;
  v->id = id;
  if (s != NULL && s->where == SHOAL__IN_ACTIVE) {
    active_view(s, cols_of(mgr),
                atomic_load_explicit(&s->slot, memory_order_relaxed), v);
    return SHOAL_OK;
  }
  if (s != NULL || (o = shoal__mgr_out(mgr, id)) == NULL)
    return SHOAL_ENOENT; /* a release waiting for the tick's end */
  v->interval = o->interval;
  v->map = o->map;
  v->group = o->group;
  v->user = NULL;
  v->state = SHOAL_SESSION_HIBERNATED;
  v->last_error = 0;
  v->node = o->node;
  return SHOAL_OK;
}

int shoal_session_get(shoal_mgr *mgr, uint32_t id, shoal_session_info *out) {
  int64_t i;
  shoal__session *s;
  shoal_session_info v;
  int rc;
  if (mgr == NULL)
    return SHOAL_EINVAL;
  if (id == 0)
    return SHOAL_ENOENT;
  i = shoal__registry_find(&mgr->reg, id);
  if (i >= 0 && !(i & SHOAL__REG_OUT)) {
    s = rec_at(mgr, (uint32_t)i);
    for (;;) {
      /* acquire: pairs with moves_end's release. */
      uint32_t seq = atomic_load_explicit(&mgr->moves, memory_order_acquire);
      shoal__cols *c;
      uint32_t slot;
      if (seq & 1) {
        shoal__cpu_relax();
        continue;
      }
      if (atomic_load_explicit(&s->id, memory_order_relaxed) != id ||
          atomic_load_explicit(&s->state, memory_order_relaxed) == 0)
        break; /* released, or hibernated since the find: under mu */
      c = cols_of(mgr);
      slot = atomic_load_explicit(&s->slot, memory_order_relaxed);
      if (slot >= c->cap)
        continue; /* a move in progress: the check below retries */
      v.id = id;
      active_view(s, c, slot, &v);
      /* acquire fence: the loads above complete before the re-check
       * (pairs with moves_begin's release fence). */
      atomic_thread_fence(memory_order_acquire);
      if (atomic_load_explicit(&mgr->moves, memory_order_relaxed) != seq)
        continue;
      if (out != NULL)
        *out = v;
      return SHOAL_OK;
    }
  }
  /* Hibernated, or changing: under mu, which every change holds. */
  pthread_mutex_lock(&mgr->mu);
  rc = get_locked(mgr, id, &v);
  pthread_mutex_unlock(&mgr->mu);
  if (rc == SHOAL_OK && out != NULL)
    *out = v;
  return rc;
}

/* Runs fn on id's slot under mu, or on its shoal__out when it is
 * hibernated (slot OUT, s NULL); SHOAL_ENOENT when there is none. */
#define OUT UINT32_MAX
typedef int (*slot_fn)(shoal_mgr *mgr, shoal__session *s, shoal__cols *c,
                       uint32_t slot, shoal__out *o, uintptr_t arg);
static int with_slot(shoal_mgr *mgr, uint32_t id, slot_fn fn, uintptr_t arg) {
  shoal__session *s;
  shoal__out *o;
  int rc = SHOAL_ENOENT;
  if (mgr == NULL)
    return SHOAL_EINVAL;
  pthread_mutex_lock(&mgr->mu);
  if ((s = live_locked(mgr, id, NULL)) != NULL &&
      s->where == SHOAL__IN_ACTIVE)
    rc = fn(mgr, s, cols_of(mgr),
            atomic_load_explicit(&s->slot, memory_order_relaxed), NULL, arg);
  else if (s == NULL && (o = shoal__mgr_out(mgr, id)) != NULL)
    rc = fn(mgr, NULL, NULL, OUT, o, arg);
  pthread_mutex_unlock(&mgr->mu);
  return rc;
}

static int put_user(shoal_mgr *mgr, shoal__session *s, shoal__cols *c,
                    uint32_t slot, shoal__out *o, uintptr_t arg) {
  if (slot == OUT)
    return SHOAL_ESTATE; /* its state is the blob until it wakes */
  atomic_store_explicit(&c->user[slot], (void *)arg, memory_order_relaxed);
  return SHOAL_OK;
}
static int put_map(shoal_mgr *mgr, shoal__session *s, shoal__cols *c,
                   uint32_t slot, shoal__out *o, uintptr_t arg) {
  if (slot == OUT)
    o->map = (uint32_t)arg;
  else
    atomic_store_explicit(&c->map[slot], (uint32_t)arg, memory_order_relaxed);
  return SHOAL_OK;
}
static int put_group(shoal_mgr *mgr, shoal__session *s, shoal__cols *c,
                     uint32_t slot, shoal__out *o, uintptr_t arg) {
  if (slot == OUT)
    o->group = (uint32_t)arg;
  else
    atomic_store_explicit(&c->group[slot], (uint32_t)arg, memory_order_relaxed);
  return SHOAL_OK;
}

/* The sched word goes from non-zero to non-zero by CAS, so a quarantine
 * (an exchange to 0 by the tick) is never overwritten. */
static int put_interval(shoal_mgr *mgr, shoal__session *s, shoal__cols *c,
                        uint32_t slot, shoal__out *o, uintptr_t arg) {
  uint32_t id, want, old;
  if (slot == OUT) {
    o->interval = (uint32_t)arg; /* applied when it wakes */
    return SHOAL_OK;
  }
  id = atomic_load_explicit(&s->id, memory_order_relaxed);
  want = SHOAL__SCHED((uint32_t)arg, id);
  atomic_store_explicit(&s->interval, (uint32_t)arg, memory_order_relaxed);
  old = atomic_load_explicit(&c->sched[slot], memory_order_relaxed);
  while (old != 0 &&
         !atomic_compare_exchange_weak_explicit(&c->sched[slot], &old, want,
                                                memory_order_relaxed,
                                                memory_order_relaxed)) {
  }
  return SHOAL_OK;
}

static int unquarantine(shoal_mgr *mgr, shoal__session *s, shoal__cols *c,
                        uint32_t slot, shoal__out *o, uintptr_t arg) {
  uint32_t id, zero = 0, want;
  if (slot == OUT)
    return SHOAL_ESTATE; /* hibernated sessions are never quarantined */
  id = atomic_load_explicit(&s->id, memory_order_relaxed);
  want = SHOAL__SCHED(
      atomic_load_explicit(&s->interval, memory_order_relaxed), id);
  if (!atomic_compare_exchange_strong_explicit(&c->sched[slot], &zero, want,
                                               memory_order_relaxed,
                                               memory_order_relaxed))
    return SHOAL_ESTATE;
  atomic_store_explicit(&s->last_error, 0, memory_order_relaxed);
  atomic_fetch_sub_explicit(&mgr->quarantined, 1, memory_order_relaxed);
  return SHOAL_OK;
}

int shoal_session_set_user(shoal_mgr *mgr, uint32_t id, void *user) {
  return with_slot(mgr, id, put_user, (uintptr_t)user);
}
int shoal_session_set_map(shoal_mgr *mgr, uint32_t id, uint32_t map) {
  return with_slot(mgr, id, put_map, map);
}
int shoal_session_set_group(shoal_mgr *mgr, uint32_t id, uint32_t group) {
  return with_slot(mgr, id, put_group, group);
}
int shoal_session_set_interval(shoal_mgr *mgr, uint32_t id,
                               unsigned interval) {
  if (interval < 1 || interval > INTERVAL_MAX)
    return SHOAL_EINVAL;
  return with_slot(mgr, id, put_interval, interval);
}
int shoal_session_clear_quarantine(shoal_mgr *mgr, uint32_t id) {
  return with_slot(mgr, id, unquarantine, 0);
}

/* ------------------------------------------------------------------------ */
/* Setters                                                                  */
/* ------------------------------------------------------------------------ */

int shoal_mgr_set_batch_size(shoal_mgr *mgr, unsigned batch_size) {
  if (mgr == NULL || batch_size > 256)
    return SHOAL_EINVAL;
  atomic_store_explicit(&mgr->batch_size, batch_size, memory_order_relaxed);
  return SHOAL_OK;
}

int shoal_mgr_set_hibernation_ms(shoal_mgr *mgr, uint64_t ms) {
  if (mgr == NULL || ms < 1)
    return SHOAL_EINVAL;
  atomic_store_explicit(&mgr->hib_ms, ms, memory_order_relaxed);
  return SHOAL_OK;
}

int shoal_mgr_set_max_sessions(shoal_mgr *mgr, unsigned max) {
  int rc;
  if (mgr == NULL || max < 1 || max > (1u << 24))
    return SHOAL_EINVAL;
  if (shoal__mgr_in_callback(mgr))
    return SHOAL_ESTATE;
  pthread_mutex_lock(&mgr->mu);
  shoal__mgr_wait_tick(mgr);
  rc = grow_cols(mgr, max);
  if (rc == SHOAL_OK)
    rc = shoal__pool_set_max(&mgr->pool, max);
  if (rc == SHOAL_OK)
    mgr->cfg.max_sessions = max;
  pthread_mutex_unlock(&mgr->mu);
  return rc;
}

/* ------------------------------------------------------------------------ */
/* The tick                                                                 */
/* ------------------------------------------------------------------------ */

static void quarantine(shoal_mgr *mgr, shoal__cols *c, uint32_t i, int rc) {
  /* exchange: a setter's CAS cannot bring the session back over it. */
  if (atomic_exchange_explicit(&c->sched[i], 0, memory_order_relaxed) == 0)
    return;
  atomic_store_explicit(&rec_at(mgr, c->rec[i])->last_error, rc,
                        memory_order_relaxed);
  atomic_fetch_add_explicit(&mgr->quarantined, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&mgr->quarantines, 1, memory_order_relaxed);
  shoal__log(mgr->cfg.log, mgr->cfg.log_user, SHOAL_LOG_WARN,
             "session %u: update failed (%d); quarantined until the host "
             "clears it", c->ids[i], rc);
}

/* Whether slot i is due this tick; sched 0 (quarantined) never is. */
static inline int due(uint32_t sched, uint64_t tick) {
  return sched == SHOAL__SCHED_EVERY ||
         (sched != 0 && tick % (sched >> 16) == (sched & 0xffffu));
}

/* One batch. The sampled variant times each host callback with the TSC;
 * the plain one carries no clock at all. */
static void run_batch(const shoal__tick *t, unsigned wi, uint32_t b,
                      uint32_t e, int timed, uint64_t *host_ns) {
  shoal__cols *c = t->c;
  const shoal_mgr_callbacks *cb = &t->mgr->cb;
  shoal__pool_chain done = {0, 0, 0};
  _Atomic uint64_t *beat = &t->mgr->samples[wi].beat;
  for (uint32_t i = b; i < e; i++) {
    uint32_t sched = atomic_load_explicit(&c->sched[i], memory_order_relaxed);
    shoal__session *s = c->sess[i];
    void *user;
    uint32_t diff;
    uint64_t t0 = 0;
    int rc;
    if (!due(sched, t->tick))
      continue;
    user = atomic_load_explicit(&c->user[i], memory_order_relaxed);
    /* Packets first (DESIGN.md, "The data path of one tick"). */
    if (SHOAL__IN_COUNT(atomic_load_explicit(&s->in_word,
                                             memory_order_relaxed)) != 0 &&
        shoal__pk_take(t->mgr, wi, s, c->ids[i], user, &done) != 0)
      c->last_active[i] = t->clock;
    diff = (uint32_t)(t->clock - c->last_ms[i]);
    c->last_ms[i] = t->clock;
    if (timed)
      t0 = shoal__fast_ns();
    shoal__beat(beat, SHOAL__CB_UPDATE, c->ids[i]);
    rc = cb->update(cb->host, c->ids[i], user, diff);
    if (timed) {
      uint64_t d = shoal__fast_ns() - t0;
      *host_ns += d > t->mgr->stamp_ns ? d - t->mgr->stamp_ns : 0;
    }
    c->updates[i]++;
    if (rc > 0) {
      c->activity[i] += (unsigned)rc;
      c->last_active[i] = t->clock;
    } else if (rc < 0) {
      quarantine(t->mgr, c, i, rc);
    }
  }
  shoal__beat(beat, SHOAL__CB_NONE, 0);
  shoal__pool_put_chain(&t->mgr->pkts, &done);
}

/* Lazy binary splitting inside a batch (Tzannes, Caragea, Barua and
 * Vishkin, "Lazy Binary-Splitting", PPoPP 2010): a worker runs its batch
 * in chunks of SPLIT_CHUNK sessions and, between chunks, hands the second
 * half of what is left to the runtime only when some worker is looking for
 * work. Thieves take the oldest frames first, so the tick's own batches go
 * before any half of a batch; halves are taken only at the tick's tail,
 * where a whole batch left on one worker would keep the others idle. */
#define SPLIT_CHUNK 8u

typedef struct span_frame {
  shoal_task task;
  const shoal__tick *t;
  uint32_t b, e;
  int timed;
} span_frame;

static void span(shoal_worker *w, const shoal__tick *t, uint32_t b, uint32_t e,
                 int timed);

static void span_task(shoal_worker *w, shoal_task *task) {
  span_frame *f = (span_frame *)task;
  const shoal_mgr *prev = tls_in_cb;
  tls_in_cb = f->t->mgr;
  span(w, f->t, f->b, f->e, f->timed);
  tls_in_cb = prev;
}

static void span(shoal_worker *w, const shoal__tick *t, uint32_t b, uint32_t e,
                 int timed) {
  uint64_t host = 0;
  uint32_t ran = 0;
  unsigned wi = shoal_worker_index(w);
  while (b < e) {
    uint32_t stop = e - b > SPLIT_CHUNK ? b + SPLIT_CHUNK : e;
    run_batch(t, wi, b, stop, timed, &host);
    ran += stop - b;
    b = stop;
    if (e - b >= 2 * SPLIT_CHUNK && shoal__worker_wanted(w)) {
      span_frame f;
      f.t = t;
      f.b = b + (e - b) / 2;
      f.e = e;
      f.timed = timed;
      shoal_spawn(w, &f.task, span_task);
      span(w, t, b, f.b, timed);
      shoal_sync(w, &f.task);
      break;
    }
  }
  if (timed) {
    shoal__mgr_sample *smp = &t->mgr->samples[wi];
    atomic_fetch_add_explicit(&smp->host_ns, host, memory_order_relaxed);
    atomic_fetch_add_explicit(&smp->sessions, ran, memory_order_relaxed);
  }
}

static void tick_range(void *arg, size_t kb, size_t ke) {
  const shoal__tick *t = arg;
  const shoal_mgr *prev = tls_in_cb;
  shoal_worker *w = shoal__current(t->mgr->rt);
  unsigned wi = shoal_worker_index(w);
  tls_in_cb = t->mgr;
  if (t->mgr->worker_node[wi] != t->node)
    atomic_fetch_add_explicit(&t->mgr->samples[wi].away, ke - kb,
                              memory_order_relaxed);
  for (size_t k = kb; k < ke; k++) {
    uint32_t b = t->base + (uint32_t)k * t->bs;
    uint32_t e = b + t->bs < t->end ? b + t->bs : t->end;
    span(w, t, b, e, (k + t->base + t->tick) % SAMPLE_EVERY == 0);
  }
  tls_in_cb = prev;
}

static size_t batches_of(const shoal__tick *t) {
  return (t->end - t->base + t->bs - 1) / t->bs;
}

/* ---- one part per home node --------------------------------------------- */

/* Runs part p if nobody has claimed it yet. */
static void part_claim(shoal__part *p) {
  uint32_t open = PART_OPEN;
  /* acquire: the part's fields, written before it was opened. */
  if (!atomic_compare_exchange_strong_explicit(&p->state, &open, PART_TAKEN,
                                               memory_order_acquire,
                                               memory_order_relaxed))
    return;
  (void)shoal_parallel_for(p->mgr->rt, 0, batches_of(&p->t), 1, tick_range,
                           &p->t);
  /* release: the part's updates before the updating thread sees DONE. */
  atomic_store_explicit(&p->state, PART_DONE, memory_order_release);
  shoal__ext_notify(p->mgr->rt, 1);
}

/* The task handed to a worker of the part's node. */
static void part_task(shoal_worker *w, shoal_task *task) {
  shoal__part *p = (shoal__part *)(void *)task;
  shoal_runtime *rt = p->mgr->rt;
  (void)w;
  for (;;) {
    uint32_t q = 1;
    part_claim(p);
    /* release: destroy and the next tick may reuse the record once they
     * read 0; nothing of p (or of the manager) is touched after this.
     * acquire on failure: the tick's opening of the part, marked 2. */
    if (atomic_compare_exchange_strong_explicit(&p->queued, &q, 0,
                                                memory_order_acq_rel,
                                                memory_order_acquire))
      break;
    atomic_store_explicit(&p->queued, 1, memory_order_relaxed);
  }
  shoal__ext_notify(rt, 1); /* a destroy waiting for it */
}

static int parts_done(void *arg) {
  shoal_mgr *mgr = arg;
  for (unsigned k = 0; k < mgr->nodes; k++) {
    uint32_t st = atomic_load_explicit(&mgr->parts[k].state,
                                       memory_order_acquire);
    if (st == PART_OPEN || st == PART_TAKEN)
      return 0;
  }
  return 1;
}

static int parts_idle(void *arg) {
  shoal_mgr *mgr = arg;
  for (unsigned k = 0; k < mgr->nodes; k++)
    if (atomic_load_explicit(&mgr->parts[k].queued, memory_order_acquire))
      return 0;
  return 1;
}

/* The tick with sessions on several home nodes: each node's segment is a
 * part, handed to a worker of that node, whose neighbours steal its
 * halves first (the plan's victim order is nearest first). The updating
 * thread runs its own node's part, then any part nobody has started, then
 * helps until all are done. */
static void tick_nodes(shoal_worker *w, void *arg) {
  const shoal__tick *t = arg;
  shoal_mgr *mgr = t->mgr;
  unsigned own = mgr->worker_node[shoal_worker_index(w)];
  uint32_t base = 0;
  for (unsigned k = 0; k < mgr->nodes; k++) {
    shoal__part *p = &mgr->parts[k];
    p->t = *t;
    p->t.base = base;
    p->t.end = base = mgr->seg_end[k];
    p->t.node = k;
    /* release: the fields above before a claimer's acquire. */
    atomic_store_explicit(&p->state,
                          p->t.end > p->t.base ? PART_OPEN : PART_IDLE,
                          memory_order_release);
  }
  for (unsigned k = 0; k < mgr->nodes; k++) {
    shoal__part *p = &mgr->parts[k];
    uint32_t q;
    if (k == own || p->home < 0 ||
        atomic_load_explicit(&p->state, memory_order_relaxed) != PART_OPEN)
      continue;
    q = atomic_load_explicit(&p->queued, memory_order_acquire);
    /* acq_rel: the opening above before the mark a finishing task reads;
     * 0 → 1 hands a new task, 1 → 2 asks the one on its way to claim
     * again, 2: already asked. */
    while (q != 2 && !atomic_compare_exchange_weak_explicit(
                         &p->queued, &q, q + 1, memory_order_acq_rel,
                         memory_order_acquire))
      ;
    if (q != 0)
      continue;
    shoal__handoff(mgr->rt, &p->task, part_task, (unsigned)p->home);
  }
  part_claim(&mgr->parts[own]);
  for (unsigned k = 0; k < mgr->nodes; k++)
    part_claim(&mgr->parts[k]);
  shoal__work_until(w, parts_done, mgr);
}

/* Auto batch size: about 8 batches per worker, 16 … 256 sessions each. */
static uint32_t batch_for(uint32_t n, unsigned workers) {
  uint32_t bs = (uint32_t)((n + 8u * workers - 1) / (8u * workers));
  return bs < 16 ? 16 : bs > 256 ? 256 : bs;
}

/* Holding the manager: the update, or a drain. At most one holder
 * (`updating`); while it holds, `ticking` makes creates append past the
 * segments and releases wait on the deferred list. Begins with mu held. */
static int hold_begin(shoal_mgr *mgr) {
  int expect = 0;
  if (shoal__mgr_in_callback(mgr) ||
      !atomic_compare_exchange_strong_explicit(&mgr->updating, &expect, 1,
                                               memory_order_acquire,
                                               memory_order_relaxed))
    return SHOAL_ESTATE;
  pthread_mutex_lock(&mgr->mu);
  mgr->ticking = 1;
  return SHOAL_OK;
}

/* The releases made while holding, taken out now; joins them to the
 * list done for hold_finish. Under mu, no tick running. */
static uint32_t apply_releases(shoal_mgr *mgr, uint32_t done) {
  while (mgr->deferred != 0) {
    shoal__session *s = rec_at(mgr, mgr->deferred - 1);
    uint32_t next = s->next;
    release_now(mgr, s);
    s->next = done;
    done = mgr->deferred;
    mgr->deferred = next;
  }
  return done;
}

/* Under mu again: applies what waited for the hold's end, and returns the
 * released sessions (with those of `done`) for hold_finish. */
static uint32_t hold_end_locked(shoal_mgr *mgr, uint32_t done) {
  mgr->ticking = 0;
  shoal__pk_tick_end(mgr);
  done = apply_releases(mgr, done);
  shoal__pk_zombies(mgr);
  join_segments(mgr); /* the creates made meanwhile */
  return done;
}

static void hold_finish(shoal_mgr *mgr, uint32_t done) {
  pthread_cond_broadcast(&mgr->tick_done);
  pthread_mutex_unlock(&mgr->mu);
  finish_releases(mgr, done);
  /* release: the next holder (another thread, maybe) sees this one's
   * writes (pairs with the acquire CAS in hold_begin). */
  atomic_store_explicit(&mgr->updating, 0, memory_order_release);
}

int shoal__mgr_hold(shoal_mgr *mgr, void (*f)(shoal_mgr *, void *),
                    void *arg) {
  int rc = hold_begin(mgr);
  if (rc != SHOAL_OK)
    return rc;
  pthread_mutex_unlock(&mgr->mu);
  f(mgr, arg);
  pthread_mutex_lock(&mgr->mu);
  hold_finish(mgr, hold_end_locked(mgr, 0));
  return SHOAL_OK;
}

int shoal_mgr_update(shoal_mgr *mgr, uint32_t diff_ms) {
  shoal__tick t;
  uint64_t t0, dt;
  uint32_t done, nb, early = 0;
  int rc;
  if (mgr == NULL)
    return SHOAL_EINVAL;
  t0 = shoal__now_ns();
  if ((rc = hold_begin(mgr)) != SHOAL_OK)
    return rc;
  mgr->tick_no++;
  mgr->clock_ms += diff_ms;
  atomic_store_explicit(&mgr->clock_pub, mgr->clock_ms, memory_order_relaxed);
  if (mgr->hooks != NULL) {
    /* Sessions woken since the last tick join this one. */
    pthread_mutex_unlock(&mgr->mu);
    mgr->hooks->wake_phase(mgr);
    pthread_mutex_lock(&mgr->mu);
    /* A session released meanwhile leaves before the tick: a create of
     * its id made meanwhile is in this tick, and the two must not be
     * updated side by side. */
    early = apply_releases(mgr, 0);
  }
  t.mgr = mgr;
  t.c = cols_of(mgr);
  t.base = 0;
  t.end = mgr->tick_n = mgr->nact;
  t.node = 0;
  t.tick = mgr->tick_no;
  t.clock = mgr->clock_ms;
  t.bs = atomic_load_explicit(&mgr->batch_size, memory_order_relaxed);
  if (t.bs == 0)
    t.bs = batch_for(t.end, shoal_runtime_workers(mgr->rt));
  pthread_mutex_unlock(&mgr->mu);

  if (mgr->nodes == 1) {
    nb = (uint32_t)batches_of(&t);
    rc = shoal_parallel_for(mgr->rt, 0, nb, 1, tick_range, &t);
  } else {
    nb = 0;
    for (unsigned k = 0; k < mgr->nodes; k++) {
      uint32_t len = mgr->seg_end[k] - (k > 0 ? mgr->seg_end[k - 1] : 0);
      nb += (len + t.bs - 1) / t.bs;
    }
    rc = shoal_runtime_run(mgr->rt, tick_nodes, &t);
  }
  if (mgr->hooks != NULL)
    mgr->hooks->hib_phase(mgr); /* between ticks, still holding */

  pthread_mutex_lock(&mgr->mu);
  done = hold_end_locked(mgr, early);
  dt = shoal__now_ns() - t0;
  shoal__hist_add(&mgr->hist, dt);
  mgr->w_ticks++;
  mgr->w_batches += nb;
  mgr->w_main_ns += dt;
  hold_finish(mgr, done);
  return rc;
}
