/* atomics.h — the atomic operations of the deque and the queues (deque.h,
 * spsc.h, mpsc.h, mpmc.h), behind thin macros so that two test builds can
 * reach every shared access:
 *
 * - -Ddebug_yield=true (SHOAL__DEBUG_YIELD): each access may first yield the
 *   CPU, at random (shoal__debug_yield, os.c), which widens race windows
 *   for the torture suite (tests/torture), the way rcutorture's random
 *   delays do.
 * - SHOAL__DSCHED, defined only by the deterministic-schedule tests
 *   (tests/dsched): each access is a scheduling point of a seeded scheduler
 *   that runs one thread at a time and keeps stores in per-thread FIFO
 *   store buffers (the x86-TSO model of Owens, Sarkar and Sewell, TPHOLs
 *   2009), after folly's DeterministicSchedule. A seed fixes the
 *   interleaving, so a failing seed replays.
 *
 * In a normal build the macros are the C11 calls themselves. atomic_init
 * stays as it is: it runs before the object is shared. */
#ifndef SHOAL_ATOMICS_H
#define SHOAL_ATOMICS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "shoal_build.h"

#ifndef SHOAL__DSCHED
#define SHOAL__DSCHED 0
#endif

#if SHOAL__DSCHED

/* Provided by tests/dsched/dsched.c. Outside a scheduled run (setup and
 * checks on the test's own thread) they act on memory directly. */
void shoal__ds_load(const void *p, void *out, size_t n, int mo);
void shoal__ds_store(void *p, const void *v, size_t n, int mo);
bool shoal__ds_cas(void *p, void *expected, const void *desired, size_t n,
                   bool weak);
/* A read-modify-write: begin reads the old value (after a scheduling point
 * and the store buffer's flush, as a locked instruction does); end writes
 * the new one; nothing is scheduled in between. */
void shoal__ds_rmw_begin(void *p, void *old, size_t n);
void shoal__ds_rmw_end(void *p, const void *nv, size_t n);
void shoal__ds_fence(int mo);

#define SHOAL__AT_T(p)                                                         \
  __typeof__(atomic_load_explicit((p), memory_order_relaxed))

#define shoal__load(p, mo)                                                     \
  __extension__({                                                              \
    SHOAL__AT_T(p) ld_;                                                        \
    shoal__ds_load((const void *)(p), &ld_, sizeof ld_, (int)(mo));            \
    ld_;                                                                       \
  })
#define shoal__store(p, v, mo)                                                 \
  __extension__({                                                              \
    SHOAL__AT_T(p) st_ = (v);                                                  \
    shoal__ds_store((void *)(p), &st_, sizeof st_, (int)(mo));                 \
  })
#define shoal__cas_gen(p, e, d, weak)                                          \
  __extension__({                                                              \
    SHOAL__AT_T(p) de_ = (d);                                                  \
    shoal__ds_cas((void *)(p), (e), &de_, sizeof de_, (weak));                 \
  })
#define shoal__cas(p, e, d, s, f) shoal__cas_gen(p, e, d, false)
#define shoal__cas_weak(p, e, d, s, f) shoal__cas_gen(p, e, d, true)
#define shoal__fetch_add(p, v, mo)                                             \
  __extension__({                                                              \
    SHOAL__AT_T(p) old_, new_;                                                 \
    shoal__ds_rmw_begin((void *)(p), &old_, sizeof old_);                      \
    new_ = old_ + (v);                                                         \
    shoal__ds_rmw_end((void *)(p), &new_, sizeof new_);                        \
    old_;                                                                      \
  })
#define shoal__fence(mo) shoal__ds_fence((int)(mo))

#else /* !SHOAL__DSCHED */

#if SHOAL__DEBUG_YIELD
/* Yields the CPU now and then (the rate: SHOAL__DEBUG_YIELD in the
 * environment, one access in N; 0 turns it off). Any thread. */
void shoal__debug_yield(void);
#define SHOAL__POINT() shoal__debug_yield()
#else
#define SHOAL__POINT() ((void)0)
#endif

#define shoal__load(p, mo) (SHOAL__POINT(), atomic_load_explicit((p), (mo)))
#define shoal__store(p, v, mo)                                                 \
  (SHOAL__POINT(), atomic_store_explicit((p), (v), (mo)))
#define shoal__cas(p, e, d, s, f)                                              \
  (SHOAL__POINT(),                                                             \
   atomic_compare_exchange_strong_explicit((p), (e), (d), (s), (f)))
#define shoal__cas_weak(p, e, d, s, f)                                         \
  (SHOAL__POINT(),                                                             \
   atomic_compare_exchange_weak_explicit((p), (e), (d), (s), (f)))
#define shoal__fetch_add(p, v, mo)                                             \
  (SHOAL__POINT(), atomic_fetch_add_explicit((p), (v), (mo)))
#define shoal__fence(mo) (SHOAL__POINT(), atomic_thread_fence(mo))

#endif /* SHOAL__DSCHED */

#endif /* SHOAL_ATOMICS_H */
