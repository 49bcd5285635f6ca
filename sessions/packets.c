/* packets.c — packets sent to sessions: each session's lock-free inbox,
 * the opcode table that classifies them, the deferred queue that the
 * host's main thread drains, and their statistics. API: shoal.h,
 * "Packets"; design: docs/packets.md.
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

#include "runtime/common.h"
#include "runtime/os.h"
#include "runtime/sched/sched.h"
#include "sessions/mgr.h"

#define PKT_PER_SLAB 4096u
#define PKT_PREALLOC 4096u
/* The drain reads the clock once per this many packets. */
#define DRAIN_CLOCK_EVERY 32u

_Static_assert(sizeof(shoal__pkt) == 128, "a packet is two cache lines");

static const char *const category_names[SHOAL_CAT_COUNT] = {
  "spell", "item", "resurrection", "movement", "combat", "quest", "group",
  "trade", "gossip", "loot", "vendor", "trainer", "auction", "chat", "mail",
  "bank", "guild", "pet", "other",
};

const char *shoal_packet_category_name(shoal_packet_category c) {
  return (unsigned)c < SHOAL_CAT_COUNT ? category_names[c] : NULL;
}

static shoal__session *rec(shoal_mgr *mgr, uint32_t index) {
  return shoal__pool_at(&mgr->pool, index);
}

static shoal__pkt *pkt_at(shoal_mgr *mgr, uint32_t index) {
  return shoal__pool_at(&mgr->pkts, index);
}

/* ------------------------------------------------------------------------ */
/* Set-up                                                                   */
/* ------------------------------------------------------------------------ */

int shoal__pk_init(shoal_mgr *mgr) {
  unsigned nw = shoal_runtime_workers(mgr->rt);
  uint64_t max = mgr->cfg.max_queued_packets;
  int rc = shoal__pool_init(&mgr->pkts, sizeof(shoal__pkt), PKT_PER_SLAB,
                            max < PKT_PREALLOC ? max : PKT_PREALLOC, max, 1,
                            NULL);
  if (rc != SHOAL_OK)
    return rc;
  mgr->pkts.owner_resets = 1; /* a send writes every field it reads */
  mgr->op_class = shoal__malloc(65536);
  mgr->ops = shoal__calloc(65536, sizeof *mgr->ops);
  if (mgr->op_class == NULL || mgr->ops == NULL)
    goto fail;
  /* Unregistered: MAIN, category other (shoal.h). */
  memset(mgr->op_class, SHOAL__OP_MAIN | SHOAL_CAT_OTHER, 65536);
  for (unsigned w = 0; w < nw; w++)
    if ((mgr->samples[w].wait = shoal__calloc(1, sizeof(shoal__hist))) ==
        NULL)
      goto fail;
  mgr->pk_window_ns = shoal__now_ns();
  return SHOAL_OK;
fail:
  shoal__pk_destroy(mgr);
  return SHOAL_ENOMEM;
}

void shoal__pk_destroy(shoal_mgr *mgr) {
  unsigned nw = shoal_runtime_workers(mgr->rt);
  for (unsigned op = 0; mgr->ops != NULL && op < 65536; op++)
    shoal__free(mgr->ops[op].reason);
  shoal__free(mgr->ops);
  shoal__free(mgr->op_class);
  mgr->ops = NULL;
  mgr->op_class = NULL;
  for (unsigned w = 0; mgr->samples != NULL && w < nw; w++) {
    shoal__free(mgr->samples[w].wait);
    mgr->samples[w].wait = NULL;
  }
  if (mgr->pkts.per_slab != 0)
    shoal__pool_destroy(&mgr->pkts);
  mgr->pkts.per_slab = 0;
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

/* Under mu with no hold running: ticks and drains read the table
 * without a lock, and mu orders these writes before the next one. */
static int table_write(shoal_mgr *mgr, const reg_arg *a, int default_fn) {
  if (shoal__mgr_in_callback(mgr))
    return SHOAL_ESTATE;
  pthread_mutex_lock(&mgr->mu);
  shoal__mgr_wait_tick(mgr);
  if (default_fn) {
    mgr->default_handler = a->fn;
  } else {
    shoal__free(mgr->ops[a->opcode].reason);
    mgr->ops[a->opcode].fn = a->fn;
    mgr->ops[a->opcode].reason = a->reason;
    mgr->op_class[a->opcode] = a->cls;
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
  if (mgr == NULL || handler == NULL ||
      (cls != SHOAL_PACKET_INPLACE && cls != SHOAL_PACKET_MAIN) ||
      (unsigned)category >= SHOAL_CAT_COUNT)
    return SHOAL_EINVAL;
  a.opcode = opcode;
  a.cls = (uint8_t)((cls == SHOAL_PACKET_MAIN ? SHOAL__OP_MAIN : 0) |
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
  c = mgr->op_class[opcode];
  out->registered = (c & SHOAL__OP_REGISTERED) != 0;
  out->cls = (c & SHOAL__OP_MAIN) ? SHOAL_PACKET_MAIN : SHOAL_PACKET_INPLACE;
  out->category = (shoal_packet_category)(c & SHOAL__OP_CATEGORY);
  out->reason = out->registered
                    ? mgr->ops[opcode].reason
                    : "unregistered opcode: runs the default handler on the "
                      "main thread";
  pthread_mutex_unlock(&mgr->mu);
  return SHOAL_OK;
}

/* ------------------------------------------------------------------------ */
/* Inboxes                                                                  */
/* ------------------------------------------------------------------------ */

void shoal__pk_open(shoal__session *s) {
  uint64_t gen = atomic_load_explicit(&s->in_word, memory_order_relaxed) >>
                 32;
  atomic_store_explicit(&s->in_stub.next, NULL, memory_order_relaxed);
  atomic_store_explicit(&s->in_head, &s->in_stub, memory_order_relaxed);
  s->in_tail = &s->in_stub;
  s->d_head = s->d_tail = NULL;
  s->ndeferred = 0;
  s->r_prev = s->r_next = 0;
  s->drain_no = 0;
  /* release: the id stored before, and the queue reset above, before a
   * sender can see the inbox open (its acquire load of the word). */
  atomic_store_explicit(&s->in_word, (gen + 1) << 32, memory_order_release);
}

void shoal__pk_close(shoal__session *s) {
  atomic_fetch_or_explicit(&s->in_word, SHOAL__IN_CLOSED,
                           memory_order_acq_rel);
}

/* Reserves a place for p in s's inbox: SHOAL_OK, SHOAL_EAGAIN (full, or
 * no packet), or SHOAL_ENOENT when the record is closed or no longer id's
 * (released, hibernated or reused since the find). */
static int reserve(shoal_mgr *mgr, shoal__session *s, uint32_t id,
                   const shoal__pkt *p) {
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
    if (atomic_compare_exchange_weak_explicit(&s->in_word, &w, w + 1,
                                              memory_order_acq_rel,
                                              memory_order_acquire))
      return SHOAL_OK;
  }
}

/* p for id, hibernated at registry value v: held until its wake, which it
 * asks for. Under mu. */
static int hold(shoal_mgr *mgr, uint32_t id, uint32_t v, shoal__pkt *p) {
  shoal__out *o = mgr->hooks != NULL
                      ? mgr->hooks->out(mgr, v & ~SHOAL__REG_OUT)
                      : NULL;
  if (o == NULL || o->id != id)
    return SHOAL_ENOENT;
  if (p == NULL || o->nheld >= mgr->cfg.inbox_size)
    return SHOAL_EAGAIN;
  atomic_store_explicit(&p->link.next, NULL, memory_order_relaxed);
  if (o->held_tail != 0)
    atomic_store_explicit(&pkt_at(mgr, o->held_tail - 1)->link.next,
                          &p->link, memory_order_relaxed);
  else
    o->held_head = p->index + 1;
  o->held_tail = p->index + 1;
  o->nheld++;
  mgr->hooks->ask(mgr, o);
  return SHOAL_OK;
}

int shoal_session_send(shoal_mgr *mgr, uint32_t id, uint16_t opcode,
                       uint16_t flags, const void *data, size_t len) {
  shoal__pkt *p;
  int64_t i, j;
  uint32_t pi;
  int rc;
  if (mgr == NULL)
    return SHOAL_EINVAL;
  if (id == 0 || len > SHOAL_PACKET_PAYLOAD_MAX || (data == NULL && len > 0)) {
    atomic_fetch_add_explicit(&mgr->pk_invalid, 1, memory_order_relaxed);
    return SHOAL_EINVAL;
  }
  /* The packet first, so that a reservation is never undone. */
  rc = shoal__pool_get(&mgr->pkts, 0, &pi);
  p = rc == SHOAL_OK ? pkt_at(mgr, pi) : NULL;
  if (p != NULL) {
    p->index = pi;
    p->opcode = opcode;
    p->flags = flags;
    p->len = (uint32_t)len;
    if (len > 0)
      memcpy(p->data, data, len);
    p->sent_ns = shoal__fast_ns();
  }
  i = shoal__registry_find(&mgr->reg, id);
  for (;;) {
    if (i >= 0 && !(i & SHOAL__REG_OUT) &&
        (rc = reserve(mgr, rec(mgr, (uint32_t)i), id, p)) != SHOAL_ENOENT)
      break;
    /* Hibernated, unknown, or changed since the find: again under mu,
     * which every hibernation, wake and release holds. */
    pthread_mutex_lock(&mgr->mu);
    j = shoal__registry_find(&mgr->reg, id);
    if (j >= 0 && (j & SHOAL__REG_OUT)) {
      rc = hold(mgr, id, (uint32_t)j, p);
      pthread_mutex_unlock(&mgr->mu);
      if (rc == SHOAL_OK)
        p = NULL; /* held */
      break;
    }
    pthread_mutex_unlock(&mgr->mu);
    if (j < 0 || j == i) {
      rc = SHOAL_ENOENT;
      break;
    }
    i = j; /* woken into another record */
  }
  if (rc == SHOAL_ENOENT) {
    atomic_fetch_add_explicit(&mgr->pk_invalid, 1, memory_order_relaxed);
  } else {
    atomic_fetch_add_explicit(&mgr->pk_sent, 1, memory_order_relaxed);
    if (rc != SHOAL_OK)
      atomic_fetch_add_explicit(&mgr->pk_rejected, 1, memory_order_relaxed);
  }
  if (rc != SHOAL_OK) {
    if (p != NULL)
      shoal__pool_put(&mgr->pkts, pi);
    return rc;
  }
  if (p != NULL)
    shoal__mpsc_push(&rec(mgr, (uint32_t)i)->in_head, &p->link);
  return SHOAL_OK;
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
  k->by_class[(cls & SHOAL__OP_MAIN) != 0]++;
  k->by_category[cls & SHOAL__OP_CATEGORY]++;
}

/* Runs p's handler; 0 when it has none (unregistered, no default). */
static int run_packet(shoal_mgr *mgr, uint8_t cls, uint32_t id, void *user,
                      const shoal__pkt *p, int *rc, _Atomic uint64_t *beat,
                      unsigned kind) {
  shoal_packet_fn fn = (cls & SHOAL__OP_REGISTERED) ? mgr->ops[p->opcode].fn
                                                    : mgr->default_handler;
  shoal_packet pk;
  if (fn == NULL)
    return 0;
  pk.opcode = p->opcode;
  pk.flags = p->flags;
  pk.len = p->len;
  pk.data = p->data;
  pk.sent_ns = p->sent_ns;
  shoal__beat(beat, kind, id);
  *rc = fn(mgr->cb.host, id, user, &pk);
  return 1;
}

uint32_t shoal__pk_take(shoal_mgr *mgr, unsigned wi, shoal__session *s,
                        uint32_t id, void *user, shoal__pool_chain *done) {
  shoal__mgr_sample *smp = &mgr->samples[wi];
  const int defer = mgr->cfg.defer_packets;
  const int strict = mgr->cfg.strict_packet_order;
  uint32_t limit = mgr->cfg.packets_per_update, taken = 0;
  uint64_t now = shoal__fast_ns();
  shoal__pkt *p;
  while (taken < limit && (p = inbox_pop(s)) != NULL) {
    uint8_t cls = shoal__pk_classify(mgr, p->opcode);
    int rc = 0;
    taken++;
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
      s->ndeferred++;
      continue;
    }
    if (run_packet(mgr, cls, id, user, p, &rc, &smp->beat,
                   SHOAL__CB_PACKET)) {
      count_handled(&smp->pk, cls, rc);
      shoal__hist_add(smp->wait, now > p->sent_ns ? now - p->sent_ns : 0);
    } else {
      smp->pk.dropped++;
    }
    shoal__pool_chain_add(&mgr->pkts, done, p->index);
  }
  if (taken != 0)
    atomic_fetch_sub_explicit(&s->in_word, taken, memory_order_relaxed);
  return taken;
}

/* ------------------------------------------------------------------------ */
/* The ring of sessions with deferred packets                               */
/* ------------------------------------------------------------------------ */

static void ring_insert(shoal_mgr *mgr, uint32_t index) {
  shoal__session *s = rec(mgr, index);
  if (mgr->ring == 0) {
    s->r_prev = s->r_next = index + 1;
    mgr->ring = index + 1;
  } else {
    /* Before the cursor: the last to come round. */
    shoal__session *at = rec(mgr, mgr->ring - 1);
    shoal__session *prev = rec(mgr, at->r_prev - 1);
    s->r_next = mgr->ring;
    s->r_prev = at->r_prev;
    prev->r_next = index + 1;
    at->r_prev = index + 1;
  }
  mgr->ring_n++;
}

static void ring_remove(shoal_mgr *mgr, uint32_t index) {
  shoal__session *s = rec(mgr, index);
  if (s->r_next == index + 1) {
    mgr->ring = 0;
  } else {
    rec(mgr, s->r_prev - 1)->r_next = s->r_next;
    rec(mgr, s->r_next - 1)->r_prev = s->r_prev;
    if (mgr->ring == index + 1)
      mgr->ring = s->r_next;
  }
  s->r_prev = s->r_next = 0;
  mgr->ring_n--;
}

static void add_counts(shoal__pkt_counts *to, shoal__pkt_counts *from) {
  to->handled += from->handled;
  to->failed += from->failed;
  to->inplace_on_main += from->inplace_on_main;
  to->deferred += from->deferred;
  to->dropped += from->dropped;
  for (int k = 0; k < 2; k++)
    to->by_class[k] += from->by_class[k];
  for (int k = 0; k < SHOAL_CAT_COUNT; k++)
    to->by_category[k] += from->by_category[k];
}

void shoal__pk_tick_end(shoal_mgr *mgr) {
  unsigned nw = shoal_runtime_workers(mgr->rt);
  for (unsigned w = 0; w < nw; w++) {
    shoal__mgr_sample *smp = &mgr->samples[w];
    uint32_t list = smp->new_deferred;
    smp->new_deferred = 0;
    while (list != 0) {
      shoal__session *s = rec(mgr, list - 1);
      uint32_t next = s->w_next;
      ring_insert(mgr, list - 1);
      list = next;
    }
    mgr->deferred_now += smp->pk.deferred;
    smp->pk.deferred = 0;
  }
  if (mgr->deferred_now > mgr->deferred_max)
    mgr->deferred_max = mgr->deferred_now;
}

/* ------------------------------------------------------------------------ */
/* Releases                                                                 */
/* ------------------------------------------------------------------------ */

/* Drops what s's inbox holds now; the count it has left (reserved packets
 * still on their way). Its one consumer, under mu. */
static uint32_t inbox_drop(shoal_mgr *mgr, shoal__session *s) {
  shoal__pool_chain done = {0, 0, 0};
  uint32_t n = 0;
  shoal__pkt *p;
  uint64_t w;
  while ((p = inbox_pop(s)) != NULL) {
    shoal__pool_chain_add(&mgr->pkts, &done, p->index);
    n++;
  }
  shoal__pool_put_chain(&mgr->pkts, &done);
  mgr->mu_dropped += n;
  w = atomic_fetch_sub_explicit(&s->in_word, n, memory_order_acq_rel);
  return SHOAL__IN_COUNT(w) - n;
}

void shoal__pk_discard(shoal_mgr *mgr, shoal__session *s) {
  shoal__pool_chain done = {0, 0, 0};
  shoal__pkt *p = s->d_head;
  if (p != NULL)
    ring_remove(mgr, s->self);
  while (p != NULL) {
    shoal__node *next = atomic_load_explicit(&p->link.next,
                                             memory_order_relaxed);
    shoal__pool_chain_add(&mgr->pkts, &done, p->index);
    p = next != NULL ? shoal__pkt_of(next) : NULL;
  }
  shoal__pool_put_chain(&mgr->pkts, &done);
  mgr->mu_dropped += s->ndeferred;
  mgr->deferred_now -= s->ndeferred;
  s->d_head = s->d_tail = NULL;
  s->ndeferred = 0;
  (void)inbox_drop(mgr, s);
}

void shoal__pk_retire(shoal_mgr *mgr, uint32_t index) {
  shoal__session *s = rec(mgr, index);
  /* Not while a send may still push: the record's links are in use until
   * then. */
  if (inbox_drop(mgr, s) == 0) {
    shoal__pool_put(&mgr->pool, index);
    return;
  }
  s->z_next = mgr->zombies;
  mgr->zombies = index + 1;
}

static shoal__pkt *held_first(shoal_mgr *mgr, const shoal__out *o) {
  return o->held_head != 0 ? pkt_at(mgr, o->held_head - 1) : NULL;
}

void shoal__pk_drop_held(shoal_mgr *mgr, shoal__out *o) {
  shoal__pool_chain done = {0, 0, 0};
  for (shoal__pkt *p = held_first(mgr, o); p != NULL;) {
    shoal__node *next = atomic_load_explicit(&p->link.next,
                                             memory_order_relaxed);
    shoal__pool_chain_add(&mgr->pkts, &done, p->index);
    p = next != NULL ? shoal__pkt_of(next) : NULL;
  }
  shoal__pool_put_chain(&mgr->pkts, &done);
  mgr->mu_dropped += o->nheld;
  o->held_head = o->held_tail = 0;
  o->nheld = 0;
}

void shoal__pk_unhold(shoal_mgr *mgr, shoal__session *s, shoal__out *o) {
  for (shoal__pkt *p = held_first(mgr, o); p != NULL;) {
    shoal__node *next = atomic_load_explicit(&p->link.next,
                                             memory_order_relaxed);
    atomic_fetch_add_explicit(&s->in_word, 1, memory_order_relaxed);
    shoal__mpsc_push(&s->in_head, &p->link);
    p = next != NULL ? shoal__pkt_of(next) : NULL;
  }
  o->held_head = o->held_tail = 0;
  o->nheld = 0;
}

void shoal__pk_zombies(shoal_mgr *mgr) {
  uint32_t list = mgr->zombies;
  mgr->zombies = 0;
  while (list != 0) {
    uint32_t next = rec(mgr, list - 1)->z_next;
    shoal__pk_retire(mgr, list - 1);
    list = next;
  }
}

/* ------------------------------------------------------------------------ */
/* The drain                                                                */
/* ------------------------------------------------------------------------ */

typedef struct drain_arg {
  size_t budget;
  long ran;
} drain_arg;

/* Holding the manager (shoal__mgr_hold): no tick runs, no slot moves, and
 * a release waits for the end, so a session's column slot and user
 * pointer hold still. */
static void drain(shoal_mgr *mgr, void *arg_) {
  drain_arg *a = arg_;
  shoal__cols *c = atomic_load_explicit(&mgr->cols, memory_order_acquire);
  shoal__pool_chain done = {0, 0, 0};
  const uint32_t cap = mgr->cfg.deferred_per_session;
  const shoal_mgr *prev = shoal__tls_in_cb;
  uint32_t stalled = 0, call = ++mgr->drain_no;
  uint64_t now = 0;
  long ran = 0;
  shoal__tls_in_cb = mgr;
  while (mgr->ring != 0 && (a->budget == 0 || (size_t)ran < a->budget) &&
         stalled < mgr->ring_n) {
    uint32_t index = mgr->ring - 1;
    shoal__session *s = rec(mgr, index);
    shoal__pkt *p = s->d_head;
    shoal__node *next;
    uint32_t slot;
    uint8_t cls;
    int rc = 0;
    if (s->drain_no != call) {
      s->drain_no = call;
      s->drain_n = 0;
    }
    if (s->drain_n >= cap) { /* its share of this call is spent */
      stalled++;
      mgr->ring = s->r_next;
      continue;
    }
    stalled = 0;
    next = atomic_load_explicit(&p->link.next, memory_order_relaxed);
    s->d_head = next != NULL ? shoal__pkt_of(next) : NULL;
    if (s->d_head != NULL)
      __builtin_prefetch(s->d_head);
    s->ndeferred--;
    s->drain_n++;
    /* One packet per session per turn: round-robin. */
    if (s->d_head == NULL) {
      s->d_tail = NULL;
      ring_remove(mgr, index);
    } else {
      mgr->ring = s->r_next;
    }
    if ((uint32_t)ran % DRAIN_CLOCK_EVERY == 0)
      now = shoal__fast_ns();
    cls = shoal__pk_classify(mgr, p->opcode);
    slot = atomic_load_explicit(&s->slot, memory_order_relaxed);
    if (run_packet(mgr, cls, atomic_load_explicit(&s->id,
                                                  memory_order_relaxed),
                   atomic_load_explicit(&c->user[slot], memory_order_relaxed),
                   p, &rc, &mgr->main_beat, SHOAL__CB_DEFERRED)) {
      count_handled(&mgr->main_pk, cls, rc);
      shoal__hist_add(&mgr->main_wait, now > p->sent_ns ? now - p->sent_ns
                                                        : 0);
    } else {
      mgr->main_pk.dropped++;
    }
    shoal__pool_chain_add(&mgr->pkts, &done, p->index);
    ran++;
  }
  shoal__tls_in_cb = prev;
  shoal__beat(&mgr->main_beat, SHOAL__CB_NONE, 0);
  shoal__pool_put_chain(&mgr->pkts, &done);
  mgr->deferred_now -= (uint64_t)ran;
  mgr->drain_calls++;
  mgr->drained += (uint64_t)ran;
  mgr->drained_last = (uint64_t)ran;
  a->ran = ran;
}

long shoal_mgr_drain_deferred(shoal_mgr *mgr, size_t budget,
                              size_t *remaining) {
  drain_arg a = {budget, 0};
  int rc;
  if (mgr == NULL)
    return SHOAL_EINVAL;
  if ((rc = shoal__mgr_hold(mgr, drain, &a)) != SHOAL_OK)
    return rc;
  if (remaining != NULL) {
    pthread_mutex_lock(&mgr->mu);
    *remaining = (size_t)mgr->deferred_now;
    pthread_mutex_unlock(&mgr->mu);
  }
  return a.ran;
}

/* ------------------------------------------------------------------------ */
/* Statistics                                                               */
/* ------------------------------------------------------------------------ */

uint64_t shoal__pk_handled(shoal_mgr *mgr) {
  unsigned nw = shoal_runtime_workers(mgr->rt);
  uint64_t n = mgr->pk_handled_total + mgr->main_pk.handled;
  for (unsigned w = 0; w < nw; w++)
    n += mgr->samples[w].pk.handled;
  return n;
}

int shoal_mgr_packet_stats(shoal_mgr *mgr, shoal_packet_stats *out,
                           int reset) {
  unsigned nw;
  shoal__pkt_counts k;
  shoal__hist wait;
  shoal__cols *c;
  uint64_t now;
  if (mgr == NULL || out == NULL)
    return SHOAL_EINVAL;
  if (shoal__mgr_in_callback(mgr))
    return SHOAL_ESTATE;
  nw = shoal_runtime_workers(mgr->rt);
  memset(out, 0, sizeof *out);
  memset(&k, 0, sizeof k);
  pthread_mutex_lock(&mgr->mu);
  shoal__mgr_wait_tick(mgr);
  now = shoal__now_ns();
  c = atomic_load_explicit(&mgr->cols, memory_order_acquire);
  wait = mgr->main_wait;
  add_counts(&k, &mgr->main_pk);
  for (unsigned w = 0; w < nw; w++) {
    const shoal__hist *h = mgr->samples[w].wait;
    add_counts(&k, &mgr->samples[w].pk);
    for (unsigned b = 0; b < SHOAL__HIST_BUCKETS; b++)
      wait.count[b] += h->count[b];
    wait.n += h->n;
    if (h->max > wait.max)
      wait.max = h->max;
  }
  /* pending: counted from the queues themselves, not from the other
   * counters, so that the accounting identity can be checked. */
  for (uint32_t i = 0; i < mgr->nact; i++)
    out->pending += SHOAL__IN_COUNT(atomic_load_explicit(
        &c->sess[i]->in_word, memory_order_relaxed));
  if (mgr->hooks != NULL)
    (void)mgr->hooks->count(mgr, &out->pending); /* hibernated ones */
  for (uint32_t z = mgr->zombies; z != 0; z = rec(mgr, z - 1)->z_next)
    out->pending += SHOAL__IN_COUNT(atomic_load_explicit(
        &rec(mgr, z - 1)->in_word, memory_order_relaxed));
  out->pending += mgr->deferred_now;
  out->sent = atomic_load_explicit(&mgr->pk_sent, memory_order_relaxed);
  out->rejected = atomic_load_explicit(&mgr->pk_rejected,
                                       memory_order_relaxed);
  out->invalid = atomic_load_explicit(&mgr->pk_invalid, memory_order_relaxed);
  out->handled = mgr->pk_handled_total + k.handled;
  out->failed = mgr->pk_failed_total + k.failed;
  out->dropped = mgr->pk_dropped_total + k.dropped + mgr->mu_dropped;
  out->inplace_on_main = mgr->pk_iom_total + k.inplace_on_main;
  out->deferred_now = mgr->deferred_now;
  out->deferred_max = mgr->deferred_max;
  out->drain_calls = mgr->drain_calls;
  out->drained = mgr->drained;
  out->drained_last = mgr->drained_last;
  memcpy(out->by_class, k.by_class, sizeof out->by_class);
  memcpy(out->by_category, k.by_category, sizeof out->by_category);
  out->window_s = (double)(now - mgr->pk_window_ns) * 1e-9;
  if (out->window_s > 0)
    out->packets_per_s = (double)k.handled / out->window_s;
  out->wait_p50_ns = shoal__hist_quantile(&wait, 0.50);
  out->wait_p99_ns = shoal__hist_quantile(&wait, 0.99);
  if (reset) {
    /* The totals keep what the window's counters had. */
    mgr->pk_handled_total += k.handled;
    mgr->pk_failed_total += k.failed;
    mgr->pk_dropped_total += k.dropped;
    mgr->pk_iom_total += k.inplace_on_main;
    memset(&mgr->main_pk, 0, sizeof mgr->main_pk);
    memset(&mgr->main_wait, 0, sizeof mgr->main_wait);
    for (unsigned w = 0; w < nw; w++) {
      memset(&mgr->samples[w].pk, 0, sizeof mgr->samples[w].pk);
      memset(mgr->samples[w].wait, 0, sizeof *mgr->samples[w].wait);
    }
    mgr->deferred_max = mgr->deferred_now;
    mgr->drain_calls = mgr->drained = 0;
    mgr->pk_window_ns = now;
  }
  pthread_mutex_unlock(&mgr->mu);
  return SHOAL_OK;
}
