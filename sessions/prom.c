/* prom.c — shoal_metrics_prometheus: the manager's metrics, its runtime's
 * and an actor system's in Prometheus' text exposition format (0.0.4),
 * built from the public metric calls; and the cumulative tick-time
 * histogram it exposes, counted at the end of each update. The names,
 * types and units: docs/embedding.md, "Metrics for Prometheus". */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "sessions/mgr.h"

static const uint64_t tick_le_us[SHOAL__PROM_TICK_BUCKETS - 1] = {
    SHOAL__PROM_TICK_LE};
_Static_assert(sizeof tick_le_us / sizeof tick_le_us[0] ==
                   SHOAL__PROM_TICK_BUCKETS - 1,
               "a bound per bucket but +Inf");

void shoal__prom_tick(shoal_mgr *mgr, uint64_t ns) {
  unsigned k = 0;
  while (k < SHOAL__PROM_TICK_BUCKETS - 1 && ns > tick_le_us[k] * 1000)
    k++;
  mgr->prom_ticks[k]++;
  mgr->prom_tick_sum_ns += ns;
}

/* ---- the text --------------------------------------------------------- */

/* The output (shoal__text): what fits in buf, and the whole length. */

/* A family's HELP and TYPE lines. */
static void family(shoal__text *o, const char *name, const char *type,
                   const char *help) {
  shoal__text_put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A family of one sample without labels. */
static void one(shoal__text *o, const char *name, const char *type,
                const char *help, double v) {
  family(o, name, type, help);
  shoal__text_put(o, "%s %.17g\n", name, v);
}

static void count(shoal__text *o, const char *name, const char *help,
                  uint64_t v) {
  family(o, name, "counter", help);
  shoal__text_put(o, "%s %llu\n", name, (unsigned long long)v);
}

/* A family of n samples told apart by one label: values[k] = v[k]. */
static void labelled(shoal__text *o, const char *name, const char *type,
                     const char *help, const char *label,
                     const char *const *values, const double *v, int n) {
  family(o, name, type, help);
  for (int k = 0; k < n; k++)
    shoal__text_put(o, "%s{%s=\"%s\"} %.17g\n", name, label, values[k], v[k]);
}

/* ---- the manager -------------------------------------------------------- */

static void tick_histogram(shoal__text *o, shoal_mgr *mgr) {
  uint64_t b[SHOAL__PROM_TICK_BUCKETS], sum, total = 0;
  pthread_mutex_lock(&mgr->mu);
  memcpy(b, mgr->prom_ticks, sizeof b);
  sum = mgr->prom_tick_sum_ns;
  pthread_mutex_unlock(&mgr->mu);
  family(o, "shoal_tick_duration_seconds", "histogram",
         "Wall time of shoal_mgr_update, since the manager's creation.");
  for (unsigned k = 0; k < SHOAL__PROM_TICK_BUCKETS; k++) {
    total += b[k];
    if (k < SHOAL__PROM_TICK_BUCKETS - 1)
      shoal__text_put(o, "shoal_tick_duration_seconds_bucket{le=\"%g\"} %llu\n",
                      (double)tick_le_us[k] * 1e-6, (unsigned long long)total);
    else
      shoal__text_put(o,
                      "shoal_tick_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
                      (unsigned long long)total);
  }
  shoal__text_put(o, "shoal_tick_duration_seconds_sum %.9f\n",
                  (double)sum * 1e-9);
  shoal__text_put(o, "shoal_tick_duration_seconds_count %llu\n",
                  (unsigned long long)total);
}

static void manager(shoal__text *o, shoal_mgr *mgr,
                    const shoal_mgr_metrics *m) {
  static const char *const states[] = {"active", "hibernated", "quarantined"};
  static const char *const phases[] = {"sessions", "maps"};
  static const char *const kinds[] = {"session_pool", "tables",
                                      "heap_committed"};
  const double nstate[] = {(double)m->active, (double)m->hibernated,
                           (double)m->quarantined};
  const double share[] = {m->session_phase_share, m->map_phase_share};
  const double bytes[] = {(double)m->pool_bytes, (double)m->table_bytes,
                          (double)m->heap_committed};
  uint64_t ticks;
  pthread_mutex_lock(&mgr->mu);
  ticks = mgr->tick_no;
  pthread_mutex_unlock(&mgr->mu);
  labelled(o, "shoal_sessions", "gauge", "Sessions held now, by state.",
           "state", states, nstate, 3);
  count(o, "shoal_ticks_total", "Updates (shoal_mgr_update calls) run.", ticks);
  tick_histogram(o, mgr);
  one(o, "shoal_session_update_host_seconds", "gauge",
      "The host's update callback per session update, in the metrics "
      "window.",
      m->host_ns_per_update * 1e-9);
  one(o, "shoal_session_update_overhead_seconds", "gauge",
      "shoal's own time per session update, in the metrics window.",
      m->shoal_ns_per_update * 1e-9);
  labelled(o, "shoal_tick_phase_ratio", "gauge",
           "Share of the updates' wall time by phase, in the metrics window.",
           "phase", phases, share, 2);
  labelled(o, "shoal_memory_bytes", "gauge",
           "Memory: session slabs, tables, and the allocator's committed "
           "bytes (process-wide).",
           "kind", kinds, bytes, 3);
  count(o, "shoal_watchdog_stalls_total",
        "Callbacks the watchdog found running past WatchdogMs.",
        m->watchdog_stalls);
  count(o, "shoal_callbacks_over_budget_total",
        "Callbacks that ran past CallbackBudgetMs.", m->over_budget);
}

static void packets(shoal__text *o, const shoal_packet_stats *p) {
  static const char *const events[] = {"taken", "freed"};
  const double pl[] = {(double)p->payloads_taken, (double)p->payloads_freed};
  count(o, "shoal_packets_sent_total", "Sends to a live session.", p->sent);
  count(o, "shoal_packets_rejected_total",
        "Sends refused with SHOAL_EAGAIN (in sent).", p->rejected);
  count(o, "shoal_packets_invalid_total",
        "Sends refused with SHOAL_EINVAL or SHOAL_ENOENT.", p->invalid);
  count(o, "shoal_packets_handled_total", "Packets whose handler ran.",
        p->handled);
  count(o, "shoal_packets_failed_total",
        "Handled packets whose handler returned < 0.", p->failed);
  count(o, "shoal_packets_dropped_total",
        "Accepted packets dropped (session released, no handler, rate).",
        p->dropped);
  count(o, "shoal_packets_rate_limited_total",
        "Packets dropped past their category's rate (in dropped).",
        p->rate_limited);
  count(o, "shoal_packets_mapped_total", "Packets taken to a map phase.",
        p->mapped);
  one(o, "shoal_packets_pending", "gauge",
      "Packets in the inboxes and the deferred queue now.", (double)p->pending);
  one(o, "shoal_deferred_packets", "gauge",
      "Packets waiting for the main thread's drain now.",
      (double)p->deferred_now);
  count(o, "shoal_deferred_alarms_total",
        "Crossings of DeferredDepthWarn by the deferred queue.",
        p->deferred_alarms);
  labelled(o, "shoal_payloads_total", "counter",
           "Payloads past the inline bytes, taken and freed.", "event", events,
           pl, 2);
  one(o, "shoal_payload_bytes", "gauge", "Payload bytes in flight now.",
      (double)p->payload_bytes);
  one(o, "shoal_payload_buffer_bytes", "gauge",
      "Payload buffers in use now, against PayloadBudgetMB.",
      (double)p->payload_buffer_bytes);
  count(o, "shoal_broadcasts_total", "Broadcasts that went out.",
        p->broadcasts);
  count(o, "shoal_broadcast_deliveries_total",
        "Packets the broadcasts delivered (in sent).", p->deliveries);
}

static void maps(shoal__text *o, shoal_mgr *mgr) {
  enum { CAP = 1024 }; /* maps with their own series; the rest summed */
  shoal_map_stats *st = shoal__malloc(CAP * sizeof *st);
  long n;
  if (st == NULL)
    return;
  n = shoal_mgr_map_stats(mgr, st, CAP, 0);
  if (n > CAP)
    n = CAP;
  if (n > 0) {
    family(o, "shoal_map_sessions", "gauge",
           "Sessions on each map now, hibernated ones too.");
    for (long k = 0; k < n; k++)
      shoal__text_put(o, "shoal_map_sessions{map=\"%u\"} %u\n", st[k].map,
                      st[k].sessions);
    family(o, "shoal_map_packets_total", "counter",
           "MAP packets each map ran in its map-phase turns.");
    for (long k = 0; k < n; k++)
      shoal__text_put(o, "shoal_map_packets_total{map=\"%u\"} %llu\n",
                      st[k].map, (unsigned long long)st[k].map_packets);
    family(o, "shoal_map_phase_seconds_total", "counter",
           "Time of each map's map-phase turns.");
    for (long k = 0; k < n; k++)
      shoal__text_put(o, "shoal_map_phase_seconds_total{map=\"%u\"} %.9f\n",
                      st[k].map, (double)st[k].phase_ns * 1e-9);
  }
  shoal__free(st);
}

static const char *const outcomes[] = {"requested", "replied", "timed_out",
                                       "dropped", "late"};

static void sleepers(shoal__text *o, const shoal_hib_stats *h,
                     const shoal_timer_stats *t, const shoal_request_stats *r) {
  static const char *const timer_events[] = {"started", "fired", "cancelled",
                                             "gone"};
  const double tv[] = {(double)t->started, (double)t->fired,
                       (double)t->cancelled, (double)t->gone};
  const double rv[] = {(double)r->requests, (double)r->replies,
                       (double)r->timeouts, (double)r->dropped,
                       (double)r->late};
  count(o, "shoal_hibernations_total", "Sessions hibernated.", h->hibernations);
  count(o, "shoal_wakes_total", "Sessions woken.", h->wakes);
  count(o, "shoal_hibernation_failures_total",
        "Hibernations that could not keep their record.", h->failures);
  count(o, "shoal_wake_failures_total",
        "Wakes whose callback failed or whose record was corrupt.",
        h->wake_failures);
  one(o, "shoal_hibernation_record_bytes", "gauge",
      "What the hibernated sessions' records take now.",
      (double)h->record_bytes);
  labelled(o, "shoal_timers_total", "counter", "Session and map timers.",
           "event", timer_events, tv, 4);
  labelled(o, "shoal_session_requests_total", "counter",
           "Session requests to actors, by outcome.", "outcome", outcomes, rv,
           5);
  one(o, "shoal_session_requests_pending", "gauge",
      "Session requests waiting for an answer now.", (double)r->pending);
}

/* ---- the runtime and the actors ---------------------------------------- */

/* The per-worker families: each a uint64_t field of shoal_worker_stats,
 * times its scale (1e-9 for nanoseconds given as seconds). */
static const struct worker_family {
  const char *name, *help;
  size_t off;
  double scale;
} worker_families[] = {
    {"shoal_worker_tasks_total",
     "Frames published for thieves and closures run.",
     offsetof(shoal_worker_stats, tasks), 1},
    {"shoal_worker_steals_total", "Tasks taken from another worker's deque.",
     offsetof(shoal_worker_stats, steals), 1},
    {"shoal_worker_failed_steals_total",
     "Steal attempts that found nothing or lost a race.",
     offsetof(shoal_worker_stats, failed_steals), 1},
    {"shoal_worker_parks_total", "Times the worker went to sleep.",
     offsetof(shoal_worker_stats, parks), 1},
    {"shoal_worker_wakes_total", "Times another thread woke the worker.",
     offsetof(shoal_worker_stats, wakes), 1},
    {"shoal_worker_busy_seconds_total",
     "Time the worker spent with work in hand.",
     offsetof(shoal_worker_stats, busy_ns), 1e-9},
    {"shoal_worker_cpu_seconds_total",
     "CPU time of the worker's thread (0 for worker 0, the host's).",
     offsetof(shoal_worker_stats, cpu_ns), 1e-9},
};

static void runtime(shoal__text *o, shoal_runtime *rt) {
  static const shoal_worker_stats none;
  unsigned live = shoal_runtime_workers(rt), max = shoal_runtime_workers_max(rt);
  unsigned nw = live; /* and the removed workers that ran: their counters
                         stay */
  shoal_worker_stats *ws = shoal__calloc(max, sizeof *ws);
  if (ws == NULL)
    return;
  for (unsigned w = 0; w < max; w++)
    if (shoal_worker_stats_get(rt, w, &ws[w]) == SHOAL_OK && w >= nw &&
        memcmp(&ws[w], &none, sizeof none) != 0)
      nw = w + 1;
  one(o, "shoal_workers", "gauge", "The runtime's workers.", live);
  for (size_t k = 0; k < sizeof worker_families / sizeof worker_families[0];
       k++) {
    const struct worker_family *f = &worker_families[k];
    family(o, f->name, "counter", f->help);
    for (unsigned w = 0; w < nw; w++) {
      uint64_t v;
      memcpy(&v, (const char *)&ws[w] + f->off, sizeof v);
      shoal__text_put(o, "%s{worker=\"%u\"} %.17g\n", f->name, w,
                      (double)v * f->scale);
    }
  }
  shoal__free(ws);
}

/* A label value escaped as the format asks: backslash, quote, newline. */
static void put_label(shoal__text *o, const char *s) {
  for (; *s != '\0'; s++) {
    if (*s == '\\' || *s == '"')
      shoal__text_put(o, "\\%c", *s);
    else if (*s == '\n')
      shoal__text_put(o, "\\n");
    else
      shoal__text_put(o, "%c", *s);
  }
}

static void actor_series(shoal__text *o, const char *name,
                         const shoal_actor_stats *a, size_t n, int depth) {
  for (size_t k = 0; k < n; k++) {
    shoal__text_put(o, "%s{actor=\"", name);
    put_label(o, a[k].name);
    shoal__text_put(o, "\",id=\"%llu\"} %llu\n", (unsigned long long)a[k].id,
                    (unsigned long long)(depth ? a[k].depth : a[k].processed));
  }
}

static void actors_of(shoal__text *o, shoal_actors *sys) {
  enum { CAP = 256 }; /* actors with their own series */
  shoal_actors_stats st;
  shoal_actor_stats *a;
  size_t n = 0;
  if (shoal_actors_stats_get(sys, &st) != SHOAL_OK)
    return;
  one(o, "shoal_actors", "gauge", "Actors registered now.",
      (double)st.registered);
  count(o, "shoal_actor_routing_failures_total",
        "Sends to an actor id nobody has.", st.routing_failures);
  count(o, "shoal_actor_late_replies_total",
        "Replies to calls and requests that had timed out.", st.late_replies);
  count(o, "shoal_actor_deferred_turns_total",
        "Turns put off by the per-tick limit.", st.deferred);
  {
    const double av[] = {(double)st.requests, (double)st.replies,
                         (double)st.timeouts, (double)st.requests_dropped};
    labelled(o, "shoal_actor_requests_total", "counter",
             "Actor requests with a timeout, by outcome.", "outcome", outcomes,
             av, 4);
  }
  if ((a = shoal__malloc(CAP * sizeof *a)) == NULL)
    return;
  if (shoal_actors_list(sys, a, CAP, &n) == SHOAL_OK && n > 0) {
    if (n > CAP)
      n = CAP;
    family(o, "shoal_actor_messages_total", "counter",
           "Messages each actor handled.");
    actor_series(o, "shoal_actor_messages_total", a, n, 0);
    family(o, "shoal_actor_mailbox_depth", "gauge",
           "Messages in each actor's mailbox now.");
    actor_series(o, "shoal_actor_mailbox_depth", a, n, 1);
  }
  shoal__free(a);
}

int shoal_metrics_prometheus(shoal_mgr *mgr, shoal_actors *actors, char *buf,
                             size_t cap, size_t *len) {
  shoal_mgr_metrics m;
  shoal_packet_stats p;
  shoal_hib_stats h;
  shoal_timer_stats t;
  shoal_request_stats r;
  shoal__text o = {buf, buf != NULL ? cap : 0, 0};
  int rc;
  if (mgr == NULL || (buf == NULL && cap > 0))
    return SHOAL_EINVAL;
  if ((rc = shoal_mgr_metrics_get(mgr, &m, 0)) != SHOAL_OK ||
      (rc = shoal_packet_stats_get(mgr, &p, 0)) != SHOAL_OK ||
      (rc = shoal_hib_stats_get(mgr, &h, 0)) != SHOAL_OK ||
      (rc = shoal_timer_stats_get(mgr, &t)) != SHOAL_OK ||
      (rc = shoal_request_stats_get(mgr, &r)) != SHOAL_OK)
    return rc;
  manager(&o, mgr, &m);
  packets(&o, &p);
  maps(&o, mgr);
  sleepers(&o, &h, &t, &r);
  runtime(&o, mgr->rt);
  if (actors != NULL)
    actors_of(&o, actors);
  if (len != NULL)
    *len = o.len;
  if (o.len >= o.cap) {
    if (o.cap > 0)
      buf[0] = '\0';
    return SHOAL_ENOSPC;
  }
  return SHOAL_OK;
}
