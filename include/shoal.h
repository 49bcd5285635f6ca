/* shoal.h — the one public header of shoal, a session manager for hosts that
 * run thousands of sessions: topology and pinning plan, errors and logging.
 * Every function states which threads may call it. */
#ifndef SHOAL_H
#define SHOAL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(SHOAL_BUILDING) && defined(__GNUC__)
#define SHOAL_API __attribute__((visibility("default")))
#else
#define SHOAL_API
#endif

/* ------------------------------------------------------------------------ */
/* Version                                                                  */
/* ------------------------------------------------------------------------ */

#define SHOAL_VERSION_MAJOR 0
#define SHOAL_VERSION_MINOR 1
#define SHOAL_VERSION_PATCH 0

/* "MAJOR.MINOR.PATCH" of the library actually linked. Any thread. */
SHOAL_API const char *shoal_version(void);

/* ------------------------------------------------------------------------ */
/* Errors                                                                   */
/* ------------------------------------------------------------------------ */

/* Functions return 0 or a negative code from this table. */
#define SHOAL_ERRNO_MAP(XX)                                                  \
  XX(EINVAL,   -1, "invalid argument")                                      \
  XX(ENOMEM,   -2, "out of memory")                                         \
  XX(ENOENT,   -3, "no such entry")                                         \
  XX(EAGAIN,   -4, "resource temporarily unavailable")                      \
  XX(ELIMIT,   -5, "configured limit reached")                              \
  XX(EIO,      -6, "input/output error")                                    \
  XX(EFORMAT,  -7, "malformed input")                                       \
  XX(ETOPO,    -8, "hardware topology unavailable")                         \
  XX(EPIN,     -9, "thread binding refused")                                \
  XX(ENOTSUP,  -10, "not supported here")                                   \
  XX(ETIMEDOUT, -11, "timed out")                                           \
  XX(ESTATE,   -12, "operation not valid in the current state")

typedef enum shoal_err {
  SHOAL_OK = 0,
#define SHOAL__ERR_ENUM(name, code, text) SHOAL_##name = (code),
  SHOAL_ERRNO_MAP(SHOAL__ERR_ENUM)
#undef SHOAL__ERR_ENUM
} shoal_err;

/* A message for an error code ("unknown error" for codes not in the table).
 * Any thread; the string is static. */
SHOAL_API const char *shoal_strerror(int err);
/* The code's name without the prefix ("EINVAL"), or "UNKNOWN". Any thread. */
SHOAL_API const char *shoal_err_name(int err);

/* ------------------------------------------------------------------------ */
/* Logging                                                                  */
/* ------------------------------------------------------------------------ */

typedef enum shoal_log_level {
  SHOAL_LOG_ERROR = 0,
  SHOAL_LOG_WARN = 1,
  SHOAL_LOG_INFO = 2,
  SHOAL_LOG_DEBUG = 3
} shoal_log_level;

/* The library never prints: it reports through this callback. It may be
 * called from any thread that is inside a shoal call, so it must be
 * thread-safe; `msg` is valid only during the call. */
typedef void (*shoal_log_fn)(void *user, shoal_log_level level,
                             const char *msg);

/* ------------------------------------------------------------------------ */
/* CPU identification (libcpuid)                                            */
/* ------------------------------------------------------------------------ */

/* SIMD features shoal dispatches on (bit flags of shoal_cpu_info.features). */
#define SHOAL_CPU_SSE42    (1u << 0)
#define SHOAL_CPU_AVX2     (1u << 1)
#define SHOAL_CPU_AVX512F  (1u << 2)
#define SHOAL_CPU_AVX512BW (1u << 3)
#define SHOAL_CPU_AVX512VL (1u << 4)

/* Filled by shoal_cpu_identify; all fields public. */
typedef struct shoal_cpu_info {
  char vendor[32];      /* "GenuineIntel", "AuthenticAMD", … */
  char brand[80];       /* brand string, trimmed */
  char codename[64];    /* libcpuid's codename; "" when it does not know */
  char hypervisor[24];  /* "KVM", "VMware", … ; "" on bare metal */
  int family, model, stepping; /* display family and model (with extended) */
  unsigned features;    /* SHOAL_CPU_* bits */
  unsigned logical_cpus;/* logical CPUs libcpuid counts in the system */
} shoal_cpu_info;

/* Identifies the CPU the caller runs on. SHOAL_ENOTSUP without CPUID
 * (non-x86), SHOAL_EINVAL on NULL. Any thread. */
SHOAL_API int shoal_cpu_identify(shoal_cpu_info *out);

/* The name of one SHOAL_CPU_* bit ("sse4.2", "avx2", "avx512f", …), NULL for
 * anything else. Any thread. */
SHOAL_API const char *shoal_cpu_feature_name(unsigned bit);

/* ------------------------------------------------------------------------ */
/* Topology (hwloc)                                                         */
/* ------------------------------------------------------------------------ */

/* A snapshot of a machine's topology, read once from hwloc and then
 * immutable: any thread may read it concurrently. */
typedef struct shoal_topo shoal_topo;

typedef enum shoal_topo_kind {
  SHOAL_TOPO_NATIVE = 0,   /* this machine */
  SHOAL_TOPO_SYNTHETIC = 1,/* an hwloc synthetic description */
  SHOAL_TOPO_XML = 2       /* an hwloc XML export */
} shoal_topo_kind;

/* All fields public; fill with shoal_topo_opts_defaults first. */
typedef struct shoal_topo_opts {
  /* At most one of the two; both NULL reads this machine, honouring
   * HWLOC_XMLFILE and then HWLOC_SYNTHETIC from the environment as hwloc
   * does (a malformed value is an error, not a silent fallback). */
  const char *synthetic; /* e.g. "pack:2 numa:2 core:4 pu:2" */
  const char *xml_path;  /* a file written by lstopo or hwloc's XML export */
  shoal_log_fn log;      /* may be NULL */
  void *log_user;
  size_t struct_size;    /* sizeof(shoal_topo_opts), set by the defaults */
} shoal_topo_opts;

/* Fills `opts` with defaults (native, no logging). Any thread. */
SHOAL_API void shoal_topo_opts_defaults(shoal_topo_opts *opts);

/* Loads a topology. Errors: SHOAL_EINVAL (NULL pointer, both sources set,
 * malformed synthetic description), SHOAL_EIO (XML file unreadable),
 * SHOAL_EFORMAT (XML file invalid), SHOAL_ETOPO (hwloc failed otherwise),
 * SHOAL_ENOMEM. On failure *out is NULL. Any thread. */
SHOAL_API int shoal_topo_load(shoal_topo **out, const shoal_topo_opts *opts);
/* Any thread, once no other thread uses `t`. NULL is ignored. */
SHOAL_API void shoal_topo_destroy(shoal_topo *t);

/* Read-only accessors; any thread. */
SHOAL_API shoal_topo_kind shoal_topo_source(const shoal_topo *t);
/* The synthetic string or XML path it came from; NULL for native. */
SHOAL_API const char *shoal_topo_source_text(const shoal_topo *t);
/* 1 when the topology describes the machine the caller runs on, so that
 * threads can be bound to its PUs. */
SHOAL_API int shoal_topo_is_this_system(const shoal_topo *t);

/* The entries below are read-only views into the snapshot, valid until
 * shoal_topo_destroy. */
typedef struct shoal_topo_pu {
  unsigned logical;   /* hwloc logical index (L#) */
  unsigned os_index;  /* OS index (P#), what the kernel calls the CPU */
  unsigned core;      /* logical index of its core */
  unsigned cache;     /* logical index of its cache domain (see below) */
  unsigned numa;      /* logical index of its NUMA node */
  unsigned package;   /* logical index of its package */
} shoal_topo_pu;

/* A cache domain is the largest cache above a core that is shared by more
 * than one core (normally the L3); where none is, the core's own largest
 * cache; without cache information, the core itself. */

typedef struct shoal_topo_numa {
  unsigned logical;
  unsigned os_index;
  unsigned package;      /* logical index of the package holding it */
  uint64_t memory_bytes; /* local memory */
} shoal_topo_numa;

typedef enum shoal_cache_type {
  SHOAL_CACHE_UNIFIED = 0,
  SHOAL_CACHE_DATA = 1,
  SHOAL_CACHE_INSTRUCTION = 2
} shoal_cache_type;

typedef struct shoal_topo_cache {
  unsigned level;        /* 1, 2, 3, … */
  shoal_cache_type type;
  uint64_t size_bytes;   /* 0 when unknown */
  int ways;              /* associativity; -1 fully associative, 0 unknown */
  unsigned line_bytes;   /* 0 when unknown */
  unsigned instances;    /* how many of this cache the machine has */
} shoal_topo_cache;

SHOAL_API unsigned shoal_topo_pu_count(const shoal_topo *t);
SHOAL_API unsigned shoal_topo_core_count(const shoal_topo *t);
SHOAL_API unsigned shoal_topo_cache_domain_count(const shoal_topo *t);
SHOAL_API unsigned shoal_topo_numa_count(const shoal_topo *t);
SHOAL_API unsigned shoal_topo_package_count(const shoal_topo *t);
SHOAL_API unsigned shoal_topo_cache_count(const shoal_topo *t);
/* Entry i in logical order; NULL when i is out of range. */
SHOAL_API const shoal_topo_pu *shoal_topo_pu_at(const shoal_topo *t,
                                                unsigned i);
SHOAL_API const shoal_topo_numa *shoal_topo_numa_at(const shoal_topo *t,
                                                    unsigned i);
/* Distinct caches (one entry per level and type), smallest level first. */
SHOAL_API const shoal_topo_cache *shoal_topo_cache_at(const shoal_topo *t,
                                                      unsigned i);
/* Relative distance between two NUMA nodes (logical indices) as hwloc
 * reports it (10 = local, as in ACPI SLIT); 0 when the machine gives none
 * or an index is out of range. */
SHOAL_API unsigned shoal_topo_numa_distance(const shoal_topo *t, unsigned a,
                                            unsigned b);

/* Writes the topology as an hwloc tree, one object per line, into a
 * caller-supplied callback (the CLI prints it). Any thread. */
typedef void (*shoal_topo_line_fn)(void *user, unsigned depth,
                                   const char *line);
SHOAL_API int shoal_topo_tree(const shoal_topo *t, shoal_topo_line_fn fn,
                              void *user);

/* ------------------------------------------------------------------------ */
/* Worker plan                                                              */
/* ------------------------------------------------------------------------ */

/* The most workers a runtime or plan accepts; 0 means one per core. */
#define SHOAL_WORKERS_MAX 1024

/* How near a victim is to the thief, nearest first. */
typedef enum shoal_near {
  SHOAL_NEAR_CORE = 0,    /* SMT sibling: same core */
  SHOAL_NEAR_CACHE = 1,   /* same cache domain */
  SHOAL_NEAR_NUMA = 2,    /* same NUMA node */
  SHOAL_NEAR_PACKAGE = 3, /* same package, another NUMA node */
  SHOAL_NEAR_REMOTE = 4,  /* another package, or a worker not bound to a PU */
  SHOAL_NEAR_LEVELS = 5
} shoal_near;

/* Read-only, valid until shoal_plan_destroy. */
typedef struct shoal_plan_worker {
  unsigned worker;       /* its index */
  int pu_os_index;       /* PU it is bound to (OS index); -1 when unbound */
  int pu_logical;        /* the same PU's logical index; -1 when unbound */
  unsigned numa_os_index;/* NUMA node it allocates from (OS index) */
  unsigned numa_logical;
  unsigned nvictims;     /* every other worker, nearest first */
  const unsigned *victims;
  const unsigned char *victim_near; /* shoal_near of each victim */
} shoal_plan_worker;

/* An immutable plan: which PU each worker is bound to, which NUMA node it
 * allocates from, and the order in which it looks for work to steal. A pure
 * function of the topology and the worker count.
 *
 * Placement: with `workers` <= cores, one worker per core in logical order
 * (a cache domain fills before the next); beyond that the SMT siblings in
 * the same order; workers beyond the number of PUs are left unbound and
 * given NUMA nodes in turn. Victims are sorted by shoal_near, then by NUMA
 * distance, then by rotation from the thief (worker w looks at w+1 first),
 * so that thieves of one level do not all start at the same victim.
 *
 * Errors: SHOAL_EINVAL (NULL, workers > SHOAL_WORKERS_MAX), SHOAL_ENOMEM.
 * Any thread. */
typedef struct shoal_plan shoal_plan;
SHOAL_API int shoal_plan_compute(shoal_plan **out, const shoal_topo *t,
                                 unsigned workers);
SHOAL_API void shoal_plan_destroy(shoal_plan *p);
SHOAL_API unsigned shoal_plan_worker_count(const shoal_plan *p);
SHOAL_API const shoal_plan_worker *shoal_plan_worker_at(const shoal_plan *p,
                                                        unsigned w);
/* The name of a shoal_near level ("core", "cache", "numa", "package",
 * "remote"). Any thread. */
SHOAL_API const char *shoal_near_name(shoal_near near);

/* ------------------------------------------------------------------------ */
/* Core-to-core latency                                                     */
/* ------------------------------------------------------------------------ */

/* All fields public; fill with shoal_latency_opts_defaults first. */
typedef struct shoal_latency_opts {
  unsigned round_trips;  /* round trips per sample (default 200) */
  unsigned samples;      /* samples per pair; the median is kept (15) */
  shoal_log_fn log;
  void *log_user;
  size_t struct_size;
} shoal_latency_opts;

SHOAL_API void shoal_latency_opts_defaults(shoal_latency_opts *opts);

/* Measures the cache-line round trip between every pair of the `n` PUs
 * (OS indices) with two threads bound to them, ping-ponging a counter.
 * matrix_ns[i*n+j] receives the median round trip in nanoseconds (0 on the
 * diagonal). Errors: SHOAL_EINVAL (bad arguments, a PU not in `t`),
 * SHOAL_ENOTSUP (`t` is not this machine), SHOAL_EPIN (the OS refused a
 * binding), SHOAL_ENOMEM. Blocks the caller; any thread outside a runtime. */
SHOAL_API int shoal_latency_measure(const shoal_topo *t,
                                    const unsigned *pu_os, unsigned n,
                                    double *matrix_ns,
                                    const shoal_latency_opts *opts);

#ifdef __cplusplus
}
#endif

#endif /* SHOAL_H */
