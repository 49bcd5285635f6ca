/* cols.c — the active array (cols.h): the columns and their growth and
 * trimming, the seqlock around slot moves, the moves, and the NUMA
 * segments kept in node order (mgr.h's head says how). */
#include <string.h>

#include "runtime/alloc.h"
#include "runtime/os.h"
#include "sessions/mgr.h"

/* ------------------------------------------------------------------------ */
/* Columns                                                                  */
/* ------------------------------------------------------------------------ */

void shoal__cols_free(shoal__cols *c) {
  if (c == NULL)
    return;
  shoal__free(c->rec);
  shoal__free((void *)c->sess);
  shoal__free(c->ids);
  shoal__free((void *)c->sched);
  shoal__free((void *)c->map);
  shoal__free((void *)c->group);
  shoal__free((void *)c->user);
  shoal__free(c->last_ms);
  shoal__free(c->updates);
  shoal__free(c->activity);
  shoal__free(c->last_active);
  shoal__free(c);
}

/* cap slots and the spare one that swap_slots goes through. */
static void *col_alloc(shoal__cols *c, size_t elem) {
  size_t n = (((size_t)c->cap + 1) * elem + SHOAL__CACHE_LINE - 1) &
             ~(size_t)(SHOAL__CACHE_LINE - 1);
  void *p = shoal__aligned_alloc(SHOAL__CACHE_LINE, n);
  if (p != NULL) {
    memset(p, 0, n);
    c->bytes += n;
  }
  return p;
}

shoal__cols *shoal__cols_new(uint32_t cap, const shoal__cols *old,
                             uint32_t n) {
  shoal__cols *c = shoal__calloc(1, sizeof *c);
  if (c == NULL)
    return NULL;
  c->cap = cap;
  c->bytes = sizeof *c;
  c->rec = col_alloc(c, sizeof *c->rec);
  c->sess = col_alloc(c, sizeof *c->sess);
  c->ids = col_alloc(c, sizeof *c->ids);
  c->sched = col_alloc(c, sizeof *c->sched);
  c->map = col_alloc(c, sizeof *c->map);
  c->group = col_alloc(c, sizeof *c->group);
  c->user = col_alloc(c, sizeof *c->user);
  c->last_ms = col_alloc(c, sizeof *c->last_ms);
  c->updates = col_alloc(c, sizeof *c->updates);
  c->activity = col_alloc(c, sizeof *c->activity);
  c->last_active = col_alloc(c, sizeof *c->last_active);
  if (c->rec == NULL || c->sess == NULL || c->ids == NULL || c->sched == NULL ||
      c->map == NULL || c->group == NULL || c->user == NULL ||
      c->last_ms == NULL || c->updates == NULL || c->activity == NULL ||
      c->last_active == NULL) {
    shoal__cols_free(c);
    return NULL;
  }
  for (uint32_t i = 0; old != NULL && i < n; i++) {
    c->rec[i] = old->rec[i];
    c->sess[i] = old->sess[i];
    c->ids[i] = old->ids[i];
    atomic_init(&c->sched[i], atomic_load_explicit(&old->sched[i],
                                                   memory_order_relaxed));
    atomic_init(&c->map[i], atomic_load_explicit(&old->map[i],
                                                 memory_order_relaxed));
    atomic_init(&c->group[i], atomic_load_explicit(&old->group[i],
                                                   memory_order_relaxed));
    atomic_init(&c->user[i], atomic_load_explicit(&old->user[i],
                                                  memory_order_relaxed));
    c->last_ms[i] = old->last_ms[i];
    c->updates[i] = old->updates[i];
    c->activity[i] = old->activity[i];
    c->last_active[i] = old->last_active[i];
  }
  return c;
}

/* The seqlock around slot moves (mgr.h). Writers hold mu. */
void shoal__moves_begin(shoal_mgr *mgr) {
  uint32_t s = atomic_load_explicit(&mgr->moves, memory_order_relaxed);
  atomic_store_explicit(&mgr->moves, s + 1, memory_order_relaxed);
  /* release fence: a reader that sees a moved value also sees the odd
   * count (its acquire fence pairs with this). */
  atomic_thread_fence(memory_order_release);
}

void shoal__moves_end(shoal_mgr *mgr) {
  uint32_t s = atomic_load_explicit(&mgr->moves, memory_order_relaxed);
  /* release: the moves before it are visible to a reader that reads the
   * even count. */
  atomic_store_explicit(&mgr->moves, s + 1, memory_order_release);
}

int shoal__cols_grow(shoal_mgr *mgr, uint32_t cap) {
  shoal__cols *old = shoal__mgr_cols(mgr), *c;
  void **r;
  if (cap <= old->cap)
    return SHOAL_OK;
  r = shoal__realloc(mgr->retired, (mgr->nretired + 1) * sizeof *r);
  if (r == NULL)
    return SHOAL_ENOMEM;
  mgr->retired = r;
  if ((c = shoal__cols_new(cap, old, mgr->nact)) == NULL)
    return SHOAL_ENOMEM;
  shoal__moves_begin(mgr);
  atomic_store_explicit(&mgr->cols, c, memory_order_release);
  shoal__moves_end(mgr);
  mgr->retired[mgr->nretired++] = old;
  mgr->cols_hw = cap + 1; /* cols_new wrote every slot */
  return SHOAL_OK;
}

/* The column tail [from, to) of c, by pages. */
static size_t cols_discard(shoal__cols *c, uint32_t from, uint32_t to) {
#define TAIL(col)                                                         \
  shoal__pages_discard((char *)(void *)(col) + (size_t)from * sizeof *(col), \
                       (size_t)(to - from) * sizeof *(col))
  return TAIL(c->rec) + TAIL(c->sess) + TAIL(c->ids) + TAIL(c->sched) +
         TAIL(c->map) + TAIL(c->group) + TAIL(c->user) + TAIL(c->last_ms) +
         TAIL(c->updates) + TAIL(c->activity) + TAIL(c->last_active);
#undef TAIL
}

size_t shoal__cols_trim(shoal_mgr *mgr) {
  shoal__cols *c = shoal__mgr_cols(mgr);
  uint32_t from = mgr->nact + 1; /* the spare slot stays */
  size_t n = 0;
  if (from < mgr->cols_hw)
    n = cols_discard(c, from, mgr->cols_hw);
  mgr->cols_hw = from;
  return n;
}
/* ------------------------------------------------------------------------ */
/* Slots and segments                                                       */
/* ------------------------------------------------------------------------ */

/* Slot moves. Under mu, no tick running, inside moves_begin/moves_end. */
static void move_slot(shoal_mgr *mgr, shoal__cols *c, uint32_t from,
                      uint32_t to) {
  c->rec[to] = c->rec[from];
  c->sess[to] = c->sess[from];
  c->ids[to] = c->ids[from];
  atomic_store_explicit(&c->sched[to],
                        atomic_load_explicit(&c->sched[from],
                                             memory_order_relaxed),
                        memory_order_relaxed);
  atomic_store_explicit(&c->map[to],
                        atomic_load_explicit(&c->map[from],
                                             memory_order_relaxed),
                        memory_order_relaxed);
  atomic_store_explicit(&c->group[to],
                        atomic_load_explicit(&c->group[from],
                                             memory_order_relaxed),
                        memory_order_relaxed);
  atomic_store_explicit(&c->user[to],
                        atomic_load_explicit(&c->user[from],
                                             memory_order_relaxed),
                        memory_order_relaxed);
  c->last_ms[to] = c->last_ms[from];
  c->updates[to] = c->updates[from];
  c->activity[to] = c->activity[from];
  c->last_active[to] = c->last_active[from];
  atomic_store_explicit(&shoal__mgr_rec(mgr, c->rec[to])->slot, to,
                        memory_order_relaxed);
}

/* Exchanges two slots through the spare slot past the last one in use
 * (the columns always keep one: see create_locked). */
static void swap_slots(shoal_mgr *mgr, shoal__cols *c, uint32_t a,
                       uint32_t b) {
  uint32_t spare = mgr->nact;
  move_slot(mgr, c, a, spare);
  move_slot(mgr, c, b, a);
  move_slot(mgr, c, spare, b);
}

/* Moves the session at slot p, the first past the segments, into the end
 * of its node's segment: each later segment passes its first session to
 * its own end (mgr.h). Under mu, no tick running. */
static void sort_in(shoal_mgr *mgr, shoal__cols *c, uint32_t p) {
  unsigned k = atomic_load_explicit(&shoal__mgr_rec(mgr, c->rec[p])->node,
                                    memory_order_relaxed);
  for (unsigned j = mgr->nodes - 1; j > k; j--) {
    uint32_t first = mgr->seg_end[j - 1];
    if (first != p) {
      swap_slots(mgr, c, first, p);
      p = first;
    }
    mgr->seg_end[j]++;
  }
  mgr->seg_end[k]++;
}

void shoal__slots_join(shoal_mgr *mgr) {
  shoal__cols *c = shoal__mgr_cols(mgr);
  uint32_t *sorted = &mgr->seg_end[mgr->nodes - 1];
  if (mgr->nodes == 1) {
    *sorted = mgr->nact;
    return;
  }
  shoal__moves_begin(mgr);
  while (*sorted < mgr->nact)
    sort_in(mgr, c, *sorted);
  shoal__moves_end(mgr);
}

/* s's segment's last session fills its slot, each later segment's last
 * fills the hole in front of it, and a session waiting past the segments
 * fills the last hole. */
void shoal__slot_take(shoal_mgr *mgr, shoal__session *s) {
  shoal__cols *c = shoal__mgr_cols(mgr);
  uint32_t hole = atomic_load_explicit(&s->slot, memory_order_relaxed);
  uint32_t sorted = mgr->seg_end[mgr->nodes - 1];
  uint32_t last = mgr->nact - 1;
  s->user = atomic_load_explicit(&c->user[hole], memory_order_relaxed);
  if (atomic_load_explicit(&c->sched[hole], memory_order_relaxed) == 0)
    atomic_fetch_sub_explicit(&mgr->quarantined, 1, memory_order_relaxed);
  s->where = SHOAL__IN_NONE;
  if (hole < sorted) {
    for (unsigned j = atomic_load_explicit(&s->node, memory_order_relaxed);
         j < mgr->nodes; j++) {
      uint32_t end = --mgr->seg_end[j];
      if (end != hole)
        move_slot(mgr, c, end, hole);
      hole = end;
    }
  }
  if (hole != last)
    move_slot(mgr, c, last, hole);
  mgr->nact = last;
}

void shoal__slot_release(shoal_mgr *mgr, shoal__session *s) {
  if (s->where != SHOAL__IN_ACTIVE)
    return;
  shoal__deferred_discard(mgr, s);
  shoal__pk_discard(mgr, s);
  shoal__moves_begin(mgr);
  shoal__slot_take(mgr, s);
  shoal__moves_end(mgr);
}
