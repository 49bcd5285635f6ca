/* os.h — the platform calls kept in one place (libuv keeps them under
 * src/unix/): futex wait and wake, the clocks, a thread's CPU time and
 * timer slack, the process's resident memory and page discards. Linux
 * only. Allocation policy is alloc.h's. */
#ifndef SHOAL_OS_H
#define SHOAL_OS_H

#include <stdatomic.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

/* Sleeps while *addr == expected, at most timeout_ns (0: no limit). Returns
 * on a wake, a spurious wake-up, a value change or the timeout: callers
 * re-check their condition. */
void shoal__futex_wait(_Atomic uint32_t *addr, uint32_t expected,
                       uint64_t timeout_ns);
/* Wakes up to `n` threads sleeping on addr. */
void shoal__futex_wake(_Atomic uint32_t *addr, int n);

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t shoal__now_ns(void);
/* How many shoal__cpu_relax calls last about ns nanoseconds on this CPU,
 * 1 … 64: a PAUSE takes a few cycles on older x86 cores and up to ~140 on
 * Skylake-class ones. Measured once per process (~10 µs). Any thread. */
unsigned shoal__relax_count(unsigned ns);
/* A cheap clock for per-message stamps and handler timings: the TSC on
 * x86-64 (a few ns, against tens for clock_gettime on a virtual machine),
 * scaled to CLOCK_MONOTONIC nanoseconds by a calibration made once per
 * process (shoal__fast_clock_init, ~2 ms the first time). Elsewhere it is
 * shoal__now_ns. */
#if defined(__SIZEOF_INT128__)
__extension__ typedef unsigned __int128 shoal__u128;
#endif
typedef struct shoal__fast_clock {
  uint64_t base_ticks, base_ns;
  uint64_t mult; /* ns per tick, 32.32 fixed point */
} shoal__fast_clock;
extern shoal__fast_clock shoal__fclock;
void shoal__fast_clock_init(void);
static inline uint64_t shoal__fast_ns(void) {
#if defined(__x86_64__) && defined(__GNUC__)
  uint64_t d = __builtin_ia32_rdtsc() - shoal__fclock.base_ticks;
  return shoal__fclock.base_ns +
         (uint64_t)(((shoal__u128)d * shoal__fclock.mult) >> 32);
#else
  return shoal__now_ns();
#endif
}

/* CPU time consumed by the calling thread, nanoseconds. */
uint64_t shoal__thread_cpu_ns(void);
/* CPU time consumed by another thread of this process, nanoseconds; 0
 * when the OS does not say. */
uint64_t shoal__thread_cpu_ns_of(pthread_t th);
/* Timed waits of the calling thread wake within `ns` of their deadline
 * (Linux pads them by 50 µs by default). */
void shoal__set_timer_slack(unsigned long ns);

/* Memory. The resident bytes of the process (/proc/self/statm), 0 when
 * it cannot be read. */
uint64_t shoal__rss_bytes(void);
/* Gives the whole pages inside [p, p + n) back to the system; they read
 * as zeros when touched again (MADV_DONTNEED on private anonymous
 * memory). Returns the bytes given back. */
size_t shoal__pages_discard(void *p, size_t n);

/* The CPUs the process was bound to when the library was loaded (before
 * the host's own code pinned any thread, as OpenMP reads its mask at
 * start): 1 when cpu was in that set, or when it is not known (0 when not
 * in it). Later pinning of threads — the host's, shoal_runtime_bind_host's
 * — does not narrow it. Any thread. */
int shoal__os_initial_cpu(unsigned cpu);
/* 1 when the set above is known. */
int shoal__os_initial_cpus_known(void);

/* A thread of its own that calls fn(arg, now_ns) every period_ns, with
 * a timed wait between calls (not a sleep loop: stop wakes it at once).
 * The watchdogs' (sessions/watchdog.c, runtime/actors/watch.c). */
typedef struct shoal__ticker {
  pthread_t th;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int running, stop;
  uint64_t period_ns;
  const char *name;
  void (*fn)(void *arg, uint64_t now_ns);
  void *arg;
} shoal__ticker;
/* A watchdog's period for its smallest limit: four looks per limit (a
 * report comes within 1¼ limits), at least 1 ms. Any thread. */
static inline uint64_t shoal__ticker_period(unsigned limit_ms) {
  uint64_t ns = (uint64_t)limit_ms * 250000u;
  return ns < 1000000u ? 1000000u : ns;
}
/* Starts it: SHOAL_EAGAIN when the OS refuses a thread. The owner. */
int shoal__ticker_start(shoal__ticker *t, const char *name, uint64_t period_ns,
                        void (*fn)(void *, uint64_t), void *arg);
/* Stops and joins it (nothing when it never started). The owner. */
void shoal__ticker_stop(shoal__ticker *t);

#endif /* SHOAL_OS_H */
