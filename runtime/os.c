/* os.c — the platform calls (os.h): futex, clocks, timer slack, resident
 * memory and page discards, the process's CPU binding at load, the
 * watchdogs' ticker thread, and the debug build's random yields. */
#include "runtime/os.h"

#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "shoal_build.h"
#include "runtime/atomics.h"
#include "runtime/common.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* The binding at load: read once, by the loader's thread, before any
 * other thread of the library can run; read-only after. */
static cpu_set_t initial_cpus;
static int initial_known;

__attribute__((constructor)) static void initial_cpus_read(void) {
  CPU_ZERO(&initial_cpus);
  initial_known = sched_getaffinity(0, sizeof initial_cpus, &initial_cpus) == 0;
}

int shoal__os_initial_cpu(unsigned cpu) {
  if (!initial_known || cpu >= CPU_SETSIZE)
    return 1;
  return CPU_ISSET(cpu, &initial_cpus) ? 1 : 0;
}

int shoal__os_initial_cpus_known(void) { return initial_known; }

void shoal__futex_wait(_Atomic uint32_t *addr, uint32_t expected,
                       uint64_t timeout_ns) {
  struct timespec ts, *tp = NULL;
  if (timeout_ns != 0) {
    ts.tv_sec = (time_t)(timeout_ns / 1000000000u);
    ts.tv_nsec = (long)(timeout_ns % 1000000000u);
    tp = &ts;
  }
  /* EAGAIN (value already changed), EINTR and ETIMEDOUT all return to the
   * caller's loop, which re-checks. */
  syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT_PRIVATE, expected, tp,
          NULL, 0);
}

void shoal__futex_wake(_Atomic uint32_t *addr, int n) {
  syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}

uint64_t shoal__now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t shoal__thread_cpu_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t shoal__thread_cpu_ns_of(pthread_t th) {
  clockid_t cid;
  struct timespec ts;
  if (pthread_getcpuclockid(th, &cid) != 0 || clock_gettime(cid, &ts) != 0)
    return 0;
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void shoal__set_timer_slack(unsigned long ns) {
  prctl(PR_SET_TIMERSLACK, ns, 0, 0, 0);
}

static unsigned relax_ps; /* one shoal__cpu_relax, picoseconds */
static pthread_once_t relax_once = PTHREAD_ONCE_INIT;

static void relax_measure(void) {
  uint64_t best = UINT64_MAX;
  /* The fastest of a few runs: a preempted run only reads slower. */
  for (int r = 0; r < 3; r++) {
    uint64_t t0 = shoal__now_ns(), t;
    for (int i = 0; i < 256; i++)
      shoal__cpu_relax();
    if ((t = shoal__now_ns() - t0) < best)
      best = t;
  }
  relax_ps = (unsigned)(best * 1000 / 256);
}

unsigned shoal__relax_count(unsigned ns) {
  uint64_t n;
  pthread_once(&relax_once, relax_measure);
  n = relax_ps != 0 ? (uint64_t)ns * 1000 / relax_ps : 64;
  return n < 1 ? 1 : n > 64 ? 64 : (unsigned)n;
}

shoal__fast_clock shoal__fclock;
static pthread_once_t fclock_once = PTHREAD_ONCE_INIT;

static void fclock_calibrate(void) {
#if defined(__x86_64__) && defined(__GNUC__)
  uint64_t t0 = __builtin_ia32_rdtsc(), n0 = shoal__now_ns(), t1, n1;
  do {
    n1 = shoal__now_ns();
  } while (n1 - n0 < 2000000u);
  t1 = __builtin_ia32_rdtsc();
  shoal__fclock.mult = t1 > t0 ? (uint64_t)(((shoal__u128)(n1 - n0) << 32) /
                                            (t1 - t0))
                               : (UINT64_C(1) << 32);
  shoal__fclock.base_ticks = t1;
  shoal__fclock.base_ns = n1;
#endif
}

void shoal__fast_clock_init(void) {
  pthread_once(&fclock_once, fclock_calibrate);
}

uint64_t shoal__rss_bytes(void) {
  unsigned long size = 0, resident = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  long page = sysconf(_SC_PAGESIZE);
  if (f == NULL)
    return 0;
  if (fscanf(f, "%lu %lu", &size, &resident) != 2)
    resident = 0;
  fclose(f);
  return (uint64_t)resident * (uint64_t)(page > 0 ? page : 4096);
}

size_t shoal__pages_discard(void *p, size_t n) {
  long page_ = sysconf(_SC_PAGESIZE);
  uintptr_t page = (uintptr_t)(page_ > 0 ? page_ : 4096);
  uintptr_t b = ((uintptr_t)p + page - 1) & ~(page - 1);
  uintptr_t e = ((uintptr_t)p + n) & ~(page - 1);
  if (p == NULL || e <= b)
    return 0;
  if (madvise((void *)b, e - b, MADV_DONTNEED) != 0)
    return 0;
  return e - b;
}

#if SHOAL__DEBUG_YIELD
#include <sched.h>
#include <stdlib.h>

/* One access in `rate` yields; read from the environment once. Each thread
 * draws from its own generator, seeded by its id, so that threads do not
 * yield in step. */
static _Atomic uint32_t yield_rate = UINT32_MAX; /* UINT32_MAX: not read */

void shoal__debug_yield(void) {
  static _Thread_local uint64_t s;
  uint32_t rate = atomic_load_explicit(&yield_rate, memory_order_relaxed);
  if (SHOAL__UNLIKELY(rate == UINT32_MAX)) {
    const char *e = getenv("SHOAL_DEBUG_YIELD");
    char *end;
    unsigned long v = e != NULL ? strtoul(e, &end, 10) : 16;
    rate = (e != NULL && (end == e || *end != '\0' || v >= UINT32_MAX))
               ? 16u : (uint32_t)v;
    atomic_store_explicit(&yield_rate, rate, memory_order_relaxed);
  }
  if (rate == 0)
    return;
  if (SHOAL__UNLIKELY(s == 0))
    s = ((uint64_t)syscall(SYS_gettid) << 32) | 0x9e3779b9u;
  s ^= s << 13;
  s ^= s >> 7;
  s ^= s << 17;
  if (s % rate == 0)
    sched_yield();
}
#endif

/* ---- the ticker ------------------------------------------------------------ */

static void *ticker_main(void *arg) {
  shoal__ticker *t = arg;
  pthread_setname_np(pthread_self(), t->name);
  pthread_mutex_lock(&t->mu);
  while (!t->stop) {
    struct timespec until;
    uint64_t at;
    clock_gettime(CLOCK_MONOTONIC, &until);
    at = (uint64_t)until.tv_sec * 1000000000u + (uint64_t)until.tv_nsec +
         t->period_ns;
    until.tv_sec = (time_t)(at / 1000000000u);
    until.tv_nsec = (long)(at % 1000000000u);
    if (pthread_cond_timedwait(&t->cv, &t->mu, &until) == ETIMEDOUT &&
        !t->stop) {
      pthread_mutex_unlock(&t->mu);
      t->fn(t->arg, shoal__now_ns());
      pthread_mutex_lock(&t->mu);
    }
  }
  pthread_mutex_unlock(&t->mu);
  return NULL;
}

int shoal__ticker_start(shoal__ticker *t, const char *name, uint64_t period_ns,
                        void (*fn)(void *, uint64_t), void *arg) {
  pthread_condattr_t ca;
  t->running = 0;
  t->stop = 0;
  t->period_ns = period_ns;
  t->name = name;
  t->fn = fn;
  t->arg = arg;
  pthread_mutex_init(&t->mu, NULL);
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&t->cv, &ca);
  pthread_condattr_destroy(&ca);
  if (pthread_create(&t->th, NULL, ticker_main, t) != 0) {
    pthread_cond_destroy(&t->cv);
    pthread_mutex_destroy(&t->mu);
    return SHOAL_EAGAIN;
  }
  t->running = 1;
  return SHOAL_OK;
}

void shoal__ticker_stop(shoal__ticker *t) {
  if (!t->running)
    return;
  pthread_mutex_lock(&t->mu);
  t->stop = 1;
  pthread_cond_signal(&t->cv);
  pthread_mutex_unlock(&t->mu);
  pthread_join(t->th, NULL);
  pthread_cond_destroy(&t->cv);
  pthread_mutex_destroy(&t->mu);
  t->running = 0;
}
