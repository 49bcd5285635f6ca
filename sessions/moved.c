/* moved.c — the ids of sessions exported lately (shoal_session_export),
 * so that a call naming one answers SHOAL_EMOVED instead of SHOAL_ENOENT
 * for SessionMgr.MovedSeconds of manager time: the host then forwards
 * rather than drops. An open-addressing table of ids with linear probing
 * and deletion by backward shift (Knuth, TAOCP 3, 6.4, Algorithm R), so
 * that it keeps no tombstones of its own; under mu, on the slow paths
 * only (a miss in the registry). An entry past its time goes when a
 * lookup meets it or when the table would grow. */
#include <string.h>

#include "runtime/alloc.h"
#include "sessions/mgr.h"

static uint32_t home(const shoal__moved *t, uint32_t id) {
  return (uint32_t)(((uint64_t)id * UINT64_C(0x9E3779B97F4A7C15)) >> 32) &
         (t->cap - 1);
}

/* id's entry, or cap when it has none. */
static uint32_t find(const shoal__moved *t, uint32_t id) {
  if (t->cap == 0)
    return 0; /* == cap */
  for (uint32_t i = home(t, id);; i = (i + 1) & (t->cap - 1)) {
    if (t->ids[i] == id)
      return i;
    if (t->ids[i] == 0)
      return t->cap;
  }
}

/* Empties entry i and moves back the entries after it that a probe
 * would no longer reach (Algorithm R). */
static void remove_at(shoal__moved *t, uint32_t i) {
  uint32_t mask = t->cap - 1, j = i;
  t->ids[i] = 0;
  t->n--;
  for (;;) {
    uint32_t h;
    j = (j + 1) & mask;
    if (t->ids[j] == 0)
      return;
    h = home(t, t->ids[j]);
    /* j's entry may move to i when its home is not in (i, j], cyclically */
    if ((i <= j) ? (i < h && h <= j) : (i < h || h <= j))
      continue;
    t->ids[i] = t->ids[j];
    t->until[i] = t->until[j];
    t->ids[j] = 0;
    i = j;
  }
}

static void put(shoal__moved *t, uint32_t id, uint64_t until) {
  uint32_t i = home(t, id);
  while (t->ids[i] != 0 && t->ids[i] != id)
    i = (i + 1) & (t->cap - 1);
  t->n += t->ids[i] == 0;
  t->ids[i] = id;
  t->until[i] = until;
}

/* A table of cap entries holding the entries of t still in time. */
static int rebuild(shoal__moved *t, uint32_t cap, uint64_t now) {
  shoal__moved nt = {NULL, NULL, cap, 0};
  nt.ids = shoal__calloc(cap, sizeof *nt.ids);
  nt.until = shoal__malloc(cap * sizeof *nt.until);
  if (nt.ids == NULL || nt.until == NULL) {
    shoal__free(nt.ids);
    shoal__free(nt.until);
    return SHOAL_ENOMEM;
  }
  for (uint32_t i = 0; i < t->cap; i++)
    if (t->ids[i] != 0 && t->until[i] > now)
      put(&nt, t->ids[i], t->until[i]);
  shoal__free(t->ids);
  shoal__free(t->until);
  *t = nt;
  return SHOAL_OK;
}

int shoal__moved_add(shoal_mgr *mgr, uint32_t id) {
  shoal__moved *t = &mgr->moved;
  uint64_t now = mgr->clock_ms;
  uint64_t ms = (uint64_t)mgr->cfg.moved_seconds * 1000u;
  int rc;
  if (ms == 0)
    return SHOAL_OK;
  if (2 * ((uint64_t)t->n + 1) > t->cap) {
    /* first without the stale entries; grown when still half full */
    uint32_t cap = t->cap == 0 ? 64 : t->cap;
    uint32_t live = 0;
    for (uint32_t i = 0; i < t->cap; i++)
      live += t->ids[i] != 0 && t->until[i] > now;
    while (2 * ((uint64_t)live + 1) > cap && cap < (1u << 30))
      cap *= 2;
    if ((rc = rebuild(t, cap, now)) != SHOAL_OK)
      return rc;
  }
  put(t, id, now + ms);
  return SHOAL_OK;
}

void shoal__moved_del(shoal_mgr *mgr, uint32_t id) {
  shoal__moved *t = &mgr->moved;
  uint32_t i = find(t, id);
  if (i < t->cap)
    remove_at(t, i);
}

int shoal__mgr_gone(shoal_mgr *mgr, uint32_t id) {
  shoal__moved *t = &mgr->moved;
  uint32_t i = find(t, id);
  if (i >= t->cap)
    return SHOAL_ENOENT;
  if (t->until[i] <= mgr->clock_ms) {
    remove_at(t, i);
    return SHOAL_ENOENT;
  }
  return SHOAL_EMOVED;
}

void shoal__moved_destroy(shoal_mgr *mgr) {
  shoal__free(mgr->moved.ids);
  shoal__free(mgr->moved.until);
  memset(&mgr->moved, 0, sizeof mgr->moved);
}
