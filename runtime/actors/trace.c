/* trace.c — message tracing (shoal.h, "Message tracing"): a message marked
 * SHOAL_MSG_TRACE, or one send in Actors.TraceEvery, gets a 16-bit trace
 * id that its reply and the copies sent on keep; each hop it makes is one
 * entry of a ring of the system's (Actors.TraceRing entries). A writer
 * takes an index with one fetch-add and writes the entry under its own
 * sequence word, odd while it writes (a seqlock per entry: Boehm, "Can
 * seqlocks get along with programming language memory models?", MSPC
 * 2012; the fields are relaxed atomics, read again if the word moved).
 * Off (no ring), a send pays the one branch that finds sys->trace NULL.
 * Readers copy the ring and sort by time: the list for one id, and Chrome
 * trace events with flow arrows from hop to hop. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/actors/actor.h"
#include "runtime/alloc.h"

typedef struct entry {
  _Atomic uint64_t seq; /* 2 * lap + 1 while written, 2 * lap + 2 after */
  _Atomic uint64_t ns, from, to, meta; /* meta: trace | kind << 16 |
                                          flags << 24 | worker + 1 << 32 */
  _Atomic int64_t status;
} entry;

/* Sampling counts down per sending thread: no line shared by senders. */
static _Thread_local uint32_t tls_countdown;

typedef struct shoal__trace {
  alignas(SHOAL__FALSE_SHARING) _Atomic uint64_t head; /* hops written */
  _Atomic uint32_t next_id;
  uint64_t mask;
  entry *ring;
} shoal__trace;

int shoal__trace_init(shoal_actors *sys) {
  shoal__trace *t;
  uint64_t n;
  if (sys->cfg.trace_ring == 0)
    return SHOAL_OK;
  n = shoal__pow2_at_least(sys->cfg.trace_ring);
  t = shoal__aligned_alloc(SHOAL__FALSE_SHARING, sizeof *t);
  if (t == NULL)
    return SHOAL_ENOMEM;
  memset(t, 0, sizeof *t);
  if ((t->ring = shoal__calloc(n, sizeof *t->ring)) == NULL) {
    shoal__free(t);
    return SHOAL_ENOMEM;
  }
  t->mask = n - 1;
  sys->trace = t;
  return SHOAL_OK;
}

void shoal__trace_free(shoal_actors *sys) {
  if (sys->trace == NULL)
    return;
  shoal__free(sys->trace->ring);
  shoal__free(sys->trace);
  sys->trace = NULL;
}

void shoal__trace_hop(shoal_actors *sys, const shoal_msg *m, uint64_t to,
                      int kind, int worker, int status) {
  shoal__trace *t = sys->trace;
  uint64_t i = atomic_fetch_add_explicit(&t->head, 1, memory_order_relaxed);
  entry *e = &t->ring[i & t->mask];
  uint64_t lap = 2 * (i / (t->mask + 1));
  atomic_store_explicit(&e->seq, lap + 1, memory_order_relaxed);
  /* release fence: the odd word before the fields (a reader that sees a
   * field of this write sees the word moved) */
  atomic_thread_fence(memory_order_release);
  atomic_store_explicit(&e->ns, shoal__now_ns(), memory_order_relaxed);
  atomic_store_explicit(&e->from, m->from, memory_order_relaxed);
  atomic_store_explicit(&e->to, to, memory_order_relaxed);
  atomic_store_explicit(&e->meta,
                        (uint64_t)m->trace | (uint64_t)(unsigned)kind << 16 |
                            (uint64_t)m->flags << 24 |
                            (uint64_t)(uint32_t)(worker + 1) << 32,
                        memory_order_relaxed);
  atomic_store_explicit(&e->status, status, memory_order_relaxed);
  /* release: the fields before the even word */
  atomic_store_explicit(&e->seq, lap + 2, memory_order_release);
}

int shoal__trace_worker(shoal_actors *sys) {
  shoal_worker *w = shoal__current(sys->rt);
  return w != NULL ? (int)shoal_worker_index(w) : -1;
}

int shoal__trace_send(shoal_actors *sys, shoal_actor *a, uint64_t gen,
                      shoal_msg *m) {
  shoal__trace *t = sys->trace;
  unsigned every = sys->cfg.trace_every;
  int rc = SHOAL_ENOENT, worker;
  if (m->trace == 0 &&
      ((m->flags & SHOAL_MSG_TRACE) || (every != 0 && tls_countdown-- == 0 &&
                                        (tls_countdown = every - 1, 1)))) {
    uint32_t id;
    do /* 1 … 65535 */
      id = atomic_fetch_add_explicit(&t->next_id, 1, memory_order_relaxed) &
           0xffffu;
    while (id == 0);
    m->trace = (uint16_t)id;
  }
  if (m->trace == 0)
    return a != NULL ? shoal__actor_push(a, gen, m, 0) : SHOAL_ENOENT;
  worker = shoal__trace_worker(sys);
  /* recorded before the push: its turn may run before we return */
  shoal__trace_hop(sys, m, m->to, SHOAL_HOP_SEND, worker, 0);
  if (a != NULL)
    rc = shoal__actor_push(a, gen, m, 0);
  if (rc != SHOAL_OK)
    shoal__trace_hop(sys, m, m->to, SHOAL_HOP_REFUSED, worker, rc);
  return rc;
}

/* ---- reading ------------------------------------------------------------- */

/* The entries written and not overwritten, copied whole, in time order;
 * *n of them. NULL for memory. */
static shoal_hop *snapshot(shoal__trace *t, unsigned only, size_t *n) {
  uint64_t head = atomic_load_explicit(&t->head, memory_order_acquire);
  uint64_t size = t->mask + 1, first = head > size ? head - size : 0;
  shoal_hop *h = shoal__malloc((head - first + 1) * sizeof *h);
  *n = 0;
  if (h == NULL)
    return NULL;
  for (uint64_t i = first; i < head; i++) {
    entry *e = &t->ring[i & t->mask];
    uint64_t want = 2 * (i / size) + 2, meta;
    shoal_hop x;
    if (atomic_load_explicit(&e->seq, memory_order_acquire) != want)
      continue; /* being written, or already a later lap */
    x.ns = atomic_load_explicit(&e->ns, memory_order_relaxed);
    x.from = atomic_load_explicit(&e->from, memory_order_relaxed);
    x.to = atomic_load_explicit(&e->to, memory_order_relaxed);
    meta = atomic_load_explicit(&e->meta, memory_order_relaxed);
    x.status = (int32_t)atomic_load_explicit(&e->status, memory_order_relaxed);
    /* acquire fence: the loads above before the word is read again */
    atomic_thread_fence(memory_order_acquire);
    if (atomic_load_explicit(&e->seq, memory_order_relaxed) != want)
      continue;
    x.trace = (uint16_t)meta;
    x.kind = (uint8_t)(meta >> 16);
    x.flags = (uint8_t)(meta >> 24);
    x.worker = (int32_t)(uint32_t)(meta >> 32) - 1;
    if (only == 0 || x.trace == only)
      h[(*n)++] = x;
  }
  return h;
}

static int by_time(const void *a, const void *b) {
  const shoal_hop *x = a, *y = b;
  return x->ns < y->ns ? -1 : x->ns > y->ns;
}

long shoal_actors_trace(shoal_actors *sys, unsigned trace, shoal_hop *out,
                        size_t cap) {
  shoal_hop *h;
  size_t n;
  if (sys == NULL || trace == 0 || trace > 0xffffu || (out == NULL && cap > 0))
    return SHOAL_EINVAL;
  if (sys->trace == NULL)
    return SHOAL_ENOTSUP;
  if ((h = snapshot(sys->trace, trace, &n)) == NULL)
    return SHOAL_ENOMEM;
  qsort(h, n, sizeof *h, by_time);
  memcpy(out, h, (n < cap ? n : cap) * sizeof *h);
  shoal__free(h);
  return (long)n;
}

static const char *const kind_name[] = {"send", "refused", "run", "drop"};

const char *shoal__hop_name(unsigned kind) {
  return kind < 4 ? kind_name[kind] : "hop";
}

int shoal_actors_trace_chrome(shoal_actors *sys, char *buf, size_t cap,
                              size_t *len) {
  shoal_hop *h;
  size_t n;
  shoal__text o = {buf, cap, 0};
  unsigned char *seen, *has_next;
  if (len != NULL)
    *len = 0;
  if (sys == NULL || len == NULL || (buf == NULL && cap > 0))
    return SHOAL_EINVAL;
  if (sys->trace == NULL)
    return SHOAL_ENOTSUP;
  if ((h = snapshot(sys->trace, 0, &n)) == NULL)
    return SHOAL_ENOMEM;
  seen = shoal__calloc(65536, 1);
  has_next = shoal__malloc(n + 1);
  if (seen == NULL || has_next == NULL) {
    shoal__free(seen);
    shoal__free(has_next);
    shoal__free(h);
    return SHOAL_ENOMEM;
  }
  qsort(h, n, sizeof *h, by_time);
  /* a hop's trace goes on after it: from the end back */
  for (size_t k = n; k-- > 0;) {
    has_next[k] = seen[h[k].trace];
    seen[h[k].trace] = 1;
  }
  memset(seen, 0, 65536);
  shoal__text_put(&o, "{\"traceEvents\":[");
  for (size_t k = 0; k < n; k++) {
    const shoal_hop *x = &h[k];
    double us = (double)x->ns / 1e3;
    int tid = x->worker >= 0 ? x->worker : 1000; /* 1000: outside */
    int first = !seen[x->trace], last = !has_next[k];
    seen[x->trace] = 1;
    shoal__text_put(
        &o,
        "%s{\"name\":\"%s\",\"cat\":\"actors\",\"ph\":\"X\",\"ts\":%.3f,"
        "\"dur\":1,\"pid\":1,\"tid\":%d,\"args\":{\"trace\":%u,\"from\":%llu,"
        "\"to\":%llu,\"flags\":%u,\"status\":%d}}",
        k == 0 ? "" : ",", shoal__hop_name(x->kind), us, tid, x->trace,
        (unsigned long long)x->from, (unsigned long long)x->to, x->flags,
        x->status);
    if (!(first && last))
      shoal__text_put(
          &o,
          ",{\"name\":\"trace %u\",\"cat\":\"actors\",\"ph\":\"%s\",%s"
          "\"id\":%u,\"ts\":%.3f,\"pid\":1,\"tid\":%d}",
          x->trace,
          first  ? "s"
          : last ? "f"
                 : "t",
          last ? "\"bp\":\"e\"," : "", x->trace, us, tid);
  }
  shoal__text_put(&o, "],\"displayTimeUnit\":\"ns\"}\n");
  shoal__free(seen);
  shoal__free(has_next);
  shoal__free(h);
  *len = o.len;
  if (o.len >= cap)
    return SHOAL_ENOSPC;
  return SHOAL_OK;
}
