/* queues.h — the queue benchmarks shared by every implementation
 * (bench/messaging.c for shoal and Concurrency Kit, messaging_moody.cpp
 * for moodycamel): SPSC and MPSC throughput and busy-polling ping-pong
 * with 8-byte messages, producers and consumer pinned. Plain C that also
 * compiles as C++; MQ_DEFINE(prefix, Q, INIT, PUSH, POP) inlines one
 * implementation's calls into the loops, so that no indirect call is
 * measured. */
#ifndef SHOAL_BENCH_QUEUES_H
#define SHOAL_BENCH_QUEUES_H

#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static inline double mq_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The TSC in ns for round-trip samples (clock_gettime costs tens of ns
 * on a virtual machine); calibrated over 20 ms. */
static double mq_tsc_ns_per_tick;
static inline uint64_t mq_tsc(void) {
#if defined(__x86_64__)
  return __builtin_ia32_rdtsc();
#else
  return (uint64_t)(mq_now() * 1e9);
#endif
}
static inline void mq_tsc_calibrate(void) {
  double t0 = mq_now();
  uint64_t c0 = mq_tsc(), c1;
  while (mq_now() - t0 < 0.02) {
  }
  c1 = mq_tsc();
  mq_tsc_ns_per_tick = (mq_now() - t0) * 1e9 / (double)(c1 - c0);
}

static inline void mq_pin(unsigned cpu) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET((int)(cpu % (unsigned)(n > 0 ? n : 1)), &set);
  (void)pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

static inline int mq_cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static inline void mq_row(const char *cas, const char *impl, unsigned workers,
                          const char *metric, double value, const char *unit) {
  printf("{\"case\":\"%s\",\"impl\":\"%s\",\"workers\":%u,\"metric\":\"%s\","
         "\"value\":%.6g,\"unit\":\"%s\"}\n",
         cas, impl, workers, metric, value, unit);
  fflush(stdout);
}

enum { MQ_SPSC = 1, MQ_MPSC = 2 };

/* The suite's command line: --quick, --case PREFIX; --workers is accepted
 * and ignored (every case fixes its own threads). */
static inline void mq_parse(int argc, char **argv, int *quick,
                            const char **only) {
  *quick = 0;
  *only = NULL;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--quick") == 0)
      *quick = 1;
    else if (strcmp(argv[i], "--case") == 0 && i + 1 < argc)
      *only = argv[++i];
    else if (strcmp(argv[i], "--workers") == 0 && i + 1 < argc)
      i++;
    else {
      fprintf(stderr, "usage: %s [--quick] [--case NAME]\n", argv[0]);
      exit(2);
    }
  }
}

typedef struct mq_shared {
  pthread_barrier_t start;
  volatile int go;
  uint64_t per_producer;
  unsigned producers;
  void *q, *back; /* back: the reply queue of ping-pong */
  uint64_t rounds;
  double *rtt_ns;
  double t_end;
} mq_shared;

typedef struct mq_thread {
  mq_shared *s;
  unsigned id;
} mq_thread;

/* Defines prefix_spsc, prefix_mpsc and prefix_pingpong for queue type Q:
 * INIT(q, cap) returns a new Q*, PUSH(q, v) is nonzero when it pushed
 * uint64_t v, POP(q, p) nonzero when it popped into *p. */
#define MQ_DEFINE(prefix, Q, INIT, PUSH, POP)                                  \
  static void *prefix##_producer(void *arg) {                                  \
    mq_thread *t = (mq_thread *)arg;                                           \
    mq_shared *s = t->s;                                                       \
    Q *q = (Q *)s->q;                                                          \
    uint64_t base = (uint64_t)t->id << 40;                                     \
    mq_pin(0); /* producers share core 0 */                                    \
    pthread_barrier_wait(&s->start);                                           \
    /* Time may be up between any two pushes: a queue that collapses when  \
     * its producers share a core must not hold the run for long. */          \
    for (uint64_t i = 1; i <= s->per_producer; i++) {                          \
      while (!(PUSH(q, base + i))) {                                           \
        if (__atomic_load_n(&s->go, __ATOMIC_RELAXED) < 0)                     \
          return NULL;                                                         \
        if (s->producers > 1) /* full: another producer may share the core */ \
          sched_yield();                                                       \
      }                                                                        \
      if (__atomic_load_n(&s->go, __ATOMIC_RELAXED) < 0)                       \
        return NULL;                                                           \
    }                                                                          \
    return NULL;                                                               \
  }                                                                            \
                                                                               \
  /* Consumes everything, or what comes within `limit_s`; returns messages \
   * per second. */                                                            \
  static double prefix##_run(unsigned producers, uint64_t per,                 \
                             double limit_s) {                                 \
    mq_shared s;                                                               \
    mq_thread th[8];                                                           \
    pthread_t pt[8];                                                           \
    uint64_t total = per * producers, got = 0, v = 0, bad = 0, spins = 0;      \
    uint64_t last[8] = {0};                                                    \
    double t0, t1;                                                             \
    memset(&s, 0, sizeof s);                                                   \
    s.per_producer = per;                                                      \
    s.producers = producers;                                                   \
    s.q = INIT(8192);                                                          \
    pthread_barrier_init(&s.start, NULL, producers + 1);                       \
    for (unsigned i = 0; i < producers; i++) {                                 \
      th[i].s = &s;                                                            \
      th[i].id = i;                                                            \
      pthread_create(&pt[i], NULL, prefix##_producer, &th[i]);                 \
    }                                                                          \
    mq_pin(1);                                                                 \
    pthread_barrier_wait(&s.start);                                            \
    t0 = mq_now();                                                             \
    while (got < total) {                                                      \
      if ((++spins & 0xffff) == 0 && mq_now() - t0 > limit_s) {                \
        __atomic_store_n(&s.go, -1, __ATOMIC_RELAXED);                         \
        break;                                                                 \
      }                                                                        \
      if (POP((Q *)s.q, &v)) {                                                 \
        unsigned p = (unsigned)(v >> 40);                                      \
        if (p >= 8 || (v & ((1ull << 40) - 1)) != last[p] + 1) bad++;          \
        else last[p]++;                                                        \
        got++;                                                                 \
      }                                                                        \
    }                                                                          \
    t1 = mq_now();                                                             \
    for (unsigned i = 0; i < producers; i++)                                   \
      pthread_join(pt[i], NULL);                                               \
    pthread_barrier_destroy(&s.start);                                         \
    if (bad != 0)                                                              \
      fprintf(stderr, #prefix ": %llu messages out of order\n",                \
              (unsigned long long)bad);                                        \
    return (double)got / (t1 - t0);                                            \
  }                                                                            \
                                                                               \
  static void *prefix##_ponger(void *arg) {                                    \
    mq_shared *s = (mq_shared *)arg;                                           \
    uint64_t v = 0;                                                            \
    mq_pin(0);                                                                 \
    pthread_barrier_wait(&s->start);                                           \
    for (uint64_t i = 0; i < s->rounds; i++) {                                 \
      while (!(POP((Q *)s->q, &v))) {                                          \
      }                                                                        \
      while (!(PUSH((Q *)s->back, v + 1))) {                                   \
      }                                                                        \
    }                                                                          \
    return NULL;                                                               \
  }                                                                            \
                                                                               \
  /* Round trips between cores 1 and 0 through two queues; p50 and p99 ns. */ \
  static void prefix##_pingpong(uint64_t rounds, double *p50, double *p99) {   \
    mq_shared s;                                                               \
    pthread_t pt;                                                              \
    uint64_t v = 0;                                                            \
    memset(&s, 0, sizeof s);                                                   \
    s.q = INIT(1024);                                                          \
    s.back = INIT(1024);                                                       \
    s.rounds = rounds;                                                         \
    s.rtt_ns = (double *)malloc(rounds * sizeof(double));                      \
    pthread_barrier_init(&s.start, NULL, 2);                                   \
    pthread_create(&pt, NULL, prefix##_ponger, &s);                            \
    mq_pin(1);                                                                 \
    pthread_barrier_wait(&s.start);                                            \
    for (uint64_t i = 0; i < rounds; i++) {                                    \
      uint64_t c0 = mq_tsc();                                                  \
      while (!(PUSH((Q *)s.q, i))) {                                           \
      }                                                                        \
      while (!(POP((Q *)s.back, &v))) {                                        \
      }                                                                        \
      s.rtt_ns[i] = (double)(mq_tsc() - c0) * mq_tsc_ns_per_tick;              \
    }                                                                          \
    pthread_join(pt, NULL);                                                    \
    pthread_barrier_destroy(&s.start);                                         \
    qsort(s.rtt_ns, rounds, sizeof(double), mq_cmp);                           \
    *p50 = s.rtt_ns[rounds / 2];                                               \
    *p99 = s.rtt_ns[rounds * 99 / 100];                                        \
    free(s.rtt_ns);                                                            \
  }                                                                            \
                                                                               \
  /* The cases, rows under `impl`: MQ_SPSC (spsc, pingpong) and/or MQ_MPSC \
   * (mpsc1, mpsc2). */                                                        \
  static void prefix##_cases(const char *impl, int quick, const char *only,    \
                             int kinds) {                                      \
    uint64_t n = quick ? 5000000u : 100000000u;                                \
    double r[5], p50, p99;                                                     \
    unsigned reps = quick ? 3 : 5;                                             \
    if ((kinds & MQ_SPSC) &&                                                   \
        (only == NULL || strncmp("spsc", only, strlen(only)) == 0)) {          \
      for (unsigned i = 0; i < reps; i++)                                      \
        r[i] = prefix##_run(1, n, quick ? 1.0 : 10.0);                         \
      qsort(r, reps, sizeof r[0], mq_cmp);                                     \
      mq_row("spsc", impl, 1, "mmsgs_per_s", r[reps / 2] / 1e6, "M/s");        \
    }                                                                          \
    for (unsigned p = 1; p <= 2; p++) {                                        \
      if (!(kinds & MQ_MPSC) ||                                                \
          (only != NULL && strncmp(p == 1 ? "mpsc1" : "mpsc2", only,           \
                                   strlen(only)) != 0))                        \
        continue;                                                              \
      for (unsigned i = 0; i < reps; i++)                                      \
        r[i] = prefix##_run(p, n / 2 / p, quick ? 1.0 : 10.0);                 \
      qsort(r, reps, sizeof r[0], mq_cmp);                                     \
      mq_row(p == 1 ? "mpsc1" : "mpsc2", impl, p, "mmsgs_per_s",               \
             r[reps / 2] / 1e6, "M/s");                                        \
    }                                                                          \
    if ((kinds & MQ_SPSC) &&                                                   \
        (only == NULL || strncmp("pingpong", only, strlen(only)) == 0)) {      \
      prefix##_pingpong(quick ? 200000 : 1000000, &p50, &p99);                 \
      mq_row("pingpong", impl, 1, "rtt_p50_ns", p50, "ns");                    \
      mq_row("pingpong", impl, 1, "rtt_p99_ns", p99, "ns");                    \
    }                                                                          \
  }

#endif /* SHOAL_BENCH_QUEUES_H */
