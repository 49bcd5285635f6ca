/* plan.c — the worker plan: which PU each worker is bound to, which NUMA
 * node it allocates from, and its steal order. A pure function of the
 * topology snapshot, so synthetic topologies test it on any machine. */
#include <stdlib.h>
#include <string.h>

#include "runtime/topo/topo.h"

struct shoal_plan {
  unsigned n;
  unsigned capped;           /* allowed cores left without a worker */
  unsigned collisions;
  shoal_plan_worker *workers;
  unsigned *victims;         /* n * (n - 1) */
  unsigned char *victim_near, *victim_cache, *victim_level;
};

static const char *const near_names[SHOAL_NEAR_LEVELS] = {
  "core", "cache", "numa", "die", "package", "group", "remote", "unbound",
};

const char *shoal_near_name(shoal_near near) {
  return (unsigned)near < SHOAL_NEAR_LEVELS ? near_names[near] : "unknown";
}

/* ---- nearness ----------------------------------------------------------- */

/* The smallest domain holding both PUs: the first of a's chain that b's
 * holds too. Both chains rise by weight, so one walk of each. */
static const shoal__domain *common_domain(const shoal_topo *t, unsigned a,
                                          unsigned b) {
  const unsigned *ca = &t->chain[(size_t)a * SHOAL__CHAIN_MAX];
  const unsigned *cb = &t->chain[(size_t)b * SHOAL__CHAIN_MAX];
  unsigned na = t->chain_len[a], nb = t->chain_len[b], j = 0;
  for (unsigned i = 0; i < na; i++) {
    unsigned w = t->domains[ca[i]].weight;
    while (j < nb && t->domains[cb[j]].weight < w)
      j++;
    for (unsigned k = j; k < nb && t->domains[cb[k]].weight == w; k++)
      if (cb[k] == ca[i])
        return &t->domains[ca[i]];
  }
  return NULL; /* no common domain: only the machine (a damaged tree) */
}

/* A victim's sort key for its thief: nearest first. Bits 63…62: the tier
 * (0: one NUMA node, or no latency matrix: the tree alone; 1: across
 * nodes ordered by latency; 2: unbound); 61…42 and 41…22: what orders
 * within the tier (weight of the common domain; latency then weight);
 * 21…0: the rotation, filled in by the caller. *near and *cache: its
 * label. */
static uint64_t victim_key(const shoal_topo *t, const shoal_plan_worker *a,
                           const shoal_plan_worker *b, unsigned char *near,
                           unsigned char *cache) {
  uint64_t lat = shoal_topo_numa_distance(t, a->numa_logical, b->numa_logical);
  const shoal__domain *d;
  if (lat > 0xfffff)
    lat = 0xfffff;
  *cache = 0;
  if (a->pu_logical < 0 || b->pu_logical < 0) {
    *near = SHOAL_NEAR_UNBOUND;
    return (uint64_t)2 << 62 | lat << 42;
  }
  d = common_domain(t, (unsigned)a->pu_logical, (unsigned)b->pu_logical);
  if (d == NULL) {
    *near = SHOAL_NEAR_REMOTE;
    return (uint64_t)1 << 62 | lat << 42 | (uint64_t)0xfffff << 22;
  }
  *near = d->near;
  *cache = d->cache_level;
  if (t->distance == NULL || a->numa_logical == b->numa_logical)
    return (uint64_t)(d->weight > 0xfffff ? 0xfffff : d->weight) << 42;
  return (uint64_t)1 << 62 | lat << 42 |
         (uint64_t)(d->weight > 0xfffff ? 0xfffff : d->weight) << 22;
}

#define ROT_MASK ((UINT64_C(1) << 22) - 1)

static int key_cmp(const void *pa, const void *pb) {
  uint64_t a = *(const uint64_t *)pa, b = *(const uint64_t *)pb;
  return a < b ? -1 : a > b;
}

#define VICTIM_BUCKETS 16u

/* Sorts keys[0 … k) (built with the rotation rising). Their high parts
 * (all but the rotation) take few values: those are sorted alone and the
 * keys gathered bucket by bucket, the rotation's order kept inside each,
 * in O(k × buckets) through tmp; with more than VICTIM_BUCKETS values,
 * qsort. A plan for 1024 workers sorts a million keys: this keeps it
 * linear per worker. */
static void victims_sort(uint64_t *keys, uint64_t *tmp, unsigned k) {
  uint64_t hi[VICTIM_BUCKETS];
  unsigned nh = 0, m = 0;
  for (unsigned i = 0; i < k; i++) {
    uint64_t h = keys[i] & ~ROT_MASK;
    unsigned j = 0;
    while (j < nh && hi[j] != h)
      j++;
    if (j < nh)
      continue;
    if (nh == VICTIM_BUCKETS) {
      qsort(keys, k, sizeof *keys, key_cmp);
      return;
    }
    for (j = nh++; j > 0 && hi[j - 1] > h; j--) /* hi stays sorted */
      hi[j] = hi[j - 1];
    hi[j] = h;
  }
  for (unsigned b = 0; b < nh; b++)
    for (unsigned i = 0; i < k; i++)
      if ((keys[i] & ~ROT_MASK) == hi[b])
        tmp[m++] = keys[i];
  memcpy(keys, tmp, (size_t)k * sizeof *keys);
}

/* ---- placement ---------------------------------------------------------- */

/* The allowed PUs in placement order: the first allowed PU of every core
 * (cores in logical order), then every core's second, and so on; how
 * many. *cores: the cores with an allowed PU. */
static unsigned placement_order(const shoal_topo *t, unsigned *order,
                                unsigned *cores) {
  unsigned n = 0, total = 0, *seen = shoal__calloc(t->ncore + 1, sizeof *seen);
  unsigned char *taken = shoal__calloc(t->npu + 1, 1);
  *cores = 0;
  if (seen == NULL || taken == NULL) {
    shoal__free(seen);
    shoal__free(taken);
    return 0;
  }
  for (unsigned i = 0; i < t->npu; i++)
    if (t->pus[i].allowed && seen[t->pus[i].core]++ == 0)
      (*cores)++;
  for (unsigned i = 0; i < t->npu; i++)
    total += t->pus[i].allowed;
  memset(seen, 0, (t->ncore + 1) * sizeof *seen);
  for (unsigned rank = 0; n < total; rank++) {
    /* each core's next allowed PU, cores in logical order */
    memset(seen, 0, (t->ncore + 1) * sizeof *seen);
    for (unsigned i = 0; i < t->npu; i++) {
      const shoal_topo_pu *pu = &t->pus[i];
      if (!pu->allowed || taken[i] || seen[pu->core])
        continue;
      seen[pu->core] = 1;
      taken[i] = 1;
      order[n++] = i;
    }
    (void)rank;
  }
  shoal__free(seen);
  shoal__free(taken);
  return n;
}

/* Binds each worker (or leaves it unbound with a node in turn). */
static int place(shoal_plan *p, const shoal_topo *t, const unsigned *order,
                 unsigned nallowed) {
  unsigned *node_list = shoal__calloc(t->nnuma, sizeof *node_list);
  unsigned nodes_with_pus = 0;
  if (node_list == NULL)
    return SHOAL_ENOMEM;
  /* Unbound workers take the NUMA nodes that have allowed PUs in turn: a
   * node of memory only (CXL, HBM) is not anybody's local memory. */
  for (unsigned k = 0; k < t->nnuma; k++) {
    unsigned i;
    for (i = 0; i < t->npu && !(t->pus[i].numa == k && t->pus[i].allowed);
         i++)
      ;
    if (i < t->npu)
      node_list[nodes_with_pus++] = k;
  }
  if (nodes_with_pus == 0)
    node_list[nodes_with_pus++] = 0;
  for (unsigned w = 0; w < p->n; w++) {
    shoal_plan_worker *pw = &p->workers[w];
    unsigned numa;
    pw->worker = w;
    if (w < nallowed) {
      const shoal_topo_pu *pu = &t->pus[order[w]];
      pw->pu_logical = (int)pu->logical;
      pw->pu_os_index = (int)pu->os_index;
      numa = pu->numa;
    } else {
      pw->pu_logical = -1;
      pw->pu_os_index = -1;
      numa = node_list[(w - nallowed) % nodes_with_pus];
    }
    pw->numa_logical = numa;
    pw->numa_os_index = t->numas[numa].os_index;
  }
  shoal__free(node_list);
  return SHOAL_OK;
}

/* ---- victims ------------------------------------------------------------ */

/* Worker w's victims: sorted by key, each level's run rotated so that the
 * thieves of one domain start apart, then labelled. The domain is S, w
 * and the victims nearer than the level: every member of S has the same
 * S and the same victims at this level, so each orders them alike (from
 * S's lowest worker on, cyclically) and starts at its own rank in S. */
static void victims_of(shoal_plan *p, const shoal_topo *t, unsigned w,
                       uint64_t *keys, unsigned *tmp) {
  shoal_plan_worker *pw = &p->workers[w];
  unsigned n = p->n, k = 0, begin = 0, level = 0, low = w, rank = 0;
  size_t base = (size_t)w * (n - 1);
  unsigned char near, cache;
  for (unsigned r = 1; r < n; r++) {
    unsigned v = (w + r) % n;
    keys[k++] = victim_key(t, pw, &p->workers[v], &near, &cache) | r;
  }
  victims_sort(keys, keys + n, k);
  pw->nvictims = k;
  pw->victims = &p->victims[base];
  pw->victim_near = &p->victim_near[base];
  pw->victim_cache = &p->victim_cache[base];
  pw->victim_level = &p->victim_level[base];
  while (begin < k) {
    unsigned end = begin, len, first = 0, off = (w + n - low) % n;
    while (end < k && (keys[end] & ~ROT_MASK) == (keys[begin] & ~ROT_MASK))
      end++;
    len = end - begin;
    /* the run is in order from w: its start from `low` is the victim
     * nearest after low, cyclically */
    for (unsigned i = 1; i < len; i++)
      if (((unsigned)(keys[begin + i] & ROT_MASK) + off) % n <
          ((unsigned)(keys[begin + first] & ROT_MASK) + off) % n)
        first = i;
    for (unsigned i = 0; i < len; i++)
      tmp[i] = (w + (unsigned)(keys[begin + (first + rank + i) % len] &
                               ROT_MASK)) % n;
    for (unsigned i = 0; i < len; i++) {
      unsigned v = tmp[i];
      p->victims[base + begin + i] = v;
      (void)victim_key(t, pw, &p->workers[v], &near, &cache);
      p->victim_near[base + begin + i] = near;
      p->victim_cache[base + begin + i] = cache;
      p->victim_level[base + begin + i] = (unsigned char)level;
      /* the next level's domain takes this level in */
      if (v < low)
        low = v;
      rank += v < w;
    }
    if (level + 1 < SHOAL_PLAN_LEVELS_MAX)
      level++;
    begin = end;
  }
}

/* Over every worker's levels: thieves whose first victim of a level (by
 * label) another thief has too. */
static unsigned collisions(const shoal_plan *p) {
  unsigned n = p->n, c = 0;
  unsigned *count = shoal__calloc((size_t)n * SHOAL_NEAR_LEVELS * 8 + 1,
                                  sizeof *count);
  if (count == NULL)
    return 0;
  for (unsigned w = 0; w < n; w++) {
    const shoal_plan_worker *pw = &p->workers[w];
    for (unsigned i = 0; i < pw->nvictims; i++) {
      size_t slot;
      if (i > 0 && pw->victim_level[i] == pw->victim_level[i - 1])
        continue;
      slot = ((size_t)pw->victims[i] * SHOAL_NEAR_LEVELS +
              pw->victim_near[i]) * 8 + (pw->victim_cache[i] & 7u);
      if (count[slot]++ > 0)
        c++;
    }
  }
  shoal__free(count);
  return c;
}

int shoal_plan_compute(shoal_plan **out, const shoal_topo *t, unsigned workers) {
  shoal_plan *p;
  unsigned *order = NULL, *tmp = NULL, nallowed, cores;
  uint64_t *keys = NULL;
  size_t nv;
  int rc = SHOAL_ENOMEM;

  if (out == NULL)
    return SHOAL_EINVAL;
  *out = NULL;
  if (t == NULL || workers > SHOAL_WORKERS_MAX)
    return SHOAL_EINVAL;
  if ((p = shoal__calloc(1, sizeof *p)) == NULL)
    return SHOAL_ENOMEM;
  order = shoal__calloc(t->npu + 1, sizeof *order);
  if (order == NULL)
    goto out;
  nallowed = placement_order(t, order, &cores);
  if (nallowed == 0)
    goto out;
  /* One per allowed core, at most SHOAL_WORKERS_MAX (a larger machine's
   * cores past it get no worker: counted in capped). */
  p->n = workers != 0 ? workers
         : cores > SHOAL_WORKERS_MAX ? SHOAL_WORKERS_MAX
                                     : cores;
  p->capped = workers == 0 && cores > SHOAL_WORKERS_MAX
                  ? cores - SHOAL_WORKERS_MAX
                  : 0;
  nv = (size_t)p->n * (p->n - 1) + 1;
  p->workers = shoal__calloc(p->n, sizeof *p->workers);
  p->victims = shoal__calloc(nv, sizeof *p->victims);
  p->victim_near = shoal__calloc(nv, 1);
  p->victim_cache = shoal__calloc(nv, 1);
  p->victim_level = shoal__calloc(nv, 1);
  keys = shoal__calloc(2 * (size_t)p->n, sizeof *keys); /* and scratch */
  tmp = shoal__calloc(p->n, sizeof *tmp);
  if (!p->workers || !p->victims || !p->victim_near || !p->victim_cache ||
      !p->victim_level || !keys || !tmp)
    goto out;
  if ((rc = place(p, t, order, nallowed)) != SHOAL_OK)
    goto out;
  for (unsigned w = 0; w < p->n; w++)
    victims_of(p, t, w, keys, tmp);
  p->collisions = collisions(p);
  *out = p;
  p = NULL;
  rc = SHOAL_OK;
out:
  shoal__free(order);
  shoal__free(keys);
  shoal__free(tmp);
  shoal_plan_destroy(p);
  return rc;
}

void shoal_plan_destroy(shoal_plan *p) {
  if (p == NULL)
    return;
  shoal__free(p->workers);
  shoal__free(p->victims);
  shoal__free(p->victim_near);
  shoal__free(p->victim_cache);
  shoal__free(p->victim_level);
  shoal__free(p);
}

unsigned shoal_plan_worker_count(const shoal_plan *p) { return p ? p->n : 0; }

unsigned shoal_plan_capped(const shoal_plan *p) { return p ? p->capped : 0; }

unsigned shoal_plan_collisions(const shoal_plan *p) {
  return p ? p->collisions : 0;
}

const shoal_plan_worker *shoal_plan_worker_at(const shoal_plan *p, unsigned w) {
  return p != NULL && w < p->n ? &p->workers[w] : NULL;
}
