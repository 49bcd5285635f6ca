/* packets.c — the packets suite: the opcode lookup per packet (the table
 * read the tick does), a send from a thread outside the runtime, the
 * drain's throughput on the main thread with trivial handlers, and the
 * share of packets deferred under a bot server's mix (the rates of
 * docs/packets.md, "Figures"). */
#include <pthread.h>

#include "bench.h"
#include "sessions/mgr.h"
#include "shoal.h"

#define SESSIONS 1000

static int nop_update(void *host, uint32_t id, void *user, uint32_t diff) {
  (void)host;
  (void)id;
  (void)user;
  (void)diff;
  return 0;
}

static int nop_packet(void *host, uint32_t session, void *user,
                      const shoal_packet *p) {
  (void)host;
  (void)session;
  (void)user;
  (void)p;
  return 0;
}

/* A game server's table: the main-thread categories of shoal stress. */
static shoal_packet_class class_of(int c) {
  switch (c) {
  case SHOAL_CAT_SPELL: case SHOAL_CAT_ITEM: case SHOAL_CAT_COMBAT:
  case SHOAL_CAT_LOOT: case SHOAL_CAT_TRADE: case SHOAL_CAT_QUEST:
  case SHOAL_CAT_GROUP:
    return SHOAL_PACKET_MAIN;
  default:
    return SHOAL_PACKET_INPLACE;
  }
}

static shoal_mgr *mgr_new(shoal_runtime *rt, shoal_update_fn update,
                          void *host, unsigned per_session) {
  shoal_config cfg;
  shoal_mgr_callbacks cb = {update, NULL, host};
  shoal_mgr *mgr = NULL;
  shoal_config_defaults(&cfg);
  cfg.max_sessions = SESSIONS;
  cfg.pool_preallocate = SESSIONS;
  cfg.inbox_size = 65536;
  cfg.max_queued_packets = 1u << 22;
  cfg.packets_per_update = 65536;
  cfg.deferred_per_session = per_session;
  if (shoal_mgr_create(&mgr, rt, &cfg, &cb) != SHOAL_OK) {
    fprintf(stderr, "bench_packets: cannot create a manager\n");
    exit(1);
  }
  /* opcode = category * 16 + k */
  for (int c = 0; c < SHOAL_CAT_COUNT; c++)
    for (int k = 0; k < 16; k++)
      shoal_mgr_register_opcode(mgr, (uint16_t)(c * 16 + k), class_of(c), c,
                                nop_packet, NULL);
  for (uint32_t id = 1; id <= SESSIONS; id++)
    shoal_session_create(mgr, id, NULL);
  return mgr;
}

/* ---- classify ----------------------------------------------------------- */

static void run_classify(const bench_args *a, shoal_runtime *rt) {
  enum { N = 1 << 20 };
  shoal_mgr *mgr = mgr_new(rt, nop_update, NULL, 50);
  uint16_t *ops = malloc(N * sizeof *ops);
  double best = 1e30;
  uint64_t x = 88172645463325252ull, sink = 0;
  for (size_t i = 0; i < N; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    ops[i] = (uint16_t)x; /* any opcode, registered or not */
  }
  for (int r = 0; r < (a->quick ? 5 : 20); r++) {
    double t0, t;
    /* every round reads the table again: nothing hoisted out of it */
    __asm__ volatile("" ::: "memory");
    t0 = bench_now();
    for (size_t i = 0; i < N; i++)
      sink += shoal__pk_classify(&mgr->pk, ops[i]) & SHOAL__OP_MAIN;
    __asm__ volatile("" : "+r"(sink) : : "memory");
    t = bench_now() - t0;
    if (t < best)
      best = t;
  }
  bench_row("classify", "shoal", 1, "ns_per_packet", best * 1e9 / N, "ns");
  if (sink == 42)
    fprintf(stderr, "%llu\n", (unsigned long long)sink);
  free(ops);
  shoal_mgr_destroy(mgr);
}

/* ---- send --------------------------------------------------------------- */

/* Packets sent between two ticks: about a tick's worth of a 5000-bot
 * server (docs/packets.md), so that the packets are the warm ones the
 * last tick gave back, as in a running server. The _burst cases keep
 * 200000 in flight instead: every packet record a cold line. */
#define TICK_PACKETS 4096u

typedef struct send_arg {
  shoal_mgr *mgr;
  uint32_t n, chunk;
  size_t len;
  double s;
} send_arg;

static void *send_thread(void *arg) {
  send_arg *sa = arg;
  static unsigned char payload[2000] = {1, 2, 3};
  sa->s = 0;
  for (uint32_t i0 = 0; i0 < sa->n; i0 += sa->chunk) {
    uint32_t end = i0 + sa->chunk < sa->n ? i0 + sa->chunk : sa->n;
    double t0 = bench_now();
    for (uint32_t i = i0; i < end; i++)
      if (shoal_session_send(sa->mgr, i % SESSIONS + 1,
                             (uint16_t)(SHOAL_CAT_MOVEMENT * 16), 0, payload,
                             sa->len) != SHOAL_OK) {
        fprintf(stderr, "bench_packets: send refused\n");
        exit(1);
      }
    sa->s += bench_now() - t0;
    shoal_mgr_update(sa->mgr, 50); /* runs them (INPLACE) */
  }
  return NULL;
}

/* Sends from a thread outside the runtime: 16 bytes (inline; case send),
 * 200 and 2000 (a buffer of the manager's: send200, send2000); and 16
 * with 200000 in flight (send_burst). */
static void run_send(const bench_args *a, shoal_runtime *rt) {
  static const size_t lens[] = {16, 200, 2000, 16};
  shoal_mgr *mgr = mgr_new(rt, nop_update, NULL, 50);
  int reps = a->quick ? 5 : 15;
  double *v = malloc((size_t)reps * sizeof *v);
  for (size_t k = 0; k < 4; k++) {
    char name[16];
    snprintf(name, sizeof name,
             k == 0 ? "send" : k == 3 ? "send_burst" : "send%zu", lens[k]);
    if (!bench_want(a, name))
      continue;
    for (int r = 0; r < reps; r++) {
      /* past the inline bytes: within the buffers' budget */
      send_arg sa = {mgr, k == 1 || k == 2 ? 20000 : 200000,
                     k == 3 ? 200000 : TICK_PACKETS, lens[k], 0};
      pthread_t th;
      pthread_create(&th, NULL, send_thread, &sa);
      pthread_join(th, NULL);
      v[r] = sa.s * 1e9 / sa.n;
    }
    bench_row(name, "shoal", 1, "ns_per_packet", bench_quantile(v, reps, 0.5),
              "ns");
  }
  free(v);
  shoal_mgr_destroy(mgr);
}

/* The copy a send of len bytes makes, alone: len bytes into one of a
 * tick's worth of buffers in turn (the working set of send200/send2000),
 * ns per copy; the baseline "the cost of the copy" for those cases. */
static void run_copy(const bench_args *a) {
  static const size_t lens[] = {200, 2000};
  static unsigned char src[2000] = {1, 2, 3};
  int reps = a->quick ? 5 : 15;
  double *v = malloc((size_t)reps * sizeof *v);
  for (size_t k = 0; k < 2; k++) {
    char name[16];
    size_t stride = lens[k] <= 256 ? 256 : 2048; /* its size class */
    unsigned char *bufs = malloc(TICK_PACKETS * stride);
    snprintf(name, sizeof name, "copy%zu", lens[k]);
    if (!bench_want(a, name) || bufs == NULL) {
      free(bufs);
      continue;
    }
    memset(bufs, 0, TICK_PACKETS * stride);
    for (int r = 0; r < reps; r++) {
      double t0, t = 0;
      for (int round = 0; round < 5; round++) {
        t0 = bench_now();
        for (uint32_t i = 0; i < TICK_PACKETS; i++) {
          src[0] = (unsigned char)i;
          memcpy(bufs + (size_t)i * stride, src, lens[k]);
        }
        __asm__ volatile("" : : "r"(bufs) : "memory");
        t += bench_now() - t0;
      }
      v[r] = t * 1e9 / (5.0 * TICK_PACKETS);
    }
    bench_row(name, "memcpy", 1, "ns_per_packet", bench_quantile(v, reps, 0.5),
              "ns");
    free(bufs);
  }
  free(v);
}

/* ---- broadcast ---------------------------------------------------------- */

/* One broadcast to a map of 100 sessions from the main thread, a tick's
 * worth between ticks, per recipient: 32 bytes (inline in each packet; case
 * broadcast) and 200 (one shared buffer: broadcast200). */
static void run_broadcast(const bench_args *a, shoal_runtime *rt) {
  static const size_t lens[] = {32, 200};
  static unsigned char payload[200] = {1, 2, 3};
  enum { MEMBERS = 100, CALLS = 2000, PER_TICK = TICK_PACKETS / MEMBERS };
  shoal_mgr *mgr = mgr_new(rt, nop_update, NULL, 50);
  shoal_audience to = {SHOAL_TO_MAP, 1, NULL, 0, 0, 0};
  int reps = a->quick ? 5 : 15;
  double *v = malloc((size_t)reps * sizeof *v);
  for (uint32_t id = 1; id <= MEMBERS; id++)
    shoal_session_set_map(mgr, id * (SESSIONS / MEMBERS), 1);
  for (size_t k = 0; k < 2; k++) {
    const char *name = k == 0 ? "broadcast" : "broadcast200";
    if (!bench_want(a, name))
      continue;
    for (int r = 0; r < reps; r++) {
      double t = 0;
      for (int c0 = 0; c0 < CALLS; c0 += PER_TICK) {
        double t0 = bench_now();
        for (int c = c0; c < c0 + PER_TICK; c++)
          if (shoal_mgr_broadcast(mgr, &to, (uint16_t)(SHOAL_CAT_CHAT * 16),
                                  0, payload, lens[k]) != MEMBERS) {
            fprintf(stderr, "bench_packets: a broadcast fell short\n");
            exit(1);
          }
        t += bench_now() - t0;
        shoal_mgr_update(mgr, 50); /* runs them (INPLACE) */
      }
      v[r] = t * 1e9 / ((double)(CALLS / PER_TICK * PER_TICK) * MEMBERS);
    }
    bench_row(name, "shoal", 1, "ns_per_recipient",
              bench_quantile(v, reps, 0.5), "ns");
  }
  free(v);
  shoal_mgr_destroy(mgr);
}

/* ---- drain -------------------------------------------------------------- */

static void run_drain(const bench_args *a, shoal_runtime *rt) {
  const uint32_t n = 1000000;
  shoal_mgr *mgr = mgr_new(rt, nop_update, NULL, 1u << 20);
  int reps = a->quick ? 3 : 9;
  double *v = malloc((size_t)reps * sizeof *v);
  for (int r = 0; r < reps; r++) {
    double t0, t;
    long ran;
    for (uint32_t i = 0; i < n; i++)
      shoal_session_send(mgr, i % SESSIONS + 1,
                         (uint16_t)(SHOAL_CAT_SPELL * 16), 0, NULL, 0);
    shoal_mgr_update(mgr, 50); /* to the deferred queue */
    t0 = bench_now();
    ran = shoal_mgr_drain_deferred(mgr, 0, NULL);
    t = bench_now() - t0;
    if (ran != (long)n) {
      fprintf(stderr, "bench_packets: drained %ld of %u\n", ran, n);
      exit(1);
    }
    v[r] = (double)n / t * 1e-6;
  }
  bench_row("drain", "shoal", 1, "mpackets_per_s",
            bench_quantile(v, reps, 0.5), "M/s");
  bench_row("drain", "shoal", 1, "ns_per_packet",
            1e3 / bench_quantile(v, reps, 0.5), "ns");
  free(v);
  shoal_mgr_destroy(mgr);
}

/* ---- the stress mix ----------------------------------------------------- */

/* Per bot per second (docs/packets.md): the rates of a large bot server. */
static const struct {
  int category;
  double per_s;
} mix[] = {
  {SHOAL_CAT_SPELL, 2.0},   {SHOAL_CAT_MOVEMENT, 2.0},
  {SHOAL_CAT_COMBAT, 0.5},  {SHOAL_CAT_LOOT, 0.3},
  {SHOAL_CAT_QUEST, 0.05},  {SHOAL_CAT_GOSSIP, 0.1},
  {SHOAL_CAT_TRADE, 0.02},  {SHOAL_CAT_CHAT, 0.2},
  {SHOAL_CAT_ITEM, 0.1},    {SHOAL_CAT_GROUP, 0.02},
};

typedef struct mix_host {
  shoal_mgr *mgr;
  uint64_t seed[SESSIONS + 1];
} mix_host;

/* The bot's AI: sends this tick's share of each kind to itself. */
static int mix_update(void *host, uint32_t id, void *user, uint32_t diff) {
  mix_host *h = host;
  uint64_t *x = &h->seed[id];
  (void)user;
  for (size_t k = 0; k < sizeof mix / sizeof mix[0]; k++) {
    double p = mix[k].per_s * diff * 1e-3;
    *x ^= *x << 13, *x ^= *x >> 7, *x ^= *x << 17;
    if ((double)(*x >> 11) * 0x1p-53 < p)
      shoal_session_send(h->mgr, id, (uint16_t)(mix[k].category * 16), 0,
                         NULL, 0);
  }
  return 0;
}

static void run_mix(const bench_args *a, shoal_runtime *rt) {
  mix_host *h = calloc(1, sizeof *h);
  shoal_packet_stats st;
  for (uint32_t id = 0; id <= SESSIONS; id++)
    h->seed[id] = 0x9e3779b97f4a7c15ull * (id + 1);
  h->mgr = mgr_new(rt, mix_update, h, 50);
  for (int t = 0; t < (a->quick ? 200 : 1000); t++) {
    shoal_mgr_update(h->mgr, 50);
    shoal_mgr_drain_deferred(h->mgr, 0, NULL);
  }
  shoal_packet_stats_get(h->mgr, &st, 0);
  bench_row("stress_mix", "shoal", shoal_runtime_workers(rt),
            "deferred_percent",
            st.handled ? 100.0 *
                             (double)(st.by_class[SHOAL_PACKET_MAIN] +
                                      st.inplace_on_main) /
                             (double)st.handled
                       : 0,
            "%");
  bench_row("stress_mix", "shoal", shoal_runtime_workers(rt),
            "inplace_on_main_percent",
            st.handled ? 100.0 * (double)st.inplace_on_main /
                             (double)st.handled
                       : 0,
            "%");
  bench_row("stress_mix", "shoal", shoal_runtime_workers(rt),
            "wait_p99_us", (double)st.wait_p99_ns * 1e-3, "us");
  shoal_mgr_destroy(h->mgr);
  free(h);
}

int main(int argc, char **argv) {
  bench_args a = bench_parse(argc, argv);
  shoal_runtime_config cfg;
  shoal_runtime *rt = NULL;
  shoal_runtime_config_defaults(&cfg);
  cfg.workers = a.workers;
  if (shoal_runtime_create(&rt, &cfg) != SHOAL_OK) {
    fprintf(stderr, "bench_packets: cannot start %u workers\n", a.workers);
    return 1;
  }
  if (bench_want(&a, "classify"))
    run_classify(&a, rt);
  run_send(&a, rt);
  run_copy(&a);
  run_broadcast(&a, rt);
  if (bench_want(&a, "drain"))
    run_drain(&a, rt);
  if (bench_want(&a, "stress_mix"))
    run_mix(&a, rt);
  shoal_runtime_destroy(rt);
  return 0;
}
