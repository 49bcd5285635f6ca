/* mgr.c — the session manager's lifecycle (create, destroy), sessions
 * created, released and looked up by account id, and the setters. The
 * active array is cols.c's, the tick and the hold tick.c's, a session's
 * way to and from hibernation detach.c's. Layout and locking: mgr.h. */
#include "sessions/mgr.h"

#include <errno.h>
#include <string.h>

#include "runtime/common.h"
#include "runtime/os.h"
#include "runtime/sched/sched.h"

#define INTERVAL_MAX 65535u

/* mgr.h: the manager whose callback the calling thread is in. */
_Thread_local const shoal_mgr *shoal__tls_in_cb;

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

/* The home nodes: those the plan's workers sit on (a slab per node is
 * only worth it where workers of that node take its sessions); each
 * worker's node; with several, a part per node handed to its first worker
 * other than the host's slot. */
static int numa_setup(shoal_mgr *mgr, const shoal_topo **topo) {
  unsigned nw = shoal_runtime_workers(mgr->rt), n = 1;
  unsigned max = shoal_runtime_workers_max(mgr->rt);
  shoal_plan *p = NULL;
  *topo = NULL;
  /* Every worker there can be: a plan keeps each worker's PU whatever the
   * count (shoal_runtime_set_workers), so the plan for the most workers
   * gives each one's node. The home nodes are the running workers'. */
  if ((mgr->worker_node = shoal__calloc(max, sizeof(unsigned))) == NULL ||
      shoal_plan_compute(&p, shoal__runtime_topo(mgr->rt), max) != SHOAL_OK) {
    shoal_plan_destroy(p);
    return SHOAL_ENOMEM;
  }
  for (unsigned i = 0; i < max; i++) {
    unsigned k = shoal_plan_worker_at(p, i)->numa_logical;
    mgr->worker_node[i] =
        k < SHOAL__POOL_NODES_MAX ? k : SHOAL__POOL_NODES_MAX - 1;
    if (i < nw && mgr->worker_node[i] + 1 > n)
      n = mgr->worker_node[i] + 1;
  }
  shoal_plan_destroy(p);
  for (unsigned i = nw; i < max; i++) /* a worker added later: a home node */
    mgr->worker_node[i] %= n;
  mgr->nodes = n;
  if (n == 1)
    return SHOAL_OK;
  if (shoal_topo_is_this_system(shoal__runtime_topo(mgr->rt)))
    *topo = shoal__runtime_topo(mgr->rt);
  mgr->parts =
      shoal__aligned_alloc(SHOAL__FALSE_SHARING, n * sizeof *mgr->parts);
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
  char why[160];
  int rc;
  if (out != NULL)
    *out = NULL;
  if (out == NULL || cb == NULL || cb->update == NULL)
    return SHOAL_EINVAL;
  shoal_config_defaults(&c);
  if (cfg != NULL)
    shoal__copy_opts(&c, sizeof c, cfg, cfg->struct_size);
  c.struct_size = sizeof c;
  if ((rc = shoal__config_check(&c, why, sizeof why)) != SHOAL_OK) {
    shoal__log(c.log, c.log_user, SHOAL_LOG_ERROR,
               "session manager: configuration refused: %s", why);
    return rc;
  }
  if ((mgr = shoal__aligned_alloc(SHOAL__FALSE_SHARING, sizeof *mgr)) == NULL)
    return SHOAL_ENOMEM;
  memset(mgr, 0, sizeof *mgr);
  mgr->cfg = c;
  mgr->cb = *cb;
  if (rt == NULL) {
    shoal_runtime_config rc_;
    shoal_runtime_config_defaults(&rc_);
    rc_.workers = c.worker_threads;
    rc_.max_workers = c.max_worker_threads;
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
                        c.pool_preallocate, SHOAL__SESSIONS_MAX, mgr->nodes,
                        topo);
  if (rc != SHOAL_OK)
    goto fail_rt;
  mgr->pool.owner_resets = 1; /* create_locked resets every field */
  if ((rc = shoal__registry_init(&mgr->reg, &mgr->pool, c.pool_preallocate)) !=
      SHOAL_OK)
    goto fail_pool;
  rc = SHOAL_ENOMEM;
  mgr->samples = shoal__aligned_alloc(
      SHOAL__FALSE_SHARING, shoal_runtime_workers_max(rt) * sizeof *mgr->samples);
  if (mgr->samples == NULL)
    goto fail_reg;
  memset(mgr->samples, 0,
         shoal_runtime_workers_max(rt) * sizeof *mgr->samples);
  if ((rc = shoal__pk_init(mgr)) != SHOAL_OK)
    goto fail_samples;
  if ((rc = shoal__timers_init(mgr)) != SHOAL_OK)
    goto fail_samples;
  rc = SHOAL_ENOMEM;
  atomic_init(&mgr->cols, shoal__cols_new(c.max_sessions, NULL, 0));
  mgr->cols_hw = c.max_sessions + 1;
  if (atomic_load(&mgr->cols) == NULL)
    goto fail_samples;
  if (shoal__members_init(&mgr->members[0]) != SHOAL_OK)
    goto fail_cols;
  if (shoal__members_init(&mgr->members[1]) != SHOAL_OK) {
    shoal__members_destroy(&mgr->members[0]);
    goto fail_cols;
  }
  if (pthread_mutex_init(&mgr->mu, NULL) != 0)
    goto fail_members;
  if (pthread_cond_init(&mgr->tick_done, NULL) != 0) {
    pthread_mutex_destroy(&mgr->mu);
    goto fail_members;
  }
  if ((rc = shoal__wd_start(mgr)) != SHOAL_OK) {
    pthread_cond_destroy(&mgr->tick_done);
    pthread_mutex_destroy(&mgr->mu);
    goto fail_members;
  }
  mgr->w_start_ns = shoal__now_ns();
  mgr->w_cpu0_ns = shoal__mgr_runtime_cpu(mgr);
  shoal__fast_clock_init();
  mgr->stamp_ns = stamp_cost();
  *out = mgr;
  return SHOAL_OK;
fail_members:
  shoal__members_destroy(&mgr->members[0]);
  shoal__members_destroy(&mgr->members[1]);
fail_cols:
  shoal__cols_free(atomic_load(&mgr->cols));
fail_samples:
  shoal__timers_destroy(mgr);
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

static void release_all(shoal_mgr *mgr);

int shoal_mgr_destroy(shoal_mgr *mgr) {
  shoal_packet_stats ps;
  int expect = 0;
  if (mgr == NULL)
    return SHOAL_OK;
  /* Held for good: an update, a drain or a second destroy from a
   * callback is refused from here on. */
  if (shoal__mgr_in_callback(mgr) ||
      !atomic_compare_exchange_strong_explicit(&mgr->updating, &expect, 1,
                                               memory_order_acquire,
                                               memory_order_relaxed))
    return SHOAL_ESTATE;
  shoal__tick_quiesce(mgr);
  shoal__wd_stop(mgr);
  /* Every packet accepted and not yet handled is dropped now: said once,
   * with the count, so that the host's accounting can close. */
  if (shoal_packet_stats_get(mgr, &ps, 0) == SHOAL_OK && ps.pending != 0)
    shoal__log(mgr->cfg.log, mgr->cfg.log_user, SHOAL_LOG_WARN,
               "session manager destroyed with %llu packets pending (of "
               "%llu sent: %llu handled, %llu dropped before, %llu "
               "rejected); they are dropped",
               (unsigned long long)ps.pending, (unsigned long long)ps.sent,
               (unsigned long long)ps.handled, (unsigned long long)ps.dropped,
               (unsigned long long)ps.rejected);
  release_all(mgr);
  if (mgr->hooks != NULL)
    mgr->hooks->destroy(mgr); /* the hibernated table's memory */
  pthread_cond_destroy(&mgr->tick_done);
  pthread_mutex_destroy(&mgr->mu);
  for (size_t i = 0; i < mgr->nretired; i++)
    shoal__cols_free(mgr->retired[i]);
  shoal__free(mgr->retired);
  shoal__cols_free(shoal__mgr_cols(mgr));
  shoal__members_destroy(&mgr->members[0]);
  shoal__members_destroy(&mgr->members[1]);
  shoal__moved_destroy(mgr);
  shoal__timers_destroy(mgr);
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

typedef struct resize_call {
  unsigned workers;
  int rc;
} resize_call;

static void held_resize(shoal_mgr *mgr, void *arg) {
  resize_call *a = arg;
  a->rc = shoal_runtime_set_workers(mgr->rt, a->workers);
}

int shoal_mgr_set_workers(shoal_mgr *mgr, unsigned workers) {
  resize_call a = {workers, SHOAL_OK};
  int rc;
  if (mgr == NULL || workers == 0)
    return SHOAL_EINVAL;
  if ((rc = shoal__mgr_hold(mgr, held_resize, &a)) != SHOAL_OK)
    return rc;
  return a.rc;
}

static void held_batch(shoal_mgr *mgr, void *fn) {
  mgr->update_batch = *(shoal_update_batch_fn *)fn;
}

int shoal_mgr_set_update_batch(shoal_mgr *mgr, shoal_update_batch_fn fn) {
  if (mgr == NULL)
    return SHOAL_EINVAL;
  return shoal__mgr_hold(mgr, held_batch, &fn);
}

/* ------------------------------------------------------------------------ */
/* Members of maps and groups                                               */
/* ------------------------------------------------------------------------ */

uint32_t *shoal__mgr_pos(shoal_mgr *mgr, uint32_t id, int which) {
  int64_t v = shoal__registry_find(&mgr->reg, id);
  if (v & SHOAL__REG_OUT)
    return &mgr->hooks->out(mgr, (uint32_t)v & ~SHOAL__REG_OUT)->pos[which];
  return &shoal__mgr_rec(mgr, (uint32_t)v)->pos[which];
}

/* id leaves list `which` of key from pos; the member moved into pos is
 * told. Under mu. */
/* Group 0 is no group: it has no list (most sessions are in none, and
 * their creates and releases skip a list each). Map 0 is a map. */
static int listed(int which, uint32_t key) {
  return which == 0 || key != 0;
}

static void leave(shoal_mgr *mgr, int which, uint32_t key, uint32_t pos) {
  uint32_t moved;
  if (!listed(which, key))
    return;
  moved = shoal__members_remove(&mgr->members[which], key, pos);
  if (moved != 0)
    *shoal__mgr_pos(mgr, moved, which) = pos;
}

int shoal__mgr_out_insert(shoal_mgr *mgr, shoal__out *o) {
  int rc;
  uint32_t v = SHOAL__REG_OUT | o->slot;
  if ((rc = shoal__registry_out_set(&mgr->reg, o->slot, o->id)) != SHOAL_OK ||
      (rc = shoal__registry_insert(&mgr->reg, o->id, v)) != SHOAL_OK)
    return rc;
  o->pos[1] = 0;
  if ((rc = shoal__members_add(&mgr->members[0], o->map, o->id,
                               &o->pos[0])) != SHOAL_OK)
    goto fail;
  if (listed(1, o->group) &&
      (rc = shoal__members_add(&mgr->members[1], o->group, o->id,
                               &o->pos[1])) != SHOAL_OK) {
    leave(mgr, 0, o->map, o->pos[0]);
    goto fail;
  }
  mgr->nout++;
  return SHOAL_OK;
fail:
  shoal__registry_remove(&mgr->reg, o->id);
  return rc;
}

void shoal__mgr_out_remove(shoal_mgr *mgr, shoal__out *o) {
  leave(mgr, 0, o->map, o->pos[0]);
  leave(mgr, 1, o->group, o->pos[1]);
  shoal__registry_remove(&mgr->reg, o->id);
  mgr->nout--;
}

/* id (in the registry) joins map 0: SHOAL_ENOMEM. Under mu. */
static int join(shoal_mgr *mgr, uint32_t id, uint32_t pos[2]) {
  pos[1] = 0;
  return shoal__members_add(&mgr->members[0], 0, id, &pos[0]);
}

/* A session moves from list `which` of key `from` to `to` (its position
 * in *pos): SHOAL_ENOMEM with nothing changed. Under mu. */
static int move_to(shoal_mgr *mgr, int which, uint32_t from, uint32_t to,
                   uint32_t id, uint32_t *pos) {
  uint32_t at = 0; /* unlisted (group 0): no place */
  int rc;
  if (from == to)
    return SHOAL_OK;
  if (listed(which, to) &&
      (rc = shoal__members_add(&mgr->members[which], to, id, &at)) !=
          SHOAL_OK)
    return rc;
  leave(mgr, which, from, *pos);
  *pos = at;
  return SHOAL_OK;
}

static int create_locked(shoal_mgr *mgr, uint32_t id, void *user) {
  shoal__cols *c = shoal__mgr_cols(mgr);
  shoal__session *s;
  uint32_t index, slot;
  int rc;
  if (id == 0)
    return SHOAL_EINVAL;
  if (mgr->closing)
    return SHOAL_ESTATE; /* from an on_release under destroy */
  if (shoal__registry_find(&mgr->reg, id) >= 0)
    return SHOAL_EEXIST;
  /* The limit is the manager's, not the pool's: the hibernated sessions
   * keep their place under it, and a session that exists always finds a
   * pool element to wake into, even with the limit lowered below the
   * sessions in use. */
  if (atomic_load_explicit(&mgr->pool.in_use, memory_order_relaxed) +
          mgr->nout >=
      mgr->cfg.max_sessions)
    return SHOAL_ELIMIT;
  if ((rc = shoal__pool_get(&mgr->pool, id % mgr->nodes, &index)) != SHOAL_OK)
    return rc;
  if (mgr->nact == c->cap) { /* max raised while a tick ran */
    if (mgr->ticking ||
        (rc = shoal__cols_grow(mgr, mgr->nact + 1)) != SHOAL_OK) {
      shoal__pool_put(&mgr->pool, index);
      return mgr->ticking ? SHOAL_ELIMIT : rc;
    }
    c = shoal__mgr_cols(mgr);
  }
  s = shoal__mgr_rec(mgr, index);
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
  s->hib_big_at = 0;
  memset(s->tat, 0, sizeof s->tat);
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
  if (++mgr->epoch_next == 0)
    mgr->epoch_next = 1;
  atomic_store_explicit(&s->epoch, mgr->epoch_next, memory_order_relaxed);
  /* Published last: a find that sees the id sees a filled record (the
   * registry's insert is a release under the shard's mutex). */
  atomic_store_explicit(&s->id, id, memory_order_relaxed);
  shoal__pk_open(s); /* after the id: see shoal_session_send */
  rc = shoal__registry_insert(&mgr->reg, id, index);
  if (rc == SHOAL_OK && (rc = join(mgr, id, s->pos)) != SHOAL_OK)
    shoal__registry_remove(&mgr->reg, id);
  if (rc != SHOAL_OK) {
    shoal__pk_close(s);
    atomic_store_explicit(&s->id, 0, memory_order_relaxed);
    atomic_store_explicit(&s->state, 0, memory_order_relaxed);
    shoal__pk_retire(mgr, index);
    return rc;
  }
  mgr->nact = slot + 1;
  if (mgr->cols_hw < slot + 2)
    mgr->cols_hw = slot + 2;
  shoal__moved_del(mgr, id); /* here again: no longer moved */
  if (!mgr->ticking)
    shoal__slots_join(mgr);
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
  s = shoal__mgr_rec(mgr, (uint32_t)i);
  if (atomic_load_explicit(&s->id, memory_order_relaxed) != id ||
      atomic_load_explicit(&s->state, memory_order_relaxed) == 0)
    return NULL;
  if (index != NULL)
    *index = (uint32_t)i;
  return s;
}

/* Hibernated sessions released under mu, whose stored bytes go to the
 * host's release callback and whose on_release (user NULL) runs once mu
 * is let go. */
typedef struct out_done {
  size_t n;
  uint32_t ids[64];
  void *bytes[64];
  size_t len[64];
  shoal_hib_release_fn fn[64];
} out_done;

static void finish_out(shoal_mgr *mgr, out_done *od) {
  for (size_t k = 0; k < od->n; k++) {
    if (od->fn[k] != NULL)
      od->fn[k](mgr->cb.host, od->ids[k], od->bytes[k], od->len[k]);
    shoal__free(od->bytes[k]);
    if (mgr->cb.on_release != NULL)
      mgr->cb.on_release(mgr->cb.host, od->ids[k], NULL);
  }
  od->n = 0;
}

/* A hibernated session released: its held packets are dropped and its
 * record goes; the host hears of it through od, or from its wake phase
 * when one is running its wake callback. Under mu. */
static void release_out(shoal_mgr *mgr, shoal__out *o, out_done *od) {
  shoal__mgr_out_remove(mgr, o);
  shoal__pk_drop_held(mgr, o);
  if (!(o->flags & SHOAL__OUT_WAKING)) {
    /* Its wake phase, running its wake callback, tells the host itself. */
    od->bytes[od->n] = mgr->hooks->stored(mgr, o, &od->len[od->n],
                                          &od->fn[od->n]);
    od->ids[od->n++] = o->id;
  }
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
    return id == 0 ? SHOAL_EINVAL : shoal__mgr_gone(mgr, id);
  }
  {
    shoal__cols *c = shoal__mgr_cols(mgr);
    uint32_t slot = atomic_load_explicit(&s->slot, memory_order_relaxed);
    leave(mgr, 0, atomic_load_explicit(&c->map[slot], memory_order_relaxed),
          s->pos[0]);
    leave(mgr, 1, atomic_load_explicit(&c->group[slot], memory_order_relaxed),
          s->pos[1]);
  }
  shoal__registry_remove(&mgr->reg, id);
  (void)atomic_exchange_explicit(&s->state, 0, memory_order_acq_rel);
  shoal__pk_close(s);
  if (mgr->ticking) {
    s->next = mgr->releasing;
    mgr->releasing = index + 1;
  } else {
    shoal__slot_release(mgr, s);
    s->next = *done;
    *done = index + 1;
  }
  return SHOAL_OK;
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
  shoal__mgr_finish_releases(mgr, done);
  finish_out(mgr, &od);
  return rc;
}

long shoal_session_release_batch(shoal_mgr *mgr, const uint32_t *ids, size_t n,
                                 int *results) {
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
  shoal__mgr_finish_releases(mgr, done);
  finish_out(mgr, &od);
  return ok;
}

/* Destroy's releases, one at a time through release_locked, so that an
 * on_release that releases (itself: SHOAL_ENOENT, or another id: its own
 * on_release, once) finds the manager as it would at any other time:
 * every session hears on_release exactly once. Active ones from the last
 * slot (no slot moves), then the hibernated ones. */
static void release_all(shoal_mgr *mgr) {
  uint32_t slot = 0;
  pthread_mutex_lock(&mgr->mu);
  mgr->closing = 1;
  for (;;) {
    uint32_t done = 0, id = 0;
    out_done od;
    shoal__out *o;
    od.n = 0;
    if (mgr->nact > 0)
      id = shoal__mgr_cols(mgr)->ids[mgr->nact - 1];
    else if (mgr->nout > 0 && mgr->hooks != NULL) {
      /* No hibernation starts while closing: one lies at or past slot. */
      while ((o = mgr->hooks->out(mgr, slot)) == NULL)
        slot++;
      id = o->id;
    } else
      break;
    (void)release_locked(mgr, id, &done, &od);
    pthread_mutex_unlock(&mgr->mu);
    shoal__mgr_finish_releases(mgr, done);
    finish_out(mgr, &od);
    pthread_mutex_lock(&mgr->mu);
  }
  pthread_mutex_unlock(&mgr->mu);
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
  v->deferred = atomic_load_explicit(&s->ndeferred, memory_order_relaxed);
}

/* get under mu, where nothing moves: for a hibernated session, and for an
 * active one whose record changed under a lock-free look. */
static int get_locked(shoal_mgr *mgr, uint32_t id, shoal_session_info *v) {
  shoal__session *s = live_locked(mgr, id, NULL);
  shoal__out *o;
  v->id = id;
  if (s != NULL && s->where == SHOAL__IN_ACTIVE) {
    active_view(s, shoal__mgr_cols(mgr),
                atomic_load_explicit(&s->slot, memory_order_relaxed), v);
    return SHOAL_OK;
  }
  if (s != NULL)
    return SHOAL_ENOENT; /* a release waiting for the tick's end */
  if ((o = shoal__mgr_out(mgr, id)) == NULL)
    return shoal__mgr_gone(mgr, id);
  v->interval = o->interval;
  v->map = o->map;
  v->group = o->group;
  v->user = NULL;
  v->state = SHOAL_SESSION_HIBERNATED;
  v->last_error = 0;
  v->node = o->node;
  v->deferred = 0; /* its packets are held, not deferred */
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
    s = shoal__mgr_rec(mgr, (uint32_t)i);
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
      c = shoal__mgr_cols(mgr);
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
  if ((s = live_locked(mgr, id, NULL)) != NULL && s->where == SHOAL__IN_ACTIVE)
    rc = fn(mgr, s, shoal__mgr_cols(mgr),
            atomic_load_explicit(&s->slot, memory_order_relaxed), NULL, arg);
  else if (s == NULL && (o = shoal__mgr_out(mgr, id)) != NULL)
    rc = fn(mgr, NULL, NULL, OUT, o, arg);
  else if (s == NULL && id != 0)
    rc = shoal__mgr_gone(mgr, id);
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
/* The map (which 0) or group (1) of a session, and its member list. */
static int put_key(shoal_mgr *mgr, shoal__session *s, shoal__cols *c,
                   uint32_t slot, shoal__out *o, uint32_t key, int which) {
  _Atomic uint32_t *col;
  int rc;
  if (slot == OUT) {
    uint32_t *k = which ? &o->group : &o->map;
    if ((rc = move_to(mgr, which, *k, key, o->id, &o->pos[which])) ==
        SHOAL_OK)
      *k = key;
    return rc;
  }
  col = which ? c->group : c->map;
  rc = move_to(mgr, which,
               atomic_load_explicit(&col[slot], memory_order_relaxed), key,
               atomic_load_explicit(&s->id, memory_order_relaxed),
               &s->pos[which]);
  if (rc == SHOAL_OK)
    atomic_store_explicit(&col[slot], key, memory_order_relaxed);
  return rc;
}
static int put_map(shoal_mgr *mgr, shoal__session *s, shoal__cols *c,
                   uint32_t slot, shoal__out *o, uintptr_t arg) {
  return put_key(mgr, s, c, slot, o, (uint32_t)arg, 0);
}
static int put_group(shoal_mgr *mgr, shoal__session *s, shoal__cols *c,
                     uint32_t slot, shoal__out *o, uintptr_t arg) {
  return put_key(mgr, s, c, slot, o, (uint32_t)arg, 1);
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
  while (old != 0 && !atomic_compare_exchange_weak_explicit(
                         &c->sched[slot], &old, want, memory_order_relaxed,
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
  want = SHOAL__SCHED(atomic_load_explicit(&s->interval, memory_order_relaxed),
                      id);
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
int shoal_session_set_interval(shoal_mgr *mgr, uint32_t id, unsigned interval) {
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
  if (mgr == NULL || max < 1 || max > SHOAL__SESSIONS_MAX)
    return SHOAL_EINVAL;
  if (shoal__mgr_in_callback(mgr))
    return SHOAL_ESTATE;
  pthread_mutex_lock(&mgr->mu);
  shoal__mgr_wait_tick(mgr);
  rc = shoal__cols_grow(mgr, max);
  if (rc == SHOAL_OK)
    mgr->cfg.max_sessions = max;
  pthread_mutex_unlock(&mgr->mu);
  return rc;
}
