/* validate.h — the queue validators of the torture tests, in Concurrency
 * Kit's regression style: every message carries a magic value, its
 * producer and a sequence number; the consumer checks all three, poisons
 * the slot it consumed, and counts double deliveries and order breaks.
 * Threads are pinned round-robin over the online CPUs (more threads than
 * cores), start at a barrier and stall at random. */
#ifndef SHOAL_TEST_VALIDATE_H
#define SHOAL_TEST_VALIDATE_H

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "runtime/common.h"

#define V_MAGIC 0x5ea1f00du
#define V_POISON 0xdeadbeefu
#define V_MAX_PRODUCERS 16

typedef struct vmsg {
  uint32_t magic;
  uint32_t producer;
  uint64_t seq;
} vmsg;

/* What one consumer saw. */
typedef struct vcheck {
  uint64_t next[V_MAX_PRODUCERS]; /* the sequence expected next */
  uint64_t consumed;
  uint64_t bad_magic;   /* magic wrong, or poison: a slot read twice */
  uint64_t bad_producer;
  uint64_t doubles;     /* a sequence number seen again */
  uint64_t gaps;        /* a sequence number skipped (FIFO per producer) */
} vcheck;

/* Checks one message and poisons it in place. `gaps_allowed`: messages
 * may be missing (a full queue dropped them) but never reordered. */
static inline void vcheck_msg(vcheck *c, vmsg *m, int gaps_allowed) {
  if (m->magic != V_MAGIC) {
    c->bad_magic++;
  } else if (m->producer >= V_MAX_PRODUCERS) {
    c->bad_producer++;
  } else if (m->seq < c->next[m->producer]) {
    c->doubles++;
  } else {
    if (m->seq > c->next[m->producer] && !gaps_allowed)
      c->gaps++;
    c->next[m->producer] = m->seq + 1;
  }
  c->consumed++;
  m->magic = V_POISON;
  m->seq = UINT64_MAX;
}

static inline uint64_t v_rng(uint64_t *s) {
  uint64_t x = *s;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return *s = x;
}

/* Now and then a short spin, rarely a yield: moves the interleavings. */
static inline void v_stall(uint64_t *rng) {
  uint64_t r = v_rng(rng);
  if ((r & 63) == 0) {
    for (unsigned i = (unsigned)(r >> 8) & 255; i > 0; i--)
      shoal__cpu_relax();
  }
  if ((r & 4095) == 1)
    sched_yield();
}

/* Pins the calling thread to online CPU (k mod count). Best effort. */
static inline void v_pin(unsigned k) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  cpu_set_t set;
  if (n <= 0)
    return;
  CPU_ZERO(&set);
  CPU_SET((int)(k % (unsigned)n), &set);
  (void)pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

static inline uint64_t v_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

#endif /* SHOAL_TEST_VALIDATE_H */
