/* scheduler.h — the scheduler's private structures: a worker's owner-only
 * and shared halves, the runtime, closures, spans, counters. Included only
 * by the files of runtime/sched/ (and by white-box tests); every other
 * layer uses the named calls of sched.h. */
#ifndef SHOAL_SCHED_SCHEDULER_H
#define SHOAL_SCHED_SCHEDULER_H

#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>

#include "runtime/os.h"
#include "runtime/sched/deque.h"
#include "runtime/sched/mpmc.h"
#include "runtime/sched/sched.h"
#include "runtime/topo/topo.h"

typedef struct shoal__worker shoal__worker;

/* A frame's state (struct shoal__frame in shoal.h): PRIVATE (also a free
 * slot) and TAKEN are the owner's; once published it is PENDING in a deque (a thief that
 * takes it sets thief), WAITER is or-ed in when the spawner sleeps on it,
 * DONE when it has run. A record's state (closures) is not used. */
enum {
  SHOAL__TASK_PENDING = 2,
  SHOAL__TASK_DONE = 4,
  SHOAL__TASK_WAITER = 8
};

/* The head of each block of a worker's frame array: slot 0 of the block,
 * which is SHOAL__FRAMES_BLOCK bytes aligned to its size, so that a handle
 * finds its worker by masking. Blocks are chained in the order frames
 * use them and kept until the worker is freed. */
typedef struct shoal__block {
  struct shoal__frames_head h; /* first: shoal.h's inline spawn reads it */
  struct shoal__worker *w;
  struct shoal__block *next, *prev;
  struct shoal__block *deeper; /* a level's first block: the next level's */
} shoal__block;

/* What a level replaces (frames.c). */
typedef struct shoal__level {
  shoal__block *level;
} shoal__level;
_Static_assert(sizeof(shoal__block) <= sizeof(struct shoal__frame),
               "a block's head fits its slot 0");
_Static_assert(sizeof(struct shoal__frame) == 64, "a frame is a cache line");
#define SHOAL__BLOCK_FRAMES (SHOAL__FRAMES_BLOCK / sizeof(struct shoal__frame))

/* The gap between a searching worker's looks for work, ns: about one
 * cross-core round trip, so that a published frame waits for a thief
 * little longer than its transfer takes. */
#define SHOAL__POLL_NS 100

/* The halves of shoal_runtime's `wanted`: one worker wanting, one
 * searching, and the high half's mask (the low half's, SHOAL__WANTING, is
 * shoal.h's, for its inline spawn). */
#define SHOAL__WANT_ONE UINT64_C(1)
#define SHOAL__SEARCH_ONE (UINT64_C(1) << 32)
#define SHOAL__SEARCHING (SHOAL__WANTING << 32)

/* A group as the library sees it (shoal_group reserves the room). */
typedef struct shoal__group {
  shoal_runtime *rt;
  _Atomic int64_t pending; /* closures submitted and not yet returned */
} shoal__group;
_Static_assert(sizeof(shoal__group) <= sizeof(shoal_group), "group room");

/* A closure submitted to a group: a record of the runtime's pool, so that
 * submitting does not allocate. */
typedef struct shoal__closure {
  shoal__task task;
  shoal_closure_fn fn;
  void *ctx;
  shoal__group *group;
  void *spare;
} shoal__closure;

enum { SHOAL__SPAN_TASK = 0, SHOAL__SPAN_CLOSURE = 1, SHOAL__SPAN_BATCH = 2 };
typedef struct shoal__span {
  uint64_t begin_ns, end_ns;
  uint32_t kind;
  uint32_t pad_;
} shoal__span;

/* Counters a worker keeps for itself and publishes (stats.c). */
enum {
  SHOAL__ST_TASKS,
  SHOAL__ST_STEALS,
  SHOAL__ST_FAILED,
  SHOAL__ST_PARKS,
  SHOAL__ST_WAKES,
  SHOAL__ST_BUSY,
  SHOAL__ST_DROPPED,
  SHOAL__ST_COUNT
};

enum { SHOAL__PARK_AWAKE = 0, SHOAL__PARK_ASLEEP = 1 };

struct shoal__worker {
  /* --- owner-only half (Lace's private worker half) --- */
  shoal_runtime *rt;
  shoal__block *frames;   /* the frame array's first block (level 0) */
  shoal__block *level;    /* the first block of the level in use */
  shoal_worker *base;     /* level 0's first frame: where an idle worker
                             starts */
  shoal_worker *frontier; /* the handle the library gave the innermost call
                             into a layer above that took none (kept around
                             each such call) */

  unsigned index;
  unsigned nvictims;
  unsigned *victims;                     /* the plan's order, nearest first:
                                            a copy, rt->cap - 1 at most */
  uint32_t gen;                          /* the plan (rt->gen) it is of */
  unsigned level_end[SHOAL_PLAN_LEVELS_MAX]; /* victims of level l end
                                               here */
  unsigned nlevels;                          /* levels with victims */
  unsigned *order;                       /* one steal round's order */
  uint64_t rng;
  int wanting;          /* counted in rt->wanted */
  unsigned group_waits; /* nesting of shoal_group_wait on this worker */
  int searching;        /* counted in rt->searching */
  uint64_t busy_since;
  uint64_t local[SHOAL__ST_COUNT]; /* SHOAL__ST_TASKS counts closures
                                      and published frames */
  shoal__task *held;               /* pinned tasks taken from the inbox, FIFO */
  shoal__task *held_last;
  shoal__node inbox_stub;          /* the inbox's stub node (Vyukov's
                                      intrusive MPSC queue) */
  shoal__span *spans;
  uint32_t span_cap;
  pthread_t thread;
  int has_thread; /* under rt->resize_mu: `thread` runs the worker, its CPU
                     clock may be read; its thread clears it at the end */
  int joinable;   /* the thread that ran it is still to be joined (the
                     thread that resizes or destroys) */

  /* --- shared half --- */
  shoal__deque dq;    /* aligned to SHOAL__FALSE_SHARING by its own fields */
  shoal__inbox inbox; /* tasks handed to this worker by other threads */
  alignas(SHOAL__FALSE_SHARING) _Atomic uint32_t park; /* futex word */
  /* 1 once the worker has left for good (a shrink) and handed its work
   * back: a task pushed to its inbox after that is adopted by whoever
   * pushed it (shoal__adopt). Written under rt->resize_mu. */
  _Atomic uint32_t retired;
  alignas(SHOAL__FALSE_SHARING) _Atomic uint64_t stats[SHOAL__ST_COUNT];
  _Atomic uint32_t nspans; /* spans[0 … nspans) are complete */
  _Atomic uint64_t cpu_done; /* CPU time of the threads that have left */
  _Atomic uint32_t left;     /* its thread is done with it (removed: its
                                tasks handed back) */
};

struct shoal_runtime {
  shoal_runtime_config cfg;
  /* Workers running now: 0 … n-1 (shoal__live). Changed only by
   * shoal_runtime_set_workers, under resize_mu. */
  _Atomic unsigned n;
  unsigned cap;    /* workers there can ever be: w[] and every per-worker
                      array of the layers above have this many */
  unsigned nwords; /* words of idle_bits in use (for cap) */
  unsigned poll_relax; /* relaxes between a searcher's looks for work:
                          about SHOAL__POLL_NS */
  shoal__worker **w; /* cap entries; NULL: never started. A worker's
                        record lives until the runtime is freed */
  shoal_topo *own_topo;
  const shoal_topo *topo;
  shoal_plan *plan;
  shoal__closure *closures; /* the pool */
  shoal__mpmc free_q;       /* free closure records */
  shoal__mpmc inject;       /* closures submitted from outside */

  pthread_mutex_t start_mu; /* starting threads (creation, growing) */
  pthread_cond_t start_cv;
  unsigned started; /* threads of the start under way that are ready */
  int start_err;
  unsigned gate; /* starts let through: a thread of start g waits for
                    gate >= g, then runs unless its worker is retired */
  /* The plan, its generation (workers copy their victims when it moves),
   * retirements and adoptions: all rare. */
  pthread_mutex_t resize_mu;
  _Atomic uint32_t gen;
  pthread_mutex_t size_mu; /* one shoal_runtime_set_workers at a time */

  /* Workers looking for work or parked (the low half, SHOAL__WANTING: the
   * inline spawn reads it), and workers searching now (the high half,
   * SHOAL__SEARCHING). One word, so that a thief that found work leaves
   * both with one RMW before it runs what it took. */
  alignas(SHOAL__FALSE_SHARING) _Atomic uint64_t wanted;
  alignas(
      SHOAL__FALSE_SHARING) _Atomic uint64_t idle_bits[SHOAL_WORKERS_MAX / 64];
  alignas(SHOAL__FALSE_SHARING) _Atomic uint32_t host; /* worker 0 held */
  shoal__worker *host_saved; /* the holder's own worker of another runtime */
  /* Workers inside shoal_group_wait: a finished group wakes them. */
  alignas(
      SHOAL__FALSE_SHARING) _Atomic uint64_t wait_bits[SHOAL_WORKERS_MAX / 64];
  _Atomic uint32_t stopping;
  /* Threads outside the workers wait on this event count: for a group to
   * finish, for worker 0 to be free, for room in the pool. */
  alignas(SHOAL__FALSE_SHARING) _Atomic uint32_t ext_epoch;
  _Atomic uint32_t ext_waiters;
  /* Round-robin target of tasks submitted from outside. */
  alignas(SHOAL__FALSE_SHARING) _Atomic uint32_t next_target;
  /* The Dekker fences' stand-in in a ThreadSanitizer build. */
  alignas(SHOAL__FALSE_SHARING) _Atomic uint32_t dekker;
  /* The host's entries, to anticipate a steady tick. */
  alignas(SHOAL__FALSE_SHARING) _Atomic uint64_t entry_last_ns;
  _Atomic uint64_t entry_period_ns;
};

/* The full fence of a Dekker pattern: each side stores, fences, then loads
 * what the other stores, so at least one sees the other (no lost
 * wake-up). ThreadSanitizer does not model standalone fences; its build
 * makes every side an acq_rel RMW of the same word instead, which orders
 * them the same way (one RMW reads the other's, synchronizing with it). */
static inline void shoal__dekker(shoal_runtime *rt) {
#if SHOAL__TSAN
  atomic_fetch_add_explicit(&rt->dekker, 0, memory_order_acq_rel);
#else
  (void)rt;
  atomic_thread_fence(memory_order_seq_cst);
#endif
}

/* Workers running now. A stale count is harmless: a task pushed to a
 * worker that has left is adopted (shoal__adopt). acquire: pairs with the
 * store in workers.c's plan_swap, so the records of the workers counted
 * are seen. */
static inline unsigned shoal__live(const shoal_runtime *rt) {
  return atomic_load_explicit(&((shoal_runtime *)(uintptr_t)rt)->n,
                              memory_order_acquire);
}

/* sched.c (and the calls of sched.h) */
/* The calling thread becomes w (NULL: none): a worker's own thread as it
 * starts and ends. */
void shoal__set_self(shoal__worker *w);
/* Clears worker i's idle bit and wakes it when it was parked. Any
 * thread. */
void shoal__wake_worker(shoal_runtime *rt, unsigned i);

/* The worker of `rt` (of any runtime) the calling thread is, or NULL. */
shoal__worker *shoal__self(const shoal_runtime *rt);
shoal__worker *shoal__self_any(void);
shoal__task *shoal__steal_round(shoal__worker *w);
/* The worker a handle belongs to. */
static inline shoal__worker *shoal__worker_of(const shoal_worker *c) {
  return ((const shoal__block *)((uintptr_t)c &
                                 ~(uintptr_t)(SHOAL__FRAMES_BLOCK - 1)))
      ->w;
}
/* Own deque, then the injection queue, then a steal round. */
shoal__task *shoal__find_work(shoal__worker *w);
/* Runs t on w through handle `at` (a free frame: what t may spawn
 * through). */
void shoal__run_taken_at(shoal__worker *w, shoal_worker *at, shoal__task *t);
void shoal__set_wanting(shoal__worker *w, int on);
/* Waits on the event count until cond(arg) holds; the caller is no worker. */
void shoal__ext_wait(shoal_runtime *rt, int (*cond)(void *), void *arg);
/* The same with a deadline (shoal__now_ns; 0 none): 1 when cond held. */
int shoal__ext_wait_until(shoal_runtime *rt, int (*cond)(void *), void *arg,
                          uint64_t deadline_ns);
int shoal__host_try_enter(shoal_runtime *rt);
void shoal__host_leave(shoal_runtime *rt);
/* shoal__work_until with a deadline (0 none): 1 when done held, 0 on the
 * deadline. */
int shoal__work_until_deadline(shoal__worker *w, shoal_worker *at,
                               int (*done)(void *), void *arg,
                               uint64_t deadline_ns);
/* One steal round's victim order, drawn with *rng: fills out[0 …
 * nvictims). Reads only what is fixed at start-up (tests call it). */
unsigned shoal__round_order(const shoal__worker *w, uint64_t *rng,
                            unsigned *out);

/* workers.c */
/* w's victims from the plan of generation rt->gen. The owner. */
void shoal__victims_load(shoal__worker *w);
/* Tasks pushed to retired worker i's inbox go to live workers. Any
 * thread that pushed there and then saw it retired. */
void shoal__adopt(shoal_runtime *rt, unsigned i);

/* frames.c */
int shoal__frames_init(shoal__worker *w);
void shoal__frames_free(shoal__worker *w);
/* Starts a level of frames for work that runs while a task holding
 * frames of the current level waits (its handle unknown here); returns
 * the level's first frame. The owner; leave restores. */
shoal_worker *shoal__level_enter(shoal__worker *w, shoal__level *saved);
void shoal__level_leave(shoal__worker *w, const shoal__level *saved);

/* group.c */
int shoal__group_submit(shoal__group *g, shoal_closure_fn fn, void *ctx,
                        int block);

/* stats.c */
void shoal__stats_flush(shoal__worker *w);
static inline void shoal__span_add(shoal__worker *w, uint32_t kind,
                                   uint64_t begin_ns, uint64_t end_ns) {
  uint32_t n = atomic_load_explicit(&w->nspans, memory_order_relaxed);
  if (n >= w->span_cap) {
    w->local[SHOAL__ST_DROPPED]++;
    return;
  }
  w->spans[n].begin_ns = begin_ns;
  w->spans[n].end_ns = end_ns;
  w->spans[n].kind = kind;
  /* release: the span's fields before the count; pairs with the acquire
   * load in shoal_runtime_trace_write. */
  atomic_store_explicit(&w->nspans, n + 1, memory_order_release);
}

#endif /* SHOAL_SCHED_SCHEDULER_H */
