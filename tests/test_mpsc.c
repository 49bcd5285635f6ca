/* test_mpsc.c — the bounded MPSC mailbox queue: full policies, the
 * generation, the idle bit and its single waker, batches, index wrap,
 * room handed back through the published head; a
 * validator run (4 producers, 1 consumer, more threads than cores) in
 * which every idle period is ended by exactly one push; and a time-boxed
 * conservation run under the drop policy. */
#include <pthread.h>

#include "runtime/actors/mpsc.h"
#include "test_util.h"
#include "validate.h"

SHOAL__MPSC_DEFINE(u64_box, uint64_t)
SHOAL__MPSC_DEFINE(vbox, vmsg)

#if SHOAL__TSAN
#define PER_PRODUCER 40000
#define CONSERVE_MS 200
#else
#define PER_PRODUCER 500000
#define CONSERVE_MS 400
#endif
#define PRODUCERS 4

static void sequential(void **state) {
  u64_box q;
  uint64_t x = 0, seen = 0, xs[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  size_t pushed = 0;
  (void)state;
  assert_int_equal(u64_box_init(&q, 4, 7, 0), SHOAL_EINVAL); /* policy */
  assert_int_equal(u64_box_init(&q, 0, 0, 0), SHOAL_EINVAL);
  assert_int_equal(u64_box_init(&q, 3, SHOAL__MPSC_BACKPRESSURE, 5), SHOAL_OK);
  assert_int_equal(u64_box_try_pop(&q, &x), SHOAL_EAGAIN);
  for (uint64_t i = 0; i < 4; i++)
    assert_int_equal(u64_box_try_push(&q, 5, &i), SHOAL_OK);
  assert_int_equal(u64_box_try_push(&q, 5, &x), SHOAL_EAGAIN); /* full */
  assert_int_equal(atomic_load(&q.dropped), 0);
  assert_int_equal(u64_box_try_push(&q, 6, &x), SHOAL_ENOENT); /* other gen */
  assert_int_equal(u64_box_depth(&q), 4);
  /* Not idle while claimed cells remain. */
  assert_int_equal(u64_box_try_idle(&q, 5, &seen), 0);
  assert_int_equal(shoal__mpsc_index(seen), 4);
  for (uint64_t i = 0; i < 4; i++) {
    assert_int_equal(u64_box_try_pop(&q, &x), SHOAL_OK);
    assert_int_equal(x, i);
  }
  /* Idle: exactly the next push wakes. */
  assert_int_equal(u64_box_try_idle(&q, 5, &seen), 1);
  assert_int_equal(u64_box_try_push(&q, 5, &x), SHOAL__MPSC_WOKE);
  assert_int_equal(u64_box_try_push(&q, 5, &x), SHOAL_OK);
  assert_int_equal(u64_box_try_pop(&q, &x), SHOAL_OK);
  assert_int_equal(u64_box_try_pop(&q, &x), SHOAL_OK);
  /* Batches stop at the first cell not free. */
  assert_int_equal(u64_box_push_batch(&q, 5, xs, 3, &pushed), SHOAL_OK);
  assert_int_equal(pushed, 3);
  assert_int_equal(u64_box_push_batch(&q, 5, xs, 8, &pushed), SHOAL_OK);
  assert_int_equal(pushed, 1);
  assert_int_equal(u64_box_push_batch(&q, 5, xs, 8, &pushed), SHOAL_EAGAIN);
  assert_int_equal(pushed, 0);
  for (uint64_t i = 0; i < 3; i++) {
    assert_int_equal(u64_box_try_pop(&q, &x), SHOAL_OK);
    assert_int_equal(x, i + 1);
  }
  assert_int_equal(u64_box_try_pop(&q, &x), SHOAL_OK);
  assert_int_equal(x, 1);
  u64_box_destroy(&q);

  /* Drop policy: the failure is counted. */
  assert_int_equal(u64_box_init(&q, 2, SHOAL__MPSC_DROP, 0), SHOAL_OK);
  assert_int_equal(u64_box_push_batch(&q, 0, xs, 5, &pushed), SHOAL_OK);
  assert_int_equal(pushed, 2);
  assert_int_equal(atomic_load(&q.dropped), 3);
  assert_int_equal(u64_box_try_push(&q, 0, &x), SHOAL_ELIMIT);
  assert_int_equal(atomic_load(&q.dropped), 4);
  u64_box_destroy(&q);
}

/* Indices wrap at 2^48: start just below and cross it. */
static void index_wrap(void **state) {
  u64_box q;
  uint64_t start = SHOAL__MPSC_INDEX_MASK - 5, x = 0, seen = 0;
  (void)state;
  assert_int_equal(u64_box_init(&q, 4, SHOAL__MPSC_BACKPRESSURE, 9), SHOAL_OK);
  u64_box_reset(&q, 9, start);
  for (uint64_t round = 0; round < 5; round++) {
    for (uint64_t i = 0; i < 4; i++) {
      uint64_t v = round * 10 + i;
      assert_int_equal(u64_box_try_push(&q, 9, &v), SHOAL_OK);
    }
    assert_int_equal(u64_box_try_push(&q, 9, &x), SHOAL_EAGAIN);
    assert_int_equal(u64_box_depth(&q), 4);
    for (uint64_t i = 0; i < 4; i++) {
      assert_int_equal(u64_box_try_pop(&q, &x), SHOAL_OK);
      assert_int_equal(x, round * 10 + i);
    }
  }
  assert_true(shoal__mpsc_index(atomic_load(&q.tail)) < start);
  assert_int_equal(u64_box_try_idle(&q, 9, &seen), 1);
  assert_int_equal(u64_box_try_push(&q, 9, &x), SHOAL__MPSC_WOKE);
  u64_box_destroy(&q);
}

/* Room comes back through the published head: every `pub` pops, and all
 * of it once the consumer finds the queue empty. A head left by a producer
 * of an older generation never lends room to the new one. */
static void published_room(void **state) {
  u64_box q;
  uint64_t x = 0, cap = 64, pub;
  (void)state;
  assert_int_equal(u64_box_init(&q, cap, SHOAL__MPSC_BACKPRESSURE, 2), SHOAL_OK);
  pub = atomic_load(&q.ring)->pub + 1;
  assert_true(pub > 1 && pub <= cap / 2);
  for (uint64_t i = 0; i < cap; i++)
    assert_int_equal(u64_box_try_push(&q, 2, &i), SHOAL_OK);
  assert_int_equal(u64_box_try_push(&q, 2, &x), SHOAL_EAGAIN);
  /* pub pops: exactly pub more pushes fit. */
  for (uint64_t i = 0; i < pub; i++)
    assert_int_equal(u64_box_try_pop(&q, &x), SHOAL_OK);
  for (uint64_t i = 0; i < pub; i++)
    assert_int_equal(u64_box_try_push(&q, 2, &i), SHOAL_OK);
  assert_int_equal(u64_box_try_push(&q, 2, &x), SHOAL_EAGAIN);
  /* Drained to empty: the whole capacity again, in order. */
  for (uint64_t i = 0; i < cap; i++)
    assert_int_equal(u64_box_try_pop(&q, &x), SHOAL_OK);
  assert_int_equal(u64_box_try_pop(&q, &x), SHOAL_EAGAIN);
  for (uint64_t i = 0; i < cap; i++)
    assert_int_equal(u64_box_try_push(&q, 2, &i), SHOAL_OK);
  assert_int_equal(u64_box_try_push(&q, 2, &x), SHOAL_EAGAIN);
  assert_int_equal(u64_box_depth(&q), cap);
  /* A stale producer of generation 1 leaves its head, far ahead. */
  u64_box_reset(&q, 4, 0);
  atomic_store(&q.head_seen, shoal__mpsc_word(1, 3 * cap, 0));
  for (uint64_t i = 0; i < cap; i++)
    assert_int_equal(u64_box_try_push(&q, 4, &i), SHOAL_OK);
  assert_int_equal(u64_box_try_push(&q, 4, &x), SHOAL_EAGAIN);
  for (uint64_t i = 0; i < cap; i++) {
    assert_int_equal(u64_box_try_pop(&q, &x), SHOAL_OK);
    assert_int_equal(x, i);
  }
  u64_box_destroy(&q);
}

typedef struct run_arg {
  vbox q;
  pthread_barrier_t start;
  _Atomic int stop;              /* conservation: time is up */
  _Atomic uint64_t woke;         /* pushes that returned WOKE */
  _Atomic uint64_t attempts;     /* conservation: pushes tried */
  _Atomic uint64_t refused;      /* pushes that returned ELIMIT */
  uint64_t idles;                /* consumer: successful try_idle */
  int conserve;
  vcheck check;
} run_arg;

typedef struct prod_arg {
  run_arg *a;
  unsigned id;
} prod_arg;

static void *producer(void *p) {
  prod_arg *pa = p;
  run_arg *a = pa->a;
  uint64_t rng = 0x9e3779b97f4a7c15u * (pa->id + 1), seq = 0;
  uint64_t attempts = 0, refused = 0;
  v_pin(pa->id);
  pthread_barrier_wait(&a->start);
  for (;;) {
    vmsg m = {V_MAGIC, pa->id, seq};
    int rc;
    if (a->conserve ? atomic_load_explicit(&a->stop, memory_order_relaxed)
                    : seq == PER_PRODUCER)
      break;
    rc = vbox_try_push(&a->q, 0, &m);
    attempts++;
    if (rc == SHOAL__MPSC_WOKE)
      atomic_fetch_add(&a->woke, 1);
    if (rc >= 0 || rc == SHOAL_ELIMIT)
      seq++; /* accepted, or dropped and counted: the next one */
    if (rc == SHOAL_ELIMIT)
      refused++;
    else if (rc == SHOAL_EAGAIN)
      sched_yield(); /* back-pressure */
    v_stall(&rng);
  }
  atomic_fetch_add(&a->attempts, attempts);
  atomic_fetch_add(&a->refused, refused);
  return NULL;
}

/* Consumes until `until` messages or, with 0, until stop; goes idle when
 * it finds nothing and then waits for the push that wakes it. */
static void consume(run_arg *a, uint64_t until) {
  uint64_t rng = 0x2545f4914f6cdd1du, seen;
  for (;;) {
    vmsg *m;
    if (until != 0 ? a->check.consumed >= until
                   : atomic_load_explicit(&a->stop, memory_order_relaxed))
      return;
    if ((m = vbox_peek(&a->q)) != NULL) {
      vcheck_msg(&a->check, m, a->conserve);
      vbox_release(&a->q);
    } else if (vbox_try_idle(&a->q, 0, &seen)) {
      a->idles++;
      while (atomic_load(&a->woke) < a->idles) {
        if (until == 0 && atomic_load_explicit(&a->stop, memory_order_relaxed))
          return;
        sched_yield();
      }
    }
    v_stall(&rng);
  }
}

static void *consumer(void *p) {
  run_arg *a = p;
  v_pin(PRODUCERS);
  pthread_barrier_wait(&a->start);
  consume(a, a->conserve ? 0 : (uint64_t)PRODUCERS * PER_PRODUCER);
  return NULL;
}

static void run(int conserve, int policy, size_t capacity) {
  run_arg *a = calloc(1, sizeof *a);
  pthread_t th[PRODUCERS + 1];
  prod_arg pa[PRODUCERS];
  uint64_t drained = 0;
  assert_non_null(a);
  a->conserve = conserve;
  assert_int_equal(vbox_init(&a->q, capacity, policy, 0), SHOAL_OK);
  assert_int_equal(pthread_barrier_init(&a->start, NULL, PRODUCERS + 2), 0);
  for (unsigned i = 0; i < PRODUCERS; i++) {
    pa[i] = (prod_arg){a, i};
    assert_int_equal(pthread_create(&th[i], NULL, producer, &pa[i]), 0);
  }
  assert_int_equal(pthread_create(&th[PRODUCERS], NULL, consumer, a), 0);
  pthread_barrier_wait(&a->start);
  if (conserve) {
    uint64_t end = v_now_ms() + CONSERVE_MS;
    while (v_now_ms() < end)
      usleep(10000);
    atomic_store(&a->stop, 1);
  }
  for (unsigned i = 0; i <= PRODUCERS; i++)
    pthread_join(th[i], NULL);
  /* Drain what the consumer left. */
  for (vmsg *m; (m = vbox_peek(&a->q)) != NULL; vbox_release(&a->q)) {
    vcheck_msg(&a->check, m, conserve);
    drained++;
  }
  assert_int_equal(vbox_depth(&a->q), 0);
  assert_int_equal(a->check.bad_magic, 0);
  assert_int_equal(a->check.bad_producer, 0);
  assert_int_equal(a->check.doubles, 0);
  assert_int_equal(a->check.gaps, 0);
  if (conserve) {
    uint64_t attempts = atomic_load(&a->attempts);
    uint64_t dropped = atomic_load(&a->q.dropped);
    uint64_t eagain = attempts - (a->check.consumed + dropped);
    print_message("# conservation: %llu tried, %llu consumed (%llu drained), "
                  "%llu dropped\n", (unsigned long long)attempts,
                  (unsigned long long)a->check.consumed,
                  (unsigned long long)drained, (unsigned long long)dropped);
    assert_int_equal(atomic_load(&a->refused), dropped);
    if (policy == SHOAL__MPSC_DROP)
      assert_int_equal(eagain, 0); /* tried == consumed + drained + dropped */
    assert_true(a->check.consumed > 0);
  } else {
    assert_int_equal(drained, 0);
    assert_int_equal(a->check.consumed, (uint64_t)PRODUCERS * PER_PRODUCER);
    for (unsigned i = 0; i < PRODUCERS; i++)
      assert_int_equal(a->check.next[i], PER_PRODUCER);
    /* Every idle period was ended by exactly one push. */
    assert_int_equal(atomic_load(&a->woke), a->idles);
  }
  pthread_barrier_destroy(&a->start);
  vbox_destroy(&a->q);
  free(a);
}

static void validator(void **state) {
  (void)state;
  run(0, SHOAL__MPSC_BACKPRESSURE, 64);
}

static void conservation_drop(void **state) {
  (void)state;
  run(1, SHOAL__MPSC_DROP, 32);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(sequential),
    cmocka_unit_test(index_wrap),
    cmocka_unit_test(published_room),
    cmocka_unit_test(validator),
    cmocka_unit_test(conservation_drop),
  };
  return test_run("mpsc", tests, SHOAL_ARRAY_LEN(tests));
}
