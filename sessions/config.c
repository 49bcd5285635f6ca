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

#include <ini.h>

#include "runtime/common.h"

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
  U("Actors.MessageQueueSize", actors.queue_size, 1, 1u << 20),
  U("Actors.BatchSize", actors.batch_size, 1, 65536),
  U("Actors.MaxMessagesPerTick", actors.max_per_tick, 0, UINT32_MAX),
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
  if (c->pool_preallocate > c->max_sessions) {
    say(err, len, "SessionMgr.PoolPreallocate: %u is above "
        "SessionMgr.MaxConcurrentSessions (%u)", c->pool_preallocate,
        c->max_sessions);
    return SHOAL_ELIMIT;
  }
  return SHOAL_OK;
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

typedef struct load {
  shoal_config cfg;
  FILE *f;
  int line;       /* of the line inih last read */
  int bad_line;   /* of the first error, 0: none */
  int rc;
  char msg[256];
  int pre_line;   /* where PoolPreallocate / MaxConcurrentSessions were */
  int max_line;
} load;

/* inih's reader: fgets, counting lines, so that the handler knows where
 * it is (Debian builds inih without INI_HANDLER_LINENO). */
static char *read_line(char *buf, int size, void *stream) {
  load *l = stream;
  char *s = fgets(buf, size, l->f);
  size_t n;
  if (s == NULL)
    return NULL;
  n = strlen(s);
  /* A line longer than inih's buffer arrives in pieces; count it once. */
  if (n > 0 && s[n - 1] == '\n')
    l->line++;
  else if (feof(l->f))
    l->line++;
  return s;
}

static int on_pair(void *user, const char *section, const char *name,
                   const char *value) {
  load *l = user;
  char full[160];
  const key *k;
  int rc, line = l->line;
  if (l->bad_line != 0)
    return 1; /* the first error is the one reported */
  if (section != NULL && section[0] != '\0')
    snprintf(full, sizeof full, "%s.%s", section, name);
  else
    snprintf(full, sizeof full, "%s", name);
  if ((k = find_key(full)) == NULL) {
    snprintf(l->msg, sizeof l->msg, "%s: unknown key", full);
    l->rc = SHOAL_EFORMAT;
    l->bad_line = line;
    return 0;
  }
  if ((rc = set_key(&l->cfg, k, value, l->msg, sizeof l->msg)) != SHOAL_OK) {
    l->rc = rc;
    l->bad_line = line;
    return 0;
  }
  if (k->off == offsetof(shoal_config, pool_preallocate))
    l->pre_line = line;
  if (k->off == offsetof(shoal_config, max_sessions))
    l->max_line = line;
  return 1;
}

int shoal_config_load(shoal_config *cfg, const char *path, char *err,
                      size_t len) {
  load *l;
  int r, rc;
  if (cfg == NULL || path == NULL) {
    say(err, len, "shoal_config_load: NULL argument");
    return SHOAL_EINVAL;
  }
  if ((l = shoal__calloc(1, sizeof *l)) == NULL) {
    say(err, len, "%s: out of memory", path);
    return SHOAL_ENOMEM;
  }
  copy_in(&l->cfg, cfg);
  if ((l->f = fopen(path, "r")) == NULL) {
    say(err, len, "%s: cannot open: %s", path, strerror(errno));
    shoal__free(l);
    return SHOAL_EIO;
  }
  r = ini_parse_stream(read_line, l, on_pair, l);
  fclose(l->f);
  if (l->bad_line != 0) {
    say(err, len, "%s:%d: %s", path, l->bad_line, l->msg);
    rc = l->rc;
  } else if (r > 0) {
    say(err, len, "%s:%d: malformed line (want `key = value` or "
        "`[Section]`)", path, r);
    rc = SHOAL_EFORMAT;
  } else if (r < 0) {
    say(err, len, "%s: out of memory while reading", path);
    rc = SHOAL_ENOMEM;
  } else if ((rc = check_whole(&l->cfg, l->msg, sizeof l->msg)) != SHOAL_OK) {
    say(err, len, "%s:%d: %s", path,
        l->pre_line > l->max_line ? l->pre_line : l->max_line, l->msg);
  } else {
    copy_out(cfg, &l->cfg);
  }
  shoal__free(l);
  return rc;
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

int shoal_config_apply_env(shoal_config *cfg, char *err, size_t len) {
  shoal_config tmp;
  char name[96], msg[224];
  int rc;
  if (cfg == NULL) {
    say(err, len, "shoal_config_apply_env: NULL argument");
    return SHOAL_EINVAL;
  }
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
