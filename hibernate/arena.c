/* arena.c — chunks of hibernation records (arena.h). */
#include <stdatomic.h>

#include "hibernate/arena.h"
#include "runtime/common.h"
#include "runtime/alloc.h"
#include "runtime/os.h"

/* At the start of each chunk; blocks follow from HEAD on. */
typedef struct shoal__arena_chunk {
  _Atomic uint64_t live; /* live blocks' bytes, + 1 while a cursor's */
  size_t size;           /* mapped bytes */
} shoal__arena_chunk;

#define HEAD 64u /* the header, rounded to a cache line */

static size_t round8(size_t n) {
  return (n + 7) & ~(size_t)7;
}

static struct shoal__arena_chunk *chunk_of(const void *p) {
  return (struct shoal__arena_chunk *)((uintptr_t)p &
                                       ~(uintptr_t)(SHOAL__ARENA_CHUNK - 1));
}

/* A chunk of size bytes (a multiple of SHOAL__ARENA_CHUNK), aligned to
 * SHOAL__ARENA_CHUNK; NULL when the system refuses. */
static struct shoal__arena_chunk *map_chunk(size_t size, uint64_t live) {
  struct shoal__arena_chunk *c = shoal__pages_alloc(size, SHOAL__ARENA_CHUNK);
  if (c == NULL)
    return NULL;
  atomic_init(&c->live, live);
  c->size = size;
  return c;
}

/* Takes n from c's live count; the last one out unmaps it. */
static void put(struct shoal__arena_chunk *c, uint64_t n) {
  /* acq_rel: every block's last use happens before the unmap. */
  if (atomic_fetch_sub_explicit(&c->live, n, memory_order_acq_rel) == n)
    shoal__pages_free(c, c->size);
}

void *shoal__arena_alloc(shoal__arena_cursor *c, size_t n) {
  struct shoal__arena_chunk *k;
  if (shoal__fault_now())
    return NULL; /* the tests' fault injection: an allocation as any */
  n = round8(n);
  if (n > SHOAL__ARENA_CHUNK - HEAD) {
    /* A mapping of its own, no cursor on it. */
    size_t size = (HEAD + n + SHOAL__ARENA_CHUNK - 1) &
                  ~(size_t)(SHOAL__ARENA_CHUNK - 1);
    k = map_chunk(size, n);
    return k != NULL ? (char *)k + HEAD : NULL;
  }
  if (c->chunk == NULL || c->off + n > SHOAL__ARENA_CHUNK) {
    if ((k = map_chunk(SHOAL__ARENA_CHUNK, 1)) == NULL)
      return NULL;
    shoal__arena_done(c);
    c->chunk = k;
    c->off = HEAD;
  }
  k = c->chunk;
  atomic_fetch_add_explicit(&k->live, n, memory_order_relaxed);
  c->off += n;
  return (char *)k + c->off - n;
}

void shoal__arena_free(void *p, size_t n) {
  if (p != NULL)
    put(chunk_of(p), round8(n));
}

void shoal__arena_done(shoal__arena_cursor *c) {
  if (c->chunk != NULL)
    put(c->chunk, 1);
  c->chunk = NULL;
  c->off = 0;
}

int shoal__arena_sparse(const void *p) {
  struct shoal__arena_chunk *c = chunk_of(p);
  return c->size == SHOAL__ARENA_CHUNK &&
         atomic_load_explicit(&c->live, memory_order_relaxed) <
             SHOAL__ARENA_CHUNK / 4;
}
