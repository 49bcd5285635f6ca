/* fuzz_topo.c — libFuzzer target: topology import from an hwloc
 * synthetic description (fuzz_topo) or, built with FUZZ_XML, from an hwloc
 * XML file (fuzz_topo_xml), then the worker plan. A load either fails with
 * a code or gives a topology whose plan places every worker. The first
 * byte of an input is its kind (odd: synthetic, even: XML); a target
 * skips inputs of the other kind, so that one corpus serves both. For XML,
 * bit 1 of that byte picks hwloc's minimal XML reader over libxml2's.
 *
 * hwloc 2.9's XML import crashes on XML it did not write (known/);
 * shoal_topo_load checks a file first (runtime/topo/topo_xml.c), and this
 * target is how that check is tried. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shoal.h"

static char path[] = "/tmp/shoal-fuzz-topo-XXXXXX";
static int fd = -1;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  shoal_topo_opts o;
  shoal_topo *t = NULL;
  shoal_plan *p = NULL;
  char *text = NULL;
  int rc;
  if (size < 1)
    return 0;
  if (fd < 0 && (fd = mkstemp(path)) < 0)
    abort();
  shoal_topo_opts_defaults(&o);
#ifdef FUZZ_XML
  if (data[0] & 1)
    return 0;
#else
  if ((data[0] & 1) == 0)
    return 0;
#endif
  if (data[0] & 1) {
    if ((text = malloc(size)) == NULL)
      return 0;
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    o.synthetic = text;
  } else {
    if (ftruncate(fd, 0) != 0 ||
        pwrite(fd, data + 1, size - 1, 0) != (ssize_t)(size - 1))
      abort();
    o.xml_path = path;
    setenv("HWLOC_LIBXML_IMPORT", data[0] & 2 ? "0" : "1", 1);
  }
  rc = shoal_topo_load(&t, &o);
  if (rc != SHOAL_OK) {
    if (t != NULL || rc >= 0)
      abort();
  } else {
    if (shoal_topo_pu_count(t) == 0)
      abort();
    if (shoal_plan_compute(&p, t, 0) == SHOAL_OK) {
      if (shoal_plan_worker_count(p) == 0)
        abort();
      shoal_plan_destroy(p);
    }
    shoal_topo_destroy(t);
  }
  free(text);
  return 0;
}
