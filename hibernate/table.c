/* table.c — the table of hibernated sessions (by out slot, in pages of
 * their own), their records' memory and figures, the hooks the manager
 * calls (sessions/mgr.h: out, ask, forget, count, the defragmentation's
 * share, destroy), turning hibernation on, and its statistics. The
 * design and its threads: docs/hibernation.md. */
#include <stddef.h>
#include <string.h>

#include "hibernate/hib.h"
#include "hibernate/record.h"
#include "hibernate/table.h"
#include "runtime/alloc.h"
#include "runtime/os.h"
#include "runtime/sched/sched.h"

void shoal__hrec_free(shoal__hrec *r) {
  shoal__arena_free(r, shoal__hrec_size(r));
}

/* A scratch buffer (*p, *cap bytes) to at least n bytes, its first `keep`
 * bytes kept. Whole pages of their own (runtime/alloc.h), a power of two of
 * them: the workers then allocate nothing from the allocator during a
 * pass (which would keep a segment per worker alive), and a list dropped
 * by the defragmentation leaves at once (mimalloc would keep its span for
 * its decommit delay). */
int shoal__hib_scratch_grow(unsigned char **p, size_t *cap, size_t n,
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
  if (shoal__hib_scratch_grow(&b, &bytes, (n + n / 2) * elem, *cap * elem) !=
      SHOAL_OK)
    return SHOAL_ENOMEM;
  *p = b;
  *cap = bytes / elem;
  return SHOAL_OK;
}

_Static_assert(4096 % sizeof(shoal__hib_item) == 0, "items fill pages exactly");

int shoal__hib_items_reserve(shoal__hib *h, size_t n) {
  void *p = h->items;
  int rc = reserve(&p, &h->items_cap, n, sizeof *h->items);
  h->items = p;
  return rc;
}

int shoal__hib_cand_reserve(shoal__hib *h, size_t n) {
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
  shoal__hrec **a = shoal__pages_alloc(table_bytes(cap, sizeof *a), 4096);
  uint32_t *f =
      a != NULL ? shoal__pages_alloc(table_bytes(cap, sizeof *f), 4096) : NULL;
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
int shoal__hib_slot_reserve(shoal__hib *h, size_t more) {
  uint64_t need = (uint64_t)h->n + (more > h->nfr ? more - h->nfr : 0);
  if (need <= h->cap)
    return SHOAL_OK;
  if (need > SHOAL__REG_OUT_MAX)
    return SHOAL_ENOMEM;
  need += need / 2;
  return arr_resize(h,
                    (uint32_t)(need < 1024                 ? 1024
                               : need > SHOAL__REG_OUT_MAX ? SHOAL__REG_OUT_MAX
                                                           : need));
}

/* A slot for r (reserved), lowest free first. */
uint32_t shoal__hib_slot_take(shoal__hib *h) {
  return h->nfr > 0 ? h->fr[--h->nfr] : h->n++;
}

void shoal__hib_slot_put(shoal__hib *h, uint32_t slot) {
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
void shoal__hib_ask(shoal_mgr *mgr, shoal__out *o) {
  shoal__hib *h = mgr->hib;
  shoal__hrec *r = shoal__hrec_of(o);
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

void shoal__hib_count_in(shoal__hib *h, const shoal__hrec *r) {
  h->rec_bytes += shoal__hrec_size(r);
  h->raw_bytes += r->raw;
  h->freed_bytes += r->freed;
}

void shoal__hib_count_out(shoal__hib *h, const shoal__hrec *r) {
  h->rec_bytes -= shoal__hrec_size(r);
  h->raw_bytes -= r->raw;
  h->freed_bytes -= r->freed;
}

int shoal__hib_grow_tmp(shoal__hib_ws *ws, size_t n) {
  return shoal__hib_scratch_grow(&ws->tmp, &ws->tmp_cap, n, 0);
}

/* The items of a pass or a wake phase, fn on each, as a parallel_for in
 * batches of SHOAL__HIB_BATCH; the host's callbacks run marked as inside mgr's
 * (so that they cannot call update). */
typedef void (*shoal__hib_item_fn)(shoal_mgr *mgr, shoal__hib_ws *ws,
                                   shoal__hib_item *it);
typedef struct items_job {
  shoal_mgr *mgr;
  shoal__hib_item_fn fn;
} items_job;

static void items_range(void *arg, size_t b, size_t e) {
  const items_job *j = arg;
  shoal_worker *w = shoal__current(j->mgr->rt);
  unsigned wi = w != NULL ? shoal_worker_index(w) : 0;
  shoal__hib_ws *ws = &j->mgr->hib->ws[wi]; /* this worker's buffers */
  _Atomic uint64_t *beat = &j->mgr->samples[wi].beat;
  const shoal_mgr *prev = shoal__cb_enter(j->mgr);
  for (size_t i = b; i < e; i++) {
    shoal__beat(beat, SHOAL__CB_HIBERNATE, j->mgr->hib->items[i].id);
    j->fn(j->mgr, ws, &j->mgr->hib->items[i]);
  }
  shoal__beat(beat, SHOAL__CB_NONE, 0);
  shoal__cb_leave(prev);
}

void shoal__hib_run_items(shoal_mgr *mgr, shoal__hib_item_fn fn) {
  items_job j = {mgr, fn};
  (void)shoal_parallel_for(mgr->rt, 0, mgr->hib->nitems, SHOAL__HIB_BATCH,
                           items_range, &j);
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
    shoal__hrec *r = h->arr[k], *m;
    if (r == NULL || (r->o.flags & (SHOAL__OUT_ASKED | SHOAL__OUT_WAKING)) ||
        !shoal__arena_sparse(r))
      continue;
    if ((m = shoal__arena_alloc(&dc, shoal__hrec_size(r))) == NULL)
      break; /* they stay where they are */
    memcpy(m, r, shoal__hrec_size(r));
    h->arr[k] = m;
    shoal__hrec_free(r);
  }
  shoal__arena_done(&dc);
}

/* The defragmentation's share (sessions/defrag.c drives it): the table
 * fitted to its highest slot, sparse records moved together, the passes'
 * scratch lists given back (they grow again on use). Under mu, holding
 * the manager. Returns the table bytes given back. */
static size_t defrag(shoal_mgr *mgr) {
  shoal__hib *h = mgr->hib;
  size_t before =
      table_bytes(h->cap, sizeof *h->arr) + table_bytes(h->cap, sizeof *h->fr) +
      h->items_cap * sizeof *h->items + h->cand_cap * sizeof *h->cand;
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

static shoal__out *out_at(shoal_mgr *mgr, uint32_t slot) {
  shoal__hib *h = mgr->hib;
  return slot < h->n && h->arr[slot] != NULL ? &h->arr[slot]->o : NULL;
}

static void forget(shoal_mgr *mgr, shoal__out *o) {
  shoal__hib *h = mgr->hib;
  shoal__hrec *r = shoal__hrec_of(o);
  shoal__hib_slot_put(h, o->slot);
  shoal__hib_count_out(h, r);
  /* On the wake list, or in a wake phase: that frees it. */
  if (o->flags & (SHOAL__OUT_ASKED | SHOAL__OUT_WAKING))
    o->flags |= SHOAL__OUT_GONE;
  else
    shoal__hrec_free(r);
}

static void *stored(shoal_mgr *mgr, shoal__out *o, size_t *len,
                    shoal_hib_release_fn *fn) {
  const shoal__hrec *r = shoal__hrec_of(o);
  void *b;
  int rc;
  *len = 0;
  if ((*fn = mgr->hib->cb.release) == NULL)
    return NULL;
  if ((b = shoal__malloc(r->raw > 0 ? r->raw : 1)) == NULL) {
    rc = SHOAL_ENOMEM;
  } else {
    rc = shoal__hib_decode(r->rec, r->len, b, r->raw, len);
    if (rc == SHOAL_ELIMIT || (rc == SHOAL_OK && *len != r->raw))
      rc = SHOAL_EFORMAT;
  }
  if (rc == SHOAL_OK)
    return b;
  shoal__free(b);
  *len = 0;
  shoal__log(mgr->cfg.log, mgr->cfg.log_user, SHOAL_LOG_ERROR,
             "hibernation: session %u released: its stored bytes cannot be "
             "given to the release callback (%s)",
             o->id, shoal_strerror(rc));
  return NULL;
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
    shoal__hrec *r = h->arr[k];
    if (r == NULL)
      continue;
    if (mgr->cb.on_release != NULL)
      mgr->cb.on_release(mgr->cb.host, r->o.id, NULL);
    shoal__pk_drop_held(mgr, &r->o);
    shoal__hrec_free(r);
  }
  /* Released ones still on the wake list. */
  for (shoal__hrec *r = h->wk_head, *next; r != NULL; r = next) {
    next = shoal__hrec_of(r->o.wk_next);
    if (r->o.flags & SHOAL__OUT_GONE)
      shoal__hrec_free(r);
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

static const shoal__hib_hooks hooks = {shoal__hib_wake_phase,
                                       shoal__hib_pass_phase,
                                       out_at,
                                       shoal__hib_ask,
                                       forget,
                                       stored,
                                       count,
                                       defrag,
                                       destroy};

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
    unsigned nw = shoal_runtime_workers_max(mgr->rt);
    h = shoal__calloc(1, sizeof *h);
    if (h != NULL && (h->ws = shoal__aligned_alloc(
                          SHOAL__FALSE_SHARING, nw * sizeof *h->ws)) == NULL) {
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

long shoal__hib_held(shoal_mgr *mgr, void (*f)(shoal_mgr *, void *),
                     shoal__hib_call *a) {
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

/* Adds src to dst; reset: clears src. */
static void hist_take(shoal__hist *dst, shoal__hist *src, int reset) {
  shoal__hist_merge(dst, src);
  if (reset)
    memset(src, 0, sizeof *src);
}

int shoal_hib_stats_get(shoal_mgr *mgr, shoal_hib_stats *out, int reset) {
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
  out->too_large = h->too_large;
  out->exports = h->exports;
  out->imports = h->imports;
  out->window_s = (double)(now - h->w_start_ns) * 1e-9;
  if (out->window_s > 0) {
    out->hibernations_per_s = (double)h->w_hib / out->window_s;
    out->wakes_per_s = (double)h->w_wakes / out->window_s;
  }
  out->record_bytes = h->rec_bytes;
  out->raw_bytes = h->raw_bytes;
  for (uint32_t k = 0; k < h->n; k++) {
    const shoal__hrec *r = h->arr[k];
    if (r != NULL && shoal__hrec_size(r) > out->record_max)
      out->record_max = shoal__hrec_size(r);
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
unsigned char *shoal__hib_record_of(shoal_mgr *mgr, uint32_t id, size_t *len) {
  shoal__out *o;
  shoal__hrec *r;
  pthread_mutex_lock(&mgr->mu);
  o = mgr->hib != NULL ? shoal__mgr_out(mgr, id) : NULL;
  pthread_mutex_unlock(&mgr->mu);
  if (o == NULL)
    return NULL;
  r = shoal__hrec_of(o);
  *len = r->len;
  return r->rec;
}
