/* router.c — actor lookup by id: an open-addressing table of record slots
 * (linear probing, Fibonacci hashing, tombstones for deletions) read
 * without any lock on the send path; registration and unregistration
 * write it under the system's mutex.
 *
 * Readers are safe without reclamation: an entry names a record of the
 * system's fixed array, never freed while the system lives, and the
 * record's id and mailbox generation (actor.c, resolve) tell whether it is
 * still the actor looked for. Keys never move, so a probe never misses a
 * key that stays registered; a tombstone becomes empty only when the entry
 * after it is empty, when no probe sequence can pass through it. */
#include "runtime/actor.h"

enum { EMPTY = 0, DELETED = 1 };

static uint64_t home_of(const shoal_actors *sys, uint64_t id) {
  return (id * UINT64_C(0x9E3779B97F4A7C15)) >> sys->table_shift;
}

/* Any thread. */
shoal_actor *shoal__router_find(shoal_actors *sys, uint64_t id) {
  uint64_t i = home_of(sys, id);
  for (uint64_t n = 0; n <= sys->table_mask; n++, i = (i + 1) & sys->table_mask) {
    /* acquire: pairs with insert's release, so that the record's id is
     * the one written before the entry. */
    uint32_t e = atomic_load_explicit(&sys->table[i], memory_order_acquire);
    shoal_actor *a;
    if (e == EMPTY)
      return NULL;
    if (e == DELETED)
      continue;
    a = &sys->recs[e - 2];
    if (atomic_load_explicit(&a->id, memory_order_relaxed) == id)
      return a;
  }
  return NULL;
}

/* Under sys->mu; id is not in the table. The table has twice as many
 * entries as records, so a free one exists. */
int shoal__router_insert(shoal_actors *sys, uint64_t id, unsigned slot) {
  uint64_t i = home_of(sys, id);
  for (;;) {
    uint32_t e = atomic_load_explicit(&sys->table[i], memory_order_relaxed);
    if (e == EMPTY || e == DELETED) {
      /* release: the record (its id) before the entry that finds it. */
      atomic_store_explicit(&sys->table[i], slot + 2, memory_order_release);
      return SHOAL_OK;
    }
    i = (i + 1) & sys->table_mask;
  }
}

/* Under sys->mu. */
int shoal__router_remove(shoal_actors *sys, uint64_t id) {
  uint64_t i = home_of(sys, id);
  for (uint64_t n = 0; n <= sys->table_mask; n++, i = (i + 1) & sys->table_mask) {
    uint32_t e = atomic_load_explicit(&sys->table[i], memory_order_relaxed);
    if (e == EMPTY)
      return SHOAL_ENOENT;
    if (e == DELETED ||
        atomic_load_explicit(&sys->recs[e - 2].id, memory_order_relaxed) != id)
      continue;
    if (atomic_load_explicit(&sys->table[(i + 1) & sys->table_mask],
                             memory_order_relaxed) != EMPTY) {
      atomic_store_explicit(&sys->table[i], DELETED, memory_order_relaxed);
      return SHOAL_OK;
    }
    /* The chain ends here: this entry and the tombstones before it can
     * become empty. */
    do {
      atomic_store_explicit(&sys->table[i], EMPTY, memory_order_relaxed);
      i = (i - 1) & sys->table_mask;
    } while (atomic_load_explicit(&sys->table[i], memory_order_relaxed) ==
             DELETED);
    return SHOAL_OK;
  }
  return SHOAL_ENOENT;
}
