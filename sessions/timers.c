/* timers.c — what the manager's clock drives (shoal.h, "Timers" and
 * "Session requests"; docs/timers.md, docs/requests.md): packets to a
 * session after a delay or every interval of manager time, tasks to a
 * map's turn in the map phase, and the timeouts of the sessions' requests
 * to actors, all on one hierarchical timing wheel (runtime/sched/wheel.h:
 * 4 levels of 64 slots of 1, 64, 4096 and 262 144 ms; start and cancel
 * O(1)) that each update advances by its diff_ms.
 *
 * A timer is an element of the manager's timer pool (no malloc per timer
 * on a warm manager). Any thread starts one (a lock-free push the update
 * takes) and cancels one (a CAS on its state word); only the updating
 * thread, holding the manager, touches the wheel.
 *
 * A session request is a one-shot timer whose handle travels as the
 * request's reply address (an actor system's sink, attached with
 * shoal_mgr_attach_actors): the reply claims the timer with one CAS, the
 * timeout fires it, so exactly one answer goes to the session's inbox as
 * a packet of the opcode it chose.
 *
 * A timer is bound to its session's incarnation (an epoch given at
 * create and kept across hibernation): a session released, and the same
 * id created again, never receives the old session's timers; they are
 * dropped when their time comes and counted as gone. */
#include <string.h>

#include "runtime/actors/sink.h"
#include "runtime/common.h"
#include "runtime/os.h"
#include "sessions/mgr.h"

#define DATA_MAX SHOAL_TIMER_DATA_MAX
#define PER_SLAB 1024u
#define TAKE_MAX 65536u /* timers an update takes from the start queue */

/* What a timer delivers: a packet to its session, a request's timeout
 * (requests.c), or a task to its map's turn (maps.c). */
enum { K_PACKET = 0, K_REQUEST = 1, K_TASK = 2 };

typedef struct shoal__timer {
  _Atomic uint32_t key;   /* the pool's */
  uint16_t opcode, flags;
  uint8_t kind, len;
  shoal__wentry w;
  uint32_t id, epoch;     /* the session; K_TASK: id is the map */
  union {
    unsigned char data[DATA_MAX];
    shoal_msg req;        /* K_REQUEST: the request as sent */
    struct {
      shoal_map_task_fn fn;
      void *arg;
    } task;
  } u;
} shoal__timer;

_Static_assert(sizeof(shoal__timer) <= 128, "a timer is two cache lines");

static shoal__timer *timer_at(shoal__timers *tm, uint32_t i) {
  return shoal__pool_at(&tm->pool, i);
}

static shoal__timer *timer_of(shoal__wentry *e) {
  return (shoal__timer *)(void *)((char *)e - offsetof(shoal__timer, w));
}

static shoal__wentry *wheel_at(void *ctx, uint32_t i) {
  return &timer_at(&((shoal_mgr *)ctx)->tm, i)->w;
}

static int wheel_fire(void *ctx, shoal__wentry *e);

static void wheel_done(void *ctx, shoal__wentry *e) {
  shoal__pool_put(&((shoal_mgr *)ctx)->tm.pool, e->index);
}

static const shoal__wheel_ops ops = {wheel_at, wheel_fire, wheel_done};

int shoal__timers_init(shoal_mgr *mgr) {
  shoal__timers *tm = &mgr->tm;
  int rc = shoal__pool_init(&tm->pool, sizeof(shoal__timer), PER_SLAB, 0,
                            SHOAL__WHEEL_INDEX_MAX, 1, NULL);
  if (rc != SHOAL_OK)
    return rc;
  tm->pool.owner_resets = 1; /* the generation outlives a timer */
  shoal__wheel_init(&tm->wheel, &ops, mgr);
  pthread_mutex_init(&tm->attach_mu, NULL);
  return SHOAL_OK;
}

void shoal__timers_destroy(shoal_mgr *mgr) {
  if (mgr->tm.pool.per_slab == 0)
    return; /* never made */
  shoal__requests_detach(mgr);
  pthread_mutex_destroy(&mgr->tm.attach_mu);
  shoal__wheel_clear(&mgr->tm.wheel); /* the slots' memory */
  shoal__pool_destroy(&mgr->tm.pool);
  mgr->tm.pool.per_slab = 0;
  shoal__free(mgr->tm.due);
  mgr->tm.due = NULL;
  mgr->tm.ndue = mgr->tm.due_cap = 0;
}

/* The epoch of session id now, or 0 when there is none. Any thread: an
 * active one's without a lock, a hibernated one's under mu. */
static uint32_t epoch_of(shoal_mgr *mgr, uint32_t id) {
  int64_t v = shoal__registry_find(&mgr->reg, id);
  uint32_t e = 0;
  if (v >= 0 && !(v & SHOAL__REG_OUT)) {
    shoal__session *s = shoal__mgr_rec(mgr, (uint32_t)v);
    e = atomic_load_explicit(&s->epoch, memory_order_acquire);
    if (atomic_load_explicit(&s->id, memory_order_relaxed) == id)
      return e;
  }
  pthread_mutex_lock(&mgr->mu);
  {
    shoal__out *o = shoal__mgr_out(mgr, id);
    shoal__session *s = NULL;
    v = shoal__registry_find(&mgr->reg, id);
    if (o != NULL)
      e = o->epoch;
    else if (v >= 0 && !(v & SHOAL__REG_OUT) &&
             atomic_load_explicit(
                 &(s = shoal__mgr_rec(mgr, (uint32_t)v))->id,
                 memory_order_relaxed) == id)
      e = atomic_load_explicit(&s->epoch, memory_order_relaxed);
    else
      e = 0;
  }
  pthread_mutex_unlock(&mgr->mu);
  return e;
}

/* A timer of the pool, its fields but the wheel's blank. */
static int timer_new(shoal__timers *tm, shoal__timer **out) {
  uint32_t i;
  int rc = shoal__pool_get(&tm->pool, 0, &i);
  if (rc != SHOAL_OK)
    return rc;
  *out = timer_at(tm, i);
  (*out)->w.index = i;
  return SHOAL_OK;
}

int shoal_timer_start(shoal_mgr *mgr, uint32_t id, uint64_t delay_ms,
                      uint64_t interval_ms, uint16_t opcode, uint16_t flags,
                      const void *data, size_t len, shoal_timer_id *out) {
  shoal__timers *tm;
  shoal__timer *t;
  uint32_t epoch;
  uint64_t h;
  int rc;
  if (out != NULL)
    *out = 0;
  if (mgr == NULL || id == 0 || len > DATA_MAX || (data == NULL && len > 0) ||
      delay_ms > SHOAL_TIMER_DELAY_MAX || interval_ms > SHOAL_TIMER_DELAY_MAX)
    return SHOAL_EINVAL;
  tm = &mgr->tm;
  if ((epoch = epoch_of(mgr, id)) == 0)
    return SHOAL_ENOENT;
  if ((rc = timer_new(tm, &t)) != SHOAL_OK)
    return rc;
  t->kind = K_PACKET;
  t->id = id;
  t->epoch = epoch;
  t->opcode = opcode;
  t->flags = flags;
  t->len = (uint8_t)len;
  if (len > 0)
    memcpy(t->u.data, data, len);
  atomic_fetch_add_explicit(&tm->started, 1, memory_order_relaxed);
  h = shoal__wheel_arm(&tm->wheel, &t->w, delay_ms, interval_ms);
  if (out != NULL)
    *out = h;
  return SHOAL_OK;
}

int shoal_map_timer_start(shoal_mgr *mgr, uint32_t map, uint64_t delay_ms,
                          uint64_t interval_ms, shoal_map_task_fn fn,
                          void *arg, shoal_timer_id *out) {
  shoal__timers *tm;
  shoal__timer *t;
  uint64_t h;
  int rc;
  if (out != NULL)
    *out = 0;
  if (mgr == NULL || fn == NULL || delay_ms > SHOAL_TIMER_DELAY_MAX ||
      interval_ms > SHOAL_TIMER_DELAY_MAX)
    return SHOAL_EINVAL;
  tm = &mgr->tm;
  if ((rc = timer_new(tm, &t)) != SHOAL_OK)
    return rc;
  t->kind = K_TASK;
  t->id = map;
  t->u.task.fn = fn;
  t->u.task.arg = arg;
  atomic_fetch_add_explicit(&tm->started, 1, memory_order_relaxed);
  h = shoal__wheel_arm(&tm->wheel, &t->w, delay_ms, interval_ms);
  if (out != NULL)
    *out = h;
  return SHOAL_OK;
}

/* The timer a handle names, when the pool ever handed it out. */
static shoal__timer *timer_named(shoal__timers *tm, uint64_t handle) {
  uint32_t i = (uint32_t)handle;
  shoal__pool_stats ps;
  if (i == 0)
    return NULL;
  shoal__pool_stats_get(&tm->pool, &ps);
  return i - 1 < ps.allocated ? timer_at(tm, i - 1) : NULL;
}

int shoal_timer_cancel(shoal_mgr *mgr, shoal_timer_id timer) {
  shoal__timer *t;
  if (mgr == NULL || (uint32_t)timer == 0)
    return SHOAL_EINVAL;
  if ((t = timer_named(&mgr->tm, timer)) == NULL)
    return SHOAL_ENOENT; /* never handed out */
  if (!shoal__wheel_cancel(&t->w, (uint32_t)(timer >> 32)))
    return SHOAL_ENOENT; /* fired (once), cancelled, or another timer's */
  atomic_fetch_add_explicit(&mgr->tm.cancelled, 1, memory_order_relaxed);
  return SHOAL_OK;
}

/* ---- delivery (the updating thread, or a replying one) ------------------ */

/* A packet of opcode, flags and len bytes of data into the inbox of
 * session id of incarnation epoch (waking it when asleep). 0 when it went
 * in; SHOAL_ENOENT when that session is gone (no packet made then); else
 * refused as a send is. */
static int deliver(shoal_mgr *mgr, uint32_t id, uint32_t epoch,
                   uint16_t opcode, uint16_t flags, const void *data,
                   size_t len) {
  int64_t v = shoal__registry_find(&mgr->reg, id);
  shoal__pkt *p = NULL;
  int rc = SHOAL_ENOENT;
  if (v >= 0 && !(v & SHOAL__REG_OUT)) {
    shoal__session *s = shoal__mgr_rec(mgr, (uint32_t)v);
    if (atomic_load_explicit(&s->epoch, memory_order_acquire) == epoch) {
      p = shoal__pk_new(mgr, opcode, flags, data, len, NULL, NULL, &rc);
      /* pinned to the incarnation whose epoch matched: a release and a
       * create of the id meanwhile (on the main thread, while a reply
       * comes in on a worker) must not receive it */
      rc = p != NULL ? shoal__pk_deliver_epoch(mgr, id, epoch, p) : rc;
    }
  }
  if (rc == SHOAL_ENOENT || rc == SHOAL_ESTATE) {
    /* asleep, gone, or moving: again under mu */
    shoal__out *o;
    pthread_mutex_lock(&mgr->mu);
    o = shoal__mgr_out(mgr, id);
    v = shoal__registry_find(&mgr->reg, id);
    rc = SHOAL_ENOENT;
    if ((o != NULL && o->epoch == epoch) ||
        (o == NULL && v >= 0 &&
         atomic_load_explicit(&shoal__mgr_rec(mgr, (uint32_t)v)->epoch,
                              memory_order_relaxed) == epoch)) {
      if (p == NULL)
        p = shoal__pk_new(mgr, opcode, flags, data, len, NULL, NULL, &rc);
      if (p != NULL)
        rc = o != NULL ? shoal__pk_hold(mgr, id, (uint32_t)v, p)
                       : shoal__pk_deliver_fast(mgr, id, p);
    }
    pthread_mutex_unlock(&mgr->mu);
  }
  if (rc != SHOAL_ENOENT) {
    atomic_fetch_add_explicit(&mgr->pk.sent, 1, memory_order_relaxed);
    if (rc != SHOAL_OK)
      atomic_fetch_add_explicit(&mgr->pk.rejected, 1, memory_order_relaxed);
  }
  if (rc != SHOAL_OK && p != NULL)
    shoal__pool_put(&mgr->pk.pool, p->index);
  return rc;
}

/* A request's answer, *m, as a packet of opcode to the session; counted
 * as a reply or timeout when it went in, else as dropped. */
static void answer(shoal_mgr *mgr, uint32_t id, uint32_t epoch,
                   uint16_t opcode, const shoal_msg *m,
                   _Atomic uint64_t *ok) {
  if (deliver(mgr, id, epoch, opcode, 0, m, sizeof *m) == SHOAL_OK)
    atomic_fetch_add_explicit(ok, 1, memory_order_relaxed);
  else
    atomic_fetch_add_explicit(&mgr->tm.rq_dropped, 1, memory_order_relaxed);
}

/* A map task due: queued for this update's map phase. */
static void task_due(shoal_mgr *mgr, shoal__timer *t) {
  shoal__timers *tm = &mgr->tm;
  if (tm->ndue == tm->due_cap) {
    uint32_t cap = tm->due_cap ? 2 * tm->due_cap : 64;
    shoal__maptask *d = shoal__realloc(tm->due, cap * sizeof *d);
    if (d == NULL) { /* runs now, on the updating thread, alone */
      const shoal_mgr *prev = shoal__cb_enter(mgr);
      t->u.task.fn(mgr->cb.host, t->id, t->u.task.arg);
      shoal__cb_leave(prev);
      return;
    }
    tm->due = d;
    tm->due_cap = cap;
  }
  tm->due[tm->ndue++] =
      (shoal__maptask){t->id, 0, t->u.task.fn, t->u.task.arg};
}

static int wheel_fire(void *ctx, shoal__wentry *e) {
  shoal_mgr *mgr = ctx;
  shoal__timers *tm = &mgr->tm;
  shoal__timer *t = timer_of(e);
  int rc;
  if (t->kind == K_REQUEST) {
    shoal_msg c = t->u.req;
    c.from = c.to; /* the addressee that did not answer */
    c.flags = SHOAL_MSG_REPLY | SHOAL_MSG_TIMEOUT;
    answer(mgr, t->id, t->epoch, t->opcode, &c, &tm->rq_timeouts);
    return 0;
  }
  atomic_fetch_add_explicit(&tm->fired, 1, memory_order_relaxed);
  if (t->kind == K_TASK) {
    task_due(mgr, t);
    return 0;
  }
  rc = deliver(mgr, t->id, t->epoch, t->opcode, t->flags, t->u.data,
               t->len);
  if (rc == SHOAL_ENOENT) {
    atomic_fetch_sub_explicit(&tm->fired, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&tm->gone, 1, memory_order_relaxed);
    return 1;
  }
  return 0;
}

void shoal__timers_tick(shoal_mgr *mgr, uint64_t now) {
  shoal__wheel_tick(&mgr->tm.wheel, now, TAKE_MAX);
}

int shoal_timer_stats_get(shoal_mgr *mgr, shoal_timer_stats *out) {
  shoal__timers *tm;
  if (mgr == NULL || out == NULL)
    return SHOAL_EINVAL;
  tm = &mgr->tm;
  memset(out, 0, sizeof *out);
  out->started = atomic_load_explicit(&tm->started, memory_order_relaxed);
  out->fired = atomic_load_explicit(&tm->fired, memory_order_relaxed);
  out->cancelled = atomic_load_explicit(&tm->cancelled, memory_order_relaxed);
  out->gone = atomic_load_explicit(&tm->gone, memory_order_relaxed);
  out->moved = atomic_load_explicit(&tm->moved, memory_order_relaxed);
  return SHOAL_OK;
}

/* ---- session requests --------------------------------------------------- */

/* A reply to one of this manager's requests (the actor system's sink): it
 * claims the request's timer, so that its timeout never fires. On the
 * replying thread. */
static int sink(void *ctx, uint64_t tag, shoal_msg *m) {
  shoal_mgr *mgr = ctx;
  shoal__timers *tm = &mgr->tm;
  uint64_t h = shoal__wheel_untag(tag);
  uint32_t gen = (uint32_t)(h >> 32), id, epoch;
  uint16_t opcode;
  shoal__timer *t = timer_named(tm, h);
  if (t == NULL || !shoal__wheel_claim(&t->w, gen)) {
    atomic_fetch_add_explicit(&tm->rq_late, 1, memory_order_relaxed);
    return SHOAL_OK; /* timed out (or dropped) first: counted */
  }
  if (t->kind != K_REQUEST) { /* not a request's address */
    shoal__wheel_unclaim(&t->w, gen, 1);
    return SHOAL_ENOENT;
  }
  id = t->id;
  epoch = t->epoch;
  opcode = t->opcode;
  shoal__wheel_unclaim(&t->w, gen, 0);
  answer(mgr, id, epoch, opcode, m, &tm->rq_replies);
  return SHOAL_OK;
}

int shoal_mgr_attach_actors(shoal_mgr *mgr, shoal_actors *sys) {
  shoal__timers *tm;
  unsigned k = 0;
  int rc = SHOAL_OK;
  if (mgr == NULL)
    return SHOAL_EINVAL;
  if (shoal__mgr_in_callback(mgr))
    return SHOAL_ESTATE;
  tm = &mgr->tm;
  pthread_mutex_lock(&tm->attach_mu);
  if (atomic_load_explicit(&tm->sys, memory_order_relaxed) != sys) {
    if (sys != NULL && (rc = shoal__sink_add(sys, sink, mgr, &k)) != SHOAL_OK)
      goto out;
    shoal__requests_detach(mgr);
    tm->sink = k;
    /* release: the sink before a request that finds sys */
    atomic_store_explicit(&tm->sys, sys, memory_order_release);
  }
out:
  pthread_mutex_unlock(&tm->attach_mu);
  return rc;
}

void shoal__requests_detach(shoal_mgr *mgr) {
  shoal__timers *tm = &mgr->tm;
  shoal_actors *sys = atomic_exchange_explicit(&tm->sys, NULL,
                                               memory_order_acq_rel);
  if (sys != NULL)
    shoal__sink_remove(sys, tm->sink);
}

int shoal_session_request(shoal_mgr *mgr, uint32_t id, uint64_t to,
                          const shoal_msg *m, uint16_t reply_opcode,
                          uint64_t timeout_ms, uint32_t *corr) {
  shoal__timers *tm;
  shoal__timer *t;
  shoal_actors *sys;
  shoal_msg c;
  uint32_t epoch;
  uint64_t h;
  int rc;
  if (mgr == NULL || m == NULL || id == 0 || timeout_ms == 0 ||
      timeout_ms > SHOAL_TIMER_DELAY_MAX)
    return SHOAL_EINVAL;
  tm = &mgr->tm;
  /* acquire: pairs with attach's release */
  if ((sys = atomic_load_explicit(&tm->sys, memory_order_acquire)) == NULL)
    return SHOAL_ESTATE;
  if ((epoch = epoch_of(mgr, id)) == 0)
    return SHOAL_ENOENT;
  if ((rc = timer_new(tm, &t)) != SHOAL_OK)
    return rc == SHOAL_ELIMIT ? SHOAL_EAGAIN : rc;
  t->kind = K_REQUEST;
  t->id = id;
  t->epoch = epoch;
  t->opcode = reply_opcode;
  c = *m;
  c.flags = (uint8_t)((c.flags & ~(SHOAL_MSG_REPLY | SHOAL_MSG_TIMEOUT)) |
                      SHOAL_MSG_REQUEST);
  c.to = to;
  c.time_ns = shoal__fast_ns();
  /* the corr is the handle's tag: unique among the requests waiting */
  h = (uint64_t)((t->w.gen + 1) & 0x3fffffffu) << 32 | (t->w.index + 1);
  c.corr = (uint32_t)shoal__wheel_tag(h);
  t->u.req = c;
  atomic_fetch_add_explicit(&tm->rq_started, 1, memory_order_relaxed);
  /* armed before it is sent: a reply always finds it */
  h = shoal__wheel_arm(&tm->wheel, &t->w, timeout_ms, 0);
  c.from = shoal__sink_address(tm->sink, shoal__wheel_tag(h));
  if ((rc = shoal__send(sys, to, &c)) != SHOAL_OK) {
    if (shoal__wheel_cancel(&t->w, (uint32_t)(h >> 32))) {
      atomic_fetch_add_explicit(&tm->rq_refused, 1, memory_order_relaxed);
      return rc;
    }
    /* its timeout fired meanwhile (an update ran): that answers it */
  }
  if (corr != NULL)
    *corr = c.corr;
  return SHOAL_OK;
}

int shoal_request_stats_get(shoal_mgr *mgr, shoal_request_stats *out) {
  shoal__timers *tm;
  uint64_t answered;
  if (mgr == NULL || out == NULL)
    return SHOAL_EINVAL;
  tm = &mgr->tm;
  memset(out, 0, sizeof *out);
  out->replies = atomic_load_explicit(&tm->rq_replies, memory_order_relaxed);
  out->timeouts = atomic_load_explicit(&tm->rq_timeouts, memory_order_relaxed);
  out->dropped = atomic_load_explicit(&tm->rq_dropped, memory_order_relaxed);
  out->late = atomic_load_explicit(&tm->rq_late, memory_order_relaxed);
  out->moved = atomic_load_explicit(&tm->rq_moved, memory_order_relaxed);
  /* the answers first: a request is counted before it can be answered */
  out->requests =
      atomic_load_explicit(&tm->rq_started, memory_order_relaxed) -
      atomic_load_explicit(&tm->rq_refused, memory_order_relaxed);
  answered = out->replies + out->timeouts + out->dropped + out->moved;
  out->pending = out->requests > answered ? out->requests - answered : 0;
  return SHOAL_OK;
}

/* ---- moving with a session (hibernate/export.c) ------------------------- */

/* Whether t is an armed packet timer or request of session (id, epoch);
 * its arming's gen in *gen. */
static int armed_of(const shoal__timer *t, uint32_t id, uint32_t epoch,
                    uint32_t *gen) {
  uint32_t st = atomic_load_explicit(&t->w.state, memory_order_acquire);
  *gen = st >> 2;
  return (st & 3u) == 1u && t->kind != K_TASK && t->id == id &&
         t->epoch == epoch;
}

static uint32_t timers_made(shoal__timers *tm) {
  shoal__pool_stats ps;
  shoal__pool_stats_get(&tm->pool, &ps);
  return (uint32_t)ps.allocated;
}

int shoal__timers_of(shoal_mgr *mgr, uint32_t id, uint32_t epoch,
                     shoal__tview **v, uint32_t *n, uint32_t *cap) {
  shoal__timers *tm = &mgr->tm;
  uint32_t made = timers_made(tm), gen;
  *n = 0;
  for (uint32_t i = 0; i < made; i++) {
    shoal__timer *t = timer_at(tm, i);
    shoal__tview *x;
    if (!armed_of(t, id, epoch, &gen))
      continue;
    if (*n == *cap) {
      uint32_t c = *cap != 0 ? 2 * *cap : 16;
      shoal__tview *g = shoal__realloc(*v, c * sizeof *g);
      if (g == NULL)
        return SHOAL_ENOMEM;
      *v = g;
      *cap = c;
    }
    x = &(*v)[(*n)++];
    memset(x, 0, sizeof *x);
    x->request = t->kind == K_REQUEST;
    x->opcode = t->opcode;
    x->flags = t->flags;
    /* Holding the manager: no tick moves the wheel. Taken by a tick
     * (at 1), expires is a wheel time; still queued, a delay. */
    x->remaining_ms = !t->w.at ? t->w.expires
                      : t->w.expires > tm->wheel.cur
                          ? t->w.expires - tm->wheel.cur
                          : 0;
    x->interval_ms = t->w.interval;
    if (x->request) {
      x->req = t->u.req;
    } else {
      x->len = t->len;
      x->data = t->u.data;
    }
  }
  return SHOAL_OK;
}

void shoal__timers_moved(shoal_mgr *mgr, uint32_t id, uint32_t epoch) {
  shoal__timers *tm = &mgr->tm;
  uint32_t made = timers_made(tm), gen;
  for (uint32_t i = 0; i < made; i++) {
    shoal__timer *t = timer_at(tm, i);
    /* A request a reply claims meanwhile is answered here (its answer
     * finds the session gone); the record's copy then times out. */
    if (armed_of(t, id, epoch, &gen) && shoal__wheel_cancel(&t->w, gen))
      atomic_fetch_add_explicit(t->kind == K_REQUEST ? &tm->rq_moved
                                                     : &tm->moved,
                                1, memory_order_relaxed);
  }
}

int shoal__timers_take(shoal_mgr *mgr, uint32_t n, uint32_t *idx) {
  for (uint32_t k = 0; k < n; k++) {
    int rc = shoal__pool_get(&mgr->tm.pool, 0, &idx[k]);
    if (rc != SHOAL_OK) {
      shoal__timers_give(mgr, k, idx);
      return rc;
    }
  }
  return SHOAL_OK;
}

void shoal__timers_give(shoal_mgr *mgr, uint32_t n, const uint32_t *idx) {
  for (uint32_t k = 0; k < n; k++)
    shoal__pool_put(&mgr->tm.pool, idx[k]);
}

void shoal__timers_arm_view(shoal_mgr *mgr, uint32_t idx, uint32_t id,
                            uint32_t epoch, const shoal__tview *v) {
  shoal__timers *tm = &mgr->tm;
  shoal__timer *t = timer_at(tm, idx);
  t->w.index = idx;
  t->id = id;
  t->epoch = epoch;
  t->opcode = v->opcode;
  if (v->request) {
    t->kind = K_REQUEST;
    t->flags = 0;
    t->u.req = v->req;
    atomic_fetch_add_explicit(&tm->rq_started, 1, memory_order_relaxed);
    (void)shoal__wheel_arm(&tm->wheel, &t->w, v->remaining_ms, 0);
    return;
  }
  t->kind = K_PACKET;
  t->flags = v->flags;
  t->len = (uint8_t)v->len;
  if (v->len > 0)
    memcpy(t->u.data, v->data, v->len);
  atomic_fetch_add_explicit(&tm->started, 1, memory_order_relaxed);
  (void)shoal__wheel_arm(&tm->wheel, &t->w, v->remaining_ms, v->interval_ms);
}
