/* watchdog.c — a thread per manager that watches the host's callbacks: a
 * callback still running after SessionMgr.WatchdogMs is reported through
 * the log as ERROR with the worker and the session (the kernel's soft
 * lockup detector works the same way: heartbeats sampled by a timer, no
 * clock on the hot path); one past SessionMgr.CallbackBudgetMs is counted
 * and logged as WARN. It never stops a thread: the tick waits for the
 * callback, and the report says so. */
#include <stdio.h>

#include "runtime/common.h"
#include "runtime/os.h"
#include "sessions/mgr.h"

static const char *const kind_name[SHOAL__CB_KINDS] = {
    "nothing", "update callback", "packet handler", "deferred packet handler",
    "hibernate or wake callback",
    "batch update callback (the batch's first session)"};

typedef struct watch {
  uint64_t beat;     /* the value seen */
  uint64_t since_ns; /* when it was first seen */
  int reported;      /* 1: over budget, 2: stalled */
} watch;

static void report(shoal_mgr *mgr, unsigned slot, unsigned nw, uint64_t beat,
                   uint64_t ms, int stalled) {
  unsigned kind = (unsigned)(beat >> 32) & 7;
  char where[32];
  if (slot < nw)
    snprintf(where, sizeof where, "worker %u", slot);
  else
    snprintf(where, sizeof where, "the draining thread");
  if (stalled)
    shoal__log(mgr->cfg.log, mgr->cfg.log_user, SHOAL_LOG_ERROR,
               "watchdog: %s has been in session %u's %s for %llu ms "
               "(SessionMgr.WatchdogMs %u); the tick waits for it",
               where, (unsigned)(uint32_t)beat,
               kind < SHOAL__CB_KINDS ? kind_name[kind] : "callback",
               (unsigned long long)ms, mgr->cfg.watchdog_ms);
  else
    shoal__log(mgr->cfg.log, mgr->cfg.log_user, SHOAL_LOG_WARN,
               "watchdog: %s: session %u's %s has run %llu ms, over "
               "SessionMgr.CallbackBudgetMs %u",
               where, (unsigned)(uint32_t)beat,
               kind < SHOAL__CB_KINDS ? kind_name[kind] : "callback",
               (unsigned long long)ms, mgr->cfg.callback_budget_ms);
}

/* One look at every beat word. */
static void sample(shoal_mgr *mgr, watch *w, unsigned nw, uint64_t now) {
  const uint64_t budget = (uint64_t)mgr->cfg.callback_budget_ms * 1000000u;
  const uint64_t limit = (uint64_t)mgr->cfg.watchdog_ms * 1000000u;
  for (unsigned i = 0; i <= nw; i++) {
    _Atomic uint64_t *b = i < nw ? &mgr->samples[i].beat : &mgr->main_beat;
    uint64_t v = atomic_load_explicit(b, memory_order_relaxed), ran;
    if (v != w[i].beat || ((v >> 32) & 7) == SHOAL__CB_NONE) {
      if (w[i].reported == 2)
        shoal__log(mgr->cfg.log, mgr->cfg.log_user, SHOAL_LOG_WARN,
                   "watchdog: session %u's callback returned after about "
                   "%llu ms",
                   (unsigned)(uint32_t)w[i].beat,
                   (unsigned long long)((now - w[i].since_ns) / 1000000u));
      w[i].beat = v;
      w[i].since_ns = now;
      w[i].reported = 0;
      continue;
    }
    ran = now - w[i].since_ns;
    if (budget != 0 && ran >= budget && w[i].reported == 0) {
      w[i].reported = 1;
      atomic_fetch_add_explicit(&mgr->wd_over, 1, memory_order_relaxed);
      report(mgr, i, nw, v, ran / 1000000u, 0);
    }
    if (limit != 0 && ran >= limit && w[i].reported < 2) {
      w[i].reported = 2;
      atomic_fetch_add_explicit(&mgr->wd_stalls, 1, memory_order_relaxed);
      report(mgr, i, nw, v, ran / 1000000u, 1);
    }
  }
}

typedef struct shoal__watch {
  unsigned nw;
  watch w[];
} shoal__watch;

static void tick(void *arg, uint64_t now) {
  shoal_mgr *mgr = arg;
  sample(mgr, mgr->wd_watch->w, mgr->wd_watch->nw, now);
}

int shoal__wd_start(shoal_mgr *mgr) {
  unsigned nw = shoal_runtime_workers_max(mgr->rt);
  unsigned lo = mgr->cfg.watchdog_ms;
  uint64_t period_ns;
  int rc;
  mgr->wd.running = 0;
  if (mgr->cfg.watchdog_ms == 0 && mgr->cfg.callback_budget_ms == 0)
    return SHOAL_OK;
  mgr->wd_watch = shoal__calloc(1, sizeof *mgr->wd_watch +
                                       (nw + 1) * sizeof(watch));
  if (mgr->wd_watch == NULL)
    return SHOAL_ENOMEM;
  mgr->wd_watch->nw = nw;
  if (mgr->cfg.callback_budget_ms != 0 &&
      (lo == 0 || mgr->cfg.callback_budget_ms < lo))
    lo = mgr->cfg.callback_budget_ms;
  period_ns = shoal__ticker_period(lo);
  if ((rc = shoal__ticker_start(&mgr->wd, "shoal-watchdog", period_ns, tick,
                                mgr)) != SHOAL_OK) {
    shoal__free(mgr->wd_watch);
    mgr->wd_watch = NULL;
  }
  return rc;
}

void shoal__wd_stop(shoal_mgr *mgr) {
  shoal__ticker_stop(&mgr->wd);
  shoal__free(mgr->wd_watch);
  mgr->wd_watch = NULL;
}
