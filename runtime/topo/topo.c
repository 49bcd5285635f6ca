/* topo.c — reads a machine's topology with hwloc (native, synthetic or XML)
 * into the flat snapshot the plan works on, prints it as a tree, and binds
 * threads to PUs. The one file of the library that calls hwloc. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hwloc.h>
#include <hwloc/glibc-sched.h>

#include "runtime/os.h"
#include "runtime/topo/topo.h"

void shoal_topo_opts_defaults(shoal_topo_opts *opts) {
  if (opts == NULL)
    return;
  memset(opts, 0, sizeof *opts);
  opts->struct_size = sizeof *opts;
}

/* The largest XML topology read: hwloc's export of a machine with
 * thousands of PUs is a few MiB. */
#define XML_MAX ((size_t)64 << 20)

/* Maps hwloc objects to dense ids in order of first appearance. */
typedef struct id_map {
  hwloc_obj_t *objs;
  unsigned n;
} id_map;

static unsigned id_of(id_map *m, hwloc_obj_t o) {
  for (unsigned i = m->n; i-- > 0;)
    if (m->objs[i] == o)
      return i;
  m->objs[m->n] = o;
  return m->n++;
}

static unsigned cores_inside(hwloc_topology_t hw, hwloc_obj_t o) {
  int n = hwloc_get_nbobjs_inside_cpuset_by_type(hw, o->cpuset, HWLOC_OBJ_CORE);
  return n > 0 ? (unsigned)n : 0;
}

/* The cache domain of a PU, as shoal.h defines it. */
static hwloc_obj_t cache_domain_of(hwloc_topology_t hw, hwloc_obj_t pu,
                                   hwloc_obj_t core) {
  hwloc_obj_t shared = NULL, any = NULL;
  for (hwloc_obj_t o = pu->parent; o != NULL; o = o->parent) {
    if (!hwloc_obj_type_is_cache(o->type))
      continue;
    any = o; /* walking up: the last one seen is the largest */
    if (cores_inside(hw, o) > 1)
      shared = o;
  }
  if (shared != NULL)
    return shared;
  if (any != NULL)
    return any;
  return core;
}

static shoal_cache_type cache_type_of(hwloc_obj_t o) {
  switch (o->attr->cache.type) {
  case HWLOC_OBJ_CACHE_DATA: return SHOAL_CACHE_DATA;
  case HWLOC_OBJ_CACHE_INSTRUCTION: return SHOAL_CACHE_INSTRUCTION;
  default: return SHOAL_CACHE_UNIFIED;
  }
}

static int cache_cmp(const void *pa, const void *pb) {
  const shoal_topo_cache *a = pa, *b = pb;
  if (a->level != b->level)
    return a->level < b->level ? -1 : 1;
  if (a->type != b->type)
    return a->type > b->type ? -1 : 1; /* data, then instruction, unified */
  if (a->size_bytes != b->size_bytes)
    return a->size_bytes < b->size_bytes ? -1 : 1;
  return 0;
}

/* One entry per distinct (level, type, size, ways, line), with a count. */
static int collect_caches(shoal_topo *t, hwloc_topology_t hw) {
  unsigned cap = 0, n = 0;
  shoal_topo_cache *c = NULL;
  for (hwloc_obj_type_t ty = HWLOC_OBJ_L1CACHE; ty <= HWLOC_OBJ_L3ICACHE; ty++) {
    if (!hwloc_obj_type_is_cache(ty))
      continue;
    int count = hwloc_get_nbobjs_by_type(hw, ty);
    for (int i = 0; i < count; i++) {
      hwloc_obj_t o = hwloc_get_obj_by_type(hw, ty, (unsigned)i);
      shoal_topo_cache e = {
        .level = o->attr->cache.depth,
        .type = cache_type_of(o),
        .size_bytes = o->attr->cache.size,
        .ways = o->attr->cache.associativity,
        .line_bytes = o->attr->cache.linesize,
        .instances = 1,
      };
      unsigned k;
      for (k = 0; k < n; k++)
        if (c[k].level == e.level && c[k].type == e.type &&
            c[k].size_bytes == e.size_bytes && c[k].ways == e.ways &&
            c[k].line_bytes == e.line_bytes)
          break;
      if (k < n) {
        c[k].instances++;
        continue;
      }
      if (n == cap) {
        unsigned ncap = cap ? cap * 2 : 8;
        shoal_topo_cache *nc = shoal__realloc(c, ncap * sizeof *c);
        if (nc == NULL) {
          shoal__free(c);
          return SHOAL_ENOMEM;
        }
        c = nc;
        cap = ncap;
      }
      c[n++] = e;
    }
  }
  if (n > 1)
    qsort(c, n, sizeof *c, cache_cmp);
  t->caches = c;
  t->ncache = n;
  return SHOAL_OK;
}

/* One NUMA matrix of kind `kind` (hwloc's distances API), into *out as
 * nnuma * nnuma values by logical index; nothing when there is none. */
static void numa_matrix(shoal_topo *t, hwloc_topology_t hw, unsigned long kind,
                        void **out, int wide) {
  struct hwloc_distances_s *d = NULL;
  unsigned nr = 1;
  if (hwloc_distances_get_by_type(hw, HWLOC_OBJ_NUMANODE, &nr, &d, kind,
                                  0) != 0 ||
      nr == 0)
    return;
  if (d->nbobjs == t->nnuma) {
    size_t n = (size_t)t->nnuma * t->nnuma;
    void *m = shoal__calloc(n, wide ? sizeof(uint64_t) : sizeof(unsigned));
    if (m != NULL) {
      for (unsigned i = 0; i < d->nbobjs; i++)
        for (unsigned j = 0; j < d->nbobjs; j++) {
          size_t k = (size_t)d->objs[i]->logical_index * t->nnuma +
                     d->objs[j]->logical_index;
          uint64_t v = d->values[i * d->nbobjs + j];
          if (wide)
            ((uint64_t *)m)[k] = v;
          else
            ((unsigned *)m)[k] = v > UINT_MAX ? UINT_MAX : (unsigned)v;
        }
      *out = m;
    }
  }
  hwloc_distances_release(hw, d);
}

/* Latency orders; bandwidth is only shown. hwloc's kind filter returns
 * the matrices that say they mean latency (NUMALatency, from the OS's
 * SLIT or the user), whatever their order in the topology. */
static void collect_distances(shoal_topo *t, hwloc_topology_t hw) {
  void *m = NULL;
  if (t->nnuma < 2)
    return;
  numa_matrix(t, hw, HWLOC_DISTANCES_KIND_MEANS_LATENCY, &m, 0);
  t->distance = m;
  m = NULL;
  numa_matrix(t, hw, HWLOC_DISTANCES_KIND_MEANS_BANDWIDTH, &m, 1);
  t->bandwidth = m;
}

/* ---- domains: what the plan's nearness is made of ----------------------- */

static unsigned weight_of(hwloc_const_cpuset_t set) {
  int w = set != NULL ? hwloc_bitmap_weight(set) : 0;
  return w > 0 ? (unsigned)w : 0;
}

/* The shoal_near of an object holding PUs, or -1 for one that does not
 * count (a PU, Misc). */
static int near_of(hwloc_obj_t o) {
  if (hwloc_obj_type_is_cache(o->type))
    return SHOAL_NEAR_CACHE;
  switch (o->type) {
  case HWLOC_OBJ_CORE: return SHOAL_NEAR_CORE;
  case HWLOC_OBJ_NUMANODE: return SHOAL_NEAR_NUMA;
  case HWLOC_OBJ_DIE: return SHOAL_NEAR_DIE;
  case HWLOC_OBJ_PACKAGE: return SHOAL_NEAR_PACKAGE;
  case HWLOC_OBJ_GROUP: return SHOAL_NEAR_GROUP;
  case HWLOC_OBJ_MACHINE: return SHOAL_NEAR_REMOTE;
  default: return -1;
  }
}

/* The domain id of o (made on first sight; o->userdata keeps it). */
static unsigned domain_id(shoal_topo *t, hwloc_obj_t o, unsigned cap) {
  if (o->userdata == NULL && t->ndomains < cap) {
    shoal__domain *d = &t->domains[t->ndomains];
    d->near = (unsigned char)near_of(o);
    d->cache_level = hwloc_obj_type_is_cache(o->type)
                         ? (unsigned char)o->attr->cache.depth
                         : 0;
    d->weight = weight_of(o->cpuset);
    o->userdata = (void *)(uintptr_t)(++t->ndomains);
  }
  return o->userdata != NULL ? (unsigned)(uintptr_t)o->userdata - 1 : 0;
}

/* PU i's chain: its ancestors and its NUMA node, by PUs held and then by
 * shoal_near (an object of the same PUs as a smaller one adds nothing;
 * of two with the same PUs, the nearer kind names them: an L3 that is a
 * NUMA node is a cache). */
static void chain_of(shoal_topo *t, hwloc_obj_t pu, hwloc_obj_t numa,
                     unsigned i, unsigned cap) {
  hwloc_obj_t c[SHOAL__CHAIN_MAX + 1];
  unsigned n = 0, *out = &t->chain[(size_t)i * SHOAL__CHAIN_MAX], k = 0;
  for (hwloc_obj_t o = pu->parent; o != NULL && n < SHOAL__CHAIN_MAX;
       o = o->parent)
    if (near_of(o) >= 0)
      c[n++] = o;
  if (numa != NULL && n < SHOAL__CHAIN_MAX)
    c[n++] = numa;
  for (unsigned a = 1; a < n; a++) { /* insertion: few entries */
    hwloc_obj_t x = c[a];
    unsigned b = a;
    while (b > 0 && (weight_of(c[b - 1]->cpuset) > weight_of(x->cpuset) ||
                     (weight_of(c[b - 1]->cpuset) == weight_of(x->cpuset) &&
                      near_of(c[b - 1]) > near_of(x)))) {
      c[b] = c[b - 1];
      b--;
    }
    c[b] = x;
  }
  for (unsigned a = 0; a < n; a++) {
    if (a > 0 && weight_of(c[a]->cpuset) == weight_of(c[a - 1]->cpuset))
      continue;
    out[k++] = domain_id(t, c[a], cap);
  }
  t->chain_len[i] = (unsigned char)k;
}

static int collect_chains(shoal_topo *t, hwloc_topology_t hw) {
  unsigned cap = 0;
  for (int depth = 0; depth < hwloc_topology_get_depth(hw); depth++)
    cap += (unsigned)hwloc_get_nbobjs_by_depth(hw, (unsigned)depth);
  cap += t->nnuma;
  t->domains = shoal__calloc(cap, sizeof *t->domains);
  t->chain = shoal__calloc((size_t)t->npu * SHOAL__CHAIN_MAX,
                           sizeof *t->chain);
  t->chain_len = shoal__calloc(t->npu, 1);
  if (t->domains == NULL || t->chain == NULL || t->chain_len == NULL)
    return SHOAL_ENOMEM;
  for (unsigned i = 0; i < t->npu; i++) {
    hwloc_obj_t pu = hwloc_get_obj_by_type(hw, HWLOC_OBJ_PU, i);
    hwloc_obj_t numa =
        hwloc_get_obj_by_type(hw, HWLOC_OBJ_NUMANODE, t->pus[i].numa);
    chain_of(t, pu, numa, i, cap);
  }
  return SHOAL_OK;
}

static unsigned package_of(hwloc_topology_t hw, hwloc_obj_t o) {
  hwloc_obj_t p = hwloc_get_ancestor_obj_by_type(hw, HWLOC_OBJ_PACKAGE, o);
  return p != NULL ? p->logical_index : 0;
}

/* Flattens the hwloc tree into t's arrays. */
static int snapshot(shoal_topo *t, hwloc_topology_t hw) {
  int npu = hwloc_get_nbobjs_by_type(hw, HWLOC_OBJ_PU);
  int nnuma = hwloc_get_nbobjs_by_type(hw, HWLOC_OBJ_NUMANODE);
  int npack = hwloc_get_nbobjs_by_type(hw, HWLOC_OBJ_PACKAGE);
  id_map cores = {0}, domains = {0};
  int rc = SHOAL_ENOMEM;

  if (npu <= 0 || nnuma <= 0)
    return SHOAL_ETOPO;
  t->npu = (unsigned)npu;
  t->nnuma = (unsigned)nnuma;
  t->npackage = npack > 0 ? (unsigned)npack : 1;
  t->pus = shoal__calloc(t->npu, sizeof *t->pus);
  t->numas = shoal__calloc(t->nnuma, sizeof *t->numas);
  cores.objs = shoal__calloc(t->npu, sizeof(hwloc_obj_t));
  domains.objs = shoal__calloc(t->npu, sizeof(hwloc_obj_t));
  if (!t->pus || !t->numas || !cores.objs || !domains.objs)
    goto out;

  for (unsigned i = 0; i < t->nnuma; i++) {
    hwloc_obj_t n = hwloc_get_obj_by_type(hw, HWLOC_OBJ_NUMANODE, i);
    t->numas[i] = (shoal_topo_numa){
      .logical = n->logical_index,
      .os_index = n->os_index,
      .package = package_of(hw, n),
      .memory_bytes = n->attr->numanode.local_memory,
    };
  }

  for (unsigned i = 0; i < t->npu; i++) {
    hwloc_obj_t pu = hwloc_get_obj_by_type(hw, HWLOC_OBJ_PU, i);
    hwloc_obj_t core = hwloc_get_ancestor_obj_by_type(hw, HWLOC_OBJ_CORE, pu);
    unsigned numa = 0;
    if (core == NULL)
      core = pu; /* a description without cores: each PU is one */
    for (unsigned k = 0; k < t->nnuma; k++) {
      hwloc_obj_t n = hwloc_get_obj_by_type(hw, HWLOC_OBJ_NUMANODE, k);
      if (n->cpuset != NULL && hwloc_bitmap_isset(n->cpuset, pu->os_index)) {
        numa = k;
        break;
      }
    }
    t->pus[i] = (shoal_topo_pu){
      .logical = pu->logical_index,
      .os_index = pu->os_index,
      .core = id_of(&cores, core),
      .cache = id_of(&domains, cache_domain_of(hw, pu, core)),
      .numa = numa,
      .package = package_of(hw, pu),
      .allowed = 1,
    };
  }
  t->ncore = cores.n;
  t->ndomain = domains.n;
  rc = collect_caches(t, hw);
  if (rc == SHOAL_OK)
    collect_distances(t, hw);
  if (rc == SHOAL_OK)
    rc = collect_chains(t, hw);
out:
  shoal__free(cores.objs);
  shoal__free(domains.objs);
  return rc;
}

/* The largest level a synthetic description may have: twice
 * SHOAL_WORKERS_MAX (one per SMT sibling). hwloc builds every object, in
 * time quadratic in their number, so "numa:344444444" would take hours. */
#define SYNTHETIC_MAX 2048u

/* The objects of the deepest level: the product of each level's arity
 * (every number after a ':', as in "core:4", and every bare number that
 * starts a word, as in "2 4"), saturating past SYNTHETIC_MAX. Numbers are
 * read as hwloc reads them: strtoull in base 0 ("0x7262" is 29282, "010"
 * is 8), and a digit right after a number starts the next level's
 * ("024048" is octal 02404 then 8: 10272 objects). */
static uint64_t synthetic_objects(const char *syn) {
  uint64_t n = 1;
  int fresh = 1; /* a bare number may start here */
  for (const char *p = syn; *p != '\0';) {
    const char *d = p;
    char *end;
    unsigned long long k;
    if (*p == ':')
      d = p + 1;
    else if (!(*p >= '0' && *p <= '9' && fresh)) {
      fresh = *p == ' ' || *p == '\t' || *p == '\n';
      p++;
      continue;
    }
    if (*d < '0' || *d > '9') { /* "indexes=numa:core": no arity */
      fresh = 0;
      p = d;
      continue;
    }
    k = strtoull(d, &end, 0); /* ULLONG_MAX past its range: saturates */
    n *= k > SYNTHETIC_MAX ? (uint64_t)SYNTHETIC_MAX + 1 : (k > 0 ? k : 1);
    if (n > SYNTHETIC_MAX)
      return (uint64_t)SYNTHETIC_MAX + 1;
    p = end;
    fresh = 1;
  }
  return n;
}

/* An XML topology file read whole (hwloc is given these bytes, so that
 * what was checked is what it reads), NUL-terminated; *len excludes the
 * NUL. */
static int read_xml(const char *path, const shoal_topo_opts *o, char **out,
                    size_t *len) {
  FILE *f = fopen(path, "rb");
  char *buf = NULL;
  size_t n = 0, cap = 0;
  int rc = SHOAL_OK;
  if (f == NULL) {
    shoal__log(o->log, o->log_user, SHOAL_LOG_ERROR,
               "cannot read topology file '%s': %s", path, strerror(errno));
    return SHOAL_EIO;
  }
  errno = 0;
  for (;;) {
    size_t got;
    if (cap - n < 2) {
      char *nb;
      if (cap >= XML_MAX) {
        shoal__log(o->log, o->log_user, SHOAL_LOG_ERROR,
                   "topology file '%s' is larger than %u MiB", path,
                   (unsigned)(XML_MAX >> 20));
        rc = SHOAL_ELIMIT;
        break;
      }
      cap = cap == 0 ? 65536 : cap * 2;
      if ((nb = shoal__realloc(buf, cap + 1)) == NULL) {
        rc = SHOAL_ENOMEM;
        break;
      }
      buf = nb;
    }
    got = fread(buf + n, 1, cap - n, f);
    n += got;
    if (got == 0) {
      if (ferror(f)) {
        /* a directory opens, then reads as EISDIR */
        shoal__log(o->log, o->log_user, SHOAL_LOG_ERROR,
                   "cannot read topology file '%s': %s", path,
                   strerror(errno != 0 ? errno : EIO));
        rc = SHOAL_EIO;
      }
      break;
    }
  }
  fclose(f);
  if (rc != SHOAL_OK) {
    shoal__free(buf);
    return rc;
  }
  if (buf == NULL && (buf = shoal__malloc(1)) == NULL)
    return SHOAL_ENOMEM;
  buf[n] = '\0';
  *out = buf;
  *len = n;
  return SHOAL_OK;
}

static int configure_source(hwloc_topology_t hw, shoal_topo *t,
                            const shoal_topo_opts *o, char **xml_buf) {
  const char *syn = o->synthetic, *xml = o->xml_path;
  if (syn == NULL && xml == NULL) {
    /* hwloc reads these too, but silently falls back to the real machine
     * on a bad value: read them here so that a mistake is reported. */
    const char *e = getenv("HWLOC_XMLFILE");
    if (e != NULL && e[0] != '\0')
      xml = e;
    else if ((e = getenv("HWLOC_SYNTHETIC")) != NULL && e[0] != '\0')
      syn = e;
  }
  if (xml != NULL) {
    char why[160];
    size_t len;
    int rc = read_xml(xml, o, xml_buf, &len);
    if (rc != SHOAL_OK)
      return rc;
    if (shoal__topo_xml_check(*xml_buf, len, why, sizeof why) != SHOAL_OK) {
      shoal__log(o->log, o->log_user, SHOAL_LOG_ERROR,
                 "'%s' is not an hwloc XML topology: %s", xml, why);
      return SHOAL_EFORMAT;
    }
    /* The size counts the NUL: hwloc's own reader relies on it. */
    if (len >= INT_MAX ||
        hwloc_topology_set_xmlbuffer(hw, *xml_buf, (int)len + 1) != 0) {
      shoal__log(o->log, o->log_user, SHOAL_LOG_ERROR,
                 "'%s' is not an hwloc XML topology", xml);
      return SHOAL_EFORMAT;
    }
    t->kind = SHOAL_TOPO_XML;
    t->source_text = shoal__strdup(xml);
  } else if (syn != NULL) {
    if (synthetic_objects(syn) > SYNTHETIC_MAX) {
      shoal__log(o->log, o->log_user, SHOAL_LOG_ERROR,
                 "synthetic topology '%s' has more than %u objects at one "
                 "level", syn, SYNTHETIC_MAX);
      return SHOAL_ELIMIT;
    }
    if (syn[0] == '\0' || hwloc_topology_set_synthetic(hw, syn) != 0) {
      shoal__log(o->log, o->log_user, SHOAL_LOG_ERROR,
                 "malformed synthetic topology '%s'", syn);
      return SHOAL_EINVAL;
    }
    t->kind = SHOAL_TOPO_SYNTHETIC;
    t->source_text = shoal__strdup(syn);
  } else {
    t->kind = SHOAL_TOPO_NATIVE;
    return SHOAL_OK;
  }
  return t->source_text != NULL ? SHOAL_OK : SHOAL_ENOMEM;
}

/* The PUs this process may run on: those the OS allows it (the cgroup's
 * cpuset: hwloc's allowed set) that its CPU binding holds (as it was when
 * the library was loaded; hwloc's reading of the process's or the calling
 * thread's where that is not known). The
 * others are listed with their reason; unless whole_system, the topology
 * is restricted to the rest, as hwloc would show it. */
static int narrow(shoal_topo *t, hwloc_topology_t hw,
                  const shoal_topo_opts *o) {
  hwloc_const_cpuset_t all = hwloc_topology_get_topology_cpuset(hw);
  hwloc_bitmap_t usable = hwloc_bitmap_dup(hwloc_topology_get_allowed_cpuset(hw));
  hwloc_bitmap_t bind = hwloc_bitmap_alloc();
  unsigned n = 0, cap = weight_of(all);
  int id, rc = SHOAL_OK;
  if (usable == NULL || bind == NULL) {
    rc = SHOAL_ENOMEM;
    goto out;
  }
  if (shoal__os_initial_cpus_known()) {
    /* the binding the process started with: a thread pinned since (the
     * host's main thread, shoal_runtime_bind_host) does not narrow it */
    hwloc_bitmap_zero(bind);
    hwloc_bitmap_foreach_begin(id, all) {
      if (shoal__os_initial_cpu((unsigned)id))
        hwloc_bitmap_set(bind, (unsigned)id);
    }
    hwloc_bitmap_foreach_end();
  } else if (hwloc_get_cpubind(hw, bind, HWLOC_CPUBIND_PROCESS) != 0 &&
             hwloc_get_cpubind(hw, bind, HWLOC_CPUBIND_THREAD) != 0) {
    hwloc_bitmap_copy(bind, all); /* no binding known: none */
  }
  t->excluded_os = shoal__calloc(cap + 1, sizeof *t->excluded_os);
  t->excluded_why = shoal__calloc(cap + 1, 1);
  if (t->excluded_os == NULL || t->excluded_why == NULL) {
    rc = SHOAL_ENOMEM;
    goto out;
  }
  hwloc_bitmap_foreach_begin(id, all) {
    if (n < cap && !hwloc_bitmap_isset(usable, (unsigned)id)) {
      t->excluded_os[n] = (unsigned)id;
      t->excluded_why[n++] = SHOAL_EXCLUDED_CGROUP;
    } else if (n < cap && !hwloc_bitmap_isset(bind, (unsigned)id)) {
      t->excluded_os[n] = (unsigned)id;
      t->excluded_why[n++] = SHOAL_EXCLUDED_BINDING;
    }
  }
  hwloc_bitmap_foreach_end();
  hwloc_bitmap_and(usable, usable, bind);
  if (hwloc_bitmap_iszero(usable)) { /* nothing left: keep the machine */
    shoal__log(o->log, o->log_user, SHOAL_LOG_WARN,
               "the process's CPU binding and allowed set share no PU; "
               "planning over the whole machine");
    n = 0;
  }
  t->nexcluded = n;
  if (n > 0 && !o->whole_system && hwloc_topology_restrict(hw, usable, 0) != 0) {
    shoal__log(o->log, o->log_user, SHOAL_LOG_ERROR,
               "hwloc could not restrict the topology to the process's "
               "PUs: %s", strerror(errno));
    rc = SHOAL_ETOPO;
  }
out:
  hwloc_bitmap_free(usable);
  hwloc_bitmap_free(bind);
  return rc;
}

/* whole_system: the excluded PUs stay, marked not allowed. */
static void mark_excluded(shoal_topo *t) {
  for (unsigned i = 0; i < t->npu; i++)
    for (unsigned k = 0; k < t->nexcluded; k++)
      if (t->pus[i].os_index == t->excluded_os[k])
        t->pus[i].allowed = 0;
}

int shoal_topo_load(shoal_topo **out, const shoal_topo_opts *opts) {
  shoal_topo_opts o;
  hwloc_topology_t hw = NULL;
  shoal_topo *t;
  char *xml_buf = NULL;
  int rc;

  if (out == NULL)
    return SHOAL_EINVAL;
  *out = NULL;
  shoal_topo_opts_defaults(&o);
  if (opts != NULL)
    shoal__copy_opts(&o, sizeof o, opts, opts->struct_size);
  if (o.synthetic != NULL && o.xml_path != NULL) {
    shoal__log(o.log, o.log_user, SHOAL_LOG_ERROR,
               "a topology comes from a synthetic string or an XML file, "
               "not both");
    return SHOAL_EINVAL;
  }
  t = shoal__calloc(1, sizeof *t);
  if (t == NULL)
    return SHOAL_ENOMEM;
  if (hwloc_topology_init(&hw) != 0) {
    shoal__free(t);
    return SHOAL_ENOMEM;
  }
  /* I-caches are dropped by default; the cache report wants them. */
  hwloc_topology_set_icache_types_filter(hw, HWLOC_TYPE_FILTER_KEEP_ALL);
  rc = configure_source(hw, t, &o, &xml_buf);
  /* This machine whole, so that what the process may not use can be
   * told apart and named (narrow, below). */
  if (rc == SHOAL_OK && t->kind == SHOAL_TOPO_NATIVE)
    hwloc_topology_set_flags(hw, HWLOC_TOPOLOGY_FLAG_INCLUDE_DISALLOWED);
  /* hwloc's own XML reader (used without libxml2) accepts any file in
   * set_xml and fails here; libxml2's fails above. Same report either way. */
  if (rc == SHOAL_OK && hwloc_topology_load(hw) != 0) {
    if (t->kind == SHOAL_TOPO_XML) {
      shoal__log(o.log, o.log_user, SHOAL_LOG_ERROR,
                 "'%s' is not an hwloc XML topology", t->source_text);
      rc = SHOAL_EFORMAT;
    } else {
      shoal__log(o.log, o.log_user, SHOAL_LOG_ERROR,
                 "hwloc could not load the topology: %s", strerror(errno));
      rc = SHOAL_ETOPO;
    }
  }
  shoal__free(xml_buf);
  t->hw = hw;
  if (rc == SHOAL_OK) {
    t->this_system = hwloc_topology_is_thissystem(hw);
    if (t->kind == SHOAL_TOPO_NATIVE && t->this_system)
      rc = narrow(t, hw, &o);
  }
  if (rc == SHOAL_OK)
    rc = snapshot(t, hw);
  if (rc == SHOAL_OK && o.whole_system && t->nexcluded > 0)
    mark_excluded(t);
  if (rc != SHOAL_OK) {
    shoal_topo_destroy(t);
    return rc;
  }
  *out = t;
  return SHOAL_OK;
}

void shoal_topo_destroy(shoal_topo *t) {
  if (t == NULL)
    return;
  if (t->hw != NULL)
    hwloc_topology_destroy((hwloc_topology_t)t->hw);
  shoal__free(t->source_text);
  shoal__free(t->pus);
  shoal__free(t->numas);
  shoal__free(t->caches);
  shoal__free(t->distance);
  shoal__free(t->bandwidth);
  shoal__free(t->excluded_os);
  shoal__free(t->excluded_why);
  shoal__free(t->domains);
  shoal__free(t->chain);
  shoal__free(t->chain_len);
  shoal__free(t);
}

shoal_topo_kind shoal_topo_source(const shoal_topo *t) {
  return t != NULL ? t->kind : SHOAL_TOPO_NATIVE;
}
const char *shoal_topo_source_text(const shoal_topo *t) {
  return t != NULL ? t->source_text : NULL;
}
int shoal_topo_is_this_system(const shoal_topo *t) {
  return t != NULL && t->this_system;
}
unsigned shoal_topo_pu_count(const shoal_topo *t) { return t ? t->npu : 0; }
unsigned shoal_topo_core_count(const shoal_topo *t) { return t ? t->ncore : 0; }
unsigned shoal_topo_cache_domain_count(const shoal_topo *t) {
  return t ? t->ndomain : 0;
}
unsigned shoal_topo_numa_count(const shoal_topo *t) { return t ? t->nnuma : 0; }
unsigned shoal_topo_package_count(const shoal_topo *t) {
  return t ? t->npackage : 0;
}
unsigned shoal_topo_cache_count(const shoal_topo *t) { return t ? t->ncache : 0; }

const shoal_topo_pu *shoal_topo_pu_at(const shoal_topo *t, unsigned i) {
  return t != NULL && i < t->npu ? &t->pus[i] : NULL;
}
const shoal_topo_numa *shoal_topo_numa_at(const shoal_topo *t, unsigned i) {
  return t != NULL && i < t->nnuma ? &t->numas[i] : NULL;
}
const shoal_topo_cache *shoal_topo_cache_at(const shoal_topo *t, unsigned i) {
  return t != NULL && i < t->ncache ? &t->caches[i] : NULL;
}

unsigned shoal_topo_numa_distance(const shoal_topo *t, unsigned a, unsigned b) {
  if (t == NULL || t->distance == NULL || a >= t->nnuma || b >= t->nnuma)
    return 0;
  return t->distance[a * t->nnuma + b];
}

uint64_t shoal_topo_numa_bandwidth(const shoal_topo *t, unsigned a,
                                   unsigned b) {
  if (t == NULL || t->bandwidth == NULL || a >= t->nnuma || b >= t->nnuma)
    return 0;
  return t->bandwidth[a * t->nnuma + b];
}

unsigned shoal_topo_excluded_count(const shoal_topo *t) {
  return t != NULL ? t->nexcluded : 0;
}

int shoal_topo_excluded_at(const shoal_topo *t, unsigned i,
                           unsigned *os_index, shoal_excluded_reason *why) {
  if (t == NULL || i >= t->nexcluded || os_index == NULL || why == NULL)
    return SHOAL_EINVAL;
  *os_index = t->excluded_os[i];
  *why = (shoal_excluded_reason)t->excluded_why[i];
  return SHOAL_OK;
}

const char *shoal_excluded_reason_name(shoal_excluded_reason why) {
  return why == SHOAL_EXCLUDED_CGROUP    ? "cgroup"
         : why == SHOAL_EXCLUDED_BINDING ? "binding"
                                         : NULL;
}

/* ---- the tree ---------------------------------------------------------- */

static void human_bytes(char *buf, size_t cap, uint64_t b) {
  static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  unsigned u = 0;
  while (b >= 1024 && b % 1024 == 0 && u + 1 < SHOAL__ARRAY_SIZE(unit)) {
    b /= 1024;
    u++;
  }
  if (b >= 10240 && u + 1 < SHOAL__ARRAY_SIZE(unit)) {
    snprintf(buf, cap, "%.1f %s", (double)b / 1024.0, unit[u + 1]);
    return;
  }
  snprintf(buf, cap, "%" PRIu64 " %s", b, unit[u]);
}

typedef struct tree_ctx {
  const shoal_topo *t;
  hwloc_topology_t hw;
  shoal_topo_line_fn fn;
  void *user;
} tree_ctx;

/* Cores, PUs, NUMA nodes, packages, groups and shared caches are shown;
 * a core's private caches are summarised in the cache table instead. */
static int shown(tree_ctx *c, hwloc_obj_t o) {
  if (hwloc_obj_type_is_cache(o->type))
    return cores_inside(c->hw, o) > 1;
  return o->type != HWLOC_OBJ_MISC;
}

static void tree_walk(tree_ctx *c, hwloc_obj_t o, unsigned depth) {
  char line[160], size[32];
  unsigned next = depth;
  if (shown(c, o)) {
    char type[32];
    hwloc_obj_type_snprintf(type, sizeof type, o, 0);
    if (o->type == HWLOC_OBJ_MACHINE) {
      human_bytes(size, sizeof size, o->total_memory);
      snprintf(line, sizeof line, "Machine (%s total)", size);
    } else if (o->type == HWLOC_OBJ_NUMANODE) {
      human_bytes(size, sizeof size, o->attr->numanode.local_memory);
      snprintf(line, sizeof line, "NUMANode L#%u P#%u (%s)", o->logical_index,
               o->os_index, size);
    } else if (hwloc_obj_type_is_cache(o->type)) {
      human_bytes(size, sizeof size, o->attr->cache.size);
      snprintf(line, sizeof line, "%s L#%u (%s)", type, o->logical_index, size);
    } else if (o->os_index != HWLOC_UNKNOWN_INDEX) {
      int excluded = 0;
      for (unsigned k = 0; o->type == HWLOC_OBJ_PU && k < c->t->nexcluded; k++)
        excluded |= c->t->excluded_os[k] == o->os_index;
      snprintf(line, sizeof line, "%s L#%u P#%u%s", type, o->logical_index,
               o->os_index, excluded ? " (not allowed to this process)" : "");
    } else {
      snprintf(line, sizeof line, "%s L#%u", type, o->logical_index);
    }
    c->fn(c->user, depth, line);
    next = depth + 1;
  }
  for (hwloc_obj_t m = o->memory_first_child; m != NULL; m = m->next_sibling)
    tree_walk(c, m, next);
  for (hwloc_obj_t k = o->first_child; k != NULL; k = k->next_sibling)
    tree_walk(c, k, next);
}

int shoal_topo_tree(const shoal_topo *t, shoal_topo_line_fn fn, void *user) {
  tree_ctx c;
  if (t == NULL || fn == NULL)
    return SHOAL_EINVAL;
  c = (tree_ctx){.t = t, .hw = t->hw, .fn = fn, .user = user};
  tree_walk(&c, hwloc_get_root_obj(c.hw), 0);
  return SHOAL_OK;
}

/* ---- binding ----------------------------------------------------------- */

int shoal__topo_bind_self(const shoal_topo *t, unsigned pu_os) {
  hwloc_topology_t hw = t->hw;
  hwloc_obj_t pu;
  if (!t->this_system)
    return SHOAL_ENOTSUP;
  pu = hwloc_get_pu_obj_by_os_index(hw, pu_os);
  if (pu == NULL)
    return SHOAL_EINVAL;
  if (hwloc_set_cpubind(hw, pu->cpuset, HWLOC_CPUBIND_THREAD) != 0)
    return SHOAL_EPIN;
  return SHOAL_OK;
}

int shoal__topo_bind_attr(const shoal_topo *t, unsigned pu_os,
                          pthread_attr_t *attr) {
  hwloc_obj_t pu;
  cpu_set_t set;
  if (!t->this_system)
    return SHOAL_ENOTSUP;
  pu = hwloc_get_pu_obj_by_os_index(t->hw, pu_os);
  if (pu == NULL)
    return SHOAL_EINVAL;
  if (hwloc_cpuset_to_glibc_sched_affinity(t->hw, pu->cpuset, &set,
                                           sizeof set) != 0 ||
      pthread_attr_setaffinity_np(attr, sizeof set, &set) != 0)
    return SHOAL_EPIN;
  return SHOAL_OK;
}

/* The NUMA node object of OS index numa_os, or NULL. */
static hwloc_obj_t numa_obj(const shoal_topo *t, unsigned numa_os) {
  hwloc_obj_t node = NULL;
  while ((node = hwloc_get_next_obj_by_type(t->hw, HWLOC_OBJ_NUMANODE, node)))
    if (node->os_index == numa_os)
      break;
  return node;
}

int shoal__topo_membind_self(const shoal_topo *t, unsigned numa_os) {
  hwloc_topology_t hw = t->hw;
  hwloc_obj_t node;
  if (!t->this_system)
    return SHOAL_ENOTSUP;
  if ((node = numa_obj(t, numa_os)) == NULL)
    return SHOAL_EINVAL;
  /* Later first touches by this thread land on the node: its heap pages,
   * its deque's buffers and its trace. */
  if (hwloc_set_membind(hw, node->nodeset, HWLOC_MEMBIND_BIND,
                        HWLOC_MEMBIND_THREAD | HWLOC_MEMBIND_BYNODESET) != 0)
    return SHOAL_EPIN;
  return SHOAL_OK;
}

int shoal__topo_membind_area(const shoal_topo *t, unsigned numa_os,
                             void *addr, size_t len) {
  hwloc_obj_t node;
  if (!t->this_system)
    return SHOAL_ENOTSUP;
  if ((node = numa_obj(t, numa_os)) == NULL)
    return SHOAL_EINVAL;
  /* MIGRATE: pages already touched (zeroed) move to the node too. */
  if (hwloc_set_area_membind(t->hw, addr, len, node->nodeset,
                             HWLOC_MEMBIND_BIND,
                             HWLOC_MEMBIND_MIGRATE | HWLOC_MEMBIND_BYNODESET) != 0)
    return SHOAL_EPIN;
  return SHOAL_OK;
}
