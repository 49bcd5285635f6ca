/* wheel.h — a hierarchical timing wheel (Varghese and Lauck, "Hashed and
 * Hierarchical Timing Wheels", SOSP 1987, scheme 7; the Linux kernel's
 * timer wheel is the model): 4 levels of 64 slots of 1, 64, 4096 and
 * 262 144 ticks, so arming and cancelling are O(1) and a tick visits one
 * level-0 slot per unit of time and a higher slot each time a lower level
 * wraps (its entries cascade down). Used by the session manager's timers
 * and request timeouts (sessions/timers.c) and by the actor system's
 * request timeouts (runtime/actors/reply.c).
 *
 * The entries are the owner's: it embeds a shoal__wentry in its records,
 * which live in its own storage, named by index (ops->at). A slot is an
 * array of indices rather than a list through the entries, so that a tick
 * walking it prefetches the entries ahead instead of chasing one cache
 * miss after another; the arrays grow (on the ticking thread) and keep
 * their size, so a warm wheel allocates nothing.
 *
 * Synchronization table:
 *
 *   call                 caller                       concurrent with
 *   shoal__wheel_arm     any thread                   arms, cancels, tick
 *   shoal__wheel_cancel  any thread                   arms, cancels, tick
 *   shoal__wheel_tick    the owner (one thread)       arms, cancels
 *   shoal__wheel_clear   the owner, no arm running    cancels
 *   shoal__wheel_init    one thread, nobody else touching it
 *
 * An armed entry is pushed on a lock-free queue (inbox.h's Vyukov MPSC)
 * that the tick drains into the slots; only the ticking thread touches
 * the slots. A cancel is one CAS on the entry's state word (gen << 2 |
 * state), which the tick reads when the entry's slot comes up. Internal. */
#ifndef SHOAL_SCHED_WHEEL_H
#define SHOAL_SCHED_WHEEL_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>

#include "runtime/common.h"
#include "runtime/sched/inbox.h"

#define SHOAL__WHEEL_LEVELS 4u
#define SHOAL__WHEEL_SLOTS 64u

/* An entry, embedded in the owner's record. */
typedef struct shoal__wentry {
  _Atomic uint32_t state; /* gen << 2 | ARMED (1) / CANCELLED (2) /
                             CLAIMED (3); 0 idle */
  uint32_t gen;           /* its latest arming (30 bits): kept across reuse */
  uint32_t index;         /* in the owner's storage: set by the owner */
  uint32_t at;            /* 1: expires is a time, not a delay */
  uint32_t next;          /* the overflow list: index + 1 */
  shoal__node link;       /* the arm queue */
  uint64_t expires, interval;
} shoal__wentry;

typedef struct shoal__wheel_ops {
  shoal__wentry *(*at)(void *ctx, uint32_t index);
  /* Its time came (a one-shot is already claimed: a cancel now fails).
   * 0: done, a periodic one goes around again unless cancelled; 1: it is
   * over (its target is gone). On the ticking thread. */
  int (*fire)(void *ctx, shoal__wentry *e);
  /* It is over (fired, cancelled, or cleared): its storage back. */
  void (*done)(void *ctx, shoal__wentry *e);
} shoal__wheel_ops;

/* A slot: the indices of its entries. */
typedef struct shoal__wslot {
  uint32_t *v;
  uint32_t n, cap;
} shoal__wslot;

typedef struct shoal__wheel {
  shoal__inbox q;     /* what was armed since the last tick */
  shoal__node q_stub; /* q's permanent node */
  shoal__wslot slot[SHOAL__WHEEL_LEVELS][SHOAL__WHEEL_SLOTS];
  shoal__wslot spare; /* what a slot being run is swapped with */
  uint32_t overflow;  /* entries no slot could take (memory was short),
                         put again at the next tick: index + 1 */
  uint64_t cur;   /* the wheel's time */
  uint64_t armed; /* entries in the slots */
  const shoal__wheel_ops *ops;
  void *ctx;
} shoal__wheel;

void shoal__wheel_init(shoal__wheel *w, const shoal__wheel_ops *ops,
                       void *ctx);
/* Arms e (its index set): due `delay` after the wheel's time when the
 * tick takes it, then every `interval` when not 0. Returns its handle,
 * gen << 32 | index + 1. Any thread. */
uint64_t shoal__wheel_arm(shoal__wheel *w, shoal__wentry *e, uint64_t delay,
                          uint64_t interval);
/* The same, due at the wheel's time `when` (a clock the arming thread
 * reads as the ticking one does); one already past fires at the next
 * tick. */
uint64_t shoal__wheel_arm_at(shoal__wheel *w, shoal__wentry *e, uint64_t when,
                             uint64_t interval);
/* 1 when this call cancelled e's arming gen (it fires no more), else 0
 * (fired once, cancelled, or a later arming). Any thread. */
int shoal__wheel_cancel(shoal__wentry *e, uint32_t gen);
/* Claims a one-shot's arming gen for its owner (a reply that answers a
 * request before its timeout): 1 when claimed, and then it fires no more
 * and stays in its slot, untouched by the tick, until
 * shoal__wheel_unclaim; 0 when it fired, was cancelled or claimed, or is
 * a later arming. Any thread. */
int shoal__wheel_claim(shoal__wentry *e, uint32_t gen);
/* Ends a claim: the tick gives the entry back (done) when its slot comes
 * up. restore 1 arms it again instead (the claim was a mistake). */
void shoal__wheel_unclaim(shoal__wentry *e, uint32_t gen, int restore);
/* A handle's tag in 58 bits (30 of gen, 28 of index + 1) and back: reply
 * addresses carry it. The index must be below 2^28 - 1. */
static inline uint64_t shoal__wheel_tag(uint64_t handle) {
  return (handle >> 32) << 28 | (handle & ((UINT64_C(1) << 28) - 1));
}
static inline uint64_t shoal__wheel_untag(uint64_t tag) {
  return (tag >> 28 & 0x3fffffffu) << 32 | (tag & ((UINT64_C(1) << 28) - 1));
}
#define SHOAL__WHEEL_INDEX_MAX ((1u << 28) - 2u)
/* Takes what was armed meanwhile (at most take_max) and fires what is due
 * up to now. The owner. */
void shoal__wheel_tick(shoal__wheel *w, uint64_t now, uint32_t take_max);
/* Every entry still queued or in the slots goes to done, and the slots'
 * memory is freed. The owner, once no arm can run. */
void shoal__wheel_clear(shoal__wheel *w);

#endif /* SHOAL_SCHED_WHEEL_H */
