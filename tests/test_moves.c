/* test_moves.c — sessions moving between two managers through
 * shoal_session_export and shoal_session_import: a round trip with a
 * deferred packet and packets of every size waiting, timers (in the wheel
 * and still queued) and a request, whose contents, order, times and host
 * state arrive whole; what the exporting side answers afterwards
 * (SHOAL_EMOVED for MovedSeconds, then SHOAL_ENOENT) and its figures; the
 * kept record imported back on failure; truncated, bit-flipped and
 * version-bumped records refused with nothing changed; exports refused
 * during an update; and senders racing exports, forwarding what is
 * answered SHOAL_EMOVED, with every packet handled once and in order. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>

#include "test_util.h"

#define OP_LOG 10  /* INPLACE: logged */
#define OP_DEF 11  /* MAIN: deferred, logged */
#define OP_TICK 12 /* timers' packets: logged */
#define OP_ANS 13  /* a request's answer: logged */
#define OP_SEQ 14  /* the race: per-sender order checked in the bot */
#define SILENT 50  /* an actor that never answers */
#define MAXID 256
#define SENDERS 2

/* A session's host state; all of it travels in its hibernated bytes. */
typedef struct bot {
  uint32_t id;
  uint64_t counter;             /* packets it handled, wherever */
  uint64_t next[SENDERS];       /* the race: the next seq of each sender */
} bot;

typedef struct entry {
  uint16_t opcode, flags;
  uint32_t len, sum;
} entry;

typedef struct side {
  shoal_mgr *mgr;
  entry log[64];
  _Atomic uint32_t nlog;
  _Atomic uint64_t handled;
  _Atomic uint32_t order_bad, bad_state, during_update;
  int call_in_update; /* the update callback tries an export */
  int wait_for_try;   /* the update waits for another thread's export */
  _Atomic int export_rc;
  _Atomic int in_update, tried; /* an export from another thread */
} side;

static side A, B;
static shoal_actors *sys;

static uint32_t sum_of(const unsigned char *p, size_t n) {
  uint32_t s = 2166136261u; /* FNV-1a */
  for (size_t i = 0; i < n; i++)
    s = (s ^ p[i]) * 16777619u;
  return s;
}

static int on_update(void *h_, uint32_t id, void *user, uint32_t diff) {
  side *h = h_;
  bot *b = user;
  (void)diff;
  if (b == NULL || b->id != id)
    atomic_fetch_add(&h->bad_state, 1);
  if (h->call_in_update) {
    size_t len;
    atomic_store(&h->export_rc, shoal_session_export(h->mgr, id, NULL, 0,
                                                     &len));
  }
  if (h->wait_for_try && atomic_load(&h->tried) == 0) {
    /* another thread tries an export while this update runs */
    atomic_store(&h->in_update, 1);
    while (atomic_load(&h->tried) == 0)
      sched_yield();
  }
  return 0;
}

static int on_log(void *h_, uint32_t id, void *user, const shoal_packet *p) {
  side *h = h_;
  bot *b = user;
  uint32_t k = atomic_fetch_add(&h->nlog, 1);
  if (b == NULL || b->id != id)
    atomic_fetch_add(&h->bad_state, 1);
  else
    b->counter++;
  if (k < 64)
    h->log[k] = (entry){p->opcode, p->flags, p->len, sum_of(p->data, p->len)};
  atomic_fetch_add(&h->handled, 1);
  return 0;
}

static int on_seq(void *h_, uint32_t id, void *user, const shoal_packet *p) {
  side *h = h_;
  bot *b = user;
  uint32_t sender, seq;
  memcpy(&sender, p->data, 4);
  memcpy(&seq, (const char *)p->data + 4, 4);
  if (b == NULL || b->id != id || sender >= SENDERS) {
    atomic_fetch_add(&h->bad_state, 1);
  } else {
    if (seq != b->next[sender])
      atomic_fetch_add(&h->order_bad, 1);
    b->next[sender] = seq + 1;
    b->counter++;
  }
  atomic_fetch_add(&h->handled, 1);
  return 0;
}

static long on_hibernate(void *h_, uint32_t id, void *user,
                         shoal_hib_writer *w) {
  side *h = h_;
  bot *b = user;
  if (b == NULL || b->id != id) {
    atomic_fetch_add(&h->bad_state, 1);
    return -1;
  }
  if (shoal_hib_write(w, b, sizeof *b) != SHOAL_OK)
    return -1;
  free(b);
  return (long)sizeof *b;
}

static int on_wake(void *h_, uint32_t id, const void *blob, size_t len,
                   void **user) {
  side *h = h_;
  bot *b = malloc(sizeof *b);
  if (b == NULL || len != sizeof *b) {
    atomic_fetch_add(&h->bad_state, 1);
    free(b);
    return -1;
  }
  memcpy(b, blob, sizeof *b);
  if (b->id != id)
    atomic_fetch_add(&h->bad_state, 1);
  *user = b;
  return 0;
}

static void on_release(void *h_, uint32_t id, void *user) {
  (void)h_;
  (void)id;
  free(user);
}

static void make_side(side *h, unsigned moved_seconds) {
  shoal_config c;
  shoal_mgr_callbacks cb = {on_update, on_release, h};
  shoal_hib_callbacks hc = {on_hibernate, on_wake, NULL};
  memset(h, 0, sizeof *h);
  shoal_config_defaults(&c);
  c.worker_threads = 3; /* more workers than cores */
  c.moved_seconds = moved_seconds;
  c.log = test_quiet_log;
  assert_int_equal(shoal_mgr_create(&h->mgr, NULL, &c, &cb), SHOAL_OK);
  assert_int_equal(shoal_mgr_set_hibernation(h->mgr, &hc), SHOAL_OK);
  assert_int_equal(shoal_mgr_register_opcode(h->mgr, OP_LOG,
                                             SHOAL_PACKET_INPLACE,
                                             SHOAL_CAT_OTHER, on_log, NULL),
                   SHOAL_OK);
  assert_int_equal(shoal_mgr_register_opcode(h->mgr, OP_DEF, SHOAL_PACKET_MAIN,
                                             SHOAL_CAT_OTHER, on_log, NULL),
                   SHOAL_OK);
  assert_int_equal(shoal_mgr_register_opcode(h->mgr, OP_TICK,
                                             SHOAL_PACKET_INPLACE,
                                             SHOAL_CAT_OTHER, on_log, NULL),
                   SHOAL_OK);
  assert_int_equal(shoal_mgr_register_opcode(h->mgr, OP_ANS,
                                             SHOAL_PACKET_INPLACE,
                                             SHOAL_CAT_OTHER, on_log, NULL),
                   SHOAL_OK);
  assert_int_equal(shoal_mgr_register_opcode(h->mgr, OP_SEQ,
                                             SHOAL_PACKET_INPLACE,
                                             SHOAL_CAT_OTHER, on_seq, NULL),
                   SHOAL_OK);
}

static void unmake_side(side *h) {
  assert_int_equal(shoal_mgr_destroy(h->mgr), SHOAL_OK);
  assert_int_equal(atomic_load(&h->bad_state), 0);
  h->mgr = NULL;
}

static int new_bot(side *h, uint32_t id, uint64_t counter) {
  bot *b = calloc(1, sizeof *b);
  b->id = id;
  b->counter = counter;
  return shoal_session_create(h->mgr, id, b);
}

/* The counter in a session's state, through a hibernation. */
static uint64_t counter_of(side *h, uint32_t id) {
  shoal_session_info v;
  assert_int_equal(shoal_session_get(h->mgr, id, &v), SHOAL_OK);
  assert_int_equal(v.state, SHOAL_SESSION_ACTIVE);
  return ((bot *)v.user)->counter;
}

static unsigned char *export_all(side *h, uint32_t id, size_t *len) {
  size_t need = 0;
  unsigned char *rec;
  assert_int_equal(shoal_session_export(h->mgr, id, NULL, 0, &need),
                   SHOAL_ENOSPC);
  assert_true(need > 0);
  rec = malloc(need);
  assert_int_equal(shoal_session_export(h->mgr, id, rec, need - 1, len),
                   SHOAL_ENOSPC);
  assert_int_equal(shoal_session_export(h->mgr, id, rec, need, len),
                   SHOAL_OK);
  assert_true(*len > 0 && *len <= need);
  return rec;
}

static void silent_fn(shoal_actor *self, void *state, const shoal_msg *m) {
  (void)self;
  (void)state;
  (void)m;
}

/* Counts B's logged packets of an opcode (flags: its flags too when not
 * UINT16_MAX). */
static unsigned logged(const side *h, uint16_t opcode, uint16_t flags) {
  unsigned n = 0, k = atomic_load(&h->nlog);
  for (unsigned i = 0; i < k && i < 64; i++)
    n += h->log[i].opcode == opcode &&
         (flags == UINT16_MAX || h->log[i].flags == flags);
  return n;
}

/* ---- a round trip -------------------------------------------------------- */

static void round_trip(void **state) {
  static const uint32_t sizes[] = {0, 1, 96, 97, 4000, 65536};
  enum { NS = sizeof sizes / sizeof sizes[0] };
  static unsigned char data[65536];
  shoal_actor_opts o;
  shoal_actors_config ac;
  shoal_session_info v;
  shoal_packet_stats ps;
  shoal_timer_stats ts;
  shoal_request_stats rs;
  shoal_hib_stats hs;
  shoal_msg q;
  unsigned char *rec;
  size_t len;
  uint32_t corr;
  (void)state;
  for (size_t i = 0; i < sizeof data; i++)
    data[i] = (unsigned char)(i * 31 + 7);
  make_side(&A, 60);
  make_side(&B, 60);
  shoal_actors_config_defaults(&ac);
  assert_int_equal(shoal_actors_create(&sys, shoal_mgr_runtime(A.mgr), &ac),
                   SHOAL_OK);
  shoal_actor_opts_defaults(&o);
  o.handler = silent_fn;
  assert_int_equal(shoal_actor_register(sys, SILENT, &o), SHOAL_OK);
  assert_int_equal(shoal_mgr_attach_actors(A.mgr, sys), SHOAL_OK);

  assert_int_equal(new_bot(&A, 77, 5), SHOAL_OK);
  assert_int_equal(shoal_session_set_map(A.mgr, 77, 3), SHOAL_OK);
  assert_int_equal(shoal_session_set_group(A.mgr, 77, 4), SHOAL_OK);
  assert_int_equal(shoal_session_set_interval(A.mgr, 77, 1), SHOAL_OK);
  /* timers taken into the wheel by the next update: once at 30, every
   * 25 from 10; a request that times out at 200 */
  assert_int_equal(shoal_timer_start(A.mgr, 77, 30, 0, OP_TICK, 1, "once", 4,
                                     NULL),
                   SHOAL_OK);
  assert_int_equal(shoal_timer_start(A.mgr, 77, 10, 25, OP_TICK, 2, "p", 1,
                                     NULL),
                   SHOAL_OK);
  memset(&q, 0, sizeof q);
  q.type = 9;
  q.size = 3;
  memcpy(q.payload.bytes, "abc", 3);
  assert_int_equal(shoal_session_request(A.mgr, 77, SILENT, &q, OP_ANS, 200,
                                         &corr),
                   SHOAL_OK);
  /* a MAIN packet the update defers; packets of every size waiting */
  assert_int_equal(shoal_session_send(A.mgr, 77, OP_DEF, 0, data, 5),
                   SHOAL_OK);
  assert_int_equal(shoal_mgr_update(A.mgr, 5), SHOAL_OK);
  assert_int_equal(shoal_session_get(A.mgr, 77, &v), SHOAL_OK);
  assert_int_equal(v.deferred, 1);
  for (int k = 0; k < NS; k++)
    assert_int_equal(shoal_session_send(A.mgr, 77, OP_LOG, (uint16_t)k, data,
                                        sizes[k]),
                     SHOAL_OK);
  /* a timer still queued (its delay not yet made a time) */
  assert_int_equal(shoal_timer_start(A.mgr, 77, 40, 0, OP_TICK, 3, "late", 4,
                                     NULL),
                   SHOAL_OK);
  assert_int_equal(atomic_load(&A.handled), 0);

  rec = export_all(&A, 77, &len);
  /* what A answers now */
  assert_int_equal(shoal_session_send(A.mgr, 77, OP_LOG, 0, NULL, 0),
                   SHOAL_EMOVED);
  assert_int_equal(shoal_session_get(A.mgr, 77, &v), SHOAL_EMOVED);
  assert_int_equal(shoal_session_touch(A.mgr, 77), SHOAL_EMOVED);
  assert_int_equal(shoal_mgr_wake(A.mgr, 77), SHOAL_EMOVED);
  assert_int_equal(shoal_session_set_map(A.mgr, 77, 1), SHOAL_EMOVED);
  assert_int_equal(shoal_session_release(A.mgr, 77), SHOAL_EMOVED);
  {
    size_t n = 1;
    assert_int_equal(shoal_session_export(A.mgr, 77, rec, len, &n),
                     SHOAL_EMOVED);
    assert_int_equal(n, 0);
  }
  assert_int_equal(shoal_session_get(A.mgr, 78, &v), SHOAL_ENOENT);
  assert_int_equal(shoal_packet_stats_get(A.mgr, &ps, 0), SHOAL_OK);
  assert_int_equal(ps.moved, 1 + NS);
  assert_int_equal(ps.sends_moved, 1);
  assert_int_equal(ps.pending, 0);
  assert_int_equal(ps.sent, ps.rejected + ps.handled + ps.dropped +
                                ps.pending + ps.moved);
  assert_int_equal(shoal_timer_stats_get(A.mgr, &ts), SHOAL_OK);
  assert_int_equal(ts.moved, 3);
  assert_int_equal(shoal_request_stats_get(A.mgr, &rs), SHOAL_OK);
  assert_int_equal(rs.moved, 1);
  assert_int_equal(rs.pending, 0);
  assert_int_equal(shoal_hib_stats_get(A.mgr, &hs, 0), SHOAL_OK);
  assert_int_equal(hs.exports, 1);
  assert_int_equal(hs.hibernated, 0);
  /* A's clock passing the timers' times delivers nothing */
  for (int t = 0; t < 250; t += 10)
    assert_int_equal(shoal_mgr_update(A.mgr, 10), SHOAL_OK);
  assert_int_equal(atomic_load(&A.handled), 0);

  /* B: hibernated, asked to wake; the next update wakes it */
  assert_int_equal(shoal_session_import(B.mgr, rec, len), SHOAL_OK);
  assert_int_equal(shoal_session_import(B.mgr, rec, len), SHOAL_EEXIST);
  assert_int_equal(shoal_session_get(B.mgr, 77, &v), SHOAL_OK);
  assert_int_equal(v.state, SHOAL_SESSION_HIBERNATED);
  assert_int_equal(v.map, 3);
  assert_int_equal(v.group, 4);
  assert_int_equal(shoal_packet_stats_get(B.mgr, &ps, 0), SHOAL_OK);
  assert_int_equal(ps.pending, 1 + NS);
  assert_int_equal(shoal_mgr_update(B.mgr, 1), SHOAL_OK);
  /* the MAIN packet is first, so strict order defers the rest behind it */
  assert_true(shoal_mgr_drain_deferred(B.mgr, 0, NULL) >= 0);
  assert_int_equal(atomic_load(&B.nlog), 1 + NS);
  assert_int_equal(B.log[0].opcode, OP_DEF);
  assert_int_equal(B.log[0].len, 5);
  assert_int_equal(B.log[0].sum, sum_of(data, 5));
  for (int k = 0; k < NS; k++) {
    assert_int_equal(B.log[1 + k].opcode, OP_LOG);
    assert_int_equal(B.log[1 + k].flags, k);
    assert_int_equal(B.log[1 + k].len, sizes[k]);
    assert_int_equal(B.log[1 + k].sum, sum_of(data, sizes[k]));
  }
  assert_int_equal(counter_of(&B, 77), 5 + 1 + NS);
  /* the timers with the time they had left: the periodic one 5 ms from
   * the export, then every 25; the once one at 25; the late one at 40;
   * the request's timeout at 195 */
  for (int t = 1; t < 24; t++)
    assert_int_equal(shoal_mgr_update(B.mgr, 1), SHOAL_OK);
  assert_int_equal(logged(&B, OP_TICK, 1), 0);
  assert_int_equal(logged(&B, OP_TICK, 2), 1);
  for (int t = 24; t < 38; t++)
    assert_int_equal(shoal_mgr_update(B.mgr, 1), SHOAL_OK);
  assert_int_equal(logged(&B, OP_TICK, 1), 1);
  assert_int_equal(logged(&B, OP_TICK, 3), 0);
  for (int t = 38; t < 190; t++)
    assert_int_equal(shoal_mgr_update(B.mgr, 1), SHOAL_OK);
  assert_int_equal(logged(&B, OP_TICK, 3), 1);
  assert_int_equal(logged(&B, OP_ANS, UINT16_MAX), 0);
  for (int t = 190; t < 200; t++)
    assert_int_equal(shoal_mgr_update(B.mgr, 1), SHOAL_OK);
  assert_int_equal(logged(&B, OP_ANS, UINT16_MAX), 1);
  assert_int_equal(logged(&B, OP_TICK, 2), 8); /* 5, 30, … 180 */
  assert_int_equal(shoal_timer_stats_get(B.mgr, &ts), SHOAL_OK);
  assert_int_equal(ts.started, 3);
  assert_int_equal(shoal_request_stats_get(B.mgr, &rs), SHOAL_OK);
  assert_int_equal(rs.requests, 1);
  assert_int_equal(rs.timeouts, 1);
  assert_int_equal(shoal_hib_stats_get(B.mgr, &hs, 0), SHOAL_OK);
  assert_int_equal(hs.imports, 1);

  /* The exporting side imports the record it kept (the other side
   * failed): the session is back, nothing lost, no longer moved. */
  assert_int_equal(shoal_session_import(A.mgr, rec, len), SHOAL_OK);
  assert_int_equal(shoal_session_get(A.mgr, 77, &v), SHOAL_OK);
  assert_int_equal(v.state, SHOAL_SESSION_HIBERNATED);
  assert_int_equal(shoal_mgr_update(A.mgr, 1), SHOAL_OK);
  assert_true(shoal_mgr_drain_deferred(A.mgr, 0, NULL) >= 0);
  assert_int_equal(atomic_load(&A.handled), 1 + NS);
  assert_int_equal(counter_of(&A, 77), 5 + 1 + NS);
  free(rec);
  /* the actors run on A's runtime: they go first */
  assert_int_equal(shoal_mgr_attach_actors(A.mgr, NULL), SHOAL_OK);
  assert_int_equal(shoal_actors_destroy(sys), SHOAL_OK);
  sys = NULL;
  unmake_side(&A);
  unmake_side(&B);
}

/* A hibernated session with packets held moves as it is; an active one
 * with nothing waiting, too. */
static void hibernated_and_idle(void **state) {
  shoal_session_info v;
  unsigned char *rec;
  size_t len;
  (void)state;
  make_side(&A, 60);
  make_side(&B, 60);
  assert_int_equal(new_bot(&A, 5, 40), SHOAL_OK);
  assert_int_equal(new_bot(&A, 6, 50), SHOAL_OK);
  assert_int_equal(shoal_mgr_set_hibernation_ms(A.mgr, 10), SHOAL_OK);
  for (int t = 0; t < 5; t++)
    assert_int_equal(shoal_mgr_update(A.mgr, 10), SHOAL_OK);
  assert_true(shoal_mgr_hibernate_idle(A.mgr, 0) >= 0);
  assert_int_equal(shoal_session_get(A.mgr, 5, &v), SHOAL_OK);
  assert_int_equal(v.state, SHOAL_SESSION_HIBERNATED);
  assert_int_equal(shoal_session_send(A.mgr, 5, OP_LOG, 0, "xy", 2),
                   SHOAL_OK); /* held */
  rec = export_all(&A, 5, &len);
  assert_int_equal(shoal_session_import(B.mgr, rec, len), SHOAL_OK);
  free(rec);
  assert_int_equal(shoal_mgr_set_hibernation_ms(A.mgr, 3600000), SHOAL_OK);
  assert_int_equal(shoal_mgr_wake(A.mgr, 6), SHOAL_OK);
  assert_int_equal(shoal_mgr_update(A.mgr, 1), SHOAL_OK);
  assert_int_equal(shoal_session_get(A.mgr, 6, &v), SHOAL_OK);
  assert_int_equal(v.state, SHOAL_SESSION_ACTIVE);
  rec = export_all(&A, 6, &len);
  assert_int_equal(shoal_session_import(B.mgr, rec, len), SHOAL_OK);
  free(rec);
  assert_int_equal(shoal_mgr_update(B.mgr, 1), SHOAL_OK);
  assert_int_equal(atomic_load(&B.handled), 1);
  assert_int_equal(B.log[0].sum, sum_of((const unsigned char *)"xy", 2));
  assert_int_equal(counter_of(&B, 5), 41);
  assert_int_equal(counter_of(&B, 6), 50);
  assert_int_equal(atomic_load(&A.handled), 0);
  unmake_side(&A);
  unmake_side(&B);
}

/* ---- bad records ------------------------------------------------------- */

static void fix_crc(unsigned char *r, size_t len);

static void bad_records(void **state) {
  shoal_hib_stats hs;
  shoal_packet_stats ps;
  unsigned char *rec, *bad;
  size_t len;
  (void)state;
  make_side(&A, 60);
  make_side(&B, 60);
  assert_int_equal(new_bot(&A, 9, 1), SHOAL_OK);
  assert_int_equal(shoal_session_send(A.mgr, 9, OP_LOG, 0, "hello", 5),
                   SHOAL_OK);
  assert_int_equal(shoal_timer_start(A.mgr, 9, 30, 0, OP_TICK, 1, "t", 1,
                                     NULL),
                   SHOAL_OK);
  rec = export_all(&A, 9, &len);
  bad = malloc(len);
  assert_int_equal(shoal_session_import(B.mgr, NULL, len), SHOAL_EINVAL);
  /* every truncation */
  for (size_t n = 0; n < len; n++)
    assert_int_equal(shoal_session_import(B.mgr, rec, n), SHOAL_EFORMAT);
  /* every bit flipped */
  for (size_t i = 0; i < len; i++)
    for (int b = 0; b < 8; b++) {
      memcpy(bad, rec, len);
      bad[i] ^= (unsigned char)(1u << b);
      assert_int_equal(shoal_session_import(B.mgr, bad, len), SHOAL_EFORMAT);
    }
  /* a later version, its checksum made right */
  memcpy(bad, rec, len);
  bad[4] = 2;
  fix_crc(bad, len);
  assert_int_equal(shoal_session_import(B.mgr, bad, len), SHOAL_EFORMAT);
  /* nothing changed in B */
  assert_int_equal(shoal_session_get(B.mgr, 9, NULL), SHOAL_ENOENT);
  assert_int_equal(shoal_hib_stats_get(B.mgr, &hs, 0), SHOAL_OK);
  assert_int_equal(hs.imports + hs.hibernated, 0);
  assert_int_equal(shoal_packet_stats_get(B.mgr, &ps, 0), SHOAL_OK);
  assert_int_equal(ps.sent + ps.pending, 0);
  /* the record itself still goes in */
  assert_int_equal(shoal_session_import(B.mgr, rec, len), SHOAL_OK);
  assert_int_equal(shoal_mgr_update(B.mgr, 1), SHOAL_OK);
  assert_int_equal(atomic_load(&B.handled), 1);
  free(bad);
  free(rec);
  unmake_side(&A);
  unmake_side(&B);
}

/* The record's checksum (move.h: CRC-32C of bytes 0 … 11 and 16 … end),
 * bitwise here so that the test does not lean on the library's. */
static uint32_t crc32c(uint32_t c, const unsigned char *p, size_t n) {
  c = ~c;
  for (size_t i = 0; i < n; i++) {
    c ^= p[i];
    for (int k = 0; k < 8; k++)
      c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1)));
  }
  return ~c;
}

static void fix_crc(unsigned char *r, size_t len) {
  uint32_t c = crc32c(crc32c(0, r, 12), r + 16, len - 16);
  for (int k = 0; k < 4; k++)
    r[12 + k] = (unsigned char)(c >> (8 * k));
}

/* ---- when an export is refused -------------------------------------------- */

static void *try_export(void *p) {
  side *h = p;
  size_t len;
  while (atomic_load(&h->in_update) == 0)
    sched_yield();
  atomic_store(&h->export_rc, shoal_session_export(h->mgr, 1, NULL, 0, &len));
  atomic_store(&h->tried, 1);
  return NULL;
}

static void refused_during_update(void **state) {
  pthread_t th;
  size_t len;
  (void)state;
  make_side(&A, 60);
  make_side(&B, 60);
  /* from the update callback */
  assert_int_equal(new_bot(&A, 1, 0), SHOAL_OK);
  A.call_in_update = 1;
  atomic_store(&A.export_rc, 1);
  assert_int_equal(shoal_mgr_update(A.mgr, 1), SHOAL_OK);
  assert_int_equal(atomic_load(&A.export_rc), SHOAL_ESTATE);
  A.call_in_update = 0;
  /* from another thread while an update runs */
  assert_int_equal(new_bot(&B, 1, 0), SHOAL_OK);
  B.wait_for_try = 1;
  assert_int_equal(pthread_create(&th, NULL, try_export, &B), 0);
  assert_int_equal(shoal_mgr_update(B.mgr, 1), SHOAL_OK);
  pthread_join(th, NULL);
  assert_int_equal(atomic_load(&B.export_rc), SHOAL_ESTATE);
  /* both still there, and exportable between updates */
  assert_int_equal(shoal_session_get(A.mgr, 1, NULL), SHOAL_OK);
  assert_int_equal(shoal_session_get(B.mgr, 1, NULL), SHOAL_OK);
  assert_int_equal(shoal_session_export(B.mgr, 1, NULL, 0, &len),
                   SHOAL_ENOSPC);
  /* without hibernation there is nothing to make the bytes */
  {
    shoal_mgr *m;
    shoal_mgr_callbacks cb = {test_nop_update, NULL, NULL};
    shoal_config c;
    shoal_config_defaults(&c);
    c.worker_threads = 2;
    assert_int_equal(shoal_mgr_create(&m, NULL, &c, &cb), SHOAL_OK);
    assert_int_equal(shoal_session_create(m, 1, NULL), SHOAL_OK);
    assert_int_equal(shoal_session_export(m, 1, NULL, 0, &len), SHOAL_ESTATE);
    assert_int_equal(shoal_session_export(m, 1, NULL, 1, &len), SHOAL_EINVAL);
    assert_int_equal(shoal_session_export(m, 0, NULL, 0, &len), SHOAL_EINVAL);
    assert_int_equal(shoal_mgr_destroy(m), SHOAL_OK);
  }
  unmake_side(&A);
  unmake_side(&B);
}

/* ---- the moved window ------------------------------------------------------ */

static void moved_window(void **state) {
  unsigned char *rec;
  size_t len;
  (void)state;
  make_side(&A, 1);
  make_side(&B, 0);
  assert_int_equal(new_bot(&A, 3, 0), SHOAL_OK);
  rec = export_all(&A, 3, &len);
  assert_int_equal(shoal_session_get(A.mgr, 3, NULL), SHOAL_EMOVED);
  assert_int_equal(shoal_mgr_update(A.mgr, 999), SHOAL_OK);
  assert_int_equal(shoal_session_send(A.mgr, 3, OP_LOG, 0, NULL, 0),
                   SHOAL_EMOVED);
  assert_int_equal(shoal_mgr_update(A.mgr, 1), SHOAL_OK);
  assert_int_equal(shoal_session_send(A.mgr, 3, OP_LOG, 0, NULL, 0),
                   SHOAL_ENOENT);
  /* a create of the id ends the window at once */
  assert_int_equal(new_bot(&A, 4, 0), SHOAL_OK);
  free(rec);
  rec = export_all(&A, 4, &len);
  assert_int_equal(shoal_session_release(A.mgr, 4), SHOAL_EMOVED);
  assert_int_equal(new_bot(&A, 4, 0), SHOAL_OK);
  assert_int_equal(shoal_session_get(A.mgr, 4, NULL), SHOAL_OK);
  /* MovedSeconds 0: SHOAL_ENOENT at once */
  assert_int_equal(shoal_session_import(B.mgr, rec, len), SHOAL_OK);
  free(rec);
  rec = export_all(&B, 4, &len);
  assert_int_equal(shoal_session_get(B.mgr, 4, NULL), SHOAL_ENOENT);
  free(rec);
  unmake_side(&A);
  unmake_side(&B);
}

/* ---- senders racing exports ------------------------------------------------ */

typedef struct sender {
  uint32_t index;
  uint32_t nsess;
  uint64_t per;
  uint64_t ok, moved_seen;
  _Atomic int *stop; /* senders done */
} sender;

/* Sends seq 0, 1, … to each session in turn; a send answered
 * SHOAL_EMOVED goes to B (where the host knows it went), retried until
 * the import lands; SHOAL_EAGAIN retries the same packet. */
static void *sender_main(void *p) {
  sender *s = p;
  uint32_t *next = calloc(s->nsess + 1, sizeof *next);
  for (uint64_t n = 0; n < s->per; n++) {
    uint32_t id = 1 + (uint32_t)(n % s->nsess);
    unsigned char d[8];
    shoal_mgr *to = A.mgr;
    int rc;
    memcpy(d, &s->index, 4);
    memcpy(d + 4, &next[id], 4);
    for (;;) {
      rc = shoal_session_send(to, id, OP_SEQ, 0, d, sizeof d);
      if (rc == SHOAL_OK)
        break;
      if (rc == SHOAL_EMOVED) {
        s->moved_seen++;
        to = B.mgr;
        continue;
      }
      TEST_OFF_MAIN(rc == SHOAL_EAGAIN || (rc == SHOAL_ENOENT && to == B.mgr),
                    "send to %u: rc %d", id, rc);
      if (rc != SHOAL_EAGAIN && rc != SHOAL_ENOENT)
        break;
      sched_yield();
    }
    next[id]++;
    s->ok += rc == SHOAL_OK;
  }
  free(next);
  atomic_fetch_add(s->stop, 1); /* one more sender done */
  return NULL;
}

static void senders_race(void **state) {
  enum { NSESS = 48 };
  pthread_t th[SENDERS];
  sender s[SENDERS];
  _Atomic int stop = 0;
  uint64_t sent = 0, forwarded = 0, done;
  shoal_packet_stats pa, pb;
  (void)state;
  atomic_store(&test_off_main_failures, 0);
  make_side(&A, 3600);
  make_side(&B, 3600);
  for (uint32_t id = 1; id <= NSESS; id++)
    assert_int_equal(new_bot(&A, id, 0), SHOAL_OK);
  for (int i = 0; i < SENDERS; i++) {
    s[i] = (sender){(uint32_t)i, NSESS, 20000, 0, 0, &stop};
    assert_int_equal(pthread_create(&th[i], NULL, sender_main, &s[i]), 0);
  }
  /* A updates and exports a session every few updates; B imports it and
   * updates too */
  for (uint32_t id = 1; id <= NSESS; id++) {
    unsigned char *rec;
    size_t need = 0, len;
    for (int t = 0; t < 3; t++) {
      assert_int_equal(shoal_mgr_update(A.mgr, 1), SHOAL_OK);
      assert_true(shoal_mgr_drain_deferred(A.mgr, 0, NULL) >= 0);
      assert_int_equal(shoal_mgr_update(B.mgr, 1), SHOAL_OK);
    }
    /* the size asked, then the export: packets that come between the two
     * are held, so the second call may need more */
    for (;;) {
      int rc = shoal_session_export(A.mgr, id, NULL, 0, &need);
      assert_int_equal(rc, SHOAL_ENOSPC);
      rec = malloc(need);
      rc = shoal_session_export(A.mgr, id, rec, need, &len);
      if (rc == SHOAL_OK)
        break;
      assert_int_equal(rc, SHOAL_ENOSPC);
      free(rec);
    }
    assert_int_equal(shoal_session_import(B.mgr, rec, len), SHOAL_OK);
    free(rec);
  }
  /* B takes packets while the senders finish (a full inbox would hold
   * them up) */
  while (atomic_load(&stop) < SENDERS) {
    assert_int_equal(shoal_mgr_update(B.mgr, 1), SHOAL_OK);
    assert_true(shoal_mgr_drain_deferred(B.mgr, 0, NULL) >= 0);
  }
  for (int i = 0; i < SENDERS; i++) {
    pthread_join(th[i], NULL);
    sent += s[i].ok;
    forwarded += s[i].moved_seen;
  }
  printf("# %llu packets sent, %llu sends answered SHOAL_EMOVED and "
         "forwarded\n",
         (unsigned long long)sent, (unsigned long long)forwarded);
  /* B takes what is left */
  for (int t = 0; t < 200; t++) {
    assert_int_equal(shoal_mgr_update(B.mgr, 1), SHOAL_OK);
    assert_true(shoal_mgr_drain_deferred(B.mgr, 0, NULL) >= 0);
  }
  done = atomic_load(&A.handled) + atomic_load(&B.handled);
  assert_int_equal(done, sent);
  assert_int_equal(atomic_load(&A.order_bad) + atomic_load(&B.order_bad), 0);
  for (uint32_t id = 1; id <= NSESS; id++) {
    shoal_session_info v;
    bot *b;
    assert_int_equal(shoal_session_get(B.mgr, id, &v), SHOAL_OK);
    assert_int_equal(v.state, SHOAL_SESSION_ACTIVE);
    b = v.user;
    /* every packet of every sender to it, wherever it ran */
    assert_int_equal(b->counter, b->next[0] + b->next[1]);
  }
  assert_int_equal(shoal_packet_stats_get(A.mgr, &pa, 0), SHOAL_OK);
  assert_int_equal(shoal_packet_stats_get(B.mgr, &pb, 0), SHOAL_OK);
  assert_int_equal(pa.sent, pa.rejected + pa.handled + pa.dropped +
                                pa.pending + pa.moved);
  assert_int_equal(pb.pending, 0);
  assert_int_equal(pb.sent - pb.rejected, pb.handled + pb.dropped);
  assert_int_equal(pa.handled + pb.handled, sent);
  assert_int_equal(pa.dropped + pb.dropped, 0);
  TEST_OFF_MAIN_CLEAN();
  unmake_side(&A);
  unmake_side(&B);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(round_trip),
      cmocka_unit_test(hibernated_and_idle),
      cmocka_unit_test(bad_records),
      cmocka_unit_test(refused_during_update),
      cmocka_unit_test(moved_window),
      cmocka_unit_test(senders_race),
  };
  return test_run("moves", tests, SHOAL_ARRAY_LEN(tests));
}
