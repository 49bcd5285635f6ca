/* common.h — what every file of the library shares: the allocator, the log
 * helper, cache-line constants. Internal (shoal__ names); never installed. */
#ifndef SHOAL_COMMON_H
#define SHOAL_COMMON_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "shoal.h"

/* x86-64 and most AArch64 parts have 64-byte lines; adjacent-line
 * prefetchers pull pairs, so contended fields are kept 128 bytes apart. */
#define SHOAL__CACHE_LINE 64
#define SHOAL__FALSE_SHARING 128

#define SHOAL__ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#if defined(__GNUC__)
#define SHOAL__LIKELY(x) __builtin_expect(!!(x), 1)
#define SHOAL__UNLIKELY(x) __builtin_expect(!!(x), 0)
#define SHOAL__PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define SHOAL__LIKELY(x) (x)
#define SHOAL__UNLIKELY(x) (x)
#define SHOAL__PRINTF(f, a)
#endif

/* Asking for a line for writing. shoal__prefetch_excl: exclusive, with
 * x86's PREFETCHW, which takes the line from the core that holds it and
 * invalidates the other copies, so that the write that follows neither
 * misses nor upgrades a shared copy; where the CPU lacks it, nothing (a
 * plain prefetch brings the line shared and leaves the upgrade to the
 * write, which measured worse than no prefetch in the mailbox's push).
 * shoal__prefetch_write: the same, with a plain prefetch where the CPU
 * lacks PREFETCHW, for a line that is cold rather than held by another
 * core. The dsched harness, which runs its threads one at a time, has
 * neither. */
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__)) && \
    !(defined(SHOAL__DSCHED) && SHOAL__DSCHED)
/* 1 when the CPU has PREFETCHW (runtime/topo/cpu.c, set before main). */
extern int shoal__prefetchw_ok;
static inline void shoal__prefetch_excl(const void *p) {
  if (SHOAL__LIKELY(shoal__prefetchw_ok))
    __asm__ volatile("prefetchw %0" ::"m"(*(const char *)p));
}
static inline void shoal__prefetch_write(const void *p) {
  if (SHOAL__LIKELY(shoal__prefetchw_ok))
    __asm__ volatile("prefetchw %0" ::"m"(*(const char *)p));
  else
    __builtin_prefetch(p, 1, 3);
}
#else
static inline void shoal__prefetch_excl(const void *p) { (void)p; }
static inline void shoal__prefetch_write(const void *p) {
  __builtin_prefetch(p, 1, 3);
}
#endif

/* 1 in a ThreadSanitizer build (gcc defines __SANITIZE_THREAD__, clang
 * answers __has_feature). TSan does not model standalone fences; code that
 * uses them takes equivalent orderings on the accesses in that build. */
#if defined(__SANITIZE_THREAD__)
#define SHOAL__TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SHOAL__TSAN 1
#endif
#endif
#ifndef SHOAL__TSAN
#define SHOAL__TSAN 0
#endif

/* The smallest power of two >= n, and at least 2 (ring capacities). The
 * caller bounds n. */
static inline uint64_t shoal__pow2_at_least(uint64_t n) {
  uint64_t p = 2;
  while (p < n)
    p <<= 1;
  return p;
}

/* Tells the core that the caller is spinning (PAUSE on x86). */
static inline void shoal__cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

/* Copies a caller's options struct that carries its own struct_size, so
 * that a host built against an older, shorter struct still works: fields it
 * does not know keep the defaults already in `dst`. */
static inline void shoal__copy_opts(void *dst, size_t dst_size,
                                    const void *src, size_t src_size) {
  size_t n = src_size != 0 && src_size < dst_size ? src_size : dst_size;
  memcpy(dst, src, n);
}

/* Allocation: mimalloc, or libc in sanitizer builds (-Dallocator=libc).
 * Every allocation of the library goes through these. */
void *shoal__malloc(size_t size);
void *shoal__calloc(size_t count, size_t size);
void *shoal__realloc(void *p, size_t size);
/* `align` is a power of two; memory from here is freed with shoal__free. */
void *shoal__aligned_alloc(size_t align, size_t size);
char *shoal__strdup(const char *s);
void shoal__free(void *p);

/* Fault injection for the tests: after `skip` more allocations succeed,
 * the next `fail` ones return NULL (0 turns it off). Process-wide; any
 * thread. shoal__fault_alloc_failed counts the failures made so far. */
void shoal__fault_alloc(int64_t skip, int64_t fail);
uint64_t shoal__fault_alloc_failed(void);
/* 1 when the allocation about to be made must fail (counted as one): for
 * the library's allocators that do not go through shoal__malloc. */
int shoal__fault_now(void);

/* Formats and hands one message to the host's callback; nothing when `fn`
 * is NULL. Never prints. */
/* Text appended to buf[0 … cap) while it has room, counting what all of
 * it takes (len), so that a caller whose buffer is short can say how
 * much it needs: the metrics exposition's, the trace's. */
typedef struct shoal__text {
  char *buf;
  size_t cap, len;
} shoal__text;
/* Any thread, on a buffer of its own. */
void shoal__text_put(shoal__text *t, const char *fmt, ...) SHOAL__PRINTF(2, 3);

void shoal__log(shoal_log_fn fn, void *user, shoal_log_level level,
                const char *fmt, ...) SHOAL__PRINTF(4, 5);

#endif /* SHOAL_COMMON_H */
