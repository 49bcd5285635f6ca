/* test_deque.c — the Chase-Lev deque: LIFO for the owner, FIFO for thieves,
 * growth, and torture runs (an owner and 7 thieves, more threads than
 * cores, seeded) in which every element must come out exactly once. */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "runtime/sched/deque.h"
#include "test_util.h"

#if SHOAL__TSAN
#define STRESS_ITEMS 20000
#define STRESS_ROUNDS 2
#else
#define STRESS_ITEMS 300000
#define STRESS_ROUNDS 4
#endif
#define THIEVES 7

#define ITEM(i) ((void *)(uintptr_t)((i) + 1))

static void sequential(void **state) {
  shoal__deque d;
  void *x = NULL;
  (void)state;
  assert_int_equal(shoal__deque_init(&d, 1), SHOAL_OK);
  assert_null(shoal__deque_take_owner(&d));
  assert_int_equal(shoal__deque_steal(&d, &x), SHOAL__STEAL_EMPTY);
  for (size_t i = 0; i < 1000; i++) /* grows 2 -> 1024 */
    assert_int_equal(shoal__deque_push_owner(&d, ITEM(i)), SHOAL_OK);
  assert_int_equal(shoal__deque_size_hint(&d), 1000);
  for (size_t i = 1000; i-- > 0;)
    assert_ptr_equal(shoal__deque_take_owner(&d), ITEM(i));
  assert_null(shoal__deque_take_owner(&d));

  /* Thieves take the oldest, the owner the newest. */
  for (size_t i = 0; i < 10; i++)
    assert_int_equal(shoal__deque_push_owner(&d, ITEM(i)), SHOAL_OK);
  assert_int_equal(shoal__deque_steal(&d, &x), SHOAL__STEAL_OK);
  assert_ptr_equal(x, ITEM(0));
  assert_ptr_equal(shoal__deque_take_owner(&d), ITEM(9));
  assert_int_equal(shoal__deque_steal(&d, &x), SHOAL__STEAL_OK);
  assert_ptr_equal(x, ITEM(1));
  for (size_t i = 8; i >= 2; i--)
    assert_ptr_equal(shoal__deque_take_owner(&d), ITEM(i));
  assert_int_equal(shoal__deque_steal(&d, &x), SHOAL__STEAL_EMPTY);
  assert_null(shoal__deque_take_owner(&d));
  shoal__deque_destroy(&d);
}

typedef struct torture {
  shoal__deque d;
  pthread_barrier_t start;
  _Atomic int done;
  _Atomic unsigned char *seen; /* per item: how often it came out */
  size_t *payload;        /* plain memory the owner writes before a push */
  size_t items;
  uint64_t seed;
  int take_percent;       /* the owner takes after a push this often */
  _Atomic size_t stolen, lost;
} torture;

static uint64_t xorshift(uint64_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

#define PAYLOAD(i) ((i) * 7 + 1)

/* The payload is read without atomics: the deque's release/acquire pair
 * must make the owner's write visible (TSan reports it otherwise). */
static void record(torture *T, void *x) {
  size_t i = (size_t)((size_t *)x - T->payload);
  if (i >= T->items || *(size_t *)x != PAYLOAD(i))
    fail_msg("element %p holds %zu, not the payload of item %zu", x,
             i < T->items ? *(size_t *)x : 0, i);
  atomic_fetch_add_explicit(&T->seen[i], 1, memory_order_relaxed);
}

static void *thief_main(void *arg) {
  torture *T = arg;
  size_t stolen = 0, lost = 0;
  pthread_barrier_wait(&T->start);
  for (;;) {
    void *x = NULL;
    shoal__steal_rc rc = shoal__deque_steal(&T->d, &x);
    if (rc == SHOAL__STEAL_OK) {
      record(T, x);
      stolen++;
    } else if (rc == SHOAL__STEAL_LOST) {
      lost++;
    } else if (atomic_load_explicit(&T->done, memory_order_acquire)) {
      break;
    }
  }
  atomic_fetch_add(&T->stolen, stolen);
  atomic_fetch_add(&T->lost, lost);
  return NULL;
}

static void run_torture(torture *T) {
  pthread_t th[THIEVES];
  uint64_t rng = T->seed;
  atomic_init(&T->done, 0);
  atomic_init(&T->stolen, 0);
  atomic_init(&T->lost, 0);
  T->seen = calloc(T->items, sizeof *T->seen);
  T->payload = calloc(T->items, sizeof *T->payload);
  assert_non_null(T->seen);
  assert_non_null(T->payload);
  assert_int_equal(shoal__deque_init(&T->d, 2), SHOAL_OK);
  assert_int_equal(pthread_barrier_init(&T->start, NULL, THIEVES + 1), 0);
  for (int i = 0; i < THIEVES; i++)
    assert_int_equal(pthread_create(&th[i], NULL, thief_main, T), 0);
  pthread_barrier_wait(&T->start);
  for (size_t i = 0; i < T->items; i++) {
    T->payload[i] = PAYLOAD(i);
    assert_int_equal(shoal__deque_push_owner(&T->d, &T->payload[i]), SHOAL_OK);
    while ((int)(xorshift(&rng) % 100) < T->take_percent) {
      void *x = shoal__deque_take_owner(&T->d);
      if (x == NULL)
        break;
      record(T, x);
    }
  }
  for (void *x; (x = shoal__deque_take_owner(&T->d)) != NULL;)
    record(T, x);
  /* release: pairs with the thieves' acquire load of done. */
  atomic_store_explicit(&T->done, 1, memory_order_release);
  for (int i = 0; i < THIEVES; i++)
    pthread_join(th[i], NULL);
  for (size_t i = 0; i < T->items; i++)
    if (T->seen[i] != 1)
      fail_msg("item %zu came out %u times (seed %llu)", i,
               (unsigned)T->seen[i], (unsigned long long)T->seed);
  assert_int_equal(shoal__deque_size_hint(&T->d), 0);
  print_message("# seed %llu: %zu items, %zu stolen, %zu lost races\n",
                (unsigned long long)T->seed, T->items,
                atomic_load(&T->stolen), atomic_load(&T->lost));
  pthread_barrier_destroy(&T->start);
  shoal__deque_destroy(&T->d);
  free((void *)T->seen);
  free(T->payload);
}

/* The owner pushes everything and takes rarely: thieves take most. */
static void torture_steals(void **state) {
  (void)state;
  for (int r = 0; r < STRESS_ROUNDS; r++) {
    torture T = {.items = STRESS_ITEMS, .seed = 0x9e3779b97f4a7c15ull + (uint64_t)r,
                 .take_percent = 10};
    run_torture(&T);
  }
}

/* The owner takes after nearly every push: the deque holds one or two
 * elements, so the owner and the thieves race for the last one. */
static void torture_last_element(void **state) {
  (void)state;
  for (int r = 0; r < STRESS_ROUNDS; r++) {
    torture T = {.items = STRESS_ITEMS, .seed = 0x2545f4914f6cdd1dull + (uint64_t)r,
                 .take_percent = 90};
    run_torture(&T);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(sequential),
    cmocka_unit_test(torture_steals),
    cmocka_unit_test(torture_last_element),
  };
  return test_run("deque", tests, SHOAL_ARRAY_LEN(tests));
}
