/* test_packets.c — packets through shoal.h: the opcode table (every
 * category, the default for unregistered opcodes, reasons), payloads,
 * bad input, ten threads sending while the main thread ticks and drains
 * (every accepted packet handled exactly once, sent == handled + pending +
 * rejected, per-sender order), the drain's caps, strict and loose order,
 * fairness against a flooding session, MAIN handlers only ever on the
 * main thread outside the tick, deferral switched off, and packets left
 * for later ticks (the per-update limit, sessions not due). */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "runtime/sched/scheduler.h"
#include "test_util.h"

#if SHOAL__TSAN
#define SCALE 4
#else
#define SCALE 1
#endif

/* Opcodes: 100 + category is registered with the class a game server
 * gives that category; 1000 + category likewise, the other class. */
static shoal_packet_class class_of(shoal_packet_category c) {
  switch (c) {
  case SHOAL_CAT_SPELL: case SHOAL_CAT_ITEM: case SHOAL_CAT_COMBAT:
  case SHOAL_CAT_LOOT: case SHOAL_CAT_TRADE: case SHOAL_CAT_QUEST:
  case SHOAL_CAT_GROUP: case SHOAL_CAT_RESURRECTION: case SHOAL_CAT_MAIL:
  case SHOAL_CAT_AUCTION: case SHOAL_CAT_BANK: case SHOAL_CAT_VENDOR:
    return SHOAL_PACKET_MAIN;
  default:
    return SHOAL_PACKET_INPLACE;
  }
}

#define SENDERS 10
#define SESSIONS 200
#define PER_SENDER 20000

/* What a packet carries in these tests. */
typedef struct body {
  uint32_t sender, seq, session;
  uint8_t expect_main; /* its class */
} body;

typedef struct host {
  shoal_runtime *rt;
  shoal_mgr *mgr;
  pthread_t main_thread;
  _Atomic int in_update;     /* the main thread is inside update */
  _Atomic uint32_t main_on_worker; /* MAIN handler not on the main thread
                                      outside update */
  _Atomic uint32_t inplace_off_worker;
  _Atomic uint32_t bad_payload;
  _Atomic uint64_t handled;
  /* per session, per sender: the last seq handled + 1 */
  uint32_t last[SESSIONS + 1][SENDERS];
  _Atomic uint32_t order_violations;
  _Atomic uint8_t *seen[SENDERS]; /* per sender, per seq */
  _Atomic uint32_t twice;
  int loose;                  /* strict order off: check MAIN order only */
  uint32_t last_main[SESSIONS + 1][SENDERS];
  /* a log of the handled seqs of session 1 from sender 0 */
  uint32_t log[4096];
  _Atomic uint32_t nlog;
} host;

static int on_update(void *h_, uint32_t id, void *user, uint32_t diff) {
  (void)h_;
  (void)id;
  (void)user;
  (void)diff;
  return 0;
}

static int on_packet(void *h_, uint32_t session, void *user,
                     const shoal_packet *p) {
  host *h = h_;
  body b;
  int on_main = pthread_equal(pthread_self(), h->main_thread) &&
                !atomic_load(&h->in_update);
  (void)user;
  if (p->len != sizeof b || p->flags != (uint16_t)(p->opcode * 3)) {
    atomic_fetch_add(&h->bad_payload, 1);
    return 0;
  }
  memcpy(&b, p->data, sizeof b);
  if (b.session != session)
    atomic_fetch_add(&h->bad_payload, 1);
  if (b.expect_main && !on_main)
    atomic_fetch_add(&h->main_on_worker, 1);
  if (!b.expect_main && on_main && h->loose)
    atomic_fetch_add(&h->inplace_off_worker, 1);
  if (b.sender < SENDERS && session <= SESSIONS) {
    /* the same session never runs on two threads at once, so its row is
     * this thread's now */
    if (!h->loose || b.expect_main) {
      uint32_t *last = h->loose ? &h->last_main[session][b.sender]
                                : &h->last[session][b.sender];
      if (b.seq + 1 <= *last)
        atomic_fetch_add(&h->order_violations, 1);
      *last = b.seq + 1;
    }
    if (h->seen[b.sender] != NULL &&
        atomic_fetch_add(&h->seen[b.sender][b.seq], 1) != 0)
      atomic_fetch_add(&h->twice, 1);
  }
  if (session == 1 && b.sender == 0) {
    uint32_t k = atomic_fetch_add(&h->nlog, 1);
    if (k < 4096)
      h->log[k] = b.seq;
  }
  atomic_fetch_add(&h->handled, 1);
  return 0;
}

static host *host_new(unsigned workers, const shoal_config *cfg) {
  host *h = calloc(1, sizeof *h);
  shoal_runtime_config rc;
  shoal_mgr_callbacks cb = {on_update, NULL, h};
  shoal_runtime_config_defaults(&rc);
  rc.workers = workers;
  rc.log = test_quiet_log;
  h->main_thread = pthread_self();
  assert_int_equal(shoal_runtime_create(&h->rt, &rc), SHOAL_OK);
  assert_int_equal(shoal_mgr_create(&h->mgr, h->rt, cfg, &cb), SHOAL_OK);
  for (int c = 0; c < SHOAL_CAT_COUNT; c++) {
    char why[64];
    snprintf(why, sizeof why, "%s packets", shoal_packet_category_name(c));
    assert_int_equal(shoal_mgr_register_opcode(h->mgr, (uint16_t)(100 + c),
                                               class_of(c), c, on_packet,
                                               why), SHOAL_OK);
    assert_int_equal(shoal_mgr_register_opcode(
                         h->mgr, (uint16_t)(1000 + c),
                         class_of(c) == SHOAL_PACKET_MAIN
                             ? SHOAL_PACKET_INPLACE : SHOAL_PACKET_MAIN,
                         c, on_packet, NULL), SHOAL_OK);
  }
  return h;
}

static void host_free(host *h) {
  assert_int_equal(shoal_mgr_destroy(h->mgr), SHOAL_OK);
  assert_int_equal(shoal_runtime_destroy(h->rt), SHOAL_OK);
  for (int s = 0; s < SENDERS; s++)
    free((void *)h->seen[s]);
  free(h);
}

static shoal_config cfg_of(unsigned inbox) {
  shoal_config c;
  shoal_config_defaults(&c);
  c.max_sessions = 1000;
  c.pool_preallocate = 100;
  c.batch_size = 16;
  c.inbox_size = inbox;
  c.log = test_quiet_log;
  return c;
}

static void update(host *h) {
  atomic_store(&h->in_update, 1);
  assert_int_equal(shoal_mgr_update(h->mgr, 50), SHOAL_OK);
  atomic_store(&h->in_update, 0);
}

static int send_one(host *h, uint32_t session, uint16_t opcode,
                    uint32_t sender, uint32_t seq) {
  body b;
  memset(&b, 0, sizeof b);
  b.sender = sender;
  b.seq = seq;
  b.session = session;
  b.expect_main = opcode >= 1000 ? class_of(opcode - 1000) != SHOAL_PACKET_MAIN
                                 : class_of(opcode - 100) == SHOAL_PACKET_MAIN;
  return shoal_session_send(h->mgr, session, opcode, (uint16_t)(opcode * 3),
                            &b, sizeof b);
}

/* Ticks and drains until nothing is pending. */
static void settle(host *h) {
  shoal_packet_stats st;
  for (int i = 0; i < 10000; i++) {
    update(h);
    assert_true(shoal_mgr_drain_deferred(h->mgr, 0, NULL) >= 0);
    assert_int_equal(shoal_packet_stats_get(h->mgr, &st, 0), SHOAL_OK);
    if (st.pending == 0)
      return;
  }
  fail_msg("packets still pending after 10000 ticks");
}

/* ---- the opcode table --------------------------------------------------- */

static void classifier(void **state) {
  shoal_config cfg = cfg_of(256);
  host *h = host_new(2, &cfg);
  shoal_opcode_info info;
  shoal_packet_stats st;
  (void)state;
  for (int c = 0; c < SHOAL_CAT_COUNT; c++) {
    char why[64];
    assert_non_null(shoal_packet_category_name(c));
    assert_int_equal(shoal_mgr_opcode_info(h->mgr, (uint16_t)(100 + c),
                                           &info), SHOAL_OK);
    assert_int_equal(info.registered, 1);
    assert_int_equal(info.cls, class_of(c));
    assert_int_equal(info.category, c);
    snprintf(why, sizeof why, "%s packets", shoal_packet_category_name(c));
    assert_string_equal(info.reason, why);
  }
  assert_string_equal(shoal_packet_category_name(SHOAL_CAT_MOVEMENT),
                      "movement");
  assert_null(shoal_packet_category_name(SHOAL_CAT_COUNT));
  /* unregistered: MAIN, other, a reason that says so */
  assert_int_equal(shoal_mgr_opcode_info(h->mgr, 65535, &info), SHOAL_OK);
  assert_int_equal(info.registered, 0);
  assert_int_equal(info.cls, SHOAL_PACKET_MAIN);
  assert_int_equal(info.category, SHOAL_CAT_OTHER);
  assert_non_null(strstr(info.reason, "main thread"));
  /* every category's packets land in their class: MAIN ones only on the
   * main thread outside update, INPLACE ones inside update */
  assert_int_equal(shoal_session_create(h->mgr, 1, NULL), SHOAL_OK);
  for (uint32_t seq = 0; seq < SHOAL_CAT_COUNT; seq++)
    assert_int_equal(send_one(h, 1, (uint16_t)(100 + seq), 1, seq),
                     SHOAL_OK);
  update(h);
  assert_int_equal(shoal_packet_stats_get(h->mgr, &st, 0), SHOAL_OK);
  /* strict order (the default) deferred the INPLACE ones behind the
   * first MAIN one (spell, category 0) */
  assert_int_equal(st.handled, 0);
  assert_int_equal(st.deferred_now, SHOAL_CAT_COUNT);
  assert_int_equal(shoal_mgr_drain_deferred(h->mgr, 0, NULL),
                   SHOAL_CAT_COUNT);
  assert_int_equal(shoal_packet_stats_get(h->mgr, &st, 0), SHOAL_OK);
  assert_int_equal(st.handled, SHOAL_CAT_COUNT);
  for (int c = 0; c < SHOAL_CAT_COUNT; c++)
    assert_int_equal(st.by_category[c], 1);
  assert_int_equal(st.by_class[SHOAL_PACKET_MAIN] +
                       st.by_class[SHOAL_PACKET_INPLACE], SHOAL_CAT_COUNT);
  assert_int_equal(atomic_load(&h->main_on_worker), 0);
  assert_int_equal(atomic_load(&h->bad_payload), 0);
  /* unregistered, no default handler: dropped and counted */
  assert_int_equal(shoal_session_send(h->mgr, 1, 4242, 0, NULL, 0), SHOAL_OK);
  update(h);
  assert_int_equal(shoal_mgr_drain_deferred(h->mgr, 0, NULL), 1);
  assert_int_equal(shoal_packet_stats_get(h->mgr, &st, 0), SHOAL_OK);
  assert_int_equal(st.dropped, 1);
  /* with a default handler it runs there, on the main thread */
  assert_int_equal(shoal_mgr_set_default_handler(h->mgr, on_packet),
                   SHOAL_OK);
  assert_int_equal(send_one(h, 1, 100, 1, 100), SHOAL_OK); /* registered */
  {
    body b = {1, 101, 1, 1};
    assert_int_equal(shoal_session_send(h->mgr, 1, 4242, 4242 * 3, &b,
                                        sizeof b), SHOAL_OK);
  }
  update(h);
  assert_int_equal(shoal_mgr_drain_deferred(h->mgr, 0, NULL), 2);
  assert_int_equal(atomic_load(&h->main_on_worker), 0);
  assert_int_equal(atomic_load(&h->bad_payload), 0);
  assert_int_equal(shoal_packet_stats_get(h->mgr, &st, 0), SHOAL_OK);
  assert_int_equal(st.handled, SHOAL_CAT_COUNT + 2);
  assert_int_equal(st.sent, st.handled + st.dropped + st.pending +
                                st.rejected);
  host_free(h);
}

/* ---- bad input ---------------------------------------------------------- */

static int nested_drain(void *h_, uint32_t session, void *user,
                        const shoal_packet *p) {
  host *h = h_;
  (void)session;
  (void)user;
  (void)p;
  /* from a handler: neither a drain nor an update nor the table */
  if (shoal_mgr_drain_deferred(h->mgr, 0, NULL) != SHOAL_ESTATE ||
      shoal_mgr_update(h->mgr, 1) != SHOAL_ESTATE ||
      shoal_mgr_register_opcode(h->mgr, 1, SHOAL_PACKET_MAIN,
                                SHOAL_CAT_OTHER, on_packet, NULL) !=
          SHOAL_ESTATE)
    atomic_fetch_add(&h->bad_payload, 1);
  /* a release from a handler waits for the drain's end (the second
   * packet finds it released already) */
  {
    int rc = shoal_session_release(h->mgr, 2);
    if (rc != SHOAL_OK && rc != SHOAL_ENOENT)
      atomic_fetch_add(&h->bad_payload, 1);
  }
  atomic_fetch_add(&h->handled, 1);
  return -1;
}

static void bad_input(void **state) {
  shoal_config cfg = cfg_of(4);
  host *h = host_new(2, &cfg);
  shoal_packet_stats st;
  static unsigned char big[65536 + 1]; /* MaxPacketBytes + 1 */
  (void)state;
  assert_int_equal(shoal_session_create(h->mgr, 1, NULL), SHOAL_OK);
  assert_int_equal(shoal_session_create(h->mgr, 2, NULL), SHOAL_OK);
  assert_int_equal(shoal_session_send(NULL, 1, 1, 0, NULL, 0), SHOAL_EINVAL);
  assert_int_equal(shoal_session_send(h->mgr, 0, 1, 0, NULL, 0),
                   SHOAL_EINVAL);
  assert_int_equal(shoal_session_send(h->mgr, 1, 1, 0, big, sizeof big),
                   SHOAL_EINVAL);
  assert_int_equal(shoal_session_send(h->mgr, 1, 1, 0, big, sizeof big - 1),
                   SHOAL_OK);
  assert_int_equal(shoal_session_send(h->mgr, 1, 1, 0, NULL, 3),
                   SHOAL_EINVAL);
  assert_int_equal(shoal_session_send(h->mgr, 77, 1, 0, NULL, 0),
                   SHOAL_ENOENT);
  assert_int_equal(shoal_mgr_register_opcode(h->mgr, 5, 7, SHOAL_CAT_OTHER,
                                             on_packet, NULL), SHOAL_EINVAL);
  assert_int_equal(shoal_mgr_register_opcode(h->mgr, 5, SHOAL_PACKET_MAIN,
                                             SHOAL_CAT_COUNT, on_packet,
                                             NULL), SHOAL_EINVAL);
  assert_int_equal(shoal_mgr_register_opcode(h->mgr, 5, SHOAL_PACKET_MAIN,
                                             SHOAL_CAT_OTHER, NULL, NULL),
                   SHOAL_EINVAL);
  assert_int_equal(shoal_mgr_drain_deferred(NULL, 0, NULL), SHOAL_EINVAL);
  assert_int_equal(shoal_packet_stats_get(h->mgr, NULL, 0), SHOAL_EINVAL);
  /* a full inbox (4): back-pressure, counted; what was accepted stays */
  for (int i = 0; i < 3; i++)
    assert_int_equal(shoal_session_send(h->mgr, 1, 1, 0, NULL, 0), SHOAL_OK);
  assert_int_equal(shoal_session_send(h->mgr, 1, 1, 0, NULL, 0),
                   SHOAL_EAGAIN);
  assert_int_equal(shoal_packet_stats_get(h->mgr, &st, 0), SHOAL_OK);
  assert_int_equal(st.sent, 5);
  assert_int_equal(st.rejected, 1);
  assert_int_equal(st.pending, 4);
  assert_int_equal(st.invalid, 4);
  /* released with packets waiting: dropped, counted; sends then fail */
  assert_int_equal(shoal_session_send(h->mgr, 2, 1, 0, NULL, 0), SHOAL_OK);
  assert_int_equal(shoal_session_release(h->mgr, 2), SHOAL_OK);
  assert_int_equal(shoal_session_send(h->mgr, 2, 1, 0, NULL, 0),
                   SHOAL_ENOENT);
  assert_int_equal(shoal_packet_stats_get(h->mgr, &st, 0), SHOAL_OK);
  assert_int_equal(st.dropped, 1);
  assert_int_equal(st.sent, st.handled + st.dropped + st.pending +
                                st.rejected);
  /* calls from a MAIN handler */
  assert_int_equal(shoal_session_create(h->mgr, 2, NULL), SHOAL_OK);
  assert_int_equal(shoal_mgr_register_opcode(h->mgr, 9, SHOAL_PACKET_MAIN,
                                             SHOAL_CAT_OTHER, nested_drain,
                                             "nested"), SHOAL_OK);
  assert_int_equal(shoal_session_send(h->mgr, 2, 9, 0, NULL, 0), SHOAL_OK);
  assert_int_equal(shoal_session_send(h->mgr, 2, 9, 0, NULL, 0), SHOAL_OK);
  update(h);
  /* the second packet of session 2 still runs in this drain: its release
   * takes effect at the drain's end; session 1's four unregistered
   * packets leave the queue too, dropped for want of a handler */
  assert_int_equal(shoal_mgr_drain_deferred(h->mgr, 0, NULL), 2 + 4);
  assert_int_equal(atomic_load(&h->bad_payload), 0);
  assert_int_equal(shoal_session_get(h->mgr, 2, NULL), SHOAL_ENOENT);
  assert_int_equal(shoal_packet_stats_get(h->mgr, &st, 0), SHOAL_OK);
  assert_int_equal(st.failed, 2);
  host_free(h);
}

/* ---- ten senders -------------------------------------------------------- */

typedef struct sender {
  host *h;
  uint32_t id;
  uint32_t accepted, rejected;
  uint8_t *ok; /* per seq: accepted */
  _Atomic int *done;
  pthread_barrier_t *burst; /* passed when every sender's burst is sent */
} sender;

/* Each sender's first BURST packets go to session 1 before the main thread
 * ticks: SENDERS x BURST passes an inbox of 32, so some are rejected
 * whatever the scheduling. */
#define BURST 8

static void *send_loop(void *arg) {
  sender *s = arg;
  unsigned seed = 1234u + s->id;
  for (uint32_t seq = 0; seq < PER_SENDER / SCALE; seq++) {
    uint32_t session = (uint32_t)rand_r(&seed) % SESSIONS + 1;
    int c = rand_r(&seed) % SHOAL_CAT_COUNT;
    if (seq < BURST)
      session = 1;
    else if (seq == BURST)
      pthread_barrier_wait(s->burst);
    uint16_t op = (uint16_t)((rand_r(&seed) & 1 ? 100 : 1000) + c);
    int rc = send_one(s->h, session, op, s->id, seq);
    if (rc == SHOAL_OK) {
      s->accepted++;
      s->ok[seq] = 1;
    } else if (rc == SHOAL_EAGAIN) {
      s->rejected++;
    } else {
      fail_msg("send: %d", rc);
    }
  }
  atomic_fetch_add(s->done, 1);
  return NULL;
}

static void concurrent_senders(int strict) {
  shoal_config cfg = cfg_of(32);
  host *h;
  sender s[SENDERS];
  pthread_t th[SENDERS];
  shoal_packet_stats st;
  uint64_t accepted = 0, rejected = 0;
  _Atomic int *done = calloc(1, sizeof *done);
  pthread_barrier_t burst;
  pthread_barrier_init(&burst, NULL, SENDERS + 1);
  cfg.strict_packet_order = strict;
  h = host_new(4, &cfg);
  h->loose = !strict;
  for (uint32_t id = 1; id <= SESSIONS; id++)
    assert_int_equal(shoal_session_create(h->mgr, id, NULL), SHOAL_OK);
  for (uint32_t i = 0; i < SENDERS; i++) {
    h->seen[i] = calloc(PER_SENDER, sizeof(_Atomic uint8_t));
    s[i] = (sender){h, i, 0, 0, calloc(PER_SENDER, 1), done, &burst};
    pthread_create(&th[i], NULL, send_loop, &s[i]);
  }
  pthread_barrier_wait(&burst);
  /* the main thread ticks and drains while they send */
  while (atomic_load(done) < SENDERS) {
    update(h);
    assert_true(shoal_mgr_drain_deferred(h->mgr, 500, NULL) >= 0);
  }
  for (uint32_t i = 0; i < SENDERS; i++)
    pthread_join(th[i], NULL);
  pthread_barrier_destroy(&burst);
  settle(h);
  for (uint32_t i = 0; i < SENDERS; i++) {
    accepted += s[i].accepted;
    rejected += s[i].rejected;
    /* exactly the accepted ones were handled, each once */
    for (uint32_t seq = 0; seq < PER_SENDER / SCALE; seq++)
      if (s[i].ok[seq] != atomic_load(&h->seen[i][seq]))
        fail_msg("sender %u seq %u: accepted %u, handled %u times", i, seq,
                 s[i].ok[seq], atomic_load(&h->seen[i][seq]));
    free(s[i].ok);
  }
  assert_int_equal(shoal_packet_stats_get(h->mgr, &st, 0), SHOAL_OK);
  assert_int_equal(st.sent, accepted + rejected);
  assert_int_equal(st.rejected, rejected);
  assert_int_equal(st.handled, accepted);
  assert_int_equal(atomic_load(&h->handled), accepted);
  assert_int_equal(st.pending, 0);
  assert_int_equal(st.dropped, 0);
  assert_int_equal(st.sent, st.handled + st.pending + st.rejected);
  assert_true(rejected >= SENDERS * BURST - 32); /* the burst's, at least */
  assert_int_equal(atomic_load(&h->twice), 0);
  assert_int_equal(atomic_load(&h->order_violations), 0);
  assert_int_equal(atomic_load(&h->main_on_worker), 0);
  assert_int_equal(atomic_load(&h->bad_payload), 0);
  if (strict)
    assert_int_equal(st.deferred_now, 0);
  free((void *)done);
  host_free(h);
}

static void senders_strict(void **state) {
  (void)state;
  concurrent_senders(1);
}

static void senders_loose(void **state) {
  (void)state;
  concurrent_senders(0);
}

/* ---- sends racing releases and re-creates --------------------------------- */

typedef struct churner {
  host *h;
  _Atomic int *stop;
  unsigned seed;
  uint32_t ok, other;
} churner;

static void *churn_send(void *arg) {
  churner *c = arg;
  while (!atomic_load(c->stop)) {
    uint32_t session = (uint32_t)rand_r(&c->seed) % 50 + 1;
    uint16_t op = (uint16_t)(100 + rand_r(&c->seed) % SHOAL_CAT_COUNT);
    body b = {SENDERS, 0, session, 0};
    int rc = shoal_session_send(c->h->mgr, session, op, (uint16_t)(op * 3),
                                &b, sizeof b);
    if (rc == SHOAL_OK)
      c->ok++;
    else if (rc != SHOAL_ENOENT && rc != SHOAL_EAGAIN)
      c->other++;
  }
  return NULL;
}

static void *churn_sessions(void *arg) {
  churner *c = arg;
  while (!atomic_load(c->stop)) {
    uint32_t session = (uint32_t)rand_r(&c->seed) % 50 + 1;
    if (rand_r(&c->seed) & 1)
      (void)shoal_session_release(c->h->mgr, session);
    else
      (void)shoal_session_create(c->h->mgr, session, NULL);
  }
  return NULL;
}

/* Sessions released and created again while four threads send to them
 * and the main thread ticks and drains: nothing crashes (ASan), nothing
 * races (TSan), and every packet is still accounted for. */
static void release_races(void **state) {
  shoal_config cfg = cfg_of(8);
  host *h = host_new(3, &cfg);
  _Atomic int stop = 0;
  churner c[6];
  pthread_t th[6];
  shoal_packet_stats st;
  (void)state;
  h->loose = 1; /* ids come and go: no order to check across lives */
  for (uint32_t id = 1; id <= 50; id++)
    assert_int_equal(shoal_session_create(h->mgr, id, NULL), SHOAL_OK);
  for (int i = 0; i < 6; i++) {
    c[i] = (churner){h, &stop, 99u + (unsigned)i, 0, 0};
    pthread_create(&th[i], NULL, i < 4 ? churn_send : churn_sessions, &c[i]);
  }
  for (int t = 0; t < 300 / SCALE; t++) {
    update(h);
    assert_true(shoal_mgr_drain_deferred(h->mgr, 0, NULL) >= 0);
  }
  atomic_store(&stop, 1);
  for (int i = 0; i < 6; i++) {
    pthread_join(th[i], NULL);
    assert_int_equal(c[i].other, 0);
  }
  settle(h);
  assert_int_equal(shoal_packet_stats_get(h->mgr, &st, 0), SHOAL_OK);
  assert_int_equal(st.pending, 0);
  assert_int_equal(st.sent, st.handled + st.dropped + st.rejected);
  assert_int_equal(atomic_load(&h->handled), st.handled);
  assert_int_equal(c[0].ok + c[1].ok + c[2].ok + c[3].ok,
                   st.sent - st.rejected);
  assert_int_equal(atomic_load(&h->bad_payload), 0);
  assert_int_equal(atomic_load(&h->main_on_worker), 0);
  host_free(h);
}

/* ---- the drain ---------------------------------------------------------- */

static void drain_cap(void **state) {
  shoal_config cfg = cfg_of(256);
  host *h = host_new(2, &cfg);
  size_t left = 0;
  (void)state;
  assert_int_equal(shoal_session_create(h->mgr, 1, NULL), SHOAL_OK);
  for (uint32_t seq = 0; seq < 100; seq++)
    assert_int_equal(send_one(h, 1, 100 + SHOAL_CAT_SPELL, 0, seq),
                     SHOAL_OK);
  update(h);
  assert_int_equal(shoal_mgr_drain_deferred(h->mgr, 50, &left), 50);
  assert_int_equal(left, 50);
  assert_int_equal(atomic_load(&h->nlog), 50);
  for (uint32_t k = 0; k < 50; k++)
    assert_int_equal(h->log[k], k);
  /* budget 0: the per-session share, 50 */
  assert_int_equal(shoal_mgr_drain_deferred(h->mgr, 0, &left), 50);
  assert_int_equal(left, 0);
  for (uint32_t k = 0; k < 100; k++)
    assert_int_equal(h->log[k], k);
  /* a share of 7 per session per call */
  assert_int_equal(shoal_mgr_destroy(h->mgr), SHOAL_OK);
  {
    shoal_mgr_callbacks cb = {on_update, NULL, h};
    cfg.deferred_per_session = 7;
    assert_int_equal(shoal_mgr_create(&h->mgr, h->rt, &cfg, &cb), SHOAL_OK);
    assert_int_equal(shoal_mgr_register_opcode(h->mgr, 100, SHOAL_PACKET_MAIN,
                                               SHOAL_CAT_SPELL, on_packet,
                                               NULL), SHOAL_OK);
  }
  assert_int_equal(shoal_session_create(h->mgr, 1, NULL), SHOAL_OK);
  assert_int_equal(shoal_session_create(h->mgr, 2, NULL), SHOAL_OK);
  for (uint32_t seq = 0; seq < 20; seq++) {
    assert_int_equal(send_one(h, 1, 100, 1, seq), SHOAL_OK);
    assert_int_equal(send_one(h, 2, 100, 1, seq), SHOAL_OK);
  }
  update(h);
  assert_int_equal(shoal_mgr_drain_deferred(h->mgr, 0, &left), 14);
  assert_int_equal(left, 26);
  assert_int_equal(shoal_mgr_drain_deferred(h->mgr, 100, &left), 14);
  assert_int_equal(shoal_mgr_drain_deferred(h->mgr, 100, &left), 12);
  assert_int_equal(left, 0);
  assert_int_equal(atomic_load(&h->order_violations), 0);
  host_free(h);
}

/* Strict order defers an INPLACE packet behind an earlier MAIN one; loose
 * order runs it at once, ahead of it. */
static void order_modes(void **state) {
  (void)state;
  for (int strict = 1; strict >= 0; strict--) {
    shoal_config cfg = cfg_of(256);
    host *h;
    shoal_packet_stats st;
    cfg.strict_packet_order = strict;
    h = host_new(2, &cfg);
    h->loose = !strict;
    assert_int_equal(shoal_session_create(h->mgr, 1, NULL), SHOAL_OK);
    assert_int_equal(send_one(h, 1, 100 + SHOAL_CAT_SPELL, 0, 0), SHOAL_OK);
    assert_int_equal(send_one(h, 1, 100 + SHOAL_CAT_CHAT, 0, 1), SHOAL_OK);
    assert_int_equal(send_one(h, 1, 100 + SHOAL_CAT_LOOT, 0, 2), SHOAL_OK);
    update(h);
    assert_int_equal(shoal_mgr_drain_deferred(h->mgr, 0, NULL),
                     strict ? 3 : 2);
    assert_int_equal(atomic_load(&h->nlog), 3);
    if (strict) {
      assert_int_equal(h->log[0], 0);
      assert_int_equal(h->log[1], 1);
      assert_int_equal(h->log[2], 2);
    } else { /* the chat packet ran during the tick */
      assert_int_equal(h->log[0], 1);
      assert_int_equal(h->log[1], 0);
      assert_int_equal(h->log[2], 2);
    }
    assert_int_equal(shoal_packet_stats_get(h->mgr, &st, 0), SHOAL_OK);
    assert_int_equal(st.inplace_on_main, strict ? 1 : 0);
    assert_int_equal(atomic_load(&h->main_on_worker), 0);
    assert_int_equal(atomic_load(&h->inplace_off_worker), 0);
    host_free(h);
  }
}

/* One session floods; another's single packet runs in the first drain. */
static void fairness(void **state) {
  shoal_config cfg = cfg_of(256);
  host *h = host_new(2, &cfg);
  shoal_packet_stats st;
  (void)state;
  assert_int_equal(shoal_session_create(h->mgr, 1, NULL), SHOAL_OK);
  assert_int_equal(shoal_session_create(h->mgr, 2, NULL), SHOAL_OK);
  for (uint32_t seq = 0; seq < 200; seq++)
    assert_int_equal(send_one(h, 1, 100 + SHOAL_CAT_ITEM, 0, seq), SHOAL_OK);
  update(h);
  /* the flood is deferred first; the single packet comes after it */
  assert_int_equal(send_one(h, 2, 100 + SHOAL_CAT_ITEM, 5, 0), SHOAL_OK);
  update(h);
  assert_int_equal(shoal_mgr_drain_deferred(h->mgr, 2, NULL), 2);
  assert_int_equal(h->last[2][5], 1); /* session 2's packet ran */
  assert_int_equal(shoal_packet_stats_get(h->mgr, &st, 0), SHOAL_OK);
  assert_int_equal(st.deferred_now, 199);
  assert_int_equal(st.deferred_max, 201);
  host_free(h);
}

/* DeferPackets = 0: everything on the worker, MAIN packets included. */
static int where(void *h_, uint32_t session, void *user,
                 const shoal_packet *p) {
  host *h = h_;
  (void)session;
  (void)user;
  (void)p;
  if (!atomic_load(&h->in_update))
    atomic_fetch_add(&h->bad_payload, 1);
  atomic_fetch_add(&h->handled, 1);
  return 0;
}

static void no_deferral(void **state) {
  shoal_config cfg = cfg_of(256);
  host *h;
  (void)state;
  cfg.defer_packets = 0;
  h = host_new(2, &cfg);
  assert_int_equal(shoal_mgr_register_opcode(h->mgr, 7, SHOAL_PACKET_MAIN,
                                             SHOAL_CAT_SPELL, where, NULL),
                   SHOAL_OK);
  assert_int_equal(shoal_session_create(h->mgr, 1, NULL), SHOAL_OK);
  for (int i = 0; i < 10; i++)
    assert_int_equal(shoal_session_send(h->mgr, 1, 7, 0, NULL, 0), SHOAL_OK);
  update(h);
  assert_int_equal(atomic_load(&h->handled), 10);
  assert_int_equal(atomic_load(&h->bad_payload), 0);
  assert_int_equal(shoal_mgr_drain_deferred(h->mgr, 0, NULL), 0);
  host_free(h);
}

/* A tick looks only at sessions whose mail bit is up (packets.h). What
 * one update leaves behind (past MaxPacketsPerUpdate), and what waits for
 * a session that is not due, must be taken by later ticks with no send in
 * between to raise the bit again. */
static void leftovers(void **state) {
  shoal_config cfg = cfg_of(256);
  host *h;
  (void)state;
  cfg.packets_per_update = 3;
  h = host_new(3, &cfg);
  assert_int_equal(shoal_mgr_register_opcode(h->mgr, 7, SHOAL_PACKET_INPLACE,
                                             SHOAL_CAT_MOVEMENT, where, NULL),
                   SHOAL_OK);
  for (uint32_t id = 1; id <= 40; id++) {
    assert_int_equal(shoal_session_create(h->mgr, id, NULL), SHOAL_OK);
    if (id > 20) /* every fourth tick */
      assert_int_equal(shoal_session_set_interval(h->mgr, id, 4), SHOAL_OK);
  }
  for (uint32_t id = 1; id <= 40; id++)
    for (int i = 0; i < 10; i++)
      assert_int_equal(shoal_session_send(h->mgr, id, 7, 0, NULL, 0),
                       SHOAL_OK);
  /* ceil(10 / 3) = 4 updates: 4 ticks for the first 20, 16 for the rest */
  for (int t = 0; t < 4; t++)
    update(h);
  assert_true(atomic_load(&h->handled) >= 200);
  for (int t = 4; t < 16; t++)
    update(h);
  assert_int_equal(atomic_load(&h->handled), 400);
  assert_int_equal(atomic_load(&h->bad_payload), 0);
  host_free(h);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(classifier),
    cmocka_unit_test(bad_input),
    cmocka_unit_test(senders_strict),
    cmocka_unit_test(senders_loose),
    cmocka_unit_test(release_races),
    cmocka_unit_test(drain_cap),
    cmocka_unit_test(order_modes),
    cmocka_unit_test(fairness),
    cmocka_unit_test(no_deferral),
    cmocka_unit_test(leftovers),
  };
  return test_run("packets", tests, SHOAL_ARRAY_LEN(tests));
}
