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
 * Synchronization table:
 *
 *   call                            caller       concurrent with
 *   shoal__registry_find            any thread   anything
 *   shoal__registry_insert, _remove any thread   anything (shard mutex)
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

typedef struct shoal__reg_shard {
  alignas(SHOAL_FALSE_SHARING) _Atomic(shoal__idtable *) table;
  uint64_t count;      /* ids in it; under mu */
  pthread_mutex_t mu;
  void **retired;      /* tables replaced; under mu */
  size_t nretired;
} shoal__reg_shard;

typedef struct shoal__registry {
  shoal__pool *pool;
  shoal__reg_shard shards[SHOAL__REGISTRY_SHARDS];
} shoal__registry;

/* Tables sized for `expected` ids in all (they grow past it).
 * SHOAL_ENOMEM. */
int shoal__registry_init(shoal__registry *r, shoal__pool *pool,
                         uint64_t expected);
void shoal__registry_destroy(shoal__registry *r);

/* The pool index of id, or -1 (id 0 is never in). */
int64_t shoal__registry_find(shoal__registry *r, uint32_t id);
/* The element at index carries id already. SHOAL_EEXIST when id is in,
 * SHOAL_EINVAL for id 0, SHOAL_ENOMEM when a table cannot grow. */
int shoal__registry_insert(shoal__registry *r, uint32_t id, uint32_t index);
/* SHOAL_ENOENT when id is not in. The element still carries id. */
int shoal__registry_remove(shoal__registry *r, uint32_t id);
/* Ids in the registry (a snapshot). */
uint64_t shoal__registry_count(shoal__registry *r);
/* Bytes of the shards' live tables. */
uint64_t shoal__registry_bytes(shoal__registry *r);

#endif /* SHOAL_REGISTRY_H */
