/* packets.c — packets sent to sessions: each session's lock-free inbox,
 * the opcode table that classifies them, running them on the workers, and
 * their statistics; the deferred queue that the host's main thread drains
 * is deferred.c's. API: shoal.h, "Packets"; design: docs/packets.md.
 *
 * A packet is a 128-byte element of the manager's packet pool (a Treiber
 * stack over slabs, pool/pool.h), so a send allocates nothing on a warm
 * manager. It goes:
 *
 *   send (any thread) → the session's inbox (Vyukov's intrusive MPSC
 *   queue, its words in the session's record)
 *   → the worker updating the session: INPLACE runs there; MAIN goes to
 *   the tail of the session's deferred queue (a list through the same
 *   link)
 *   → shoal_mgr_drain_deferred on the main thread: round-robin over the
 *   ring of sessions whose deferred queue is not empty.
 *
 * Synchronization table:
 *
 *   data                      written by                      read by
 *   in_word                   senders (CAS), the consumer     senders
 *                             (sub), create/release under mu
 *   inbox queue               senders (push), one consumer:   —
 *                             the session's updater, or mu
 *                             holders once it is released
 *   deferred queue, ring      the updater (append; a new      the holder
 *                             queue goes on its worker's
 *                             list), the holder of `updating`
 *                             (drain, tick end), mu holders
 *                             while nobody holds `updating`
 *   op_class, ops             under mu with no hold running   ticks, drains
 *   per-worker counters       their worker, during a tick     mu, no hold
 *
 * The inbox word (mgr.h) makes a send safe against a release and the
 * record's reuse: generation << 32 | CLOSED | count. A sender reads the
 * word, checks the session's id, and reserves with a CAS on the whole
 * word, so it cannot count into a closed inbox or another generation. A
 * released record goes back to the pool only when its count is 0, that is
 * when every reserved packet has arrived and been dropped: a sender
 * stopped between its reservation and its push delays the record's reuse
 * (the zombie list), never corrupts it. */
#include <string.h>

#include "runtime/alloc.h"
#include "runtime/common.h"
#include "runtime/os.h"
#include "runtime/sched/sched.h"
#include "sessions/mgr.h"

#define PKT_PER_SLAB 4096u
#define PKT_PREALLOC 4096u
#define MAIL_BYTES (SHOAL__SESSIONS_MAX / 8)

_Static_assert(sizeof(shoal__pkt) == 128, "a packet is two cache lines");

static const char *const category_names[SHOAL_CAT_COUNT] = {
    "spell",  "item",    "resurrection", "movement", "combat",
    "quest",  "group",   "trade",        "gossip",   "loot",
    "vendor", "trainer", "auction",      "chat",     "mail",
    "bank",   "guild",   "pet",          "other",
};

const char *shoal_packet_category_name(shoal_packet_category c) {
  return (unsigned)c < SHOAL_CAT_COUNT ? category_names[c] : NULL;
}

static shoal__pkt *pkt_at(shoal_mgr *mgr, uint32_t index) {
  return shoal__pool_at(&mgr->pk.pool, index);
}

/* ------------------------------------------------------------------------ */
/* Set-up                                                                   */
/* ------------------------------------------------------------------------ */

int shoal__pk_init(shoal_mgr *mgr) {
  unsigned nw = shoal_runtime_workers_max(mgr->rt);
  uint64_t max = mgr->cfg.max_queued_packets;
  int rc =
      shoal__pool_init(&mgr->pk.pool, sizeof(shoal__pkt), PKT_PER_SLAB,
                       max < PKT_PREALLOC ? max : PKT_PREALLOC, max, 1, NULL);
  if (rc != SHOAL_OK)
    return rc;
  mgr->pk.pool.owner_resets = 1; /* a send writes every field it reads */
  if ((rc = shoal__payload_init(mgr)) != SHOAL_OK) {
    shoal__pool_destroy(&mgr->pk.pool);
    mgr->pk.pool.per_slab = 0;
    return rc;
  }
  mgr->pk.op_class = shoal__malloc(65536);
  mgr->pk.ops = shoal__calloc(65536, sizeof *mgr->pk.ops);
  /* a bit per possible record: pages untouched until a session of theirs
   * gets mail */
  mgr->pk.mail = shoal__pages_alloc(MAIL_BYTES, 4096);
  if (mgr->pk.op_class == NULL || mgr->pk.ops == NULL ||
      mgr->pk.mail == NULL ||
      shoal__ops_init(mgr) != SHOAL_OK || shoal__maps_init(mgr) != SHOAL_OK)
    goto fail;
  /* Unregistered: MAIN, category other (shoal.h). */
  memset(mgr->pk.op_class, SHOAL__OP_MAIN | SHOAL_CAT_OTHER, 65536);
  for (unsigned w = 0; w < nw; w++)
    if ((mgr->samples[w].wait = shoal__calloc(1, sizeof(shoal__hist))) == NULL)
      goto fail;
  mgr->pk.window_ns = shoal__now_ns();
  return SHOAL_OK;
fail:
  shoal__pk_destroy(mgr);
  return SHOAL_ENOMEM;
}

void shoal__pk_destroy(shoal_mgr *mgr) {
  unsigned nw = shoal_runtime_workers_max(mgr->rt);
  shoal__ops_destroy(mgr);
  shoal__maps_destroy(mgr);
  for (unsigned op = 0; mgr->pk.ops != NULL && op < 65536; op++)
    shoal__free(mgr->pk.ops[op].reason);
  shoal__free(mgr->pk.ops);
  shoal__free(mgr->pk.op_class);
  if (mgr->pk.mail != NULL)
    shoal__pages_free(mgr->pk.mail, MAIL_BYTES);
  mgr->pk.mail = NULL;
  mgr->pk.ops = NULL;
  mgr->pk.op_class = NULL;
  for (unsigned w = 0; mgr->samples != NULL && w < nw; w++) {
    shoal__free(mgr->samples[w].wait);
    mgr->samples[w].wait = NULL;
  }
  if (mgr->pk.pool.per_slab != 0)
    shoal__pool_destroy(&mgr->pk.pool);
  mgr->pk.pool.per_slab = 0;
  shoal__payload_destroy(mgr);
}

/* ------------------------------------------------------------------------ */
/* The opcode table                                                         */
/* ------------------------------------------------------------------------ */

typedef struct reg_arg {
  uint16_t opcode;
  uint8_t cls;
  shoal_packet_fn fn;
  char *reason;
} reg_arg;

/* Takes mu once no hold runs, for a write that ticks and drains read
 * without a lock (the opcode table, the hooks): mu orders it before the
 * next hold. SHOAL_OK with mu held, or SHOAL_ESTATE from a callback. */
static int write_begin(shoal_mgr *mgr) {
  if (shoal__mgr_in_callback(mgr))
    return SHOAL_ESTATE;
  pthread_mutex_lock(&mgr->mu);
  shoal__mgr_wait_tick(mgr);
  return SHOAL_OK;
}

static int table_write(shoal_mgr *mgr, const reg_arg *a, int default_fn) {
  if (write_begin(mgr) != SHOAL_OK)
    return SHOAL_ESTATE;
  if (!default_fn && shoal__ops_register(mgr, a->opcode) != SHOAL_OK) {
    pthread_mutex_unlock(&mgr->mu);
    return SHOAL_ENOMEM;
  }
  if (default_fn) {
    mgr->pk.default_handler = a->fn;
  } else {
    shoal__free(mgr->pk.ops[a->opcode].reason);
    mgr->pk.ops[a->opcode].fn = a->fn;
    mgr->pk.ops[a->opcode].reason = a->reason;
    mgr->pk.op_class[a->opcode] = a->cls;
  }
  pthread_mutex_unlock(&mgr->mu);
  return SHOAL_OK;
}

int shoal_mgr_register_opcode(shoal_mgr *mgr, uint16_t opcode,
                              shoal_packet_class cls,
                              shoal_packet_category category,
                              shoal_packet_fn handler, const char *reason) {
  reg_arg a;
  int rc;
  if (mgr == NULL || handler == NULL || (unsigned)cls > SHOAL_PACKET_MAP ||
      (unsigned)category >= SHOAL_CAT_COUNT)
    return SHOAL_EINVAL;
  a.opcode = opcode;
  a.cls = (uint8_t)((cls == SHOAL_PACKET_MAIN  ? SHOAL__OP_MAIN
                     : cls == SHOAL_PACKET_MAP ? SHOAL__OP_MAP
                                               : 0) |
                    SHOAL__OP_REGISTERED | (unsigned)category);
  a.fn = handler;
  a.reason = NULL;
  if (reason != NULL) {
    size_t n = strlen(reason) + 1;
    if ((a.reason = shoal__malloc(n)) == NULL)
      return SHOAL_ENOMEM;
    memcpy(a.reason, reason, n);
  }
  if ((rc = table_write(mgr, &a, 0)) != SHOAL_OK)
    shoal__free(a.reason);
  return rc;
}

int shoal_mgr_set_drop_hook(shoal_mgr *mgr, shoal_drop_fn hook) {
  if (mgr == NULL)
    return SHOAL_EINVAL;
  if (write_begin(mgr) != SHOAL_OK)
    return SHOAL_ESTATE;
  mgr->pk.drop_hook = hook;
  pthread_mutex_unlock(&mgr->mu);
  return SHOAL_OK;
}

int shoal_mgr_set_map_update(shoal_mgr *mgr, shoal_map_update_fn fn) {
  if (mgr == NULL)
    return SHOAL_EINVAL;
  if (write_begin(mgr) != SHOAL_OK)
    return SHOAL_ESTATE;
  mgr->map_update = fn;
  pthread_mutex_unlock(&mgr->mu);
  return SHOAL_OK;
}

int shoal_mgr_set_default_handler(shoal_mgr *mgr, shoal_packet_fn handler) {
  reg_arg a = {0, 0, handler, NULL};
  if (mgr == NULL)
    return SHOAL_EINVAL;
  return table_write(mgr, &a, 1);
}

int shoal_mgr_opcode_info(shoal_mgr *mgr, uint16_t opcode,
                          shoal_opcode_info *out) {
  uint8_t c;
  if (mgr == NULL || out == NULL)
    return SHOAL_EINVAL;
  if (shoal__mgr_in_callback(mgr))
    return SHOAL_ESTATE;
  pthread_mutex_lock(&mgr->mu);
  shoal__mgr_wait_tick(mgr);
  c = mgr->pk.op_class[opcode];
  out->registered = (c & SHOAL__OP_REGISTERED) != 0;
  out->cls = (shoal_packet_class)shoal__op_class_index(c);
  out->category = (shoal_packet_category)(c & SHOAL__OP_CATEGORY);
  out->reason = out->registered
                    ? mgr->pk.ops[opcode].reason
                    : "unregistered opcode: runs the default handler on the "
                      "main thread";
  pthread_mutex_unlock(&mgr->mu);
  return SHOAL_OK;
}

/* ------------------------------------------------------------------------ */
/* Inboxes                                                                  */
/* ------------------------------------------------------------------------ */

void shoal__pk_open(shoal__session *s) {
  uint64_t gen = atomic_load_explicit(&s->in_word, memory_order_relaxed) >> 32;
  atomic_store_explicit(&s->in_stub.next, NULL, memory_order_relaxed);
  atomic_store_explicit(&s->in_head, &s->in_stub, memory_order_relaxed);
  s->in_tail = &s->in_stub;
  s->d_head = s->d_tail = NULL;
  atomic_store_explicit(&s->ndeferred, 0, memory_order_relaxed);
  s->r_prev = s->r_next = 0;
  s->drain_no = 0;
  /* release: the id stored before, and the queue reset above, before a
   * sender can see the inbox open (its acquire load of the word). */
  atomic_store_explicit(&s->in_word, (gen + 1) << 32, memory_order_release);
}

void shoal__pk_close(shoal__session *s) {
  atomic_fetch_or_explicit(&s->in_word, SHOAL__IN_CLOSED, memory_order_acq_rel);
}

/* p into the inbox of s, record `index`, its place reserved; `first`: the
 * reservation took the count from 0, so the session's mail bit goes up
 * after the push. The index comes from the caller: once pushed, the
 * packet may be taken and the record released and reused. */
static void inbox_push(shoal_mgr *mgr, shoal__session *s, uint32_t index,
                       shoal__pkt *p, int first) {
  shoal__mpsc_push(&s->in_head, &p->link);
  if (first)
    shoal__pk_mail_set(&mgr->pk, index);
}

/* Reserves a place for p in s's inbox (*first: whether the count was 0):
 * SHOAL_OK, SHOAL_EAGAIN (full, or no packet), or SHOAL_ENOENT when the record is closed or no longer id's
 * (released, hibernated or reused since the find). */
static int reserve(shoal_mgr *mgr, shoal__session *s, uint32_t id,
                   const shoal__pkt *p, int *first) {
  /* acquire: pairs with the release in pk_open, so the id read next is
   * this generation's or later. */
  uint64_t w = atomic_load_explicit(&s->in_word, memory_order_acquire);
  for (;;) {
    if ((w & SHOAL__IN_CLOSED) ||
        atomic_load_explicit(&s->id, memory_order_relaxed) != id)
      return SHOAL_ENOENT;
    if (p == NULL || SHOAL__IN_COUNT(w) >= mgr->cfg.inbox_size)
      return SHOAL_EAGAIN;
    /* The word unchanged since it was read: same generation, still open,
     * so the id checked above is this session's. A hibernation closes the
     * inbox with a CAS on the same word, only while it is empty. */
    if (atomic_compare_exchange_weak_explicit(
            &s->in_word, &w, w + 1, memory_order_acq_rel,
            memory_order_acquire)) {
      *first = SHOAL__IN_COUNT(w) == 0;
      return SHOAL_OK;
    }
  }
}

int shoal__pk_hold(shoal_mgr *mgr, uint32_t id, uint32_t v, shoal__pkt *p) {
  shoal__out *o =
      mgr->hooks != NULL ? mgr->hooks->out(mgr, v & ~SHOAL__REG_OUT) : NULL;
  if (o == NULL || o->id != id)
    return SHOAL_ENOENT;
  if (p == NULL || o->nheld >= mgr->cfg.inbox_size)
    return SHOAL_EAGAIN;
  shoal__pk_held_add(mgr, o, p);
  mgr->hooks->ask(mgr, o);
  return SHOAL_OK;
}

void shoal__pk_held_add(shoal_mgr *mgr, shoal__out *o, shoal__pkt *p) {
  atomic_store_explicit(&p->link.next, NULL, memory_order_relaxed);
  if (o->held_tail != 0)
    atomic_store_explicit(&pkt_at(mgr, o->held_tail - 1)->link.next, &p->link,
                          memory_order_relaxed);
  else
    o->held_head = p->index + 1;
  o->held_tail = p->index + 1;
  o->nheld++;
}

shoal__pkt *shoal__pk_new(shoal_mgr *mgr, uint16_t opcode, uint16_t flags,
                          const void *data, size_t len,
                          shoal_payload_free_fn fn, void *arg, int *rc) {
  shoal__pkt *p;
  uint32_t pi;
  *rc = shoal__pool_get(&mgr->pk.pool, 0, &pi);
  if (*rc != SHOAL_OK)
    return NULL;
  p = pkt_at(mgr, pi);
  p->index = pi;
  p->opcode = opcode;
  p->flags = flags;
  p->len = (uint32_t)len;
  if (fn != NULL) {
    shoal__payload_own(mgr, p, (void *)(uintptr_t)data, len, fn, arg);
  } else if (len > SHOAL_PACKET_INLINE_MAX) {
    if ((*rc = shoal__payload_copy(mgr, p, data, len)) != SHOAL_OK) {
      shoal__pool_put(&mgr->pk.pool, pi);
      return NULL;
    }
  } else if (len > 0) {
    memcpy(p->data, data, len);
  }
  p->sent_ns = shoal__fast_ns();
  return p;
}

int shoal__pk_deliver_fast(shoal_mgr *mgr, uint32_t id, shoal__pkt *p) {
  int64_t i = shoal__registry_find(&mgr->reg, id);
  shoal__session *s;
  int rc, first;
  if (i < 0)
    return SHOAL_ENOENT;
  if (i & SHOAL__REG_OUT)
    return SHOAL_ESTATE;
  s = shoal__mgr_rec(mgr, (uint32_t)i);
  if ((rc = reserve(mgr, s, id, p, &first)) == SHOAL_OK)
    inbox_push(mgr, s, (uint32_t)i, p, first);
  return rc;
}

int shoal__pk_deliver_epoch(shoal_mgr *mgr, uint32_t id, uint32_t epoch,
                            shoal__pkt *p) {
  int64_t i = shoal__registry_find(&mgr->reg, id);
  shoal__session *s;
  uint64_t w, gen;
  if (i < 0 || (i & SHOAL__REG_OUT))
    return SHOAL_ENOENT;
  s = shoal__mgr_rec(mgr, (uint32_t)i);
  /* acquire: pairs with the release in pk_open, which comes after the
   * record's id and epoch: those read next are this generation's or a
   * later one's, and a later one's fails the CAS below. */
  w = atomic_load_explicit(&s->in_word, memory_order_acquire);
  gen = w >> 32;
  if (atomic_load_explicit(&s->id, memory_order_relaxed) != id ||
      atomic_load_explicit(&s->epoch, memory_order_relaxed) != epoch)
    return SHOAL_ENOENT;
  for (;;) {
    if ((w & SHOAL__IN_CLOSED) || (w >> 32) != gen)
      return SHOAL_ENOENT;
    if (SHOAL__IN_COUNT(w) >= mgr->cfg.inbox_size)
      return SHOAL_EAGAIN;
    /* acq_rel: as reserve()'s; success keeps the generation the epoch was
     * read under. */
    if (atomic_compare_exchange_weak_explicit(&s->in_word, &w, w + 1,
                                              memory_order_acq_rel,
                                              memory_order_acquire)) {
      inbox_push(mgr, s, (uint32_t)i, p, SHOAL__IN_COUNT(w) == 0);
      return SHOAL_OK;
    }
  }
}

/* shoal__pk_deliver with the registry's value for id, found by the
 * caller (it may be stale: it is checked as one found here would be). */
static int deliver_at(shoal_mgr *mgr, uint32_t id, shoal__pkt *p, int awake,
                      int64_t i) {
  int64_t j;
  int rc, first = 0;
  for (;;) {
    if (i >= 0 && !(i & SHOAL__REG_OUT) &&
        (rc = reserve(mgr, shoal__mgr_rec(mgr, (uint32_t)i), id, p,
                      &first)) !=
            SHOAL_ENOENT)
      break;
    /* Hibernated, unknown, or changed since the find: again under mu,
     * which every hibernation, wake and release holds. */
    pthread_mutex_lock(&mgr->mu);
    j = shoal__registry_find(&mgr->reg, id);
    if (j >= 0 && (j & SHOAL__REG_OUT)) {
      rc = awake ? SHOAL_ESTATE : shoal__pk_hold(mgr, id, (uint32_t)j, p);
      pthread_mutex_unlock(&mgr->mu);
      return rc;
    }
    rc = j < 0 ? shoal__mgr_gone(mgr, id) : SHOAL_ENOENT;
    pthread_mutex_unlock(&mgr->mu);
    if (j < 0 || j == i)
      return rc;
    i = j; /* woken into another record */
  }
  if (rc == SHOAL_OK)
    inbox_push(mgr, shoal__mgr_rec(mgr, (uint32_t)i), (uint32_t)i, p, first);
  return rc;
}

int shoal__pk_deliver(shoal_mgr *mgr, uint32_t id, shoal__pkt *p, int awake) {
  return deliver_at(mgr, id, p, awake, shoal__registry_find(&mgr->reg, id));
}

/* Both sends: fn not NULL hands data over (given back once, whatever
 * happens). */
static int send_to(shoal_mgr *mgr, uint32_t id, uint16_t opcode,
                   uint16_t flags, const void *data, size_t len,
                   shoal_payload_free_fn fn, void *arg) {
  shoal__pkt *p;
  int64_t i;
  int rc;
  if (id == 0 || len > mgr->cfg.max_packet_bytes ||
      (data == NULL && len > 0)) {
    atomic_fetch_add_explicit(&mgr->pk.invalid, 1, memory_order_relaxed);
    if (fn != NULL)
      fn(arg, (void *)(uintptr_t)data);
    return SHOAL_EINVAL;
  }
  /* The session's record is asked for (its inbox words, which the
   * delivery writes: last written by the core that took its packets)
   * before the packet is made, so that the two sets of misses overlap. */
  i = shoal__registry_find(&mgr->reg, id);
  if (i >= 0 && !(i & SHOAL__REG_OUT)) {
    const char *r = (const char *)shoal__mgr_rec(mgr, (uint32_t)i);
    shoal__prefetch_write(r);
    shoal__prefetch_write(r + 64);
  }
  /* The packet first, so that a reservation is never undone. Without
   * one the session is still looked for: SHOAL_EAGAIN or SHOAL_ENOENT. */
  p = shoal__pk_new(mgr, opcode, flags, data, len, fn, arg, &rc);
  if (p == NULL && fn != NULL)
    fn(arg, (void *)(uintptr_t)data); /* never taken */
  rc = deliver_at(mgr, id, p, 0, i);
  if (rc == SHOAL_ENOENT) {
    atomic_fetch_add_explicit(&mgr->pk.invalid, 1, memory_order_relaxed);
  } else if (rc == SHOAL_EMOVED) {
    atomic_fetch_add_explicit(&mgr->pk.sends_moved, 1, memory_order_relaxed);
  } else {
    atomic_fetch_add_explicit(&mgr->pk.sent, 1, memory_order_relaxed);
    if (rc != SHOAL_OK)
      atomic_fetch_add_explicit(&mgr->pk.rejected, 1, memory_order_relaxed);
  }
  if (rc != SHOAL_OK && p != NULL) {
    if (p->len & SHOAL__PKT_EXT)
      shoal__payload_free(mgr, p);
    shoal__pool_put(&mgr->pk.pool, p->index);
  }
  return rc;
}

int shoal_session_send(shoal_mgr *mgr, uint32_t id, uint16_t opcode,
                       uint16_t flags, const void *data, size_t len) {
  if (mgr == NULL)
    return SHOAL_EINVAL;
  return send_to(mgr, id, opcode, flags, data, len, NULL, NULL);
}

int shoal_session_send_owned(shoal_mgr *mgr, uint32_t id, uint16_t opcode,
                             uint16_t flags, void *data, size_t len,
                             shoal_payload_free_fn free_fn, void *free_arg) {
  if (free_fn == NULL)
    return SHOAL_EINVAL;
  if (mgr == NULL) {
    free_fn(free_arg, data); /* ownership passed all the same */
    return SHOAL_EINVAL;
  }
  return send_to(mgr, id, opcode, flags, data, len, free_fn, free_arg);
}

/* The next packet of s's inbox, or NULL. Its one consumer. */
static shoal__pkt *inbox_pop(shoal__session *s) {
  shoal__node *n = shoal__mpsc_pop(&s->in_head, &s->in_tail, &s->in_stub);
  return n != NULL ? shoal__pkt_of(n) : NULL;
}

/* ------------------------------------------------------------------------ */
/* Running packets                                                          */
/* ------------------------------------------------------------------------ */

static void count_handled(shoal__pkt_counts *k, uint8_t cls, int rc) {
  k->handled++;
  k->failed += rc < 0;
  k->by_class[shoal__op_class_index(cls)]++;
  k->by_category[cls & SHOAL__OP_CATEGORY]++;
}

/* The handler's view of p. */
static void view(const shoal__pkt *p, shoal_packet *pk) {
  pk->opcode = p->opcode;
  pk->flags = p->flags;
  pk->len = p->len & ~SHOAL__PKT_EXT;
  pk->data = shoal__pkt_bytes(p);
  pk->sent_ns = p->sent_ns;
}

static void drop_told(shoal_mgr *mgr, uint32_t id, const shoal__pkt *p,
                      shoal_drop_reason reason) {
  shoal_packet pk;
  view(p, &pk);
  mgr->pk.drop_hook(mgr->cb.host, id, &pk, reason);
}

void shoal__pkt_drop(shoal_mgr *mgr, shoal__ends *done, shoal__pkt *p,
                     uint32_t id) {
  if (mgr->pk.drop_hook != NULL)
    drop_told(mgr, id, p,
              mgr->closing ? SHOAL_DROP_DESTROYED : SHOAL_DROP_RELEASED);
  shoal__pkt_end(mgr, &mgr->pk.pool, done, p);
}

void shoal__pk_run(shoal_mgr *mgr, uint8_t cls, uint32_t id, void *user,
                   const shoal__pkt *p, uint64_t now, shoal__pkt_counts *k,
                   shoal__hist *wait, _Atomic uint64_t *beat, unsigned kind,
                   shoal__opfigs *f, uint64_t *host_ns) {
  const shoal__opcode *op = &mgr->pk.ops[p->opcode];
  int reg = (cls & SHOAL__OP_REGISTERED) != 0;
  shoal_packet_fn fn = reg ? op->fn : mgr->pk.default_handler;
  uint32_t slot = reg ? op->slot : 0;
  shoal_packet pk;
  int rc;
  if (fn == NULL) {
    k->dropped++;
    if (mgr->pk.drop_hook != NULL)
      drop_told(mgr, id, p, SHOAL_DROP_NO_HANDLER);
    return;
  }
  view(p, &pk);
  shoal__beat(beat, kind, id);
  if (shoal__ops_sampled(f) || host_ns != NULL) {
    uint64_t t0 = shoal__fast_ns(), d;
    rc = fn(mgr->cb.host, id, user, &pk);
    d = shoal__fast_ns() - t0;
    if ((f->sample & 15u) == 0)
      shoal__ops_time(f, slot, d);
    if (host_ns != NULL)
      *host_ns += d;
  } else {
    rc = fn(mgr->cb.host, id, user, &pk);
  }
  count_handled(k, cls, rc);
  shoal__ops_count(f, slot, rc);
  shoal__hist_add(wait, now > p->sent_ns ? now - p->sent_ns : 0);
}

uint32_t shoal__pk_take(shoal_mgr *mgr, unsigned wi, shoal__session *s,
                        uint32_t id, void *user, shoal__ends *done,
                        uint64_t *host_ns) {
  shoal__mgr_sample *smp = &mgr->samples[wi];
  const int defer = mgr->cfg.defer_packets;
  const int strict = mgr->cfg.strict_packet_order;
  uint32_t limit = mgr->cfg.packets_per_update, taken = 0;
  uint64_t now = shoal__fast_ns(), now_us = mgr->clock_ms * 1000;
  int map_pending = 0; /* a MAP packet of s waits for the map phase */
  shoal__pkt *p;
  uint64_t left;
  while (taken < limit && (p = inbox_pop(s)) != NULL) {
    uint8_t cls = shoal__pk_classify(&mgr->pk, p->opcode);
    taken++;
    if (!shoal__rate_admit(&mgr->pk, s->tat, cls & SHOAL__OP_CATEGORY,
                           now_us)) {
      /* Past its category's rate: dropped here, before it can queue for
       * the main thread. */
      smp->pk.dropped++;
      smp->pk.limited++;
      smp->pk.limited_by_category[cls & SHOAL__OP_CATEGORY]++;
      if (mgr->pk.drop_hook != NULL)
        drop_told(mgr, id, p, SHOAL_DROP_RATE_LIMITED);
      shoal__pkt_end(mgr, &mgr->pk.pool, done, p);
      continue;
    }
    if (defer && ((cls & SHOAL__OP_MAIN) || (strict && s->d_head != NULL))) {
      /* To the deferred queue, behind what waits there. */
      smp->pk.inplace_on_main += (cls & SHOAL__OP_MAIN) == 0;
      smp->pk.deferred++;
      atomic_store_explicit(&p->link.next, NULL, memory_order_relaxed);
      if (s->d_head == NULL) {
        s->d_head = p;
        /* A queue begun: the session joins the ring at the tick's end. */
        s->w_next = smp->new_deferred;
        smp->new_deferred = s->self + 1;
      } else {
        atomic_store_explicit(&s->d_tail->link.next, &p->link,
                              memory_order_relaxed);
      }
      s->d_tail = p;
      /* relaxed load and store: its updater is the one writer now */
      atomic_store_explicit(
          &s->ndeferred,
          atomic_load_explicit(&s->ndeferred, memory_order_relaxed) + 1,
          memory_order_relaxed);
      continue;
    }
    if ((cls & SHOAL__OP_MAP) || (strict && map_pending)) {
      /* To its map's turn in this tick's map phase; what s sends after
       * it follows it there (strict order). */
      shoal__cols *c = shoal__mgr_cols(mgr);
      map_pending = 1;
      smp->pk.mapped++;
      shoal__maps_queue(
          mgr, wi,
          atomic_load_explicit(
              &c->map[atomic_load_explicit(&s->slot, memory_order_relaxed)],
              memory_order_relaxed),
          s, p);
      continue;
    }
    shoal__pk_run(mgr, cls, id, user, p, now, &smp->pk, smp->wait, &smp->beat,
                  SHOAL__CB_PACKET, &mgr->pk.figs[wi], host_ns);
    shoal__pkt_end(mgr, &mgr->pk.pool, done, p);
  }
  left = taken != 0
             ? atomic_fetch_sub_explicit(&s->in_word, taken,
                                         memory_order_relaxed)
             : atomic_load_explicit(&s->in_word, memory_order_relaxed);
  if (SHOAL__IN_COUNT(left) != taken)
    shoal__pk_mail_set(&mgr->pk, s->self); /* some still to come */
  return taken;
}

/* ------------------------------------------------------------------------ */
/* Releases                                                                 */
/* ------------------------------------------------------------------------ */

/* Drops what s's inbox holds now; the count it has left (reserved packets
 * still on their way). Its one consumer, under mu. */
static uint32_t inbox_drop(shoal_mgr *mgr, shoal__session *s) {
  shoal__ends done;
  uint32_t n = 0;
  shoal__pkt *p;
  uint64_t w;
  uint32_t id = atomic_load_explicit(&s->id, memory_order_relaxed);
  shoal__ends_init(&done);
  while ((p = inbox_pop(s)) != NULL) {
    shoal__pkt_drop(mgr, &done, p, id);
    n++;
  }
  shoal__ends_flush(mgr, &done);
  mgr->pk.mu_dropped += n;
  w = atomic_fetch_sub_explicit(&s->in_word, n, memory_order_acq_rel);
  return SHOAL__IN_COUNT(w) - n;
}

void shoal__pk_take_all(shoal_mgr *mgr, shoal__session *s, shoal__out *o) {
  uint32_t want, n = 0;
  shoal__deferred_take(mgr, s, o);
  /* acquire: the close's RMW read the last reservation's count */
  want = SHOAL__IN_COUNT(atomic_load_explicit(&s->in_word, memory_order_acquire));
  for (unsigned spins = 0; n < want;) {
    shoal__pkt *p = inbox_pop(s);
    if (p == NULL) {
      /* a send between its reservation and its push (a few stores):
       * Vyukov's queue shows it once its link is written */
      if (++spins < 64)
        shoal__cpu_relax();
      else
        sched_yield();
      continue;
    }
    shoal__pk_held_add(mgr, o, p);
    n++;
  }
  atomic_fetch_sub_explicit(&s->in_word, n, memory_order_acq_rel);
}

void shoal__pk_discard(shoal_mgr *mgr, shoal__session *s) {
  (void)inbox_drop(mgr, s);
}

void shoal__pk_retire(shoal_mgr *mgr, uint32_t index) {
  shoal__session *s = shoal__mgr_rec(mgr, index);
  /* Not while a send may still push: the record's links are in use until
   * then. */
  if (inbox_drop(mgr, s) == 0) {
    shoal__pool_put(&mgr->pool, index);
    return;
  }
  s->z_next = mgr->pk.zombies;
  mgr->pk.zombies = index + 1;
}

static shoal__pkt *held_first(shoal_mgr *mgr, const shoal__out *o) {
  return o->held_head != 0 ? pkt_at(mgr, o->held_head - 1) : NULL;
}

/* Ends o's held packets: dropped, or (moved) ended and counted as moved. */
static void held_end(shoal_mgr *mgr, shoal__out *o, int moved) {
  shoal__ends done;
  shoal__ends_init(&done);
  for (shoal__pkt *p = held_first(mgr, o); p != NULL;) {
    shoal__node *next =
        atomic_load_explicit(&p->link.next, memory_order_relaxed);
    if (moved)
      shoal__pkt_end(mgr, &mgr->pk.pool, &done, p);
    else
      shoal__pkt_drop(mgr, &done, p, o->id);
    p = next != NULL ? shoal__pkt_of(next) : NULL;
  }
  shoal__ends_flush(mgr, &done);
  *(moved ? &mgr->pk.moved : &mgr->pk.mu_dropped) += o->nheld;
  o->held_head = o->held_tail = 0;
  o->nheld = 0;
}

void shoal__pk_drop_held(shoal_mgr *mgr, shoal__out *o) {
  held_end(mgr, o, 0);
}

void shoal__pk_moved_held(shoal_mgr *mgr, shoal__out *o) {
  held_end(mgr, o, 1);
}

void shoal__pk_unhold(shoal_mgr *mgr, shoal__session *s, shoal__out *o) {
  for (shoal__pkt *p = held_first(mgr, o); p != NULL;) {
    shoal__node *next =
        atomic_load_explicit(&p->link.next, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->in_word, 1, memory_order_relaxed);
    inbox_push(mgr, s, s->self, p, 1);
    p = next != NULL ? shoal__pkt_of(next) : NULL;
  }
  o->held_head = o->held_tail = 0;
  o->nheld = 0;
}

void shoal__pk_zombies(shoal_mgr *mgr) {
  uint32_t list = mgr->pk.zombies;
  mgr->pk.zombies = 0;
  while (list != 0) {
    uint32_t next = shoal__mgr_rec(mgr, list - 1)->z_next;
    shoal__pk_retire(mgr, list - 1);
    list = next;
  }
}

/* ------------------------------------------------------------------------ */
/* Statistics                                                               */
/* ------------------------------------------------------------------------ */

static void add_counts(shoal__pkt_counts *to, shoal__pkt_counts *from) {
  to->handled += from->handled;
  to->failed += from->failed;
  to->inplace_on_main += from->inplace_on_main;
  to->deferred += from->deferred;
  to->dropped += from->dropped;
  to->limited += from->limited;
  for (int k = 0; k < 3; k++)
    to->by_class[k] += from->by_class[k];
  to->mapped += from->mapped;
  for (int k = 0; k < SHOAL_CAT_COUNT; k++) {
    to->by_category[k] += from->by_category[k];
    to->limited_by_category[k] += from->limited_by_category[k];
  }
}

uint64_t shoal__pk_handled(shoal_mgr *mgr) {
  unsigned nw = shoal_runtime_workers_max(mgr->rt);
  uint64_t n = mgr->pk.handled_total + mgr->pk.main.handled;
  for (unsigned w = 0; w < nw; w++)
    n += mgr->samples[w].pk.handled;
  return n;
}

int shoal_packet_stats_get(shoal_mgr *mgr, shoal_packet_stats *out, int reset) {
  unsigned nw;
  shoal__pkt_counts k;
  shoal__hist wait;
  shoal__cols *c;
  uint64_t now;
  if (mgr == NULL || out == NULL)
    return SHOAL_EINVAL;
  if (shoal__mgr_in_callback(mgr))
    return SHOAL_ESTATE;
  nw = shoal_runtime_workers_max(mgr->rt);
  memset(out, 0, sizeof *out);
  memset(&k, 0, sizeof k);
  pthread_mutex_lock(&mgr->mu);
  shoal__mgr_wait_tick(mgr);
  now = shoal__now_ns();
  c = atomic_load_explicit(&mgr->cols, memory_order_acquire);
  wait = mgr->pk.main_wait;
  add_counts(&k, &mgr->pk.main);
  for (unsigned w = 0; w < nw; w++) {
    add_counts(&k, &mgr->samples[w].pk);
    shoal__hist_merge(&wait, mgr->samples[w].wait);
  }
  /* pending: counted from the queues themselves, not from the other
   * counters, so that the accounting identity can be checked. */
  for (uint32_t i = 0; i < mgr->nact; i++)
    out->pending += SHOAL__IN_COUNT(
        atomic_load_explicit(&c->sess[i]->in_word, memory_order_relaxed));
  if (mgr->hooks != NULL)
    (void)mgr->hooks->count(mgr, &out->pending); /* hibernated ones */
  for (uint32_t z = mgr->pk.zombies; z != 0;
       z = shoal__mgr_rec(mgr, z - 1)->z_next)
    out->pending += SHOAL__IN_COUNT(atomic_load_explicit(
        &shoal__mgr_rec(mgr, z - 1)->in_word, memory_order_relaxed));
  out->pending += mgr->pk.deferred_now;
  out->sent = atomic_load_explicit(&mgr->pk.sent, memory_order_relaxed);
  out->rejected = atomic_load_explicit(&mgr->pk.rejected, memory_order_relaxed);
  out->invalid = atomic_load_explicit(&mgr->pk.invalid, memory_order_relaxed);
  out->sends_moved =
      atomic_load_explicit(&mgr->pk.sends_moved, memory_order_relaxed);
  out->moved = mgr->pk.moved;
  /* freed first: a payload freed after this load was taken before it,
   * so taken ≥ freed in what is returned. */
  out->payloads_freed =
      atomic_load_explicit(&mgr->pk.pl_freed, memory_order_relaxed);
  out->payloads_taken =
      atomic_load_explicit(&mgr->pk.pl_taken, memory_order_relaxed);
  out->payload_bytes =
      atomic_load_explicit(&mgr->pk.pl_bytes, memory_order_relaxed);
  out->payload_bytes_peak =
      atomic_load_explicit(&mgr->pk.pl_peak, memory_order_relaxed);
  out->payload_buffer_bytes =
      atomic_load_explicit(&mgr->pk.pl_mem, memory_order_relaxed);
  out->payload_refused =
      atomic_load_explicit(&mgr->pk.pl_refused, memory_order_relaxed);
  out->deferred_alarms = mgr->pk.alarms;
  out->broadcasts =
      atomic_load_explicit(&mgr->pk.broadcasts, memory_order_relaxed);
  out->deliveries =
      atomic_load_explicit(&mgr->pk.deliveries, memory_order_relaxed);
  out->deliveries_refused = atomic_load_explicit(&mgr->pk.deliveries_refused,
                                                 memory_order_relaxed);
  out->handled = mgr->pk.handled_total + k.handled;
  out->failed = mgr->pk.failed_total + k.failed;
  out->dropped = mgr->pk.dropped_total + k.dropped + mgr->pk.mu_dropped;
  out->inplace_on_main = mgr->pk.iom_total + k.inplace_on_main;
  out->deferred_now = mgr->pk.deferred_now;
  out->deferred_max = mgr->pk.deferred_max;
  out->drain_calls = mgr->pk.drain_calls;
  out->drained = mgr->pk.drained;
  out->drained_last = mgr->pk.drained_last;
  memcpy(out->by_class, k.by_class, sizeof out->by_class);
  memcpy(out->by_category, k.by_category, sizeof out->by_category);
  out->rate_limited = mgr->pk.limited_total + k.limited;
  out->mapped = mgr->pk.mapped_total + k.mapped;
  memcpy(out->rate_limited_by_category, k.limited_by_category,
         sizeof out->rate_limited_by_category);
  out->window_s = (double)(now - mgr->pk.window_ns) * 1e-9;
  if (out->window_s > 0)
    out->packets_per_s = (double)k.handled / out->window_s;
  out->wait_p50_ns = shoal__hist_quantile(&wait, 0.50);
  out->wait_p99_ns = shoal__hist_quantile(&wait, 0.99);
  if (reset) {
    /* The totals keep what the window's counters had. */
    mgr->pk.handled_total += k.handled;
    mgr->pk.failed_total += k.failed;
    mgr->pk.dropped_total += k.dropped;
    mgr->pk.iom_total += k.inplace_on_main;
    mgr->pk.limited_total += k.limited;
    mgr->pk.mapped_total += k.mapped;
    memset(&mgr->pk.main, 0, sizeof mgr->pk.main);
    memset(&mgr->pk.main_wait, 0, sizeof mgr->pk.main_wait);
    for (unsigned w = 0; w < nw; w++) {
      memset(&mgr->samples[w].pk, 0, sizeof mgr->samples[w].pk);
      memset(mgr->samples[w].wait, 0, sizeof *mgr->samples[w].wait);
    }
    mgr->pk.deferred_max = mgr->pk.deferred_now;
    mgr->pk.drain_calls = mgr->pk.drained = 0;
    mgr->pk.window_ns = now;
  }
  pthread_mutex_unlock(&mgr->mu);
  return SHOAL_OK;
}
