/* test_maps.c — the map phase: a map's MAP handlers and its map update
 * never overlap, nor run beside any session update (an owner check per
 * map under more workers than cores, many ticks); two maps do run at once
 * (each map's update waits for the other's on a two-worker runtime); a
 * session's packets keep their send order across INPLACE, MAP and MAIN,
 * and a session that changes map between ticks takes its later packets
 * to the new map; every MAP packet is handled once. */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "runtime/common.h"
#include "test_util.h"

#define OP_IN 30
#define OP_MAP 31
#define OP_MAIN 32
#define MAPS 16u
#define SESS 400u

#if SHOAL__TSAN
#define TICKS 200
#else
#define TICKS 2000
#endif

typedef struct host {
  shoal_mgr *mgr;
  _Atomic uint32_t map_of[SESS + 1];  /* the host's view of each map */
  _Atomic uint32_t owner[MAPS + 1];   /* the thread in a map, 0: none */
  _Atomic int in_update;              /* session updates running now */
  _Atomic uint64_t overlaps, beside_update, wrong_map, out_of_order;
  _Atomic uint64_t handled[3];        /* by class */
  _Atomic uint64_t map_packets[MAPS + 1];
  _Atomic uint64_t map_updates;
  uint32_t last[SESS + 1];            /* each session's last number */
  _Atomic uint32_t seq[SESS + 1];     /* each session's next number */
  /* the parallel check */
  _Atomic int arrived;
  _Atomic int met;
  int wait_for_two;
} host;

static host H;
static _Atomic uint32_t thread_ids;
static _Thread_local uint32_t my_id;

static uint32_t me(void) {
  if (my_id == 0)
    my_id = atomic_fetch_add(&thread_ids, 1) + 1;
  return my_id;
}

static void enter(host *h, uint32_t map) {
  uint32_t none = 0;
  if (!atomic_compare_exchange_strong(&h->owner[map], &none, me()))
    atomic_fetch_add(&h->overlaps, 1);
  if (atomic_load(&h->in_update) != 0)
    atomic_fetch_add(&h->beside_update, 1);
}

static void leave(host *h, uint32_t map) {
  atomic_store(&h->owner[map], 0);
}

static _Atomic int quiet; /* the updates send nothing */

static int upd(void *hp, uint32_t id, void *user, uint32_t diff) {
  host *h = hp;
  (void)user;
  (void)diff;
  atomic_fetch_add(&h->in_update, 1);
  /* each session sends three numbered packets per update, their classes
   * mixed by a hash of the number and the session, so that every order of
   * classes meets in one take */
  for (int j = 0; id <= SESS && !atomic_load(&quiet) && j < 3; j++) {
    uint32_t n = atomic_fetch_add(&h->seq[id], 1) + 1;
    uint32_t k = (uint32_t)(((uint64_t)(n * 2654435761u ^ id) * 40503u) >> 7) % 3;
    uint16_t op = k == 0 ? OP_IN : k == 1 ? OP_MAP : OP_MAIN;
    (void)shoal_session_send(h->mgr, id, op, 0, &n, sizeof n);
  }
  atomic_fetch_sub(&h->in_update, 1);
  return 1;
}

static int handler(void *hp, uint32_t id, void *user, const shoal_packet *p) {
  host *h = hp;
  uint32_t n, map = atomic_load(&h->map_of[id]);
  int cls = p->opcode == OP_MAP ? 1 : p->opcode == OP_MAIN ? 2 : 0;
  (void)user;
  memcpy(&n, p->data, sizeof n);
  if (n <= h->last[id])
    atomic_fetch_add(&h->out_of_order, 1);
  h->last[id] = n;
  if (cls == 1) {
    enter(h, map);
    atomic_fetch_add(&h->map_packets[map], 1);
    leave(h, map);
  }
  atomic_fetch_add(&h->handled[cls], 1);
  return 0;
}

static void on_map(void *hp, uint32_t map, uint32_t diff) {
  host *h = hp;
  (void)diff;
  if (map > MAPS) {
    atomic_fetch_add(&h->wrong_map, 1);
    return;
  }
  enter(h, map);
  atomic_fetch_add(&h->map_updates, 1);
  if (h->wait_for_two) {
    /* each of two maps waits (a while at most) for the other */
    struct timespec t0, t;
    atomic_fetch_add(&h->arrived, 1);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do {
      if (atomic_load(&h->arrived) >= 2) {
        atomic_store(&h->met, 1);
        break;
      }
      clock_gettime(CLOCK_MONOTONIC, &t);
    } while ((t.tv_sec - t0.tv_sec) * 1000000000L + (t.tv_nsec - t0.tv_nsec) <
             2000000000L);
  }
  leave(h, map);
}

static shoal_mgr *make(unsigned workers) {
  shoal_config cfg;
  shoal_mgr_callbacks cb = {upd, NULL, &H};
  memset(&H, 0, sizeof H);
  atomic_store(&quiet, 0);
  shoal_config_defaults(&cfg);
  cfg.worker_threads = workers;
  cfg.max_sessions = SESS + 10;
  cfg.pool_preallocate = SESS + 10;
  cfg.batch_size = 8;
  cfg.log = test_quiet_log;
  assert_int_equal(shoal_mgr_create(&H.mgr, NULL, &cfg, &cb), SHOAL_OK);
  assert_int_equal(shoal_mgr_register_opcode(H.mgr, OP_IN,
                                             SHOAL_PACKET_INPLACE,
                                             SHOAL_CAT_MOVEMENT, handler,
                                             NULL),
                   SHOAL_OK);
  assert_int_equal(shoal_mgr_register_opcode(H.mgr, OP_MAP, SHOAL_PACKET_MAP,
                                             SHOAL_CAT_SPELL, handler, NULL),
                   SHOAL_OK);
  assert_int_equal(shoal_mgr_register_opcode(H.mgr, OP_MAIN,
                                             SHOAL_PACKET_MAIN,
                                             SHOAL_CAT_TRADE, handler, NULL),
                   SHOAL_OK);
  return H.mgr;
}

/* Owner checks over many ticks, 8 workers on the machine's cores; maps
 * change between ticks; every packet handled once, in order. */
static void serialized(void **state) {
  shoal_mgr *mgr = make(8);
  shoal_opcode_info info;
  shoal_packet_stats st;
  uint64_t sent = 0, maps_total = 0;
  (void)state;
  assert_int_equal(shoal_mgr_register_opcode(mgr, 33, (shoal_packet_class)3,
                                             SHOAL_CAT_SPELL, handler, NULL),
                   SHOAL_EINVAL);
  assert_int_equal(shoal_mgr_opcode_info(mgr, OP_MAP, &info), SHOAL_OK);
  assert_int_equal(info.cls, SHOAL_PACKET_MAP);
  assert_int_equal(shoal_mgr_set_map_update(NULL, on_map), SHOAL_EINVAL);
  assert_int_equal(shoal_mgr_set_map_update(mgr, on_map), SHOAL_OK);
  for (uint32_t id = 1; id <= SESS; id++) {
    atomic_store(&H.map_of[id], 1 + id % MAPS);
    assert_int_equal(shoal_session_create(mgr, id, NULL), SHOAL_OK);
    assert_int_equal(shoal_session_set_map(mgr, id, 1 + id % MAPS), SHOAL_OK);
  }
  for (int t = 0; t < TICKS; t++) {
    assert_int_equal(shoal_mgr_update(mgr, 1), SHOAL_OK);
    assert_true(shoal_mgr_drain_deferred(mgr, 0, NULL) >= 0);
    if (t % 10 == 0) { /* a few move: their later packets go with them */
      uint32_t id = 1 + (uint32_t)t % SESS, map = 1 + (uint32_t)t % MAPS;
      atomic_store(&H.map_of[id], map);
      assert_int_equal(shoal_session_set_map(mgr, id, map), SHOAL_OK);
    }
  }
  atomic_store(&quiet, 1);
  for (int t = 0; t < 3; t++) {
    assert_int_equal(shoal_mgr_update(mgr, 1), SHOAL_OK);
    assert_true(shoal_mgr_drain_deferred(mgr, 0, NULL) >= 0);
  }
  assert_int_equal(shoal_packet_stats_get(mgr, &st, 0), SHOAL_OK);
  for (uint32_t id = 1; id <= SESS; id++)
    sent += atomic_load(&H.seq[id]);
  for (uint32_t m = 1; m <= MAPS; m++)
    maps_total += atomic_load(&H.map_packets[m]);
  print_message("# %llu packets: INPLACE %llu, MAP %llu, MAIN %llu; %llu map "
                "updates\n",
                (unsigned long long)sent,
                (unsigned long long)atomic_load(&H.handled[0]),
                (unsigned long long)atomic_load(&H.handled[1]),
                (unsigned long long)atomic_load(&H.handled[2]),
                (unsigned long long)atomic_load(&H.map_updates));
  assert_int_equal(atomic_load(&H.overlaps), 0);
  assert_int_equal(atomic_load(&H.beside_update), 0);
  assert_int_equal(atomic_load(&H.wrong_map), 0);
  assert_int_equal(atomic_load(&H.out_of_order), 0);
  assert_int_equal(st.pending, 0);
  assert_int_equal(st.handled, sent);
  assert_int_equal(atomic_load(&H.handled[0]) + atomic_load(&H.handled[1]) +
                       atomic_load(&H.handled[2]),
                   sent);
  assert_int_equal(maps_total, atomic_load(&H.handled[1]));
  assert_true(atomic_load(&H.handled[1]) > 0);
  /* one update per map per tick: every map has sessions */
  assert_int_equal(atomic_load(&H.map_updates), (TICKS + 3) * (uint64_t)MAPS);
  /* the figures: every map's turns, its sessions, the packets its turns
   * ran, all of those taken to the phase */
  {
    shoal_map_stats ms[MAPS + 1];
    shoal_mgr_metrics m;
    uint64_t ran = 0, sessions = 0;
    assert_int_equal(shoal_mgr_map_stats(mgr, ms, MAPS + 1, 0), MAPS);
    for (uint32_t k = 0; k < MAPS; k++) {
      assert_int_equal(ms[k].turns, TICKS + 3);
      assert_true(k == 0 || ms[k].phase_ns <= ms[k - 1].phase_ns);
      ran += ms[k].map_packets;
      sessions += ms[k].sessions;
    }
    assert_int_equal(sessions, SESS);
    assert_int_equal(ran, st.mapped);
    assert_true(st.mapped > 0);
    assert_int_equal(shoal_mgr_metrics_get(mgr, &m, 0), SHOAL_OK);
    assert_true(m.map_phase_share > 0 && m.session_phase_share > 0 &&
                m.map_phase_share + m.session_phase_share <= 1.0);
    assert_true(m.biggest_map_share > 0 && m.biggest_map_share <= 1.0);
    assert_int_equal(shoal_mgr_map_stats(mgr, ms, 1, 1), MAPS);
    assert_int_equal(shoal_mgr_map_stats(mgr, ms, MAPS + 1, 0), MAPS);
    assert_int_equal(ms[0].map_packets + ms[0].turns, 0);
  }
  assert_int_equal(shoal_mgr_destroy(mgr), SHOAL_OK);
}

/* Two maps' updates meet: they run at once on a two-worker runtime. */
static void in_parallel(void **state) {
  shoal_mgr *mgr = make(2);
  int met = 0;
  (void)state;
  assert_int_equal(shoal_mgr_set_map_update(mgr, on_map), SHOAL_OK);
  for (uint32_t id = 1; id <= 2; id++) {
    atomic_store(&H.map_of[id], id);
    assert_int_equal(shoal_session_create(mgr, id, NULL), SHOAL_OK);
    assert_int_equal(shoal_session_set_map(mgr, id, id), SHOAL_OK);
  }
  H.wait_for_two = 1;
  /* a few tries: the other worker may be slow to wake on a loaded box */
  for (int k = 0; k < 5 && !met; k++) {
    atomic_store(&H.arrived, 0);
    assert_int_equal(shoal_mgr_update(mgr, 1), SHOAL_OK);
    met = atomic_load(&H.met);
  }
  assert_true(met);
  assert_int_equal(atomic_load(&H.overlaps), 0);
  H.wait_for_two = 0;
  assert_int_equal(shoal_mgr_destroy(mgr), SHOAL_OK);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(serialized),
      cmocka_unit_test(in_parallel),
  };
  return test_run("maps", tests, SHOAL_ARRAY_LEN(tests));
}
