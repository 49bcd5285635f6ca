/* test_dsched.c — the deque and the queues under the seeded deterministic
 * scheduler (dsched.h): for each of thousands of seeds a small scenario
 * runs and its invariants are checked (every element out exactly once,
 * FIFO per producer, no lost wake-up of an idle consumer). A failing seed
 * is printed with the command that replays it:
 *
 *   test_dsched --case NAME --seed N
 *
 * Built a second time with SHOAL__DEQUE_BROKEN=1 (take without its fence),
 * where it must find a failing seed and replay it step for step. */
#include <inttypes.h>
#include <string.h>

#include "runtime/sched/deque.h"
#include "runtime/sched/mpmc.h"
#include "runtime/actors/mpsc.h"
#include "bench/spsc.h"
#include "../test_util.h"
#include "dsched.h"

#ifndef DS_SEEDS
#define DS_SEEDS 3000
#endif
#define MAX_STEPS 200000

typedef struct verdict {
  bool ok;
  char why[160];
  ds_result res;
} verdict;

static void failf(verdict *v, const char *fmt, ...) SHOAL__PRINTF(2, 3);
static void failf(verdict *v, const char *fmt, ...) {
  va_list ap;
  if (!v->ok)
    return; /* keep the first */
  v->ok = false;
  va_start(ap, fmt);
  vsnprintf(v->why, sizeof v->why, fmt, ap);
  va_end(ap);
}

static uint64_t mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdu;
  x ^= x >> 33;
  return x;
}

/* Each element's count: tallied by the thread that takes it (one thread
 * runs at a time, and the scheduler's hand-offs order these writes). */
static void tally(verdict *v, unsigned char *got, size_t n, size_t i) {
  if (i >= n)
    failf(v, "an element out of range (%zu)", i);
  else
    got[i]++;
}

static void check_once(verdict *v, const unsigned char *got, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (got[i] != 1)
      failf(v, "element %zu came out %u times", i, got[i]);
}

/* ---- deque: an owner pushing and taking, two thieves stealing ---- */

#define DQ_ITEMS 6
typedef struct dq_case {
  shoal__deque d;
  uint64_t rng;
  unsigned char got[DQ_ITEMS];
  verdict *v;
} dq_case;

#define DQ_ITEM(i) ((void *)(uintptr_t)((i) + 1))
#define DQ_INDEX(x) ((size_t)(uintptr_t)(x) - 1)

static void dq_owner(void *arg) {
  dq_case *c = arg;
  void *x;
  for (size_t i = 0; i < DQ_ITEMS; i++) {
    if (shoal__deque_push_owner(&c->d, DQ_ITEM(i)) != SHOAL_OK)
      failf(c->v, "push failed");
    c->rng = mix(c->rng + i);
    if (c->rng % 3 == 0 && (x = shoal__deque_take_owner(&c->d)) != NULL)
      tally(c->v, c->got, DQ_ITEMS, DQ_INDEX(x));
  }
  while ((x = shoal__deque_take_owner(&c->d)) != NULL)
    tally(c->v, c->got, DQ_ITEMS, DQ_INDEX(x));
}

static void dq_thief(void *arg) {
  dq_case *c = arg;
  void *x;
  for (int tries = 0; tries < 4; tries++)
    if (shoal__deque_steal(&c->d, &x) == SHOAL__STEAL_OK)
      tally(c->v, c->got, DQ_ITEMS, DQ_INDEX(x));
}

static void run_deque(uint64_t seed, verdict *v) {
  dq_case c = {.rng = seed, .v = v};
  ds_fn fn[] = {dq_owner, dq_thief, dq_thief};
  void *arg[] = {&c, &c, &c};
  void *x;
  size_t left = 0;
  shoal__deque_init(&c.d, 2); /* small: pushes grow it under the thieves */
  ds_run(seed, 3, fn, arg, MAX_STEPS, &v->res);
  /* The owner took until empty, and thieves only remove. */
  while (shoal__deque_steal(&c.d, &x) == SHOAL__STEAL_OK) {
    tally(v, c.got, DQ_ITEMS, DQ_INDEX(x));
    left++;
  }
  if (left != 0)
    failf(v, "%zu elements left after the owner found the deque empty", left);
  check_once(v, c.got, DQ_ITEMS);
  shoal__deque_destroy(&c.d);
}

/* ---- mpsc: two producers, one consumer that goes idle ---- */

SHOAL__MPSC_DEFINE(ds_mpsc, uint32_t)

#define MP_PER 3
typedef struct mp_case {
  ds_mpsc q;
  _Atomic uint32_t wakes, producers_done;
  uint32_t next[2]; /* the consumer's next expected per producer */
  unsigned char got[2 * MP_PER];
  verdict *v;
  int id_[2];
} mp_case;

static void mp_producer(mp_case *c, uint32_t p) {
  for (uint32_t i = 0; i < MP_PER; i++) {
    uint32_t x = p * MP_PER + i;
    int rc;
    while ((rc = ds_mpsc_try_push(&c->q, 0, &x)) == SHOAL_EAGAIN)
      if (ds_stuck())
        return;
    if (rc == SHOAL__MPSC_WOKE)
      shoal__fetch_add(&c->wakes, 1, memory_order_release);
    else if (rc != SHOAL_OK)
      failf(c->v, "push returned %d", rc);
  }
  shoal__fetch_add(&c->producers_done, 1, memory_order_release);
}
static void mp_producer0(void *arg) { mp_producer(arg, 0); }
static void mp_producer1(void *arg) { mp_producer(arg, 1); }

static void mp_consumer(void *arg) {
  mp_case *c = arg;
  uint32_t count = 0, woken = 0, x;
  uint64_t seen;
  while (count < 2 * MP_PER) {
    if (ds_mpsc_try_pop(&c->q, &x) == SHOAL_OK) {
      uint32_t p = x / MP_PER;
      if (p < 2 && x % MP_PER != c->next[p])
        failf(c->v, "producer %u: element %u came before %u", p, x % MP_PER,
              c->next[p]);
      if (p < 2)
        c->next[p] = x % MP_PER + 1;
      tally(c->v, c->got, 2 * MP_PER, x);
      count++;
      continue;
    }
    if (ds_mpsc_try_idle(&c->q, 0, &seen) != 1)
      continue;
    /* Idle: only a push that clears the bit may wake us. */
    while (shoal__load(&c->wakes, memory_order_acquire) == woken) {
      if (ds_stuck()) {
        failf(c->v, "lost wake-up: idle with %u of %u consumed, producers "
                    "done: %u", count, 2 * MP_PER,
              shoal__load(&c->producers_done, memory_order_relaxed));
        return;
      }
    }
    woken++;
  }
}

static void run_mpsc(uint64_t seed, verdict *v) {
  mp_case c = {.v = v};
  ds_fn fn[] = {mp_producer0, mp_producer1, mp_consumer};
  void *arg[] = {&c, &c, &c};
  atomic_init(&c.wakes, 0);
  atomic_init(&c.producers_done, 0);
  ds_mpsc_init(&c.q, 2, SHOAL__MPSC_BACKPRESSURE, 0);
  ds_run(seed, 3, fn, arg, MAX_STEPS, &v->res);
  check_once(v, c.got, 2 * MP_PER);
  ds_mpsc_destroy(&c.q);
}

/* ---- spsc: one producer, one consumer, a ring of two ---- */

SHOAL__SPSC_DEFINE(ds_spsc, uint32_t)

#define SP_ITEMS 6
typedef struct sp_case {
  ds_spsc q;
  uint32_t order[SP_ITEMS];
  unsigned char got[SP_ITEMS];
  verdict *v;
} sp_case;

static void sp_producer(void *arg) {
  sp_case *c = arg;
  for (uint32_t i = 0; i < SP_ITEMS; i++)
    while (ds_spsc_try_push(&c->q, i) != SHOAL_OK)
      if (ds_stuck())
        return;
}

static void sp_consumer(void *arg) {
  sp_case *c = arg;
  uint32_t x;
  for (uint32_t n = 0; n < SP_ITEMS;) {
    if (ds_spsc_try_pop(&c->q, &x) != SHOAL_OK) {
      if (ds_stuck()) {
        failf(c->v, "the consumer waits for element %u forever", n);
        return;
      }
      continue;
    }
    if (x != n)
      failf(c->v, "element %u came out in place %u", x, n);
    tally(c->v, c->got, SP_ITEMS, x);
    n++;
  }
}

static void run_spsc(uint64_t seed, verdict *v) {
  sp_case c = {.v = v};
  ds_fn fn[] = {sp_producer, sp_consumer};
  void *arg[] = {&c, &c};
  ds_spsc_init(&c.q, 2);
  ds_run(seed, 2, fn, arg, MAX_STEPS, &v->res);
  check_once(v, c.got, SP_ITEMS);
  ds_spsc_destroy(&c.q);
}

/* ---- mpmc: two producers, two consumers, two cells ---- */

#define MM_PER 3
typedef struct mm_case {
  shoal__mpmc q;
  _Atomic uint32_t popped;
  unsigned char got[2 * MM_PER];
  verdict *v;
} mm_case;

typedef struct mm_arg {
  mm_case *c;
  uint32_t id;
} mm_arg;

static void mm_producer(void *arg) {
  mm_arg *a = arg;
  for (uint32_t i = 0; i < MM_PER; i++) {
    uintptr_t x = a->id * MM_PER + i + 1;
    while (shoal__mpmc_try_push(&a->c->q, (void *)x) != SHOAL_OK)
      if (ds_stuck())
        return;
  }
}

static void mm_consumer(void *arg) {
  mm_arg *a = arg;
  mm_case *c = a->c;
  int64_t last[2] = {-1, -1};
  void *x;
  while (shoal__load(&c->popped, memory_order_relaxed) < 2 * MM_PER) {
    if (shoal__mpmc_try_pop(&c->q, &x) != SHOAL_OK) {
      if (ds_stuck()) {
        failf(c->v, "consumers wait forever with %u of %u popped",
              shoal__load(&c->popped, memory_order_relaxed), 2 * MM_PER);
        return;
      }
      continue;
    }
    {
      size_t i = (size_t)(uintptr_t)x - 1, p = i / MM_PER;
      /* FIFO per producer as seen by any one consumer */
      if (p < 2 && (int64_t)(i % MM_PER) <= last[p])
        failf(c->v, "consumer %u saw producer %zu's %zu after %" PRId64,
              a->id, p, i % MM_PER, last[p]);
      if (p < 2)
        last[p] = (int64_t)(i % MM_PER);
      tally(c->v, c->got, 2 * MM_PER, i);
    }
    shoal__fetch_add(&c->popped, 1, memory_order_relaxed);
  }
}

static void run_mpmc(uint64_t seed, verdict *v) {
  mm_case c = {.v = v};
  mm_arg a[4] = {{&c, 0}, {&c, 1}, {&c, 0}, {&c, 1}};
  ds_fn fn[] = {mm_producer, mm_producer, mm_consumer, mm_consumer};
  void *arg[] = {&a[0], &a[1], &a[2], &a[3]};
  atomic_init(&c.popped, 0);
  shoal__mpmc_init(&c.q, 2);
  ds_run(seed, 4, fn, arg, MAX_STEPS, &v->res);
  check_once(v, c.got, 2 * MM_PER);
  shoal__mpmc_destroy(&c.q);
}

/* ---- the harness ---- */

typedef struct ds_case {
  const char *name;
  void (*run)(uint64_t seed, verdict *v);
} ds_case;

static const ds_case cases[] = {
    {"deque", run_deque},
    {"mpsc", run_mpsc},
    {"spsc", run_spsc},
    {"mpmc", run_mpmc},
};

static const char *argv0 = "test_dsched";

static verdict run_seed(const ds_case *c, uint64_t seed) {
  verdict v = {.ok = true};
  c->run(seed, &v);
  if (v.ok && v.res.stuck)
    failf(&v, "no progress in %d steps", MAX_STEPS);
  return v;
}

/* Seeds 1 … DS_SEEDS; the first that fails is printed with its replay. */
static uint64_t first_failing(const ds_case *c, uint64_t seeds, verdict *out,
                              uint64_t *steps) {
  *steps = 0;
  for (uint64_t seed = 1; seed <= seeds; seed++) {
    verdict v = run_seed(c, seed);
    *steps += v.res.steps;
    if (!v.ok) {
      *out = v;
      return seed;
    }
  }
  return 0;
}

#if !SHOAL__DEQUE_BROKEN
static void seeds_pass(void **state) {
  const ds_case *c = *state;
  verdict v;
  uint64_t steps, seed = first_failing(c, DS_SEEDS, &v, &steps);
  if (seed != 0)
    fail_msg("%s: seed %" PRIu64 " fails: %s (replay: %s --case %s --seed "
             "%" PRIu64 ")",
             c->name, seed, v.why, argv0, c->name, seed);
  printf("# %s: %d seeds, %" PRIu64 " scheduling points, all pass\n", c->name,
         DS_SEEDS, steps);
}

/* The same seed gives the same schedule: the replay is exact. */
static void replays(void **state) {
  const ds_case *c = *state;
  for (uint64_t seed = 1; seed <= 50; seed++) {
    verdict a = run_seed(c, seed), b = run_seed(c, seed);
    assert_int_equal(a.res.steps, b.res.steps);
    assert_int_equal(a.res.trace, b.res.trace);
    assert_int_equal(a.res.drains, b.res.drains);
    assert_int_equal(a.ok, b.ok);
  }
}

#else

/* SHOAL__DEQUE_BROKEN: the harness must find a failing seed, and the seed
 * must fail again, with the same schedule, when replayed. */
static void broken_caught(void **state) {
  const ds_case *c = *state;
  verdict v, again;
  uint64_t steps, seed = first_failing(c, 100000, &v, &steps);
  if (seed == 0)
    fail_msg("%s: the broken variant passed 100000 seeds", c->name);
  printf("# %s (SHOAL__DEQUE_BROKEN=%d): seed %" PRIu64 " fails after %" PRIu64
         " points over all seeds tried: %s\n",
         c->name, SHOAL__DEQUE_BROKEN, seed, steps, v.why);
  again = run_seed(c, seed);
  assert_false(again.ok);
  assert_string_equal(again.why, v.why);
  assert_int_equal(again.res.steps, v.res.steps);
  assert_int_equal(again.res.trace, v.res.trace);
}

#endif

static int replay(const char *name, uint64_t seed) {
  for (size_t i = 0; i < SHOAL_ARRAY_LEN(cases); i++) {
    if (strcmp(cases[i].name, name) != 0)
      continue;
    verdict v = run_seed(&cases[i], seed);
    printf("%s seed %" PRIu64 ": %s%s (%" PRIu64 " points, %" PRIu64
           " stores drained, trace %016" PRIx64 ")\n",
           name, seed, v.ok ? "pass" : "FAIL: ", v.ok ? "" : v.why,
           v.res.steps, v.res.drains, v.res.trace);
    return v.ok ? 0 : 1;
  }
  fprintf(stderr, "%s: no case '%s' (deque, mpsc, spsc, mpmc)\n", argv0, name);
  return 2;
}

int main(int argc, char **argv) {
  argv0 = argv[0];
  if (argc == 5 && strcmp(argv[1], "--case") == 0 &&
      strcmp(argv[3], "--seed") == 0) {
    char *end;
    uint64_t seed = strtoull(argv[4], &end, 0);
    if (*end != '\0' || end == argv[4]) {
      fprintf(stderr, "%s: --seed wants a number, not '%s'\n", argv0, argv[4]);
      return 2;
    }
    return replay(argv[2], seed);
  }
  if (argc != 1) {
    fprintf(stderr, "usage: %s [--case NAME --seed N]\n", argv0);
    return 2;
  }
  {
#if SHOAL__DEQUE_BROKEN
    const struct CMUnitTest tests[] = {
        {"broken deque caught and replayed", broken_caught, NULL, NULL,
         (void *)&cases[0]},
    };
#else
    const struct CMUnitTest tests[] = {
        {"deque seeds", seeds_pass, NULL, NULL, (void *)&cases[0]},
        {"mpsc seeds", seeds_pass, NULL, NULL, (void *)&cases[1]},
        {"spsc seeds", seeds_pass, NULL, NULL, (void *)&cases[2]},
        {"mpmc seeds", seeds_pass, NULL, NULL, (void *)&cases[3]},
        {"deque replays", replays, NULL, NULL, (void *)&cases[0]},
        {"mpsc replays", replays, NULL, NULL, (void *)&cases[1]},
    };
#endif
    return test_run("dsched", tests, SHOAL_ARRAY_LEN(tests));
  }
}
