/* topo.h — the topology snapshot shared by the plan, the latency probe and
 * (later) the workers. Internal to the library. */
#ifndef SHOAL_TOPO_H
#define SHOAL_TOPO_H

#include <pthread.h>

#include "runtime/common.h"

/* An object of the tree that holds PUs, as the plan sees it: what it is
 * (a shoal_near), its cache level (caches), and how many PUs it holds. */
typedef struct shoal__domain {
  unsigned char near;
  unsigned char cache_level;
  unsigned weight;
} shoal__domain;

/* The most domains above one PU: core, caches, NUMA node, die, package,
 * groups, machine. */
#define SHOAL__CHAIN_MAX 16u

struct shoal_topo {
  void *hw;               /* hwloc_topology_t, kept for binding and the tree */
  shoal_topo_kind kind;
  char *source_text;      /* synthetic string or XML path; NULL if native */
  int this_system;
  unsigned npu, ncore, ndomain, nnuma, npackage, ncache;
  shoal_topo_pu *pus;     /* logical order */
  shoal_topo_numa *numas; /* logical order */
  shoal_topo_cache *caches;
  unsigned *distance;     /* nnuma * nnuma latencies, or NULL */
  uint64_t *bandwidth;    /* nnuma * nnuma, or NULL */
  /* PUs the process may not run on: OS index and shoal_excluded_reason */
  unsigned nexcluded;
  unsigned *excluded_os;
  unsigned char *excluded_why;
  /* Each PU's domains, smallest first (ids into domains; an object of the
   * same PUs as a smaller one is left out), for the plan's nearness. */
  shoal__domain *domains;
  unsigned ndomains;
  unsigned *chain;        /* npu * SHOAL__CHAIN_MAX */
  unsigned char *chain_len;
};

/* Binds the calling thread to one PU (OS index). SHOAL_ENOTSUP when `t` is
 * not this machine, SHOAL_EINVAL for a PU `t` does not have, SHOAL_EPIN when
 * the OS refuses. Any thread, for itself. */
int shoal__topo_bind_self(const shoal_topo *t, unsigned pu_os);

/* Sets *attr so that a thread created with it starts on one PU (OS
 * index) rather than on its creator's and moving there; same errors. Any
 * thread. */
int shoal__topo_bind_attr(const shoal_topo *t, unsigned pu_os,
                          pthread_attr_t *attr);

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

/* cpu.c: 1 when codename, as libcpuid 0.6.2 (or earlier) names an Intel
 * part of this family and full model, is one of that model's names; 0
 * when libcpuid matched it on another model's entry. Any thread. */
int shoal__intel6_name_fits(int family, int model, const char *codename);

#endif /* SHOAL_TOPO_H */
