/* pool.h — fixed-size elements (sessions) in cache-line-aligned slabs,
 * allocated up front and grown in batches up to a limit, with a lock-free
 * free list per NUMA node. Internal to the library.
 *
 * Slabs hold `per_slab` elements each, `stride` bytes apart (the element
 * size rounded up to a cache line). An element is named by its index:
 * slab * per_slab + offset; indices never change while the pool lives, so
 * other structures (the registry, the active array) store 32-bit indices.
 *
 * The free list of each node is a Treiber stack (R. K. Treiber, "Systems
 * Programming: Coping with Parallelism", IBM RJ 5118, 1986) whose head
 * word carries a 32-bit tag beside the index (IBM System/370's
 * compare-and-swap tagging against ABA): a pop that read an index and its
 * link fails its CAS if the stack changed in between, however the same
 * index came back. The links live beside the slab, not in the elements,
 * so a pop never reads memory that a new owner is writing.
 *
 * Synchronization table:
 *
 *   call                          caller        concurrent with
 *   shoal__pool_get, _get_many,   any thread    get, put, growth, stats
 *   _put
 *   shoal__pool_at                any thread    anything (an index from get)
 *   shoal__pool_stats, _set_max   any thread    anything
 *   shoal__pool_init, _destroy    one thread, no other thread touching it
 *
 * An element starts with an `_Atomic uint32_t` key (a session's account
 * id) that lookups may read at any time, even after the element went back
 * to the pool: get stores 0 into it atomically and zeroes the rest; put
 * takes the element back as it is. Growth (a new slab
 * when every stack is empty) takes the pool's mutex: it happens once per
 * `per_slab` gets at most, never on the hot path of a warm pool. */
#ifndef SHOAL_POOL_H
#define SHOAL_POOL_H

#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/common.h"
#include "runtime/topo/topo.h"

#define SHOAL__POOL_NODES_MAX 64

typedef struct shoal__slab {
  unsigned node;           /* the free list its elements go back to */
  _Atomic uint32_t trimmed; /* its pages were given back (pool_trim) and
                               none of it was handed out since */
  _Atomic uint32_t *links; /* per element: the next free index + 1 */
  unsigned char *mem;      /* per_slab * stride bytes, in whole pages of
                              their own (shoal__pages_alloc) */
} shoal__slab;

/* The slab directory; replaced (the old one kept until destroy) when the
 * pool outgrows it, so that readers need no lock. */
typedef struct shoal__slab_dir {
  uint32_t cap;
  shoal__slab *slabs[];
} shoal__slab_dir;

typedef struct shoal__pool_node {
  /* tag << 32 | (index + 1); index + 1 == 0: empty */
  alignas(SHOAL__FALSE_SHARING) _Atomic uint64_t head;
} shoal__pool_node;

typedef struct shoal__pool_stats {
  uint64_t allocated;  /* elements in slabs */
  uint64_t available;  /* of those, free */
  uint64_t in_use;
  uint64_t high_water; /* most in use at once */
  uint64_t slabs;
  uint64_t bytes;      /* slabs, links and directories */
} shoal__pool_stats;

typedef struct shoal__pool {
  size_t stride;
  uint32_t per_slab;
  unsigned nnodes;
  const shoal_topo *topo; /* for binding slabs; NULL: no binding */
  shoal__pool_node nodes[SHOAL__POOL_NODES_MAX];
  alignas(SHOAL__FALSE_SHARING) _Atomic(shoal__slab_dir *) dir;
  _Atomic uint32_t nslabs;
  _Atomic uint64_t max;         /* elements at most */
  _Atomic uint64_t in_use;
  _Atomic uint64_t high_water;
  _Atomic uint64_t bytes;
  _Atomic uint64_t bind_failures;
  int owner_resets;             /* get clears the key only: the owner
                                   resets the rest (with atomic stores
                                   where lookups may read it) */
  pthread_mutex_t grow_mu;      /* growth only */
  void **retired;               /* old directories, freed at destroy */
  size_t nretired;
} shoal__pool;

/* elem_size ≥ 4 (the key); per_slab in 1 … 65536; prealloc ≤ max; nnodes in
 * 1 … SHOAL__POOL_NODES_MAX. With topo of this machine and more than one
 * node, each slab's memory is bound to the node of its free list (NUMA
 * node of logical index n). The prealloc elements are spread over the
 * nodes in whole slabs. Errors: SHOAL_EINVAL, SHOAL_ENOMEM. */
int shoal__pool_init(shoal__pool *p, size_t elem_size, uint32_t per_slab,
                     uint64_t prealloc, uint64_t max, unsigned nnodes,
                     const shoal_topo *topo);
void shoal__pool_destroy(shoal__pool *p);

/* Owners whose elements hold other atomics that stale lookups read set
 * p->owner_resets = 1 after init: get then clears only the key, and the
 * owner resets the rest itself (a memset would race with those reads). */

/* A zeroed element's index from node's free list (another node's when
 * node's is empty and the pool may not grow there), growing by one slab on
 * `node` when every list is empty. SHOAL_ELIMIT at the limit, SHOAL_ENOMEM
 * when a slab cannot be allocated; *index is set on success only. */
int shoal__pool_get(shoal__pool *p, unsigned node, uint32_t *index);
/* Up to want zeroed elements into out[0 … returned) from one free list
 * with one CAS, none grown: 0 when the lists are empty or the limit is
 * reached (shoal__pool_get then grows or answers). Any thread. */
uint32_t shoal__pool_get_many(shoal__pool *p, unsigned node, uint32_t want,
                              uint32_t *out);
/* Returns an element to its slab's node. */
void shoal__pool_put(shoal__pool *p, uint32_t index);

/* Elements gathered by one thread and returned with one CAS: add each
 * (all of one node), then put the chain. Start from {0}. */
typedef struct shoal__pool_chain {
  uint32_t first, last, n;
} shoal__pool_chain;
void shoal__pool_chain_add(shoal__pool *p, shoal__pool_chain *c,
                           uint32_t index);
/* Returns the chain's elements (to the node of its first) and empties it. */
void shoal__pool_put_chain(shoal__pool *p, shoal__pool_chain *c);

/* The element of a valid index. */
static inline void *shoal__pool_at(shoal__pool *p, uint32_t index) {
  /* acquire: pairs with the release that published the directory, and the
   * slab in it. */
  shoal__slab_dir *d = atomic_load_explicit(&p->dir, memory_order_acquire);
  shoal__slab *s = d->slabs[index / p->per_slab];
  return s->mem + (size_t)(index % p->per_slab) * p->stride;
}

/* The node an index's slab belongs to. */
unsigned shoal__pool_node_of(shoal__pool *p, uint32_t index);

void shoal__pool_stats_get(shoal__pool *p, shoal__pool_stats *out);
/* Gives back to the system the pages of every slab whose elements are
 * all free (they read as zeros until handed out again, so a stale lookup
 * reads key 0); returns the bytes. The caller keeps every get and put out
 * meanwhile (the session pool's are under the manager's mu). */
size_t shoal__pool_trim(shoal__pool *p);
/* A new limit; below what is in use it only stops growth and gets (what is
 * in use stays). SHOAL_EINVAL for 0 or more than 2^32 - 1. */
int shoal__pool_set_max(shoal__pool *p, uint64_t max);

#endif /* SHOAL_POOL_H */
