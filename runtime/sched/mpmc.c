/* mpmc.c — creation and destruction of the bounded MPMC queue (mpmc.h). */
#include "runtime/sched/mpmc.h"

#include <sched.h>

int shoal__mpmc_init(shoal__mpmc *q, size_t capacity) {
  uint64_t cap;
  if (capacity > ((size_t)1 << 40))
    return SHOAL_EINVAL;
  cap = shoal__pow2_at_least(capacity);
  q->cells = shoal__aligned_alloc(SHOAL__CACHE_LINE, cap * sizeof *q->cells);
  if (q->cells == NULL)
    return SHOAL_ENOMEM;
  for (uint64_t i = 0; i < cap; i++) {
    atomic_init(&q->cells[i].seq, i);
    q->cells[i].data = NULL;
  }
  q->mask = cap - 1;
  atomic_init(&q->head, 0);
  atomic_init(&q->tail, 0);
  return SHOAL_OK;
}

void shoal__mpmc_destroy(shoal__mpmc *q) {
  shoal__free(q->cells);
  q->cells = NULL;
}

void shoal__mpmc_push_held(shoal__mpmc *q, void *x) {
  for (unsigned spins = 0; shoal__mpmc_try_push(q, x) != SHOAL_OK; spins++) {
    if (spins < 64)
      shoal__cpu_relax();
    else
      sched_yield();
  }
}
