/* alloc.c — the library's allocator: mimalloc by default, libc when built
 * with -Dallocator=libc (sanitizers and valgrind want to see libc calls). */
#include <stdlib.h>
#include <string.h>

#include "shoal_build.h"
#include "runtime/common.h"

#if SHOAL_USE_MIMALLOC
#include <mimalloc.h>

void *shoal__malloc(size_t size) { return mi_malloc(size); }
void *shoal__calloc(size_t count, size_t size) { return mi_calloc(count, size); }
void *shoal__realloc(void *p, size_t size) { return mi_realloc(p, size); }
void *shoal__aligned_alloc(size_t align, size_t size) {
  return mi_malloc_aligned(size, align);
}
void shoal__free(void *p) { mi_free(p); }

#else

void *shoal__malloc(size_t size) { return malloc(size); }
void *shoal__calloc(size_t count, size_t size) { return calloc(count, size); }
void *shoal__realloc(void *p, size_t size) { return realloc(p, size); }
void *shoal__aligned_alloc(size_t align, size_t size) {
  void *p = NULL;
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
