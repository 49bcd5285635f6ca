/* host.c — a small game-server host embedding shoal: a main loop at 20 ticks
 * per second, a network thread that reads framed packets from a socket and
 * sends them to sessions from outside the runtime, spell casts on each
 * map's own state in the update's map phase (maps in parallel, each map
 * on one thread, with its map update), main-thread handlers run each
 * tick, idle sessions hibernated and woken, and a clean shutdown on
 * SIGINT / SIGTERM or after --ticks. Chat lines longer than a packet's
 * inline bytes are handed to shoal with their buffers (send_owned) and
 * heard by the map (a broadcast); players log out and in again while
 * packets are in flight to them, asleep or awake (their state saved from
 * on_release, or from the hibernated bytes). At the end it checks that
 * every packet is accounted for, every chat buffer freed once, each
 * session's packets ran in order and no gold was made or lost. Each loot
 * is also a bid to an auction-house actor (one in 100 traced); with
 * --console stdin an operator types "actors status", "actors queue
 * auction", "actors trace ID" or "workers N", one command run per tick.
 * Each second the host sizes its runtime to its load: a worker more when
 * the second's worst tick took over half its budget, one less (down to
 * two) when under a tenth. Exit status 0 when all holds, 1 when not, 2 on
 * bad flags.
 *
 * Build outside the tree with:
 *   cc -std=c11 -pthread host.c $(pkg-config --cflags --libs shoal) */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <shoal.h>

enum { TPS = 20, TICK_MS = 1000 / TPS, START_GOLD = 100, WORLD_GOLD = 1000000 };
enum { MAPS = 4, FRAME_MAX = 4096, CHAT_MIN = 100, CHAT_MAX = 400 };

/* The opcodes of this little game and where they may run; OP_HEAR is what
 * a chat line's broadcast delivers to the others of the map. */
enum { OP_MOVE = 1, OP_CAST = 2, OP_LOOT = 3, OP_CHAT = 4, OP_HEAR = 5 };

/* On the wire: a header, then len payload bytes (at most FRAME_MAX). */
typedef struct frame_head {
  uint32_t session;
  uint16_t opcode;
  uint16_t len;
} frame_head;

/* What each packet carries: the client's sequence number for its session,
 * and an amount (gold looted, distance moved). */
typedef struct move_msg {
  uint32_t seq;
  uint32_t amount;
} move_msg;

/* A player's state: what the host keeps per session. All of it survives
 * hibernation (it is small); a real host would drop its caches. */
typedef struct player {
  uint32_t id;
  uint32_t last_seq; /* the last packet's sequence number: order check */
  int64_t gold;
  int64_t x;
  uint32_t casts;
  uint32_t work; /* packets since the last update: its activity */
} player;

typedef struct host {
  shoal_mgr *mgr;
  unsigned sessions;
  /* The world: touched by main-thread handlers only, so it needs no lock. */
  int64_t world_gold;
  /* Each map's state: touched only by its MAP handlers and its map
   * update, which the map phase serializes; the owner word checks it. */
  struct world_map {
    _Atomic uint32_t owner;
    uint64_t casts, updates, respawns;
  } maps[MAPS + 1];
  _Atomic uint64_t map_overlaps;
  _Atomic uint64_t order_violations; /* any handler's thread */
  _Atomic uint64_t wake_failures;
  /* the network side */
  int sock[2]; /* [0] the clients write, [1] the network thread reads */
  atomic_int clients_stop;
  uint64_t frames, bad_frames, unknown_session, backpressure;
  uint64_t client_frames;
  /* chat: buffers handed to shoal, and given back (any thread) */
  _Atomic uint64_t chat_buffers, chat_freed, chat_bad;
  _Atomic uint64_t said, heard;   /* broadcasts and what they delivered */
  _Atomic uint64_t drops[8];      /* by shoal_drop_reason */
  _Atomic uint64_t hear_dropped;  /* heard lines dropped at a logout */
  /* logouts: each logged-out player's gold, kept until it logs in */
  int64_t *saved_gold;            /* [sessions + 1]; main thread */
  uint64_t logouts, asleep_logouts;
  /* the auction house: an actor each loot bids to (main thread sends),
   * with one bid in 100 traced for the console */
  shoal_actors *actors;
  uint64_t bids, bids_refused;
  _Atomic uint64_t bids_seen;
  /* the operator's console (--console stdin): lines read by a thread,
   * one run per tick by the main loop */
  pthread_mutex_t con_mu;
  char con_line[16][128];
  unsigned con_head, con_tail;
  unsigned grown, shrunk; /* resizes, the host's own and the console's */
} host;

enum { AUCTION = 1 };

static volatile sig_atomic_t g_stop;

static void on_signal(int sig) {
  (void)sig;
  g_stop = 1;
}

static void log_to_stderr(void *user, shoal_log_level level, const char *msg) {
  static const char *const names[] = {"error", "warn", "info", "debug"};
  (void)user;
  fprintf(stderr, "shoal %s: %s\n", names[level & 3], msg);
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t rng(uint64_t *s) { /* splitmix64 */
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* ---- packet handlers ------------------------------------------------------ */

static int check_order(host *h, player *p, const shoal_packet *pk,
                       move_msg *m) {
  if (pk->len < sizeof *m || (pk->opcode != OP_CHAT && pk->len != sizeof *m))
    return -1;
  memcpy(m, pk->data, sizeof *m);
  if (m->seq <= p->last_seq)
    atomic_fetch_add(&h->order_violations, 1);
  p->last_seq = m->seq;
  p->work++;
  return 0;
}

/* INPLACE: runs on the worker updating the session; touches only it. */
static int on_move(void *hp, uint32_t id, void *user, const shoal_packet *pk) {
  player *p = user;
  move_msg m;
  (void)id;
  if (check_order(hp, p, pk, &m) < 0)
    return -1;
  p->x += m.amount;
  return 0;
}

/* The map player id is on: the mostly idle last quarter on a map of its
 * own, where nobody chats (see login). */
static uint32_t map_of(const host *h, uint32_t id) {
  return id > h->sessions - h->sessions / 4 ? MAPS : id % MAPS;
}

static struct world_map *map_enter(host *h, uint32_t map) {
  uint32_t none = 0;
  if (!atomic_compare_exchange_strong(&h->maps[map].owner, &none, 1))
    atomic_fetch_add(&h->map_overlaps, 1); /* cannot happen: checked */
  return &h->maps[map];
}

static void map_leave(struct world_map *m) {
  atomic_store(&m->owner, 0);
}

/* MAP: runs in the update's map phase, on the thread that has the
 * player's map: the map's state needs no lock. */
static int on_cast(void *hp, uint32_t id, void *user, const shoal_packet *pk) {
  host *h = hp;
  player *p = user;
  move_msg m;
  struct world_map *wm;
  if (check_order(h, p, pk, &m) < 0)
    return -1;
  wm = map_enter(h, map_of(h, id));
  p->casts++;
  wm->casts++;
  map_leave(wm);
  return 0;
}

/* The map's own update, after its MAP packets, in the same turn. */
static void on_map_update(void *hp, uint32_t map, uint32_t diff_ms) {
  host *h = hp;
  struct world_map *wm;
  (void)diff_ms;
  if (map > MAPS)
    return;
  wm = map_enter(h, map);
  wm->updates++;
  map_leave(wm);
}

/* A map task on a timer (every RESPAWN_MS of manager time): in the map's
 * turn, so it touches the map's state as its packets do. */
enum { RESPAWN_MS = 1000 };
static void on_respawn(void *hp, uint32_t map, void *arg) {
  struct world_map *wm = map_enter(hp, map);
  (void)arg;
  wm->respawns++;
  map_leave(wm);
}

static int on_loot(void *hp, uint32_t id, void *user, const shoal_packet *pk) {
  host *h = hp;
  player *p = user;
  move_msg m;
  (void)id;
  if (check_order(h, p, pk, &m) < 0)
    return -1;
  if (h->world_gold >= m.amount) { /* gold moves, never appears */
    h->world_gold -= m.amount;
    p->gold += m.amount;
  }
  if (h->actors != NULL) { /* and the auction house hears of it */
    shoal_msg bid;
    memset(&bid, 0, sizeof bid);
    bid.payload.u64[0] = m.amount;
    if (shoal_try_send(h->actors, AUCTION, &bid) == SHOAL_OK)
      h->bids++;
    else
      h->bids_refused++;
  }
  return 0;
}

static void on_bid(shoal_actor *self, void *state, const shoal_msg *m) {
  host *h = state;
  (void)self;
  (void)m;
  atomic_fetch_add(&h->bids_seen, 1);
}

/* ---- the operator's console ------------------------------------------- */

static void *console_main(void *arg) {
  host *h = arg;
  char line[128];
  while (fgets(line, sizeof line, stdin) != NULL) {
    line[strcspn(line, "\r\n")] = '\0';
    pthread_mutex_lock(&h->con_mu);
    if (h->con_tail - h->con_head < 16)
      memcpy(h->con_line[h->con_tail++ % 16], line, sizeof line);
    pthread_mutex_unlock(&h->con_mu);
  }
  return NULL;
}

static void console_print(void *user, unsigned depth, const char *line) {
  (void)user;
  (void)depth;
  printf("console: %s\n", line);
}

/* The runtime on n workers (main thread, between ticks): 0 or an error. */
static int resize(host *h, unsigned n, const char *why) {
  shoal_runtime *rt = shoal_mgr_runtime(h->mgr);
  unsigned was = shoal_runtime_workers(rt);
  uint64_t t0 = now_ns();
  int rc = shoal_mgr_set_workers(h->mgr, n);
  if (rc != SHOAL_OK)
    return rc;
  h->grown += n > was;
  h->shrunk += n < was;
  printf("workers: %u now (was %u, %s), changed in %.0f us\n", n, was, why,
         (double)(now_ns() - t0) / 1e3);
  return SHOAL_OK;
}

/* One command, if one waits: "actors status", "actors queue ACTOR",
 * "actors trace ID", "workers N", "help". Main thread, between ticks. */
static void console_run(host *h) {
  char line[128];
  int have, rc;
  pthread_mutex_lock(&h->con_mu);
  have = h->con_head != h->con_tail;
  if (have)
    memcpy(line, h->con_line[h->con_head++ % 16], sizeof line);
  pthread_mutex_unlock(&h->con_mu);
  if (!have || line[0] == '\0')
    return;
  printf("console: > %s\n", line);
  if (strncmp(line, "actors ", 7) == 0) {
    rc = shoal_actors_report(h->actors, line + 7, console_print, NULL);
    if (rc != SHOAL_OK)
      printf("console: %s: %s\n", line, shoal_strerror(rc));
  } else if (strncmp(line, "workers ", 8) == 0) {
    char *end;
    unsigned long n = strtoul(line + 8, &end, 10);
    rc = *end != '\0' || end == line + 8 ? SHOAL_EINVAL
                                         : resize(h, (unsigned)n, "console");
    if (rc != SHOAL_OK)
      printf("console: %s: %s (at most %u)\n", line, shoal_strerror(rc),
             shoal_runtime_workers_max(shoal_mgr_runtime(h->mgr)));
  } else if (strcmp(line, "help") == 0) {
    printf("console: actors status | actors queue ACTOR | actors trace ID | "
           "workers N\n");
  } else {
    printf("console: unknown command '%s'; try help\n", line);
  }
  fflush(stdout);
}

/* A chat line's text: bytes that depend on its sequence number. */
static unsigned char chat_byte(uint32_t seq, size_t i) {
  return (unsigned char)('a' + (seq + i) % 26);
}

static int text_ok(const shoal_packet *pk, uint32_t seq) {
  const unsigned char *b = pk->data;
  for (size_t i = sizeof(move_msg); i < pk->len; i++)
    if (b[i] != chat_byte(seq, i))
      return 0;
  return 1;
}

/* INPLACE: a chat line (in its buffer, past the inline bytes), checked and
 * said to the awake players of the speaker's map: one broadcast, its text
 * shared by every packet it delivers. */
static int on_chat(void *hp, uint32_t id, void *user, const shoal_packet *pk) {
  host *h = hp;
  move_msg m;
  shoal_audience to = {SHOAL_TO_MAP, id % MAPS, NULL, 0, id, SHOAL_TO_AWAKE};
  long n;
  if (check_order(h, user, pk, &m) < 0 || !text_ok(pk, m.seq)) {
    atomic_fetch_add(&h->chat_bad, 1);
    return -1;
  }
  if ((n = shoal_mgr_broadcast(h->mgr, &to, OP_HEAR, 0, pk->data, pk->len)) >=
      0)
    atomic_fetch_add(&h->said, 1);
  return 0;
}

static int on_hear(void *hp, uint32_t id, void *user, const shoal_packet *pk) {
  host *h = hp;
  move_msg m;
  (void)id;
  (void)user;
  memcpy(&m, pk->data, sizeof m);
  if (!text_ok(pk, m.seq))
    atomic_fetch_add(&h->chat_bad, 1);
  atomic_fetch_add(&h->heard, 1);
  return 0;
}

/* Every packet shoal drops after taking it: logouts drop what was on its
 * way to the player. Any thread (the releasing one here: the main). */
static void on_drop(void *hp, uint32_t id, const shoal_packet *pk,
                    shoal_drop_reason reason) {
  host *h = hp;
  (void)id;
  atomic_fetch_add(&h->drops[reason & 7], 1);
  if (pk->opcode == OP_HEAR)
    atomic_fetch_add(&h->hear_dropped, 1);
}

/* A chat buffer handed over with send_owned comes back here once. */
static void free_chat(void *hp, void *data) {
  host *h = hp;
  free(data);
  atomic_fetch_add(&h->chat_freed, 1);
}

/* ---- session callbacks ---------------------------------------------------- */

/* On a worker (or the main thread inside shoal_mgr_update), never for one
 * session on two threads at once. Returns its activity: 0 lets it go idle
 * and hibernate. */
static int on_update(void *hp, uint32_t id, void *user, uint32_t diff_ms) {
  player *p = user;
  int work = (int)p->work;
  (void)hp;
  (void)id;
  (void)diff_ms;
  p->work = 0;
  return work;
}

/* A logout (or the shutdown): the player's gold is saved. NULL when it was
 * hibernated: on_hib_release saved it from its bytes just before. */
static void on_release(void *hp, uint32_t id, void *user) {
  host *h = hp;
  player *p = user;
  if (p != NULL && id <= h->sessions)
    h->saved_gold[id] += p->gold;
  free(p);
}

static void on_hib_release(void *hp, uint32_t id, const void *blob,
                           size_t len) {
  host *h = hp;
  player p;
  if (blob == NULL || len != sizeof p || id > h->sessions) {
    atomic_fetch_add(&h->wake_failures, 1); /* state lost: counted */
    return;
  }
  memcpy(&p, blob, sizeof p);
  h->saved_gold[id] += p.gold;
  h->asleep_logouts++;
}

static long on_hibernate(void *hp, uint32_t id, void *user,
                         shoal_hib_writer *w) {
  (void)hp;
  (void)id;
  if (shoal_hib_write(w, user, sizeof(player)) != SHOAL_OK)
    return -1; /* refused: it stays active and nothing was freed */
  free(user);
  return (long)sizeof(player);
}

static int on_wake(void *hp, uint32_t id, const void *blob, size_t len,
                   void **user) {
  host *h = hp;
  player *p;
  if (len != sizeof *p || (p = malloc(sizeof *p)) == NULL) {
    atomic_fetch_add(&h->wake_failures, 1);
    return -1; /* stays hibernated; a later wake tries again */
  }
  memcpy(p, blob, sizeof *p);
  if (p->id != id) {
    free(p);
    atomic_fetch_add(&h->wake_failures, 1);
    return -1;
  }
  *user = p;
  return 0;
}

/* ---- the network side ----------------------------------------------------- */

static int write_all(int fd, const void *buf, size_t len) {
  const char *b = buf;
  while (len > 0) {
    ssize_t k = write(fd, b, len);
    if (k < 0 && errno == EINTR)
      continue;
    if (k <= 0)
      return -1;
    b += k;
    len -= (size_t)k;
  }
  return 0;
}

/* The clients: about 60 packets per second per session to three quarters
 * of the sessions, in bursts every 10 ms. The last quarter is mostly idle:
 * one of them gets a packet every 40 ms, so they hibernate and a packet
 * wakes them. Now and then a frame for a session that does not exist. */
static void *clients_main(void *arg) {
  host *h = arg;
  unsigned active = h->sessions - h->sessions / 4;
  uint32_t *seq = calloc(h->sessions + 1, sizeof *seq);
  uint64_t s = 42;
  struct timespec next;
  unsigned burst = active * 60 / 100 + 1;
  clock_gettime(CLOCK_MONOTONIC, &next);
  for (unsigned n = 0; seq != NULL && !atomic_load(&h->clients_stop); n++) {
    for (unsigned i = 0; i <= burst; i++) {
      struct {
        frame_head fh;
        move_msg m;
        unsigned char text[CHAT_MAX];
      } f;
      size_t len = sizeof f.m;
      uint64_t r = rng(&s);
      uint32_t id = 1 + (uint32_t)(r % active);
      if (i == burst) { /* the idle quarter's packet */
        if (n % 4 != 0)
          break;
        id = active + 1 + (uint32_t)(r % (h->sessions - active));
      }
      f.fh.opcode = (r >> 32) % 20 < 11  ? OP_MOVE
                    : (r >> 32) % 20 < 17 ? OP_CAST
                    : (r >> 32) % 20 < 19 ? OP_LOOT
                                          : OP_CHAT;
      if ((r >> 40) % 1000 == 0)
        id = h->sessions + 1 + (uint32_t)(r % 1000); /* no such session */
      f.fh.session = id;
      f.m.seq = id <= h->sessions ? ++seq[id] : 1;
      f.m.amount = 1 + (uint32_t)((r >> 48) % 5);
      if (i == burst && f.fh.opcode == OP_CHAT)
        f.fh.opcode = OP_MOVE; /* the idle quarter does not chat */
      if (f.fh.opcode == OP_CHAT) {
        len = sizeof f.m + CHAT_MIN - sizeof f.m +
              (size_t)((r >> 20) % (CHAT_MAX - CHAT_MIN + 1));
        for (size_t k = sizeof f.m; k < len; k++)
          f.text[k - sizeof f.m] = chat_byte(f.m.seq, k);
      }
      f.fh.len = (uint16_t)len;
      if (write_all(h->sock[0], &f, sizeof f.fh + len) < 0)
        goto out;
      h->client_frames++;
    }
    next.tv_nsec += 10 * 1000000L;
    if (next.tv_nsec >= 1000000000L) {
      next.tv_nsec -= 1000000000L;
      next.tv_sec++;
    }
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) ==
           EINTR)
      ;
  }
out:
  free(seq);
  shutdown(h->sock[0], SHUT_WR); /* the network thread reads EOF */
  return NULL;
}

static int read_all(int fd, void *buf, size_t len) {
  char *b = buf;
  while (len > 0) {
    ssize_t k = read(fd, b, len);
    if (k < 0 && errno == EINTR)
      continue;
    if (k <= 0)
      return -1; /* EOF or error */
    b += k;
    len -= (size_t)k;
  }
  return 0;
}

/* The network thread: outside the runtime, it blocks on its socket and
 * hands each frame to shoal without blocking: a short one copied
 * (shoal_session_send), a long one read into a buffer of its own whose
 * ownership passes to shoal (shoal_session_send_owned: free_chat gives it
 * back once, whatever becomes of the packet). */
static void *net_main(void *arg) {
  host *h = arg;
  frame_head fh;
  unsigned char small[SHOAL_PACKET_INLINE_MAX];
  while (read_all(h->sock[1], &fh, sizeof fh) == 0) {
    unsigned char *buf = small;
    int rc;
    if (fh.len > FRAME_MAX) { /* a framing error ends the connection */
      h->bad_frames++;
      break;
    }
    if (fh.len > sizeof small && (buf = malloc(fh.len)) == NULL)
      break;
    if (read_all(h->sock[1], buf, fh.len) < 0) {
      if (buf != small)
        free(buf);
      break;
    }
    h->frames++;
    if (buf != small) {
      atomic_fetch_add(&h->chat_buffers, 1);
      rc = shoal_session_send_owned(h->mgr, fh.session, fh.opcode, 0, buf,
                                    fh.len, free_chat, h);
    } else {
      rc = shoal_session_send(h->mgr, fh.session, fh.opcode, 0, buf, fh.len);
    }
    if (rc == SHOAL_ENOENT)
      h->unknown_session++;
    else if (rc == SHOAL_EAGAIN)
      h->backpressure++; /* a real server would slow the client down */
    else if (rc != SHOAL_OK)
      h->bad_frames++;
  }
  return NULL;
}

/* ---- logins and logouts ---------------------------------------------------- */

/* Player id logs in with the gold saved for it, on map id % MAPS; the
 * mostly idle last quarter on a map of its own, where nobody chats, so
 * that they sleep (a player who hears a line is not idle). The main
 * thread. */
static int login(host *h, uint32_t id) {
  player *p = calloc(1, sizeof *p);
  int rc;
  if (p == NULL)
    return SHOAL_ENOMEM;
  p->id = id;
  p->gold = h->saved_gold[id];
  if ((rc = shoal_session_create(h->mgr, id, p)) != SHOAL_OK ||
      (rc = shoal_session_set_map(h->mgr, id, map_of(h, id))) != SHOAL_OK) {
    fprintf(stderr, "host: session %u: %s\n", id, shoal_strerror(rc));
    if (shoal_session_get(h->mgr, id, NULL) != SHOAL_OK)
      free(p);
    return rc;
  }
  h->saved_gold[id] = 0;
  return SHOAL_OK;
}

static int logged_out(const uint32_t *away, size_t n, uint32_t id) {
  for (size_t k = 0; k < n; k++)
    if (away[k] == id)
      return 1;
  return 0;
}

/* Those who left last time log in again; two others leave now, awake or
 * asleep, with whatever the network thread has sent them meanwhile (their
 * packets are dropped, their chat buffers freed, the drop hook told). */
static void logouts(host *h, uint64_t *s, uint32_t *away, size_t *n) {
  for (size_t k = 0; k < *n; k++)
    (void)login(h, away[k]);
  *n = 0;
  for (int k = 0; k < 2; k++) {
    uint32_t id = 1 + (uint32_t)(rng(s) % h->sessions);
    if (logged_out(away, *n, id) ||
        shoal_session_release(h->mgr, id) != SHOAL_OK)
      continue;
    away[(*n)++] = id;
    h->logouts++;
  }
}

/* ---- main ----------------------------------------------------------------- */

static int parse_uint(const char *flag, const char *v, unsigned lo,
                      unsigned hi, unsigned *out) {
  char *end;
  unsigned long x;
  errno = 0;
  x = v != NULL ? strtoul(v, &end, 10) : 0;
  if (v == NULL || *v == '\0' || *v == '-' || *end != '\0' || errno != 0 ||
      x < lo || x > hi) {
    fprintf(stderr, "host: %s needs a number from %u to %u\n", flag, lo, hi);
    return -1;
  }
  *out = (unsigned)x;
  return 0;
}

static int usage(void) {
  fprintf(stderr, "usage: host [--sessions N] [--ticks N] [--workers N] "
                  "[--config FILE] [--console stdin]\n");
  return 2;
}

/* The auction house first: it runs on the manager's runtime. */
static void teardown(host *h) {
  shoal_actors_destroy(h->actors);
  shoal_mgr_destroy(h->mgr);
}

int main(int argc, char **argv) {
  host h;
  shoal_config cfg;
  shoal_mgr_callbacks cb = {on_update, on_release, &h};
  shoal_hib_callbacks hib = {on_hibernate, on_wake, on_hib_release};
  shoal_packet_stats ps;
  shoal_hib_stats hs;
  pthread_t net, clients;
  struct sigaction sa;
  struct timespec next;
  const char *config = NULL;
  int console = 0;
  unsigned ticks = 100, workers = 0, ran = 0, drained_ticks = 0;
  uint32_t away[4];
  size_t naway = 0;
  uint64_t out_rng = 7;
  uint64_t worst_ns = 0, second_worst_ns = 0;
  int64_t gold = 0;
  uint64_t casts = 0, map_updates = 0, respawns = 0, respawns_due;
  char err[256];
  int rc, ok;

  memset(&h, 0, sizeof h);
  h.sessions = 500;
  for (int i = 1; i < argc; i += 2) { /* every flag takes a value */
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(argv[i], "--sessions") == 0)
      rc = parse_uint(argv[i], v, 4, 100000, &h.sessions);
    else if (strcmp(argv[i], "--ticks") == 0)
      rc = parse_uint(argv[i], v, 1, 1000000, &ticks);
    else if (strcmp(argv[i], "--workers") == 0)
      rc = parse_uint(argv[i], v, 0, 1024, &workers);
    else if (strcmp(argv[i], "--config") == 0 && v != NULL)
      config = v, rc = 0;
    else if (strcmp(argv[i], "--console") == 0 && v != NULL &&
             strcmp(v, "stdin") == 0)
      console = 1, rc = 0;
    else
      return usage();
    if (rc < 0)
      return 2;
  }

  /* Configuration: defaults, then the host's file, then the environment;
   * a bad key or value names itself and nothing is applied. */
  shoal_config_defaults(&cfg);
  cfg.log = log_to_stderr;
  if (config != NULL &&
      (rc = shoal_config_load(&cfg, config, err, sizeof err)) != SHOAL_OK) {
    fprintf(stderr, "host: %s\n", err);
    return 2;
  }
  if ((rc = shoal_config_apply_env(&cfg, err, sizeof err)) != SHOAL_OK) {
    fprintf(stderr, "host: %s\n", err);
    return 2;
  }
  if (workers > 0)
    cfg.worker_threads = workers;
  /* This host's MAIN handlers touch the world without a lock: they must
   * run on the main thread, whatever the file says. */
  cfg.defer_packets = 1;
  if (cfg.max_sessions < h.sessions)
    cfg.max_sessions = h.sessions;

  /* The manager creates its own runtime (rt NULL) and destroys it. */
  if ((rc = shoal_mgr_create(&h.mgr, NULL, &cfg, &cb)) != SHOAL_OK) {
    fprintf(stderr, "host: manager: %s\n", shoal_strerror(rc));
    return 1;
  }
  if (shoal_mgr_register_opcode(h.mgr, OP_MOVE, SHOAL_PACKET_INPLACE,
                                SHOAL_CAT_MOVEMENT, on_move, "own state") ||
      shoal_mgr_register_opcode(h.mgr, OP_CAST, SHOAL_PACKET_MAP,
                                SHOAL_CAT_SPELL, on_cast, "map state") ||
      shoal_mgr_set_map_update(h.mgr, on_map_update) ||
      shoal_mgr_register_opcode(h.mgr, OP_LOOT, SHOAL_PACKET_MAIN,
                                SHOAL_CAT_LOOT, on_loot, "world gold") ||
      shoal_mgr_register_opcode(h.mgr, OP_CHAT, SHOAL_PACKET_INPLACE,
                                SHOAL_CAT_CHAT, on_chat, "said to the map") ||
      shoal_mgr_register_opcode(h.mgr, OP_HEAR, SHOAL_PACKET_INPLACE,
                                SHOAL_CAT_CHAT, on_hear, "a line heard") ||
      shoal_mgr_set_drop_hook(h.mgr, on_drop) ||
      shoal_mgr_set_hibernation(h.mgr, &hib) ||
      /* Seconds instead of the configured minutes, so that a short run
       * shows sessions going to sleep and waking. */
      shoal_mgr_set_hibernation_ms(h.mgr, 1000) ||
      shoal_mgr_set_hibernation_hysteresis_ms(h.mgr, 500)) {
    fprintf(stderr, "host: setting up the manager failed\n");
    shoal_mgr_destroy(h.mgr);
    return 1;
  }
  /* The auction house, on the manager's runtime. */
  {
    shoal_actors_config ac;
    shoal_actor_opts o;
    ac = cfg.actors; /* [Actors.*] of the file and the environment */
    ac.log = log_to_stderr;
    if (ac.trace_ring == 0)
      ac.trace_ring = 4096;
    if (ac.trace_every == 0)
      ac.trace_every = 100;
    shoal_actor_opts_defaults(&o);
    o.handler = on_bid;
    o.state = &h;
    o.name = "auction";
    if (shoal_actors_create(&h.actors, shoal_mgr_runtime(h.mgr), &ac) !=
            SHOAL_OK ||
        shoal_actor_register(h.actors, AUCTION, &o) != SHOAL_OK) {
      fprintf(stderr, "host: the auction house failed\n");
      shoal_mgr_destroy(h.mgr);
      return 1;
    }
  }
  pthread_mutex_init(&h.con_mu, NULL);
  if (console) { /* never joined: it may wait on a terminal at exit */
    pthread_t con;
    if (pthread_create(&con, NULL, console_main, &h) == 0)
      pthread_detach(con);
  }
  for (uint32_t m = 0; m <= MAPS; m++) /* every map respawns each second */
    if (shoal_map_timer_start(h.mgr, m, RESPAWN_MS, RESPAWN_MS, on_respawn,
                              NULL, NULL) != SHOAL_OK) {
      fprintf(stderr, "host: a map's timer failed\n");
      teardown(&h);
      return 1;
    }
  h.world_gold = WORLD_GOLD;
  if ((h.saved_gold = calloc(h.sessions + 1, sizeof *h.saved_gold)) == NULL) {
    teardown(&h);
    return 1;
  }
  for (uint32_t id = 1; id <= h.sessions; id++) {
    h.saved_gold[id] = START_GOLD;
    if (login(&h, id) != SHOAL_OK)
      break;
  }

  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, h.sock) != 0 ||
      pthread_create(&net, NULL, net_main, &h) != 0) {
    fprintf(stderr, "host: cannot start the network thread\n");
    teardown(&h);
    return 1;
  }
  if (pthread_create(&clients, NULL, clients_main, &h) != 0) {
    shutdown(h.sock[0], SHUT_WR);
    pthread_join(net, NULL);
    teardown(&h);
    return 1;
  }

  /* The main loop: one update, then the main-thread packets with the world,
   * then sleep to the next tick (an absolute deadline, so ticks don't
   * drift; a tick that overran starts the next at once). */
  printf("host: running %u sessions at %d ticks per second; SIGINT or "
         "SIGTERM stops it\n",
         h.sessions, TPS);
  fflush(stdout);
  clock_gettime(CLOCK_MONOTONIC, &next);
  for (; ran < ticks && !g_stop; ran++) {
    uint64_t t0 = now_ns(), dt;
    if (ran % 10 == 5) /* players leave with packets on their way */
      logouts(&h, &out_rng, away, &naway);
    if ((rc = shoal_mgr_update(h.mgr, TICK_MS)) != SHOAL_OK)
      fprintf(stderr, "host: update: %s\n", shoal_strerror(rc));
    (void)shoal_mgr_drain_deferred(h.mgr, 0, NULL);
    console_run(&h);
    dt = now_ns() - t0;
    worst_ns = dt > worst_ns ? dt : worst_ns;
    second_worst_ns = dt > second_worst_ns ? dt : second_worst_ns;
    if (ran % TPS == TPS - 1) { /* the runtime sized to the load */
      shoal_runtime *rt = shoal_mgr_runtime(h.mgr);
      unsigned n = shoal_runtime_workers(rt);
      if (second_worst_ns > TICK_MS * 1000000ull / 2 &&
          n < shoal_runtime_workers_max(rt))
        (void)resize(&h, n + 1, "ticks over half their budget");
      else if (second_worst_ns < TICK_MS * 1000000ull / 10 && n > 2)
        (void)resize(&h, n - 1, "ticks under a tenth of their budget");
      second_worst_ns = 0;
    }
    next.tv_nsec += TICK_MS * 1000000L;
    if (next.tv_nsec >= 1000000000L) {
      next.tv_nsec -= 1000000000L;
      next.tv_sec++;
    }
    if (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == 0 &&
        now_ns() - t0 > 2u * TICK_MS * 1000000u)
      clock_gettime(CLOCK_MONOTONIC, &next);
  }

  /* Shutdown: stop the clients, let the network thread read to the end,
   * then tick until every packet held has run (progress, not time, ends
   * it), wake everyone and count the gold. */
  atomic_store(&h.clients_stop, 1);
  pthread_join(clients, NULL);
  pthread_join(net, NULL);
  close(h.sock[0]);
  close(h.sock[1]);
  do {
    (void)shoal_mgr_update(h.mgr, TICK_MS);
    (void)shoal_mgr_drain_deferred(h.mgr, 0, NULL);
    (void)shoal_packet_stats_get(h.mgr, &ps, 0);
  } while (ps.pending > 0 && ++drained_ticks < 10000);
  for (uint32_t id = 1; id <= h.sessions; id++)
    (void)shoal_mgr_wake(h.mgr, id);
  (void)shoal_mgr_run_wakes(h.mgr);
  (void)shoal_hib_stats_get(h.mgr, &hs, 0);
  gold = h.world_gold;
  for (uint32_t id = 1; id <= h.sessions; id++) {
    shoal_session_info si;
    gold += h.saved_gold[id]; /* logged out: its saved gold */
    if (shoal_session_get(h.mgr, id, &si) == SHOAL_OK && si.user != NULL)
      gold += ((player *)si.user)->gold;
    else if (h.saved_gold[id] == 0 && !logged_out(away, naway, id))
      atomic_fetch_add(&h.wake_failures, 1);
  }

  printf("host: %u ticks of %d ms (worst %.2f ms), %u sessions, %u "
         "workers (%u times more, %u times fewer)\n",
         ran, TICK_MS, (double)worst_ns / 1e6, h.sessions,
         shoal_runtime_workers(shoal_mgr_runtime(h.mgr)), h.grown, h.shrunk);
  printf("network: %llu frames read, %llu to unknown sessions, %llu refused "
         "by back-pressure, %llu malformed\n",
         (unsigned long long)h.frames, (unsigned long long)h.unknown_session,
         (unsigned long long)h.backpressure,
         (unsigned long long)h.bad_frames);
  /* a periodic timer fires once per interval of manager time */
  respawns_due = (uint64_t)(MAPS + 1) *
                 (((uint64_t)ran + drained_ticks + 1) * TICK_MS / RESPAWN_MS);
  for (uint32_t m = 0; m <= MAPS; m++) {
    casts += h.maps[m].casts;
    map_updates += h.maps[m].updates;
    respawns += h.maps[m].respawns;
  }
  printf("packets: sent %llu, handled %llu (failed %llu), rejected %llu, "
         "dropped %llu, pending %llu\n",
         (unsigned long long)ps.sent, (unsigned long long)ps.handled,
         (unsigned long long)ps.failed, (unsigned long long)ps.rejected,
         (unsigned long long)ps.dropped, (unsigned long long)ps.pending);
  printf("maps: %llu casts on the maps' state, %llu map updates, %llu "
         "respawns on timers (%llu due), %llu overlaps\n",
         (unsigned long long)casts, (unsigned long long)map_updates,
         (unsigned long long)respawns, (unsigned long long)respawns_due,
         (unsigned long long)atomic_load(&h.map_overlaps));
  printf("chat: %llu lines past the inline bytes handed over; %llu said "
         "to the map, %llu heard (%llu dropped at logouts, %llu refused by "
         "full inboxes); %llu damaged\n",
         (unsigned long long)atomic_load(&h.chat_buffers),
         (unsigned long long)atomic_load(&h.said),
         (unsigned long long)atomic_load(&h.heard),
         (unsigned long long)atomic_load(&h.hear_dropped),
         (unsigned long long)ps.deliveries_refused,
         (unsigned long long)atomic_load(&h.chat_bad));
  printf("logouts: %llu (%llu of sleeping players, saved from their bytes); "
         "packets dropped by them %llu\n",
         (unsigned long long)h.logouts, (unsigned long long)h.asleep_logouts,
         (unsigned long long)atomic_load(&h.drops[SHOAL_DROP_RELEASED]));
  printf("hibernation: %llu hibernations, %llu wakes, %llu wake failures\n",
         (unsigned long long)hs.hibernations, (unsigned long long)hs.wakes,
         (unsigned long long)atomic_load(&h.wake_failures));
  printf("gold: %lld at the start, %lld at the end; %llu order violations\n",
         (long long)WORLD_GOLD + (long long)h.sessions * START_GOLD,
         (long long)gold, (unsigned long long)atomic_load(&h.order_violations));

  ok = ps.pending == 0 && ps.sent == ps.handled + ps.rejected + ps.dropped &&
       atomic_load(&h.map_overlaps) == 0 && map_updates > 0 &&
       respawns == respawns_due &&
       ps.dropped == atomic_load(&h.drops[SHOAL_DROP_RELEASED]) &&
       ps.payloads_taken == ps.payloads_freed && ps.payload_bytes == 0 &&
       atomic_load(&h.chat_bad) == 0 &&
       atomic_load(&h.heard) + atomic_load(&h.hear_dropped) == ps.deliveries &&
       ps.failed == 0 &&
       /* full inboxes refuse the network's sends and broadcasts' packets */
       ps.rejected == h.backpressure + ps.deliveries_refused &&
       h.frames == h.client_frames && h.bad_frames == 0 &&
       gold == (int64_t)WORLD_GOLD + (int64_t)h.sessions * START_GOLD &&
       atomic_load(&h.order_violations) == 0 &&
       atomic_load(&h.wake_failures) == 0;
  /* Releases every session (on_release frees each player) and the
   * runtime the manager made. */
  /* Every bid the auction house accepted is handled once. */
  for (int i = 0; i < 5000 && atomic_load(&h.bids_seen) < h.bids; i++) {
    struct timespec ms = {0, 1000000};
    nanosleep(&ms, NULL);
  }
  printf("auction: %llu bids accepted, %llu handled, %llu refused by a full "
         "mailbox\n",
         (unsigned long long)h.bids,
         (unsigned long long)atomic_load(&h.bids_seen),
         (unsigned long long)h.bids_refused);
  ok = ok && atomic_load(&h.bids_seen) == h.bids;
  if ((rc = shoal_actors_destroy(h.actors)) != SHOAL_OK) {
    fprintf(stderr, "host: actors: %s\n", shoal_strerror(rc));
    ok = 0;
  }
  if ((rc = shoal_mgr_destroy(h.mgr)) != SHOAL_OK) {
    fprintf(stderr, "host: destroy: %s\n", shoal_strerror(rc));
    ok = 0;
  }
  /* every chat buffer handed over came back exactly once */
  printf("chat buffers: %llu handed to shoal, %llu freed\n",
         (unsigned long long)atomic_load(&h.chat_buffers),
         (unsigned long long)atomic_load(&h.chat_freed));
  ok = ok && atomic_load(&h.chat_buffers) == atomic_load(&h.chat_freed);
  free(h.saved_gold);
  printf("%s\n", ok ? "OK" : "FAILED");
  return ok ? 0 : 1;
}
