/* dsched.h — a seeded deterministic scheduler for the deque and the queues
 * (after folly's DeterministicSchedule): threads run one at a time, every
 * atomic access of runtime/atomics.h (built with SHOAL__DSCHED) is a point
 * where the scheduler may switch threads or drain a store buffer, and all
 * its choices come from one seeded generator. Stores wait in per-thread
 * FIFO buffers and reach memory in order, at random points, at a seq_cst
 * fence or store, or at a read-modify-write: the x86-TSO model (Owens,
 * Sarkar, Sewell, "A better x86 memory model: x86-TSO", TPHOLs 2009). A
 * seed therefore fixes the whole run, and a failing seed replays.
 *
 * Synchronization table: ds_run is called by one thread at a time; the
 * functions it runs call ds_stuck and the atomics' hooks. */
#ifndef SHOAL_DSCHED_H
#define SHOAL_DSCHED_H

#include <stdbool.h>
#include <stdint.h>

#define DS_MAX_THREADS 8

typedef void (*ds_fn)(void *arg);

typedef struct ds_result {
  uint64_t steps;  /* scheduling points passed */
  uint64_t trace;  /* a hash of the thread chosen at every point */
  uint64_t drains; /* buffered stores that reached memory */
  bool stuck;      /* the step limit was reached */
} ds_result;

/* Runs fn[i](arg[i]) for i < n on n threads under the schedule that `seed`
 * chooses, until all return. After max_steps points, ds_stuck() turns true
 * and the scheduler drains every store at once; the functions' waiting
 * loops must then give up. */
void ds_run(uint64_t seed, int n, const ds_fn *fn, void *const *arg,
            uint64_t max_steps, ds_result *res);

/* True once the current run has passed its step limit. */
bool ds_stuck(void);

#endif /* SHOAL_DSCHED_H */
