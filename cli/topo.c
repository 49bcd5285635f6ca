/* topo.c — `shoal topo`: the machine as hwloc and libcpuid see it, and the
 * worker plan shoal computes for it, as text or as a JSON document
 * (docs/topo-json.md); --latency adds measured core-to-core round trips. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "json.h"

#define PROG "shoal topo"
#define TOPO_SCHEMA_VERSION 2
/* Pairs past which --latency shows its progress (on a terminal). */
#define LATENCY_PROGRESS_PAIRS 64

typedef struct topo_report {
  shoal_topo *t;
  shoal_plan *plan;
  shoal_cpu_info cpu;
  int cpu_rc;
  /* --latency */
  unsigned npu;
  unsigned *pu_os;
  shoal_latency_pair *pairs; /* [npu * npu], row throws */
  unsigned measured;         /* directions measured */
  int checkable;             /* some worker has two levels to compare */
  unsigned disagreements;
  double spread_median, spread_worst; /* of the pairs' runs */
  unsigned worst_a, worst_b;
  int whole_system;
} topo_report;

static void usage(FILE *f) {
  fprintf(f,
    "usage: shoal topo [options]\n"
    "\n"
    "Prints the CPU (libcpuid), the hardware topology (hwloc) and shoal's\n"
    "worker plan for it: PU binding, NUMA node and steal order per worker.\n"
    "\n"
    "  --json               print a JSON document (docs/topo-json.md)\n"
    "  --workers N          plan N workers (0 = one per core, at most %d)\n"
    "  --synthetic DESC     plan for an hwloc synthetic machine,\n"
    "                       e.g. 'pack:2 numa:2 core:4 pu:2'\n"
    "  --xml FILE           plan for a machine exported by lstopo as XML\n"
    "  --whole-system       show the PUs this process may not run on too\n"
    "                       (marked; the plan never uses them)\n"
    "  --latency            measure core-to-core round trips on this machine\n"
    "                       and check the steal order against them\n"
    "  -h, --help           this text\n"
    "\n"
    "HWLOC_XMLFILE and HWLOC_SYNTHETIC are honoured when neither option is\n"
    "given. Exit status: 0 done, 1 a measurement failed, 2 bad input.\n",
    SHOAL_WORKERS_MAX);
}

int topo_parse_args(int argc, char **argv, topo_args *a) {
  static const struct option longopts[] = {
    {"json", no_argument, NULL, 'j'},
    {"latency", no_argument, NULL, 'l'},
    {"workers", required_argument, NULL, 'w'},
    {"synthetic", required_argument, NULL, 's'},
    {"xml", required_argument, NULL, 'x'},
    {"whole-system", no_argument, NULL, 'W'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
  };
  int c;
  unsigned long v;
  memset(a, 0, sizeof *a);
  opterr = 0;
  optind = 0; /* 0: glibc resets all of getopt's state */
  while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
    switch (c) {
    case 'j': a->json = 1; break;
    case 'l': a->latency = 1; break;
    case 'w':
      if (cli_parse_uint(optarg, 0, SHOAL_WORKERS_MAX, &v) != 0)
        return cli_usage_error(PROG,
            "--workers wants a whole number from 0 to %d (0 = one per core), "
            "not '%s'", SHOAL_WORKERS_MAX, optarg);
      a->workers = (unsigned)v;
      break;
    case 's': a->synthetic = optarg; break;
    case 'x': a->xml = optarg; break;
    case 'W': a->whole_system = 1; break;
    case 'h': usage(stdout); return -1;
    case ':':
      return cli_usage_error(PROG, "option '%s' needs a value",
                             argv[optind - 1]);
    default:
      return cli_bad_option(PROG, optopt, argv[optind - 1]);
    }
  }
  if (optind < argc)
    return cli_usage_error(PROG, "unexpected argument '%s' (see '%s --help')",
                           argv[optind], PROG);
  if (a->synthetic != NULL && a->xml != NULL)
    return cli_usage_error(PROG, "--synthetic and --xml exclude each other");
  return 0;
}

/* ---- text -------------------------------------------------------------- */

static void print_size(FILE *f, unsigned long long b) {
  if (b >= (1ull << 30) && b % (1ull << 30) == 0)
    fprintf(f, "%llu GiB", b >> 30);
  else if (b >= (1ull << 20) && b % (1ull << 20) == 0)
    fprintf(f, "%llu MiB", b >> 20);
  else if (b >= 1024 && b % 1024 == 0)
    fprintf(f, "%llu KiB", b >> 10);
  else
    fprintf(f, "%llu B", b);
}

static const char *cache_suffix(shoal_cache_type type) {
  return type == SHOAL_CACHE_DATA ? "d" : type == SHOAL_CACHE_INSTRUCTION ? "i" : "";
}

static const char *cache_type_name(shoal_cache_type type) {
  return type == SHOAL_CACHE_DATA ? "data"
       : type == SHOAL_CACHE_INSTRUCTION ? "instruction" : "unified";
}

static void tree_line(void *user, unsigned depth, const char *line) {
  printf("  %*s%s\n", (int)depth * 2, "", line);
}

static void print_cpu(const topo_report *r) {
  const shoal_cpu_info *c = &r->cpu;
  printf("CPU (this machine, libcpuid)\n");
  if (r->cpu_rc != SHOAL_OK) {
    printf("  not identified: %s\n", shoal_strerror(r->cpu_rc));
    return;
  }
  printf("  vendor      %s\n", c->vendor);
  printf("  brand       %s\n", c->brand[0] ? c->brand : "(none)");
  printf("  family %d, model %d, stepping %d\n", c->family, c->model, c->stepping);
  printf("  codename    %s\n", c->codename[0] ? c->codename
                                : "unknown (libcpuid does not know this "
                                  "part)");
  printf("  hypervisor  %s\n", c->hypervisor[0] ? c->hypervisor : "none");
  printf("  SIMD        ");
  if (c->features == 0)
    printf("none of sse4.2, avx2, avx512f/bw/vl");
  for (unsigned b = 1; b != 0 && b <= SHOAL_CPU_AVX512VL; b <<= 1)
    if (c->features & b)
      printf("%s ", shoal_cpu_feature_name(b));
  printf("\n");
}

static void print_caches(const shoal_topo *t) {
  unsigned n = shoal_topo_cache_count(t);
  printf("\nCaches\n");
  if (n == 0)
    printf("  none described\n");
  for (unsigned i = 0; i < n; i++) {
    const shoal_topo_cache *c = shoal_topo_cache_at(t, i);
    printf("  L%u%-2s ", c->level, cache_suffix(c->type));
    print_size(stdout, c->size_bytes);
    if (c->ways > 0)
      printf(", %d-way", c->ways);
    else if (c->ways < 0)
      printf(", fully associative");
    if (c->line_bytes > 0)
      printf(", %u-byte lines", c->line_bytes);
    printf(", %u instance%s\n", c->instances, c->instances == 1 ? "" : "s");
  }
}

/* The PUs the process may not run on, by reason, as ranges. */
static void print_excluded(const shoal_topo *t, int whole) {
  unsigned n = shoal_topo_excluded_count(t), *v = malloc((n + 1) * sizeof *v);
  char buf[4096];
  if (n == 0 || v == NULL) {
    free(v);
    return;
  }
  for (int why = SHOAL_EXCLUDED_CGROUP; why <= SHOAL_EXCLUDED_BINDING; why++) {
    unsigned k = 0, os;
    shoal_excluded_reason r;
    for (unsigned i = 0; i < n; i++)
      if (shoal_topo_excluded_at(t, i, &os, &r) == SHOAL_OK &&
          (int)r == why)
        v[k++] = os;
    if (k == 0)
      continue;
    topo_ranges(buf, sizeof buf, v, k);
    printf("%s P#%s: %s%s\n", whole ? "Not used:" : "Excluded:", buf,
           why == SHOAL_EXCLUDED_CGROUP
               ? "outside the set the OS allows this process (cgroup cpuset)"
               : "outside this process's CPU binding (taskset, "
                 "sched_setaffinity)",
           whole ? "" : " (--whole-system shows them)");
  }
  free(v);
}

/* The latency matrix (the one that orders), and a bandwidth one when the
 * machine has it (shown only). */
static void print_distances(const shoal_topo *t) {
  unsigned nn = shoal_topo_numa_count(t);
  if (shoal_topo_numa_distance(t, 0, 0) != 0) {
    printf("\nNUMA latency (hwloc's NUMALatency, 10 = local): orders the "
           "nodes\n");
    for (unsigned i = 0; i < nn; i++) {
      printf("  ");
      for (unsigned j = 0; j < nn; j++)
        printf(" %4u", shoal_topo_numa_distance(t, i, j));
      printf("\n");
    }
  }
  if (shoal_topo_numa_bandwidth(t, 0, 0) != 0) {
    printf("\nNUMA bandwidth (hwloc's NUMABandwidth, MB/s): shown, never "
           "used to order\n");
    for (unsigned i = 0; i < nn; i++) {
      printf("  ");
      for (unsigned j = 0; j < nn; j++)
        printf(" %10llu",
               (unsigned long long)shoal_topo_numa_bandwidth(t, i, j));
      printf("\n");
    }
  }
}

static void print_text(const topo_report *r, const topo_args *a) {
  const shoal_topo *t = r->t;
  const char *src = shoal_topo_source_text(t);
  printf("shoal topo %s", shoal_version());
  if (shoal_topo_source(t) == SHOAL_TOPO_SYNTHETIC)
    printf(" - synthetic machine '%s'\n\n", src);
  else if (shoal_topo_source(t) == SHOAL_TOPO_XML)
    printf(" - machine from XML '%s'\n\n", src);
  else
    printf(" - this machine\n\n");
  print_cpu(r);
  print_caches(t);
  printf("\nTopology: %u package%s, %u NUMA node%s, %u cache domain%s, "
         "%u core%s, %u PU%s\n",
         shoal_topo_package_count(t), shoal_topo_package_count(t) == 1 ? "" : "s",
         shoal_topo_numa_count(t), shoal_topo_numa_count(t) == 1 ? "" : "s",
         shoal_topo_cache_domain_count(t),
         shoal_topo_cache_domain_count(t) == 1 ? "" : "s",
         shoal_topo_core_count(t), shoal_topo_core_count(t) == 1 ? "" : "s",
         shoal_topo_pu_count(t), shoal_topo_pu_count(t) == 1 ? "" : "s");
  print_excluded(t, a->whole_system);
  shoal_topo_tree(t, tree_line, NULL);
  print_distances(t);
  topo_print_plan(r->plan, a->workers);
}

/* ---- latency ------------------------------------------------------------ */

static int pu_slot(const topo_report *r, int pu_os) {
  for (unsigned i = 0; i < r->npu; i++)
    if ((int)r->pu_os[i] == pu_os)
      return (int)i;
  return -1;
}

/* One level of a worker's victims, as measured from its PU: the means of
 * the pairs' min and max round trips. */
typedef struct level_ns {
  double lo, hi;
  unsigned n, level, victim; /* victim: its first, to name the level */
} level_ns;

/* Worker w's measured levels into lv (at most SHOAL_PLAN_LEVELS_MAX);
 * how many. */
static unsigned worker_levels(const topo_report *r, unsigned w,
                              level_ns *lv) {
  const shoal_plan_worker *pw = shoal_plan_worker_at(r->plan, w);
  int me = pu_slot(r, pw->pu_os_index);
  unsigned n = 0;
  if (me < 0)
    return 0;
  for (unsigned i = 0; i < pw->nvictims; i++) {
    const shoal_plan_worker *pv =
        shoal_plan_worker_at(r->plan, pw->victims[i]);
    int them = pu_slot(r, pv->pu_os_index);
    const shoal_latency_pair *pr;
    if (them < 0 || them == me)
      continue;
    pr = &r->pairs[(unsigned)me * r->npu + (unsigned)them];
    if (pr->runs == 0)
      continue;
    if (n == 0 || lv[n - 1].level != pw->victim_level[i])
      lv[n++] = (level_ns){0, 0, 0, pw->victim_level[i], i};
    lv[n - 1].lo += pr->min_ns;
    lv[n - 1].hi += pr->max_ns;
    lv[n - 1].n++;
  }
  for (unsigned k = 0; k < n; k++) {
    lv[k].lo /= lv[k].n;
    lv[k].hi /= lv[k].n;
  }
  return n;
}

/* For each worker, a nearer level must not answer more slowly than a
 * farther one beyond the noise the runs showed: a disagreement is a
 * nearer level whose fastest runs are slower than the farther level's
 * slowest. Returns how many (worker, level pair) checks fail, printing
 * each when `out` is set; r->checkable says whether any worker had two
 * levels to compare. */
static unsigned check_steal_order(topo_report *r, FILE *out, json_writer *j) {
  unsigned bad = 0, n = shoal_plan_worker_count(r->plan);
  char la[16], lb[16];
  r->checkable = 0;
  for (unsigned w = 0; w < n; w++) {
    const shoal_plan_worker *pw = shoal_plan_worker_at(r->plan, w);
    level_ns lv[SHOAL_PLAN_LEVELS_MAX];
    unsigned k = worker_levels(r, w, lv);
    if (k >= 2)
      r->checkable = 1;
    for (unsigned a = 0; a + 1 < k; a++) {
      if (lv[a].lo <= lv[a + 1].hi)
        continue;
      bad++;
      topo_victim_label(pw, lv[a].victim, la, sizeof la);
      topo_victim_label(pw, lv[a + 1].victim, lb, sizeof lb);
      if (out != NULL)
        fprintf(out, "  worker %u: %s victims %.0f-%.0f ns, but %s victims "
                "%.0f-%.0f ns\n", w, la, lv[a].lo, lv[a].hi, lb,
                lv[a + 1].lo, lv[a + 1].hi);
      if (j != NULL) {
        json_object_begin(j, NULL);
        json_uint(j, "worker", w);
        json_string(j, "nearer_level", la);
        json_double(j, "nearer_min_ns", lv[a].lo, 1);
        json_string(j, "farther_level", lb);
        json_double(j, "farther_max_ns", lv[a + 1].hi, 1);
        json_object_end(j);
      }
    }
  }
  return bad;
}

static int spread_cmp(const void *pa, const void *pb) {
  double a = *(const double *)pa, b = *(const double *)pb;
  return a < b ? -1 : a > b;
}

/* The pairs' spreads, (max − min) / median of their runs: the median
 * pair's and the worst (which pair). */
static void spreads(topo_report *r) {
  double *v = malloc(((size_t)r->npu * r->npu + 1) * sizeof *v);
  unsigned k = 0;
  r->spread_worst = r->spread_median = 0;
  for (unsigned a = 0; v != NULL && a < r->npu; a++)
    for (unsigned b = 0; b < r->npu; b++) {
      const shoal_latency_pair *p = &r->pairs[a * r->npu + b];
      double sp;
      if (p->runs == 0 || p->median_ns <= 0)
        continue;
      sp = (p->max_ns - p->min_ns) / p->median_ns;
      v[k++] = sp;
      if (sp >= r->spread_worst) {
        r->spread_worst = sp;
        r->worst_a = r->pu_os[a];
        r->worst_b = r->pu_os[b];
      }
    }
  if (k > 0) {
    qsort(v, k, sizeof *v, spread_cmp);
    r->spread_median = v[k / 2];
  }
  r->measured = k;
  free(v);
}

static void progress(void *user, unsigned done, unsigned total) {
  (void)user;
  fprintf(stderr, "\rshoal topo: measured %u of %u pair directions%s", done,
          total, done == total ? "\n" : "");
}

static int measure_latency(topo_report *r, cli_log *log) {
  shoal_latency_opts o;
  int rc;
  r->npu = shoal_topo_pu_count(r->t);
  r->pu_os = calloc(r->npu, sizeof *r->pu_os);
  r->pairs = calloc((size_t)r->npu * r->npu, sizeof *r->pairs);
  if (r->pu_os == NULL || r->pairs == NULL)
    return SHOAL_ENOMEM;
  for (unsigned i = 0; i < r->npu; i++)
    r->pu_os[i] = shoal_topo_pu_at(r->t, i)->os_index;
  shoal_latency_opts_defaults(&o);
  o.log = cli_log_fn;
  o.log_user = log;
  if (r->npu * (r->npu - 1) >= LATENCY_PROGRESS_PAIRS && isatty(2))
    o.progress = progress;
  rc = shoal_latency_measure_pairs(r->t, r->pu_os, r->npu, r->pairs, &o);
  if (rc == SHOAL_OK) {
    spreads(r);
    r->disagreements = check_steal_order(r, NULL, NULL);
  }
  return rc;
}

static void print_latency(topo_report *r) {
  unsigned total = r->npu * (r->npu - 1);
  printf("\nCore-to-core round trip, ns (the median of each direction's "
         "runs; the row's PU throws, the column's answers; P#)\n");
  printf("  %6s", "");
  for (unsigned j = 0; j < r->npu; j++)
    printf(" %6u", r->pu_os[j]);
  printf("\n");
  for (unsigned i = 0; i < r->npu; i++) {
    printf("  %6u", r->pu_os[i]);
    for (unsigned j = 0; j < r->npu; j++) {
      const shoal_latency_pair *p = &r->pairs[i * r->npu + j];
      if (i == j || p->runs == 0)
        printf(" %6s", "-");
      else
        printf(" %6.0f", p->median_ns);
    }
    printf("\n");
  }
  printf("Spread of a direction's runs, (max - min) / median: median "
         "%.1f %%, worst %.1f %% (P#%u -> P#%u)\n",
         100.0 * r->spread_median, 100.0 * r->spread_worst, r->worst_a,
         r->worst_b);
  if (r->measured < total)
    printf("Measured %u of %u pair directions: the time budget ran out\n",
           r->measured, total);
  if (!r->checkable) {
    printf("Steal order: not checkable: no worker has victims at two "
           "levels to compare\n");
  } else if (r->disagreements == 0) {
    printf("Steal order agrees: for every worker, nearer victims answer at "
           "least as fast as farther ones, within the runs' spread.\n");
  } else {
    printf("Steal order disagrees in %u place%s:\n", r->disagreements,
           r->disagreements == 1 ? "" : "s");
    check_steal_order(r, stdout, NULL);
  }
}

/* ---- JSON --------------------------------------------------------------- */

static const char *kind_name(shoal_topo_kind k) {
  return k == SHOAL_TOPO_SYNTHETIC ? "synthetic" : k == SHOAL_TOPO_XML ? "xml"
                                                                       : "native";
}

static void json_cpu(json_writer *j, const topo_report *r) {
  const shoal_cpu_info *c = &r->cpu;
  json_object_begin(j, "cpu");
  json_bool(j, "identified", r->cpu_rc == SHOAL_OK);
  json_string(j, "vendor", r->cpu_rc == SHOAL_OK ? c->vendor : NULL);
  json_string(j, "brand", r->cpu_rc == SHOAL_OK ? c->brand : NULL);
  json_int(j, "family", c->family);
  json_int(j, "model", c->model);
  json_int(j, "stepping", c->stepping);
  json_string(j, "codename", c->codename[0] ? c->codename : NULL);
  json_string(j, "hypervisor", c->hypervisor[0] ? c->hypervisor : NULL);
  json_uint(j, "logical_cpus", c->logical_cpus);
  json_array_begin(j, "features", 1);
  for (unsigned b = 1; b <= SHOAL_CPU_AVX512VL; b <<= 1)
    if (c->features & b)
      json_string(j, NULL, shoal_cpu_feature_name(b));
  json_array_end(j);
  json_object_end(j);
}

static void json_topology(json_writer *j, const shoal_topo *t) {
  unsigned nn = shoal_topo_numa_count(t);
  json_array_begin(j, "caches", 0);
  for (unsigned i = 0; i < shoal_topo_cache_count(t); i++) {
    const shoal_topo_cache *c = shoal_topo_cache_at(t, i);
    json_object_begin(j, NULL);
    json_uint(j, "level", c->level);
    json_string(j, "type", cache_type_name(c->type));
    json_uint(j, "size_bytes", c->size_bytes);
    json_int(j, "ways", c->ways);
    json_uint(j, "line_bytes", c->line_bytes);
    json_uint(j, "instances", c->instances);
    json_object_end(j);
  }
  json_array_end(j);
  json_uint(j, "packages", shoal_topo_package_count(t));
  json_uint(j, "cores", shoal_topo_core_count(t));
  json_uint(j, "cache_domains", shoal_topo_cache_domain_count(t));
  json_array_begin(j, "numa_nodes", 0);
  for (unsigned i = 0; i < nn; i++) {
    const shoal_topo_numa *n = shoal_topo_numa_at(t, i);
    json_object_begin(j, NULL);
    json_uint(j, "logical", n->logical);
    json_uint(j, "os_index", n->os_index);
    json_uint(j, "package", n->package);
    json_uint(j, "memory_bytes", n->memory_bytes);
    json_object_end(j);
  }
  json_array_end(j);
  if (shoal_topo_numa_distance(t, 0, 0) == 0) {
    json_null(j, "numa_distances");
  } else {
    json_array_begin(j, "numa_distances", 0);
    for (unsigned a = 0; a < nn; a++) {
      json_array_begin(j, NULL, 1);
      for (unsigned b = 0; b < nn; b++)
        json_uint(j, NULL, shoal_topo_numa_distance(t, a, b));
      json_array_end(j);
    }
    json_array_end(j);
  }
  if (shoal_topo_numa_bandwidth(t, 0, 0) == 0) {
    json_null(j, "numa_bandwidth");
  } else {
    json_array_begin(j, "numa_bandwidth", 0);
    for (unsigned a = 0; a < nn; a++) {
      json_array_begin(j, NULL, 1);
      for (unsigned b = 0; b < nn; b++)
        json_uint(j, NULL, shoal_topo_numa_bandwidth(t, a, b));
      json_array_end(j);
    }
    json_array_end(j);
  }
  json_array_begin(j, "pus", 0);
  for (unsigned i = 0; i < shoal_topo_pu_count(t); i++) {
    const shoal_topo_pu *p = shoal_topo_pu_at(t, i);
    json_object_begin(j, NULL);
    json_uint(j, "logical", p->logical);
    json_uint(j, "os_index", p->os_index);
    json_uint(j, "core", p->core);
    json_uint(j, "cache_domain", p->cache);
    json_uint(j, "numa_node", shoal_topo_numa_at(t, p->numa)->os_index);
    json_uint(j, "package", p->package);
    json_bool(j, "allowed", (int)p->allowed);
    json_object_end(j);
  }
  json_array_end(j);
  json_array_begin(j, "excluded_pus", 0);
  for (unsigned i = 0; i < shoal_topo_excluded_count(t); i++) {
    unsigned os;
    shoal_excluded_reason why;
    if (shoal_topo_excluded_at(t, i, &os, &why) != SHOAL_OK)
      continue;
    json_object_begin(j, NULL);
    json_uint(j, "os_index", os);
    json_string(j, "reason", shoal_excluded_reason_name(why));
    json_object_end(j);
  }
  json_array_end(j);
}

/* A matrix of one field of the pairs (null where unmeasured). */
static void json_pairs(json_writer *j, const topo_report *r, const char *key,
                       int field) {
  json_array_begin(j, key, 0);
  for (unsigned a = 0; a < r->npu; a++) {
    json_array_begin(j, NULL, 1);
    for (unsigned b = 0; b < r->npu; b++) {
      const shoal_latency_pair *p = &r->pairs[a * r->npu + b];
      double v = field == 0 ? p->min_ns : field == 1 ? p->median_ns
                                                    : p->max_ns;
      if (a != b && p->runs == 0)
        json_null(j, NULL);
      else
        json_double(j, NULL, v, 1);
    }
    json_array_end(j);
  }
  json_array_end(j);
}

static void json_latency(json_writer *j, topo_report *r) {
  json_object_begin(j, "latency");
  json_array_begin(j, "pus", 1);
  for (unsigned i = 0; i < r->npu; i++)
    json_uint(j, NULL, r->pu_os[i]);
  json_array_end(j);
  json_pairs(j, r, "round_trip_ns", 1);
  json_pairs(j, r, "min_ns", 0);
  json_pairs(j, r, "max_ns", 2);
  json_uint(j, "directions_measured", r->measured);
  json_uint(j, "directions_total", r->npu * (r->npu - 1));
  json_double(j, "spread_median", r->spread_median, 4);
  json_double(j, "spread_worst", r->spread_worst, 4);
  json_string(j, "steal_order", !r->checkable ? "not checkable"
                                : r->disagreements == 0 ? "agrees"
                                                        : "disagrees");
  json_array_begin(j, "disagreements", 0);
  check_steal_order(r, NULL, j);
  json_array_end(j);
  json_object_end(j);
}

static void print_json(topo_report *r) {
  json_writer j;
  const shoal_topo *t = r->t;
  json_init(&j, stdout);
  json_object_begin(&j, NULL);
  json_uint(&j, "schema_version", TOPO_SCHEMA_VERSION);
  json_string(&j, "shoal_version", shoal_version());
  json_object_begin(&j, "source");
  json_string(&j, "kind", kind_name(shoal_topo_source(t)));
  json_string(&j, "description", shoal_topo_source_text(t));
  json_bool(&j, "this_system", shoal_topo_is_this_system(t));
  json_bool(&j, "whole_system", r->whole_system);
  json_object_end(&j);
  json_cpu(&j, r);
  json_topology(&j, t);
  topo_json_plan(&j, r->plan);
  if (r->pairs != NULL)
    json_latency(&j, r);
  json_object_end(&j);
  json_finish(&j);
}

/* ---- command ------------------------------------------------------------ */

int cmd_topo(int argc, char **argv) {
  topo_args a;
  topo_report r;
  cli_log log = {.prog = PROG};
  shoal_topo_opts to;
  int rc, status = CLI_OK;

  rc = topo_parse_args(argc, argv, &a);
  if (rc != 0)
    return rc < 0 ? cli_finish_output(PROG, CLI_OK) : rc;

  memset(&r, 0, sizeof r);
  shoal_topo_opts_defaults(&to);
  to.synthetic = a.synthetic;
  to.xml_path = a.xml;
  to.whole_system = a.whole_system;
  r.whole_system = a.whole_system;
  to.log = cli_log_fn;
  to.log_user = &log;
  rc = shoal_topo_load(&r.t, &to);
  if (rc != SHOAL_OK)
    return cli_usage_error(PROG, "%s", log.last_error[0] ? log.last_error
                                                         : shoal_strerror(rc));
  if (a.latency && !shoal_topo_is_this_system(r.t)) {
    shoal_topo_destroy(r.t);
    return cli_usage_error(PROG, "--latency measures this machine; it cannot "
                           "be combined with a synthetic or XML topology");
  }
  r.cpu_rc = shoal_cpu_identify(&r.cpu);
  rc = shoal_plan_compute(&r.plan, r.t, a.workers);
  if (rc != SHOAL_OK) {
    fprintf(stderr, "%s: cannot compute the plan: %s\n", PROG, shoal_strerror(rc));
    status = CLI_FAIL;
    goto out;
  }
  if (a.latency) {
    rc = measure_latency(&r, &log);
    if (rc != SHOAL_OK) {
      fprintf(stderr, "%s: latency measurement failed: %s\n", PROG,
              log.last_error[0] ? log.last_error : shoal_strerror(rc));
      status = CLI_FAIL;
      goto out;
    }
  }
  if (a.json) {
    print_json(&r);
  } else {
    print_text(&r, &a);
    if (r.pairs != NULL)
      print_latency(&r);
  }
  status = cli_finish_output(PROG, status);
out:
  free(r.pu_os);
  free(r.pairs);
  shoal_plan_destroy(r.plan);
  shoal_topo_destroy(r.t);
  return status;
}
