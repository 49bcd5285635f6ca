/* hist.c — the log-linear histogram (hist.h). */
#include "sessions/hist.h"

/* Values below 16 have a bucket each; above, bucket = (exponent - 3) * 16
 * + the next 4 bits below the leading one. */
static unsigned hist_bucket(uint64_t v) {
  unsigned e;
  if (v < SHOAL__HIST_SUB)
    return (unsigned)v;
  e = 63u - (unsigned)__builtin_clzll(v);
  return (e - 3u) * SHOAL__HIST_SUB + (unsigned)((v >> (e - 4)) & 15u);
}

/* The middle of a bucket's range. */
static uint64_t hist_value(unsigned b) {
  unsigned e;
  uint64_t lo, width;
  if (b < SHOAL__HIST_SUB)
    return b;
  e = b / SHOAL__HIST_SUB + 3u;
  width = (uint64_t)1 << (e - 4);
  lo = ((uint64_t)1 << e) + (uint64_t)(b % SHOAL__HIST_SUB) * width;
  return lo + width / 2;
}

void shoal__hist_add(shoal__hist *h, uint64_t v) {
  h->count[hist_bucket(v)]++;
  h->n++;
  if (v > h->max)
    h->max = v;
}

uint64_t shoal__hist_quantile(const shoal__hist *h, double q) {
  uint64_t rank, seen = 0;
  if (h->n == 0)
    return 0;
  rank = (uint64_t)(q * (double)h->n);
  if (rank >= h->n)
    rank = h->n - 1;
  for (unsigned b = 0; b < SHOAL__HIST_BUCKETS; b++) {
    seen += h->count[b];
    if (seen > rank) {
      uint64_t v = hist_value(b);
      return v < h->max ? v : h->max;
    }
  }
  return h->max;
}

void shoal__hist_merge(shoal__hist *dst, const shoal__hist *src) {
  for (unsigned b = 0; b < SHOAL__HIST_BUCKETS; b++)
    dst->count[b] += src->count[b];
  dst->n += src->n;
  if (src->max > dst->max)
    dst->max = src->max;
}
