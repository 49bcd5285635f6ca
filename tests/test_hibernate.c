/* test_hibernate.c — hibernation through shoal.h: host blobs from 0 B to
 * 1 MiB come back exactly; a corrupt record is detected and reported,
 * never decompressed; a packet wakes its session and runs in order with
 * later ones; sessions with packets, deferred work or a quarantine stay;
 * wake_map / wake_group wake exactly theirs; hysteresis; refusals; release
 * while hibernated; a concurrent run (senders, wakers, churn, ticks with
 * passes) where no session hibernates during its update and nothing is
 * lost; and defragmentation lowering the process's resident memory. */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hibernate/hib.h"
#include "runtime/common.h"
#include "test_util.h"

#if SHOAL__TSAN
#define SCALE 4
#else
#define SCALE 1
#endif
#if SHOAL__TSAN || defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1 /* their allocators keep freed memory: no RSS checks */
#else
#define SANITIZED 0
#endif

#define MAXID 6000
#define OP_WORK 7    /* INPLACE: counted, order checked */
#define OP_MAIN 8    /* MAIN: deferred */

static uint64_t mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

/* A session's host state: `keep` bytes its serializer keeps (made from
 * the id, so the wake can check them), a cache it can rebuild, and the
 * counters the concurrent test follows. */
typedef struct bot {
  uint32_t id;
  size_t keep;
  unsigned char *kept;
  unsigned char *cache;
  size_t cache_len;
  _Atomic int in_update;
  uint64_t updates;
} bot;

typedef struct host {
  shoal_runtime *rt;
  shoal_mgr *mgr;
  size_t (*size_of)(uint32_t id);
  size_t cache_len;
  int active_every;           /* update reports work when updates % n == 0;
                                 0: never */
  int refuse;                 /* the hibernate callback refuses */
  _Atomic uint32_t mismatches;
  _Atomic uint32_t during_update;
  _Atomic uint32_t released_null, released;
  uint64_t expect_updates[MAXID + 1];
  _Atomic uint32_t handled[MAXID + 1];
  uint32_t last_seq[MAXID + 1][4];
  _Atomic uint32_t order_violations;
  _Atomic uint64_t npk;
  uint32_t log[64];
  _Atomic uint32_t nlog;
  uint32_t ev[64];            /* releases heard: kind << 24 | id */
  _Atomic uint32_t nev;
  void *old_user;             /* the user a release in a handler replaces */
  _Atomic uint32_t errors_logged;
} host;

static void fill(unsigned char *p, size_t n, uint32_t id) {
  uint64_t s = id * 7919u;
  /* half the sizes random, half compressible (as real state is) */
  for (size_t i = 0; i < n; i++)
    p[i] = id & 1 ? (unsigned char)mix(s + i) : (unsigned char)(i / 64 + id);
}

static bot *bot_new(host *h, uint32_t id) {
  bot *b = calloc(1, sizeof *b);
  b->id = id;
  b->keep = h->size_of(id);
  b->kept = malloc(b->keep > 0 ? b->keep : 1);
  fill(b->kept, b->keep, id);
  if (h->cache_len > 0) {
    b->cache = malloc(h->cache_len);
    memset(b->cache, (int)id, h->cache_len); /* resident */
    b->cache_len = h->cache_len;
  }
  return b;
}

static void bot_free(bot *b) {
  if (b == NULL)
    return;
  free(b->kept);
  free(b->cache);
  free(b);
}

static int on_update(void *h_, uint32_t id, void *user, uint32_t diff) {
  host *h = h_;
  bot *b = user;
  int busy;
  (void)diff;
  if (b == NULL || b->id != id) {
    atomic_fetch_add(&h->mismatches, 1);
    return 0;
  }
  atomic_store(&b->in_update, 1);
  b->updates++;
  busy = h->active_every > 0 && b->updates % (uint64_t)h->active_every == 0;
  atomic_store(&b->in_update, 0);
  return busy;
}

/* Kinds of ev: the hibernated bytes given, on_release with NULL, with a
 * user. */
enum { EV_BYTES = 1, EV_NULL = 2, EV_USER = 3 };

static void event(host *h, uint32_t kind, uint32_t id) {
  uint32_t k = atomic_fetch_add(&h->nev, 1);
  if (k < 64)
    h->ev[k] = kind << 24 | id;
}

static void on_release(void *h_, uint32_t id, void *user) {
  host *h = h_;
  event(h, user == NULL ? EV_NULL : EV_USER, id);
  if (user != NULL && user == h->old_user)
    event(h, EV_USER, 0); /* the replaced one: its old user */
  atomic_fetch_add(&h->released, 1);
  if (user == NULL)
    atomic_fetch_add(&h->released_null, 1);
  bot_free(user);
}

typedef struct blob_head {
  uint32_t id, magic;
  uint64_t updates;
} blob_head;

static long on_hibernate(void *h_, uint32_t id, void *user,
                         shoal_hib_writer *w) {
  host *h = h_;
  bot *b = user;
  blob_head hd = {id, 0xB0B0B0B0u, b->updates};
  long freed;
  if (atomic_load(&b->in_update))
    atomic_fetch_add(&h->during_update, 1);
  if (h->refuse)
    return -1;
  if (shoal_hib_write(w, &hd, sizeof hd) != SHOAL_OK ||
      shoal_hib_write(w, b->kept, b->keep) != SHOAL_OK)
    return -1;
  h->expect_updates[id] = b->updates;
  freed = (long)(sizeof *b + b->keep + b->cache_len);
  bot_free(b);
  return freed;
}

static int on_wake(void *h_, uint32_t id, const void *blob, size_t len,
                   void **user) {
  host *h = h_;
  blob_head hd;
  bot *b;
  if (len < sizeof hd) {
    atomic_fetch_add(&h->mismatches, 1);
    return -1;
  }
  memcpy(&hd, blob, sizeof hd);
  b = bot_new(h, id);
  if (hd.id != id || hd.magic != 0xB0B0B0B0u || len - sizeof hd != b->keep ||
      memcmp((const char *)blob + sizeof hd, b->kept, b->keep) != 0 ||
      hd.updates != h->expect_updates[id])
    atomic_fetch_add(&h->mismatches, 1);
  b->updates = hd.updates;
  *user = b;
  return 0;
}

/* The bytes of a session released while asleep: its header and kept
 * bytes, exactly. */
static void on_hib_release(void *h_, uint32_t id, const void *blob,
                           size_t len) {
  host *h = h_;
  blob_head hd;
  bot *b = bot_new(h, id);
  if (len < sizeof hd || (memcpy(&hd, blob, sizeof hd), hd.id != id) ||
      hd.magic != 0xB0B0B0B0u || len - sizeof hd != b->keep ||
      memcmp((const char *)blob + sizeof hd, b->kept, b->keep) != 0)
    atomic_fetch_add(&h->mismatches, 1);
  bot_free(b);
  event(h, EV_BYTES, id);
}

static int on_packet(void *h_, uint32_t session, void *user,
                     const shoal_packet *p) {
  host *h = h_;
  uint32_t v[2];
  (void)user;
  memcpy(v, p->data, sizeof v); /* sender, seq */
  if (session <= MAXID && v[0] < 4) {
    if (v[1] <= h->last_seq[session][v[0]])
      atomic_fetch_add(&h->order_violations, 1);
    h->last_seq[session][v[0]] = v[1];
    atomic_fetch_add(&h->handled[session], 1);
  }
  if (session == 1) {
    uint32_t k = atomic_fetch_add(&h->nlog, 1);
    if (k < 64)
      h->log[k] = v[1];
  }
  atomic_fetch_add(&h->npk, 1);
  return 0;
}

static void count_log(void *user, shoal_log_level level, const char *msg) {
  host *h = user;
  (void)msg;
  if (level == SHOAL_LOG_ERROR)
    atomic_fetch_add(&h->errors_logged, 1);
}

static size_t small_size(uint32_t id) {
  return 16 + id % 100;
}

static host *host_new(unsigned workers, unsigned sessions,
                      size_t (*size_of)(uint32_t)) {
  host *h = calloc(1, sizeof *h);
  shoal_runtime_config rc;
  shoal_config cfg;
  shoal_mgr_callbacks cb = {on_update, on_release, h};
  shoal_hib_callbacks hc = {on_hibernate, on_wake, NULL};
  h->size_of = size_of != NULL ? size_of : small_size;
  shoal_runtime_config_defaults(&rc);
  rc.workers = workers;
  rc.log = test_quiet_log;
  assert_int_equal(shoal_runtime_create(&h->rt, &rc), SHOAL_OK);
  shoal_config_defaults(&cfg);
  cfg.log = count_log;
  cfg.log_user = h;
  cfg.max_sessions = MAXID;
  cfg.auto_defragment = 0;
  assert_int_equal(shoal_mgr_create(&h->mgr, h->rt, &cfg, &cb), SHOAL_OK);
  assert_int_equal(shoal_mgr_set_hibernation(h->mgr, &hc), SHOAL_OK);
  assert_int_equal(shoal_mgr_set_hibernation_ms(h->mgr, 1000), SHOAL_OK);
  assert_int_equal(shoal_mgr_register_opcode(h->mgr, OP_WORK,
                                             SHOAL_PACKET_INPLACE,
                                             SHOAL_CAT_MOVEMENT, on_packet,
                                             NULL), SHOAL_OK);
  assert_int_equal(shoal_mgr_register_opcode(h->mgr, OP_MAIN,
                                             SHOAL_PACKET_MAIN,
                                             SHOAL_CAT_SPELL, on_packet,
                                             NULL), SHOAL_OK);
  for (uint32_t id = 1; id <= sessions; id++)
    assert_int_equal(shoal_session_create(h->mgr, id, bot_new(h, id)),
                     SHOAL_OK);
  return h;
}

static void host_free(host *h) {
  assert_int_equal(shoal_mgr_destroy(h->mgr), SHOAL_OK);
  shoal_runtime_destroy(h->rt);
  free(h);
}

static int state_of(host *h, uint32_t id) {
  shoal_session_info v;
  assert_int_equal(shoal_session_get(h->mgr, id, &v), SHOAL_OK);
  return v.state;
}

static void send_seq(host *h, uint32_t id, uint16_t op, uint32_t sender,
                     uint32_t seq) {
  uint32_t v[2] = {sender, seq};
  assert_int_equal(shoal_session_send(h->mgr, id, op, 0, v, sizeof v),
                   SHOAL_OK);
}

/* Everyone idle past the threshold: the update's pass, then one more;
 * returns how many are hibernated. */
static long idle_all(host *h) {
  shoal_hib_stats st;
  assert_int_equal(shoal_mgr_update(h->mgr, 1500), SHOAL_OK);
  assert_true(shoal_mgr_hibernate_idle(h->mgr, 0) >= 0);
  assert_int_equal(shoal_hib_stats_get(h->mgr, &st, 0), SHOAL_OK);
  return (long)st.hibernated;
}

/* ------------------------------------------------------------------------ */

static size_t sizes[] = {0, 1, 2, 15, 16, 17, 100, 1000, 4095, 4096, 65536,
                         100000, 1u << 20};
static size_t table_size(uint32_t id) {
  return sizes[(id - 1) % SHOAL_ARRAY_LEN(sizes)];
}

static void round_trip(void **state) {
  const unsigned n = 2 * SHOAL_ARRAY_LEN(sizes); /* random and compressible */
  host *h = host_new(4, n, table_size);
  shoal_hib_stats st;
  shoal_mgr_metrics m;
  (void)state;
  /* the update's own pass (idle since creation) */
  assert_int_equal(shoal_mgr_update(h->mgr, 1500), SHOAL_OK);
  assert_int_equal(shoal_mgr_update(h->mgr, 1), SHOAL_OK);
  assert_int_equal(shoal_mgr_hibernate_idle(h->mgr, 0), 0); /* none left */
  for (uint32_t id = 1; id <= n; id++)
    assert_int_equal(state_of(h, id), SHOAL_SESSION_HIBERNATED);
  assert_int_equal(shoal_mgr_metrics_get(h->mgr, &m, 0), SHOAL_OK);
  assert_int_equal(m.active, 0);
  assert_int_equal(m.hibernated, n);
  assert_int_equal(shoal_hib_stats_get(h->mgr, &st, 0), SHOAL_OK);
  assert_int_equal(st.hibernated, n);
  assert_int_equal(st.hibernations, n);
  assert_true(st.record_max > (1u << 20) / 255); /* the random MiB */
  assert_true(st.bytes_saved > 0);
  printf("# %u blobs of 0 B … 1 MiB: records %llu B for %llu raw B\n", n,
         (unsigned long long)st.record_bytes,
         (unsigned long long)st.raw_bytes);
  for (uint32_t id = 1; id <= n; id++)
    assert_int_equal(shoal_mgr_wake(h->mgr, id), SHOAL_OK);
  assert_int_equal(shoal_mgr_run_wakes(h->mgr), n);
  assert_int_equal(atomic_load(&h->mismatches), 0);
  for (uint32_t id = 1; id <= n; id++)
    assert_int_equal(state_of(h, id), SHOAL_SESSION_ACTIVE);
  assert_int_equal(shoal_hib_stats_get(h->mgr, &st, 0), SHOAL_OK);
  assert_int_equal(st.hibernated, 0);
  assert_int_equal(st.wakes, n);
  assert_int_equal(st.record_bytes, 0);
  assert_true(st.wake_p50_ns > 0 && st.hibernate_p99_ns > 0);
  /* shoal's share: some, and no more than the whole at each quantile */
  assert_true(st.wake_shoal_p50_ns > 0 && st.hibernate_shoal_p50_ns > 0);
  assert_true(st.wake_shoal_p50_ns <= st.wake_p50_ns);
  assert_true(st.wake_shoal_p99_ns <= st.wake_p99_ns);
  assert_true(st.hibernate_shoal_p50_ns <= st.hibernate_p50_ns);
  assert_true(st.hibernate_shoal_p99_ns <= st.hibernate_p99_ns);
  /* updated again with their state back */
  assert_int_equal(shoal_mgr_update(h->mgr, 1), SHOAL_OK);
  assert_int_equal(atomic_load(&h->mismatches), 0);
  host_free(h);
}

static void corrupt(void **state) {
  host *h = host_new(2, 3, table_size);
  size_t len;
  unsigned char *r;
  shoal_hib_stats st;
  (void)state;
  assert_int_equal(idle_all(h), 3);
  /* session 3: 2 bytes kept + header. Flip one byte of its data. */
  for (uint32_t id = 1; id <= 3; id++) {
    r = shoal__hib_record_of(h->mgr, id, &len);
    assert_non_null(r);
    r[len - 1] ^= 0x40;
    assert_int_equal(shoal_mgr_wake(h->mgr, id), SHOAL_OK);
  }
  assert_int_equal(shoal_mgr_run_wakes(h->mgr), 0);
  assert_int_equal(atomic_load(&h->mismatches), 0); /* never handed over */
  assert_int_equal(atomic_load(&h->errors_logged), 3);
  for (uint32_t id = 1; id <= 3; id++)
    assert_int_equal(state_of(h, id), SHOAL_SESSION_HIBERNATED);
  assert_int_equal(shoal_hib_stats_get(h->mgr, &st, 0), SHOAL_OK);
  assert_int_equal(st.wake_failures, 3);
  /* repaired, a later wake works */
  for (uint32_t id = 1; id <= 3; id++) {
    r = shoal__hib_record_of(h->mgr, id, &len);
    r[len - 1] ^= 0x40;
  }
  /* a truncated length (comp_len, bytes 8 … 11) */
  r = shoal__hib_record_of(h->mgr, 2, &len);
  r[8] ^= 1;
  for (uint32_t id = 1; id <= 3; id++)
    assert_int_equal(shoal_mgr_wake(h->mgr, id), SHOAL_OK);
  assert_int_equal(shoal_mgr_run_wakes(h->mgr), 2);
  assert_int_equal(state_of(h, 2), SHOAL_SESSION_HIBERNATED);
  r[8] ^= 1;
  assert_int_equal(shoal_mgr_wake(h->mgr, 2), SHOAL_OK);
  assert_int_equal(shoal_mgr_run_wakes(h->mgr), 1);
  assert_int_equal(atomic_load(&h->mismatches), 0);
  host_free(h);
}

static void packet_wakes(void **state) {
  host *h = host_new(2, 4, NULL);
  shoal_packet_stats ps;
  (void)state;
  assert_int_equal(idle_all(h), 4);
  send_seq(h, 1, OP_WORK, 0, 1);
  assert_int_equal(state_of(h, 1), SHOAL_SESSION_HIBERNATED); /* waking */
  send_seq(h, 1, OP_WORK, 0, 2);
  send_seq(h, 1, OP_WORK, 0, 3);
  assert_int_equal(shoal_packet_stats_get(h->mgr, &ps, 0), SHOAL_OK);
  assert_int_equal(ps.pending, 3); /* held */
  /* the next update wakes it first and delivers in order */
  assert_int_equal(shoal_mgr_update(h->mgr, 1), SHOAL_OK);
  assert_int_equal(state_of(h, 1), SHOAL_SESSION_ACTIVE);
  assert_int_equal(state_of(h, 2), SHOAL_SESSION_HIBERNATED);
  assert_int_equal(atomic_load(&h->nlog), 3);
  assert_int_equal(h->log[0], 1);
  assert_int_equal(h->log[1], 2);
  assert_int_equal(h->log[2], 3);
  /* a MAIN packet wakes and defers */
  send_seq(h, 2, OP_MAIN, 0, 1);
  assert_int_equal(shoal_mgr_update(h->mgr, 1), SHOAL_OK);
  assert_int_equal(shoal_mgr_drain_deferred(h->mgr, 0, NULL), 1);
  assert_int_equal(atomic_load(&h->handled[2]), 1);
  assert_int_equal(shoal_packet_stats_get(h->mgr, &ps, 0), SHOAL_OK);
  assert_int_equal(ps.sent, ps.handled + ps.pending + ps.rejected +
                                ps.dropped);
  assert_int_equal(ps.pending, 0);
  assert_int_equal(atomic_load(&h->mismatches), 0);
  host_free(h);
}

static void stays_active(void **state) {
  host *h = host_new(2, 4, NULL);
  (void)state;
  /* no pass until asked; 1 is due on tick 1 only */
  assert_int_equal(shoal_mgr_set_hibernation_ms(h->mgr, 1u << 30), SHOAL_OK);
  assert_int_equal(shoal_mgr_set_hibernation_hysteresis_ms(h->mgr, 0),
                   SHOAL_OK);
  assert_int_equal(shoal_session_set_interval(h->mgr, 1, 60000), SHOAL_OK);
  send_seq(h, 2, OP_MAIN, 0, 1);
  assert_int_equal(shoal_mgr_update(h->mgr, 1), SHOAL_OK); /* 2 defers */
  send_seq(h, 1, OP_WORK, 0, 1);                           /* 1 holds it */
  assert_int_equal(shoal_mgr_update(h->mgr, 1500), SHOAL_OK);
  assert_int_equal(shoal_session_touch(h->mgr, 3), SHOAL_OK);
  assert_int_equal(shoal_mgr_set_hibernation_ms(h->mgr, 1000), SHOAL_OK);
  assert_int_equal(shoal_mgr_hibernate_idle(h->mgr, 0), 1);
  assert_int_equal(state_of(h, 1), SHOAL_SESSION_ACTIVE); /* its inbox */
  assert_int_equal(state_of(h, 2), SHOAL_SESSION_ACTIVE); /* deferred */
  assert_int_equal(state_of(h, 3), SHOAL_SESSION_ACTIVE); /* touched */
  assert_int_equal(state_of(h, 4), SHOAL_SESSION_HIBERNATED);
  assert_int_equal(shoal_mgr_drain_deferred(h->mgr, 0, NULL), 1);
  assert_int_equal(shoal_mgr_hibernate_idle(h->mgr, 0), 1);
  assert_int_equal(state_of(h, 2), SHOAL_SESSION_HIBERNATED);
  assert_int_equal(state_of(h, 1), SHOAL_SESSION_ACTIVE);
  assert_int_equal(state_of(h, 3), SHOAL_SESSION_ACTIVE);
  host_free(h);
}

static int fail_once(void *h_, uint32_t id, void *user, uint32_t diff) {
  (void)h_;
  (void)user;
  (void)diff;
  return id == 1 ? -5 : 0;
}

static void quarantined_stays(void **state) {
  host *h = calloc(1, sizeof *h);
  shoal_mgr *mgr;
  shoal_mgr_callbacks cb = {fail_once, on_release, h};
  shoal_hib_callbacks hc = {on_hibernate, on_wake, NULL};
  shoal_config cfg;
  (void)state;
  h->size_of = small_size;
  shoal_config_defaults(&cfg);
  cfg.worker_threads = 2;
  cfg.log = test_quiet_log;
  assert_int_equal(shoal_mgr_create(&mgr, NULL, &cfg, &cb), SHOAL_OK);
  h->mgr = mgr;
  assert_int_equal(shoal_mgr_set_hibernation(mgr, &hc), SHOAL_OK);
  assert_int_equal(shoal_mgr_set_hibernation_ms(mgr, 10), SHOAL_OK);
  assert_int_equal(shoal_session_create(mgr, 1, bot_new(h, 1)), SHOAL_OK);
  assert_int_equal(shoal_session_create(mgr, 2, bot_new(h, 2)), SHOAL_OK);
  assert_int_equal(shoal_mgr_update(mgr, 100), SHOAL_OK);
  assert_int_equal(shoal_mgr_hibernate_idle(mgr, 0), 0);
  assert_int_equal(state_of(h, 1), SHOAL_SESSION_QUARANTINED);
  assert_int_equal(state_of(h, 2), SHOAL_SESSION_HIBERNATED);
  assert_int_equal(shoal_mgr_destroy(mgr), SHOAL_OK);
  assert_int_equal(atomic_load(&h->released), 2);
  assert_int_equal(atomic_load(&h->released_null), 1);
  free(h);
}

static void by_map_and_group(void **state) {
  host *h = host_new(2, 100, NULL);
  (void)state;
  for (uint32_t id = 1; id <= 100; id++) {
    assert_int_equal(shoal_session_set_map(h->mgr, id, id % 5), SHOAL_OK);
    assert_int_equal(shoal_session_set_group(h->mgr, id, id % 7), SHOAL_OK);
  }
  assert_int_equal(idle_all(h), 100);
  /* setters reach hibernated sessions (except user) */
  assert_int_equal(shoal_session_set_map(h->mgr, 1, 2), SHOAL_OK);
  assert_int_equal(shoal_session_set_user(h->mgr, 1, NULL), SHOAL_ESTATE);
  assert_int_equal(shoal_session_clear_quarantine(h->mgr, 1), SHOAL_ESTATE);
  assert_int_equal(shoal_mgr_wake_map(h->mgr, 2), 21); /* 20 and session 1 */
  assert_int_equal(shoal_mgr_wake_map(h->mgr, 2), 0);  /* already asked */
  assert_int_equal(shoal_mgr_run_wakes(h->mgr), 21);
  for (uint32_t id = 1; id <= 100; id++) {
    shoal_session_info v;
    assert_int_equal(shoal_session_get(h->mgr, id, &v), SHOAL_OK);
    assert_int_equal(v.state, v.map == 2 ? SHOAL_SESSION_ACTIVE
                                         : SHOAL_SESSION_HIBERNATED);
    if (v.state == SHOAL_SESSION_ACTIVE)
      assert_non_null(v.user);
  }
  /* 14 of group 3, less 17, 52 and 87 (map 2, awake) */
  assert_int_equal(shoal_mgr_wake_group(h->mgr, 3), 11);
  assert_int_equal(shoal_mgr_run_wakes(h->mgr), 11);
  for (uint32_t id = 1; id <= 100; id++) {
    shoal_session_info v;
    assert_int_equal(shoal_session_get(h->mgr, id, &v), SHOAL_OK);
    assert_int_equal(v.state, v.map == 2 || v.group == 3
                                  ? SHOAL_SESSION_ACTIVE
                                  : SHOAL_SESSION_HIBERNATED);
  }
  assert_int_equal(atomic_load(&h->mismatches), 0);
  host_free(h);
}

static void hysteresis(void **state) {
  host *h = host_new(2, 1, NULL);
  (void)state;
  assert_int_equal(shoal_mgr_set_hibernation_hysteresis_ms(h->mgr, 5000),
                   SHOAL_OK);
  assert_int_equal(idle_all(h), 1);
  assert_int_equal(shoal_mgr_wake(h->mgr, 1), SHOAL_OK);
  assert_int_equal(shoal_mgr_update(h->mgr, 1), SHOAL_OK); /* woken */
  assert_int_equal(shoal_mgr_update(h->mgr, 2000), SHOAL_OK); /* idle 2 s */
  assert_int_equal(shoal_mgr_hibernate_idle(h->mgr, 0), 0);
  assert_int_equal(state_of(h, 1), SHOAL_SESSION_ACTIVE);
  assert_int_equal(shoal_mgr_update(h->mgr, 3000), SHOAL_OK); /* 5 s */
  assert_int_equal(state_of(h, 1), SHOAL_SESSION_HIBERNATED);
  host_free(h);
}

static void refused_and_released(void **state) {
  host *h = host_new(2, 3, NULL);
  shoal_hib_stats st;
  shoal_packet_stats ps;
  (void)state;
  h->refuse = 1;
  assert_int_equal(idle_all(h), 0);
  assert_int_equal(shoal_hib_stats_get(h->mgr, &st, 0), SHOAL_OK);
  assert_int_equal(st.refused, 3 * 2); /* the update's pass, and this one */
  assert_int_equal(state_of(h, 1), SHOAL_SESSION_ACTIVE);
  assert_int_equal(shoal_mgr_update(h->mgr, 1), SHOAL_OK); /* user intact */
  assert_int_equal(atomic_load(&h->mismatches), 0);
  h->refuse = 0;
  assert_int_equal(idle_all(h), 3);
  /* released while hibernated, with a packet held: on_release(NULL), the
   * packet dropped and counted */
  send_seq(h, 2, OP_WORK, 0, 1);
  assert_int_equal(shoal_session_release(h->mgr, 1), SHOAL_OK);
  assert_int_equal(shoal_session_release(h->mgr, 2), SHOAL_OK);
  assert_int_equal(atomic_load(&h->released_null), 2);
  assert_int_equal(shoal_session_get(h->mgr, 1, NULL), SHOAL_ENOENT);
  assert_int_equal(shoal_mgr_wake(h->mgr, 1), SHOAL_ENOENT);
  assert_int_equal(shoal_mgr_update(h->mgr, 1), SHOAL_OK);
  assert_int_equal(shoal_packet_stats_get(h->mgr, &ps, 0), SHOAL_OK);
  assert_int_equal(ps.sent, 1);
  assert_int_equal(ps.dropped, 1);
  assert_int_equal(ps.pending, 0);
  assert_int_equal(shoal_hib_stats_get(h->mgr, &st, 0), SHOAL_OK);
  assert_int_equal(st.hibernated, 1);
  /* the ids can be used again */
  assert_int_equal(shoal_session_create(h->mgr, 1, bot_new(h, 1)), SHOAL_OK);
  assert_int_equal(state_of(h, 1), SHOAL_SESSION_ACTIVE);
  host_free(h);
  /* destroy released the hibernated one with NULL too: 3 NULLs counted on
   * the freed host are not visible here; the leak checkers see the rest */
}

/* A hibernated session gives its pool element back but keeps its place
 * under max_sessions and its settings: a create past the maximum is
 * refused while it sleeps; map, group and interval set meanwhile are
 * those it wakes with. */
/* A logout while asleep: the release callback gets the bytes, then
 * on_release (NULL), on the releasing thread, for a release, a batch and
 * destroy; an id can be created again at once. */
static void logout_while_asleep(void **state) {
  host *h = host_new(2, 6, table_size);
  shoal_hib_callbacks hc = {on_hibernate, on_wake, on_hib_release};
  static const uint32_t two[] = {2, 3};
  shoal_mgr *mgr;
  (void)state;
  assert_int_equal(shoal_mgr_set_hibernation(h->mgr, &hc), SHOAL_OK);
  assert_int_equal(idle_all(h), 6);
  assert_int_equal(shoal_session_release(h->mgr, 1), SHOAL_OK);
  assert_int_equal(atomic_load(&h->nev), 2);
  assert_int_equal(h->ev[0], EV_BYTES << 24 | 1);
  assert_int_equal(h->ev[1], EV_NULL << 24 | 1);
  assert_int_equal(shoal_session_release_batch(h->mgr, two, 2, NULL), 2);
  assert_int_equal(atomic_load(&h->nev), 6);
  assert_int_equal(h->ev[2], EV_BYTES << 24 | 2);
  assert_int_equal(h->ev[3], EV_NULL << 24 | 2);
  assert_int_equal(h->ev[4], EV_BYTES << 24 | 3);
  assert_int_equal(h->ev[5], EV_NULL << 24 | 3);
  /* its id is free once release returns: a login again, and a logout of
   * the active one (its user, no bytes) */
  assert_int_equal(shoal_session_create(h->mgr, 1, bot_new(h, 1)), SHOAL_OK);
  assert_int_equal(shoal_session_release(h->mgr, 1), SHOAL_OK);
  assert_int_equal(h->ev[6], EV_USER << 24 | 1);
  /* destroy: each remaining one, bytes then on_release */
  mgr = h->mgr;
  assert_int_equal(shoal_mgr_destroy(mgr), SHOAL_OK);
  assert_int_equal(atomic_load(&h->nev), 13);
  for (uint32_t k = 7; k < 13; k += 2) {
    assert_int_equal(h->ev[k] >> 24, EV_BYTES);
    assert_int_equal(h->ev[k + 1], EV_NULL << 24 | (h->ev[k] & 0xffffff));
  }
  assert_int_equal(atomic_load(&h->mismatches), 0);
  shoal_runtime_destroy(h->rt);
  free(h);
}

/* A release and a create of the same id inside a tick (a handler's): the
 * id is free at once, the new session exists from the create, and the old
 * one's on_release, with its old user, runs once, at the tick's end. */
static int relogin(void *h_, uint32_t session, void *user,
                   const shoal_packet *p) {
  host *h = h_;
  (void)session;
  (void)user;
  (void)p;
  if (shoal_session_release(h->mgr, 2) != SHOAL_OK ||
      shoal_session_create(h->mgr, 2, bot_new(h, 2)) != SHOAL_OK)
    atomic_fetch_add(&h->mismatches, 1);
  if (atomic_load(&h->nev) != 0) /* not yet: at the tick's end */
    atomic_fetch_add(&h->mismatches, 1);
  return 0;
}

static void relogin_in_tick(void **state) {
  host *h = host_new(2, 2, NULL);
  shoal_session_info v;
  (void)state;
  assert_int_equal(shoal_session_get(h->mgr, 2, &v), SHOAL_OK);
  h->old_user = v.user;
  assert_int_equal(shoal_mgr_register_opcode(h->mgr, 9, SHOAL_PACKET_INPLACE,
                                             SHOAL_CAT_OTHER, relogin, NULL),
                   SHOAL_OK);
  assert_int_equal(shoal_session_send(h->mgr, 1, 9, 0, NULL, 0), SHOAL_OK);
  assert_int_equal(shoal_mgr_update(h->mgr, 1), SHOAL_OK);
  assert_int_equal(atomic_load(&h->mismatches), 0);
  assert_int_equal(atomic_load(&h->nev), 2);
  assert_int_equal(h->ev[0], EV_USER << 24 | 2);
  assert_int_equal(h->ev[1], EV_USER << 24 | 0); /* with the old user */
  assert_int_equal(shoal_session_get(h->mgr, 2, &v), SHOAL_OK);
  assert_true(v.user != NULL && v.user != h->old_user);
  assert_int_equal(shoal_mgr_update(h->mgr, 1), SHOAL_OK);
  assert_int_equal(atomic_load(&h->mismatches), 0);
  host_free(h);
}

static void limit_and_settings(void **state) {
  host *h = host_new(2, 3, NULL);
  shoal_session_info v;
  (void)state;
  assert_int_equal(shoal_mgr_set_max_sessions(h->mgr, 3), SHOAL_OK);
  assert_int_equal(idle_all(h), 3);
  assert_int_equal(shoal_session_create(h->mgr, 50, NULL), SHOAL_ELIMIT);
  assert_int_equal(shoal_session_create(h->mgr, 2, NULL), SHOAL_EEXIST);
  assert_int_equal(shoal_session_set_map(h->mgr, 2, 77), SHOAL_OK);
  assert_int_equal(shoal_session_set_group(h->mgr, 2, 78), SHOAL_OK);
  assert_int_equal(shoal_session_set_interval(h->mgr, 2, 3), SHOAL_OK);
  assert_int_equal(shoal_session_set_user(h->mgr, 2, h), SHOAL_ESTATE);
  assert_int_equal(shoal_session_get(h->mgr, 2, &v), SHOAL_OK);
  assert_int_equal(v.state, SHOAL_SESSION_HIBERNATED);
  assert_int_equal(v.map, 77);
  assert_int_equal(v.group, 78);
  assert_int_equal(v.interval, 3);
  assert_null(v.user);
  assert_int_equal(shoal_mgr_wake(h->mgr, 2), SHOAL_OK);
  assert_int_equal(shoal_mgr_update(h->mgr, 1), SHOAL_OK);
  assert_int_equal(shoal_session_get(h->mgr, 2, &v), SHOAL_OK);
  assert_int_equal(v.state, SHOAL_SESSION_ACTIVE);
  assert_int_equal(v.map, 77);
  assert_int_equal(v.group, 78);
  assert_int_equal(v.interval, 3);
  assert_non_null(v.user);
  assert_int_equal(shoal_session_create(h->mgr, 50, NULL), SHOAL_ELIMIT);
  assert_int_equal(shoal_session_release(h->mgr, 3), SHOAL_OK);
  assert_int_equal(shoal_session_create(h->mgr, 50, bot_new(h, 50)),
                   SHOAL_OK);
  assert_int_equal(atomic_load(&h->mismatches), 0);
  host_free(h);
}

static void bad_input(void **state) {
  host *h = host_new(1, 1, NULL);
  shoal_mgr *plain;
  shoal_mgr_callbacks cb = {on_update, NULL, NULL};
  shoal_hib_callbacks half = {on_hibernate, NULL, NULL};
  shoal_config cfg;
  (void)state;
  assert_int_equal(shoal_mgr_set_hibernation(NULL, &half), SHOAL_EINVAL);
  assert_int_equal(shoal_mgr_set_hibernation(h->mgr, NULL), SHOAL_EINVAL);
  assert_int_equal(shoal_mgr_set_hibernation(h->mgr, &half), SHOAL_EINVAL);
  assert_int_equal(shoal_mgr_wake(h->mgr, 0), SHOAL_ENOENT);
  assert_int_equal(shoal_mgr_wake(h->mgr, 99), SHOAL_ENOENT);
  assert_int_equal(shoal_session_touch(h->mgr, 99), SHOAL_ENOENT);
  assert_int_equal(shoal_session_touch(NULL, 1), SHOAL_EINVAL);
  assert_int_equal(shoal_mgr_wake_map(NULL, 1), SHOAL_EINVAL);
  assert_int_equal(shoal_mgr_hibernate_idle(NULL, 0), SHOAL_EINVAL);
  assert_int_equal(shoal_hib_stats_get(h->mgr, NULL, 0),
                   SHOAL_EINVAL);
  assert_int_equal(shoal_hib_write(NULL, "x", 1), SHOAL_EINVAL);
  host_free(h);
  /* without hibernation on */
  shoal_config_defaults(&cfg);
  cfg.worker_threads = 1;
  cfg.log = test_quiet_log;
  assert_int_equal(shoal_mgr_create(&plain, NULL, &cfg, &cb), SHOAL_OK);
  assert_int_equal(shoal_mgr_hibernate_idle(plain, 0), SHOAL_ESTATE);
  assert_int_equal(shoal_mgr_run_wakes(plain), SHOAL_ESTATE);
  assert_int_equal(shoal_mgr_defragment(plain, NULL), SHOAL_OK);
  assert_int_equal(shoal_mgr_wake_map(plain, 1), 0);
  assert_int_equal(shoal_mgr_destroy(plain), SHOAL_OK);
  /* config ranges */
  shoal_config_defaults(&cfg);
  cfg.hibernate_per_update = 0;
  assert_int_equal(shoal_mgr_create(&plain, NULL, &cfg, &cb), SHOAL_EINVAL);
}

/* ---- concurrent ---------------------------------------------------------- */

#define CSESS 300
#define CHURN_LO 1000 /* ids CHURN_LO … CHURN_LO + 49 are released and made
                         again */

typedef struct crun {
  host *h;
  _Atomic int stop;
  _Atomic uint64_t sent_ok;
  unsigned sender;
} crun;

static void *sender_main(void *arg) {
  crun *c = arg;
  uint64_t s = 99 + c->sender;
  uint32_t seq = 0;
  unsigned idx = c->sender;
  while (!atomic_load(&c->stop)) {
    uint32_t id = 1 + (uint32_t)(mix(++s) % (CSESS / 4)); /* a few hot ones */
    uint32_t v[2] = {idx, ++seq};
    if (mix(s) % 8 == 0)
      id = CHURN_LO + (uint32_t)(mix(s + 1) % 50);
    if (shoal_session_send(c->h->mgr, id, OP_WORK, 0, v, sizeof v) ==
        SHOAL_OK)
      atomic_fetch_add(&c->sent_ok, 1);
    if (mix(s) % 16 == 0)
      (void)shoal_mgr_wake(c->h->mgr, 1 + (uint32_t)(mix(s + 2) % CSESS));
    if (mix(s) % 64 == 0)
      (void)shoal_mgr_wake_map(c->h->mgr, (uint32_t)(mix(s + 3) % 4));
    if (seq % 64 == 0)
      usleep(50);
  }
  return NULL;
}

static void *churn_main(void *arg) {
  crun *c = arg;
  uint64_t s = 7;
  while (!atomic_load(&c->stop)) {
    uint32_t id = CHURN_LO + (uint32_t)(mix(++s) % 50);
    if (shoal_session_release(c->h->mgr, id) == SHOAL_ENOENT) {
      bot *b = bot_new(c->h, id);
      if (shoal_session_create(c->h->mgr, id, b) != SHOAL_OK)
        bot_free(b);
    }
    usleep(100);
  }
  return NULL;
}

static void concurrent(void **state) {
  host *h = host_new(4, CSESS, NULL); /* 4 workers on 2 cores */
  crun c[3];
  pthread_t th[3], ch;
  shoal_hib_stats st;
  shoal_packet_stats ps;
  uint64_t handled = 0;
  (void)state;
  h->active_every = 8; /* work every 40 ms: idle past 20 ms between */
  assert_int_equal(shoal_mgr_set_hibernation_ms(h->mgr, 20), SHOAL_OK);
  assert_int_equal(shoal_mgr_set_hibernation_hysteresis_ms(h->mgr, 10),
                   SHOAL_OK);
  for (uint32_t id = 1; id <= CSESS; id++)
    assert_int_equal(shoal_session_set_map(h->mgr, id, id % 4), SHOAL_OK);
  for (uint32_t id = CHURN_LO; id < CHURN_LO + 50; id++)
    assert_int_equal(shoal_session_create(h->mgr, id, bot_new(h, id)),
                     SHOAL_OK);
  for (unsigned i = 0; i < 3; i++) {
    memset(&c[i], 0, sizeof c[i]);
    c[i].h = h;
    c[i].sender = i;
    assert_int_equal(pthread_create(&th[i], NULL, sender_main, &c[i]), 0);
  }
  assert_int_equal(pthread_create(&ch, NULL, churn_main, &c[0]), 0);
  /* Ticks until the senders have done their share too, and a sleeping
   * session has been woken (on a loaded machine the senders may start
   * late, or run in a burst before anyone sleeps): progress, not time,
   * ends the run. */
  for (int t = 0, woken = 0;
       t < 1500 / SCALE || !woken ||
       atomic_load(&c[0].sent_ok) + atomic_load(&c[1].sent_ok) +
               atomic_load(&c[2].sent_ok) <
           3000 / SCALE;
       t++) {
    assert_int_equal(shoal_mgr_update(h->mgr, 5), SHOAL_OK);
    (void)shoal_mgr_drain_deferred(h->mgr, 0, NULL);
    if (t % 100 == 99) {
      assert_int_equal(shoal_hib_stats_get(h->mgr, &st, 0), SHOAL_OK);
      woken = st.wakes > 0;
    }
    if (t >= 1500 / SCALE)
      usleep(1000);
  }
  for (unsigned i = 0; i < 3; i++)
    atomic_store(&c[i].stop, 1);
  for (unsigned i = 0; i < 3; i++)
    pthread_join(th[i], NULL);
  pthread_join(ch, NULL);
  /* everything held is delivered once its session wakes */
  for (int t = 0; t < 10; t++)
    assert_int_equal(shoal_mgr_update(h->mgr, 1), SHOAL_OK);
  assert_int_equal(shoal_packet_stats_get(h->mgr, &ps, 0), SHOAL_OK);
  assert_int_equal(shoal_hib_stats_get(h->mgr, &st, 0), SHOAL_OK);
  for (uint32_t id = 0; id <= MAXID; id++)
    handled += atomic_load(&h->handled[id]);
  printf("# sent %llu (ok %llu), handled %llu, dropped %llu, pending %llu;"
         " hibernations %llu, wakes %llu\n",
         (unsigned long long)ps.sent,
         (unsigned long long)(atomic_load(&c[0].sent_ok) +
                              atomic_load(&c[1].sent_ok) +
                              atomic_load(&c[2].sent_ok)),
         (unsigned long long)ps.handled, (unsigned long long)ps.dropped,
         (unsigned long long)ps.pending, (unsigned long long)st.hibernations,
         (unsigned long long)st.wakes);
  assert_int_equal(ps.pending, 0);
  assert_int_equal(ps.sent, ps.handled + ps.rejected + ps.dropped);
  assert_int_equal(ps.handled, handled);
  assert_int_equal(atomic_load(&h->order_violations), 0);
  assert_int_equal(atomic_load(&h->during_update), 0);
  assert_int_equal(atomic_load(&h->mismatches), 0);
  assert_int_equal(st.wake_failures, 0);
  assert_true(st.hibernations > 0 && st.wakes > 0);
  host_free(h);
}

/* ---- resident memory ----------------------------------------------------- */

static size_t kib_size(uint32_t id) {
  (void)id;
  return 1024;
}

static void rss_drops(void **state) {
  const unsigned n = 5000;
  host *h = host_new(2, 0, kib_size);
  shoal_defrag_report r0, r;
  shoal_mgr_metrics m;
  (void)state;
  /* a realistic 64 KiB of host state, 1 KiB of it kept */
  h->cache_len = SANITIZED ? 4096 : 65536 - 1024;
  assert_int_equal(shoal_mgr_set_hibernation_ms(h->mgr, 1u << 30), SHOAL_OK);
  for (uint32_t id = 1; id <= n; id++)
    assert_int_equal(shoal_session_create(h->mgr, id, bot_new(h, id)),
                     SHOAL_OK);
  assert_int_equal(shoal_mgr_update(h->mgr, 1500), SHOAL_OK);
  assert_int_equal(shoal_mgr_defragment(h->mgr, &r0), SHOAL_OK);
  /* 90 % idle: the last tenth was just touched */
  for (uint32_t id = n - n / 10 + 1; id <= n; id++)
    assert_int_equal(shoal_session_touch(h->mgr, id), SHOAL_OK);
  assert_int_equal(shoal_mgr_set_hibernation_ms(h->mgr, 1000), SHOAL_OK);
  assert_int_equal(shoal_mgr_hibernate_idle(h->mgr, 0), n - n / 10);
  assert_int_equal(shoal_mgr_metrics_get(h->mgr, &m, 0), SHOAL_OK);
  assert_int_equal(m.hibernated, n - n / 10);
  assert_int_equal(m.active, n / 10);
  assert_int_equal(shoal_mgr_defragment(h->mgr, &r), SHOAL_OK);
  printf("# %u sessions of %zu B host state, %u hibernated: RSS %.1f MiB"
         " -> %.1f MiB; the defragmentation returned %llu B (columns %llu,"
         " slabs %llu)\n", n, h->cache_len + 1024, n - n / 10,
         (double)r0.rss_after / 1048576.0, (double)r.rss_after / 1048576.0,
         (unsigned long long)r.bytes_returned,
         (unsigned long long)r.columns_bytes,
         (unsigned long long)r.pool_bytes);
  if (!SANITIZED) {
    /* 4500 × 64 KiB of host state went: at least 3/4 of it must show
     * (all but 2 % here). */
    assert_true(r0.rss_after > r.rss_after);
    assert_true(r0.rss_after - r.rss_after >=
                (uint64_t)(n - n / 10) * 65536 / 4 * 3);
  }
  assert_true(r.columns_bytes > 0);
  {
    /* figures, not checks: the 4500 woken at once */
    shoal_hib_stats st;
    struct timespec t0, t1;
    long woke;
    double mean;
    uint64_t max;
    assert_int_equal(shoal_hib_stats_get(h->mgr, &st, 0), SHOAL_OK);
    mean = st.record_mean;
    max = st.record_max;
    assert_int_equal(shoal_mgr_wake_map(h->mgr, 0), n - n / 10);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    woke = shoal_mgr_run_wakes(h->mgr);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_int_equal(woke, n - n / 10);
    assert_int_equal(shoal_hib_stats_get(h->mgr, &st, 0), SHOAL_OK);
    printf("# record mean %.0f B (max %llu); per session: hibernate p50 %.1f"
           " p99 %.1f us, wake p50 %.1f p99 %.1f us; %ld woken in %.2f ms\n",
           mean, (unsigned long long)max,
           st.hibernate_p50_ns / 1e3, st.hibernate_p99_ns / 1e3,
           st.wake_p50_ns / 1e3, st.wake_p99_ns / 1e3, woke,
           (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
               (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
  }
  assert_int_equal(atomic_load(&h->mismatches), 0);
  host_free(h);
}

int main(int argc, char **argv) {
  const struct CMUnitTest rss[] = {
    cmocka_unit_test(rss_drops),
  };
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(round_trip),
    cmocka_unit_test(corrupt),
    cmocka_unit_test(packet_wakes),
    cmocka_unit_test(stays_active),
    cmocka_unit_test(quarantined_stays),
    cmocka_unit_test(by_map_and_group),
    cmocka_unit_test(hysteresis),
    cmocka_unit_test(refused_and_released),
    cmocka_unit_test(logout_while_asleep),
    cmocka_unit_test(relogin_in_tick),
    cmocka_unit_test(limit_and_settings),
    cmocka_unit_test(bad_input),
    cmocka_unit_test(concurrent),
  };
  /* Resident memory is the process's: measured in a process of its own
   * (meson runs this binary again with "rss"). */
  if (argc > 1 && strcmp(argv[1], "rss") == 0)
    return test_run("hibernate-rss", rss, SHOAL_ARRAY_LEN(rss));
  return test_run("hibernate", tests, SHOAL_ARRAY_LEN(tests));
}
