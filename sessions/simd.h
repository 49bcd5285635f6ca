/* simd.h — sums over the per-session metric columns (uint64), optionally
 * clearing them, with a scalar path and AVX2 / AVX-512 paths picked at run
 * time from libcpuid's feature flags (shoal_cpu_identify). Every path
 * gives the same result (sums wrap modulo 2^64 alike). Internal. */
#ifndef SHOAL_SESSIONS_SIMD_H
#define SHOAL_SESSIONS_SIMD_H

#include <stddef.h>
#include <stdint.h>

/* Returns col[0] + … + col[n-1]; with clear, also sets them to 0. col needs
 * no particular alignment. */
typedef uint64_t (*shoal__sum_fn)(uint64_t *col, size_t n, int clear);

uint64_t shoal__sum_scalar(uint64_t *col, size_t n, int clear);
/* Defined on x86-64 only; call only when the CPU and the OS support them. */
uint64_t shoal__sum_avx2(uint64_t *col, size_t n, int clear);
uint64_t shoal__sum_avx512(uint64_t *col, size_t n, int clear);

/* Candidates for hibernation: writes the indices i < n with
 * col[i] <= cutoff, in increasing order, to out[0 … max) and returns how
 * many (at most max). A compare-and-mask over the last-activity column:
 * 8 (AVX-512) or 4 (AVX2) values per compare, and only the set bits of
 * the mask are visited. Values must be below 2^63 (AVX2 compares signed). */
typedef size_t (*shoal__older_fn)(const uint64_t *col, size_t n,
                                  uint64_t cutoff, uint32_t *out, size_t max);
size_t shoal__older_scalar(const uint64_t *col, size_t n, uint64_t cutoff,
                           uint32_t *out, size_t max);
size_t shoal__older_avx2(const uint64_t *col, size_t n, uint64_t cutoff,
                         uint32_t *out, size_t max);
size_t shoal__older_avx512(const uint64_t *col, size_t n, uint64_t cutoff,
                           uint32_t *out, size_t max);

/* The best path this CPU offers ("avx512", "avx2", "scalar" in *name), or
 * the scalar one when enable is 0; *older gets the same path's finder. */
shoal__sum_fn shoal__simd_pick(int enable, const char **name,
                               shoal__older_fn *older);

#endif /* SHOAL_SESSIONS_SIMD_H */
