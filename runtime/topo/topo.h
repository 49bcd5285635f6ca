/* topo.h — the topology snapshot shared by the plan, the latency probe and
 * (later) the workers. Internal to the library. */
#ifndef SHOAL_TOPO_H
#define SHOAL_TOPO_H

#include "runtime/common.h"

struct shoal_topo {
  void *hw;               /* hwloc_topology_t, kept for binding and the tree */
  shoal_topo_kind kind;
  char *source_text;      /* synthetic string or XML path; NULL if native */
  int this_system;
  unsigned npu, ncore, ndomain, nnuma, npackage, ncache;
  shoal_topo_pu *pus;     /* logical order */
  shoal_topo_numa *numas; /* logical order */
  shoal_topo_cache *caches;
  unsigned *distance;     /* nnuma * nnuma, or NULL */
};

/* Binds the calling thread to one PU (OS index). SHOAL_ENOTSUP when `t` is
 * not this machine, SHOAL_EINVAL for a PU `t` does not have, SHOAL_EPIN when
 * the OS refuses. Any thread, for itself. */
int shoal__topo_bind_self(const shoal_topo *t, unsigned pu_os);

/* Binds the memory the calling thread allocates from now on to one NUMA
 * node (OS index); same errors as shoal__topo_bind_self. */
int shoal__topo_membind_self(const shoal_topo *t, unsigned numa_os);

/* Binds the pages of [addr, addr + len) to one NUMA node (OS index),
 * moving those already touched; same errors. Any thread. */
int shoal__topo_membind_area(const shoal_topo *t, unsigned numa_os,
                             void *addr, size_t len);

/* Checks an XML topology (len bytes, no NUL among them) before hwloc
 * reads it: the form hwloc's exporter writes, which both of hwloc's XML
 * readers read alike, and no object hwloc 2.9 crashes on (topo_xml.c).
 * SHOAL_EFORMAT with the reason, and its byte offset, in why. */
int shoal__topo_xml_check(const char *buf, size_t len, char *why,
                          size_t cap);

#endif /* SHOAL_TOPO_H */
