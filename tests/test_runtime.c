/* test_runtime.c — the work-stealing runtime: exact task counts on 1, 2
 * and 8 workers (8 oversubscribes a 2-core machine and forces steals),
 * fib / nqueens / parallel_for against their serial results, submissions
 * from 8 threads outside the runtime, sleep → submit → wake rounds, groups
 * inside tasks, drain on destroy, repeated create/destroy, the steal order
 * on a synthetic 2-NUMA topology, counters, the trace and bad arguments. */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "runtime/sched/scheduler.h"
#include "test_util.h"

#if SHOAL__TSAN
#define SCALE 4 /* ThreadSanitizer runs 5-15x slower: smaller problems */
#else
#define SCALE 1
#endif

static const unsigned worker_counts[] = {1, 2, 8};

static shoal_runtime *make_rt(unsigned workers) {
  shoal_runtime_config cfg;
  shoal_runtime *rt = NULL;
  shoal_runtime_config_defaults(&cfg);
  cfg.workers = workers;
  cfg.log = test_quiet_log; /* 8 workers on 2 PUs logs a warning */
  assert_int_equal(shoal_runtime_create(&rt, &cfg), SHOAL_OK);
  assert_non_null(rt);
  assert_int_equal(shoal_runtime_workers(rt), workers);
  return rt;
}

/* ---- a tree of 3^k tasks, each counted once ---------------------------- */

typedef struct tree_args {
  unsigned depth;
  _Atomic uint64_t *count;
} tree_args;

static void tree(shoal_worker *w, unsigned depth, _Atomic uint64_t *count);

static void tree_task(shoal_worker *w, void *args) {
  tree_args *f = args;
  tree(w, f->depth, f->count);
}

/* Two frames at once, synced with shoal_sync (the child run in place). */
static void tree(shoal_worker *w, unsigned depth, _Atomic uint64_t *count) {
  shoal_worker *b;
  tree_args *fa, *fb;
  if (depth == 0) {
    atomic_fetch_add_explicit(count, 1, memory_order_relaxed);
    return;
  }
  fa = shoal_args(w);
  fa->depth = depth - 1;
  fa->count = count;
  b = shoal_spawn(w, tree_task);
  fb = shoal_args(b);
  fb->depth = depth - 1;
  fb->count = count;
  tree(shoal_spawn(b, tree_task), depth - 1, count);
  shoal_sync(b);
  shoal_sync(w);
}

typedef struct tree_root {
  unsigned depth;
  _Atomic uint64_t count;
} tree_root;

static void tree_root_fn(shoal_worker *w, void *arg) {
  tree_root *r = arg;
  tree(w, r->depth, &r->count);
}

static void tree_counts(void **state) {
  (void)state;
  for (size_t i = 0; i < SHOAL_ARRAY_LEN(worker_counts); i++) {
    shoal_runtime *rt = make_rt(worker_counts[i]);
    for (unsigned k = 0; k <= 12 - (SHOAL__TSAN ? 3 : 0); k++) {
      tree_root r = {.depth = k};
      uint64_t want = 1;
      for (unsigned j = 0; j < k; j++)
        want *= 3;
      atomic_init(&r.count, 0);
      assert_int_equal(shoal_runtime_run(rt, tree_root_fn, &r), SHOAL_OK);
      assert_int_equal(atomic_load(&r.count), want);
    }
    assert_int_equal(shoal_runtime_destroy(rt), SHOAL_OK);
  }
}

/* ---- frames past a block, and calls into the runtime with frames out --- */

typedef struct deep_args {
  unsigned depth;
  _Atomic uint64_t *count;
} deep_args;

static void deep(shoal_worker *w, unsigned depth, _Atomic uint64_t *count);

static void deep_task(shoal_worker *w, void *args) {
  deep_args *a = args;
  deep(w, a->depth, a->count);
}

static void leaf_task(shoal_worker *w, void *args) {
  (void)w;
  atomic_fetch_add_explicit(((deep_args *)args)->count, 1,
                            memory_order_relaxed);
}

/* A chain `depth` frames deep (each level spawns a leaf and the rest of
 * the chain, so every frame stays out until the bottom returns): the
 * array grows past its first blocks while thieves take from it. */
static void deep(shoal_worker *w, unsigned depth, _Atomic uint64_t *count) {
  deep_args *a;
  shoal_worker *c;
  if (depth == 0)
    return;
  a = shoal_args(w);
  a->count = count;
  c = shoal_spawn(w, leaf_task);
  a = shoal_args(c);
  a->depth = depth - 1;
  a->count = count;
  (void)shoal_spawn(c, deep_task);
  shoal_sync(c); /* the rest of the chain, here (TAKEN) unless stolen */
  shoal_sync(w);
}

/* One function spawning `n` leaves in a row, then syncing them all. */
static void wide(shoal_worker *w, unsigned n, _Atomic uint64_t *count) {
  shoal_worker *first = w;
  shoal_worker **h = malloc(n * sizeof *h);
  assert_non_null(h);
  for (unsigned i = 0; i < n; i++) {
    deep_args *a = shoal_args(w);
    a->count = count;
    h[i] = w;
    w = shoal_spawn(w, leaf_task);
  }
  while (n-- > 0)
    shoal_sync(h[n]);
  assert_ptr_equal(h[0], first);
  free(h);
}

typedef struct nest_run {
  shoal_runtime *rt;
  _Atomic uint64_t count;
  _Atomic uint64_t hits;
} nest_run;

static void nest_body(void *ctx, size_t b, size_t e) {
  nest_run *r = ctx;
  atomic_fetch_add_explicit(&r->hits, e - b, memory_order_relaxed);
}

static void nest_closure(void *ctx) {
  nest_run *r = ctx;
  atomic_fetch_add_explicit(&r->hits, 1, memory_order_relaxed);
}

/* Frames out while the task calls parallel_for, runtime_run and a group
 * wait, which cannot know its handle: what runs meanwhile must not write
 * over the frames (their arguments are checked after the syncs). */
static void nested_root(shoal_worker *w, void *arg) {
  nest_run *r = arg;
  shoal_worker *h[40];
  shoal_group g;
  for (unsigned i = 0; i < 40; i++) {
    deep_args *a = shoal_args(w);
    a->depth = 1000 + i;
    a->count = &r->count;
    h[i] = w;
    w = shoal_spawn(w, leaf_task);
  }
  assert_int_equal(shoal_parallel_for(r->rt, 0, 3000, 7, nest_body, r),
                   SHOAL_OK);
  assert_int_equal(shoal_group_init(&g, r->rt), SHOAL_OK);
  for (unsigned i = 0; i < 50; i++)
    assert_int_equal(shoal_group_run(&g, nest_closure, r), SHOAL_OK);
  assert_int_equal(shoal_group_wait(&g), SHOAL_OK);
  deep(w, 300, &r->count);
  for (unsigned i = 40; i-- > 0;) {
    shoal_sync(h[i]);
    assert_int_equal(((deep_args *)shoal_args(h[i]))->depth, 1000 + i);
  }
}

static void deep_root(shoal_worker *w, void *arg) {
  tree_root *r = arg;
  deep(w, 2000, &r->count);
  wide(w, 5000, &r->count);
}

static void deep_and_nested(void **state) {
  (void)state;
  for (size_t i = 0; i < SHOAL_ARRAY_LEN(worker_counts); i++) {
    shoal_runtime *rt = make_rt(worker_counts[i]);
    for (unsigned round = 0; round < 20; round++) {
      tree_root r0 = {.depth = 0};
      nest_run n = {.rt = rt};
      atomic_init(&r0.count, 0);
      atomic_init(&n.count, 0);
      atomic_init(&n.hits, 0);
      assert_int_equal(shoal_runtime_run(rt, deep_root, &r0), SHOAL_OK);
      assert_int_equal(atomic_load(&r0.count), 2000u + 5000u);
      assert_int_equal(shoal_runtime_run(rt, nested_root, &n), SHOAL_OK);
      assert_int_equal(atomic_load(&n.count), 40u + 300u);
      assert_int_equal(atomic_load(&n.hits), 3000u + 50u);
    }
    assert_int_equal(shoal_runtime_destroy(rt), SHOAL_OK);
  }
}

/* ---- fib and nqueens against serial ------------------------------------ */

static long fib_serial(int n) {
  return n < 2 ? n : fib_serial(n - 1) + fib_serial(n - 2);
}

#define QMAX 12
typedef struct queens_args {
  int n, row;
  signed char cols[QMAX];
  long r;
} queens_args;
_Static_assert(sizeof(queens_args) <= SHOAL_FRAME_ARGS, "queens' frame");

static int queen_ok(const signed char *cols, int row, int c) {
  for (int i = 0; i < row; i++)
    if (cols[i] == c || cols[i] - c == row - i || c - cols[i] == row - i)
      return 0;
  return 1;
}

static long queens_serial(int n, int row, signed char *cols) {
  long r = 0;
  if (row == n)
    return 1;
  for (int c = 0; c < n; c++)
    if (queen_ok(cols, row, c)) {
      cols[row] = (signed char)c;
      r += queens_serial(n, row + 1, cols);
    }
  return r;
}

static long queens(shoal_worker *w, int n, int row, const signed char *cols);

static void queens_task(shoal_worker *w, void *args) {
  queens_args *f = args;
  f->r = queens(w, f->n, f->row, f->cols);
}

static long queens(shoal_worker *w, int n, int row, const signed char *cols) {
  shoal_worker *h[QMAX];
  int spawned = 0;
  long r = 0;
  if (row == n)
    return 1;
  for (int c = 0; c < n; c++) {
    queens_args *f;
    if (!queen_ok(cols, row, c))
      continue;
    f = shoal_args(w);
    memcpy(f->cols, cols, (size_t)row);
    f->cols[row] = (signed char)c;
    f->n = n;
    f->row = row + 1;
    h[spawned++] = w;
    w = shoal_spawn(w, queens_task);
  }
  while (spawned > 0) { /* most recent first */
    spawned--;
    shoal_sync(h[spawned]);
    r += ((queens_args *)shoal_args(h[spawned]))->r;
  }
  return r;
}

typedef struct queens_root {
  int n;
  long r;
} queens_root;

static void queens_root_fn(shoal_worker *w, void *arg) {
  queens_root *q = arg;
  signed char cols[QMAX] = {0};
  q->r = queens(w, q->n, 0, cols);
}

static void fib_and_queens(void **state) {
  (void)state;
  for (size_t i = 0; i < SHOAL_ARRAY_LEN(worker_counts); i++) {
    shoal_runtime *rt = make_rt(worker_counts[i]);
    for (int n = 0; n <= 27 - (SHOAL__TSAN ? 6 : 0); n += 3) {
      test_fib_args r = {.n = n};
      assert_int_equal(shoal_runtime_run(rt, test_fib_root, &r), SHOAL_OK);
      assert_int_equal(r.r, fib_serial(n));
    }
    for (int n = 1; n <= 9 - (SHOAL__TSAN ? 1 : 0); n++) {
      queens_root q = {.n = n};
      signed char cols[QMAX];
      assert_int_equal(shoal_runtime_run(rt, queens_root_fn, &q), SHOAL_OK);
      assert_int_equal(q.r, queens_serial(n, 0, cols));
    }
    assert_int_equal(shoal_runtime_destroy(rt), SHOAL_OK);
  }
}

/* ---- parallel_for: every index exactly once, the sum right ------------- */

typedef struct pfor_check {
  _Atomic unsigned char *hits;
  _Atomic uint64_t sum;
  _Atomic int too_long;
  size_t grain;
} pfor_check;

static void pfor_body(void *ctx, size_t b, size_t e) {
  pfor_check *c = ctx;
  uint64_t s = 0;
  if (e - b > c->grain || e <= b)
    atomic_store(&c->too_long, 1);
  for (size_t i = b; i < e; i++) {
    atomic_fetch_add_explicit(&c->hits[i], 1, memory_order_relaxed);
    s += i;
  }
  atomic_fetch_add_explicit(&c->sum, s, memory_order_relaxed);
}

static void parallel_for_exact(void **state) {
  static const size_t sizes[] = {1, 2, 63, 64, 65, 1000, 5000, 20011};
  static const size_t grains[] = {0, 1, 7, 64, 1000, 100000};
  (void)state;
  for (size_t i = 0; i < SHOAL_ARRAY_LEN(worker_counts); i++) {
    shoal_runtime *rt = make_rt(worker_counts[i]);
    for (size_t si = 0; si < SHOAL_ARRAY_LEN(sizes); si++)
      for (size_t gi = 0; gi < SHOAL_ARRAY_LEN(grains); gi++) {
        size_t n = sizes[si], base = 17;
        pfor_check c;
        uint64_t want = 0;
        c.hits = calloc(n + base, 1);
        atomic_init(&c.sum, 0);
        atomic_init(&c.too_long, 0);
        c.grain = grains[gi] != 0 ? grains[gi] : 1;
        assert_int_equal(shoal_parallel_for(rt, base, base + n, grains[gi],
                                            pfor_body, &c),
                         SHOAL_OK);
        for (size_t k = 0; k < base; k++)
          assert_int_equal(atomic_load(&c.hits[k]), 0);
        for (size_t k = base; k < base + n; k++) {
          if (atomic_load(&c.hits[k]) != 1)
            fail_msg("workers %u n %zu grain %zu: index %zu ran %u times",
                     worker_counts[i], n, grains[gi], k,
                     (unsigned)atomic_load(&c.hits[k]));
          want += k;
        }
        assert_int_equal(atomic_load(&c.sum), want);
        assert_int_equal(atomic_load(&c.too_long), 0);
        free((void *)c.hits);
      }
    assert_int_equal(shoal_runtime_destroy(rt), SHOAL_OK);
  }
}

/* parallel_for called from inside tasks, nested. */
typedef struct nested {
  shoal_runtime *rt;
  _Atomic uint64_t count;
} nested;

static void inner_body(void *ctx, size_t b, size_t e) {
  nested *n = ctx;
  atomic_fetch_add(&n->count, e - b);
}

static void outer_body(void *ctx, size_t b, size_t e) {
  nested *n = ctx;
  for (size_t i = b; i < e; i++)
    assert_int_equal(shoal_parallel_for(n->rt, 0, 100, 8, inner_body, n),
                     SHOAL_OK);
}

static void parallel_for_nested(void **state) {
  (void)state;
  for (size_t i = 0; i < SHOAL_ARRAY_LEN(worker_counts); i++) {
    nested n = {.rt = make_rt(worker_counts[i])};
    atomic_init(&n.count, 0);
    assert_int_equal(shoal_parallel_for(n.rt, 0, 300, 4, outer_body, &n),
                     SHOAL_OK);
    assert_int_equal(atomic_load(&n.count), 300 * 100);
    assert_int_equal(shoal_runtime_destroy(n.rt), SHOAL_OK);
  }
}

/* ---- 8 threads outside the runtime submit 10 000 closures each --------- */

#define SUBMITTERS 8
#define PER_SUBMITTER (10000 / SCALE)

typedef struct submit_shared {
  shoal_runtime *rt;
  pthread_barrier_t start;
  _Atomic uint64_t count;
  _Atomic uint64_t sum;
} submit_shared;

typedef struct submit_arg {
  submit_shared *s;
  unsigned id;
} submit_arg;

typedef struct counted {
  submit_shared *s;
  uint64_t value;
} counted;

static void count_closure(void *ctx) {
  counted *c = ctx;
  atomic_fetch_add_explicit(&c->s->count, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&c->s->sum, c->value, memory_order_relaxed);
}

static void *submitter_main(void *arg) {
  submit_arg *a = arg;
  counted *c = malloc(PER_SUBMITTER * sizeof *c);
  shoal_group g;
  int bad = 0;
  shoal_group_init(&g, a->s->rt);
  pthread_barrier_wait(&a->s->start);
  for (unsigned i = 0; i < PER_SUBMITTER; i++) {
    c[i].s = a->s;
    c[i].value = (uint64_t)a->id * 1000003u + i;
    bad |= shoal_group_run(&g, count_closure, &c[i]) != SHOAL_OK;
  }
  bad |= shoal_group_wait(&g) != SHOAL_OK;
  free(c);
  return bad ? (void *)1 : NULL;
}

static void outside_submitters(void **state) {
  (void)state;
  for (size_t i = 0; i < SHOAL_ARRAY_LEN(worker_counts); i++) {
    submit_shared s;
    submit_arg args[SUBMITTERS];
    pthread_t th[SUBMITTERS];
    shoal_runtime_config cfg;
    uint64_t want = 0;
    shoal_runtime_config_defaults(&cfg);
    cfg.workers = worker_counts[i];
    cfg.queue_capacity = 1024; /* smaller than the 80 000: back-pressure */
    cfg.log = test_quiet_log;
    assert_int_equal(shoal_runtime_create(&s.rt, &cfg), SHOAL_OK);
    atomic_init(&s.count, 0);
    atomic_init(&s.sum, 0);
    pthread_barrier_init(&s.start, NULL, SUBMITTERS);
    for (unsigned t = 0; t < SUBMITTERS; t++) {
      args[t].s = &s;
      args[t].id = t;
      assert_int_equal(pthread_create(&th[t], NULL, submitter_main, &args[t]), 0);
      for (unsigned k = 0; k < PER_SUBMITTER; k++)
        want += (uint64_t)t * 1000003u + k;
    }
    for (unsigned t = 0; t < SUBMITTERS; t++) {
      void *ret;
      pthread_join(th[t], &ret);
      assert_null(ret);
    }
    assert_int_equal(atomic_load(&s.count), SUBMITTERS * PER_SUBMITTER);
    assert_int_equal(atomic_load(&s.sum), want);
    pthread_barrier_destroy(&s.start);
    assert_int_equal(shoal_runtime_destroy(s.rt), SHOAL_OK);
  }
}

/* ---- sleep -> submit -> must wake ---------------------------------------
 * A closure submitted while the workers are parked must be run by one of
 * them (the submitter never joins: it waits on a semaphore). A lost
 * wake-up shows as a round that never finishes; the 10 s limit only turns
 * that hang into a failure. */

typedef struct wake_round {
  sem_t done;
  _Atomic unsigned ran_on;
} wake_round;

static void wake_closure(void *ctx) {
  wake_round *r = ctx;
  shoal__worker *w = shoal__self_any();
  atomic_store(&r->ran_on, w != NULL ? w->index : 9999);
  sem_post(&r->done);
}

static void sleep_submit_wake(void **state) {
  static const unsigned counts[] = {2, 3, 8};
  (void)state;
  for (size_t i = 0; i < SHOAL_ARRAY_LEN(counts); i++) {
    shoal_runtime_config cfg;
    shoal_runtime *rt;
    wake_round r;
    shoal_group g;
    unsigned rounds = 2000 / SCALE;
    uint64_t parks = 0;
    shoal_runtime_config_defaults(&cfg);
    cfg.workers = counts[i];
    cfg.spin_us = 2; /* park almost at once */
    cfg.log = test_quiet_log;
    assert_int_equal(shoal_runtime_create(&rt, &cfg), SHOAL_OK);
    sem_init(&r.done, 0, 0);
    shoal_group_init(&g, rt);
    for (unsigned k = 0; k < rounds; k++) {
      struct timespec dl;
      /* Long enough, on some rounds, for every worker to be parked. */
      if (k % 4 == 0)
        usleep(200 + (k % 7) * 50);
      atomic_store(&r.ran_on, 0);
      assert_int_equal(shoal_group_run(&g, wake_closure, &r), SHOAL_OK);
      clock_gettime(CLOCK_REALTIME, &dl);
      dl.tv_sec += 10;
      while (sem_timedwait(&r.done, &dl) != 0) {
        if (errno != EINTR)
          fail_msg("workers %u round %u: the closure never ran", counts[i], k);
      }
      assert_in_range(atomic_load(&r.ran_on), 1, counts[i] - 1);
    }
    assert_int_equal(shoal_group_wait(&g), SHOAL_OK);
    for (unsigned w = 1; w < counts[i]; w++) {
      shoal_worker_stats st;
      assert_int_equal(shoal_worker_stats_get(rt, w, &st), SHOAL_OK);
      parks += st.parks;
    }
    assert_true(parks > 0); /* the rounds did test parked workers */
    sem_destroy(&r.done);
    assert_int_equal(shoal_runtime_destroy(rt), SHOAL_OK);
  }
}

/* ---- groups inside tasks, and drain on destroy ------------------------- */

typedef struct inner_group {
  shoal_runtime *rt;
  _Atomic uint64_t count;
} inner_group;

static void leaf_closure(void *ctx) {
  inner_group *ig = ctx;
  atomic_fetch_add(&ig->count, 1);
}

static void fan_closure(void *ctx) {
  inner_group *ig = ctx;
  shoal_group g;
  shoal_group_init(&g, ig->rt);
  for (int i = 0; i < 50; i++)
    assert_int_equal(shoal_group_run(&g, leaf_closure, ig), SHOAL_OK);
  assert_int_equal(shoal_group_wait(&g), SHOAL_OK);
}

static void groups_in_tasks(void **state) {
  (void)state;
  for (size_t i = 0; i < SHOAL_ARRAY_LEN(worker_counts); i++) {
    inner_group ig = {.rt = make_rt(worker_counts[i])};
    shoal_group g;
    atomic_init(&ig.count, 0);
    shoal_group_init(&g, ig.rt);
    for (int k = 0; k < 200; k++)
      assert_int_equal(shoal_group_run(&g, fan_closure, &ig), SHOAL_OK);
    assert_int_equal(shoal_group_wait(&g), SHOAL_OK);
    assert_int_equal(atomic_load(&ig.count), 200 * 50);
    assert_int_equal(shoal_runtime_destroy(ig.rt), SHOAL_OK);
  }
}

static void destroy_drains(void **state) {
  (void)state;
  for (size_t i = 0; i < SHOAL_ARRAY_LEN(worker_counts); i++) {
    inner_group ig = {.rt = make_rt(worker_counts[i])};
    shoal_group g;
    atomic_init(&ig.count, 0);
    shoal_group_init(&g, ig.rt);
    for (int k = 0; k < 1000; k++)
      assert_int_equal(shoal_group_run(&g, leaf_closure, &ig), SHOAL_OK);
    assert_int_equal(shoal_runtime_destroy(ig.rt), SHOAL_OK);
    assert_int_equal(atomic_load(&ig.count), 1000);
  }
}

/* ---- once on each worker's own thread ------------------------------------ */

typedef struct each_count {
  shoal_runtime *rt;
  _Atomic unsigned ran[8];
  _Atomic unsigned strays; /* ran on no worker of rt */
} each_count;

static void count_here(void *arg) {
  each_count *c = arg;
  shoal_worker *w = shoal__current(c->rt);
  if (w == NULL)
    atomic_fetch_add(&c->strays, 1);
  else
    atomic_fetch_add(&c->ran[shoal_worker_index(w)], 1);
}

static void each_from_worker(shoal_worker *w, void *arg) {
  each_count *c = arg;
  (void)w;
  assert_int_equal(shoal__runtime_each(c->rt, count_here, c), SHOAL_OK);
}

static void each_once(void **state) {
  (void)state;
  for (size_t i = 0; i < SHOAL_ARRAY_LEN(worker_counts); i++) {
    unsigned n = worker_counts[i];
    each_count c = {.rt = make_rt(n)};
    for (unsigned round = 1; round <= 200; round++) {
      /* from outside (the host joins as worker 0), then from a task */
      if (round % 2)
        assert_int_equal(shoal__runtime_each(c.rt, count_here, &c), SHOAL_OK);
      else
        assert_int_equal(shoal_runtime_run(c.rt, each_from_worker, &c),
                         SHOAL_OK);
      for (unsigned k = 0; k < n; k++)
        assert_int_equal(atomic_load(&c.ran[k]), round);
    }
    assert_int_equal(atomic_load(&c.strays), 0);
    assert_int_equal(shoal_runtime_destroy(c.rt), SHOAL_OK);
  }
}

static void create_destroy_repeated(void **state) {
  (void)state;
  for (unsigned k = 0; k < 100; k++) {
    shoal_runtime *rt = make_rt(1 + k % 8);
    if (k % 3 == 0) {
      test_fib_args r = {.n = 10};
      assert_int_equal(shoal_runtime_run(rt, test_fib_root, &r), SHOAL_OK);
      assert_int_equal(r.r, 55);
    }
    assert_int_equal(shoal_runtime_destroy(rt), SHOAL_OK);
  }
}

/* ---- steal order on a synthetic 2-NUMA topology ------------------------ */

static void steal_order_two_numa(void **state) {
  shoal_topo_opts to;
  shoal_topo *t;
  shoal_runtime_config cfg;
  shoal_runtime *rt;
  (void)state;
  shoal_topo_opts_defaults(&to);
  to.synthetic = "pack:1 numa:2 l3:1 core:4 pu:1";
  assert_int_equal(shoal_topo_load(&t, &to), SHOAL_OK);
  shoal_runtime_config_defaults(&cfg);
  cfg.topo = t;
  cfg.log = test_quiet_log;
  assert_int_equal(shoal_runtime_create(&rt, &cfg), SHOAL_OK);
  assert_int_equal(shoal_runtime_workers(rt), 8);
  for (unsigned w = 0; w < 8; w++) {
    unsigned order[8], firsts[8] = {0};
    uint64_t rng = 42 + w;
    for (unsigned round = 0; round < 200; round++) {
      assert_int_equal(shoal__round_order(rt->w[w], &rng, order), 7);
      /* Same node (same L3 here) first: the three others of w's node, in
       * any order, then the four of the other node. */
      for (unsigned k = 0; k < 7; k++) {
        unsigned same = order[k] / 4 == w / 4;
        assert_int_equal(same, k < 3);
        for (unsigned j = 0; j < k; j++)
          assert_int_not_equal(order[j], order[k]);
        assert_int_not_equal(order[k], w);
      }
      firsts[order[0]]++;
      firsts[order[3]]++;
    }
    /* Randomized within the level: each candidate comes first sometimes. */
    for (unsigned v = 0; v < 8; v++)
      if (v != w)
        assert_true(firsts[v] > 0);
  }
  assert_int_equal(shoal_runtime_destroy(rt), SHOAL_OK);
  shoal_topo_destroy(t);
}

/* ---- counters and trace ------------------------------------------------ */

/* The searchers' gap between looks: a count of relaxes for a time, in
 * 1 … 64 and growing with the time asked for. */
static void relax_count(void **state) {
  unsigned last = 0;
  (void)state;
  assert_int_equal(shoal__relax_count(0), 1);
  assert_int_equal(shoal__relax_count(100000000), 64);
  for (unsigned ns = 0; ns <= 100000; ns += ns < 64 ? 1 : ns / 4) {
    unsigned n = shoal__relax_count(ns);
    assert_true(n >= 1 && n <= 64);
    assert_true(n >= last);
    last = n;
  }
}

static void stats_and_trace(void **state) {
  uint64_t t0;
  shoal_runtime_config cfg;
  shoal_runtime *rt;
  shoal_worker_stats st, sum = {0};
  test_fib_args r = {.n = 22};
  char path[] = "/tmp/shoal-trace-XXXXXX";
  char buf[256];
  FILE *f;
  int fd;
  (void)state;
  shoal_runtime_config_defaults(&cfg);
  cfg.workers = 3;
  cfg.trace_events = 1000;
  cfg.log = test_quiet_log;
  assert_int_equal(shoal_runtime_create(&rt, &cfg), SHOAL_OK);
  t0 = shoal__now_ns();
  assert_int_equal(shoal_runtime_run(rt, test_fib_root, &r), SHOAL_OK);
  assert_int_equal(r.r, 17711);
  {
    pfor_check c;
    c.hits = calloc(5000, 1);
    c.grain = 64;
    atomic_init(&c.sum, 0);
    atomic_init(&c.too_long, 0);
    assert_int_equal(shoal_parallel_for(rt, 0, 5000, 64, pfor_body, &c), SHOAL_OK);
    free((void *)c.hits);
  }
  usleep(300000); /* the workers go idle and publish their counters */
  for (unsigned w = 0; w < 3; w++) {
    assert_int_equal(shoal_worker_stats_get(rt, w, &st), SHOAL_OK);
    sum.tasks += st.tasks;
    sum.steals += st.steals;
    /* Busy time is counted on the TSC clock: never more than the time
     * that passed; worker 0 (this thread, twice) ran fib(22) at least. */
    assert_true(st.busy_ns <= shoal__now_ns() - t0);
    if (w == 0)
      assert_true(st.busy_ns > 0);
  }
  /* tasks counts the frames that left their spawner's array (and
   * closures): at most fib(22)'s fib(23)-1 spawns and parallel_for's 78
   * (79 batches of 5000/64), at least every frame stolen. */
  assert_true(sum.steals <= sum.tasks);
  assert_true(sum.tasks <= 28657 - 1 + 78);
  {
    /* Alone, a worker publishes nothing: nobody ever asks. */
    shoal_runtime *one = make_rt(1);
    test_fib_args r1 = {.n = 22};
    assert_int_equal(shoal_runtime_run(one, test_fib_root, &r1), SHOAL_OK);
    assert_int_equal(r1.r, 17711);
    assert_int_equal(shoal_worker_stats_get(one, 0, &st), SHOAL_OK);
    assert_int_equal(st.tasks, 0);
    assert_int_equal(shoal_runtime_destroy(one), SHOAL_OK);
  }
  assert_int_equal(shoal_worker_stats_get(rt, 3, &st), SHOAL_EINVAL);
  assert_int_equal(shoal_worker_stats_get(NULL, 0, &st), SHOAL_EINVAL);
  fd = mkstemp(path);
  assert_true(fd >= 0);
  close(fd);
  assert_int_equal(shoal_runtime_trace_write(rt, path), SHOAL_OK);
  f = fopen(path, "r");
  assert_non_null(f);
  assert_non_null(fgets(buf, sizeof buf, f));
  assert_non_null(strstr(buf, "traceEvents"));
  {
    unsigned batches = 0;
    while (fgets(buf, sizeof buf, f) != NULL)
      batches += strstr(buf, "\"batch\"") != NULL;
    assert_int_equal(batches, 79); /* 5000 = 78 batches of 64 + 8 */
  }
  fclose(f);
  unlink(path);
  assert_int_equal(shoal_runtime_trace_write(rt, "/nonexistent/dir/t.json"),
                   SHOAL_EIO);
  assert_int_equal(shoal_runtime_destroy(rt), SHOAL_OK);
  rt = make_rt(1);
  assert_int_equal(shoal_runtime_trace_write(rt, path), SHOAL_ENOTSUP);
  assert_int_equal(shoal_runtime_destroy(rt), SHOAL_OK);
}

/* ---- more workers than PUs: logged, runs unbound ------------------------ */

typedef struct log_seen {
  pthread_mutex_t mu;
  unsigned warnings, unbound;
} log_seen;

static void counting_log(void *user, shoal_log_level level, const char *msg) {
  log_seen *s = user;
  pthread_mutex_lock(&s->mu);
  if (level == SHOAL_LOG_WARN)
    s->warnings++;
  if (strstr(msg, "unbound") != NULL)
    s->unbound++;
  pthread_mutex_unlock(&s->mu);
}

static void oversubscribed_pinning_is_logged(void **state) {
  shoal_runtime_config cfg;
  shoal_runtime *rt;
  log_seen seen = {PTHREAD_MUTEX_INITIALIZER, 0, 0};
  shoal_topo_opts to;
  shoal_topo *t;
  unsigned pus;
  test_fib_args r = {.n = 20};
  (void)state;
  shoal_topo_opts_defaults(&to);
  assert_int_equal(shoal_topo_load(&t, &to), SHOAL_OK);
  pus = shoal_topo_pu_count(t);
  shoal_runtime_config_defaults(&cfg);
  cfg.topo = t;
  cfg.workers = pus + 2; /* two workers have no PU */
  cfg.log = counting_log;
  cfg.log_user = &seen;
  assert_int_equal(shoal_runtime_create(&rt, &cfg), SHOAL_OK);
  assert_int_equal(shoal_runtime_run(rt, test_fib_root, &r), SHOAL_OK);
  assert_int_equal(r.r, 6765);
  assert_int_equal(shoal_runtime_destroy(rt), SHOAL_OK);
  shoal_topo_destroy(t);
  assert_true(seen.warnings >= 1);
  assert_true(seen.unbound >= 1);
}

/* ---- bad arguments ------------------------------------------------------ */

static void noop_body(void *ctx, size_t b, size_t e) {
  (void)ctx;
  (void)b;
  (void)e;
}

static void bad_destroy(shoal_worker *w, void *arg) {
  *(int *)arg = shoal_runtime_destroy(shoal_worker_runtime(w));
}

static void bad_arguments(void **state) {
  shoal_runtime_config cfg;
  shoal_runtime *rt = (shoal_runtime *)&cfg;
  shoal_group g;
  int rc = 0;
  (void)state;
  shoal_runtime_config_defaults(&cfg);
  assert_int_equal(shoal_runtime_create(NULL, &cfg), SHOAL_EINVAL);
  assert_int_equal(shoal_runtime_create(&rt, NULL), SHOAL_EINVAL);
  assert_null(rt);
  cfg.workers = SHOAL_WORKERS_MAX + 1;
  cfg.log = test_quiet_log;
  assert_int_equal(shoal_runtime_create(&rt, &cfg), SHOAL_EINVAL);
  cfg.workers = 2;
  cfg.queue_capacity = 0;
  assert_int_equal(shoal_runtime_create(&rt, &cfg), SHOAL_EINVAL);
  rt = make_rt(2);
  assert_int_equal(shoal_parallel_for(rt, 10, 5, 1, noop_body, NULL), SHOAL_EINVAL);
  assert_int_equal(shoal_parallel_for(rt, 0, 5, 1, NULL, NULL), SHOAL_EINVAL);
  assert_int_equal(shoal_parallel_for(NULL, 0, 5, 1, noop_body, NULL), SHOAL_EINVAL);
  assert_int_equal(shoal_parallel_for(rt, 5, 5, 1, noop_body, NULL), SHOAL_OK);
  assert_int_equal(shoal_runtime_run(rt, NULL, NULL), SHOAL_EINVAL);
  assert_int_equal(shoal_group_init(NULL, rt), SHOAL_EINVAL);
  assert_int_equal(shoal_group_init(&g, NULL), SHOAL_EINVAL);
  assert_int_equal(shoal_group_init(&g, rt), SHOAL_OK);
  assert_int_equal(shoal_group_run(&g, NULL, NULL), SHOAL_EINVAL);
  assert_int_equal(shoal_group_wait(&g), SHOAL_OK); /* nothing submitted */
  /* destroy from inside a task is refused and changes nothing */
  assert_int_equal(shoal_runtime_run(rt, bad_destroy, &rc), SHOAL_OK);
  assert_int_equal(rc, SHOAL_ESTATE);
  assert_int_equal(shoal_runtime_destroy(rt), SHOAL_OK);
  assert_int_equal(shoal_runtime_destroy(NULL), SHOAL_OK);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(tree_counts),
      cmocka_unit_test(fib_and_queens),
      cmocka_unit_test(deep_and_nested),
      cmocka_unit_test(parallel_for_exact),
      cmocka_unit_test(parallel_for_nested),
      cmocka_unit_test(outside_submitters),
      cmocka_unit_test(sleep_submit_wake),
      cmocka_unit_test(groups_in_tasks),
      cmocka_unit_test(destroy_drains),
      cmocka_unit_test(each_once),
      cmocka_unit_test(create_destroy_repeated),
      cmocka_unit_test(steal_order_two_numa),
      cmocka_unit_test(relax_count),
      cmocka_unit_test(stats_and_trace),
      cmocka_unit_test(oversubscribed_pinning_is_logged),
      cmocka_unit_test(bad_arguments),
  };
  return test_run("runtime", tests, SHOAL_ARRAY_LEN(tests));
}
