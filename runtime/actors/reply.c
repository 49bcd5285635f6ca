/* reply.c — request-reply for threads outside handlers: shoal_call and
 * shoal_call_many wait on a waiter record (a fixed pool, so a call does not
 * allocate) whose address travels as the request's `from`; replies to it
 * are copied into the caller's buffer. A reply that comes after the call
 * has given up is dropped and counted, never written into memory the
 * caller has taken back. */
#include <sched.h>

#include "runtime/actors/actor.h"

int shoal__waiters_init(shoal_actors *sys) {
  unsigned n = sys->cfg.host_waiters;
  int rc;
  if (n == 0)
    return SHOAL_OK;
  sys->waiters = shoal__aligned_alloc(SHOAL__FALSE_SHARING,
                                      n * sizeof *sys->waiters);
  if (sys->waiters == NULL)
    return SHOAL_ENOMEM;
  if ((rc = shoal__mpmc_init(&sys->free_waiters, n)) != SHOAL_OK)
    return rc;
  atomic_init(&sys->waiters_held, 0);
  for (unsigned i = 0; i < n; i++) {
    shoal__waiter *wt = &sys->waiters[i];
    atomic_init(&wt->seq, 0);
    atomic_init(&wt->inflight, 0);
    atomic_init(&wt->got, 0);
    wt->out = NULL;
    wt->cap = 0;
    shoal__mpmc_push_held(&sys->free_waiters, (void *)(uintptr_t)(i + 1));
  }
  return SHOAL_OK;
}

#define TAKE_SPINS 64u /* pauses before a wait for a giver yields */

/* A free waiter into *x, or SHOAL_EAGAIN when host_waiters calls hold
 * one each. The reservation comes first, as the pools' count does: the
 * queue's pop also fails while the push of its cell is unfinished (a call
 * giving its waiter back, perhaps preempted between its two steps), and
 * that is not "all in use". A reservation that succeeded waits for that
 * push: the cells out of the queue are held by calls that reserved before
 * it, so one is there or on its way. */
static int take_waiter(shoal_actors *sys, void **x) {
  unsigned spins = 0;
  if (sys->waiters == NULL ||
      atomic_fetch_add_explicit(&sys->waiters_held, 1, memory_order_relaxed) >=
          sys->cfg.host_waiters) {
    if (sys->waiters != NULL)
      atomic_fetch_sub_explicit(&sys->waiters_held, 1, memory_order_relaxed);
    return SHOAL_EAGAIN;
  }
  while (shoal__mpmc_try_pop(&sys->free_waiters, x) != SHOAL_OK) {
    if (++spins < TAKE_SPINS)
      shoal__cpu_relax();
    else
      sched_yield(); /* the giver may be off its CPU */
  }
  return SHOAL_OK;
}

/* x back to the free ones, then its reservation. */
static void give_waiter(shoal_actors *sys, void *x) {
  shoal__mpmc_push_held(&sys->free_waiters, x);
  atomic_fetch_sub_explicit(&sys->waiters_held, 1, memory_order_relaxed);
}

void shoal__waiters_destroy(shoal_actors *sys) {
  shoal__mpmc_destroy(&sys->free_waiters);
  shoal__free(sys->waiters);
  sys->waiters = NULL;
}

#define SEQ_MASK ((UINT64_C(1) << (62 - SHOAL__WAITER_BITS)) - 1)

static uint64_t address(unsigned slot, uint64_t seq) {
  return SHOAL__HOST_BIT | ((seq & SEQ_MASK) << SHOAL__WAITER_BITS) | slot;
}

/* A reply to a waiter's address. The reply and the caller's closing form
 * a Dekker pair: the reply announces itself (inflight) and then checks that
 * the call still waits; the caller closes and then waits for announced
 * replies to finish copying. Both sides use seq_cst, so at least one sees
 * the other. */
int shoal__deliver_reply(shoal_actors *sys, shoal_msg *m) {
  unsigned slot = (unsigned)(m->to & ((1u << SHOAL__WAITER_BITS) - 1));
  uint64_t seq = (m->to & ~SHOAL__HOST_BIT) >> SHOAL__WAITER_BITS;
  shoal__waiter *wt;
  uint32_t k;
  if (slot >= sys->cfg.host_waiters) {
    atomic_fetch_add_explicit(&sys->routing_failures, 1, memory_order_relaxed);
    return SHOAL_ENOENT;
  }
  wt = &sys->waiters[slot];
  atomic_fetch_add_explicit(&wt->inflight, 1, memory_order_seq_cst);
  if ((atomic_load_explicit(&wt->seq, memory_order_seq_cst) & SEQ_MASK) != seq) {
    atomic_fetch_sub_explicit(&wt->inflight, 1, memory_order_release);
    atomic_fetch_add_explicit(&sys->late_replies, 1, memory_order_relaxed);
    return SHOAL_OK; /* the call has given up: counted, not an error */
  }
  k = atomic_fetch_add_explicit(&wt->got, 1, memory_order_relaxed);
  if (k < wt->cap) {
    m->time_ns = shoal__fast_ns();
    wt->out[k] = *m;
  } else {
    atomic_fetch_add_explicit(&sys->late_replies, 1, memory_order_relaxed);
  }
  /* release: the copy before the count the caller acquires. */
  atomic_fetch_sub_explicit(&wt->inflight, 1, memory_order_release);
  shoal__ext_notify(sys->rt, 1);
  return SHOAL_OK;
}

typedef struct call_wait {
  shoal__waiter *wt;
  unsigned expected;
} call_wait;

static int replies_in(void *arg) {
  call_wait *c = arg;
  return atomic_load_explicit(&c->wt->got, memory_order_relaxed) >=
         c->expected;
}

int shoal_call_many(shoal_actors *sys, const uint64_t *to, unsigned n,
                    const shoal_msg *m, shoal_msg *replies,
                    unsigned timeout_ms, unsigned *got) {
  shoal__waiter *wt;
  void *x;
  unsigned slot, sent = 0, have;
  uint64_t seq, deadline = 0;
  call_wait cw;
  if (got != NULL)
    *got = 0;
  if (sys == NULL || m == NULL || (n != 0 && (to == NULL || replies == NULL)))
    return SHOAL_EINVAL;
  if (shoal__actor_current() != NULL)
    return SHOAL_ESTATE; /* a handler never blocks */
  if (n == 0)
    return SHOAL_OK;
  if (take_waiter(sys, &x) != SHOAL_OK)
    return SHOAL_EAGAIN;
  slot = (unsigned)((uintptr_t)x - 1);
  wt = &sys->waiters[slot];
  wt->out = replies;
  wt->cap = n;
  atomic_store_explicit(&wt->got, 0, memory_order_relaxed);
  /* seq_cst: opens the call (odd), the other half of deliver's Dekker. */
  seq = atomic_load_explicit(&wt->seq, memory_order_relaxed) + 1;
  atomic_store_explicit(&wt->seq, seq, memory_order_seq_cst);
  if (timeout_ms != 0)
    deadline = shoal__now_ns() + (uint64_t)timeout_ms * 1000000u;
  {
    shoal_msg c = *m;
    int rc = SHOAL_OK;
    c.from = address(slot, seq);
    c.flags = (uint8_t)((c.flags & ~SHOAL_MSG_REPLY) | SHOAL_MSG_REQUEST);
    c.corr = (uint32_t)seq;
    for (unsigned i = 0; i < n; i++) {
      shoal_msg d = c;
      int r = shoal__send(sys, to[i], &d);
      if (r == SHOAL_OK)
        sent++;
      else
        rc = r;
    }
    if (n == 1 && sent == 0) {
      atomic_store_explicit(&wt->seq, seq + 1, memory_order_seq_cst);
      give_waiter(sys, x);
      return rc;
    }
  }
  cw.wt = wt;
  cw.expected = sent;
  (void)shoal__wait_until(sys->rt, replies_in, &cw, deadline);
  /* Close, then wait out the replies already copying (a few stores). */
  atomic_store_explicit(&wt->seq, seq + 1, memory_order_seq_cst);
  while (atomic_load_explicit(&wt->inflight, memory_order_seq_cst) != 0)
    shoal__cpu_relax();
  /* The seq_cst loads of inflight acquired the copiers' decrements. */
  have = atomic_load_explicit(&wt->got, memory_order_acquire);
  if (have > n)
    have = n;
  give_waiter(sys, x);
  if (got != NULL)
    *got = have;
  return have == n ? SHOAL_OK : SHOAL_ETIMEDOUT;
}

int shoal_call(shoal_actors *sys, uint64_t to, const shoal_msg *m,
               shoal_msg *reply, unsigned timeout_ms) {
  unsigned got = 0;
  if (reply == NULL)
    return SHOAL_EINVAL;
  return shoal_call_many(sys, &to, 1, m, reply, timeout_ms, &got);
}
