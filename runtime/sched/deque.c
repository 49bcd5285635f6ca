/* deque.c — the slow paths of the work-stealing deque (deque.h): creation,
 * growth by the owner, destruction with the retired buffers. */
#include "runtime/sched/deque.h"

static shoal__dq_buf *buf_new(int64_t cap) {
  shoal__dq_buf *a = shoal__aligned_alloc(
      SHOAL__CACHE_LINE, sizeof *a + (size_t)cap * sizeof(_Atomic(void *)));
  if (a == NULL)
    return NULL;
  a->mask = cap - 1;
  a->prev = NULL;
  for (int64_t i = 0; i < cap; i++)
    atomic_init(&a->slot[i], NULL);
  return a;
}

int shoal__deque_init(shoal__deque *d, size_t capacity) {
  const uint64_t max = (uint64_t)1 << 40;
  shoal__dq_buf *a =
      buf_new((int64_t)shoal__pow2_at_least(capacity < max ? capacity : max));
  if (a == NULL)
    return SHOAL_ENOMEM;
  atomic_init(&d->top, 0);
  atomic_init(&d->bottom, 0);
  atomic_init(&d->buf, a);
  return SHOAL_OK;
}

int shoal__deque_grow_owner(shoal__deque *d, int64_t top, int64_t bottom) {
  shoal__dq_buf *old = shoal__load(&d->buf, memory_order_relaxed);
  shoal__dq_buf *a = buf_new(2 * (old->mask + 1));
  if (a == NULL)
    return SHOAL_ENOMEM;
  /* Thieves may move top past `top` while this copies; the slots they took
   * are copied too and never read again: the CAS on top decides who owns
   * each index, whichever buffer it was read from. */
  for (int64_t i = top; i < bottom; i++)
    shoal__store(&a->slot[i & a->mask],
                 shoal__load(&old->slot[i & old->mask], memory_order_relaxed),
                 memory_order_relaxed);
  a->prev = old; /* a thief may still read `old`: keep it until destroy */
  /* release: the copied slots before the pointer; pairs with the thief's
   * acquire load of buf. */
  shoal__store(&d->buf, a, memory_order_release);
  return SHOAL_OK;
}

void shoal__deque_destroy(shoal__deque *d) {
  shoal__dq_buf *a = shoal__load(&d->buf, memory_order_relaxed);
  while (a != NULL) {
    shoal__dq_buf *prev = a->prev;
    shoal__free(a);
    a = prev;
  }
  shoal__store(&d->buf, NULL, memory_order_relaxed);
}
