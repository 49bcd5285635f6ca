/* test_topo.c — loading topologies (synthetic, XML, environment, bad input),
 * the snapshot's contents, the tree, CPU identification and the latency
 * probe. */
#include <string.h>
#include <unistd.h>

#include <libcpuid.h>

#include "runtime/topo/topo.h"
#include "test_util.h"

static const char *cpuid_version_for_test(void) {
  return cpuid_lib_version();
}

typedef struct log_capture {
  int calls;
  shoal_log_level level;
  char msg[512];
} log_capture;

static void capture(void *user, shoal_log_level level, const char *msg) {
  log_capture *c = user;
  c->calls++;
  c->level = level;
  snprintf(c->msg, sizeof c->msg, "%s", msg);
}

static int load(shoal_topo **t, const char *synthetic, const char *xml,
                log_capture *cap) {
  shoal_topo_opts o;
  shoal_topo_opts_defaults(&o);
  o.synthetic = synthetic;
  o.xml_path = xml;
  o.log = capture;
  o.log_user = cap;
  return shoal_topo_load(t, &o);
}

static void synthetic_snapshot(void **state) {
  shoal_topo *t = NULL;
  log_capture cap = {0};
  (void)state;
  assert_int_equal(load(&t, "pack:2 numa:2 l3:1 core:2 pu:2", NULL, &cap), SHOAL_OK);
  assert_int_equal(cap.calls, 0);
  assert_int_equal(shoal_topo_source(t), SHOAL_TOPO_SYNTHETIC);
  assert_string_equal(shoal_topo_source_text(t), "pack:2 numa:2 l3:1 core:2 pu:2");
  assert_int_equal(shoal_topo_is_this_system(t), 0);
  assert_int_equal(shoal_topo_pu_count(t), 16);
  assert_int_equal(shoal_topo_core_count(t), 8);
  assert_int_equal(shoal_topo_cache_domain_count(t), 4);
  assert_int_equal(shoal_topo_numa_count(t), 4);
  assert_int_equal(shoal_topo_package_count(t), 2);
  for (unsigned i = 0; i < 16; i++) {
    const shoal_topo_pu *p = shoal_topo_pu_at(t, i);
    assert_int_equal(p->logical, i);
    assert_int_equal(p->os_index, i);
    assert_int_equal(p->core, i / 2);
    assert_int_equal(p->cache, i / 4);
    assert_int_equal(p->numa, i / 4);
    assert_int_equal(p->package, i / 8);
  }
  assert_null(shoal_topo_pu_at(t, 16));
  assert_int_equal(shoal_topo_numa_at(t, 3)->package, 1);
  assert_int_equal(shoal_topo_numa_at(t, 3)->os_index, 3);
  assert_true(shoal_topo_numa_at(t, 0)->memory_bytes > 0);
  assert_null(shoal_topo_numa_at(t, 4));
  /* Synthetic L3s: one distinct entry, four instances. */
  assert_int_equal(shoal_topo_cache_count(t), 1);
  assert_int_equal(shoal_topo_cache_at(t, 0)->level, 3);
  assert_int_equal(shoal_topo_cache_at(t, 0)->instances, 4);
  assert_int_equal(shoal_topo_numa_distance(t, 0, 1), 0);
  shoal_topo_destroy(t);
}

static void xml_with_distances(void **state) {
  char path[1024];
  shoal_topo *t = NULL;
  log_capture cap = {0};
  (void)state;
  test_fixture_path(path, sizeof path, "asymmetric.xml");
  assert_int_equal(load(&t, NULL, path, &cap), SHOAL_OK);
  assert_int_equal(shoal_topo_source(t), SHOAL_TOPO_XML);
  assert_int_equal(shoal_topo_numa_distance(t, 0, 0), 10);
  assert_int_equal(shoal_topo_numa_distance(t, 1, 0), 16);
  assert_int_equal(shoal_topo_numa_distance(t, 2, 3), 16);
  assert_int_equal(shoal_topo_numa_distance(t, 0, 4), 0);
  shoal_topo_destroy(t);
}

static void bad_sources(void **state) {
  char path[1024];
  shoal_topo *t = (shoal_topo *)1;
  log_capture cap = {0};
  (void)state;
  assert_int_equal(load(&t, "pack:x", NULL, &cap), SHOAL_EINVAL);
  assert_null(t);
  assert_int_equal(cap.level, SHOAL_LOG_ERROR);
  assert_non_null(strstr(cap.msg, "pack:x"));
  assert_int_equal(load(&t, "", NULL, &cap), SHOAL_EINVAL);
  assert_int_equal(load(&t, NULL, "/nonexistent/topo.xml", &cap), SHOAL_EIO);
  assert_non_null(strstr(cap.msg, "/nonexistent/topo.xml"));
  test_fixture_path(path, sizeof path, "invalid.xml");
  assert_int_equal(load(&t, NULL, path, &cap), SHOAL_EFORMAT);
  assert_int_equal(load(&t, "core:2", path, &cap), SHOAL_EINVAL);
  assert_int_equal(shoal_topo_load(NULL, NULL), SHOAL_EINVAL);
}

/* XML that hwloc 2.9 would crash on, or that its two readers (libxml2's
 * and its own minimal one) would read differently, is refused before hwloc
 * reads it; the exporter's own output loads with both. */
static const char *const xml_base =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<!DOCTYPE topology SYSTEM \"hwloc2.dtd\">\n"
    "<topology version=\"2.0\">\n"
    "  <object type=\"Machine\" os_index=\"0\" cpuset=\"0x00000003\" "
    "complete_cpuset=\"0x00000003\" allowed_cpuset=\"0x00000003\" "
    "nodeset=\"0x00000001\" complete_nodeset=\"0x00000001\" "
    "allowed_nodeset=\"0x00000001\" gp_index=\"1\">\n"
    "    <info name=\"Backend\" value=\"Synthetic\"/>\n"
    "    <object type=\"NUMANode\" os_index=\"0\" cpuset=\"0x00000003\" "
    "complete_cpuset=\"0x00000003\" nodeset=\"0x00000001\" "
    "complete_nodeset=\"0x00000001\" gp_index=\"4\" "
    "local_memory=\"1073741824\"/>\n"
    "    <object type=\"Core\" os_index=\"0\" cpuset=\"0x00000001\" "
    "complete_cpuset=\"0x00000001\" nodeset=\"0x00000001\" "
    "complete_nodeset=\"0x00000001\" gp_index=\"3\">\n"
    "      <object type=\"PU\" os_index=\"0\" cpuset=\"0x00000001\" "
    "complete_cpuset=\"0x00000001\" nodeset=\"0x00000001\" "
    "complete_nodeset=\"0x00000001\" gp_index=\"2\"/>\n"
    "    </object>\n"
    "    <object type=\"Core\" os_index=\"1\" cpuset=\"0x00000002\" "
    "complete_cpuset=\"0x00000002\" nodeset=\"0x00000001\" "
    "complete_nodeset=\"0x00000001\" gp_index=\"6\">\n"
    "      <object type=\"PU\" os_index=\"1\" cpuset=\"0x00000002\" "
    "complete_cpuset=\"0x00000002\" nodeset=\"0x00000001\" "
    "complete_nodeset=\"0x00000001\" gp_index=\"5\"/>\n"
    "    </object>\n"
    "  </object>\n"
    "</topology>\n";

/* Loads xml_base with its first `from` replaced by `to` (len bytes of it),
 * with hwloc's libxml2 reader or its minimal one. */
static int load_variant(const char *from, const char *to, size_t to_len,
                        int libxml, log_capture *cap) {
  char path[] = "/tmp/shoal-test-topo-XXXXXX";
  const char *at = strstr(xml_base, from);
  shoal_topo *t = NULL;
  int fd = mkstemp(path), rc;
  FILE *f;
  assert_true(fd >= 0);
  assert_non_null(at);
  f = fdopen(fd, "w");
  fwrite(xml_base, 1, (size_t)(at - xml_base), f);
  fwrite(to, 1, to_len, f);
  fputs(at + strlen(from), f);
  fclose(f);
  setenv("HWLOC_LIBXML_IMPORT", libxml ? "1" : "0", 1);
  rc = load(&t, NULL, path, cap);
  unsetenv("HWLOC_LIBXML_IMPORT");
  unlink(path);
  if (rc == SHOAL_OK) {
    assert_int_equal(shoal_topo_pu_count(t), 2);
    shoal_topo_destroy(t);
  } else {
    assert_null(t);
  }
  return rc;
}

static void xml_checked(void **state) {
  static const struct {
    const char *from, *to, *why;
  } bad[] = {
    /* hwloc 2.9 dereferences the missing complete_cpuset (SEGV) */
    {"complete_cpuset=\"0x00000001\"", "cooplete_cpuset=\"0x00000001\"",
     "no complete_cpuset"},
    {" complete_nodeset=\"0x00000001\" gp_index=\"2\"", " gp_index=\"2\"",
     "no complete_nodeset"},
    {" cpuset=\"0x00000001\"", "", "no cpuset"},
    {" cpuset=\"0x00000001\" complete_cpuset=\"0x00000001\" "
     "nodeset=\"0x00000001\" complete_nodeset=\"0x00000001\"", "",
     "without cpuset and nodeset"},
    {"gp_index=\"3\"", "gp_index=\"3\" cpuset=\"0x1\"", "twice"},
    /* hwloc 2.9's bitmap parser aborts on a leading comma */
    {"cpuset=\"0x00000001\"", "cpuset=\",0x00000001\"", "not a bitmap"},
    {"nodeset=\"0x00000001\"", "nodeset=\"0x1 \"", "not a bitmap"},
    {"allowed_cpuset=\"0x00000003\"", "allowed_cpuset=\"\"", "not a bitmap"},
    /* the minimal reader would stop at these and miss the sets after */
    {"gp_index=\"3\"", "name=\"&apos;\" gp_index=\"3\"", "unknown escape"},
    {"gp_index=\"3\"", "name=\"a>b\" gp_index=\"3\"", "unescaped"},
    {"gp_index=\"3\"", "gp_index='3'", "name=\"value\""},
    {"gp_index=\"3\"", "x:gp_index=\"3\"", "name=\"value\""},
    {"gp_index=\"3\"", "gp_index=\"3\"\r", "byte 0x0d"},
    {"\" gp_index=\"3\"", "\"gp_index=\"3\"", "no space"},
    /* what libxml2 alone would read as something else */
    {"SYSTEM \"hwloc2.dtd\"", "[<!ENTITY e \"x\">]", "internal subset"},
    {"encoding=\"UTF-8\"", "encoding=\"UTF-7\"", "encoding"},
    {"  <object type=\"Machine\"", "<![CDATA[x]]><object type=\"Machine\"",
     "markup other"},
    {"<object type=\"PU\"", "<Object type=\"PU\"", "tag name"},
    {"gp_index=\"3\">", "gp_index=\"3\"", "byte 0x3c"},
    /* only hwloc's elements, where its format has them (hwloc 2.9 leaks
     * what it built when it meets another) */
    {"<object type=\"PU\"", "<objebt type=\"PU\"", "not an hwloc XML"},
    {"<info name", "<latency value=\"1\"/><info name", "has none"},
    {"    </object>\n", "    </info>\n", "closes no open"},
    {"</topology>\n", "", "not closed"},
    {"</topology>\n", "</topology>\n<topology>\n</topology>\n", "second root"},
    {"    <info", "    x<info", "text where"},
  };
  log_capture cap = {0};
  (void)state;
  for (int libxml = 0; libxml <= 1; libxml++) {
    assert_int_equal(load_variant("", "", 0, libxml, &cap), SHOAL_OK);
    /* bitmaps with empty and infinite words, as hwloc writes them */
    {
      const char *full = "allowed_cpuset=\"0xf...f,,0x00000003\"";
      assert_int_equal(load_variant("allowed_cpuset=\"0x00000003\"", full,
                                    strlen(full), libxml, &cap), SHOAL_OK);
    }
    /* escapes both readers decode are fine */
    assert_int_equal(load_variant("value=\"Synthetic\"",
                                  "value=\"a&lt;b&amp;&#10;c\"", 25, libxml,
                                  &cap), SHOAL_OK);
    for (size_t i = 0; i < SHOAL_ARRAY_LEN(bad); i++) {
      cap.msg[0] = '\0';
      if (load_variant(bad[i].from, bad[i].to, strlen(bad[i].to), libxml,
                       &cap) != SHOAL_EFORMAT ||
          strstr(cap.msg, bad[i].why) == NULL)
        fail_msg("variant %zu (%s -> %s, libxml %d): '%s'", i, bad[i].from,
                 bad[i].to, libxml, cap.msg);
    }
    /* a NUL byte (UTF-16 text, or a file cut short) */
    assert_int_equal(load_variant("Synthetic", "Synth\0tic", 9, libxml, &cap),
                     SHOAL_EFORMAT);
    assert_non_null(strstr(cap.msg, "NUL"));
  }
}

/* Trees hwloc would read wrong, each refused with its reason and offset:
 * a PU index past any CPU (hwloc gave it a node it is not under), two PUs
 * with one index (two workers bound to one CPU), a PU whose cpuset is
 * another CPU, no NUMA node (hwloc printed its own "aborting" line), a
 * distance matrix short of values; and a directory. */
static void damaged_trees(void **state) {
  static const struct {
    const char *file, *why;
  } bad[] = {
    {"pu-huge.xml", "PU os_index 4294967294 past 1048575"},
    {"pu-duplicate.xml", "a second PU with os_index 0"},
    {"pu-cpuset.xml", "is not CPU 3 alone"},
    {"no-numa.xml", "no NUMA node"},
    {"distances-short.xml", "4 indexes and 15 values (16 wanted)"},
  };
  char path[1024];
  shoal_topo *t = NULL;
  (void)state;
  for (size_t i = 0; i < SHOAL_ARRAY_LEN(bad); i++) {
    log_capture cap = {0};
    test_fixture_path(path, sizeof path, bad[i].file);
    assert_int_equal(load(&t, NULL, path, &cap), SHOAL_EFORMAT);
    assert_null(t);
    if (strstr(cap.msg, bad[i].why) == NULL || strstr(cap.msg, "byte ") == NULL)
      fail_msg("%s: '%s'", bad[i].file, cap.msg);
  }
  {
    log_capture cap = {0};
    test_fixture_path(path, sizeof path, "");
    assert_int_equal(load(&t, NULL, path, &cap), SHOAL_EIO);
    assert_non_null(strstr(cap.msg, "Is a directory"));
  }
}

/* This machine as the process may use it: without a binding narrower
 * than the machine, nothing is excluded; whole_system changes nothing
 * then. (Under taskset: tests/test_affinity.c.) */
static void allowed_pus(void **state) {
  shoal_topo *t = NULL;
  shoal_topo_opts o;
  unsigned os;
  shoal_excluded_reason why;
  (void)state;
  shoal_topo_opts_defaults(&o);
  o.whole_system = 1;
  assert_int_equal(shoal_topo_load(&t, &o), SHOAL_OK);
  for (unsigned i = 0; i < shoal_topo_pu_count(t); i++) {
    const shoal_topo_pu *pu = shoal_topo_pu_at(t, i);
    int listed = 0;
    for (unsigned k = 0; k < shoal_topo_excluded_count(t); k++) {
      assert_int_equal(shoal_topo_excluded_at(t, k, &os, &why), SHOAL_OK);
      assert_non_null(shoal_excluded_reason_name(why));
      listed |= os == pu->os_index;
    }
    assert_int_equal(pu->allowed, !listed);
  }
  assert_int_equal(shoal_topo_excluded_at(t, shoal_topo_excluded_count(t),
                                          &os, &why),
                   SHOAL_EINVAL);
  shoal_topo_destroy(t);
  assert_int_equal(load(&t, "core:2 pu:1", NULL, &(log_capture){0}),
                   SHOAL_OK);
  assert_int_equal(shoal_topo_excluded_count(t), 0);
  assert_int_equal(shoal_topo_pu_at(t, 1)->allowed, 1);
  shoal_topo_destroy(t);
  assert_null(shoal_excluded_reason_name((shoal_excluded_reason)0));
}

static void environment(void **state) {
  shoal_topo *t = NULL;
  char path[1024];
  (void)state;
  setenv("HWLOC_SYNTHETIC", "pack:3 core:1 pu:1", 1);
  assert_int_equal(shoal_topo_load(&t, NULL), SHOAL_OK);
  assert_int_equal(shoal_topo_source(t), SHOAL_TOPO_SYNTHETIC);
  assert_int_equal(shoal_topo_package_count(t), 3);
  shoal_topo_destroy(t);
  /* An explicit source wins over the environment. */
  assert_int_equal(load(&t, "core:5 pu:1", NULL, &(log_capture){0}), SHOAL_OK);
  assert_int_equal(shoal_topo_core_count(t), 5);
  shoal_topo_destroy(t);
  setenv("HWLOC_SYNTHETIC", "nonsense:", 1);
  assert_int_equal(shoal_topo_load(&t, NULL), SHOAL_EINVAL);
  unsetenv("HWLOC_SYNTHETIC");
  test_fixture_path(path, sizeof path, "distances.xml");
  setenv("HWLOC_XMLFILE", path, 1);
  assert_int_equal(shoal_topo_load(&t, NULL), SHOAL_OK);
  assert_int_equal(shoal_topo_source(t), SHOAL_TOPO_XML);
  assert_int_equal(shoal_topo_numa_count(t), 4);
  shoal_topo_destroy(t);
  unsetenv("HWLOC_XMLFILE");
}

static void count_line(void *user, unsigned depth, const char *line) {
  unsigned *n = user;
  (void)depth;
  assert_true(strlen(line) > 0);
  n[0]++;
  if (strncmp(line, "PU ", 3) == 0)
    n[1]++;
  if (depth > n[2])
    n[2] = depth;
}

static void tree(void **state) {
  shoal_topo *t = NULL;
  unsigned n[3] = {0};
  (void)state;
  assert_int_equal(load(&t, "pack:2 core:2 pu:1", NULL, &(log_capture){0}), SHOAL_OK);
  assert_int_equal(shoal_topo_tree(t, count_line, n), SHOAL_OK);
  /* Machine, NUMANode, 2 packages, 4 cores, 4 PUs. */
  assert_int_equal(n[0], 12);
  assert_int_equal(n[1], 4);
  assert_int_equal(n[2], 3);
  assert_int_equal(shoal_topo_tree(t, NULL, NULL), SHOAL_EINVAL);
  shoal_topo_destroy(t);
}

static void native(void **state) {
  shoal_topo *t = NULL;
  (void)state;
  assert_int_equal(shoal_topo_load(&t, NULL), SHOAL_OK);
  assert_int_equal(shoal_topo_source(t), SHOAL_TOPO_NATIVE);
  assert_null(shoal_topo_source_text(t));
  assert_int_equal(shoal_topo_is_this_system(t), 1);
  assert_true(shoal_topo_pu_count(t) >= 1);
  assert_true(shoal_topo_core_count(t) >= 1);
  assert_true(shoal_topo_core_count(t) <= shoal_topo_pu_count(t));
  /* the PUs the process may use, and those it may not, are the machine */
  assert_int_equal(shoal_topo_pu_count(t) + shoal_topo_excluded_count(t),
                   (unsigned)sysconf(_SC_NPROCESSORS_ONLN));
  shoal_topo_destroy(t);
}

static void cpu(void **state) {
  shoal_cpu_info c;
  int rc = shoal_cpu_identify(&c);
  (void)state;
  assert_int_equal(shoal_cpu_identify(NULL), SHOAL_EINVAL);
#if defined(__x86_64__)
  assert_int_equal(rc, SHOAL_OK);
  assert_true(strlen(c.vendor) > 0);
  assert_true(c.family > 0);
  /* x86-64 itself guarantees SSE2; these bits are all shoal knows. */
  assert_int_equal(c.features & ~0x1fu, 0);
  /* AVX-512VL/BW are extensions of AVX-512F. */
  if (c.features & (SHOAL_CPU_AVX512BW | SHOAL_CPU_AVX512VL))
    assert_true(c.features & SHOAL_CPU_AVX512F);
#else
  assert_true(rc == SHOAL_OK || rc == SHOAL_ENOTSUP);
#endif
  assert_string_equal(shoal_cpu_feature_name(SHOAL_CPU_AVX512VL), "avx512vl");
  assert_null(shoal_cpu_feature_name(3));
  /* libcpuid 0.6.2's names for parts it matched on another model's entry
   * are not kept: Emerald Rapids (0xCF, not in its table) and a Rocket
   * Lake-based Xeon (0xA7: its entries are Core parts) */
  if (strcmp(cpuid_version_for_test(), "0.6.2") == 0) {
    assert_int_equal(shoal__intel6_name_fits(6, 0xCF, "Xeon (Conroe/2M)"), 0);
    assert_int_equal(shoal__intel6_name_fits(6, 0xA7, "Xeon (Wolfdale)"), 0);
  }
  assert_int_equal(shoal__intel6_name_fits(6, 0xA7, "Rocket Lake (Core i7)"),
                   1);
  assert_int_equal(shoal__intel6_name_fits(6, 15, "Xeon (Conroe/2M)"), 1);
  assert_int_equal(shoal__intel6_name_fits(15, 0xA7, "Xeon (Wolfdale)"), 1);
}

static void count_progress(void *user, unsigned done, unsigned total) {
  unsigned *calls = user;
  assert_true(done <= total);
  (*calls)++;
}

static void latency(void **state) {
  shoal_topo *t = NULL, *syn = NULL;
  shoal_latency_opts o;
  unsigned pus[2];
  double m[4] = {-1, -1, -1, -1};
  (void)state;
  assert_int_equal(shoal_topo_load(&t, NULL), SHOAL_OK);
  shoal_latency_opts_defaults(&o);
  o.round_trips = 50;
  o.samples = 5;
  pus[0] = shoal_topo_pu_at(t, 0)->os_index;
  pus[1] = shoal_topo_pu_at(t, shoal_topo_pu_count(t) - 1)->os_index;
  if (shoal_topo_pu_count(t) >= 2) {
    shoal_latency_pair pr[4];
    unsigned calls = 0;
    assert_int_equal(shoal_latency_measure(t, pus, 2, m, &o), SHOAL_OK);
    assert_true(m[0] == 0.0 && m[3] == 0.0);
    assert_true(m[1] > 0.0 && m[2] > 0.0); /* each direction measured */
    o.progress = count_progress;
    o.progress_user = &calls;
    assert_int_equal(shoal_latency_measure_pairs(t, pus, 2, pr, &o), SHOAL_OK);
    assert_int_equal(calls, 2);
    for (unsigned k = 1; k <= 2; k++) {
      assert_true(pr[k].runs >= 3 && pr[k].runs <= o.max_runs);
      assert_true(pr[k].min_ns <= pr[k].median_ns);
      assert_true(pr[k].median_ns <= pr[k].max_ns);
    }
    assert_int_equal(pr[0].runs, 0); /* the diagonal */
    /* a budget already spent: nothing measured, nothing wrong */
    o.budget_ms = 1;
    o.max_runs = 1000;
    o.spread = 0;
    assert_int_equal(shoal_latency_measure_pairs(t, pus, 2, pr, &o), SHOAL_OK);
    o.budget_ms = 60000;
    o.max_runs = 5;
    o.spread = 0.10;
    o.progress = NULL;
  }
  pus[1] = 100000; /* not a PU of this machine */
  assert_int_equal(shoal_latency_measure(t, pus, 2, m, &o), SHOAL_EINVAL);
  assert_int_equal(shoal_latency_measure(t, pus, 0, m, &o), SHOAL_EINVAL);
  o.samples = 0;
  assert_int_equal(shoal_latency_measure(t, pus, 1, m, &o), SHOAL_EINVAL);
  assert_int_equal(load(&syn, "core:2 pu:1", NULL, &(log_capture){0}), SHOAL_OK);
  pus[0] = 0;
  pus[1] = 1;
  assert_int_equal(shoal_latency_measure(syn, pus, 2, m, NULL), SHOAL_ENOTSUP);
  shoal_topo_destroy(syn);
  shoal_topo_destroy(t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(synthetic_snapshot),
    cmocka_unit_test(xml_with_distances),
    cmocka_unit_test(bad_sources),
    cmocka_unit_test(xml_checked),
    cmocka_unit_test(damaged_trees),
    cmocka_unit_test(allowed_pus),
    cmocka_unit_test(environment),
    cmocka_unit_test(tree),
    cmocka_unit_test(native),
    cmocka_unit_test(cpu),
    cmocka_unit_test(latency),
  };
  unsetenv("HWLOC_SYNTHETIC");
  unsetenv("HWLOC_XMLFILE");
  return test_run("topo", tests, SHOAL_ARRAY_LEN(tests));
}
