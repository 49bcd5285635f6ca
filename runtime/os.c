/* os.c — futex, clocks, timer slack, and the process's memory (os.h). */
#include "runtime/os.h"
#include "runtime/atomics.h"

#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "shoal_build.h"
#include "runtime/sched/scheduler.h"
#if SHOAL_USE_MIMALLOC
#include <mimalloc.h>
#endif

#include <errno.h>
#include <pthread.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

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

void *shoal__pages_alloc(size_t size, size_t align) {
#if SHOAL_USE_MIMALLOC
  size_t span = size + align;
  char *m;
  uintptr_t b;
  if (shoal__fault_now())
    return NULL;
  m = mmap(NULL, span, PROT_READ | PROT_WRITE,
           MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (m == MAP_FAILED)
    return NULL;
  /* The aligned part kept, both ends given back. */
  b = ((uintptr_t)m + align - 1) & ~(uintptr_t)(align - 1);
  if (b > (uintptr_t)m)
    munmap(m, b - (uintptr_t)m);
  if ((uintptr_t)m + span > b + size)
    munmap((void *)(b + size), (uintptr_t)m + span - (b + size));
  return (void *)b;
#else
  void *p = shoal__aligned_alloc(align, size);
  if (p != NULL)
    memset(p, 0, size);
  return p;
#endif
}

void shoal__pages_free(void *p, size_t size) {
  if (p == NULL)
    return;
#if SHOAL_USE_MIMALLOC
  munmap(p, size);
#else
  (void)size;
  shoal__free(p);
#endif
}

/* mimalloc (2.0) gives a span that frees empty back to the system after
 * a delay (decommit_delay, 25 ms), and only when its owning thread later
 * allocates a page in the same segment; a collect, forced or not, does not
 * cut the delay short. A block freed from another thread waits for its
 * owner to collect it. So memory a host frees on a worker that then parks
 * stays resident. While a release window is open (begin … end, nested)
 * the delay is 0, so that what empties is given back at once, and a
 * collect on every worker's own thread empties the pages that blocks
 * freed from elsewhere left. The option is process-wide; a concurrent
 * reader sees either value, both valid. */
#if SHOAL_USE_MIMALLOC
static long decommit_delay_saved;
static _Atomic int decommit_nest;

static void collect_self(void *arg) {
  mi_collect(*(const int *)arg != 0);
}
#endif

void shoal__alloc_release_begin(void) {
#if SHOAL_USE_MIMALLOC
  if (atomic_fetch_add(&decommit_nest, 1) == 0) {
    decommit_delay_saved = mi_option_get(mi_option_decommit_delay);
    mi_option_set(mi_option_decommit_delay, 0);
  }
#endif
}

void shoal__alloc_release_end(void) {
#if SHOAL_USE_MIMALLOC
  if (atomic_fetch_sub(&decommit_nest, 1) == 1)
    mi_option_set(mi_option_decommit_delay, decommit_delay_saved);
#endif
}

void shoal__alloc_collect(shoal_runtime *rt, int force) {
#if SHOAL_USE_MIMALLOC
  shoal__alloc_release_begin();
  if (rt == NULL || shoal__runtime_each(rt, collect_self, &force) != SHOAL_OK)
    mi_collect(force != 0); /* this thread's, at least */
  shoal__alloc_release_end();
#endif
#if defined(__GLIBC__)
  /* A host whose malloc is glibc's (its own binary comes before
   * libmimalloc in the symbol lookup) frees its state into glibc's arenas;
   * they give free pages back only when trimmed. Every arena. */
  (void)rt;
  (void)force;
  (void)malloc_trim(0);
#elif !SHOAL_USE_MIMALLOC
  (void)rt;
  (void)force;
#endif
}

#if SHOAL_DEBUG_YIELD
#include <sched.h>
#include <stdlib.h>

/* One access in `rate` yields; read from the environment once. Each thread
 * draws from its own generator, seeded by its id, so that threads do not
 * yield in step. */
static _Atomic uint32_t yield_rate = UINT32_MAX; /* UINT32_MAX: not read */

void shoal__debug_yield(void) {
  static _Thread_local uint64_t s;
  uint32_t rate = atomic_load_explicit(&yield_rate, memory_order_relaxed);
  if (SHOAL_UNLIKELY(rate == UINT32_MAX)) {
    const char *e = getenv("SHOAL_DEBUG_YIELD");
    char *end;
    unsigned long v = e != NULL ? strtoul(e, &end, 10) : 16;
    rate = (e != NULL && (end == e || *end != '\0' || v >= UINT32_MAX))
               ? 16u : (uint32_t)v;
    atomic_store_explicit(&yield_rate, rate, memory_order_relaxed);
  }
  if (rate == 0)
    return;
  if (SHOAL_UNLIKELY(s == 0))
    s = ((uint64_t)syscall(SYS_gettid) << 32) | 0x9e3779b9u;
  s ^= s << 13;
  s ^= s >> 7;
  s ^= s << 17;
  if (s % rate == 0)
    sched_yield();
}
#endif
