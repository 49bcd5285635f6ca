/* timers.c — packets delivered to a session after a delay or every
 * interval of manager time (shoal.h, "Timers"; docs/timers.md), on a
 * hierarchical timing wheel (Varghese and Lauck, "Hashed and Hierarchical
 * Timing Wheels", SOSP 1987, scheme 7; the Linux kernel's timer wheel is
 * the model): 4 levels of 64 slots of 1, 64, 4096 and 262 144 ms, so a
 * start and a cancel are O(1) and an update visits one level-0 slot per
 * millisecond of its diff_ms and a higher slot each time a lower level
 * wraps (its timers cascade down).
 *
 * A timer is an element of the manager's timer pool (no malloc per timer
 * on a warm manager). Any thread starts one: it is filled and pushed on a
 * lock-free queue (Vyukov's MPSC) that the update drains into the wheel;
 * any thread cancels one with a CAS on its state word (generation << 2 |
 * state), which the wheel reads when the timer's slot comes up. Only the
 * updating thread, holding the manager, touches the wheel.
 *
 * A timer is bound to its session's incarnation (an epoch given at
 * create and kept across hibernation): a session released, and the same
 * id created again, never receives the old session's timers; they are
 * dropped when their time comes and counted as gone. */
#include <string.h>

#include "runtime/common.h"
#include "runtime/os.h"
#include "sessions/mgr.h"

#define LEVELS 4u
#define SLOT_BITS 6u
#define SLOTS (1u << SLOT_BITS)
#define DATA_MAX SHOAL_TIMER_DATA_MAX
#define PER_SLAB 1024u
#define TAKE_MAX 65536u /* timers an update takes from the start queue */

enum { T_ARMED = 1, T_CANCELLED = 2 };

typedef struct shoal__timer {
  _Atomic uint32_t key;   /* the pool's */
  _Atomic uint32_t state; /* gen << 2 | T_* */
  shoal__node link;       /* the start queue */
  uint32_t index, gen;
  uint32_t next;          /* its slot's list: index + 1 */
  uint32_t id, epoch;     /* the session */
  uint64_t expires, interval;
  uint16_t opcode, flags;
  uint8_t len;
  unsigned char data[DATA_MAX];
} shoal__timer;

_Static_assert(sizeof(shoal__timer) <= 128, "a timer is two cache lines");

static shoal__timer *timer_at(shoal__timers *tm, uint32_t i) {
  return shoal__pool_at(&tm->pool, i);
}

int shoal__timers_init(shoal_mgr *mgr) {
  shoal__timers *tm = &mgr->tm;
  int rc = shoal__pool_init(&tm->pool, sizeof(shoal__timer), PER_SLAB, 0,
                            UINT32_MAX - 1, 1, NULL);
  if (rc != SHOAL_OK)
    return rc;
  tm->pool.owner_resets = 1; /* the generation outlives a timer */
  atomic_store_explicit(&tm->q_head, &tm->q_stub, memory_order_relaxed);
  tm->q_tail = &tm->q_stub;
  atomic_store_explicit(&tm->q_stub.next, NULL, memory_order_relaxed);
  tm->cur = 0;
  return SHOAL_OK;
}

void shoal__timers_destroy(shoal_mgr *mgr) {
  if (mgr->tm.pool.per_slab != 0)
    shoal__pool_destroy(&mgr->tm.pool);
  mgr->tm.pool.per_slab = 0;
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

int shoal_timer_start(shoal_mgr *mgr, uint32_t id, uint64_t delay_ms,
                      uint64_t interval_ms, uint16_t opcode, uint16_t flags,
                      const void *data, size_t len, shoal_timer_id *out) {
  shoal__timers *tm;
  shoal__timer *t;
  uint32_t i, epoch;
  int rc;
  if (out != NULL)
    *out = 0;
  if (mgr == NULL || id == 0 || len > DATA_MAX || (data == NULL && len > 0) ||
      delay_ms > SHOAL_TIMER_DELAY_MAX || interval_ms > SHOAL_TIMER_DELAY_MAX)
    return SHOAL_EINVAL;
  tm = &mgr->tm;
  if ((epoch = epoch_of(mgr, id)) == 0)
    return SHOAL_ENOENT;
  if ((rc = shoal__pool_get(&tm->pool, 0, &i)) != SHOAL_OK)
    return rc;
  t = timer_at(tm, i);
  t->index = i;
  t->gen = (t->gen + 1) & 0x3fffffffu;
  t->next = 0;
  t->id = id;
  t->epoch = epoch;
  t->expires = delay_ms; /* made absolute when the update takes it */
  t->interval = interval_ms;
  t->opcode = opcode;
  t->flags = flags;
  t->len = (uint8_t)len;
  if (len > 0)
    memcpy(t->data, data, len);
  atomic_store_explicit(&t->state, t->gen << 2 | T_ARMED,
                        memory_order_relaxed);
  if (out != NULL)
    *out = (uint64_t)t->gen << 32 | (i + 1);
  atomic_fetch_add_explicit(&tm->started, 1, memory_order_relaxed);
  /* release (the push's exchange): the fields above before the update
   * can take it */
  shoal__mpsc_push(&tm->q_head, &t->link);
  return SHOAL_OK;
}

int shoal_timer_cancel(shoal_mgr *mgr, shoal_timer_id timer) {
  shoal__timers *tm;
  uint32_t i = (uint32_t)timer, gen = (uint32_t)(timer >> 32), want;
  shoal__timer *t;
  shoal__pool_stats ps;
  if (mgr == NULL || i == 0)
    return SHOAL_EINVAL;
  tm = &mgr->tm;
  shoal__pool_stats_get(&tm->pool, &ps);
  if (i - 1 >= ps.allocated)
    return SHOAL_ENOENT; /* never handed out */
  t = timer_at(tm, i - 1);
  want = gen << 2 | T_ARMED;
  /* relaxed: the wheel only reads the state to drop the timer */
  if (!atomic_compare_exchange_strong_explicit(&t->state, &want,
                                               gen << 2 | T_CANCELLED,
                                               memory_order_relaxed,
                                               memory_order_relaxed))
    return SHOAL_ENOENT; /* fired (once), cancelled, or another timer's */
  atomic_fetch_add_explicit(&tm->cancelled, 1, memory_order_relaxed);
  return SHOAL_OK;
}

/* ---- the wheel (the updating thread) ------------------------------------ */

/* Puts t in the slot for its expiry, seen from tm->cur. */
static void wheel_put(shoal__timers *tm, shoal__timer *t) {
  uint64_t when = t->expires > tm->cur ? t->expires : tm->cur + 1;
  uint64_t delta = when - tm->cur;
  unsigned lv = 0;
  uint32_t slot;
  while (lv + 1 < LEVELS && delta >= (UINT64_C(1) << (SLOT_BITS * (lv + 1))))
    lv++;
  if (lv == LEVELS - 1 &&
      delta >= (UINT64_C(1) << (SLOT_BITS * LEVELS)))
    when = tm->cur + (UINT64_C(1) << (SLOT_BITS * LEVELS)) - 1; /* again
                                                        when it comes */
  slot = (uint32_t)(when >> (SLOT_BITS * lv)) & (SLOTS - 1);
  t->next = tm->wheel[lv][slot];
  tm->wheel[lv][slot] = t->index + 1;
}

static void timer_free(shoal__timers *tm, shoal__timer *t) {
  atomic_store_explicit(&t->state, 0, memory_order_relaxed);
  tm->armed--;
  shoal__pool_put(&tm->pool, t->index);
}

/* The session's packet for t; 0 when it went out (or was refused, as a
 * send is), 1 when the session is gone. */
static int fire(shoal_mgr *mgr, shoal__timer *t) {
  shoal__pkt *p;
  int64_t v;
  int rc;
  p = shoal__pk_new(mgr, t->opcode, t->flags, t->data, t->len, NULL, NULL,
                    &rc);
  v = shoal__registry_find(&mgr->reg, t->id);
  rc = SHOAL_ENOENT;
  if (v >= 0 && !(v & SHOAL__REG_OUT)) {
    shoal__session *s = shoal__mgr_rec(mgr, (uint32_t)v);
    if (atomic_load_explicit(&s->epoch, memory_order_acquire) == t->epoch)
      rc = shoal__pk_deliver_fast(mgr, t->id, p);
  }
  if (rc == SHOAL_ENOENT || rc == SHOAL_ESTATE) {
    /* asleep, gone, or moving: again under mu */
    shoal__out *o;
    pthread_mutex_lock(&mgr->mu);
    o = shoal__mgr_out(mgr, t->id);
    v = shoal__registry_find(&mgr->reg, t->id);
    if (o != NULL && o->epoch == t->epoch)
      rc = shoal__pk_hold(mgr, t->id, (uint32_t)v, p);
    else if (o == NULL && v >= 0 &&
             atomic_load_explicit(
                 &shoal__mgr_rec(mgr, (uint32_t)v)->epoch,
                 memory_order_relaxed) == t->epoch)
      rc = shoal__pk_deliver_fast(mgr, t->id, p);
    else
      rc = SHOAL_ENOENT;
    pthread_mutex_unlock(&mgr->mu);
  }
  if (rc != SHOAL_ENOENT) {
    atomic_fetch_add_explicit(&mgr->pk.sent, 1, memory_order_relaxed);
    if (rc != SHOAL_OK)
      atomic_fetch_add_explicit(&mgr->pk.rejected, 1, memory_order_relaxed);
  }
  if (rc != SHOAL_OK && p != NULL)
    shoal__pool_put(&mgr->pk.pool, p->index);
  return rc == SHOAL_ENOENT;
}

/* The timers of one slot: due ones fire, the others go lower (cascade). */
static void slot_run(shoal_mgr *mgr, uint32_t *head) {
  shoal__timers *tm = &mgr->tm;
  uint32_t list = *head;
  *head = 0;
  while (list != 0) {
    shoal__timer *t = timer_at(tm, list - 1);
    uint32_t st = atomic_load_explicit(&t->state, memory_order_relaxed);
    list = t->next;
    if ((st & 3u) != T_ARMED) { /* cancelled: its memory back now */
      timer_free(tm, t);
      continue;
    }
    if (t->expires > tm->cur) {
      wheel_put(tm, t);
      continue;
    }
    if (t->interval == 0) {
      /* a one-shot is claimed before it fires: a cancel after this fails */
      uint32_t want = st;
      if (!atomic_compare_exchange_strong_explicit(
              &t->state, &want, 0, memory_order_relaxed,
              memory_order_relaxed)) {
        timer_free(tm, t); /* cancelled just now */
        continue;
      }
    }
    /* the wheel moves a millisecond at a time: one firing per slot */
    if (fire(mgr, t)) {
      atomic_fetch_add_explicit(&tm->gone, 1, memory_order_relaxed);
      timer_free(tm, t);
      continue;
    }
    atomic_fetch_add_explicit(&tm->fired, 1, memory_order_relaxed);
    /* a periodic one still armed (a cancel meanwhile wins) goes back */
    if (t->interval != 0 &&
        atomic_load_explicit(&t->state, memory_order_relaxed) == st) {
      t->expires += t->interval;
      wheel_put(tm, t);
      continue;
    }
    timer_free(tm, t);
  }
}

void shoal__timers_tick(shoal_mgr *mgr, uint64_t now) {
  shoal__timers *tm = &mgr->tm;
  shoal__node *n;
  /* the timers started since the last update, at most TAKE_MAX of them
   * (threads that start timers without pause must not hold the update) */
  for (uint32_t k = 0;
       k < TAKE_MAX &&
       (n = shoal__mpsc_pop(&tm->q_head, &tm->q_tail, &tm->q_stub)) != NULL;
       k++) {
    shoal__timer *t =
        (shoal__timer *)(void *)((char *)n - offsetof(shoal__timer, link));
    t->expires += tm->cur; /* its delay, from the clock it was seen at */
    tm->armed++;
    wheel_put(tm, t);
  }
  while (tm->cur < now) {
    if (tm->armed == 0) {
      tm->cur = now;
      break;
    }
    tm->cur++;
    for (unsigned lv = 1; lv < LEVELS; lv++) {
      uint64_t span = UINT64_C(1) << (SLOT_BITS * lv);
      if ((tm->cur & (span - 1)) != 0)
        break;
      slot_run(mgr, &tm->wheel[lv][(tm->cur >> (SLOT_BITS * lv)) &
                                   (SLOTS - 1)]);
    }
    slot_run(mgr, &tm->wheel[0][tm->cur & (SLOTS - 1)]);
  }
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
  return SHOAL_OK;
}
