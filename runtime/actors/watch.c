/* watch.c — the actor system's watchdog (Actors.StuckMs, Actors.StallMs):
 * a thread (os.h's ticker) that samples a heartbeat word per worker, which
 * each turn stores before every handler call (one store on the worker's
 * own line, no clock: the kernel's soft-lockup detector works the same
 * way), and reports a handler still running past StuckMs once, with the
 * actor, its worker and how long; and, every look, walks the records for
 * an actor with messages waiting that has handled none for StallMs while
 * no worker runs it (a turn deferred by MaxMessagesPerTick that no
 * shoal_actors_tick releases, a home worker that never comes back). It
 * never stops a thread: it says what it sees. */
#include <stdio.h>

#include "runtime/actors/actor.h"
#include "runtime/alloc.h"

/* A worker's beat as last seen, and an actor's progress as last seen. */
typedef struct seen {
  uint64_t v, since_ns;
  int reported;
} seen;

typedef struct progress {
  uint64_t id, processed, since_ns;
  int reported;
} progress;

typedef struct shoal__awatch {
  seen *w;        /* per worker */
  progress *a;    /* per record; NULL when stalls are not watched */
  uint8_t *on;    /* per record: some worker runs it now (this look) */
} shoal__awatch;

static const char *name_of(const shoal_actor *a) {
  return a->name[0] != '\0' ? a->name : "unnamed";
}

static void look_workers(shoal_actors *sys, shoal__awatch *st, uint64_t now) {
  const uint64_t limit = (uint64_t)sys->cfg.stuck_ms * 1000000u;
  for (unsigned k = 0; k < sys->nbeats; k++) {
    uint64_t v = atomic_load_explicit(&sys->beats[k].w, memory_order_relaxed);
    uint32_t slot = (uint32_t)v;
    seen *s = &st->w[k];
    if (slot != 0 && st->on != NULL)
      st->on[slot - 1] = 1;
    if (v != s->v) {
      if (s->reported && (uint32_t)s->v != 0)
        shoal__log(sys->cfg.log, sys->cfg.log_user, SHOAL_LOG_WARN,
                   "actors: worker %u: the handler reported stuck returned "
                   "after about %llu ms",
                   k, (unsigned long long)((now - s->since_ns) / 1000000u));
      s->v = v;
      s->since_ns = now;
      s->reported = 0;
      continue;
    }
    if (limit != 0 && slot != 0 && !s->reported && now - s->since_ns >= limit) {
      shoal_actor *a = &sys->recs[slot - 1];
      s->reported = 1;
      atomic_fetch_add_explicit(&a->stuck, 1, memory_order_relaxed);
      shoal__log(sys->cfg.log, sys->cfg.log_user, SHOAL_LOG_ERROR,
                 "actors: actor %llu (%s): its handler has run %llu ms on "
                 "worker %u (Actors.StuckMs %u); that worker runs nothing "
                 "else meanwhile",
                 (unsigned long long)atomic_load_explicit(
                     &a->id, memory_order_relaxed),
                 name_of(a),
                 (unsigned long long)((now - s->since_ns) / 1000000u), k,
                 sys->cfg.stuck_ms);
    }
  }
}

static void look_actors(shoal_actors *sys, shoal__awatch *st, uint64_t now) {
  const uint64_t limit = (uint64_t)sys->cfg.stall_ms * 1000000u;
  for (unsigned i = 0; i < sys->cfg.max_actors; i++) {
    shoal_actor *a = &sys->recs[i];
    progress *p = &st->a[i];
    uint64_t id = atomic_load_explicit(&a->id, memory_order_acquire);
    uint64_t done, depth;
    int on = st->on[i];
    st->on[i] = 0;
    if (id == 0) {
      p->id = 0;
      continue;
    }
    done = atomic_load_explicit(&a->processed, memory_order_relaxed);
    depth = shoal__mailbox_depth(&a->box);
    if (id != p->id || done != p->processed || depth == 0 || on) {
      p->id = id;
      p->processed = done;
      p->since_ns = now;
      p->reported = 0;
      continue;
    }
    if (!p->reported && now - p->since_ns >= limit) {
      p->reported = 1;
      atomic_fetch_add_explicit(&a->stalls, 1, memory_order_relaxed);
      shoal__log(sys->cfg.log, sys->cfg.log_user, SHOAL_LOG_ERROR,
                 "actors: actor %llu (%s): %llu messages waiting and none "
                 "handled for %llu ms, and no worker runs it (Actors.StallMs "
                 "%u)%s",
                 (unsigned long long)id, name_of(a), (unsigned long long)depth,
                 (unsigned long long)((now - p->since_ns) / 1000000u),
                 sys->cfg.stall_ms,
                 sys->cfg.max_per_tick != 0
                     ? "; with MaxMessagesPerTick set, is shoal_actors_tick "
                       "called?"
                     : "");
    }
  }
}

static void tick(void *arg, uint64_t now) {
  shoal_actors *sys = arg;
  look_workers(sys, sys->watch_state, now);
  if (sys->watch_state->a != NULL)
    look_actors(sys, sys->watch_state, now);
}

static void state_free(shoal__awatch *st) {
  if (st == NULL)
    return;
  shoal__free(st->w);
  shoal__free(st->a);
  shoal__free(st->on);
  shoal__free(st);
}

int shoal__watch_start(shoal_actors *sys) {
  unsigned lo = sys->cfg.stuck_ms, nw = shoal_runtime_workers_max(sys->rt);
  shoal__awatch *st;
  uint64_t period_ns;
  int rc = SHOAL_ENOMEM;
  if (sys->cfg.stuck_ms == 0 && sys->cfg.stall_ms == 0)
    return SHOAL_OK;
  if (sys->cfg.stall_ms != 0 && (lo == 0 || sys->cfg.stall_ms < lo))
    lo = sys->cfg.stall_ms;
  st = shoal__calloc(1, sizeof *st);
  sys->beats = shoal__aligned_alloc(SHOAL__FALSE_SHARING,
                                    nw * sizeof *sys->beats);
  if (st == NULL || sys->beats == NULL ||
      (st->w = shoal__calloc(nw, sizeof *st->w)) == NULL ||
      (sys->cfg.stall_ms != 0 &&
       ((st->on = shoal__calloc(sys->cfg.max_actors, 1)) == NULL ||
        (st->a = shoal__calloc(sys->cfg.max_actors, sizeof *st->a)) == NULL)))
    goto fail;
  for (unsigned k = 0; k < nw; k++)
    atomic_init(&sys->beats[k].w, 0);
  sys->nbeats = nw;
  sys->watch_state = st;
  period_ns = shoal__ticker_period(lo);
  if (period_ns > 100000000u) /* and at least every 100 ms */
    period_ns = 100000000u;
  if ((rc = shoal__ticker_start(&sys->watch, "shoal-actorwatch", period_ns,
                                tick, sys)) == SHOAL_OK)
    return SHOAL_OK;
fail:
  state_free(st);
  shoal__free(sys->beats);
  sys->beats = NULL;
  sys->watch_state = NULL;
  return rc;
}

void shoal__watch_stop(shoal_actors *sys) {
  shoal__ticker_stop(&sys->watch);
  state_free(sys->watch_state);
  sys->watch_state = NULL;
  shoal__free(sys->beats);
  sys->beats = NULL;
}
