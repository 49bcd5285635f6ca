/* cols.h — the active array: one slot per active session, its per-session
 * data in columns (structure of arrays), so that a tick walks a few dense
 * arrays and a metric sums one column with SIMD. cols.c owns the columns,
 * the seqlock around slot moves, the moves themselves and the NUMA
 * segments; the rules they keep are in mgr.h's head. Internal. */
#ifndef SHOAL_SESSIONS_COLS_H
#define SHOAL_SESSIONS_COLS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "shoal.h"

typedef struct shoal__session shoal__session;

/* sched column: interval << 16 | (id % interval); 0: quarantined. */
#define SHOAL__SCHED(iv, id) (((uint32_t)(iv) << 16) | ((id) % (iv)))
#define SHOAL__SCHED_EVERY SHOAL__SCHED(1, 0)

typedef struct shoal__cols {
  uint32_t cap;
  uint32_t *rec;               /* pool index */
  shoal__session **sess;       /* its record */
  uint32_t *ids;
  _Atomic uint32_t *sched;
  _Atomic uint32_t *map;
  _Atomic uint32_t *group;
  _Atomic(void *) *user;
  uint64_t *last_ms;           /* manager clock at its last update */
  uint64_t *updates;           /* in the metrics window */
  uint64_t *activity;          /* in the metrics window */
  uint64_t *last_active;       /* manager clock at its last reported work */
  size_t bytes;
} shoal__cols;

/* Columns for cap slots and the spare one that swaps go through, with the
 * first n copied from old (may be NULL); NULL when memory is short. Under
 * mu (or at create and destroy); a replaced set is freed only at destroy,
 * since get may still read it. */
shoal__cols *shoal__cols_new(uint32_t cap, const shoal__cols *old,
                             uint32_t n);
void shoal__cols_free(shoal__cols *c);
/* Room for cap slots: a new column set published (the old one retired,
 * get may still read it). Under mu, no tick running. */
int shoal__cols_grow(shoal_mgr *mgr, uint32_t cap);
/* Gives back the pages of the columns past the slots in use (and the
 * spare); returns the bytes. Under mu, no tick running. */
size_t shoal__cols_trim(shoal_mgr *mgr);

/* The seqlock around slot moves (Boehm, MSPC 2012; mgr.h). Writers hold
 * mu; readers: shoal_session_get. */
void shoal__moves_begin(shoal_mgr *mgr);
void shoal__moves_end(shoal_mgr *mgr);

/* Sorts the sessions waiting past the segments into them. Under mu, no
 * tick running. */
void shoal__slots_join(shoal_mgr *mgr);
/* Takes s out of the active array (its slot filled as mgr.h says); the
 * caller is inside shoal__moves_begin/end. Under mu, no tick running. */
void shoal__slot_take(shoal_mgr *mgr, shoal__session *s);
/* A released session leaves the active array (if it is there) and its
 * packets, inbox and deferred, are dropped. Under mu, no tick running. */
void shoal__slot_release(shoal_mgr *mgr, shoal__session *s);

#endif /* SHOAL_SESSIONS_COLS_H */
