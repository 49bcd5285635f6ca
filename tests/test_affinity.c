/* test_affinity.c — the plan honours the CPUs the process may run on:
 * whatever the process's affinity (meson runs this once as it is and once
 * under `taskset -c 0`), the topology holds those PUs only and names the
 * others with their reason, the default plan has one worker per core of
 * them and binds none elsewhere, and a running runtime's threads (workers
 * bound and unbound) stay inside the set, read from /proc; a thread pinned
 * since the process started narrows nothing. */
#include <dirent.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "test_util.h"

static cpu_set_t affinity(void) {
  cpu_set_t set;
  CPU_ZERO(&set);
  assert_int_equal(sched_getaffinity(0, sizeof set, &set), 0);
  return set;
}

/* "0-2,5" into set. */
static void parse_list(const char *s, cpu_set_t *set) {
  CPU_ZERO(set);
  while (*s != '\0' && *s != '\n') {
    char *end;
    long a = strtol(s, &end, 10), b = a;
    if (*end == '-')
      b = strtol(end + 1, &end, 10);
    for (long c = a; c <= b; c++)
      CPU_SET((int)c, set);
    s = *end == ',' ? end + 1 : end;
  }
}

static void topology_and_plan(void **state) {
  cpu_set_t a = affinity();
  shoal_topo *t = NULL;
  shoal_topo_opts o;
  shoal_plan *p = NULL;
  unsigned cores[CPU_SETSIZE] = {0}, ncores = 0;
  (void)state;
  assert_int_equal(shoal_topo_load(&t, NULL), SHOAL_OK);
  assert_int_equal(shoal_topo_pu_count(t), (unsigned)CPU_COUNT(&a));
  for (unsigned i = 0; i < shoal_topo_pu_count(t); i++) {
    const shoal_topo_pu *pu = shoal_topo_pu_at(t, i);
    assert_true(CPU_ISSET(pu->os_index, &a));
    if (cores[pu->core]++ == 0)
      ncores++;
  }
  for (unsigned k = 0; k < shoal_topo_excluded_count(t); k++) {
    unsigned os;
    shoal_excluded_reason why;
    assert_int_equal(shoal_topo_excluded_at(t, k, &os, &why), SHOAL_OK);
    assert_false(CPU_ISSET(os, &a));
  }
  assert_int_equal(shoal_topo_pu_count(t) + shoal_topo_excluded_count(t),
                   (unsigned)sysconf(_SC_NPROCESSORS_ONLN));
  assert_int_equal(shoal_plan_compute(&p, t, 0), SHOAL_OK);
  assert_int_equal(shoal_plan_worker_count(p), ncores);
  shoal_plan_destroy(p);
  assert_int_equal(shoal_plan_compute(&p, t, 4), SHOAL_OK);
  for (unsigned w = 0; w < 4; w++) {
    const shoal_plan_worker *pw = shoal_plan_worker_at(p, w);
    assert_true(pw->pu_os_index < 0 || CPU_ISSET(pw->pu_os_index, &a));
  }
  shoal_plan_destroy(p);
  shoal_topo_destroy(t);
  /* the whole machine: the rest marked, never planned */
  shoal_topo_opts_defaults(&o);
  o.whole_system = 1;
  assert_int_equal(shoal_topo_load(&t, &o), SHOAL_OK);
  assert_int_equal(shoal_topo_pu_count(t),
                   (unsigned)sysconf(_SC_NPROCESSORS_ONLN));
  for (unsigned i = 0; i < shoal_topo_pu_count(t); i++) {
    const shoal_topo_pu *pu = shoal_topo_pu_at(t, i);
    assert_int_equal(pu->allowed, CPU_ISSET(pu->os_index, &a) ? 1 : 0);
  }
  assert_int_equal(shoal_plan_compute(&p, t, 0), SHOAL_OK);
  assert_int_equal(shoal_plan_worker_count(p), ncores);
  for (unsigned w = 0; w < ncores; w++)
    assert_true(CPU_ISSET(shoal_plan_worker_at(p, w)->pu_os_index, &a));
  shoal_plan_destroy(p);
  shoal_topo_destroy(t);
}

static void worker_threads(void **state) {
  cpu_set_t a = affinity();
  shoal_runtime_config cfg;
  shoal_runtime *rt = NULL;
  DIR *d;
  struct dirent *e;
  unsigned threads = 0;
  (void)state;
  shoal_runtime_config_defaults(&cfg);
  cfg.workers = 3; /* more than the set on a 2-core machine: some unbound */
  cfg.log = test_quiet_log;
  assert_int_equal(shoal_runtime_create(&rt, &cfg), SHOAL_OK);
  assert_non_null(d = opendir("/proc/self/task"));
  while ((e = readdir(d)) != NULL) {
    char path[300], line[512];
    FILE *f;
    if (e->d_name[0] == '.')
      continue;
    snprintf(path, sizeof path, "/proc/self/task/%s/status", e->d_name);
    if ((f = fopen(path, "r")) == NULL)
      continue; /* gone meanwhile */
    while (fgets(line, sizeof line, f) != NULL)
      if (strncmp(line, "Cpus_allowed_list:", 18) == 0) {
        cpu_set_t mine, out;
        parse_list(line + 18 + strspn(line + 18, " \t"), &mine);
        CPU_AND(&out, &mine, &a);
        if (!CPU_EQUAL(&out, &mine))
          fail_msg("thread %s may run on %s", e->d_name, line + 18);
        threads++;
      }
    fclose(f);
  }
  closedir(d);
  assert_true(threads >= 3); /* the workers and this one */
  assert_int_equal(shoal_runtime_destroy(rt), SHOAL_OK);
}

/* A thread pinned since the process started (the host's main thread, as
 * shoal_runtime_bind_host pins it) does not narrow later plans: a second
 * runtime of the process still gets every core it may use. */
static void pinned_host_thread(void **state) {
  cpu_set_t a = affinity(), one;
  shoal_topo *t = NULL;
  int first = -1;
  (void)state;
  for (int c = 0; c < CPU_SETSIZE && first < 0; c++)
    if (CPU_ISSET(c, &a))
      first = c;
  CPU_ZERO(&one);
  CPU_SET(first, &one);
  assert_int_equal(sched_setaffinity(0, sizeof one, &one), 0);
  assert_int_equal(shoal_topo_load(&t, NULL), SHOAL_OK);
  assert_int_equal(shoal_topo_pu_count(t), (unsigned)CPU_COUNT(&a));
  assert_int_equal(shoal_topo_excluded_count(t) + CPU_COUNT(&a),
                   (unsigned)sysconf(_SC_NPROCESSORS_ONLN));
  shoal_topo_destroy(t);
  assert_int_equal(sched_setaffinity(0, sizeof a, &a), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(topology_and_plan),
    cmocka_unit_test(worker_threads),
    cmocka_unit_test(pinned_host_thread),
  };
  return test_run("affinity", tests, SHOAL_ARRAY_LEN(tests));
}
