/* test_simd.c — the metric columns' sum and sum-and-clear, and the
 * hibernation candidates' compare-and-mask: the AVX2 and AVX-512 paths
 * (when this CPU has them) against the scalar one on random data of
 * awkward lengths and misaligned starts, with sums that wrap; the clear
 * touches exactly the n elements asked for; the finder stops at max. */
#include <string.h>

#include "sessions/simd.h"
#include "test_util.h"

static uint64_t next(uint64_t *s) {
  uint64_t x = (*s += 0x9E3779B97F4A7C15ULL);
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

static void compare(shoal__sum_fn fn, const char *name) {
  static const size_t lens[] = {0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31,
                                33, 63, 64, 65, 127, 129, 1000, 4999, 5003};
  enum { PAD = 8, MAX = 5003 + 2 * PAD + 8 };
  static uint64_t a[MAX], b[MAX];
  uint64_t seed = 42;
  for (size_t li = 0; li < SHOAL_ARRAY_LEN(lens); li++) {
    for (size_t off = 0; off < 8; off++) {
      size_t n = lens[li];
      for (size_t i = 0; i < MAX; i++)
        /* large values, so that sums wrap; small ones in half the runs */
        a[i] = off & 1 ? next(&seed) : next(&seed) % 1000;
      memcpy(b, a, sizeof a);
      uint64_t want = shoal__sum_scalar(a + PAD + off, n, 0);
      uint64_t got = fn(b + PAD + off, n, 0);
      if (got != want)
        fail_msg("%s: sum of %zu at offset %zu: %llu, scalar %llu", name, n,
                 off, (unsigned long long)got, (unsigned long long)want);
      assert_memory_equal(a, b, sizeof a);
      want = shoal__sum_scalar(a + PAD + off, n, 1);
      got = fn(b + PAD + off, n, 1);
      if (got != want)
        fail_msg("%s: sum-clear of %zu at offset %zu: %llu, scalar %llu",
                 name, n, off, (unsigned long long)got,
                 (unsigned long long)want);
      /* the n elements cleared, the neighbours untouched */
      assert_memory_equal(a, b, sizeof a);
    }
  }
}

/* Against a plain loop: every cutoff class (none, some, all, equal
 * values), every max from 0 to past the count. */
static void compare_older(shoal__older_fn fn, const char *name) {
  static const size_t lens[] = {0, 1, 3, 7, 8, 9, 15, 16, 17, 23, 24, 25,
                                31, 33, 64, 65, 1000, 5003};
  enum { PAD = 8, MAX = 5003 + 2 * PAD + 8 };
  static uint64_t a[MAX];
  static uint32_t want[MAX], got[MAX];
  uint64_t seed = 7;
  for (size_t li = 0; li < SHOAL_ARRAY_LEN(lens); li++) {
    for (size_t off = 0; off < 8; off++) {
      size_t n = lens[li];
      for (size_t i = 0; i < MAX; i++)
        a[i] = next(&seed) % 2000; /* manager-clock values */
      for (uint64_t cut = 0; cut <= 2000; cut += 250) {
        size_t all = 0, maxes[] = {0, 1, 5, n / 2, n, n + 3};
        for (size_t i = 0; i < n; i++)
          if (a[PAD + off + i] <= cut)
            want[all++] = (uint32_t)i;
        for (size_t m = 0; m < SHOAL_ARRAY_LEN(maxes); m++) {
          size_t k = fn(a + PAD + off, n, cut, got, maxes[m]);
          size_t wk = all < maxes[m] ? all : maxes[m];
          if (k != wk)
            fail_msg("%s: %zu of %zu at offset %zu, cutoff %llu, max %zu: "
                     "%zu found, want %zu", name, k, n, off,
                     (unsigned long long)cut, maxes[m], k, wk);
          assert_memory_equal(got, want, k * sizeof *got);
        }
      }
    }
  }
}

static void older(void **state) {
  shoal_cpu_info ci;
  shoal__older_fn fn;
  const char *name;
  int tested = 0;
  (void)state;
  compare_older(shoal__older_scalar, "scalar");
  if (shoal_cpu_identify(&ci) == SHOAL_OK) {
    if (ci.features & SHOAL_CPU_AVX2) {
      compare_older(shoal__older_avx2, "avx2");
      tested++;
    }
    if (ci.features & SHOAL_CPU_AVX512F) {
      compare_older(shoal__older_avx512, "avx512");
      tested++;
    }
  }
  printf("# candidate finders compared with scalar: %d\n", tested);
  (void)shoal__simd_pick(0, &name, &fn);
  assert_true(fn == shoal__older_scalar);
}

static void paths(void **state) {
  shoal__older_fn fn;
  shoal_cpu_info ci;
  const char *name;
  int tested = 0;
  (void)state;
  compare(shoal__sum_scalar, "scalar");
  if (shoal_cpu_identify(&ci) == SHOAL_OK) {
    if (ci.features & SHOAL_CPU_AVX2) {
      compare(shoal__sum_avx2, "avx2");
      tested++;
    }
    if (ci.features & SHOAL_CPU_AVX512F) {
      compare(shoal__sum_avx512, "avx512");
      tested++;
    }
  }
  printf("# SIMD paths compared with scalar: %d\n", tested);
  /* the pick follows the flags and the switch */
  assert_true(shoal__simd_pick(0, &name, &fn) == shoal__sum_scalar);
  assert_string_equal(name, "scalar");
  shoal__simd_pick(1, &name, &fn);
  if (shoal_cpu_identify(&ci) == SHOAL_OK && (ci.features & SHOAL_CPU_AVX512F))
    assert_string_equal(name, "avx512");
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(paths),
    cmocka_unit_test(older),
  };
  return test_run("simd", tests, SHOAL_ARRAY_LEN(tests));
}
