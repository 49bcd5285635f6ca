/* move.c — the move record's codec (layout in move.h and docs/moves.md):
 * little-endian fields written and read through a cursor that refuses to
 * pass the end, a CRC-32C over the header's first 12 bytes and the body,
 * and the host's bytes as an embedded hibernation record. */
#include "hibernate/move.h"

#include <string.h>

#include "hibernate/record.h"
#include "runtime/common.h"

#define MAGIC 0x564D4853u /* "SHMV" read little-endian */

/* Section sizes before their variable parts. */
#define SESSION_BYTES 24u
#define PACKET_FIXED 16u
#define TIMER_FIXED 24u
#define REQUEST_BYTES (36u + SHOAL__MV_MSG_INLINE)

/* ---- writing ------------------------------------------------------------ */

typedef struct wr {
  unsigned char *p;
} wr;

static void put16(wr *w, uint16_t v) {
  w->p[0] = (unsigned char)v;
  w->p[1] = (unsigned char)(v >> 8);
  w->p += 2;
}
static void put32(wr *w, uint32_t v) {
  for (int k = 0; k < 4; k++)
    *w->p++ = (unsigned char)(v >> (8 * k));
}
static void put64(wr *w, uint64_t v) {
  put32(w, (uint32_t)v);
  put32(w, (uint32_t)(v >> 32));
}
static void put_bytes(wr *w, const void *p, size_t n) {
  if (n > 0)
    memcpy(w->p, p, n);
  w->p += n;
}

size_t shoal__mv_bound(const shoal__mv *m) {
  uint64_t n = SHOAL__MV_HEADER + SESSION_BYTES + 4 + 12;
  size_t blob = m->blob_rec != NULL ? m->blob_rec_len
                                     : shoal__hib_bound(m->blob_len);
  if ((m->blob_len > 0 && blob == 0) || m->npk > SHOAL__MV_PACKETS_MAX ||
      m->ntm > SHOAL__MV_PACKETS_MAX || m->nrq > SHOAL__MV_PACKETS_MAX)
    return 0;
  n += blob;
  for (uint32_t k = 0; k < m->npk; k++) {
    if (m->pk[k].len > SHOAL__MV_BYTES_MAX)
      return 0;
    n += PACKET_FIXED + m->pk[k].len;
  }
  for (uint32_t k = 0; k < m->ntm; k++) {
    if (m->tm[k].len > SHOAL__MV_BYTES_MAX)
      return 0;
    n += TIMER_FIXED + m->tm[k].len;
  }
  n += (uint64_t)m->nrq * REQUEST_BYTES;
  return n <= SHOAL__MV_RECORD_MAX ? (size_t)n : 0;
}

int shoal__mv_encode(const shoal__mv *m, unsigned char *rec, size_t cap,
                     size_t *len) {
  size_t bound = shoal__mv_bound(m), blob_len = 0;
  wr w = {rec + SHOAL__MV_HEADER};
  uint32_t total, crc;
  if (bound == 0 || cap < bound)
    return SHOAL_EINVAL;
  put32(&w, m->s.id);
  put32(&w, m->s.map);
  put32(&w, m->s.group);
  put32(&w, m->s.interval);
  put32(&w, m->s.epoch);
  put32(&w, 0);
  /* the host's bytes as a hibernation record, its length first */
  if (m->blob_rec != NULL) {
    memcpy(w.p + 4, m->blob_rec, m->blob_rec_len);
    blob_len = m->blob_rec_len;
  } else if (shoal__hib_encode_into(m->blob, m->blob_len, w.p + 4,
                                    cap - (size_t)(w.p + 4 - rec),
                                    &blob_len) != SHOAL_OK) {
    return SHOAL_EINVAL;
  }
  put32(&w, (uint32_t)blob_len);
  w.p += blob_len;
  put32(&w, m->npk);
  for (uint32_t k = 0; k < m->npk; k++) {
    put16(&w, m->pk[k].opcode);
    put16(&w, m->pk[k].flags);
    put32(&w, m->pk[k].len);
    put64(&w, m->pk[k].waited_ns);
    put_bytes(&w, m->pk[k].data, m->pk[k].len);
  }
  put32(&w, m->ntm);
  for (uint32_t k = 0; k < m->ntm; k++) {
    put16(&w, m->tm[k].opcode);
    put16(&w, m->tm[k].flags);
    put32(&w, m->tm[k].len);
    put64(&w, m->tm[k].remaining_ms);
    put64(&w, m->tm[k].interval_ms);
    put_bytes(&w, m->tm[k].data, m->tm[k].len);
  }
  put32(&w, m->nrq);
  for (uint32_t k = 0; k < m->nrq; k++) {
    put64(&w, m->rq[k].to);
    put32(&w, m->rq[k].corr);
    put16(&w, m->rq[k].reply_opcode);
    put16(&w, 0);
    put64(&w, m->rq[k].remaining_ms);
    put32(&w, m->rq[k].type);
    put32(&w, m->rq[k].size);
    *w.p++ = m->rq[k].priority;
    *w.p++ = m->rq[k].flags;
    put16(&w, 0);
    put_bytes(&w, m->rq[k].payload, SHOAL__MV_MSG_INLINE);
  }
  total = (uint32_t)(w.p - rec);
  w.p = rec;
  put32(&w, MAGIC);
  put16(&w, SHOAL__MV_VERSION);
  put16(&w, 0);
  put32(&w, total);
  crc = shoal__crc32c(0, rec, 12);
  crc = shoal__crc32c(crc, rec + SHOAL__MV_HEADER, total - SHOAL__MV_HEADER);
  put32(&w, crc);
  *len = total;
  return SHOAL_OK;
}

/* ---- reading ------------------------------------------------------------ */

/* A cursor that refuses to pass the end: once `bad`, every read gives 0
 * and the record is refused. */
typedef struct rd {
  const unsigned char *p;
  size_t left;
  int bad;
} rd;

static const unsigned char *take(rd *r, size_t n) {
  const unsigned char *p = r->p;
  if (r->bad || n > r->left) {
    r->bad = 1;
    return NULL;
  }
  r->p += n;
  r->left -= n;
  return p;
}
static uint64_t get(rd *r, int bytes) {
  const unsigned char *p = take(r, (size_t)bytes);
  uint64_t v = 0;
  for (int k = 0; p != NULL && k < bytes; k++)
    v |= (uint64_t)p[k] << (8 * k);
  return v;
}

/* The header checked: r over the body. */
static int header(const unsigned char *rec, size_t len, rd *r) {
  rd h = {rec, len, 0};
  uint32_t magic, total, crc;
  uint16_t version, flags;
  if (rec == NULL || len < SHOAL__MV_HEADER)
    return SHOAL_EFORMAT;
  magic = (uint32_t)get(&h, 4);
  version = (uint16_t)get(&h, 2);
  flags = (uint16_t)get(&h, 2);
  total = (uint32_t)get(&h, 4);
  crc = (uint32_t)get(&h, 4);
  if (magic != MAGIC || version != SHOAL__MV_VERSION || flags != 0 ||
      total != len || total < SHOAL__MV_HEADER)
    return SHOAL_EFORMAT;
  if (shoal__crc32c(shoal__crc32c(0, rec, 12), rec + SHOAL__MV_HEADER,
                    len - SHOAL__MV_HEADER) != crc)
    return SHOAL_EFORMAT;
  *r = h;
  return SHOAL_OK;
}

/* Walks the body: with m NULL it only checks and counts; else it fills
 * m's arrays (sized from an earlier walk). The blob record's place and
 * length go to *blob, *blob_rec_len. */
static int walk(rd *r, shoal__mv *m, shoal__mv_shape *shape,
                const unsigned char **blob, size_t *blob_rec_len) {
  shoal__mv_session s;
  uint32_t n;
  s.id = (uint32_t)get(r, 4);
  s.map = (uint32_t)get(r, 4);
  s.group = (uint32_t)get(r, 4);
  s.interval = (uint32_t)get(r, 4);
  s.epoch = (uint32_t)get(r, 4);
  if (get(r, 4) != 0 || s.id == 0 || s.interval == 0)
    return SHOAL_EFORMAT;
  *blob_rec_len = (size_t)get(r, 4);
  *blob = take(r, *blob_rec_len);
  if (r->bad || shoal__hib_check(*blob, *blob_rec_len, &shape->blob_len) !=
                    SHOAL_OK)
    return SHOAL_EFORMAT;
  n = (uint32_t)get(r, 4);
  if (n > SHOAL__MV_PACKETS_MAX || (m != NULL && n != m->npk))
    return SHOAL_EFORMAT;
  shape->npk = n;
  for (uint32_t k = 0; k < n && !r->bad; k++) {
    shoal__mv_packet p;
    p.opcode = (uint16_t)get(r, 2);
    p.flags = (uint16_t)get(r, 2);
    p.len = (uint32_t)get(r, 4);
    p.waited_ns = get(r, 8);
    if (p.len > SHOAL__MV_BYTES_MAX)
      return SHOAL_EFORMAT;
    p.data = take(r, p.len);
    if (m != NULL)
      m->pk[k] = p;
  }
  n = (uint32_t)get(r, 4);
  if (n > SHOAL__MV_PACKETS_MAX || (m != NULL && n != m->ntm))
    return SHOAL_EFORMAT;
  shape->ntm = n;
  for (uint32_t k = 0; k < n && !r->bad; k++) {
    shoal__mv_timer t;
    t.opcode = (uint16_t)get(r, 2);
    t.flags = (uint16_t)get(r, 2);
    t.len = (uint32_t)get(r, 4);
    t.remaining_ms = get(r, 8);
    t.interval_ms = get(r, 8);
    if (t.len > SHOAL__MV_BYTES_MAX)
      return SHOAL_EFORMAT;
    t.data = take(r, t.len);
    if (m != NULL)
      m->tm[k] = t;
  }
  n = (uint32_t)get(r, 4);
  if (n > SHOAL__MV_PACKETS_MAX || (m != NULL && n != m->nrq))
    return SHOAL_EFORMAT;
  shape->nrq = n;
  for (uint32_t k = 0; k < n && !r->bad; k++) {
    shoal__mv_request q;
    q.to = get(r, 8);
    q.corr = (uint32_t)get(r, 4);
    q.reply_opcode = (uint16_t)get(r, 2);
    if (get(r, 2) != 0)
      return SHOAL_EFORMAT;
    q.remaining_ms = get(r, 8);
    q.type = (uint32_t)get(r, 4);
    q.size = (uint32_t)get(r, 4);
    q.priority = (uint8_t)get(r, 1);
    q.flags = (uint8_t)get(r, 1);
    if (get(r, 2) != 0)
      return SHOAL_EFORMAT;
    {
      const unsigned char *pl = take(r, SHOAL__MV_MSG_INLINE);
      if (pl != NULL)
        memcpy(q.payload, pl, SHOAL__MV_MSG_INLINE);
    }
    if (m != NULL)
      m->rq[k] = q;
  }
  /* every byte accounted for: nothing missing, nothing trailing */
  if (r->bad || r->left != 0)
    return SHOAL_EFORMAT;
  if (m != NULL)
    m->s = s;
  return SHOAL_OK;
}

int shoal__mv_check(const unsigned char *rec, size_t len,
                    shoal__mv_shape *shape) {
  rd r;
  const unsigned char *blob;
  size_t blob_rec_len;
  int rc;
  memset(shape, 0, sizeof *shape);
  if ((rc = header(rec, len, &r)) != SHOAL_OK)
    return rc;
  return walk(&r, NULL, shape, &blob, &blob_rec_len);
}

int shoal__mv_decode(const unsigned char *rec, size_t len, shoal__mv *m,
                     void *blob, size_t blob_cap) {
  rd r;
  shoal__mv_shape shape;
  const unsigned char *brec;
  size_t brec_len, got = 0;
  int rc;
  if (m == NULL || (blob == NULL && blob_cap > 0))
    return SHOAL_EINVAL;
  if ((rc = header(rec, len, &r)) != SHOAL_OK ||
      (rc = walk(&r, m, &shape, &brec, &brec_len)) != SHOAL_OK)
    return rc;
  m->blob_rec = brec;
  m->blob_rec_len = brec_len;
  if (blob == NULL) {
    m->blob = NULL;
    m->blob_len = shape.blob_len;
    return SHOAL_OK;
  }
  if (blob_cap < shape.blob_len)
    return SHOAL_EINVAL;
  if (shoal__hib_decode(brec, brec_len, blob, blob_cap, &got) != SHOAL_OK ||
      got != shape.blob_len)
    return SHOAL_EFORMAT;
  m->blob = blob;
  m->blob_len = got;
  return SHOAL_OK;
}
