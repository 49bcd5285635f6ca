/* move.h — the record that carries one session from a manager in one
 * process to a manager in another (docs/moves.md, field by field): the
 * session's place (id, map, group, interval, incarnation), the host's
 * hibernated bytes as a hibernation record (record.h), the packets still
 * waiting for it in order, its timers with their remaining time, and its
 * outstanding requests. A codec only: what a manager puts in and takes out
 * is the export's and import's. Internal to the library.
 *
 *   offset  size  field
 *   0       4     magic "SHMV"
 *   4       2     version (1)
 *   6       2     flags (0; a set bit this version does not know is an
 *                 error)
 *   8       4     total length of the record, this header included
 *   12      4     CRC-32C of bytes 0 … 11 and 16 … end
 *   16      …     the sections, in this order: session, blob, packets,
 *                 timers, requests
 *
 * All integers are little-endian. Decoding checks the length, magic,
 * version, flags and checksum before it reads a field, then every count
 * and length against what is left and against the limits below, so that
 * a record that is truncated, bit-flipped or from a later version is
 * refused whole (SHOAL_EFORMAT) before anything is built from it. */
#ifndef SHOAL_HIBERNATE_MOVE_H
#define SHOAL_HIBERNATE_MOVE_H

#include <stddef.h>
#include <stdint.h>

#define SHOAL__MV_VERSION 1u
#define SHOAL__MV_HEADER 16u
/* Limits a decoder holds a record to (an encoder refuses past them). */
#define SHOAL__MV_RECORD_MAX 0x7FFFFFFFu /* bytes */
#define SHOAL__MV_PACKETS_MAX 65536u     /* per section */
#define SHOAL__MV_BYTES_MAX (16u << 20)  /* one packet's or timer's data */

typedef struct shoal__mv_session {
  uint32_t id, map, group, interval, epoch;
} shoal__mv_session;

/* A packet waiting for the session: its opcode, flags and bytes, and how
 * long it had waited when the record was made. */
typedef struct shoal__mv_packet {
  uint16_t opcode, flags;
  uint32_t len;
  const void *data;
  uint64_t waited_ns;
} shoal__mv_packet;

/* A timer of the session: the packet it delivers, the manager time left
 * before it does, and its period (0: once). */
typedef struct shoal__mv_timer {
  uint16_t opcode, flags;
  uint32_t len;
  const void *data;
  uint64_t remaining_ms, interval_ms;
} shoal__mv_timer;

/* A request waiting for its answer: to whom, its correlation id, the
 * opcode its answer arrives as, the time left before it times out, and
 * the request as sent (what its timeout gives back to the session): the
 * message's type, size, priority, flags and inline payload. */
#define SHOAL__MV_MSG_INLINE 16u /* SHOAL_MSG_INLINE */
typedef struct shoal__mv_request {
  uint64_t to;
  uint32_t corr;
  uint16_t reply_opcode;
  uint64_t remaining_ms;
  uint32_t type, size;
  uint8_t priority, flags;
  unsigned char payload[SHOAL__MV_MSG_INLINE];
} shoal__mv_request;

/* A session's whole move. Encoding reads it; decoding fills it with
 * pointers into the record (the data of packets and timers) and into the
 * caller's arrays. */
typedef struct shoal__mv {
  shoal__mv_session s;
  const void *blob; /* the host's bytes (encode) */
  size_t blob_len;
  /* The same as a hibernation record already made (record.h): encode
   * copies it when not NULL, in place of compressing blob; decode points
   * it at the record's copy. */
  const unsigned char *blob_rec;
  size_t blob_rec_len;
  shoal__mv_packet *pk;
  uint32_t npk;
  shoal__mv_timer *tm;
  uint32_t ntm;
  shoal__mv_request *rq;
  uint32_t nrq;
} shoal__mv;

/* The most bytes the record of m takes; 0 past the limits. */
size_t shoal__mv_bound(const shoal__mv *m);
/* Encodes m into rec[0 … cap), cap ≥ shoal__mv_bound(m); *len gets the
 * record's bytes. SHOAL_EINVAL (past the limits, cap too small). Any
 * thread. */
int shoal__mv_encode(const shoal__mv *m, unsigned char *rec, size_t cap,
                     size_t *len);

/* What a record holds, learned by checking it whole: the counts to size
 * the arrays for decode, and the host's bytes' length. */
typedef struct shoal__mv_shape {
  uint32_t npk, ntm, nrq;
  size_t blob_len;
} shoal__mv_shape;
/* SHOAL_OK with *shape filled, or SHOAL_EFORMAT: the record is checked
 * whole (header, checksum, every section's counts and lengths, the
 * embedded hibernation record). Any thread. */
int shoal__mv_check(const unsigned char *rec, size_t len,
                    shoal__mv_shape *shape);
/* Decodes a record that shoal__mv_check accepted: m's arrays (m->pk, tm,
 * rq) must hold the shape's counts; the host's bytes go to blob[0 …
 * blob_cap), blob_cap ≥ shape.blob_len, or stay compressed when blob is
 * NULL (m->blob_rec names them, m->blob_len is their length).
 * SHOAL_EFORMAT, SHOAL_EINVAL. Any thread. */
int shoal__mv_decode(const unsigned char *rec, size_t len, shoal__mv *m,
                     void *blob, size_t blob_cap);

#endif /* SHOAL_HIBERNATE_MOVE_H */
