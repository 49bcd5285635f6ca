/* topo_plan.c — `shoal topo`'s plan, as people read it and as JSON: each
 * level's workers written as ranges ("8-15, 24-31"), workers whose rows
 * would say the same thing grouped into one, the full ordered lists kept
 * for --json (docs/topo-json.md). */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "json.h"

static int uint_cmp(const void *pa, const void *pb) {
  unsigned a = *(const unsigned *)pa, b = *(const unsigned *)pb;
  return a < b ? -1 : a > b;
}

/* v[0 … n) (sorted here, repeats dropped) as "0-3, 8, 10-12" into buf;
 * an even stride of four or more as "0-46 by 2" (SMT siblings' PUs). */
void topo_ranges(char *buf, size_t cap, unsigned *v, unsigned n) {
  size_t len = 0;
  buf[0] = '\0';
  qsort(v, n, sizeof *v, uint_cmp);
  if (n >= 4 && v[1] - v[0] > 1) {
    unsigned step = v[1] - v[0], k = 2;
    while (k < n && v[k] - v[k - 1] == step)
      k++;
    if (k == n) {
      snprintf(buf, cap, "%u-%u by %u", v[0], v[n - 1], step);
      return;
    }
  }
  for (unsigned i = 0; i < n && len < cap;) {
    unsigned j = i;
    while (j + 1 < n && (v[j + 1] == v[j] || v[j + 1] == v[j] + 1))
      j++;
    len += (size_t)snprintf(buf + len, cap - len, "%s%u", len ? ", " : "",
                            v[i]);
    if (j > i && v[j] != v[i] && len < cap)
      len += (size_t)snprintf(buf + len, cap - len, "-%u", v[j]);
    i = j + 1;
  }
  if (len >= cap && cap > 4)
    memcpy(buf + cap - 4, "...", 4);
}

/* A victim's level as the report names it: a cache by its level ("l2",
 * "l3"), the others by shoal_near_name. */
const char *topo_victim_label(const shoal_plan_worker *pw, unsigned i,
                              char *buf, size_t cap) {
  if (pw->victim_near[i] == SHOAL_NEAR_CACHE && pw->victim_cache[i] != 0) {
    snprintf(buf, cap, "l%u", pw->victim_cache[i]);
    return buf;
  }
  return shoal_near_name((shoal_near)pw->victim_near[i]);
}

/* Worker w's levels as "label: ranges  label: ranges", the first level
 * holding w itself (so that the workers of one domain read alike). */
static void signature(const shoal_plan_worker *pw, char *buf, size_t cap,
                      unsigned *tmp) {
  size_t len = 0;
  buf[0] = '\0';
  for (unsigned i = 0; i < pw->nvictims && len < cap;) {
    unsigned j = i, k = 0;
    char label[16], set[4096];
    while (j < pw->nvictims && pw->victim_level[j] == pw->victim_level[i])
      tmp[k++] = pw->victims[j++];
    if (i == 0)
      tmp[k++] = pw->worker;
    topo_ranges(set, sizeof set, tmp, k);
    len += (size_t)snprintf(buf + len, cap - len, "%s%s: %s",
                            len ? "  " : "",
                            topo_victim_label(pw, i, label, sizeof label),
                            set);
    i = j;
  }
}

/* The plan's rows: consecutive workers with the same levels and the same
 * binding state make one row. */
void topo_print_plan(const shoal_plan *plan, unsigned asked) {
  unsigned n = shoal_plan_worker_count(plan);
  unsigned *tmp = malloc((n + 1) * sizeof *tmp), *pus = malloc((n + 1) * sizeof *pus);
  unsigned *nodes = malloc((n + 1) * sizeof *nodes);
  size_t cap = 65536;
  char *sig = malloc(cap), *next = malloc(cap), ws[64], pu[4096], nd[1024];
  if (tmp == NULL || pus == NULL || nodes == NULL || sig == NULL ||
      next == NULL)
    goto out;
  printf("\nPlan: %u worker%s", n, n == 1 ? "" : "s");
  if (asked == 0 && shoal_plan_capped(plan) != 0)
    printf(" (one per core, at most %d: %u cores get none)",
           SHOAL_WORKERS_MAX, shoal_plan_capped(plan));
  else if (asked == 0)
    printf(" (one per core)");
  printf("\n  %-9s %-16s %-6s %s\n", "workers", "PUs (P#)", "NUMA",
         "steal order by level, nearest first (the first level holds the "
         "worker itself)");
  for (unsigned w = 0; w < n;) {
    const shoal_plan_worker *pw = shoal_plan_worker_at(plan, w);
    unsigned end = w + 1, k = 0, bound = pw->pu_os_index >= 0;
    signature(pw, sig, cap, tmp);
    while (end < n) {
      const shoal_plan_worker *px = shoal_plan_worker_at(plan, end);
      if ((px->pu_os_index >= 0) != bound)
        break;
      signature(px, next, cap, tmp);
      if (strcmp(next, sig) != 0)
        break;
      end++;
    }
    for (unsigned x = w; x < end; x++) {
      const shoal_plan_worker *px = shoal_plan_worker_at(plan, x);
      pus[k] = (unsigned)px->pu_os_index;
      nodes[k++] = px->numa_os_index;
    }
    if (end - w == 1)
      snprintf(ws, sizeof ws, "%u", w);
    else
      snprintf(ws, sizeof ws, "%u-%u", w, end - 1);
    if (bound)
      topo_ranges(pu, sizeof pu, pus, k);
    else
      snprintf(pu, sizeof pu, "unbound");
    topo_ranges(nd, sizeof nd, nodes, k);
    printf("  %-9s %-16s %-6s %s\n", ws, pu, nd, sig);
    w = end;
  }
  printf("First-victim collisions: %u (thieves of a level whose first "
         "victim another thief has too)\n",
         shoal_plan_collisions(plan));
out:
  free(tmp);
  free(pus);
  free(nodes);
  free(sig);
  free(next);
}

void topo_json_plan(json_writer *j, const shoal_plan *plan) {
  unsigned n = shoal_plan_worker_count(plan);
  char label[16];
  json_object_begin(j, "plan");
  json_uint(j, "worker_count", n);
  json_uint(j, "capped_cores", shoal_plan_capped(plan));
  json_uint(j, "first_victim_collisions", shoal_plan_collisions(plan));
  json_array_begin(j, "workers", 0);
  for (unsigned w = 0; w < n; w++) {
    const shoal_plan_worker *pw = shoal_plan_worker_at(plan, w);
    json_object_begin(j, NULL);
    json_uint(j, "worker", pw->worker);
    if (pw->pu_os_index >= 0) {
      json_int(j, "pu_os_index", pw->pu_os_index);
      json_int(j, "pu_logical", pw->pu_logical);
    } else {
      json_null(j, "pu_os_index");
      json_null(j, "pu_logical");
    }
    json_uint(j, "numa_node", pw->numa_os_index);
    json_array_begin(j, "victims", 1);
    for (unsigned i = 0; i < pw->nvictims; i++)
      json_uint(j, NULL, pw->victims[i]);
    json_array_end(j);
    json_array_begin(j, "victim_levels", 1);
    for (unsigned i = 0; i < pw->nvictims; i++)
      json_string(j, NULL, topo_victim_label(pw, i, label, sizeof label));
    json_array_end(j);
    json_array_begin(j, "victim_ranks", 1);
    for (unsigned i = 0; i < pw->nvictims; i++)
      json_uint(j, NULL, pw->victim_level[i]);
    json_array_end(j);
    json_object_end(j);
  }
  json_array_end(j);
  json_object_end(j);
}
