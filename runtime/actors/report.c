/* report.c — the actors' figures: one actor's, the system's, the list,
 * and the console's tables (shoal_actors_report). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/actors/actor.h"

/* ------------------------------------------------------------------------ */
/* Figures                                                                  */
/* ------------------------------------------------------------------------ */

static void info_of(shoal_actor *a, uint64_t id, shoal_actor_stats *out) {
  uint64_t n = atomic_load_explicit(&a->processed, memory_order_relaxed);
  memset(out, 0, sizeof *out);
  out->id = id;
  memcpy(out->name, a->name, sizeof out->name);
  out->name[sizeof out->name - 1] = '\0';
  out->home = a->home;
  out->queue_size = (unsigned)shoal__mailbox_capacity(&a->box);
  out->processed = n;
  out->dropped = atomic_load_explicit(&a->box.dropped, memory_order_relaxed) +
                 atomic_load_explicit(&a->discarded, memory_order_relaxed);
  out->rejected = atomic_load_explicit(&a->rejected, memory_order_relaxed);
  out->depth = shoal__mailbox_depth(&a->box);
  out->max_depth = atomic_load_explicit(&a->max_depth, memory_order_relaxed);
  out->handler_mean_ns =
      n != 0 ? atomic_load_explicit(&a->handler_ns, memory_order_relaxed) / n
             : 0;
  out->handler_max_ns =
      atomic_load_explicit(&a->handler_max_ns, memory_order_relaxed);
  out->stuck = atomic_load_explicit(&a->stuck, memory_order_relaxed);
  out->stalls = atomic_load_explicit(&a->stalls, memory_order_relaxed);
  out->failures = atomic_load_explicit(&a->failures, memory_order_relaxed);
  out->restarts = atomic_load_explicit(&a->restarts, memory_order_relaxed);
}

int shoal_actor_stats_get(shoal_actors *sys, uint64_t id,
                          shoal_actor_stats *out) {
  shoal_actor *a;
  uint64_t gen;
  if (sys == NULL || out == NULL || !shoal__valid_id(id))
    return SHOAL_EINVAL;
  if ((a = shoal__resolve(sys, id, &gen)) == NULL)
    return SHOAL_ENOENT;
  info_of(a, id, out);
  return SHOAL_OK;
}

int shoal_actors_stats_get(shoal_actors *sys, shoal_actors_stats *out) {
  if (sys == NULL || out == NULL)
    return SHOAL_EINVAL;
  memset(out, 0, sizeof *out);
  for (unsigned i = 0; i < sys->cfg.max_actors; i++)
    if (atomic_load_explicit(&sys->recs[i].id, memory_order_relaxed) != 0)
      out->registered++;
  out->routing_failures =
      atomic_load_explicit(&sys->routing_failures, memory_order_relaxed);
  out->late_replies =
      atomic_load_explicit(&sys->late_replies, memory_order_relaxed);
  out->deferred = atomic_load_explicit(&sys->deferrals, memory_order_relaxed);
  out->requests = atomic_load_explicit(&sys->requests, memory_order_relaxed);
  out->replies = atomic_load_explicit(&sys->replies, memory_order_relaxed);
  out->timeouts = atomic_load_explicit(&sys->timeouts, memory_order_relaxed);
  out->requests_dropped =
      atomic_load_explicit(&sys->req_dropped, memory_order_relaxed);
  return SHOAL_OK;
}

int shoal_actors_list(shoal_actors *sys, shoal_actor_stats *out, size_t cap,
                      size_t *count) {
  size_t n = 0;
  if (sys == NULL || count == NULL || (out == NULL && cap != 0))
    return SHOAL_EINVAL;
  for (unsigned i = 0; i < sys->cfg.max_actors; i++) {
    shoal_actor *a = &sys->recs[i];
    uint64_t id = atomic_load_explicit(&a->id, memory_order_relaxed);
    if (id == 0)
      continue;
    if (n < cap)
      info_of(a, id, &out[n]);
    n++;
  }
  *count = n;
  return SHOAL_OK;
}

/* "trace ID": the hops of one trace, oldest first. */
static int report_trace(shoal_actors *sys, unsigned long id,
                        shoal_topo_line_fn fn, void *user) {
  shoal_hop h[64];
  char line[192];
  long n = shoal_actors_trace(sys, (unsigned)id, h, 64);
  if (n < 0)
    return (int)n;
  snprintf(line, sizeof line, "trace %lu: %ld hops in the ring%s", id, n,
           n > 64 ? " (the first 64)" : "");
  fn(user, 0, line);
  snprintf(line, sizeof line, "%12s %-8s %-20s %-20s %6s %s", "us", "hop",
           "from", "to", "worker", "");
  fn(user, 0, line);
  for (long k = 0; k < n && k < 64; k++) {
    char st[48] = "";
    if (h[k].kind == SHOAL_HOP_REFUSED)
      snprintf(st, sizeof st, "%s", shoal_err_name(h[k].status));
    else if (h[k].flags & SHOAL_MSG_REPLY)
      snprintf(st, sizeof st, "reply");
    snprintf(line, sizeof line, "%12.3f %-8s %-20llu %-20llu %6d %s",
             (double)(h[k].ns - h[0].ns) / 1e3, shoal__hop_name(h[k].kind),
             (unsigned long long)h[k].from, (unsigned long long)h[k].to,
             h[k].worker, st);
    fn(user, 0, line);
  }
  return SHOAL_OK;
}

/* The id of the first actor registered under name, or 0. */
static uint64_t id_named(shoal_actors *sys, const char *name) {
  for (unsigned i = 0; i < sys->cfg.max_actors; i++) {
    shoal_actor *a = &sys->recs[i];
    uint64_t id = atomic_load_explicit(&a->id, memory_order_acquire);
    if (id != 0 && strncmp(a->name, name, sizeof a->name) == 0)
      return id;
  }
  return 0;
}

int shoal_actors_report(shoal_actors *sys, const char *what,
                        shoal_topo_line_fn fn, void *user) {
  char line[192];
  int queue;
  uint64_t only = 0;
  if (sys == NULL || what == NULL || fn == NULL)
    return SHOAL_EINVAL;
  if (strncmp(what, "trace ", 6) == 0 || strncmp(what, "queue ", 6) == 0) {
    char *end;
    unsigned long long v = strtoull(what + 6, &end, 10);
    if (what[0] == 'q' && what[6] != '\0' && (end == what + 6 || *end != '\0'))
      v = id_named(sys, what + 6); /* "queue auction": by its name */
    else if (end == what + 6 || *end != '\0' || v == 0)
      return SHOAL_EINVAL;
    if (what[0] == 't')
      return v > 0xffffu ? SHOAL_EINVAL
                         : report_trace(sys, (unsigned long)v, fn, user);
    if (v == 0)
      return SHOAL_ENOENT;
    only = v;
    queue = 1;
  } else if (strcmp(what, "status") == 0) {
    queue = 0;
  } else if (strcmp(what, "queue") == 0) {
    queue = 1;
  } else {
    return SHOAL_EINVAL;
  }
  if (only != 0) {
    uint64_t gen;
    if (!shoal__valid_id(only) || shoal__resolve(sys, only, &gen) == NULL)
      return SHOAL_ENOENT;
  }
  if (queue)
    snprintf(line, sizeof line, "%-20s %-23s %10s %10s %10s %-12s", "id",
             "name", "depth", "most", "capacity", "when full");
  else
    snprintf(line, sizeof line,
             "%-20s %-23s %5s %12s %10s %10s %10s %10s %8s %8s %6s", "id",
             "name", "home", "handled", "dropped", "rejected", "mean ns",
             "max ns", "failures", "restarts", "stuck");
  fn(user, 0, line);
  for (unsigned i = 0; i < sys->cfg.max_actors; i++) {
    shoal_actor *a = &sys->recs[i];
    shoal_actor_stats in;
    uint64_t id = atomic_load_explicit(&a->id, memory_order_relaxed);
    if (id == 0 || (only != 0 && id != only))
      continue;
    info_of(a, id, &in);
    if (queue)
      snprintf(line, sizeof line, "%-20llu %-23s %10llu %10llu %10u %-12s",
               (unsigned long long)in.id, in.name[0] ? in.name : "-",
               (unsigned long long)in.depth, (unsigned long long)in.max_depth,
               in.queue_size,
               atomic_load_explicit(&a->box.policy, memory_order_relaxed) ==
                       SHOAL__MPSC_DROP
                   ? "drop"
                   : "back-pressure");
    else
      snprintf(line, sizeof line,
               "%-20llu %-23s %5d %12llu %10llu %10llu %10llu %10llu %8llu "
               "%8llu %6llu",
               (unsigned long long)in.id, in.name[0] ? in.name : "-", in.home,
               (unsigned long long)in.processed, (unsigned long long)in.dropped,
               (unsigned long long)in.rejected,
               (unsigned long long)in.handler_mean_ns,
               (unsigned long long)in.handler_max_ns,
               (unsigned long long)in.failures,
               (unsigned long long)in.restarts,
               (unsigned long long)in.stuck);
    fn(user, 0, line);
  }
  return SHOAL_OK;
}
