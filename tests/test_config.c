/* test_config.c — shoal_config: defaults, every key through a file (full
 * names and sections, booleans' spellings, comments), every kind of bad
 * input with its message naming file, line and key, a failed load leaving
 * the configuration untouched, the environment's overrides, and the
 * manager taking its settings. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test_util.h"

static char path[64];

static const char *write_file(const char *text) {
  FILE *f;
  snprintf(path, sizeof path, "/tmp/shoal-config-%d.conf", (int)getpid());
  f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
  return path;
}

static void defaults(void **state) {
  shoal_config c;
  (void)state;
  shoal_config_defaults(&c);
  assert_int_equal(c.max_sessions, 5000);
  assert_int_equal(c.batch_size, 64);
  assert_int_equal(c.worker_threads, 0);
  assert_int_equal(c.max_worker_threads, 0);
  assert_int_equal(c.hibernation_minutes, 5);
  assert_int_equal(c.enable_simd, 1);
  assert_int_equal(c.auto_defragment, 1);
  assert_int_equal(c.defragment_seconds, 60);
  assert_int_equal(c.hysteresis_seconds, 60);
  assert_int_equal(c.hibernate_per_update, 1024);
  assert_int_equal(c.pool_preallocate, 1000);
  assert_int_equal(c.pool_grow, 100);
  assert_int_equal(c.actors.queue_size, 1024);
  assert_int_equal(c.packets_per_update, 100);
  assert_int_equal(c.strict_packet_order, 1);
  assert_int_equal(c.defer_packets, 1);
  assert_int_equal(c.deferred_per_session, 50);
  assert_int_equal(c.inbox_size, 256);
  assert_int_equal(c.max_queued_packets, 262144);
  assert_int_equal(c.watchdog_ms, 5000);
  assert_int_equal(c.callback_budget_ms, 0);
  assert_int_equal(c.max_packet_bytes, 65536);
  assert_int_equal(c.payload_budget_mb, 64);
  assert_int_equal(c.deferred_warn, 65536);
  for (int k = 0; k < SHOAL_CAT_COUNT; k++)
    assert_int_equal(c.rate_limit[k], 0);
  assert_int_equal(c.rate_burst_ms, 1000);
  assert_int_equal(c.moved_seconds, 60);
  assert_int_equal(c.struct_size, sizeof c);
  assert_int_equal(shoal_config_key_count(), 51);
  assert_string_equal(shoal_config_key_name(0),
                      "SessionMgr.MaxConcurrentSessions");
  assert_null(shoal_config_key_name(51));
}

static void every_key(void **state) {
  shoal_config c;
  char err[256] = "";
  (void)state;
  shoal_config_defaults(&c);
  write_file("# a host's file\n"
             "SessionMgr.MaxConcurrentSessions = 8000\n"
             "SessionMgr.UpdateBatchSize = 128 ; inline comment\n"
             "\n"
             "[SessionMgr]\n"
             "WorkerThreads = 4\n"
             "MaxWorkerThreads = 6\n"
             "HibernationThresholdMinutes=10\n"
             "EnableSIMD = false\n"
             "EnableAutoDefragmentation = off\n"
             "DefragmentationIntervalSeconds = 30\n"
             "HibernationHysteresisSeconds = 0\n"
             "HibernatePerUpdate = 64\n"
             "PoolPreallocate = 2000\n"
             "PoolGrowBatch = 50\n"
             "MaxPacketsPerUpdate = 20\n"
             "StrictPacketOrder = no\n"
             "DeferPackets = 0\n"
             "DeferredPerSession = 7\n"
             "InboxSize = 1000\n"
             "MaxQueuedPackets = 4096\n"
             "[Actors]\n"
             "MessageQueueSize = 4096\n"
             "BatchSize = 32\n"
             "MaxMessagesPerTick = 500\n");
  assert_int_equal(shoal_config_load(&c, path, err, sizeof err), SHOAL_OK);
  assert_int_equal(c.max_sessions, 8000);
  assert_int_equal(c.batch_size, 128);
  assert_int_equal(c.worker_threads, 4);
  assert_int_equal(c.max_worker_threads, 6);
  assert_int_equal(c.hibernation_minutes, 10);
  assert_int_equal(c.enable_simd, 0);
  assert_int_equal(c.auto_defragment, 0);
  assert_int_equal(c.defragment_seconds, 30);
  assert_int_equal(c.hysteresis_seconds, 0);
  assert_int_equal(c.hibernate_per_update, 64);
  assert_int_equal(c.pool_preallocate, 2000);
  assert_int_equal(c.pool_grow, 50);
  assert_int_equal(c.packets_per_update, 20);
  assert_int_equal(c.strict_packet_order, 0);
  assert_int_equal(c.defer_packets, 0);
  assert_int_equal(c.deferred_per_session, 7);
  assert_int_equal(c.inbox_size, 1000);
  assert_int_equal(c.max_queued_packets, 4096);
  assert_int_equal(c.actors.queue_size, 4096);
  assert_int_equal(c.actors.batch_size, 32);
  assert_int_equal(c.actors.max_per_tick, 500);
  /* booleans: every spelling; keys are not case-sensitive */
  write_file("sessionmgr.enablesimd = YES\n");
  assert_int_equal(shoal_config_load(&c, path, err, sizeof err), SHOAL_OK);
  assert_int_equal(c.enable_simd, 1);
  assert_int_equal(shoal_config_set(&c, "SessionMgr.EnableSIMD", "0", err,
                                    sizeof err), SHOAL_OK);
  assert_int_equal(c.enable_simd, 0);
  assert_int_equal(shoal_config_set(&c, "SessionMgr.EnableSIMD", "on", err,
                                    sizeof err), SHOAL_OK);
  assert_int_equal(c.enable_simd, 1);
  unlink(path);
}

typedef struct bad_case {
  const char *text;
  int rc;
  const char *msg; /* after "PATH:" */
} bad_case;

static void bad_input(void **state) {
  static const bad_case cases[] = {
    {"SessionMgr.Nope = 1\n", SHOAL_EFORMAT, "1: SessionMgr.Nope: unknown key"},
    {"\n\nSessionMgr.UpdateBatchSize = 257\n", SHOAL_ELIMIT,
     "3: SessionMgr.UpdateBatchSize: 257 is out of range (0 … 256)"},
    {"SessionMgr.InboxSize = 0\n", SHOAL_ELIMIT,
     "1: SessionMgr.InboxSize: 0 is out of range (1 … 65536)"},
    {"SessionMgr.MaxQueuedPackets = 63\n", SHOAL_ELIMIT,
     "1: SessionMgr.MaxQueuedPackets: 63 is out of range (64 … 67108864)"},
    {"SessionMgr.StrictPacketOrder = 2\n", SHOAL_EFORMAT,
     "1: SessionMgr.StrictPacketOrder: '2' is not a boolean (0/1, "
     "true/false, yes/no, on/off)"},
    {"SessionMgr.MaxConcurrentSessions = 0\n", SHOAL_ELIMIT,
     "1: SessionMgr.MaxConcurrentSessions: 0 is out of range (1 … 16777216)"},
    {"SessionMgr.WorkerThreads = -1\n", SHOAL_EFORMAT,
     "1: SessionMgr.WorkerThreads: '-1' is not a non-negative decimal number"},
    {"SessionMgr.WorkerThreads = 4x\n", SHOAL_EFORMAT,
     "1: SessionMgr.WorkerThreads: '4x' is not a non-negative decimal number"},
    {"SessionMgr.WorkerThreads =\n", SHOAL_EFORMAT,
     "1: SessionMgr.WorkerThreads: '' is not a non-negative decimal number"},
    {"SessionMgr.PoolPreallocate = 99999999999999999999999\n", SHOAL_EFORMAT,
     "1: SessionMgr.PoolPreallocate: '99999999999999999999999' is not a "
     "non-negative decimal number"},
    {"SessionMgr.HibernationThresholdMinutes = 0\n", SHOAL_ELIMIT,
     "1: SessionMgr.HibernationThresholdMinutes: 0 is out of range (1 … "
     "10080)"},
    {"SessionMgr.EnableSIMD = maybe\n", SHOAL_EFORMAT,
     "1: SessionMgr.EnableSIMD: 'maybe' is not a boolean (0/1, true/false, "
     "yes/no, on/off)"},
    {"SessionMgr.EnableAutoDefragmentation = 2\n", SHOAL_EFORMAT,
     "1: SessionMgr.EnableAutoDefragmentation: '2' is not a boolean (0/1, "
     "true/false, yes/no, on/off)"},
    {"SessionMgr.PoolGrowBatch = 0\n", SHOAL_ELIMIT,
     "1: SessionMgr.PoolGrowBatch: 0 is out of range (1 … 65536)"},
    {"Actors.MessageQueueSize = 2000000\n", SHOAL_ELIMIT,
     "1: Actors.MessageQueueSize: 2000000 is out of range (1 … 1048576)"},
    {"Actors.BatchSize = 0\n", SHOAL_ELIMIT,
     "1: Actors.BatchSize: 0 is out of range (1 … 65536)"},
    {"Actors.MaxMessagesPerTick = 4294967296\n", SHOAL_ELIMIT,
     "1: Actors.MaxMessagesPerTick: 4294967296 is out of range (0 … "
     "4294967295)"},
    {"[Actors]\nWorkerThreads = 2\n", SHOAL_EFORMAT,
     "2: Actors.WorkerThreads: unknown key"},
    {"SessionMgr.UpdateBatchSize = 32\nthis line has no equals sign\n",
     SHOAL_EFORMAT, "2: malformed line (want `key = value` or `[Section]`)"},
    {"SessionMgr.MaxConcurrentSessions = 100\n"
     "SessionMgr.PoolPreallocate = 200\n", SHOAL_ELIMIT,
     "2: SessionMgr.PoolPreallocate: 200 is above "
     "SessionMgr.MaxConcurrentSessions (100)"},
    {"SessionMgr.MaxWorkerThreads = 4\nSessionMgr.WorkerThreads = 8\n",
     SHOAL_ELIMIT,
     "2: SessionMgr.MaxWorkerThreads: 4 is below SessionMgr.WorkerThreads "
     "(8)"},
  };
  (void)state;
  for (size_t i = 0; i < SHOAL_ARRAY_LEN(cases); i++) {
    shoal_config c, before;
    char err[256] = "", want[320];
    shoal_config_defaults(&c);
    c.batch_size = 7; /* what the caller had: must survive */
    before = c;
    write_file(cases[i].text);
    assert_int_equal(shoal_config_load(&c, path, err, sizeof err),
                     cases[i].rc);
    snprintf(want, sizeof want, "%s:%s", path, cases[i].msg);
    assert_string_equal(err, want);
    assert_memory_equal(&c, &before, sizeof c);
  }
  unlink(path);
  {
    shoal_config c;
    char err[256] = "";
    shoal_config_defaults(&c);
    assert_int_equal(shoal_config_load(&c, "/nonexistent/shoal.conf", err,
                                       sizeof err), SHOAL_EIO);
    assert_non_null(strstr(err, "/nonexistent/shoal.conf: cannot open"));
    assert_int_equal(shoal_config_load(NULL, "x", err, sizeof err),
                     SHOAL_EINVAL);
    assert_int_equal(shoal_config_set(&c, "Bogus", "1", err, sizeof err),
                     SHOAL_EFORMAT);
    assert_string_equal(err, "Bogus: unknown key");
    /* err may be NULL */
    assert_int_equal(shoal_config_set(&c, "Bogus", "1", NULL, 0),
                     SHOAL_EFORMAT);
  }
}

/* The file as bytes (NUL included). */
static void write_bytes(const char *text, size_t n) {
  FILE *f;
  snprintf(path, sizeof path, "/tmp/shoal-config-%d.conf", (int)getpid());
  f = fopen(path, "w");
  assert_non_null(f);
  assert_int_equal(fwrite(text, 1, n, f), n);
  fclose(f);
}

/* Loads `file` into a configuration whose inbox_size is 99: the result,
 * the message after "FILE:" (or whole, when want_path is 0) in err. */
static int load_into(const char *file, shoal_config *c, char *err,
                     size_t len) {
  shoal_config before;
  int rc;
  shoal_config_defaults(c);
  c->inbox_size = 99;
  before = *c;
  rc = shoal_config_load(c, file, err, len);
  if (rc != SHOAL_OK) /* nothing applied */
    assert_memory_equal(c, &before, sizeof *c);
  return rc;
}

/* Lines of any length up to the maximum, comments never applied, NUL and
 * bad UTF-8 refused on their line, no multi-line continuation, a key set
 * twice refused, only regular files of bounded size. */
static void file_edges(void **state) {
  static char big[(1u << 20) + 64];
  static const struct {
    const char *text;
    size_t n; /* 0: strlen */
    int rc;
    const char *msg; /* after "FILE:" */
    unsigned inbox;  /* when rc is 0 */
  } cases[] = {
      /* A long comment's tail is a comment, not a key. */
      {"# xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
       "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
       "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
       " SessionMgr.InboxSize = 7\n",
       0, SHOAL_OK, NULL, 99},
      /* An error after a long line names its own line. */
      {"; yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy"
       "yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy"
       "yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy"
       "yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy"
       "yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy\n"
       "SessionMgr.Bogus = 1\n",
       0, SHOAL_EFORMAT, "2: SessionMgr.Bogus: unknown key", 0},
      {"SessionMgr.InboxSize = 12 ; twelve, and a long reason: "
       "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"
       "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"
       "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"
       "\n",
       0, SHOAL_OK, NULL, 12},
      {"SessionMgr.InboxSize = 13 # also a comment\n", 0, SHOAL_OK, NULL, 13},
      {"SessionMgr.InboxSize = 12\0 34\n", 30, SHOAL_EFORMAT,
       "1: a NUL byte at column 26", 0},
      {"# ok\n; ok\n# caf\xE9\n", 0, SHOAL_EFORMAT, "3: not UTF-8 (byte 6)",
       0},
      {"# caf\xC3\xA9, na\xC3\xAFve\n\xC0\xAF = 1\n", 0,
       SHOAL_EFORMAT, "2: not UTF-8 (byte 1)", 0},
      {"\xEF\xBB\xBFSessionMgr.InboxSize = 14\n", 0, SHOAL_OK, NULL, 14},
      {"# surrogate \xED\xA0\x80\n", 0, SHOAL_EFORMAT, "1: not UTF-8 (byte 13)",
       0},
      /* An indented line is a line of its own, never a continuation. */
      {"SessionMgr.InboxSize = 12\n  7\n", 0, SHOAL_EFORMAT,
       "2: malformed line (want `key = value` or `[Section]`)", 0},
      {"[SessionMgr]\n  InboxSize = 15\n\tBatchSize = 16\n", 0, SHOAL_EFORMAT,
       "3: SessionMgr.BatchSize: unknown key", 0},
      {"[SessionMgr]\n  InboxSize = 15\n", 0, SHOAL_OK, NULL, 15},
      {"SessionMgr.InboxSize = 12\n[SessionMgr]\ninboxsize = 13\n", 0,
       SHOAL_EFORMAT, "3: SessionMgr.InboxSize: set again (first at line 1)",
       0},
  };
  shoal_config c;
  char err[512], want[600];
  (void)state;
  for (size_t i = 0; i < SHOAL_ARRAY_LEN(cases); i++) {
    size_t n = cases[i].n != 0 ? cases[i].n : strlen(cases[i].text);
    write_bytes(cases[i].text, n);
    err[0] = '\0';
    if (load_into(path, &c, err, sizeof err) != cases[i].rc)
      fail_msg("case %zu: %s", i, err);
    if (cases[i].rc == SHOAL_OK) {
      assert_int_equal(c.inbox_size, cases[i].inbox);
      continue;
    }
    snprintf(want, sizeof want, "%s:%s", path, cases[i].msg);
    assert_string_equal(err, want);
  }
  /* Lines up to 4096 bytes; one longer names its line. */
  memset(big, ' ', sizeof big);
  memcpy(big, "# a\n#", 5);
  big[4096 + 4] = '\n';
  memcpy(big + 4096 + 5, "SessionMgr.InboxSize = 17\n#", 27);
  big[4096 + 5 + 26 + 4097] = '\n';
  write_bytes(big, 4096 + 5 + 26);
  assert_int_equal(load_into(path, &c, err, sizeof err), SHOAL_OK);
  assert_int_equal(c.inbox_size, 17);
  write_bytes(big, 4096 + 5 + 26 + 4098);
  assert_int_equal(load_into(path, &c, err, sizeof err), SHOAL_ELIMIT);
  snprintf(want, sizeof want, "%s:4: line of 4097 bytes (at most 4096)", path);
  assert_string_equal(err, want);
  /* A file of more than 1 MiB. */
  write_bytes(big, sizeof big);
  assert_int_equal(load_into(path, &c, err, sizeof err), SHOAL_ELIMIT);
  assert_non_null(strstr(err, "at most 1048576"));
  unlink(path);
  /* Only regular files: never a wait, never a read of a device. */
  assert_int_equal(load_into("/tmp", &c, err, sizeof err), SHOAL_EIO);
  assert_string_equal(err, "/tmp: not a regular file (a directory)");
  assert_int_equal(load_into("/dev/zero", &c, err, sizeof err), SHOAL_EIO);
  assert_string_equal(err, "/dev/zero: not a regular file (a device)");
  snprintf(path, sizeof path, "/tmp/shoal-fifo-%d", (int)getpid());
  assert_int_equal(mkfifo(path, 0600), 0);
  assert_int_equal(load_into(path, &c, err, sizeof err), SHOAL_EIO);
  assert_non_null(strstr(err, "not a regular file (a FIFO)"));
  unlink(path);
}

static void environment(void **state) {
  shoal_config c;
  char err[256] = "";
  (void)state;
  shoal_config_defaults(&c);
  write_file("SessionMgr.UpdateBatchSize = 32\n");
  assert_int_equal(shoal_config_load(&c, path, err, sizeof err), SHOAL_OK);
  setenv("SHOAL_SESSIONMGR_UPDATEBATCHSIZE", "128", 1);
  setenv("SHOAL_ACTORS_BATCHSIZE", "16", 1);
  assert_int_equal(shoal_config_apply_env(&c, err, sizeof err), SHOAL_OK);
  assert_int_equal(c.batch_size, 128);
  assert_int_equal(c.actors.batch_size, 16);
  setenv("SHOAL_SESSIONMGR_WORKERTHREADS", "lots", 1);
  c.batch_size = 9;
  assert_int_equal(shoal_config_apply_env(&c, err, sizeof err),
                   SHOAL_EFORMAT);
  assert_string_equal(err, "environment SHOAL_SESSIONMGR_WORKERTHREADS: "
                           "SessionMgr.WorkerThreads: 'lots' is not a "
                           "non-negative decimal number");
  assert_int_equal(c.batch_size, 9); /* unchanged */
  unsetenv("SHOAL_SESSIONMGR_WORKERTHREADS");
  unsetenv("SHOAL_SESSIONMGR_UPDATEBATCHSIZE");
  unsetenv("SHOAL_ACTORS_BATCHSIZE");
  unlink(path);
}

/* The host's half of a shared file: what it was given, in order. */
typedef struct host_keys {
  char seen[8][96];
  int lines[8];
  int n;
  int refuse_line; /* refuses the key on this line; 0: none */
} host_keys;

static int take_other(void *user, const char *section, const char *key,
                      const char *value, int line) {
  host_keys *h = user;
  if (line == h->refuse_line)
    return -1;
  if (h->n < 8) {
    snprintf(h->seen[h->n], sizeof h->seen[h->n], "%s|%s|%s", section, key,
             value);
    h->lines[h->n++] = line;
  }
  return 0;
}

/* One file for a game server and shoal: shoal takes its sections, the
 * host gets the rest; a misspelling in shoal's sections is still an
 * error; from a string as from a file. */
static void mixed_file(void **state) {
  static const char text[] =
      "# worldserver.conf\n"
      "DataDir = \".\"\n"
      "Rate.XP.Kill = 2\n"
      "SessionMgr.UpdateBatchSize = 48\n"
      "SessionMgr.RateLimit.Chat = 5\n"
      "[World]\n"
      "Port = 8085\n"
      "[Actors]\n"
      "BatchSize = 8\n";
  shoal_config c;
  host_keys h;
  char err[256] = "";
  (void)state;
  /* without a callback, the host's keys are errors as before */
  shoal_config_defaults(&c);
  assert_int_equal(shoal_config_load_string(&c, text, "world.conf", NULL,
                                            NULL, err, sizeof err),
                   SHOAL_EFORMAT);
  assert_string_equal(err, "world.conf:2: DataDir: unknown key");
  assert_int_equal(c.batch_size, 64);
  memset(&h, 0, sizeof h);
  assert_int_equal(shoal_config_load_string(&c, text, "world.conf",
                                            take_other, &h, err, sizeof err),
                   SHOAL_OK);
  assert_int_equal(c.batch_size, 48);
  assert_int_equal(c.rate_limit[SHOAL_CAT_CHAT], 5);
  assert_int_equal(c.actors.batch_size, 8);
  assert_int_equal(h.n, 3);
  assert_string_equal(h.seen[0], "|DataDir|\".\"");
  assert_int_equal(h.lines[0], 2);
  assert_string_equal(h.seen[1], "|Rate.XP.Kill|2");
  assert_string_equal(h.seen[2], "World|Port|8085");
  assert_int_equal(h.lines[2], 7);
  /* the same from a file */
  shoal_config_defaults(&c);
  memset(&h, 0, sizeof h);
  write_file(text);
  assert_int_equal(shoal_config_load_mixed(&c, path, take_other, &h, err,
                                           sizeof err),
                   SHOAL_OK);
  assert_int_equal(c.batch_size, 48);
  assert_int_equal(h.n, 3);
  /* a misspelling in shoal's section: an error, the host or not */
  shoal_config_defaults(&c);
  memset(&h, 0, sizeof h);
  assert_int_equal(shoal_config_load_string(
                       &c, "Foo = 1\nSessionMgr.UpdateBatchSise = 3\n", NULL,
                       take_other, &h, err, sizeof err),
                   SHOAL_EFORMAT);
  assert_string_equal(err,
                      "<string>:2: SessionMgr.UpdateBatchSise: unknown key");
  /* the host refuses a line: the load fails there, shoal's part untouched */
  memset(&h, 0, sizeof h);
  h.refuse_line = 3;
  assert_int_equal(shoal_config_load_string(&c, text, "world.conf",
                                            take_other, &h, err, sizeof err),
                   SHOAL_EFORMAT);
  assert_string_equal(err, "world.conf:3: Rate.XP.Kill: refused by the host");
  assert_int_equal(c.batch_size, 64);
  assert_int_equal(shoal_config_load_string(NULL, text, NULL, NULL, NULL, err,
                                            sizeof err),
                   SHOAL_EINVAL);
  unlink(path);
}

typedef struct warns {
  int n;
  char last[256];
} warns;

static void count_warns(void *user, shoal_log_level level, const char *msg) {
  warns *w = user;
  if (level == SHOAL_LOG_WARN) {
    w->n++;
    snprintf(w->last, sizeof w->last, "%s", msg);
  }
}

/* A SHOAL_ variable that names no key is warned of, once per call; the
 * keys' own and the tools' are not. */
static void env_unknown(void **state) {
  shoal_config c;
  warns w = {0, ""};
  char err[256] = "";
  int before;
  (void)state;
  shoal_config_defaults(&c);
  c.log = count_warns;
  c.log_user = &w;
  setenv("SHOAL_SESSIONMGR_UPDATEBATCHSIZE", "100", 1);
  setenv("SHOAL_DEBUG_YIELD", "0", 1);
  assert_int_equal(shoal_config_apply_env(&c, err, sizeof err), SHOAL_OK);
  before = w.n; /* the caller's environment may hold others */
  assert_int_equal(c.batch_size, 100);
  setenv("SHOAL_SESSIONMGR_UPDATEBATCHSISE", "7", 1);
  w.n = 0;
  assert_int_equal(shoal_config_apply_env(&c, err, sizeof err), SHOAL_OK);
  assert_int_equal(w.n, before + 1);
  assert_non_null(strstr(w.last, "SHOAL_SESSIONMGR_UPDATEBATCHSISE names no "
                                 "configuration key"));
  assert_int_equal(c.batch_size, 100);
  unsetenv("SHOAL_SESSIONMGR_UPDATEBATCHSISE");
  unsetenv("SHOAL_SESSIONMGR_UPDATEBATCHSIZE");
  unsetenv("SHOAL_DEBUG_YIELD");
}

static int noop(void *h, uint32_t id, void *user, uint32_t diff) {
  (void)h;
  (void)id;
  (void)user;
  (void)diff;
  return 0;
}

/* The manager takes the file's settings. */
static void manager_takes_it(void **state) {
  shoal_config c;
  shoal_mgr *mgr = NULL;
  shoal_mgr_callbacks cb = {noop, NULL, NULL};
  shoal_mgr_metrics m;
  char err[256] = "";
  (void)state;
  shoal_config_defaults(&c);
  write_file("[SessionMgr]\nMaxConcurrentSessions = 3\nPoolPreallocate = 2\n"
             "WorkerThreads = 2\nEnableSIMD = 0\n");
  assert_int_equal(shoal_config_load(&c, path, err, sizeof err), SHOAL_OK);
  assert_int_equal(shoal_mgr_create(&mgr, NULL, &c, &cb), SHOAL_OK);
  assert_int_equal(shoal_runtime_workers(shoal_mgr_runtime(mgr)), 2);
  for (uint32_t id = 1; id <= 3; id++)
    assert_int_equal(shoal_session_create(mgr, id, NULL), SHOAL_OK);
  assert_int_equal(shoal_session_create(mgr, 4, NULL), SHOAL_ELIMIT);
  assert_int_equal(shoal_mgr_metrics_get(mgr, &m, 0), SHOAL_OK);
  assert_string_equal(m.simd, "scalar");
  assert_int_equal(shoal_mgr_destroy(mgr), SHOAL_OK);
  unlink(path);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(defaults),
    cmocka_unit_test(every_key),
    cmocka_unit_test(bad_input),
    cmocka_unit_test(file_edges),
    cmocka_unit_test(environment),
    cmocka_unit_test(mixed_file),
    cmocka_unit_test(env_unknown),
    cmocka_unit_test(manager_takes_it),
  };
  return test_run("config", tests, SHOAL_ARRAY_LEN(tests));
}
