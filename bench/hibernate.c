/* hibernate.c — the hibernate suite: 5000 bot sessions whose host state is
 * a realistic 64 KiB (about 1 KiB the serializer keeps: position, stats,
 * bags, quests, cooldowns; the rest an AI cache the bot rebuilds on its
 * next update), measured on the process's resident memory (/proc/self/
 * statm) with all active, after hibernating all, and after the
 * defragmentation; the time to hibernate and wake one session and to wake
 * all 5000 at once; and moving them to another manager (export, import,
 * the record's size, and what a move adds to a packet sent during it).
 * Figures only. */
#include <stdatomic.h>

#include "bench.h"
#include "shoal.h"

#define SESSIONS 5000
#define STATE_BYTES 65536

/* What the serializer keeps: the fields of a bot that a game server saves,
 * laid out as its structs are (ids, small counters, zeros where a bag slot
 * or a cooldown is empty). 1056 bytes. */
typedef struct bot_item {
  uint32_t item;
  uint16_t count, durability;
} bot_item;

typedef struct bot_quest {
  uint32_t quest;
  uint8_t status, flags;
  uint16_t count[3];
} bot_quest;

typedef struct bot_kept {
  uint32_t id, map, zone, level, race_class, xp, gold, flags;
  float pos[4];
  uint32_t health, mana, max_health, max_mana;
  bot_item bag[64];
  uint32_t equip[19];
  bot_quest quests[20];
  uint32_t cooldown_ms[32];
  int16_t reputation[16];
  uint32_t spec;
} bot_kept;

/* The cache the bot's AI keeps (paths, threat lists, spell choices): built
 * by its update, dropped on hibernation, rebuilt on the first update after
 * a wake. */
#define CACHE_BYTES (STATE_BYTES - (int)sizeof(bot_kept) - 64)

typedef struct bot {
  bot_kept k;
  unsigned char *cache;
} bot;

typedef struct host {
  uint64_t sum[SESSIONS + 1]; /* of each bot's kept bytes, checked on wake */
  _Atomic uint32_t mismatches;
  _Atomic uint32_t rebuilt;
} host;

static uint64_t mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

static uint64_t fnv(const void *p, size_t n) {
  const unsigned char *b = p;
  uint64_t h = 0xCBF29CE484222325ULL;
  for (size_t i = 0; i < n; i++)
    h = (h ^ b[i]) * 0x100000001B3ULL;
  return h;
}

/* An item id as bots carry them: most of a bag is the same few dozen
 * consumables and reagents, the rest scattered gear. */
static uint32_t item_of(uint64_t r) {
  if (r % 4 != 0)
    return 2400 + (uint32_t)(r >> 8) % 48;
  return 1000 + (uint32_t)(r >> 8) % 60000;
}

static void kept_fill(bot_kept *k, uint32_t id) {
  uint64_t s = mix(id);
  unsigned bagged, quests;
  memset(k, 0, sizeof *k);
  k->id = id;
  k->map = id % 4 < 3 ? 0 : 1 + id % 3;
  k->zone = 10 + (uint32_t)(s % 80);
  k->level = 1 + (uint32_t)(mix(s + 1) % 80);
  k->race_class = (uint32_t)(mix(s + 2) % 10) << 8 | (uint32_t)(s % 11);
  k->xp = (uint32_t)(mix(s + 3) % 400000);
  k->gold = (uint32_t)(mix(s + 4) % 5000000);
  k->flags = 0x8;
  for (int i = 0; i < 4; i++)
    k->pos[i] = (float)(mix(s + 5 + (uint64_t)i) % 20000) / 3.0f - 3000.0f;
  k->max_health = 100 + k->level * 120;
  k->max_mana = k->level * 90;
  k->health = k->max_health;
  k->mana = k->max_mana;
  bagged = 16 + (unsigned)(mix(s + 9) % 32);
  for (unsigned i = 0; i < bagged; i++) {
    uint64_t r = mix(s + 100 + i);
    k->bag[i].item = item_of(r);
    k->bag[i].count = (uint16_t)(1 + (r >> 40) % 20);
    k->bag[i].durability = r % 4 == 0 ? (uint16_t)((r >> 48) % 101) : 0;
  }
  for (unsigned i = 0; i < 19; i++)
    k->equip[i] = i % 6 == 5 ? 0 : 1000 + (uint32_t)(mix(s + 200 + i) % 60000);
  quests = 3 + (unsigned)(mix(s + 10) % 12);
  for (unsigned i = 0; i < quests; i++) {
    uint64_t r = mix(s + 300 + i);
    k->quests[i].quest = 1 + (uint32_t)(r % 12000);
    k->quests[i].status = (uint8_t)(1 + (r >> 20) % 3);
    k->quests[i].count[0] = (uint16_t)((r >> 24) % 10);
  }
  for (unsigned i = 0; i < 32; i += 5)
    k->cooldown_ms[i] = (uint32_t)(mix(s + 400 + i) % 30000);
  for (unsigned i = 0; i < 16; i++)
    k->reputation[i] = (int16_t)(mix(s + 500 + i) % 3000);
  k->spec = (uint32_t)(s % 3);
}

static void cache_build(bot *b) {
  uint64_t x = b->k.id;
  b->cache = malloc(CACHE_BYTES);
  if (b->cache == NULL)
    return;
  /* every page written, as a working cache is */
  for (size_t i = 0; i < CACHE_BYTES; i += 8) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    memcpy(b->cache + i, &x, CACHE_BYTES - i < 8 ? CACHE_BYTES - i : 8);
  }
}

static bot *bot_new(host *h, uint32_t id) {
  bot *b = malloc(sizeof *b);
  if (b == NULL)
    return NULL;
  kept_fill(&b->k, id);
  h->sum[id] = fnv(&b->k, sizeof b->k);
  cache_build(b);
  return b;
}

static void bot_free(bot *b) {
  if (b != NULL)
    free(b->cache);
  free(b);
}

static int on_update(void *h_, uint32_t id, void *user, uint32_t diff) {
  host *h = h_;
  bot *b = user;
  (void)id;
  (void)diff;
  if (b->cache == NULL) {
    cache_build(b);
    atomic_fetch_add_explicit(&h->rebuilt, 1, memory_order_relaxed);
  }
  return 0; /* idle: nothing happened */
}

static void on_release(void *h, uint32_t id, void *user) {
  (void)h;
  (void)id;
  bot_free(user);
}

static long on_hibernate(void *h, uint32_t id, void *user,
                         shoal_hib_writer *w) {
  bot *b = user;
  (void)h;
  (void)id;
  if (shoal_hib_write(w, &b->k, sizeof b->k) != SHOAL_OK)
    return -1;
  bot_free(b);
  return STATE_BYTES;
}

static int on_wake(void *h_, uint32_t id, const void *blob, size_t len,
                   void **user) {
  host *h = h_;
  bot *b;
  if (len != sizeof b->k || fnv(blob, len) != h->sum[id]) {
    atomic_fetch_add_explicit(&h->mismatches, 1, memory_order_relaxed);
    return -1;
  }
  if ((b = malloc(sizeof *b)) == NULL)
    return -1;
  memcpy(&b->k, blob, len);
  b->cache = NULL; /* rebuilt by the next update */
  *user = b;
  return 0;
}

/* A packet's latency from the host's send to its handler, by session. */
#define OP_PING 1
static double t_send[SESSIONS + 1], t_ran[SESSIONS + 1];

static int on_ping(void *h, uint32_t id, void *user, const shoal_packet *p) {
  (void)h;
  (void)user;
  (void)p;
  t_ran[id] = bench_now();
  return 0;
}

static void fail(const char *what) {
  fprintf(stderr, "bench_hibernate: %s\n", what);
  exit(1);
}

static void check(int rc, const char *what) {
  if (rc != SHOAL_OK) {
    fprintf(stderr, "bench_hibernate: %s: %s\n", what, shoal_strerror(rc));
    exit(1);
  }
}

/* Everyone's last activity older than the threshold: an update advances
 * the manager's clock with the pass held off by a long threshold, then
 * one explicit pass hibernates them all. Returns its seconds. */
static double hibernate_all(shoal_mgr *mgr) {
  double t0, t1;
  long n;
  check(shoal_mgr_set_hibernation_ms(mgr, 1ull << 40), "threshold");
  check(shoal_mgr_update(mgr, 1500), "update");
  check(shoal_mgr_set_hibernation_ms(mgr, 1000), "threshold");
  t0 = bench_now();
  n = shoal_mgr_hibernate_idle(mgr, 0);
  t1 = bench_now();
  if (n != SESSIONS) {
    fprintf(stderr, "bench_hibernate: %ld of %d sessions hibernated\n", n,
            SESSIONS);
    exit(1);
  }
  return t1 - t0;
}

/* All 5000 asked for, then woken by one call (as the next update would,
 * before its tick). Returns its seconds. */
static double wake_all(shoal_mgr *mgr) {
  double t0, t1;
  long n;
  if (shoal_mgr_wake_map(mgr, 0) < 0 || shoal_mgr_wake_map(mgr, 1) < 0 ||
      shoal_mgr_wake_map(mgr, 2) < 0 || shoal_mgr_wake_map(mgr, 3) < 0)
    fail("wake_map failed");
  t0 = bench_now();
  n = shoal_mgr_run_wakes(mgr);
  t1 = bench_now();
  if (n != SESSIONS) {
    fprintf(stderr, "bench_hibernate: %ld of %d sessions woke\n", n,
            SESSIONS);
    exit(1);
  }
  return t1 - t0;
}

static double median_of(double *v, size_t n) {
  return bench_quantile(v, n, 0.5);
}

/* Every session of `from` moved to a second manager on the same runtime
 * (export, import), all woken there; then, one session at a time, a
 * packet sent, its session exported and imported back (the transport a
 * memory copy away) and the packet run by the next update, against the
 * same packet to a session that stays. */
static void moves(const bench_args *a, unsigned n, shoal_runtime *rt,
                  shoal_mgr *from, const shoal_config *cfg,
                  const shoal_mgr_callbacks *cb,
                  const shoal_hib_callbacks *hc) {
  enum { K = 200 };
  static double t_exp[SESSIONS], t_imp[SESSIONS];
  double lat_moved[K], lat_stay[K], t_all_exp = 0, t_all_imp = 0, t_wake;
  double bytes = 0;
  size_t cap = 1 << 20, len;
  unsigned char *rec = malloc(cap);
  shoal_mgr *to = NULL;
  if (rec == NULL)
    fail("out of memory");
  check(shoal_mgr_create(&to, rt, cfg, cb), "second manager");
  check(shoal_mgr_set_hibernation(to, hc), "hibernation");
  check(shoal_mgr_set_hibernation_ms(to, 1ull << 40), "threshold");
  check(shoal_mgr_register_opcode(from, OP_PING, SHOAL_PACKET_INPLACE,
                                  SHOAL_CAT_OTHER, on_ping, NULL),
        "opcode");
  check(shoal_mgr_register_opcode(to, OP_PING, SHOAL_PACKET_INPLACE,
                                  SHOAL_CAT_OTHER, on_ping, NULL),
        "opcode");
  for (uint32_t id = 1; id <= SESSIONS; id++) {
    double t0 = bench_now(), t1, t2;
    check(shoal_session_export(from, id, rec, cap, &len), "export");
    t1 = bench_now();
    check(shoal_session_import(to, rec, len), "import");
    t2 = bench_now();
    t_exp[id - 1] = (t1 - t0) * 1e6;
    t_imp[id - 1] = (t2 - t1) * 1e6;
    t_all_exp += t1 - t0;
    t_all_imp += t2 - t1;
    bytes += (double)len;
  }
  t_wake = bench_now();
  check(shoal_mgr_update(to, 1), "update"); /* wakes all 5000 */
  t_wake = bench_now() - t_wake;
  check(shoal_mgr_update(to, 1), "update");
  for (uint32_t id = 1; id <= K; id++) {
    t_send[id] = bench_now();
    check(shoal_session_send(to, id, OP_PING, 0, NULL, 0), "send");
    check(shoal_session_export(to, id, rec, cap, &len), "export");
    check(shoal_session_import(from, rec, len), "import");
    check(shoal_mgr_update(from, 1), "update");
    lat_moved[id - 1] = (t_ran[id] - t_send[id]) * 1e6;
  }
  for (uint32_t id = 1; id <= K; id++) {
    t_ran[id] = 0;
    t_send[id] = bench_now();
    check(shoal_session_send(from, id, OP_PING, 0, NULL, 0), "send");
    check(shoal_mgr_update(from, 1), "update");
    lat_stay[id - 1] = (t_ran[id] - t_send[id]) * 1e6;
  }
  if (bench_want(a, "export")) {
    bench_row("export", "shoal", n, "us_p50",
              bench_quantile(t_exp, SESSIONS, 0.5), "us");
    bench_row("export", "shoal", n, "us_p99",
              bench_quantile(t_exp, SESSIONS, 0.99), "us");
    bench_row("export", "shoal", n, "ms_5000", t_all_exp * 1e3, "ms");
    bench_row("export", "shoal", n, "record_bytes_mean", bytes / SESSIONS,
              "B");
  }
  if (bench_want(a, "import")) {
    bench_row("import", "shoal", n, "us_p50",
              bench_quantile(t_imp, SESSIONS, 0.5), "us");
    bench_row("import", "shoal", n, "us_p99",
              bench_quantile(t_imp, SESSIONS, 0.99), "us");
    bench_row("import", "shoal", n, "ms_5000", t_all_imp * 1e3, "ms");
    bench_row("import", "shoal", n, "wake5000_ms", t_wake * 1e3, "ms");
  }
  if (bench_want(a, "move_packet")) {
    double m = bench_quantile(lat_moved, K, 0.5);
    double s0 = bench_quantile(lat_stay, K, 0.5);
    bench_row("move_packet", "shoal", n, "moved_us_p50", m, "us");
    bench_row("move_packet", "shoal", n, "moved_us_p99",
              bench_quantile(lat_moved, K, 0.99), "us");
    bench_row("move_packet", "shoal", n, "stayed_us_p50", s0, "us");
    bench_row("move_packet", "shoal", n, "added_us_p50", m - s0, "us");
  }
  check(shoal_mgr_destroy(to), "destroy");
  free(rec);
}

int main(int argc, char **argv) {
  bench_args a = bench_parse(argc, argv);
  const unsigned rounds = a.quick ? 3 : 15;
  static host h;
  shoal_runtime_config rc;
  shoal_runtime *rt = NULL;
  shoal_config cfg;
  shoal_mgr *mgr = NULL;
  shoal_mgr_callbacks cb = {on_update, on_release, &h};
  shoal_hib_callbacks hc = {on_hibernate, on_wake, NULL};
  shoal_defrag_report dr;
  shoal_hib_stats st;
  uint64_t empty, base, active, hib_before, hib_after;
  double t_hib[16], t_wake[16], t_rebuild[16], t_defrag[16];
  double per_active, per_hib;
  unsigned n;

  shoal_runtime_config_defaults(&rc);
  rc.workers = a.workers;
  check(shoal_runtime_create(&rt, &rc), "runtime");
  n = shoal_runtime_workers(rt);
  shoal_config_defaults(&cfg);
  cfg.max_sessions = SESSIONS;
  cfg.auto_defragment = 0;
  /* The process with the runtime and an empty manager (its opcode table,
   * its first slabs): what the sessions add is counted against that, and
   * the manager's fixed part is a row of its own. */
  empty = bench_rss();
  check(shoal_mgr_create(&mgr, rt, &cfg, &cb), "manager");
  check(shoal_mgr_set_hibernation(mgr, &hc), "hibernation");
  base = bench_rss();
  check(shoal_mgr_set_hibernation_hysteresis_ms(mgr, 0), "hysteresis");
  check(shoal_mgr_set_hibernation_ms(mgr, 1ull << 40), "threshold");
  for (uint32_t id = 1; id <= SESSIONS; id++) {
    bot *b = bot_new(&h, id);
    if (b == NULL || b->cache == NULL)
      fail("out of memory");
    check(shoal_session_create(mgr, id, b), "session");
    check(shoal_session_set_map(mgr, id, b->k.map), "map");
  }
  for (int i = 0; i < 3; i++)
    check(shoal_mgr_update(mgr, 50), "update");
  check(shoal_mgr_defragment(mgr, NULL), "defragment");
  active = bench_rss();

  /* The first round: resident memory at each step. */
  check(shoal_hib_stats_get(mgr, &st, 1), "stats");
  t_hib[0] = hibernate_all(mgr);
  hib_before = bench_rss();
  t_defrag[0] = bench_now();
  check(shoal_mgr_defragment(mgr, &dr), "defragment");
  t_defrag[0] = bench_now() - t_defrag[0];
  hib_after = bench_rss();
  check(shoal_hib_stats_get(mgr, &st, 0), "stats");
  per_active = (double)(active - base) / SESSIONS;
  per_hib = (double)(hib_after > base ? hib_after - base : 0) / SESSIONS;
  if (bench_want(&a, "rss_active")) {
    bench_row("rss_active", "shoal", n, "bytes_per_session", per_active, "B");
    bench_row("rss_active", "shoal", n, "rss", (double)active / 1048576.0,
              "MiB");
    bench_row("rss_active", "shoal", n, "rss_before_sessions",
              (double)base / 1048576.0, "MiB");
    bench_row("rss_active", "shoal", n, "manager_fixed",
              (double)(base - empty) / 1048576.0, "MiB");
  }
  if (bench_want(&a, "rss_hibernated")) {
    bench_row("rss_hibernated", "shoal", n, "bytes_per_session", per_hib,
              "B");
    bench_row("rss_hibernated", "shoal", n, "bytes_per_session_before_defrag",
              (double)(hib_before - base) / SESSIONS, "B");
    bench_row("rss_hibernated", "shoal", n, "rss",
              (double)hib_after / 1048576.0, "MiB");
    bench_row("rss_hibernated", "shoal", n, "record_mean", st.record_mean,
              "B");
    bench_row("rss_hibernated", "shoal", n, "record_max",
              (double)st.record_max, "B");
    bench_row("rss_hibernated", "shoal", n, "blob_mean",
              (double)st.raw_bytes / SESSIONS, "B");
  }
  if (bench_want(&a, "reduction"))
    bench_row("reduction", "shoal", n, "percent",
              100.0 * (1.0 - per_hib / per_active), "%");

  /* Then rounds of wake all → rebuild tick → hibernate all → defragment,
   * for the times. */
  t_wake[0] = wake_all(mgr);
  t_rebuild[0] = bench_now();
  check(shoal_mgr_set_hibernation_ms(mgr, 1ull << 40), "threshold");
  check(shoal_mgr_update(mgr, 50), "update");
  t_rebuild[0] = bench_now() - t_rebuild[0];
  for (unsigned r = 1; r < rounds; r++) {
    t_hib[r] = hibernate_all(mgr);
    t_defrag[r] = bench_now();
    check(shoal_mgr_defragment(mgr, NULL), "defragment");
    t_defrag[r] = bench_now() - t_defrag[r];
    t_wake[r] = wake_all(mgr);
    t_rebuild[r] = bench_now();
    check(shoal_mgr_update(mgr, 50), "update");
    t_rebuild[r] = bench_now() - t_rebuild[r];
  }
  check(shoal_hib_stats_get(mgr, &st, 0), "stats");
  if (atomic_load(&h.mismatches) != 0 ||
      atomic_load(&h.rebuilt) != rounds * SESSIONS)
    fail("a woken bot's state differs from what it kept");
  if (bench_want(&a, "hibernate")) {
    bench_row("hibernate", "shoal", n, "us_p50", st.hibernate_p50_ns / 1e3,
              "us");
    bench_row("hibernate", "shoal", n, "us_p99", st.hibernate_p99_ns / 1e3,
              "us");
    bench_row("hibernate", "shoal", n, "shoal_us_p50",
              st.hibernate_shoal_p50_ns / 1e3, "us");
    bench_row("hibernate", "shoal", n, "shoal_us_p99",
              st.hibernate_shoal_p99_ns / 1e3, "us");
    bench_row("hibernate", "shoal", n, "ms_5000",
              median_of(t_hib, rounds) * 1e3, "ms");
  }
  if (bench_want(&a, "wake")) {
    bench_row("wake", "shoal", n, "us_p50", st.wake_p50_ns / 1e3, "us");
    bench_row("wake", "shoal", n, "us_p99", st.wake_p99_ns / 1e3, "us");
    bench_row("wake", "shoal", n, "shoal_us_p50", st.wake_shoal_p50_ns / 1e3,
              "us");
    bench_row("wake", "shoal", n, "shoal_us_p99", st.wake_shoal_p99_ns / 1e3,
              "us");
  }
  if (bench_want(&a, "wake5000")) {
    bench_row("wake5000", "shoal", n, "ms", median_of(t_wake, rounds) * 1e3,
              "ms");
    bench_row("wake5000", "shoal", n, "ms_max",
              bench_quantile(t_wake, rounds, 1.0) * 1e3, "ms");
    bench_row("wake5000", "shoal", n, "rebuild_tick_ms",
              median_of(t_rebuild, rounds) * 1e3, "ms");
  }
  if (bench_want(&a, "defrag")) {
    bench_row("defrag", "shoal", n, "bytes_returned",
              (double)dr.bytes_returned, "B");
    bench_row("defrag", "shoal", n, "ms", median_of(t_defrag, rounds) * 1e3,
              "ms");
    /* What each step gave back, as the manager counts it. */
    bench_row("defrag", "shoal", n, "columns_bytes",
              (double)dr.columns_bytes, "B");
    bench_row("defrag", "shoal", n, "pool_bytes", (double)dr.pool_bytes, "B");
    bench_row("defrag", "shoal", n, "table_bytes", (double)dr.table_bytes,
              "B");
  }
  if (bench_want(&a, "export") || bench_want(&a, "import") ||
      bench_want(&a, "move_packet"))
    moves(&a, n, rt, mgr, &cfg, &cb, &hc);
  check(shoal_mgr_destroy(mgr), "destroy");
  shoal_runtime_destroy(rt);
  return 0;
}
