/* stress_bots.c — the bot population of `shoal stress`, built on the
 * public API only, as a host builds it: each bot's update runs its AI (a
 * fixed amount of CPU work) and sends the packets a large bot server sees,
 * classified into INPLACE, MAP and MAIN; spells, combat and loot change
 * their map's own state in the map phase, and a spell's buff expires by a
 * map task on a timer; an auction house answers the bots' price requests
 * by session request-reply (with a timeout); a quest runs on a timer of
 * the bot's and a quest topic fans completions out to two subscribers;
 * trades move gold between pairs of
 * bots; chat lines of 20 … 255 bytes, say/yell broadcast to the bot's map
 * and mail of 500 … 4000 bytes to another bot carry payloads past the
 * inline bytes, checked byte for byte; one bot floods (FLOODER) and the
 * manager's rate limits hold it; a share of the bots goes idle,
 * hibernates and wakes again. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "stress_bots.h"

typedef struct kind {
  const char *name;
  uint16_t opcode;
  shoal_packet_class cls;
  shoal_packet_category cat;
  double per_s;
} kind;

static const kind kinds[K_COUNT] = {
  [K_SPELL] = {"spell cast", 0x100, SHOAL_PACKET_MAP, SHOAL_CAT_SPELL, 2.0},
  [K_MOVE] = {"movement", 0x101, SHOAL_PACKET_INPLACE, SHOAL_CAT_MOVEMENT, 2.0},
  [K_COMBAT] = {"combat state", 0x102, SHOAL_PACKET_MAP, SHOAL_CAT_COMBAT,
                0.5},
  [K_LOOT] = {"loot", 0x103, SHOAL_PACKET_MAP, SHOAL_CAT_LOOT, 0.3},
  [K_QUEST] = {"quest", 0x104, SHOAL_PACKET_MAIN, SHOAL_CAT_QUEST, 0.05},
  [K_GOSSIP] = {"gossip", 0x105, SHOAL_PACKET_INPLACE, SHOAL_CAT_GOSSIP, 0.1},
  [K_CHAT] = {"chat", 0x106, SHOAL_PACKET_INPLACE, SHOAL_CAT_CHAT, 0.2},
  [K_ITEM] = {"item use", 0x107, SHOAL_PACKET_MAIN, SHOAL_CAT_ITEM, 0.1},
  [K_GROUP] = {"group", 0x108, SHOAL_PACKET_MAIN, SHOAL_CAT_GROUP, 0.02},
  [K_TRADE] = {"trade", 0x109, SHOAL_PACKET_MAIN, SHOAL_CAT_TRADE, 0.02},
  /* a price request to the auction house; its answer comes back as this
   * packet */
  [K_AUCTION] = {"auction", 0x10A, SHOAL_PACKET_MAIN, SHOAL_CAT_AUCTION,
                 0.05},
  /* a say, broadcast to the bot's group, and a yell, to its map: each bot
   * that hears one gets this packet (category other: a server's event,
   * not the client's chat, so that the chat limit does not apply to what
   * a bot hears; and rare, since a bot that hears is not idle) */
  [K_SAY] = {"say heard", 0x10B, SHOAL_PACKET_INPLACE, SHOAL_CAT_OTHER,
             0.02},
  [K_YELL] = {"yell heard", 0x10D, SHOAL_PACKET_INPLACE, SHOAL_CAT_OTHER,
              0.0002},
  [K_MAIL] = {"mail", 0x10C, SHOAL_PACKET_MAIN, SHOAL_CAT_MAIL, 0.005},
};

#define ID_AUCTION 2
#define ID_QUESTS 3
#define ID_ACHIEVE 4
#define MSG_PRICE_ASK 1
#define MSG_QUEST_DONE 2

/* A packet's payload: the sender's stream and sequence number, and what
 * it carries. */
typedef struct payload {
  uint32_t from;  /* the sending bot (its own session for self packets) */
  uint32_t seq;   /* per sender, increasing */
  int32_t gold;
  int32_t items;
} payload;

static uint64_t rng_next(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

static double rng_unit(uint64_t *s) {
  return (double)(rng_next(s) >> 11) * 0x1.0p-53;
}

static uint64_t fnv(const void *p, size_t n) {
  const unsigned char *b = p;
  uint64_t h = 0xCBF29CE484222325ULL;
  for (size_t i = 0; i < n; i++)
    h = (h ^ b[i]) * 0x100000001B3ULL;
  return h;
}

/* The AI's CPU work: a dependent chain the compiler cannot fold. */
static uint64_t spin(uint64_t iters, uint64_t x) {
  for (uint64_t i = 0; i < iters; i++)
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
  return x;
}

double st_now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

uint64_t st_calibrate(unsigned work_us) {
  uint64_t n = 1u << 20, x = 1;
  double t0, t1;
  if (work_us == 0)
    return 0;
  t0 = st_now_s();
  x = spin(n, x);
  t1 = st_now_s();
  if (x == 42)
    fputc(' ', stderr); /* keeps x */
  return (uint64_t)((double)work_us * 1e-6 / ((t1 - t0) / (double)n)) + 1;
}

static int cache_build(host *h, bot *b) {
  if (h->cache_len == 0)
    return 0;
  if ((b->cache = malloc(h->cache_len)) == NULL) {
    atomic_fetch_add(&h->alloc_failures, 1);
    return -1;
  }
  memset(b->cache, (int)(b->k.id & 0xff) | 1, h->cache_len); /* resident */
  return 0;
}

bot *st_bot_new(host *h, uint32_t id, uint64_t seed) {
  bot *b = calloc(1, sizeof *b);
  if (b == NULL)
    return NULL;
  b->k.id = id;
  b->k.rng = seed ^ ((uint64_t)id * 0x9E3779B97F4A7C15ULL);
  b->k.gold = START_GOLD;
  b->k.items = START_ITEMS;
  for (int k = 0; k < K_COUNT; k++) /* each bot at its own phase */
    b->k.acc[k] = rng_unit(&b->k.rng);
  if (rng_next(&b->k.rng) % 100 < h->a->idle_pct && id != FLOODER) {
    /* idles for 4 … 8 s after 1 … 4 s of play, then again */
    uint32_t tps = h->a->tps;
    b->k.idle_from = tps * (1 + (uint32_t)(rng_next(&b->k.rng) % 4));
    b->k.idle_until = b->k.idle_from +
                      tps * (4 + (uint32_t)(rng_next(&b->k.rng) % 5));
  }
  if (cache_build(h, b) != 0) {
    free(b);
    return NULL;
  }
  return b;
}

void st_bot_free(bot *b) {
  if (b != NULL)
    free(b->cache);
  free(b);
}

static int send_self(host *h, bot *b, int k, int32_t gold, int32_t items) {
  payload p = {b->k.id, ++b->k.out_seq, gold, items};
  return shoal_session_send(h->mgr, b->k.id, kinds[k].opcode, 0, &p,
                            sizeof p);
}

/* A body of len bytes (≥ sizeof(payload)): the header, then bytes that
 * depend on the sender, the number and their place. */
#define BODY_MAX 4000u
static void body_fill(unsigned char *buf, const payload *p, size_t len) {
  memcpy(buf, p, sizeof *p);
  for (size_t i = sizeof *p; i < len; i++)
    buf[i] = (unsigned char)(i * 31u + p->seq + p->from);
}

static int body_ok(const shoal_packet *pk) {
  const unsigned char *b = pk->data;
  payload p;
  if (pk->len < sizeof p || pk->len > BODY_MAX)
    return 0;
  memcpy(&p, b, sizeof p);
  for (size_t i = sizeof p; i < pk->len; i++)
    if (b[i] != (unsigned char)(i * 31u + p.seq + p.from))
      return 0;
  return 1;
}

static void sent_body(host *h, size_t len) {
  uint32_t big = atomic_load_explicit(&h->largest, memory_order_relaxed);
  atomic_fetch_add_explicit(&h->payload_bytes, len, memory_order_relaxed);
  while (len > big && !atomic_compare_exchange_weak(&h->largest, &big,
                                                    (uint32_t)len))
    ;
}

/* A length in lo … hi. */
static size_t body_len(bot *b, size_t lo, size_t hi) {
  return lo + (size_t)(rng_next(&b->k.rng) % (hi - lo + 1));
}

/* A chat line of 20 … 255 bytes into the bot's own session (ordered). */
static void chat(host *h, bot *b) {
  unsigned char buf[255];
  payload p = {b->k.id, ++b->k.out_seq, 0, 0};
  size_t len = body_len(b, 20, 255);
  body_fill(buf, &p, len);
  if (shoal_session_send(h->mgr, b->k.id, kinds[K_CHAT].opcode, 0, buf,
                         len) == SHOAL_OK)
    sent_body(h, len);
}

/* A say (k K_SAY: to every awake bot of its group) or a yell (K_YELL:
 * of its map), but itself. */
static void say(host *h, bot *b, int k) {
  unsigned char buf[200];
  payload p = {b->k.id, 0, 0, 0};
  size_t len = body_len(b, 40, 200);
  shoal_audience to = {k == K_SAY ? SHOAL_TO_GROUP : SHOAL_TO_MAP,
                       k == K_SAY ? (b->k.id - 1) / GROUP_SIZE + 1
                                  : h->map_of[b->k.id],
                       NULL, 0, b->k.id, SHOAL_TO_AWAKE};
  long n;
  p.seq = (uint32_t)rng_next(&b->k.rng);
  body_fill(buf, &p, len);
  if ((n = shoal_mgr_broadcast(h->mgr, &to, kinds[k].opcode, 0, buf, len)) >=
      0) {
    atomic_fetch_add(&h->said, 1);
    atomic_fetch_add(&h->deliveries, (uint64_t)n);
    sent_body(h, len);
  }
}

/* Mail of 500 … 4000 bytes to another bot. */
static void mail(host *h, bot *b) {
  unsigned char buf[BODY_MAX];
  payload p = {b->k.id, 0, 0, 0};
  uint32_t to = 1 + (uint32_t)(rng_next(&b->k.rng) % h->a->sessions);
  size_t len = body_len(b, 500, BODY_MAX);
  p.seq = (uint32_t)rng_next(&b->k.rng);
  body_fill(buf, &p, len);
  if (shoal_session_send(h->mgr, to, kinds[K_MAIL].opcode, 0, buf, len) ==
      SHOAL_OK)
    sent_body(h, len);
}

static void trade(host *h, bot *b) {
  uint32_t n = h->a->sessions;
  uint32_t to = 1 + (uint32_t)(rng_next(&b->k.rng) % n);
  int32_t gold = (int32_t)(rng_next(&b->k.rng) % 50);
  int32_t items = b->k.items > 0 ? 1 : 0;
  payload p = {b->k.id, 0, gold, items};
  if (to == b->k.id || b->k.gold < gold)
    return;
  /* The gold and item leave with the packet; the receiver's handler
   * credits them; a refused send keeps them here. */
  b->k.gold -= gold;
  b->k.items -= items;
  atomic_fetch_add(&h->trade_gold_in_flight, (uint64_t)gold);
  atomic_fetch_add(&h->trade_items_in_flight, items);
  if (shoal_session_send(h->mgr, to, kinds[K_TRADE].opcode, 0, &p,
                         sizeof p) != SHOAL_OK) {
    b->k.gold += gold;
    b->k.items += items;
    atomic_fetch_sub(&h->trade_gold_in_flight, (uint64_t)gold);
    atomic_fetch_sub(&h->trade_items_in_flight, items);
  }
}

/* A price request to the auction house: its answer (or timeout) comes
 * back to the bot's session as a K_AUCTION packet. */
static void ask_price(host *h, bot *b) {
  shoal_msg m;
  memset(&m, 0, sizeof m);
  m.type = MSG_PRICE_ASK;
  m.size = 16;
  m.payload.u64[0] = b->k.id;
  m.payload.u64[1] = rng_next(&b->k.rng) % 1000;
  atomic_fetch_add(&h->auction_outstanding, 1);
  if (shoal_session_request(h->mgr, b->k.id, ID_AUCTION, &m,
                            kinds[K_AUCTION].opcode, AUCTION_TIMEOUT_MS,
                            NULL) == SHOAL_OK)
    atomic_fetch_add(&h->auction_requests, 1);
  else
    atomic_fetch_sub(&h->auction_outstanding, 1);
}

static int on_update(void *h_, uint32_t id, void *user, uint32_t diff_ms) {
  host *h = h_;
  bot *b = user;
  uint32_t tick = atomic_load_explicit(&h->tick, memory_order_relaxed);
  int sent = 0;
  (void)id;
  (void)diff_ms;
  if (b->cache == NULL && cache_build(h, b) != 0)
    return -1; /* quarantined: reported as a failure */
  b->k.updates++;
  if (b->k.idle_until != 0 && tick >= b->k.idle_from) {
    if (tick < b->k.idle_until)
      return 0; /* idle: nothing happens */
    b->k.idle_from = tick + h->a->tps * (1 + (uint32_t)(rng_next(&b->k.rng) % 4));
    b->k.idle_until = b->k.idle_from +
                      h->a->tps * (4 + (uint32_t)(rng_next(&b->k.rng) % 5));
  }
  b->cache[0] = (unsigned char)spin(h->iters, b->k.rng ^ b->cache[0]);
  if (atomic_load_explicit(&h->quiet, memory_order_relaxed))
    return 0; /* the run is over: nothing more happens */
  for (int k = 0; k < K_COUNT; k++) {
    double x = b->k.id == FLOODER && h->a->sessions > 1 ? FLOOD_X : 1.0;
    b->k.acc[k] += kinds[k].per_s * x * h->dt_s * (0.5 + rng_unit(&b->k.rng));
    while (b->k.acc[k] >= 1.0) {
      b->k.acc[k] -= 1.0;
      sent++;
      if (k == K_TRADE)
        trade(h, b);
      else if (k == K_AUCTION)
        ask_price(h, b);
      else if (k == K_CHAT)
        chat(h, b);
      else if (k == K_SAY || k == K_YELL)
        say(h, b, k);
      else if (k == K_MAIL)
        mail(h, b);
      else
        (void)send_self(h, b, k, 0, 0);
    }
  }
  return 1 + sent;
}

static void on_release(void *h, uint32_t id, void *user) {
  (void)h;
  (void)id;
  st_bot_free(user);
}

static long on_hibernate(void *h_, uint32_t id, void *user,
                         shoal_hib_writer *w) {
  host *h = h_;
  bot *b = user;
  long freed = (long)(sizeof *b + h->cache_len);
  if (shoal_hib_write(w, &b->k, sizeof b->k) != SHOAL_OK)
    return -1;
  h->kept_hash[id] = fnv(&b->k, sizeof b->k);
  h->wake_at[id] = b->k.idle_until;
  st_bot_free(b);
  return freed;
}

static int on_wake(void *h_, uint32_t id, const void *blob, size_t len,
                   void **user) {
  host *h = h_;
  bot *b;
  if (len != sizeof b->k || fnv(blob, len) != h->kept_hash[id] ||
      ((const bot_kept *)blob)->id != id) {
    atomic_fetch_add(&h->state_mismatches, 1);
    return -1;
  }
  if ((b = calloc(1, sizeof *b)) == NULL)
    return -1;
  memcpy(&b->k, blob, len);
  *user = b; /* the cache is rebuilt by its next update */
  return 0;
}

/* ---- packet handlers ---------------------------------------------------- */

static void check_order(host *h, bot *b, const shoal_packet *p,
                        payload *out) {
  memcpy(out, p->data, sizeof *out);
  if (out->from != b->k.id)
    return;
  if (b->k.id == FLOODER && p->opcode >= 0x100 && p->opcode < 0x100 + K_COUNT)
    atomic_fetch_add(&h->flood_handled[p->opcode - 0x100], 1);
  if (out->seq <= b->k.in_seq)
    atomic_fetch_add(&h->order_violations, 1);
  b->k.in_seq = out->seq;
}

/* Movement, gossip and chat (on the worker, or behind a deferred packet);
 * spells, combat and groups (the world's state, on the main thread): the
 * order is all the simulation follows of them. */
static int on_ordered(void *h_, uint32_t session, void *user,
                      const shoal_packet *p) {
  payload v;
  (void)session;
  check_order(h_, user, p, &v);
  return 0;
}

/* A chat line: in order, its body intact. */
static int on_chat(void *h_, uint32_t session, void *user,
                   const shoal_packet *p) {
  host *h = h_;
  payload v;
  (void)session;
  check_order(h, user, p, &v);
  if (!body_ok(p))
    atomic_fetch_add(&h->payload_bad, 1);
  return 0;
}

/* A say heard, or a mail received: its body intact. */
static int on_body(void *h_, uint32_t session, void *user,
                   const shoal_packet *p) {
  host *h = h_;
  (void)session;
  (void)user;
  if (!body_ok(p))
    atomic_fetch_add(&h->payload_bad, 1);
  if (p->opcode != kinds[K_MAIL].opcode)
    atomic_fetch_add(&h->heard, 1);
  return 0;
}

/* Every packet shoal drops, by reason; a rate-limited one must be the
 * flooder's. */
static void on_drop(void *h_, uint32_t id, const shoal_packet *p,
                    shoal_drop_reason reason) {
  host *h = h_;
  if ((unsigned)reason < 5)
    atomic_fetch_add(&h->drops[reason], 1);
  if (p->opcode == kinds[K_AUCTION].opcode) {
    atomic_fetch_add(&h->auction_dropped, 1);
    atomic_fetch_sub(&h->auction_outstanding, 1);
  }
  if (reason == SHOAL_DROP_RATE_LIMITED && id != FLOODER)
    atomic_fetch_add(&h->limit_strays, 1);
}

/* A map entered by the thread that runs its turn: nobody else may be
 * in it (the map phase's guarantee, checked). */
static map_state *map_enter(host *h, uint32_t map) {
  map_state *m = &h->maps[map % h->a->maps];
  uint32_t none = 0;
  if (!atomic_compare_exchange_strong_explicit(&m->owner, &none, 1,
                                               memory_order_acquire,
                                               memory_order_relaxed))
    atomic_fetch_add(&h->map_owner_violations, 1);
  return m;
}

static void map_leave(map_state *m) {
  atomic_store_explicit(&m->owner, 0, memory_order_release);
}

/* A buff's end (a map task): in its map's turn. */
static void buff_expire(void *h_, uint32_t map, void *arg) {
  map_state *m = map_enter(h_, map);
  (void)arg;
  m->buffs_active--;
  m->buffs_expired++;
  map_leave(m);
}

/* Spells and combat (MAP): the map's state, unsynchronized. */
static int on_map_packet(void *h_, uint32_t session, void *user,
                         const shoal_packet *p) {
  host *h = h_;
  payload v;
  uint32_t map = h->map_of[session];
  map_state *m = map_enter(h, map);
  check_order(h, user, p, &v);
  if (p->opcode == kinds[K_SPELL].opcode) {
    m->spells++;
    /* its buff on the map, until a map task ends it */
    if (shoal_map_timer_start(h->mgr, map, BUFF_MS, 0, buff_expire, NULL,
                              NULL) == SHOAL_OK) {
      m->buffs_applied++;
      m->buffs_active++;
    } else {
      atomic_fetch_add(&h->buff_failures, 1);
    }
  } else {
    m->combats++;
  }
  map_leave(m);
  return 0;
}

/* Loot (MAP): gold and an item out of the map's loot. */
static int on_loot(void *h_, uint32_t session, void *user,
                   const shoal_packet *p) {
  host *h = h_;
  bot *b = user;
  payload v;
  map_state *m = map_enter(h, h->map_of[session]);
  check_order(h, b, p, &v);
  b->k.gold += 7;
  b->k.items += 1;
  m->gold_minted += 7;
  m->items_minted += 1;
  m->loots++;
  map_leave(m);
  return 0;
}

static void on_map_update(void *h_, uint32_t map, uint32_t diff_ms) {
  host *h = h_;
  map_state *m = map_enter(h, map);
  (void)diff_ms;
  m->updates++;
  map_leave(m);
}

static int on_item(void *h_, uint32_t session, void *user,
                   const shoal_packet *p) {
  host *h = h_;
  bot *b = user;
  payload v;
  (void)session;
  check_order(h, b, p, &v);
  if (b->k.items > 0) {
    b->k.items--;
    h->items_used++;
  }
  return 0;
}

/* A new quest: the one running is abandoned (its timer cancelled), and
 * the new one is due in QUEST_MS. The main thread (a MAIN handler). */
static void quest_start(host *h, bot *b, uint32_t session) {
  uint32_t no = b->k.quest_no + 1;
  if (b->k.quest_timer != 0 &&
      shoal_timer_cancel(h->mgr, b->k.quest_timer) == SHOAL_OK)
    h->quest_abandoned++;
  b->k.quest_timer = 0;
  if (shoal_timer_start(h->mgr, session, QUEST_MS, 0, OP_QUEST_DUE, 0, &no,
                        sizeof no, &b->k.quest_timer) == SHOAL_OK) {
    b->k.quest_no = no;
    h->quest_timers++;
  }
}

static int on_quest(void *h_, uint32_t session, void *user,
                    const shoal_packet *p) {
  host *h = h_;
  payload v;
  shoal_msg m;
  unsigned delivered = 0;
  check_order(h, user, p, &v);
  memset(&m, 0, sizeof m);
  m.type = MSG_QUEST_DONE;
  m.size = 4;
  m.payload.u64[0] = session;
  if (shoal_topic_publish(h->quests, &m, &delivered) == SHOAL_OK) {
    h->quest_published++;
    h->quest_expected += 2;
  }
  quest_start(h, user, session);
  return 0;
}

/* A quest's timer came: the quest running, or a stale one (counted). */
static int on_quest_due(void *h_, uint32_t session, void *user,
                        const shoal_packet *p) {
  host *h = h_;
  bot *b = user;
  uint32_t no;
  (void)session;
  memcpy(&no, p->data, sizeof no);
  if (p->len != sizeof no || no != b->k.quest_no || b->k.quest_timer == 0)
    atomic_fetch_add(&h->quest_stale, 1);
  b->k.quest_timer = 0;
  atomic_fetch_add(&h->quest_done, 1);
  return 0;
}

static int on_trade(void *h_, uint32_t session, void *user,
                    const shoal_packet *p) {
  host *h = h_;
  bot *b = user;
  payload v;
  (void)session;
  memcpy(&v, p->data, sizeof v);
  b->k.gold += v.gold;
  b->k.items += v.items;
  atomic_fetch_sub(&h->trade_gold_in_flight, (uint64_t)v.gold);
  atomic_fetch_sub(&h->trade_items_in_flight, v.items);
  atomic_fetch_add(&h->trades, 1);
  return 0;
}

/* The auction house's answer (a session request's reply: the price in
 * the reply's second word): buy one item at that price when the bot can
 * afford it; or its timeout. */
static int on_auction(void *h_, uint32_t session, void *user,
                      const shoal_packet *p) {
  host *h = h_;
  bot *b = user;
  shoal_msg m;
  (void)session;
  memcpy(&m, p->data, sizeof m);
  if (m.flags & SHOAL_MSG_TIMEOUT) {
    h->auction_timeouts++;
  } else {
    int32_t price = (int32_t)m.payload.u64[1];
    h->auction_replies++;
    if (b->k.gold >= price) {
      b->k.gold -= price;
      b->k.items += 1;
      h->gold_to_auction += price;
      h->items_from_auction += 1;
    }
  }
  atomic_fetch_sub(&h->auction_outstanding, 1);
  return 0;
}

/* ---- actors ------------------------------------------------------------- */

/* The auction house: a price for each ask, but one in 100 it ignores
 * (busy): that request times out. */
static void auction_fn(shoal_actor *self, void *state, const shoal_msg *m) {
  host *h = state;
  shoal_msg r;
  if (m->payload.u64[1] % 100 == 7) {
    atomic_fetch_add(&h->auction_ignored, 1);
    return;
  }
  r = *m;
  r.payload.u64[1] = 50 + m->payload.u64[1] % 200; /* the price */
  (void)shoal_actor_reply(self, m, &r);
}

static void quest_sub_fn(shoal_actor *self, void *state, const shoal_msg *m) {
  host *h = state;
  (void)self;
  if (m->type == MSG_QUEST_DONE)
    atomic_fetch_add(&h->quest_delivered, 1);
}

static int actors_start(host *h) {
  shoal_actor_opts o;
  int rc;
  const struct {
    uint64_t id;
    shoal_actor_fn fn;
    const char *name;
  } list[] = {{ID_AUCTION, auction_fn, "auction house"},
              {ID_QUESTS, quest_sub_fn, "quest tracker"},
              {ID_ACHIEVE, quest_sub_fn, "achievements"}};
  for (size_t i = 0; i < sizeof list / sizeof list[0]; i++) {
    shoal_actor_opts_defaults(&o);
    o.handler = list[i].fn;
    o.state = h;
    o.name = list[i].name;
    o.queue_size = 1u << 16;
    if ((rc = shoal_actor_register(h->actors, list[i].id, &o)) != SHOAL_OK)
      return rc;
  }
  if ((rc = shoal_topic_create(h->actors, &h->quests, 4)) != SHOAL_OK ||
      (rc = shoal_topic_subscribe(h->quests, ID_QUESTS)) != SHOAL_OK ||
      (rc = shoal_topic_subscribe(h->quests, ID_ACHIEVE)) != SHOAL_OK)
    return rc;
  return SHOAL_OK;
}

int st_bots_start(host *h, shoal_runtime *rt, shoal_config *cfg,
                  const cli_log *log) {
  shoal_mgr_callbacks cb = {on_update, on_release, h};
  const shoal_hib_callbacks hc = {on_hibernate, on_wake, NULL};
  int rc;
  if ((rc = shoal_mgr_create(&h->mgr, rt, cfg, &cb)) != SHOAL_OK ||
      (rc = shoal_mgr_set_hibernation(h->mgr, &hc)) != SHOAL_OK ||
      (rc = shoal_mgr_set_hibernation_ms(h->mgr, 2000)) != SHOAL_OK ||
      (rc = shoal_mgr_set_hibernation_hysteresis_ms(h->mgr, 1000)) !=
          SHOAL_OK ||
      (rc = shoal_mgr_set_drop_hook(h->mgr, on_drop)) != SHOAL_OK ||
      (rc = shoal_mgr_set_map_update(h->mgr, on_map_update)) != SHOAL_OK ||
      (rc = shoal_actors_create(&h->actors, rt, &cfg->actors)) !=
          SHOAL_OK ||
      (rc = actors_start(h)) != SHOAL_OK ||
      (rc = shoal_mgr_attach_actors(h->mgr, h->actors)) != SHOAL_OK ||
      (rc = shoal_mgr_register_opcode(h->mgr, OP_QUEST_DUE,
                                      SHOAL_PACKET_INPLACE, SHOAL_CAT_QUEST,
                                      on_quest_due, "quest due")) !=
          SHOAL_OK) {
    fprintf(stderr, "%s: cannot set up the manager: %s\n", ST_PROG,
            log->last_error[0] ? log->last_error : shoal_strerror(rc));
    return CLI_FAIL;
  }
  for (int k = 0; k < K_COUNT; k++) {
    shoal_packet_fn fn = on_ordered;
    if (k == K_LOOT) fn = on_loot;
    if (k == K_SPELL || k == K_COMBAT) fn = on_map_packet;
    if (k == K_ITEM) fn = on_item;
    if (k == K_QUEST) fn = on_quest;
    if (k == K_TRADE) fn = on_trade;
    if (k == K_AUCTION) fn = on_auction;
    if (k == K_CHAT) fn = on_chat;
    if (k == K_SAY || k == K_YELL || k == K_MAIL) fn = on_body;
    if ((rc = shoal_mgr_register_opcode(h->mgr, kinds[k].opcode, kinds[k].cls,
                                        kinds[k].cat, fn, kinds[k].name)) !=
        SHOAL_OK) {
      fprintf(stderr, "%s: %s\n", ST_PROG, shoal_strerror(rc));
      return CLI_FAIL;
    }
  }
  return CLI_OK;
}

void st_rate_defaults(shoal_config *cfg) {
  cfg->rate_limit[SHOAL_CAT_SPELL] = 8;
  cfg->rate_limit[SHOAL_CAT_MOVEMENT] = 8;
  cfg->rate_limit[SHOAL_CAT_CHAT] = 2;
}

int st_flood_held(host *h, const shoal_config *cfg, uint64_t ms,
                  char *why, size_t len) {
  int held = 1;
  why[0] = '\0';
  for (int k = 0; k < K_COUNT; k++) {
    uint64_t rate = cfg->rate_limit[kinds[k].cat], depth, bound, got;
    if (rate == 0)
      continue;
    depth = rate * cfg->rate_burst_ms / 1000;
    /* a bucket full at the start, then one packet per 1/rate s */
    bound = (depth > 0 ? depth : 1) + rate * ms / 1000 + 1;
    got = atomic_load(&h->flood_handled[k]);
    if (got > bound) {
      size_t n = strlen(why);
      snprintf(why + n, len - n, "%s%s: %llu handled, at most %llu allowed",
               n ? "; " : "", kinds[k].name, (unsigned long long)got,
               (unsigned long long)bound);
      held = 0;
    }
  }
  return held;
}
