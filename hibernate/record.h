/* record.h — the host's blob of a hibernated session as shoal keeps it:
 * compressed with LZ4 (Debian's liblz4), behind a header that carries
 * the lengths and a CRC-32C over the header and the compressed bytes.
 * Internal to the library.
 *
 *   offset  size  field
 *   0       4     magic "SHBR"
 *   4       4     raw_len: the blob's bytes
 *   8       4     comp_len: the compressed bytes that follow the header
 *   12      4     crc: CRC-32C of bytes 0 … 11 and the comp_len bytes
 *   16      …     LZ4 block
 *
 * Fields are little-endian. Decoding checks the length, the magic and the
 * checksum before LZ4 reads a byte, then decompresses with
 * LZ4_decompress_safe into exactly raw_len bytes: a corrupt or truncated
 * record is an error, never decompressed blindly. */
#ifndef SHOAL_HIBERNATE_RECORD_H
#define SHOAL_HIBERNATE_RECORD_H

#include <stddef.h>
#include <stdint.h>

#define SHOAL__HIB_HEADER 16u
/* The largest blob: LZ4's own input limit, rounded down. */
#define SHOAL__HIB_BLOB_MAX 0x7E000000u

/* CRC-32C (Castagnoli), reflected, as iSCSI and ext4 use it:
 * crc32c("123456789") = 0xE3069283. SSE4.2's crc32 instruction where the
 * CPU has it, else slicing-by-8 tables; both give the same result. Start
 * from 0. Any thread. */
uint32_t shoal__crc32c(uint32_t crc, const void *p, size_t n);
/* The table path alone (tests compare the two). */
uint32_t shoal__crc32c_sw(uint32_t crc, const void *p, size_t n);

/* Encodes len bytes of blob (len ≤ SHOAL__HIB_BLOB_MAX; blob may be NULL
 * when len is 0) into a record allocated with shoal__malloc: *out, of
 * *out_len bytes. Errors: SHOAL_EINVAL, SHOAL_ENOMEM. Any thread. */
int shoal__hib_encode(const void *blob, size_t len, unsigned char **out,
                      size_t *out_len);
/* The most bytes a record of a len-byte blob takes; 0 past the limit. */
size_t shoal__hib_bound(size_t len);
/* Encodes into rec[0 … cap), cap ≥ shoal__hib_bound(len); *out_len gets
 * the record's bytes. SHOAL_EINVAL. Any thread. */
int shoal__hib_encode_into(const void *blob, size_t len, unsigned char *rec,
                           size_t cap, size_t *out_len);
/* The blob's length that a record claims, after checking the record
 * whole (as decode does). SHOAL_EFORMAT when it is corrupt or truncated. */
int shoal__hib_check(const unsigned char *rec, size_t rec_len,
                     size_t *raw_len);
/* Decodes a record into blob[0 … cap): *len receives raw_len. Errors:
 * SHOAL_EFORMAT (corrupt, truncated, or LZ4 data that does not decode to
 * exactly raw_len bytes), SHOAL_ELIMIT (cap < raw_len), SHOAL_EINVAL. Any
 * thread. */
int shoal__hib_decode(const unsigned char *rec, size_t rec_len, void *blob,
                      size_t cap, size_t *len);

#endif /* SHOAL_HIBERNATE_RECORD_H */
