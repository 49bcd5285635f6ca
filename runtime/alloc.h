/* alloc.h — the allocator's policy beyond malloc and free (which common.h
 * declares for every file): pages of their own for long-lived blocks, the
 * window in which freed memory goes back to the system at once, a
 * thread's collection, and the allocator's own figures. alloc.c holds it
 * all; the scheduler runs the collection on every worker
 * (shoal__runtime_collect, runtime/sched/sched.h). Internal. */
#ifndef SHOAL_ALLOC_H
#define SHOAL_ALLOC_H

#include <stddef.h>
#include <stdint.h>

/* size bytes (a multiple of the page) aligned to `align` (a power of two,
 * at least the page), zeroed: a mapping of their own, so that long-lived
 * blocks that may be discarded or unmapped never keep an allocator's
 * segment alive. With the libc allocator (the sanitizer builds) they come
 * from aligned_alloc, so that the checkers see them. NULL when refused
 * (or when the tests' fault injection says so). Any thread. */
void *shoal__pages_alloc(size_t size, size_t align);
void shoal__pages_free(void *p, size_t size);
/* n rounded up to whole pages (x86-64's 4 KiB): the size to ask for. */
static inline size_t shoal__pages_round(size_t n) {
  return (n + 4095) & ~(size_t)4095;
}

/* Between begin and end (nested calls count), memory freed anywhere in
 * the process goes back to the system at once rather than after the
 * allocator's delay (mimalloc's decommit_delay at 0). Any thread. */
void shoal__alloc_release_begin(void);
void shoal__alloc_release_end(void);
/* 1 when the allocator keeps memory per thread that only that thread can
 * give back (mimalloc): then a collection runs on every worker. Any
 * thread. */
int shoal__alloc_per_thread(void);
/* The calling thread's own free memory back to the system (mi_collect,
 * forced or not); nothing with the libc allocator. Any thread, for
 * itself. */
void shoal__alloc_collect_here(int force);
/* glibc's arenas trimmed (malloc_trim(0)): a host whose malloc is glibc's
 * frees its state there. Nothing elsewhere. Any thread. */
void shoal__alloc_trim(void);
/* The allocator's committed bytes, process-wide; 0 without mimalloc. Any
 * thread. */
uint64_t shoal__alloc_committed(void);

#endif /* SHOAL_ALLOC_H */
