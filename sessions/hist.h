/* hist.h — the log-linear histogram of times (tick times, packets' waits,
 * hibernation and wake times): 16 sub-buckets per power of two of
 * nanoseconds (HdrHistogram's layout with 4 significant bits: ±3 %).
 * Not synchronized: each has one writer, read under the owner's lock.
 * Internal. */
#ifndef SHOAL_SESSIONS_HIST_H
#define SHOAL_SESSIONS_HIST_H

#include <stdint.h>

#define SHOAL__HIST_SUB 16
#define SHOAL__HIST_BUCKETS (64 * SHOAL__HIST_SUB)
typedef struct shoal__hist {
  uint64_t n, max;
  uint32_t count[SHOAL__HIST_BUCKETS];
} shoal__hist;

void shoal__hist_add(shoal__hist *h, uint64_t v);
/* The value at quantile q (0 … 1), within ±3 %; 0 when empty. */
uint64_t shoal__hist_quantile(const shoal__hist *h, double q);
/* Adds src's counts to dst's. */
void shoal__hist_merge(shoal__hist *dst, const shoal__hist *src);

#endif /* SHOAL_SESSIONS_HIST_H */
