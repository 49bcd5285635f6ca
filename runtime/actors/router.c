/* router.c — actor lookup by id: the id table (idtable.h) over the
 * system's records, read without any lock on the send path; registration
 * and unregistration write it under the system's mutex. An entry names a
 * record of the system's fixed array, never freed while the system lives;
 * the record's id and mailbox generation (actor.c, shoal__resolve) tell whether
 * it is still the actor looked for. */
#include "runtime/actors/actor.h"

static inline uint64_t record_id(const shoal_actors *sys, uint32_t slot) {
  return atomic_load_explicit(&sys->recs[slot].id, memory_order_relaxed);
}

SHOAL__IDTABLE_DEFINE(router, const shoal_actors *, record_id)

/* Any thread. */
shoal_actor *shoal__router_find(shoal_actors *sys, uint64_t id) {
  int64_t slot = router_find(&sys->table, sys, id);
  return slot >= 0 ? &sys->recs[slot] : NULL;
}

/* Under sys->mu; id is not in the table. */
int shoal__router_insert(shoal_actors *sys, uint64_t id, unsigned slot) {
  return shoal__idtable_insert(&sys->table, id, slot);
}

/* Under sys->mu. Every quarter of the table's size in removals, a sweep
 * empties the tombstones no probe needs (idtable.h): ids only grow, and
 * the table would otherwise fill with them. */
int shoal__router_remove(shoal_actors *sys, uint64_t id) {
  int rc = router_remove(&sys->table, sys, id);
  if (rc == SHOAL_OK && ++sys->table_removes >= (sys->table.mask + 1) / 4) {
    (void)router_sweep(&sys->table, sys);
    sys->table_removes = 0;
  }
  return rc;
}
