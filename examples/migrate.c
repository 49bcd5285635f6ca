/* migrate.c — a world sharded across two host processes joined by a Unix
 * socket pair, sessions moving between them while packets fly. Each
 * process runs a session manager, a sender thread that sends numbered
 * packets to every session of the world, and a main loop that updates
 * its manager, and every --every-ms exports a share of its sessions
 * (shoal_session_export) to the other process, which imports them
 * (shoal_session_import). A send answered SHOAL_EMOVED (the session
 * left) or SHOAL_ENOENT (it was never here) is forwarded to the other
 * process, which delivers it (or forwards it back, should the session
 * have moved again). A sender has at most one packet to a session on
 * its way through the other process: the ones after it wait, in order,
 * in the sender's process until the other side has taken it, since a
 * packet that bounces back (the session moved again meanwhile) could
 * otherwise be overtaken by a later one sent straight over. So each
 * sender's packets to a session run in the order sent. Exported records
 * are kept until the other side confirms the import; one that is
 * refused is imported back.
 *
 * At the end the two processes together account for every packet (sent
 * = handled across both), the per-sender order held (each session's
 * state, which travels in its hibernated bytes, checks it), and each
 * session's packet counter survived every move. Exit status 0 when all
 * holds, 1 when not, 2 on bad flags.
 *
 * --kill-once instead shows a move that fails: the process exports a
 * share of its sessions with packets waiting, writes their records to the
 * other process and kills it before it confirms; the records it kept go
 * back into its own manager, and every packet and counter is intact.
 *
 * Build outside the tree with:
 *   cc -std=c11 -pthread migrate.c $(pkg-config --cflags --libs shoal) */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <shoal.h>

enum { OP_SEQ = 1, MAXS = 4096, KILL_PACKETS = 5 };

/* On the wire: a header, then len bytes (a record). */
enum { F_MOVE = 1, F_MOVED, F_PKT, F_ACK, F_FIN, F_REPORT };
typedef struct frame {
  uint32_t type, id, a, b, len;
} frame;

/* A session's state: the next sequence number it expects from each
 * process's sender, and the packets it handled. All of it travels in its
 * hibernated bytes. */
typedef struct bot {
  uint32_t id;
  uint32_t next[2];
  uint64_t counter;
} bot;

/* What a process tells the other at the end. */
typedef struct report {
  uint64_t sent, handled, order_bad, bad, sessions, counters, nexts;
  uint64_t moves_out, moves_in, forwards;
} report;

/* A packet of this process's sender waiting for the one before it. */
typedef struct pend {
  struct pend *next;
  uint32_t seq;
} pend;

/* A frame read, waiting for the main loop. */
typedef struct qframe {
  struct qframe *next;
  frame f;
  unsigned char data[];
} qframe;

typedef struct proc {
  int me, fd;
  unsigned nsess;
  shoal_mgr *mgr;
  pthread_mutex_t wmu; /* writes to fd: held across an export and its
                          frame, so that no forward of a packet for the
                          session can pass its record */
  pthread_mutex_t qmu;
  qframe *qhead, *qtail;
  int eof;
  pthread_mutex_t pmu; /* inflight and the pending lists */
  unsigned char inflight[MAXS + 1]; /* a packet of the sender's to the
                                       session is on its way through the
                                       other process */
  pend *phead[MAXS + 1], *ptail[MAXS + 1]; /* the sender's next ones */
  _Atomic int stop;
  unsigned char *kept[MAXS + 1]; /* exported, not yet confirmed */
  size_t kept_len[MAXS + 1];
  uint32_t nkept;
  unsigned char local[MAXS + 1];
  uint64_t sent;
  _Atomic uint64_t forwards; /* the sender's and the main loop's */
  _Atomic uint64_t handled, order_bad, bad;
  uint64_t moves_out, moves_in;
} proc;

static proc P;

/* ---- the socket ---------------------------------------------------------- */

/* All n bytes written (writing 1) or read; -1 when the other side is
 * gone. */
static int io_all(int fd, void *p, size_t n, int writing) {
  char *c = p;
  while (n > 0) {
    ssize_t k = writing ? write(fd, c, n) : read(fd, c, n);
    if (k < 0 && errno == EINTR)
      continue;
    if (k <= 0)
      return -1;
    c += k;
    n -= (size_t)k;
  }
  return 0;
}

/* A frame out; the caller holds wmu. */
static void put_frame(uint32_t type, uint32_t id, uint32_t a, uint32_t b,
                      const void *data, uint32_t len) {
  frame f = {type, id, a, b, len};
  if (io_all(P.fd, &f, sizeof f, 1) != 0 ||
      (len > 0 && io_all(P.fd, (void *)(uintptr_t)data, len, 1) != 0))
    atomic_fetch_add(&P.bad, 1); /* the other side is gone */
}

static void send_frame(uint32_t type, uint32_t id, uint32_t a, uint32_t b,
                       const void *data, uint32_t len) {
  pthread_mutex_lock(&P.wmu);
  put_frame(type, id, a, b, data, len);
  pthread_mutex_unlock(&P.wmu);
}

/* The reader thread: frames into the main loop's queue until EOF. */
static void *reader_main(void *arg) {
  (void)arg;
  for (;;) {
    frame f;
    qframe *q;
    if (io_all(P.fd, &f, sizeof f, 0) != 0 || f.len > (256u << 20) ||
        (q = malloc(sizeof *q + f.len)) == NULL)
      break;
    q->f = f;
    q->next = NULL;
    if (f.len > 0 && io_all(P.fd, q->data, f.len, 0) != 0) {
      free(q);
      break;
    }
    pthread_mutex_lock(&P.qmu);
    if (P.qtail != NULL)
      P.qtail->next = q;
    else
      P.qhead = q;
    P.qtail = q;
    pthread_mutex_unlock(&P.qmu);
  }
  pthread_mutex_lock(&P.qmu);
  P.eof = 1;
  pthread_mutex_unlock(&P.qmu);
  return NULL;
}

static qframe *next_frame(int *eof) {
  qframe *q;
  pthread_mutex_lock(&P.qmu);
  q = P.qhead;
  if (q != NULL && (P.qhead = q->next) == NULL)
    P.qtail = NULL;
  *eof = P.eof && q == NULL;
  pthread_mutex_unlock(&P.qmu);
  return q;
}

/* ---- the host's callbacks ------------------------------------------------ */

static int on_update(void *host, uint32_t id, void *user, uint32_t diff) {
  (void)host;
  (void)diff;
  if (user == NULL || ((bot *)user)->id != id)
    atomic_fetch_add(&P.bad, 1);
  return 0;
}

static int on_seq(void *host, uint32_t id, void *user, const shoal_packet *p) {
  bot *b = user;
  uint32_t from, seq;
  (void)host;
  if (b == NULL || b->id != id || p->len != 8) {
    atomic_fetch_add(&P.bad, 1);
    return -1;
  }
  memcpy(&from, p->data, 4);
  memcpy(&seq, (const char *)p->data + 4, 4);
  if (from > 1 || seq != b->next[from])
    atomic_fetch_add(&P.order_bad, 1);
  if (from <= 1)
    b->next[from] = seq + 1;
  b->counter++;
  atomic_fetch_add(&P.handled, 1);
  return 0;
}

static long on_hibernate(void *host, uint32_t id, void *user,
                         shoal_hib_writer *w) {
  (void)host;
  (void)id;
  if (shoal_hib_write(w, user, sizeof(bot)) != SHOAL_OK)
    return -1;
  free(user);
  return (long)sizeof(bot);
}

static int on_wake(void *host, uint32_t id, const void *blob, size_t len,
                   void **user) {
  bot *b = malloc(sizeof *b);
  (void)host;
  if (b == NULL || len != sizeof *b) {
    free(b);
    return -1;
  }
  memcpy(b, blob, sizeof *b);
  if (b->id != id)
    atomic_fetch_add(&P.bad, 1);
  *user = b;
  return 0;
}

static void on_release(void *host, uint32_t id, void *user) {
  (void)host;
  (void)id;
  free(user);
}

/* ---- moving packets and sessions ------------------------------------------ */

/* A packet of `from`'s sender goes on to the other process. */
static void forward(uint32_t id, uint32_t from, uint32_t seq) {
  send_frame(F_PKT, id, from, seq, NULL, 0);
}

/* The updates that let a full inbox drain (main thread). */
static void update(void) {
  if (shoal_mgr_update(P.mgr, 1) != SHOAL_OK ||
      shoal_mgr_drain_deferred(P.mgr, 0, NULL) < 0)
    atomic_fetch_add(&P.bad, 1);
}

/* Packet seq of `from`'s sender sent to session id here, a full inbox
 * drained by updates. Main thread. */
static int send_here(uint32_t id, uint32_t from, uint32_t seq) {
  unsigned char d[8];
  int rc;
  memcpy(d, &from, 4);
  memcpy(d + 4, &seq, 4);
  while ((rc = shoal_session_send(P.mgr, id, OP_SEQ, 0, d, sizeof d)) ==
         SHOAL_EAGAIN)
    update();
  return rc;
}

/* The packet of this process's sender on its way to session id was
 * taken: the ones waiting behind it go, here while the session is here,
 * and the first that is not goes over as the next one on its way. Main
 * thread. */
static void own_taken(uint32_t id) {
  for (;;) {
    pend *q;
    int rc;
    pthread_mutex_lock(&P.pmu);
    if ((q = P.phead[id]) == NULL) {
      P.inflight[id] = 0;
      pthread_mutex_unlock(&P.pmu);
      return;
    }
    if ((P.phead[id] = q->next) == NULL)
      P.ptail[id] = NULL;
    pthread_mutex_unlock(&P.pmu);
    rc = send_here(id, (uint32_t)P.me, q->seq);
    if (rc == SHOAL_EMOVED || rc == SHOAL_ENOENT) {
      atomic_fetch_add(&P.forwards, 1);
      forward(id, (uint32_t)P.me, q->seq);
      free(q);
      return;
    }
    if (rc != SHOAL_OK)
      atomic_fetch_add(&P.bad, 1);
    free(q);
  }
}

/* A forwarded packet delivered here, or on again; its sender hears when
 * it was delivered. Main thread. */
static void deliver(uint32_t id, uint32_t from, uint32_t seq) {
  int rc = send_here(id, from, seq);
  if (rc == SHOAL_EMOVED || rc == SHOAL_ENOENT) { /* moved on meanwhile */
    atomic_fetch_add(&P.forwards, 1);
    forward(id, from, seq);
  } else if (rc != SHOAL_OK) {
    atomic_fetch_add(&P.bad, 1);
  } else if (from == (uint32_t)P.me) {
    own_taken(id);
  } else {
    send_frame(F_ACK, id, 0, 0, NULL, 0);
  }
}

/* Exports session id to the other process, keeping its record until the
 * other side confirms. Main thread. */
static void move_out(uint32_t id) {
  size_t need = 0, len = 0;
  unsigned char *rec = NULL;
  int rc;
  pthread_mutex_lock(&P.wmu);
  for (;;) { /* packets that come between asking and exporting need room */
    rc = shoal_session_export(P.mgr, id, rec, need, &len);
    if (rc != SHOAL_ENOSPC)
      break;
    free(rec);
    need = len;
    if ((rec = malloc(need)) == NULL) {
      rc = SHOAL_ENOMEM;
      break;
    }
  }
  if (rc == SHOAL_OK) {
    put_frame(F_MOVE, id, 0, 0, rec, (uint32_t)len);
    P.kept[id] = rec;
    P.kept_len[id] = len;
    P.nkept++;
    P.local[id] = 0;
    P.moves_out++;
  } else {
    free(rec);
    fprintf(stderr, "migrate[%d]: export of %u: %s\n", P.me, id,
            shoal_strerror(rc));
    atomic_fetch_add(&P.bad, 1);
  }
  pthread_mutex_unlock(&P.wmu);
}

/* A kept record goes back into this manager (the other side refused it,
 * or is gone). */
static void take_back(uint32_t id) {
  int rc = shoal_session_import(P.mgr, P.kept[id], P.kept_len[id]);
  if (rc != SHOAL_OK) {
    fprintf(stderr, "migrate[%d]: import back of %u: %s\n", P.me, id,
            shoal_strerror(rc));
    atomic_fetch_add(&P.bad, 1);
  } else {
    P.local[id] = 1;
  }
}

static void confirmed(uint32_t id, int rc) {
  if (P.kept[id] == NULL) {
    atomic_fetch_add(&P.bad, 1);
    return;
  }
  if (rc != SHOAL_OK)
    take_back(id);
  free(P.kept[id]);
  P.kept[id] = NULL;
  P.nkept--;
}

/* The frames read so far; returns 1 at the other side's FIN, and fills
 * *peer at its REPORT. Main thread. */
static int handle_frames(report *peer, int *have_peer, int *eof) {
  int fin = 0;
  qframe *q;
  while ((q = next_frame(eof)) != NULL) {
    frame *f = &q->f;
    int rc;
    switch (f->type) {
    case F_MOVE:
      rc = shoal_session_import(P.mgr, q->data, f->len);
      if (rc == SHOAL_OK) {
        P.local[f->id] = 1;
        P.moves_in++;
      }
      send_frame(F_MOVED, f->id, (uint32_t)-rc, 0, NULL, 0);
      break;
    case F_MOVED:
      confirmed(f->id, -(int)f->a);
      break;
    case F_PKT:
      deliver(f->id, f->a, f->b);
      break;
    case F_ACK:
      if (f->id == 0 || f->id > P.nsess)
        atomic_fetch_add(&P.bad, 1);
      else
        own_taken(f->id);
      break;
    case F_FIN:
      fin = 1;
      break;
    case F_REPORT:
      if (f->len == sizeof *peer) {
        memcpy(peer, q->data, sizeof *peer);
        *have_peer = 1;
      }
      break;
    default:
      atomic_fetch_add(&P.bad, 1);
    }
    free(q);
  }
  return fin;
}

/* ---- the sender ------------------------------------------------------------ */

static void *sender_main(void *arg) {
  uint32_t *next = calloc(P.nsess + 1, sizeof *next);
  uint64_t n = 0;
  (void)arg;
  while (!atomic_load(&P.stop)) {
    uint32_t id = 1 + (uint32_t)(n++ % P.nsess), seq = next[id]++;
    unsigned char d[8];
    int rc;
    memcpy(d, &P.me, 4);
    memcpy(d + 4, &seq, 4);
    P.sent++;
    pthread_mutex_lock(&P.pmu);
    if (P.inflight[id]) { /* after the one on its way */
      pend *q = malloc(sizeof *q);
      if (q == NULL) {
        atomic_fetch_add(&P.bad, 1);
      } else {
        q->next = NULL;
        q->seq = seq;
        if (P.ptail[id] != NULL)
          P.ptail[id]->next = q;
        else
          P.phead[id] = q;
        P.ptail[id] = q;
      }
      pthread_mutex_unlock(&P.pmu);
      goto paced;
    }
    pthread_mutex_unlock(&P.pmu);
    while ((rc = shoal_session_send(P.mgr, id, OP_SEQ, 0, d, sizeof d)) ==
           SHOAL_EAGAIN)
      sched_yield();
    if (rc == SHOAL_OK)
      goto paced;
    /* SHOAL_EMOVED: it left; SHOAL_ENOENT: it was never here (this
     * world has two processes, so it is in the other) */
    if (rc != SHOAL_EMOVED && rc != SHOAL_ENOENT) {
      atomic_fetch_add(&P.bad, 1);
      goto paced;
    }
    pthread_mutex_lock(&P.pmu);
    P.inflight[id] = 1;
    pthread_mutex_unlock(&P.pmu);
    atomic_fetch_add(&P.forwards, 1);
    forward(id, (uint32_t)P.me, seq);
  paced:
    if (n % 256 == 0) { /* about 50 000 packets a second */
      struct timespec ts = {0, 5 * 1000 * 1000};
      nanosleep(&ts, NULL);
    }
  }
  free(next);
  return NULL;
}

/* ---- a process ------------------------------------------------------------ */

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int make_manager(unsigned workers) {
  shoal_config c;
  shoal_mgr_callbacks cb = {on_update, on_release, NULL};
  shoal_hib_callbacks hc = {on_hibernate, on_wake, NULL};
  shoal_config_defaults(&c);
  c.worker_threads = workers;
  c.max_sessions = P.nsess + 16;
  c.pool_preallocate = c.max_sessions;
  c.moved_seconds = 3600; /* longer than the run: a move always forwards */
  if (shoal_mgr_create(&P.mgr, NULL, &c, &cb) != SHOAL_OK ||
      shoal_mgr_set_hibernation(P.mgr, &hc) != SHOAL_OK ||
      shoal_mgr_register_opcode(P.mgr, OP_SEQ, SHOAL_PACKET_INPLACE,
                                SHOAL_CAT_OTHER, on_seq, NULL) != SHOAL_OK)
    return -1;
  return 0;
}

static int create(uint32_t id) {
  bot *b = calloc(1, sizeof *b);
  if (b == NULL)
    return -1;
  b->id = id;
  if (shoal_session_create(P.mgr, id, b) != SHOAL_OK) {
    free(b);
    return -1;
  }
  P.local[id] = 1;
  return 0;
}

/* What this process holds now, for the report. */
static void tally(report *r) {
  memset(r, 0, sizeof *r);
  r->sent = P.sent;
  r->handled = atomic_load(&P.handled);
  r->order_bad = atomic_load(&P.order_bad);
  r->bad = atomic_load(&P.bad);
  r->moves_out = P.moves_out;
  r->moves_in = P.moves_in;
  r->forwards = P.forwards;
  for (uint32_t id = 1; id <= P.nsess; id++) {
    shoal_session_info v;
    bot *b;
    if (shoal_session_get(P.mgr, id, &v) != SHOAL_OK)
      continue;
    if (v.state != SHOAL_SESSION_ACTIVE || (b = v.user) == NULL) {
      r->bad++;
      continue;
    }
    r->sessions++;
    r->counters += b->counter;
    r->nexts += (uint64_t)b->next[0] + b->next[1];
  }
}

static uint64_t pending(void) {
  shoal_packet_stats ps;
  return shoal_packet_stats_get(P.mgr, &ps, 0) == SHOAL_OK ? ps.pending : 1;
}

/* Runs one process of the world for `seconds`; the parent fills *peer
 * with the child's report. 0, or -1 when the other side went away. */
static int run(unsigned seconds, unsigned every_ms, report *peer) {
  pthread_t sender, reader;
  uint64_t start = now_ms(), last_move = start;
  int fin_sent = 0, fin_got = 0, have_peer = 0, eof = 0, sending = 1;
  unsigned seed = 12345u + (unsigned)P.me;
  pthread_create(&reader, NULL, reader_main, NULL);
  pthread_create(&sender, NULL, sender_main, NULL);
  for (;;) {
    uint64_t t = now_ms();
    struct timespec tick = {0, 1000 * 1000};
    nanosleep(&tick, NULL); /* a tick a millisecond */
    update();
    fin_got |= handle_frames(peer, &have_peer, &eof);
    if (eof && !(fin_got && (P.me == 1 || have_peer)))
      break;
    if (sending && t - start < seconds * 1000u) {
      if (t - last_move >= every_ms) { /* a quarter of ours goes over */
        last_move = t;
        for (uint32_t id = 1; id <= P.nsess; id++)
          if (P.local[id] && rand_r(&seed) % 4 == 0)
            move_out(id);
      }
      continue;
    }
    if (sending) {
      atomic_store(&P.stop, 1);
      pthread_join(sender, NULL);
      sending = 0;
    }
    if (!fin_sent && P.nkept == 0) {
      int clear = 1;
      pthread_mutex_lock(&P.pmu);
      for (uint32_t id = 1; id <= P.nsess && clear; id++)
        clear = P.inflight[id] == 0;
      pthread_mutex_unlock(&P.pmu);
      if (clear) {
        send_frame(F_FIN, 0, 0, 0, NULL, 0);
        fin_sent = 1;
      }
    }
    if (fin_sent && fin_got && pending() == 0) {
      report me;
      if (P.me == 1) {
        tally(&me);
        send_frame(F_REPORT, 0, 0, 0, &me, sizeof me);
        break;
      }
      if (have_peer)
        break;
    }
  }
  if (sending) {
    atomic_store(&P.stop, 1);
    pthread_join(sender, NULL);
  }
  shutdown(P.fd, SHUT_RDWR);
  pthread_join(reader, NULL);
  return P.me == 0 && !have_peer ? -1 : 0;
}

static int check(const report *a, const report *b, unsigned nsess) {
  uint64_t sent = a->sent + b->sent, handled = a->handled + b->handled;
  int ok = sent == handled && a->order_bad + b->order_bad == 0 &&
           a->bad + b->bad == 0 && a->sessions + b->sessions == nsess &&
           a->counters + b->counters == handled &&
           a->nexts + b->nexts == handled;
  printf("migrate: %u sessions, %llu moves (%llu back), %llu packets sent, "
         "%llu handled (%llu here, %llu there), %llu forwarded, %llu out of "
         "order, %llu errors; sessions now %llu here and %llu there, their "
         "counters sum to %llu: %s\n",
         nsess, (unsigned long long)(a->moves_out),
         (unsigned long long)b->moves_out, (unsigned long long)sent,
         (unsigned long long)handled, (unsigned long long)a->handled,
         (unsigned long long)b->handled,
         (unsigned long long)(a->forwards + b->forwards),
         (unsigned long long)(a->order_bad + b->order_bad),
         (unsigned long long)(a->bad + b->bad),
         (unsigned long long)a->sessions, (unsigned long long)b->sessions,
         (unsigned long long)(a->counters + b->counters),
         ok ? "every packet accounted for" : "FAILED");
  return ok && a->moves_out > 0 && b->moves_out > 0 ? 0 : 1;
}

/* --kill-once: packets waiting, a share exported, the receiver killed
 * before it confirms; the kept records go back in. */
static int kill_once(pid_t child) {
  uint32_t moved = 0;
  report r;
  for (uint32_t id = 1; id <= P.nsess; id++)
    for (uint32_t k = 0; k < KILL_PACKETS; k++) {
      unsigned char d[8];
      memcpy(d, &P.me, 4);
      memcpy(d + 4, &k, 4);
      if (shoal_session_send(P.mgr, id, OP_SEQ, 0, d, sizeof d) != SHOAL_OK)
        atomic_fetch_add(&P.bad, 1);
      P.sent++;
    }
  for (uint32_t id = 1; id <= P.nsess; id += 4, moved++)
    move_out(id);
  kill(child, SIGKILL);
  waitpid(child, NULL, 0);
  printf("migrate: %u sessions exported with %u packets each waiting; the "
         "receiver was killed before confirming; %u records kept here\n",
         moved, KILL_PACKETS, P.nkept);
  for (uint32_t id = 1; id <= P.nsess; id++)
    if (P.kept[id] != NULL)
      confirmed(id, SHOAL_ENOENT); /* never confirmed: taken back */
  for (int t = 0; t < 100 && pending() > 0; t++)
    update();
  tally(&r);
  printf("migrate: after taking them back: %llu sessions here, %llu of %llu "
         "packets handled, %llu out of order, counters sum to %llu, %llu "
         "errors\n",
         (unsigned long long)r.sessions, (unsigned long long)r.handled,
         (unsigned long long)r.sent, (unsigned long long)r.order_bad,
         (unsigned long long)r.counters, (unsigned long long)r.bad);
  return r.sessions == P.nsess && r.handled == r.sent && r.order_bad == 0 &&
                 r.counters == r.sent && r.bad == 0 && moved > 0
             ? 0
             : 1;
}

static int usage(void) {
  fprintf(stderr, "usage: migrate [--sessions N] [--seconds N] "
                  "[--every-ms N] [--workers N] [--kill-once]\n");
  return 2;
}

int main(int argc, char **argv) {
  unsigned seconds = 3, every_ms = 1000, workers = 2;
  int fds[2], kill_mode = 0, status = 0;
  pid_t child;
  P.nsess = 200;
  for (int i = 1; i < argc; i++) {
    unsigned long v = 0;
    char *end = NULL;
    if (strcmp(argv[i], "--kill-once") == 0) {
      kill_mode = 1;
      continue;
    }
    if (i + 1 >= argc)
      return usage();
    errno = 0;
    v = strtoul(argv[i + 1], &end, 10);
    if (errno != 0 || *end != '\0' || v == 0 || v > 100000)
      return usage();
    if (strcmp(argv[i], "--sessions") == 0 && v <= MAXS)
      P.nsess = (unsigned)v;
    else if (strcmp(argv[i], "--seconds") == 0 && v <= 3600)
      seconds = (unsigned)v;
    else if (strcmp(argv[i], "--every-ms") == 0)
      every_ms = (unsigned)v;
    else if (strcmp(argv[i], "--workers") == 0 && v <= 256)
      workers = (unsigned)v;
    else
      return usage();
    i++;
  }
  signal(SIGPIPE, SIG_IGN);
  /* Two processes before any thread starts. */
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0 || (child = fork()) < 0) {
    perror("migrate");
    return 1;
  }
  P.me = child == 0;
  P.fd = fds[child == 0 ? 1 : 0];
  close(fds[child == 0 ? 0 : 1]);
  pthread_mutex_init(&P.wmu, NULL);
  pthread_mutex_init(&P.qmu, NULL);
  pthread_mutex_init(&P.pmu, NULL);
  if (make_manager(workers) != 0) {
    fprintf(stderr, "migrate[%d]: no manager\n", P.me);
    return 1;
  }
  /* The parent's sessions first; the child's start empty and fill as
   * sessions move over. */
  if (P.me == 0)
    for (uint32_t id = 1; id <= P.nsess; id++)
      if (create(id) != 0)
        return 1;
  if (kill_mode) {
    if (P.me == 1) { /* reads and imports until it is killed */
      report peer;
      int have = 0, eof = 0;
      pthread_t reader;
      pthread_create(&reader, NULL, reader_main, NULL);
      while (!eof) {
        update();
        (void)handle_frames(&peer, &have, &eof);
      }
      pthread_join(reader, NULL);
      _exit(0);
    }
    status = kill_once(child);
  } else {
    report peer, me;
    memset(&peer, 0, sizeof peer);
    if (run(seconds, every_ms, &peer) != 0) {
      fprintf(stderr, "migrate[%d]: the other process went away\n", P.me);
      status = 1;
    } else if (P.me == 0) {
      tally(&me);
      status = check(&me, &peer, P.nsess);
    }
    if (P.me == 0) {
      int ws = 0;
      waitpid(child, &ws, 0);
      if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0)
        status = 1;
    }
  }
  for (uint32_t id = 1; id <= P.nsess; id++) {
    free(P.kept[id]);
    for (pend *q = P.phead[id], *next; q != NULL; q = next) {
      next = q->next;
      free(q);
    }
  }
  if (shoal_mgr_destroy(P.mgr) != SHOAL_OK)
    status = 1;
  close(P.fd);
  return status;
}
