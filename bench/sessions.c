/* sessions.c — the sessions suite: the 5000-session tick through the
 * session manager (the host's per-session callback doing W ns of work)
 * beside a serial loop doing the same work and the runtime's bare tick of
 * it (shoal_parallel_for); creating 1000 and 5000 sessions; shoal's own
 * memory per session and the linear fit's R²; the map phase beside the
 * same packets on the main thread; timers beside a binary heap; a
 * session's request to an actor and its reply, by session request-reply
 * beside a broker actor.
 * oneTBB's rows come from sessions_tbb.cpp. */
#include <math.h>

#include "bench.h"
#include "shoal.h"

static int host_update(void *host, uint32_t id, void *user, uint32_t diff) {
  const bench_tick *t = host;
  (void)id;
  (void)diff;
  bench_session_step(user, t->iters);
  return 0;
}

/* The same work through the batch callback: one call per chunk. */
static int host_update_batch(void *host, uint32_t n, const uint32_t *ids,
                             void *const *users, const uint32_t *diff_ms,
                             int *rc) {
  const bench_tick *t = host;
  (void)ids;
  (void)diff_ms;
  (void)rc;
  for (uint32_t k = 0; k < n; k++)
    bench_session_step(users[k], t->iters);
  return 0;
}

static int nop_update(void *host, uint32_t id, void *user, uint32_t diff) {
  (void)host;
  (void)id;
  (void)user;
  (void)diff;
  return 0;
}

static void tick_serial(void *ctx) {
  bench_tick_range(ctx, 0, TICK_SESSIONS);
}

static void tick_mgr(void *ctx) {
  shoal_mgr_update(ctx, 50);
}

/* The runtime's bare tick of the same sessions and work (the runtime
 * suite's tick5000 rows), the figure the manager's own cost is held
 * against in the same run. */
typedef struct bare_tick {
  shoal_runtime *rt;
  bench_tick *t;
} bare_tick;

static void tick_bare(void *ctx) {
  bare_tick *x = ctx;
  shoal_parallel_for(x->rt, 0, TICK_SESSIONS, 64, bench_tick_body, x->t);
}

static shoal_runtime *runtime_new(unsigned workers) {
  shoal_runtime_config cfg;
  shoal_runtime *rt = NULL;
  shoal_runtime_config_defaults(&cfg);
  cfg.workers = workers;
  if (shoal_runtime_create(&rt, &cfg) != SHOAL_OK) {
    fprintf(stderr, "bench_sessions: cannot start %u workers\n", workers);
    exit(1);
  }
  return rt;
}

/* The case's ticks through mgr as `impl`, and the manager's own account
 * of them. */
static void mgr_ticks(const bench_args *a, const bench_tick_case *c,
                      const char *impl, unsigned n, shoal_mgr *mgr) {
  shoal_mgr_metrics m;
  shoal_mgr_metrics_get(mgr, &m, 1); /* a window of these ticks alone */
  bench_run_ticks(c, a->quick, impl, n, tick_mgr, mgr);
  shoal_mgr_metrics_get(mgr, &m, 1);
  bench_row(c->name, impl, n, "shoal_ns_per_update", m.shoal_ns_per_update,
            "ns");
  bench_row(c->name, impl, n, "host_ns_per_update", m.host_ns_per_update,
            "ns");
}

static void run_ticks(const bench_args *a, shoal_runtime *rt, double ipn) {
  unsigned n = shoal_runtime_workers(rt);
  for (size_t i = 0; i < BENCH_MGR_CASES; i++) {
    const bench_tick_case *c = &bench_mgr_cases[i];
    shoal_mgr_callbacks cb;
    shoal_mgr *mgr = NULL;
    bench_tick t;
    if (!bench_want(a, c->name))
      continue;
    t.s = bench_sessions_new();
    t.iters = bench_tick_iters(&t, c->work_ns, ipn);
    bench_run_ticks(c, a->quick, "serial", 1, tick_serial, &t);
    {
      bare_tick bt = {rt, &t};
      bench_run_ticks(c, a->quick, "shoal_bare", n, tick_bare, &bt);
    }
    cb.update = host_update;
    cb.on_release = NULL;
    cb.host = &t;
    if (shoal_mgr_create(&mgr, rt, NULL, &cb) != SHOAL_OK) {
      fprintf(stderr, "bench_sessions: cannot create a manager\n");
      exit(1);
    }
    for (uint32_t k = 0; k < TICK_SESSIONS; k++)
      shoal_session_create(mgr, k + 1, &t.s[k]);
    mgr_ticks(a, c, "shoal", n, mgr);
    /* The same sessions through the batch callback. */
    shoal_mgr_set_update_batch(mgr, host_update_batch);
    mgr_ticks(a, c, "shoal_batch_cb", n, mgr);
    shoal_mgr_destroy(mgr);
    free(t.s);
  }
}

/* Creating n sessions on a fresh manager (default configuration: 1000
 * preallocated, grown by 100), one call each or one batch. */
typedef struct create_run {
  shoal_runtime *rt;
  uint32_t n;
  int batch;
  uint32_t *ids;
  double secs;
} create_run;

static void create_once(create_run *r) {
  shoal_mgr_callbacks cb = {nop_update, NULL, NULL};
  shoal_mgr *mgr = NULL;
  double t0;
  long ok = 0;
  shoal_mgr_create(&mgr, r->rt, NULL, &cb);
  t0 = bench_now();
  if (r->batch) {
    ok = shoal_session_create_batch(mgr, r->ids, NULL, r->n, NULL);
  } else {
    for (uint32_t k = 0; k < r->n; k++)
      ok += shoal_session_create(mgr, r->ids[k], NULL) == SHOAL_OK;
  }
  r->secs = bench_now() - t0;
  if (ok != (long)r->n)
    fprintf(stderr, "bench_sessions: %ld of %u created\n", ok, r->n);
  shoal_mgr_destroy(mgr);
}

static void run_create(const bench_args *a, shoal_runtime *rt) {
  static const uint32_t sizes[] = {1000, 5000};
  for (size_t i = 0; i < 2; i++) {
    char name[32];
    create_run r;
    snprintf(name, sizeof name, "create%u", sizes[i]);
    if (!bench_want(a, name))
      continue;
    r.rt = rt;
    r.n = sizes[i];
    r.ids = malloc(r.n * sizeof *r.ids);
    /* account ids as a server hands them out: scattered, not 1…n */
    for (uint32_t k = 0; k < r.n; k++)
      r.ids[k] = (uint32_t)(bench_mix(k) % 4000000000u) + 1;
    for (r.batch = 0; r.batch < 2; r.batch++) {
      double v[15];
      unsigned reps = a->quick ? 5 : 15;
      for (unsigned k = 0; k < reps; k++) {
        create_once(&r);
        v[k] = r.secs * 1e3;
      }
      bench_row(name, r.batch ? "shoal_batch" : "shoal", 1, "ms",
                bench_quantile(v, reps, 0.5), "ms");
    }
    free(r.ids);
  }
}

/* What n sessions cost, on a manager sized for n: the resident memory
 * they add to the process (/proc/self/statm, the figure that counts) and
 * shoal's own byte counters (slabs, registry, active array and columns;
 * linear by construction), each with its least-squares line. */
static void run_memory(const bench_args *a, shoal_runtime *rt) {
  static const uint32_t sizes[] = {2000, 5000, 10000, 20000, 50000, 100000};
  enum { K = sizeof sizes / sizeof sizes[0] };
  double x[K], rss[K], own[K], slope, r2;
  if (!bench_want(a, "mem_per_session"))
    return;
  for (size_t i = 0; i < K; i++) {
    shoal_mgr_callbacks cb = {nop_update, NULL, NULL};
    shoal_config cfg;
    shoal_mgr *mgr = NULL;
    shoal_mgr_metrics m;
    uint64_t r0;
    char metric[32];
    shoal_config_defaults(&cfg);
    cfg.max_sessions = sizes[i];
    cfg.pool_preallocate = 0;
    shoal_mgr_create(&mgr, rt, &cfg, &cb);
    r0 = bench_rss();
    for (uint32_t k = 0; k < sizes[i]; k++)
      shoal_session_create(mgr, k + 1, NULL);
    rss[i] = (double)(bench_rss() - r0);
    shoal_mgr_metrics_get(mgr, &m, 0);
    x[i] = sizes[i];
    own[i] = (double)(m.pool_bytes + m.table_bytes);
    shoal_mgr_destroy(mgr);
    snprintf(metric, sizeof metric, "rss_at_%u", sizes[i]);
    bench_row("mem_per_session", "shoal", 1, metric, rss[i], "B");
  }
  bench_fit(x, rss, K, &slope, &r2);
  bench_row("mem_per_session", "shoal", 1, "rss_bytes", slope, "B");
  bench_row("mem_per_session", "shoal", 1, "rss_r2", r2, "");
  bench_fit(x, own, K, &slope, &r2);
  bench_row("mem_per_session", "shoal", 1, "counted_bytes", slope, "B");
  bench_row("mem_per_session", "shoal", 1, "counted_r2", r2, "");
}

/* A count as a case's name carries it: 12M, 600k, 1.2M. */
static void count_name(char *buf, size_t len, uint64_t n) {
  if (n >= 1000000 && n % 1000000 == 0)
    snprintf(buf, len, "%lluM", (unsigned long long)(n / 1000000));
  else if (n >= 1000000)
    snprintf(buf, len, "%.1fM", (double)n / 1e6);
  else
    snprintf(buf, len, "%lluk", (unsigned long long)(n / 1000));
}

/* A server that logs bots in and out for weeks: 50 000 sessions stay,
 * and each cycle creates a session with the next id (ids only grow) and
 * releases it; at each mark, the cost of a create + release pair (the
 * mean over the last 100 000 cycles) and of a send to an id that is not
 * there (100 000 of them). Flat costs mean the registry does not fill
 * with the ids that left. */
static void run_churn(const bench_args *a, shoal_runtime *rt) {
  static const uint64_t full[] = {1000000, 6000000, 12000000};
  const uint32_t live = 50000, window = 100000;
  shoal_mgr_callbacks cb = {nop_update, NULL, NULL};
  shoal_config cfg;
  shoal_mgr *mgr = NULL;
  uint64_t done = 0;
  uint32_t next = 1;
  if (!bench_want(a, "churn"))
    return;
  shoal_config_defaults(&cfg);
  cfg.max_sessions = live + 1;
  if (shoal_mgr_create(&mgr, rt, &cfg, &cb) != SHOAL_OK)
    return;
  for (; next <= live; next++)
    shoal_session_create(mgr, next, NULL);
  for (size_t m = 0; m < 3; m++) {
    uint64_t mark = a->quick ? full[m] / 2 : full[m];
    char name[16], metric[48];
    double t0 = 0, pair = 0, send;
    while (done < mark) {
      if (done + window == mark)
        t0 = bench_now();
      shoal_session_create(mgr, next, NULL);
      shoal_session_release(mgr, next);
      next++;
      done++;
    }
    pair = (bench_now() - t0) * 1e9 / window;
    t0 = bench_now();
    for (uint32_t k = 0; k < window; k++) /* ids that left, scattered */
      (void)shoal_session_send(
          mgr, live + 1 + (uint32_t)(bench_mix(k) % (next - live - 1)), 1, 0,
          NULL, 0);
    send = (bench_now() - t0) * 1e9 / window;
    count_name(name, sizeof name, mark);
    snprintf(metric, sizeof metric, "create_release_ns_at_%s", name);
    bench_row("churn", "shoal", 1, metric, pair, "ns");
    snprintf(metric, sizeof metric, "unknown_send_ns_at_%s", name);
    bench_row("churn", "shoal", 1, metric, send, "ns");
  }
  shoal_mgr_destroy(mgr);
}

/* ---- the map phase ------------------------------------------------------ */

/* 5000 sessions on 8 maps; each update sends one packet to its own
 * session, whose handler does W ns of work: as MAP packets (the map
 * phase, maps in parallel) beside the same packets as MAIN (the main
 * thread's drain), and as INPLACE (on the workers, no serialization: the
 * floor the map phase's cost is taken against). */
typedef struct map_bench {
  uint64_t iters;
  uint16_t op;
  shoal_mgr *mgr;
} map_bench;

static int map_send_update(void *host, uint32_t id, void *user,
                           uint32_t diff) {
  map_bench *mb = host;
  (void)user;
  (void)diff;
  (void)shoal_session_send(mb->mgr, id, mb->op, 0, NULL, 0);
  return 0;
}

static int map_work(void *host, uint32_t id, void *user,
                    const shoal_packet *p) {
  map_bench *mb = host;
  volatile uint64_t sink = bench_spin_iters(mb->iters, id);
  (void)user;
  (void)p;
  (void)sink;
  return 0;
}

/* The median of update + drain over the ticks, ms; *phase_ns the map
 * phase's wall time per packet (its share of the updates' time). */
static double map_ticks(map_bench *mb, shoal_runtime *rt,
                        shoal_packet_class cls, int quick, double *phase_ns) {
  enum { MAPS = 8 };
  shoal_mgr_callbacks cb = {map_send_update, NULL, mb};
  shoal_config cfg;
  int n = quick ? 40 : 200;
  double *v = malloc((size_t)n * sizeof *v), med, upd = 0;
  shoal_mgr_metrics m;
  shoal_config_defaults(&cfg);
  cfg.max_sessions = TICK_SESSIONS;
  cfg.pool_preallocate = TICK_SESSIONS;
  if (shoal_mgr_create(&mb->mgr, rt, &cfg, &cb) != SHOAL_OK) {
    fprintf(stderr, "bench_sessions: cannot create a manager\n");
    exit(1);
  }
  mb->op = 1;
  shoal_mgr_register_opcode(mb->mgr, 1, cls, SHOAL_CAT_SPELL, map_work, NULL);
  for (uint32_t id = 1; id <= TICK_SESSIONS; id++) {
    shoal_session_create(mb->mgr, id, NULL);
    shoal_session_set_map(mb->mgr, id, id % MAPS);
  }
  for (int k = -5; k < n; k++) {
    double t0 = bench_now(), t1;
    if (k == 0)
      shoal_mgr_metrics_get(mb->mgr, &m, 1); /* the window from here */
    shoal_mgr_update(mb->mgr, 50);
    t1 = bench_now();
    shoal_mgr_drain_deferred(mb->mgr, 0, NULL);
    if (k >= 0) {
      v[k] = (bench_now() - t0) * 1e3;
      upd += t1 - t0;
    }
  }
  shoal_mgr_metrics_get(mb->mgr, &m, 0);
  if (phase_ns != NULL)
    *phase_ns = m.map_phase_share * upd * 1e9 / ((double)n * TICK_SESSIONS);
  med = bench_quantile(v, (size_t)n, 0.5);
  free(v);
  shoal_mgr_destroy(mb->mgr);
  return med;
}

static void run_map_phase(const bench_args *a, shoal_runtime *rt,
                          double ipn) {
  unsigned nw = shoal_runtime_workers(rt);
  map_bench mb;
  double phase = 0;
  if (!bench_want(a, "map_phase_w1000"))
    return;
  mb.iters = (uint64_t)(1000 * ipn);
  bench_row("map_phase_w1000", "shoal_map", nw, "tick_p50_ms",
            map_ticks(&mb, rt, SHOAL_PACKET_MAP, a->quick, NULL), "ms");
  bench_row("map_phase_w1000", "shoal_main", 1, "tick_p50_ms",
            map_ticks(&mb, rt, SHOAL_PACKET_MAIN, a->quick, NULL), "ms");
  mb.iters = 0;
  (void)map_ticks(&mb, rt, SHOAL_PACKET_MAP, a->quick, &phase);
  bench_row("map_phase_w0", "shoal_map", nw, "phase_ns_per_packet", phase,
            "ns");
}

/* ---- timers ------------------------------------------------------------- */

/* The baseline: a binary min-heap of (expires, timer) with each timer's
 * place kept, so that a cancel removes it in O(log n). */
typedef struct heap_ent {
  uint64_t expires;
  uint32_t timer;
} heap_ent;

typedef struct heap {
  heap_ent *e;
  uint32_t *at; /* timer → place + 1 */
  size_t n;
} heap;

static void heap_swap(heap *h, size_t a, size_t b) {
  heap_ent t = h->e[a];
  h->e[a] = h->e[b];
  h->e[b] = t;
  h->at[h->e[a].timer] = (uint32_t)a + 1;
  h->at[h->e[b].timer] = (uint32_t)b + 1;
}

static void heap_up(heap *h, size_t i) {
  while (i > 0 && h->e[(i - 1) / 2].expires > h->e[i].expires) {
    heap_swap(h, i, (i - 1) / 2);
    i = (i - 1) / 2;
  }
}

static void heap_down(heap *h, size_t i) {
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    if (l < h->n && h->e[l].expires < h->e[m].expires)
      m = l;
    if (r < h->n && h->e[r].expires < h->e[m].expires)
      m = r;
    if (m == i)
      return;
    heap_swap(h, i, m);
    i = m;
  }
}

static void heap_push(heap *h, uint64_t expires, uint32_t timer) {
  h->e[h->n] = (heap_ent){expires, timer};
  h->at[timer] = (uint32_t)h->n + 1;
  heap_up(h, h->n++);
}

static void heap_remove(heap *h, size_t i) {
  h->at[h->e[i].timer] = 0;
  if (--h->n != i) {
    h->e[i] = h->e[h->n];
    h->at[h->e[i].timer] = (uint32_t)i + 1;
    heap_down(h, i);
    heap_up(h, i);
  }
}

static int timer_nop(void *host, uint32_t id, void *user,
                     const shoal_packet *p) {
  (void)host;
  (void)id;
  (void)user;
  (void)p;
  return 0;
}

static void task_nop(void *host, uint32_t map, void *arg) {
  (void)host;
  (void)map;
  (void)arg;
}

/* N timers on 100 sessions, delays 1 … 1000 ms: start each, cancel every
 * other one, then run the clock until the rest fired (each firing puts a
 * packet in its session's inbox, handled by a handler doing nothing);
 * beside a binary heap doing the push, the remove and the pop. Both warm:
 * their memory touched by a first round. */
static void run_timers(const bench_args *a, shoal_runtime *rt) {
  enum { SESS = 100 };
  uint32_t n = a->quick ? 100000 : 1000000;
  shoal_mgr_callbacks cb = {nop_update, NULL, NULL};
  shoal_config cfg;
  shoal_mgr *mgr = NULL;
  shoal_timer_id *ids = malloc(n * sizeof *ids);
  uint64_t x = 88172645463325252ull, *delay = malloc(n * sizeof *delay);
  heap h = {malloc(n * sizeof(heap_ent)), calloc(n, sizeof(uint32_t)), 0};
  double t0, t_start, t_cancel, t_fire, t_empty, t_gone, t_task, h_push,
      h_remove, h_pop;
  shoal_timer_stats st;
  if (!bench_want(a, "timers"))
    goto out;
  for (uint32_t i = 0; i < n; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    delay[i] = 1 + x % 1000;
  }
  shoal_config_defaults(&cfg);
  cfg.inbox_size = 65536;
  cfg.packets_per_update = 65536;
  cfg.max_queued_packets = 1u << 22;
  if (shoal_mgr_create(&mgr, rt, &cfg, &cb) != SHOAL_OK)
    goto out;
  shoal_mgr_register_opcode(mgr, 1, SHOAL_PACKET_INPLACE, SHOAL_CAT_OTHER,
                            timer_nop, NULL);
  for (uint32_t id = 1; id <= SESS; id++)
    shoal_session_create(mgr, id, NULL);
  /* steady state: the pool's pages touched once (started, cancelled,
   * given back by the wheel), as on a server that has run a while; the
   * heap's arrays likewise */
  for (uint32_t i = 0; i < n; i++)
    shoal_timer_start(mgr, 1, 1, 0, 1, 0, NULL, 0, &ids[i]);
  for (uint32_t i = 0; i < n; i++)
    shoal_timer_cancel(mgr, ids[i]);
  for (uint32_t k = 0; k <= n / 65536; k++) /* an update takes 65536 */
    shoal_mgr_update(mgr, 2);
  memset(h.e, 0, n * sizeof(heap_ent));
  t0 = bench_now();
  for (uint32_t i = 0; i < n; i++)
    shoal_timer_start(mgr, 1 + i % SESS, delay[i], 0, 1, 0, NULL, 0, &ids[i]);
  t_start = bench_now() - t0;
  t0 = bench_now();
  for (uint32_t i = 0; i < n; i += 2)
    shoal_timer_cancel(mgr, ids[i]);
  t_cancel = bench_now() - t0;
  t0 = bench_now(); /* a server's ticks: 50 ms each */
  for (uint32_t k = 0; k < 21 + n / 65536; k++)
    shoal_mgr_update(mgr, 50);
  t_fire = bench_now() - t0;
  shoal_timer_stats_get(mgr, &st);
  if (st.fired != n / 2)
    fprintf(stderr, "bench_sessions: %llu timers fired of %u (%llu gone)\n",
            (unsigned long long)st.fired, n / 2, (unsigned long long)st.gone);
  /* the same updates with no timer: what the updates cost by themselves */
  t0 = bench_now();
  for (uint32_t k = 0; k < 21 + n / 65536; k++)
    shoal_mgr_update(mgr, 50);
  t_empty = bench_now() - t0;
  /* the wheel alone: timers of sessions released before they fire (each
   * looked up, found gone and given back; no packet) */
  for (uint32_t i = 0; i < n / 2; i++)
    shoal_timer_start(mgr, 1 + i % SESS, delay[i], 0, 1, 0, NULL, 0, NULL);
  for (uint32_t id = 1; id <= SESS; id++)
    shoal_session_release(mgr, id);
  t0 = bench_now();
  for (uint32_t k = 0; k < 21 + n / 65536; k++)
    shoal_mgr_update(mgr, 50);
  t_gone = bench_now() - t0;
  /* the wheel with the lightest target: a map task doing nothing */
  for (uint32_t i = 0; i < n / 2; i++)
    shoal_map_timer_start(mgr, 1, delay[i], 0, task_nop, NULL, NULL);
  t0 = bench_now();
  for (uint32_t k = 0; k < 21 + n / 65536; k++)
    shoal_mgr_update(mgr, 50);
  t_task = bench_now() - t0;
  shoal_mgr_destroy(mgr);
  /* the heap: the same timers, the same cancels, popped in order */
  t0 = bench_now();
  for (uint32_t i = 0; i < n; i++)
    heap_push(&h, delay[i], i);
  h_push = bench_now() - t0;
  t0 = bench_now();
  for (uint32_t i = 0; i < n; i += 2)
    heap_remove(&h, h.at[i] - 1);
  h_remove = bench_now() - t0;
  t0 = bench_now();
  while (h.n > 0)
    heap_remove(&h, 0);
  h_pop = bench_now() - t0;
  bench_row("timers", "shoal", 1, "start_ns", t_start * 1e9 / n, "ns");
  bench_row("timers", "shoal", 1, "cancel_ns", t_cancel * 2e9 / n, "ns");
  bench_row("timers", "shoal", shoal_runtime_workers(rt),
            "fire_and_handle_ns", t_fire * 2e9 / n, "ns");
  /* less the updates' own cost: the wheel, the packet made and put in
   * its inbox, and its handler's run */
  bench_row("timers", "shoal", shoal_runtime_workers(rt), "fire_ns",
            (t_fire - t_empty) * 2e9 / n, "ns");
  bench_row("timers", "shoal", 1, "fire_session_gone_ns",
            (t_gone - t_empty) * 2e9 / n, "ns");
  bench_row("timers", "shoal", 1, "fire_map_task_ns",
            (t_task - t_empty) * 2e9 / n, "ns");
  bench_row("timers", "heap", 1, "start_ns", h_push * 1e9 / n, "ns");
  bench_row("timers", "heap", 1, "cancel_ns", h_remove * 2e9 / n, "ns");
  bench_row("timers", "heap", 1, "fire_ns", h_pop * 2e9 / n, "ns");
out:
  free(ids);
  free(delay);
  free(h.e);
  free(h.at);
}

/* ---- session request-reply ---------------------------------------------- */

enum { RQ_BROKER = 1, RQ_ECHO = 2, RQ_ECHOES = 8, RQ_OP = 9 };

typedef struct rq_bench {
  shoal_mgr *mgr;
  shoal_actors *sys;
  int broker;               /* ask through the broker actor */
  _Atomic uint32_t asking;  /* the sessions' updates ask this tick: all
                               (UINT32_MAX), or this one id */
  _Atomic uint64_t got, failed;
  double *rtt;              /* [n] ns: request sent → reply in the inbox */
} rq_bench;

static int rq_update(void *host, uint32_t id, void *user, uint32_t diff) {
  rq_bench *b = host;
  shoal_msg m;
  (void)user;
  (void)diff;
  uint32_t who = atomic_load_explicit(&b->asking, memory_order_relaxed);
  if (who != UINT32_MAX && who != id)
    return 0;
  memset(&m, 0, sizeof m);
  m.payload.u64[0] = id;
  if ((b->broker ? shoal_try_send(b->sys, RQ_BROKER, &m)
                 : shoal_session_request(b->mgr, id, RQ_ECHO + id % RQ_ECHOES,
                                         &m, RQ_OP, 10000, NULL)) !=
      SHOAL_OK)
    atomic_fetch_add(&b->failed, 1);
  return 1;
}

/* The reply: its trip from the request's send (stamped by the actor
 * that took it from the session) to the inbox (the packet's send). */
static int rq_reply(void *host, uint32_t id, void *user,
                    const shoal_packet *p) {
  rq_bench *b = host;
  shoal_msg m;
  uint64_t k;
  (void)id;
  (void)user;
  memcpy(&m, p->data, sizeof m);
  k = atomic_fetch_add(&b->got, 1);
  b->rtt[k] = (double)(p->sent_ns - m.payload.u64[1]);
  return 0;
}

static void rq_echo(shoal_actor *self, void *state, const shoal_msg *m) {
  shoal_msg r = *m;
  (void)state;
  if (r.payload.u64[1] == 0)
    r.payload.u64[1] = m->time_ns; /* the session's send */
  (void)shoal_actor_reply(self, m, &r);
}

/* The seeds' way: the session's message to a broker, which asks the
 * actor and sends the answer to the session as a packet. */
static void rq_broker(shoal_actor *self, void *state, const shoal_msg *m) {
  rq_bench *b = state;
  if (m->flags & SHOAL_MSG_REPLY) {
    if (shoal_session_send(b->mgr, (uint32_t)m->payload.u64[0], RQ_OP, 0, m,
                           sizeof *m) != SHOAL_OK)
      atomic_fetch_add(&b->failed, 1);
    return;
  }
  {
    shoal_msg q = *m;
    q.payload.u64[1] = m->time_ns; /* the session's send */
    if (shoal_actor_request(self, RQ_ECHO + q.payload.u64[0] % RQ_ECHOES, &q,
                            NULL) != SHOAL_OK)
      atomic_fetch_add(&b->failed, 1);
  }
}

/* Until `want` replies came (10 s at most). */
static void rq_wait(rq_bench *b, uint64_t want, double t0) {
  while (atomic_load(&b->got) + atomic_load(&b->failed) < want &&
         bench_now() - t0 < 10)
    shoal_mgr_update(b->mgr, 1);
}

/* Two rows sets: one session asks in a tick and the next updates run
 * until its reply is handled, 1000 times (the round trip alone: p50,
 * p99); then n sessions ask in one tick (replies from 8 actors), best of
 * 5: the wall time per request from the asking tick's start to the last
 * reply handled. */
static void rq_run(const bench_args *a, shoal_runtime *rt, int broker) {
  uint32_t n = a->quick ? 2000 : 5000, reps = 1000;
  shoal_mgr_callbacks cb;
  shoal_config cfg;
  shoal_actors_config ac;
  shoal_actor_opts o;
  rq_bench b;
  double t0, wall = 1e30;
  const char *impl = broker ? "broker_actor" : "shoal";
  unsigned nw = shoal_runtime_workers(rt);
  memset(&b, 0, sizeof b);
  b.broker = broker;
  b.rtt = malloc(n * sizeof *b.rtt);
  cb = (shoal_mgr_callbacks){rq_update, NULL, &b};
  shoal_config_defaults(&cfg);
  cfg.max_sessions = n;
  shoal_actors_config_defaults(&ac);
  ac.queue_size = 1u << 16;
  if (b.rtt == NULL || shoal_mgr_create(&b.mgr, rt, &cfg, &cb) != SHOAL_OK ||
      shoal_actors_create(&b.sys, rt, &ac) != SHOAL_OK)
    goto out;
  shoal_mgr_register_opcode(b.mgr, RQ_OP, SHOAL_PACKET_INPLACE,
                            SHOAL_CAT_OTHER, rq_reply, NULL);
  shoal_mgr_attach_actors(b.mgr, b.sys);
  shoal_actor_opts_defaults(&o);
  o.handler = rq_echo;
  for (uint64_t e = 0; e < RQ_ECHOES; e++)
    shoal_actor_register(b.sys, RQ_ECHO + e, &o);
  o.handler = rq_broker;
  o.state = &b;
  shoal_actor_register(b.sys, RQ_BROKER, &o);
  for (uint32_t id = 1; id <= n; id++)
    shoal_session_create(b.mgr, id, NULL);
  for (uint32_t r = 0; r < reps; r++) { /* one at a time */
    atomic_store(&b.asking, 1 + r % n);
    shoal_mgr_update(b.mgr, 1);
    atomic_store(&b.asking, 0);
    rq_wait(&b, r + 1, bench_now());
  }
  bench_row("request_reply", impl, nw, "rtt_p50_ns",
            bench_quantile(b.rtt, reps, 0.50), "ns");
  bench_row("request_reply", impl, nw, "rtt_p99_ns",
            bench_quantile(b.rtt, reps, 0.99), "ns");
  for (int rep = 0; rep < 5; rep++) { /* n at once */
    atomic_store(&b.got, 0);
    atomic_store(&b.asking, UINT32_MAX);
    t0 = bench_now();
    shoal_mgr_update(b.mgr, 1);
    atomic_store(&b.asking, 0);
    rq_wait(&b, n, t0);
    if (bench_now() - t0 < wall)
      wall = bench_now() - t0;
  }
  if (atomic_load(&b.failed) != 0)
    fprintf(stderr, "bench_sessions: %llu requests failed (%s)\n",
            (unsigned long long)atomic_load(&b.failed), impl);
  bench_row("request_reply", impl, nw, "per_request_ns", wall * 1e9 / n,
            "ns");
out:
  if (b.mgr != NULL)
    shoal_mgr_destroy(b.mgr);
  if (b.sys != NULL)
    shoal_actors_destroy(b.sys);
  free(b.rtt);
}

static void run_request_reply(const bench_args *a, shoal_runtime *rt) {
  if (!bench_want(a, "request_reply"))
    return;
  rq_run(a, rt, 0);
  rq_run(a, rt, 1);
}

int main(int argc, char **argv) {
  bench_args a = bench_parse(argc, argv);
  double ipn = bench_calibrate();
  shoal_runtime *rt = runtime_new(a.workers);
  run_ticks(&a, rt, ipn);
  run_create(&a, rt);
  run_memory(&a, rt);
  run_churn(&a, rt);
  run_map_phase(&a, rt, ipn);
  run_timers(&a, rt);
  run_request_reply(&a, rt);
  shoal_runtime_destroy(rt);
  return 0;
}
