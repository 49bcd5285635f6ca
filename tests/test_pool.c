/* test_pool.c — the session pool: arguments, the limit (SHOAL_ELIMIT),
 * growth in slabs, zeroed elements, nodes, set_max, and 8 threads on 2
 * cores getting and putting at once: no element is handed out twice and
 * the counts come out exact. */
#include <pthread.h>
#include <sched.h>
#include <string.h>

#include "pool/pool.h"
#include "test_util.h"

#define ELEM 200 /* not a multiple of the cache line */

static void arguments(void **state) {
  shoal__pool p;
  (void)state;
  assert_int_equal(shoal__pool_init(&p, 0, 100, 0, 10, 1, NULL), SHOAL_EINVAL);
  assert_int_equal(shoal__pool_init(&p, ELEM, 0, 0, 10, 1, NULL), SHOAL_EINVAL);
  assert_int_equal(shoal__pool_init(&p, ELEM, 100, 11, 10, 1, NULL),
                   SHOAL_EINVAL);
  assert_int_equal(shoal__pool_init(&p, ELEM, 100, 0, 0, 1, NULL), SHOAL_EINVAL);
  assert_int_equal(shoal__pool_init(&p, ELEM, 100, 0, 10, 0, NULL),
                   SHOAL_EINVAL);
  assert_int_equal(shoal__pool_init(&p, ELEM, 100, 0, UINT64_C(1) << 32, 1, NULL),
                   SHOAL_EINVAL);
}

static void limit_and_growth(void **state) {
  shoal__pool p;
  shoal__pool_stats st;
  uint32_t idx[260], extra;
  (void)state;
  assert_int_equal(shoal__pool_init(&p, ELEM, 100, 100, 250, 1, NULL), SHOAL_OK);
  assert_int_equal(p.stride % SHOAL__CACHE_LINE, 0);
  assert_true(p.stride >= ELEM);
  shoal__pool_stats_get(&p, &st);
  assert_int_equal(st.allocated, 100);
  assert_int_equal(st.available, 100);
  assert_int_equal(st.slabs, 1);
  for (int i = 0; i < 250; i++) {
    unsigned char *e;
    assert_int_equal(shoal__pool_get(&p, 0, &idx[i]), SHOAL_OK);
    e = shoal__pool_at(&p, idx[i]);
    assert_int_equal((uintptr_t)e % SHOAL__CACHE_LINE, 0);
    for (size_t b = 0; b < p.stride; b++)
      assert_int_equal(e[b], 0);
    memset(e, 0xa5, p.stride); /* the next get of it must zero it */
    for (int j = 0; j < i; j++)
      assert_int_not_equal(idx[j], idx[i]);
  }
  assert_int_equal(shoal__pool_get(&p, 0, &extra), SHOAL_ELIMIT);
  shoal__pool_stats_get(&p, &st);
  assert_int_equal(st.slabs, 3); /* grown in slabs of 100 */
  assert_int_equal(st.allocated, 300);
  assert_int_equal(st.in_use, 250);
  assert_int_equal(st.high_water, 250);
  assert_true(st.bytes >= 300 * p.stride);
  /* A lower limit stops gets until enough come back; a higher one lets
   * the pool use its last slab. */
  assert_int_equal(shoal__pool_set_max(&p, 100), SHOAL_OK);
  for (int i = 0; i < 150; i++)
    shoal__pool_put(&p, idx[i]);
  assert_int_equal(shoal__pool_get(&p, 0, &extra), SHOAL_ELIMIT);
  shoal__pool_put(&p, idx[150]);
  assert_int_equal(shoal__pool_get(&p, 0, &extra), SHOAL_OK);
  assert_int_equal(((unsigned char *)shoal__pool_at(&p, extra))[0], 0);
  /* several at once: distinct, zeroed, never past the limit */
  {
    uint32_t many[8];
    shoal__pool_put(&p, extra);
    for (int i = 151; i < 154; i++)
      shoal__pool_put(&p, idx[i]);
    /* 96 in use of 100: four more at most */
    assert_int_equal(shoal__pool_get_many(&p, 0, 8, many), 4);
    for (int k = 0; k < 4; k++) {
      assert_int_equal(((unsigned char *)shoal__pool_at(&p, many[k]))[0], 0);
      for (int j = 0; j < k; j++)
        assert_int_not_equal(many[j], many[k]);
    }
    assert_int_equal(shoal__pool_get_many(&p, 0, 8, many), 0);
    shoal__pool_stats_get(&p, &st);
    assert_int_equal(st.in_use, 100);
    for (int k = 0; k < 3; k++)
      idx[151 + k] = many[k]; /* held as before */
    extra = many[3];
  }
  assert_int_equal(shoal__pool_set_max(&p, 0), SHOAL_EINVAL);
  assert_int_equal(shoal__pool_set_max(&p, 300), SHOAL_OK);
  for (int i = 0; i < 200; i++)
    assert_int_equal(shoal__pool_get(&p, 0, &idx[i]), SHOAL_OK);
  assert_int_equal(shoal__pool_get(&p, 0, &extra), SHOAL_ELIMIT);
  shoal__pool_stats_get(&p, &st);
  assert_int_equal(st.slabs, 3);
  assert_int_equal(st.in_use, 300);
  assert_int_equal(st.available, 0);
  shoal__pool_destroy(&p);
}

/* Two nodes, no binding (no topology): prealloc is spread in whole slabs,
 * a get prefers its node, then takes from the other. */
static void nodes(void **state) {
  shoal__pool p;
  uint32_t idx[40];
  (void)state;
  assert_int_equal(shoal__pool_init(&p, ELEM, 10, 20, 40, 2, NULL), SHOAL_OK);
  for (int i = 0; i < 10; i++) {
    assert_int_equal(shoal__pool_get(&p, 1, &idx[i]), SHOAL_OK);
    assert_int_equal(shoal__pool_node_of(&p, idx[i]), 1);
  }
  for (int i = 10; i < 20; i++) { /* node 1 is empty: node 0's */
    assert_int_equal(shoal__pool_get(&p, 1, &idx[i]), SHOAL_OK);
    assert_int_equal(shoal__pool_node_of(&p, idx[i]), 0);
  }
  for (int i = 20; i < 30; i++) { /* both empty: a slab on node 1 */
    assert_int_equal(shoal__pool_get(&p, 1, &idx[i]), SHOAL_OK);
    assert_int_equal(shoal__pool_node_of(&p, idx[i]), 1);
  }
  shoal__pool_put(&p, idx[0]);
  assert_int_equal(shoal__pool_get(&p, 7, &idx[0]), SHOAL_OK); /* clamped */
  shoal__pool_destroy(&p);
}

enum { THREADS = 8, MAX = 512, ROUNDS = 50000, HOLD = 96 };

typedef struct shared {
  shoal__pool p;
  _Atomic int owner[MAX + 100]; /* index → thread + 1, or 0 */
  _Atomic uint64_t twice, limits, gets;
  pthread_barrier_t start;
} shared;

typedef struct targ {
  shared *s;
  int id;
} targ;

static void own(shared *s, int id, uint32_t i, uint32_t *held, int *n) {
  int expect = 0;
  if (i >= MAX + 100 ||
      !atomic_compare_exchange_strong(&s->owner[i], &expect, id + 1)) {
    atomic_fetch_add(&s->twice, 1);
    return;
  }
  *(int *)shoal__pool_at(&s->p, i) = id; /* the element is ours */
  held[(*n)++] = i;
  atomic_fetch_add(&s->gets, 1);
}

/* One get for thread id: the element joins held[], or the limit is
 * counted. With many_ok, odd threads take several at once (get_many)
 * when they have room, so that multi-pops race single pops and pushes. */
static void take(shared *s, int id, uint32_t *held, int *n, int many_ok) {
  uint32_t i, many[8], want = (uint32_t)(HOLD - *n) < 8 ? (uint32_t)(HOLD - *n)
                                                         : 8;
  int expect = 0;
  int rc;
  if (many_ok && id % 2 == 1 && want > 1) {
    uint32_t got = shoal__pool_get_many(&s->p, (unsigned)id % 2, want, many);
    for (uint32_t k = 0; k < got; k++)
      own(s, id, many[k], held, n);
    if (got > 0)
      return;
  }
  rc = shoal__pool_get(&s->p, (unsigned)id % 2, &i);
  if (rc == SHOAL_ELIMIT) {
    atomic_fetch_add(&s->limits, 1);
    return;
  }
  if (rc != SHOAL_OK) {
    atomic_fetch_add(&s->twice, 1);
    return;
  }
  (void)expect;
  own(s, id, i, held, n);
}

static void *churn(void *arg) {
  targ *t = arg;
  shared *s = t->s;
  uint32_t held[HOLD];
  int n = 0;
  unsigned seed = (unsigned)t->id * 7919u + 1;
  pthread_barrier_wait(&s->start);
  /* Every thread asks for HOLD elements, then waits for the others: 8 x 96
   * asked while nothing is put back passes 512 whatever the scheduling, so
   * the limit is met at least 8 * 96 - 512 times. */
  for (int r = 0; r < HOLD; r++)
    take(s, t->id, held, &n, 0);
  pthread_barrier_wait(&s->start);
  for (int r = 0; r < ROUNDS; r++) {
    seed = seed * 1103515245u + 12345u;
    if (((seed >> 8) & 63) == 0)
      sched_yield(); /* let the other threads in while we hold some */
    if (n < HOLD && ((seed >> 16) & 3) != 0) {
      take(s, t->id, held, &n, 1);
    } else if (n > 0) {
      uint32_t i = held[--n];
      int expect = t->id + 1;
      if (*(int *)shoal__pool_at(&s->p, i) != t->id ||
          !atomic_compare_exchange_strong(&s->owner[i], &expect, 0))
        atomic_fetch_add(&s->twice, 1);
      shoal__pool_put(&s->p, i);
    }
  }
  while (n > 0) {
    uint32_t i = held[--n];
    atomic_store(&s->owner[i], 0);
    shoal__pool_put(&s->p, i);
  }
  return NULL;
}

static void concurrent(void **state) {
  static shared s;
  pthread_t th[THREADS];
  targ ta[THREADS];
  shoal__pool_stats st;
  (void)state;
  memset(&s, 0, sizeof s);
  assert_int_equal(shoal__pool_init(&s.p, 64, 50, 100, MAX, 2, NULL), SHOAL_OK);
  pthread_barrier_init(&s.start, NULL, THREADS);
  for (int i = 0; i < THREADS; i++) {
    ta[i].s = &s;
    ta[i].id = i;
    pthread_create(&th[i], NULL, churn, &ta[i]);
  }
  for (int i = 0; i < THREADS; i++)
    pthread_join(th[i], NULL);
  pthread_barrier_destroy(&s.start);
  shoal__pool_stats_get(&s.p, &st);
  print_message("# %llu gets, %llu at the limit, %llu slabs, high water %llu\n",
                (unsigned long long)s.gets, (unsigned long long)s.limits,
                (unsigned long long)st.slabs,
                (unsigned long long)st.high_water);
  assert_int_equal(atomic_load(&s.twice), 0);
  assert_true(s.limits >= THREADS * HOLD - MAX); /* the first phase's */
  assert_int_equal(st.in_use, 0);
  assert_int_equal(st.available, st.allocated);
  assert_true(st.allocated <= MAX + 50); /* never past the limit's slab */
  assert_int_equal(st.high_water, MAX); /* reached in the first phase */
  /* Every element is on a free list exactly once: drain them all. */
  for (uint64_t k = 0; k < MAX; k++) {
    uint32_t i;
    assert_int_equal(shoal__pool_get(&s.p, 0, &i), SHOAL_OK);
    assert_int_equal(atomic_exchange(&s.owner[i], 1), 0);
  }
  shoal__pool_destroy(&s.p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(arguments),
    cmocka_unit_test(limit_and_growth),
    cmocka_unit_test(nodes),
    cmocka_unit_test(concurrent),
  };
  return test_run("pool", tests, SHOAL_ARRAY_LEN(tests));
}
