/* topo.c — `shoal topo`: the machine as hwloc and libcpuid see it, and the
 * worker plan shoal computes for it, as text or as a JSON document
 * (docs/topo-json.md); --latency adds measured core-to-core round trips. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "json.h"

#define PROG "shoal topo"
#define TOPO_SCHEMA_VERSION 2
/* A level's mean round trip may exceed the next level's by this much before
 * the steal order is said to disagree: single medians carry that noise. */
#define LATENCY_TOLERANCE 1.10

typedef struct topo_report {
  shoal_topo *t;
  shoal_plan *plan;
  shoal_cpu_info cpu;
  int cpu_rc;
  /* --latency */
  unsigned npu;
  unsigned *pu_os;
  double *matrix;
  unsigned disagreements;
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

/* For each worker, the mean round trip to its victims of each nearness
 * level must not fall as the level gets farther. Returns how many
 * (worker, level pair) checks fail, printing each when `out` is set. */
static unsigned check_steal_order(const topo_report *r, FILE *out,
                                  json_writer *j) {
  unsigned bad = 0, n = shoal_plan_worker_count(r->plan);
  for (unsigned w = 0; w < n; w++) {
    const shoal_plan_worker *pw = shoal_plan_worker_at(r->plan, w);
    double sum[SHOAL_NEAR_LEVELS] = {0};
    unsigned cnt[SHOAL_NEAR_LEVELS] = {0};
    int me = pu_slot(r, pw->pu_os_index), prev = -1;
    if (me < 0)
      continue;
    for (unsigned i = 0; i < pw->nvictims; i++) {
      const shoal_plan_worker *pv = shoal_plan_worker_at(r->plan, pw->victims[i]);
      int them = pu_slot(r, pv->pu_os_index);
      if (them < 0 || them == me)
        continue;
      sum[pw->victim_near[i]] += r->matrix[(unsigned)me * r->npu + (unsigned)them];
      cnt[pw->victim_near[i]]++;
    }
    for (int l = 0; l < SHOAL_NEAR_LEVELS; l++) {
      if (cnt[l] == 0)
        continue;
      if (prev >= 0) {
        double near_ns = sum[prev] / cnt[prev], far_ns = sum[l] / cnt[l];
        if (near_ns > far_ns * LATENCY_TOLERANCE) {
          bad++;
          if (out != NULL)
            fprintf(out, "  worker %u: %s victims %.0f ns, but %s victims "
                    "%.0f ns\n", w, shoal_near_name((shoal_near)prev), near_ns,
                    shoal_near_name((shoal_near)l), far_ns);
          if (j != NULL) {
            json_object_begin(j, NULL);
            json_uint(j, "worker", w);
            json_string(j, "nearer_level", shoal_near_name((shoal_near)prev));
            json_double(j, "nearer_ns", near_ns, 1);
            json_string(j, "farther_level", shoal_near_name((shoal_near)l));
            json_double(j, "farther_ns", far_ns, 1);
            json_object_end(j);
          }
        }
      }
      prev = l;
    }
  }
  return bad;
}

static int measure_latency(topo_report *r, cli_log *log) {
  shoal_latency_opts o;
  int rc;
  r->npu = shoal_topo_pu_count(r->t);
  r->pu_os = calloc(r->npu, sizeof *r->pu_os);
  r->matrix = calloc((size_t)r->npu * r->npu, sizeof *r->matrix);
  if (r->pu_os == NULL || r->matrix == NULL)
    return SHOAL_ENOMEM;
  for (unsigned i = 0; i < r->npu; i++)
    r->pu_os[i] = shoal_topo_pu_at(r->t, i)->os_index;
  shoal_latency_opts_defaults(&o);
  o.log = cli_log_fn;
  o.log_user = log;
  rc = shoal_latency_measure(r->t, r->pu_os, r->npu, r->matrix, &o);
  if (rc == SHOAL_OK)
    r->disagreements = check_steal_order(r, NULL, NULL);
  return rc;
}

static void print_latency(const topo_report *r) {
  printf("\nCore-to-core round trip, ns (median; rows and columns are PU P#)\n");
  printf("  %6s", "");
  for (unsigned j = 0; j < r->npu; j++)
    printf(" %6u", r->pu_os[j]);
  printf("\n");
  for (unsigned i = 0; i < r->npu; i++) {
    printf("  %6u", r->pu_os[i]);
    for (unsigned j = 0; j < r->npu; j++) {
      if (i == j)
        printf(" %6s", "-");
      else
        printf(" %6.0f", r->matrix[i * r->npu + j]);
    }
    printf("\n");
  }
  if (r->disagreements == 0) {
    printf("Steal order agrees: for every worker, nearer victims answer at "
           "least as fast as farther ones.\n");
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

static void json_latency(json_writer *j, const topo_report *r) {
  json_object_begin(j, "latency");
  json_array_begin(j, "pus", 1);
  for (unsigned i = 0; i < r->npu; i++)
    json_uint(j, NULL, r->pu_os[i]);
  json_array_end(j);
  json_array_begin(j, "round_trip_ns", 0);
  for (unsigned a = 0; a < r->npu; a++) {
    json_array_begin(j, NULL, 1);
    for (unsigned b = 0; b < r->npu; b++)
      json_double(j, NULL, r->matrix[a * r->npu + b], 1);
    json_array_end(j);
  }
  json_array_end(j);
  json_bool(j, "steal_order_agrees", r->disagreements == 0);
  json_array_begin(j, "disagreements", 0);
  check_steal_order(r, NULL, j);
  json_array_end(j);
  json_object_end(j);
}

static void print_json(const topo_report *r) {
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
  if (r->matrix != NULL)
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
    if (r.matrix != NULL)
      print_latency(&r);
  }
  status = cli_finish_output(PROG, status);
out:
  free(r.pu_os);
  free(r.matrix);
  shoal_plan_destroy(r.plan);
  shoal_topo_destroy(r.t);
  return status;
}
