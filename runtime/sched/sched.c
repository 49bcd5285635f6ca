/* sched.c — what a worker does: the loop that finds work (own deque,
 * injection queue, steals nearest first), bounded spinning, parking on a
 * futex without lost wake-ups, tasks handed to a worker, and the host's
 * slot (worker 0). Starting, resizing and stopping are workers.c's. */
#include <limits.h>
#include <stdlib.h>

#include "runtime/sched/scheduler.h"

static _Thread_local shoal__worker *tls_worker;

shoal__worker *shoal__self(const shoal_runtime *rt) {
  shoal__worker *w = tls_worker;
  return w != NULL && w->rt == rt ? w : NULL;
}

shoal__worker *shoal__self_any(void) { return tls_worker; }

void shoal__set_self(shoal__worker *w) { tls_worker = w; }

shoal_worker *shoal__current(const shoal_runtime *rt) {
  shoal__worker *w = shoal__self(rt);
  return w != NULL ? w->frontier : NULL;
}

/* xorshift64* (Vigna 2016): victim rotation only, never security. */
static uint64_t rng_next(uint64_t *s) {
  uint64_t x = *s;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *s = x;
  return x * 0x2545F4914F6CDD1DULL;
}

/* ------------------------------------------------------------------------ */
/* Stealing                                                                 */
/* ------------------------------------------------------------------------ */

unsigned shoal__round_order(const shoal__worker *w, uint64_t *rng,
                            unsigned *out) {
  unsigned begin = 0;
  for (unsigned l = 0; l < w->nlevels; l++) {
    unsigned end = w->level_end[l], len = end - begin;
    if (len != 0) {
      /* Randomized within a level, so that the thieves of one cache or
       * node do not all queue on the same victim. */
      unsigned r = (unsigned)(rng_next(rng) % len);
      for (unsigned i = 0; i < len; i++)
        out[begin + i] = w->victims[begin + (r + i) % len];
    }
    begin = end;
  }
  return w->nvictims;
}

shoal__task *shoal__steal_round(shoal__worker *w) {
  shoal_runtime *rt = w->rt;
  unsigned n;
  /* relaxed: a late view only steals by the old plan a little longer (a
   * worker that left has an empty deque). */
  if (atomic_load_explicit(&rt->gen, memory_order_relaxed) != w->gen)
    shoal__victims_load(w);
  n = shoal__round_order(w, &w->rng, w->order);
  for (unsigned i = 0; i < n; i++) {
    shoal__deque *d = &rt->w[w->order[i]]->dq;
    void *x;
    /* Looking costs two relaxed loads; the steal's fence only when there
     * seems to be something. */
    if (shoal__deque_size_hint(d) == 0)
      continue;
    for (int tries = 0; tries < 2; tries++) {
      shoal__steal_rc rc = shoal__deque_steal(d, &x);
      if (rc == SHOAL__STEAL_OK) {
        w->local[SHOAL__ST_STEALS]++;
        return x;
      }
      if (rc == SHOAL__STEAL_EMPTY)
        break;
      w->local[SHOAL__ST_FAILED]++; /* lost a race: the victim may have more */
    }
  }
  w->local[SHOAL__ST_FAILED]++;
  return NULL;
}

static int work_visible(shoal_runtime *rt) {
  for (unsigned i = 0, n = shoal__live(rt); i < n; i++)
    if (shoal__deque_size_hint(&rt->w[i]->dq) != 0)
      return 1;
  return atomic_load_explicit(&rt->inject.tail, memory_order_relaxed) !=
         atomic_load_explicit(&rt->inject.head, memory_order_relaxed);
}

/* The next task of w's inbox. Pinned tasks run here, in the order they
 * came; tasks that may run anywhere behind the first one move to w's
 * deque (a bounded number at a time) where idle workers can steal them. */
static shoal__task *inbox_take(shoal__worker *w) {
  shoal__task *t, *first = NULL;
  unsigned moved = 0;
  if ((t = w->held) != NULL) {
    w->held = shoal__task_of(
        atomic_load_explicit(&t->link.next, memory_order_relaxed));
    return t;
  }
  while (moved < 64 &&
         (t = shoal__task_of(shoal__inbox_pop(&w->inbox))) != NULL) {
    if (first == NULL) {
      first = t;
    } else if (t->kind == SHOAL__KIND_PINNED ||
               shoal__deque_push_owner(&w->dq, t) != SHOAL_OK) {
      atomic_store_explicit(&t->link.next, NULL, memory_order_relaxed);
      if (w->held == NULL)
        w->held = t;
      else
        atomic_store_explicit(&w->held_last->link.next, &t->link,
                              memory_order_relaxed);
      w->held_last = t;
    } else {
      moved++;
    }
    if (first->kind == SHOAL__KIND_PINNED && moved == 0 && w->held == NULL)
      break; /* the common case: one actor to run, nothing to spread */
  }
  if (moved != 0)
    shoal__signal_work(w->rt);
  return first;
}

static int inbox_visible(shoal__worker *w) {
  return w->held != NULL || shoal__inbox_nonempty(&w->inbox);
}

int shoal__has_local_work(shoal_worker *c) {
  shoal__worker *w = shoal__worker_of(c);
  return shoal__deque_size_hint(&w->dq) != 0 || inbox_visible(w) ||
         atomic_load_explicit(&w->rt->inject.tail, memory_order_relaxed) !=
             atomic_load_explicit(&w->rt->inject.head, memory_order_relaxed);
}

shoal__task *shoal__find_work(shoal__worker *w) {
  shoal__task *t = shoal__deque_take_owner(&w->dq);
  void *x;
  if (t != NULL)
    return t;
  if (inbox_visible(w) && (t = inbox_take(w)) != NULL)
    return t;
  if (shoal__mpmc_try_pop(&w->rt->inject, &x) == SHOAL_OK)
    return x;
  return shoal__steal_round(w);
}

/* ------------------------------------------------------------------------ */
/* Parking                                                                  */
/* ------------------------------------------------------------------------ */

static void unpark(shoal__worker *w) {
  /* release: pairs with the acquire load in park's loop. */
  atomic_store_explicit(&w->park, SHOAL__PARK_AWAKE, memory_order_release);
  shoal__futex_wake(&w->park, 1);
}

/* Clears w's idle bit; 1 when this call cleared it (so the caller owns the
 * wake-up). */
static int claim_idle(shoal_runtime *rt, unsigned i) {
  uint64_t bit = (uint64_t)1 << (i & 63);
  return (atomic_fetch_and_explicit(&rt->idle_bits[i >> 6], ~bit,
                                    memory_order_acq_rel) &
          bit) != 0;
}

static void wake_one(shoal_runtime *rt) {
  for (unsigned k = 0; k < rt->nwords; k++) {
    uint64_t b = atomic_load_explicit(&rt->idle_bits[k], memory_order_relaxed);
    while (b != 0) {
      unsigned i = k * 64 + (unsigned)__builtin_ctzll(b);
      if (claim_idle(rt, i)) {
        unpark(rt->w[i]);
        return;
      }
      b &= b - 1;
    }
  }
}

void shoal__wake_worker(shoal_runtime *rt, unsigned i) {
  if (claim_idle(rt, i))
    unpark(rt->w[i]);
}

void shoal__signal_work(shoal_runtime *rt) {
  /* Dekker fence: the push before the loads below; pairs with the one a
   * parker runs between setting its idle bit and re-checking the queues. */
  shoal__dekker(rt);
  if ((atomic_load_explicit(&rt->wanted, memory_order_relaxed) &
       SHOAL__SEARCHING) != 0)
    return; /* a searcher will find it */
  wake_one(rt);
}

/* A worker's own flag mirrored in a runtime-wide count (one of the halves
 * of rt->wanted, `one` its unit): the count changes only when the flag
 * does. */
static void count_flag(shoal__worker *w, int *flag, uint64_t one, int on,
                       memory_order order) {
  if (*flag == on)
    return;
  *flag = on;
  if (on)
    atomic_fetch_add_explicit(&w->rt->wanted, one, order);
  else
    atomic_fetch_sub_explicit(&w->rt->wanted, one, order);
}

void shoal__set_wanting(shoal__worker *w, int on) {
  /* relaxed: a hint for spawn; a late view only delays publication. */
  count_flag(w, &w->wanting, SHOAL__WANT_ONE, on, memory_order_relaxed);
}

static void set_searching(shoal__worker *w, int on) {
  /* seq_cst: read by shoal__signal_work after its Dekker fence. */
  count_flag(w, &w->searching, SHOAL__SEARCH_ONE, on, memory_order_seq_cst);
}

/* A searcher that found work stops searching and wanting: one RMW for
 * both (seq_cst, as set_searching's). */
static void found_work(shoal__worker *w) {
  uint64_t d = (w->searching ? SHOAL__SEARCH_ONE : 0) +
               (w->wanting ? SHOAL__WANT_ONE : 0);
  w->searching = w->wanting = 0;
  if (d != 0)
    atomic_fetch_sub_explicit(&w->rt->wanted, d, memory_order_seq_cst);
}

static uint32_t searching_now(shoal_runtime *rt) {
  return (uint32_t)(atomic_load_explicit(&rt->wanted, memory_order_relaxed) >>
                    32);
}

/* When the host enters at a steady period, the time its next entry is due;
 * 0 when there is no steady period to anticipate. */
static uint64_t entry_due(shoal_runtime *rt, uint64_t now) {
  uint64_t last =
      atomic_load_explicit(&rt->entry_last_ns, memory_order_relaxed);
  uint64_t period =
      atomic_load_explicit(&rt->entry_period_ns, memory_order_relaxed);
  uint64_t lead = (uint64_t)rt->cfg.anticipate_us * 1000u;
  if (lead == 0 || period == 0 || period < 4 * lead || last == 0)
    return 0;
  if (now > last + 2 * period)
    return 0; /* the ticks stopped: sleep without a deadline */
  return last + period;
}

typedef struct idle_exit {
  int (*done)(void *); /* NULL: leave only when stopping */
  void *arg;
  uint64_t deadline; /* leave then too (shoal__now_ns); 0 never */
} idle_exit;

/* A worker's own loop (no condition, no deadline) ends past the live
 * count: the worker was removed (workers.c). */
static int removed(const shoal__worker *w, const idle_exit *ex) {
  return ex->done == NULL && ex->deadline == 0 &&
         w->index >= shoal__live(w->rt);
}

static int should_leave(shoal__worker *w, const idle_exit *ex) {
  if (ex->deadline != 0 && shoal__now_ns() >= ex->deadline)
    return 1;
  if (ex->done != NULL)
    return ex->done(ex->arg);
  return atomic_load_explicit(&w->rt->stopping, memory_order_acquire) != 0 ||
         removed(w, ex);
}

/* Sleeps until woken, or until the anticipation deadline. */
static void park(shoal__worker *w, const idle_exit *ex, uint64_t wake_at) {
  shoal_runtime *rt = w->rt;
  uint64_t bit = (uint64_t)1 << (w->index & 63);
  atomic_store_explicit(&w->park, SHOAL__PARK_ASLEEP, memory_order_relaxed);
  atomic_fetch_or_explicit(&rt->idle_bits[w->index >> 6], bit,
                           memory_order_seq_cst);
  /* Dekker fence: the idle bit before the re-check; pairs with the one in
   * shoal__signal_work, in destroy and in shoal__ext_notify. */
  shoal__dekker(rt);
  if (work_visible(rt) || inbox_visible(w) || should_leave(w, ex)) {
    if (!claim_idle(rt, w->index)) /* a waker claimed us first */
      w->local[SHOAL__ST_WAKES]++;
    return;
  }
  shoal__stats_flush(w);
  w->local[SHOAL__ST_PARKS]++;
  for (;;) {
    uint64_t timeout = 0;
    if (wake_at != 0) {
      uint64_t now = shoal__now_ns();
      if (now >= wake_at)
        break;
      timeout = wake_at - now;
    }
    shoal__futex_wait(&w->park, SHOAL__PARK_ASLEEP, timeout);
    /* acquire: pairs with the release store in unpark. */
    if (atomic_load_explicit(&w->park, memory_order_acquire) ==
        SHOAL__PARK_AWAKE) {
      w->local[SHOAL__ST_WAKES]++;
      return;
    }
  }
  /* Woke on its own deadline: take the bit back unless a waker did. */
  if (!claim_idle(rt, w->index))
    w->local[SHOAL__ST_WAKES]++;
}

/* The idle path: look for work for a bounded time (at most half the
 * workers at once, as Go's scheduler throttles spinning Ms), then park.
 * Returns a task, or NULL when the exit condition holds. */
static shoal__task *idle(shoal__worker *w, const idle_exit *ex) {
  shoal_runtime *rt = w->rt;
  uint64_t spin_ns = (uint64_t)rt->cfg.spin_us * 1000u;
  uint64_t lead = (uint64_t)rt->cfg.anticipate_us * 1000u;
  if (w->busy_since != 0) {
    w->local[SHOAL__ST_BUSY] += shoal__fast_ns() - w->busy_since;
    w->busy_since = 0;
  }
  shoal__set_wanting(w, 1);
  for (;;) {
    uint64_t now = shoal__now_ns(), due = entry_due(rt, now), deadline;
    unsigned live = shoal__live(rt), limit = live / 2 > 0 ? live / 2 : 1;
    shoal__task *t = NULL;
    if (should_leave(w, ex))
      break;
    deadline = now + spin_ns;
    /* Inside the window around a due entry, keep looking until it has
     * come (or the window has passed): waking costs tens of µs. */
    if (due != 0 && now + lead >= due && deadline < due + lead)
      deadline = due + lead;
    if (searching_now(rt) < limit) {
      set_searching(w, 1);
      for (unsigned spins = 0;; spins++) {
        if ((t = shoal__find_work(w)) != NULL || should_leave(w, ex))
          break;
        if ((spins & 15) == 15 && shoal__now_ns() >= deadline)
          break;
        for (unsigned i = 0; i < rt->poll_relax; i++)
          shoal__cpu_relax();
      }
      if (t != NULL) {
        found_work(w);
        /* The last searcher to find work wakes another if more is
         * waiting, so that parallelism spreads (Go's wakep). */
        if (searching_now(rt) == 0 && work_visible(rt))
          wake_one(rt);
        w->busy_since = shoal__fast_ns();
        return t;
      }
      set_searching(w, 0);
      if (should_leave(w, ex))
        break;
    } else if ((t = shoal__find_work(w)) != NULL) {
      shoal__set_wanting(w, 0);
      w->busy_since = shoal__fast_ns();
      return t;
    }
    now = shoal__now_ns();
    due = entry_due(rt, now);
    {
      uint64_t wake_at = due != 0 && now + lead < due ? due - lead : 0;
      if (ex->deadline != 0 && (wake_at == 0 || ex->deadline < wake_at))
        wake_at = ex->deadline;
      park(w, ex, wake_at);
    }
  }
  shoal__set_wanting(w, 0);
  return NULL;
}

int shoal__work_until_deadline(shoal__worker *w, shoal_worker *at,
                               int (*done)(void *), void *arg,
                               uint64_t deadline_ns) {
  idle_exit ex = {done, arg, deadline_ns};
  int held = 0;
  uint64_t bit = (uint64_t)1 << (w->index & 63);
  if (done != NULL && w->group_waits++ == 0)
    atomic_fetch_or_explicit(&w->rt->wait_bits[w->index >> 6], bit,
                             memory_order_seq_cst);
  for (;;) {
    shoal__task *t;
    if (done != NULL && done(arg)) {
      held = 1;
      break;
    }
    if (deadline_ns != 0 && shoal__now_ns() >= deadline_ns)
      break;
    if (removed(w, &ex))
      break;
    t = shoal__find_work(w);
    if (t == NULL && (t = idle(w, &ex)) == NULL) {
      if (done == NULL && deadline_ns == 0)
        break;  /* stopping */
      continue; /* the checks above say why idle returned */
    }
    shoal__run_taken_at(w, at, t);
  }
  if (done != NULL && --w->group_waits == 0)
    atomic_fetch_and_explicit(&w->rt->wait_bits[w->index >> 6], ~bit,
                              memory_order_relaxed);
  return held;
}

/* ------------------------------------------------------------------------ */
/* Threads outside the workers                                              */
/* ------------------------------------------------------------------------ */

void shoal__ext_notify(shoal_runtime *rt, int finished) {
  /* Dekker fence: the state change before the loads; pairs with the one
   * in shoal__ext_wait and in park. */
  shoal__dekker(rt);
  for (unsigned k = 0; finished && k < rt->nwords; k++) {
    uint64_t b = atomic_load_explicit(&rt->wait_bits[k], memory_order_relaxed);
    for (; b != 0; b &= b - 1) {
      unsigned i = k * 64 + (unsigned)__builtin_ctzll(b);
      if (claim_idle(rt, i))
        unpark(rt->w[i]);
    }
  }
  if (atomic_load_explicit(&rt->ext_waiters, memory_order_relaxed) == 0)
    return;
  atomic_fetch_add_explicit(&rt->ext_epoch, 1, memory_order_release);
  shoal__futex_wake(&rt->ext_epoch, INT_MAX);
}

int shoal__ext_wait_until(shoal_runtime *rt, int (*cond)(void *), void *arg,
                          uint64_t deadline_ns) {
  int held = 0;
  atomic_fetch_add_explicit(&rt->ext_waiters, 1, memory_order_seq_cst);
  for (;;) {
    uint32_t e = atomic_load_explicit(&rt->ext_epoch, memory_order_acquire);
    uint64_t timeout = 0;
    /* Dekker fence: registered and epoch read before the re-check. */
    shoal__dekker(rt);
    if (cond(arg)) {
      held = 1;
      break;
    }
    if (deadline_ns != 0) {
      uint64_t now = shoal__now_ns();
      if (now >= deadline_ns)
        break;
      timeout = deadline_ns - now;
    }
    shoal__futex_wait(&rt->ext_epoch, e, timeout);
  }
  atomic_fetch_sub_explicit(&rt->ext_waiters, 1, memory_order_relaxed);
  return held;
}

void shoal__ext_wait(shoal_runtime *rt, int (*cond)(void *), void *arg) {
  (void)shoal__ext_wait_until(rt, cond, arg, 0);
}

typedef struct wait_arg {
  shoal_runtime *rt;
  int (*cond)(void *);
  void *arg;
} wait_arg;

static int cond_or_host_free(void *p) {
  wait_arg *a = p;
  return a->cond(a->arg) ||
         atomic_load_explicit(&a->rt->host, memory_order_relaxed) == 0;
}

int shoal__wait_until(shoal_runtime *rt, int (*cond)(void *), void *arg,
                      uint64_t deadline_ns) {
  shoal__worker *w = shoal__self(rt);
  wait_arg a = {rt, cond, arg};
  if (w != NULL)
  {
    /* From a task, whose frames' end is not known here. */
    shoal__level l;
    shoal_worker *at = shoal__level_enter(w, &l);
    int held = shoal__work_until_deadline(w, at, cond, arg, deadline_ns);
    shoal__level_leave(w, &l);
    return held;
  }
  for (;;) {
    if (cond(arg))
      return 1;
    if (deadline_ns != 0 && shoal__now_ns() >= deadline_ns)
      return 0;
    if (shoal__host_try_enter(rt)) {
      int held = shoal__work_until_deadline(rt->w[0], rt->w[0]->base, cond,
                                            arg, deadline_ns);
      shoal__host_leave(rt);
      if (held)
        return 1;
      continue;
    }
    (void)shoal__ext_wait_until(rt, cond_or_host_free, &a, deadline_ns);
  }
}

/* ------------------------------------------------------------------------ */
/* Tasks handed to a worker                                                 */
/* ------------------------------------------------------------------------ */

/* A worker for a task submitted from outside: a parked one (its idle bit
 * claimed: the caller must unpark it), else the next in turn. Worker 0 is
 * the host's slot and only chosen when it is the only one. */
static unsigned pick_target(shoal_runtime *rt, int *claimed) {
  unsigned i, live = shoal__live(rt);
  *claimed = 0;
  if (live == 1)
    return 0;
  for (unsigned k = 0; k < rt->nwords; k++) {
    uint64_t b = atomic_load_explicit(&rt->idle_bits[k], memory_order_relaxed);
    if (k == 0)
      b &= ~(uint64_t)1;
    for (; b != 0; b &= b - 1) {
      i = k * 64 + (unsigned)__builtin_ctzll(b);
      if (claim_idle(rt, i)) {
        *claimed = 1;
        return i;
      }
    }
  }
  i = atomic_fetch_add_explicit(&rt->next_target, 1, memory_order_relaxed);
  return 1 + i % (live - 1);
}

void shoal__submit(shoal_runtime *rt, shoal__task *t, int home, int quiet) {
  shoal__worker *w = shoal__self(rt);
  int claimed = 0;
  unsigned target;
  if (home == SHOAL__ANY && w != NULL) {
    if (shoal__deque_push_owner(&w->dq, t) == SHOAL_OK) {
      if (!quiet)
        shoal__signal_work(rt);
      return;
    }
    target = w->index; /* no memory for the deque to grow: own inbox */
  } else if (home < 0) {
    target = pick_target(rt, &claimed);
  } else {
    unsigned live = shoal__live(rt);
    target = (unsigned)home;
    if (target >= live) /* its worker was removed: another one's */
      target = live > 1 ? 1 + target % (live - 1) : 0;
  }
  shoal__inbox_push(&rt->w[target]->inbox, &t->link);
  if (claimed) {
    unpark(rt->w[target]);
    return;
  }
  if (w != NULL && w->index == target)
    return; /* it looks at its own inbox before it parks */
  /* Dekker fence: the push before the idle bit and the retired flag;
   * pairs with park's, and with the one a retiring worker runs between
   * setting the flag and taking its inbox for the last time. */
  shoal__dekker(rt);
  if (claim_idle(rt, target))
    unpark(rt->w[target]);
  else if (atomic_load_explicit(&rt->w[target]->retired,
                                memory_order_relaxed))
    shoal__adopt(rt, target); /* it left after this thread read the count */
}

int shoal__host_try_enter(shoal_runtime *rt) {
  uint32_t free_ = 0;
  shoal__worker *w = rt->w[0];
  /* acquire: pairs with the release in shoal__host_leave, so that the
   * previous holder's use of worker 0 happens before ours. */
  if (!atomic_compare_exchange_strong_explicit(
          &rt->host, &free_, 1, memory_order_acquire, memory_order_relaxed))
    return 0;
  rt->host_saved = tls_worker;
  tls_worker = w;
  w->busy_since = shoal__fast_ns();
  return 1;
}

void shoal__host_leave(shoal_runtime *rt) {
  shoal__worker *w = rt->w[0];
  shoal__task *t;
  /* Closures the host pushed on worker 0's deque run before it leaves:
   * nobody may be left to run them. (An empty deque is seen without a
   * take's writes to `bottom`, a line the searching workers read.) */
  while (shoal__deque_size_hint(&w->dq) != 0 &&
         (t = shoal__deque_take_owner(&w->dq)) != NULL)
    shoal__run_taken_at(w, w->base, t);
  if (w->busy_since != 0) {
    w->local[SHOAL__ST_BUSY] += shoal__fast_ns() - w->busy_since;
    w->busy_since = 0;
  }
  shoal__stats_flush(w);
  tls_worker = rt->host_saved;
  /* release: our use of worker 0 before the next holder's. */
  atomic_store_explicit(&rt->host, 0, memory_order_release);
  shoal__ext_notify(rt, 0);
}

