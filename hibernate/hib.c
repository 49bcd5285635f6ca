/* hib.c — hibernation: idle sessions found from the last-activity column,
 * hibernated in parallel batches of 32 between ticks into records that
 * keep the host's bytes (record.c), woken in parallel before a tick, and
 * the manager's defragmentation. The design and its threads:
 * docs/hibernation.md. */
#include <stdalign.h>
#include <stddef.h>
#include <string.h>

#include "hibernate/arena.h"
#include "hibernate/hib.h"
#include "hibernate/record.h"
#include "runtime/common.h"
#include "runtime/alloc.h"
#include "runtime/os.h"
#include "runtime/sched/sched.h"
#include "sessions/mgr.h"

/* Sessions per batch of a pass or a wake phase (the design). */
#define HIB_BATCH 32u

/* All that a hibernated session keeps, besides its out slot: one block of
 * the record arena (arena.h), the record's bytes inline. */
typedef struct hrec {
  shoal__out o;    /* first: the manager's view (mgr.h) */
  shoal__kept kept;
  uint32_t freed;  /* host bytes its callback said it freed (at most
                      UINT32_MAX counted) */
  uint32_t len;    /* of rec */
  uint32_t raw;    /* the blob's */
  unsigned char rec[];
} hrec;

struct shoal_hib_writer {
  unsigned char *buf;
  size_t len, cap;
  int err;
};

/* Per worker: the writer's buffer, the encoder's and decoder's scratch,
 * and the times of its sessions. Its own line. */
typedef struct hib_ws {
  alignas(SHOAL_FALSE_SHARING) shoal_hib_writer w;
  shoal__arena_cursor cur; /* where its records go */
  unsigned char *tmp;
  size_t tmp_cap;
  shoal__hist hib_t, wake_t;   /* per session, all of it */
  shoal__hist hib_own, wake_own; /* less the host's callback */
} hib_ws;

enum { IT_OK = 0, IT_REFUSED = 1, IT_FAILED = 2 };

typedef struct item {
  uint32_t index;  /* pool index: the session's, or the one taken to wake
                      it into */
  uint32_t id;
  uint32_t slot;   /* during a pass: its slot, fixed until the pass ends */
  int rc;          /* IT_*, or a wake's status */
  void *user;
  hrec *r;
} item;

typedef struct shoal__hib {
  shoal_hib_callbacks cb;
  unsigned nw;
  hib_ws *ws;
  /* The hibernated sessions by out slot (NULL: free), under mu; the free
   * slots below n, lowest last; the wake list, in the order asked. */
  hrec **arr;
  uint32_t n, cap;
  uint32_t *fr;
  uint32_t nfr;
  hrec *wk_head, *wk_tail;
  /* A pass's or a wake phase's sessions: the holder's, and read under mu
   * by wake_map while a pass runs (in_pass). */
  item *items;
  size_t nitems, items_cap;
  uint32_t *cand;
  size_t cand_cap;
  int in_pass;
  uint64_t last_scan_ms;
  /* Figures, under mu. */
  uint64_t hibernations, wakes, refused, failures, wake_failures;
  uint64_t rec_bytes, raw_bytes, freed_bytes; /* of those hibernated now */
  uint64_t w_hib, w_wakes, w_start_ns;
} shoal__hib;

/* Its bytes: the fields, then the record (no padding between). */
static uint64_t rec_size(const hrec *r) {
  return offsetof(hrec, rec) + r->len;
}

static hrec *rec_of(shoal__out *o) {
  return (hrec *)(void *)o;
}

static void rec_free(hrec *r) {
  shoal__arena_free(r, rec_size(r));
}

/* A scratch buffer (*p, *cap bytes) to at least n bytes, its first `keep`
 * bytes kept. Whole pages of their own (runtime/os.h), a power of two of
 * them: the workers then allocate nothing from the allocator during a
 * pass (which would keep a segment per worker alive), and a list dropped
 * by the defragmentation leaves at once (mimalloc would keep its span for
 * its decommit delay). */
static int scratch_grow(unsigned char **p, size_t *cap, size_t n,
                        size_t keep) {
  size_t c = *cap < 4096 ? 4096 : *cap;
  unsigned char *b;
  if (n <= *cap)
    return SHOAL_OK;
  while (c < n)
    c *= 2;
  if ((b = shoal__pages_alloc(c, 4096)) == NULL)
    return SHOAL_ENOMEM;
  if (keep > 0)
    memcpy(b, *p, keep);
  shoal__pages_free(*p, *cap);
  *p = b;
  *cap = c;
  return SHOAL_OK;
}

/* Room for n elements of elem bytes (elem divides 4096) in *p, a scratch
 * list of *cap of them. */
static int reserve(void **p, size_t *cap, size_t n, size_t elem) {
  unsigned char *b = *p;
  size_t bytes = *cap * elem;
  if (n <= *cap)
    return SHOAL_OK;
  if (scratch_grow(&b, &bytes, (n + n / 2) * elem, *cap * elem) != SHOAL_OK)
    return SHOAL_ENOMEM;
  *p = b;
  *cap = bytes / elem;
  return SHOAL_OK;
}

_Static_assert(4096 % sizeof(item) == 0, "items fill pages exactly");

static int items_reserve(shoal__hib *h, size_t n) {
  void *p = h->items;
  int rc = reserve(&p, &h->items_cap, n, sizeof *h->items);
  h->items = p;
  return rc;
}

static int cand_reserve(shoal__hib *h, size_t n) {
  void *p = h->cand;
  int rc = reserve(&p, &h->cand_cap, n, sizeof *h->cand);
  h->cand = p;
  return rc;
}

/* The bytes of a table of cap slots, whole pages. */
static size_t table_bytes(uint32_t cap, size_t elem) {
  return shoal__pages_round((size_t)cap * elem);
}

/* The table and its free list at cap slots (n of them kept). Both live in
 * pages of their own (runtime/os.h), so that they never keep one of the
 * allocator's segments alive after the sessions' state has gone.
 * SHOAL_ENOMEM: unchanged. */
static int arr_resize(shoal__hib *h, uint32_t cap) {
  hrec **a = shoal__pages_alloc(table_bytes(cap, sizeof *a), 4096);
  uint32_t *f = a != NULL ? shoal__pages_alloc(table_bytes(cap, sizeof *f),
                                               4096)
                          : NULL;
  if (f == NULL) {
    shoal__pages_free(a, table_bytes(cap, sizeof *a));
    return SHOAL_ENOMEM;
  }
  if (h->n > 0)
    memcpy(a, h->arr, h->n * sizeof *a);
  if (h->nfr > 0)
    memcpy(f, h->fr, h->nfr * sizeof *f);
  shoal__pages_free(h->arr, table_bytes(h->cap, sizeof *h->arr));
  shoal__pages_free(h->fr, table_bytes(h->cap, sizeof *h->fr));
  h->arr = a;
  h->fr = f;
  h->cap = cap;
  return SHOAL_OK;
}

/* Room for `more` slots past the free ones. Under mu. */
static int arr_reserve(shoal__hib *h, size_t more) {
  uint64_t need = (uint64_t)h->n + (more > h->nfr ? more - h->nfr : 0);
  if (need <= h->cap)
    return SHOAL_OK;
  if (need > SHOAL__REG_OUT_MAX)
    return SHOAL_ENOMEM;
  need += need / 2;
  return arr_resize(h, (uint32_t)(need < 1024 ? 1024
                                  : need > SHOAL__REG_OUT_MAX
                                      ? SHOAL__REG_OUT_MAX
                                      : need));
}

/* A slot for r (reserved), lowest free first. */
static uint32_t arr_take(shoal__hib *h) {
  return h->nfr > 0 ? h->fr[--h->nfr] : h->n++;
}

static void arr_put(shoal__hib *h, uint32_t slot) {
  h->arr[slot] = NULL;
  h->fr[h->nfr++] = slot;
}

/* Fits the table to the highest slot in use; the free slots are listed
 * again, lowest last. */
static void arr_fit(shoal__hib *h) {
  while (h->n > 0 && h->arr[h->n - 1] == NULL)
    h->n--;
  h->nfr = 0;
  for (uint32_t k = h->n; k-- > 0;)
    if (h->arr[k] == NULL)
      h->fr[h->nfr++] = k;
}

/* Puts r on the wake list once. */
static void ask(shoal_mgr *mgr, shoal__out *o) {
  shoal__hib *h = mgr->hib;
  hrec *r = rec_of(o);
  if (o->flags & (SHOAL__OUT_ASKED | SHOAL__OUT_WAKING | SHOAL__OUT_GONE))
    return;
  o->flags |= SHOAL__OUT_ASKED;
  o->wk_next = NULL;
  if (h->wk_tail != NULL)
    h->wk_tail->o.wk_next = o;
  else
    h->wk_head = r;
  h->wk_tail = r;
}

static void count_in(shoal__hib *h, const hrec *r) {
  h->rec_bytes += rec_size(r);
  h->raw_bytes += r->raw;
  h->freed_bytes += r->freed;
}

static void count_out(shoal__hib *h, const hrec *r) {
  h->rec_bytes -= rec_size(r);
  h->raw_bytes -= r->raw;
  h->freed_bytes -= r->freed;
}

static int grow_tmp(hib_ws *ws, size_t n) {
  return scratch_grow(&ws->tmp, &ws->tmp_cap, n, 0);
}

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
  if (scratch_grow(&w->buf, &w->cap, w->len + len, w->len) != SHOAL_OK) {
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
static void hibernate_one(shoal_mgr *mgr, hib_ws *ws, item *it) {
  const shoal_hib_callbacks *cb = &mgr->hib->cb;
  uint64_t t0 = shoal__fast_ns();
  size_t bound, n = 0;
  uint64_t host_ns;
  long freed;
  hrec *r = NULL;
  ws->w.len = 0;
  ws->w.err = 0;
  freed = cb->hibernate(mgr->cb.host, it->id, it->user, &ws->w);
  host_ns = shoal__fast_ns() - t0;
  if (freed < 0) {
    it->rc = IT_REFUSED;
    return;
  }
  bound = shoal__hib_bound(ws->w.len);
  if (ws->w.err == 0 && grow_tmp(ws, bound) == SHOAL_OK &&
      shoal__hib_encode_into(ws->w.buf, ws->w.len, ws->tmp, bound, &n) ==
          SHOAL_OK &&
      (r = shoal__arena_alloc(&ws->cur, offsetof(hrec, rec) + n)) != NULL) {
    memcpy(r->rec, ws->tmp, n);
    r->len = (uint32_t)n;
    r->raw = (uint32_t)ws->w.len;
    r->freed = (uint64_t)freed > UINT32_MAX ? UINT32_MAX : (uint32_t)freed;
    it->r = r;
    it->rc = IT_OK;
    t0 = shoal__fast_ns() - t0;
    shoal__hist_add(&ws->hib_t, t0);
    shoal__hist_add(&ws->hib_own, t0 - host_ns);
    return;
  }
  /* Nothing lost: the host rebuilds from the bytes it just wrote. */
  it->rc = IT_FAILED;
  if (cb->wake(mgr->cb.host, it->id, ws->w.buf, ws->w.len, &it->user) < 0)
    it->rc = IT_FAILED + 1;
}

/* The items of a pass or a wake phase, fn on each, as a parallel_for in
 * batches of HIB_BATCH; the host's callbacks run marked as inside mgr's
 * (so that they cannot call update). */
typedef void (*item_fn)(shoal_mgr *mgr, hib_ws *ws, item *it);
typedef struct items_job {
  shoal_mgr *mgr;
  item_fn fn;
} items_job;

static void items_range(void *arg, size_t b, size_t e) {
  const items_job *j = arg;
  shoal_worker *w = shoal__current(j->mgr->rt);
  unsigned wi = w != NULL ? shoal_worker_index(w) : 0;
  hib_ws *ws = &j->mgr->hib->ws[wi]; /* this worker's buffers */
  _Atomic uint64_t *beat = &j->mgr->samples[wi].beat;
  const shoal_mgr *prev = shoal__cb_enter(j->mgr);
  for (size_t i = b; i < e; i++) {
    shoal__beat(beat, SHOAL__CB_HIBERNATE, j->mgr->hib->items[i].id);
    j->fn(j->mgr, ws, &j->mgr->hib->items[i]);
  }
  shoal__beat(beat, SHOAL__CB_NONE, 0);
  shoal__cb_leave(prev);
}

static void run_items(shoal_mgr *mgr, item_fn fn) {
  items_job j = {mgr, fn};
  (void)shoal_parallel_for(mgr->rt, 0, mgr->hib->nitems, HIB_BATCH,
                           items_range, &j);
}

/* Whether the session in slot i may hibernate now. Under mu, holding. */
static int idle_enough(shoal_mgr *mgr, shoal__cols *c, uint32_t i,
                       uint64_t cutoff) {
  shoal__session *s = c->sess[i];
  uint64_t woke = s->woke_ms, hyst;
  if (atomic_load_explicit(&s->state, memory_order_relaxed) !=
          SHOAL__S_LIVE ||
      atomic_load_explicit(&c->sched[i], memory_order_relaxed) == 0 ||
      SHOAL__IN_COUNT(atomic_load_explicit(&s->in_word,
                                           memory_order_relaxed)) != 0 ||
      s->ndeferred != 0 || s->d_head != NULL ||
      atomic_load_explicit(&s->touch_ms, memory_order_relaxed) > cutoff)
    return 0;
  hyst = atomic_load_explicit(&mgr->hyst_ms, memory_order_relaxed);
  return woke == 0 || mgr->clock_ms - woke >= hyst;
}

static void wake_one(shoal_mgr *mgr, hib_ws *ws, item *it);

/* Ends a pass under mu: the sessions leave the active array for their
 * records, or stay. Those that were touched, or had a packet reserved,
 * while the pass ran are moved to the front of the items for a wake from
 * their records at once (bounce); returns how many. */
static size_t pass_finish(shoal_mgr *mgr) {
  shoal__hib *h = mgr->hib;
  uint64_t cutoff = mgr->clock_ms - atomic_load_explicit(&mgr->hib_ms,
                                                         memory_order_relaxed);
  size_t nb = 0;
  for (size_t k = 0; k < h->nitems; k++) {
    item *it = &h->items[k];
    shoal__session *s = shoal__mgr_rec(mgr, it->index);
    if (it->rc == IT_OK) {
      uint32_t slot;
      int rc = 0;
      if (atomic_load_explicit(&s->state, memory_order_relaxed) == 0) {
        /* Released while the pass ran: the record goes, and so does the
         * slot; on_release gets user NULL. */
        shoal__mgr_drop_chosen(mgr, s);
        rec_free(it->r);
        continue;
      }
      /* A touch after this load meets a hibernated session: a no-op, as
       * for any. A wake (under mu) comes before or after all of this. */
      if (atomic_load_explicit(&s->touch_ms, memory_order_relaxed) <=
          cutoff) {
        slot = arr_take(h);
        it->r->o.slot = slot;
        rc = shoal__mgr_detach(mgr, s, &it->r->o, &it->r->kept);
        if (rc == 1) {
          h->arr[slot] = it->r;
          count_in(h, it->r);
          h->hibernations++;
          h->w_hib++;
          continue;
        }
        arr_put(h, slot);
      }
      /* Touched, a packet reserved, or no room for its out slot: it
       * stays; the host gets its bytes back. */
      {
        item t = *it;
        h->items[k] = h->items[nb];
        h->items[nb++] = t;
      }
      continue;
    }
    {
      uint32_t st = SHOAL__S_HIBERNATING;
      shoal__cols *c = shoal__mgr_cols(mgr);
      atomic_compare_exchange_strong_explicit(&s->state, &st, SHOAL__S_LIVE,
                                              memory_order_relaxed,
                                              memory_order_relaxed);
      if (it->rc == IT_REFUSED) {
        h->refused++;
        continue;
      }
      /* The host rebuilt it (maybe elsewhere): its new pointer, in its
       * slot now (others' detaches above may have moved it). */
      atomic_store_explicit(
          &c->user[atomic_load_explicit(&s->slot, memory_order_relaxed)],
          it->user, memory_order_relaxed);
      h->failures++;
      shoal__log(mgr->cfg.log, mgr->cfg.log_user,
                 it->rc == IT_FAILED ? SHOAL_LOG_WARN : SHOAL_LOG_ERROR,
                 "session %u: its hibernation record could not be kept "
                 "(out of memory); %s", it->id,
                 it->rc == IT_FAILED ? "woken at once from its bytes"
                                     : "and the host's wake failed");
    }
  }
  h->nitems = nb;
  h->in_pass = 0;
  return nb;
}

/* After a bounce's wakes, under mu: the sessions carry on, LIVE, with
 * the host's new pointers (a release made meanwhile passes it to
 * on_release); the records go. */
static void bounce_finish(shoal_mgr *mgr) {
  shoal__hib *h = mgr->hib;
  shoal__cols *c = shoal__mgr_cols(mgr);
  for (size_t k = 0; k < h->nitems; k++) {
    item *it = &h->items[k];
    shoal__session *s = shoal__mgr_rec(mgr, it->index);
    uint32_t st = SHOAL__S_HIBERNATING;
    atomic_compare_exchange_strong_explicit(&s->state, &st, SHOAL__S_LIVE,
                                            memory_order_relaxed,
                                            memory_order_relaxed);
    atomic_store_explicit(
        &c->user[atomic_load_explicit(&s->slot, memory_order_relaxed)],
        it->user, memory_order_relaxed);
    s->woke_ms = mgr->clock_ms;
    if (it->rc != SHOAL_OK) {
      h->wake_failures++;
      shoal__log(mgr->cfg.log, mgr->cfg.log_user, SHOAL_LOG_ERROR,
                 "session %u: a packet or a touch came while it was "
                 "hibernated, and the host's wake from its bytes failed "
                 "(%s)", it->id, shoal_strerror(it->rc));
    }
    rec_free(it->r);
  }
  h->nitems = 0;
}

/* A pass: up to max idle sessions. Holding the manager. */
static long pass(shoal_mgr *mgr, size_t max) {
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
  if (cand_reserve(h, mgr->nact) != SHOAL_OK) {
    pthread_mutex_unlock(&mgr->mu);
    return SHOAL_ENOMEM;
  }
  /* The compare-and-mask finds the candidates; each is then checked on
   * its record (packets, touches, hysteresis). */
  found = mgr->older(c->last_active, mgr->nact, cutoff, h->cand, mgr->nact);
  if (found > 0 && (items_reserve(h, found < max ? found : max) != SHOAL_OK ||
                    arr_reserve(h, found < max ? found : max) != SHOAL_OK)) {
    pthread_mutex_unlock(&mgr->mu);
    return SHOAL_ENOMEM;
  }
  for (size_t k = 0; k < found && h->nitems < max; k++) {
    uint32_t i = h->cand[k];
    item *it;
    if (!idle_enough(mgr, c, i, cutoff))
      continue;
    it = &h->items[h->nitems++];
    it->index = c->rec[i];
    it->id = c->ids[i];
    it->slot = i;
    it->user = atomic_load_explicit(&c->user[i], memory_order_relaxed);
    it->r = NULL;
    it->rc = IT_REFUSED;
    atomic_store_explicit(&c->sess[i]->state, SHOAL__S_HIBERNATING,
                          memory_order_relaxed);
  }
  h->in_pass = h->nitems > 0;
  pthread_mutex_unlock(&mgr->mu);
  if (h->nitems == 0)
    return 0;
  /* The state the host's callbacks free goes back now: pages emptied on
   * their owner's thread at once, those freed from another worker when
   * each owner collects (runtime/os.c). */
  shoal__alloc_release_begin();
  run_items(mgr, hibernate_one);
  shoal__runtime_collect(mgr->rt, 0);
  shoal__alloc_release_end();
  pthread_mutex_lock(&mgr->mu);
  done = (long)h->hibernations;
  (void)pass_finish(mgr);
  done = (long)h->hibernations - done;
  pthread_mutex_unlock(&mgr->mu);
  if (h->nitems > 0) {
    run_items(mgr, wake_one);
    pthread_mutex_lock(&mgr->mu);
    bounce_finish(mgr);
    pthread_mutex_unlock(&mgr->mu);
  }
  return done;
}

/* ------------------------------------------------------------------------ */
/* Waking                                                                   */
/* ------------------------------------------------------------------------ */

static void wake_one(shoal_mgr *mgr, hib_ws *ws, item *it) {
  const hrec *r = it->r;
  uint64_t t0 = shoal__fast_ns(), t1 = 0;
  size_t len = 0;
  /* Decode checks the record whole (lengths, CRC) before a byte is
   * decompressed; a header that claims more than was stored is corrupt. */
  int rc = grow_tmp(ws, r->raw > 0 ? r->raw : 1);
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

/* Wakes every session asked for. Holding the manager, before the tick. */
static long wakes(shoal_mgr *mgr) {
  shoal__hib *h = mgr->hib;
  size_t n = 0, nr = 0;
  long woke = 0;
  hrec *r;
  pthread_mutex_lock(&mgr->mu);
  for (r = h->wk_head; r != NULL; r = rec_of(r->o.wk_next))
    n++;
  if (n == 0) {
    pthread_mutex_unlock(&mgr->mu);
    return 0;
  }
  if (items_reserve(h, n) != SHOAL_OK ||
      shoal__mgr_reserve(mgr, (uint32_t)n) != SHOAL_OK) {
    pthread_mutex_unlock(&mgr->mu);
    shoal__log(mgr->cfg.log, mgr->cfg.log_user, SHOAL_LOG_WARN,
               "hibernation: no memory to wake %zu sessions now; retried "
               "at the next update", n);
    return SHOAL_ENOMEM;
  }
  /* Each takes its pool element now, so that its wake cannot fail after
   * the host's callback; those that get none wait for the next update. */
  h->nitems = 0;
  while ((r = h->wk_head) != NULL) {
    item *it = &h->items[h->nitems];
    hrec *next = rec_of(r->o.wk_next);
    if (!(r->o.flags & SHOAL__OUT_GONE) &&
        shoal__pool_get(&mgr->pool, r->o.node, &it->index) != SHOAL_OK)
      break;
    h->wk_head = next;
    r->o.flags &= ~SHOAL__OUT_ASKED;
    if (r->o.flags & SHOAL__OUT_GONE) { /* released while it waited */
      rec_free(r);
      continue;
    }
    r->o.flags |= SHOAL__OUT_WAKING;
    it->id = r->o.id;
    it->user = NULL;
    it->r = r;
    it->rc = 0;
    h->nitems++;
  }
  if (h->wk_head == NULL)
    h->wk_tail = NULL;
  pthread_mutex_unlock(&mgr->mu);
  if (h->nitems > 0)
    run_items(mgr, wake_one);
  pthread_mutex_lock(&mgr->mu);
  for (size_t k = 0; k < h->nitems; k++) {
    item *it = &h->items[k];
    r = it->r;
    r->o.flags &= ~SHOAL__OUT_WAKING;
    if (r->o.flags & SHOAL__OUT_GONE) {
      /* Released during its wake: the host hears of it with the state
       * it has just rebuilt (below, outside mu). */
      shoal__pool_put(&mgr->pool, it->index);
      rec_free(r);
      if (it->rc == SHOAL_OK)
        h->items[nr++] = *it;
    } else if (it->rc == SHOAL_OK) {
      arr_put(h, r->o.slot);
      count_out(h, r);
      shoal__mgr_attach(mgr, &r->o, it->index, it->user, &r->kept);
      rec_free(r);
      h->wakes++;
      h->w_wakes++;
      woke++;
    } else {
      shoal__pool_put(&mgr->pool, it->index);
      h->wake_failures++;
      shoal__log(mgr->cfg.log, mgr->cfg.log_user, SHOAL_LOG_ERROR,
                 "session %u: wake failed (%s); it stays hibernated with "
                 "its record", it->id,
                 it->rc == SHOAL_EFORMAT ? "its record is corrupt"
                                         : shoal_strerror(it->rc));
    }
  }
  h->nitems = 0;
  shoal__slots_join(mgr);
  pthread_mutex_unlock(&mgr->mu);
  for (size_t k = 0; k < nr && mgr->cb.on_release != NULL; k++)
    mgr->cb.on_release(mgr->cb.host, h->items[k].id, h->items[k].user);
  return woke;
}

/* ------------------------------------------------------------------------ */
/* Defragmentation                                                          */
/* ------------------------------------------------------------------------ */

/* Moves the records of chunks less than a quarter full into new chunks
 * together, so that those chunks go back to the system. Not those on the
 * wake list (linked there). Under mu, holding the manager (no pass uses
 * the workers' cursors). */
static void compact(shoal__hib *h) {
  shoal__arena_cursor dc = {NULL, 0};
  /* The workers' chunks first: one left sparse by the last pass goes
   * with its records (the next pass starts new ones). */
  for (unsigned w = 0; w < h->nw; w++)
    shoal__arena_done(&h->ws[w].cur);
  for (uint32_t k = 0; k < h->n; k++) {
    hrec *r = h->arr[k], *m;
    if (r == NULL || (r->o.flags & (SHOAL__OUT_ASKED | SHOAL__OUT_WAKING)) ||
        !shoal__arena_sparse(r))
      continue;
    if ((m = shoal__arena_alloc(&dc, rec_size(r))) == NULL)
      break; /* they stay where they are */
    memcpy(m, r, rec_size(r));
    h->arr[k] = m;
    rec_free(r);
  }
  shoal__arena_done(&dc);
}

/* The defragmentation's share (sessions/defrag.c drives it): the table
 * fitted to its highest slot, sparse records moved together, the passes'
 * scratch lists given back (they grow again on use). Under mu, holding
 * the manager. Returns the table bytes given back. */
static size_t defrag(shoal_mgr *mgr) {
  shoal__hib *h = mgr->hib;
  size_t before = table_bytes(h->cap, sizeof *h->arr) +
                  table_bytes(h->cap, sizeof *h->fr) +
                  h->items_cap * sizeof *h->items +
                  h->cand_cap * sizeof *h->cand;
  arr_fit(h);
  compact(h);
  if (h->cap > 1024 && h->n < h->cap / 2)
    (void)arr_resize(h, h->n < 1024 ? 1024 : h->n); /* else it stays */
  shoal__pages_free(h->items, h->items_cap * sizeof *h->items);
  shoal__pages_free(h->cand, h->cand_cap * sizeof *h->cand);
  h->items = NULL;
  h->cand = NULL;
  h->items_cap = h->cand_cap = 0;
  return before - table_bytes(h->cap, sizeof *h->arr) -
         table_bytes(h->cap, sizeof *h->fr);
}

/* ------------------------------------------------------------------------ */
/* Hooks                                                                    */
/* ------------------------------------------------------------------------ */

static void wake_phase(shoal_mgr *mgr) {
  (void)wakes(mgr);
}

/* After each tick: a pass every quarter threshold of manager time (at
 * least every millisecond, at most every second). */
static void hib_phase(shoal_mgr *mgr) {
  shoal__hib *h = mgr->hib;
  uint64_t thr = atomic_load_explicit(&mgr->hib_ms, memory_order_relaxed);
  uint64_t every = thr / 4 < 1 ? 1 : thr / 4 > 1000 ? 1000 : thr / 4;
  if (mgr->clock_ms - h->last_scan_ms >= every) {
    h->last_scan_ms = mgr->clock_ms;
    (void)pass(mgr, mgr->cfg.hibernate_per_update);
  }
}

static shoal__out *out_at(shoal_mgr *mgr, uint32_t slot) {
  shoal__hib *h = mgr->hib;
  return slot < h->n && h->arr[slot] != NULL ? &h->arr[slot]->o : NULL;
}

static void forget(shoal_mgr *mgr, shoal__out *o) {
  shoal__hib *h = mgr->hib;
  hrec *r = rec_of(o);
  arr_put(h, o->slot);
  count_out(h, r);
  /* On the wake list, or in a wake phase: that frees it. */
  if (o->flags & (SHOAL__OUT_ASKED | SHOAL__OUT_WAKING))
    o->flags |= SHOAL__OUT_GONE;
  else
    rec_free(r);
}

static uint64_t count(shoal_mgr *mgr, uint64_t *pending) {
  shoal__hib *h = mgr->hib;
  for (uint32_t k = 0; pending != NULL && k < h->n; k++)
    if (h->arr[k] != NULL)
      *pending += h->arr[k]->o.nheld;
  return mgr->nout;
}

static void destroy(shoal_mgr *mgr) {
  shoal__hib *h = mgr->hib;
  for (uint32_t k = 0; k < h->n; k++) {
    hrec *r = h->arr[k];
    if (r == NULL)
      continue;
    if (mgr->cb.on_release != NULL)
      mgr->cb.on_release(mgr->cb.host, r->o.id, NULL);
    shoal__pk_drop_held(mgr, &r->o);
    rec_free(r);
  }
  /* Released ones still on the wake list. */
  for (hrec *r = h->wk_head, *next; r != NULL; r = next) {
    next = rec_of(r->o.wk_next);
    if (r->o.flags & SHOAL__OUT_GONE)
      rec_free(r);
  }
  for (unsigned w = 0; w < h->nw; w++) {
    shoal__arena_done(&h->ws[w].cur);
    shoal__pages_free(h->ws[w].w.buf, h->ws[w].w.cap);
    shoal__pages_free(h->ws[w].tmp, h->ws[w].tmp_cap);
  }
  shoal__free(h->ws);
  shoal__pages_free(h->arr, table_bytes(h->cap, sizeof *h->arr));
  shoal__pages_free(h->fr, table_bytes(h->cap, sizeof *h->fr));
  shoal__pages_free(h->items, h->items_cap * sizeof *h->items);
  shoal__pages_free(h->cand, h->cand_cap * sizeof *h->cand);
  shoal__free(h);
  mgr->hib = NULL;
}

static const shoal__hib_hooks hooks = {
    wake_phase, hib_phase, out_at, ask, forget, count, defrag, destroy};

/* ------------------------------------------------------------------------ */
/* The API                                                                  */
/* ------------------------------------------------------------------------ */

int shoal_mgr_set_hibernation(shoal_mgr *mgr, const shoal_hib_callbacks *cb) {
  shoal__hib *h;
  if (mgr == NULL || cb == NULL || cb->hibernate == NULL || cb->wake == NULL)
    return SHOAL_EINVAL;
  if (shoal__mgr_in_callback(mgr))
    return SHOAL_ESTATE;
  pthread_mutex_lock(&mgr->mu);
  shoal__mgr_wait_tick(mgr);
  if ((h = mgr->hib) == NULL) {
    unsigned nw = shoal_runtime_workers(mgr->rt);
    h = shoal__calloc(1, sizeof *h);
    if (h != NULL &&
        (h->ws = shoal__aligned_alloc(SHOAL_FALSE_SHARING,
                                      nw * sizeof *h->ws)) == NULL) {
      shoal__free(h);
      h = NULL;
    }
    if (h == NULL) {
      pthread_mutex_unlock(&mgr->mu);
      return SHOAL_ENOMEM;
    }
    memset(h->ws, 0, nw * sizeof *h->ws);
    h->nw = nw;
    h->w_start_ns = shoal__now_ns();
    h->last_scan_ms = mgr->last_defrag_ms = mgr->clock_ms;
    mgr->hib = h;
    mgr->hooks = &hooks;
  }
  h->cb = *cb;
  pthread_mutex_unlock(&mgr->mu);
  return SHOAL_OK;
}

int shoal_mgr_set_hibernation_hysteresis_ms(shoal_mgr *mgr, uint64_t ms) {
  if (mgr == NULL)
    return SHOAL_EINVAL;
  atomic_store_explicit(&mgr->hyst_ms, ms, memory_order_relaxed);
  return SHOAL_OK;
}

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
  atomic_store_explicit(&s->touch_ms,
                        atomic_load_explicit(&mgr->clock_pub,
                                             memory_order_relaxed),
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
      ask(mgr, o);
  } else
    rc = SHOAL_ENOENT;
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
    uint64_t now = atomic_load_explicit(&mgr->clock_pub,
                                        memory_order_relaxed);
    for (uint32_t k = 0; k < h->n; k++) {
      hrec *r = h->arr[k];
      if (r != NULL && (by_map ? r->o.map : r->o.group) == v) {
        n += !(r->o.flags & (SHOAL__OUT_ASKED | SHOAL__OUT_WAKING));
        ask(mgr, &r->o);
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

typedef struct call_arg {
  size_t max;
  long result;
} call_arg;

static void call_pass(shoal_mgr *mgr, void *arg) {
  call_arg *a = arg;
  a->result = pass(mgr, a->max == 0 ? SIZE_MAX : a->max);
}

static void call_wakes(shoal_mgr *mgr, void *arg) {
  ((call_arg *)arg)->result = wakes(mgr);
}

static long held(shoal_mgr *mgr, void (*f)(shoal_mgr *, void *),
                 call_arg *a) {
  int rc;
  if (mgr == NULL)
    return SHOAL_EINVAL;
  /* mgr->hooks is set once, under mu; a caller between updates sees it. */
  pthread_mutex_lock(&mgr->mu);
  rc = mgr->hooks == NULL ? SHOAL_ESTATE : SHOAL_OK;
  pthread_mutex_unlock(&mgr->mu);
  if (rc == SHOAL_OK)
    rc = shoal__mgr_hold(mgr, f, a);
  return rc != SHOAL_OK ? rc : a->result;
}

long shoal_mgr_hibernate_idle(shoal_mgr *mgr, size_t max) {
  call_arg a = {max, 0};
  return held(mgr, call_pass, &a);
}

long shoal_mgr_run_wakes(shoal_mgr *mgr) {
  call_arg a = {0, 0};
  return held(mgr, call_wakes, &a);
}

/* Adds src to dst; reset: clears src. */
static void hist_take(shoal__hist *dst, shoal__hist *src, int reset) {
  shoal__hist_merge(dst, src);
  if (reset)
    memset(src, 0, sizeof *src);
}

int shoal_mgr_hibernation_stats(shoal_mgr *mgr, shoal_hib_stats *out,
                                int reset) {
  shoal__hib *h;
  shoal__hist ht, wt, ho, wo;
  uint64_t now;
  if (mgr == NULL || out == NULL)
    return SHOAL_EINVAL;
  if (shoal__mgr_in_callback(mgr))
    return SHOAL_ESTATE;
  memset(out, 0, sizeof *out);
  pthread_mutex_lock(&mgr->mu);
  shoal__mgr_wait_tick(mgr);
  if ((h = mgr->hib) == NULL) {
    pthread_mutex_unlock(&mgr->mu);
    return SHOAL_OK;
  }
  now = shoal__now_ns();
  memset(&ht, 0, sizeof ht);
  memset(&wt, 0, sizeof wt);
  memset(&ho, 0, sizeof ho);
  memset(&wo, 0, sizeof wo);
  for (unsigned w = 0; w < h->nw; w++) {
    hist_take(&ht, &h->ws[w].hib_t, reset);
    hist_take(&wt, &h->ws[w].wake_t, reset);
    hist_take(&ho, &h->ws[w].hib_own, reset);
    hist_take(&wo, &h->ws[w].wake_own, reset);
  }
  out->hibernated = mgr->nout;
  out->hibernations = h->hibernations;
  out->wakes = h->wakes;
  out->refused = h->refused;
  out->failures = h->failures;
  out->wake_failures = h->wake_failures;
  out->window_s = (double)(now - h->w_start_ns) * 1e-9;
  if (out->window_s > 0) {
    out->hibernations_per_s = (double)h->w_hib / out->window_s;
    out->wakes_per_s = (double)h->w_wakes / out->window_s;
  }
  out->record_bytes = h->rec_bytes;
  out->raw_bytes = h->raw_bytes;
  for (uint32_t k = 0; k < h->n; k++) {
    const hrec *r = h->arr[k];
    if (r != NULL && rec_size(r) > out->record_max)
      out->record_max = rec_size(r);
  }
  out->record_mean = mgr->nout > 0 ? (double)h->rec_bytes / mgr->nout : 0;
  out->bytes_saved =
      h->freed_bytes > h->rec_bytes ? h->freed_bytes - h->rec_bytes : 0;
  out->hibernate_p50_ns = shoal__hist_quantile(&ht, 0.50);
  out->hibernate_p99_ns = shoal__hist_quantile(&ht, 0.99);
  out->wake_p50_ns = shoal__hist_quantile(&wt, 0.50);
  out->wake_p99_ns = shoal__hist_quantile(&wt, 0.99);
  out->hibernate_shoal_p50_ns = shoal__hist_quantile(&ho, 0.50);
  out->hibernate_shoal_p99_ns = shoal__hist_quantile(&ho, 0.99);
  out->wake_shoal_p50_ns = shoal__hist_quantile(&wo, 0.50);
  out->wake_shoal_p99_ns = shoal__hist_quantile(&wo, 0.99);
  out->defrags = mgr->defrags;
  out->defrag_returned = mgr->defrag_returned;
  if (reset) {
    h->w_hib = h->w_wakes = 0;
    h->w_start_ns = now;
  }
  pthread_mutex_unlock(&mgr->mu);
  return SHOAL_OK;
}

/* A hibernated session's record, for tests that corrupt one on purpose.
 * Under no lock: the caller knows nothing else runs. */
unsigned char *shoal__hib_record_of(shoal_mgr *mgr, uint32_t id,
                                    size_t *len) {
  shoal__out *o;
  hrec *r;
  pthread_mutex_lock(&mgr->mu);
  o = mgr->hib != NULL ? shoal__mgr_out(mgr, id) : NULL;
  pthread_mutex_unlock(&mgr->mu);
  if (o == NULL)
    return NULL;
  r = rec_of(o);
  *len = r->len;
  return r->rec;
}
