/* fuzz_record.c — libFuzzer target: the hibernation record decoder, under
 * AddressSanitizer and UBSan. The first byte picks the mode: even, the
 * rest is a record as it comes; odd, the rest is a blob that is encoded
 * and then damaged at the place and in the way the second and third bytes
 * say (or left whole when they say so), so that the search reaches past
 * the CRC. Whatever the bytes: check and decode agree, a buffer too small
 * is refused, a record that decodes gives back a blob that encodes and
 * decodes to the same bytes, and a whole record gives back the blob. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hibernate/record.h"
#include "runtime/common.h"

static void check_record(const unsigned char *rec, size_t size,
                         const unsigned char *want, size_t want_len) {
  size_t raw = 0, len = 0, rec_len = 0, len2 = 0;
  unsigned char *blob, *again = NULL, *back;
  unsigned char small[64];
  if (shoal__hib_check(rec, size, &raw) != SHOAL_OK) {
    if (want != NULL)
      abort(); /* a whole record was refused */
    if (shoal__hib_decode(rec, size, small, sizeof small, &len) == SHOAL_OK)
      abort(); /* check refused what decode accepts */
    return;
  }
  if (raw > (1u << 22) || (blob = malloc(raw + 1)) == NULL)
    return; /* a valid record of a large blob: not worth the memory */
  if (shoal__hib_decode(rec, size, blob, raw, &len) != SHOAL_OK || len != raw)
    abort(); /* check said it was whole */
  if (want != NULL && (len != want_len || memcmp(blob, want, len) != 0))
    abort(); /* a whole record gave back other bytes */
  if (raw > 0 &&
      shoal__hib_decode(rec, size, blob, raw - 1, &len2) != SHOAL_ELIMIT)
    abort(); /* a buffer too small must be refused */
  if (shoal__hib_encode(blob, raw, &again, &rec_len) == SHOAL_OK) {
    if ((back = malloc(raw + 1)) != NULL) {
      if (shoal__hib_decode(again, rec_len, back, raw, &len2) != SHOAL_OK ||
          len2 != raw || memcmp(back, blob, raw) != 0)
        abort();
      free(back);
    }
    shoal__free(again);
  }
  free(blob);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  unsigned char *rec = NULL;
  size_t rec_len = 0, at;
  if (size < 3)
    return 0;
  if ((data[0] & 1) == 0) {
    check_record(data + 1, size - 1, NULL, 0);
    return 0;
  }
  if (shoal__hib_encode(data + 3, size - 3, &rec, &rec_len) != SHOAL_OK)
    return 0;
  at = data[1] % (rec_len + 1);
  switch (data[2] & 3) {
  case 0: /* whole */
    check_record(rec, rec_len, data + 3, size - 3);
    break;
  case 1: /* one byte changed */
    if (at < rec_len)
      rec[at] ^= (unsigned char)(data[2] | 1);
    check_record(rec, rec_len, at < rec_len ? NULL : data + 3, size - 3);
    break;
  default: /* cut short */
    check_record(rec, at < rec_len ? at : rec_len, at < rec_len ? NULL
                                                                 : data + 3,
                 size - 3);
    break;
  }
  shoal__free(rec);
  return 0;
}
