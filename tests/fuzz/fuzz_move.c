/* fuzz_move.c — libFuzzer target: the move record's decoder
 * (hibernate/move.h), under AddressSanitizer and UBSan. The first byte
 * picks the mode: even, the rest is a record as it comes; odd, the rest
 * shapes a move (the host's bytes, packets, timers, requests) that is
 * encoded, then damaged at the place the second and third bytes say (or
 * left whole when they say so), so that the search reaches past the CRC.
 * Whatever the bytes: check and decode agree, a whole record decodes to
 * the move it was made from, and what decodes encodes again to a record
 * that decodes to the same fields. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hibernate/move.h"
#include "runtime/common.h"

#define MAXN 16

typedef struct dec {
  shoal__mv m;
  shoal__mv_packet pk[MAXN];
  shoal__mv_timer tm[MAXN];
  shoal__mv_request rq[MAXN];
  unsigned char *blob;
} dec;

/* Decodes rec into d (arrays sized from the check); 0 when it did. */
static int decode(const unsigned char *rec, size_t n, dec *d) {
  shoal__mv_shape shape;
  if (shoal__mv_check(rec, n, &shape) != SHOAL_OK)
    return -1;
  if (shape.npk > MAXN || shape.ntm > MAXN || shape.nrq > MAXN ||
      shape.blob_len > (1u << 20))
    return 1; /* valid but large: not worth the memory here */
  memset(&d->m, 0, sizeof d->m);
  d->m.pk = d->pk;
  d->m.npk = shape.npk;
  d->m.tm = d->tm;
  d->m.ntm = shape.ntm;
  d->m.rq = d->rq;
  d->m.nrq = shape.nrq;
  d->blob = malloc(shape.blob_len + 1);
  if (d->blob == NULL)
    return 1;
  if (shoal__mv_decode(rec, n, &d->m, d->blob, shape.blob_len) != SHOAL_OK)
    abort(); /* check said it was whole */
  return 0;
}

static int same(const shoal__mv *a, const shoal__mv *b) {
  if (memcmp(&a->s, &b->s, sizeof a->s) != 0 || a->blob_len != b->blob_len ||
      (a->blob_len > 0 && memcmp(a->blob, b->blob, a->blob_len) != 0) ||
      a->npk != b->npk || a->ntm != b->ntm || a->nrq != b->nrq)
    return 0;
  for (uint32_t k = 0; k < a->npk; k++)
    if (a->pk[k].opcode != b->pk[k].opcode || a->pk[k].len != b->pk[k].len ||
        a->pk[k].flags != b->pk[k].flags ||
        a->pk[k].waited_ns != b->pk[k].waited_ns ||
        (a->pk[k].len > 0 &&
         memcmp(a->pk[k].data, b->pk[k].data, a->pk[k].len) != 0))
      return 0;
  for (uint32_t k = 0; k < a->ntm; k++)
    if (a->tm[k].opcode != b->tm[k].opcode || a->tm[k].len != b->tm[k].len ||
        a->tm[k].remaining_ms != b->tm[k].remaining_ms ||
        a->tm[k].interval_ms != b->tm[k].interval_ms ||
        (a->tm[k].len > 0 &&
         memcmp(a->tm[k].data, b->tm[k].data, a->tm[k].len) != 0))
      return 0;
  for (uint32_t k = 0; k < a->nrq; k++)
    if (a->rq[k].to != b->rq[k].to || a->rq[k].corr != b->rq[k].corr ||
        a->rq[k].reply_opcode != b->rq[k].reply_opcode ||
        a->rq[k].remaining_ms != b->rq[k].remaining_ms ||
        a->rq[k].type != b->rq[k].type || a->rq[k].size != b->rq[k].size ||
        a->rq[k].priority != b->rq[k].priority ||
        a->rq[k].flags != b->rq[k].flags ||
        memcmp(a->rq[k].payload, b->rq[k].payload, SHOAL__MV_MSG_INLINE) != 0)
      return 0;
  return 1;
}

/* Encodes m; the record (malloc'd) and its length, or NULL. */
static unsigned char *encode(const shoal__mv *m, size_t *len) {
  size_t cap = shoal__mv_bound(m);
  unsigned char *rec = cap > 0 ? malloc(cap) : NULL;
  if (rec != NULL && shoal__mv_encode(m, rec, cap, len) != SHOAL_OK)
    abort(); /* within its bound */
  return rec;
}

static void from_record(const unsigned char *rec, size_t n) {
  dec d, e;
  size_t len;
  unsigned char *again;
  if (decode(rec, n, &d) != 0)
    return;
  /* again as it came (the host's bytes' record copied), then with the
   * bytes compressed anew */
  for (int fresh = 0; fresh < 2; fresh++) {
    shoal__mv m = d.m;
    if (fresh)
      m.blob_rec = NULL;
    if ((again = encode(&m, &len)) == NULL)
      abort(); /* what decoded must encode */
    if (decode(again, len, &e) != 0 || !same(&d.m, &e.m))
      abort();
    free(e.blob);
    free(again);
  }
  /* decoded with the host's bytes left compressed, as an import does */
  {
    shoal__mv m = d.m;
    if (shoal__mv_decode(rec, n, &m, NULL, 0) != SHOAL_OK ||
        m.blob_len != d.m.blob_len || m.blob_rec == NULL)
      abort();
  }
  free(d.blob);
}

/* A move shaped by the bytes: the session from the first 20, then a count
 * of each part, the rest shared out as data. */
static void from_shape(const unsigned char *p, size_t n) {
  shoal__mv m;
  shoal__mv_packet pk[MAXN];
  shoal__mv_timer tm[MAXN];
  shoal__mv_request rq[MAXN];
  unsigned char *rec;
  size_t len, at, cut;
  dec d;
  if (n < 26)
    return;
  memset(&m, 0, sizeof m);
  memcpy(&m.s, p + 2, sizeof m.s);
  m.s.id |= 1; /* a record needs an id and an interval */
  m.s.interval |= 1;
  m.npk = p[22] % MAXN;
  m.ntm = p[23] % MAXN;
  m.nrq = p[24] % MAXN;
  m.blob = p + 25;
  m.blob_len = (n - 25) / 2;
  for (uint32_t k = 0; k < m.npk; k++)
    pk[k] = (shoal__mv_packet){(uint16_t)k, (uint16_t)(k * 3),
                               (uint32_t)((n - 25) / (k + 2)), p + 25,
                               (uint64_t)k << 33};
  for (uint32_t k = 0; k < m.ntm; k++)
    tm[k] = (shoal__mv_timer){(uint16_t)(k + 9), 0,
                              (uint32_t)((n - 25) / (k + 3)), p + 25,
                              (uint64_t)k * 1000, k % 2 ? 50u : 0u};
  for (uint32_t k = 0; k < m.nrq; k++) {
    memset(&rq[k], 0, sizeof rq[k]);
    rq[k].to = (uint64_t)p[k % n] << 7;
    rq[k].corr = k;
    rq[k].reply_opcode = (uint16_t)k;
    rq[k].remaining_ms = (uint64_t)k * 7;
    rq[k].type = p[(k + 3) % n];
    rq[k].size = k;
    rq[k].priority = (uint8_t)k;
    memcpy(rq[k].payload, p, n < SHOAL__MV_MSG_INLINE ? n
                                                      : SHOAL__MV_MSG_INLINE);
  }
  m.pk = pk;
  m.tm = tm;
  m.rq = rq;
  if ((rec = encode(&m, &len)) == NULL)
    return;
  at = ((size_t)p[0] << 8 | p[1]) % (len + 1);
  if (at == len) { /* whole: it must come back as it was made */
    if (decode(rec, len, &d) != 0 || !same(&m, &d.m))
      abort();
    free(d.blob);
  } else if (p[1] & 1) { /* truncated: refused */
    cut = at;
    if (decode(rec, cut, &d) != -1)
      abort();
  } else { /* a bit flipped: refused (CRC-32C finds every 1-bit error) */
    rec[at] ^= (unsigned char)(1u << (p[0] % 8));
    if (decode(rec, len, &d) >= 0)
      abort();
  }
  free(rec);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  if (data[0] & 1)
    from_shape(data + 1, size - 1);
  else
    from_record(data + 1, size - 1);
  return 0;
}
