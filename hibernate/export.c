/* export.c — a session moving between processes (shoal.h, "Moving a
 * session between processes"; docs/moves.md). The export takes an active
 * session through hibernation on the calling thread, its waiting packets
 * held with it, then writes the move record (move.h) of the hibernated
 * session and removes it, leaving its id marked moved (sessions/moved.c).
 * The import checks a record whole, creates the session hibernated with
 * its packets held and its timers armed, and asks for its wake, so that
 * the next update wakes it through the host's callback as any other.
 * Both hold the manager (tick.c's hold protocol): no tick, drain or pass
 * runs meanwhile, and a send that meets the session closed waits for mu,
 * where it finds the session hibernated (its packet held, so in the
 * record) or gone (SHOAL_EMOVED). */
#include <string.h>

#include "hibernate/hib.h"
#include "hibernate/move.h"
#include "hibernate/record.h"
#include "hibernate/table.h"
#include "runtime/alloc.h"
#include "runtime/os.h"

typedef struct mv_call {
  shoal__hib_call c; /* first: what shoal__hib_held hands over */
  uint32_t id;
  unsigned char *buf;
  size_t cap, *len;
  shoal__mv *m; /* an import's record, decoded */
  const shoal__tview *tv;
} mv_call;

/* A move's arrays, and the timers' views. */
static void mv_free(shoal__mv *m, shoal__tview *tv) {
  shoal__free(m->pk);
  shoal__free(m->tm);
  shoal__free(m->rq);
  shoal__free(tv);
}

/* The host's bytes back to it from it->r (a hibernation undone): the
 * session carries on active with its new user pointer. Holding, under
 * mu, which is let go around the host's callback. */
static void give_back(shoal_mgr *mgr, shoal__hib_item *it) {
  shoal__hib *h = mgr->hib;
  const shoal_mgr *prev;
  pthread_mutex_unlock(&mgr->mu);
  prev = shoal__cb_enter(mgr);
  shoal__beat(&mgr->main_beat, SHOAL__CB_HIBERNATE, it->id);
  shoal__hib_wake_one(mgr, &h->ws[0], it);
  shoal__beat(&mgr->main_beat, SHOAL__CB_NONE, 0);
  shoal__cb_leave(prev);
  pthread_mutex_lock(&mgr->mu);
  shoal__hib_bounced(mgr, it, "its export failed");
}

/* Active session s (id) hibernated now on this thread, every packet
 * waiting for it held: SHOAL_OK, or an error with s still active (with
 * the host's bytes given back when they were taken). Holding, not under
 * mu. */
static int hibernate_now(shoal_mgr *mgr, shoal__session *s, uint32_t id) {
  shoal__hib *h = mgr->hib;
  shoal__hib_item it;
  shoal__out held;
  const shoal_mgr *prev;
  uint32_t oslot;
  int rc;
  pthread_mutex_lock(&mgr->mu);
  it.index = s->self;
  it.id = id;
  it.slot = atomic_load_explicit(&s->slot, memory_order_relaxed);
  it.user = atomic_load_explicit(&shoal__mgr_cols(mgr)->user[it.slot],
                                 memory_order_relaxed);
  it.r = NULL;
  it.rc = SHOAL__IT_REFUSED;
  if ((rc = shoal__hib_slot_reserve(h, 1)) == SHOAL_OK)
    atomic_store_explicit(&s->state, SHOAL__S_HIBERNATING,
                          memory_order_relaxed);
  pthread_mutex_unlock(&mgr->mu);
  if (rc != SHOAL_OK)
    return rc;
  prev = shoal__cb_enter(mgr);
  shoal__beat(&mgr->main_beat, SHOAL__CB_HIBERNATE, id);
  shoal__hib_one(mgr, &h->ws[0], &it);
  shoal__beat(&mgr->main_beat, SHOAL__CB_NONE, 0);
  shoal__cb_leave(prev);
  pthread_mutex_lock(&mgr->mu);
  if (it.rc != SHOAL__IT_OK) {
    shoal__hib_not_kept(mgr, &it);
    pthread_mutex_unlock(&mgr->mu);
    return it.rc == SHOAL__IT_REFUSED ? SHOAL_ESTATE
           : it.rc >= SHOAL__IT_BIG   ? SHOAL_ELIMIT
                                      : SHOAL_ENOMEM;
  }
  if (atomic_load_explicit(&s->state, memory_order_relaxed) == 0) {
    /* released while its callback ran: on_release gets user NULL */
    shoal__mgr_drop_chosen(mgr, s);
    shoal__hrec_free(it.r);
    pthread_mutex_unlock(&mgr->mu);
    return SHOAL_ENOENT;
  }
  /* The out slot's id first, so that the detach below cannot fail once
   * the inbox is closed. */
  oslot = shoal__hib_slot_take(h);
  if ((rc = shoal__registry_out_set(&mgr->reg, oslot, id)) != SHOAL_OK) {
    shoal__hib_slot_put(h, oslot);
    give_back(mgr, &it);
    pthread_mutex_unlock(&mgr->mu);
    return rc;
  }
  memset(&held, 0, sizeof held);
  shoal__pk_close(s);
  shoal__pk_take_all(mgr, s, &held);
  it.r->o.slot = oslot;
  (void)shoal__mgr_detach(mgr, s, &it.r->o, &it.r->kept, 1);
  it.r->o.held_head = held.held_head;
  it.r->o.held_tail = held.held_tail;
  it.r->o.nheld = held.nheld;
  h->arr[oslot] = it.r;
  shoal__hib_count_in(h, it.r);
  h->hibernations++;
  h->w_hib++;
  pthread_mutex_unlock(&mgr->mu);
  return SHOAL_OK;
}

/* The move of hibernated session o into a->buf, and o gone when it fits.
 * Under mu, holding. */
static int export_out(shoal_mgr *mgr, shoal__out *o, mv_call *a) {
  const shoal__hrec *r = shoal__hrec_of(o);
  shoal__tview *tv = NULL;
  uint32_t ntv = 0, tcap = 0, nt = 0, nr = 0, k = 0;
  shoal__mv m;
  size_t bound;
  uint64_t now = shoal__fast_ns();
  int rc;
  memset(&m, 0, sizeof m);
  if ((rc = shoal__timers_of(mgr, o->id, o->epoch, &tv, &ntv, &tcap)) !=
      SHOAL_OK)
    goto out;
  for (uint32_t i = 0; i < ntv; i++)
    nr += tv[i].request != 0;
  nt = ntv - nr;
  m.s = (shoal__mv_session){o->id, o->map, o->group, o->interval, o->epoch};
  m.blob_rec = r->rec;
  m.blob_rec_len = r->len;
  m.blob_len = r->raw;
  m.npk = o->nheld;
  m.ntm = nt;
  m.nrq = nr;
  rc = SHOAL_ELIMIT;
  if (o->nheld > SHOAL__MV_PACKETS_MAX || nt > SHOAL__MV_PACKETS_MAX ||
      nr > SHOAL__MV_PACKETS_MAX)
    goto out;
  rc = SHOAL_ENOMEM;
  if ((m.pk = shoal__malloc((m.npk + 1) * sizeof *m.pk)) == NULL ||
      (m.tm = shoal__malloc((nt + 1) * sizeof *m.tm)) == NULL ||
      (m.rq = shoal__malloc((nr + 1) * sizeof *m.rq)) == NULL)
    goto out;
  for (shoal__pkt *p = o->held_head != 0
                           ? shoal__pool_at(&mgr->pk.pool, o->held_head - 1)
                           : NULL;
       p != NULL; k++) {
    shoal__node *next = atomic_load_explicit(&p->link.next,
                                             memory_order_relaxed);
    m.pk[k] = (shoal__mv_packet){p->opcode, p->flags,
                                 p->len & ~SHOAL__PKT_EXT, shoal__pkt_bytes(p),
                                 now > p->sent_ns ? now - p->sent_ns : 0};
    p = next != NULL ? shoal__pkt_of(next) : NULL;
  }
  nt = nr = 0;
  for (uint32_t i = 0; i < ntv; i++) {
    const shoal__tview *v = &tv[i];
    if (!v->request) {
      m.tm[nt++] = (shoal__mv_timer){v->opcode, v->flags, v->len, v->data,
                                     v->remaining_ms, v->interval_ms};
      continue;
    }
    m.rq[nr] = (shoal__mv_request){v->req.to, v->req.corr, v->opcode,
                                   v->remaining_ms, v->req.type,
                                   v->req.size, v->req.priority,
                                   v->req.flags, {0}};
    memcpy(m.rq[nr++].payload, v->req.payload.bytes, SHOAL__MV_MSG_INLINE);
  }
  rc = SHOAL_ELIMIT;
  if ((bound = shoal__mv_bound(&m)) == 0)
    goto out;
  if (a->cap < bound) {
    *a->len = bound;
    rc = SHOAL_ENOSPC;
    if (o->nheld > 0) /* its packets must not wait for a second call */
      mgr->hooks->ask(mgr, o);
    goto out;
  }
  if ((rc = shoal__mv_encode(&m, a->buf, a->cap, a->len)) != SHOAL_OK)
    goto out;
  /* Written: the session leaves with everything in the record. */
  shoal__timers_moved(mgr, o->id, o->epoch);
  shoal__pk_moved_held(mgr, o);
  shoal__mgr_out_remove(mgr, o);
  if (shoal__moved_add(mgr, o->id) != SHOAL_OK)
    shoal__log(mgr->cfg.log, mgr->cfg.log_user, SHOAL_LOG_WARN,
               "session %u exported; out of memory for its mark, so calls "
               "naming it answer SHOAL_ENOENT rather than SHOAL_EMOVED",
               o->id);
  mgr->hib->exports++;
  mgr->hooks->forget(mgr, o);
out:
  mv_free(&m, tv);
  return rc;
}

static void do_export(shoal_mgr *mgr, void *arg) {
  mv_call *a = arg;
  shoal__out *o;
  int64_t v;
  int rc;
  pthread_mutex_lock(&mgr->mu);
  v = shoal__registry_find(&mgr->reg, a->id);
  if (v >= 0 && !(v & SHOAL__REG_OUT)) {
    shoal__session *s = shoal__mgr_rec(mgr, (uint32_t)v);
    int live = atomic_load_explicit(&s->id, memory_order_relaxed) == a->id &&
               atomic_load_explicit(&s->state, memory_order_relaxed) ==
                   SHOAL__S_LIVE &&
               s->where == SHOAL__IN_ACTIVE;
    pthread_mutex_unlock(&mgr->mu);
    if (!live) {
      a->c.result = SHOAL_ENOENT; /* a release waiting for the hold's end */
      return;
    }
    if ((rc = hibernate_now(mgr, s, a->id)) != SHOAL_OK) {
      a->c.result = rc;
      return;
    }
    pthread_mutex_lock(&mgr->mu);
  }
  if ((o = shoal__mgr_out(mgr, a->id)) != NULL)
    rc = export_out(mgr, o, a);
  else
    rc = v < 0 ? shoal__mgr_gone(mgr, a->id) : SHOAL_ENOENT;
  pthread_mutex_unlock(&mgr->mu);
  a->c.result = rc;
}

int shoal_session_export(shoal_mgr *mgr, uint32_t id, void *buf, size_t cap,
                         size_t *len) {
  mv_call a;
  if (len != NULL)
    *len = 0;
  if (mgr == NULL || id == 0 || len == NULL || (buf == NULL && cap > 0))
    return SHOAL_EINVAL;
  memset(&a, 0, sizeof a);
  a.id = id;
  a.buf = buf;
  a.cap = cap;
  a.len = len;
  return (int)shoal__hib_held(mgr, do_export, &a.c);
}

/* ------------------------------------------------------------------------ */
/* Import                                                                   */
/* ------------------------------------------------------------------------ */

/* The session of a->m placed here, hibernated, with its packets p[] held
 * and its timers (pool elements idx[]) armed. Holding. */
static int place(shoal_mgr *mgr, mv_call *a, shoal__pkt **p,
                 const uint32_t *idx) {
  const shoal__mv *m = a->m;
  shoal__hib *h = mgr->hib;
  shoal__hrec *r;
  shoal__out *o;
  uint32_t epoch, nt = m->ntm + m->nrq;
  int rc;
  r = shoal__arena_alloc(&h->ws[0].cur,
                         offsetof(shoal__hrec, rec) + m->blob_rec_len);
  if (r == NULL)
    return SHOAL_ENOMEM;
  memcpy(r->rec, m->blob_rec, m->blob_rec_len);
  r->len = (uint32_t)m->blob_rec_len;
  r->raw = (uint32_t)m->blob_len;
  r->freed = 0;
  r->kept.updates = r->kept.activity = 0;
  o = &r->o;
  memset(o, 0, sizeof *o);
  o->id = m->s.id;
  o->map = m->s.map;
  o->group = m->s.group;
  o->interval = m->s.interval;
  o->node = (uint16_t)(m->s.id % mgr->nodes);
  pthread_mutex_lock(&mgr->mu);
  if (shoal__registry_find(&mgr->reg, o->id) >= 0)
    rc = SHOAL_EEXIST;
  else if (atomic_load_explicit(&mgr->pool.in_use, memory_order_relaxed) +
               mgr->nout >=
           mgr->cfg.max_sessions)
    rc = SHOAL_ELIMIT;
  else
    rc = shoal__hib_slot_reserve(h, 1);
  if (rc == SHOAL_OK) {
    o->slot = shoal__hib_slot_take(h);
    if ((rc = shoal__mgr_out_insert(mgr, o)) != SHOAL_OK)
      shoal__hib_slot_put(h, o->slot);
  }
  if (rc != SHOAL_OK) {
    pthread_mutex_unlock(&mgr->mu);
    shoal__hrec_free(r);
    return rc;
  }
  /* A new incarnation here: timers left by an earlier session of this id
   * in this manager never reach it. */
  if (++mgr->epoch_next == 0)
    mgr->epoch_next = 1;
  epoch = o->epoch = mgr->epoch_next;
  h->arr[o->slot] = r;
  shoal__hib_count_in(h, r);
  for (uint32_t k = 0; k < m->npk; k++)
    shoal__pk_held_add(mgr, o, p[k]);
  atomic_fetch_add_explicit(&mgr->pk.sent, m->npk, memory_order_relaxed);
  shoal__moved_del(mgr, o->id);
  mgr->hooks->ask(mgr, o);
  h->imports++;
  pthread_mutex_unlock(&mgr->mu);
  for (uint32_t k = 0; k < nt; k++)
    shoal__timers_arm_view(mgr, idx[k], m->s.id, epoch, &a->tv[k]);
  return SHOAL_OK;
}

static void do_import(shoal_mgr *mgr, void *arg) {
  mv_call *a = arg;
  const shoal__mv *m = a->m;
  uint32_t nt = m->ntm + m->nrq, made = 0;
  uint32_t *idx = shoal__malloc((nt + 1) * sizeof *idx);
  shoal__pkt **p = shoal__malloc((m->npk + 1) * sizeof *p);
  uint64_t now = shoal__fast_ns();
  int rc = SHOAL_ENOMEM;
  if (idx == NULL || p == NULL ||
      (rc = shoal__timers_take(mgr, nt, idx)) != SHOAL_OK)
    goto out;
  for (; made < m->npk; made++) {
    const shoal__mv_packet *x = &m->pk[made];
    if ((p[made] = shoal__pk_new(mgr, x->opcode, x->flags, x->data, x->len,
                                 NULL, NULL, &rc)) == NULL)
      break;
    p[made]->sent_ns = now > x->waited_ns ? now - x->waited_ns : 0;
  }
  if (made == m->npk && (rc = place(mgr, a, p, idx)) == SHOAL_OK)
    goto out;
  {
    shoal__ends done;
    shoal__ends_init(&done);
    for (uint32_t k = 0; k < made; k++)
      shoal__pkt_end(mgr, &mgr->pk.pool, &done, p[k]);
    shoal__ends_flush(mgr, &done);
  }
  shoal__timers_give(mgr, nt, idx);
out:
  shoal__free(idx);
  shoal__free(p);
  a->c.result = rc;
}

/* What this manager refuses of a well-formed record: SHOAL_ELIMIT. */
static int fits(const shoal_mgr *mgr, const shoal__mv *m) {
  for (uint32_t k = 0; k < m->npk; k++)
    if (m->pk[k].len > mgr->cfg.max_packet_bytes)
      return SHOAL_ELIMIT;
  for (uint32_t k = 0; k < m->ntm; k++)
    if (m->tm[k].len > SHOAL_TIMER_DATA_MAX ||
        m->tm[k].remaining_ms > SHOAL_TIMER_DELAY_MAX ||
        m->tm[k].interval_ms > SHOAL_TIMER_DELAY_MAX)
      return SHOAL_ELIMIT;
  for (uint32_t k = 0; k < m->nrq; k++)
    if (m->rq[k].remaining_ms > SHOAL_TIMER_DELAY_MAX)
      return SHOAL_ELIMIT;
  return SHOAL_OK;
}

int shoal_session_import(shoal_mgr *mgr, const void *rec, size_t len) {
  shoal__mv_shape shape;
  shoal__mv m;
  shoal__tview *tv = NULL;
  mv_call a;
  int rc;
  if (mgr == NULL || rec == NULL)
    return SHOAL_EINVAL;
  /* Checked whole, then read, before the manager is touched. */
  if ((rc = shoal__mv_check(rec, len, &shape)) != SHOAL_OK)
    return rc;
  memset(&m, 0, sizeof m);
  m.npk = shape.npk;
  m.ntm = shape.ntm;
  m.nrq = shape.nrq;
  m.pk = shoal__malloc((shape.npk + 1) * sizeof *m.pk);
  m.tm = shoal__malloc((shape.ntm + 1) * sizeof *m.tm);
  m.rq = shoal__malloc((shape.nrq + 1) * sizeof *m.rq);
  tv = shoal__malloc((shape.ntm + shape.nrq + 1) * sizeof *tv);
  rc = SHOAL_ENOMEM;
  if (m.pk == NULL || m.tm == NULL || m.rq == NULL || tv == NULL ||
      (rc = shoal__mv_decode(rec, len, &m, NULL, 0)) != SHOAL_OK ||
      (rc = fits(mgr, &m)) != SHOAL_OK)
    goto out;
  for (uint32_t k = 0; k < m.ntm; k++)
    tv[k] = (shoal__tview){0,
                           m.tm[k].opcode,
                           m.tm[k].flags,
                           m.tm[k].len,
                           m.tm[k].data,
                           m.tm[k].remaining_ms,
                           m.tm[k].interval_ms,
                           {0}};
  for (uint32_t k = 0; k < m.nrq; k++) {
    shoal__tview *v = &tv[m.ntm + k];
    const shoal__mv_request *q = &m.rq[k];
    memset(v, 0, sizeof *v);
    v->request = 1;
    v->opcode = q->reply_opcode;
    v->remaining_ms = q->remaining_ms;
    v->req.to = q->to;
    v->req.corr = q->corr;
    v->req.type = q->type;
    v->req.size = q->size;
    v->req.priority = q->priority;
    v->req.flags = q->flags;
    memcpy(v->req.payload.bytes, q->payload, SHOAL__MV_MSG_INLINE);
  }
  memset(&a, 0, sizeof a);
  a.m = &m;
  a.tv = tv;
  rc = (int)shoal__hib_held(mgr, do_import, &a.c);
out:
  mv_free(&m, tv);
  return rc;
}
