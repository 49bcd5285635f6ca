/* dsched.c — the seeded scheduler of dsched.h and the hooks that
 * runtime/atomics.h calls in a SHOAL__DSCHED build. */
#include "dsched.h"

#include <pthread.h>
#include <semaphore.h>
#include <string.h>

#include "runtime/atomics.h"

#define BUF 32 /* stores a thread may have in flight */

typedef struct entry {
  void *p;
  size_t n;
  unsigned char v[8];
} entry;

typedef struct dthread {
  sem_t go;
  pthread_t th;
  ds_fn fn;
  void *arg;
  entry buf[BUF]; /* FIFO: buf[head], … buf[head + len - 1] */
  unsigned head, len;
  bool done;
} dthread;

/* The scheduler's state: touched only by the thread that runs (the baton
 * passes through the semaphores, which order the accesses). */
static struct {
  dthread t[DS_MAX_THREADS];
  int n, alive;
  uint64_t rng;
  unsigned drain_pct;  /* per point: chance of draining one store */
  unsigned switch_pct; /* per point: chance of a switch */
  uint64_t max_steps;
  ds_result *res;
  bool stuck;
  sem_t finished;
} S;

static _Thread_local int self = -1;

static uint64_t next_rand(void) { /* splitmix64 */
  uint64_t z = (S.rng += 0x9e3779b97f4a7c15u);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
  return z ^ (z >> 31);
}

static unsigned pick(unsigned n) { return (unsigned)(next_rand() % n); }

static void drain_one(dthread *t) {
  entry *e = &t->buf[t->head];
  memcpy(e->p, e->v, e->n);
  t->head = (t->head + 1) % BUF;
  t->len--;
  S.res->drains++;
}

static void drain_all(dthread *t) {
  while (t->len != 0)
    drain_one(t);
}

/* Any live thread, at random: n is small. */
static int pick_alive(void) {
  int k = (int)pick((unsigned)S.alive);
  for (int i = 0; i < S.n; i++)
    if (!S.t[i].done && k-- == 0)
      return i;
  return -1;
}

static void hand_to(int next) {
  int me = self;
  S.res->trace = (S.res->trace ^ (uint64_t)next) * 0x100000001b3u;
  if (next == me)
    return;
  sem_post(&S.t[next].go);
  sem_wait(&S.t[me].go);
}

/* A scheduling point: the current thread is about to make an access. */
static void point(void) {
  if (++S.res->steps > S.max_steps && !S.stuck) {
    S.stuck = true;
    S.res->stuck = true;
  }
  if (S.stuck) { /* give up interleaving: drain all, take turns */
    for (int i = 0; i < S.n; i++)
      drain_all(&S.t[i]);
    hand_to(pick_alive());
    return;
  }
  /* Stores reach memory on their own time, in FIFO order per thread. */
  while (pick(100) < S.drain_pct) {
    int i = (int)pick((unsigned)S.n);
    if (S.t[i].len == 0)
      break;
    drain_one(&S.t[i]);
  }
  if (pick(100) < S.switch_pct)
    hand_to(pick_alive());
}

static void *body(void *arg) {
  dthread *t = arg;
  self = (int)(t - S.t);
  sem_wait(&t->go);
  t->fn(t->arg);
  drain_all(t);
  t->done = true;
  if (--S.alive == 0)
    sem_post(&S.finished);
  else
    sem_post(&S.t[pick_alive()].go);
  return NULL;
}

void ds_run(uint64_t seed, int n, const ds_fn *fn, void *const *arg,
            uint64_t max_steps, ds_result *res) {
  static const unsigned drain[] = {2, 10, 30, 70};
  static const unsigned sw[] = {5, 20, 50, 100};
  memset(res, 0, sizeof *res);
  memset(&S, 0, sizeof S);
  S.rng = seed;
  S.n = S.alive = n;
  S.res = res;
  S.max_steps = max_steps;
  /* Each seed also picks how eagerly stores drain and threads switch:
   * rare switches find long solo runs, rare drains long-buffered stores. */
  S.drain_pct = drain[pick(4)];
  S.switch_pct = sw[pick(4)];
  sem_init(&S.finished, 0, 0);
  for (int i = 0; i < n; i++) {
    sem_init(&S.t[i].go, 0, 0);
    S.t[i].fn = fn[i];
    S.t[i].arg = arg[i];
    pthread_create(&S.t[i].th, NULL, body, &S.t[i]);
  }
  sem_post(&S.t[pick_alive()].go);
  sem_wait(&S.finished);
  for (int i = 0; i < n; i++) {
    pthread_join(S.t[i].th, NULL);
    sem_destroy(&S.t[i].go);
  }
  sem_destroy(&S.finished);
}

bool ds_stuck(void) { return S.stuck; }

/* The hooks. Outside a run (self < 0) they act on memory at once. */

static dthread *me(void) { return self >= 0 ? &S.t[self] : NULL; }

void shoal__ds_load(const void *p, void *out, size_t n, int mo) {
  dthread *t;
  (void)mo; /* every x86 load is an acquire load */
  if ((t = me()) == NULL) {
    memcpy(out, p, n);
    return;
  }
  point();
  /* A thread reads its own latest buffered store (store forwarding). */
  for (unsigned k = t->len; k-- > 0;) {
    entry *e = &t->buf[(t->head + k) % BUF];
    if (e->p == p && e->n == n) {
      memcpy(out, e->v, n);
      return;
    }
  }
  memcpy(out, p, n);
}

void shoal__ds_store(void *p, const void *v, size_t n, int mo) {
  dthread *t;
  entry *e;
  if ((t = me()) == NULL) {
    memcpy(p, v, n);
    return;
  }
  point();
  if (mo == memory_order_seq_cst) { /* XCHG: drains, then writes */
    drain_all(t);
    memcpy(p, v, n);
    return;
  }
  if (t->len == BUF)
    drain_one(t);
  e = &t->buf[(t->head + t->len) % BUF];
  e->p = p;
  e->n = n;
  memcpy(e->v, v, n);
  t->len++;
}

bool shoal__ds_cas(void *p, void *expected, const void *desired, size_t n,
                   bool weak) {
  dthread *t = me();
  if (t != NULL) {
    point();
    drain_all(t); /* LOCK CMPXCHG */
  }
  /* A weak CAS may fail spuriously (LL/SC machines do). */
  if (memcmp(p, expected, n) == 0 && !(weak && t != NULL && pick(8) == 0)) {
    memcpy(p, desired, n);
    return true;
  }
  memcpy(expected, p, n);
  return false;
}

void shoal__ds_rmw_begin(void *p, void *old, size_t n) {
  dthread *t = me();
  if (t != NULL) {
    point();
    drain_all(t);
  }
  memcpy(old, p, n);
}

void shoal__ds_rmw_end(void *p, const void *nv, size_t n) {
  memcpy(p, nv, n);
}

void shoal__ds_fence(int mo) {
  dthread *t = me();
  if (t == NULL)
    return;
  point();
  if (mo == memory_order_seq_cst) /* MFENCE */
    drain_all(t);
}
