/* test_hibrecord.c — hibernation records: CRC-32C against its check value
 * and between its two paths; blobs of many sizes (0 B to 1 MiB, random and
 * compressible) survive encode → decode byte for byte; every flipped
 * byte, a truncation, padding, a wrong length and a small buffer are
 * reported, never decompressed blindly. */
#include <string.h>

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

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(crc),
    cmocka_unit_test(round_trip),
    cmocka_unit_test(corruption),
  };
  return test_run("hibrecord", tests, SHOAL_ARRAY_LEN(tests));
}
