/* broadcast.c — one packet to every session of a map, a group or a list
 * of ids (shoal_mgr_broadcast), and the listing of a map's or a group's
 * sessions (shoal_mgr_members), both from the member lists (members.h).
 * API: shoal.h, "Sessions" and "Packets"; design: docs/packets.md.
 *
 * A broadcast copies its payload once: into each packet when it fits the
 * inline bytes, else into one shared buffer (payload.c) that the last
 * packet to end gives back. It holds the key's stripe for reading while
 * it delivers to the active members with no lock (a release waits, so
 * no member leaves under it); those it cannot reach that way (hibernated,
 * or moving) wait in a list until the stripe is let go, since what holds
 * them takes mu, which comes before a stripe. */
#include <string.h>

#include "runtime/common.h"
#include "runtime/os.h"
#include "sessions/mgr.h"

#define LATER_STACK 128u
#define STASH 64u /* packets taken from the pool at once */
#define SKIP 1 /* one's own result: not delivered, not counted */

typedef struct bcast {
  shoal_mgr *mgr;
  const shoal_audience *to;
  uint16_t opcode, flags;
  const void *data;
  uint32_t len;
  int shared;
  shoal__pkt_ext x; /* the shared buffer */
  uint64_t delivered, rejected, invalid;
  uint64_t now;     /* the packets' sent_ns: one stamp for all */
  size_t left;      /* members still to visit: the stash's want */
  uint32_t stash[STASH]; /* packets taken, not yet made */
  uint32_t nstash, at;
  uint32_t *later; /* members to reach once the stripe is let go */
  size_t nlater, cap;
  uint32_t stack[LATER_STACK];
} bcast;

/* The next member's packet: from the stash, filled from the pool several
 * at a time (one CAS); NULL when the pool is spent. */
static shoal__pkt *make(bcast *b) {
  shoal__packets *pk = &b->mgr->pk;
  shoal__pkt *p;
  uint32_t pi;
  int rc;
  if (b->at == b->nstash) {
    uint32_t want = b->left < STASH ? (uint32_t)b->left : STASH;
    b->at = 0;
    b->nstash = shoal__pool_get_many(&pk->pool, 0, want > 0 ? want : 1,
                                     b->stash);
    if (b->nstash == 0) { /* empty lists: one get, which may grow them */
      if ((rc = shoal__pool_get(&pk->pool, 0, &pi)) != SHOAL_OK)
        return NULL;
      b->stash[b->nstash++] = pi;
    }
  }
  pi = b->stash[b->at++];
  p = shoal__pool_at(&pk->pool, pi);
  p->index = pi;
  p->opcode = b->opcode;
  p->flags = b->flags;
  p->sent_ns = b->now;
  if (b->shared) {
    *shoal__pkt_ext_of(p) = b->x;
    p->len = b->len | SHOAL__PKT_EXT;
  } else {
    p->len = b->len;
    if (b->len > 0)
      memcpy(p->data, b->data, b->len);
  }
  return p;
}

/* A delivery's result counted; p back to the pool when it was not
 * delivered (its share was never counted: see payload.c). */
static void counted(bcast *b, shoal__pkt *p, int rc) {
  if (rc == SHOAL_OK) {
    b->delivered++;
    return;
  }
  b->rejected += rc == SHOAL_EAGAIN;
  b->invalid += rc == SHOAL_ENOENT || rc == SHOAL_EMOVED;
  if (p != NULL)
    shoal__pool_put(&b->mgr->pk.pool, p->index);
}

static void later(bcast *b, uint32_t id) {
  if (b->nlater == b->cap) {
    size_t cap = b->cap * 2;
    uint32_t *q = shoal__malloc(cap * sizeof *q);
    if (q == NULL) { /* counted as a full inbox: nothing lost unsaid */
      b->rejected++;
      return;
    }
    memcpy(q, b->later, b->nlater * sizeof *q);
    if (b->later != b->stack)
      shoal__free(b->later);
    b->later = q;
    b->cap = cap;
  }
  b->later[b->nlater++] = id;
}

/* One member: with the stripe held (locked 1), only without a lock. */
static void one(bcast *b, uint32_t id, int locked) {
  int awake = (b->to->flags & SHOAL_TO_AWAKE) != 0, rc;
  shoal__pkt *p;
  if (b->left > 0)
    b->left--;
  if (id == b->to->except)
    return;
  p = make(b);
  if (!locked) {
    counted(b, p, id != 0 ? shoal__pk_deliver(b->mgr, id, p, awake)
                          : SHOAL_ENOENT);
    return;
  }
  rc = shoal__pk_deliver_fast(b->mgr, id, p);
  if (rc == SHOAL_ESTATE && awake) {
    rc = SKIP; /* asleep: left out */
  } else if (rc == SHOAL_ESTATE || rc == SHOAL_ENOENT) {
    later(b, id);
    rc = SKIP;
  }
  if (rc == SKIP) {
    if (p != NULL)
      shoal__pool_put(&b->mgr->pk.pool, p->index);
    return;
  }
  counted(b, p, rc);
}

long shoal_mgr_broadcast(shoal_mgr *mgr, const shoal_audience *to,
                         uint16_t opcode, uint16_t flags, const void *data,
                         size_t len) {
  bcast b;
  shoal__packets *pk;
  int rc;
  if (mgr == NULL || to == NULL || (unsigned)to->kind > SHOAL_TO_IDS ||
      (to->kind == SHOAL_TO_IDS && to->ids == NULL && to->n > 0) ||
      (to->kind == SHOAL_TO_GROUP && to->key == 0) ||
      len > mgr->cfg.max_packet_bytes || (data == NULL && len > 0))
    return SHOAL_EINVAL;
  pk = &mgr->pk;
  memset(&b, 0, offsetof(bcast, stack));
  b.mgr = mgr;
  b.to = to;
  b.opcode = opcode;
  b.flags = flags;
  b.data = data;
  b.len = (uint32_t)len;
  b.later = b.stack;
  b.cap = LATER_STACK;
  b.now = shoal__fast_ns();
  if (len > SHOAL_PACKET_INLINE_MAX) {
    if ((rc = shoal__payload_share(mgr, data, len, &b.x)) != SHOAL_OK)
      return rc;
    b.shared = 1;
  }
  if (to->kind == SHOAL_TO_IDS) {
    b.left = to->n;
    for (size_t k = 0; k < to->n; k++)
      one(&b, to->ids[k], 0);
  } else {
    shoal__members *m = &mgr->members[to->kind];
    const shoal__mlist *l = shoal__members_lock(m, to->key);
    b.left = l != NULL ? l->n : 0;
    for (uint32_t k = 0; l != NULL && k < l->n; k++)
      one(&b, l->ids[k], 1);
    shoal__members_unlock(m, to->key);
    b.left = b.nlater;
    for (size_t k = 0; k < b.nlater; k++)
      one(&b, b.later[k], 0);
    if (b.later != b.stack)
      shoal__free(b.later);
  }
  if (b.at < b.nstash) { /* taken, not needed: back with one CAS */
    shoal__pool_chain c = {0, 0, 0};
    while (b.at < b.nstash)
      shoal__pool_chain_add(&pk->pool, &c, b.stash[b.at++]);
    shoal__pool_put_chain(&pk->pool, &c);
  }
  if (b.shared)
    shoal__payload_unshare(mgr, &b.x, b.len, b.delivered);
  atomic_fetch_add_explicit(&pk->sent, b.delivered + b.rejected,
                            memory_order_relaxed);
  if (b.rejected != 0)
    atomic_fetch_add_explicit(&pk->rejected, b.rejected, memory_order_relaxed);
  if (b.invalid != 0)
    atomic_fetch_add_explicit(&pk->invalid, b.invalid, memory_order_relaxed);
  atomic_fetch_add_explicit(&pk->broadcasts, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&pk->deliveries, b.delivered,
                            memory_order_relaxed);
  if (b.rejected != 0)
    atomic_fetch_add_explicit(&pk->deliveries_refused, b.rejected,
                              memory_order_relaxed);
  return (long)b.delivered;
}

long shoal_mgr_members(shoal_mgr *mgr, shoal_audience_kind kind, uint32_t key,
                       uint32_t *ids, size_t cap) {
  const shoal__mlist *l;
  uint32_t n;
  if (mgr == NULL || (unsigned)kind > SHOAL_TO_GROUP ||
      (kind == SHOAL_TO_GROUP && key == 0) || (ids == NULL && cap > 0))
    return SHOAL_EINVAL;
  l = shoal__members_lock(&mgr->members[kind], key);
  n = l != NULL ? l->n : 0;
  if (n > 0 && cap > 0)
    memcpy(ids, l->ids, (n < cap ? n : cap) * sizeof *ids);
  shoal__members_unlock(&mgr->members[kind], key);
  return (long)n;
}
