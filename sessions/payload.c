/* payload.c — payloads past a packet's inline bytes: copied into buffers
 * of the manager's size-class pools (256 B << k; each a Treiber stack over
 * slabs, pool/pool.h, so a warm manager allocates nothing per packet),
 * bounded by SessionMgr.PayloadBudgetMB, or the host's own buffer with
 * its free callback. Every packet that carries one gives it back exactly
 * once, where the packet ends (shoal__pkt_end). API: shoal.h, "Packets";
 * design: docs/packets.md.
 *
 * Synchronization: the pools are lock-free (get, put from any thread); the
 * figures are relaxed atomic counters, read by shoal_packet_stats_get. */
#include <string.h>

#include "runtime/common.h"
#include "sessions/mgr.h"

/* A buffer: the pool's key, then the bytes (16-byte aligned). */
#define BUF_HEAD 16u
#define CLASS_MIN 256u
#define SLAB_BYTES (1u << 20)

static uint64_t class_bytes(unsigned k) {
  return (uint64_t)CLASS_MIN << k;
}

/* The smallest class that holds len. */
static unsigned class_of(size_t len) {
  unsigned k = 0;
  while (class_bytes(k) < len)
    k++;
  return k;
}

int shoal__payload_init(shoal_mgr *mgr) {
  shoal__packets *pk = &mgr->pk;
  unsigned n = class_of(mgr->cfg.max_packet_bytes) + 1;
  pk->budget = (uint64_t)mgr->cfg.payload_budget_mb << 20;
  if ((pk->bufs = shoal__calloc(n, sizeof *pk->bufs)) == NULL)
    return SHOAL_ENOMEM;
  for (unsigned k = 0; k < n; k++) {
    uint64_t size = BUF_HEAD + class_bytes(k);
    uint64_t per = SLAB_BYTES / size, max = pk->budget / class_bytes(k) + 1;
    int rc = shoal__pool_init(&pk->bufs[k], (size_t)size,
                              (uint32_t)(per < 1 ? 1 : per), 0, max, 1, NULL);
    if (rc != SHOAL_OK) {
      pk->nbufs = k;
      shoal__payload_destroy(mgr);
      return rc;
    }
    pk->bufs[k].owner_resets = 1; /* the bytes are the sender's to write */
  }
  pk->nbufs = n;
  return SHOAL_OK;
}

void shoal__payload_destroy(shoal_mgr *mgr) {
  for (unsigned k = 0; k < mgr->pk.nbufs; k++)
    shoal__pool_destroy(&mgr->pk.bufs[k]);
  shoal__free(mgr->pk.bufs);
  mgr->pk.bufs = NULL;
  mgr->pk.nbufs = 0;
}

/* Counts a payload of len bytes in. */
static void taken(shoal__packets *pk, size_t len) {
  uint64_t now = atomic_fetch_add_explicit(&pk->pl_bytes, len,
                                           memory_order_relaxed) +
                 len;
  uint64_t peak = atomic_load_explicit(&pk->pl_peak, memory_order_relaxed);
  atomic_fetch_add_explicit(&pk->pl_taken, 1, memory_order_relaxed);
  while (now > peak &&
         !atomic_compare_exchange_weak_explicit(&pk->pl_peak, &peak, now,
                                                memory_order_relaxed,
                                                memory_order_relaxed))
    ;
}

/* A buffer of class k within the budget: its element in *i. SHOAL_EAGAIN
 * (counted refused), SHOAL_ENOMEM. */
static int buf_take(shoal__packets *pk, unsigned k, uint32_t *i) {
  uint64_t size = class_bytes(k);
  int rc;
  /* The budget first, so that the pools never pass it together. */
  if (atomic_fetch_add_explicit(&pk->pl_mem, size, memory_order_relaxed) +
          size >
      pk->budget) {
    atomic_fetch_sub_explicit(&pk->pl_mem, size, memory_order_relaxed);
    atomic_fetch_add_explicit(&pk->pl_refused, 1, memory_order_relaxed);
    return SHOAL_EAGAIN;
  }
  if ((rc = shoal__pool_get(&pk->bufs[k], 0, i)) != SHOAL_OK) {
    atomic_fetch_sub_explicit(&pk->pl_mem, size, memory_order_relaxed);
    if (rc == SHOAL_ELIMIT)
      atomic_fetch_add_explicit(&pk->pl_refused, 1, memory_order_relaxed);
    return rc == SHOAL_ELIMIT ? SHOAL_EAGAIN : rc;
  }
  return SHOAL_OK;
}

/* Fills x with a buffer holding len bytes of data. */
static int buf_fill(shoal__packets *pk, shoal__pkt_ext *x, const void *data,
                    size_t len) {
  unsigned k = class_of(len);
  uint32_t i;
  int rc;
  if ((rc = buf_take(pk, k, &i)) != SHOAL_OK)
    return rc;
  x->bytes = (unsigned char *)shoal__pool_at(&pk->bufs[k], i) + BUF_HEAD;
  x->free_fn = NULL;
  x->free_arg = NULL;
  x->buf = i;
  x->cls = (uint8_t)k;
  memcpy(x->bytes, data, len);
  taken(pk, len);
  return SHOAL_OK;
}

int shoal__payload_copy(shoal_mgr *mgr, shoal__pkt *p, const void *data,
                        size_t len) {
  int rc = buf_fill(&mgr->pk, shoal__pkt_ext_of(p), data, len);
  if (rc == SHOAL_OK)
    p->len = (uint32_t)len | SHOAL__PKT_EXT;
  return rc;
}

/* A shared buffer's count of holders, in its head after the pool's key:
 * SHARE_BIAS while the sharer makes packets of it, each packet's end
 * takes one off, and the sharer takes off the bias less the packets it
 * gave, so that the count reaches 0 once, after every holder. */
#define SHARE_BIAS (UINT64_C(1) << 62)
static _Atomic uint64_t *holders(const shoal__pkt_ext *x) {
  return (_Atomic uint64_t *)(void *)(x->bytes - BUF_HEAD + 8);
}
_Static_assert(BUF_HEAD >= 16, "the holders' count fits the head");

int shoal__payload_share(shoal_mgr *mgr, const void *data, size_t len,
                         shoal__pkt_ext *x) {
  int rc = buf_fill(&mgr->pk, x, data, len);
  if (rc != SHOAL_OK)
    return rc;
  x->cls |= SHOAL__EXT_SHARED;
  atomic_store_explicit(holders(x), SHARE_BIAS, memory_order_relaxed);
  return SHOAL_OK;
}

/* The buffer's last holder gives it back into e. */
static void buf_give(shoal__packets *pk, shoal__ends *e,
                     const shoal__pkt_ext *x, uint32_t len) {
  unsigned k = x->cls & ~SHOAL__EXT_SHARED;
  if (!(e->classes & (1u << k))) /* see shoal__ends_init */
    e->bufs[k].first = e->bufs[k].last = e->bufs[k].n = 0;
  shoal__pool_chain_add(&pk->bufs[k], &e->bufs[k], x->buf);
  e->classes |= 1u << k;
  e->mem += class_bytes(k);
  e->bytes += len;
  e->freed++;
}

/* Takes n off x's holders; the one that reaches 0 gives it back.
 * acq_rel: every holder's reads of the bytes come before the give. */
static void unhold(shoal__packets *pk, shoal__ends *e, const shoal__pkt_ext *x,
                   uint64_t n, uint32_t len) {
  if (atomic_fetch_sub_explicit(holders(x), n, memory_order_acq_rel) == n)
    buf_give(pk, e, x, len);
}

void shoal__payload_unshare(shoal_mgr *mgr, const shoal__pkt_ext *x,
                            uint32_t len, uint64_t given) {
  shoal__ends e;
  shoal__ends_init(&e);
  unhold(&mgr->pk, &e, x, SHARE_BIAS - given, len);
  shoal__ends_flush(mgr, &e);
}

void shoal__payload_own(shoal_mgr *mgr, shoal__pkt *p, void *data, size_t len,
                        shoal_payload_free_fn fn, void *arg) {
  shoal__pkt_ext *x = shoal__pkt_ext_of(p);
  x->bytes = data;
  x->free_fn = fn;
  x->free_arg = arg;
  x->buf = 0;
  x->cls = 0;
  p->len = (uint32_t)len | SHOAL__PKT_EXT;
  taken(&mgr->pk, len);
}

void shoal__payload_end(shoal_mgr *mgr, shoal__ends *e, shoal__pkt *p) {
  shoal__pkt_ext *x = shoal__pkt_ext_of(p);
  uint32_t len = p->len & ~SHOAL__PKT_EXT;
  p->len = len; /* given back: never twice */
  if (x->free_fn != NULL) {
    x->free_fn(x->free_arg, x->bytes);
    e->bytes += len;
    e->freed++;
  } else if (x->cls & SHOAL__EXT_SHARED) {
    unhold(&mgr->pk, e, x, 1, len);
  } else {
    buf_give(&mgr->pk, e, x, len);
  }
}

void shoal__ends_flush(shoal_mgr *mgr, shoal__ends *e) {
  shoal__packets *pk = &mgr->pk;
  shoal__pool_put_chain(&pk->pool, &e->pkts);
  for (uint32_t c = e->classes; c != 0; c &= c - 1) {
    unsigned k = (unsigned)__builtin_ctz(c);
    shoal__pool_put_chain(&pk->bufs[k], &e->bufs[k]);
  }
  /* the buffers are back before their budget is */
  if (e->mem != 0)
    atomic_fetch_sub_explicit(&pk->pl_mem, e->mem, memory_order_relaxed);
  if (e->freed != 0) {
    atomic_fetch_sub_explicit(&pk->pl_bytes, e->bytes, memory_order_relaxed);
    atomic_fetch_add_explicit(&pk->pl_freed, e->freed, memory_order_relaxed);
  }
  e->classes = 0;
  e->mem = e->bytes = e->freed = 0;
}

void shoal__payload_free(shoal_mgr *mgr, shoal__pkt *p) {
  shoal__ends e;
  shoal__ends_init(&e);
  shoal__payload_end(mgr, &e, p);
  shoal__ends_flush(mgr, &e);
}
