/* registry.c — the shards and their growth. */
#include "sessions/registry.h"

#include "runtime/alloc.h"
#include "runtime/os.h"

#define OUT_CHUNKS (SHOAL__REG_OUT_MAX / SHOAL__REG_OUT_CHUNK)

/* The id a value names: its pool element's key, or its out slot's. */
static inline uint64_t element_id(shoal__registry *r, uint32_t v) {
  _Atomic uint32_t *chunk;
  if (!(v & SHOAL__REG_OUT))
    return atomic_load_explicit(
        (_Atomic uint32_t *)shoal__pool_at(r->pool, v), memory_order_relaxed);
  v &= ~SHOAL__REG_OUT;
  /* acquire: pairs with out_set's release of a new chunk (zeroed). */
  chunk = atomic_load_explicit(&r->out[v / SHOAL__REG_OUT_CHUNK],
                               memory_order_acquire);
  return chunk == NULL ? 0
                       : atomic_load_explicit(
                             &chunk[v % SHOAL__REG_OUT_CHUNK],
                             memory_order_relaxed);
}

SHOAL__IDTABLE_DEFINE(reg, shoal__registry *, element_id)

/* The shard from the hash's low bits; the table's home from its high
 * bits (idtable.h), so the two stay independent. */
static shoal__reg_shard *shard_of(shoal__registry *r, uint32_t id) {
  uint64_t h = (uint64_t)id * UINT64_C(0x9E3779B97F4A7C15);
  return &r->shards[(h >> 20) & (SHOAL__REGISTRY_SHARDS - 1)];
}

/* A table's entries live in pages of their own (runtime/os.h): a table
 * grown while sessions are created never keeps an allocator segment
 * alive, and a retired one can give its pages back. */
static size_t table_bytes(const shoal__idtable *t) {
  return shoal__pages_round((t->mask + 1) * sizeof *t->e);
}

static shoal__idtable *table_new(uint64_t entries) {
  shoal__idtable *t = shoal__malloc(sizeof *t);
  uint64_t b = shoal__idtable_bytes(entries);
  void *mem = NULL;
  if (t == NULL || b == 0 ||
      (mem = shoal__pages_alloc(shoal__pages_round(b), 4096)) ==
          NULL) {
    shoal__free(t);
    return NULL;
  }
  shoal__idtable_init_in(t, entries, mem);
  return t;
}

static void table_free(void *p) {
  shoal__idtable *t = p;
  shoal__pages_free((void *)t->e, table_bytes(t));
  shoal__free(t);
}

int shoal__registry_init(shoal__registry *r, shoal__pool *pool,
                         uint64_t expected) {
  /* Room for twice the expected share of each shard, at least 64. */
  uint64_t per = 4 * expected / SHOAL__REGISTRY_SHARDS;
  r->pool = pool;
  r->out_chunks = 0;
  if ((r->out = shoal__calloc(OUT_CHUNKS, sizeof *r->out)) == NULL)
    return SHOAL_ENOMEM;
  for (unsigned i = 0; i < SHOAL__REGISTRY_SHARDS; i++) {
    shoal__reg_shard *s = &r->shards[i];
    shoal__idtable *t = table_new(per < 64 ? 64 : per);
    atomic_init(&s->table, t);
    s->count = 0;
    s->removes = 0;
    s->retired = NULL;
    s->nretired = s->ntrimmed = 0;
    pthread_mutex_init(&s->mu, NULL);
    if (t == NULL) {
      for (unsigned j = i + 1; j < SHOAL__REGISTRY_SHARDS; j++) {
        atomic_init(&r->shards[j].table, NULL);
        r->shards[j].retired = NULL;
        r->shards[j].nretired = r->shards[j].ntrimmed = 0;
        pthread_mutex_init(&r->shards[j].mu, NULL);
      }
      shoal__registry_destroy(r);
      return SHOAL_ENOMEM;
    }
  }
  return SHOAL_OK;
}

void shoal__registry_destroy(shoal__registry *r) {
  for (unsigned i = 0; i < SHOAL__REGISTRY_SHARDS; i++) {
    shoal__reg_shard *s = &r->shards[i];
    shoal__idtable *t = atomic_load_explicit(&s->table, memory_order_relaxed);
    if (t != NULL)
      table_free(t);
    for (size_t k = 0; k < s->nretired; k++)
      table_free(s->retired[k]);
    shoal__free(s->retired);
    pthread_mutex_destroy(&s->mu);
  }
  for (uint64_t k = 0; r->out != NULL && k < OUT_CHUNKS; k++)
    shoal__pages_free((void *)atomic_load_explicit(&r->out[k],
                                                   memory_order_relaxed),
                      SHOAL__REG_OUT_CHUNK * sizeof(uint32_t));
  shoal__free((void *)r->out);
  r->out = NULL;
}

int64_t shoal__registry_find(shoal__registry *r, uint32_t id) {
  /* acquire: pairs with the release that published the table. */
  shoal__idtable *t =
      atomic_load_explicit(&shard_of(r, id)->table, memory_order_acquire);
  return id == 0 ? -1 : reg_find(t, r, id);
}

/* Moves s's ids into a table twice as large. Under s->mu. */
static int grow(shoal__registry *r, shoal__reg_shard *s) {
  shoal__idtable *old = atomic_load_explicit(&s->table, memory_order_relaxed);
  shoal__idtable *t = table_new(2 * (old->mask + 1));
  void **ret;
  if (t == NULL)
    return SHOAL_ENOMEM;
  ret = shoal__realloc(s->retired, (s->nretired + 1) * sizeof *ret);
  if (ret == NULL) {
    table_free(t);
    return SHOAL_ENOMEM;
  }
  s->retired = ret;
  for (uint64_t i = 0; i <= old->mask; i++) {
    uint32_t e = atomic_load_explicit(&old->e[i], memory_order_relaxed);
    if (e > 1)
      (void)shoal__idtable_insert(t, element_id(r, e - 2), e - 2);
  }
  /* release: the entries before the table that holds them. Readers still
   * in the old one find what it held. */
  atomic_store_explicit(&s->table, t, memory_order_release);
  s->retired[s->nretired++] = old;
  return SHOAL_OK;
}

int shoal__registry_insert(shoal__registry *r, uint32_t id, uint32_t index) {
  shoal__reg_shard *s;
  shoal__idtable *t;
  int rc = SHOAL_OK;
  if (id == 0)
    return SHOAL_EINVAL;
  s = shard_of(r, id);
  pthread_mutex_lock(&s->mu);
  t = atomic_load_explicit(&s->table, memory_order_relaxed);
  if (reg_find(t, r, id) >= 0) {
    rc = SHOAL_EEXIST;
  } else if (2 * (s->count + 1) > t->mask + 1 && (rc = grow(r, s)) == SHOAL_OK) {
    t = atomic_load_explicit(&s->table, memory_order_relaxed);
  }
  if (rc == SHOAL_OK && (rc = shoal__idtable_insert(t, id, index)) ==
                            SHOAL_ELIMIT &&
      (rc = grow(r, s)) == SHOAL_OK) /* tombstones everywhere: rebuild */
    rc = shoal__idtable_insert(atomic_load_explicit(&s->table,
                                                    memory_order_relaxed),
                               id, index);
  if (rc == SHOAL_OK)
    s->count++;
  pthread_mutex_unlock(&s->mu);
  return rc;
}

int shoal__registry_remove(shoal__registry *r, uint32_t id) {
  shoal__reg_shard *s;
  shoal__idtable *t;
  int rc;
  if (id == 0)
    return SHOAL_ENOENT;
  s = shard_of(r, id);
  pthread_mutex_lock(&s->mu);
  t = atomic_load_explicit(&s->table, memory_order_relaxed);
  rc = reg_remove(t, r, id);
  if (rc == SHOAL_OK)
    s->count--;
  /* Every quarter of the table's size in removals, the tombstones no
   * probe needs go (idtable.h): O(1) a removal, and under churn (ids only
   * grow, each one created and released) probes stay short. */
  if (rc == SHOAL_OK && ++s->removes >= (t->mask + 1) / 4) {
    (void)reg_sweep(t, r);
    s->removes = 0;
  }
  pthread_mutex_unlock(&s->mu);
  return rc;
}

int shoal__registry_replace(shoal__registry *r, uint32_t id, uint32_t value) {
  shoal__reg_shard *s;
  int rc;
  if (id == 0)
    return SHOAL_ENOENT;
  s = shard_of(r, id);
  pthread_mutex_lock(&s->mu);
  rc = reg_replace(atomic_load_explicit(&s->table, memory_order_relaxed), r,
                   id, value);
  pthread_mutex_unlock(&s->mu);
  return rc;
}

int shoal__registry_out_set(shoal__registry *r, uint32_t slot, uint32_t id) {
  _Atomic uint32_t *chunk;
  if (slot >= SHOAL__REG_OUT_MAX)
    return SHOAL_ELIMIT;
  chunk = atomic_load_explicit(&r->out[slot / SHOAL__REG_OUT_CHUNK],
                               memory_order_relaxed);
  if (chunk == NULL) {
    /* Pages of its own: a segment of the allocator is never kept for it. */
    if ((chunk = shoal__pages_alloc(SHOAL__REG_OUT_CHUNK * sizeof *chunk,
                                    4096)) == NULL)
      return SHOAL_ENOMEM;
    /* release: the zeroed chunk before a probe can load its pointer. */
    atomic_store_explicit(&r->out[slot / SHOAL__REG_OUT_CHUNK], chunk,
                          memory_order_release);
    r->out_chunks++;
  }
  /* relaxed: published by the entry's release (insert or replace). */
  atomic_store_explicit(&chunk[slot % SHOAL__REG_OUT_CHUNK], id,
                        memory_order_relaxed);
  return SHOAL_OK;
}

size_t shoal__registry_trim(shoal__registry *r) {
  size_t n = 0;
  for (unsigned i = 0; i < SHOAL__REGISTRY_SHARDS; i++) {
    shoal__reg_shard *s = &r->shards[i];
    pthread_mutex_lock(&s->mu);
    for (; s->ntrimmed < s->nretired; s->ntrimmed++) {
      shoal__idtable *t = s->retired[s->ntrimmed];
      n += shoal__pages_discard((void *)t->e, table_bytes(t));
    }
    pthread_mutex_unlock(&s->mu);
  }
  return n;
}

uint64_t shoal__registry_count(shoal__registry *r) {
  uint64_t n = 0;
  for (unsigned i = 0; i < SHOAL__REGISTRY_SHARDS; i++) {
    pthread_mutex_lock(&r->shards[i].mu);
    n += r->shards[i].count;
    pthread_mutex_unlock(&r->shards[i].mu);
  }
  return n;
}

uint64_t shoal__registry_bytes(shoal__registry *r) {
  uint64_t b = sizeof *r;
  for (unsigned i = 0; i < SHOAL__REGISTRY_SHARDS; i++) {
    pthread_mutex_lock(&r->shards[i].mu);
    /* The live table only: retired ones go when the registry does. */
    b += sizeof(shoal__idtable) +
         (atomic_load_explicit(&r->shards[i].table, memory_order_relaxed)
              ->mask + 1) * sizeof(uint32_t);
    pthread_mutex_unlock(&r->shards[i].mu);
  }
  return b + OUT_CHUNKS * sizeof *r->out +
         r->out_chunks * SHOAL__REG_OUT_CHUNK * sizeof(uint32_t);
}

uint64_t shoal__registry_tombstones(shoal__registry *r, uint64_t *entries) {
  uint64_t n = 0, all = 0;
  for (unsigned i = 0; i < SHOAL__REGISTRY_SHARDS; i++) {
    shoal__reg_shard *s = &r->shards[i];
    shoal__idtable *t;
    pthread_mutex_lock(&s->mu);
    t = atomic_load_explicit(&s->table, memory_order_relaxed);
    for (uint64_t k = 0; k <= t->mask; k++)
      n += atomic_load_explicit(&t->e[k], memory_order_relaxed) == 1;
    all += t->mask + 1;
    pthread_mutex_unlock(&s->mu);
  }
  if (entries != NULL)
    *entries = all;
  return n;
}
