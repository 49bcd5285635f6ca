/* os.h — the platform calls of the scheduler kept in one place (libuv keeps
 * them under src/unix/): futex wait and wake, the monotonic clock, a
 * thread's CPU time and its timer slack. Linux only. */
#ifndef SHOAL_OS_H
#define SHOAL_OS_H

#include <stdatomic.h>
#include <pthread.h>
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
/* CPU time consumed by the calling thread, nanoseconds. */
uint64_t shoal__thread_cpu_ns(void);
/* CPU time consumed by another thread of this process, nanoseconds; 0
 * when the OS does not say. */
uint64_t shoal__thread_cpu_ns_of(pthread_t th);
/* Timed waits of the calling thread wake within `ns` of their deadline
 * (Linux pads them by 50 µs by default). */
void shoal__set_timer_slack(unsigned long ns);

#endif /* SHOAL_OS_H */
