/* stress_bots.h — the simulated bot population of `shoal stress`
 * (stress_bots.c): the host's and a bot's state, and what the run
 * (stress.c) asks of it. Private to cli/. */
#ifndef SHOAL_CLI_STRESS_BOTS_H
#define SHOAL_CLI_STRESS_BOTS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "cli.h"
#include "stress.h"

/* What a bot sends, per bot per second, and how the server classifies it. */
enum {
  K_SPELL, K_MOVE, K_COMBAT, K_LOOT, K_QUEST, K_GOSSIP, K_CHAT, K_ITEM,
  K_GROUP, K_TRADE, K_AUCTION, K_SAY, K_YELL, K_MAIL, K_COUNT
};

/* Timers and requests of the world, in manager time: an auction price
 * request times out after AUCTION_TIMEOUT_MS (the house ignores one ask in
 * 100: those time out); a quest accepted is due after QUEST_MS (a new
 * quest abandons the one running: its timer is cancelled); a spell's buff
 * on its map expires after BUFF_MS (a map task). */
#define AUCTION_TIMEOUT_MS 1000
#define QUEST_MS 3000
#define BUFF_MS 1500
#define OP_QUEST_DUE 0x120 /* INPLACE: a quest's timer */

/* The flooding client: this bot sends FLOOD_X times every rate, and the
 * manager's rate limits (stress.c's defaults) must hold it. */
#define FLOODER 1u
#define FLOOD_X 10.0

#define GROUP_SIZE 5 /* bots (id − 1) / 5 share group (id − 1) / 5 + 1 */
#define START_GOLD 10000
#define START_ITEMS 20

/* What a bot keeps when it hibernates (checked field by field on wake). */
typedef struct bot_kept {
  uint32_t id;
  uint32_t out_seq, in_seq;
  uint32_t idle_from, idle_until; /* ticks */
  int64_t gold, items;
  uint64_t rng;
  uint64_t updates;
  double acc[K_COUNT];
  shoal_timer_id quest_timer; /* the quest running; 0: none */
  uint32_t quest_no;          /* its number (the timer's packet says it) */
} bot_kept;

typedef struct bot {
  bot_kept k;
  unsigned char *cache; /* AI state the bot rebuilds after a wake */
} bot;

/* A map's state: plain fields, touched only by its MAP handlers and its
 * map update (the map phase serializes them), and an owner word that
 * checks it. */
typedef struct map_state {
  _Atomic uint32_t owner; /* 1 while someone is in the map */
  uint64_t spells, combats, loots, updates;
  int64_t gold_minted, items_minted;
  uint64_t buffs_applied, buffs_expired, buffs_active; /* spells' buffs */
  char pad[64];
} map_state;

typedef struct host {
  const st_args *a;
  map_state *maps;             /* [a->maps] */
  uint32_t *map_of;            /* per id: its map (main thread between
                                  ticks; read by its handlers) */
  _Atomic uint64_t map_owner_violations;
  uint64_t teleports;
  shoal_mgr *mgr;
  shoal_actors *actors;
  shoal_topic *quests;
  uint64_t iters;              /* spin iterations for work_us */
  size_t cache_len;
  double dt_s;
  _Atomic uint32_t tick;       /* the tick being run */
  _Atomic int quiet;           /* bots send nothing (the run's end) */
  /* per id: kept-state hashes, to check wakes; the tick a hibernated
   * bot's idle time ends (0: none) */
  uint64_t *kept_hash;
  uint32_t *wake_at;
  /* counters written from workers */
  _Atomic uint64_t order_violations;
  _Atomic uint64_t state_mismatches;
  _Atomic uint64_t trade_gold_in_flight;
  _Atomic int64_t trade_items_in_flight;
  _Atomic uint64_t trades;
  /* auction price requests (session request-reply): accepted; answers
   * not yet handled (or dropped); the house's ignored asks */
  _Atomic uint64_t auction_requests, auction_outstanding, auction_ignored;
  _Atomic uint64_t auction_dropped;  /* answers the drop hook heard of */
  _Atomic uint64_t buff_failures;    /* buff timers refused */
  _Atomic uint64_t quest_done;       /* quest timers handled */
  _Atomic uint64_t quest_stale;      /* a timer packet not of the quest
                                        running (must stay 0) */
  _Atomic uint64_t quest_delivered;
  /* main-thread counters (MAIN handlers run only there) */
  int64_t gold_to_auction, items_from_auction, items_used;
  uint64_t quest_published, quest_expected;
  uint64_t auction_replies, auction_timeouts; /* answers handled */
  uint64_t quest_timers, quest_abandoned;     /* started, cancelled */
  _Atomic uint64_t alloc_failures;
  /* payloads past a fixed header: chat, say (broadcast) and mail */
  _Atomic uint64_t payload_bad;      /* a body that did not read back */
  _Atomic uint64_t payload_bytes;    /* sent, accepted */
  _Atomic uint32_t largest;          /* the longest payload accepted */
  _Atomic uint64_t said, deliveries; /* broadcasts, and their deliveries */
  _Atomic uint64_t heard;            /* their packets handled */
  _Atomic uint64_t drops[5];         /* by shoal_drop_reason (drop hook) */
  _Atomic uint64_t limit_strays;     /* rate-limited, not the flooder's */
  _Atomic uint64_t flood_handled[K_COUNT]; /* the flooder's, by kind */
} host;

/* Seconds of CLOCK_MONOTONIC. */
double st_now_s(void);
/* Spin iterations that take about work_us microseconds. */
uint64_t st_calibrate(unsigned work_us);
/* A new bot with its AI state, or NULL when memory is short. */
bot *st_bot_new(host *h, uint32_t id, uint64_t seed);
void st_bot_free(bot *b);
/* The manager on rt with the bots' callbacks and hibernation, the actors
 * (auction house, quest topic) and the opcodes; messages through
 * log. CLI_OK or CLI_FAIL (reported). The main thread. */
int st_bots_start(host *h, shoal_runtime *rt, shoal_config *cfg,
                  const cli_log *log);
/* The rate limits `shoal stress` runs with unless its configuration says
 * otherwise: spell and movement 8/s, chat 2/s (a bot sends 2, 2 and
 * 0.2). */
void st_rate_defaults(shoal_config *cfg);
/* Whether the flooder's packets of each limited category stayed within
 * their rate over ms of manager time: 1 yes. */
int st_flood_held(host *h, const shoal_config *cfg, uint64_t ms,
                  char *why, size_t len);

#endif /* SHOAL_CLI_STRESS_BOTS_H */
