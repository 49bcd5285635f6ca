/* alloc.c — the library's allocator: mimalloc by default, libc when built
 * with -Dallocator=libc (sanitizers and valgrind want to see libc calls). */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "shoal_build.h"
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
  if (SHOAL_LIKELY(!atomic_load_explicit(&fault_on, memory_order_relaxed)))
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

#if SHOAL_USE_MIMALLOC
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
