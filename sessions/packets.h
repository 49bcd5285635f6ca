/* packets.h — packets sent to sessions: the packet record, the inbox word,
 * the opcode table and its class bits, the counters, and the manager's
 * packet fields (shoal__packets, embedded in the manager as `pk`).
 * packets.c owns the opcode table, sending, the inbox and running packets
 * on workers; deferred.c the deferred queue, its ring and the drain.
 * Design and synchronization table: packets.c's head, docs/packets.md.
 * Internal. */
#ifndef SHOAL_SESSIONS_PACKETS_H
#define SHOAL_SESSIONS_PACKETS_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "pool/pool.h"
#include "runtime/sched/inbox.h"
#include "sessions/hist.h"

typedef struct shoal__session shoal__session;
typedef struct shoal__out shoal__out;
typedef struct shoal__ends shoal__ends;

/* A packet: an element of the manager's packet pool. It travels through
 * its session's inbox, then maybe its deferred queue, linked through
 * `link` in both. */
typedef struct shoal__pkt {
  _Atomic uint32_t key;      /* the pool's; unused */
  uint32_t index;            /* in the packet pool */
  shoal__node link;
  uint16_t opcode, flags;
  uint32_t len;              /* | SHOAL__PKT_EXT: data holds a
                                shoal__pkt_ext */
  uint64_t sent_ns;
  unsigned char data[SHOAL_PACKET_INLINE_MAX];
} shoal__pkt;

#define SHOAL__PKT_EXT (1u << 31)

/* Where a payload past the inline bytes lives (payload.c): a buffer of
 * size class cls (free_fn NULL), or the host's (send_owned). */
typedef struct shoal__pkt_ext {
  unsigned char *bytes;
  shoal_payload_free_fn free_fn;
  void *free_arg;
  uint32_t buf; /* its element in class cls's pool */
  uint8_t cls;  /* | SHOAL__EXT_SHARED: one buffer of many packets
                   (a broadcast), given back after the last */
} shoal__pkt_ext;

#define SHOAL__EXT_SHARED 0x80u

_Static_assert(sizeof(shoal__pkt_ext) <= SHOAL_PACKET_INLINE_MAX,
               "the ext record fits the inline bytes");

/* Size classes of the payload buffers: 256 B << k, up to
 * SHOAL_PACKET_BYTES_MAX. */
#define SHOAL__PAYLOAD_CLASSES 17u

static inline shoal__pkt *shoal__pkt_of(shoal__node *n) {
  return (shoal__pkt *)(void *)((char *)n - offsetof(shoal__pkt, link));
}

static inline shoal__pkt_ext *shoal__pkt_ext_of(const shoal__pkt *p) {
  return (shoal__pkt_ext *)(void *)p->data;
}

/* inbox word: generation << 32 | CLOSED | packets counted in the inbox.
 * A send reserves with a CAS on the whole word, so that it never counts
 * into a closed inbox or into the next session to use the record. */
#define SHOAL__IN_CLOSED (1ull << 31)
#define SHOAL__IN_COUNT(w) ((uint32_t)((w) & (SHOAL__IN_CLOSED - 1)))

/* A registered opcode. */
typedef struct shoal__opcode {
  shoal_packet_fn fn;
  char *reason;
  uint32_t slot; /* its figures' place (opstats.c); 0: unregistered */
} shoal__opcode;

/* One opcode's figures on one thread (opstats.c): packets handled,
 * failed, and the handler times sampled, in a log-linear histogram of 4
 * sub-buckets per power of two (±12.5 %). */
#define SHOAL__OPH_BUCKETS 160u
typedef struct shoal__opfig {
  uint64_t handled, failed, timed;
  uint32_t t[SHOAL__OPH_BUCKETS];
} shoal__opfig;

/* A thread's figures by opcode slot, and its sampling count. Grown under
 * mu with no hold running; written by its thread during a tick or drain. */
typedef struct shoal__opfigs {
  shoal__opfig *fig; /* [pk.slot_cap] */
  uint32_t sample;
} shoal__opfigs;

/* Rate limits: at most this many categories limited at once; each
 * session keeps one theoretical arrival time per limited category. */
#define SHOAL__RATE_SLOTS 8u
#define SHOAL__RATE_NONE 0xffu

/* op_class bits: MAIN << 7 | registered << 6 | MAP << 5 | category. */
#define SHOAL__OP_MAIN 0x80u
#define SHOAL__OP_REGISTERED 0x40u
#define SHOAL__OP_MAP 0x20u
#define SHOAL__OP_CATEGORY 0x1fu

/* The class index (shoal_packet_class) of op_class bits. */
static inline unsigned shoal__op_class_index(uint8_t cls) {
  return (cls & 0x80u) ? 1u : (cls & 0x20u) ? 2u : 0u;
}

/* Packet counters, one set per worker and one for the drain. Written by
 * their owner during a tick (or drain), read under mu between them. */
typedef struct shoal__pkt_counts {
  uint64_t handled, failed, inplace_on_main, deferred, dropped;
  uint64_t limited;           /* rate-limited (in dropped too) */
  uint64_t by_class[3];
  uint64_t mapped;            /* queued for the map phase */
  uint64_t by_category[SHOAL_CAT_COUNT];
  uint64_t limited_by_category[SHOAL_CAT_COUNT];
} shoal__pkt_counts;

/* The manager's packet fields (the manager's `pk`). */
typedef struct shoal__packets {
  shoal__pool pool;           /* the packets */
  _Atomic uint64_t *mail;     /* the mail bits (shoal__pk_mail_*) */
  uint8_t *op_class;          /* per opcode: the class bits above */
  shoal__opcode *ops;         /* per opcode: handler, reason */
  shoal_packet_fn default_handler;
  shoal_drop_fn drop_hook;    /* under mu with no hold running, like ops */
  alignas(SHOAL__FALSE_SHARING) _Atomic uint64_t sent;
  _Atomic uint64_t rejected;
  _Atomic uint64_t invalid;
  _Atomic uint64_t sends_moved; /* answered SHOAL_EMOVED */
  uint64_t moved;             /* left with their session: under mu */
  /* The deferred queues (deferred.c): the ring of sessions that have
   * one, and the drain's figures. Under the hold or mu (packets.c). */
  alignas(SHOAL__FALSE_SHARING) uint32_t ring; /* a session of the ring:
                                                  index + 1; 0: empty */
  uint32_t ring_n;
  uint32_t drain_no;
  uint64_t deferred_now, deferred_max;
  uint64_t drain_calls, drained, drained_last;
  int alarm_on;               /* past DeferredDepthWarn, not yet under half */
  uint64_t alarms;            /* its crossings */
  shoal__pkt_counts main;     /* the drain's counters */
  shoal__hist main_wait;
  uint64_t mu_dropped;        /* dropped by releases: under mu */
  uint64_t window_ns;
  uint64_t handled_total, failed_total, dropped_total,
      iom_total;              /* of the windows before this one */
  uint32_t zombies;           /* released records whose inbox still waits
                                 for a send: index + 1, through `next`;
                                 under mu */
  /* Payloads past the inline bytes (payload.c): a pool per size class
   * up to MaxPacketBytes, and their figures, any thread. */
  shoal__pool *bufs;          /* [nbufs] */
  unsigned nbufs;
  uint64_t budget;            /* PayloadBudgetMB in bytes */
  alignas(SHOAL__FALSE_SHARING) _Atomic uint64_t pl_taken;
  _Atomic uint64_t pl_bytes, pl_peak, pl_mem, pl_refused;
  alignas(SHOAL__FALSE_SHARING) _Atomic uint64_t pl_freed;
  _Atomic uint64_t broadcasts, deliveries, deliveries_refused;
  /* Figures by opcode (opstats.c): slot → opcode, and each thread's
   * figures (the workers', then the drain's at [workers]). Under mu. */
  uint16_t *slot_op;          /* [slot_cap]; slot 0: unregistered ones */
  uint32_t nslots, slot_cap;
  shoal__opfigs *figs;        /* [workers + 1] */
  uint64_t limited_total;     /* of the windows before this one */
  uint64_t mapped_total;
  /* Rate limits, fixed at creation: per category its slot in a session's
   * times or SHOAL__RATE_NONE; per slot the interval between packets and
   * the tolerance of the bucket, µs. */
  uint8_t rate_slot[SHOAL_CAT_COUNT];
  uint64_t rate_t_us[SHOAL__RATE_SLOTS], rate_tau_us[SHOAL__RATE_SLOTS];
} shoal__packets;

/* The opcode table's byte for op: one load, no branch. */
static inline uint8_t shoal__pk_classify(const shoal__packets *pk,
                                         uint16_t op) {
  return pk->op_class[op];
}

/* packets.c. Sessions' packets, called by the manager at the points
 * named. */
int shoal__pk_init(shoal_mgr *mgr);
void shoal__pk_destroy(shoal_mgr *mgr);
/* At create, under mu, after the id is stored: a new, open inbox. */
void shoal__pk_open(shoal__session *s);
/* At release, under mu: sends fail from now on. */
void shoal__pk_close(shoal__session *s);
/* When the slot goes, under mu with no tick or drain running: its inbox's
 * packets are dropped (its deferred queue: shoal__deferred_discard). */
void shoal__pk_discard(shoal_mgr *mgr, shoal__session *s);
/* After on_release: returns s to the pool once nothing more can arrive
 * in its inbox; until then it waits on the zombie list, retried by
 * shoal__pk_zombies. Under mu. */
void shoal__pk_retire(shoal_mgr *mgr, uint32_t index);
void shoal__pk_zombies(shoal_mgr *mgr);
/* A hibernated session's held packets: dropped (counted), or moved in
 * order into s's new inbox before the registry names s. Under mu. */
void shoal__pk_drop_held(shoal_mgr *mgr, shoal__out *o);
/* The held packets ended as having left with their session (an export:
 * no drop hook, counted moved). Under mu. */
void shoal__pk_moved_held(shoal_mgr *mgr, shoal__out *o);
/* p joins o's held packets, last. Under mu. */
void shoal__pk_held_add(shoal_mgr *mgr, shoal__out *o, shoal__pkt *p);
/* Every packet waiting for s (its deferred queue, then its inbox, which
 * the caller has closed) joins o's held packets in order; a send that
 * reserved before the close is waited for. Under mu, holding the manager
 * (no tick or drain takes them meanwhile). */
void shoal__pk_take_all(shoal_mgr *mgr, shoal__session *s, shoal__out *o);
void shoal__pk_unhold(shoal_mgr *mgr, shoal__session *s, shoal__out *o);
/* The mail bits, one per session record (pool index): a session's bit is
 * set by the send that brings its inbox's count from 0 to 1 (after its
 * push) and by a take that leaves packets behind, and cleared by the
 * session's updater before it takes. So a bit is set whenever the count is
 * not 0 (a stale one only costs a look), and the tick reads these dense
 * words instead of every record's inbox word: a session without mail
 * costs no load of its record. */
static inline int shoal__pk_mail_take(shoal__packets *pk, uint32_t rec) {
  _Atomic uint64_t *w = &pk->mail[rec >> 6];
  uint64_t bit = (uint64_t)1 << (rec & 63);
  if (!(atomic_load_explicit(w, memory_order_relaxed) & bit))
    return 0;
  /* acquire: pairs with the release of the send's set, so its count and
   * push are seen by the take that follows. */
  atomic_fetch_and_explicit(w, ~bit, memory_order_acquire);
  return 1;
}
static inline int shoal__pk_mail_peek(const shoal__packets *pk,
                                      uint32_t rec) {
  return (int)((atomic_load_explicit(&pk->mail[rec >> 6],
                                     memory_order_relaxed) >>
                (rec & 63)) &
               1);
}
static inline void shoal__pk_mail_set(shoal__packets *pk, uint32_t rec) {
  _Atomic uint64_t *w = &pk->mail[rec >> 6];
  uint64_t bit = (uint64_t)1 << (rec & 63);
  /* An RMW, never a load first: a bit seen set may be cleared by a take
   * that missed this push. release: the reservation and push before it
   * (the acquire in shoal__pk_mail_take). */
  atomic_fetch_or_explicit(w, bit, memory_order_release);
}

/* During the tick, for a due session on worker wi whose mail bit it took:
 * its inbox's packets; returns how many it took. Sets the bit again when
 * the inbox still counts packets (past packets_per_update, or reserved
 * and not yet pushed). */
uint32_t shoal__pk_take(shoal_mgr *mgr, unsigned wi, shoal__session *s,
                        uint32_t id, void *user, shoal__ends *done,
                        uint64_t *host_ns);
/* Runs p's handler for session id (the watchdog's beat `kind` on `beat`)
 * and counts it in k, its wait in `wait`; counts a drop when it has none
 * (unregistered, no default). host_ns not NULL: the handler is timed and
 * its time added there (a timed batch's host time). The worker updating
 * the session, or the drain holding the manager. */
void shoal__pk_run(shoal_mgr *mgr, uint8_t cls, uint32_t id, void *user,
                   const shoal__pkt *p, uint64_t now, shoal__pkt_counts *k,
                   shoal__hist *wait, _Atomic uint64_t *beat, unsigned kind,
                   shoal__opfigs *f, uint64_t *host_ns);
/* A packet from the pool with its payload: inline, copied into a buffer,
 * or the host's (fn not NULL). NULL when the pool or the budget is spent
 * (*rc SHOAL_ELIMIT or SHOAL_EAGAIN), or memory (SHOAL_ENOMEM). Any
 * thread. */
shoal__pkt *shoal__pk_new(shoal_mgr *mgr, uint16_t opcode, uint16_t flags,
                          const void *data, size_t len,
                          shoal_payload_free_fn fn, void *arg, int *rc);
/* p (NULL: none, only the answer) for id: into its inbox, or held while
 * it is hibernated (awake 1: SHOAL_ESTATE instead). SHOAL_OK (p is the
 * session's now), SHOAL_EAGAIN (full, or p NULL), SHOAL_ENOENT. May take
 * mu. Any thread. */
int shoal__pk_deliver(shoal_mgr *mgr, uint32_t id, shoal__pkt *p, int awake);
/* p for id, hibernated at registry value v: held until its wake, which
 * it asks for. SHOAL_OK, SHOAL_EAGAIN, SHOAL_ENOENT. Under mu. */
int shoal__pk_hold(shoal_mgr *mgr, uint32_t id, uint32_t v, shoal__pkt *p);
/* The same for an active id only, with no lock: SHOAL_ESTATE when it is
 * hibernated, SHOAL_ENOENT when it is unknown or its record changed
 * (then shoal__pk_deliver says more). */
int shoal__pk_deliver_fast(shoal_mgr *mgr, uint32_t id, shoal__pkt *p);
/* p into the inbox of session id's incarnation `epoch`, lock-free: the
 * record is pinned by its inbox word's generation, read before the epoch,
 * so that a release and a create of the id in between (a new incarnation,
 * in this record or another) never receive it. SHOAL_OK, SHOAL_EAGAIN
 * (full), or SHOAL_ENOENT (not that incarnation here, asleep, or changing:
 * the caller looks again under mu). Any thread. */
int shoal__pk_deliver_epoch(shoal_mgr *mgr, uint32_t id, uint32_t epoch,
                            shoal__pkt *p);
/* Packets handled since creation (under mu, between ticks). */
uint64_t shoal__pk_handled(shoal_mgr *mgr);

/* payload.c. Payloads past the inline bytes. */
int shoal__payload_init(shoal_mgr *mgr);
void shoal__payload_destroy(shoal_mgr *mgr);
/* Copies len (> SHOAL_PACKET_INLINE_MAX) bytes into a buffer for p:
 * SHOAL_EAGAIN when the budget is spent, SHOAL_ENOMEM. Any thread. */
int shoal__payload_copy(shoal_mgr *mgr, shoal__pkt *p, const void *data,
                        size_t len);
/* p carries the host's data from now on. Any thread. */
void shoal__payload_own(shoal_mgr *mgr, shoal__pkt *p, void *data, size_t len,
                        shoal_payload_free_fn fn, void *arg);
/* A buffer of len bytes of data that many packets share (a broadcast):
 * its record in *x, to copy into each packet. SHOAL_EAGAIN (the budget),
 * SHOAL_ENOMEM. Then, once every packet is made, the sharer's unshare
 * with how many it gave (their ends give it back, or this call). */
int shoal__payload_share(shoal_mgr *mgr, const void *data, size_t len,
                         shoal__pkt_ext *x);
void shoal__payload_unshare(shoal_mgr *mgr, const shoal__pkt_ext *x,
                            uint32_t len, uint64_t given);
/* Gives back p's payload (an ext one). Whoever ends the packet. */
void shoal__payload_free(shoal_mgr *mgr, shoal__pkt *p);

/* The bytes a handler sees. */
static inline const void *shoal__pkt_bytes(const shoal__pkt *p) {
  return (p->len & SHOAL__PKT_EXT) ? shoal__pkt_ext_of(p)->bytes : p->data;
}

/* What the packets one thread ends give back, gathered and returned at
 * once by shoal__ends_flush: the packets' chain, the payload buffers'
 * chains by class (one CAS each per flush, not one per packet, on a
 * stack head the senders pop from), and the payload figures to take
 * off. Start it with shoal__ends_init. */
struct shoal__ends {
  shoal__pool_chain pkts;
  shoal__pool_chain bufs[SHOAL__PAYLOAD_CLASSES];
  uint32_t classes; /* bit k: bufs[k] holds some */
  uint64_t mem, bytes, freed;
};
/* An empty list. bufs is left as it is (a few hundred bytes, which a
 * tick's every batch would clear): a class's chain is made empty when its
 * bit goes up (payload.c, buf_give). The thread that owns e. */
static inline void shoal__ends_init(shoal__ends *e) {
  e->pkts.first = e->pkts.last = e->pkts.n = 0;
  e->classes = 0;
  e->mem = e->bytes = e->freed = 0;
}
_Static_assert(SHOAL__PAYLOAD_CLASSES <= 32, "classes fit the bits");

/* payload.c: p's payload (an ext one) given back into e. */
void shoal__payload_end(shoal_mgr *mgr, shoal__ends *e, shoal__pkt *p);
/* Returns what e gathered, and empties it. */
void shoal__ends_flush(shoal_mgr *mgr, shoal__ends *e);

/* A packet ends (handled, dropped): its payload given back, the packet
 * onto the chain that returns it to the pool, both at the next flush. */
static inline void shoal__pkt_end(shoal_mgr *mgr, shoal__pool *pool,
                                  shoal__ends *e, shoal__pkt *p) {
  if (p->len & SHOAL__PKT_EXT)
    shoal__payload_end(mgr, e, p);
  shoal__pool_chain_add(pool, &e->pkts, p->index);
}

/* A packet dropped at a release or at destroy (reason from mgr): the
 * drop hook told, then its end. Under mu. */
void shoal__pkt_drop(shoal_mgr *mgr, shoal__ends *e, shoal__pkt *p,
                     uint32_t id);

/* opstats.c. Figures by opcode, rate limits. */
int shoal__ops_init(shoal_mgr *mgr);
void shoal__ops_destroy(shoal_mgr *mgr);
/* opcode gets a slot of figures if it has none: SHOAL_ENOMEM. Under mu
 * with no hold running. */
int shoal__ops_register(shoal_mgr *mgr, uint16_t opcode);
/* Counts a handler's result for p in f, its time from t0 (0: not timed). */
static inline void shoal__ops_count(shoal__opfigs *f, uint32_t slot, int rc) {
  shoal__opfig *g = &f->fig[slot];
  g->handled++;
  g->failed += rc < 0;
}
void shoal__ops_time(shoal__opfigs *f, uint32_t slot, uint64_t ns);
/* Whether the thread's next handler is timed: one in 16. */
static inline int shoal__ops_sampled(shoal__opfigs *f) {
  return (++f->sample & 15u) == 0;
}
/* Whether session s may have one more packet of category cat now (the
 * manager's clock, in µs): GCRA, the virtual-scheduling form of a token
 * bucket (ATM Forum TM 4.0; RFC 2697's token bucket in one number).
 * The session's updater. */
static inline int shoal__rate_admit(const shoal__packets *pk, uint64_t *tat,
                                    uint8_t cat, uint64_t now_us) {
  unsigned r = pk->rate_slot[cat];
  uint64_t t;
  if (r == SHOAL__RATE_NONE)
    return 1;
  t = tat[r] > now_us ? tat[r] : now_us;
  if (t - now_us > pk->rate_tau_us[r])
    return 0;
  tat[r] = t + pk->rate_t_us[r];
  return 1;
}

/* deferred.c. The deferred queues and the drain. */
/* At the tick's end, holding `updating`: sessions that began a deferred
 * queue join the ring; counters. */
void shoal__deferred_tick_end(shoal_mgr *mgr);
/* When the slot goes, under mu with no tick or drain running: its
 * deferred packets are dropped. */
void shoal__deferred_discard(shoal_mgr *mgr, shoal__session *s);
/* Its deferred packets join o's held packets in order (an export). Under
 * mu, holding. */
void shoal__deferred_take(shoal_mgr *mgr, shoal__session *s, shoal__out *o);

#endif /* SHOAL_SESSIONS_PACKETS_H */
