/* detach.c — a session leaves the active array for hibernate/ (detach:
 * its slot and pool element go, its id names an out slot) and comes back
 * (attach: a new element, its held packets moved into the new inbox in
 * order). The record itself is hibernate/'s. Locking: mgr.h. */
#include <string.h>

#include "sessions/mgr.h"

void shoal__mgr_drop_chosen(shoal_mgr *mgr, shoal__session *s) {
  shoal__slot_release(mgr, s);
  s->user = NULL; /* the host freed its state; its record goes too */
}

int shoal__mgr_detach(shoal_mgr *mgr, shoal__session *s, shoal__out *o,
                      shoal__kept *kept, int drained) {
  shoal__cols *c = shoal__mgr_cols(mgr);
  uint32_t slot = atomic_load_explicit(&s->slot, memory_order_relaxed);
  uint32_t id = atomic_load_explicit(&s->id, memory_order_relaxed);
  uint64_t w = atomic_load_explicit(&s->in_word, memory_order_relaxed);
  int rc;
  /* The slot's id first: unpublished until the registry names it. */
  if ((rc = shoal__registry_out_set(&mgr->reg, o->slot, id)) != SHOAL_OK)
    return rc;
  /* The inbox closes only while empty. A send reserves on the same word,
   * so one of the two fails: a send that reserved first keeps the session
   * here; one that comes after sees CLOSED and looks again under mu,
   * where it finds the out slot (shoal_session_send). */
  if (!drained &&
      (SHOAL__IN_COUNT(w) != 0 || (w & SHOAL__IN_CLOSED) ||
       !atomic_compare_exchange_strong_explicit(&s->in_word, &w,
                                                w | SHOAL__IN_CLOSED,
                                                memory_order_acq_rel,
                                                memory_order_relaxed)))
    return 0;
  o->id = id;
  o->map = atomic_load_explicit(&c->map[slot], memory_order_relaxed);
  o->group = atomic_load_explicit(&c->group[slot], memory_order_relaxed);
  o->pos[0] = s->pos[0];
  o->pos[1] = s->pos[1];
  o->epoch = atomic_load_explicit(&s->epoch, memory_order_relaxed);
  o->interval = atomic_load_explicit(&s->interval, memory_order_relaxed);
  o->node = (uint16_t)atomic_load_explicit(&s->node, memory_order_relaxed);
  o->flags = 0;
  o->wake_fails = 0;
  o->retry_tick = 0;
  o->nheld = 0;
  o->held_head = o->held_tail = 0;
  o->wk_next = NULL;
  kept->updates = c->updates[slot];
  kept->activity = c->activity[slot];
  /* Not released (the caller checked, under mu), so the id is in. */
  (void)shoal__registry_replace(&mgr->reg, id, SHOAL__REG_OUT | o->slot);
  shoal__moves_begin(mgr);
  shoal__slot_take(mgr, s);
  atomic_store_explicit(&s->state, 0, memory_order_relaxed);
  atomic_store_explicit(&s->id, 0, memory_order_relaxed);
  shoal__moves_end(mgr);
  s->user = NULL;
  shoal__pk_retire(mgr, s->self); /* empty and closed: back to the pool */
  mgr->nout++;
  return 1;
}

void shoal__mgr_attach(shoal_mgr *mgr, shoal__out *o, uint32_t index,
                       void *user, const shoal__kept *kept) {
  shoal__cols *c = shoal__mgr_cols(mgr);
  uint32_t slot = mgr->nact;
  shoal__session *s = shoal__mgr_rec(mgr, index);
  atomic_store_explicit(&s->state, SHOAL__S_LIVE, memory_order_relaxed);
  atomic_store_explicit(&s->slot, slot, memory_order_relaxed);
  atomic_store_explicit(&s->interval, o->interval, memory_order_relaxed);
  atomic_store_explicit(&s->last_error, 0, memory_order_relaxed);
  atomic_store_explicit(&s->node, shoal__pool_node_of(&mgr->pool, index),
                        memory_order_relaxed);
  atomic_store_explicit(&s->touch_ms, mgr->clock_ms, memory_order_relaxed);
  s->user = user;
  s->self = index;
  s->where = SHOAL__IN_ACTIVE;
  s->woke_ms = mgr->clock_ms;
  s->hib_big_at = 0;
  memset(s->tat, 0, sizeof s->tat);
  s->pos[0] = o->pos[0];
  s->pos[1] = o->pos[1];
  atomic_store_explicit(&s->epoch, o->epoch, memory_order_relaxed);
  c->rec[slot] = index;
  c->sess[slot] = s;
  c->ids[slot] = o->id;
  atomic_store_explicit(&c->sched[slot], SHOAL__SCHED(o->interval, o->id),
                        memory_order_relaxed);
  atomic_store_explicit(&c->map[slot], o->map, memory_order_relaxed);
  atomic_store_explicit(&c->group[slot], o->group, memory_order_relaxed);
  atomic_store_explicit(&c->user[slot], user, memory_order_relaxed);
  c->last_ms[slot] = mgr->clock_ms;
  c->updates[slot] = kept->updates;
  c->activity[slot] = kept->activity;
  c->last_active[slot] = mgr->clock_ms; /* a wake is activity */
  atomic_store_explicit(&s->id, o->id, memory_order_relaxed);
  shoal__pk_open(s);
  shoal__pk_unhold(mgr, s, o); /* before a send can reach the inbox */
  /* release (the registry's): the record above before the id names it. */
  (void)shoal__registry_replace(&mgr->reg, o->id, index);
  mgr->nact = slot + 1;
  if (mgr->cols_hw < slot + 2)
    mgr->cols_hw = slot + 2;
  mgr->nout--;
}

int shoal__mgr_reserve(shoal_mgr *mgr, uint32_t more) {
  shoal__cols *c = shoal__mgr_cols(mgr);
  if ((uint64_t)mgr->nact + more <= c->cap)
    return SHOAL_OK;
  if ((uint64_t)mgr->nact + more > UINT32_MAX - 1)
    return SHOAL_ELIMIT;
  return shoal__cols_grow(mgr, mgr->nact + more);
}

