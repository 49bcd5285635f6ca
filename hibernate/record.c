/* record.c — a hibernated session's blob: LZ4 compression behind a header
 * with lengths and a CRC-32C (layout in record.h). */
#include "hibernate/record.h"

#include <pthread.h>
#include <string.h>

#include <lz4.h>

#include "runtime/common.h"

#define MAGIC 0x52424853u /* "SHBR" read little-endian */

/* ---- CRC-32C ------------------------------------------------------------ */

/* Slicing-by-8 (Kounavis and Berry, "A Systematic Approach to Building
 * High Performance Software-Based CRC Generators", ISCC 2005): eight
 * tables of 256 entries, one step per 8 bytes. */
static uint32_t crc_table[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void) {
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++)
      c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
    crc_table[0][i] = c;
  }
  for (uint32_t i = 0; i < 256; i++)
    for (int t = 1; t < 8; t++)
      crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^
                        crc_table[0][crc_table[t - 1][i] & 0xffu];
}

uint32_t shoal__crc32c_sw(uint32_t crc, const void *p_, size_t n) {
  const unsigned char *p = p_;
  pthread_once(&crc_once, crc_init);
  crc = ~crc;
  while (n >= 8) {
    uint32_t lo, hi;
    memcpy(&lo, p, 4);
    memcpy(&hi, p + 4, 4);
    lo ^= crc;
    crc = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^
          crc_table[5][(lo >> 16) & 0xff] ^ crc_table[4][lo >> 24] ^
          crc_table[3][hi & 0xff] ^ crc_table[2][(hi >> 8) & 0xff] ^
          crc_table[1][(hi >> 16) & 0xff] ^ crc_table[0][hi >> 24];
    p += 8;
    n -= 8;
  }
  while (n-- > 0)
    crc = (crc >> 8) ^ crc_table[0][(crc ^ *p++) & 0xffu];
  return ~crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc32c_hw(uint32_t crc,
                                                            const void *p_,
                                                            size_t n) {
  const unsigned char *p = p_;
  uint64_t c = ~crc;
  while (n >= 8) {
    uint64_t v;
    memcpy(&v, p, 8);
    c = __builtin_ia32_crc32di(c, v);
    p += 8;
    n -= 8;
  }
  while (n-- > 0)
    c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
  return ~(uint32_t)c;
}
#endif

uint32_t shoal__crc32c(uint32_t crc, const void *p, size_t n) {
#if defined(__x86_64__)
  if (__builtin_cpu_supports("sse4.2"))
    return crc32c_hw(crc, p, n);
#endif
  return shoal__crc32c_sw(crc, p, n);
}

/* ---- records ------------------------------------------------------------ */

static void put32(unsigned char *p, uint32_t v) {
  for (int i = 0; i < 4; i++)
    p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
         (uint32_t)p[3] << 24;
}

static uint32_t record_crc(const unsigned char *rec, size_t comp_len) {
  uint32_t crc = shoal__crc32c(0, rec, 12);
  return shoal__crc32c(crc, rec + SHOAL__HIB_HEADER, comp_len);
}

size_t shoal__hib_bound(size_t len) {
  return len > SHOAL__HIB_BLOB_MAX
             ? 0
             : SHOAL__HIB_HEADER + (size_t)LZ4_compressBound((int)len);
}

int shoal__hib_encode_into(const void *blob, size_t len, unsigned char *rec,
                           size_t cap, size_t *out_len) {
  int comp = 0;
  if (rec == NULL || out_len == NULL || len > SHOAL__HIB_BLOB_MAX ||
      (blob == NULL && len > 0) || cap < shoal__hib_bound(len))
    return SHOAL_EINVAL;
  if (len > 0) {
    comp = LZ4_compress_default(blob, (char *)rec + SHOAL__HIB_HEADER,
                                (int)len, (int)(cap - SHOAL__HIB_HEADER));
    if (comp <= 0) /* cannot happen with the bound; refuse, not guess */
      return SHOAL_EINVAL;
  }
  put32(rec, MAGIC);
  put32(rec + 4, (uint32_t)len);
  put32(rec + 8, (uint32_t)comp);
  put32(rec + 12, record_crc(rec, (size_t)comp));
  *out_len = SHOAL__HIB_HEADER + (size_t)comp;
  return SHOAL_OK;
}

int shoal__hib_encode(const void *blob, size_t len, unsigned char **out,
                      size_t *out_len) {
  unsigned char *rec, *small;
  size_t bound = shoal__hib_bound(len), n;
  int rc;
  if (out == NULL || out_len == NULL || bound == 0 ||
      (blob == NULL && len > 0))
    return SHOAL_EINVAL;
  if ((rec = shoal__malloc(bound)) == NULL)
    return SHOAL_ENOMEM;
  if ((rc = shoal__hib_encode_into(blob, len, rec, bound, &n)) != SHOAL_OK) {
    shoal__free(rec);
    return rc;
  }
  /* Keep only what the record uses. */
  small = shoal__realloc(rec, n);
  *out = small != NULL ? small : rec;
  *out_len = n;
  return SHOAL_OK;
}

int shoal__hib_check(const unsigned char *rec, size_t rec_len,
                     size_t *raw_len) {
  uint32_t raw, comp;
  if (rec == NULL || rec_len < SHOAL__HIB_HEADER || get32(rec) != MAGIC)
    return SHOAL_EFORMAT;
  raw = get32(rec + 4);
  comp = get32(rec + 8);
  /* The lengths first: a truncated or padded record, or one that claims
   * more than LZ4 could have made of raw_len bytes, fails here. */
  if (comp != rec_len - SHOAL__HIB_HEADER || raw > SHOAL__HIB_BLOB_MAX ||
      (raw == 0) != (comp == 0) ||
      comp > (uint32_t)LZ4_compressBound((int)raw))
    return SHOAL_EFORMAT;
  if (record_crc(rec, comp) != get32(rec + 12))
    return SHOAL_EFORMAT;
  if (raw_len != NULL)
    *raw_len = raw;
  return SHOAL_OK;
}

int shoal__hib_decode(const unsigned char *rec, size_t rec_len, void *blob,
                      size_t cap, size_t *len) {
  size_t raw;
  int rc, got;
  if (len == NULL || (blob == NULL && cap > 0))
    return SHOAL_EINVAL;
  if ((rc = shoal__hib_check(rec, rec_len, &raw)) != SHOAL_OK)
    return rc;
  if (raw > cap)
    return SHOAL_ELIMIT;
  if (raw > 0) {
    got = LZ4_decompress_safe((const char *)rec + SHOAL__HIB_HEADER, blob,
                              (int)(rec_len - SHOAL__HIB_HEADER), (int)raw);
    if (got < 0 || (size_t)got != raw)
      return SHOAL_EFORMAT;
  }
  *len = raw;
  return SHOAL_OK;
}
