/* torture.c — the torture run of the scheduler and the queues, in the
 * spirit of the kernel's rcutorture and locktorture: many more threads
 * than cores hammer the Chase-Lev deque, the MPSC, MPMC and SPSC queues,
 * the runtime (fork-join, parallel_for, task groups from outside threads)
 * and the actors, all at once, for a bounded time, while a stutter thread
 * pauses and resumes them all and a re-pin thread moves random threads of
 * the process to random CPUs. Every element carries its producer and
 * sequence, so each consumer checks what it takes: nothing lost, nothing
 * taken twice, FIFO where the structure promises it, the payload published
 * with the element. A kind that stops making progress while not paused is
 * a stall. The last line is
 *
 *   SUCCESS: <threads> threads x <s> s, <n> moved, 0 violations, …
 *   FAILURE: … <k> violations (the first ones printed above)
 *
 * and the exit status is 0 or 1 (2 for bad arguments). Built with
 * -Ddebug_yield=true, every access of the deque and the queues may also
 * yield. Built with SHOAL__DEQUE_BROKEN (torture_broken), the deque has one
 * ordering weakened and the run must end in FAILURE. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <time.h>
#include <unistd.h>

#include "runtime/sched/deque.h"
#include "runtime/sched/mpmc.h"
#include "runtime/actors/mpsc.h"
#include "bench/spsc.h"
#include "shoal.h"

/* ---- shared state: stop, stutter, progress, violations ---- */

enum { K_DEQUE, K_MPSC, K_MPMC, K_SPSC, K_RUNTIME, K_ACTORS, K_COUNT };
static const char *const kind_name[K_COUNT] = {"deque", "mpsc",    "mpmc",
                                               "spsc",  "runtime", "actors"};

static struct {
  _Atomic int stop;
  _Atomic int paused;
  pthread_mutex_t lock; /* paused's waiters; the violation log */
  pthread_cond_t resume;
  _Atomic uint64_t moved[K_COUNT]; /* elements checked, per kind */
  _Atomic uint64_t violations;
  _Atomic uint64_t stutters, repins, threads;
  _Atomic unsigned finished; /* threads of th[] that have returned */
  unsigned enabled; /* bit per kind */
  int shown;
} G = {.lock = PTHREAD_MUTEX_INITIALIZER, .resume = PTHREAD_COND_INITIALIZER};

static void violation(const char *fmt, ...) SHOAL__PRINTF(1, 2);
static void violation(const char *fmt, ...) {
  va_list ap;
  atomic_fetch_add(&G.violations, 1);
  pthread_mutex_lock(&G.lock);
  if (G.shown++ < 10) {
    va_start(ap, fmt);
    fputs("violation: ", stdout);
    vprintf(fmt, ap);
    fputc('\n', stdout);
    fflush(stdout);
    va_end(ap);
  }
  pthread_mutex_unlock(&G.lock);
}

static bool stopping(void) {
  return atomic_load_explicit(&G.stop, memory_order_relaxed) != 0;
}

/* Blocks while the stutter thread holds everything paused. */
static void stutter_wait(void) {
  if (atomic_load_explicit(&G.paused, memory_order_acquire) == 0)
    return;
  pthread_mutex_lock(&G.lock);
  while (atomic_load(&G.paused) && !stopping())
    pthread_cond_wait(&G.resume, &G.lock);
  pthread_mutex_unlock(&G.lock);
}

static void moved(int kind, uint64_t n) {
  atomic_fetch_add_explicit(&G.moved[kind], n, memory_order_relaxed);
}

static uint64_t splitmix(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15u);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
  return z ^ (z >> 31);
}

static uint64_t mix(uint64_t x) {
  uint64_t s = x;
  return splitmix(&s);
}

typedef struct start_arg {
  void *(*fn)(void *);
  void *arg;
} start_arg;

static void *started(void *p) {
  start_arg a = *(start_arg *)p;
  free(p);
  a.fn(a.arg);
  atomic_fetch_add(&G.finished, 1);
  return NULL;
}

static void start_thread(pthread_t *t, void *(*fn)(void *), void *arg) {
  start_arg *a = malloc(sizeof *a);
  int rc;
  if (a == NULL) {
    fprintf(stderr, "torture: out of memory\n");
    exit(2);
  }
  a->fn = fn;
  a->arg = arg;
  rc = pthread_create(t, NULL, started, a);
  if (rc != 0) {
    fprintf(stderr, "torture: pthread_create: %s\n", strerror(rc));
    exit(2);
  }
  atomic_fetch_add(&G.threads, 1);
}

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static struct {
  unsigned seconds, threads, stutter_ms, repin_ms, stall_s, round;
  uint64_t seed;
} O = {10, 4, 500, 20, 20, 4096, 1};

/* ---- deque: one owner, thieves; rounds of O.round elements ---- */

static struct {
  shoal__deque d;
  pthread_barrier_t start, end;
  uint64_t *payload;         /* written plainly before each push */
  _Atomic unsigned char *seen;
  _Atomic uint64_t consumed;
  _Atomic int round_done, quit;
  _Atomic uint64_t round;
  unsigned thieves;
} DQ;

static void dq_record(void *x) {
  size_t i = (size_t)((uint64_t *)x - DQ.payload);
  uint64_t want, r = atomic_load_explicit(&DQ.round, memory_order_relaxed);
  if (i >= O.round) {
    violation("deque: %p is no element", x);
    return;
  }
  want = (r << 32) | i;
  /* A plain read: the push's release must have published it. */
  if (*(uint64_t *)x != want)
    violation("deque: element %zu of round %" PRIu64 " holds %" PRIx64, i, r,
              *(uint64_t *)x);
  atomic_fetch_add_explicit(&DQ.seen[i], 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&DQ.consumed, 1, memory_order_release);
}

static void *dq_owner(void *arg) {
  uint64_t rng = O.seed ^ 0xd00d;
  void *x;
  (void)arg;
  for (uint64_t r = 1;; r++) {
    stutter_wait();
    atomic_store(&DQ.quit, stopping());
    atomic_store(&DQ.round, r);
    pthread_barrier_wait(&DQ.start);
    if (atomic_load(&DQ.quit))
      break;
    for (size_t i = 0; i < O.round; i++) {
      DQ.payload[i] = (r << 32) | i;
      if (shoal__deque_push_owner(&DQ.d, &DQ.payload[i]) != SHOAL_OK)
        violation("deque: push failed");
      if (splitmix(&rng) % 4 == 0 && (x = shoal__deque_take_owner(&DQ.d)))
        dq_record(x);
    }
    while ((x = shoal__deque_take_owner(&DQ.d)) != NULL)
      dq_record(x);
    /* Thieves finish the elements they hold; a lost one stalls here and
     * the watchdog reports it. */
    while (atomic_load_explicit(&DQ.consumed, memory_order_acquire) <
           O.round)
      sched_yield();
    atomic_store(&DQ.round_done, 1);
    pthread_barrier_wait(&DQ.end);
    for (size_t i = 0; i < O.round; i++) {
      unsigned n = atomic_load(&DQ.seen[i]);
      if (n != 1)
        violation("deque: round %" PRIu64 ": element %zu taken %u times", r,
                  i, n);
      atomic_store(&DQ.seen[i], 0);
    }
    atomic_store(&DQ.consumed, 0);
    atomic_store(&DQ.round_done, 0);
    moved(K_DEQUE, O.round);
  }
  return NULL;
}

static void *dq_thief(void *arg) {
  (void)arg;
  for (;;) {
    unsigned misses = 0;
    pthread_barrier_wait(&DQ.start);
    if (atomic_load(&DQ.quit))
      break;
    while (!atomic_load_explicit(&DQ.round_done, memory_order_acquire)) {
      void *x;
      shoal__steal_rc rc = shoal__deque_steal(&DQ.d, &x);
      if (rc == SHOAL__STEAL_OK)
        dq_record(x);
      else if (rc == SHOAL__STEAL_EMPTY && ++misses % 32 == 0)
        sched_yield();
    }
    pthread_barrier_wait(&DQ.end);
  }
  return NULL;
}

/* ---- mpsc: producers, one consumer that goes idle and sleeps ---- */

SHOAL__MPSC_DEFINE(t_mpsc, uint64_t)

#define PSHIFT 40 /* element: producer << PSHIFT | sequence */
static struct {
  t_mpsc q;
  sem_t wake;
  unsigned producers;
  _Atomic unsigned done;
  uint64_t produced[64];
  _Atomic uint64_t wakes, full;
} MS;

static void *ms_producer(void *arg) {
  uint64_t p = (uint64_t)(uintptr_t)arg, seq = 0;
  while (!stopping()) {
    uint64_t x = (p << PSHIFT) | seq;
    int rc;
    if ((seq & 255) == 0)
      stutter_wait();
    rc = t_mpsc_try_push(&MS.q, 0, &x);
    if (rc == SHOAL_EAGAIN) {
      atomic_fetch_add_explicit(&MS.full, 1, memory_order_relaxed);
      sched_yield();
      continue;
    }
    if (rc == SHOAL__MPSC_WOKE) {
      atomic_fetch_add_explicit(&MS.wakes, 1, memory_order_relaxed);
      sem_post(&MS.wake);
    } else if (rc != SHOAL_OK) {
      violation("mpsc: push returned %d", rc);
    }
    seq++;
  }
  MS.produced[p] = seq;
  atomic_fetch_add_explicit(&MS.done, 1, memory_order_release);
  sem_post(&MS.wake); /* the consumer may sleep with nothing left to come */
  return NULL;
}

static void ms_take(uint64_t *next, uint64_t x) {
  uint64_t p = x >> PSHIFT, s = x & ((UINT64_C(1) << PSHIFT) - 1);
  if (p >= MS.producers || s != next[p])
    violation("mpsc: producer %" PRIu64 " element %" PRIu64
              " where %" PRIu64 " was due",
              p, s, p < MS.producers ? next[p] : 0);
  else
    next[p]++;
  moved(K_MPSC, 1);
}

static void *ms_consumer(void *arg) {
  uint64_t next[64] = {0}, x, seen;
  (void)arg;
  for (;;) {
    if (t_mpsc_try_pop(&MS.q, &x) == SHOAL_OK) {
      ms_take(next, x);
      continue;
    }
    if (atomic_load_explicit(&MS.done, memory_order_acquire) ==
        MS.producers) {
      /* Every push has finished: one more look, then it is empty. */
      if (t_mpsc_try_pop(&MS.q, &x) != SHOAL_OK)
        break;
      ms_take(next, x);
      continue;
    }
    if (t_mpsc_try_idle(&MS.q, 0, &seen) == 1)
      sem_wait(&MS.wake); /* a push that clears the idle bit posts */
  }
  for (unsigned p = 0; p < MS.producers; p++)
    if (next[p] != MS.produced[p])
      violation("mpsc: producer %u pushed %" PRIu64 ", %" PRIu64 " came out",
                p, MS.produced[p], next[p]);
  return NULL;
}

/* ---- mpmc: producers and consumers; count, sum and hash per producer --- */

static struct {
  shoal__mpmc q;
  unsigned producers, consumers;
  _Atomic unsigned done;
  uint64_t produced[64], hash[64];
  _Atomic uint64_t count[64], sum[64], hsum[64];
} MM;

static void *mm_producer(void *arg) {
  uint64_t p = (uint64_t)(uintptr_t)arg, seq = 0, h = 0;
  while (!stopping()) {
    uintptr_t x = (uintptr_t)((p << PSHIFT) | (seq + 1));
    if ((seq & 255) == 0)
      stutter_wait();
    if (shoal__mpmc_try_push(&MM.q, (void *)x) != SHOAL_OK) {
      sched_yield();
      continue;
    }
    h += mix(seq);
    seq++;
  }
  MM.produced[p] = seq;
  MM.hash[p] = h;
  atomic_fetch_add_explicit(&MM.done, 1, memory_order_release);
  return NULL;
}

static void mm_take(int64_t *last, void *x) {
  uint64_t v = (uint64_t)(uintptr_t)x, p = v >> PSHIFT,
           s = (v & ((UINT64_C(1) << PSHIFT) - 1)) - 1;
  if (p >= MM.producers) {
    violation("mpmc: %" PRIx64 " is no element", v);
    return;
  }
  if ((int64_t)s <= last[p]) /* FIFO per producer, for one consumer */
    violation("mpmc: producer %" PRIu64 ": %" PRIu64 " after %" PRId64, p, s,
              last[p]);
  last[p] = (int64_t)s;
  atomic_fetch_add_explicit(&MM.count[p], 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&MM.sum[p], s, memory_order_relaxed);
  atomic_fetch_add_explicit(&MM.hsum[p], mix(s), memory_order_relaxed);
  moved(K_MPMC, 1);
}

static void *mm_consumer(void *arg) {
  int64_t last[64];
  void *x;
  (void)arg;
  for (unsigned p = 0; p < 64; p++)
    last[p] = -1;
  for (;;) {
    if (shoal__mpmc_try_pop(&MM.q, &x) == SHOAL_OK) {
      mm_take(last, x);
      continue;
    }
    if (atomic_load_explicit(&MM.done, memory_order_acquire) ==
        MM.producers) {
      if (shoal__mpmc_try_pop(&MM.q, &x) != SHOAL_OK)
        break;
      mm_take(last, x);
      continue;
    }
    sched_yield();
  }
  return NULL;
}

static void mm_check(void) {
  for (unsigned p = 0; p < MM.producers; p++) {
    uint64_t n = MM.produced[p];
    if (atomic_load(&MM.count[p]) != n || atomic_load(&MM.sum[p]) != n * (n - 1) / 2 ||
        atomic_load(&MM.hsum[p]) != MM.hash[p])
      violation("mpmc: producer %u pushed %" PRIu64 ", %" PRIu64
                " came out (sum %" PRIu64 ")",
                p, n, atomic_load(&MM.count[p]), atomic_load(&MM.sum[p]));
  }
}

/* ---- spsc: one producer, one consumer, strict order ---- */

SHOAL__SPSC_DEFINE(t_spsc, uint64_t)

static struct {
  t_spsc q;
  _Atomic int done;
  uint64_t produced;
} SP;

static void *sp_producer(void *arg) {
  uint64_t seq = 0;
  (void)arg;
  while (!stopping()) {
    if ((seq & 255) == 0)
      stutter_wait();
    if (t_spsc_try_push(&SP.q, seq) != SHOAL_OK) {
      sched_yield();
      continue;
    }
    seq++;
  }
  SP.produced = seq;
  atomic_store_explicit(&SP.done, 1, memory_order_release);
  return NULL;
}

static void *sp_consumer(void *arg) {
  uint64_t next = 0, x;
  (void)arg;
  for (;;) {
    if (t_spsc_try_pop(&SP.q, &x) != SHOAL_OK) {
      if (!atomic_load_explicit(&SP.done, memory_order_acquire)) {
        sched_yield();
        continue;
      }
      if (t_spsc_try_pop(&SP.q, &x) != SHOAL_OK)
        break;
    }
    if (x != next)
      violation("spsc: element %" PRIu64 " where %" PRIu64 " was due", x,
                next);
    next = x + 1;
    moved(K_SPSC, 1);
  }
  if (next != SP.produced)
    violation("spsc: %" PRIu64 " pushed, %" PRIu64 " came out", SP.produced,
              next);
  return NULL;
}

/* ---- runtime: fork-join, parallel_for and groups from two threads ---- */

static shoal_runtime *RT;

typedef struct fib_args {
  int n;
  long r;
} fib_args;

static long fib(shoal_worker *w, int n);
static void fib_task(shoal_worker *w, void *args) {
  fib_args *f = args;
  f->r = fib(w, f->n);
}
static long fib(shoal_worker *w, int n) {
  fib_args *f;
  long b;
  if (n < 2)
    return n;
  f = shoal_args(w);
  f->n = n - 1;
  b = fib(shoal_spawn(w, fib_task), n - 2);
  shoal_sync(w);
  return f->r + b;
}

typedef struct fib_call {
  int n;
  long r;
} fib_call;
static void fib_run(shoal_worker *w, void *ctx) {
  fib_call *c = ctx;
  c->r = fib(w, c->n);
}

#define PF_N 20000
typedef struct pf_ctx {
  uint32_t *count;
} pf_ctx;
static void pf_body(void *ctx, size_t b, size_t e) {
  pf_ctx *c = ctx;
  for (size_t i = b; i < e; i++)
    c->count[i]++; /* each index once per call: no race when correct */
}

static void closure_inc(void *ctx) {
  atomic_fetch_add_explicit((_Atomic uint64_t *)ctx, 1, memory_order_relaxed);
}

static void *rt_driver(void *arg) {
  uint32_t *count = calloc(PF_N, sizeof *count);
  uint64_t id = (uint64_t)(uintptr_t)arg;
  if (count == NULL)
    return NULL;
  for (uint32_t round = 1; !stopping(); round++) {
    fib_call fc = {.n = 20 + (int)(round % 3)};
    static const long want[] = {6765, 10946, 17711};
    pf_ctx pc = {count};
    shoal_group g;
    _Atomic uint64_t ran = 0;
    stutter_wait();
    if (shoal_runtime_run(RT, fib_run, &fc) != SHOAL_OK ||
        fc.r != want[fc.n - 20])
      violation("runtime %" PRIu64 ": fib(%d) = %ld", id, fc.n, fc.r);
    if (shoal_parallel_for(RT, 0, PF_N, 1 + round % 64, pf_body, &pc) !=
        SHOAL_OK)
      violation("runtime: parallel_for failed");
    for (size_t i = 0; i < PF_N; i++)
      if (count[i] != round) {
        violation("runtime %" PRIu64 ": index %zu ran %u times in %u rounds",
                  id, i, count[i], round);
        count[i] = round;
      }
    shoal_group_init(&g, RT);
    for (int i = 0; i < 500; i++)
      if (shoal_group_run(&g, closure_inc, (void *)&ran) != SHOAL_OK)
        violation("runtime: group_run failed");
    shoal_group_wait(&g);
    if (atomic_load(&ran) != 500)
      violation("runtime: %" PRIu64 " of 500 closures ran", atomic_load(&ran));
    moved(K_RUNTIME, PF_N + 500 + 1);
  }
  free(count);
  return NULL;
}

/* ---- actors: senders to a few actors; FIFO per sender ---- */

#define ACTORS 4
#define SENDERS 3
static struct {
  shoal_actors *sys;
  uint64_t next[ACTORS][SENDERS]; /* the handler's; one turn at a time */
  _Atomic uint64_t accepted, delivered;
} AC;

static void ac_handler(shoal_actor *self, void *state, const shoal_msg *m) {
  uint64_t a = (uint64_t)(uintptr_t)state, s = m->from - 1;
  (void)self;
  if (s >= SENDERS || m->payload.u64[0] != AC.next[a][s])
    violation("actors: actor %" PRIu64 " got %" PRIu64 " from %" PRIu64
              " where %" PRIu64 " was due",
              a, m->payload.u64[0], m->from,
              s < SENDERS ? AC.next[a][s] : 0);
  else
    AC.next[a][s]++;
  atomic_fetch_add_explicit(&AC.delivered, 1, memory_order_relaxed);
  moved(K_ACTORS, 1);
}

static void *ac_sender(void *arg) {
  uint64_t s = (uint64_t)(uintptr_t)arg, seq[ACTORS] = {0}, rng = O.seed + s;
  while (!stopping()) {
    uint64_t a = splitmix(&rng) % ACTORS;
    shoal_msg m;
    int rc;
    if ((seq[a] & 255) == 0)
      stutter_wait();
    memset(&m, 0, sizeof m);
    m.from = s + 1;
    m.payload.u64[0] = seq[a];
    rc = shoal_try_send(AC.sys, a + 1, &m);
    if (rc == SHOAL_OK) {
      seq[a]++;
      atomic_fetch_add_explicit(&AC.accepted, 1, memory_order_relaxed);
    } else if (rc == SHOAL_EAGAIN) {
      sched_yield();
    } else {
      violation("actors: send returned %s", shoal_err_name(rc));
    }
  }
  return NULL;
}

/* ---- stutter, re-pin, watchdog ---- */

static void *stutter_thread(void *arg) {
  (void)arg;
  while (!stopping()) {
    usleep(O.stutter_ms * 1000u);
    atomic_store(&G.paused, 1);
    atomic_fetch_add(&G.stutters, 1);
    usleep(O.stutter_ms * 250u);
    pthread_mutex_lock(&G.lock);
    atomic_store(&G.paused, 0);
    pthread_cond_broadcast(&G.resume);
    pthread_mutex_unlock(&G.lock);
  }
  return NULL;
}

/* Moves a random thread of the process to a random allowed CPU, or lets
 * it run anywhere again (one time in four). */
static void *repin_thread(void *arg) {
  cpu_set_t all;
  uint64_t rng = O.seed ^ 0x5eed;
  int cpus[CPU_SETSIZE], ncpu = 0;
  (void)arg;
  sched_getaffinity(0, sizeof all, &all);
  for (int c = 0; c < CPU_SETSIZE; c++)
    if (CPU_ISSET(c, &all))
      cpus[ncpu++] = c;
  while (!stopping() && ncpu > 0) {
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    pid_t tids[256];
    int n = 0;
    usleep(O.repin_ms * 1000u);
    if (d == NULL)
      break;
    while ((e = readdir(d)) != NULL && n < 256)
      if (e->d_name[0] != '.')
        tids[n++] = (pid_t)atoi(e->d_name);
    closedir(d);
    if (n == 0)
      continue;
    {
      pid_t tid = tids[splitmix(&rng) % (uint64_t)n];
      cpu_set_t one;
      CPU_ZERO(&one);
      CPU_SET(cpus[splitmix(&rng) % (uint64_t)ncpu], &one);
      /* A thread that has exited meanwhile refuses: not counted. */
      if (sched_setaffinity(tid, sizeof one,
                            splitmix(&rng) % 4 == 0 ? &all : &one) == 0)
        atomic_fetch_add(&G.repins, 1);
    }
  }
  /* Everyone may run anywhere for the drain. */
  return NULL;
}

static void usage(FILE *f) {
  fprintf(f,
          "usage: torture [options]\n"
          "  --seconds N     how long the load runs (10)\n"
          "  --threads N     threads per kind: thieves + 1, producers, "
          "consumers, runtime workers (4)\n"
          "  --stutter MS    run MS, pause MS/4, over and over; 0: never (500)\n"
          "  --repin MS      move a random thread to a random CPU every MS; "
          "0: never (20)\n"
          "  --stall S       a kind with no progress for S seconds while not "
          "paused is a violation (20)\n"
          "  --round N       deque elements per round (4096)\n"
          "  --only LIST     kinds, comma-separated: deque,mpsc,mpmc,spsc,"
          "runtime,actors (all)\n"
          "  --seed N        seeds the random choices (1)\n");
}

static int parse_uint(const char *opt, const char *s, unsigned lo,
                      unsigned hi, unsigned *out) {
  char *end;
  unsigned long v;
  errno = 0;
  v = strtoul(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi) {
    fprintf(stderr, "torture: %s wants a number in %u…%u, not '%s'\n", opt,
            lo, hi, s);
    return -1;
  }
  *out = (unsigned)v;
  return 0;
}

static int parse_only(const char *s) {
  char buf[128], *tok, *save = NULL;
  snprintf(buf, sizeof buf, "%s", s);
  G.enabled = 0;
  for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
    int k;
    for (k = 0; k < K_COUNT && strcmp(tok, kind_name[k]) != 0; k++)
      ;
    if (k == K_COUNT) {
      fprintf(stderr, "torture: --only: no kind '%s'\n", tok);
      return -1;
    }
    G.enabled |= 1u << k;
  }
  return G.enabled != 0 ? 0 : -1;
}

static int parse_args(int argc, char **argv) {
  static const struct option longs[] = {
      {"seconds", required_argument, NULL, 's'},
      {"threads", required_argument, NULL, 't'},
      {"stutter", required_argument, NULL, 'u'},
      {"repin", required_argument, NULL, 'p'},
      {"stall", required_argument, NULL, 'w'},
      {"round", required_argument, NULL, 'r'},
      {"only", required_argument, NULL, 'o'},
      {"seed", required_argument, NULL, 'e'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  int c, rc = 0;
  unsigned seed;
  G.enabled = (1u << K_COUNT) - 1;
  while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
    switch (c) {
    case 's': rc = parse_uint("--seconds", optarg, 1, 86400, &O.seconds); break;
    case 't': rc = parse_uint("--threads", optarg, 2, 60, &O.threads); break;
    case 'u': rc = parse_uint("--stutter", optarg, 0, 60000, &O.stutter_ms); break;
    case 'p': rc = parse_uint("--repin", optarg, 0, 60000, &O.repin_ms); break;
    case 'w': rc = parse_uint("--stall", optarg, 1, 3600, &O.stall_s); break;
    case 'r': rc = parse_uint("--round", optarg, 1, 1u << 24, &O.round); break;
    case 'o': rc = parse_only(optarg); break;
    case 'e':
      rc = parse_uint("--seed", optarg, 0, UINT32_MAX, &seed);
      O.seed = seed;
      break;
    case 'h': usage(stdout); exit(0);
    default: usage(stderr); return -1;
    }
    if (rc != 0)
      return -1;
  }
  if (optind != argc) {
    fprintf(stderr, "torture: unexpected argument '%s'\n", argv[optind]);
    return -1;
  }
  return 0;
}

static bool on(int k) { return (G.enabled >> k) & 1; }

int main(int argc, char **argv) {
  pthread_t th[256], aux[2];
  unsigned nth = 0, naux = 0, T;
  uint64_t total = 0, start, stop_at = 0, last[K_COUNT] = {0}, last_change[K_COUNT];
  shoal_runtime_config rc;
  shoal_actors_config ac;
  int failed = 0;
  if (parse_args(argc, argv) != 0)
    return 2;
  T = O.threads;
  setvbuf(stdout, NULL, _IOLBF, 0);

  if (on(K_DEQUE)) {
    DQ.thieves = T - 1;
    DQ.payload = calloc(O.round, sizeof *DQ.payload);
    DQ.seen = calloc(O.round, sizeof *DQ.seen);
    if (DQ.payload == NULL || DQ.seen == NULL ||
        shoal__deque_init(&DQ.d, 64) != SHOAL_OK)
      return 2;
    pthread_barrier_init(&DQ.start, NULL, T);
    pthread_barrier_init(&DQ.end, NULL, T);
    start_thread(&th[nth++], dq_owner, NULL);
    for (unsigned i = 0; i < DQ.thieves; i++)
      start_thread(&th[nth++], dq_thief, NULL);
  }
  if (on(K_MPSC)) {
    MS.producers = T - 1;
    t_mpsc_init(&MS.q, 64, SHOAL__MPSC_BACKPRESSURE, 0);
    sem_init(&MS.wake, 0, 0);
    for (unsigned i = 0; i < MS.producers; i++)
      start_thread(&th[nth++], ms_producer, (void *)(uintptr_t)i);
    start_thread(&th[nth++], ms_consumer, NULL);
  }
  if (on(K_MPMC)) {
    MM.producers = T / 2;
    MM.consumers = T - T / 2;
    shoal__mpmc_init(&MM.q, 256);
    for (unsigned i = 0; i < MM.producers; i++)
      start_thread(&th[nth++], mm_producer, (void *)(uintptr_t)i);
    for (unsigned i = 0; i < MM.consumers; i++)
      start_thread(&th[nth++], mm_consumer, NULL);
  }
  if (on(K_SPSC)) {
    t_spsc_init(&SP.q, 64);
    start_thread(&th[nth++], sp_producer, NULL);
    start_thread(&th[nth++], sp_consumer, NULL);
  }
  if (on(K_RUNTIME) || on(K_ACTORS)) {
    shoal_runtime_config_defaults(&rc);
    rc.workers = T;
    rc.pin = 0; /* the re-pin thread moves them instead */
    if (shoal_runtime_create(&RT, &rc) != SHOAL_OK) {
      fprintf(stderr, "torture: shoal_runtime_create failed\n");
      return 2;
    }
    atomic_fetch_add(&G.threads, T - 1);
  }
  if (on(K_RUNTIME))
    for (uintptr_t i = 0; i < 2; i++)
      start_thread(&th[nth++], rt_driver, (void *)i);
  if (on(K_ACTORS)) {
    shoal_actors_config_defaults(&ac);
    ac.queue_size = 64;
    if (shoal_actors_create(&AC.sys, RT, &ac) != SHOAL_OK)
      return 2;
    for (uintptr_t a = 0; a < ACTORS; a++) {
      shoal_actor_opts o;
      shoal_actor_opts_defaults(&o);
      o.handler = ac_handler;
      o.state = (void *)a;
      if (shoal_actor_register(AC.sys, a + 1, &o) != SHOAL_OK)
        return 2;
    }
    for (uintptr_t s = 0; s < SENDERS; s++)
      start_thread(&th[nth++], ac_sender, (void *)s);
  }
  if (O.stutter_ms != 0)
    start_thread(&aux[naux++], stutter_thread, NULL);
  if (O.repin_ms != 0)
    start_thread(&aux[naux++], repin_thread, NULL);

  /* The watchdog: a kind that checks nothing for stall_s while not
   * paused has lost an element or a wake-up, and so has a run whose
   * threads do not all return within stall_s of the stop. Such threads
   * cannot be joined: the run ends there. */
  start = now_ms();
  for (int k = 0; k < K_COUNT; k++)
    last_change[k] = start;
  for (;;) {
    uint64_t t;
    usleep(100 * 1000);
    t = now_ms();
    if (!stopping() && t - start >= O.seconds * 1000u) {
      stop_at = t;
      atomic_store(&G.stop, 1);
      pthread_mutex_lock(&G.lock);
      pthread_cond_broadcast(&G.resume);
      pthread_mutex_unlock(&G.lock);
    }
    if (stopping()) {
      if (atomic_load(&G.finished) == nth + naux)
        break;
      if (t - stop_at > O.stall_s * 1000u) {
        violation("%u of %u threads still running %u s after the stop",
                  nth + naux - atomic_load(&G.finished), nth + naux,
                  O.stall_s);
        printf("FAILURE: threads stalled (a lost element or wake-up); "
               "they are left running\n");
        fflush(stdout);
        _exit(1);
      }
      continue;
    }
    for (int k = 0; k < K_COUNT; k++) {
      uint64_t m = atomic_load(&G.moved[k]);
      if (m != last[k] || atomic_load(&G.paused))
        last_change[k] = t;
      last[k] = m;
      if (on(k) && t - last_change[k] > O.stall_s * 1000u) {
        violation("%s: no progress for %u s", kind_name[k], O.stall_s);
        printf("FAILURE: %s stalled; its threads are left running\n",
               kind_name[k]);
        fflush(stdout);
        _exit(1);
      }
    }
  }
  for (unsigned i = 0; i < nth; i++)
    pthread_join(th[i], NULL);
  for (unsigned i = 0; i < naux; i++)
    pthread_join(aux[i], NULL);
  if (on(K_MPMC))
    mm_check();
  if (on(K_ACTORS)) {
    /* Everything accepted is delivered before destroy returns. */
    if (shoal_actors_destroy(AC.sys) != SHOAL_OK)
      violation("actors: destroy failed");
    if (atomic_load(&AC.accepted) != atomic_load(&AC.delivered))
      violation("actors: %" PRIu64 " accepted, %" PRIu64 " delivered",
                atomic_load(&AC.accepted), atomic_load(&AC.delivered));
  }
  if (RT != NULL)
    shoal_runtime_destroy(RT);

  printf("torture: %u s, seed %" PRIu64 ", %" PRIu64 " stutters, %" PRIu64
         " re-pins\n",
         O.seconds, O.seed, atomic_load(&G.stutters), atomic_load(&G.repins));
  for (int k = 0; k < K_COUNT; k++)
    if (on(k)) {
      uint64_t m = atomic_load(&G.moved[k]);
      printf("torture: %-8s %14" PRIu64 " checked\n", kind_name[k], m);
      total += m;
      if (m == 0) {
        violation("%s checked nothing", kind_name[k]);
      }
    }
  if (on(K_MPSC))
    printf("torture: mpsc: %" PRIu64 " wake-ups of the idle consumer, %" PRIu64
           " pushes found it full\n",
           atomic_load(&MS.wakes), atomic_load(&MS.full));
  failed = atomic_load(&G.violations) != 0;
  printf("%s: %" PRIu64 " threads x %u s, %" PRIu64 " checked, %" PRIu64
         " violations, %" PRIu64 " stutters, %" PRIu64 " re-pins, %ld cpus\n",
         failed ? "FAILURE" : "SUCCESS", atomic_load(&G.threads), O.seconds,
         total, atomic_load(&G.violations), atomic_load(&G.stutters),
         atomic_load(&G.repins), sysconf(_SC_NPROCESSORS_ONLN));
  return failed ? 1 : 0;
}
