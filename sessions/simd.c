/* simd.c — the metric columns' sums: scalar, AVX2 and AVX-512 bodies,
 * compiled with per-function target attributes so that the library runs
 * on any x86-64 and uses what the CPU has. */
#include "sessions/simd.h"

#include "shoal.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define SIMD_X86 1
#endif

uint64_t shoal__sum_scalar(uint64_t *col, size_t n, int clear) {
  uint64_t s = 0;
  for (size_t i = 0; i < n; i++)
    s += col[i];
  if (clear)
    for (size_t i = 0; i < n; i++)
      col[i] = 0;
  return s;
}

size_t shoal__older_scalar(const uint64_t *col, size_t n, uint64_t cutoff,
                           uint32_t *out, size_t max) {
  size_t k = 0;
  for (size_t i = 0; i < n && k < max; i++)
    if (col[i] <= cutoff)
      out[k++] = (uint32_t)i;
  return k;
}

/* The set bits of mask, as indices from base. */
static inline size_t emit(unsigned mask, size_t base, uint32_t *out, size_t k,
                          size_t max) {
  while (mask != 0 && k < max) {
    out[k++] = (uint32_t)(base + (size_t)__builtin_ctz(mask));
    mask &= mask - 1;
  }
  return k;
}

#ifdef SIMD_X86
__attribute__((target("avx2"))) size_t shoal__older_avx2(
    const uint64_t *col, size_t n, uint64_t cutoff, uint32_t *out,
    size_t max) {
  /* col[i] <= cutoff  <=>  !(col[i] > cutoff), signed: values < 2^63. */
  const __m256i cut = _mm256_set1_epi64x((long long)cutoff);
  size_t i = 0, k = 0;
  for (; i + 8 <= n && k < max; i += 8) {
    __m256i a = _mm256_loadu_si256((const __m256i *)(const void *)(col + i));
    __m256i b =
        _mm256_loadu_si256((const __m256i *)(const void *)(col + i + 4));
    unsigned gt =
        (unsigned)_mm256_movemask_pd(_mm256_castsi256_pd(
            _mm256_cmpgt_epi64(a, cut))) |
        (unsigned)_mm256_movemask_pd(_mm256_castsi256_pd(
            _mm256_cmpgt_epi64(b, cut)))
            << 4;
    k = emit(~gt & 0xffu, i, out, k, max);
  }
  for (; i < n && k < max; i++)
    if (col[i] <= cutoff)
      out[k++] = (uint32_t)i;
  return k;
}

__attribute__((target("avx512f"))) size_t shoal__older_avx512(
    const uint64_t *col, size_t n, uint64_t cutoff, uint32_t *out,
    size_t max) {
  const __m512i cut = _mm512_set1_epi64((long long)cutoff);
  size_t i = 0, k = 0;
  for (; i + 16 <= n && k < max; i += 16) {
    __mmask8 a = _mm512_cmple_epu64_mask(_mm512_loadu_si512(col + i), cut);
    __mmask8 b =
        _mm512_cmple_epu64_mask(_mm512_loadu_si512(col + i + 8), cut);
    k = emit((unsigned)a | (unsigned)b << 8, i, out, k, max);
  }
  if (i < n && k < max) {
    /* The tail through a masked load: nothing read past the end. */
    unsigned left = (unsigned)(n - i);
    __mmask8 m = (__mmask8)(left >= 8 ? 0xffu : (1u << left) - 1);
    __mmask8 a = _mm512_mask_cmple_epu64_mask(
        m, _mm512_maskz_loadu_epi64(m, col + i), cut);
    k = emit(a, i, out, k, max);
    if (left > 8) {
      __mmask8 m2 = (__mmask8)((1u << (left - 8)) - 1);
      __mmask8 b = _mm512_mask_cmple_epu64_mask(
          m2, _mm512_maskz_loadu_epi64(m2, col + i + 8), cut);
      k = emit(b, i + 8, out, k, max);
    }
  }
  return k;
}

/* Four accumulators of 4 lanes: the loads are independent, so the loop
 * runs at the load ports' rate, not at the adder's latency. */
__attribute__((target("avx2"))) uint64_t shoal__sum_avx2(uint64_t *col,
                                                         size_t n, int clear) {
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
  const __m256i z = _mm256_setzero_si256();
  size_t i = 0;
  uint64_t lanes[4], s;
  for (; i + 16 <= n; i += 16) {
    __m256i *p = (__m256i *)(void *)(col + i);
    a0 = _mm256_add_epi64(a0, _mm256_loadu_si256(p));
    a1 = _mm256_add_epi64(a1, _mm256_loadu_si256(p + 1));
    a2 = _mm256_add_epi64(a2, _mm256_loadu_si256(p + 2));
    a3 = _mm256_add_epi64(a3, _mm256_loadu_si256(p + 3));
    if (clear) {
      _mm256_storeu_si256(p, z);
      _mm256_storeu_si256(p + 1, z);
      _mm256_storeu_si256(p + 2, z);
      _mm256_storeu_si256(p + 3, z);
    }
  }
  for (; i + 4 <= n; i += 4) {
    __m256i *p = (__m256i *)(void *)(col + i);
    a0 = _mm256_add_epi64(a0, _mm256_loadu_si256(p));
    if (clear)
      _mm256_storeu_si256(p, z);
  }
  a0 = _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3));
  _mm256_storeu_si256((__m256i *)(void *)lanes, a0);
  s = lanes[0] + lanes[1] + lanes[2] + lanes[3];
  return s + shoal__sum_scalar(col + i, n - i, clear);
}

/* The tail (under 8 elements) goes through a masked load and store, so no
 * element is read or written twice and none past the end. */
__attribute__((target("avx512f"))) uint64_t shoal__sum_avx512(uint64_t *col,
                                                             size_t n,
                                                             int clear) {
  __m512i a0 = _mm512_setzero_si512(), a1 = a0;
  const __m512i z = _mm512_setzero_si512();
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    a0 = _mm512_add_epi64(a0, _mm512_loadu_si512(col + i));
    a1 = _mm512_add_epi64(a1, _mm512_loadu_si512(col + i + 8));
    if (clear) {
      _mm512_storeu_si512(col + i, z);
      _mm512_storeu_si512(col + i + 8, z);
    }
  }
  for (; i + 8 <= n; i += 8) {
    a0 = _mm512_add_epi64(a0, _mm512_loadu_si512(col + i));
    if (clear)
      _mm512_storeu_si512(col + i, z);
  }
  if (i < n) {
    __mmask8 m = (__mmask8)((1u << (n - i)) - 1);
    a1 = _mm512_add_epi64(a1, _mm512_maskz_loadu_epi64(m, col + i));
    if (clear)
      _mm512_mask_storeu_epi64(col + i, m, z);
  }
  {
    /* Not _mm512_reduce_add_epi64: gcc's adds the lanes as signed long
     * long, which overflows (undefined) where ours wrap. */
    uint64_t lanes[8], s = 0;
    _mm512_storeu_si512(lanes, _mm512_add_epi64(a0, a1));
    for (int k = 0; k < 8; k++)
      s += lanes[k];
    return s;
  }
}
#else
size_t shoal__older_avx2(const uint64_t *col, size_t n, uint64_t cutoff,
                         uint32_t *out, size_t max) {
  return shoal__older_scalar(col, n, cutoff, out, max);
}
size_t shoal__older_avx512(const uint64_t *col, size_t n, uint64_t cutoff,
                           uint32_t *out, size_t max) {
  return shoal__older_scalar(col, n, cutoff, out, max);
}
uint64_t shoal__sum_avx2(uint64_t *col, size_t n, int clear) {
  return shoal__sum_scalar(col, n, clear);
}
uint64_t shoal__sum_avx512(uint64_t *col, size_t n, int clear) {
  return shoal__sum_scalar(col, n, clear);
}
#endif

shoal__sum_fn shoal__simd_pick(int enable, const char **name,
                               shoal__older_fn *older) {
  shoal_cpu_info ci;
  *name = "scalar";
  *older = shoal__older_scalar;
  if (!enable || shoal_cpu_identify(&ci) != SHOAL_OK)
    return shoal__sum_scalar;
#ifdef SIMD_X86
  /* shoal_cpu_identify sets these only when the OS saves the registers
   * (XCR0), as well as when CPUID reports them. */
  if (ci.features & SHOAL_CPU_AVX512F) {
    *name = "avx512";
    *older = shoal__older_avx512;
    return shoal__sum_avx512;
  }
  if (ci.features & SHOAL_CPU_AVX2) {
    *name = "avx2";
    *older = shoal__older_avx2;
    return shoal__sum_avx2;
  }
#endif
  return shoal__sum_scalar;
}
