/* test_registry.c — the sharded id registry: id 0, double insert
 * (SHOAL_EEXIST), unknown ids (SHOAL_ENOENT), growth past the expected
 * size, and lookups from 4 threads while 4 others insert and remove (8
 * threads on 2 cores): ids that stay in are always found, ids never
 * inserted never are, every find names an element that carried the id. */
#include <pthread.h>
#include <sched.h>
#include <string.h>

#include "sessions/registry.h"
#include "test_util.h"

typedef struct elem {
  _Atomic uint32_t id; /* the registry's key */
  uint32_t pad[15];
} elem;

static uint32_t make(shoal__pool *p, uint32_t id) {
  uint32_t i = 0;
  assert_int_equal(shoal__pool_get(p, 0, &i), SHOAL_OK);
  atomic_store(&((elem *)shoal__pool_at(p, i))->id, id);
  return i;
}

static void basics(void **state) {
  shoal__pool p;
  shoal__registry r;
  uint32_t a, b;
  (void)state;
  assert_int_equal(shoal__pool_init(&p, sizeof(elem), 100, 100, 1000, 1, NULL),
                   SHOAL_OK);
  assert_int_equal(shoal__registry_init(&r, &p, 100), SHOAL_OK);
  a = make(&p, 42);
  b = make(&p, 43);
  assert_int_equal(shoal__registry_insert(&r, 0, a), SHOAL_EINVAL);
  assert_int_equal(shoal__registry_insert(&r, 42, a), SHOAL_OK);
  assert_int_equal(shoal__registry_insert(&r, 42, b), SHOAL_EEXIST);
  assert_int_equal(shoal__registry_insert(&r, 43, b), SHOAL_OK);
  assert_int_equal(shoal__registry_find(&r, 42), a);
  assert_int_equal(shoal__registry_find(&r, 43), b);
  assert_int_equal(shoal__registry_find(&r, 44), -1);
  assert_int_equal(shoal__registry_find(&r, 0), -1);
  assert_int_equal(shoal__registry_count(&r), 2);
  assert_int_equal(shoal__registry_remove(&r, 44), SHOAL_ENOENT);
  assert_int_equal(shoal__registry_remove(&r, 0), SHOAL_ENOENT);
  assert_int_equal(shoal__registry_remove(&r, 42), SHOAL_OK);
  assert_int_equal(shoal__registry_remove(&r, 42), SHOAL_ENOENT);
  assert_int_equal(shoal__registry_find(&r, 42), -1);
  assert_int_equal(shoal__registry_find(&r, 43), b);
  assert_int_equal(shoal__registry_count(&r), 1);
  shoal__registry_destroy(&r);
  shoal__pool_destroy(&p);
}

/* Far past the expected size, then half removed and re-added. */
static void growth(void **state) {
  enum { N = 6000 };
  static uint32_t idx[N + 1];
  shoal__pool p;
  shoal__registry r;
  (void)state;
  assert_int_equal(shoal__pool_init(&p, sizeof(elem), 100, 0, N, 1, NULL),
                   SHOAL_OK);
  assert_int_equal(shoal__registry_init(&r, &p, 16), SHOAL_OK);
  for (uint32_t id = 1; id <= N; id++) {
    idx[id] = make(&p, id * 2654435761u); /* spread over the 32 bits */
    assert_int_equal(shoal__registry_insert(&r, id * 2654435761u, idx[id]),
                     SHOAL_OK);
  }
  for (uint32_t id = 1; id <= N; id++)
    assert_int_equal(shoal__registry_find(&r, id * 2654435761u), idx[id]);
  for (uint32_t id = 1; id <= N; id += 2)
    assert_int_equal(shoal__registry_remove(&r, id * 2654435761u), SHOAL_OK);
  assert_int_equal(shoal__registry_count(&r), N / 2);
  for (uint32_t id = 1; id <= N; id++)
    assert_int_equal(shoal__registry_find(&r, id * 2654435761u),
                     id % 2 ? -1 : (int64_t)idx[id]);
  for (uint32_t id = 1; id <= N; id += 2)
    assert_int_equal(shoal__registry_insert(&r, id * 2654435761u, idx[id]),
                     SHOAL_OK);
  assert_int_equal(shoal__registry_count(&r), N);
  shoal__registry_destroy(&r);
  shoal__pool_destroy(&p);
}

/* Ids that only grow, each inserted and removed, beside ids that stay: the
 * tables do not fill with tombstones (a find of an absent id would walk
 * them all), and every id that stays is still found. */
static void churn(void **state) {
  enum { STAY = 3000, CYCLES = 400000 };
  static uint32_t idx[STAY + 1];
  shoal__pool p;
  shoal__registry r;
  uint64_t tomb, entries;
  uint32_t spare;
  (void)state;
  assert_int_equal(shoal__pool_init(&p, sizeof(elem), 100, 0, STAY + 1, 1,
                                    NULL),
                   SHOAL_OK);
  assert_int_equal(shoal__registry_init(&r, &p, 16), SHOAL_OK);
  for (uint32_t id = 1; id <= STAY; id++) {
    idx[id] = make(&p, id);
    assert_int_equal(shoal__registry_insert(&r, id, idx[id]), SHOAL_OK);
  }
  spare = make(&p, 0);
  for (uint32_t id = STAY + 1; id <= STAY + CYCLES; id++) {
    atomic_store(&((elem *)shoal__pool_at(&p, spare))->id, id);
    assert_int_equal(shoal__registry_insert(&r, id, spare), SHOAL_OK);
    assert_int_equal(shoal__registry_remove(&r, id), SHOAL_OK);
  }
  tomb = shoal__registry_tombstones(&r, &entries);
  /* A sweep every quarter of a table's size in removals. */
  if (tomb > entries / 4)
    fail_msg("%llu tombstones in %llu entries", (unsigned long long)tomb,
             (unsigned long long)entries);
  for (uint32_t id = 1; id <= STAY; id++)
    assert_int_equal(shoal__registry_find(&r, id), idx[id]);
  assert_int_equal(shoal__registry_find(&r, STAY + 1), -1);
  assert_int_equal(shoal__registry_count(&r), STAY);
  shoal__registry_destroy(&r);
  shoal__pool_destroy(&p);
}

enum { WRITERS = 4, READERS = 4, STABLE = 500, CHURN = 400, ROUNDS = 30000 };

typedef struct world {
  shoal__pool p;
  shoal__registry r;
  uint32_t stable_idx[STABLE];
  _Atomic int stop;
  _Atomic uint64_t misses, phantoms, wrong, finds;
  pthread_barrier_t start;
} world;

typedef struct warg {
  world *w;
  unsigned id;
} warg;

/* Stable ids: 1 … STABLE. Writer t churns ids 100000 + t + WRITERS * k.
 * Never inserted: 50000 … 50999. */
static void *writer(void *arg) {
  warg *a = arg;
  world *w = a->w;
  uint32_t held[CHURN], hidx[CHURN];
  unsigned n = 0, seed = a->id * 31u + 7u;
  pthread_barrier_wait(&w->start);
  for (int r = 0; r < ROUNDS; r++) {
    seed = seed * 1103515245u + 12345u;
    if (n < CHURN && (seed >> 16) % 3 != 0) {
      uint32_t id = 100000u + a->id + WRITERS * ((seed >> 8) % 100000u), i;
      if (shoal__pool_get(&w->p, 0, &i) != SHOAL_OK)
        continue;
      atomic_store(&((elem *)shoal__pool_at(&w->p, i))->id, id);
      if (shoal__registry_insert(&w->r, id, i) != SHOAL_OK) { /* EEXIST */
        atomic_store(&((elem *)shoal__pool_at(&w->p, i))->id, 0);
        shoal__pool_put(&w->p, i);
        continue;
      }
      held[n] = id;
      hidx[n++] = i;
    } else if (n > 0) {
      unsigned k = (seed >> 4) % n;
      uint32_t id = held[k], i = hidx[k];
      if (shoal__registry_remove(&w->r, id) != SHOAL_OK)
        atomic_fetch_add(&w->wrong, 1);
      atomic_store(&((elem *)shoal__pool_at(&w->p, i))->id, 0);
      shoal__pool_put(&w->p, i);
      held[k] = held[--n];
      hidx[k] = hidx[n];
    }
    if ((r & 63) == 0)
      sched_yield();
  }
  return NULL;
}

static void *reader(void *arg) {
  warg *a = arg;
  world *w = a->w;
  unsigned seed = a->id * 17u + 3u;
  pthread_barrier_wait(&w->start);
  while (!atomic_load(&w->stop)) {
    seed = seed * 1103515245u + 12345u;
    uint32_t s = 1 + (seed >> 8) % STABLE;
    int64_t i = shoal__registry_find(&w->r, s);
    if (i != (int64_t)w->stable_idx[s - 1])
      atomic_fetch_add(&w->misses, 1);
    if (shoal__registry_find(&w->r, 50000u + (seed >> 4) % 1000u) >= 0)
      atomic_fetch_add(&w->phantoms, 1);
    uint32_t c = 100000u + (seed >> 12) % (WRITERS * 100000u);
    i = shoal__registry_find(&w->r, c);
    if (i >= 0) {
      /* Found: the element carried c when the probe read it; it may have
       * been released since, so it holds c or something else now, but it
       * is a real element. */
      if (i >= (int64_t)STABLE + WRITERS * CHURN + 100)
        atomic_fetch_add(&w->wrong, 1);
      atomic_fetch_add(&w->finds, 1);
    }
    if ((seed & 255) == 0)
      sched_yield();
  }
  return NULL;
}

static void concurrent(void **state) {
  static world w;
  pthread_t wt[WRITERS], rt[READERS];
  warg wa[WRITERS], ra[READERS];
  (void)state;
  memset(&w, 0, sizeof w);
  assert_int_equal(shoal__pool_init(&w.p, sizeof(elem), 100, 100,
                                    STABLE + WRITERS * CHURN + 100, 1, NULL),
                   SHOAL_OK);
  assert_int_equal(shoal__registry_init(&w.r, &w.p, 64), SHOAL_OK);
  for (uint32_t s = 1; s <= STABLE; s++) {
    w.stable_idx[s - 1] = make(&w.p, s);
    assert_int_equal(shoal__registry_insert(&w.r, s, w.stable_idx[s - 1]),
                     SHOAL_OK);
  }
  pthread_barrier_init(&w.start, NULL, WRITERS + READERS);
  for (unsigned i = 0; i < READERS; i++) {
    ra[i] = (warg){&w, i};
    pthread_create(&rt[i], NULL, reader, &ra[i]);
  }
  for (unsigned i = 0; i < WRITERS; i++) {
    wa[i] = (warg){&w, i};
    pthread_create(&wt[i], NULL, writer, &wa[i]);
  }
  for (unsigned i = 0; i < WRITERS; i++)
    pthread_join(wt[i], NULL);
  atomic_store(&w.stop, 1);
  for (unsigned i = 0; i < READERS; i++)
    pthread_join(rt[i], NULL);
  pthread_barrier_destroy(&w.start);
  print_message("# %llu finds of churning ids\n",
                (unsigned long long)atomic_load(&w.finds));
  assert_int_equal(atomic_load(&w.misses), 0);
  assert_int_equal(atomic_load(&w.phantoms), 0);
  assert_int_equal(atomic_load(&w.wrong), 0);
  assert_true(shoal__registry_count(&w.r) >= STABLE);
  shoal__registry_destroy(&w.r);
  shoal__pool_destroy(&w.p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(basics),
    cmocka_unit_test(growth),
    cmocka_unit_test(churn),
    cmocka_unit_test(concurrent),
  };
  return test_run("registry", tests, SHOAL_ARRAY_LEN(tests));
}
