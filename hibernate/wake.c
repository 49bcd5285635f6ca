/* wake.c — waking: sessions asked for (a packet, a touch, by map, by
 * group, on request) are woken before the next tick, each one's record
 * checked and decoded on a worker and handed to the host's wake
 * callback, in parallel batches of 32, into a new pool element. */
#include <stddef.h>
#include <string.h>

#include "hibernate/hib.h"
#include "hibernate/record.h"
#include "hibernate/table.h"
#include "runtime/alloc.h"
#include "runtime/os.h"
#include "runtime/sched/sched.h"

/* ------------------------------------------------------------------------ */
/* Waking                                                                   */
/* ------------------------------------------------------------------------ */

void shoal__hib_wake_one(shoal_mgr *mgr, shoal__hib_ws *ws,
                         shoal__hib_item *it) {
  const shoal__hrec *r = it->r;
  uint64_t t0 = shoal__fast_ns(), t1 = 0;
  size_t len = 0;
  /* Decode checks the record whole (lengths, CRC) before a byte is
   * decompressed; a header that claims more than was stored is corrupt. */
  int rc = shoal__hib_grow_tmp(ws, r->raw > 0 ? r->raw : 1);
  if (rc == SHOAL_OK) {
    rc = shoal__hib_decode(r->rec, r->len, ws->tmp, ws->tmp_cap, &len);
    if (rc == SHOAL_ELIMIT || (rc == SHOAL_OK && len != r->raw))
      rc = SHOAL_EFORMAT;
  }
  if (rc == SHOAL_OK) {
    t1 = shoal__fast_ns();
    rc = mgr->hib->cb.wake(mgr->cb.host, it->id, ws->tmp, len, &it->user);
  }
  it->rc = rc < 0 ? rc : SHOAL_OK;
  if (it->rc == SHOAL_OK) {
    uint64_t t2 = shoal__fast_ns();
    shoal__hist_add(&ws->wake_t, t2 - t0);
    shoal__hist_add(&ws->wake_own, t1 - t0);
  }
}

/* The sessions of a wake list left for a later update. */
typedef struct later_list {
  shoal__hrec *head, *tail;
} later_list;

static void later_add(later_list *l, shoal__hrec *r) {
  r->o.wk_next = NULL;
  if (l->tail != NULL)
    l->tail->o.wk_next = &r->o;
  else
    l->head = r;
  l->tail = r;
}

/* A wake that failed. The host's refusal (or a want of memory) is tried
 * again, after 1, 2, 4 … 256 ticks, logged at the first failure of a
 * row only; a corrupt record is not (it cannot get better), and is logged
 * at each wake asked for. Counted each time. Under mu. */
static void wake_failed(shoal_mgr *mgr, shoal__hrec *r, int rc) {
  shoal__hib *h = mgr->hib;
  unsigned shift;
  h->wake_failures++;
  if (rc == SHOAL_EFORMAT) {
    shoal__log(mgr->cfg.log, mgr->cfg.log_user, SHOAL_LOG_ERROR,
               "session %u: wake failed (its record is corrupt); it stays "
               "hibernated with its record",
               r->o.id);
    return;
  }
  if (r->o.wake_fails < 255)
    r->o.wake_fails++;
  if (r->o.wake_fails == 1)
    shoal__log(mgr->cfg.log, mgr->cfg.log_user, SHOAL_LOG_ERROR,
               "session %u: wake failed (%s); it stays hibernated with its "
               "record and is tried again, backing off up to 256 ticks "
               "(further failures are counted, not logged)",
               r->o.id, shoal_strerror(rc));
  shift = r->o.wake_fails - 1u < 8u ? r->o.wake_fails - 1u : 8u;
  r->o.retry_tick = (uint32_t)mgr->tick_no + (1u << shift);
  shoal__hib_ask(mgr, &r->o);
}

/* Wakes every session asked for. Holding the manager, before the tick. */
long shoal__hib_wakes(shoal_mgr *mgr) {
  shoal__hib *h = mgr->hib;
  size_t n = 0, nr = 0;
  long woke = 0;
  shoal__hrec *r;
  later_list later = {NULL, NULL};
  pthread_mutex_lock(&mgr->mu);
  for (r = h->wk_head; r != NULL; r = shoal__hrec_of(r->o.wk_next))
    n++;
  if (n == 0) {
    pthread_mutex_unlock(&mgr->mu);
    return 0;
  }
  if (shoal__hib_items_reserve(h, n) != SHOAL_OK ||
      shoal__mgr_reserve(mgr, (uint32_t)n) != SHOAL_OK) {
    pthread_mutex_unlock(&mgr->mu);
    shoal__log(mgr->cfg.log, mgr->cfg.log_user, SHOAL_LOG_WARN,
               "hibernation: no memory to wake %zu sessions now; retried "
               "at the next update",
               n);
    return SHOAL_ENOMEM;
  }
  /* Each takes its pool element now, so that its wake cannot fail after
   * the host's callback; those that get none wait for the next update,
   * as do those backing off after a failed wake (kept, in order). */
  h->nitems = 0;
  while ((r = h->wk_head) != NULL) {
    shoal__hib_item *it = &h->items[h->nitems];
    shoal__hrec *next = shoal__hrec_of(r->o.wk_next);
    if (!(r->o.flags & SHOAL__OUT_GONE) &&
        (int32_t)(r->o.retry_tick - (uint32_t)mgr->tick_no) > 0) {
      h->wk_head = next;
      later_add(&later, r);
      continue;
    }
    if (!(r->o.flags & SHOAL__OUT_GONE) &&
        shoal__pool_get(&mgr->pool, r->o.node, &it->index) != SHOAL_OK) {
      /* Not the session limit (wakes pass it): the memory for a slab. */
      h->wake_failures++;
      shoal__log(mgr->cfg.log, mgr->cfg.log_user, SHOAL_LOG_WARN,
                 "hibernation: no memory for session %u's wake; it and "
                 "those after it are retried at the next update",
                 r->o.id);
      break;
    }
    h->wk_head = next;
    r->o.flags &= ~SHOAL__OUT_ASKED;
    if (r->o.flags & SHOAL__OUT_GONE) { /* released while it waited */
      shoal__hrec_free(r);
      continue;
    }
    r->o.flags |= SHOAL__OUT_WAKING;
    it->id = r->o.id;
    it->user = NULL;
    it->r = r;
    it->rc = 0;
    h->nitems++;
  }
  if (later.head != NULL) { /* back at the list's head, in order */
    later.tail->o.wk_next = h->wk_head != NULL ? &h->wk_head->o : NULL;
    if (h->wk_head == NULL)
      h->wk_tail = later.tail;
    h->wk_head = later.head;
  }
  if (h->wk_head == NULL)
    h->wk_tail = NULL;
  pthread_mutex_unlock(&mgr->mu);
  if (h->nitems > 0)
    shoal__hib_run_items(mgr, shoal__hib_wake_one);
  pthread_mutex_lock(&mgr->mu);
  for (size_t k = 0; k < h->nitems; k++) {
    shoal__hib_item *it = &h->items[k];
    r = it->r;
    r->o.flags &= ~SHOAL__OUT_WAKING;
    if (r->o.flags & SHOAL__OUT_GONE) {
      /* Released during its wake: the host hears of it with the state
       * it has just rebuilt (below, outside mu). */
      shoal__pool_put(&mgr->pool, it->index);
      shoal__hrec_free(r);
      if (it->rc == SHOAL_OK)
        h->items[nr++] = *it;
    } else if (it->rc == SHOAL_OK) {
      shoal__hib_slot_put(h, r->o.slot);
      shoal__hib_count_out(h, r);
      shoal__mgr_attach(mgr, &r->o, it->index, it->user, &r->kept);
      shoal__hrec_free(r);
      h->wakes++;
      h->w_wakes++;
      woke++;
    } else {
      shoal__pool_put(&mgr->pool, it->index);
      wake_failed(mgr, r, it->rc);
    }
  }
  h->nitems = 0;
  shoal__slots_join(mgr);
  pthread_mutex_unlock(&mgr->mu);
  for (size_t k = 0; k < nr && mgr->cb.on_release != NULL; k++)
    mgr->cb.on_release(mgr->cb.host, h->items[k].id, h->items[k].user);
  return woke;
}

void shoal__hib_wake_phase(shoal_mgr *mgr) { (void)shoal__hib_wakes(mgr); }

/* The active session of id, or NULL. Lock-free. */
static shoal__session *find(shoal_mgr *mgr, uint32_t id) {
  int64_t i;
  shoal__session *s;
  if (id == 0 || (i = shoal__registry_find(&mgr->reg, id)) < 0 ||
      (i & SHOAL__REG_OUT))
    return NULL;
  s = shoal__mgr_rec(mgr, (uint32_t)i);
  if (atomic_load_explicit(&s->id, memory_order_relaxed) != id ||
      atomic_load_explicit(&s->state, memory_order_relaxed) == 0)
    return NULL;
  return s;
}

static void touch(shoal_mgr *mgr, shoal__session *s) {
  atomic_store_explicit(
      &s->touch_ms, atomic_load_explicit(&mgr->clock_pub, memory_order_relaxed),
      memory_order_relaxed);
}

/* Touches id, or asks for its wake (wake: 1) when it is hibernated.
 * Under mu, which every hibernation and wake holds, unless the lock-free
 * look finds it active and only a touch is asked for. */
static int touch_or_wake(shoal_mgr *mgr, uint32_t id, int wake) {
  shoal__session *s;
  shoal__out *o;
  int rc = SHOAL_OK;
  if (mgr == NULL)
    return SHOAL_EINVAL;
  if (!wake && (s = find(mgr, id)) != NULL) {
    touch(mgr, s); /* a pass finishing now sees it, or it hibernates */
    return SHOAL_OK;
  }
  if (id == 0)
    return SHOAL_ENOENT;
  pthread_mutex_lock(&mgr->mu);
  if ((s = find(mgr, id)) != NULL)
    touch(mgr, s); /* a pass in progress gives it back */
  else if ((o = shoal__mgr_out(mgr, id)) != NULL) {
    if (wake)
      shoal__hib_ask(mgr, o);
  } else
    rc = shoal__mgr_gone(mgr, id);
  pthread_mutex_unlock(&mgr->mu);
  return rc;
}

int shoal_session_touch(shoal_mgr *mgr, uint32_t id) {
  return touch_or_wake(mgr, id, 0);
}

int shoal_mgr_wake(shoal_mgr *mgr, uint32_t id) {
  return touch_or_wake(mgr, id, 1);
}

/* Asks for every hibernated session whose map (by_map) or group is v, and
 * touches those of a pass in progress so that it gives them back. */
static long wake_where(shoal_mgr *mgr, int by_map, uint32_t v) {
  shoal__hib *h;
  long n = 0;
  if (mgr == NULL)
    return SHOAL_EINVAL;
  pthread_mutex_lock(&mgr->mu);
  if ((h = mgr->hib) != NULL) {
    uint64_t now = atomic_load_explicit(&mgr->clock_pub, memory_order_relaxed);
    for (uint32_t k = 0; k < h->n; k++) {
      shoal__hrec *r = h->arr[k];
      if (r != NULL && (by_map ? r->o.map : r->o.group) == v) {
        n += !(r->o.flags & (SHOAL__OUT_ASKED | SHOAL__OUT_WAKING));
        shoal__hib_ask(mgr, &r->o);
      }
    }
    if (h->in_pass) {
      shoal__cols *c = shoal__mgr_cols(mgr);
      for (size_t k = 0; k < h->nitems; k++) {
        uint32_t i = h->items[k].slot;
        uint32_t m = atomic_load_explicit(by_map ? &c->map[i] : &c->group[i],
                                          memory_order_relaxed);
        if (m == v) {
          atomic_store_explicit(&c->sess[i]->touch_ms, now,
                                memory_order_relaxed);
          n++;
        }
      }
    }
  }
  pthread_mutex_unlock(&mgr->mu);
  return n;
}

long shoal_mgr_wake_map(shoal_mgr *mgr, uint32_t map) {
  return wake_where(mgr, 1, map);
}

long shoal_mgr_wake_group(shoal_mgr *mgr, uint32_t group) {
  return wake_where(mgr, 0, group);
}

static void call_wakes(shoal_mgr *mgr, void *arg) {
  ((shoal__hib_call *)arg)->result = shoal__hib_wakes(mgr);
}

long shoal_mgr_run_wakes(shoal_mgr *mgr) {
  shoal__hib_call a = {0, 0};
  return shoal__hib_held(mgr, call_wakes, &a);
}
