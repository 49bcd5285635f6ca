/* defrag.c — defragmentation: the columns past the slots in use, the
 * pool's wholly free slabs and the registry's replaced tables given back,
 * hibernate/'s table and records through its hook, then the allocator
 * collected on every worker. It runs with or without hibernation
 * (shoal_mgr_defragment); updates run it every DefragmentationInterval
 * while hibernation is on (EnableAutoDefragmentation). */
#include <string.h>

#include "runtime/alloc.h"
#include "runtime/os.h"
#include "runtime/sched/sched.h"
#include "sessions/mgr.h"

void shoal__mgr_defrag(shoal_mgr *mgr, shoal_defrag_report *out) {
  shoal_defrag_report r;
  uint64_t t0 = shoal__now_ns();
  memset(&r, 0, sizeof r);
  r.rss_before = shoal__rss_bytes();
  /* What is freed below goes back at once, not after mimalloc's delay
   * (which a collect does not cut short: runtime/alloc.c). */
  shoal__alloc_release_begin();
  pthread_mutex_lock(&mgr->mu);
  r.columns_bytes = shoal__cols_trim(mgr);
  r.pool_bytes = shoal__pool_trim(&mgr->pool);
  /* The registry's finds miss only into a look under mu (mgr.c). */
  r.table_bytes = shoal__registry_trim(&mgr->reg);
  if (mgr->hooks != NULL)
    r.table_bytes += mgr->hooks->defrag(mgr);
  pthread_mutex_unlock(&mgr->mu);
  shoal__runtime_collect(mgr->rt, 1);
  shoal__alloc_release_end();
  r.rss_after = shoal__rss_bytes();
  r.bytes_returned =
      r.rss_before > r.rss_after ? r.rss_before - r.rss_after : 0;
  r.ns = shoal__now_ns() - t0;
  pthread_mutex_lock(&mgr->mu);
  mgr->defrags++;
  mgr->defrag_returned = r.bytes_returned;
  pthread_mutex_unlock(&mgr->mu);
  if (out != NULL)
    *out = r;
}

void shoal__defrag_tick(shoal_mgr *mgr) {
  if (mgr->cfg.auto_defragment &&
      mgr->clock_ms - mgr->last_defrag_ms >=
          (uint64_t)mgr->cfg.defragment_seconds * 1000u) {
    mgr->last_defrag_ms = mgr->clock_ms;
    shoal__mgr_defrag(mgr, NULL);
  }
}

static void held_defrag(shoal_mgr *mgr, void *arg) {
  shoal__mgr_defrag(mgr, arg);
}

int shoal_mgr_defragment(shoal_mgr *mgr, shoal_defrag_report *out) {
  if (mgr == NULL)
    return SHOAL_EINVAL;
  return shoal__mgr_hold(mgr, held_defrag, out);
}
