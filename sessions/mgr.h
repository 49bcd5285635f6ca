/* mgr.h — the session manager's structures (the manager, a session's
 * record, a hibernated session's part of its record, the tick's parts, the
 * hooks hibernate/ sets) and the calls the files of sessions/ and
 * hibernate/ make of each other, grouped by the file that defines them.
 * Internal to the library.
 *
 * A session is a pool element (its record: id, slot, state) plus one slot
 * of the active array, whose per-session data live in columns (cols.h).
 *
 * Synchronization:
 *   - `mu` guards the active array's shape (nact, which slot holds whom,
 *     the column set) and the deferred-release list. Slots move (a
 *     swap-remove) only under mu while no tick runs; each move is inside
 *     the `moves` seqlock so that get reads a session's columns with no
 *     lock (Boehm, "Can seqlocks get along with programming language
 *     memory models?", MSPC 2012: the readers' loads are relaxed atomics
 *     followed by an acquire fence).
 *   - During a tick the slots [0, tick_n) belong to the tick: a create
 *     appends past them, a release is put on the deferred list and applied
 *     when the tick ends.
 *   - With sessions homed on more than one NUMA node, the array is kept in
 *     one segment per home node, in node order: node k's sessions fill
 *     [seg_end[k-1], seg_end[k]). A create between ticks joins its node's
 *     segment by moving the first session of each later segment to that
 *     segment's end (one move per node); a release fills its hole from
 *     the end of its segment and each later segment gives its last session
 *     to the hole in front of it. Creates made during a tick wait past
 *     seg_end[nodes-1] and join their segments when it ends. The tick
 *     hands each segment's batches to a worker of that node first
 *     (docs/sessions.md, "NUMA").
 *   - Columns the host may set (user, map, group, sched) are atomics that
 *     setters write under mu and the tick reads relaxed. The counter
 *     columns (last_ms, updates, activity, last_active) are written by the
 *     tick only and read by metrics under mu after the tick. */
#ifndef SHOAL_SESSIONS_MGR_H
#define SHOAL_SESSIONS_MGR_H

#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>

#include "pool/pool.h"
#include "runtime/os.h"
#include "runtime/sched/inbox.h"
#include "runtime/sched/sched.h"
#include "runtime/sched/wheel.h"
#include "sessions/cols.h"
#include "sessions/hist.h"
#include "sessions/members.h"
#include "sessions/packets.h"
#include "sessions/registry.h"
#include "sessions/simd.h"

/* shoal__session.state. A released session's is 0. Both states hold a
 * slot of the active array; a hibernated session has no pool element at
 * all (shoal__out). Changed under mu. */
#define SHOAL__S_LIVE 1u        /* created and not released */
#define SHOAL__S_HIBERNATING 2u /* chosen by a hibernation pass */

/* shoal__session.where: whether the active array holds it; under mu. */
#define SHOAL__IN_NONE 0u
#define SHOAL__IN_ACTIVE 1u

/* A pool element. `id` first: the registry's key. */
struct shoal__session {
  _Atomic uint32_t id;
  _Atomic uint32_t state;
  _Atomic uint32_t slot;     /* in the active array */
  _Atomic uint32_t interval; /* the host's; sched holds it unless
                                quarantined */
  _Atomic int last_error;
  _Atomic uint32_t node; /* home NUMA node */
  uint32_t next;         /* list of releases: index + 1, under mu */
  _Atomic uint32_t ndeferred; /* packets in its deferred queue: written by
                                its updater or the drain, read by get */
  void *user;            /* kept for on_release once the slot is gone */
  /* The inbox: Vyukov's intrusive MPSC queue (runtime/sched/inbox.h) with its
   * words here; popped only by whoever updates the session, or under mu
   * once it is released. */
  _Atomic uint64_t in_word;
  _Atomic(shoal__node *) in_head;
  shoal__node *in_tail;
  shoal__node in_stub;
  /* The deferred queue, FIFO; and the ring of sessions that have one.
   * Touched by the worker that updates the session (append), by the
   * drain and the tick's end (holding `updating`), and under mu between
   * ticks (release). */
  shoal__pkt *d_head, *d_tail;
  uint32_t r_prev, r_next;   /* ring: index + 1 */
  uint32_t w_next;           /* a worker's list of sessions that began a
                                deferred queue this tick: index + 1 */
  uint32_t drain_no;         /* the drain call that last ran its packets */
  uint32_t drain_n;          /* how many in that call */
  uint32_t z_next;           /* the zombie list: index + 1, under mu */
  uint32_t self;             /* its own pool index */
  uint32_t where;            /* SHOAL__IN_*, under mu */
  _Atomic uint64_t touch_ms; /* manager clock of the host's last touch */
  uint64_t woke_ms;          /* manager clock of its last wake */
  uint64_t hib_big_at;       /* its blob passed the limit when its
                                last_active was this − 1: not tried
                                again until that moves; 0: never */
  uint32_t pos[2];           /* in its map's and its group's member
                                lists (members.h); under mu */
  _Atomic uint32_t epoch;    /* its incarnation: given at create, kept
                                through hibernation (timers.c) */
  uint64_t tat[SHOAL__RATE_SLOTS]; /* rate limits: per limited category
                                the manager time (µs) its bucket is
                                full again (packets.h); its updater */
};

/* A hibernated session. It gives its pool element back: what it keeps is
 * this, at the start of hibernate/'s record, and its out slot (the
 * registry's value for its id, SHOAL__REG_OUT | slot). All of it under mu.
 * A packet sent to it waits in `held` (FIFO, through the packets' links)
 * until it wakes. */
struct shoal__out {
  struct shoal__out *wk_next; /* the wake list */
  uint32_t id, map, group, interval;
  uint32_t slot; /* out slot */
  uint32_t nheld;
  uint32_t held_head, held_tail; /* packets held, FIFO: packet pool
                                    index + 1, 0: none */
  uint16_t node;                 /* home NUMA node */
  uint8_t flags;                 /* SHOAL__OUT_* */
  uint8_t wake_fails;            /* failed wakes in a row (at most 255) */
  uint32_t retry_tick;           /* after a failed wake: not tried again
                                    before this tick (low 32 bits) */
  uint32_t pos[2];               /* in the member lists, as an active
                                    session's */
  uint32_t epoch;                /* as an active session's */
};

/* Ids exported lately (moved.c): an open-addressing table under mu of
 * each id and the manager time until which calls naming it answer
 * SHOAL_EMOVED; stale entries go when met and when the table would grow. */
typedef struct shoal__moved {
  uint32_t *ids;   /* 0: empty */
  uint64_t *until; /* manager ms */
  uint32_t cap, n; /* cap: 0 or a power of two */
} shoal__moved;

/* A timer or request of a session as it leaves or enters (timers.c): a
 * packet timer (request 0: its opcode, flags and data, the manager time
 * left and its period) or a request's timeout (request 1: the opcode its
 * answer comes as, the time left, and the request as sent). */
typedef struct shoal__tview {
  int request;
  uint16_t opcode, flags;
  uint32_t len;
  const void *data;
  uint64_t remaining_ms, interval_ms;
  shoal_msg req;
} shoal__tview;

/* A map task due in this update's map phase (timers.c fills, maps.c
 * runs): its map, its job's next task (index + 1), what it runs. */
typedef struct shoal__maptask {
  uint32_t map, next;
  shoal_map_task_fn fn;
  void *arg;
} shoal__maptask;

/* The timers (timers.c): their pool, the wheel (any thread arms, the
 * updating thread ticks), the figures, the actor system requests go to,
 * and the map tasks due in this update (the updating thread's). */
typedef struct shoal__timers {
  shoal__pool pool;
  shoal__wheel wheel;
  alignas(SHOAL__FALSE_SHARING) _Atomic uint64_t started, fired, cancelled,
      gone, moved;
  alignas(SHOAL__FALSE_SHARING) _Atomic(shoal_actors *) sys;
  unsigned sink;             /* its number in sys */
  pthread_mutex_t attach_mu; /* attach and detach, one at a time */
  alignas(SHOAL__FALSE_SHARING) _Atomic uint64_t rq_started, rq_refused,
      rq_replies, rq_timeouts, rq_dropped, rq_late, rq_moved;
  shoal__maptask *due;
  uint32_t ndue, due_cap;
} shoal__timers;

#define SHOAL__OUT_ASKED 1u /* on the wake list */
#define SHOAL__OUT_WAKING                                                      \
  2u                       /* in a wake phase, its host callback maybe         \
                              running: not freed under it */
#define SHOAL__OUT_GONE 4u /* released during its wake phase */

/* Per-worker sample of host time, and batches run away from their
 * sessions' home node, on its own line; packet counters, the wait-time
 * histogram, and the sessions that began a deferred queue this tick. */
typedef struct shoal__mgr_sample {
  /* Timed batches (one in 32): the host's update callbacks, shoal's own
   * time around them in the same batches, and the updates timed. */
  alignas(SHOAL__FALSE_SHARING) _Atomic uint64_t host_ns;
  _Atomic uint64_t shoal_ns;
  _Atomic uint64_t timed;
  _Atomic uint64_t away;
  uint32_t new_deferred; /* list through w_next: index + 1 */
  shoal__pkt_counts pk;
  shoal__hist *wait;     /* send to handler */
  _Atomic uint64_t beat; /* the watchdog's view (shoal__beat) */
  /* MAP packets this worker took in this tick, by map (maps.c) */
  struct shoal__mapq *mq;
  uint32_t mq_cap, mq_n;
  uint32_t *mq_used;     /* the entries in use, in first-use order */
  shoal__pkt *spill_head, *spill_tail; /* when mq was full */
} shoal__mgr_sample;

/* The watchdog's heartbeat (watchdog.c). Before each host callback the
 * thread running it stores which one into its own beat word: a count, the
 * kind and the session; SHOAL__CB_NONE when it leaves the batch. The
 * watchdog thread samples the words: one that keeps the same value, not
 * NONE, for longer than a limit names a stalled callback. Two plain stores
 * on the thread's own line per session, no clock. */
enum {
  SHOAL__CB_NONE = 0,
  SHOAL__CB_UPDATE,    /* the update callback */
  SHOAL__CB_PACKET,    /* a packet handler on a worker */
  SHOAL__CB_DEFERRED,  /* a packet handler in drain_deferred */
  SHOAL__CB_HIBERNATE, /* the hibernate or wake callback */
  SHOAL__CB_BATCH,     /* the batch update callback (its first session) */
  SHOAL__CB_KINDS
};
static inline void shoal__beat(_Atomic uint64_t *b, unsigned kind,
                               uint32_t id) {
  uint64_t v = atomic_load_explicit(b, memory_order_relaxed);
  atomic_store_explicit(b,
                        (((v >> 35) + 1) << 35) | ((uint64_t)kind << 32) | id,
                        memory_order_relaxed);
}
/* The same with the count kept by the caller (a loop over a batch):
 * *seq from shoal__beat_seq, read again after anything else beat on the
 * word. It spares the loop a load of the word it has just stored. */
#define SHOAL__BEAT_ONE ((uint64_t)1 << 35)
static inline uint64_t shoal__beat_seq(_Atomic uint64_t *b) {
  return atomic_load_explicit(b, memory_order_relaxed) & ~(SHOAL__BEAT_ONE - 1);
}
static inline void shoal__beat_next(_Atomic uint64_t *b, uint64_t *seq,
                                    unsigned kind, uint32_t id) {
  *seq += SHOAL__BEAT_ONE;
  atomic_store_explicit(b, *seq | ((uint64_t)kind << 32) | id,
                        memory_order_relaxed);
}

/* The tick-time histogram's upper bounds for Prometheus, in µs; a last
 * bucket (+Inf) follows them (prom.c). */
#define SHOAL__PROM_TICK_LE                                                    \
  100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000,        \
      500000, 1000000
#define SHOAL__PROM_TICK_BUCKETS 14
/* Counts a tick of ns in the histogram above. Under mu. */
void shoal__prom_tick(struct shoal_mgr *mgr, uint64_t ns);

/* What one tick, or one node's part of it, covers: the batches of slots
 * [base, end), cut at base + k * bs. */
typedef struct shoal__tick {
  struct shoal_mgr *mgr;
  shoal__cols *c;
  uint32_t base, end, bs;
  uint32_t node;
  uint64_t tick, clock;
} shoal__tick;

/* One home node's part of a tick, with several nodes. The task goes to
 * the inbox of a worker of that node; whoever claims the part first (that
 * worker, or the updating thread once its own part is done) runs it, so
 * that a busy worker never holds a part back. A task still on its way
 * from an earlier tick is not queued again: the tick marks it (queued 1 →
 * 2) and the task, finishing, sees the mark and claims again, so that a
 * part opened just after that task's claim failed is not left to the
 * updating thread alone. */
enum {
  SHOAL__PART_IDLE = 0,
  SHOAL__PART_OPEN = 1,
  SHOAL__PART_TAKEN = 2,
  SHOAL__PART_DONE = 3
};
typedef struct shoal__part {
  shoal__task task; /* first: the runtime's record */
  struct shoal_mgr *mgr;
  shoal__tick t;
  int home; /* the worker it is handed to; -1: none */
  alignas(SHOAL__FALSE_SHARING) _Atomic uint32_t state;
  _Atomic uint32_t queued; /* 0: no task; 1: a task handed over and
                              not finished; 2: and the part opened
                              again since (the task claims again) */
} shoal__part;

/* The most sessions a manager holds (max_sessions' ceiling). */
#define SHOAL__SESSIONS_MAX (1u << 24)

/* What hibernate/ hooks into the manager (set once by
 * shoal_mgr_set_hibernation), so that sessions/ never calls up a layer.
 * wake_phase and hib_phase run holding the manager (updating, ticking),
 * without mu, before and after the tick; the others under mu. */
typedef struct shoal__hib_hooks {
  void (*wake_phase)(shoal_mgr *mgr);
  void (*hib_phase)(shoal_mgr *mgr);
  /* The hibernated session of out slot `slot`. */
  shoal__out *(*out)(shoal_mgr *mgr, uint32_t slot);
  /* Puts o on the wake list (once): the next update wakes it. */
  void (*ask)(shoal_mgr *mgr, shoal__out *o);
  /* o is released (out of the registry, its packets dropped): its record
   * goes, now or when its wake phase ends. */
  void (*forget)(shoal_mgr *mgr, shoal__out *o);
  /* o is being released: its stored bytes, decoded into a copy the
   * caller frees with shoal__free, and the host's release callback in
   * *fn; NULL with *fn NULL when the host set none, NULL with *fn set
   * when the record is corrupt or memory short (logged). */
  void *(*stored)(shoal_mgr *mgr, shoal__out *o, size_t *len,
                  shoal_hib_release_fn *fn);
  /* hibernated sessions; adds their held packets to *pending */
  uint64_t (*count)(shoal_mgr *mgr, uint64_t *pending);
  /* The defragmentation's share: the table fitted, sparse records moved
   * together; returns the table bytes given back. Under mu, holding. */
  size_t (*defrag)(shoal_mgr *mgr);
  void (*destroy)(shoal_mgr *mgr);
} shoal__hib_hooks;

struct shoal_mgr {
  shoal_config cfg;
  shoal_mgr_callbacks cb;
  shoal_update_batch_fn update_batch; /* NULL: cb.update, one by one */
  shoal_runtime *rt;
  int own_rt;
  unsigned nodes;        /* home nodes: pool free lists and segments */
  unsigned *worker_node; /* each worker's node (plan), < nodes */
  shoal__part *parts;    /* one per node when nodes > 1 */
  shoal__pool pool;
  shoal__registry reg;
  shoal__sum_fn sum;
  shoal__older_fn older; /* the same path's candidate finder */
  const char *simd;
  uint64_t stamp_ns; /* cost of a pair of fast-clock stamps */

  /* What the tick reads, written under mu between ticks. */
  alignas(SHOAL__FALSE_SHARING) _Atomic(shoal__cols *) cols;
  uint32_t tick_n;  /* slots the running tick covers */
  uint32_t tick_bs; /* its batch size */
  uint64_t tick_no;
  uint64_t clock_ms; /* sum of diff_ms */

  alignas(SHOAL__FALSE_SHARING) pthread_mutex_t mu;
  pthread_cond_t tick_done;
  uint32_t nact;    /* slots in use */
  uint32_t cols_hw; /* column slots from here on were given back
                       to the system and not touched since */
  uint32_t seg_end[SHOAL__POOL_NODES_MAX]; /* segments; past the last: the
                                              creates of a running tick */
  int ticking;
  int closing;        /* destroy is releasing everything: no create */
  uint32_t releasing; /* releases waiting for the hold's end:
                         index + 1 of the first, 0: none */
  void **retired;     /* column sets replaced (get may still read
                         one), freed at destroy */
  size_t nretired;

  alignas(SHOAL__FALSE_SHARING) _Atomic uint32_t moves; /* seqlock */
  _Atomic unsigned batch_size;
  _Atomic uint64_t hib_ms;
  _Atomic int updating;
  _Atomic uint64_t quarantined; /* now */
  _Atomic uint64_t quarantines; /* in the window */

  /* Tick times since creation for shoal_metrics_prometheus (prom.c):
   * counts per bucket of SHOAL__PROM_TICK_LE (the last: +Inf), their sum.
   * Under mu. */
  uint64_t prom_ticks[SHOAL__PROM_TICK_BUCKETS];
  uint64_t prom_tick_sum_ns;

  /* The window (under mu). */
  shoal__hist hist;
  uint64_t w_ticks, w_batches, w_start_ns, w_cpu0_ns;
  uint64_t w_handled0;        /* packets handled before the window */
  uint64_t w_main_ns;         /* wall time of the update calls: the main
                                 thread's share of the runtime's CPU */
  shoal__mgr_sample *samples; /* one per worker */

  /* Who is on each map, in each group (members.h): [0] maps, [1]
   * groups. Changed under mu; read by broadcasts and listings. */
  shoal__members members[2];

  /* The map phase (maps.c): the host's map update, and the jobs of the
   * phase (holder only). */
  shoal_map_update_fn map_update; /* under mu with no hold running */
  struct shoal__mapjob *mjobs;
  uint32_t mjobs_cap;
  struct shoal__mapfig *mfigs;    /* per map: open addressing, the holder
                                     writes, mu readers between ticks */
  uint32_t mfigs_cap, mfigs_n;
  uint64_t w_session_ns, w_map_ns; /* the window's phases (under mu) */

  /* Timers (timers.c), and the next session incarnation (under mu). */
  shoal__timers tm;
  uint32_t epoch_next;
  /* Sessions exported lately (moved.c), under mu. */
  shoal__moved moved;

  /* Packets (packets.h). */
  shoal__packets pk;

  /* Defragmentation (defrag.c): under mu. */
  uint64_t defrags, defrag_returned, last_defrag_ms;

  /* Hibernation (hibernate/). */
  const shoal__hib_hooks *hooks; /* NULL: off */
  struct shoal__hib *hib;
  uint64_t nout; /* hibernated sessions; under mu */
  alignas(SHOAL__FALSE_SHARING) _Atomic uint64_t
      hyst_ms;                /* a session woken this recently stays */
  _Atomic uint64_t clock_pub; /* clock_ms, for touches from any thread */

  /* The watchdog (watchdog.c): its thread, and the drain's beat. */
  alignas(SHOAL__FALSE_SHARING) _Atomic uint64_t main_beat;
  shoal__ticker wd;
  struct shoal__watch *wd_watch;       /* the watchdog thread's own */
  _Atomic uint64_t wd_stalls, wd_over; /* callbacks reported, in total */
};

/* The session record of pool index `index`. */
static inline shoal__session *shoal__mgr_rec(shoal_mgr *mgr, uint32_t index) {
  return (shoal__session *)shoal__pool_at(&mgr->pool, index);
}

/* The column set in use. acquire: pairs with the release that published
 * it (shoal__cols_grow). */
static inline shoal__cols *shoal__mgr_cols(shoal_mgr *mgr) {
  return atomic_load_explicit(&mgr->cols, memory_order_acquire);
}

/* The hibernated session of id, or NULL. Under mu. */
static inline shoal__out *shoal__mgr_out(shoal_mgr *mgr, uint32_t id) {
  int64_t v = shoal__registry_find(&mgr->reg, id);
  shoal__out *o;
  if (v < 0 || !(v & SHOAL__REG_OUT) || mgr->hooks == NULL)
    return NULL;
  o = mgr->hooks->out(mgr, (uint32_t)v & ~SHOAL__REG_OUT);
  return o != NULL && o->id == id ? o : NULL;
}

/* Waits under mu until no tick runs. */
static inline void shoal__mgr_wait_tick(shoal_mgr *mgr) {
  while (mgr->ticking)
    pthread_cond_wait(&mgr->tick_done, &mgr->mu);
}

/* mgr.c */
/* The hibernated session o (its out slot set, not in the registry yet)
 * is named by its id and joins its map's and group's lists: SHOAL_ENOMEM
 * with nothing changed. Under mu. */
int shoal__mgr_out_insert(shoal_mgr *mgr, shoal__out *o);
/* o leaves its lists and the registry (its packets and record are the
 * caller's). Under mu. */
void shoal__mgr_out_remove(shoal_mgr *mgr, shoal__out *o);
/* The manager whose callback the calling thread is in (NULL outside). */
extern _Thread_local const shoal_mgr *shoal__tls_in_cb;
/* 1 while the calling thread is inside one of mgr's callbacks. */
static inline int shoal__mgr_in_callback(const shoal_mgr *mgr) {
  return shoal__tls_in_cb == mgr;
}
/* The calling thread enters mgr's callbacks until shoal__cb_leave(prev)
 * with what this returned (nests across managers). */
static inline const shoal_mgr *shoal__cb_enter(const shoal_mgr *mgr) {
  const shoal_mgr *prev = shoal__tls_in_cb;
  shoal__tls_in_cb = mgr;
  return prev;
}
static inline void shoal__cb_leave(const shoal_mgr *prev) {
  shoal__tls_in_cb = prev;
}

/* The place of id (active or hibernated) in member list `which` (0: its
 * map's, 1: its group's). Under mu. */
uint32_t *shoal__mgr_pos(shoal_mgr *mgr, uint32_t id, int which);

/* maps.c: the map phase of the tick. */
/* The workers' map queues. shoal__maps_destroy drops nothing: the
 * queues are empty between ticks. */
int shoal__maps_init(shoal_mgr *mgr);
void shoal__maps_destroy(shoal_mgr *mgr);
/* p, taken from session s's inbox by worker wi, waits for map `map`'s
 * turn in this tick's map phase. */
void shoal__maps_queue(shoal_mgr *mgr, unsigned wi, uint32_t map,
                       shoal__session *s, shoal__pkt *p);
/* The map phase: every map's queued packets in order, then the host's map
 * update, maps in parallel, one map on one thread. The updating thread,
 * holding the manager, after the session phase. */
void shoal__maps_phase(shoal_mgr *mgr, uint32_t diff_ms);
/* The map with the most phase time's share of all maps' (0 … 1). Under
 * mu with no tick running. */
double shoal__maps_biggest_share(shoal_mgr *mgr);

/* moved.c: the ids exported lately. Under mu. */
/* id answers SHOAL_EMOVED for MovedSeconds from now: SHOAL_ENOMEM. */
int shoal__moved_add(shoal_mgr *mgr, uint32_t id);
/* id is here again (created or imported). */
void shoal__moved_del(shoal_mgr *mgr, uint32_t id);
/* What a call naming id, which is not here, answers: SHOAL_EMOVED or
 * SHOAL_ENOENT. */
int shoal__mgr_gone(shoal_mgr *mgr, uint32_t id);
void shoal__moved_destroy(shoal_mgr *mgr);
/* timers.c */
int shoal__timers_init(shoal_mgr *mgr);
void shoal__timers_destroy(shoal_mgr *mgr);
/* Detaches the actor system (shoal_mgr_attach_actors): returns once no
 * reply runs into the manager. */
void shoal__requests_detach(shoal_mgr *mgr);
/* Takes the timers started meanwhile and fires those due up to now. The
 * updating thread, holding the manager, without mu. */
void shoal__timers_tick(shoal_mgr *mgr, uint64_t now);
/* The armed packet timers and requests of session id of incarnation
 * epoch, into (*v)[0 … *n) (the array grown as needed, *cap its room;
 * free it with shoal__free). SHOAL_ENOMEM. Holding the manager. */
int shoal__timers_of(shoal_mgr *mgr, uint32_t id, uint32_t epoch,
                     shoal__tview **v, uint32_t *n, uint32_t *cap);
/* Cancels them: they left with the session (counted moved). Holding. */
void shoal__timers_moved(shoal_mgr *mgr, uint32_t id, uint32_t epoch);
/* n timers of the pool into idx (all or none): SHOAL_ELIMIT,
 * SHOAL_ENOMEM; given back unarmed, or armed for session id of epoch
 * from a view (counted started, or as requests). Holding. */
int shoal__timers_take(shoal_mgr *mgr, uint32_t n, uint32_t *idx);
void shoal__timers_give(shoal_mgr *mgr, uint32_t n, const uint32_t *idx);
void shoal__timers_arm_view(shoal_mgr *mgr, uint32_t idx, uint32_t id,
                            uint32_t epoch, const shoal__tview *v);

/* tick.c: the tick, and the hold protocol every call that holds the
 * manager goes through. */
/* Runs f(mgr) holding the manager as a tick does (updating, ticking);
 * 0 or SHOAL_ESTATE. Releases made meanwhile take effect when it ends. */
int shoal__mgr_hold(shoal_mgr *mgr, void (*f)(shoal_mgr *, void *), void *arg);
/* Runs on_release for each session of the list (index + 1, through
 * `next`) and returns them to the pool. Outside mu. */
void shoal__mgr_finish_releases(shoal_mgr *mgr, uint32_t list);
/* Waits until no part's task is on its way (destroy). */
void shoal__tick_quiesce(shoal_mgr *mgr);

/* detach.c: a session leaves the active array for hibernate/ and comes
 * back. */
typedef struct shoal__kept {
  uint64_t updates, activity;
} shoal__kept;
/* Takes s (HIBERNATING) out of the active array into o (map, group,
 * interval, node, the kept counters) and gives its pool element back; id
 * then names out slot o->slot. 0 when its inbox had a packet reserved:
 * then nothing changed. drained 1: the caller closed the inbox and took
 * its packets (an export), so it is not looked at. SHOAL_ENOMEM (the out
 * ids). Under mu, no tick running. */
int shoal__mgr_detach(shoal_mgr *mgr, shoal__session *s, shoal__out *o,
                      shoal__kept *kept, int drained);
/* Puts o (not released) into pool element `index` (taken for it) at the
 * end of the active array (room reserved) with user, its map, group,
 * interval, kept counters and held packets, LIVE; id names it from now
 * on, and it joins its segment at shoal__slots_join. Under mu, no tick
 * running. */
void shoal__mgr_attach(shoal_mgr *mgr, shoal__out *o, uint32_t index,
                       void *user, const shoal__kept *kept);
/* A session chosen by a pass and released while it ran: its slot goes,
 * its packets are dropped, and on_release gets user NULL. Under mu. */
void shoal__mgr_drop_chosen(shoal_mgr *mgr, shoal__session *s);
/* Room in the columns for `more` attaches. Under mu, no tick running. */
int shoal__mgr_reserve(shoal_mgr *mgr, uint32_t more);

/* defrag.c */
/* Trims the columns, the pool, the registry and (through the hooks) the
 * hibernated table, and collects the allocator. Holding the manager. */
void shoal__mgr_defrag(shoal_mgr *mgr, shoal_defrag_report *out);
/* After a tick, holding: the periodic defragmentation when it is due. */
void shoal__defrag_tick(shoal_mgr *mgr);

/* metrics.c */
/* The CPU time of the runtime's started threads (workers 1 … N-1). */
uint64_t shoal__mgr_runtime_cpu(shoal_mgr *mgr);
/* The pool and table bytes of the manager. Under mu. */
uint64_t shoal__mgr_table_bytes(shoal_mgr *mgr);

/* config.c */
/* Every field of c in its range (the keys' table, the actors' part, and
 * what holds across keys): SHOAL_EINVAL with "KEY: why" in err. Any
 * thread. */
int shoal__config_check(const shoal_config *c, char *err, size_t len);

/* watchdog.c. Starts the thread when watchdog_ms or callback_budget_ms is
 * set; SHOAL_EAGAIN when the OS refuses it. Stop joins it. Creating and
 * destroying thread. */
int shoal__wd_start(shoal_mgr *mgr);
void shoal__wd_stop(shoal_mgr *mgr);

#endif /* SHOAL_SESSIONS_MGR_H */
