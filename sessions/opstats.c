/* opstats.c — what each opcode costs and what each category may: packets
 * handled and failed per opcode with handler times sampled one in
 * 16 (shoal__ops_sampled) into a small log-linear histogram per thread (no atomic on
 * the path: each worker and the drain keep their own, merged under mu),
 * and the rate limits per session per category (GCRA, packets.h) fixed
 * from SessionMgr.RateLimit.* at creation. API: shoal.h, "Packets";
 * design: docs/packets.md. */
#include <stdlib.h>
#include <string.h>

#include "runtime/common.h"
#include "sessions/mgr.h"

static unsigned threads(shoal_mgr *mgr) {
  return shoal_runtime_workers_max(mgr->rt) + 1; /* the workers, the drain */
}

/* Room for cap slots in every thread's figures and the slot table. */
static int slots_grow(shoal_mgr *mgr, uint32_t cap) {
  shoal__packets *pk = &mgr->pk;
  uint16_t *ops = shoal__realloc(pk->slot_op, cap * sizeof *ops);
  if (ops == NULL)
    return SHOAL_ENOMEM;
  pk->slot_op = ops;
  for (unsigned t = 0; t < threads(mgr); t++) {
    shoal__opfig *f =
        shoal__realloc(pk->figs[t].fig, (size_t)cap * sizeof *f);
    if (f == NULL)
      return SHOAL_ENOMEM; /* the larger ones stay: slot_cap is the least */
    memset(f + pk->slot_cap, 0, (size_t)(cap - pk->slot_cap) * sizeof *f);
    pk->figs[t].fig = f;
  }
  pk->slot_cap = cap;
  return SHOAL_OK;
}

int shoal__ops_init(shoal_mgr *mgr) {
  shoal__packets *pk = &mgr->pk;
  unsigned r = 0;
  memset(pk->rate_slot, SHOAL__RATE_NONE, sizeof pk->rate_slot);
  for (unsigned c = 0; c < SHOAL_CAT_COUNT; c++) {
    uint64_t rate = mgr->cfg.rate_limit[c], depth;
    if (rate == 0)
      continue;
    /* the config check allows SHOAL__RATE_SLOTS at most */
    depth = rate * mgr->cfg.rate_burst_ms / 1000;
    pk->rate_slot[c] = (uint8_t)r;
    pk->rate_t_us[r] = 1000000 / rate;
    pk->rate_tau_us[r] = pk->rate_t_us[r] * (depth > 1 ? depth - 1 : 0);
    r++;
  }
  if ((pk->figs = shoal__calloc(threads(mgr), sizeof *pk->figs)) == NULL)
    return SHOAL_ENOMEM;
  if (slots_grow(mgr, 64) != SHOAL_OK)
    return SHOAL_ENOMEM; /* shoal__ops_destroy frees what was made */
  pk->slot_op[0] = 0;
  pk->nslots = 1;
  return SHOAL_OK;
}

void shoal__ops_destroy(shoal_mgr *mgr) {
  shoal__packets *pk = &mgr->pk;
  for (unsigned t = 0; pk->figs != NULL && t < threads(mgr); t++)
    shoal__free(pk->figs[t].fig);
  shoal__free(pk->figs);
  shoal__free(pk->slot_op);
  pk->figs = NULL;
  pk->slot_op = NULL;
  pk->nslots = pk->slot_cap = 0;
}

int shoal__ops_register(shoal_mgr *mgr, uint16_t opcode) {
  shoal__packets *pk = &mgr->pk;
  if (pk->ops[opcode].slot != 0)
    return SHOAL_OK;
  if (pk->nslots == pk->slot_cap && slots_grow(mgr, pk->slot_cap * 2) != 0)
    return SHOAL_ENOMEM;
  pk->slot_op[pk->nslots] = opcode;
  pk->ops[opcode].slot = pk->nslots++;
  return SHOAL_OK;
}

static unsigned oph_index(uint64_t v) {
  unsigned e;
  if (v < 8)
    return (unsigned)v;
  e = 63u - (unsigned)__builtin_clzll(v);
  if (e > 39) /* past 2^40 ns (18 minutes) */
    return SHOAL__OPH_BUCKETS - 1;
  return 8 + (e - 3) * 4 + (unsigned)((v >> (e - 2)) & 3);
}

/* The middle of bucket i's values. */
static uint64_t oph_value(unsigned i) {
  unsigned e, sub;
  if (i < 8)
    return i;
  e = (i - 8) / 4 + 3;
  sub = (i - 8) % 4;
  return ((uint64_t)(4 + sub) << (e - 2)) + (UINT64_C(1) << (e - 2)) / 2;
}

_Static_assert(8 + (39 - 3) * 4 + 3 < SHOAL__OPH_BUCKETS, "2^40 ns fit");

void shoal__ops_time(shoal__opfigs *f, uint32_t slot, uint64_t ns) {
  shoal__opfig *g = &f->fig[slot];
  g->timed++;
  g->t[oph_index(ns)]++;
}

static uint64_t quantile(const shoal__opfig *g, double q) {
  uint64_t want = (uint64_t)(q * (double)g->timed + 0.999999), seen = 0;
  if (g->timed == 0)
    return 0;
  for (unsigned i = 0; i < SHOAL__OPH_BUCKETS; i++)
    if ((seen += g->t[i]) >= want)
      return oph_value(i);
  return oph_value(SHOAL__OPH_BUCKETS - 1);
}

static int busiest_first(const void *a, const void *b) {
  const shoal_opcode_stats *x = a, *y = b;
  if (x->handled != y->handled)
    return x->handled > y->handled ? -1 : 1;
  return x->opcode < y->opcode ? -1 : x->opcode > y->opcode;
}

long shoal_mgr_opcode_stats(shoal_mgr *mgr, shoal_opcode_stats *out,
                            size_t cap, int reset) {
  shoal__packets *pk;
  shoal_opcode_stats *all;
  shoal__opfig g;
  uint32_t n;
  if (mgr == NULL || (out == NULL && cap > 0))
    return SHOAL_EINVAL;
  if (shoal__mgr_in_callback(mgr))
    return SHOAL_ESTATE;
  pk = &mgr->pk;
  pthread_mutex_lock(&mgr->mu);
  shoal__mgr_wait_tick(mgr);
  n = pk->nslots;
  if ((all = shoal__malloc(n * sizeof *all)) == NULL) {
    pthread_mutex_unlock(&mgr->mu);
    return SHOAL_ENOMEM;
  }
  for (uint32_t k = 0; k < n; k++) {
    uint16_t op = pk->slot_op[k];
    uint8_t c = k != 0 ? pk->op_class[op] : SHOAL__OP_MAIN | SHOAL_CAT_OTHER;
    memset(&g, 0, sizeof g);
    for (unsigned t = 0; t < threads(mgr); t++) {
      shoal__opfig *f = &pk->figs[t].fig[k];
      g.handled += f->handled;
      g.failed += f->failed;
      g.timed += f->timed;
      for (unsigned i = 0; i < SHOAL__OPH_BUCKETS; i++)
        g.t[i] += f->t[i];
      if (reset)
        memset(f, 0, sizeof *f);
    }
    all[k].opcode = op;
    all[k].registered = k != 0;
    all[k].cls = (shoal_packet_class)shoal__op_class_index(c);
    all[k].category = (shoal_packet_category)(c & SHOAL__OP_CATEGORY);
    all[k].handled = g.handled;
    all[k].failed = g.failed;
    all[k].timed = g.timed;
    all[k].time_p50_ns = quantile(&g, 0.50);
    all[k].time_p99_ns = quantile(&g, 0.99);
  }
  pthread_mutex_unlock(&mgr->mu);
  qsort(all, n, sizeof *all, busiest_first);
  memcpy(out, all, (n < cap ? n : cap) * sizeof *all);
  shoal__free(all);
  return (long)n;
}
