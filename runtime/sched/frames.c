/* frames.c — a worker's frame array and the slow paths of fork-join: the
 * array's blocks, grown on demand and found from any handle by masking;
 * the publication of private frames to the Chase-Lev deque when some
 * worker looks for work; sync of a published frame (taken back, or waited
 * for by leapfrogging); the levels of frames for calls without a handle;
 * running a taken task.
 *
 * Frames are written straight into the array by the inline spawn (Lace's
 * task frames, van Dijk and van de Pol, "Lace: non-blocking split deque
 * for work-stealing", Euro-Par 2014 workshops), with the handle, not a
 * counter in memory, marking the top, so that the fast path is a few
 * stores and no chain of loads through the worker. They stay private while
 * every worker is busy and move to the deque only when one asks
 * (receiver-initiated publication: Acar, Charguéraud and Rainey, PPoPP
 * 2013). Thieves steal only published frames, through the deque, whose
 * protocol is unchanged (deque.h).
 *
 * A frame's state is PRIVATE (0) from its spawn until someone publishes
 * it, and every sync leaves it PRIVATE again, so that neither the inline
 * spawn nor the inline sync stores it. The library therefore cannot tell a
 * live private frame from a free one: when a task that holds a handle it
 * does not pass calls into the runtime (a nested parallel_for, a group
 * wait), what runs meanwhile gets a level of its own, a separate chain of
 * blocks, instead of a place in the array the task is using. */
#include <limits.h>
#include <stdlib.h>

#include "runtime/sched/scheduler.h"

/* How long sync spins for a stolen child before it sleeps on it. */
#define SYNC_SPINS 4096

static struct shoal__frame *frame(shoal_worker *c) {
  return (struct shoal__frame *)(void *)c;
}

static shoal__block *block_of(const shoal_worker *c) {
  return (shoal__block *)((uintptr_t)c & ~(uintptr_t)(SHOAL__FRAMES_BLOCK - 1));
}

static shoal_worker *first_frame(shoal__block *b) {
  return (shoal_worker *)(void *)((struct shoal__frame *)(void *)b + 1);
}

static shoal__block *block_new(shoal__worker *w, shoal__block *prev) {
  shoal__block *b =
      shoal__aligned_alloc(SHOAL__FRAMES_BLOCK, SHOAL__FRAMES_BLOCK);
  if (b == NULL)
    return NULL;
  memset(b, 0, SHOAL__FRAMES_BLOCK); /* every frame PRIVATE (0): free */
  b->h.wanted = &w->rt->wanted;
  b->w = w;
  b->prev = prev;
  return b;
}

int shoal__frames_init(shoal__worker *w) {
  if ((w->frames = block_new(w, NULL)) == NULL)
    return SHOAL_ENOMEM;
  w->level = w->frames;
  w->base = w->frontier = first_frame(w->frames);
  return SHOAL_OK;
}

static void chain_free(shoal__block *b) {
  shoal__block *next;
  for (; b != NULL; b = next) {
    next = b->next;
    chain_free(b->deeper);
    shoal__free(b);
  }
}

void shoal__frames_free(shoal__worker *w) {
  chain_free(w->frames);
  w->frames = NULL;
}

/* A task nested deeper than memory allows: no handle can be made, and no
 * caller could go on without one (as with a stack that cannot grow). */
static void out_of_frames(shoal__worker *w) {
  shoal__log(w->rt->cfg.log, w->rt->cfg.log_user, SHOAL_LOG_ERROR,
             "runtime: no memory for %u more frames on worker %u",
             (unsigned)SHOAL__BLOCK_FRAMES, w->index);
  abort();
}

shoal_worker *shoal__next_slow(shoal_worker *c) {
  shoal__block *b = block_of(c);
  if (b->next == NULL && (b->next = block_new(b->w, b)) == NULL)
    out_of_frames(b->w);
  return first_frame(b->next);
}

shoal_worker *shoal__level_enter(shoal__worker *w, shoal__level *saved) {
  shoal__block *d = w->level->deeper;
  if (d == NULL && (d = w->level->deeper = block_new(w, NULL)) == NULL)
    out_of_frames(w);
  saved->level = w->level;
  w->level = d;
  return first_frame(d);
}

void shoal__level_leave(shoal__worker *w, const shoal__level *saved) {
  w->level = saved->level;
}

static shoal_worker *prev_frame(shoal_worker *c) {
  struct shoal__frame *f = frame(c) - 1;
  if ((shoal__block *)(void *)f != block_of(c))
    return (shoal_worker *)(void *)f;
  /* The block's head: the previous block's last frame. */
  return (shoal_worker *)(void *)((struct shoal__frame *)(void *)block_of(c)
                                      ->prev +
                                  SHOAL__BLOCK_FRAMES - 1);
}

/* Moves w's private frames up to `last` to the deque, oldest first. The
 * private frames of a level are the newest of its live frames, apart from
 * frames a sync runs in place (TAKEN), which are stepped over: below the
 * newest published frame nothing is private (it was published with it, or
 * freed and spawned again only after everything above it was synced). So
 * the walk goes down from `last` to the first published frame (or the
 * level's start), then up, pushing. */
static unsigned publish(shoal__worker *w, shoal_worker *last) {
  shoal_worker *start = first_frame(w->level), *c = last, *stop;
  unsigned n = 0;
  for (;;) {
    uint32_t s = atomic_load_explicit(&frame(c)->state, memory_order_relaxed);
    if (s != SHOAL__FRAME_PRIVATE && s != SHOAL__FRAME_TAKEN) {
      c = shoal__next(c);
      break;
    }
    if (c == start)
      break;
    c = prev_frame(c);
  }
  stop = shoal__next(last);
  for (; c != stop; c = shoal__next(c)) {
    struct shoal__frame *f = frame(c);
    if (atomic_load_explicit(&f->state, memory_order_relaxed) !=
        SHOAL__FRAME_PRIVATE)
      continue;
    f->kind = SHOAL__KIND_FRAME;
    atomic_store_explicit(&f->thief, NULL, memory_order_relaxed);
    atomic_store_explicit(&f->state, SHOAL__TASK_PENDING,
                          memory_order_relaxed);
    /* The push's release publishes the fields above with the frame. */
    if (shoal__deque_push_owner(&w->dq, f) != SHOAL_OK) {
      /* No memory for the deque to grow: the rest stays private. */
      atomic_store_explicit(&f->state, SHOAL__FRAME_PRIVATE,
                            memory_order_relaxed);
      break;
    }
    n++;
  }
  w->local[SHOAL__ST_TASKS] += n;
  return n;
}

shoal_worker *shoal__spawn_slow(shoal_worker *c) {
  shoal__worker *w = shoal__worker_of(c);
  shoal_worker *next = shoal__next(c);
  if ((atomic_load_explicit(&w->rt->wanted, memory_order_relaxed) &
       SHOAL__WANTING) != 0 &&
      publish(w, c) != 0)
    shoal__signal_work(w->rt);
  return next;
}

/* Runs a task that came out of a deque or the injection queue. A frame
 * taken by a thief follows the state protocol that its spawner's sync
 * waits on. */
void shoal__run_taken_at(shoal__worker *w, shoal_worker *at, shoal__task *t) {
  uint64_t t0 = w->spans != NULL ? shoal__now_ns() : 0;
  uint32_t kind = t->kind;
  shoal_worker *saved = w->frontier;
  w->frontier = at;
  if (kind != SHOAL__KIND_FRAME) {
    t->fn(at, t);
  } else {
    struct shoal__frame *f = (struct shoal__frame *)(void *)t;
    uint32_t old;
    atomic_store_explicit(&f->thief, w, memory_order_relaxed);
    f->fn(at, f->args);
    /* release: the frame's results before DONE; pairs with the acquire
     * loads of state in sync. After this the frame may be reused. */
    old = atomic_exchange_explicit(&f->state, SHOAL__TASK_DONE,
                                   memory_order_acq_rel);
    if (old & SHOAL__TASK_WAITER)
      shoal__futex_wake(&f->state, INT_MAX);
  }
  w->frontier = saved;
  if (w->spans != NULL)
    shoal__span_add(
        w, kind != SHOAL__KIND_FRAME ? SHOAL__SPAN_CLOSURE : SHOAL__SPAN_TASK,
        t0, shoal__now_ns());
}

static void wait_stolen(shoal__worker *w, struct shoal__frame *t,
                        shoal_worker *at) {
  unsigned rounds = 0;
  for (;;) {
    uint32_t s = atomic_load_explicit(&t->state, memory_order_acquire);
    shoal__worker *thief;
    shoal__task *x = NULL;
    void *p;
    /* acquire (above): pairs with the thief's exchange to DONE, so the
     * child's results are visible. */
    if (s == SHOAL__TASK_DONE)
      break;
    /* Leapfrogging (Wagner and Calder 1993): the thief's deque holds
     * only the child's own descendants, so helping there shortens the
     * wait without taking on unrelated work. */
    thief = atomic_load_explicit(&t->thief, memory_order_relaxed);
    if (thief != NULL && shoal__deque_size_hint(&thief->dq) != 0 &&
        shoal__deque_steal(&thief->dq, &p) == SHOAL__STEAL_OK) {
      w->local[SHOAL__ST_STEALS]++;
      x = p;
    } else if ((rounds & 63) == 63) {
      x = shoal__steal_round(w);
    }
    if (x != NULL) {
      shoal__set_wanting(w, 0);
      shoal__run_taken_at(w, at, x);
      rounds = 0;
      continue;
    }
    if (++rounds == 64)
      shoal__set_wanting(w, 1); /* ask busy workers to publish */
    if (rounds < SYNC_SPINS) {
      shoal__cpu_relax();
      continue;
    }
    shoal__set_wanting(w, 0);
    s = SHOAL__TASK_PENDING;
    if (atomic_compare_exchange_strong_explicit(
            &t->state, &s, SHOAL__TASK_PENDING | SHOAL__TASK_WAITER,
            memory_order_relaxed, memory_order_relaxed) ||
        s == (SHOAL__TASK_PENDING | SHOAL__TASK_WAITER))
      shoal__futex_wait(&t->state, SHOAL__TASK_PENDING | SHOAL__TASK_WAITER,
                        0);
  }
  shoal__set_wanting(w, 0);
}

int shoal__sync_take_slow(shoal_worker *c) {
  struct shoal__frame *t = frame(c);
  shoal__worker *w = shoal__worker_of(c);
  shoal_worker *above = shoal__next(c);
  for (;;) {
    shoal__task *x = shoal__deque_take_owner(&w->dq);
    if (x == (shoal__task *)(void *)t) {
      atomic_store_explicit(&t->state, SHOAL__FRAME_PRIVATE,
                            memory_order_relaxed);
      return 1; /* taken back: the caller runs it */
    }
    if (x == NULL)
      break;
    /* Pushed after t (a closure of a group), or an older frame of ours
     * whose sync will find it done: either may run here, above t. */
    shoal__run_taken_at(w, above, x);
  }
  /* Stolen: wait, running work above t. */
  wait_stolen(w, t, above);
  atomic_store_explicit(&t->state, SHOAL__FRAME_PRIVATE, memory_order_relaxed);
  return 0;
}

void *shoal_args_call(shoal_worker *w) { return shoal_args(w); }

shoal_worker *shoal_spawn_call(shoal_worker *w, shoal_task_fn fn) {
  return shoal_spawn(w, fn);
}

int shoal_sync_take_call(shoal_worker *w) { return shoal_sync_take(w); }

void shoal_sync_call(shoal_worker *w) { shoal_sync(w); }
