/* test_broadcast.c — the member lists and broadcast: a map's and a
 * group's sessions listed exactly (active and hibernated, after moves and
 * releases), shoal_mgr_maps counting hibernated sessions; a broadcast
 * reaches exactly the members at that moment (less the speaker, less the
 * sleeping with SHOAL_TO_AWAKE), each sender's packets in order at each
 * recipient, one shared buffer given back after the last delivery; four
 * broadcasters racing moves, releases and ticks leave taken == freed. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/common.h"
#include "test_util.h"

#define OP 20
#define IDS 48u
#define SENDERS 4u

#if SHOAL__TSAN
#define ROUNDS 200
#else
#define ROUNDS 1000
#endif

/* A broadcast's payload: who sent it, its number, then filler. */
typedef struct msg {
  uint32_t sender, seq, len;
} msg;

typedef struct host {
  shoal_mgr *mgr;
  _Atomic uint64_t handled, bad, out_of_order;
  uint64_t got[IDS + 1];            /* per recipient: by its updater */
  uint32_t last[IDS + 1][SENDERS];  /* per recipient and sender */
} host;

static host H;

static int handler(void *hp, uint32_t id, void *user, const shoal_packet *p) {
  host *h = hp;
  msg m;
  const unsigned char *b = p->data;
  (void)user;
  if (p->len < sizeof m || id > IDS) {
    atomic_fetch_add(&h->bad, 1);
    return 0;
  }
  memcpy(&m, b, sizeof m);
  if (m.len != p->len || m.sender >= SENDERS)
    atomic_fetch_add(&h->bad, 1);
  for (size_t i = sizeof m; i < p->len; i++)
    if (b[i] != (unsigned char)(i + m.seq)) {
      atomic_fetch_add(&h->bad, 1);
      break;
    }
  if (m.sender < SENDERS) {
    /* equal: an id named twice in one list gets that packet twice */
    if (m.seq < h->last[id][m.sender])
      atomic_fetch_add(&h->out_of_order, 1);
    h->last[id][m.sender] = m.seq;
  }
  h->got[id]++;
  atomic_fetch_add(&h->handled, 1);
  return 0;
}

static shoal_mgr *make(void) {
  shoal_config cfg;
  shoal_mgr_callbacks cb = {test_nop_update, NULL, &H};
  shoal_hib_callbacks hc = {test_hib_keep_id, test_hib_wake_null, NULL};
  memset(&H, 0, sizeof H);
  shoal_config_defaults(&cfg);
  cfg.worker_threads = 3; /* more than the cores CI has */
  cfg.max_sessions = 256;
  cfg.pool_preallocate = 64;
  cfg.inbox_size = 4096;
  cfg.log = test_quiet_log;
  assert_int_equal(shoal_mgr_create(&H.mgr, NULL, &cfg, &cb), SHOAL_OK);
  assert_int_equal(shoal_mgr_register_opcode(H.mgr, OP, SHOAL_PACKET_INPLACE,
                                             SHOAL_CAT_CHAT, handler, NULL),
                   SHOAL_OK);
  assert_int_equal(shoal_mgr_set_hibernation(H.mgr, &hc), SHOAL_OK);
  assert_int_equal(shoal_mgr_set_hibernation_ms(H.mgr, 1000), SHOAL_OK);
  return H.mgr;
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

/* The members of kind/key, sorted, into ids (room for IDS). */
static long members(shoal_audience_kind kind, uint32_t key, uint32_t *ids) {
  long n = shoal_mgr_members(H.mgr, kind, key, ids, IDS);
  assert_true(n >= 0 && n <= (long)IDS);
  qsort(ids, (size_t)n, sizeof *ids, cmp_u32);
  return n;
}

/* Which ids are in kind/key: 1 bits. */
static uint64_t member_set(shoal_audience_kind kind, uint32_t key) {
  uint32_t ids[IDS];
  uint64_t set = 0;
  long n = members(kind, key, ids);
  for (long k = 0; k < n; k++) {
    assert_true(ids[k] >= 1 && ids[k] <= IDS);
    assert_false(set >> ids[k] & 1); /* once */
    set |= UINT64_C(1) << ids[k];
  }
  return set;
}

static void settle(void) {
  for (int k = 0; k < 3; k++)
    assert_int_equal(shoal_mgr_update(H.mgr, 1), SHOAL_OK);
}

/* Sessions hibernated now. */
static uint64_t asleep(void) {
  shoal_hib_stats hs;
  assert_int_equal(shoal_hib_stats_get(H.mgr, &hs, 0), SHOAL_OK);
  return hs.hibernated;
}

/* Hibernates every session idle past the threshold (the update's own
 * pass, then one more): returns how many sleep. */
static uint64_t sleep_idle(void) {
  assert_int_equal(shoal_mgr_update(H.mgr, 1500), SHOAL_OK);
  assert_true(shoal_mgr_hibernate_idle(H.mgr, 0) >= 0);
  return asleep();
}

/* Lists follow creates, moves, hibernation, wakes and releases. */
static void lists(void **state) {
  shoal_map_count mc[8];
  size_t nm = 0;
  uint32_t ids[IDS];
  uint64_t map7 = 0, map8 = 0;
  (void)state;
  make();
  assert_int_equal(shoal_mgr_members(NULL, SHOAL_TO_MAP, 0, ids, IDS),
                   SHOAL_EINVAL);
  assert_int_equal(shoal_mgr_members(H.mgr, SHOAL_TO_IDS, 0, ids, IDS),
                   SHOAL_EINVAL);
  assert_int_equal(shoal_mgr_members(H.mgr, SHOAL_TO_MAP, 0, NULL, 1),
                   SHOAL_EINVAL);
  assert_int_equal(shoal_mgr_members(H.mgr, SHOAL_TO_MAP, 0, NULL, 0), 0);
  for (uint32_t id = 1; id <= 30; id++)
    assert_int_equal(shoal_session_create(H.mgr, id, NULL), SHOAL_OK);
  assert_int_equal(shoal_mgr_members(H.mgr, SHOAL_TO_MAP, 0, NULL, 0), 30);
  /* group 0 is no group */
  assert_int_equal(shoal_mgr_members(H.mgr, SHOAL_TO_GROUP, 0, ids, 4),
                   SHOAL_EINVAL);
  for (uint32_t id = 1; id <= 20; id++) {
    uint32_t map = id <= 10 ? 7 : 8;
    assert_int_equal(shoal_session_set_map(H.mgr, id, map), SHOAL_OK);
    *(map == 7 ? &map7 : &map8) |= UINT64_C(1) << id;
  }
  assert_int_equal(shoal_session_set_group(H.mgr, 3, 99), SHOAL_OK);
  assert_int_equal(shoal_session_set_group(H.mgr, 12, 99), SHOAL_OK);
  assert_int_equal(member_set(SHOAL_TO_MAP, 7), map7);
  assert_int_equal(member_set(SHOAL_TO_MAP, 8), map8);
  assert_int_equal(member_set(SHOAL_TO_GROUP, 99),
                   (UINT64_C(1) << 3) | (UINT64_C(1) << 12));
  assert_int_equal(shoal_session_set_group(H.mgr, 3, 0), SHOAL_OK);
  assert_int_equal(member_set(SHOAL_TO_GROUP, 99), UINT64_C(1) << 12);
  assert_int_equal(shoal_session_set_group(H.mgr, 3, 99), SHOAL_OK);
  /* every session asleep but 1 … 5, kept busy */
  for (int k = 0; k < 3; k++) {
    for (uint32_t id = 1; id <= 5; id++)
      assert_int_equal(shoal_session_touch(H.mgr, id), SHOAL_OK);
    assert_int_equal(shoal_mgr_update(H.mgr, 600), SHOAL_OK);
  }
  for (uint32_t id = 1; id <= 5; id++)
    assert_int_equal(shoal_session_touch(H.mgr, id), SHOAL_OK);
  assert_true(shoal_mgr_hibernate_idle(H.mgr, 0) >= 0);
  assert_int_equal(asleep(), 25);
  assert_int_equal(member_set(SHOAL_TO_MAP, 7), map7);
  assert_int_equal(member_set(SHOAL_TO_MAP, 8), map8);
  assert_int_equal(shoal_mgr_maps(H.mgr, mc, 8, &nm), SHOAL_OK);
  assert_int_equal(nm, 3);
  assert_int_equal(mc[0].sessions + mc[1].sessions + mc[2].sessions, 30);
  /* a sleeping session moves, one is released, the moved lists hold */
  assert_int_equal(shoal_session_set_map(H.mgr, 9, 8), SHOAL_OK);
  map7 &= ~(UINT64_C(1) << 9);
  map8 |= UINT64_C(1) << 9;
  assert_int_equal(shoal_session_release(H.mgr, 6), SHOAL_OK);
  assert_int_equal(shoal_session_release(H.mgr, 1), SHOAL_OK);
  map7 &= ~((UINT64_C(1) << 6) | (UINT64_C(1) << 1));
  assert_int_equal(member_set(SHOAL_TO_MAP, 7), map7);
  assert_int_equal(member_set(SHOAL_TO_MAP, 8), map8);
  /* woken, they stay */
  assert_true(shoal_mgr_wake_map(H.mgr, 8) > 0);
  settle();
  assert_int_equal(member_set(SHOAL_TO_MAP, 8), map8);
  assert_int_equal(member_set(SHOAL_TO_MAP, 7), map7);
  /* a map emptied is gone from the counts */
  for (uint32_t id = 21; id <= 30; id++)
    assert_int_equal(shoal_session_release(H.mgr, id), SHOAL_OK);
  assert_int_equal(shoal_mgr_maps(H.mgr, mc, 8, &nm), SHOAL_OK);
  assert_int_equal(nm, 2);
  assert_int_equal(shoal_mgr_members(H.mgr, SHOAL_TO_MAP, 0, ids, IDS), 0);
  assert_int_equal(shoal_mgr_destroy(H.mgr), SHOAL_OK);
}

/* A broadcast's payload: len bytes, sender s, number seq. */
static size_t payload(unsigned char *b, uint32_t s, uint32_t seq, size_t len) {
  msg m = {s, seq, (uint32_t)len};
  memcpy(b, &m, sizeof m);
  for (size_t i = sizeof m; i < len; i++)
    b[i] = (unsigned char)(i + seq);
  return len;
}

/* Exactly the members, less the speaker; in order; the shared buffer
 * given back once. */
static void reaches_members(void **state) {
  static unsigned char buf[3000];
  shoal_packet_stats st, st0;
  shoal_audience to = {SHOAL_TO_MAP, 7, NULL, 0, 2, 0};
  uint64_t map7 = 0, want[IDS + 1] = {0};
  long n;
  (void)state;
  make();
  assert_int_equal(shoal_mgr_broadcast(NULL, &to, OP, 0, buf, 10),
                   SHOAL_EINVAL);
  assert_int_equal(shoal_mgr_broadcast(H.mgr, NULL, OP, 0, buf, 10),
                   SHOAL_EINVAL);
  assert_int_equal(shoal_mgr_broadcast(H.mgr, &to, OP, 0, NULL, 10),
                   SHOAL_EINVAL);
  assert_int_equal(shoal_mgr_broadcast(H.mgr, &to, OP, 0, buf, 65537),
                   SHOAL_EINVAL);
  assert_int_equal(shoal_mgr_broadcast(H.mgr, &to, OP, 0, buf, 10), 0);
  to.kind = SHOAL_TO_GROUP;
  to.key = 0; /* no group */
  assert_int_equal(shoal_mgr_broadcast(H.mgr, &to, OP, 0, buf, 10),
                   SHOAL_EINVAL);
  to = (shoal_audience){SHOAL_TO_MAP, 7, NULL, 0, 2, 0};
  for (uint32_t id = 1; id <= 20; id++) {
    assert_int_equal(shoal_session_create(H.mgr, id, NULL), SHOAL_OK);
    if (id % 2 == 0) {
      assert_int_equal(shoal_session_set_map(H.mgr, id, 7), SHOAL_OK);
      map7 |= UINT64_C(1) << id;
    }
  }
  assert_int_equal(shoal_packet_stats_get(H.mgr, &st0, 0), SHOAL_OK);
  for (uint32_t seq = 1; seq <= 50; seq++) {
    size_t len = payload(buf, 0, seq, seq % 2 ? 40 : 200 + seq * 50);
    n = shoal_mgr_broadcast(H.mgr, &to, OP, 0, buf, len);
    assert_int_equal(n, 9); /* ten on map 7, less 2 */
    if (seq == 25)
      settle(); /* some handled, more still to come */
  }
  for (uint32_t id = 1; id <= 20; id++)
    want[id] = (map7 >> id & 1) && id != 2 ? 50 : 0;
  settle();
  for (uint32_t id = 1; id <= 20; id++)
    assert_int_equal(H.got[id], want[id]);
  assert_int_equal(shoal_packet_stats_get(H.mgr, &st, 0), SHOAL_OK);
  assert_int_equal(st.broadcasts - st0.broadcasts, 50);
  assert_int_equal(st.deliveries - st0.deliveries, 450);
  assert_int_equal(st.sent - st0.sent, 450);
  assert_int_equal(st.deliveries_refused - st0.deliveries_refused, 0);
  assert_int_equal(st.rejected - st0.rejected, 0);
  assert_int_equal(st.payloads_taken - st0.payloads_taken, 25); /* shared */
  assert_int_equal(st.payloads_taken, st.payloads_freed);
  assert_int_equal(st.payload_buffer_bytes, 0);
  /* a group, and a list with a repeat, an unknown id and the speaker */
  assert_int_equal(shoal_session_set_group(H.mgr, 5, 3), SHOAL_OK);
  assert_int_equal(shoal_session_set_group(H.mgr, 6, 3), SHOAL_OK);
  to = (shoal_audience){SHOAL_TO_GROUP, 3, NULL, 0, 0, 0};
  assert_int_equal(
      shoal_mgr_broadcast(H.mgr, &to, OP, 0, buf, payload(buf, 1, 1, 500)), 2);
  {
    static const uint32_t list[] = {5, 5, 77, 9, 0};
    to = (shoal_audience){SHOAL_TO_IDS, 0, list, 5, 9, 0};
    assert_int_equal(
        shoal_mgr_broadcast(H.mgr, &to, OP, 0, buf, payload(buf, 1, 2, 700)),
        2);
  }
  settle();
  assert_int_equal(H.got[5], 3);
  assert_int_equal(H.got[6], 51);
  assert_int_equal(H.got[9], 0);
  /* sleeping members: woken by a broadcast, or left out with TO_AWAKE */
  assert_int_equal(sleep_idle(), 20);
  to = (shoal_audience){SHOAL_TO_MAP, 7, NULL, 0, 0, SHOAL_TO_AWAKE};
  assert_int_equal(
      shoal_mgr_broadcast(H.mgr, &to, OP, 0, buf, payload(buf, 2, 1, 300)), 0);
  to.flags = 0;
  assert_int_equal(
      shoal_mgr_broadcast(H.mgr, &to, OP, 0, buf, payload(buf, 2, 2, 300)),
      10);
  settle();
  for (uint32_t id = 1; id <= 20; id++)
    assert_int_equal(H.got[id], want[id] + (map7 >> id & 1) +
                                    (id == 5) * 3 + (id == 6));
  assert_int_equal(atomic_load(&H.bad), 0);
  assert_int_equal(atomic_load(&H.out_of_order), 0);
  assert_int_equal(shoal_packet_stats_get(H.mgr, &st, 0), SHOAL_OK);
  assert_int_equal(st.payloads_taken, st.payloads_freed);
  assert_int_equal(st.payload_bytes, 0);
  assert_int_equal(shoal_mgr_destroy(H.mgr), SHOAL_OK);
}

typedef struct bsender {
  uint32_t me;
  _Atomic int *stop;
  uint64_t sent, delivered;
} bsender;

static _Atomic uint64_t bcasts; /* by all senders, so far */

static void *bcast_loop(void *arg) {
  bsender *s = arg;
  unsigned char buf[2000];
  unsigned x = s->me * 7919u + 1u;
  uint32_t seq = 0;
  while (!atomic_load(s->stop)) {
    shoal_audience to = {SHOAL_TO_MAP, 1 + s->me % 2, NULL, 0, 0, 0};
    size_t len = 12 + (x = x * 1103515245u + 12345u) % 1900;
    long n = shoal_mgr_broadcast(H.mgr, &to, OP, 0, buf,
                                 payload(buf, s->me, ++seq, len));
    if (n < 0) {
      seq--; /* not sent: the number is used again */
      continue;
    }
    s->sent++;
    atomic_fetch_add(&bcasts, 1);
    s->delivered += (uint64_t)n;
  }
  return NULL;
}

/* Four broadcasters against ticks, moves between maps, releases and
 * creates: order per sender kept, every shared buffer given back. */
static void racing(void **state) {
  _Atomic int stop = 0;
  bsender s[SENDERS];
  pthread_t t[SENDERS];
  shoal_packet_stats st;
  uint64_t delivered = 0, handled_before_release;
  (void)state;
  make();
  atomic_store(&bcasts, 0);
  for (uint32_t id = 1; id <= IDS; id++) {
    assert_int_equal(shoal_session_create(H.mgr, id, NULL), SHOAL_OK);
    assert_int_equal(shoal_session_set_map(H.mgr, id, 1 + id % 3), SHOAL_OK);
  }
  for (uint32_t k = 0; k < SENDERS; k++) {
    s[k] = (bsender){k, &stop, 0, 0};
    assert_int_equal(pthread_create(&t[k], NULL, bcast_loop, &s[k]), 0);
  }
  for (int r = 0; r < ROUNDS || atomic_load(&bcasts) < 20u * ROUNDS; r++) {
    uint32_t id = 1 + (uint32_t)r % IDS;
    assert_int_equal(shoal_mgr_update(H.mgr, 1), SHOAL_OK);
    assert_int_equal(shoal_session_set_map(H.mgr, id, 1 + (uint32_t)r % 3),
                     SHOAL_OK);
    if (r % 7 == 0) {
      /* released and made again: its record of the senders starts over */
      assert_int_equal(shoal_session_release(H.mgr, id), SHOAL_OK);
      memset(H.last[id], 0, sizeof H.last[id]);
      assert_int_equal(shoal_session_create(H.mgr, id, NULL), SHOAL_OK);
    }
  }
  atomic_store(&stop, 1);
  for (uint32_t k = 0; k < SENDERS; k++) {
    pthread_join(t[k], NULL);
    delivered += s[k].delivered;
  }
  settle();
  handled_before_release = atomic_load(&H.handled);
  assert_int_equal(shoal_packet_stats_get(H.mgr, &st, 0), SHOAL_OK);
  print_message("# %llu broadcasts, %llu deliveries, %llu handled\n",
                (unsigned long long)st.broadcasts,
                (unsigned long long)st.deliveries,
                (unsigned long long)handled_before_release);
  assert_int_equal(st.deliveries, delivered);
  assert_true(st.broadcasts > 0);
  for (uint32_t id = 1; id <= IDS; id++)
    assert_int_equal(shoal_session_release(H.mgr, id), SHOAL_OK);
  assert_int_equal(shoal_packet_stats_get(H.mgr, &st, 0), SHOAL_OK);
  assert_int_equal(st.payloads_taken, st.payloads_freed);
  assert_int_equal(st.payload_bytes, 0);
  assert_int_equal(st.payload_buffer_bytes, 0);
  assert_int_equal(st.pending, 0);
  assert_int_equal(st.handled + st.dropped + st.rejected, st.sent);
  assert_int_equal(atomic_load(&H.bad), 0);
  assert_int_equal(atomic_load(&H.out_of_order), 0);
  assert_int_equal(shoal_mgr_destroy(H.mgr), SHOAL_OK);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(lists),
      cmocka_unit_test(reaches_members),
      cmocka_unit_test(racing),
  };
  return test_run("broadcast", tests, SHOAL_ARRAY_LEN(tests));
}
