/* members.h — who is on each map and in each group, active and
 * hibernated alike: one list of ids per key, so that a broadcast or a
 * listing reads one list instead of scanning every session. members.c
 * owns it; the manager keeps two (maps, groups) and each session's place
 * in its two lists (shoal__session.pos, shoal__out.pos). Internal.
 *
 * Synchronization table:
 *
 *   call                      caller                concurrent with
 *   shoal__members_add,       under the manager's   readers of other keys;
 *   _remove                   mu (its stripe's      readers of the same
 *                             write lock inside)    stripe wait
 *   shoal__members_lock,      any thread, mu not    adds and removes of
 *   _unlock                   needed                other stripes
 *
 * A stripe's lock is a reader-writer lock: broadcasts to one map run at
 * once. Lock order: mu, then a stripe; a holder of a stripe never takes
 * mu (a broadcast leaves what needs mu until it has let the stripe go). */
#ifndef SHOAL_SESSIONS_MEMBERS_H
#define SHOAL_SESSIONS_MEMBERS_H

#include <pthread.h>
#include <stdalign.h>
#include <stdint.h>

#include "runtime/common.h"

/* One key's members, in no order. */
typedef struct shoal__mlist {
  uint32_t key, n, cap;
  uint32_t *ids;
} shoal__mlist;

typedef struct shoal__mstripe {
  alignas(SHOAL__FALSE_SHARING) pthread_rwlock_t lock;
  shoal__mlist *lists; /* sorted by key, none empty */
  uint32_t n, cap;
} shoal__mstripe;

#define SHOAL__MSTRIPES 64u

typedef struct shoal__members {
  shoal__mstripe s[SHOAL__MSTRIPES];
  uint64_t keys; /* lists, under mu */
} shoal__members;

int shoal__members_init(shoal__members *m);
void shoal__members_destroy(shoal__members *m);
/* id joins key's list at *pos. SHOAL_ENOMEM (then nothing changed). */
int shoal__members_add(shoal__members *m, uint32_t key, uint32_t id,
                       uint32_t *pos);
/* The id at pos leaves key's list; the last member fills its place:
 * returns that member's id (its position is now pos), 0 when none
 * moved. */
uint32_t shoal__members_remove(shoal__members *m, uint32_t key, uint32_t pos);
/* key's list held for reading (NULL when it has no member: the stripe is
 * held all the same), until shoal__members_unlock(m, key). */
const shoal__mlist *shoal__members_lock(shoal__members *m, uint32_t key);
void shoal__members_unlock(shoal__members *m, uint32_t key);
/* Every non-empty list of every stripe, one stripe held at a time:
 * f(arg, list). */
void shoal__members_each(shoal__members *m,
                         void (*f)(void *arg, const shoal__mlist *l),
                         void *arg);

#endif /* SHOAL_SESSIONS_MEMBERS_H */
