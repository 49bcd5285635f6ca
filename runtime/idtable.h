/* idtable.h — an open-addressing table from ids to 32-bit slots, typed by
 * a macro, read without any lock: the actors' router and the sessions'
 * registry shards. Linear probing from a Fibonacci hash (Knuth, TAOCP 3,
 * 6.4), tombstones for deletions.
 *
 * The table stores slots only (entries 0 empty, 1 deleted, else slot + 2);
 * KEY_OF(ctx, slot) reads the id the owner keeps in its record for that
 * slot. Records are never freed while the table is in use, so a reader
 * needs no reclamation; it may find a slot whose record was reused for
 * another id meanwhile, and the owner checks what it finds (the id again,
 * a generation). Keys never move, so a probe never misses a key that stays
 * in; a tombstone becomes empty only when no key's probe passes it: at
 * once when the entry after it is empty, or in a sweep (NAME_sweep) that
 * the owner runs when removals have left many, so that a table under
 * churn (ids that only grow, each inserted and removed) keeps its probes
 * short instead of filling with tombstones.
 *
 * Synchronization table:
 *
 *   call                        caller                concurrent with
 *   NAME_find                   any thread            anything
 *   shoal__idtable_insert,      the one writer (the   finds
 *   NAME_remove, NAME_sweep     owner's lock)
 *   shoal__idtable_init, _destroy  one thread, no other touching it
 *
 * The owner writes a record's id before inserting its slot (insert's
 * release pairs with find's acquire). */
#ifndef SHOAL_IDTABLE_H
#define SHOAL_IDTABLE_H

#include <stdatomic.h>
#include <stdint.h>

#include "runtime/common.h"

typedef struct shoal__idtable {
  _Atomic uint32_t *e;
  uint64_t mask;
  unsigned shift;
} shoal__idtable;

/* At least `entries` entries (a power of two); keep the load well under
 * one. SHOAL_EINVAL for 0 or more than 2^32, SHOAL_ENOMEM. */
/* The entries' bytes of a table for `entries` (0 past the limit). */
static inline uint64_t shoal__idtable_bytes(uint64_t entries) {
  if (entries == 0 || entries > (UINT64_C(1) << 32))
    return 0;
  return shoal__pow2_at_least(entries) * sizeof(_Atomic uint32_t);
}

/* A table for `entries` over mem: shoal__idtable_bytes(entries) zeroed
 * bytes that the caller owns (and frees; not shoal__idtable_destroy). */
static inline void shoal__idtable_init_in(shoal__idtable *t, uint64_t entries,
                                          void *mem) {
  uint64_t n = shoal__pow2_at_least(entries);
  t->e = mem;
  t->mask = n - 1;
  t->shift = 64 - (unsigned)__builtin_ctzll(n);
}

static inline int shoal__idtable_init(shoal__idtable *t, uint64_t entries) {
  uint64_t b = shoal__idtable_bytes(entries);
  void *mem;
  if (b == 0)
    return SHOAL_EINVAL;
  if ((mem = shoal__calloc(1, b)) == NULL)
    return SHOAL_ENOMEM;
  shoal__idtable_init_in(t, entries, mem);
  return SHOAL_OK;
}

static inline void shoal__idtable_destroy(shoal__idtable *t) {
  shoal__free(t->e);
  t->e = NULL;
}

static inline uint64_t shoal__idtable_home(const shoal__idtable *t,
                                           uint64_t id) {
  return t->shift == 64 ? 0 : (id * UINT64_C(0x9E3779B97F4A7C15)) >> t->shift;
}

/* id must not be in the table. SHOAL_ELIMIT when every entry is taken.
 * The writer. */
static inline int shoal__idtable_insert(shoal__idtable *t, uint64_t id,
                                        uint32_t slot) {
  uint64_t i = shoal__idtable_home(t, id);
  for (uint64_t n = 0; n <= t->mask; n++, i = (i + 1) & t->mask) {
    if (atomic_load_explicit(&t->e[i], memory_order_relaxed) <= 1) {
      /* release: the record (its id) before the entry that finds it. */
      atomic_store_explicit(&t->e[i], slot + 2, memory_order_release);
      return SHOAL_OK;
    }
  }
  return SHOAL_ELIMIT;
}

/* SHOAL__IDTABLE_DEFINE(name, ctx_t, KEY_OF) defines name_find and
 * name_remove for tables whose records KEY_OF(ctx, slot) reads. */
#define SHOAL__IDTABLE_DEFINE(name, ctx_t, KEY_OF)                             \
  /* The slot of id, or -1. Any thread. */                                    \
  static inline int64_t name##_find(const shoal__idtable *t, ctx_t ctx,       \
                                    uint64_t id) {                             \
    uint64_t i = shoal__idtable_home(t, id);                                   \
    for (uint64_t n = 0; n <= t->mask; n++, i = (i + 1) & t->mask) {           \
      /* acquire: pairs with insert's release, so that the record's id is  \
       * the one written before the entry. */                                  \
      uint32_t e = atomic_load_explicit(&t->e[i], memory_order_acquire);       \
      if (e == 0)                                                              \
        return -1;                                                             \
      if (e != 1 && KEY_OF(ctx, e - 2) == id)                                  \
        return (int64_t)(e - 2);                                               \
    }                                                                          \
    return -1;                                                                 \
  }                                                                            \
                                                                               \
  /* id's entry names slot from now on (a reader sees the old slot or the \
   * new one, never a miss); SHOAL_ENOENT when id is not in. The writer.    \
   * KEY_OF must give id for both slots until this returns. */             \
  static inline int name##_replace(shoal__idtable *t, ctx_t ctx,              \
                                   uint64_t id, uint32_t slot) {              \
    uint64_t i = shoal__idtable_home(t, id);                                   \
    for (uint64_t n = 0; n <= t->mask; n++, i = (i + 1) & t->mask) {           \
      uint32_t e = atomic_load_explicit(&t->e[i], memory_order_relaxed);       \
      if (e == 0)                                                              \
        return SHOAL_ENOENT;                                                   \
      if (e != 1 && KEY_OF(ctx, e - 2) == id) {                                \
        /* release: the new slot's record before the entry names it. */    \
        atomic_store_explicit(&t->e[i], slot + 2, memory_order_release);      \
        return SHOAL_OK;                                                       \
      }                                                                        \
    }                                                                          \
    return SHOAL_ENOENT;                                                       \
  }                                                                            \
                                                                               \
  /* SHOAL_ENOENT when id is not in. The writer. */                           \
  static inline int name##_remove(shoal__idtable *t, ctx_t ctx,               \
                                  uint64_t id) {                               \
    uint64_t i = shoal__idtable_home(t, id);                                   \
    for (uint64_t n = 0; n <= t->mask; n++, i = (i + 1) & t->mask) {           \
      uint32_t e = atomic_load_explicit(&t->e[i], memory_order_relaxed);       \
      if (e == 0)                                                              \
        return SHOAL_ENOENT;                                                   \
      if (e == 1 || KEY_OF(ctx, e - 2) != id)                                  \
        continue;                                                              \
      if (atomic_load_explicit(&t->e[(i + 1) & t->mask],                       \
                               memory_order_relaxed) != 0) {                   \
        atomic_store_explicit(&t->e[i], 1, memory_order_relaxed);              \
        return SHOAL_OK;                                                       \
      }                                                                        \
      /* The chain ends here: this entry and the tombstones before it can  \
       * become empty. */                                                      \
      do {                                                                     \
        atomic_store_explicit(&t->e[i], 0, memory_order_relaxed);              \
        i = (i - 1) & t->mask;                                                 \
      } while (atomic_load_explicit(&t->e[i], memory_order_relaxed) == 1);     \
      return SHOAL_OK;                                                         \
    }                                                                          \
    return SHOAL_ENOENT;                                                       \
  }                                                                            \
                                                                               \
  /* Empties every tombstone that no key's probe passes, without moving a  \
   * key: a find never misses a key that stays in. A key's probe covers   \
   * its home to its place; walking back from an empty entry, `need`       \
   * counts the entries ahead that a key already passed still needs.       \
   * Returns the tombstones left (UINT64_MAX: no empty entry, nothing      \
   * done). O(entries). The writer. */                                     \
  static inline uint64_t name##_sweep(shoal__idtable *t, ctx_t ctx) {         \
    uint64_t n = t->mask + 1, start, need = 0, left = 0;                       \
    for (start = 0; start < n; start++)                                        \
      if (atomic_load_explicit(&t->e[start], memory_order_relaxed) == 0)       \
        break;                                                                 \
    if (start == n)                                                            \
      return UINT64_MAX;                                                       \
    for (uint64_t k = 1; k < n; k++) {                                         \
      uint64_t i = (start - k) & t->mask;                                      \
      uint32_t e = atomic_load_explicit(&t->e[i], memory_order_relaxed);       \
      if (e == 0) {                                                            \
        need = 0; /* no probe passes an empty entry */                        \
      } else if (e == 1) {                                                     \
        if (need == 0)                                                         \
          atomic_store_explicit(&t->e[i], 0, memory_order_relaxed);            \
        else                                                                   \
          left++;                                                              \
        need -= need > 0;                                                      \
      } else {                                                                 \
        uint64_t d =                                                           \
            (i - shoal__idtable_home(t, KEY_OF(ctx, e - 2))) & t->mask;        \
        need -= need > 0;                                                      \
        need = d > need ? d : need;                                            \
      }                                                                        \
    }                                                                          \
    return left;                                                               \
  }

#endif /* SHOAL_IDTABLE_H */
