/* test_plan.c — the worker plan on synthetic and XML topologies: exact
 * worker -> PU bindings, NUMA nodes and victim orders; nearness from the
 * tree (L2 clusters under an L3, one node over two packages, sub-NUMA
 * clusters), the latency matrix and never the bandwidth one, thieves
 * spread over the next level, the default's cap. */
#include "test_util.h"

static shoal_topo *load_synth(const char *desc) {
  shoal_topo_opts o;
  shoal_topo *t = NULL;
  shoal_topo_opts_defaults(&o);
  o.synthetic = desc;
  assert_int_equal(shoal_topo_load(&t, &o), SHOAL_OK);
  assert_non_null(t);
  return t;
}

static shoal_topo *load_xml(const char *name) {
  char path[1024];
  shoal_topo_opts o;
  shoal_topo *t = NULL;
  test_fixture_path(path, sizeof path, name);
  shoal_topo_opts_defaults(&o);
  o.xml_path = path;
  assert_int_equal(shoal_topo_load(&t, &o), SHOAL_OK);
  return t;
}

/* Checks worker w's binding and its whole victim list with levels. */
static void expect_worker(const shoal_plan *p, unsigned w, int pu_os,
                          unsigned numa_os, const unsigned *victims,
                          const shoal_near *levels, unsigned n) {
  const shoal_plan_worker *pw = shoal_plan_worker_at(p, w);
  assert_non_null(pw);
  assert_int_equal(pw->worker, w);
  assert_int_equal(pw->pu_os_index, pu_os);
  assert_int_equal(pw->numa_os_index, numa_os);
  assert_int_equal(pw->nvictims, n);
  for (unsigned i = 0; i < n; i++) {
    assert_int_equal(pw->victims[i], victims[i]);
    assert_int_equal(pw->victim_near[i], levels[i]);
  }
}

/* Every victim list is a permutation of the other workers. */
static void expect_permutations(const shoal_plan *p) {
  unsigned n = shoal_plan_worker_count(p);
  for (unsigned w = 0; w < n; w++) {
    const shoal_plan_worker *pw = shoal_plan_worker_at(p, w);
    unsigned char seen[SHOAL_WORKERS_MAX] = {0};
    assert_int_equal(pw->nvictims, n - 1);
    for (unsigned i = 0; i < pw->nvictims; i++) {
      assert_true(pw->victims[i] < n);
      assert_int_not_equal(pw->victims[i], w);
      assert_int_equal(seen[pw->victims[i]], 0);
      seen[pw->victims[i]] = 1;
      if (i > 0) /* levels never get nearer along the list */
        assert_true(pw->victim_level[i] >= pw->victim_level[i - 1]);
      assert_int_equal(pw->victim_cache[i] != 0,
                       pw->victim_near[i] == SHOAL_NEAR_CACHE);
    }
  }
}

#define N(x) SHOAL_NEAR_##x

static void two_cores_one_node(void **state) {
  shoal_topo *t = load_synth("l3:1 core:2 pu:1");
  shoal_plan *p = NULL;
  (void)state;
  assert_int_equal(shoal_topo_core_count(t), 2);
  assert_int_equal(shoal_topo_cache_domain_count(t), 1);
  assert_int_equal(shoal_plan_compute(&p, t, 0), SHOAL_OK);
  assert_int_equal(shoal_plan_worker_count(p), 2);
  expect_worker(p, 0, 0, 0, (unsigned[]){1}, (shoal_near[]){N(CACHE)}, 1);
  expect_worker(p, 1, 1, 0, (unsigned[]){0}, (shoal_near[]){N(CACHE)}, 1);
  shoal_plan_destroy(p);

  /* One worker: nobody to steal from. */
  assert_int_equal(shoal_plan_compute(&p, t, 1), SHOAL_OK);
  expect_worker(p, 0, 0, 0, NULL, NULL, 0);
  shoal_plan_destroy(p);
  shoal_topo_destroy(t);
}

static void two_packages_two_nodes(void **state) {
  shoal_topo *t = load_synth("pack:2 numa:2 core:4 pu:2");
  shoal_plan *p = NULL;
  (void)state;
  assert_int_equal(shoal_topo_pu_count(t), 32);
  assert_int_equal(shoal_topo_core_count(t), 16);
  assert_int_equal(shoal_topo_numa_count(t), 4);
  assert_int_equal(shoal_topo_package_count(t), 2);
  assert_int_equal(shoal_plan_compute(&p, t, 0), SHOAL_OK);
  assert_int_equal(shoal_plan_worker_count(p), 16);
  /* One worker per core: the first PU of each core. */
  for (unsigned w = 0; w < 16; w++) {
    const shoal_plan_worker *pw = shoal_plan_worker_at(p, w);
    assert_int_equal(pw->pu_os_index, (int)(2 * w));
    assert_int_equal(pw->numa_os_index, w / 4);
  }
  expect_worker(p, 0, 0, 0,
      (unsigned[]){1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
      (shoal_near[]){N(NUMA), N(NUMA), N(NUMA), N(PACKAGE), N(PACKAGE),
                     N(PACKAGE), N(PACKAGE), N(REMOTE), N(REMOTE), N(REMOTE),
                     N(REMOTE), N(REMOTE), N(REMOTE), N(REMOTE), N(REMOTE)}, 15);
  /* its node's rank 1: the next level's second victim first */
  expect_worker(p, 5, 10, 1,
      (unsigned[]){6, 7, 4, 1, 2, 3, 0, 13, 14, 15, 8, 9, 10, 11, 12},
      (shoal_near[]){N(NUMA), N(NUMA), N(NUMA), N(PACKAGE), N(PACKAGE),
                     N(PACKAGE), N(PACKAGE), N(REMOTE), N(REMOTE), N(REMOTE),
                     N(REMOTE), N(REMOTE), N(REMOTE), N(REMOTE), N(REMOTE)}, 15);
  expect_worker(p, 14, 28, 3,
      (unsigned[]){15, 12, 13, 10, 11, 8, 9, 6, 7, 0, 1, 2, 3, 4, 5},
      (shoal_near[]){N(NUMA), N(NUMA), N(NUMA), N(PACKAGE), N(PACKAGE),
                     N(PACKAGE), N(PACKAGE), N(REMOTE), N(REMOTE), N(REMOTE),
                     N(REMOTE), N(REMOTE), N(REMOTE), N(REMOTE), N(REMOTE)}, 15);
  expect_permutations(p);
  shoal_plan_destroy(p);
  shoal_topo_destroy(t);
}

static void smt_siblings(void **state) {
  shoal_topo *t = load_synth("core:2 pu:2");
  shoal_plan *p = NULL;
  (void)state;
  /* Four workers on two cores: cores first, then the siblings. */
  assert_int_equal(shoal_plan_compute(&p, t, 4), SHOAL_OK);
  /* the node (the machine) is the next level; each core's two workers
   * start on different ones of the other core */
  expect_worker(p, 0, 0, 0, (unsigned[]){2, 1, 3},
                (shoal_near[]){N(CORE), N(NUMA), N(NUMA)}, 3);
  expect_worker(p, 1, 2, 0, (unsigned[]){3, 2, 0},
                (shoal_near[]){N(CORE), N(NUMA), N(NUMA)}, 3);
  expect_worker(p, 2, 1, 0, (unsigned[]){0, 3, 1},
                (shoal_near[]){N(CORE), N(NUMA), N(NUMA)}, 3);
  expect_worker(p, 3, 3, 0, (unsigned[]){1, 0, 2},
                (shoal_near[]){N(CORE), N(NUMA), N(NUMA)}, 3);
  assert_int_equal(shoal_plan_collisions(p), 0);
  shoal_plan_destroy(p);

  /* More workers than PUs: the rest run unbound, last for everyone. */
  assert_int_equal(shoal_plan_compute(&p, t, 6), SHOAL_OK);
  expect_worker(p, 4, -1, 0, (unsigned[]){5, 0, 1, 2, 3},
                (shoal_near[]){N(UNBOUND), N(UNBOUND), N(UNBOUND),
                               N(UNBOUND), N(UNBOUND)}, 5);
  assert_int_equal(shoal_plan_worker_at(p, 5)->pu_logical, -1);
  expect_worker(p, 0, 0, 0, (unsigned[]){2, 1, 3, 4, 5},
                (shoal_near[]){N(CORE), N(NUMA), N(NUMA), N(UNBOUND),
                               N(UNBOUND)}, 5);
  expect_permutations(p);
  shoal_plan_destroy(p);
  shoal_topo_destroy(t);
}

/* Package 0: two NUMA nodes of two SMT cores each, one L3 per node;
 * package 1: one core on node 2 and a memory-only node 3. Distances
 * 10/16/22/28 (see the file). */
static void asymmetric(void **state) {
  shoal_topo *t = load_xml("asymmetric.xml");
  shoal_plan *p = NULL;
  (void)state;
  assert_int_equal(shoal_topo_pu_count(t), 10);
  assert_int_equal(shoal_topo_core_count(t), 5);
  assert_int_equal(shoal_topo_numa_count(t), 4);
  assert_int_equal(shoal_topo_numa_distance(t, 0, 3), 28);
  assert_int_equal(shoal_plan_compute(&p, t, 0), SHOAL_OK);
  assert_int_equal(shoal_plan_worker_count(p), 5);
  expect_worker(p, 0, 0, 0, (unsigned[]){1, 2, 3, 4},
                (shoal_near[]){N(CACHE), N(PACKAGE), N(PACKAGE), N(REMOTE)}, 4);
  expect_worker(p, 3, 6, 1, (unsigned[]){2, 1, 0, 4},
                (shoal_near[]){N(CACHE), N(PACKAGE), N(PACKAGE), N(REMOTE)}, 4);
  expect_worker(p, 4, 8, 2, (unsigned[]){0, 1, 2, 3},
                (shoal_near[]){N(REMOTE), N(REMOTE), N(REMOTE), N(REMOTE)}, 4);
  shoal_plan_destroy(p);

  /* 12 workers: 10 bound (siblings after cores), 2 unbound on the nodes
   * that have PUs, in turn; node 3 has none and gets nobody. */
  assert_int_equal(shoal_plan_compute(&p, t, 12), SHOAL_OK);
  assert_int_equal(shoal_plan_worker_at(p, 5)->pu_os_index, 1);
  assert_int_equal(shoal_plan_worker_at(p, 9)->pu_os_index, 9);
  assert_int_equal(shoal_plan_worker_at(p, 10)->pu_os_index, -1);
  assert_int_equal(shoal_plan_worker_at(p, 10)->numa_os_index, 0);
  assert_int_equal(shoal_plan_worker_at(p, 11)->numa_os_index, 1);
  /* Worker 0: its sibling, its L3, node 1 by latency (16), node 2 (22),
   * then the unbound ones. */
  expect_worker(p, 0, 0, 0, (unsigned[]){5, 1, 6, 2, 3, 7, 8, 4, 9, 10, 11},
                (shoal_near[]){N(CORE), N(CACHE), N(CACHE), N(PACKAGE),
                               N(PACKAGE), N(PACKAGE), N(PACKAGE), N(REMOTE),
                               N(REMOTE), N(UNBOUND), N(UNBOUND)}, 11);
  expect_permutations(p);
  shoal_plan_destroy(p);
  shoal_topo_destroy(t);
}

/* Four nodes on one machine (no package object); node 0 is nearer to node
 * 2 (20) than to node 1 (30) or node 3 (40): latency orders the nodes,
 * each its own level. */
static void numa_distance_order(void **state) {
  shoal_topo *t = load_xml("distances.xml");
  shoal_plan *p = NULL;
  (void)state;
  assert_int_equal(shoal_plan_compute(&p, t, 0), SHOAL_OK);
  expect_worker(p, 0, 0, 0, (unsigned[]){1, 4, 5, 2, 3, 6, 7},
                (shoal_near[]){N(NUMA), N(REMOTE), N(REMOTE), N(REMOTE),
                               N(REMOTE), N(REMOTE), N(REMOTE)}, 7);
  expect_worker(p, 6, 6, 3, (unsigned[]){7, 2, 3, 4, 5, 0, 1},
                (shoal_near[]){N(NUMA), N(REMOTE), N(REMOTE), N(REMOTE),
                               N(REMOTE), N(REMOTE), N(REMOTE)}, 7);
  assert_int_equal(shoal_plan_worker_at(p, 0)->victim_level[6], 3);
  shoal_plan_destroy(p);
  shoal_topo_destroy(t);
}

static void big_machine(void **state) {
  shoal_topo *t = load_synth("pack:4 numa:2 l3:2 core:8 pu:2");
  shoal_plan *p = NULL;
  (void)state;
  assert_int_equal(shoal_plan_compute(&p, t, 0), SHOAL_OK);
  assert_int_equal(shoal_plan_worker_count(p), 128);
  expect_permutations(p);
  shoal_plan_destroy(p);
  assert_int_equal(shoal_plan_compute(&p, t, SHOAL_WORKERS_MAX), SHOAL_OK);
  expect_permutations(p);
  shoal_plan_destroy(p);
  shoal_topo_destroy(t);
}

/* More cores than SHOAL_WORKERS_MAX: one worker per core up to the
 * limit, never past it. */
static void more_cores_than_workers(void **state) {
  shoal_topo *t = load_synth("pack:2 core:600 pu:1");
  shoal_plan *p = NULL;
  (void)state;
  assert_int_equal(shoal_plan_compute(&p, t, 0), SHOAL_OK);
  assert_int_equal(shoal_plan_worker_count(p), SHOAL_WORKERS_MAX);
  assert_int_equal(shoal_plan_capped(p), 1200 - SHOAL_WORKERS_MAX);
  expect_permutations(p);
  shoal_plan_destroy(p);
  assert_int_equal(shoal_plan_compute(&p, t, 8), SHOAL_OK);
  assert_int_equal(shoal_plan_capped(p), 0); /* a count given: no cap */
  shoal_plan_destroy(p);
  shoal_topo_destroy(t);
}

/* Cores that share an L2 come before the rest of the L3. */
static void l2_clusters(void **state) {
  shoal_topo *t = load_synth("l3:1 l2:4 core:4 pu:1");
  shoal_plan *p = NULL;
  const shoal_plan_worker *pw;
  (void)state;
  assert_int_equal(shoal_plan_compute(&p, t, 0), SHOAL_OK);
  expect_worker(p, 5, 5, 0,
      (unsigned[]){6, 7, 4, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 8},
      (shoal_near[]){N(CACHE), N(CACHE), N(CACHE), N(CACHE), N(CACHE),
                     N(CACHE), N(CACHE), N(CACHE), N(CACHE), N(CACHE),
                     N(CACHE), N(CACHE), N(CACHE), N(CACHE), N(CACHE)}, 15);
  pw = shoal_plan_worker_at(p, 5);
  for (unsigned i = 0; i < 15; i++) {
    assert_int_equal(pw->victim_cache[i], i < 3 ? 2 : 3);
    assert_int_equal(pw->victim_level[i], i < 3 ? 0 : 1);
  }
  assert_int_equal(shoal_plan_collisions(p), 0);
  expect_permutations(p);
  shoal_plan_destroy(p);
  shoal_topo_destroy(t);
}

/* One NUMA node over two packages (a cloud VM's shape): the L3, then the
 * package, then the node; the package level is used. And sub-NUMA
 * clusters: two nodes under one package's L3, the node before the L3. */
static void node_over_packages(void **state) {
  shoal_topo *t = load_synth("pack:2 l3:2 core:4 pu:2");
  shoal_plan *p = NULL;
  (void)state;
  assert_int_equal(shoal_topo_numa_count(t), 1);
  assert_int_equal(shoal_plan_compute(&p, t, 0), SHOAL_OK);
  expect_worker(p, 0, 0, 0,
      (unsigned[]){1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
      (shoal_near[]){N(CACHE), N(CACHE), N(CACHE), N(PACKAGE), N(PACKAGE),
                     N(PACKAGE), N(PACKAGE), N(NUMA), N(NUMA), N(NUMA),
                     N(NUMA), N(NUMA), N(NUMA), N(NUMA), N(NUMA)}, 15);
  expect_permutations(p);
  shoal_plan_destroy(p);
  shoal_topo_destroy(t);

  t = load_synth("pack:2 l3:1 numa:2 core:4 pu:1");
  assert_int_equal(shoal_topo_numa_count(t), 4);
  assert_int_equal(shoal_plan_compute(&p, t, 0), SHOAL_OK);
  expect_worker(p, 0, 0, 0,
      (unsigned[]){1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
      (shoal_near[]){N(NUMA), N(NUMA), N(NUMA), N(CACHE), N(CACHE),
                     N(CACHE), N(CACHE), N(REMOTE), N(REMOTE), N(REMOTE),
                     N(REMOTE), N(REMOTE), N(REMOTE), N(REMOTE), N(REMOTE)},
      15);
  expect_permutations(p);
  shoal_plan_destroy(p);
  shoal_topo_destroy(t);
}

/* The latency matrix orders the nodes whatever comes first in the file;
 * a bandwidth matrix alone is shown, never used: the tree decides. */
static void latency_not_bandwidth(void **state) {
  static const char *const files[] = {"numa-lat-bw.xml", "numa-bw-lat.xml"};
  shoal_topo *t;
  shoal_plan *p = NULL;
  (void)state;
  for (unsigned f = 0; f < 2; f++) {
    t = load_xml(files[f]);
    assert_int_equal(shoal_topo_numa_distance(t, 0, 2), 12);
    assert_int_equal(shoal_topo_numa_distance(t, 0, 3), 30);
    assert_int_equal(shoal_topo_numa_bandwidth(t, 0, 3), 10000);
    assert_int_equal(shoal_plan_compute(&p, t, 0), SHOAL_OK);
    /* node 2 (12), node 1 (20), node 3 (30) */
    expect_worker(p, 0, 0, 0, (unsigned[]){1, 4, 5, 2, 3, 6, 7},
                  (shoal_near[]){N(NUMA), N(REMOTE), N(REMOTE), N(REMOTE),
                                 N(REMOTE), N(REMOTE), N(REMOTE)}, 7);
    shoal_plan_destroy(p);
    shoal_topo_destroy(t);
  }
  t = load_xml("numa-bw.xml");
  assert_int_equal(shoal_topo_numa_distance(t, 0, 3), 0);
  assert_int_equal(shoal_topo_numa_bandwidth(t, 0, 1), 30000);
  assert_int_equal(shoal_plan_compute(&p, t, 0), SHOAL_OK);
  /* the tree: every other node is only the machine, one level */
  expect_worker(p, 0, 0, 0, (unsigned[]){1, 2, 3, 4, 5, 6, 7},
                (shoal_near[]){N(NUMA), N(REMOTE), N(REMOTE), N(REMOTE),
                               N(REMOTE), N(REMOTE), N(REMOTE)}, 7);
  shoal_plan_destroy(p);
  shoal_topo_destroy(t);
}

/* 8 packages × 2 nodes × 24 cores × 2 PUs: each domain's thieves start
 * on different victims of the next level (none shared), where a rotation
 * from each thief alone sent a package's 48 to one remote victim. */
static void thieves_spread(void **state) {
  shoal_topo *t = load_synth("pack:8 numa:2 core:24 pu:2");
  shoal_plan *p = NULL;
  (void)state;
  assert_int_equal(shoal_plan_compute(&p, t, 0), SHOAL_OK);
  assert_int_equal(shoal_plan_worker_count(p), 384);
  assert_int_equal(shoal_plan_collisions(p), 0);
  /* a package's 48 workers: 48 different first remote victims */
  {
    unsigned char seen[384] = {0};
    for (unsigned w = 0; w < 48; w++) {
      const shoal_plan_worker *pw = shoal_plan_worker_at(p, w);
      unsigned i = 0;
      while (pw->victim_near[i] != SHOAL_NEAR_REMOTE)
        i++;
      assert_int_equal(seen[pw->victims[i]]++, 0);
    }
  }
  expect_permutations(p);
  shoal_plan_destroy(p);
  assert_int_equal(shoal_plan_compute(&p, t, SHOAL_WORKERS_MAX), SHOAL_OK);
  expect_permutations(p);
  shoal_plan_destroy(p);
  shoal_topo_destroy(t);
}

static void bad_arguments(void **state) {
  shoal_topo *t = load_synth("core:2 pu:1");
  shoal_plan *p = (shoal_plan *)1;
  (void)state;
  assert_int_equal(shoal_plan_compute(&p, t, SHOAL_WORKERS_MAX + 1), SHOAL_EINVAL);
  assert_null(p);
  assert_int_equal(shoal_plan_compute(&p, NULL, 2), SHOAL_EINVAL);
  assert_int_equal(shoal_plan_compute(NULL, t, 2), SHOAL_EINVAL);
  assert_null(shoal_plan_worker_at(NULL, 0));
  assert_int_equal(shoal_plan_worker_count(NULL), 0);
  assert_string_equal(shoal_near_name(SHOAL_NEAR_CACHE), "cache");
  assert_string_equal(shoal_near_name(SHOAL_NEAR_UNBOUND), "unbound");
  assert_int_equal(shoal_plan_capped(NULL), 0);
  assert_int_equal(shoal_plan_collisions(NULL), 0);
  assert_string_equal(shoal_near_name((shoal_near)77), "unknown");
  shoal_plan_destroy(NULL);
  shoal_topo_destroy(t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(two_cores_one_node),
    cmocka_unit_test(two_packages_two_nodes),
    cmocka_unit_test(smt_siblings),
    cmocka_unit_test(asymmetric),
    cmocka_unit_test(numa_distance_order),
    cmocka_unit_test(big_machine),
    cmocka_unit_test(more_cores_than_workers),
    cmocka_unit_test(l2_clusters),
    cmocka_unit_test(node_over_packages),
    cmocka_unit_test(latency_not_bandwidth),
    cmocka_unit_test(thieves_spread),
    cmocka_unit_test(bad_arguments),
  };
  return test_run("plan", tests, SHOAL_ARRAY_LEN(tests));
}
