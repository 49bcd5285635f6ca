/* config.c — shoal_config: defaults, one table of keys with their ranges,
 * and the `key = value` file read with libinih (Debian's libinih-dev).
 * A load or an environment pass works on a copy and commits it whole, so a
 * bad line leaves the caller's configuration as it was. */
#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>
#include <stdarg.h>

#include <ini.h>

#include "runtime/actors/actor.h"
#include "runtime/common.h"
#include "sessions/mgr.h"

void shoal_config_defaults(shoal_config *cfg) {
  if (cfg == NULL)
    return;
  memset(cfg, 0, sizeof *cfg);
  cfg->max_sessions = 5000;
  cfg->batch_size = 64;
  cfg->worker_threads = 0;
  cfg->hibernation_minutes = 5;
  cfg->enable_simd = 1;
  cfg->auto_defragment = 1;
  cfg->defragment_seconds = 60;
  cfg->hysteresis_seconds = 60;
  cfg->hibernate_per_update = 1024;
  cfg->pool_preallocate = 1000;
  cfg->pool_grow = 100;
  cfg->packets_per_update = 100;
  cfg->strict_packet_order = 1;
  cfg->defer_packets = 1;
  cfg->deferred_per_session = 50;
  cfg->inbox_size = 256;
  cfg->max_queued_packets = 262144;
  cfg->watchdog_ms = 5000;
  cfg->callback_budget_ms = 0;
  cfg->max_packet_bytes = 65536;
  cfg->payload_budget_mb = 64;
  cfg->deferred_warn = 65536;
  cfg->rate_burst_ms = 1000;
  cfg->moved_seconds = 60;
  shoal_actors_config_defaults(&cfg->actors);
  cfg->struct_size = sizeof *cfg;
}

typedef enum kind { K_UINT, K_BOOL } kind;

typedef struct key {
  const char *name;
  size_t off;
  kind kind;
  uint64_t lo, hi;
} key;

#define U(name, field, lo, hi) {name, offsetof(shoal_config, field), K_UINT, lo, hi}
#define B(name, field) {name, offsetof(shoal_config, field), K_BOOL, 0, 1}
static const key keys[] = {
  U("SessionMgr.MaxConcurrentSessions", max_sessions, 1, 1u << 24),
  U("SessionMgr.UpdateBatchSize", batch_size, 0, 256),
  U("SessionMgr.WorkerThreads", worker_threads, 0, SHOAL_WORKERS_MAX),
  U("SessionMgr.MaxWorkerThreads", max_worker_threads, 0, SHOAL_WORKERS_MAX),
  U("SessionMgr.HibernationThresholdMinutes", hibernation_minutes, 1, 10080),
  B("SessionMgr.EnableSIMD", enable_simd),
  B("SessionMgr.EnableAutoDefragmentation", auto_defragment),
  U("SessionMgr.DefragmentationIntervalSeconds", defragment_seconds, 1, 86400),
  U("SessionMgr.HibernationHysteresisSeconds", hysteresis_seconds, 0, 86400),
  U("SessionMgr.HibernatePerUpdate", hibernate_per_update, 1, 1u << 24),
  U("SessionMgr.PoolPreallocate", pool_preallocate, 0, 1u << 24),
  U("SessionMgr.PoolGrowBatch", pool_grow, 1, 65536),
  U("SessionMgr.MaxPacketsPerUpdate", packets_per_update, 1, 65536),
  B("SessionMgr.StrictPacketOrder", strict_packet_order),
  B("SessionMgr.DeferPackets", defer_packets),
  U("SessionMgr.DeferredPerSession", deferred_per_session, 1, 1u << 20),
  U("SessionMgr.InboxSize", inbox_size, 1, 65536),
  U("SessionMgr.MaxQueuedPackets", max_queued_packets, 64, 1u << 26),
  U("SessionMgr.WatchdogMs", watchdog_ms, 0, 3600000),
  U("SessionMgr.CallbackBudgetMs", callback_budget_ms, 0, 3600000),
  U("SessionMgr.MaxPacketBytes", max_packet_bytes, SHOAL_PACKET_INLINE_MAX,
    SHOAL_PACKET_BYTES_MAX),
  U("SessionMgr.PayloadBudgetMB", payload_budget_mb, 1, 65536),
  U("SessionMgr.DeferredDepthWarn", deferred_warn, 0, 1u << 26),
#define RATE(name, cat) U("SessionMgr.RateLimit." name, rate_limit[cat], 0, 1000000)
  RATE("Spell", SHOAL_CAT_SPELL), RATE("Item", SHOAL_CAT_ITEM),
  RATE("Resurrection", SHOAL_CAT_RESURRECTION),
  RATE("Movement", SHOAL_CAT_MOVEMENT), RATE("Combat", SHOAL_CAT_COMBAT),
  RATE("Quest", SHOAL_CAT_QUEST), RATE("Group", SHOAL_CAT_GROUP),
  RATE("Trade", SHOAL_CAT_TRADE), RATE("Gossip", SHOAL_CAT_GOSSIP),
  RATE("Loot", SHOAL_CAT_LOOT), RATE("Vendor", SHOAL_CAT_VENDOR),
  RATE("Trainer", SHOAL_CAT_TRAINER), RATE("Auction", SHOAL_CAT_AUCTION),
  RATE("Chat", SHOAL_CAT_CHAT), RATE("Mail", SHOAL_CAT_MAIL),
  RATE("Bank", SHOAL_CAT_BANK), RATE("Guild", SHOAL_CAT_GUILD),
  RATE("Pet", SHOAL_CAT_PET), RATE("Other", SHOAL_CAT_OTHER),
#undef RATE
  U("SessionMgr.RateBurstMs", rate_burst_ms, 1, 3600000),
  U("SessionMgr.MovedSeconds", moved_seconds, 0, 86400),
  U("Actors.MessageQueueSize", actors.queue_size, 1, 1u << 20),
  U("Actors.BatchSize", actors.batch_size, 1, 65536),
  U("Actors.MaxMessagesPerTick", actors.max_per_tick, 0, UINT32_MAX),
  U("Actors.StuckMs", actors.stuck_ms, 0, 3600000),
  U("Actors.StallMs", actors.stall_ms, 0, 3600000),
  U("Actors.TraceRing", actors.trace_ring, 0, 1u << 24),
  U("Actors.TraceEvery", actors.trace_every, 0, 1u << 30),
};
#undef U
#undef B
#define NKEYS SHOAL__ARRAY_SIZE(keys)

unsigned shoal_config_key_count(void) {
  return (unsigned)NKEYS;
}

const char *shoal_config_key_name(unsigned i) {
  return i < NKEYS ? keys[i].name : NULL;
}

static void say(char *err, size_t len, const char *fmt, ...)
    SHOAL__PRINTF(3, 4);
static void say(char *err, size_t len, const char *fmt, ...) {
  va_list ap;
  if (err == NULL || len == 0)
    return;
  va_start(ap, fmt);
  vsnprintf(err, len, fmt, ap);
  va_end(ap);
}

static const key *find_key(const char *name) {
  for (size_t i = 0; i < NKEYS; i++)
    if (strcasecmp(keys[i].name, name) == 0)
      return &keys[i];
  return NULL;
}

/* Strict decimal: digits only, no sign, no spaces inside, no overflow. */
static int parse_uint(const char *s, uint64_t *out) {
  uint64_t v = 0;
  if (*s == '\0')
    return 0;
  for (; *s != '\0'; s++) {
    if (!isdigit((unsigned char)*s) || v > (UINT64_MAX - 9) / 10)
      return 0;
    v = v * 10 + (uint64_t)(*s - '0');
  }
  *out = v;
  return 1;
}

static int parse_bool(const char *s, uint64_t *out) {
  static const char *yes[] = {"1", "true", "yes", "on"};
  static const char *no[] = {"0", "false", "no", "off"};
  for (size_t i = 0; i < 4; i++) {
    if (strcasecmp(s, yes[i]) == 0) {
      *out = 1;
      return 1;
    }
    if (strcasecmp(s, no[i]) == 0) {
      *out = 0;
      return 1;
    }
  }
  return 0;
}

/* Sets k in cfg; on failure writes "KEY: why" to err. */
static int set_key(shoal_config *cfg, const key *k, const char *value,
                   char *err, size_t len) {
  uint64_t v;
  if (k->kind == K_BOOL) {
    if (!parse_bool(value, &v)) {
      say(err, len, "%s: '%s' is not a boolean (0/1, true/false, yes/no, "
          "on/off)", k->name, value);
      return SHOAL_EFORMAT;
    }
    *(int *)(void *)((char *)cfg + k->off) = (int)v;
    return SHOAL_OK;
  }
  if (!parse_uint(value, &v)) {
    say(err, len, "%s: '%s' is not a non-negative decimal number", k->name,
        value);
    return SHOAL_EFORMAT;
  }
  if (v < k->lo || v > k->hi) {
    say(err, len, "%s: %llu is out of range (%llu … %llu)", k->name,
        (unsigned long long)v, (unsigned long long)k->lo,
        (unsigned long long)k->hi);
    return SHOAL_ELIMIT;
  }
  *(unsigned *)(void *)((char *)cfg + k->off) = (unsigned)v;
  return SHOAL_OK;
}

/* What holds across keys, checked once a whole source is read. */
static int check_whole(const shoal_config *c, char *err, size_t len) {
  unsigned limited = 0;
  for (unsigned k = 0; k < SHOAL_CAT_COUNT; k++)
    limited += c->rate_limit[k] != 0;
  if (limited > SHOAL__RATE_SLOTS) {
    say(err, len, "SessionMgr.RateLimit.*: %u categories are limited; at "
        "most %u may be", limited, SHOAL__RATE_SLOTS);
    return SHOAL_ELIMIT;
  }
  if (c->max_worker_threads != 0 &&
      c->worker_threads > c->max_worker_threads) {
    say(err, len, "SessionMgr.MaxWorkerThreads: %u is below "
        "SessionMgr.WorkerThreads (%u)", c->max_worker_threads,
        c->worker_threads);
    return SHOAL_ELIMIT;
  }
  if (c->pool_preallocate > c->max_sessions) {
    say(err, len, "SessionMgr.PoolPreallocate: %u is above "
        "SessionMgr.MaxConcurrentSessions (%u)", c->pool_preallocate,
        c->max_sessions);
    return SHOAL_ELIMIT;
  }
  return SHOAL_OK;
}

int shoal__config_check(const shoal_config *c, char *err, size_t len) {
  for (size_t i = 0; i < NKEYS; i++) {
    const key *k = &keys[i];
    const void *f = (const char *)c + k->off;
    /* A boolean is an int: a negative one is out of range too. */
    int64_t v = k->kind == K_BOOL ? (int64_t) * (const int *)f
                                  : (int64_t) * (const unsigned *)f;
    if (v < (int64_t)k->lo || v > (int64_t)k->hi) {
      say(err, len, "%s: %lld is out of range (%llu … %llu)", k->name,
          (long long)v, (unsigned long long)k->lo,
          (unsigned long long)k->hi);
      return SHOAL_EINVAL;
    }
  }
  if (shoal__actors_config_check(&c->actors) != SHOAL_OK) {
    say(err, len, "actors: max_actors %u (1 … 2^20), host_waiters %u "
        "(0 … 2^20): out of range", c->actors.max_actors,
        c->actors.host_waiters);
    return SHOAL_EINVAL;
  }
  return check_whole(c, err, len) != SHOAL_OK ? SHOAL_EINVAL : SHOAL_OK;
}

static void copy_in(shoal_config *tmp, const shoal_config *cfg) {
  shoal_config_defaults(tmp);
  shoal__copy_opts(tmp, sizeof *tmp, cfg, cfg->struct_size);
}

static void copy_out(shoal_config *cfg, const shoal_config *tmp) {
  size_t n = cfg->struct_size != 0 && cfg->struct_size < sizeof *tmp
                 ? cfg->struct_size
                 : sizeof *tmp;
  size_t keep = cfg->struct_size;
  memcpy(cfg, tmp, n);
  cfg->struct_size = keep != 0 ? keep : sizeof *tmp;
}

int shoal_config_set(shoal_config *cfg, const char *name, const char *value,
                     char *err, size_t len) {
  shoal_config tmp;
  const key *k;
  int rc;
  if (cfg == NULL || name == NULL || value == NULL) {
    say(err, len, "shoal_config_set: NULL argument");
    return SHOAL_EINVAL;
  }
  if ((k = find_key(name)) == NULL) {
    say(err, len, "%s: unknown key", name);
    return SHOAL_EFORMAT;
  }
  copy_in(&tmp, cfg);
  if ((rc = set_key(&tmp, k, value, err, len)) != SHOAL_OK)
    return rc;
  copy_out(cfg, &tmp);
  return SHOAL_OK;
}

/* ------------------------------------------------------------------------ */
/* The file                                                                 */
/* ------------------------------------------------------------------------ */

/* What a file may be: a regular file of at most FILE_MAX bytes, lines of
 * at most LINE_MAX bytes (the newline excluded), UTF-8 without NUL. */
#define FILE_MAX (1u << 20)
#define LINE_MAX_BYTES 4096u

typedef struct load {
  shoal_config cfg;
  shoal_config_other_fn other; /* the host's keys; NULL: none */
  void *other_user;
  const char *text; /* the whole file */
  size_t len, pos;
  int line;       /* of the line the reader gave inih last */
  int bad_line;   /* of the first error, 0: none */
  int rc;
  char msg[256];
  int set_at[NKEYS]; /* where each key was set, 0: not yet */
} load;

/* Whether s[0 … n) is UTF-8 (RFC 3629: no overlong forms, no surrogates,
 * nothing past U+10FFFF); *at gets the offset of the first bad byte. */
static int utf8_ok(const unsigned char *s, size_t n, size_t *at) {
  size_t i = 0;
  while (i < n) {
    unsigned c = s[i], need, min, cp;
    if (c < 0x80) {
      i++;
      continue;
    }
    if (c >= 0xC2 && c <= 0xDF)
      need = 1, min = 0x80, cp = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF)
      need = 2, min = 0x800, cp = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4)
      need = 3, min = 0x10000, cp = c & 0x07;
    else
      goto bad;
    if (n - i <= need)
      goto bad;
    for (unsigned k = 1; k <= need; k++) {
      if ((s[i + k] & 0xC0) != 0x80)
        goto bad;
      cp = cp << 6 | (s[i + k] & 0x3Fu);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
      goto bad;
    i += need + 1;
  }
  return 1;
bad:
  *at = i;
  return 0;
}

static int fail_line(load *l, int rc, const char *fmt, ...)
    SHOAL__PRINTF(3, 4);
static int fail_line(load *l, int rc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(l->msg, sizeof l->msg, fmt, ap);
  va_end(ap);
  l->rc = rc;
  l->bad_line = l->line;
  return rc;
}

/* One physical line [p, p + n) checked and cooked for inih into buf:
 * leading blanks and a BOM dropped (so that inih's multi-line
 * continuation never applies: an indented line is a line of its own), a
 * comment (a line starting with `#` or `;`, or a blank then `#` or `;`
 * after a value) dropped. */
static int cook(load *l, const char *p, size_t n, char *buf, int size) {
  size_t at, e;
  if (n > LINE_MAX_BYTES)
    return fail_line(l, SHOAL_ELIMIT, "line of %zu bytes (at most %u)", n,
                     LINE_MAX_BYTES);
  if (memchr(p, '\0', n) != NULL)
    return fail_line(l, SHOAL_EFORMAT, "a NUL byte at column %zu",
                     (size_t)((const char *)memchr(p, '\0', n) - p) + 1);
  if (!utf8_ok((const unsigned char *)p, n, &at))
    return fail_line(l, SHOAL_EFORMAT, "not UTF-8 (byte %zu)", at + 1);
  if (l->line == 1 && n >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0)
    p += 3, n -= 3;
  while (n > 0 && (*p == ' ' || *p == '\t'))
    p++, n--;
  if (n > 0 && (*p == '#' || *p == ';'))
    n = 0;
  for (e = 1; e < n; e++)
    if ((p[e] == '#' || p[e] == ';') && (p[e - 1] == ' ' || p[e - 1] == '\t'))
      break;
  n = e < n ? e : n;
  while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t' || p[n - 1] == '\r'))
    n--;
  /* No key and value of the table come near inih's line buffer. */
  if (n + 2 > (size_t)size)
    return fail_line(l, SHOAL_EFORMAT,
                     "a key and value of %zu bytes: no key takes that", n);
  memcpy(buf, p, n);
  buf[n] = '\n';
  buf[n + 1] = '\0';
  return SHOAL_OK;
}

/* inih's reader: the next line of the text, cooked; NULL at the end or at
 * the first bad line (inih stops). */
static char *read_line(char *buf, int size, void *stream) {
  load *l = stream;
  const char *p, *nl;
  size_t n;
  if (l->bad_line != 0 || l->pos >= l->len)
    return NULL;
  p = l->text + l->pos;
  nl = memchr(p, '\n', l->len - l->pos);
  n = nl != NULL ? (size_t)(nl - p) : l->len - l->pos;
  l->pos += n + (nl != NULL);
  l->line++;
  return cook(l, p, n, buf, size) == SHOAL_OK ? buf : NULL;
}

static int on_pair(void *user, const char *section, const char *name,
                   const char *value) {
  load *l = user;
  char full[160];
  const key *k;
  int rc;
  if (l->bad_line != 0)
    return 1; /* the first error is the one reported */
  if (section != NULL && section[0] != '\0')
    snprintf(full, sizeof full, "%s.%s", section, name);
  else
    snprintf(full, sizeof full, "%s", name);
  if ((k = find_key(full)) == NULL) {
    /* shoal's sections are its own: a misspelling there is an error */
    if (l->other != NULL && strncasecmp(full, "SessionMgr.", 11) != 0 &&
        strncasecmp(full, "Actors.", 7) != 0) {
      if (l->other(l->other_user, section != NULL ? section : "", name,
                   value, l->line) < 0) {
        fail_line(l, SHOAL_EFORMAT, "%s: refused by the host", full);
        return 0;
      }
      return 1;
    }
    fail_line(l, SHOAL_EFORMAT, "%s: unknown key", full);
    return 0;
  }
  if (l->set_at[k - keys] != 0) {
    fail_line(l, SHOAL_EFORMAT, "%s: set again (first at line %d)", k->name,
              l->set_at[k - keys]);
    return 0;
  }
  if ((rc = set_key(&l->cfg, k, value, l->msg, sizeof l->msg)) != SHOAL_OK) {
    l->rc = rc;
    l->bad_line = l->line;
    return 0;
  }
  l->set_at[k - keys] = l->line;
  return 1;
}

/* The file whole into *text (*len bytes): a regular file only (a
 * directory, device, FIFO or socket is refused before a byte is read; the
 * open does not wait on a FIFO), at most FILE_MAX bytes. */
static int read_file(const char *path, char **text, size_t *len, char *err,
                     size_t elen) {
  struct stat st;
  size_t n = 0;
  char *buf;
  int fd = open(path, O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    say(err, elen, "%s: cannot open: %s", path, strerror(errno));
    return SHOAL_EIO;
  }
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    say(err, elen, "%s: not a regular file (%s)", path,
        S_ISDIR(st.st_mode)    ? "a directory"
        : S_ISFIFO(st.st_mode) ? "a FIFO"
        : S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ? "a device"
                                                     : "not a file");
    close(fd);
    return SHOAL_EIO;
  }
  if ((uint64_t)st.st_size > FILE_MAX ||
      (buf = shoal__malloc(FILE_MAX + 1)) == NULL) {
    close(fd);
    if ((uint64_t)st.st_size > FILE_MAX) {
      say(err, elen, "%s: %lld bytes (a configuration file holds at most %u)",
          path, (long long)st.st_size, FILE_MAX);
      return SHOAL_ELIMIT;
    }
    say(err, elen, "%s: out of memory", path);
    return SHOAL_ENOMEM;
  }
  for (;;) { /* it may have grown since fstat: FILE_MAX + 1 tells */
    ssize_t r = read(fd, buf + n, FILE_MAX + 1 - n);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0) {
      say(err, elen, "%s: cannot read: %s", path, strerror(errno));
      close(fd);
      shoal__free(buf);
      return SHOAL_EIO;
    }
    if (r == 0 || (n += (size_t)r) > FILE_MAX)
      break;
  }
  close(fd);
  if (n > FILE_MAX) {
    say(err, elen, "%s: more than %u bytes", path, FILE_MAX);
    shoal__free(buf);
    return SHOAL_ELIMIT;
  }
  *text = buf;
  *len = n;
  return SHOAL_OK;
}

/* For a failure of what holds across keys: the line of the last key it
 * involves, those msg names (SessionMgr.RateLimit.* for all of them). */
static int whole_line(const load *l, const char *msg) {
  int at = 0, rates = strncmp(msg, "SessionMgr.RateLimit.*", 22) == 0;
  for (size_t i = 0; i < NKEYS; i++) {
    int named = rates ? strncmp(keys[i].name, "SessionMgr.RateLimit.", 21) == 0
                      : strstr(msg, keys[i].name) != NULL;
    if (named && l->set_at[i] > at)
      at = l->set_at[i];
  }
  return at;
}

/* Loads text[0 … len) (FILE_MAX bytes at most), named `name` in the
 * messages. */
static int load_text(shoal_config *cfg, const char *name, const char *text,
                     size_t len, shoal_config_other_fn other, void *user,
                     char *err, size_t elen) {
  load *l;
  int r, rc;
  if (len > FILE_MAX) {
    say(err, elen, "%s: %zu bytes (a configuration holds at most %u)", name,
        len, FILE_MAX);
    return SHOAL_ELIMIT;
  }
  if ((l = shoal__calloc(1, sizeof *l)) == NULL) {
    say(err, elen, "%s: out of memory", name);
    return SHOAL_ENOMEM;
  }
  copy_in(&l->cfg, cfg);
  l->text = text;
  l->len = len;
  l->other = other;
  l->other_user = user;
  r = ini_parse_stream(read_line, l, on_pair, l);
  if (l->bad_line != 0) {
    say(err, elen, "%s:%d: %s", name, l->bad_line, l->msg);
    rc = l->rc;
  } else if (r > 0) {
    say(err, elen, "%s:%d: malformed line (want `key = value` or "
        "`[Section]`)", name, r);
    rc = SHOAL_EFORMAT;
  } else if (r < 0) {
    say(err, elen, "%s: out of memory while reading", name);
    rc = SHOAL_ENOMEM;
  } else if ((rc = check_whole(&l->cfg, l->msg, sizeof l->msg)) != SHOAL_OK) {
    say(err, elen, "%s:%d: %s", name, whole_line(l, l->msg), l->msg);
  } else {
    copy_out(cfg, &l->cfg);
  }
  shoal__free(l);
  return rc;
}

int shoal_config_load_mixed(shoal_config *cfg, const char *path,
                            shoal_config_other_fn other, void *user,
                            char *err, size_t len) {
  char *text;
  size_t n;
  int rc;
  if (cfg == NULL || path == NULL) {
    say(err, len, "shoal_config_load: NULL argument");
    return SHOAL_EINVAL;
  }
  if ((rc = read_file(path, &text, &n, err, len)) != SHOAL_OK)
    return rc;
  rc = load_text(cfg, path, text, n, other, user, err, len);
  shoal__free(text);
  return rc;
}

int shoal_config_load(shoal_config *cfg, const char *path, char *err,
                      size_t len) {
  return shoal_config_load_mixed(cfg, path, NULL, NULL, err, len);
}

int shoal_config_load_string(shoal_config *cfg, const char *text,
                             const char *name, shoal_config_other_fn other,
                             void *user, char *err, size_t len) {
  if (cfg == NULL || text == NULL) {
    say(err, len, "shoal_config_load_string: NULL argument");
    return SHOAL_EINVAL;
  }
  return load_text(cfg, name != NULL ? name : "<string>", text,
                   strnlen(text, FILE_MAX + 1), other, user, err, len);
}

/* ------------------------------------------------------------------------ */
/* The environment                                                          */
/* ------------------------------------------------------------------------ */

/* SHOAL_ + the key upper-cased, '.' → '_'. */
static void env_name(const char *key_name, char *out, size_t len) {
  size_t j = 0;
  const char *p = "SHOAL_";
  while (*p != '\0' && j + 1 < len)
    out[j++] = *p++;
  for (; *key_name != '\0' && j + 1 < len; key_name++)
    out[j++] = *key_name == '.' ? '_' : (char)toupper((unsigned char)*key_name);
  out[j] = '\0';
}

/* Variables named SHOAL_… that are not keys' and mean something all the
 * same: the runtime's, the tests', the scripts' and the benchmarks' own. */
static int env_known(const char *var, size_t n) {
  static const char *const known[] = {
      "SHOAL_DEBUG_YIELD", "SHOAL_TOPOLOGIES",      "SHOAL_SANITIZED",
      "SHOAL_ROOT",        "SHOAL_EXTRA_PACKAGES", "SHOAL_PACKAGES"};
  char name[96];
  if (n >= 12 && strncmp(var, "SHOAL_BENCH_", 12) == 0)
    return 1;
  for (size_t i = 0; i < SHOAL__ARRAY_SIZE(known); i++)
    if (strlen(known[i]) == n && strncmp(var, known[i], n) == 0)
      return 1;
  for (size_t i = 0; i < NKEYS; i++) {
    env_name(keys[i].name, name, sizeof name);
    if (strlen(name) == n && strncmp(var, name, n) == 0)
      return 1;
  }
  return 0;
}

extern char **environ;

/* A SHOAL_ variable that names no key is a misspelled override, most
 * likely: said once per variable through the log. */
static void env_warn_unknown(const shoal_config *cfg) {
  for (char **e = environ; e != NULL && *e != NULL; e++) {
    const char *eq = strchr(*e, '=');
    size_t n = eq != NULL ? (size_t)(eq - *e) : strlen(*e);
    if (n > 6 && strncmp(*e, "SHOAL_", 6) == 0 && !env_known(*e, n))
      shoal__log(cfg->log, cfg->log_user, SHOAL_LOG_WARN,
                 "environment %.*s names no configuration key; it is "
                 "ignored (a key's variable is SHOAL_ and the key "
                 "upper-cased, '.' as '_')",
                 (int)n, *e);
  }
}

int shoal_config_apply_env(shoal_config *cfg, char *err, size_t len) {
  shoal_config tmp;
  char name[96], msg[224];
  int rc;
  if (cfg == NULL) {
    say(err, len, "shoal_config_apply_env: NULL argument");
    return SHOAL_EINVAL;
  }
  env_warn_unknown(cfg);
  copy_in(&tmp, cfg);
  for (size_t i = 0; i < NKEYS; i++) {
    const char *v;
    env_name(keys[i].name, name, sizeof name);
    if ((v = getenv(name)) == NULL)
      continue;
    if ((rc = set_key(&tmp, &keys[i], v, msg, sizeof msg)) != SHOAL_OK) {
      say(err, len, "environment %s: %s", name, msg);
      return rc;
    }
  }
  if ((rc = check_whole(&tmp, msg, sizeof msg)) != SHOAL_OK) {
    say(err, len, "environment: %s", msg);
    return rc;
  }
  copy_out(cfg, &tmp);
  return SHOAL_OK;
}
