/* pool.c — slabs, their directory, and the tagged Treiber stacks. */
#include "pool/pool.h"

#include <string.h>

#include "runtime/alloc.h"
#include "runtime/os.h"

#define LOW32 UINT64_C(0xffffffff)

static shoal__slab *slab_of(shoal__pool *p, uint32_t index) {
  shoal__slab_dir *d = atomic_load_explicit(&p->dir, memory_order_acquire);
  return d->slabs[index / p->per_slab];
}

static _Atomic uint32_t *link_of(shoal__pool *p, uint32_t index) {
  return &slab_of(p, index)->links[index % p->per_slab];
}

unsigned shoal__pool_node_of(shoal__pool *p, uint32_t index) {
  return slab_of(p, index)->node;
}

/* Pushes the chain first … last (linked through their links already) onto
 * node n's stack with one CAS. */
static void push_chain(shoal__pool *p, unsigned n, uint32_t first,
                       uint32_t last) {
  _Atomic uint64_t *head = &p->nodes[n].head;
  uint64_t h = atomic_load_explicit(head, memory_order_relaxed);
  for (;;) {
    atomic_store_explicit(link_of(p, last), (uint32_t)(h & LOW32),
                          memory_order_relaxed);
    /* release: the link (and the element's last use) before the head that
     * makes it reachable. */
    if (atomic_compare_exchange_weak_explicit(
            head, &h, ((h >> 32) + 1) << 32 | ((uint64_t)first + 1),
            memory_order_release, memory_order_relaxed))
      return;
  }
}

/* The most of the next element a pop asks for: a payload buffer of 2 KiB
 * and its head. */
#define PREFETCH_MAX 2112u

static int pop(shoal__pool *p, unsigned n, uint32_t *index) {
  _Atomic uint64_t *head = &p->nodes[n].head;
  /* acquire: pairs with the push's release, for the link we read next. */
  uint64_t h = atomic_load_explicit(head, memory_order_acquire);
  for (;;) {
    uint32_t top = (uint32_t)(h & LOW32), next;
    if (top == 0)
      return 0;
    /* The element may be popped and reused meanwhile: its link is then
     * stale, and the tag makes the CAS below fail. */
    next = atomic_load_explicit(link_of(p, top - 1), memory_order_relaxed);
    if (atomic_compare_exchange_weak_explicit(
            head, &h, ((h >> 32) + 1) << 32 | next, memory_order_acquire,
            memory_order_acquire)) {
      *index = top - 1;
      /* The next get most likely takes `next`: its lines are asked for
       * writing now (they were last touched on the core that put it
       * back), so that the transfer overlaps this element's use. */
      if (next != 0) {
        const char *e = shoal__pool_at(p, next - 1);
        size_t len = p->stride < PREFETCH_MAX ? p->stride : PREFETCH_MAX;
        for (size_t b = 0; b < len; b += SHOAL__CACHE_LINE)
          shoal__prefetch_write(e + b);
      }
      return 1;
    }
  }
}

/* Pops up to want elements of node n's stack with one CAS (the tag makes
 * it fail when the stack changed while the links were read); how many. */
static uint32_t pop_many(shoal__pool *p, unsigned n, uint32_t want,
                         uint32_t *out) {
  _Atomic uint64_t *head = &p->nodes[n].head;
  /* acquire: pairs with the push's release, for the links we read next. */
  uint64_t h = atomic_load_explicit(head, memory_order_acquire);
  for (;;) {
    uint32_t cur = (uint32_t)(h & LOW32), k = 0;
    while (cur != 0 && k < want) {
      out[k++] = cur - 1;
      cur = atomic_load_explicit(link_of(p, cur - 1), memory_order_relaxed);
    }
    if (k == 0)
      return 0;
    if (atomic_compare_exchange_weak_explicit(
            head, &h, ((h >> 32) + 1) << 32 | cur, memory_order_acquire,
            memory_order_acquire))
      return k;
  }
}

static int any_free(shoal__pool *p) {
  for (unsigned n = 0; n < p->nnodes; n++)
    if ((atomic_load_explicit(&p->nodes[n].head, memory_order_relaxed) &
         LOW32) != 0)
      return 1;
  return 0;
}

/* Adds one slab on node n; its elements but the first go onto n's stack,
 * the first into *first when first is not NULL. Under grow_mu (or alone at
 * init). */
static int grow(shoal__pool *p, unsigned n, uint32_t *first) {
  shoal__slab_dir *d = atomic_load_explicit(&p->dir, memory_order_relaxed);
  uint32_t k = atomic_load_explicit(&p->nslabs, memory_order_relaxed);
  uint32_t base = k * p->per_slab, start;
  size_t bytes = (size_t)p->per_slab * p->stride;
  shoal__slab *s;
  if ((uint64_t)base + p->per_slab > LOW32)
    return SHOAL_ELIMIT; /* indices are 32 bits */
  if (k == d->cap) {
    uint32_t cap = d->cap * 2;
    shoal__slab_dir *nd = shoal__malloc(sizeof *nd + cap * sizeof(void *));
    void **r = shoal__realloc(p->retired, (p->nretired + 1) * sizeof *r);
    if (nd == NULL || r == NULL) {
      shoal__free(nd);
      if (r != NULL)
        p->retired = r;
      return SHOAL_ENOMEM;
    }
    p->retired = r;
    nd->cap = cap;
    memcpy(nd->slabs, d->slabs, d->cap * sizeof(void *));
    memset(nd->slabs + d->cap, 0, (cap - d->cap) * sizeof(void *));
    /* Readers holding the old directory still find every slab in it. */
    p->retired[p->nretired++] = d;
    atomic_fetch_add_explicit(&p->bytes, sizeof *nd + cap * sizeof(void *),
                              memory_order_relaxed);
    atomic_store_explicit(&p->dir, nd, memory_order_release);
    d = nd;
  }
  s = shoal__malloc(sizeof *s);
  if (s != NULL) {
    s->links = shoal__calloc(p->per_slab, sizeof *s->links);
    /* Pages of its own: a slab trimmed whole keeps nothing resident. */
    s->mem = shoal__pages_alloc(shoal__pages_round(bytes), 4096);
  }
  if (s == NULL || s->links == NULL || s->mem == NULL) {
    if (s != NULL) {
      shoal__free(s->links);
      shoal__pages_free(s->mem, shoal__pages_round(bytes));
    }
    shoal__free(s);
    return SHOAL_ENOMEM;
  }
  s->node = n;
  atomic_init(&s->trimmed, 0);
  if (p->topo != NULL && p->nnodes > 1 &&
      shoal__topo_membind_area(p->topo, p->topo->numas[n].os_index, s->mem,
                               bytes) != SHOAL_OK)
    atomic_fetch_add_explicit(&p->bind_failures, 1, memory_order_relaxed);
  memset(s->mem, 0, bytes);
  d->slabs[k] = s;
  atomic_fetch_add_explicit(&p->bytes,
                            sizeof *s + bytes +
                                p->per_slab * sizeof *s->links,
                            memory_order_relaxed);
  /* release: the slab in the directory before an index in it is handed
   * out (a reader's acquire of the directory, or of a stack head, sees
   * it). */
  atomic_store_explicit(&p->nslabs, k + 1, memory_order_release);
  start = first != NULL ? base + 1 : base;
  if (first != NULL)
    *first = base;
  if (start < base + p->per_slab) {
    for (uint32_t i = start; i + 1 < base + p->per_slab; i++)
      atomic_store_explicit(&s->links[i - base], i + 2, memory_order_relaxed);
    push_chain(p, n, start, base + p->per_slab - 1);
  }
  return SHOAL_OK;
}

int shoal__pool_init(shoal__pool *p, size_t elem_size, uint32_t per_slab,
                     uint64_t prealloc, uint64_t max, unsigned nnodes,
                     const shoal_topo *topo) {
  shoal__slab_dir *d;
  uint32_t dcap = 8;
  memset(p, 0, sizeof *p);
  if (elem_size < sizeof(uint32_t) || per_slab == 0 || per_slab > 65536 || max == 0 ||
      max > LOW32 || prealloc > max || nnodes == 0 ||
      nnodes > SHOAL__POOL_NODES_MAX ||
      (topo != NULL && nnodes > topo->nnuma))
    return SHOAL_EINVAL;
  p->stride = (elem_size + SHOAL__CACHE_LINE - 1) / SHOAL__CACHE_LINE *
              SHOAL__CACHE_LINE;
  p->per_slab = per_slab;
  p->nnodes = nnodes;
  p->topo = topo;
  while ((uint64_t)dcap * per_slab < prealloc)
    dcap *= 2;
  if ((d = shoal__malloc(sizeof *d + dcap * sizeof(void *))) == NULL)
    return SHOAL_ENOMEM;
  d->cap = dcap;
  memset(d->slabs, 0, dcap * sizeof(void *));
  atomic_init(&p->dir, d);
  atomic_init(&p->nslabs, 0);
  atomic_init(&p->max, max);
  atomic_init(&p->in_use, 0);
  atomic_init(&p->high_water, 0);
  atomic_init(&p->bytes, sizeof *d + dcap * sizeof(void *));
  atomic_init(&p->bind_failures, 0);
  for (unsigned n = 0; n < SHOAL__POOL_NODES_MAX; n++)
    atomic_init(&p->nodes[n].head, 0);
  pthread_mutex_init(&p->grow_mu, NULL);
  for (unsigned n = 0; (uint64_t)atomic_load(&p->nslabs) * per_slab < prealloc;
       n = (n + 1) % nnodes) {
    int rc = grow(p, n, NULL);
    if (rc != SHOAL_OK) {
      shoal__pool_destroy(p);
      return rc;
    }
  }
  return SHOAL_OK;
}

void shoal__pool_destroy(shoal__pool *p) {
  shoal__slab_dir *d = atomic_load_explicit(&p->dir, memory_order_relaxed);
  if (d == NULL)
    return;
  for (uint32_t k = 0; k < atomic_load(&p->nslabs); k++) {
    shoal__free(d->slabs[k]->links);
    shoal__pages_free(d->slabs[k]->mem,
                      shoal__pages_round((size_t)p->per_slab * p->stride));
    shoal__free(d->slabs[k]);
  }
  shoal__free(d);
  for (size_t i = 0; i < p->nretired; i++)
    shoal__free(p->retired[i]);
  shoal__free(p->retired);
  pthread_mutex_destroy(&p->grow_mu);
  atomic_store_explicit(&p->dir, NULL, memory_order_relaxed);
}

static void high_water(shoal__pool *p, uint64_t used) {
  uint64_t hw = atomic_load_explicit(&p->high_water, memory_order_relaxed);
  while (used > hw && !atomic_compare_exchange_weak_explicit(
                          &p->high_water, &hw, used, memory_order_relaxed,
                          memory_order_relaxed))
    ;
}

/* Element i handed out: its slab no longer trimmed, its key 0. */
static void take(shoal__pool *p, uint32_t i) {
  shoal__slab *sl = slab_of(p, i);
  unsigned char *e = shoal__pool_at(p, i);
  if (atomic_load_explicit(&sl->trimmed, memory_order_relaxed))
    atomic_store_explicit(&sl->trimmed, 0, memory_order_relaxed);
  /* The key may be read by lookups that still name this element. */
  atomic_store_explicit((_Atomic uint32_t *)(void *)e, 0,
                        memory_order_relaxed);
  if (!p->owner_resets)
    memset(e + sizeof(uint32_t), 0, p->stride - sizeof(uint32_t));
}

uint32_t shoal__pool_get_many(shoal__pool *p, unsigned node, uint32_t want,
                              uint32_t *out) {
  uint64_t used, max = atomic_load_explicit(&p->max, memory_order_relaxed);
  uint32_t got = 0, room;
  if (node >= p->nnodes)
    node = 0;
  used = atomic_fetch_add_explicit(&p->in_use, want, memory_order_relaxed);
  if (used >= max) {
    atomic_fetch_sub_explicit(&p->in_use, want, memory_order_relaxed);
    return 0;
  }
  room = used + want > max ? (uint32_t)(max - used) : want;
  for (unsigned k = 0; k < p->nnodes && got == 0; k++)
    got = pop_many(p, (node + k) % p->nnodes, room, out);
  /* what the stacks did not have, or is past max, is not held */
  if (got < want)
    atomic_fetch_sub_explicit(&p->in_use, want - got, memory_order_relaxed);
  high_water(p, used + got);
  for (uint32_t k = 0; k < got; k++)
    take(p, out[k]);
  return got;
}

int shoal__pool_get(shoal__pool *p, unsigned node, uint32_t *index) {
  uint64_t used;
  uint32_t i = 0;
  int rc;
  if (node >= p->nnodes)
    node = 0;
  /* Reserve first: in_use never passes max, so whoever reserved finds an
   * element once the slabs hold max of them. */
  used = atomic_fetch_add_explicit(&p->in_use, 1, memory_order_relaxed);
  if (used >= atomic_load_explicit(&p->max, memory_order_relaxed)) {
    atomic_fetch_sub_explicit(&p->in_use, 1, memory_order_relaxed);
    return SHOAL_ELIMIT;
  }
  for (;;) {
    uint64_t cap;
    /* Our node first, then the others (the element's node becomes the
     * session's home), then a new slab on our node. */
    for (unsigned k = 0; k < p->nnodes; k++)
      if (pop(p, (node + k) % p->nnodes, &i))
        goto got;
    pthread_mutex_lock(&p->grow_mu);
    cap = (uint64_t)atomic_load_explicit(&p->nslabs, memory_order_relaxed) *
          p->per_slab;
    if (any_free(p)) {
      rc = SHOAL_EAGAIN; /* put back meanwhile: pop again */
    } else if (cap < atomic_load_explicit(&p->max, memory_order_relaxed)) {
      rc = grow(p, node, &i);
    } else {
      /* Every element is held by someone who reserved; one of them is
       * being put back (pushed before its reservation ends). */
      rc = SHOAL_EAGAIN;
    }
    pthread_mutex_unlock(&p->grow_mu);
    if (rc == SHOAL_OK)
      break;
    if (rc != SHOAL_EAGAIN) {
      atomic_fetch_sub_explicit(&p->in_use, 1, memory_order_relaxed);
      return rc;
    }
    shoal__cpu_relax();
  }
got:
  high_water(p, used + 1);
  take(p, i);
  *index = i;
  return SHOAL_OK;
}

void shoal__pool_put(shoal__pool *p, uint32_t index) {
  push_chain(p, shoal__pool_node_of(p, index), index, index);
  atomic_fetch_sub_explicit(&p->in_use, 1, memory_order_relaxed);
}

void shoal__pool_chain_add(shoal__pool *p, shoal__pool_chain *c,
                           uint32_t index) {
  if (c->n++ == 0)
    c->last = index;
  else
    atomic_store_explicit(link_of(p, index), c->first + 1,
                          memory_order_relaxed);
  c->first = index;
}

void shoal__pool_put_chain(shoal__pool *p, shoal__pool_chain *c) {
  if (c->n == 0)
    return;
  push_chain(p, shoal__pool_node_of(p, c->first), c->first, c->last);
  atomic_fetch_sub_explicit(&p->in_use, c->n, memory_order_relaxed);
  c->n = 0;
}

void shoal__pool_stats_get(shoal__pool *p, shoal__pool_stats *out) {
  uint64_t slabs = atomic_load_explicit(&p->nslabs, memory_order_relaxed);
  uint64_t used = atomic_load_explicit(&p->in_use, memory_order_relaxed);
  out->slabs = slabs;
  out->allocated = slabs * p->per_slab;
  out->in_use = used < out->allocated ? used : out->allocated;
  out->available = out->allocated - out->in_use;
  out->high_water = atomic_load_explicit(&p->high_water, memory_order_relaxed);
  out->bytes = atomic_load_explicit(&p->bytes, memory_order_relaxed);
}

int shoal__pool_set_max(shoal__pool *p, uint64_t max) {
  if (max == 0 || max > LOW32)
    return SHOAL_EINVAL;
  atomic_store_explicit(&p->max, max, memory_order_relaxed);
  return SHOAL_OK;
}

size_t shoal__pool_trim(shoal__pool *p) {
  shoal__slab_dir *d = atomic_load_explicit(&p->dir, memory_order_acquire);
  uint32_t ns = atomic_load_explicit(&p->nslabs, memory_order_acquire);
  uint32_t *nfree = shoal__calloc(ns > 0 ? ns : 1, sizeof *nfree);
  size_t bytes = 0;
  if (nfree == NULL)
    return 0;
  for (unsigned n = 0; n < p->nnodes; n++) {
    uint32_t i1 = (uint32_t)atomic_load_explicit(&p->nodes[n].head,
                                                 memory_order_acquire);
    for (; i1 != 0;
         i1 = atomic_load_explicit(link_of(p, i1 - 1), memory_order_relaxed))
      nfree[(i1 - 1) / p->per_slab]++;
  }
  for (uint32_t k = 0; k < ns; k++) {
    shoal__slab *sl = d->slabs[k];
    if (nfree[k] != p->per_slab ||
        atomic_load_explicit(&sl->trimmed, memory_order_relaxed))
      continue;
    /* The whole mapping: its last page holds elements too. */
    bytes += shoal__pages_discard(
        sl->mem, shoal__pages_round((size_t)p->per_slab * p->stride));
    atomic_store_explicit(&sl->trimmed, 1, memory_order_relaxed);
  }
  shoal__free(nfree);
  return bytes;
}
