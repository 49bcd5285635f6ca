/* stress_out.c — `shoal stress`'s reports: the table on stdout, and the
 * JSON, Prometheus and HTML files (schemas in docs/stress.md). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "stress.h"

static const char *ok(int v) {
  return v ? "ok" : "FAILED";
}

/* The hibernated sessions' resident memory, or what shoal counts of their
 * records when /proc cannot resolve it (never "0 B"). */
/* The messaging and timers lines of the table. */
static void print_requests(FILE *f, const st_result *r) {
  fprintf(f, "messaging             auction requests %llu: replies %llu, "
          "timeouts %llu (asks ignored %llu), dropped %llu, late %llu; "
          "quest completions %llu, delivered %llu of %llu  [%s]\n",
          (unsigned long long)r->auction_requests,
          (unsigned long long)r->rq.replies,
          (unsigned long long)r->rq.timeouts,
          (unsigned long long)r->auction_ignored,
          (unsigned long long)r->rq.dropped, (unsigned long long)r->rq.late,
          (unsigned long long)r->quest_published,
          (unsigned long long)r->quest_delivered,
          (unsigned long long)r->quest_expected, ok(r->messaging_ok));
  if (r->messaging_why[0] != '\0')
    fprintf(f, "  why                 %s\n", r->messaging_why);
  fprintf(f, "timers                quests %llu started, %llu due, %llu "
          "abandoned; buffs %llu applied, %llu expired (map tasks); shoal: "
          "%llu started, %llu fired, %llu cancelled, %llu gone  [%s]\n",
          (unsigned long long)r->quest_timers,
          (unsigned long long)r->quest_done,
          (unsigned long long)r->quest_abandoned,
          (unsigned long long)r->buffs_applied,
          (unsigned long long)r->buffs_expired,
          (unsigned long long)r->ts.started, (unsigned long long)r->ts.fired,
          (unsigned long long)r->ts.cancelled, (unsigned long long)r->ts.gone,
          ok(r->timers_ok));
}

static void hib_memory(const st_result *r, char *buf, size_t len) {
  if (r->hibernated_unresolved)
    snprintf(buf, len, "hibernated below the measurement's resolution "
             "(their records %.0f B)", r->record_bytes_per_session);
  else
    snprintf(buf, len, "hibernated %.0f B (records %.0f B)",
             r->hibernated_bytes_per_session, r->record_bytes_per_session);
}

static void print_capacity(FILE *f, const st_result *r);

void st_print_table(FILE *f, const st_result *r, int color) {
  const st_args *a = r->a;
  char hib[128];
  const char *on = color ? (r->pass ? "\033[1;32m" : "\033[1;31m") : "";
  const char *off = color ? "\033[0m" : "";
  double secs = r->wall_s > 0 ? r->wall_s : 1;
  fprintf(f, "shoal stress: %u sessions, %u ticks/s for %u s (%s), budget "
          "%u ms, %u worker%s, SIMD %s\n\n",
          a->sessions, a->tps, a->duration_s,
          a->pace_max ? "ticks back to back" : "real time", a->budget_ms,
          r->workers, r->workers == 1 ? "" : "s",
          r->simd != NULL ? r->simd : "?");
  fprintf(f, "ticks                 %llu in %.1f s\n",
          (unsigned long long)r->ticks, r->wall_s);
  fprintf(f, "tick time             p50 %.2f  p99 %.2f  p99.9 %.2f  max "
          "%.2f ms\n", r->tick_p50, r->tick_p99, r->tick_p999, r->tick_max);
  fprintf(f, "budget                %u ms, headroom at p99 %.2f ms (%.0f %%)"
          "\n", a->budget_ms, r->headroom_ms,
          100.0 * r->headroom_ms / a->budget_ms);
  fprintf(f, "shoal overhead        %.0f ns per session update (host's "
          "update %.0f ns; %llu updates timed)\n",
          r->overhead_ns_per_session, r->host_ns_per_session,
          (unsigned long long)r->overhead_samples);
  fprintf(f, "CPU per session       %.2f us per tick (the whole process)\n",
          r->cpu_us_per_session);
  fprintf(f, "\npackets               sent %llu = handled %llu + pending %llu"
          " + rejected %llu + dropped %llu  [%s]\n",
          (unsigned long long)r->sent, (unsigned long long)r->handled,
          (unsigned long long)r->pending, (unsigned long long)r->rejected,
          (unsigned long long)r->dropped, ok(r->packets_ok));
  fprintf(f, "  per second          %.0f handled: INPLACE %.0f, MAP %.0f, MAIN "
          "%.0f\n",
          r->packets_per_s, (double)r->by_class[0] / secs,
          (double)r->by_class[2] / secs, (double)r->by_class[1] / secs);
  fprintf(f, "  by category /s     ");
  for (int c = 0; c < SHOAL_CAT_COUNT; c++)
    if (r->by_category[c] != 0)
      fprintf(f, " %s %.0f", shoal_packet_category_name(c),
              (double)r->by_category[c] / secs);
  fprintf(f, "\npayloads              taken %llu = freed %llu; largest %u B; "
          "%.1f KiB/s; broadcasts %llu, deliveries %llu, heard %llu; %llu "
          "bodies damaged  [%s]\n",
          (unsigned long long)r->payloads_taken,
          (unsigned long long)r->payloads_freed, r->largest_packet,
          r->payload_bytes_per_s / 1024.0,
          (unsigned long long)r->broadcasts,
          (unsigned long long)r->deliveries, (unsigned long long)r->heard,
          (unsigned long long)r->payload_bad, ok(r->payloads_ok));
  fprintf(f, "drops and limits      dropped: released %llu, destroyed %llu, no "
          "handler %llu, rate-limited %llu (the flooding bot %u: %llu of "
          "others')  [%s]\n",
          (unsigned long long)r->drops[SHOAL_DROP_RELEASED],
          (unsigned long long)r->drops[SHOAL_DROP_DESTROYED],
          (unsigned long long)r->drops[SHOAL_DROP_NO_HANDLER],
          (unsigned long long)r->drops[SHOAL_DROP_RATE_LIMITED], 1u,
          (unsigned long long)r->limit_strays, ok(r->limits_ok));
  if (r->limits_why[0] != '\0')
    fprintf(f, "  why                 %s\n", r->limits_why);
  fprintf(f, "  deferred queue      deepest %llu; drain p99 %.3f ms, max "
          "%.3f ms; send to handler p99 %.2f ms\n",
          (unsigned long long)r->deferred_max, r->drain_p99_ms,
          r->drain_max_ms, (double)r->wait_p99_ns / 1e6);
  fprintf(f, "maps                  %u maps, %llu teleports; the main thread "
          "ran %.1f %% of the packets handled; the map phase %.1f %% of the "
          "update, the busiest map %.1f %% of it; %llu owner violations  "
          "[%s]\n",
          r->a->maps, (unsigned long long)r->teleports, 100.0 * r->main_share,
          100.0 * r->map_phase_share, 100.0 * r->biggest_map_share,
          (unsigned long long)r->map_owner_violations, ok(r->maps_ok));
  print_requests(f, r);
  fprintf(f, "economy               gold %lld -> %lld (+%lld looted, -%lld "
          "to the auction house), items %lld -> %lld; %llu trades  [%s]\n",
          (long long)r->gold_before, (long long)r->gold_after,
          (long long)r->gold_minted, (long long)r->gold_to_auction,
          (long long)r->items_before, (long long)r->items_after,
          (unsigned long long)r->trades, ok(r->economy_ok));
  fprintf(f, "packet order          %llu %s  [%s]\n",
          (unsigned long long)r->order_violations,
          r->strict_order ? "violations"
                          : "reorders (allowed: StrictPacketOrder = 0)",
          ok(r->order_ok));
  fprintf(f, "hibernation           at most %llu hibernated in the run "
          "(%llu with the end's); %llu "
          "hibernations, %llu wakes, %llu failures, %llu states changed  "
          "[%s]\n", (unsigned long long)r->hibernated_run_max,
          (unsigned long long)r->hibernated_max,
          (unsigned long long)r->hibernations, (unsigned long long)r->wakes,
          (unsigned long long)r->wake_failures,
          (unsigned long long)r->state_mismatches, ok(r->hibernation_ok));
  hib_memory(r, hib, sizeof hib);
  fprintf(f, "memory                resident per session: active %.0f B, "
          "%s; %.1f MiB saved\n",
          r->active_bytes_per_session, hib, (double)r->bytes_saved / 1048576.0);
  fprintf(f, "\nworker  utilization  tasks      steals     parks\n");
  for (unsigned w = 0; w < r->workers && w < ST_WORKERS_SHOWN; w++)
    fprintf(f, "%-6u  %10.1f%%  %-9llu  %-9llu  %llu\n", w,
            100.0 * r->workers_st[w].utilization,
            (unsigned long long)r->workers_st[w].tasks,
            (unsigned long long)r->workers_st[w].steals,
            (unsigned long long)r->workers_st[w].parks);
  fprintf(f, "\nverdict: %s%s%s — tick p99 %.2f ms %s the %u ms budget; "
          "invariants %s\n", on, r->pass ? "PASS" : "FAIL", off, r->tick_p99,
          r->budget_ok ? "within" : "over", a->budget_ms,
          r->packets_ok && r->economy_ok && r->order_ok &&
                  r->hibernation_ok && r->messaging_ok && r->payloads_ok &&
                  r->limits_ok && r->maps_ok && r->timers_ok
              ? "hold"
              : "broken");
  if (r->capacity != NULL)
    print_capacity(f, r);
}

/* The capacity search's curve and finding (--find-max). */
static void print_capacity(FILE *f, const st_result *r) {
  const st_capacity *c = r->capacity;
  fprintf(f, "\ncapacity search: %u steps in %.0f s, %s\n", c->nsteps,
          c->elapsed_s,
          c->sessions == 0 ? "the smallest step failed"
          : c->converged   ? "converged to 5 %"
                           : "stopped by --max-seconds before converging");
  fprintf(f, "  sessions   tick p50   tick p99  workers busy  drain p99  "
          "verdict\n");
  for (unsigned k = 0; k < c->nsteps; k++) {
    const st_step *s = &c->steps[k];
    fprintf(f, "  %8u %8.2f ms %8.2f ms  %10.0f %%  %6.2f ms  %s%s%s\n",
            s->sessions, s->tick_p50, s->tick_p99, 100.0 * s->utilization,
            s->drain_p99_ms, s->pass ? "PASS" : "FAIL",
            s->pass ? "" : " — ", s->why);
  }
  if (c->sessions > 0)
    fprintf(f, "capacity: %u sessions inside the %u ms budget, limited by "
            "%s (the search's ceiling: %u sessions, set by %s)\n",
            c->sessions, r->a->budget_ms, c->limit, c->ceiling,
            c->ceiling_by);
  else
    fprintf(f, "capacity: none — even the smallest step (%u sessions) "
            "failed\n", c->nsteps > 0 ? c->steps[0].sessions : 0);
}

static void json_capacity(json_writer *j, const st_capacity *c) {
  json_object_begin(j, "capacity");
  json_uint(j, "sessions", c->sessions);
  json_string(j, "limit", c->limit);
  json_bool(j, "converged", c->converged);
  json_uint(j, "ceiling", c->ceiling);
  json_bool(j, "memory_bound", c->memory_bound);
  json_string(j, "ceiling_by", c->ceiling_by);
  json_double(j, "elapsed_s", c->elapsed_s, 1);
  json_array_begin(j, "steps", 0);
  for (unsigned k = 0; k < c->nsteps; k++) {
    const st_step *s = &c->steps[k];
    json_object_begin(j, NULL);
    json_uint(j, "sessions", s->sessions);
    json_double(j, "tick_p50_ms", s->tick_p50, 3);
    json_double(j, "tick_p99_ms", s->tick_p99, 3);
    json_double(j, "utilization", s->utilization, 4);
    json_double(j, "drain_p99_ms", s->drain_p99_ms, 3);
    json_double(j, "map_phase_share", s->map_phase_share, 4);
    json_double(j, "cpu_us_per_session", s->cpu_us_per_session, 3);
    json_double(j, "rss_bytes_per_session", s->rss_per_session, 0);
    json_bool(j, "pass", s->pass);
    json_string(j, "why", s->why);
    json_object_end(j);
  }
  json_array_end(j);
  json_object_end(j);
}

/* ---- JSON --------------------------------------------------------------- */

/* The JSON's messaging and timers objects. */
static void json_requests(json_writer *jw, const st_result *r) {
  json_object_begin(jw, "messaging");
  json_uint(jw, "auction_requests", r->auction_requests);
  json_uint(jw, "auction_replies", r->auction_replies);
  json_uint(jw, "auction_timeouts", r->auction_timeouts);
  json_uint(jw, "auction_ignored", r->auction_ignored);
  json_uint(jw, "auction_dropped", r->auction_dropped);
  json_object_begin(jw, "requests");
  json_uint(jw, "requests", r->rq.requests);
  json_uint(jw, "replies", r->rq.replies);
  json_uint(jw, "timeouts", r->rq.timeouts);
  json_uint(jw, "dropped", r->rq.dropped);
  json_uint(jw, "pending", r->rq.pending);
  json_uint(jw, "late", r->rq.late);
  json_object_end(jw);
  json_uint(jw, "quest_published", r->quest_published);
  json_uint(jw, "quest_expected", r->quest_expected);
  json_uint(jw, "quest_delivered", r->quest_delivered);
  json_string(jw, "why", r->messaging_why);
  json_object_end(jw);
  json_object_begin(jw, "timers");
  json_uint(jw, "quests_started", r->quest_timers);
  json_uint(jw, "quests_due", r->quest_done);
  json_uint(jw, "quests_abandoned", r->quest_abandoned);
  json_uint(jw, "buffs_applied", r->buffs_applied);
  json_uint(jw, "buffs_expired", r->buffs_expired);
  json_uint(jw, "started", r->ts.started);
  json_uint(jw, "fired", r->ts.fired);
  json_uint(jw, "cancelled", r->ts.cancelled);
  json_uint(jw, "gone", r->ts.gone);
  json_object_end(jw);
}

/* The packets' and payloads' objects. */
static void json_packets(json_writer *jw, const st_result *r) {
  json_object_begin(jw, "packets");
  json_uint(jw, "sent", r->sent);
  json_uint(jw, "handled", r->handled);
  json_uint(jw, "pending", r->pending);
  json_uint(jw, "rejected", r->rejected);
  json_uint(jw, "dropped", r->dropped);
  json_double(jw, "per_s", r->packets_per_s, 1);
  json_uint(jw, "inplace", r->by_class[0]);
  json_uint(jw, "map", r->by_class[2]);
  json_uint(jw, "main", r->by_class[1]);
  json_uint(jw, "drained", r->drained);
  json_double(jw, "main_thread_share", r->main_share, 4);
  json_object_begin(jw, "by_category");
  for (int c = 0; c < SHOAL_CAT_COUNT; c++)
    json_uint(jw, shoal_packet_category_name(c), r->by_category[c]);
  json_object_end(jw);
  json_uint(jw, "deferred_max", r->deferred_max);
  json_double(jw, "drain_p99_ms", r->drain_p99_ms, 4);
  json_object_begin(jw, "dropped_by_reason");
  json_uint(jw, "released", r->drops[SHOAL_DROP_RELEASED]);
  json_uint(jw, "destroyed", r->drops[SHOAL_DROP_DESTROYED]);
  json_uint(jw, "no_handler", r->drops[SHOAL_DROP_NO_HANDLER]);
  json_uint(jw, "rate_limited", r->drops[SHOAL_DROP_RATE_LIMITED]);
  json_object_end(jw);
  json_uint(jw, "rate_limited", r->rate_limited);
  json_uint(jw, "rate_limited_not_flooder", r->limit_strays);
  json_string(jw, "limits_why", r->limits_why);
  json_object_end(jw);
  json_object_begin(jw, "payloads");
  json_uint(jw, "taken", r->payloads_taken);
  json_uint(jw, "freed", r->payloads_freed);
  json_uint(jw, "largest_bytes", r->largest_packet);
  json_double(jw, "bytes_per_s", r->payload_bytes_per_s, 1);
  json_uint(jw, "broadcasts", r->broadcasts);
  json_uint(jw, "deliveries", r->deliveries);
  json_uint(jw, "heard", r->heard);
  json_uint(jw, "damaged", r->payload_bad);
  json_object_end(jw);
}

int st_write_json(const char *path, const st_result *r) {
  FILE *f = fopen(path, "w");
  json_writer j;
  int bad;
  if (f == NULL)
    return -1;
  json_init(&j, f);
  json_object_begin(&j, NULL);
  json_string(&j, "verdict", r->pass ? "PASS" : "FAIL");
  json_uint(&j, "sessions", r->a->sessions);
  json_uint(&j, "tps", r->a->tps);
  json_uint(&j, "duration_s", r->a->duration_s);
  json_string(&j, "pace", r->a->pace_max ? "max" : "realtime");
  json_uint(&j, "workers", r->workers);
  json_uint(&j, "ticks", r->ticks);
  json_uint(&j, "budget_ms", r->a->budget_ms);
  json_object_begin(&j, "tick_ms");
  json_double(&j, "p50", r->tick_p50, 3);
  json_double(&j, "p99", r->tick_p99, 3);
  json_double(&j, "p999", r->tick_p999, 3);
  json_double(&j, "max", r->tick_max, 3);
  json_object_end(&j);
  json_double(&j, "headroom_ms", r->headroom_ms, 3);
  json_double(&j, "overhead_ns_per_session", r->overhead_ns_per_session, 1);
  json_uint(&j, "overhead_samples", r->overhead_samples);
  json_double(&j, "cpu_us_per_session", r->cpu_us_per_session, 3);
  json_packets(&j, r);
  json_object_begin(&j, "maps");
  json_uint(&j, "maps", r->a->maps);
  json_uint(&j, "teleports", r->teleports);
  json_uint(&j, "owner_violations", r->map_owner_violations);
  json_uint(&j, "spells", r->map_spells);
  json_uint(&j, "combats", r->map_combats);
  json_uint(&j, "loots", r->map_loots);
  json_double(&j, "map_phase_share", r->map_phase_share, 4);
  json_double(&j, "biggest_map_share", r->biggest_map_share, 4);
  json_object_end(&j);
  json_object_begin(&j, "economy");
  json_int(&j, "gold_before", r->gold_before);
  json_int(&j, "gold_after", r->gold_after);
  json_int(&j, "gold_looted", r->gold_minted);
  json_int(&j, "gold_to_auction", r->gold_to_auction);
  json_int(&j, "items_before", r->items_before);
  json_int(&j, "items_after", r->items_after);
  json_int(&j, "items_looted", r->items_minted);
  json_int(&j, "items_from_auction", r->items_from_auction);
  json_int(&j, "items_used", r->items_used);
  json_uint(&j, "trades", r->trades);
  json_object_end(&j);
  json_requests(&j, r);
  json_uint(&j, "order_violations", r->order_violations);
  json_bool(&j, "strict_packet_order", r->strict_order);
  json_uint(&j, "hibernated_max", r->hibernated_max);
  json_uint(&j, "hibernated_max_in_run", r->hibernated_run_max);
  json_uint(&j, "hibernations", r->hibernations);
  json_uint(&j, "wakes", r->wakes);
  json_uint(&j, "wake_failures", r->wake_failures);
  json_object_begin(&j, "rss");
  json_double(&j, "active_bytes_per_session", r->active_bytes_per_session, 0);
  if (r->hibernated_unresolved)
    json_null(&j, "hibernated_bytes_per_session");
  else
    json_double(&j, "hibernated_bytes_per_session",
                r->hibernated_bytes_per_session, 0);
  json_bool(&j, "hibernated_below_resolution", r->hibernated_unresolved);
  json_double(&j, "record_bytes_per_session", r->record_bytes_per_session, 0);
  json_object_end(&j);
  json_object_begin(&j, "checks");
  json_bool(&j, "budget", r->budget_ok);
  json_bool(&j, "packets", r->packets_ok);
  json_bool(&j, "economy", r->economy_ok);
  json_bool(&j, "order", r->order_ok);
  json_bool(&j, "hibernation", r->hibernation_ok);
  json_bool(&j, "messaging", r->messaging_ok);
  json_bool(&j, "payloads", r->payloads_ok);
  json_bool(&j, "limits", r->limits_ok);
  json_bool(&j, "maps", r->maps_ok);
  json_bool(&j, "timers", r->timers_ok);
  json_object_end(&j);
  json_array_begin(&j, "per_worker", 0);
  for (unsigned w = 0; w < r->workers && w < ST_WORKERS_SHOWN; w++) {
    json_object_begin(&j, NULL);
    json_double(&j, "utilization", r->workers_st[w].utilization, 4);
    json_uint(&j, "tasks", r->workers_st[w].tasks);
    json_uint(&j, "steals", r->workers_st[w].steals);
    json_uint(&j, "parks", r->workers_st[w].parks);
    json_object_end(&j);
  }
  json_array_end(&j);
  if (r->capacity != NULL)
    json_capacity(&j, r->capacity);
  json_object_end(&j);
  json_finish(&j);
  bad = ferror(f);
  return fclose(f) != 0 || bad ? -1 : 0;
}

/* ---- Prometheus --------------------------------------------------------- */

static void prom(FILE *f, const char *name, const char *type,
                 const char *help, const char *labels, double v) {
  fprintf(f, "# HELP %s %s\n# TYPE %s %s\n%s%s %.17g\n", name, help, name,
          type, name, labels, v);
}

/* The auction's session requests and the world's timers, by outcome. */
static void prom_requests(FILE *f, const st_result *r) {
  fprintf(f, "# HELP shoal_stress_requests_total Session requests to the "
          "auction house, by outcome.\n"
          "# TYPE shoal_stress_requests_total counter\n"
          "shoal_stress_requests_total{outcome=\"requested\"} %llu\n"
          "shoal_stress_requests_total{outcome=\"replied\"} %llu\n"
          "shoal_stress_requests_total{outcome=\"timed_out\"} %llu\n"
          "shoal_stress_requests_total{outcome=\"dropped\"} %llu\n"
          "shoal_stress_requests_total{outcome=\"late\"} %llu\n",
          (unsigned long long)r->rq.requests,
          (unsigned long long)r->rq.replies,
          (unsigned long long)r->rq.timeouts,
          (unsigned long long)r->rq.dropped, (unsigned long long)r->rq.late);
  fprintf(f, "# HELP shoal_stress_timers_total Timers (quests, buffs), by "
          "event.\n# TYPE shoal_stress_timers_total counter\n"
          "shoal_stress_timers_total{event=\"started\"} %llu\n"
          "shoal_stress_timers_total{event=\"fired\"} %llu\n"
          "shoal_stress_timers_total{event=\"cancelled\"} %llu\n"
          "shoal_stress_timers_total{event=\"gone\"} %llu\n",
          (unsigned long long)r->ts.started, (unsigned long long)r->ts.fired,
          (unsigned long long)r->ts.cancelled,
          (unsigned long long)r->ts.gone);
}

int st_write_prometheus(const char *path, const st_result *r) {
  FILE *f = fopen(path, "w");
  int bad;
  if (f == NULL)
    return -1;
  prom(f, "shoal_stress_pass", "gauge", "1 when the verdict was PASS.", "",
       r->pass);
  prom(f, "shoal_stress_sessions", "gauge", "Bot sessions simulated.", "",
       r->a->sessions);
  prom(f, "shoal_stress_ticks_total", "counter", "Ticks run.", "",
       (double)r->ticks);
  prom(f, "shoal_stress_tick_budget_seconds", "gauge", "The tick budget.",
       "", r->a->budget_ms / 1e3);
  fprintf(f, "# HELP shoal_stress_tick_seconds Tick time quantiles.\n"
          "# TYPE shoal_stress_tick_seconds summary\n"
          "shoal_stress_tick_seconds{quantile=\"0.5\"} %.9g\n"
          "shoal_stress_tick_seconds{quantile=\"0.99\"} %.9g\n"
          "shoal_stress_tick_seconds{quantile=\"0.999\"} %.9g\n"
          "shoal_stress_tick_seconds{quantile=\"1\"} %.9g\n",
          r->tick_p50 / 1e3, r->tick_p99 / 1e3, r->tick_p999 / 1e3,
          r->tick_max / 1e3);
  prom(f, "shoal_stress_overhead_seconds_per_session", "gauge",
       "shoal's CPU per session update.", "",
       r->overhead_ns_per_session * 1e-9);
  fprintf(f, "# HELP shoal_stress_packets_total Packets by outcome.\n"
          "# TYPE shoal_stress_packets_total counter\n");
  fprintf(f, "shoal_stress_packets_total{outcome=\"sent\"} %llu\n"
          "shoal_stress_packets_total{outcome=\"handled\"} %llu\n"
          "shoal_stress_packets_total{outcome=\"pending\"} %llu\n"
          "shoal_stress_packets_total{outcome=\"rejected\"} %llu\n"
          "shoal_stress_packets_total{outcome=\"dropped\"} %llu\n",
          (unsigned long long)r->sent, (unsigned long long)r->handled,
          (unsigned long long)r->pending, (unsigned long long)r->rejected,
          (unsigned long long)r->dropped);
  fprintf(f, "# HELP shoal_stress_packets_handled_total Packets handled in "
          "the run, by category.\n"
          "# TYPE shoal_stress_packets_handled_total counter\n");
  for (int c = 0; c < SHOAL_CAT_COUNT; c++)
    fprintf(f, "shoal_stress_packets_handled_total{category=\"%s\"} %llu\n",
            shoal_packet_category_name(c),
            (unsigned long long)r->by_category[c]);
  fprintf(f, "# HELP shoal_stress_packets_dropped_total Packets dropped, by "
          "reason.\n# TYPE shoal_stress_packets_dropped_total counter\n"
          "shoal_stress_packets_dropped_total{reason=\"released\"} %llu\n"
          "shoal_stress_packets_dropped_total{reason=\"destroyed\"} %llu\n"
          "shoal_stress_packets_dropped_total{reason=\"no_handler\"} %llu\n"
          "shoal_stress_packets_dropped_total{reason=\"rate_limited\"} "
          "%llu\n",
          (unsigned long long)r->drops[SHOAL_DROP_RELEASED],
          (unsigned long long)r->drops[SHOAL_DROP_DESTROYED],
          (unsigned long long)r->drops[SHOAL_DROP_NO_HANDLER],
          (unsigned long long)r->drops[SHOAL_DROP_RATE_LIMITED]);
  fprintf(f, "# HELP shoal_stress_payloads_total Payloads past the inline "
          "bytes.\n# TYPE shoal_stress_payloads_total counter\n"
          "shoal_stress_payloads_total{event=\"taken\"} %llu\n"
          "shoal_stress_payloads_total{event=\"freed\"} %llu\n",
          (unsigned long long)r->payloads_taken,
          (unsigned long long)r->payloads_freed);
  prom(f, "shoal_stress_payload_bytes_per_second", "gauge",
       "Payload bytes the bots sent per second.", "", r->payload_bytes_per_s);
  prom(f, "shoal_stress_largest_packet_bytes", "gauge",
       "The longest payload sent.", "", (double)r->largest_packet);
  prom(f, "shoal_stress_broadcasts_total", "counter",
       "Say/yell broadcasts to a map.", "", (double)r->broadcasts);
  prom(f, "shoal_stress_broadcast_deliveries_total", "counter",
       "Packets the broadcasts delivered.", "", (double)r->deliveries);
  prom(f, "shoal_stress_main_thread_share", "gauge",
       "Packets handled on the main thread over all handled.", "",
       r->main_share);
  prom(f, "shoal_stress_map_owner_violations_total", "counter",
       "A map entered while another thread was in it.", "",
       (double)r->map_owner_violations);
  prom_requests(f, r);
  prom(f, "shoal_stress_order_violations_total", "counter",
       "Packets handled out of their session's order.", "",
       (double)r->order_violations);
  prom(f, "shoal_stress_hibernated_max", "gauge",
       "Most sessions hibernated at once.", "", (double)r->hibernated_max);
  prom(f, "shoal_stress_wake_failures_total", "counter",
       "Wakes that failed.", "", (double)r->wake_failures);
  prom(f, "shoal_stress_resident_bytes_per_session", "gauge",
       "Resident memory per session.", "{state=\"active\"}",
       r->active_bytes_per_session);
  if (!r->hibernated_unresolved) /* below /proc's resolution: no sample */
    fprintf(f, "shoal_stress_resident_bytes_per_session{state=\"hibernated\"} "
            "%.17g\n", r->hibernated_bytes_per_session);
  prom(f, "shoal_stress_record_bytes_per_session", "gauge",
       "Hibernation record bytes per hibernated session (shoal's count).",
       "", r->record_bytes_per_session);
  fprintf(f, "# HELP shoal_stress_worker_utilization Busy time over wall "
          "time.\n# TYPE shoal_stress_worker_utilization gauge\n");
  for (unsigned w = 0; w < r->workers && w < ST_WORKERS_SHOWN; w++)
    fprintf(f, "shoal_stress_worker_utilization{worker=\"%u\"} %.6f\n", w,
            r->workers_st[w].utilization);
  if (r->prom_lib != NULL) /* the library's own, as a host would serve */
    fputs(r->prom_lib, f);
  bad = ferror(f);
  return fclose(f) != 0 || bad ? -1 : 0;
}
