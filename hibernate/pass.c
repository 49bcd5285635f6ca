/* pass.c — hibernation passes: idle sessions found from the
 * last-activity column, each one's bytes written by the host's hibernate
 * callback and compressed into a record (record.c) on a worker, in
 * parallel batches of 32 between ticks; the sessions then leave the active
 * array (sessions/detach.c), or carry on when a packet or a touch came
 * meanwhile. */
#include <stddef.h>
#include <string.h>

#include "hibernate/hib.h"
#include "hibernate/record.h"
#include "hibernate/table.h"
#include "runtime/alloc.h"
#include "runtime/os.h"
#include "runtime/sched/sched.h"

/* ------------------------------------------------------------------------ */
/* The writer                                                               */
/* ------------------------------------------------------------------------ */

int shoal_hib_write(shoal_hib_writer *w, const void *data, size_t len) {
  if (w == NULL || (data == NULL && len > 0))
    return SHOAL_EINVAL;
  if (len > SHOAL__HIB_BLOB_MAX - w->len) {
    w->err = SHOAL_ELIMIT;
    return SHOAL_ELIMIT;
  }
  if (shoal__hib_scratch_grow(&w->buf, &w->cap, w->len + len, w->len) !=
      SHOAL_OK) {
    w->err = SHOAL_ENOMEM;
    return SHOAL_ENOMEM;
  }
  if (len > 0)
    memcpy(w->buf + w->len, data, len);
  w->len += len;
  return SHOAL_OK;
}

/* ------------------------------------------------------------------------ */
/* Hibernation                                                              */
/* ------------------------------------------------------------------------ */

/* One session on a worker: the host's bytes, compressed into a record.
 * When the record cannot be kept, the host gets its bytes back at once. */
void shoal__hib_one(shoal_mgr *mgr, shoal__hib_ws *ws, shoal__hib_item *it) {
  const shoal_hib_callbacks *cb = &mgr->hib->cb;
  uint64_t t0 = shoal__fast_ns();
  size_t bound, n = 0;
  uint64_t host_ns;
  long freed;
  shoal__hrec *r = NULL;
  ws->w.len = 0;
  ws->w.err = 0;
  freed = cb->hibernate(mgr->cb.host, it->id, it->user, &ws->w);
  host_ns = shoal__fast_ns() - t0;
  if (freed < 0) {
    it->rc = SHOAL__IT_REFUSED;
    return;
  }
  bound = shoal__hib_bound(ws->w.len);
  if (ws->w.err == 0 && shoal__hib_grow_tmp(ws, bound) == SHOAL_OK &&
      shoal__hib_encode_into(ws->w.buf, ws->w.len, ws->tmp, bound, &n) ==
          SHOAL_OK &&
      (r = shoal__arena_alloc(&ws->cur, offsetof(shoal__hrec, rec) + n)) !=
          NULL) {
    memcpy(r->rec, ws->tmp, n);
    r->len = (uint32_t)n;
    r->raw = (uint32_t)ws->w.len;
    r->freed = (uint64_t)freed > UINT32_MAX ? UINT32_MAX : (uint32_t)freed;
    it->r = r;
    it->rc = SHOAL__IT_OK;
    t0 = shoal__fast_ns() - t0;
    shoal__hist_add(&ws->hib_t, t0);
    shoal__hist_add(&ws->hib_own, t0 - host_ns);
    return;
  }
  /* Nothing lost: the host rebuilds from the bytes it just wrote. */
  it->rc = ws->w.err == SHOAL_ELIMIT ? SHOAL__IT_BIG : SHOAL__IT_FAILED;
  if (cb->wake(mgr->cb.host, it->id, ws->w.buf, ws->w.len, &it->user) < 0)
    it->rc += SHOAL__IT_LOST - SHOAL__IT_FAILED;
}

/* Whether the session in slot i may hibernate now. Under mu, holding. */
static int idle_enough(shoal_mgr *mgr, shoal__cols *c, uint32_t i,
                       uint64_t cutoff) {
  shoal__session *s = c->sess[i];
  uint64_t woke = s->woke_ms, hyst;
  if (atomic_load_explicit(&s->state, memory_order_relaxed) != SHOAL__S_LIVE ||
      atomic_load_explicit(&c->sched[i], memory_order_relaxed) == 0 ||
      s->hib_big_at == c->last_active[i] + 1 || /* too large, unchanged */
      SHOAL__IN_COUNT(
          atomic_load_explicit(&s->in_word, memory_order_relaxed)) != 0 ||
      atomic_load_explicit(&s->ndeferred, memory_order_relaxed) != 0 ||
      s->d_head != NULL ||
      atomic_load_explicit(&s->touch_ms, memory_order_relaxed) > cutoff)
    return 0;
  hyst = atomic_load_explicit(&mgr->hyst_ms, memory_order_relaxed);
  return woke == 0 || mgr->clock_ms - woke >= hyst;
}

void shoal__hib_not_kept(shoal_mgr *mgr, shoal__hib_item *it) {
  shoal__hib *h = mgr->hib;
  shoal__session *s = shoal__mgr_rec(mgr, it->index);
  uint32_t st = SHOAL__S_HIBERNATING;
  shoal__cols *c = shoal__mgr_cols(mgr);
  int big, lost;
  atomic_compare_exchange_strong_explicit(&s->state, &st, SHOAL__S_LIVE,
                                          memory_order_relaxed,
                                          memory_order_relaxed);
  if (it->rc == SHOAL__IT_REFUSED) {
    h->refused++;
    return;
  }
  /* The host rebuilt it (maybe elsewhere): its new pointer, in its slot
   * now (others' detaches in the same pass may have moved it). */
  atomic_store_explicit(
      &c->user[atomic_load_explicit(&s->slot, memory_order_relaxed)],
      it->user, memory_order_relaxed);
  h->failures++;
  big = it->rc >= SHOAL__IT_BIG;
  if (big) {
    /* Not tried again until the session reports work (its state
     * changed): the same bytes would pass the limit again. */
    h->too_large++;
    s->hib_big_at =
        c->last_active[atomic_load_explicit(&s->slot, memory_order_relaxed)] +
        1;
  }
  lost = it->rc == SHOAL__IT_LOST || it->rc == SHOAL__IT_BIG_LOST;
  shoal__log(mgr->cfg.log, mgr->cfg.log_user,
             lost ? SHOAL_LOG_ERROR : SHOAL_LOG_WARN,
             "session %u: its hibernation record could not be kept (%s); %s",
             it->id,
             big ? "its bytes pass the limit of SHOAL_HIB_BLOB_MAX; not "
                   "tried again until it reports work"
                 : "out of memory",
             !lost ? "woken at once from its bytes"
                   : "and the host's wake failed");
}

/* Ends a pass under mu: the sessions leave the active array for their
 * records, or stay. Those that were touched, or had a packet reserved,
 * while the pass ran are moved to the front of the items for a wake from
 * their records at once (bounce); returns how many. */
static size_t pass_finish(shoal_mgr *mgr) {
  shoal__hib *h = mgr->hib;
  uint64_t cutoff =
      mgr->clock_ms - atomic_load_explicit(&mgr->hib_ms, memory_order_relaxed);
  size_t nb = 0;
  for (size_t k = 0; k < h->nitems; k++) {
    shoal__hib_item *it = &h->items[k];
    shoal__session *s = shoal__mgr_rec(mgr, it->index);
    if (it->rc == SHOAL__IT_OK) {
      uint32_t slot;
      int rc = 0;
      if (atomic_load_explicit(&s->state, memory_order_relaxed) == 0) {
        /* Released while the pass ran: the record goes, and so does the
         * slot; on_release gets user NULL. */
        shoal__mgr_drop_chosen(mgr, s);
        shoal__hrec_free(it->r);
        continue;
      }
      /* A touch after this load meets a hibernated session: a no-op, as
       * for any. A wake (under mu) comes before or after all of this. */
      if (atomic_load_explicit(&s->touch_ms, memory_order_relaxed) <= cutoff) {
        slot = shoal__hib_slot_take(h);
        it->r->o.slot = slot;
        rc = shoal__mgr_detach(mgr, s, &it->r->o, &it->r->kept, 0);
        if (rc == 1) {
          h->arr[slot] = it->r;
          shoal__hib_count_in(h, it->r);
          h->hibernations++;
          h->w_hib++;
          continue;
        }
        shoal__hib_slot_put(h, slot);
      }
      /* Touched, a packet reserved, or no room for its out slot: it
       * stays; the host gets its bytes back. */
      {
        shoal__hib_item t = *it;
        h->items[k] = h->items[nb];
        h->items[nb++] = t;
      }
      continue;
    }
    shoal__hib_not_kept(mgr, it);
  }
  h->nitems = nb;
  h->in_pass = 0;
  return nb;
}

void shoal__hib_bounced(shoal_mgr *mgr, shoal__hib_item *it,
                        const char *why) {
  shoal__session *s = shoal__mgr_rec(mgr, it->index);
  uint32_t st = SHOAL__S_HIBERNATING;
  atomic_compare_exchange_strong_explicit(&s->state, &st, SHOAL__S_LIVE,
                                          memory_order_relaxed,
                                          memory_order_relaxed);
  atomic_store_explicit(
      &shoal__mgr_cols(mgr)
           ->user[atomic_load_explicit(&s->slot, memory_order_relaxed)],
      it->user, memory_order_relaxed);
  s->woke_ms = mgr->clock_ms;
  if (it->rc != SHOAL_OK) {
    mgr->hib->wake_failures++;
    shoal__log(mgr->cfg.log, mgr->cfg.log_user, SHOAL_LOG_ERROR,
               "session %u: %s, and the host's wake from its bytes failed "
               "(%s)",
               it->id, why, shoal_strerror(it->rc));
  }
  shoal__hrec_free(it->r);
}

/* After a bounce's wakes, under mu. */
static void bounce_finish(shoal_mgr *mgr) {
  shoal__hib *h = mgr->hib;
  for (size_t k = 0; k < h->nitems; k++)
    shoal__hib_bounced(mgr, &h->items[k],
                       "a packet or a touch came while it was hibernated");
  h->nitems = 0;
}

/* The bounced sessions' wakes (rare: touched during the pass, or no out
 * slot), one by one on this thread. The session is still in the active
 * array with no other copy of the host's bytes, so its wake must not fail
 * for memory: each borrows a worker's scratch that already holds its raw
 * size (the one that encoded it grew it to the record's bound, ≥ raw).
 * The workers are idle: the manager is held and the pass's items ran. */
static void bounce_wakes(shoal_mgr *mgr) {
  shoal__hib *h = mgr->hib;
  const shoal_mgr *prev = shoal__cb_enter(mgr);
  for (size_t k = 0; k < h->nitems; k++) {
    shoal__hib_item *it = &h->items[k];
    shoal__hib_ws *ws = &h->ws[0];
    for (unsigned w = 0; w < h->nw; w++)
      if (h->ws[w].tmp_cap >= it->r->raw) {
        ws = &h->ws[w];
        break;
      }
    shoal__beat(&mgr->main_beat, SHOAL__CB_HIBERNATE, it->id);
    shoal__hib_wake_one(mgr, ws, it);
  }
  shoal__beat(&mgr->main_beat, SHOAL__CB_NONE, 0);
  shoal__cb_leave(prev);
}

/* A pass: up to max idle sessions. Holding the manager. */
long shoal__hib_pass(shoal_mgr *mgr, size_t max) {
  shoal__hib *h = mgr->hib;
  uint64_t thr = atomic_load_explicit(&mgr->hib_ms, memory_order_relaxed);
  uint64_t cutoff;
  shoal__cols *c;
  size_t found;
  long done;
  if (mgr->clock_ms < thr)
    return 0;
  cutoff = mgr->clock_ms - thr;
  pthread_mutex_lock(&mgr->mu);
  c = shoal__mgr_cols(mgr);
  h->nitems = 0;
  if (shoal__hib_cand_reserve(h, mgr->nact) != SHOAL_OK) {
    pthread_mutex_unlock(&mgr->mu);
    return SHOAL_ENOMEM;
  }
  /* The compare-and-mask finds the candidates; each is then checked on
   * its record (packets, touches, hysteresis). */
  found = mgr->older(c->last_active, mgr->nact, cutoff, h->cand, mgr->nact);
  if (found > 0 &&
      (shoal__hib_items_reserve(h, found < max ? found : max) != SHOAL_OK ||
       shoal__hib_slot_reserve(h, found < max ? found : max) != SHOAL_OK)) {
    pthread_mutex_unlock(&mgr->mu);
    return SHOAL_ENOMEM;
  }
  for (size_t k = 0; k < found && h->nitems < max; k++) {
    uint32_t i = h->cand[k];
    shoal__hib_item *it;
    if (!idle_enough(mgr, c, i, cutoff))
      continue;
    it = &h->items[h->nitems++];
    it->index = c->rec[i];
    it->id = c->ids[i];
    it->slot = i;
    it->user = atomic_load_explicit(&c->user[i], memory_order_relaxed);
    it->r = NULL;
    it->rc = SHOAL__IT_REFUSED;
    atomic_store_explicit(&c->sess[i]->state, SHOAL__S_HIBERNATING,
                          memory_order_relaxed);
  }
  h->in_pass = h->nitems > 0;
  pthread_mutex_unlock(&mgr->mu);
  if (h->nitems == 0)
    return 0;
  /* The state the host's callbacks free goes back now: pages emptied on
   * their owner's thread at once, those freed from another worker when
   * each owner collects (runtime/alloc.c). */
  shoal__alloc_release_begin();
  shoal__hib_run_items(mgr, shoal__hib_one);
  shoal__runtime_collect(mgr->rt, 0);
  shoal__alloc_release_end();
  pthread_mutex_lock(&mgr->mu);
  done = (long)h->hibernations;
  (void)pass_finish(mgr);
  done = (long)h->hibernations - done;
  pthread_mutex_unlock(&mgr->mu);
  if (h->nitems > 0) {
    bounce_wakes(mgr);
    pthread_mutex_lock(&mgr->mu);
    bounce_finish(mgr);
    pthread_mutex_unlock(&mgr->mu);
  }
  return done;
}

/* After each tick: a pass every quarter threshold of manager time (at
 * least every millisecond, at most every second). */
void shoal__hib_pass_phase(shoal_mgr *mgr) {
  shoal__hib *h = mgr->hib;
  uint64_t thr = atomic_load_explicit(&mgr->hib_ms, memory_order_relaxed);
  uint64_t every = thr / 4 < 1 ? 1 : thr / 4 > 1000 ? 1000 : thr / 4;
  if (mgr->clock_ms - h->last_scan_ms >= every) {
    h->last_scan_ms = mgr->clock_ms;
    (void)shoal__hib_pass(mgr, mgr->cfg.hibernate_per_update);
  }
}

static void call_pass(shoal_mgr *mgr, void *arg) {
  shoal__hib_call *a = arg;
  a->result = shoal__hib_pass(mgr, a->max == 0 ? SIZE_MAX : a->max);
}

long shoal_mgr_hibernate_idle(shoal_mgr *mgr, size_t max) {
  shoal__hib_call a = {max, 0};
  return shoal__hib_held(mgr, call_pass, &a);
}
