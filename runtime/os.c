/* os.c — futex, clocks and timer slack for the scheduler (os.h). */
#include "runtime/os.h"

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
