/* supervise.c — what an actor's failure does (shoal.h, "Supervision"):
 * its policy runs in its own turn, on its worker, after the handler that
 * failed returns (or before its next message, when the failure was
 * marked from outside). RESTART calls init again within a budget of
 * restarts per window (Erlang/OTP's intensity and period); STOP
 * unregisters it, and finishing it answers the requests still waiting
 * with SHOAL_MSG_FAILED; ESCALATE stops it and fails its parent, which
 * hears of it in a SHOAL_MSG_DOWN message. A turn pays one relaxed load
 * per message for all of this. */
#include <string.h>

#include "runtime/actors/actor.h"

void shoal_actor_fail(shoal_actor *self, int status) {
  if (self != NULL)
    atomic_store_explicit(&self->fail, status != 0 ? status : -1,
                          memory_order_relaxed);
}

/* The first failure marked wins; a later one before it is handled adds
 * nothing. */
static void mark(shoal_actor *a, int status) {
  int none = 0;
  atomic_compare_exchange_strong_explicit(&a->fail, &none,
                                          status != 0 ? status : -1,
                                          memory_order_release,
                                          memory_order_relaxed);
}

int shoal_actor_mark_failed(shoal_actors *sys, uint64_t id, int status) {
  shoal_actor *a;
  if (sys == NULL || !shoal__valid_id(id))
    return SHOAL_EINVAL;
  if ((a = shoal__router_find(sys, id)) == NULL ||
      atomic_load_explicit(&a->id, memory_order_relaxed) != id)
    return SHOAL_ENOENT;
  mark(a, status);
  return SHOAL_OK;
}

void shoal__answer_failed(shoal_actor *a, const shoal_msg *m) {
  shoal_msg r;
  memset(&r, 0, sizeof r);
  r.type = m->type;
  r.flags = SHOAL_MSG_FAILED;
  (void)shoal_actor_reply(a, m, &r); /* REPLY added by reply */
}

static const char *name_of(const shoal_actor *a) {
  return a->name[0] != '\0' ? a->name : "unnamed";
}

/* Fails the parent and wakes it with a DOWN message (its policy runs
 * before that message reaches its handler). */
static void escalate(shoal_actor *a, uint64_t id, int status) {
  shoal_actors *sys = a->sys;
  shoal_actor *p = shoal__router_find(sys, a->parent);
  shoal_msg d;
  if (p == NULL ||
      atomic_load_explicit(&p->id, memory_order_relaxed) != a->parent) {
    shoal__log(sys->cfg.log, sys->cfg.log_user, SHOAL_LOG_ERROR,
               "actors: actor %llu (%s) escalates its failure to %llu, "
               "which is not registered",
               (unsigned long long)id, name_of(a),
               (unsigned long long)a->parent);
    return;
  }
  mark(p, status);
  memset(&d, 0, sizeof d);
  d.from = id;
  d.flags = SHOAL_MSG_DOWN;
  d.payload.u64[0] = (uint64_t)(int64_t)status;
  (void)shoal__send(sys, a->parent, &d);
}

int shoal__supervise(shoal_actor *a) {
  shoal_actors *sys = a->sys;
  uint64_t id = atomic_load_explicit(&a->id, memory_order_relaxed);
  int status = atomic_exchange_explicit(&a->fail, 0, memory_order_acquire);
  int policy = a->on_failure;
  if (status == 0)
    return 0;
  atomic_fetch_add_explicit(&a->failures, 1, memory_order_relaxed);
  if (policy == SHOAL_SUPERVISE_RESTART) {
    uint64_t now = shoal__now_ns();
    if (a->window_start_ns == 0 ||
        now - a->window_start_ns > (uint64_t)a->window_ms * 1000000u) {
      a->window_start_ns = now;
      a->window_restarts = 0;
    }
    if (a->window_restarts < a->max_restarts) {
      a->window_restarts++;
      atomic_fetch_add_explicit(&a->restarts, 1, memory_order_relaxed);
      shoal__log(sys->cfg.log, sys->cfg.log_user, SHOAL_LOG_WARN,
                 "actors: actor %llu (%s) failed (status %d): restarted, "
                 "%u of %u in %u ms; its mailbox is kept",
                 (unsigned long long)id, name_of(a), status,
                 a->window_restarts, a->max_restarts, a->window_ms);
      if (a->init != NULL)
        a->init(a, a->state);
      return 0;
    }
    policy = a->parent != 0 ? SHOAL_SUPERVISE_ESCALATE : SHOAL_SUPERVISE_STOP;
  }
  shoal__log(sys->cfg.log, sys->cfg.log_user, SHOAL_LOG_ERROR,
             "actors: actor %llu (%s) failed (status %d): %s",
             (unsigned long long)id, name_of(a), status,
             policy == SHOAL_SUPERVISE_ESCALATE
                 ? "stopped, and its parent fails"
             : a->on_failure == SHOAL_SUPERVISE_RESTART
                 ? "stopped: past its restarts"
                 : "stopped");
  if (policy == SHOAL_SUPERVISE_ESCALATE)
    escalate(a, id, status);
  a->fail_stop = 1;
  (void)shoal_actor_unregister(sys, id);
  return 1;
}
