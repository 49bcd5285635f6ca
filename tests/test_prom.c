/* test_prom.c — shoal_metrics_prometheus: every line of the exposition is
 * a comment or a sample in the text format's grammar, each family has its
 * HELP and TYPE once, before its samples; the figures agree with what the
 * test did (ticks, the histogram's count and monotonic buckets, packets
 * sent and handled, workers, an actor's messages, a label value escaped);
 * a buffer too small gives SHOAL_ENOSPC with the length to ask for, and
 * bad arguments SHOAL_EINVAL. promtool checks the same text in the CLI
 * suite (tests/cli_test.py). */
#include <ctype.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "test_util.h"

#define SESSIONS 40
#define TICKS 25

static _Atomic uint64_t got;

static void on_msg(shoal_actor *self, void *state, const shoal_msg *m) {
  (void)self;
  (void)state;
  (void)m;
  atomic_fetch_add(&got, 1);
}

/* The text of one rendering (malloc'd), through the length call first;
 * with room to spare, since the figures (the workers' times) move
 * between the two calls. */
static char *render(shoal_mgr *mgr, shoal_actors *sys) {
  size_t len = 0, len2 = 0;
  char *buf;
  assert_int_equal(shoal_metrics_prometheus(mgr, sys, NULL, 0, &len),
                   SHOAL_ENOSPC);
  assert_true(len > 1000);
  buf = malloc(len + 4096);
  assert_non_null(buf);
  assert_int_equal(shoal_metrics_prometheus(mgr, sys, buf, len + 4096,
                                            &len2),
                   SHOAL_OK);
  assert_int_equal(len2, strlen(buf));
  return buf;
}

/* The value of the sample whose name-and-labels part is exactly `key`;
 * fails the test when there is none. */
static double sample(const char *text, const char *key) {
  size_t k = strlen(key);
  for (const char *p = text; *p != '\0';) {
    const char *eol = strchr(p, '\n');
    if (strncmp(p, key, k) == 0 && p[k] == ' ')
      return strtod(p + k + 1, NULL);
    if (eol == NULL)
      break;
    p = eol + 1;
  }
  fail_msg("no sample %s", key);
  return 0;
}

static int name_char(char c, int first) {
  return isalpha((unsigned char)c) || c == '_' || c == ':' ||
         (!first && isdigit((unsigned char)c));
}

/* One sample line: name, optional {label="value",...}, a space, a number;
 * its family (the name less _bucket/_sum/_count for a histogram) must be
 * the one last declared. */
static void check_sample(const char *line, const char *family) {
  const char *p = line;
  char name[128];
  size_t n = 0;
  char *end;
  assert_true(name_char(*p, 1));
  while (name_char(*p, 0) && n + 1 < sizeof name)
    name[n++] = *p++;
  name[n] = '\0';
  assert_true(strncmp(name, family, strlen(family)) == 0);
  if (*p == '{') {
    p++;
    while (*p != '}') {
      assert_true(name_char(*p, 1));
      while (name_char(*p, 0))
        p++;
      assert_int_equal(*p++, '=');
      assert_int_equal(*p++, '"');
      while (*p != '"') {
        assert_true(*p != '\0' && *p != '\n');
        if (*p == '\\') {
          p++;
          assert_true(*p == '\\' || *p == '"' || *p == 'n');
        }
        p++;
      }
      p++;
      if (*p == ',')
        p++;
    }
    p++;
  }
  assert_int_equal(*p++, ' ');
  (void)strtod(p, &end);
  assert_true(end > p);
  assert_true(*end == '\n');
}

/* The grammar and the HELP/TYPE rule over the whole text; returns the
 * number of families. */
static int check_grammar(const char *text) {
  char family[128] = "", declared[64][64];
  int nfam = 0;
  for (const char *p = text; *p != '\0';) {
    const char *eol = strchr(p, '\n');
    assert_non_null(eol); /* every line ends */
    if (strncmp(p, "# HELP ", 7) == 0) {
      size_t n = strcspn(p + 7, " ");
      assert_true(n < sizeof family);
      memcpy(family, p + 7, n);
      family[n] = '\0';
      for (int k = 0; k < nfam && k < 64; k++)
        assert_string_not_equal(declared[k], family);
      if (nfam < 64)
        snprintf(declared[nfam], sizeof declared[nfam], "%s", family);
      nfam++;
      /* TYPE next, for the same family, a known type */
      assert_true(strncmp(eol + 1, "# TYPE ", 7) == 0);
      assert_true(strncmp(eol + 8, family, n) == 0 && eol[8 + n] == ' ');
      assert_true(strncmp(eol + 9 + n, "counter\n", 8) == 0 ||
                  strncmp(eol + 9 + n, "gauge\n", 6) == 0 ||
                  strncmp(eol + 9 + n, "histogram\n", 10) == 0);
      /* a counter's name ends in _total */
      if (strncmp(eol + 9 + n, "counter\n", 8) == 0)
        assert_true(n > 6 && strncmp(family + n - 6, "_total", 6) == 0);
      eol = strchr(eol + 1, '\n');
    } else {
      assert_true(*p != '#');
      assert_true(family[0] != '\0');
      check_sample(p, family);
    }
    p = eol + 1;
  }
  return nfam;
}

static void exposition(void **state) {
  shoal_runtime_config rc;
  shoal_runtime *rt = NULL;
  shoal_actors_config ac;
  shoal_actors *sys = NULL;
  shoal_actor_opts o;
  shoal_mgr_callbacks cb = {test_nop_update, NULL, NULL};
  shoal_config cfg;
  shoal_mgr *mgr = NULL;
  shoal_msg m;
  char *text, key[160], small[64];
  size_t len = 0;
  double prev = 0;
  (void)state;
  shoal_runtime_config_defaults(&rc);
  rc.workers = 3;
  rc.log = test_quiet_log;
  assert_int_equal(shoal_runtime_create(&rt, &rc), SHOAL_OK);
  shoal_config_defaults(&cfg);
  cfg.log = test_quiet_log;
  assert_int_equal(shoal_mgr_create(&mgr, rt, &cfg, &cb), SHOAL_OK);
  assert_int_equal(shoal_mgr_register_opcode(mgr, 9, SHOAL_PACKET_INPLACE,
                                             SHOAL_CAT_MOVEMENT,
                                             test_nop_packet, NULL),
                   SHOAL_OK);
  shoal_actors_config_defaults(&ac);
  assert_int_equal(shoal_actors_create(&sys, rt, &ac), SHOAL_OK);
  shoal_actor_opts_defaults(&o);
  o.handler = on_msg;
  o.name = "echo \"one\"";
  assert_int_equal(shoal_actor_register(sys, 77, &o), SHOAL_OK);
  memset(&m, 0, sizeof m);
  for (int k = 0; k < 5; k++)
    assert_int_equal(shoal_try_send(sys, 77, &m), SHOAL_OK);
  for (uint32_t id = 1; id <= SESSIONS; id++)
    assert_int_equal(shoal_session_create(mgr, id, NULL), SHOAL_OK);
  for (uint32_t id = 1; id <= SESSIONS; id++)
    assert_int_equal(shoal_session_send(mgr, id, 9, 0, NULL, 0), SHOAL_OK);
  for (int t = 0; t < TICKS; t++)
    assert_int_equal(shoal_mgr_update(mgr, 50), SHOAL_OK);
  while (atomic_load(&got) < 5)
    usleep(1000);

  text = render(mgr, sys);
  assert_true(check_grammar(text) >= 40);
  assert_true(sample(text, "shoal_sessions{state=\"active\"}") == SESSIONS);
  assert_true(sample(text, "shoal_ticks_total") == TICKS);
  assert_true(sample(text, "shoal_tick_duration_seconds_count") == TICKS);
  assert_true(sample(text, "shoal_tick_duration_seconds_bucket{le=\"+Inf\"}") ==
              TICKS);
  for (const char *p = strstr(text, "shoal_tick_duration_seconds_bucket");
       p != NULL; p = strstr(p + 1, "shoal_tick_duration_seconds_bucket")) {
    double v = strtod(strchr(p, ' ') + 1, NULL);
    assert_true(v >= prev); /* cumulative */
    prev = v;
  }
  assert_true(sample(text, "shoal_tick_duration_seconds_sum") > 0);
  assert_true(sample(text, "shoal_packets_sent_total") == SESSIONS);
  assert_true(sample(text, "shoal_packets_handled_total") == SESSIONS);
  assert_true(sample(text, "shoal_workers") == 3);
  assert_true(sample(text, "shoal_worker_busy_seconds_total{worker=\"2\"}") >=
              0);
  snprintf(key, sizeof key,
           "shoal_actor_messages_total{actor=\"echo \\\"one\\\"\",id=\"77\"}");
  assert_true(sample(text, key) == 5);
  assert_true(sample(text, "shoal_actors") == 1);
  free(text);

  /* without actors: none of theirs */
  text = render(mgr, NULL);
  assert_null(strstr(text, "shoal_actor"));
  free(text);

  /* too small: nothing written but the NUL, the length told */
  memset(small, 'x', sizeof small);
  assert_int_equal(shoal_metrics_prometheus(mgr, sys, small, sizeof small,
                                            &len),
                   SHOAL_ENOSPC);
  assert_int_equal(small[0], '\0');
  assert_true(len > sizeof small);
  assert_int_equal(shoal_metrics_prometheus(NULL, sys, small, sizeof small,
                                            &len),
                   SHOAL_EINVAL);
  assert_int_equal(shoal_metrics_prometheus(mgr, sys, NULL, 10, &len),
                   SHOAL_EINVAL);

  assert_int_equal(shoal_mgr_destroy(mgr), SHOAL_OK);
  assert_int_equal(shoal_actors_destroy(sys), SHOAL_OK);
  assert_int_equal(shoal_runtime_destroy(rt), SHOAL_OK);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(exposition),
  };
  return test_run("prom", tests, SHOAL_ARRAY_LEN(tests));
}
