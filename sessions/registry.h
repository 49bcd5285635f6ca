/* registry.h — account id → session (its pool index), sharded: 16 shards
 * by the id's hash, each an id table (runtime/idtable.h) read without any
 * lock and written under the shard's mutex. Internal to the library.
 *
 * The key of a pool element is the `_Atomic uint32_t` at its start (the
 * session's account id; 0 while free). A find may return an element that
 * was released and reused for another id after the probe read its entry:
 * the caller checks the element's id (and state) again.
 *
 * A shard's table doubles when it is half full: the new table is
 * published for readers and the old one kept until the registry goes, so
 * the memory kept is at most that of the last tables once more.
 *
 * A hibernated session has no pool element: its entry holds
 * SHOAL__REG_OUT | its slot in hibernate/'s table, and the registry keeps
 * the id of each such slot itself (the out ids: chunks of 4096 ids that
 * never move nor go before the registry, so that a lock-free probe may
 * read them). A find returns the value whole; the caller tells the two
 * kinds apart by the bit.
 *
 * Synchronization table:
 *
 *   call                            caller       concurrent with
 *   shoal__registry_find            any thread   anything
 *   shoal__registry_insert, _remove any thread   anything (shard mutex)
 *   shoal__registry_replace         any thread   anything (shard mutex)
 *   shoal__registry_out_set         one writer   finds
 *   shoal__registry_init, _destroy  one thread, no other touching it */
#ifndef SHOAL_REGISTRY_H
#define SHOAL_REGISTRY_H

#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>

#include "pool/pool.h"
#include "runtime/idtable.h"

#define SHOAL__REGISTRY_SHARDS 16 /* a power of two */
/* A value with this bit names an out slot, not a pool element. */
#define SHOAL__REG_OUT (1u << 31)
#define SHOAL__REG_OUT_CHUNK 4096u
#define SHOAL__REG_OUT_MAX (1u << 24) /* out slots at most */

typedef struct shoal__reg_shard {
  alignas(SHOAL__FALSE_SHARING) _Atomic(shoal__idtable *) table;
  uint64_t count;      /* ids in it; under mu */
  uint64_t removes;    /* since its last sweep; under mu */
  pthread_mutex_t mu;
  void **retired;      /* tables replaced; under mu */
  size_t nretired;
  size_t ntrimmed;     /* of them, pages given back; under mu */
} shoal__reg_shard;

typedef struct shoal__registry {
  shoal__pool *pool;
  shoal__reg_shard shards[SHOAL__REGISTRY_SHARDS];
  /* The out ids: SHOAL__REG_OUT_MAX / SHOAL__REG_OUT_CHUNK chunk
   * pointers, each chunk allocated on first use. */
  _Atomic(_Atomic uint32_t *) *out;
  uint64_t out_chunks;   /* allocated; the writer's */
} shoal__registry;

/* Tables sized for `expected` ids in all (they grow past it).
 * SHOAL_ENOMEM. */
int shoal__registry_init(shoal__registry *r, shoal__pool *pool,
                         uint64_t expected);
void shoal__registry_destroy(shoal__registry *r);

/* The value of id: its pool index, or SHOAL__REG_OUT | its out slot; -1
 * when it is not in (id 0 never is). */
int64_t shoal__registry_find(shoal__registry *r, uint32_t id);
/* id's entry holds value from now on; a concurrent find sees the old
 * value or the new one, never a miss, so both must carry id meanwhile.
 * SHOAL_ENOENT when id is not in. */
int shoal__registry_replace(shoal__registry *r, uint32_t id, uint32_t value);
/* Out slot `slot` carries id from now on (0: none). SHOAL_ENOMEM when its
 * chunk cannot be allocated, SHOAL_ELIMIT past SHOAL__REG_OUT_MAX. The one
 * writer (the manager's lock). */
int shoal__registry_out_set(shoal__registry *r, uint32_t slot, uint32_t id);
/* The element at index carries id already. SHOAL_EEXIST when id is in,
 * SHOAL_EINVAL for id 0, SHOAL_ENOMEM when a table cannot grow. */
int shoal__registry_insert(shoal__registry *r, uint32_t id, uint32_t index);
/* SHOAL_ENOENT when id is not in. The element still carries id. */
int shoal__registry_remove(shoal__registry *r, uint32_t id);
/* Gives back the pages of the tables that growth replaced. A find still
 * probing one of them reads zeros from then on, so it may miss an id that
 * is in: only for owners whose callers look again under their own lock
 * after a miss, as the session manager's do. Returns the bytes. */
size_t shoal__registry_trim(shoal__registry *r);
/* Ids in the registry (a snapshot). */
uint64_t shoal__registry_count(shoal__registry *r);
/* Bytes of the shards' live tables. */
uint64_t shoal__registry_bytes(shoal__registry *r);

/* Tombstones in the live tables now, and in *entries (may be NULL) their
 * entries: what a find of an absent id may walk. Any thread (takes each
 * shard's lock). */
uint64_t shoal__registry_tombstones(shoal__registry *r, uint64_t *entries);

#endif /* SHOAL_REGISTRY_H */
