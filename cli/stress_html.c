/* stress_html.c — `shoal stress --html`: the report as one self-contained
 * page (inline SVG and CSS, no script, no network), laid out for 1280 px
 * and for print. The verdict and the invariants first; then charts with
 * axes, ticks, units and legends: the tick per second against the budget,
 * its histogram, the update's split by phase, packets per second by class
 * and by category, the deferred queue and the main thread's drain, the
 * workers' utilization over time, hibernations and wakes, resident
 * memory, the load per map, and the capacity curve of --find-max. Every
 * mark is drawn inside its plot (class "plot"), which the browser test
 * checks. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "stress.h"

#define W 1160    /* a chart's width: the page's 1280 px less margins */
#define H 280
#define L 70      /* plot area: left, right, top, bottom margins */
#define R 20
#define T 34
#define B 46
#define PW (W - L - R)
#define PH (H - T - B)
#define COLORS 8

/* One line of a chart. */
typedef struct series {
  const char *name;
  const double *x, *y;
  size_t n;
} series;

/* 1, 2 or 5 × 10^k at or above v / 5: a tick step for a range of v. */
static double nice_step(double v) {
  double p, m;
  if (v <= 0)
    return 1;
  p = pow(10, floor(log10(v / 5)));
  m = v / 5 / p;
  return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
}

static double px(double x, double x0, double x1) {
  return L + (x1 > x0 ? (x - x0) / (x1 - x0) : 0) * PW;
}
static double py(double y, double y1) {
  return T + PH - (y1 > 0 ? y / y1 : 0) * PH;
}

static void chart_open(FILE *f, const char *title, const char *note) {
  fprintf(f, "<figure><figcaption>%s</figcaption>\n", title);
  if (note != NULL)
    fprintf(f, "<p class=\"note\">%s</p>\n", note);
  fprintf(f, "<svg class=\"chart\" width=\"%d\" height=\"%d\" viewBox=\"0 0 "
          "%d %d\" role=\"img\" aria-label=\"%s\">\n", W, H, W, H, title);
  fprintf(f, "<rect class=\"plot\" x=\"%d\" y=\"%d\" width=\"%d\" "
          "height=\"%d\"/>\n", L, T, PW, PH);
}

/* The y axis from 0 to y1 (ticks, grid, its unit) and the x axis: ticks
 * from x0 to x1 with their unit, or category labels when cats != NULL. */
static void axes(FILE *f, double x0, double x1, const char *xunit, double y1,
                 double ystep, const char *yunit) {
  for (double v = 0; v <= y1 * 1.0001; v += ystep)
    fprintf(f, "<line class=\"grid\" x1=\"%d\" x2=\"%d\" y1=\"%.1f\" "
            "y2=\"%.1f\"/><text class=\"tick\" x=\"%d\" y=\"%.1f\" "
            "text-anchor=\"end\">%g</text>\n", L, L + PW, py(v, y1),
            py(v, y1), L - 6, py(v, y1) + 4, v);
  fprintf(f, "<text class=\"unit\" x=\"%d\" y=\"%d\">%s</text>\n", 8, T - 12,
          yunit);
  if (xunit != NULL) {
    double step = nice_step(x1 - x0);
    for (double v = ceil(x0 / step) * step; v <= x1 * 1.0001; v += step)
      fprintf(f, "<line class=\"tickmark\" x1=\"%.1f\" x2=\"%.1f\" "
              "y1=\"%d\" y2=\"%d\"/><text class=\"tick\" x=\"%.1f\" y=\"%d\" "
              "text-anchor=\"middle\">%g</text>\n", px(v, x0, x1),
              px(v, x0, x1), T + PH, T + PH + 5, px(v, x0, x1), T + PH + 18,
              v);
    fprintf(f, "<text class=\"unit\" x=\"%d\" y=\"%d\" "
            "text-anchor=\"end\">%s</text>\n", L + PW, H - 6, xunit);
  }
  fprintf(f, "<line class=\"axis\" x1=\"%d\" x2=\"%d\" y1=\"%d\" y2=\"%d\"/>"
          "<line class=\"axis\" x1=\"%d\" x2=\"%d\" y1=\"%d\" y2=\"%d\"/>\n",
          L, L + PW, T + PH, T + PH, L, L, T, T + PH);
}

static void legend(FILE *f, const char *const *names, int n, int line) {
  double x = L + 110; /* clear of the y unit */
  for (int k = 0; k < n; k++) {
    if (line)
      fprintf(f, "<line class=\"key s%d\" x1=\"%.0f\" x2=\"%.0f\" y1=\"%d\" "
              "y2=\"%d\"/>", k % COLORS, x, x + 18, T - 18, T - 18);
    else
      fprintf(f, "<rect class=\"key f%d\" x=\"%.0f\" y=\"%d\" width=\"12\" "
              "height=\"10\"/>", k % COLORS, x, T - 23);
    fprintf(f, "<text class=\"legend\" x=\"%.0f\" y=\"%d\">%s</text>\n",
            x + 22, T - 14, names[k]);
    x += 44 + 7.5 * (double)strlen(names[k]);
  }
}

/* Lines over a shared x, from 0 (or the first x) to the last; a dashed
 * level (the budget) when level > 0 — said in words instead when it is
 * over four times the data, which it would flatten; dots on each point
 * when dots. */
static void line_chart(FILE *f, const char *title, const char *note,
                       const char *xunit, const char *yunit, const series *s,
                       int ns, double level, const char *level_name,
                       int dots) {
  int few = 1; /* a line of one or two points is drawn as dots */
  double x0 = INFINITY, x1 = -INFINITY, y1 = 0, step;
  const char *names[COLORS + 1];
  double off_scale = 0;
  int nn = 0;
  for (int k = 0; k < ns; k++)
    for (size_t i = 0; i < s[k].n; i++) {
      x0 = fmin(x0, s[k].x[i]);
      x1 = fmax(x1, s[k].x[i]);
      y1 = fmax(y1, s[k].y[i]);
    }
  for (int k = 0; k < ns; k++)
    few &= s[k].n <= 2;
  dots |= few;
  if (level > 0 && y1 > 0 && level > 4 * y1)
    off_scale = level;
  else if (level > 0)
    y1 = fmax(y1, level);
  if (!isfinite(x0) || x1 <= x0) {
    x0 = isfinite(x0) ? x0 - 1 : 0;
    x1 = x0 + 2;
  }
  if (x0 > 0 && x0 < (x1 - x0))
    x0 = 0;
  step = nice_step(y1 > 0 ? y1 : 1);
  y1 = ceil((y1 > 0 ? y1 * 1.05 : 1) / step) * step;
  chart_open(f, title, note);
  axes(f, x0, x1, xunit, y1, step, yunit);
  if (off_scale > 0)
    fprintf(f, "<text class=\"legend\" x=\"%d\" y=\"%d\" "
            "text-anchor=\"end\">%s %g %s: above the scale</text>\n",
            L + PW - 4, T + 14, level_name, off_scale, yunit);
  else if (level > 0)
    fprintf(f, "<line class=\"level\" x1=\"%d\" x2=\"%d\" y1=\"%.1f\" "
            "y2=\"%.1f\"/><text class=\"legend\" x=\"%d\" y=\"%.1f\" "
            "text-anchor=\"end\">%s</text>\n", L, L + PW, py(level, y1),
            py(level, y1), L + PW - 4, py(level, y1) - 4, level_name);
  for (int k = 0; k < ns; k++) {
    if (s[k].n == 0)
      continue;
    fprintf(f, "<path class=\"data s%d\" d=\"", k % COLORS);
    for (size_t i = 0; i < s[k].n; i++)
      fprintf(f, "%c%.1f %.1f", i == 0 ? 'M' : 'L', px(s[k].x[i], x0, x1),
              py(s[k].y[i], y1));
    fprintf(f, "\"/>\n");
    if (dots)
      for (size_t i = 0; i < s[k].n; i++)
        fprintf(f, "<circle class=\"point f%d\" cx=\"%.1f\" cy=\"%.1f\" "
                "r=\"3\"><title>%g: %g</title></circle>\n", k % COLORS,
                px(s[k].x[i], x0, x1), py(s[k].y[i], y1), s[k].x[i],
                s[k].y[i]);
    if (nn < COLORS)
      names[nn++] = s[k].name;
  }
  legend(f, names, nn, 1);
  fprintf(f, "</svg></figure>\n");
}

/* Bars with a label each (or numbered from label0 when labels is NULL),
 * stacked when nstack > 1: v[k * n + i] is part k of bar i. */
static void bar_chart(FILE *f, const char *title, const char *note,
                      const char *yunit, const char *const *labels,
                      const char *xunit, const double *v, size_t n,
                      const char *const *parts, int nstack) {
  double y1 = 0, step, bw = n > 0 ? (double)PW / (double)n : PW;
  size_t every = 1, widest = 0;
  for (size_t i = 0; labels != NULL && i < n; i++)
    if (strlen(labels[i]) > widest)
      widest = strlen(labels[i]);
  /* a label every `every` bars, 8 px of room per character and a gap */
  while (bw * (double)every < 7.0 * (double)(widest ? widest : 3) + 10)
    every++;
  for (size_t i = 0; i < n; i++) {
    double sum = 0;
    for (int k = 0; k < nstack; k++)
      sum += v[(size_t)k * n + i];
    y1 = fmax(y1, sum);
  }
  step = nice_step(y1 > 0 ? y1 : 1);
  y1 = ceil((y1 > 0 ? y1 * 1.05 : 1) / step) * step;
  chart_open(f, title, note);
  axes(f, 0, 1, NULL, y1, step, yunit);
  for (size_t i = 0; i < n; i++) {
    double base = 0;
    for (int k = 0; k < nstack; k++) {
      double h = v[(size_t)k * n + i];
      if (h > 0)
        fprintf(f, "<rect class=\"bar f%d\" x=\"%.1f\" y=\"%.1f\" "
                "width=\"%.1f\" height=\"%.1f\"><title>%s: %g</title>"
                "</rect>\n", k % COLORS, L + (double)i * bw + bw * 0.1,
                py(base + h, y1), bw * 0.8, py(base, y1) - py(base + h, y1),
                parts != NULL ? parts[k] : yunit, h);
      base += h;
    }
    if (i % every == 0) {
      if (labels != NULL)
        fprintf(f, "<text class=\"tick\" x=\"%.1f\" y=\"%d\" "
                "text-anchor=\"middle\">%s</text>\n",
                L + ((double)i + 0.5) * bw, T + PH + 16, labels[i]);
      else
        fprintf(f, "<text class=\"tick\" x=\"%.1f\" y=\"%d\" "
                "text-anchor=\"middle\">%zu</text>\n",
                L + ((double)i + 0.5) * bw, T + PH + 16, i);
    }
  }
  fprintf(f, "<text class=\"unit\" x=\"%d\" y=\"%d\" text-anchor=\"end\">%s"
          "</text>\n", L + PW, H - 6, xunit);
  if (parts != NULL)
    legend(f, parts, nstack, 0);
  fprintf(f, "</svg></figure>\n");
}

/* One horizontal bar of parts of 100 %, each labelled with its share. */
static void split_bar(FILE *f, const char *title, const char *note,
                      const double *pct, const char *const *parts, int n) {
  double x = L;
  fprintf(f, "<figure><figcaption>%s</figcaption>\n<p class=\"note\">%s"
          "</p>\n<svg class=\"chart\" width=\"%d\" height=\"96\" "
          "viewBox=\"0 0 %d 96\" role=\"img\" aria-label=\"%s\">\n"
          "<rect class=\"plot\" x=\"%d\" y=\"34\" width=\"%d\" "
          "height=\"30\"/>\n", title, note, W, W, title, L, PW);
  for (int k = 0; k < n; k++) {
    double w = pct[k] / 100.0 * PW;
    if (w > 0)
      fprintf(f, "<rect class=\"bar f%d\" x=\"%.1f\" y=\"34\" "
              "width=\"%.1f\" height=\"30\"><title>%s: %.1f %%</title>"
              "</rect>\n", k % COLORS, x, w, parts[k], pct[k]);
    x += w;
  }
  for (int v = 0; v <= 100; v += 20)
    fprintf(f, "<line class=\"tickmark\" x1=\"%.1f\" x2=\"%.1f\" "
            "y1=\"64\" y2=\"69\"/><text class=\"tick\" x=\"%.1f\" "
            "y=\"82\" text-anchor=\"middle\">%d %%</text>\n",
            L + v / 100.0 * PW, L + v / 100.0 * PW, L + v / 100.0 * PW, v);
  {
    char names[3][48];
    const char *lab[3];
    for (int k = 0; k < n && k < 3; k++) {
      snprintf(names[k], sizeof names[k], "%s %.1f %%", parts[k], pct[k]);
      lab[k] = names[k];
    }
    legend(f, lab, n < 3 ? n : 3, 0);
  }
  fprintf(f, "</svg></figure>\n");
}

/* ---- the page ------------------------------------------------------------ */

/* by shoal_packet_class */
static const char *const class_names[3] = {"INPLACE", "MAIN", "MAP"};

static void head(FILE *f, const st_result *r) {
  fprintf(f, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8"
          "\"><title>shoal stress: %s</title>\n<style>\n"
          "body{font:14px/1.4 system-ui,sans-serif;margin:24px 36px;"
          "color:#222;max-width:1180px}\n"
          "h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 "
          "4px;border-bottom:1px solid #ccc}\n"
          "figure{margin:14px 0;break-inside:avoid}figcaption{font-weight:"
          "600}\n.note{margin:2px 0;color:#555;font-size:12px}\n"
          "svg.chart{display:block;max-width:100%%;height:auto}\n"
          ".plot{fill:#fafafa;stroke:none}.grid{stroke:#e2e2e2}"
          ".tickmark,.axis{stroke:#555}\n"
          ".level{stroke:#c33;stroke-width:1.5;stroke-dasharray:6 4}\n"
          ".data{fill:none;stroke-width:1.8}.key{stroke-width:3}\n"
          "text{font-size:12px;fill:#333}.unit{font-style:italic;"
          "fill:#555}\n"
          ".s0{stroke:#1f6fb2}.s1{stroke:#d9822b}.s2{stroke:#2e9e44}"
          ".s3{stroke:#c03a3a}.s4{stroke:#7d4fb0}.s5{stroke:#8c6d3a}"
          ".s6{stroke:#d460a8}.s7{stroke:#5f6b73}\n"
          ".f0{fill:#1f6fb2}.f1{fill:#d9822b}.f2{fill:#2e9e44}"
          ".f3{fill:#c03a3a}.f4{fill:#7d4fb0}.f5{fill:#8c6d3a}"
          ".f6{fill:#d460a8}.f7{fill:#5f6b73}\n"
          "table{border-collapse:collapse;margin:6px 0}td,th{padding:2px "
          "12px 2px 0;text-align:left;vertical-align:top}th{font-weight:600}"
          "\n.pass{color:#17801f}.fail{color:#c00;font-weight:700}\n"
          ".checks td{min-width:90px}\n"
          "@media print{body{margin:10mm;max-width:none}h2{break-after:"
          "avoid}}\n</style></head><body>\n",
          r->pass ? "PASS" : "FAIL");
}

static const char *held(int ok) {
  return ok ? "<span class=\"pass\">holds</span>"
            : "<span class=\"fail\">FAILS</span>";
}

/* The verdict, the run, the invariants and the main figures. */
static void summary(FILE *f, const st_result *r) {
  const st_args *a = r->a;
  fprintf(f, "<h1>shoal stress — <span class=\"%s\">%s</span></h1>\n"
          "<p>Tick p99 %.2f ms %s the %u ms budget. %u sessions on %u maps, "
          "%u ticks/s for %u s (%s), %u workers; %.0f ns of shoal's own time "
          "per session update.</p>\n", r->pass ? "pass" : "fail",
          r->pass ? "PASS" : "FAIL", r->tick_p99,
          r->budget_ok ? "within" : "over", a->budget_ms, a->sessions,
          a->maps, a->tps, a->duration_s,
          a->pace_max ? "back to back" : "real time", r->workers,
          r->overhead_ns_per_session);
  fprintf(f, "<table class=\"checks\"><tr><th>budget</th><th>packets</th>"
          "<th>economy</th><th>order</th><th>hibernation</th><th>messaging"
          "</th><th>payloads</th><th>limits</th><th>maps</th><th>timers</th>"
          "</tr>\n<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s"
          "</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>"
          "</table>\n", held(r->budget_ok), held(r->packets_ok),
          held(r->economy_ok), held(r->order_ok), held(r->hibernation_ok),
          held(r->messaging_ok), held(r->payloads_ok), held(r->limits_ok),
          held(r->maps_ok), held(r->timers_ok));
  fprintf(f, "<table>\n<tr><th>tick p50 / p99 / p99.9 / max</th><td>%.2f / "
          "%.2f / %.2f / %.2f ms</td></tr>\n", r->tick_p50, r->tick_p99,
          r->tick_p999, r->tick_max);
  fprintf(f, "<tr><th>packets</th><td>sent %llu, handled %llu (%.0f per "
          "second of the run's wall time), "
          "pending %llu, rejected %llu, dropped %llu; main thread %.1f %%"
          "</td></tr>\n", (unsigned long long)r->sent,
          (unsigned long long)r->handled, r->packets_per_s,
          (unsigned long long)r->pending, (unsigned long long)r->rejected,
          (unsigned long long)r->dropped, 100.0 * r->main_share);
  fprintf(f, "<tr><th>deferred queue</th><td>deepest %llu; drain p99 %.2f "
          "ms, longest %.2f ms</td></tr>\n",
          (unsigned long long)r->deferred_max, r->drain_p99_ms,
          r->drain_max_ms);
  fprintf(f, "<tr><th>hibernation</th><td>at most %llu hibernated in the "
          "run; %llu hibernations, %llu wakes, %llu failures</td></tr>\n",
          (unsigned long long)r->hibernated_run_max,
          (unsigned long long)r->hibernations,
          (unsigned long long)r->wakes, (unsigned long long)r->wake_failures);
  fprintf(f, "<tr><th>memory</th><td>resident per active session %.0f B; "
          "hibernation records %.0f B each</td></tr>\n</table>\n",
          r->active_bytes_per_session, r->record_bytes_per_session);
}

/* A column of the per-second samples. */
static double *column(const st_result *r, size_t off, int kind) {
  double *v = calloc(r->nseconds + 1, sizeof *v);
  for (size_t i = 0; v != NULL && i < r->nseconds; i++) {
    const char *p = (const char *)&r->seconds[i] + off;
    v[i] = kind == 0 ? *(const double *)p : (double)*(const uint64_t *)p;
  }
  return v;
}
#define COL_D(field) column(r, offsetof(st_second, field), 0)
#define COL_U(field) column(r, offsetof(st_second, field), 1)

static void ticks_charts(FILE *f, const st_result *r, const double *t) {
  double *p50 = COL_D(tick_p50_ms), *p99 = COL_D(tick_p99_ms),
         *mx = COL_D(tick_max_ms), hist[41], edges[41], step, split[3];
  size_t nbins;
  const char *labels[41];
  char lab[41][16];
  static const char *const phases[3] = {"sessions", "maps", "the rest"};
  series s[3] = {{"max", t, mx, r->nseconds},
                 {"p99", t, p99, r->nseconds},
                 {"p50", t, p50, r->nseconds}};
  line_chart(f, "Tick time per second of play",
             r->a->tps < 100 ? "Each second's ticks: with fewer than 100 a "
                               "second, the p99 is the maximum."
                             : NULL,
             "seconds of play", "ms", s, 3, r->a->budget_ms, "budget", 0);
  /* Bins of a round width (1, 2 or 5 × 10^k ms), at most 40 up to the
   * longest tick, so that the labels read as they are. */
  step = r->tick_max > 0 ? nice_step(r->tick_max / 8.0) : 1;
  nbins = (size_t)(r->tick_max / step) + 1;
  if (nbins > 41)
    nbins = 41;
  memset(hist, 0, sizeof hist);
  for (size_t i = 0; i < r->ticks; i++) {
    size_t b = (size_t)(r->tick_ms[i] / step);
    hist[b < nbins ? b : nbins - 1] += 1;
  }
  for (size_t b = 0; b < nbins; b++) {
    edges[b] = step * (double)b;
    snprintf(lab[b], sizeof lab[b], "%g", edges[b]);
    labels[b] = lab[b];
  }
  bar_chart(f, "Tick-time histogram", "Ticks per bin; each bar starts at "
            "its label.", "ticks", labels, "ms", hist, nbins, NULL, 1);
  split[0] = 100.0 * r->session_phase_share;
  split[1] = 100.0 * r->map_phase_share;
  split[2] = 100.0 - split[0] - split[1];
  if (split[2] < 0)
    split[2] = 0;
  split_bar(f, "The update's time by phase",
            "Share of shoal_mgr_update's wall time over the run: the "
            "session updates, the map phase, and the rest (wakes, "
            "hibernation, bookkeeping).", split, phases, 3);
  free(p50);
  free(p99);
  free(mx);
}

static void packet_charts(FILE *f, const st_result *r, const double *t) {
  double *cls[3], *depth = COL_U(deferred_max), *drain = COL_D(drain_max_ms),
         cat[SHOAL_CAT_COUNT];
  const char *labels[SHOAL_CAT_COUNT];
  series s[3];
  for (int k = 0; k < 3; k++) {
    cls[k] = calloc(r->nseconds + 1, sizeof *cls[k]);
    for (size_t i = 0; cls[k] != NULL && i < r->nseconds; i++)
      cls[k][i] = r->seconds[i].handled[k];
    s[k] = (series){class_names[k], t, cls[k], cls[k] ? r->nseconds : 0};
  }
  line_chart(f, "Packets handled per second, by class",
             "INPLACE on the workers in the session's update, MAP in the "
             "map phase, MAIN on the main thread's drain.",
             "seconds of play", "packets/s", s, 3, 0, NULL, 0);
  for (int c = 0; c < SHOAL_CAT_COUNT; c++) {
    cat[c] = r->wall_s > 0 ? (double)r->by_category[c] / r->wall_s : 0;
    labels[c] = shoal_packet_category_name(c);
  }
  bar_chart(f, "Packets handled per second, by category",
            "Averages over the run's wall time (shorter than its seconds "
            "of play when the ticks run back to back).", "packets/s",
            labels, "category", cat,
            SHOAL_CAT_COUNT, NULL, 1);
  {
    series d[1] = {{"deepest at a drain", t, depth, r->nseconds}};
    series m[1] = {{"longest drain in the second", t, drain, r->nseconds}};
    line_chart(f, "The deferred queue", "The most packets one drain found "
               "waiting, per second.", "seconds of play", "packets", d, 1, 0,
               NULL, 0);
    line_chart(f, "The main thread's drain", NULL, "seconds of play", "ms",
               m, 1, r->a->budget_ms, "budget", 0);
  }
  for (int k = 0; k < 3; k++)
    free(cls[k]);
  free(depth);
  free(drain);
}

static void worker_charts(FILE *f, const st_result *r, const double *t) {
  unsigned nw = r->workers < ST_SERIES_WORKERS ? r->workers
                                               : ST_SERIES_WORKERS;
  double *u[ST_SERIES_WORKERS + 1];
  char names[ST_SERIES_WORKERS + 1][24];
  series s[ST_SERIES_WORKERS + 1] = {{0}};
  int ns = 0;
  for (unsigned k = 0; k <= nw && k <= ST_SERIES_WORKERS; k++) {
    int mean = k == nw;
    if (mean && nw <= 1)
      break;
    u[k] = calloc(r->nseconds + 1, sizeof *u[k]);
    for (size_t i = 0; u[k] != NULL && i < r->nseconds; i++)
      u[k][i] = 100.0 * (mean ? r->seconds[i].util_mean
                              : r->seconds[i].util[k]);
    if (mean)
      snprintf(names[k], sizeof names[k], "mean of %u", r->workers);
    else
      snprintf(names[k], sizeof names[k], "worker %u", k);
    s[ns++] = (series){names[k], t, u[k], u[k] ? r->nseconds : 0};
  }
  line_chart(f, "Worker utilization per second",
             r->workers > ST_SERIES_WORKERS
                 ? "Busy time over wall time; the first 16 workers, and the "
                   "mean of all."
                 : "Busy time over wall time.",
             "seconds of play", "% busy", s, ns, 0, NULL, 0);
  for (int k = 0; k < ns; k++)
    free(u[k]);
}

static void life_charts(FILE *f, const st_result *r, const double *t) {
  double *hib = COL_D(hibernations), *wake = COL_D(wakes),
         *asleep = COL_U(hibernated), *rss = COL_U(rss);
  series h[2] = {{"hibernations", t, hib, r->nseconds},
                 {"wakes", t, wake, r->nseconds}};
  series a[1] = {{"hibernated now", t, asleep, r->nseconds}};
  series m[1] = {{"resident", t, rss, r->nseconds}};
  for (size_t i = 0; rss != NULL && i < r->nseconds; i++)
    rss[i] /= 1048576.0;
  line_chart(f, "Hibernations and wakes per second", NULL, "seconds of play",
             "sessions/s", h, 2, 0, NULL, 0);
  line_chart(f, "Hibernated sessions", NULL, "seconds of play", "sessions",
             a, 1, 0, NULL, 0);
  line_chart(f, "Resident memory", "The process's resident set.",
             "seconds of play", "MiB", m, 1, 0, NULL, 0);
  free(hib);
  free(wake);
  free(asleep);
  free(rss);
}

static void map_charts(FILE *f, const st_result *r) {
  double v[2 * ST_MAPS_SHOWN];
  const char *labels[ST_MAPS_SHOWN];
  char lab[ST_MAPS_SHOWN][12];
  static const char *const parts[1] = {"map phase time"};
  if (r->nmaps == 0)
    return;
  for (unsigned k = 0; k < r->nmaps; k++) {
    snprintf(lab[k], sizeof lab[k], "%u", r->maps[k].map);
    labels[k] = lab[k];
    v[k] = (double)r->maps[k].phase_ns * 1e-6;
    v[r->nmaps + k] = (double)r->maps[k].sessions;
  }
  bar_chart(f, "Load per map: time in the map phase",
            "Each map's turns over the run (its MAP packets, its map "
            "update), the busiest first.", "ms", labels, "map", v, r->nmaps,
            parts, 1);
  bar_chart(f, "Sessions per map", "At the run's end, hibernated ones too.",
            "sessions", labels, "map", v + r->nmaps, r->nmaps, NULL, 1);
}

static void capacity_charts(FILE *f, const st_result *r) {
  const st_capacity *c = r->capacity;
  double x[ST_STEPS_MAX], p50[ST_STEPS_MAX], p99[ST_STEPS_MAX],
      busy[ST_STEPS_MAX], drain[ST_STEPS_MAX];
  char note[256];
  for (unsigned k = 0; k < c->nsteps; k++) {
    x[k] = c->steps[k].sessions;
    p50[k] = c->steps[k].tick_p50;
    p99[k] = c->steps[k].tick_p99;
    busy[k] = 100.0 * c->steps[k].utilization;
    drain[k] = c->steps[k].drain_p99_ms;
  }
  fprintf(f, "<h2>Capacity</h2>\n<p>%s</p>\n",
          c->sessions > 0 ? "" : "Even the smallest step failed.");
  if (c->sessions > 0)
    fprintf(f, "<p><b>%u sessions</b> inside the %u ms budget, limited by "
            "%s; %u steps in %.0f s, %s.</p>\n", c->sessions,
            r->a->budget_ms, c->limit, c->nsteps, c->elapsed_s,
            c->converged ? "converged to 5 %" : "stopped by the time bound");
  snprintf(note, sizeof note, "Each step a short run of that many sessions; "
           "the capacity is the largest that passed (%u).", c->sessions);
  {
    series s[2] = {{"tick p50", x, p50, c->nsteps},
                   {"tick p99", x, p99, c->nsteps}};
    series u[2] = {{"workers busy (%)", x, busy, c->nsteps},
                   {"drain p99 (ms)", x, drain, c->nsteps}};
    line_chart(f, "Tick time against the population", note, "sessions",
               "ms", s, 2, r->a->budget_ms, "budget", 1);
    line_chart(f, "The workers and the main thread against the population",
               NULL, "sessions", "% busy, ms", u, 2, 0, NULL, 1);
  }
}

int st_write_html(const char *path, const st_result *r) {
  FILE *f = fopen(path, "w");
  double *t;
  int bad;
  if (f == NULL)
    return -1;
  if ((t = COL_D(t_s)) == NULL) {
    fclose(f);
    return -1;
  }
  head(f, r);
  summary(f, r);
  if (r->capacity != NULL)
    capacity_charts(f, r);
  fprintf(f, "<h2>The tick</h2>\n");
  ticks_charts(f, r, t);
  fprintf(f, "<h2>Packets</h2>\n");
  packet_charts(f, r, t);
  fprintf(f, "<h2>Workers</h2>\n");
  worker_charts(f, r, t);
  fprintf(f, "<h2>Sessions and memory</h2>\n");
  life_charts(f, r, t);
  if (r->nmaps > 0) {
    fprintf(f, "<h2>Maps</h2>\n");
    map_charts(f, r);
  }
  fprintf(f, "</body></html>\n");
  free(t);
  bad = ferror(f);
  return fclose(f) != 0 || bad ? -1 : 0;
}
