/* tick.c — the tick: every due session updated in batches on the runtime
 * (lazy splitting inside a batch, one part per home node with several),
 * quarantine of a failing session; and the hold protocol that the update,
 * the drain, hibernation and defragmentation all go through, whose end
 * applies what waited for it (releases, the deferred ring, creates). */
#include <string.h>

#include "runtime/os.h"
#include "runtime/sched/sched.h"
#include "sessions/mgr.h"

/* One batch in SAMPLE_EVERY has its host callbacks timed one by one. */
#define SAMPLE_EVERY 32u

/* ------------------------------------------------------------------------ */
/* Sessions in batches                                                      */
/* ------------------------------------------------------------------------ */

static void quarantine(shoal_mgr *mgr, shoal__cols *c, uint32_t i, int rc) {
  /* exchange: a setter's CAS cannot bring the session back over it. */
  if (atomic_exchange_explicit(&c->sched[i], 0, memory_order_relaxed) == 0)
    return;
  atomic_store_explicit(&shoal__mgr_rec(mgr, c->rec[i])->last_error, rc,
                        memory_order_relaxed);
  atomic_fetch_add_explicit(&mgr->quarantined, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&mgr->quarantines, 1, memory_order_relaxed);
  shoal__log(mgr->cfg.log, mgr->cfg.log_user, SHOAL_LOG_WARN,
             "session %u: update failed (%d); quarantined until the host "
             "clears it",
             c->ids[i], rc);
}

/* Whether slot i is due this tick; sched 0 (quarantined) never is. */
static inline int due(uint32_t sched, uint64_t tick) {
  return sched == SHOAL__SCHED_EVERY ||
         (sched != 0 && tick % (sched >> 16) == (sched & 0xffffu));
}

/* What a timed chunk measured: the host's callbacks (each stamp pair
 * less its own cost), their raw sum, and how many ran. */
typedef struct chunk_time {
  uint64_t host, raw, n;
  uint64_t pk;    /* the host's packet handlers, as stamped */
  uint64_t calls; /* stamp pairs around update calls (n one by one) */
} chunk_time;

/* Lazy binary splitting inside a batch (Tzannes, Caragea, Barua and
 * Vishkin, "Lazy Binary-Splitting", PPoPP 2010): a worker runs its batch
 * in chunks of SPLIT_CHUNK sessions and, between chunks, hands the second
 * half of what is left to the runtime only when some worker is looking for
 * work. Thieves take the oldest frames first, so the tick's own batches go
 * before any half of a batch; halves are taken only at the tick's tail,
 * where a whole batch left on one worker would keep the others idle. */
#define SPLIT_CHUNK 8u
_Static_assert(SPLIT_CHUNK == SHOAL_UPDATE_BATCH_MAX, "a batch call per chunk");

/* The mail bits of a chunk's n ≤ 32 sessions, whose records rec[0 … n)
 * names: bit k for the k-th. The loads do not depend on one another, so
 * they overlap, where looking one session at a time put a bitmap load on
 * each session's path. These helpers take pointers to the chunk's start
 * in each column: with an index b + k in 32 bits gcc zero-extended and
 * addressed each k apart (docs/sessions.md, "Figures", has the counts). */
static inline uint32_t mail_bit(const _Atomic uint64_t *mail, uint32_t r) {
  return (uint32_t)(atomic_load_explicit(&mail[r >> 6], memory_order_relaxed) >>
                    (r & 63)) &
         1u;
}
static inline uint32_t mail_mask(const _Atomic uint64_t *mail,
                                 const uint32_t *rec, uint32_t n) {
  uint32_t m = 0;
  if (n == SPLIT_CHUNK) { /* unrolled: each bit's place a constant */
#pragma GCC unroll 8
    for (uint32_t k = 0; k < SPLIT_CHUNK; k++)
      m |= mail_bit(mail, rec[k]) << k;
    return m;
  }
  for (uint32_t k = 0; k < n; k++)
    m |= mail_bit(mail, rec[k]) << k;
  return m;
}

/* Whether a chunk's SPLIT_CHUNK sessions, from sched[0], are all updated
 * every tick (none quarantined or on an interval). */
static inline int all_every(const _Atomic uint32_t *sched) {
  uint32_t diff = 0;
#pragma GCC unroll 8
  for (uint32_t k = 0; k < SPLIT_CHUNK; k++)
    diff |= atomic_load_explicit(&sched[k], memory_order_relaxed) ^
            SHOAL__SCHED_EVERY;
  return diff == 0;
}

/* A whole chunk's updates, two sessions at a time: each one's time since
 * its last update into diff, the clock into its last_ms, its update count
 * up by one. */
typedef uint64_t u64x2 __attribute__((vector_size(16)));
static inline void advance_chunk(uint64_t *last_ms, uint64_t *updates,
                                 uint64_t clock, uint32_t *diff) {
  const u64x2 now = {clock, clock}, one = {1, 1};
#pragma GCC unroll 4
  for (uint32_t k = 0; k < SPLIT_CHUNK; k += 2) {
    u64x2 l, n, d;
    memcpy(&l, last_ms + k, sizeof l);
    memcpy(&n, updates + k, sizeof n);
    d = now - l;
    n += one;
    memcpy(last_ms + k, &now, sizeof now);
    memcpy(updates + k, &n, sizeof n);
    diff[k] = (uint32_t)d[0];
    diff[k + 1] = (uint32_t)d[1];
  }
}

/* The records of a chunk's sessions with mail (bit k of m: session b +
 * k), whose lines the senders' cores wrote. */
static void prefetch_records(const shoal__cols *c, uint32_t b, uint32_t m) {
  while (m != 0) {
    const char *s = (const char *)c->sess[b + (uint32_t)__builtin_ctz(m)];
    __builtin_prefetch(s);
    __builtin_prefetch(s + 64);
    m &= m - 1;
  }
}

/* The first packet of each session with mail of a chunk, whose records
 * were asked for a chunk ago, on its way while the chunk's host calls
 * run. */
static void prefetch_packets(const shoal__cols *c, uint32_t b, uint32_t m) {
  while (m != 0) {
    shoal__node *n = atomic_load_explicit(
        &c->sess[b + (uint32_t)__builtin_ctz(m)]->in_stub.next,
        memory_order_relaxed);
    if (n != NULL) {
      __builtin_prefetch(n);
      __builtin_prefetch((char *)n + 64);
    }
    m &= m - 1;
  }
}

/* A session's result: activity counted, or quarantined. */
static inline void result(shoal_mgr *mgr, shoal__cols *c, uint32_t i,
                          uint64_t clock, int rc) {
  if (rc > 0) {
    c->activity[i] += (unsigned)rc;
    c->last_active[i] = clock;
  } else if (rc < 0) {
    quarantine(mgr, c, i, rc);
  }
}

/* A timed host call of n sessions, begun at t0: its time, less one
 * stamp's cost, is the host's. */
static inline void stamp_call(chunk_time *ct, uint64_t t0, uint64_t stamp,
                              uint32_t n) {
  uint64_t d = shoal__fast_ns() - t0;
  ct->host += d > stamp ? d - stamp : 0;
  ct->raw += d;
  ct->n += n;
  ct->calls++;
}

/* Sessions [b, e) of a batch, in chunks of SPLIT_CHUNK; returns where it
 * stopped: e, or the end of a chunk after which some worker wants work
 * and at least two chunks are left (the caller splits there). Each due
 * session's packets are taken, then it is updated: one call each, or
 * (batched) one call of the batch callback per chunk for its due
 * sessions; a whole chunk due with no mail, the common one, is passed
 * without a gathering pass. The timed variant times each host call with
 * the TSC; the plain one carries no clock at all. The columns and the
 * callbacks are read into locals once: the host's callback is opaque, and
 * every value reached through memory would be loaded again after each
 * call. */
static inline __attribute__((always_inline)) uint32_t
run_batch_as(const shoal__tick *t, const shoal_worker *w, unsigned wi,
             uint32_t b, uint32_t e, const int timed, const int batched,
             chunk_time *ct, shoal__ends *done) {
  shoal_mgr *mgr = t->mgr;
  shoal__cols *c = t->c;
  _Atomic uint32_t *sched_col = c->sched;
  _Atomic(void *) *user_col = c->user;
  const uint32_t *rec = c->rec, *ids = c->ids;
  uint64_t *last_ms = c->last_ms, *updates = c->updates;
  int (*update)(void *, uint32_t, void *, uint32_t) = mgr->cb.update;
  shoal_update_batch_fn update_batch = mgr->update_batch;
  void *host = mgr->cb.host;
  const uint64_t tick = t->tick, clock = t->clock;
  const uint64_t stamp = mgr->stamp_ns;
  _Atomic uint64_t *beat = &mgr->samples[wi].beat;
  uint64_t seq = shoal__beat_seq(beat);
  /* the chunk's mail bits, read a chunk ahead so that its records are on
   * their way while the chunk before runs */
  uint32_t next = e - b > SPLIT_CHUNK ? b + SPLIT_CHUNK : e;
  const _Atomic uint64_t *mail_bits = mgr->pk.mail;
  uint32_t mail = mail_mask(mail_bits, rec + b, next - b);
  if (mail != 0)
    prefetch_records(c, b, mail);
  for (;;) {
    uint32_t stop = next, ahead = 0;
    /* batched: the chunk's due sessions for one call; slot NULL when
     * they are the whole chunk, whose ids the column gives */
    uint32_t bid[SPLIT_CHUNK], bdiff[SPLIT_CHUNK], bslot[SPLIT_CHUNK];
    void *buser[SPLIT_CHUNK];
    const uint32_t *cid = bid, *slot = bslot;
    uint32_t n = 0;
    if (stop < e) {
      next = e - stop > SPLIT_CHUNK ? stop + SPLIT_CHUNK : e;
      if ((ahead = mail_mask(mail_bits, rec + stop, next - stop)) != 0)
        prefetch_records(c, stop, ahead);
    }
    if (mail != 0)
      prefetch_packets(c, b, mail);
    if (batched && mail == 0 && stop - b == SPLIT_CHUNK &&
        all_every(sched_col + b)) {
      _Atomic(void *) *cu = user_col + b;
      uint64_t *cl = last_ms + b, *cn = updates + b;
#pragma GCC unroll 8
      for (uint32_t k = 0; k < SPLIT_CHUNK; k++)
        buser[k] = atomic_load_explicit(&cu[k], memory_order_relaxed);
      advance_chunk(cl, cn, clock, bdiff);
      cid = ids + b;
      slot = NULL;
      n = SPLIT_CHUNK;
    } else {
      for (uint32_t i = b; i < stop; i++, mail >>= 1) {
        uint32_t sched =
            atomic_load_explicit(&sched_col[i], memory_order_relaxed);
        void *user;
        uint32_t diff, id;
        uint64_t t0 = 0;
        int rc;
        if (!due(sched, tick))
          continue;
        user = atomic_load_explicit(&user_col[i], memory_order_relaxed);
        id = ids[i];
        /* Packets first (DESIGN.md, "The data path of one tick"); the
         * mail bits say which records to look at. */
        if ((mail & 1) && shoal__pk_mail_take(&mgr->pk, rec[i])) {
          if (shoal__pk_take(mgr, wi, c->sess[i], id, user, done,
                             timed ? &ct->pk : NULL) != 0)
            c->last_active[i] = clock;
          seq = shoal__beat_seq(beat); /* its handlers beat too */
        }
        diff = (uint32_t)(clock - last_ms[i]);
        last_ms[i] = clock;
        updates[i]++;
        if (batched) {
          bid[n] = id;
          buser[n] = user;
          bdiff[n] = diff;
          bslot[n++] = i;
          continue;
        }
        if (timed)
          t0 = shoal__fast_ns();
        shoal__beat_next(beat, &seq, SHOAL__CB_UPDATE, id);
        rc = update(host, id, user, diff);
        if (timed)
          stamp_call(ct, t0, stamp, 1);
        if (__builtin_expect(rc != 0, 0))
          result(mgr, c, i, clock, rc);
      }
    }
    if (batched && n != 0) {
      int brc[SPLIT_CHUNK], any;
      uint64_t t0 = timed ? shoal__fast_ns() : 0;
      shoal__beat_next(beat, &seq, SHOAL__CB_BATCH, cid[0]);
      any = update_batch(host, n, cid, buser, bdiff, brc);
      if (timed)
        stamp_call(ct, t0, stamp, n);
      if (__builtin_expect(any != 0, 0))
        for (uint32_t k = 0; k < n; k++)
          result(mgr, c, slot != NULL ? slot[k] : b + k, clock, brc[k]);
    }
    b = stop;
    mail = ahead;
    if (b == e || (e - b >= 2 * SPLIT_CHUNK && shoal__wanted(w)))
      return b;
  }
}

static uint32_t run_batch(const shoal__tick *t, const shoal_worker *w,
                          unsigned wi, uint32_t b, uint32_t e, int timed,
                          chunk_time *ct, shoal__ends *done) {
  if (t->mgr->update_batch != NULL)
    return timed ? run_batch_as(t, w, wi, b, e, 1, 1, ct, done)
                 : run_batch_as(t, w, wi, b, e, 0, 1, ct, done);
  return timed ? run_batch_as(t, w, wi, b, e, 1, 0, ct, done)
               : run_batch_as(t, w, wi, b, e, 0, 0, ct, done);
}

typedef struct span_args {
  const shoal__tick *t;
  uint32_t b, e;
  int timed;
} span_args;
_Static_assert(sizeof(span_args) <= SHOAL_FRAME_ARGS, "span's frame");

static void span(shoal_worker *w, unsigned wi, const shoal__tick *t,
                 uint32_t b, uint32_t e, int timed);

static void span_task(shoal_worker *w, void *args) {
  span_args *f = args;
  const shoal_mgr *prev = shoal__cb_enter(f->t->mgr);
  span(w, shoal_worker_index(w), f->t, f->b, f->e, f->timed);
  shoal__cb_leave(prev);
}

/* shoal's own time in a timed chunk: its whole time less the host's
 * callbacks as stamped (updates and packet handlers), less what the
 * update stamps themselves cost (one pair inside each callback's figure,
 * one outside it, and the chunk's pair). A packet handler's stamps stay
 * in shoal's figure. */
static uint64_t chunk_own(const shoal__tick *t, uint64_t whole,
                          const chunk_time *ct) {
  uint64_t stamps = (ct->calls + 1) * t->mgr->stamp_ns;
  uint64_t host = ct->raw + ct->pk;
  return whole > host + stamps ? whole - host - stamps : 0;
}

/* Sessions [b, e) on w, worker wi. */
static void span(shoal_worker *w, unsigned wi, const shoal__tick *t,
                 uint32_t b, uint32_t e, int timed) {
  chunk_time ct = {0, 0, 0, 0, 0};
  uint64_t own = 0, c0 = timed ? shoal__fast_ns() : 0;
  _Atomic uint64_t *beat = &t->mgr->samples[wi].beat;
  /* the packets that end in this span, given back at its end */
  shoal__ends done;
  shoal__ends_init(&done);
  b = run_batch(t, w, wi, b, e, timed, &ct, &done);
  /* the halves below time themselves; a sync's wait is not ours */
  if (timed)
    own = chunk_own(t, shoal__fast_ns() - c0, &ct);
  if (b < e) { /* someone wants work: the second half goes to it */
    span_args *f = shoal_args(w);
    uint32_t mid = b + (e - b) / 2;
    /* out of the batch while the halves run: no callback of ours */
    shoal__beat(beat, SHOAL__CB_NONE, 0);
    f->t = t;
    f->b = mid;
    f->e = e;
    f->timed = timed;
    span(shoal_spawn(w, span_task), wi, t, b, mid, timed);
    shoal_sync(w);
  }
  shoal__beat(beat, SHOAL__CB_NONE, 0);
  shoal__ends_flush(t->mgr, &done);
  if (timed && ct.n > 0) {
    shoal__mgr_sample *smp = &t->mgr->samples[wi];
    atomic_fetch_add_explicit(&smp->host_ns, ct.host, memory_order_relaxed);
    atomic_fetch_add_explicit(&smp->shoal_ns, own, memory_order_relaxed);
    atomic_fetch_add_explicit(&smp->timed, ct.n, memory_order_relaxed);
  }
}

static void tick_range(void *arg, size_t kb, size_t ke) {
  const shoal__tick *t = arg;
  const shoal_mgr *prev = shoal__cb_enter(t->mgr);
  shoal_worker *w = shoal__current(t->mgr->rt);
  unsigned wi = shoal_worker_index(w);
  if (t->mgr->worker_node[wi] != t->node)
    atomic_fetch_add_explicit(&t->mgr->samples[wi].away, ke - kb,
                              memory_order_relaxed);
  for (size_t k = kb; k < ke; k++) {
    uint32_t b = t->base + (uint32_t)k * t->bs;
    uint32_t e = b + t->bs < t->end ? b + t->bs : t->end;
    span(w, wi, t, b, e, (k + t->base + t->tick) % SAMPLE_EVERY == 0);
  }
  shoal__cb_leave(prev);
}

static size_t batches_of(const shoal__tick *t) {
  return (t->end - t->base + t->bs - 1) / t->bs;
}

/* ---- one part per home node --------------------------------------------- */

/* Runs part p if nobody has claimed it yet. */
static void part_claim(shoal__part *p) {
  uint32_t open = SHOAL__PART_OPEN;
  /* acquire: the part's fields, written before it was opened. */
  if (!atomic_compare_exchange_strong_explicit(
          &p->state, &open, SHOAL__PART_TAKEN, memory_order_acquire,
          memory_order_relaxed))
    return;
  (void)shoal_parallel_for(p->mgr->rt, 0, batches_of(&p->t), 1, tick_range,
                           &p->t);
  /* release: the part's updates before the updating thread sees DONE. */
  atomic_store_explicit(&p->state, SHOAL__PART_DONE, memory_order_release);
  shoal__ext_notify(p->mgr->rt, 1);
}

/* The task handed to a worker of the part's node. */
static void part_task(shoal_worker *w, shoal__task *task) {
  shoal__part *p = (shoal__part *)(void *)task;
  shoal_runtime *rt = p->mgr->rt;
  (void)w;
  for (;;) {
    uint32_t q = 1;
    part_claim(p);
    /* release: destroy and the next tick may reuse the record once they
     * read 0; nothing of p (or of the manager) is touched after this.
     * acquire on failure: the tick's opening of the part, marked 2. */
    if (atomic_compare_exchange_strong_explicit(
            &p->queued, &q, 0, memory_order_acq_rel, memory_order_acquire))
      break;
    atomic_store_explicit(&p->queued, 1, memory_order_relaxed);
  }
  shoal__ext_notify(rt, 1); /* a destroy waiting for it */
}

static int parts_done(void *arg) {
  shoal_mgr *mgr = arg;
  for (unsigned k = 0; k < mgr->nodes; k++) {
    uint32_t st =
        atomic_load_explicit(&mgr->parts[k].state, memory_order_acquire);
    if (st == SHOAL__PART_OPEN || st == SHOAL__PART_TAKEN)
      return 0;
  }
  return 1;
}

static int parts_idle(void *arg) {
  shoal_mgr *mgr = arg;
  for (unsigned k = 0; k < mgr->nodes; k++)
    if (atomic_load_explicit(&mgr->parts[k].queued, memory_order_acquire))
      return 0;
  return 1;
}

void shoal__tick_quiesce(shoal_mgr *mgr) {
  /* A part's task may still wait in the inbox of a busy worker. */
  if (mgr->parts != NULL)
    (void)shoal__wait_until(mgr->rt, parts_idle, mgr, 0);
}

/* The tick with sessions on several home nodes: each node's segment is a
 * part, handed to a worker of that node, whose neighbours steal its
 * halves first (the plan's victim order is nearest first). The updating
 * thread runs its own node's part, then any part nobody has started, then
 * helps until all are done. */
static void tick_nodes(shoal_worker *w, void *arg) {
  const shoal__tick *t = arg;
  shoal_mgr *mgr = t->mgr;
  unsigned own = mgr->worker_node[shoal_worker_index(w)];
  uint32_t base = 0;
  for (unsigned k = 0; k < mgr->nodes; k++) {
    shoal__part *p = &mgr->parts[k];
    p->t = *t;
    p->t.base = base;
    p->t.end = base = mgr->seg_end[k];
    p->t.node = k;
    /* release: the fields above before a claimer's acquire. */
    atomic_store_explicit(
        &p->state, p->t.end > p->t.base ? SHOAL__PART_OPEN : SHOAL__PART_IDLE,
        memory_order_release);
  }
  for (unsigned k = 0; k < mgr->nodes; k++) {
    shoal__part *p = &mgr->parts[k];
    uint32_t q;
    if (k == own || p->home < 0 ||
        atomic_load_explicit(&p->state, memory_order_relaxed) !=
            SHOAL__PART_OPEN)
      continue;
    q = atomic_load_explicit(&p->queued, memory_order_acquire);
    /* acq_rel: the opening above before the mark a finishing task reads;
     * 0 → 1 hands a new task, 1 → 2 asks the one on its way to claim
     * again, 2: already asked. */
    while (q != 2 && !atomic_compare_exchange_weak_explicit(
                         &p->queued, &q, q + 1, memory_order_acq_rel,
                         memory_order_acquire))
      ;
    if (q != 0)
      continue;
    shoal__handoff(mgr->rt, &p->task, part_task, (unsigned)p->home);
  }
  part_claim(&mgr->parts[own]);
  for (unsigned k = 0; k < mgr->nodes; k++)
    part_claim(&mgr->parts[k]);
  shoal__work_until(w, parts_done, mgr);
}

/* Auto batch size: about 8 batches per worker, 16 … 256 sessions each. */
static uint32_t batch_for(uint32_t n, unsigned workers) {
  uint32_t bs = (uint32_t)((n + 8u * workers - 1) / (8u * workers));
  return bs < 16 ? 16 : bs > 256 ? 256 : bs;
}

/* ------------------------------------------------------------------------ */
/* The hold                                                                 */
/* ------------------------------------------------------------------------ */

/* Runs on_release for each session of the list and returns them to the
 * pool. Outside mu: the host may call back into the manager. */
void shoal__mgr_finish_releases(shoal_mgr *mgr, uint32_t list) {
  while (list != 0) {
    uint32_t index = list - 1;
    shoal__session *s = shoal__mgr_rec(mgr, index);
    uint32_t id = atomic_load_explicit(&s->id, memory_order_relaxed);
    void *user = s->user;
    list = s->next;
    if (mgr->cb.on_release != NULL)
      mgr->cb.on_release(mgr->cb.host, id, user);
    pthread_mutex_lock(&mgr->mu);
    shoal__pk_retire(mgr, index);
    pthread_mutex_unlock(&mgr->mu);
  }
}

/* Holding the manager: the update, or a drain. At most one holder
 * (`updating`); while it holds, `ticking` makes creates append past the
 * segments and releases wait on the deferred list. Begins with mu held. */
static int hold_begin(shoal_mgr *mgr) {
  int expect = 0;
  if (shoal__mgr_in_callback(mgr) ||
      !atomic_compare_exchange_strong_explicit(&mgr->updating, &expect, 1,
                                               memory_order_acquire,
                                               memory_order_relaxed))
    return SHOAL_ESTATE;
  pthread_mutex_lock(&mgr->mu);
  mgr->ticking = 1;
  return SHOAL_OK;
}

/* The releases made while holding, taken out now; joins them to the
 * list done for hold_finish. Under mu, no tick running. */
static uint32_t apply_releases(shoal_mgr *mgr, uint32_t done) {
  while (mgr->releasing != 0) {
    shoal__session *s = shoal__mgr_rec(mgr, mgr->releasing - 1);
    uint32_t next = s->next;
    shoal__slot_release(mgr, s);
    s->next = done;
    done = mgr->releasing;
    mgr->releasing = next;
  }
  return done;
}

/* Under mu again: applies what waited for the hold's end, and returns the
 * released sessions (with those of `done`) for hold_finish. */
static uint32_t hold_end_locked(shoal_mgr *mgr, uint32_t done) {
  mgr->ticking = 0;
  shoal__deferred_tick_end(mgr);
  done = apply_releases(mgr, done);
  shoal__pk_zombies(mgr);
  shoal__slots_join(mgr); /* the creates made meanwhile */
  return done;
}

static void hold_finish(shoal_mgr *mgr, uint32_t done) {
  pthread_cond_broadcast(&mgr->tick_done);
  pthread_mutex_unlock(&mgr->mu);
  shoal__mgr_finish_releases(mgr, done);
  /* release: the next holder (another thread, maybe) sees this one's
   * writes (pairs with the acquire CAS in hold_begin). */
  atomic_store_explicit(&mgr->updating, 0, memory_order_release);
}

int shoal__mgr_hold(shoal_mgr *mgr, void (*f)(shoal_mgr *, void *), void *arg) {
  int rc = hold_begin(mgr);
  if (rc != SHOAL_OK)
    return rc;
  pthread_mutex_unlock(&mgr->mu);
  f(mgr, arg);
  pthread_mutex_lock(&mgr->mu);
  hold_finish(mgr, hold_end_locked(mgr, 0));
  return SHOAL_OK;
}

int shoal_mgr_update(shoal_mgr *mgr, uint32_t diff_ms) {
  shoal__tick t;
  uint64_t t0, ts, t1, t2, dt;
  uint32_t done, nb, early = 0;
  int rc;
  if (mgr == NULL)
    return SHOAL_EINVAL;
  t0 = shoal__now_ns();
  if ((rc = hold_begin(mgr)) != SHOAL_OK)
    return rc;
  mgr->tick_no++;
  mgr->clock_ms += diff_ms;
  atomic_store_explicit(&mgr->clock_pub, mgr->clock_ms, memory_order_relaxed);
  if (mgr->hooks != NULL) {
    /* Sessions woken since the last tick join this one. */
    pthread_mutex_unlock(&mgr->mu);
    mgr->hooks->wake_phase(mgr);
    pthread_mutex_lock(&mgr->mu);
    /* A session released meanwhile leaves before the tick: a create of
     * its id made meanwhile is in this tick, and the two must not be
     * updated side by side. */
    early = apply_releases(mgr, 0);
  }
  t.mgr = mgr;
  t.c = shoal__mgr_cols(mgr);
  t.base = 0;
  t.end = mgr->tick_n = mgr->nact;
  t.node = 0;
  t.tick = mgr->tick_no;
  t.clock = mgr->clock_ms;
  t.bs = atomic_load_explicit(&mgr->batch_size, memory_order_relaxed);
  if (t.bs == 0)
    t.bs = batch_for(t.end, shoal_runtime_workers(mgr->rt));
  pthread_mutex_unlock(&mgr->mu);

  shoal__timers_tick(mgr, t.clock); /* their packets join this tick */
  ts = shoal__now_ns();
  if (mgr->nodes == 1) {
    nb = (uint32_t)batches_of(&t);
    rc = shoal_parallel_for(mgr->rt, 0, nb, 1, tick_range, &t);
  } else {
    nb = 0;
    for (unsigned k = 0; k < mgr->nodes; k++) {
      uint32_t len = mgr->seg_end[k] - (k > 0 ? mgr->seg_end[k - 1] : 0);
      nb += (len + t.bs - 1) / t.bs;
    }
    rc = shoal_runtime_run(mgr->rt, tick_nodes, &t);
  }
  t1 = shoal__now_ns();
  shoal__maps_phase(mgr, diff_ms); /* every session update has returned */
  t2 = shoal__now_ns();
  if (mgr->hooks != NULL) {
    mgr->hooks->hib_phase(mgr); /* between ticks, still holding */
    shoal__defrag_tick(mgr);
  }

  pthread_mutex_lock(&mgr->mu);
  done = hold_end_locked(mgr, early);
  dt = shoal__now_ns() - t0;
  shoal__hist_add(&mgr->hist, dt);
  shoal__prom_tick(mgr, dt);
  mgr->w_ticks++;
  mgr->w_batches += nb;
  mgr->w_main_ns += dt;
  mgr->w_session_ns += t1 - ts;
  mgr->w_map_ns += t2 - t1;
  hold_finish(mgr, done);
  return rc;
}
