/* test_resize.c — the worker count at run time: the plan after a resize
 * against a fresh plan for that count; exact counts of closures, fork-join
 * results, actor messages and session updates and packets while the count
 * goes up and down under them (more workers than CI's cores); a removed
 * worker's figures; the errors. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "runtime/common.h"
#include "runtime/sched/scheduler.h"
#include "test_util.h"

static void nap_us(long us) {
  struct timespec ts = {0, us * 1000};
  nanosleep(&ts, NULL);
}

/* The counts a test walks through: up, down to one, up to the most. */
static const unsigned walk[] = {5, 1, 6, 2, 4, 6, 3, 1, 4};

/* ---- the plan ------------------------------------------------------------ */

static void plan_equal(const shoal_plan *a, const shoal_plan *b) {
  unsigned n = shoal_plan_worker_count(a);
  assert_int_equal(n, shoal_plan_worker_count(b));
  for (unsigned w = 0; w < n; w++) {
    const shoal_plan_worker *x = shoal_plan_worker_at(a, w);
    const shoal_plan_worker *y = shoal_plan_worker_at(b, w);
    assert_int_equal(x->worker, y->worker);
    assert_int_equal(x->pu_logical, y->pu_logical);
    assert_int_equal(x->pu_os_index, y->pu_os_index);
    assert_int_equal(x->numa_logical, y->numa_logical);
    assert_int_equal(x->numa_os_index, y->numa_os_index);
    assert_int_equal(x->nvictims, y->nvictims);
    for (unsigned k = 0; k < x->nvictims; k++) {
      assert_int_equal(x->victims[k], y->victims[k]);
      assert_int_equal(x->victim_level[k], y->victim_level[k]);
      assert_int_equal(x->victim_near[k], y->victim_near[k]);
      assert_int_equal(x->victim_cache[k], y->victim_cache[k]);
    }
  }
  assert_int_equal(shoal_plan_collisions(a), shoal_plan_collisions(b));
}

/* On a synthetic two-node machine of 16 PUs: after each resize the plan
 * in force is the one a fresh computation gives for that count. */
static void plan_after_resize(void **state) {
  static const unsigned counts[] = {7, 2, 16, 1, 5, 12, 16, 3};
  shoal_topo_opts to;
  shoal_topo *t;
  shoal_runtime_config cfg;
  shoal_runtime *rt;
  (void)state;
  shoal_topo_opts_defaults(&to);
  to.synthetic = "pack:2 numa:2 core:4 pu:1";
  assert_int_equal(shoal_topo_load(&t, &to), SHOAL_OK);
  shoal_runtime_config_defaults(&cfg);
  cfg.topo = t;
  cfg.workers = 3;
  cfg.log = test_quiet_log;
  assert_int_equal(shoal_runtime_create(&rt, &cfg), SHOAL_OK);
  assert_int_equal(shoal_runtime_workers_max(rt), 16); /* its PUs */
  for (size_t i = 0; i < SHOAL_ARRAY_LEN(counts); i++) {
    shoal_plan *fresh;
    assert_int_equal(shoal_runtime_set_workers(rt, counts[i]), SHOAL_OK);
    assert_int_equal(shoal_runtime_workers(rt), counts[i]);
    assert_int_equal(shoal_plan_compute(&fresh, t, counts[i]), SHOAL_OK);
    plan_equal(shoal_runtime_plan(rt), fresh);
    shoal_plan_destroy(fresh);
  }
  assert_int_equal(shoal_runtime_destroy(rt), SHOAL_OK);
  shoal_topo_destroy(t);
}

/* ---- tasks, fork-join and actors under resizes ------------------------- */

enum { NACTORS = 8, CLOSURES_PER_ROUND = 200 };

typedef struct load {
  shoal_runtime *rt;
  shoal_actors *sys;
  _Atomic int stop;
  _Atomic uint64_t closures_run, msgs_handled;
  uint64_t closures_sent, msgs_sent, fibs;
  _Atomic uint64_t per_actor[NACTORS + 1];
  uint64_t sent_to[NACTORS + 1];
} load;

static void nap_closure(void *ctx) {
  (void)ctx;
  nap_us(500);
}

/* A runtime of `workers` that may grow to `max`, on this machine. */
static shoal_runtime *runtime_of(unsigned workers, unsigned max) {
  return test_runtime(workers, max, NULL);
}

static void count_closure(void *ctx) {
  load *l = ctx;
  atomic_fetch_add(&l->closures_run, 1);
}

/* Closures through a group from outside, and fork-join through
 * shoal_runtime_run, both checked exactly. */
static void *closure_thread(void *arg) {
  load *l = arg;
  while (!atomic_load(&l->stop)) {
    shoal_group g;
    test_fib_args r = {18, 0};
    TEST_OFF_MAIN(shoal_group_init(&g, l->rt) == SHOAL_OK, "group init");
    for (int k = 0; k < CLOSURES_PER_ROUND; k++) {
      int rc = shoal_group_run(&g, count_closure, l);
      TEST_OFF_MAIN(rc == SHOAL_OK, "group run: %d", rc);
      l->closures_sent += rc == SHOAL_OK;
    }
    TEST_OFF_MAIN(shoal_group_wait(&g) == SHOAL_OK, "group wait");
    TEST_OFF_MAIN(atomic_load(&l->closures_run) == l->closures_sent,
                  "after a wait %llu of %llu closures ran",
                  (unsigned long long)atomic_load(&l->closures_run),
                  (unsigned long long)l->closures_sent);
    TEST_OFF_MAIN(shoal_runtime_run(l->rt, test_fib_root, &r) == SHOAL_OK,
                  "run");
    TEST_OFF_MAIN(r.r == 2584, "fib(18) = %ld", r.r);
    l->fibs++;
  }
  return NULL;
}

static void on_msg(shoal_actor *self, void *state, const shoal_msg *m) {
  load *l = state;
  (void)self;
  TEST_OFF_MAIN(m->type >= 1 && m->type <= NACTORS, "type %u", m->type);
  atomic_fetch_add(&l->per_actor[m->type], 1);
  atomic_fetch_add(&l->msgs_handled, 1);
}

/* Messages to actors homed on every worker there can be, and to free
 * ones. */
static void *sender_thread(void *arg) {
  load *l = arg;
  uint64_t n = 0;
  while (!atomic_load(&l->stop)) {
    uint32_t a = 1 + (uint32_t)(n++ % NACTORS);
    shoal_msg m;
    int rc;
    memset(&m, 0, sizeof m);
    m.type = a;
    while ((rc = shoal_try_send(l->sys, a, &m)) == SHOAL_EAGAIN)
      nap_us(50);
    TEST_OFF_MAIN(rc == SHOAL_OK, "send to %u: %d", a, rc);
    if (rc == SHOAL_OK) {
      l->msgs_sent++;
      l->sent_to[a]++;
    }
    if (n % 64 == 0)
      nap_us(100);
  }
  return NULL;
}

static void resize_under_load(void **state) {
  shoal_actors_config ac;
  load *l = calloc(1, sizeof *l);
  pthread_t closer, sender;
  (void)state;
  assert_non_null(l);
  l->rt = runtime_of(3, 6); /* more than CI's two cores */
  assert_int_equal(shoal_runtime_workers_max(l->rt), 6);
  shoal_actors_config_defaults(&ac);
  assert_int_equal(shoal_actors_create(&l->sys, l->rt, &ac), SHOAL_OK);
  for (uint64_t a = 1; a <= NACTORS; a++) {
    shoal_actor_opts o;
    shoal_actor_opts_defaults(&o);
    o.handler = on_msg;
    o.state = l;
    /* homes 1 … 5 (past the starting count too), the rest free */
    o.home = a <= 5 ? (int)a : -1;
    assert_int_equal(shoal_actor_register(l->sys, a, &o), SHOAL_OK);
  }
  pthread_create(&closer, NULL, closure_thread, l);
  pthread_create(&sender, NULL, sender_thread, l);
  for (int round = 0; round < 3; round++)
    for (size_t i = 0; i < SHOAL_ARRAY_LEN(walk); i++) {
      assert_int_equal(shoal_runtime_set_workers(l->rt, walk[i]), SHOAL_OK);
      assert_int_equal(shoal_runtime_workers(l->rt), walk[i]);
      nap_us(3000);
    }
  atomic_store(&l->stop, 1);
  pthread_join(closer, NULL);
  pthread_join(sender, NULL);
  /* Every message handled. What went to worker 0 while it was the only
   * one runs while the host is inside the runtime: a wait lets it in. */
  for (int k = 0; k < 20000 && atomic_load(&l->msgs_handled) < l->msgs_sent;
       k++) {
    shoal_group g;
    assert_int_equal(shoal_group_init(&g, l->rt), SHOAL_OK);
    assert_int_equal(shoal_group_run(&g, nap_closure, NULL), SHOAL_OK);
    assert_int_equal(shoal_group_wait(&g), SHOAL_OK);
  }
  TEST_OFF_MAIN_CLEAN();
  assert_true(l->fibs > 0);
  assert_true(l->closures_sent > 0);
  assert_int_equal(atomic_load(&l->closures_run), l->closures_sent);
  assert_int_equal(atomic_load(&l->msgs_handled), l->msgs_sent);
  for (unsigned a = 1; a <= NACTORS; a++)
    assert_int_equal(atomic_load(&l->per_actor[a]), l->sent_to[a]);
  assert_int_equal(shoal_actors_destroy(l->sys), SHOAL_OK);
  assert_int_equal(shoal_runtime_destroy(l->rt), SHOAL_OK);
  free(l);
}

/* ---- a manager's ticks and packets under resizes ------------------------ */

enum { NSESS = 300, OP_COUNT = 7 };

typedef struct world {
  shoal_mgr *mgr;
  _Atomic int stop;
  _Atomic uint64_t updates, packets;
  uint64_t sent;
} world;

static world *the_world;

static int count_update(void *host, uint32_t id, void *user, uint32_t diff) {
  (void)host;
  (void)id;
  (void)user;
  (void)diff;
  atomic_fetch_add(&the_world->updates, 1);
  return 0;
}

static int count_packet(void *host, uint32_t id, void *user,
                        const shoal_packet *p) {
  (void)host;
  (void)id;
  (void)user;
  (void)p;
  atomic_fetch_add(&the_world->packets, 1);
  return 0;
}

static void *packet_thread(void *arg) {
  world *w = arg;
  uint64_t n = 0;
  while (!atomic_load(&w->stop)) {
    uint32_t id = 1 + (uint32_t)(n++ % NSESS);
    int rc = shoal_session_send(w->mgr, id, OP_COUNT, 0, &n, sizeof n);
    if (rc == SHOAL_EAGAIN) {
      nap_us(200);
      continue;
    }
    TEST_OFF_MAIN(rc == SHOAL_OK, "send to %u: %d", id, rc);
    w->sent += rc == SHOAL_OK;
    if (n % 128 == 0)
      nap_us(100);
  }
  return NULL;
}

static int over_from_callback(void *host, uint32_t id, void *user,
                              uint32_t diff) {
  (void)host;
  (void)user;
  (void)diff;
  if (id == 1)
    TEST_OFF_MAIN(shoal_mgr_set_workers(the_world->mgr, 2) == SHOAL_ESTATE,
                  "a resize from an update callback");
  return 0;
}

static void resize_ticks(void **state) {
  shoal_config cfg;
  shoal_mgr_callbacks cb = {count_update, NULL, NULL};
  world *w = calloc(1, sizeof *w);
  pthread_t sender;
  uint64_t ticks = 0;
  shoal_packet_stats ps;
  (void)state;
  assert_non_null(w);
  the_world = w;
  shoal_config_defaults(&cfg);
  cfg.worker_threads = 2;
  cfg.max_worker_threads = 5;
  cfg.batch_size = 8; /* many batches: every worker gets some */
  cfg.log = test_quiet_log;
  assert_int_equal(shoal_mgr_create(&w->mgr, NULL, &cfg, &cb), SHOAL_OK);
  assert_int_equal(shoal_runtime_workers_max(shoal_mgr_runtime(w->mgr)), 5);
  assert_int_equal(shoal_mgr_register_opcode(w->mgr, OP_COUNT,
                                             SHOAL_PACKET_INPLACE,
                                             SHOAL_CAT_OTHER, count_packet,
                                             NULL),
                   SHOAL_OK);
  for (uint32_t id = 1; id <= NSESS; id++)
    assert_int_equal(shoal_session_create(w->mgr, id, NULL), SHOAL_OK);
  pthread_create(&sender, NULL, packet_thread, w);
  for (int round = 0; round < 2; round++)
    for (size_t i = 0; i < SHOAL_ARRAY_LEN(walk); i++) {
      unsigned n = walk[i] < 5 ? walk[i] : 5;
      uint64_t before = atomic_load(&w->updates);
      assert_int_equal(shoal_mgr_set_workers(w->mgr, n), SHOAL_OK);
      assert_int_equal(shoal_runtime_workers(shoal_mgr_runtime(w->mgr)), n);
      for (int k = 0; k < 5; k++, ticks++)
        assert_int_equal(shoal_mgr_update(w->mgr, 50), SHOAL_OK);
      /* each tick updates every session once */
      assert_int_equal(atomic_load(&w->updates) - before, 5u * NSESS);
    }
  atomic_store(&w->stop, 1);
  pthread_join(sender, NULL);
  for (int k = 0; k < 1000; k++) {
    assert_int_equal(shoal_mgr_update(w->mgr, 50), SHOAL_OK);
    assert_int_equal(shoal_packet_stats_get(w->mgr, &ps, 0), SHOAL_OK);
    if (ps.pending == 0)
      break;
  }
  TEST_OFF_MAIN_CLEAN();
  assert_true(w->sent > 0);
  assert_int_equal(ps.pending, 0);
  assert_int_equal(atomic_load(&w->packets), w->sent);
  /* The errors: 0, over the most, from a callback. */
  assert_int_equal(shoal_mgr_set_workers(w->mgr, 0), SHOAL_EINVAL);
  assert_int_equal(shoal_mgr_set_workers(w->mgr, 6), SHOAL_ELIMIT);
  assert_int_equal(shoal_mgr_set_workers(NULL, 2), SHOAL_EINVAL);
  shoal_mgr_destroy(w->mgr);
  cb.update = over_from_callback;
  assert_int_equal(shoal_mgr_create(&w->mgr, NULL, &cfg, &cb), SHOAL_OK);
  assert_int_equal(shoal_session_create(w->mgr, 1, NULL), SHOAL_OK);
  assert_int_equal(shoal_mgr_update(w->mgr, 50), SHOAL_OK);
  TEST_OFF_MAIN_CLEAN();
  assert_int_equal(shoal_mgr_destroy(w->mgr), SHOAL_OK);
  free(w);
}

/* ---- figures and errors ------------------------------------------------- */

static void try_from_task(shoal_worker *w, void *arg) {
  *(int *)arg = shoal_runtime_set_workers(shoal_worker_runtime(w), 2);
}

static void spin_closure(void *ctx) {
  (void)ctx;
  nap_us(200);
}

static void figures_and_errors(void **state) {
  shoal_runtime_config cfg;
  shoal_runtime *rt;
  shoal_worker_stats ws;
  shoal_group g;
  int rc = 0;
  (void)state;
  shoal_runtime_config_defaults(&cfg);
  cfg.workers = 4;
  cfg.max_workers = 3; /* below the count */
  cfg.log = test_quiet_log;
  assert_int_equal(shoal_runtime_create(&rt, &cfg), SHOAL_EINVAL);
  assert_null(rt);
  cfg.max_workers = 5;
  assert_int_equal(shoal_runtime_create(&rt, &cfg), SHOAL_OK);
  assert_int_equal(shoal_runtime_set_workers(NULL, 2), SHOAL_EINVAL);
  assert_int_equal(shoal_runtime_set_workers(rt, 0), SHOAL_EINVAL);
  assert_int_equal(shoal_runtime_set_workers(rt, 6), SHOAL_ELIMIT);
  assert_int_equal(shoal_runtime_workers(rt), 4);
  assert_int_equal(shoal_runtime_run(rt, try_from_task, &rc), SHOAL_OK);
  assert_int_equal(rc, SHOAL_ESTATE);
  assert_int_equal(shoal_runtime_set_workers(rt, 4), SHOAL_OK); /* no-op */
  /* Work for worker 3, then it leaves: its figures stay. */
  assert_int_equal(shoal_group_init(&g, rt), SHOAL_OK);
  for (int k = 0; k < 64; k++)
    assert_int_equal(shoal_group_run(&g, spin_closure, NULL), SHOAL_OK);
  assert_int_equal(shoal_group_wait(&g), SHOAL_OK);
  assert_int_equal(shoal_worker_stats_get(rt, 3, &ws), SHOAL_OK);
  {
    shoal_worker_stats before = ws, after;
    assert_int_equal(shoal_runtime_set_workers(rt, 2), SHOAL_OK);
    assert_int_equal(shoal_runtime_workers(rt), 2);
    /* Its thread has left: the figures are final, its CPU time kept. */
    assert_int_equal(shoal_worker_stats_get(rt, 3, &ws), SHOAL_OK);
    assert_true(ws.tasks >= before.tasks);
    assert_true(ws.cpu_ns >= before.cpu_ns);
    assert_true(ws.cpu_ns > 0);
    assert_int_equal(shoal_worker_stats_get(rt, 3, &after), SHOAL_OK);
    assert_memory_equal(&after, &ws, sizeof ws);
  }
  /* A worker never started reads zeros; past the most, an error. */
  assert_int_equal(shoal_worker_stats_get(rt, 4, &ws), SHOAL_OK);
  assert_int_equal(ws.tasks, 0);
  assert_int_equal(shoal_worker_stats_get(rt, 5, &ws), SHOAL_EINVAL);
  /* Back up: worker 3 comes back with its record. */
  assert_int_equal(shoal_runtime_set_workers(rt, 5), SHOAL_OK);
  assert_int_equal(shoal_runtime_workers(rt), 5);
  for (int k = 0; k < 64; k++)
    assert_int_equal(shoal_group_run(&g, spin_closure, NULL), SHOAL_OK);
  assert_int_equal(shoal_group_wait(&g), SHOAL_OK);
  assert_int_equal(shoal_runtime_destroy(rt), SHOAL_OK);
}

/* ---- adoption ------------------------------------------------------------ */

typedef struct adopted {
  shoal__task task; /* first */
  _Atomic unsigned ran, where;
} adopted;

static void adopted_run(shoal_worker *w, shoal__task *t) {
  adopted *a = (adopted *)(void *)t;
  atomic_store(&a->where, shoal_worker_index(w));
  atomic_fetch_add(&a->ran, 1);
}

/* What a sender that read the count before a shrink leaves in a removed
 * worker's inbox after its last look: the sender sees the worker retired
 * and adopts it, and the task runs once on a worker that stays. */
static void adopt_after_retire(void **state) {
  shoal_runtime *rt = runtime_of(4, 4);
  adopted a[3];
  (void)state;
  assert_int_equal(shoal_runtime_set_workers(rt, 2), SHOAL_OK);
  assert_int_equal(atomic_load(&rt->w[3]->retired), 1);
  assert_int_equal(atomic_load(&rt->w[1]->retired), 0);
  memset(a, 0, sizeof a);
  for (int k = 0; k < 3; k++) {
    a[k].task.fn = adopted_run;
    a[k].task.kind = k == 0 ? SHOAL__KIND_PINNED : SHOAL__KIND_CLOSURE;
    shoal__inbox_push(&rt->w[2 + k % 2]->inbox, &a[k].task.link);
  }
  shoal__adopt(rt, 2);
  shoal__adopt(rt, 3);
  for (int k = 0; k < 3; k++) {
    for (int t = 0; t < 20000 && atomic_load(&a[k].ran) == 0; t++)
      nap_us(100);
    assert_int_equal(atomic_load(&a[k].ran), 1);
    assert_int_equal(atomic_load(&a[k].where), 1); /* the one that stays */
  }
  /* Back again: the workers' own threads take their inboxes, no
   * adoption. */
  assert_int_equal(shoal_runtime_set_workers(rt, 4), SHOAL_OK);
  assert_int_equal(atomic_load(&rt->w[3]->retired), 0);
  assert_int_equal(shoal_runtime_destroy(rt), SHOAL_OK);
}

/* ---- a grow that fails ---------------------------------------------------- */

/* Each allocation of a grow back to four workers failing in turn (the
 * two plans', then each thread's start: the last two leave one and two
 * threads started, which go again): each answers SHOAL_ENOMEM with the
 * count unchanged, or succeeds (a plan's figure that may fail); either way
 * every closure submitted after it runs. */
static void grow_fails(void **state) {
  shoal_runtime *rt = runtime_of(4, 4);
  int failed = 0, grown = 0;
  (void)state;
  for (int64_t skip = 0; skip < 64 && grown < 3; skip++) {
    shoal_group g;
    load l;
    int rc;
    memset(&l, 0, sizeof l);
    assert_int_equal(shoal_runtime_set_workers(rt, 1), SHOAL_OK);
    shoal__fault_alloc(skip, 1);
    rc = shoal_runtime_set_workers(rt, 4);
    shoal__fault_alloc(0, 0);
    if (rc == SHOAL_OK) {
      grown++;
      assert_int_equal(shoal_runtime_workers(rt), 4);
    } else {
      failed++;
      assert_int_equal(rc, SHOAL_ENOMEM);
      assert_int_equal(shoal_runtime_workers(rt), 1);
    }
    assert_int_equal(shoal_group_init(&g, rt), SHOAL_OK);
    for (int k = 0; k < 100; k++)
      assert_int_equal(shoal_group_run(&g, count_closure, &l), SHOAL_OK);
    assert_int_equal(shoal_group_wait(&g), SHOAL_OK);
    assert_int_equal(atomic_load(&l.closures_run), 100);
  }
  assert_true(failed > 0);
  assert_true(grown > 0);
  assert_int_equal(shoal_runtime_destroy(rt), SHOAL_OK);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(plan_after_resize),
      cmocka_unit_test(resize_under_load),
      cmocka_unit_test(resize_ticks),
      cmocka_unit_test(figures_and_errors),
      cmocka_unit_test(adopt_after_retire),
      cmocka_unit_test(grow_fails),
  };
  cmocka_set_message_output(CM_OUTPUT_TAP);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
