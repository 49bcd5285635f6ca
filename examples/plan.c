/* plan.c — a minimal host: loads this machine's topology, computes shoal's
 * worker plan and prints each worker's PU and first victim. Build outside
 * the tree with: cc plan.c $(pkg-config --cflags --libs shoal) */
#include <stdio.h>

#include <shoal.h>

static void log_to_stderr(void *user, shoal_log_level level, const char *msg) {
  (void)user;
  fprintf(stderr, "shoal[%d]: %s\n", (int)level, msg);
}

int main(void) {
  shoal_topo_opts o;
  shoal_topo *t = NULL;
  shoal_plan *p = NULL;
  int rc;

  shoal_topo_opts_defaults(&o);
  o.log = log_to_stderr;
  if ((rc = shoal_topo_load(&t, &o)) != SHOAL_OK) {
    fprintf(stderr, "topology: %s\n", shoal_strerror(rc));
    return 1;
  }
  if ((rc = shoal_plan_compute(&p, t, 0)) != SHOAL_OK) {
    fprintf(stderr, "plan: %s\n", shoal_strerror(rc));
    shoal_topo_destroy(t);
    return 1;
  }
  for (unsigned w = 0; w < shoal_plan_worker_count(p); w++) {
    const shoal_plan_worker *pw = shoal_plan_worker_at(p, w);
    printf("worker %u: PU %d, NUMA node %u", w, pw->pu_os_index,
           pw->numa_os_index);
    if (pw->nvictims > 0)
      printf(", steals first from worker %u (%s)", pw->victims[0],
             shoal_near_name((shoal_near)pw->victim_near[0]));
    printf("\n");
  }
  shoal_plan_destroy(p);
  shoal_topo_destroy(t);
  return 0;
}
