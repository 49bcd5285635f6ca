/* test_payloads.c — payloads past a packet's inline bytes: every size from
 * 0 to MaxPacketBytes arrives intact (one past it is refused); the host's
 * own buffers (send_owned) are given back exactly once however the packet
 * ends — handled, rejected, unknown session, dropped at release (inbox,
 * deferred queue, held while hibernated), at destroy; the buffers' budget
 * answers SHOAL_EAGAIN and recovers; four senders racing releases leave
 * taken == freed. */
#include <pthread.h>
#include <time.h>
#include <stdatomic.h>
#include <string.h>

#include "runtime/common.h"
#include "test_util.h"

#define OP_IN 10   /* INPLACE */
#define OP_MAIN 11 /* MAIN */
#define MAXB 65536u

#if SHOAL__TSAN
#define ROUNDS 300
#define SENDS 4000
#else
#define ROUNDS 3000
#define SENDS 40000
#endif

typedef struct host {
  shoal_mgr *mgr;
  _Atomic uint64_t handled, bad, freed_owned;
  _Atomic uint64_t handled_bytes;
  _Atomic uint64_t drops[4];    /* by shoal_drop_reason */
  _Atomic uint64_t drop_bad;    /* a dropped payload that did not read back */
  _Atomic uint32_t last_drop_id;
} host;

static host H;

/* A payload's byte i for length len: checks its content end to end. */
static unsigned char pattern(size_t i, size_t len) {
  return (unsigned char)(i * 31u + len);
}

static void fill(unsigned char *b, size_t len) {
  for (size_t i = 0; i < len; i++)
    b[i] = pattern(i, len);
}

static _Atomic uint32_t fail_id; /* its update fails: quarantined */

static int upd(void *hp, uint32_t id, void *user, uint32_t diff) {
  (void)hp;
  (void)user;
  (void)diff;
  return id == atomic_load(&fail_id) ? -1 : 0;
}

static int handler(void *hp, uint32_t id, void *user, const shoal_packet *p) {
  host *h = hp;
  const unsigned char *b = p->data;
  (void)id;
  (void)user;
  for (size_t i = 0; i < p->len; i++)
    if (b[i] != pattern(i, p->len)) {
      atomic_fetch_add(&h->bad, 1);
      break;
    }
  atomic_fetch_add(&h->handled, 1);
  atomic_fetch_add(&h->handled_bytes, p->len);
  return 0;
}

static void free_owned(void *arg, void *data) {
  host *h = arg;
  free(data);
  atomic_fetch_add(&h->freed_owned, 1);
}

static int slow(void *hp, uint32_t id, void *user, const shoal_packet *p) {
  struct timespec ts = {0, 2000000}; /* 2 ms */
  (void)id;
  (void)user;
  (void)p;
  while (nanosleep(&ts, &ts) != 0)
    ;
  atomic_fetch_add(&((host *)hp)->handled, 1);
  return 0;
}

static unsigned warn_depth; /* DeferredDepthWarn for the next make */

static shoal_mgr *make(unsigned budget_mb, unsigned inbox) {
  shoal_config cfg;
  shoal_mgr_callbacks cb = {upd, NULL, &H};
  shoal_hib_callbacks hc = {test_hib_keep_id, test_hib_wake_null, NULL};
  memset(&H, 0, sizeof H);
  shoal_config_defaults(&cfg);
  cfg.worker_threads = 3; /* more than the cores CI has */
  cfg.max_sessions = 64;
  cfg.pool_preallocate = 64;
  cfg.max_packet_bytes = MAXB;
  cfg.payload_budget_mb = budget_mb;
  cfg.inbox_size = inbox;
  if (warn_depth != 0)
    cfg.deferred_warn = warn_depth;
  cfg.log = test_quiet_log;
  assert_int_equal(shoal_mgr_create(&H.mgr, NULL, &cfg, &cb), SHOAL_OK);
  assert_int_equal(shoal_mgr_register_opcode(H.mgr, OP_IN,
                                             SHOAL_PACKET_INPLACE,
                                             SHOAL_CAT_CHAT, handler, NULL),
                   SHOAL_OK);
  assert_int_equal(shoal_mgr_register_opcode(H.mgr, OP_MAIN, SHOAL_PACKET_MAIN,
                                             SHOAL_CAT_MAIL, handler, NULL),
                   SHOAL_OK);
  assert_int_equal(shoal_mgr_set_hibernation(H.mgr, &hc), SHOAL_OK);
  assert_int_equal(shoal_mgr_set_hibernation_ms(H.mgr, 1000), SHOAL_OK);
  return H.mgr;
}

/* A malloc'd payload of len bytes for send_owned. */
static void *owned(size_t len) {
  unsigned char *b = malloc(len > 0 ? len : 1);
  assert_non_null(b);
  fill(b, len);
  return b;
}

static void stats(shoal_mgr *mgr, shoal_packet_stats *st) {
  assert_int_equal(shoal_packet_stats_get(mgr, st, 0), SHOAL_OK);
}

static void settle(shoal_mgr *mgr) {
  for (int k = 0; k < 3; k++) {
    assert_int_equal(shoal_mgr_update(mgr, 1), SHOAL_OK);
    assert_true(shoal_mgr_drain_deferred(mgr, 0, NULL) >= 0);
  }
}

/* 0, 96, 97, 1000, max: intact; max + 1: refused. Copied and owned. */
static void sizes(void **state) {
  static const size_t lens[] = {0, 96, 97, 255, 256, 257, 1000, 4096, MAXB};
  static unsigned char buf[MAXB + 1];
  shoal_mgr *mgr = make(64, 256);
  shoal_packet_stats st;
  uint64_t ext = 0;
  (void)state;
  assert_int_equal(shoal_session_create(mgr, 1, NULL), SHOAL_OK);
  for (size_t k = 0; k < SHOAL_ARRAY_LEN(lens); k++) {
    fill(buf, lens[k]);
    assert_int_equal(shoal_session_send(mgr, 1, OP_IN, 0, buf, lens[k]),
                     SHOAL_OK);
    assert_int_equal(shoal_session_send(mgr, 1, OP_MAIN, 0, buf, lens[k]),
                     SHOAL_OK);
    assert_int_equal(shoal_session_send_owned(mgr, 1, OP_IN, 0,
                                              owned(lens[k]), lens[k],
                                              free_owned, &H),
                     SHOAL_OK);
    ext += 2 * (lens[k] > SHOAL_PACKET_INLINE_MAX) + 1;
  }
  assert_int_equal(shoal_session_send(mgr, 1, OP_IN, 0, buf, MAXB + 1),
                   SHOAL_EINVAL);
  assert_int_equal(shoal_session_send_owned(mgr, 1, OP_IN, 0, owned(MAXB + 1),
                                            MAXB + 1, free_owned, &H),
                   SHOAL_EINVAL);
  stats(mgr, &st);
  assert_int_equal(st.payloads_taken, ext);
  assert_true(st.payload_bytes > 0);
  settle(mgr);
  assert_int_equal(atomic_load(&H.handled), 3 * SHOAL_ARRAY_LEN(lens));
  assert_int_equal(atomic_load(&H.bad), 0);
  stats(mgr, &st);
  assert_int_equal(st.payloads_freed, ext);
  assert_int_equal(st.payload_bytes, 0);
  assert_int_equal(st.payload_buffer_bytes, 0);
  assert_true(st.payload_bytes_peak >= 3 * MAXB);
  /* every owned one given back: the sent ones and the refused one */
  assert_int_equal(atomic_load(&H.freed_owned), SHOAL_ARRAY_LEN(lens) + 1);
  assert_int_equal(shoal_mgr_destroy(mgr), SHOAL_OK);
}

/* Owned payloads come back once on every way a packet ends. */
static void every_end(void **state) {
  static unsigned char buf[5000];
  shoal_mgr *mgr = make(64, 4);
  shoal_packet_stats st;
  uint64_t sent = 0;
  (void)state;
  fill(buf, sizeof buf);
  for (uint32_t id = 1; id <= 5; id++)
    assert_int_equal(shoal_session_create(mgr, id, NULL), SHOAL_OK);
  /* errors: the payload comes back before the call returns */
  assert_int_equal(shoal_session_send_owned(NULL, 1, OP_IN, 0, owned(300), 300,
                                            free_owned, &H),
                   SHOAL_EINVAL);
  assert_int_equal(shoal_session_send_owned(mgr, 77, OP_IN, 0, owned(300), 300,
                                            free_owned, &H),
                   SHOAL_ENOENT);
  assert_int_equal(shoal_session_send_owned(mgr, 0, OP_IN, 0, owned(300), 300,
                                            free_owned, &H),
                   SHOAL_EINVAL);
  assert_int_equal(atomic_load(&H.freed_owned), 3);
  /* a full inbox (4): the fifth is refused and given back at once */
  for (int k = 0; k < 4; k++, sent++)
    assert_int_equal(shoal_session_send_owned(mgr, 1, OP_IN, 0, owned(200),
                                              200, free_owned, &H),
                     SHOAL_OK);
  assert_int_equal(shoal_session_send_owned(mgr, 1, OP_IN, 0, owned(200), 200,
                                            free_owned, &H),
                   SHOAL_EAGAIN);
  assert_int_equal(atomic_load(&H.freed_owned), 4);
  assert_int_equal(shoal_session_send(mgr, 1, OP_IN, 0, buf, sizeof buf),
                   SHOAL_EAGAIN);
  /* handled */
  settle(mgr);
  assert_int_equal(atomic_load(&H.freed_owned), 8);
  /* dropped at release: in the inbox (2), in the deferred queue (3) */
  for (int k = 0; k < 2; k++, sent++)
    assert_int_equal(shoal_session_send_owned(mgr, 2, OP_IN, 0, owned(150),
                                              150, free_owned, &H),
                     SHOAL_OK);
  assert_int_equal(shoal_session_send(mgr, 2, OP_IN, 0, buf, sizeof buf),
                   SHOAL_OK);
  for (int k = 0; k < 2; k++, sent++)
    assert_int_equal(shoal_session_send_owned(mgr, 3, OP_MAIN, 0, owned(150),
                                              150, free_owned, &H),
                     SHOAL_OK);
  assert_int_equal(shoal_session_send(mgr, 3, OP_MAIN, 0, buf, sizeof buf),
                   SHOAL_OK);
  assert_int_equal(shoal_mgr_update(mgr, 1), SHOAL_OK); /* 3's deferred */
  assert_int_equal(shoal_session_release(mgr, 2), SHOAL_OK);
  assert_int_equal(shoal_session_release(mgr, 3), SHOAL_OK);
  assert_int_equal(atomic_load(&H.freed_owned), 12);
  /* held while hibernated, then released */
  assert_int_equal(shoal_mgr_update(mgr, 1500), SHOAL_OK);
  assert_true(shoal_mgr_hibernate_idle(mgr, 0) >= 0);
  {
    shoal_hib_stats hs;
    shoal_session_info info;
    assert_int_equal(shoal_hib_stats_get(mgr, &hs, 0), SHOAL_OK);
    assert_int_equal(hs.hibernated, 3); /* 1, 4, 5 */
    assert_int_equal(shoal_session_get(mgr, 4, &info), SHOAL_OK);
    assert_int_equal(info.state, SHOAL_SESSION_HIBERNATED);
  }
  assert_int_equal(shoal_session_send_owned(mgr, 4, OP_IN, 0, owned(400), 400,
                                            free_owned, &H),
                   SHOAL_OK);
  assert_int_equal(shoal_session_send(mgr, 4, OP_IN, 0, buf, sizeof buf),
                   SHOAL_OK);
  assert_int_equal(shoal_session_release(mgr, 4), SHOAL_OK);
  assert_int_equal(atomic_load(&H.freed_owned), 13);
  /* at destroy */
  assert_int_equal(shoal_session_send_owned(mgr, 5, OP_IN, 0, owned(400), 400,
                                            free_owned, &H),
                   SHOAL_OK);
  assert_int_equal(shoal_session_send(mgr, 5, OP_MAIN, 0, buf, sizeof buf),
                   SHOAL_OK);
  stats(mgr, &st);
  assert_int_equal(st.payloads_taken - st.payloads_freed, 2);
  assert_int_equal(shoal_mgr_destroy(mgr), SHOAL_OK);
  assert_int_equal(atomic_load(&H.freed_owned), 14);
  (void)sent;
}

/* The buffers' budget: SHOAL_EAGAIN when spent, counted; back once the
 * packets are handled. */
static void budget(void **state) {
  static unsigned char buf[MAXB];
  shoal_mgr *mgr = make(1, 1024);
  shoal_packet_stats st;
  int ok = 0, rc;
  (void)state;
  fill(buf, sizeof buf);
  assert_int_equal(shoal_session_create(mgr, 1, NULL), SHOAL_OK);
  while ((rc = shoal_session_send(mgr, 1, OP_IN, 0, buf, MAXB)) == SHOAL_OK)
    ok++;
  assert_int_equal(rc, SHOAL_EAGAIN);
  assert_int_equal(ok, 16); /* 1 MiB of 64 KiB buffers */
  stats(mgr, &st);
  assert_int_equal(st.payload_refused, 1);
  assert_int_equal(st.rejected, 1);
  assert_int_equal(st.payload_buffer_bytes, 16 * MAXB);
  /* inline packets do not touch the budget */
  fill(buf, 96);
  assert_int_equal(shoal_session_send(mgr, 1, OP_IN, 0, buf, 96), SHOAL_OK);
  fill(buf, MAXB);
  settle(mgr);
  assert_int_equal(atomic_load(&H.handled), 17);
  assert_int_equal(shoal_session_send(mgr, 1, OP_IN, 0, buf, MAXB), SHOAL_OK);
  settle(mgr);
  stats(mgr, &st);
  assert_int_equal(st.payloads_taken, st.payloads_freed);
  assert_int_equal(atomic_load(&H.bad), 0);
  assert_int_equal(shoal_mgr_destroy(mgr), SHOAL_OK);
}

/* A quarantined session keeps its packets: cleared, they run and their
 * payloads come back; released while quarantined, they are dropped and
 * come back. Once each. */
static void quarantine_ends(void **state) {
  shoal_mgr *mgr = make(64, 64);
  shoal_session_info info;
  shoal_packet_stats st;
  (void)state;
  for (uint32_t id = 1; id <= 2; id++)
    assert_int_equal(shoal_session_create(mgr, id, NULL), SHOAL_OK);
  atomic_store(&fail_id, 1);
  assert_int_equal(shoal_mgr_update(mgr, 1), SHOAL_OK);
  atomic_store(&fail_id, 2);
  assert_int_equal(shoal_mgr_update(mgr, 1), SHOAL_OK);
  atomic_store(&fail_id, 0);
  for (uint32_t id = 1; id <= 2; id++) {
    assert_int_equal(shoal_session_get(mgr, id, &info), SHOAL_OK);
    assert_int_equal(info.state, SHOAL_SESSION_QUARANTINED);
    for (int k = 0; k < 3; k++)
      assert_int_equal(shoal_session_send_owned(mgr, id, OP_IN, 0,
                                                owned(500), 500, free_owned,
                                                &H),
                       SHOAL_OK);
  }
  assert_int_equal(shoal_mgr_update(mgr, 1), SHOAL_OK);
  assert_int_equal(atomic_load(&H.freed_owned), 0); /* kept */
  assert_int_equal(shoal_session_clear_quarantine(mgr, 1), SHOAL_OK);
  settle(mgr);
  assert_int_equal(atomic_load(&H.handled), 3);
  assert_int_equal(atomic_load(&H.freed_owned), 3);
  assert_int_equal(shoal_session_release(mgr, 2), SHOAL_OK);
  assert_int_equal(atomic_load(&H.freed_owned), 6);
  stats(mgr, &st);
  assert_int_equal(st.payloads_taken, st.payloads_freed);
  assert_int_equal(st.dropped, 3);
  assert_int_equal(shoal_mgr_destroy(mgr), SHOAL_OK);
  assert_int_equal(atomic_load(&H.freed_owned), 6);
}

static _Atomic uint64_t sends; /* by the senders, so far */

typedef struct sender {
  unsigned seed;
  _Atomic int *stop;
  uint64_t owned_sent; /* every send_owned call: each comes back once */
} sender;

static void *send_loop(void *arg) {
  sender *s = arg;
  unsigned char buf[3000];
  unsigned x = s->seed;
  while (!atomic_load(s->stop)) {
    uint32_t id = 1 + (x = x * 1103515245u + 12345u) % 8;
    size_t len = (x >> 8) % sizeof buf;
    fill(buf, len);
    if ((x >> 4) & 1) {
      (void)shoal_session_send_owned(H.mgr, id, (x >> 5) & 1 ? OP_MAIN : OP_IN,
                                     0, owned(len), len, free_owned, &H);
      s->owned_sent++;
    } else {
      (void)shoal_session_send(H.mgr, id, (x >> 5) & 1 ? OP_MAIN : OP_IN, 0,
                               buf, len);
    }
    atomic_fetch_add(&sends, 1);
  }
  return NULL;
}

/* Four senders against ticks, drains and sessions released and created
 * again: every payload is given back once. */
static void racing_releases(void **state) {
  shoal_mgr *mgr = make(8, 64);
  shoal_packet_stats st;
  _Atomic int stop = 0;
  sender s[4];
  pthread_t t[4];
  uint64_t owned_sent = 0;
  (void)state;
  for (uint32_t id = 1; id <= 8; id++)
    assert_int_equal(shoal_session_create(mgr, id, NULL), SHOAL_OK);
  for (int k = 0; k < 4; k++) {
    s[k] = (sender){(unsigned)k * 7919u + 1u, &stop, 0};
    assert_int_equal(pthread_create(&t[k], NULL, send_loop, &s[k]), 0);
  }
  atomic_store(&sends, 0);
  for (int r = 0; r < ROUNDS || atomic_load(&sends) < SENDS; r++) {
    uint32_t id = 1 + (uint32_t)r % 8;
    assert_int_equal(shoal_mgr_update(mgr, 1), SHOAL_OK);
    if (r % 3 == 0)
      assert_true(shoal_mgr_drain_deferred(mgr, 0, NULL) >= 0);
    if (r % 5 == 0) {
      assert_int_equal(shoal_session_release(mgr, id), SHOAL_OK);
      assert_int_equal(shoal_session_create(mgr, id, NULL), SHOAL_OK);
    }
  }
  atomic_store(&stop, 1);
  for (int k = 0; k < 4; k++) {
    pthread_join(t[k], NULL);
    owned_sent += s[k].owned_sent;
  }
  for (uint32_t id = 1; id <= 8; id++)
    assert_int_equal(shoal_session_release(mgr, id), SHOAL_OK);
  stats(mgr, &st);
  print_message("# %llu payloads, %llu of them the host's, %llu handled\n",
                (unsigned long long)st.payloads_taken,
                (unsigned long long)owned_sent,
                (unsigned long long)atomic_load(&H.handled));
  assert_true(st.payloads_taken > SENDS / 2 && owned_sent > SENDS / 4);
  assert_int_equal(st.payloads_taken, st.payloads_freed);
  assert_int_equal(st.payload_bytes, 0);
  assert_int_equal(st.payload_buffer_bytes, 0);
  assert_int_equal(st.pending, 0);
  assert_int_equal(atomic_load(&H.freed_owned), owned_sent);
  assert_int_equal(atomic_load(&H.bad), 0);
  assert_int_equal(shoal_mgr_destroy(mgr), SHOAL_OK);
}

static void on_drop(void *hp, uint32_t id, const shoal_packet *p,
                    shoal_drop_reason reason) {
  host *h = hp;
  const unsigned char *b = p->data;
  for (size_t i = 0; i < p->len; i++)
    if (b[i] != pattern(i, p->len)) {
      atomic_fetch_add(&h->drop_bad, 1);
      break;
    }
  if ((unsigned)reason < 4)
    atomic_fetch_add(&h->drops[reason], 1);
  atomic_store(&h->last_drop_id, id);
}

/* The drop hook hears of every packet dropped after it was accepted, with
 * its reason and its payload still readable; a refused send is not a
 * drop. */
static void drop_hook(void **state) {
  static unsigned char buf[3000];
  shoal_mgr *mgr = make(64, 8);
  (void)state;
  assert_int_equal(shoal_mgr_set_drop_hook(NULL, on_drop), SHOAL_EINVAL);
  assert_int_equal(shoal_mgr_set_drop_hook(mgr, on_drop), SHOAL_OK);
  for (uint32_t id = 1; id <= 4; id++)
    assert_int_equal(shoal_session_create(mgr, id, NULL), SHOAL_OK);
  /* released: one in the inbox (inline), one deferred (a buffer), one
   * owned */
  fill(buf, 3000);
  assert_int_equal(shoal_session_send(mgr, 2, OP_MAIN, 0, buf, 3000),
                   SHOAL_OK);
  assert_int_equal(shoal_mgr_update(mgr, 1), SHOAL_OK); /* 2's deferred */
  assert_int_equal(shoal_session_send(mgr, 1, OP_IN, 0, buf, 3000), SHOAL_OK);
  fill(buf, 40);
  assert_int_equal(shoal_session_send(mgr, 1, OP_IN, 0, buf, 40), SHOAL_OK);
  fill(buf, 3000);
  assert_int_equal(shoal_session_send_owned(mgr, 1, OP_IN, 0, owned(500), 500,
                                            free_owned, &H),
                   SHOAL_OK);
  assert_int_equal(shoal_session_release(mgr, 1), SHOAL_OK);
  assert_int_equal(atomic_load(&H.last_drop_id), 1);
  assert_int_equal(shoal_session_release(mgr, 2), SHOAL_OK);
  assert_int_equal(atomic_load(&H.drops[SHOAL_DROP_RELEASED]), 4);
  assert_int_equal(atomic_load(&H.freed_owned), 1);
  /* no handler: an unregistered opcode with no default handler */
  assert_int_equal(shoal_session_send(mgr, 3, 999, 0, buf, 3000), SHOAL_OK);
  settle(mgr);
  assert_int_equal(atomic_load(&H.drops[SHOAL_DROP_NO_HANDLER]), 1);
  /* refused: not a drop */
  assert_int_equal(shoal_session_send(mgr, 77, OP_IN, 0, buf, 10),
                   SHOAL_ENOENT);
  /* at destroy */
  assert_int_equal(shoal_session_send(mgr, 4, OP_IN, 0, buf, 3000), SHOAL_OK);
  assert_int_equal(shoal_session_send(mgr, 3, OP_MAIN, 0, buf, 3000),
                   SHOAL_OK);
  assert_int_equal(shoal_mgr_destroy(mgr), SHOAL_OK);
  assert_int_equal(atomic_load(&H.drops[SHOAL_DROP_DESTROYED]), 2);
  assert_int_equal(atomic_load(&H.drops[SHOAL_DROP_RELEASED]), 4);
  assert_int_equal(atomic_load(&H.drop_bad), 0);
}

/* The drain's time budget, counted in packets (each takes ≥ 2 ms); the
 * depth alarm once per crossing; a session's deferred count. */
static void drain_budget_and_alarm(void **state) {
  shoal_mgr *mgr;
  shoal_packet_stats st;
  shoal_session_info info;
  long ran;
  size_t left;
  (void)state;
  warn_depth = 10;
  mgr = make(64, 256);
  warn_depth = 0;
  assert_int_equal(shoal_mgr_register_opcode(mgr, 12, SHOAL_PACKET_MAIN,
                                             SHOAL_CAT_MAIL, slow, NULL),
                   SHOAL_OK);
  assert_int_equal(shoal_session_create(mgr, 1, NULL), SHOAL_OK);
  for (int k = 0; k < 30; k++)
    assert_int_equal(shoal_session_send(mgr, 1, 12, 0, NULL, 0), SHOAL_OK);
  assert_int_equal(shoal_mgr_update(mgr, 1), SHOAL_OK);
  stats(mgr, &st);
  assert_int_equal(st.deferred_now, 30);
  assert_int_equal(st.deferred_alarms, 1);
  assert_int_equal(shoal_session_get(mgr, 1, &info), SHOAL_OK);
  assert_int_equal(info.deferred, 30);
  /* 10 ms: at most 5 packets of 2 ms start, at least one runs */
  ran = shoal_mgr_drain_deferred_timed(mgr, 0, 10000, &left);
  assert_in_range(ran, 1, 6);
  assert_int_equal(left, 30 - (size_t)ran);
  assert_int_equal(shoal_session_get(mgr, 1, &info), SHOAL_OK);
  assert_int_equal(info.deferred, 30 - (uint32_t)ran);
  /* still past half of it: no second alarm */
  for (int k = 0; k < 3; k++)
    assert_int_equal(shoal_session_send(mgr, 1, 12, 0, NULL, 0), SHOAL_OK);
  assert_int_equal(shoal_mgr_update(mgr, 1), SHOAL_OK);
  stats(mgr, &st);
  assert_int_equal(st.deferred_alarms, 1);
  /* drained: re-armed; crossing again alarms again */
  while (shoal_mgr_drain_deferred(mgr, 0, &left) > 0 || left > 0)
    ;
  for (int k = 0; k < 12; k++)
    assert_int_equal(shoal_session_send(mgr, 1, 12, 0, NULL, 0), SHOAL_OK);
  assert_int_equal(shoal_mgr_update(mgr, 1), SHOAL_OK);
  stats(mgr, &st);
  assert_int_equal(st.deferred_alarms, 2);
  assert_int_equal(shoal_mgr_drain_deferred_timed(NULL, 0, 1, NULL),
                   SHOAL_EINVAL);
  assert_int_equal(shoal_mgr_destroy(mgr), SHOAL_OK);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(sizes),
      cmocka_unit_test(every_end),
      cmocka_unit_test(budget),
      cmocka_unit_test(quarantine_ends),
      cmocka_unit_test(racing_releases),
      cmocka_unit_test(drop_hook),
      cmocka_unit_test(drain_budget_and_alarm),
  };
  return test_run("payloads", tests, SHOAL_ARRAY_LEN(tests));
}
