/* wheel.c — the hierarchical timing wheel (wheel.h): arming through a
 * lock-free queue, cancelling by CAS, and the tick that fires what is due
 * and cascades the rest down a level. */
#include <stddef.h>

#include "runtime/sched/wheel.h"

#define LEVELS SHOAL__WHEEL_LEVELS
#define SLOT_BITS 6u
#define SLOTS SHOAL__WHEEL_SLOTS
#define GEN_MASK 0x3fffffffu

_Static_assert(SLOTS == 1u << SLOT_BITS, "64 slots a level");

enum { W_ARMED = 1, W_CANCELLED = 2, W_CLAIMED = 3 };

void shoal__wheel_init(shoal__wheel *w, const shoal__wheel_ops *ops,
                       void *ctx) {
  atomic_store_explicit(&w->q_head, &w->q_stub, memory_order_relaxed);
  w->q_tail = &w->q_stub;
  atomic_store_explicit(&w->q_stub.next, NULL, memory_order_relaxed);
  for (unsigned lv = 0; lv < LEVELS; lv++)
    for (unsigned s = 0; s < SLOTS; s++)
      w->slot[lv][s] = 0;
  w->cur = 0;
  w->armed = 0;
  w->ops = ops;
  w->ctx = ctx;
}

static uint64_t arm(shoal__wheel *w, shoal__wentry *e, uint64_t t,
                    uint32_t at, uint64_t interval) {
  uint64_t handle;
  e->gen = (e->gen + 1) & GEN_MASK;
  /* taken now: once pushed, e may fire and be reused at once */
  handle = (uint64_t)e->gen << 32 | (e->index + 1);
  e->next = 0;
  e->at = at;
  e->expires = t; /* a delay: made a time when the tick takes it */
  e->interval = interval;
  atomic_store_explicit(&e->state, e->gen << 2 | W_ARMED,
                        memory_order_relaxed);
  /* release (the push's exchange): the fields above before the tick can
   * take it */
  shoal__mpsc_push(&w->q_head, &e->link);
  return handle;
}

uint64_t shoal__wheel_arm(shoal__wheel *w, shoal__wentry *e, uint64_t delay,
                          uint64_t interval) {
  return arm(w, e, delay, 0, interval);
}

uint64_t shoal__wheel_arm_at(shoal__wheel *w, shoal__wentry *e, uint64_t when,
                             uint64_t interval) {
  return arm(w, e, when, 1, interval);
}

int shoal__wheel_cancel(shoal__wentry *e, uint32_t gen) {
  uint32_t want = (gen & GEN_MASK) << 2 | W_ARMED;
  /* relaxed: the tick only reads the state to drop the entry */
  return atomic_compare_exchange_strong_explicit(
      &e->state, &want, (gen & GEN_MASK) << 2 | W_CANCELLED,
      memory_order_relaxed, memory_order_relaxed);
}

int shoal__wheel_claim(shoal__wentry *e, uint32_t gen) {
  uint32_t want = (gen & GEN_MASK) << 2 | W_ARMED;
  /* relaxed: what the claimer reads of e was published to it through the
   * message that carried the handle */
  return atomic_compare_exchange_strong_explicit(
      &e->state, &want, (gen & GEN_MASK) << 2 | W_CLAIMED,
      memory_order_relaxed, memory_order_relaxed);
}

void shoal__wheel_unclaim(shoal__wentry *e, uint32_t gen, int restore) {
  /* release: the claimer's reads of e before the tick may give it back */
  atomic_store_explicit(&e->state,
                        (gen & GEN_MASK) << 2 |
                            (restore ? W_ARMED : W_CANCELLED),
                        memory_order_release);
}

/* Puts e in the slot for its expiry, seen from w->cur. */
static void put(shoal__wheel *w, shoal__wentry *e) {
  uint64_t when = e->expires > w->cur ? e->expires : w->cur + 1;
  uint64_t delta = when - w->cur;
  unsigned lv = 0;
  uint32_t s;
  while (lv + 1 < LEVELS && delta >= (UINT64_C(1) << (SLOT_BITS * (lv + 1))))
    lv++;
  if (lv == LEVELS - 1 && delta >= (UINT64_C(1) << (SLOT_BITS * LEVELS)))
    when = w->cur + (UINT64_C(1) << (SLOT_BITS * LEVELS)) - 1; /* again
                                                        when it comes */
  s = (uint32_t)(when >> (SLOT_BITS * lv)) & (SLOTS - 1);
  e->next = w->slot[lv][s];
  w->slot[lv][s] = e->index + 1;
}

static void over(shoal__wheel *w, shoal__wentry *e) {
  atomic_store_explicit(&e->state, 0, memory_order_relaxed);
  w->armed--;
  w->ops->done(w->ctx, e);
}

/* The entries of one slot: due ones fire, the others go lower. */
static void slot_run(shoal__wheel *w, uint32_t *head) {
  uint32_t list = *head;
  *head = 0;
  while (list != 0) {
    shoal__wentry *e = w->ops->at(w->ctx, list - 1);
    /* acquire: pairs with unclaim's release */
    uint32_t st = atomic_load_explicit(&e->state, memory_order_acquire);
    list = e->next;
    if ((st & 3u) == W_CLAIMED) { /* its claimer is still on it */
      e->expires = w->cur + 1;
      put(w, e);
      continue;
    }
    if ((st & 3u) != W_ARMED) { /* cancelled: its storage back now */
      over(w, e);
      continue;
    }
    if (e->expires > w->cur) {
      put(w, e);
      continue;
    }
    if (e->interval == 0) {
      /* a one-shot is claimed before it fires: a cancel after this fails */
      uint32_t want = st;
      if (!atomic_compare_exchange_strong_explicit(&e->state, &want, 0,
                                                   memory_order_relaxed,
                                                   memory_order_relaxed)) {
        over(w, e); /* cancelled just now */
        continue;
      }
    }
    /* the wheel moves one unit at a time: one firing per slot */
    if (w->ops->fire(w->ctx, e) == 0 && e->interval != 0 &&
        atomic_load_explicit(&e->state, memory_order_relaxed) == st) {
      /* a periodic one still armed (a cancel meanwhile wins) goes back */
      e->expires += e->interval;
      put(w, e);
      continue;
    }
    over(w, e);
  }
}

void shoal__wheel_tick(shoal__wheel *w, uint64_t now, uint32_t take_max) {
  shoal__node *n;
  /* what was armed since the last tick, at most take_max (threads that
   * arm without pause must not hold the tick) */
  for (uint32_t k = 0;
       k < take_max &&
       (n = shoal__mpsc_pop(&w->q_head, &w->q_tail, &w->q_stub)) != NULL;
       k++) {
    shoal__wentry *e =
        (shoal__wentry *)(void *)((char *)n - offsetof(shoal__wentry, link));
    if (!e->at)
      e->expires += w->cur; /* its delay, from the time it was seen at */
    w->armed++;
    put(w, e);
  }
  while (w->cur < now) {
    if (w->armed == 0) {
      w->cur = now;
      break;
    }
    w->cur++;
    for (unsigned lv = 1; lv < LEVELS; lv++) {
      uint64_t span = UINT64_C(1) << (SLOT_BITS * lv);
      if ((w->cur & (span - 1)) != 0)
        break;
      slot_run(w, &w->slot[lv][(w->cur >> (SLOT_BITS * lv)) & (SLOTS - 1)]);
    }
    slot_run(w, &w->slot[0][w->cur & (SLOTS - 1)]);
  }
}

void shoal__wheel_clear(shoal__wheel *w) {
  shoal__node *n;
  while ((n = shoal__mpsc_pop(&w->q_head, &w->q_tail, &w->q_stub)) != NULL) {
    shoal__wentry *e =
        (shoal__wentry *)(void *)((char *)n - offsetof(shoal__wentry, link));
    w->armed++;
    over(w, e);
  }
  for (unsigned lv = 0; lv < LEVELS; lv++)
    for (unsigned s = 0; s < SLOTS; s++) {
      uint32_t list = w->slot[lv][s];
      w->slot[lv][s] = 0;
      while (list != 0) {
        shoal__wentry *e = w->ops->at(w->ctx, list - 1);
        list = e->next;
        over(w, e);
      }
    }
}
