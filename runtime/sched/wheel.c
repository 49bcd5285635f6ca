/* wheel.c — the hierarchical timing wheel (wheel.h): arming through a
 * lock-free queue, cancelling by CAS, and the tick that fires what is due
 * and cascades the rest down a level. */
#include <stddef.h>
#include <string.h>

#include "runtime/sched/wheel.h"

#define LEVELS SHOAL__WHEEL_LEVELS
#define SLOT_BITS 6u
#define SLOTS SHOAL__WHEEL_SLOTS
#define GEN_MASK 0x3fffffffu

_Static_assert(SLOTS == 1u << SLOT_BITS, "64 slots a level");

enum { W_ARMED = 1, W_CANCELLED = 2, W_CLAIMED = 3 };

void shoal__wheel_init(shoal__wheel *w, const shoal__wheel_ops *ops,
                       void *ctx) {
  shoal__inbox_init(&w->q, &w->q_stub);
  memset(w->slot, 0, sizeof w->slot);
  memset(&w->spare, 0, sizeof w->spare);
  w->overflow = 0;
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
  e->at = at;
  e->expires = t; /* a delay: made a time when the tick takes it */
  e->interval = interval;
  atomic_store_explicit(&e->state, e->gen << 2 | W_ARMED,
                        memory_order_relaxed);
  /* release (the push's exchange): the fields above before the tick can
   * take it */
  shoal__inbox_push(&w->q, &e->link);
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

/* Appends index i to slot sl, growing it; 0 when memory is short. */
static int slot_add(shoal__wslot *sl, uint32_t i) {
  if (sl->n == sl->cap) {
    uint32_t cap = sl->cap ? 2 * sl->cap : 16;
    uint32_t *v = shoal__realloc(sl->v, (size_t)cap * sizeof *v);
    if (v == NULL)
      return 0;
    sl->v = v;
    sl->cap = cap;
  }
  sl->v[sl->n++] = i;
  return 1;
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
  if (!slot_add(&w->slot[lv][s], e->index)) {
    /* no memory for the slot: tried again at the next tick */
    e->next = w->overflow;
    w->overflow = e->index + 1;
  }
}

static void over(shoal__wheel *w, shoal__wentry *e) {
  atomic_store_explicit(&e->state, 0, memory_order_relaxed);
  w->armed--;
  w->ops->done(w->ctx, e);
}

/* Prefetches this many entries ahead of the one a slot's run is on. */
#define AHEAD 8u

static void prefetch(const void *p) {
#if defined(__GNUC__)
  __builtin_prefetch(p, 1, 3);
#else
  (void)p;
#endif
}

/* One entry of a slot being run: fired when due, else put lower. */
/* An entry its claimer is still reading: looked at again next unit. */
static void later(shoal__wheel *w, shoal__wentry *e) {
  e->expires = w->cur + 1;
  put(w, e);
}

static void entry_run(shoal__wheel *w, shoal__wentry *e) {
  /* acquire: pairs with unclaim's release */
  uint32_t st = atomic_load_explicit(&e->state, memory_order_acquire);
  if ((st & 3u) == W_CLAIMED) {
    later(w, e);
    return;
  }
  if ((st & 3u) != W_ARMED) { /* cancelled: its storage back now */
    over(w, e);
    return;
  }
  if (e->expires > w->cur) {
    put(w, e);
    return;
  }
  if (e->interval == 0) {
    /* a one-shot is taken before it fires: a cancel or claim after this
     * fails; one that came first wins */
    uint32_t want = st;
    if (!atomic_compare_exchange_strong_explicit(&e->state, &want, 0,
                                                 memory_order_relaxed,
                                                 memory_order_relaxed)) {
      if ((want & 3u) == W_CLAIMED)
        later(w, e); /* claimed just now: its claimer reads it */
      else
        over(w, e); /* cancelled just now */
      return;
    }
  }
  /* the wheel moves one unit at a time: one firing per slot */
  if (w->ops->fire(w->ctx, e) == 0 && e->interval != 0) {
    /* acquire: as above */
    uint32_t now = atomic_load_explicit(&e->state, memory_order_acquire);
    if (now == st) { /* still armed (a cancel meanwhile wins): again */
      e->expires += e->interval;
      put(w, e);
      return;
    }
    if ((now & 3u) == W_CLAIMED) {
      later(w, e);
      return;
    }
  }
  over(w, e);
}

/* The entries of one slot: due ones fire, the others go lower. The slot
 * is swapped with the spare first, so that what is put meanwhile lands
 * in an empty array. */
static void slot_run(shoal__wheel *w, shoal__wslot *sl) {
  shoal__wslot run = *sl;
  uint32_t n = run.n;
  if (n == 0)
    return;
  *sl = w->spare;
  sl->n = 0;
  for (uint32_t k = 0; k < AHEAD && k < n; k++)
    prefetch(w->ops->at(w->ctx, run.v[k]));
  for (uint32_t k = 0; k < n; k++) {
    if (k + AHEAD < n)
      prefetch(w->ops->at(w->ctx, run.v[k + AHEAD]));
    entry_run(w, w->ops->at(w->ctx, run.v[k]));
  }
  run.n = 0;
  w->spare = run; /* its memory serves the next slot run */
}

void shoal__wheel_tick(shoal__wheel *w, uint64_t now, uint32_t take_max) {
  shoal__node *n;
  /* what was armed since the last tick, at most take_max (threads that
   * arm without pause must not hold the tick) */
  for (uint32_t k = 0;
       k < take_max &&
       (n = shoal__inbox_pop(&w->q)) != NULL;
       k++) {
    shoal__wentry *e =
        (shoal__wentry *)(void *)((char *)n - offsetof(shoal__wentry, link));
    if (!e->at) {
      e->expires += w->cur; /* its delay, from the time it was seen at */
      e->at = 1;            /* a time from now on (the owner reads it) */
    }
    w->armed++;
    put(w, e);
  }
  if (w->overflow != 0) { /* what memory kept out of the slots last time */
    uint32_t list = w->overflow;
    w->overflow = 0;
    while (list != 0) {
      shoal__wentry *e = w->ops->at(w->ctx, list - 1);
      list = e->next;
      entry_run(w, e);
    }
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
  while (w->overflow != 0) {
    shoal__wentry *e = w->ops->at(w->ctx, w->overflow - 1);
    w->overflow = e->next;
    over(w, e);
  }
  while ((n = shoal__inbox_pop(&w->q)) != NULL) {
    shoal__wentry *e =
        (shoal__wentry *)(void *)((char *)n - offsetof(shoal__wentry, link));
    w->armed++;
    over(w, e);
  }
  for (unsigned lv = 0; lv < LEVELS; lv++)
    for (unsigned s = 0; s < SLOTS; s++) {
      shoal__wslot *sl = &w->slot[lv][s];
      for (uint32_t k = 0; k < sl->n; k++)
        over(w, w->ops->at(w->ctx, sl->v[k]));
      shoal__free(sl->v);
      memset(sl, 0, sizeof *sl);
    }
  shoal__free(w->spare.v);
  memset(&w->spare, 0, sizeof w->spare);
}
