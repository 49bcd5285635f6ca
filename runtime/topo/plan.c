/* plan.c — the worker plan: which PU each worker is bound to, which NUMA
 * node it allocates from, and its steal order. A pure function of the
 * topology snapshot, so synthetic topologies test it on any machine. */
#include <stdlib.h>
#include <string.h>

#include "runtime/topo/topo.h"

struct shoal_plan {
  unsigned n;
  shoal_plan_worker *workers;
  unsigned *victims;         /* n * (n - 1) */
  unsigned char *victim_near;
};

static const char *const near_names[SHOAL_NEAR_LEVELS] = {
  "core", "cache", "numa", "package", "remote",
};

const char *shoal_near_name(shoal_near near) {
  return (unsigned)near < SHOAL_NEAR_LEVELS ? near_names[near] : "unknown";
}

static shoal_near nearness(const shoal_topo *t, const shoal_plan_worker *a,
                           const shoal_plan_worker *b) {
  const shoal_topo_pu *pa, *pb;
  if (a->pu_logical < 0 || b->pu_logical < 0)
    return SHOAL_NEAR_REMOTE;
  pa = &t->pus[a->pu_logical];
  pb = &t->pus[b->pu_logical];
  if (pa->core == pb->core)
    return SHOAL_NEAR_CORE;
  if (pa->cache == pb->cache)
    return SHOAL_NEAR_CACHE;
  if (pa->numa == pb->numa)
    return SHOAL_NEAR_NUMA;
  if (pa->package == pb->package)
    return SHOAL_NEAR_PACKAGE;
  return SHOAL_NEAR_REMOTE;
}

static int key_cmp(const void *pa, const void *pb) {
  uint64_t a = *(const uint64_t *)pa, b = *(const uint64_t *)pb;
  return a < b ? -1 : a > b;
}

#define VICTIM_BUCKETS 16u

/* Sorts keys[0 … k) (near << 48 | distance << 32 | r, built with r
 * rising). Their high halves take few values (nearness levels × NUMA
 * distances): those are sorted alone and the keys gathered bucket by
 * bucket, r's order kept inside each, in O(k × buckets) through tmp; with
 * more than VICTIM_BUCKETS values, qsort. A plan for 1024 workers sorts
 * a million keys: this keeps it linear per worker. */
static void victims_sort(uint64_t *keys, uint64_t *tmp, unsigned k) {
  uint32_t hi[VICTIM_BUCKETS];
  unsigned nh = 0, m = 0;
  for (unsigned i = 0; i < k; i++) {
    uint32_t h = (uint32_t)(keys[i] >> 32);
    unsigned j = 0;
    while (j < nh && hi[j] != h)
      j++;
    if (j < nh)
      continue;
    if (nh == VICTIM_BUCKETS) {
      qsort(keys, k, sizeof *keys, key_cmp);
      return;
    }
    /* insertion: hi stays sorted */
    for (j = nh++; j > 0 && hi[j - 1] > h; j--)
      hi[j] = hi[j - 1];
    hi[j] = h;
  }
  for (unsigned b = 0; b < nh; b++)
    for (unsigned i = 0; i < k; i++)
      if ((uint32_t)(keys[i] >> 32) == hi[b])
        tmp[m++] = keys[i];
  memcpy(keys, tmp, (size_t)k * sizeof *keys);
}

/* PUs in placement order: the first PU of every core (cores in logical
 * order), then every core's second PU, and so on. */
static void placement_order(const shoal_topo *t, unsigned *order) {
  unsigned n = 0;
  for (unsigned rank = 0; n < t->npu; rank++) {
    for (unsigned c = 0; c < t->ncore; c++) {
      unsigned seen = 0;
      for (unsigned i = 0; i < t->npu; i++) {
        if (t->pus[i].core != c)
          continue;
        if (seen++ == rank) {
          order[n++] = i;
          break;
        }
      }
    }
  }
}

int shoal_plan_compute(shoal_plan **out, const shoal_topo *t, unsigned workers) {
  shoal_plan *p;
  unsigned *order = NULL, *node_list = NULL, nodes_with_pus = 0;
  uint64_t *keys = NULL;
  unsigned n;

  if (out == NULL)
    return SHOAL_EINVAL;
  *out = NULL;
  if (t == NULL || workers > SHOAL_WORKERS_MAX)
    return SHOAL_EINVAL;
  /* One per core, at most SHOAL_WORKERS_MAX (a larger machine's cores
   * past it get no worker). */
  n = workers != 0                     ? workers
      : t->ncore > SHOAL_WORKERS_MAX ? SHOAL_WORKERS_MAX
                                       : t->ncore;

  p = shoal__calloc(1, sizeof *p);
  if (p == NULL)
    return SHOAL_ENOMEM;
  p->n = n;
  p->workers = shoal__calloc(n, sizeof *p->workers);
  p->victims = shoal__calloc((size_t)n * (n - 1) + 1, sizeof *p->victims);
  p->victim_near = shoal__calloc((size_t)n * (n - 1) + 1, 1);
  order = shoal__calloc(t->npu, sizeof *order);
  keys = shoal__calloc(2 * (size_t)n, sizeof *keys); /* and the scratch */
  node_list = shoal__calloc(t->nnuma, sizeof *node_list);
  if (!p->workers || !p->victims || !p->victim_near || !order || !keys ||
      !node_list) {
    shoal__free(order);
    shoal__free(keys);
    shoal__free(node_list);
    shoal_plan_destroy(p);
    return SHOAL_ENOMEM;
  }

  placement_order(t, order);
  /* Unbound workers take the NUMA nodes that have PUs in turn: a node of
   * memory only (CXL, HBM) is not anybody's local memory. */
  for (unsigned k = 0; k < t->nnuma; k++) {
    unsigned i;
    for (i = 0; i < t->npu && t->pus[i].numa != k; i++)
      ;
    if (i < t->npu)
      node_list[nodes_with_pus++] = k;
  }
  for (unsigned w = 0; w < n; w++) {
    shoal_plan_worker *pw = &p->workers[w];
    unsigned numa;
    pw->worker = w;
    if (w < t->npu) {
      const shoal_topo_pu *pu = &t->pus[order[w]];
      pw->pu_logical = (int)pu->logical;
      pw->pu_os_index = (int)pu->os_index;
      numa = pu->numa;
    } else {
      pw->pu_logical = -1;
      pw->pu_os_index = -1;
      numa = node_list[(w - t->npu) % nodes_with_pus];
    }
    pw->numa_logical = numa;
    pw->numa_os_index = t->numas[numa].os_index;
  }

  /* Victim order: nearness level, then NUMA distance, then rotation from
   * the thief. The key packs the three so that one sort does it. */
  for (unsigned w = 0; w < n; w++) {
    shoal_plan_worker *pw = &p->workers[w];
    unsigned k = 0;
    for (unsigned r = 1; r < n; r++) {
      unsigned v = (w + r) % n;
      shoal_near near = nearness(t, pw, &p->workers[v]);
      uint64_t dist = shoal_topo_numa_distance(t, pw->numa_logical,
                                               p->workers[v].numa_logical);
      if (dist > 0xffff)
        dist = 0xffff;
      keys[k++] = (uint64_t)near << 48 | dist << 32 | r;
    }
    victims_sort(keys, keys + n, k);
    pw->nvictims = k;
    pw->victims = &p->victims[(size_t)w * (n - 1)];
    pw->victim_near = &p->victim_near[(size_t)w * (n - 1)];
    for (unsigned i = 0; i < k; i++) {
      p->victims[(size_t)w * (n - 1) + i] = (w + (unsigned)(keys[i] & 0xffffffffu)) % n;
      p->victim_near[(size_t)w * (n - 1) + i] = (unsigned char)(keys[i] >> 48);
    }
  }
  shoal__free(order);
  shoal__free(keys);
  shoal__free(node_list);
  *out = p;
  return SHOAL_OK;
}

void shoal_plan_destroy(shoal_plan *p) {
  if (p == NULL)
    return;
  shoal__free(p->workers);
  shoal__free(p->victims);
  shoal__free(p->victim_near);
  shoal__free(p);
}

unsigned shoal_plan_worker_count(const shoal_plan *p) { return p ? p->n : 0; }

const shoal_plan_worker *shoal_plan_worker_at(const shoal_plan *p, unsigned w) {
  return p != NULL && w < p->n ? &p->workers[w] : NULL;
}
