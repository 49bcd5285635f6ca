/* compare.c — `shoal stress --compare A.json B.json`: two runs' reports
 * side by side (a host's before and after), the change of each figure,
 * and the regressions beyond a tolerance. The reports are read with
 * jansson. A figure that one report lacks (an older schema) is shown as
 * missing and not compared. */
#include <jansson.h>
#include <math.h>
#include <string.h>

#include "cli.h"
#include "stress.h"

/* Which way a figure should move. */
enum { LOWER = -1, SAME = 0, HIGHER = 1 };

typedef struct figure {
  const char *path; /* in the report, dot-separated */
  const char *label;
  int better;       /* LOWER, HIGHER; SAME: shown, never a regression */
} figure;

/* The run's setup: shown first; a difference is said, not judged. */
static const figure setup[] = {
  {"sessions", "sessions", SAME},
  {"workers", "workers", SAME},
  {"tps", "ticks per second", SAME},
  {"duration_s", "duration (s)", SAME},
  {"budget_ms", "budget (ms)", SAME},
  {"maps.maps", "maps", SAME},
};

static const figure figures[] = {
  {"tick_ms.p50", "tick p50 (ms)", LOWER},
  {"tick_ms.p99", "tick p99 (ms)", LOWER},
  {"tick_ms.p999", "tick p99.9 (ms)", LOWER},
  {"tick_ms.max", "tick max (ms)", LOWER},
  {"headroom_ms", "headroom (ms)", HIGHER},
  {"overhead_ns_per_session", "shoal overhead (ns/update)", LOWER},
  {"cpu_us_per_session", "CPU per session (us/s)", LOWER},
  {"capacity.sessions", "capacity (sessions)", HIGHER},
  {"packets.per_s", "packets handled per s", SAME},
  {"packets.main_thread_share", "main thread's share", LOWER},
  {"packets.deferred_max", "deferred queue, deepest", LOWER},
  {"packets.drain_p99_ms", "drain p99 (ms)", LOWER},
  {"maps.map_phase_share", "map phase's share", LOWER},
  {"maps.biggest_map_share", "biggest map's share", SAME},
  {"payloads.bytes_per_s", "payload bytes per s", SAME},
  {"hibernations", "hibernations", SAME},
  {"rss.active_bytes_per_session", "resident B per active session", LOWER},
  {"rss.hibernated_bytes_per_session", "resident B per hibernated", LOWER},
  {"rss.record_bytes_per_session", "record B per hibernated", LOWER},
};

static const char *const checks[] = {
  "budget", "packets", "economy", "order", "hibernation",
  "messaging", "payloads", "limits", "maps", "timers",
};

/* The value at a dot-separated path, or NULL. */
static json_t *at(json_t *doc, const char *path) {
  char key[64];
  while (doc != NULL && *path != '\0') {
    size_t n = strcspn(path, ".");
    if (n >= sizeof key)
      return NULL;
    memcpy(key, path, n);
    key[n] = '\0';
    doc = json_is_object(doc) ? json_object_get(doc, key) : NULL;
    path += n + (path[n] == '.');
  }
  return doc;
}

static int number(json_t *doc, const char *path, double *v) {
  json_t *x = at(doc, path);
  if (!json_is_number(x))
    return 0;
  *v = json_number_value(x);
  return 1;
}

static json_t *load(const char *path) {
  json_error_t e;
  json_t *doc = json_load_file(path, 0, &e);
  if (doc == NULL) {
    if (e.line > 0)
      cli_usage_error(ST_PROG, "%s:%d: %s", path, e.line, e.text);
    else
      cli_usage_error(ST_PROG, "%s", e.text);
    return NULL;
  }
  if (!json_is_object(doc) || !json_is_string(json_object_get(doc, "verdict"))) {
    cli_usage_error(ST_PROG, "%s is not a shoal stress report (no verdict)",
                    path);
    json_decref(doc);
    return NULL;
  }
  return doc;
}

static void cell(char *buf, size_t cap, int have, double v) {
  if (!have)
    snprintf(buf, cap, "-");
  else if (v == floor(v) && fabs(v) < 1e15)
    snprintf(buf, cap, "%.0f", v);
  else if (v != 0 && fabs(v) < 0.01)
    snprintf(buf, cap, "%.3g", v);
  else if (fabs(v) >= 1e6)
    snprintf(buf, cap, "%.4g", v);
  else
    snprintf(buf, cap, "%.2f", v);
}

/* One figure's row; returns 1 when it is a regression. The labels list
 * the regressions for the summary. */
static int row(FILE *f, const figure *g, json_t *a, json_t *b, double tol,
               char *names, size_t cap) {
  double va = 0, vb = 0, change;
  int ha = number(a, g->path, &va), hb = number(b, g->path, &vb), bad;
  char ca[32], cb[32], cc[48];
  if (!ha && !hb)
    return 0; /* neither report has it: not a row */
  cell(ca, sizeof ca, ha, va);
  cell(cb, sizeof cb, hb, vb);
  if (!ha || !hb) {
    fprintf(f, "  %-32s %14s %14s   %s\n", g->label, ca, cb,
            ha ? "not in B" : "not in A");
    return 0;
  }
  if (va == vb) {
    fprintf(f, "  %-32s %14s %14s   =\n", g->label, ca, cb);
    return 0;
  }
  if (va == 0) {
    fprintf(f, "  %-32s %14s %14s   (was 0)\n", g->label, ca, cb);
    return 0;
  }
  change = (vb - va) / fabs(va) * 100.0;
  bad = g->better != SAME && change * g->better < -tol;
  snprintf(cc, sizeof cc, "%+.1f %%%s", change,
           bad ? "  REGRESSION"
               : g->better != SAME && change * g->better > tol ? "  better"
                                                              : "");
  fprintf(f, "  %-32s %14s %14s   %s\n", g->label, ca, cb, cc);
  if (bad && strlen(names) + strlen(g->label) + 3 < cap) {
    if (names[0] != '\0')
      strcat(names, ", ");
    strcat(names, g->label);
  }
  return bad;
}

/* PASS → FAIL, and each check that held in A and not in B. */
static int verdicts(FILE *f, json_t *a, json_t *b, char *names, size_t cap) {
  const char *va = json_string_value(json_object_get(a, "verdict"));
  const char *vb = json_string_value(json_object_get(b, "verdict"));
  int bad = strcmp(va, "PASS") == 0 && strcmp(vb, "PASS") != 0, n = bad;
  fprintf(f, "  %-32s %14s %14s%s\n", "verdict", va, vb,
          bad ? "   REGRESSION" : "");
  if (bad && strlen(names) + 12 < cap)
    strcat(names, names[0] != '\0' ? ", verdict" : "verdict");
  for (size_t k = 0; k < sizeof checks / sizeof checks[0]; k++) {
    char path[32];
    json_t *ca, *cb;
    snprintf(path, sizeof path, "checks.%s", checks[k]);
    ca = at(a, path);
    cb = at(b, path);
    if (!json_is_boolean(ca) && !json_is_boolean(cb))
      continue;
    bad = json_is_true(ca) && json_is_false(cb);
    fprintf(f, "  check %-26s %14s %14s%s\n", checks[k],
            !json_is_boolean(ca) ? "-" : json_is_true(ca) ? "holds" : "FAILS",
            !json_is_boolean(cb) ? "-" : json_is_true(cb) ? "holds" : "FAILS",
            bad ? "   REGRESSION" : "");
    if (bad && strlen(names) + strlen(checks[k]) + 10 < cap) {
      if (names[0] != '\0')
        strcat(names, ", ");
      strcat(names, "check ");
      strcat(names, checks[k]);
    }
    n += bad;
  }
  return n;
}

int st_compare(const char *pa, const char *pb, double tol) {
  json_t *a = load(pa), *b = a != NULL ? load(pb) : NULL;
  char names[1024] = "";
  int bad = 0, differ = 0;
  if (a == NULL || b == NULL) {
    json_decref(a);
    return CLI_USAGE;
  }
  printf("shoal stress --compare: A = %s, B = %s (tolerance %.3g %%)\n\n", pa,
         pb, tol);
  printf("  %-32s %14s %14s\n", "setup", "A", "B");
  for (size_t k = 0; k < sizeof setup / sizeof setup[0]; k++) {
    double va = 0, vb = 0;
    int ha = number(a, setup[k].path, &va), hb = number(b, setup[k].path, &vb);
    char ca[32], cb[32];
    if (!ha && !hb)
      continue;
    cell(ca, sizeof ca, ha, va);
    cell(cb, sizeof cb, hb, vb);
    differ += ha && hb && va != vb;
    printf("  %-32s %14s %14s%s\n", setup[k].label, ca, cb,
           ha && hb && va != vb ? "   differs" : "");
  }
  printf("\n  %-32s %14s %14s   %s\n", "figure", "A", "B", "change");
  for (size_t k = 0; k < sizeof figures / sizeof figures[0]; k++)
    bad += row(stdout, &figures[k], a, b, tol, names, sizeof names);
  printf("\n");
  bad += verdicts(stdout, a, b, names, sizeof names);
  printf("\n");
  if (differ)
    printf("note: the runs' setups differ; their figures compare different "
           "work\n");
  if (bad)
    printf("%d regression%s beyond %.3g %%: %s\n", bad, bad == 1 ? "" : "s",
           tol, names);
  else
    printf("no regression beyond %.3g %%\n", tol);
  json_decref(a);
  json_decref(b);
  return cli_finish_output(ST_PROG, bad ? CLI_FAIL : CLI_OK);
}
