/* alloc.c — the library's allocator and all its policy: mimalloc by
 * default, libc when built with -Dallocator=libc (sanitizers and valgrind
 * want to see libc calls); fault injection for the tests; pages of their
 * own, the release window, collection and the allocator's figures
 * (alloc.h). */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "shoal_build.h"
#include "runtime/alloc.h"
#include "runtime/common.h"

/* Fault injection (shoal__fault_alloc, common.h): allocations left before
 * the failing ones, and how many fail then. Read once per allocation, which
 * never happens on a hot path. */
static _Atomic int fault_on;
static _Atomic int64_t fault_skip, fault_fail;
static _Atomic uint64_t fault_failed;

void shoal__fault_alloc(int64_t skip, int64_t fail) {
  atomic_store(&fault_on, 0);
  atomic_store(&fault_skip, skip);
  atomic_store(&fault_fail, fail);
  atomic_store(&fault_on, fail > 0);
}

uint64_t shoal__fault_alloc_failed(void) { return atomic_load(&fault_failed); }

int shoal__fault_now(void) {
  if (SHOAL__LIKELY(!atomic_load_explicit(&fault_on, memory_order_relaxed)))
    return 0;
  if (atomic_fetch_sub(&fault_skip, 1) > 0)
    return 0;
  if (atomic_fetch_sub(&fault_fail, 1) <= 0) { /* all failed already */
    atomic_store(&fault_on, 0);
    return 0;
  }
  atomic_fetch_add(&fault_failed, 1);
  return 1;
}

#if SHOAL__USE_MIMALLOC
#include <mimalloc.h>

void *shoal__malloc(size_t size) {
  return shoal__fault_now() ? NULL : mi_malloc(size);
}
void *shoal__calloc(size_t count, size_t size) {
  return shoal__fault_now() ? NULL : mi_calloc(count, size);
}
void *shoal__realloc(void *p, size_t size) {
  return shoal__fault_now() ? NULL : mi_realloc(p, size);
}
void *shoal__aligned_alloc(size_t align, size_t size) {
  return shoal__fault_now() ? NULL : mi_malloc_aligned(size, align);
}
void shoal__free(void *p) { mi_free(p); }

#else

void *shoal__malloc(size_t size) {
  return shoal__fault_now() ? NULL : malloc(size);
}
void *shoal__calloc(size_t count, size_t size) {
  return shoal__fault_now() ? NULL : calloc(count, size);
}
void *shoal__realloc(void *p, size_t size) {
  return shoal__fault_now() ? NULL : realloc(p, size);
}
void *shoal__aligned_alloc(size_t align, size_t size) {
  void *p = NULL;
  if (shoal__fault_now())
    return NULL;
  if (align < sizeof(void *))
    align = sizeof(void *);
  return posix_memalign(&p, align, size) == 0 ? p : NULL;
}
void shoal__free(void *p) { free(p); }

#endif

char *shoal__strdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = shoal__malloc(n);
  if (d != NULL)
    memcpy(d, s, n);
  return d;
}

/* ------------------------------------------------------------------------ */
/* Pages and collection                                                     */
/* ------------------------------------------------------------------------ */

void *shoal__pages_alloc(size_t size, size_t align) {
#if SHOAL__USE_MIMALLOC
  size_t span = size + align;
  char *m;
  uintptr_t b;
  if (shoal__fault_now())
    return NULL;
  m = mmap(NULL, span, PROT_READ | PROT_WRITE,
           MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (m == MAP_FAILED)
    return NULL;
  /* The aligned part kept, both ends given back. */
  b = ((uintptr_t)m + align - 1) & ~(uintptr_t)(align - 1);
  if (b > (uintptr_t)m)
    munmap(m, b - (uintptr_t)m);
  if ((uintptr_t)m + span > b + size)
    munmap((void *)(b + size), (uintptr_t)m + span - (b + size));
  return (void *)b;
#else
  void *p = shoal__aligned_alloc(align, size);
  if (p != NULL)
    memset(p, 0, size);
  return p;
#endif
}

void shoal__pages_free(void *p, size_t size) {
  if (p == NULL)
    return;
#if SHOAL__USE_MIMALLOC
  munmap(p, size);
#else
  (void)size;
  shoal__free(p);
#endif
}

/* mimalloc (2.0) gives a span that frees empty back to the system after
 * a delay (decommit_delay, 25 ms), and only when its owning thread later
 * allocates a page in the same segment; a collect, forced or not, does not
 * cut the delay short. A block freed from another thread waits for its
 * owner to collect it. So memory a host frees on a worker that then parks
 * stays resident. While a release window is open (begin … end, nested)
 * the delay is 0, so that what empties is given back at once, and a
 * collect on every worker's own thread empties the pages that blocks
 * freed from elsewhere left. The option is process-wide; a concurrent
 * reader sees either value, both valid. */
#if SHOAL__USE_MIMALLOC
static long decommit_delay_saved;
static _Atomic int decommit_nest;
#endif

void shoal__alloc_release_begin(void) {
#if SHOAL__USE_MIMALLOC
  if (atomic_fetch_add(&decommit_nest, 1) == 0) {
    decommit_delay_saved = mi_option_get(mi_option_decommit_delay);
    mi_option_set(mi_option_decommit_delay, 0);
  }
#endif
}

void shoal__alloc_release_end(void) {
#if SHOAL__USE_MIMALLOC
  if (atomic_fetch_sub(&decommit_nest, 1) == 1)
    mi_option_set(mi_option_decommit_delay, decommit_delay_saved);
#endif
}

int shoal__alloc_per_thread(void) {
  return SHOAL__USE_MIMALLOC;
}

void shoal__alloc_collect_here(int force) {
#if SHOAL__USE_MIMALLOC
  mi_collect(force != 0);
#else
  (void)force;
#endif
}

void shoal__alloc_trim(void) {
#if defined(__GLIBC__)
  /* A host whose malloc is glibc's (its own binary comes before
   * libmimalloc in the symbol lookup) frees its state into glibc's arenas;
   * they give free pages back only when trimmed. Every arena. */
  (void)malloc_trim(0);
#endif
}

uint64_t shoal__alloc_committed(void) {
#if SHOAL__USE_MIMALLOC
  size_t elapsed, user, sys, rss, peak_rss, commit, peak_commit, faults;
  mi_process_info(&elapsed, &user, &sys, &rss, &peak_rss, &commit,
                  &peak_commit, &faults);
  return commit;
#else
  return 0;
#endif
}
