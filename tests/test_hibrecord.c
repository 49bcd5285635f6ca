/* test_hibrecord.c — hibernation records: CRC-32C against its check value
 * and between its two paths; blobs of many sizes (0 B to 1 MiB, random and
 * compressible) survive encode → decode byte for byte; every flipped
 * byte, a truncation, padding, a wrong length and a small buffer are
 * reported, never decompressed blindly. Move records (hibernate/move.h)
 * likewise: a session with packets of every size, timers and requests
 * round trip field for field; every truncation, every flipped bit, a
 * later version, an unknown flag and a trailing byte are refused whole. */
#include <string.h>

#include "hibernate/move.h"
#include "hibernate/record.h"
#include "runtime/common.h"
#include "test_util.h"

static uint64_t rng = 0x243F6A8885A308D3ull;

static uint64_t next(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

static void fill(unsigned char *p, size_t n, int compressible) {
  for (size_t i = 0; i < n; i++)
    p[i] = compressible ? (unsigned char)("host state "[i % 11] + (i / 4096))
                        : (unsigned char)next();
}

static void crc(void **state) {
  static const char check[] = "123456789";
  unsigned char buf[1000];
  (void)state;
  assert_int_equal(shoal__crc32c(0, check, 9), 0xE3069283u);
  assert_int_equal(shoal__crc32c_sw(0, check, 9), 0xE3069283u);
  assert_int_equal(shoal__crc32c(0, NULL, 0), 0);
  fill(buf, sizeof buf, 0);
  for (size_t off = 0; off < 9; off++)
    for (size_t n = 0; n + off <= sizeof buf; n += 37) {
      assert_int_equal(shoal__crc32c(0, buf + off, n),
                       shoal__crc32c_sw(0, buf + off, n));
      /* in pieces as in one go */
      assert_int_equal(shoal__crc32c(shoal__crc32c(0, buf + off, n / 2),
                                     buf + off + n / 2, n - n / 2),
                       shoal__crc32c_sw(0, buf + off, n));
    }
}

static void round_trip(void **state) {
  static const size_t sizes[] = {0, 1, 2, 3, 15, 16, 17, 100, 4095, 4096,
                                 65537, 300000, 1u << 20};
  (void)state;
  for (size_t k = 0; k < SHOAL_ARRAY_LEN(sizes); k++)
    for (int comp = 0; comp < 2; comp++) {
      size_t n = sizes[k], len = 12345, rec_len = 0;
      unsigned char *blob = malloc(n + 1), *back = malloc(n + 1), *rec = NULL;
      fill(blob, n, comp);
      assert_int_equal(shoal__hib_encode(n ? blob : NULL, n, &rec, &rec_len),
                       SHOAL_OK);
      assert_true(rec_len >= SHOAL__HIB_HEADER);
      if (comp && n >= 4096)
        assert_true(rec_len < n / 4); /* it did compress */
      assert_int_equal(shoal__hib_check(rec, rec_len, &len), SHOAL_OK);
      assert_int_equal(len, n);
      assert_int_equal(shoal__hib_decode(rec, rec_len, back, n, &len),
                       SHOAL_OK);
      assert_int_equal(len, n);
      assert_memory_equal(back, blob, n);
      if (n > 0) /* a buffer one byte short */
        assert_int_equal(shoal__hib_decode(rec, rec_len, back, n - 1, &len),
                         SHOAL_ELIMIT);
      shoal__free(rec);
      free(blob);
      free(back);
    }
}

static void corruption(void **state) {
  const size_t n = 5000;
  unsigned char *blob = malloc(n), *back = malloc(n), *rec = NULL, *bad;
  size_t rec_len, len;
  (void)state;
  fill(blob, n, 1);
  assert_int_equal(shoal__hib_encode(blob, n, &rec, &rec_len), SHOAL_OK);
  bad = malloc(rec_len + 8);
  /* every byte, each of several flips */
  for (size_t i = 0; i < rec_len; i++)
    for (unsigned bit = 1; bit < 256; bit <<= 1) {
      memcpy(bad, rec, rec_len);
      bad[i] ^= (unsigned char)bit;
      memset(back, 0xAA, n);
      assert_int_equal(shoal__hib_decode(bad, rec_len, back, n, &len),
                       SHOAL_EFORMAT);
    }
  /* truncated by any amount, padded, empty */
  for (size_t cut = 1; cut <= rec_len; cut += (cut < 40 ? 1 : 97))
    assert_int_equal(shoal__hib_decode(rec, rec_len - cut, back, n, &len),
                     SHOAL_EFORMAT);
  memcpy(bad, rec, rec_len);
  bad[rec_len] = 0;
  assert_int_equal(shoal__hib_decode(bad, rec_len + 1, back, n, &len),
                   SHOAL_EFORMAT);
  assert_int_equal(shoal__hib_check(NULL, 0, &len), SHOAL_EFORMAT);
  /* bad arguments */
  assert_int_equal(shoal__hib_encode(NULL, 5, &rec, &rec_len), SHOAL_EINVAL);
  assert_int_equal(shoal__hib_encode(blob, n, NULL, &rec_len), SHOAL_EINVAL);
  assert_int_equal(shoal__hib_decode(rec, rec_len, NULL, 5, &len),
                   SHOAL_EINVAL);
  shoal__free(rec);
  free(bad);
  free(blob);
  free(back);
}

/* ---- move records ------------------------------------------------------- */

#define MV_PK 7
#define MV_TM 3
#define MV_RQ 2

/* A move of session 4242: a 20 000-byte blob, packets of 0, 1, 96, 97,
 * 4000, 70 000 and 3 bytes, three timers, two requests; its record. */
static unsigned char *mv_record(unsigned char *blob, size_t blob_len,
                                unsigned char *data, shoal__mv *m,
                                shoal__mv_packet *pk, shoal__mv_timer *tm,
                                shoal__mv_request *rq, size_t *len) {
  static const uint32_t sizes[MV_PK] = {0, 1, 96, 97, 4000, 70000, 3};
  size_t off = 0, cap;
  unsigned char *rec;
  memset(m, 0, sizeof *m);
  m->s = (shoal__mv_session){4242, 7, 9, 3, 11};
  fill(blob, blob_len, 1);
  m->blob = blob;
  m->blob_len = blob_len;
  fill(data, 80000, 0);
  for (int k = 0; k < MV_PK; k++) {
    pk[k] = (shoal__mv_packet){(uint16_t)(100 + k), (uint16_t)k, sizes[k],
                               data + off, 1000u * (uint64_t)k};
    off += sizes[k] % 1000;
  }
  for (int k = 0; k < MV_TM; k++)
    tm[k] = (shoal__mv_timer){(uint16_t)(200 + k), 0, (uint32_t)(16 * k),
                              data + 7 * k, 1500u + (uint64_t)k,
                              k == 1 ? 250u : 0u};
  for (int k = 0; k < MV_RQ; k++) {
    memset(&rq[k], 0, sizeof rq[k]);
    rq[k].to = (uint64_t)(k + 1) << 40 | 5u;
    rq[k].corr = (uint32_t)(77 + k);
    rq[k].reply_opcode = (uint16_t)(300 + k);
    rq[k].remaining_ms = 900u * (uint64_t)(k + 1);
    rq[k].type = (uint32_t)(0xA0 + k);
    rq[k].size = 12;
    rq[k].priority = (uint8_t)k;
    rq[k].flags = 1;
    memcpy(rq[k].payload, "price of ore", 12);
  }
  m->pk = pk;
  m->npk = MV_PK;
  m->tm = tm;
  m->ntm = MV_TM;
  m->rq = rq;
  m->nrq = MV_RQ;
  cap = shoal__mv_bound(m);
  assert_true(cap > 80000);
  rec = malloc(cap);
  assert_int_equal(shoal__mv_encode(m, rec, cap, len), SHOAL_OK);
  assert_true(*len <= cap);
  return rec;
}

static void move_round_trip(void **state) {
  static unsigned char blob[20000], data[80000], back[20000];
  shoal__mv m, out;
  shoal__mv_packet pk[MV_PK], opk[MV_PK];
  shoal__mv_timer tm[MV_TM], otm[MV_TM];
  shoal__mv_request rq[MV_RQ], orq[MV_RQ];
  shoal__mv_shape shape;
  size_t len;
  unsigned char *rec = mv_record(blob, sizeof blob, data, &m, pk, tm, rq,
                                 &len);
  (void)state;
  assert_int_equal(shoal__mv_check(rec, len, &shape), SHOAL_OK);
  assert_int_equal(shape.npk, MV_PK);
  assert_int_equal(shape.ntm, MV_TM);
  assert_int_equal(shape.nrq, MV_RQ);
  assert_int_equal(shape.blob_len, sizeof blob);
  memset(&out, 0, sizeof out);
  out.pk = opk;
  out.npk = MV_PK;
  out.tm = otm;
  out.ntm = MV_TM;
  out.rq = orq;
  out.nrq = MV_RQ;
  assert_int_equal(shoal__mv_decode(rec, len, &out, back, sizeof back - 1),
                   SHOAL_EINVAL); /* no room for the host's bytes */
  assert_int_equal(shoal__mv_decode(rec, len, &out, back, sizeof back),
                   SHOAL_OK);
  assert_memory_equal(&out.s, &m.s, sizeof m.s);
  assert_int_equal(out.blob_len, sizeof blob);
  assert_memory_equal(back, blob, sizeof blob);
  for (int k = 0; k < MV_PK; k++) {
    assert_int_equal(opk[k].opcode, pk[k].opcode);
    assert_int_equal(opk[k].flags, pk[k].flags);
    assert_int_equal(opk[k].len, pk[k].len);
    assert_int_equal(opk[k].waited_ns, pk[k].waited_ns);
    if (pk[k].len > 0)
      assert_memory_equal(opk[k].data, pk[k].data, pk[k].len);
  }
  for (int k = 0; k < MV_TM; k++) {
    assert_int_equal(otm[k].opcode, tm[k].opcode);
    assert_int_equal(otm[k].len, tm[k].len);
    assert_int_equal(otm[k].remaining_ms, tm[k].remaining_ms);
    assert_int_equal(otm[k].interval_ms, tm[k].interval_ms);
    if (tm[k].len > 0)
      assert_memory_equal(otm[k].data, tm[k].data, tm[k].len);
  }
  for (int k = 0; k < MV_RQ; k++) {
    assert_int_equal(orq[k].to, rq[k].to);
    assert_int_equal(orq[k].corr, rq[k].corr);
    assert_int_equal(orq[k].reply_opcode, rq[k].reply_opcode);
    assert_int_equal(orq[k].remaining_ms, rq[k].remaining_ms);
    assert_int_equal(orq[k].type, rq[k].type);
    assert_int_equal(orq[k].size, rq[k].size);
    assert_int_equal(orq[k].priority, rq[k].priority);
    assert_int_equal(orq[k].flags, rq[k].flags);
    assert_memory_equal(orq[k].payload, rq[k].payload, SHOAL__MV_MSG_INLINE);
  }
  /* an empty session: no bytes, no packets */
  free(rec);
  m.blob_len = 0;
  m.blob = NULL;
  m.npk = m.ntm = m.nrq = 0;
  rec = malloc(shoal__mv_bound(&m));
  assert_int_equal(shoal__mv_encode(&m, rec, shoal__mv_bound(&m), &len),
                   SHOAL_OK);
  assert_int_equal(shoal__mv_check(rec, len, &shape), SHOAL_OK);
  assert_int_equal(shape.blob_len + shape.npk + shape.ntm + shape.nrq, 0);
  /* past the limits, or a buffer too small: refused */
  m.npk = SHOAL__MV_PACKETS_MAX + 1;
  assert_int_equal(shoal__mv_bound(&m), 0);
  m.npk = 0;
  assert_int_equal(shoal__mv_encode(&m, rec, len - 1, &len), SHOAL_EINVAL);
  free(rec);
}

/* Sets the header's CRC again, as a forger would (so that the field
 * checks, not the checksum, must refuse the record). */
static void reseal(unsigned char *rec, size_t len) {
  uint32_t c = shoal__crc32c(shoal__crc32c(0, rec, 12), rec + 16, len - 16);
  for (int k = 0; k < 4; k++)
    rec[12 + k] = (unsigned char)(c >> (8 * k));
}

static void move_corruption(void **state) {
  static unsigned char blob[20000], data[80000];
  shoal__mv m;
  shoal__mv_packet pk[MV_PK];
  shoal__mv_timer tm[MV_TM];
  shoal__mv_request rq[MV_RQ];
  shoal__mv_shape shape;
  size_t len;
  unsigned char *rec = mv_record(blob, sizeof blob, data, &m, pk, tm, rq,
                                 &len);
  unsigned char *bad = malloc(len + 1);
  (void)state;
  /* every truncation */
  for (size_t n = 0; n < len; n++)
    assert_int_equal(shoal__mv_check(rec, n, &shape), SHOAL_EFORMAT);
  /* every bit of the header and the session, then bits spread over the
   * rest */
  for (size_t bit = 0; bit < 8 * len; bit += bit < 8 * 64 ? 1 : 97) {
    memcpy(bad, rec, len);
    bad[bit / 8] ^= (unsigned char)(1u << (bit % 8));
    assert_int_equal(shoal__mv_check(bad, len, &shape), SHOAL_EFORMAT);
  }
  /* a later version and an unknown flag, resealed: refused all the same */
  memcpy(bad, rec, len);
  bad[4] = SHOAL__MV_VERSION + 1;
  reseal(bad, len);
  assert_int_equal(shoal__mv_check(bad, len, &shape), SHOAL_EFORMAT);
  memcpy(bad, rec, len);
  bad[6] = 1;
  reseal(bad, len);
  assert_int_equal(shoal__mv_check(bad, len, &shape), SHOAL_EFORMAT);
  /* a packet count past what follows, resealed: the walk finds the end
   * (the blob record's length is at 40, its bytes from 44) */
  memcpy(bad, rec, len);
  {
    uint32_t blen = (uint32_t)bad[40] | (uint32_t)bad[41] << 8 |
                    (uint32_t)bad[42] << 16 | (uint32_t)bad[43] << 24;
    size_t npk_at = 44 + blen;
    bad[npk_at] = 0xff;
    bad[npk_at + 1] = 0xff;
    reseal(bad, len);
    assert_int_equal(shoal__mv_check(bad, len, &shape), SHOAL_EFORMAT);
  }
  /* a trailing byte, with the length and CRC made to match */
  memcpy(bad, rec, len);
  bad[len] = 0;
  bad[8] = (unsigned char)(len + 1);
  bad[9] = (unsigned char)((len + 1) >> 8);
  bad[10] = (unsigned char)((len + 1) >> 16);
  bad[11] = (unsigned char)((len + 1) >> 24);
  reseal(bad, len + 1);
  assert_int_equal(shoal__mv_check(bad, len + 1, &shape), SHOAL_EFORMAT);
  /* the original still passes */
  assert_int_equal(shoal__mv_check(rec, len, &shape), SHOAL_OK);
  assert_int_equal(shoal__mv_check(NULL, 0, &shape), SHOAL_EFORMAT);
  free(bad);
  free(rec);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(crc),
    cmocka_unit_test(round_trip),
    cmocka_unit_test(corruption),
    cmocka_unit_test(move_round_trip),
    cmocka_unit_test(move_corruption),
  };
  return test_run("hibrecord", tests, SHOAL_ARRAY_LEN(tests));
}
