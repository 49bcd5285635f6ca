/* arena.h — where hibernated sessions' records live: packed end to end in
 * chunks mapped from the system, so that a record costs its own bytes
 * (rounded to 8) and not an allocator size class, and so that the
 * allocator's segments that held the sessions' state can go back whole.
 * Internal to hibernate/.
 *
 * A chunk is SHOAL__ARENA_CHUNK bytes aligned to its size (a record larger
 * than a chunk gets a mapping of its own, aligned the same way), so the
 * chunk of a block is its address rounded down. Its header counts the
 * bytes of its live blocks, plus one while a cursor still allocates from
 * it; the chunk is unmapped when that count reaches 0.
 *
 * Synchronization table:
 *
 *   call                      caller                 concurrent with
 *   shoal__arena_alloc        the cursor's owner     frees of any block
 *   shoal__arena_free         any thread             allocs, other frees
 *   shoal__arena_done         the cursor's owner     frees of any block
 *   shoal__arena_sparse       any thread             frees of other blocks */
#ifndef SHOAL_HIBERNATE_ARENA_H
#define SHOAL_HIBERNATE_ARENA_H

#include <stddef.h>
#include <stdint.h>

#define SHOAL__ARENA_CHUNK (256u * 1024u)

/* One thread's place to allocate from: zero-initialized to start. */
typedef struct shoal__arena_cursor {
  struct shoal__arena_chunk *chunk;
  size_t off;
} shoal__arena_cursor;

/* n bytes (8-aligned), or NULL when the system refuses memory. */
void *shoal__arena_alloc(shoal__arena_cursor *c, size_t n);
/* A block of n bytes (the n given to alloc). */
void shoal__arena_free(void *p, size_t n);
/* The cursor lets go of its chunk (which goes once its blocks do). */
void shoal__arena_done(shoal__arena_cursor *c);
/* 1 when the block's chunk is a standard one less than a quarter full: a
 * compaction moves its blocks out so that it can go. */
int shoal__arena_sparse(const void *p);

#endif /* SHOAL_HIBERNATE_ARENA_H */
