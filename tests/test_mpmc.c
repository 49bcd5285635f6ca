/* test_mpmc.c — the bounded MPMC queue: capacity, FIFO, full and empty,
 * and torture runs (4 producers with 4 consumers, and with 1 consumer for
 * per-producer order) in which every element comes out exactly once. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#include "runtime/sched/mpmc.h"
#include "test_util.h"

#if SHOAL__TSAN
#define PER_PRODUCER 20000
#else
#define PER_PRODUCER 250000
#endif
#define PRODUCERS 4
#define MAX_CONSUMERS 4

static void sequential(void **state) {
  shoal__mpmc q;
  void *x = NULL;
  (void)state;
  assert_int_equal(shoal__mpmc_init(&q, 5), SHOAL_OK); /* rounds to 8 */
  assert_int_equal(shoal__mpmc_try_pop(&q, &x), SHOAL_EAGAIN);
  for (uintptr_t lap = 0; lap < 100; lap++) {
    for (uintptr_t i = 1; i <= 8; i++)
      assert_int_equal(shoal__mpmc_try_push(&q, (void *)(lap * 8 + i)), SHOAL_OK);
    assert_int_equal(shoal__mpmc_try_push(&q, (void *)1), SHOAL_EAGAIN);
    for (uintptr_t i = 1; i <= 8; i++) {
      assert_int_equal(shoal__mpmc_try_pop(&q, &x), SHOAL_OK);
      assert_ptr_equal(x, (void *)(lap * 8 + i));
    }
    assert_int_equal(shoal__mpmc_try_pop(&q, &x), SHOAL_EAGAIN);
  }
  shoal__mpmc_destroy(&q);
  assert_int_equal(shoal__mpmc_init(&q, (size_t)1 << 41), SHOAL_EINVAL);
}

typedef struct item {
  unsigned producer;
  size_t seq;  /* plain fields: the queue must publish them */
} item;

typedef struct torture {
  shoal__mpmc q;
  pthread_barrier_t start;
  item *items;          /* PRODUCERS * PER_PRODUCER */
  _Atomic unsigned char *seen;
  _Atomic size_t consumed;
  unsigned consumers;
  _Atomic int order_broken;
} torture;

typedef struct producer_arg {
  torture *T;
  unsigned id;
} producer_arg;

static void *producer_main(void *arg) {
  producer_arg *p = arg;
  torture *T = p->T;
  pthread_barrier_wait(&T->start);
  for (size_t i = 0; i < PER_PRODUCER; i++) {
    item *it = &T->items[(size_t)p->id * PER_PRODUCER + i];
    it->producer = p->id;
    it->seq = i;
    while (shoal__mpmc_try_push(&T->q, it) != SHOAL_OK)
      sched_yield(); /* full: back-pressure */
  }
  return NULL;
}

static void *consumer_main(void *arg) {
  torture *T = arg;
  const size_t total = (size_t)PRODUCERS * PER_PRODUCER;
  size_t last[PRODUCERS];
  for (unsigned i = 0; i < PRODUCERS; i++)
    last[i] = SIZE_MAX;
  pthread_barrier_wait(&T->start);
  while (atomic_load_explicit(&T->consumed, memory_order_relaxed) < total) {
    void *x;
    item *it;
    size_t idx;
    if (shoal__mpmc_try_pop(&T->q, &x) != SHOAL_OK) {
      sched_yield();
      continue;
    }
    it = x;
    idx = (size_t)(it - T->items);
    if (it->producer >= PRODUCERS ||
        idx != (size_t)it->producer * PER_PRODUCER + it->seq)
      atomic_store(&T->order_broken, 2); /* fields not published */
    /* One consumer sees each producer's items in order. */
    if (last[it->producer] != SIZE_MAX && it->seq <= last[it->producer])
      atomic_store(&T->order_broken, 1);
    last[it->producer] = it->seq;
    atomic_fetch_add_explicit(&T->seen[idx], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&T->consumed, 1, memory_order_relaxed);
  }
  return NULL;
}

static void run(unsigned consumers, size_t capacity) {
  const size_t total = (size_t)PRODUCERS * PER_PRODUCER;
  torture T = {.consumers = consumers};
  pthread_t th[PRODUCERS + MAX_CONSUMERS];
  producer_arg pa[PRODUCERS];
  atomic_init(&T.consumed, 0);
  atomic_init(&T.order_broken, 0);
  T.items = calloc(total, sizeof *T.items);
  T.seen = calloc(total, sizeof *T.seen);
  assert_non_null(T.items);
  assert_non_null(T.seen);
  assert_int_equal(shoal__mpmc_init(&T.q, capacity), SHOAL_OK);
  assert_int_equal(pthread_barrier_init(&T.start, NULL, PRODUCERS + consumers), 0);
  for (unsigned i = 0; i < PRODUCERS; i++) {
    pa[i] = (producer_arg){.T = &T, .id = i};
    assert_int_equal(pthread_create(&th[i], NULL, producer_main, &pa[i]), 0);
  }
  for (unsigned i = 0; i < consumers; i++)
    assert_int_equal(pthread_create(&th[PRODUCERS + i], NULL, consumer_main, &T), 0);
  for (unsigned i = 0; i < PRODUCERS + consumers; i++)
    pthread_join(th[i], NULL);
  for (size_t i = 0; i < total; i++)
    if (T.seen[i] != 1)
      fail_msg("item %zu came out %u times", i, (unsigned)T.seen[i]);
  assert_int_equal(atomic_load(&T.order_broken), 0);
  {
    void *x;
    assert_int_equal(shoal__mpmc_try_pop(&T.q, &x), SHOAL_EAGAIN);
  }
  pthread_barrier_destroy(&T.start);
  shoal__mpmc_destroy(&T.q);
  free(T.items);
  free((void *)T.seen);
}

static void torture_many_consumers(void **state) {
  (void)state;
  run(MAX_CONSUMERS, 64);
}

static void torture_one_consumer_order(void **state) {
  (void)state;
  run(1, 16);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(sequential),
    cmocka_unit_test(torture_many_consumers),
    cmocka_unit_test(torture_one_consumer_order),
  };
  return test_run("mpmc", tests, SHOAL_ARRAY_LEN(tests));
}
