/* test_spsc.c — the bounded SPSC ring: capacity, full and empty, batches
 * across the wrap, room handed back in runs, and a validator run (magic, producer, sequence, poison)
 * between two pinned threads with random stalls, single and batch calls. */
#include <pthread.h>

#include "bench/spsc.h"
#include "test_util.h"
#include "validate.h"

SHOAL__SPSC_DEFINE(u64_ring, uint64_t)
SHOAL__SPSC_DEFINE(vring, vmsg)

#if SHOAL__TSAN
#define MESSAGES 200000
#else
#define MESSAGES 4000000
#endif

static void sequential(void **state) {
  u64_ring q;
  uint64_t x = 0, buf[16];
  (void)state;
  assert_int_equal(u64_ring_init(&q, 0), SHOAL_EINVAL);
  assert_int_equal(u64_ring_init(&q, 5), SHOAL_OK); /* rounds up to 8 */
  assert_int_equal(u64_ring_try_pop(&q, &x), SHOAL_EAGAIN);
  assert_null(u64_ring_peek(&q));
  for (uint64_t lap = 0; lap < 50; lap++) {
    for (uint64_t i = 0; i < 8; i++)
      assert_int_equal(u64_ring_try_push(&q, lap * 8 + i), SHOAL_OK);
    assert_int_equal(u64_ring_try_push(&q, 99), SHOAL_EAGAIN);
    assert_int_equal(u64_ring_size_hint(&q), 8);
    for (uint64_t i = 0; i < 8; i++) {
      assert_int_equal(u64_ring_try_pop(&q, &x), SHOAL_OK);
      assert_int_equal(x, lap * 8 + i);
    }
    assert_int_equal(u64_ring_try_pop(&q, &x), SHOAL_EAGAIN);
  }
  /* Batches: partial when short of room or elements, across the wrap. */
  for (uint64_t i = 0; i < 16; i++)
    buf[i] = 100 + i;
  assert_int_equal(u64_ring_push_batch(&q, buf, 5), 5);
  assert_int_equal(u64_ring_push_batch(&q, buf + 5, 11), 3);
  assert_int_equal(u64_ring_pop_batch(&q, buf, 6), 6);
  for (uint64_t i = 0; i < 6; i++)
    assert_int_equal(buf[i], 100 + i);
  assert_int_equal(u64_ring_push_batch(&q, buf, 6), 6); /* wraps */
  assert_int_equal(u64_ring_pop_batch(&q, buf + 8, 16), 8);
  assert_int_equal(buf[8], 106);
  assert_int_equal(buf[9], 107);
  assert_int_equal(buf[10], 100);
  assert_int_equal(buf[15], 105);
  u64_ring_destroy(&q);
}

typedef struct run_arg {
  vring q;
  pthread_barrier_t start;
  int batch;
  vcheck check;
} run_arg;

/* Room comes back every pub + 1 pops, and all of it once the consumer
 * finds the ring empty; the elements stay in order throughout. */
static void published_room(void **state) {
  u64_ring q;
  uint64_t x = 0, cap = 64, k, next_in = 0, next_out = 0;
  (void)state;
  assert_int_equal(u64_ring_init(&q, cap), SHOAL_OK);
  k = q.pub + 1;
  assert_true(k > 1 && k <= cap / 2);
  while (u64_ring_try_push(&q, next_in) == SHOAL_OK)
    next_in++;
  assert_int_equal(next_in, cap);
  for (uint64_t i = 0; i < k; i++) {
    assert_int_equal(u64_ring_try_pop(&q, &x), SHOAL_OK);
    assert_int_equal(x, next_out++);
  }
  for (uint64_t i = 0; i < k; i++)
    assert_int_equal(u64_ring_try_push(&q, next_in++), SHOAL_OK);
  assert_int_equal(u64_ring_try_push(&q, x), SHOAL_EAGAIN);
  while (u64_ring_try_pop(&q, &x) == SHOAL_OK)
    assert_int_equal(x, next_out++);
  assert_int_equal(next_out, next_in);
  for (uint64_t i = 0; i < cap; i++)
    assert_int_equal(u64_ring_try_push(&q, next_in++), SHOAL_OK);
  assert_int_equal(u64_ring_size_hint(&q), cap);
  u64_ring_destroy(&q);
}

static void *producer(void *p) {
  run_arg *a = p;
  uint64_t rng = 0x9e3779b97f4a7c15u, seq = 0;
  v_pin(0);
  pthread_barrier_wait(&a->start);
  while (seq < MESSAGES) {
    if (a->batch) {
      vmsg b[8];
      size_t n = 1 + (size_t)(v_rng(&rng) & 7);
      if (n > MESSAGES - seq)
        n = (size_t)(MESSAGES - seq);
      for (size_t i = 0; i < n; i++)
        b[i] = (vmsg){V_MAGIC, 3, seq + i};
      seq += vring_push_batch(&a->q, b, n);
    } else if (vring_try_push(&a->q, (vmsg){V_MAGIC, 3, seq}) == SHOAL_OK) {
      seq++;
    }
    v_stall(&rng);
  }
  return NULL;
}

static void *consumer(void *p) {
  run_arg *a = p;
  uint64_t rng = 0x2545f4914f6cdd1du;
  v_pin(1);
  pthread_barrier_wait(&a->start);
  while (a->check.consumed < MESSAGES) {
    if (a->batch && (v_rng(&rng) & 1)) {
      vmsg b[8];
      size_t n = vring_pop_batch(&a->q, b, 1 + (size_t)(v_rng(&rng) & 7));
      for (size_t i = 0; i < n; i++)
        vcheck_msg(&a->check, &b[i], 0);
    } else {
      vmsg *m = vring_peek(&a->q);
      if (m != NULL) {
        vcheck_msg(&a->check, m, 0); /* poisons the slot itself */
        vring_release(&a->q);
      }
    }
    v_stall(&rng);
  }
  return NULL;
}

static void run(int batch, size_t capacity) {
  run_arg a = {.batch = batch};
  pthread_t p, c;
  a.check.next[3] = 0;
  assert_int_equal(vring_init(&a.q, capacity), SHOAL_OK);
  assert_int_equal(pthread_barrier_init(&a.start, NULL, 2), 0);
  assert_int_equal(pthread_create(&p, NULL, producer, &a), 0);
  assert_int_equal(pthread_create(&c, NULL, consumer, &a), 0);
  pthread_join(p, NULL);
  pthread_join(c, NULL);
  assert_int_equal(a.check.consumed, MESSAGES);
  assert_int_equal(a.check.bad_magic, 0);
  assert_int_equal(a.check.bad_producer, 0);
  assert_int_equal(a.check.doubles, 0);
  assert_int_equal(a.check.gaps, 0);
  assert_int_equal(a.check.next[3], MESSAGES);
  assert_null(vring_peek(&a.q));
  pthread_barrier_destroy(&a.start);
  vring_destroy(&a.q);
}

static void validator_single(void **state) {
  (void)state;
  run(0, 64);
}

static void validator_batch(void **state) {
  (void)state;
  run(1, 16);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(sequential),
    cmocka_unit_test(published_room),
    cmocka_unit_test(validator_single),
    cmocka_unit_test(validator_batch),
  };
  return test_run("spsc", tests, SHOAL_ARRAY_LEN(tests));
}
