/* table.h — hibernate/'s own structures and the calls its files make of
 * each other: a hibernated session's record block, the per-worker scratch,
 * the sessions of a pass or a wake phase, and the table of hibernated
 * sessions by out slot. table.c owns the table, the records' memory, the
 * hooks the manager calls and the figures; pass.c hibernation passes;
 * wake.c waking. Internal to hibernate/. */
#ifndef SHOAL_HIBERNATE_TABLE_H
#define SHOAL_HIBERNATE_TABLE_H

#include <stdalign.h>
#include <stddef.h>
#include <stdint.h>

#include "hibernate/arena.h"
#include "runtime/common.h"
#include "sessions/mgr.h"

/* Sessions per batch of a pass or a wake phase (DESIGN.md). */
#define SHOAL__HIB_BATCH 32u

/* All that a hibernated session keeps, besides its out slot: one block of
 * the record arena (arena.h), the record's bytes inline. */
typedef struct shoal__hrec {
  shoal__out o; /* first: the manager's view (mgr.h) */
  shoal__kept kept;
  uint32_t freed; /* host bytes its callback said it freed (at most
                     UINT32_MAX counted) */
  uint32_t len;   /* of rec */
  uint32_t raw;   /* the blob's */
  unsigned char rec[];
} shoal__hrec;

struct shoal_hib_writer {
  unsigned char *buf;
  size_t len, cap;
  int err;
};

/* Per worker: the writer's buffer, the encoder's and decoder's scratch,
 * and the times of its sessions. Its own line. */
typedef struct shoal__hib_ws {
  alignas(SHOAL__FALSE_SHARING) shoal_hib_writer w;
  shoal__arena_cursor cur; /* where its records go */
  unsigned char *tmp;
  size_t tmp_cap;
  shoal__hist hib_t, wake_t;     /* per session, all of it */
  shoal__hist hib_own, wake_own; /* less the host's callback */
} shoal__hib_ws;

/* What became of a session in a pass. */
enum {
  SHOAL__IT_OK = 0,      /* its record is kept */
  SHOAL__IT_REFUSED = 1, /* its hibernate callback said no */
  SHOAL__IT_FAILED = 2,  /* no record (memory): woken at once from its
                            bytes */
  SHOAL__IT_LOST = 3,    /* the same, and that wake failed too */
  SHOAL__IT_BIG = 4,     /* FAILED: its blob passed SHOAL_HIB_BLOB_MAX */
  SHOAL__IT_BIG_LOST = 5 /* LOST: the same */
};

/* A session of a pass or a wake phase. */
typedef struct shoal__hib_item {
  uint32_t index; /* pool index: the session's, or the one taken to wake
                     it into */
  uint32_t id;
  uint32_t slot; /* during a pass: its slot, fixed until the pass ends */
  int rc;        /* SHOAL__IT_*, or a wake's status */
  void *user;
  shoal__hrec *r;
} shoal__hib_item;

typedef struct shoal__hib {
  shoal_hib_callbacks cb;
  unsigned nw;
  shoal__hib_ws *ws;
  /* The hibernated sessions by out slot (NULL: free), under mu; the free
   * slots below n, lowest last; the wake list, in the order asked. */
  shoal__hrec **arr;
  uint32_t n, cap;
  uint32_t *fr;
  uint32_t nfr;
  shoal__hrec *wk_head, *wk_tail;
  /* A pass's or a wake phase's sessions: the holder's, and read under mu
   * by wake_map while a pass runs (in_pass). */
  shoal__hib_item *items;
  size_t nitems, items_cap;
  uint32_t *cand;
  size_t cand_cap;
  int in_pass;
  uint64_t last_scan_ms;
  /* Figures, under mu. */
  uint64_t hibernations, wakes, refused, failures, wake_failures, too_large;
  uint64_t exports, imports; /* export.c */
  uint64_t rec_bytes, raw_bytes, freed_bytes; /* of those hibernated now */
  uint64_t w_hib, w_wakes, w_start_ns;
} shoal__hib;

/* Its bytes: the fields, then the record (no padding between). */
static inline uint64_t shoal__hrec_size(const shoal__hrec *r) {
  return offsetof(shoal__hrec, rec) + r->len;
}

static inline shoal__hrec *shoal__hrec_of(shoal__out *o) {
  return (shoal__hrec *)(void *)o;
}

/* table.c */
void shoal__hrec_free(shoal__hrec *r);
/* Room for n items or candidates in the holder's scratch lists. */
int shoal__hib_items_reserve(shoal__hib *h, size_t n);
int shoal__hib_cand_reserve(shoal__hib *h, size_t n);
/* Out slots: room for `more` past the free ones; one taken (reserved),
 * lowest free first; one given back. Under mu. */
int shoal__hib_slot_reserve(shoal__hib *h, size_t more);
uint32_t shoal__hib_slot_take(shoal__hib *h);
void shoal__hib_slot_put(shoal__hib *h, uint32_t slot);
/* Puts o on the wake list once. Under mu. */
void shoal__hib_ask(shoal_mgr *mgr, shoal__out *o);
/* The figures of the records hibernated now. Under mu. */
void shoal__hib_count_in(shoal__hib *h, const shoal__hrec *r);
void shoal__hib_count_out(shoal__hib *h, const shoal__hrec *r);
/* A scratch buffer (*p, *cap bytes) to at least n bytes, its first `keep`
 * kept: whole pages of their own, a power of two of them. */
int shoal__hib_scratch_grow(unsigned char **p, size_t *cap, size_t n,
                            size_t keep);
/* A worker's decoding scratch to at least n bytes. */
int shoal__hib_grow_tmp(shoal__hib_ws *ws, size_t n);
/* fn on each item of a pass or a wake phase, as a parallel_for in
 * batches of SHOAL__HIB_BATCH, each on its worker's scratch. Holding. */
typedef void (*shoal__hib_item_fn)(shoal_mgr *mgr, shoal__hib_ws *ws,
                                   shoal__hib_item *it);
void shoal__hib_run_items(shoal_mgr *mgr, shoal__hib_item_fn fn);
/* Runs f(mgr, a) holding the manager, with hibernation on; a->result, or
 * SHOAL_EINVAL, SHOAL_ESTATE. */
typedef struct shoal__hib_call {
  size_t max;
  long result;
} shoal__hib_call;
long shoal__hib_held(shoal_mgr *mgr, void (*f)(shoal_mgr *, void *),
                     shoal__hib_call *a);

/* pass.c */
/* One session's bytes from the host's hibernate callback, compressed into
 * a record in it->r (it->rc SHOAL__IT_OK); when the record cannot be
 * kept the host gets its bytes back at once (it->user). On ws's thread. */
void shoal__hib_one(shoal_mgr *mgr, shoal__hib_ws *ws, shoal__hib_item *it);
/* A session of a pass or an export whose record was not kept (it->rc
 * not SHOAL__IT_OK): LIVE again, with the host's new pointer when it
 * rebuilt it; counted (refused, failures, too_large) and logged. Under
 * mu, holding. */
void shoal__hib_not_kept(shoal_mgr *mgr, shoal__hib_item *it);
/* A session whose record was made and whose hibernation is undone, after
 * the host's wake gave it->user (it->rc its status): it carries on, LIVE,
 * with that pointer (a release made meanwhile passes it to on_release);
 * the record goes; a failed wake is counted and logged with `why`. Under
 * mu, holding. */
void shoal__hib_bounced(shoal_mgr *mgr, shoal__hib_item *it, const char *why);
/* A pass: up to max idle sessions; how many hibernated. Holding. */
long shoal__hib_pass(shoal_mgr *mgr, size_t max);
/* The hook after each tick: a pass when one is due. Holding. */
void shoal__hib_pass_phase(shoal_mgr *mgr);

/* wake.c */
/* One session's record given back to the host (its wake callback). */
void shoal__hib_wake_one(shoal_mgr *mgr, shoal__hib_ws *ws,
                         shoal__hib_item *it);
/* Wakes every session asked for; how many. Holding, before the tick. */
long shoal__hib_wakes(shoal_mgr *mgr);
/* The hook before each tick. Holding. */
void shoal__hib_wake_phase(shoal_mgr *mgr);

#endif /* SHOAL_HIBERNATE_TABLE_H */
