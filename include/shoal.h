/* shoal.h — the one public header of shoal, a session manager for hosts that
 * run thousands of sessions: errors and logging, topology and the worker
 * plan, the work-stealing runtime, actors and topics, the session manager
 * (sessions, packets, the deferred queue, hibernation, defragmentation,
 * metrics) and its configuration. Every function states which threads may
 * call it. */
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
  XX(ESTATE,   -12, "operation not valid in the current state")           \
  XX(EEXIST,   -13, "already exists")                                       \
  XX(ENOSPC,   -14, "buffer too small")                                     \
  XX(EMOVED,   -15, "session moved to another process")

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
 * called from any thread that is inside a shoal call, from the runtime's
 * workers, and from a manager's watchdog thread (SessionMgr.WatchdogMs,
 * CallbackBudgetMs) while a host callback runs long, so it must be
 * thread-safe and must not wait for that callback; `msg` is valid only
 * during the call. */
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
  /* This machine: 0 (default) keeps only the PUs the process may run on —
   * those its cgroup allows (hwloc's allowed set) and its CPU binding
   * holds (taskset, sched_setaffinity: as it was when the library was
   * loaded, so that a thread the host pinned since, or
   * shoal_runtime_bind_host's, narrows nothing) — as if the others were
   * not there;
   * the excluded ones are listed (shoal_topo_excluded_at). 1 keeps the
   * whole machine (hwloc's --whole-system), the excluded PUs marked not
   * allowed; a plan never uses them either way. */
  int whole_system;
  size_t struct_size;    /* sizeof(shoal_topo_opts), set by the defaults */
} shoal_topo_opts;

/* Fills `opts` with defaults (native, no logging). Any thread. */
SHOAL_API void shoal_topo_opts_defaults(shoal_topo_opts *opts);

/* Loads a topology. Errors: SHOAL_EINVAL (NULL pointer, both sources set,
 * malformed synthetic description), SHOAL_EIO (XML file unreadable),
 * SHOAL_EFORMAT (XML file invalid), SHOAL_ELIMIT (a synthetic description
 * with more than 2048 objects at one level: hwloc's build of it takes time
 * quadratic in their number), SHOAL_ETOPO (hwloc failed otherwise),
 * SHOAL_ENOMEM. On failure *out is NULL. An XML file is read whole (64
 * MiB at most: SHOAL_ELIMIT) and must be in the form hwloc's exporter
 * writes (lstopo, hwloc_topology_export_xml) before hwloc reads it: hwloc
 * 2.9 crashes on some damaged files (tests/fuzz/known), and its two XML
 * readers read others differently. Anything else is SHOAL_EFORMAT, with
 * the reason and its byte offset logged. A file that passes the check but
 * that hwloc refuses (a bad value) is SHOAL_EFORMAT too, and hwloc 2.9
 * leaks the few hundred bytes it had built for it. Any thread. */
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
  unsigned allowed;   /* 1: the process may run there (always, unless
                         whole_system kept an excluded PU) */
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
/* Relative latency between two NUMA nodes (logical indices) from hwloc's
 * latency matrix (NUMALatency: 10 = local, as in ACPI SLIT); 0 when the
 * machine gives none or an index is out of range. A bandwidth matrix is
 * never taken for it. */
SHOAL_API unsigned shoal_topo_numa_distance(const shoal_topo *t, unsigned a,
                                            unsigned b);
/* The bandwidth hwloc reports from node a to node b (its NUMABandwidth
 * matrix, MB/s), shown in reports, never used to order anything; 0 when
 * there is none. Any thread. */
SHOAL_API uint64_t shoal_topo_numa_bandwidth(const shoal_topo *t, unsigned a,
                                             unsigned b);

/* Why a PU of this machine is left out of the topology (or marked not
 * allowed with whole_system). */
typedef enum shoal_excluded_reason {
  SHOAL_EXCLUDED_CGROUP = 1, /* outside the set the OS allows the process
                                (its cgroup's cpuset) */
  SHOAL_EXCLUDED_BINDING = 2 /* outside the process's CPU binding
                                (taskset, sched_setaffinity) */
} shoal_excluded_reason;
/* The PUs of this machine the process may not run on, in OS index order:
 * how many, and the i-th's OS index and reason (SHOAL_EINVAL out of
 * range). Any thread. */
SHOAL_API unsigned shoal_topo_excluded_count(const shoal_topo *t);
SHOAL_API int shoal_topo_excluded_at(const shoal_topo *t, unsigned i,
                                     unsigned *os_index,
                                     shoal_excluded_reason *why);
/* "cgroup" or "binding"; NULL otherwise. Any thread. */
SHOAL_API const char *shoal_excluded_reason_name(shoal_excluded_reason why);

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

/* What a thief and a victim share, nearest first: the smallest object of
 * hwloc's tree holding both their PUs (their deepest common ancestor, the
 * NUMA node counted where its PUs put it). */
typedef enum shoal_near {
  SHOAL_NEAR_CORE = 0,    /* SMT siblings: one core */
  SHOAL_NEAR_CACHE = 1,   /* a cache (victim_cache says its level) */
  SHOAL_NEAR_NUMA = 2,    /* a NUMA node */
  SHOAL_NEAR_DIE = 3,     /* a die */
  SHOAL_NEAR_PACKAGE = 4, /* a package */
  SHOAL_NEAR_GROUP = 5,   /* a group (hwloc's: a cluster of cores or dies,
                             a set of nodes) */
  SHOAL_NEAR_REMOTE = 6,  /* only the machine */
  SHOAL_NEAR_UNBOUND = 7, /* one of the two is not bound to a PU */
  SHOAL_NEAR_LEVELS = 8
} shoal_near;

/* The most distinct levels one worker's victims fall into; farther ones
 * share the last. */
#define SHOAL_PLAN_LEVELS_MAX 16

/* Read-only, valid until shoal_plan_destroy. */
typedef struct shoal_plan_worker {
  unsigned worker;       /* its index */
  int pu_os_index;       /* PU it is bound to (OS index); -1 when unbound */
  int pu_logical;        /* the same PU's logical index; -1 when unbound */
  unsigned numa_os_index;/* NUMA node it allocates from (OS index) */
  unsigned numa_logical;
  unsigned nvictims;     /* every other worker, nearest first */
  const unsigned *victims;
  const unsigned char *victim_near;  /* shoal_near of each victim */
  const unsigned char *victim_cache; /* the shared cache's level (2, 3, …)
                                        for SHOAL_NEAR_CACHE; else 0 */
  const unsigned char *victim_level; /* its level in this worker's order,
                                        0 … SHOAL_PLAN_LEVELS_MAX − 1:
                                        victims of one level are equally
                                        near (the scheduler picks among
                                        them at random) */
} shoal_plan_worker;

/* An immutable plan: which PU each worker is bound to, which NUMA node it
 * allocates from, and the order in which it looks for work to steal. A pure
 * function of the topology and the worker count.
 *
 * Placement: only on the PUs the process may run on (shoal_topo_pu's
 * allowed); with `workers` <= those cores, one worker per core in logical
 * order (a cache domain fills before the next); beyond that the SMT
 * siblings in the same order; workers beyond those PUs are left unbound
 * and given NUMA nodes in turn. workers 0: one per allowed core, at most
 * SHOAL_WORKERS_MAX (shoal_plan_capped says when cores were left out).
 *
 * Victims, nearest first: what the two share in the tree (shoal_near,
 * and within it the smaller object first); across NUMA nodes, the latency
 * matrix's order where the machine gives one (never a bandwidth matrix),
 * the tree's where not; unbound workers last. Within a level the victims
 * are rotated so that the thieves of one domain start at different
 * victims: a thief's first victim of a level is its own rank among the
 * workers nearer to it than that level (shoal_plan_collisions counts the
 * first victims that several thieves still share).
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
/* The name of a shoal_near level ("core", "cache", "numa", "die",
 * "package", "group", "remote", "unbound"); "unknown" out of range. Any
 * thread. */
SHOAL_API const char *shoal_near_name(shoal_near near);
/* How many of the allowed cores got no worker because the default count
 * stops at SHOAL_WORKERS_MAX (0 when none, or when workers were given).
 * Any thread. */
SHOAL_API unsigned shoal_plan_capped(const shoal_plan *p);
/* First-victim collisions: over every level and every victim, the
 * thieves whose first victim of that level it is, past the first one. 0
 * on a symmetric machine; a measure of how evenly the thieves of a domain
 * spread over the next. Any thread. */
SHOAL_API unsigned shoal_plan_collisions(const shoal_plan *p);

/* ------------------------------------------------------------------------ */
/* Core-to-core latency                                                     */
/* ------------------------------------------------------------------------ */

/* Called after each measured pair: how many of the total are done. */
typedef void (*shoal_latency_progress_fn)(void *user, unsigned done,
                                          unsigned total);

/* All fields public; fill with shoal_latency_opts_defaults first. */
typedef struct shoal_latency_opts {
  unsigned round_trips;  /* round trips per sample (default 200) */
  unsigned samples;      /* samples per run; a run's figure is their
                            median (15) */
  unsigned max_runs;     /* runs per direction of a pair (5): they repeat
                            until their spread is within `spread`, at least
                            3 of them */
  double spread;         /* (max − min) / median of a pair's runs that ends
                            its runs early (0.10) */
  unsigned budget_ms;    /* the whole measurement's time (60000): the pairs
                            it does not reach are left unmeasured (runs 0);
                            0: no limit */
  shoal_latency_progress_fn progress; /* may be NULL */
  void *progress_user;
  shoal_log_fn log;
  void *log_user;
  size_t struct_size;
} shoal_latency_opts;

SHOAL_API void shoal_latency_opts_defaults(shoal_latency_opts *opts);

/* One direction of a pair: the thread on the first PU throws and times,
 * the one on the second answers. */
typedef struct shoal_latency_pair {
  double min_ns, median_ns, max_ns; /* over the runs; 0 when unmeasured */
  unsigned runs;                    /* 0: not measured (budget spent, or
                                       the diagonal) */
} shoal_latency_pair;

/* Measures the cache-line round trip between every ordered pair of the
 * `n` PUs (OS indices) with two threads bound to them, ping-ponging a
 * counter: pairs[i*n+j] is PU i throwing to PU j. Errors: SHOAL_EINVAL
 * (bad arguments, a PU not in `t`), SHOAL_ENOTSUP (`t` is not this
 * machine), SHOAL_EPIN (the OS refused a binding), SHOAL_ENOMEM. Blocks
 * the caller; any thread outside a runtime. */
SHOAL_API int shoal_latency_measure_pairs(const shoal_topo *t,
                                          const unsigned *pu_os, unsigned n,
                                          shoal_latency_pair *pairs,
                                          const shoal_latency_opts *opts);
/* The same, as a matrix of medians: matrix_ns[i*n+j] (0 on the diagonal
 * and for pairs not measured). */
SHOAL_API int shoal_latency_measure(const shoal_topo *t,
                                    const unsigned *pu_os, unsigned n,
                                    double *matrix_ns,
                                    const shoal_latency_opts *opts);

/* ------------------------------------------------------------------------ */
/* Runtime: pinned workers, fork-join, parallel_for, task groups            */
/* ------------------------------------------------------------------------ */

/* A work-stealing runtime. `workers` counts the threads that run tasks:
 * workers 1 … N-1 are threads the runtime starts, pinned by the plan;
 * worker 0 is the host's slot, taken by the thread that calls
 * shoal_runtime_run, shoal_parallel_for or shoal_group_wait from outside
 * the runtime, for the length of that call (as oneTBB's and OpenMP's
 * calling thread joins its team). Worker 0 is not pinned unless the host
 * calls shoal_runtime_bind_host. */
typedef struct shoal_runtime shoal_runtime;
/* A task's handle on the worker it runs on (see Fork-join below); valid
 * only inside that task. */
typedef struct shoal_worker shoal_worker;

/* All fields public; fill with shoal_runtime_config_defaults first. */
typedef struct shoal_runtime_config {
  unsigned workers;        /* 0 (default): one per core of `topo` */
  const shoal_topo *topo;  /* NULL (default): this machine, loaded and
                              owned by the runtime; else borrowed, and it
                              must outlive the runtime */
  int pin;                 /* 1 (default): bind workers 1…N-1 to the plan's
                              PUs; a refusal is logged and they run unbound */
  unsigned spin_us;        /* how long an idle worker looks for work before
                              it parks (default 50) */
  unsigned anticipate_us;  /* when the host enters at a steady period (a
                              tick), parked workers wake this long before
                              the next entry is due and look for work
                              (default 200); 0 disables */
  unsigned queue_capacity; /* closures submitted with shoal_group_run that
                              may wait at once (default 65536) */
  unsigned trace_events;   /* spans kept per worker for shoal_runtime_trace_write;
                              0 (default) disables the trace */
  unsigned max_workers;    /* the most workers shoal_runtime_set_workers
                              may ask for, ≥ workers, ≤ SHOAL_WORKERS_MAX;
                              0 (default): the larger of the starting
                              count and the topology's PUs. Per-worker
                              figures of the runtime and of managers on it
                              are sized by it */
  shoal_log_fn log;        /* may be NULL */
  void *log_user;
  size_t struct_size;      /* sizeof(shoal_runtime_config), set by defaults */
} shoal_runtime_config;

/* Any thread. */
SHOAL_API void shoal_runtime_config_defaults(shoal_runtime_config *cfg);

/* Creates a runtime and starts its threads. Errors: SHOAL_EINVAL (NULL,
 * workers > SHOAL_WORKERS_MAX, queue_capacity 0 or above 2^24, pin other
 * than 0 or 1), SHOAL_ETOPO,
 * SHOAL_ENOMEM, SHOAL_EAGAIN (the OS refused a thread). On failure *out is
 * NULL and no thread is left running. Any thread. */
SHOAL_API int shoal_runtime_create(shoal_runtime **out,
                                   const shoal_runtime_config *cfg);
/* Runs everything already submitted, stops and joins every thread, frees
 * the runtime. SHOAL_ESTATE (and nothing is done) when called from a task
 * of this runtime. Any other thread, once no other thread calls into `rt`.
 * NULL is ignored. */
SHOAL_API int shoal_runtime_destroy(shoal_runtime *rt);

/* The workers running now (changed by shoal_runtime_set_workers), and
 * the most there can be (max_workers). Any thread. */
SHOAL_API unsigned shoal_runtime_workers(const shoal_runtime *rt);
SHOAL_API unsigned shoal_runtime_workers_max(const shoal_runtime *rt);
/* The plan in force: for shoal_runtime_workers() workers, the same as
 * shoal_plan_compute would make for that count. Valid until the next
 * shoal_runtime_set_workers or the runtime's destroy. Any thread. */
SHOAL_API const shoal_plan *shoal_runtime_plan(const shoal_runtime *rt);

/* Runs `workers` workers from now on (oneTBB's global_control, the seed's
 * SetWorkerThreadCount). The plan is made again for the new count (the
 * same as a fresh one: each worker keeps its PU, the workers' victim
 * orders are recomputed and each worker takes its new order at its next
 * steal). Growing starts workers n … workers-1 on the plan's next PUs: a
 * worker that ran before (a shrink removed it) starts at once and the call
 * does not wait for its thread to run; one that never ran allocates its
 * record on its own thread first, which the call waits for. Shrinking
 * removes the highest workers for good:
 * each finishes the task it is running, hands every task it holds (its
 * deque, the pinned tasks in its inbox) to the workers that stay, and its
 * thread exits; the call returns once they have handed their tasks back
 * (the threads are joined at the next resize or the destroy). Nothing is
 * lost and
 * every task still runs exactly once; a task later handed to a removed
 * worker (an actor registered with that home) runs on another. A
 * worker's figures (shoal_worker_stats_get) stay after it leaves and go
 * on if it comes back. Errors: SHOAL_EINVAL (NULL, 0), SHOAL_ELIMIT
 * (over shoal_runtime_workers_max), SHOAL_ESTATE (from a task of rt: a
 * worker cannot wait for itself), SHOAL_ENOMEM and SHOAL_EAGAIN (a
 * thread refused: the count is unchanged). The host's thread that owns
 * rt, outside tasks; with a manager on rt, between its updates
 * (shoal_mgr_set_workers checks that). Not concurrently with
 * shoal_runtime_destroy. */
SHOAL_API int shoal_runtime_set_workers(shoal_runtime *rt, unsigned workers);

/* Binds the calling thread to worker 0's PU in the plan, so that the host
 * thread that joins the work is placed like the workers. SHOAL_ENOTSUP
 * when the topology is not this machine or worker 0 has no PU,
 * SHOAL_EPIN when the OS refuses. The host's thread, outside tasks. */
SHOAL_API int shoal_runtime_bind_host(shoal_runtime *rt);

/* Runs fn(w, ctx) on a worker of `rt` and returns when it has returned.
 * From outside the runtime, the caller becomes worker 0 for the call (or,
 * while another thread holds worker 0, waits for a worker to run it);
 * from a task, fn runs at once on the caller's worker. Errors: SHOAL_EINVAL
 * (NULL rt or fn), SHOAL_ESTATE (rt is being destroyed). Any thread. */
typedef void (*shoal_run_fn)(shoal_worker *w, void *ctx);
SHOAL_API int shoal_runtime_run(shoal_runtime *rt, shoal_run_fn fn, void *ctx);

/* The index of the worker (0 … workers-1). Inside a task. */
SHOAL_API unsigned shoal_worker_index(const shoal_worker *w);
SHOAL_API shoal_runtime *shoal_worker_runtime(const shoal_worker *w);

/* --- Fork-join ----------------------------------------------------------
 * A task's `shoal_worker *w` is its handle on the worker it runs on: that
 * worker, and the place in the worker's frame array where its next spawn
 * goes. A frame is written straight into that array (Lace's task frames,
 * van Dijk and van de Pol, Euro-Par 2014): fill the argument room that
 * shoal_args(w) gives (SHOAL_FRAME_ARGS bytes, 8-byte aligned), spawn, and
 * carry on with the handle spawn returns; sync through the handle the
 * frame was spawned with.
 *
 *   typedef struct { int n; long r; } fib_args;
 *   static void fib_task(shoal_worker *w, void *args) {
 *     fib_args *a = args; a->r = fib(w, a->n);
 *   }
 *   long fib(shoal_worker *w, int n) {
 *     fib_args *a;
 *     long b;
 *     if (n < 2) return n;
 *     a = shoal_args(w);
 *     a->n = n - 1;
 *     b = fib(shoal_spawn(w, fib_task), n - 2);
 *     if (shoal_sync_take(w))     // nobody took it: run it here, directly
 *       return fib(w, n - 1) + b; // (the frame is ours again: w is free)
 *     return a->r + b;            // it ran elsewhere: its results
 *   }
 *
 * Rules (Cilk's, and Lace's): a task syncs what it spawned, the most
 * recent first, and before it returns; it passes on the handle that its
 * latest spawn returned (a handle it spawned through stays busy until that
 * frame's sync); it fills a frame's arguments just before its spawn; it
 * syncs only handles it spawned through (a sync cannot tell a free slot
 * from a frame nobody took, and would run what the slot last held). A
 * frame's arguments and results stay in place until its sync. Calls into
 * the runtime that take no handle (a nested shoal_parallel_for or
 * shoal_runtime_run, shoal_group_wait) may be made with frames out: what
 * runs meanwhile uses frames of its own. No call
 * allocates, except that a worker's frame array grows by blocks of
 * SHOAL__FRAMES_BLOCK bytes when a task nests deeper than it ever has; when
 * no memory is left for that the runtime logs an error and aborts, as a
 * thread whose stack cannot grow would. All are called only inside a task,
 * with a handle of that task. */
#define SHOAL_FRAME_ARGS 40
typedef void (*shoal_task_fn)(shoal_worker *w, void *args);

/* Out-of-line forms of the inline calls below (for bindings). */
SHOAL_API void *shoal_args_call(shoal_worker *w);
SHOAL_API shoal_worker *shoal_spawn_call(shoal_worker *w, shoal_task_fn fn);
/* sync for callers that run the child themselves, as Lace's SYNC does:
 * returns 1 when nobody has run the frame spawned through w and the caller
 * must now do its work (w is the caller's again: read the arguments it
 * needs first), 0 when it has run elsewhere and its results are in
 * shoal_args(w). Exactly one of the two happens. */
SHOAL_API int shoal_sync_take_call(shoal_worker *w);
/* sync that runs the child itself when nobody took it: fn(w', args) on a
 * handle past the frame, so that the arguments stay where they are. */
SHOAL_API void shoal_sync_call(shoal_worker *w);

#if !defined(__cplusplus) && defined(__STDC_VERSION__) &&                    \
    __STDC_VERSION__ >= 201112L && !defined(__STDC_NO_ATOMICS__) &&          \
    !defined(SHOAL_NO_INLINE)
#include <stdatomic.h>
/* private: one slot of a worker's frame array (a cache line), and the
 * head of each of the array's blocks, read by the inline fast paths. A
 * frame stays private (no fence, no atomic read-modify-write) until some
 * worker looks for work; then its owner's next spawn moves every private
 * frame, oldest first, to its Chase-Lev deque where thieves take them. */
struct shoal__frame {
  shoal_task_fn fn;
  _Atomic uint32_t state; /* SHOAL__FRAME_PRIVATE, _TAKEN, or the library's */
  uint32_t kind;
  void *_Atomic thief;
  uint64_t args[SHOAL_FRAME_ARGS / 8];
};
struct shoal__frames_head {
  /* workers looking for work or parked, in the low half (the high half
   * counts those searching now) */
  const _Atomic uint64_t *wanted;
};
#define SHOAL__FRAMES_BLOCK 16384
#define SHOAL__WANTING UINT64_C(0xffffffff) /* wanted's low half */
enum {
  SHOAL__FRAME_PRIVATE = 0, /* or free: every sync leaves its frame so */
  SHOAL__FRAME_TAKEN = 3    /* run in place by its sync */
};
SHOAL_API shoal_worker *shoal__spawn_slow(shoal_worker *w);
SHOAL_API int shoal__sync_take_slow(shoal_worker *w);
SHOAL_API shoal_worker *shoal__next_slow(shoal_worker *w);

static inline void *shoal_args(shoal_worker *w) {
  return ((struct shoal__frame *)(void *)w)->args;
}

/* The handle one frame past w. */
static inline shoal_worker *shoal__next(shoal_worker *w) {
  struct shoal__frame *f = (struct shoal__frame *)(void *)w + 1;
  if (((uintptr_t)f & (SHOAL__FRAMES_BLOCK - 1)) != 0)
    return (shoal_worker *)(void *)f;
  return shoal__next_slow(w);
}

/* 1 when some worker of w's runtime looks for work or is parked (read
 * through w's block head). The owner of w. */
static inline int shoal__wanted(const shoal_worker *w) {
  const struct shoal__frames_head *h =
      (const struct shoal__frames_head *)(uintptr_t)((uintptr_t)w &
                                                     ~(uintptr_t)(
                                                         SHOAL__FRAMES_BLOCK -
                                                         1));
  return (atomic_load_explicit(h->wanted, memory_order_relaxed) &
          SHOAL__WANTING) != 0;
}

static inline shoal_worker *shoal_spawn(shoal_worker *w, shoal_task_fn fn) {
  struct shoal__frame *f = (struct shoal__frame *)(void *)w;
  f->fn = fn; /* state is PRIVATE already: its last sync left it so */
  if (!shoal__wanted(w) &&
      ((uintptr_t)(f + 1) & (SHOAL__FRAMES_BLOCK - 1)) != 0)
    return (shoal_worker *)(void *)(f + 1);
  return shoal__spawn_slow(w);
}

static inline int shoal_sync_take(shoal_worker *w) {
  struct shoal__frame *f = (struct shoal__frame *)(void *)w;
  /* Still private: nobody else can have it. */
  if (atomic_load_explicit(&f->state, memory_order_relaxed) ==
      SHOAL__FRAME_PRIVATE)
    return 1;
  return shoal__sync_take_slow(w);
}

static inline void shoal_sync(shoal_worker *w) {
  struct shoal__frame *f = (struct shoal__frame *)(void *)w;
  if (atomic_load_explicit(&f->state, memory_order_relaxed) ==
          SHOAL__FRAME_PRIVATE ||
      shoal__sync_take_slow(w)) {
    /* TAKEN while it runs: the frame is still in use (its arguments), not
     * private (nobody may publish it). */
    atomic_store_explicit(&f->state, SHOAL__FRAME_TAKEN, memory_order_relaxed);
    f->fn(shoal__next(w), f->args);
    atomic_store_explicit(&f->state, SHOAL__FRAME_PRIVATE,
                          memory_order_relaxed);
  }
}
#else
static inline void *shoal_args(shoal_worker *w) { return shoal_args_call(w); }
static inline shoal_worker *shoal_spawn(shoal_worker *w, shoal_task_fn fn) {
  return shoal_spawn_call(w, fn);
}
static inline int shoal_sync_take(shoal_worker *w) {
  return shoal_sync_take_call(w);
}
static inline void shoal_sync(shoal_worker *w) { shoal_sync_call(w); }
#endif

/* --- parallel_for --------------------------------------------------------
 * Calls fn(ctx, b, e) on disjoint subranges [b, e) that cover [begin, end)
 * exactly once, each at most `grain` long (the last piece of a split may be
 * shorter), by recursive halving with stealing; returns when all have
 * returned. grain 0 means 1. From outside the runtime the caller joins as
 * worker 0 (see shoal_runtime_run); inside a task it runs on the caller's
 * worker. Errors: SHOAL_EINVAL (NULL rt or fn, end < begin), SHOAL_ESTATE.
 * Any thread. */
typedef void (*shoal_range_fn)(void *ctx, size_t begin, size_t end);
SHOAL_API int shoal_parallel_for(shoal_runtime *rt, size_t begin, size_t end,
                                 size_t grain, shoal_range_fn fn, void *ctx);

/* --- Task groups ---------------------------------------------------------
 * Closures run by the runtime, then waited for together. A group lives in
 * the caller's storage; init it, run closures, wait, and it may be reused.
 * Closures submitted from outside the runtime go through a bounded MPMC
 * queue; from a task, onto the caller's own deque. */
typedef struct shoal_group {
  uintptr_t private_[4]; /* private */
} shoal_group;
typedef void (*shoal_closure_fn)(void *ctx);

/* Any thread. */
SHOAL_API int shoal_group_init(shoal_group *g, shoal_runtime *rt);
/* Submits fn(ctx). When queue_capacity closures are already waiting, it
 * waits for room (shoal_group_try_run returns SHOAL_EAGAIN instead).
 * Errors: SHOAL_EINVAL, SHOAL_ESTATE (the runtime is being destroyed; fn
 * will not run). Any thread. */
SHOAL_API int shoal_group_run(shoal_group *g, shoal_closure_fn fn, void *ctx);
SHOAL_API int shoal_group_try_run(shoal_group *g, shoal_closure_fn fn,
                                  void *ctx);
/* Returns when every closure submitted so far has returned. The waiting
 * thread runs work meanwhile: from outside it becomes worker 0 when that
 * slot is free; a task keeps running other tasks. Any thread. */
SHOAL_API int shoal_group_wait(shoal_group *g);

/* --- Counters and trace -------------------------------------------------- */

/* Per worker; all fields public. Updated by the worker itself when it runs
 * out of work, after each task it took from elsewhere, and when it parks,
 * so they may lag while it is busy. */
typedef struct shoal_worker_stats {
  uint64_t tasks;         /* frames published (taken from the spawner's
                             array for others to steal) and closures run */
  uint64_t steals;        /* tasks taken from another worker's deque */
  uint64_t failed_steals; /* attempts that found nothing or lost a race */
  uint64_t parks;         /* times it went to sleep */
  uint64_t wakes;         /* times another thread woke it */
  uint64_t busy_ns;       /* time spent with work in hand */
  uint64_t cpu_ns;        /* CPU time of its threads, those that left
                             included (0 for worker 0) */
  uint64_t trace_dropped; /* spans not kept: the trace buffer was full */
} shoal_worker_stats;

/* worker < shoal_runtime_workers_max: a removed worker keeps its figures,
 * one never started has zeros. Errors: SHOAL_EINVAL (NULL, worker out of
 * range). Any thread. */
SHOAL_API int shoal_worker_stats_get(const shoal_runtime *rt,
                                     unsigned worker,
                                     shoal_worker_stats *out);

/* Writes the spans recorded so far (tasks taken from elsewhere, closures,
 * parallel_for batches) as Chrome trace-event JSON (chrome://tracing,
 * Perfetto). Errors: SHOAL_EINVAL, SHOAL_ENOTSUP (trace_events was 0),
 * SHOAL_EIO. Any thread; spans still being written are left out. */
SHOAL_API int shoal_runtime_trace_write(const shoal_runtime *rt,
                                        const char *path);


/* ------------------------------------------------------------------------ */
/* Messaging: actors, router, request-reply, publish-subscribe              */
/* ------------------------------------------------------------------------ */

/* An actor is state, a bounded mailbox, a handler and an id. It is
 * scheduled on the runtime when its mailbox goes from empty to non-empty,
 * handles up to batch_size messages per turn, then yields; one actor never
 * runs on two threads at once. Messages from one sender arrive in the
 * order sent. Actors live in an actor system, which also routes by id. */

/* Bytes of payload carried inside the envelope. */
#define SHOAL_MSG_INLINE 16

/* shoal_msg.flags */
#define SHOAL_MSG_REQUEST 0x1 /* set by request: answer with a reply */
#define SHOAL_MSG_REPLY   0x2 /* set by reply */
#define SHOAL_MSG_PTR     0x4 /* payload.ptr points to `size` bytes */
#define SHOAL_MSG_TIMEOUT 0x8 /* with SHOAL_MSG_REPLY: no reply came in time;
                                 the request as sent (its pointer payload's
                                 value only: the addressee owns it) */
#define SHOAL_MSG_FAILED  0x10 /* with SHOAL_MSG_REPLY: the actor asked was
                                 stopped after a failure before it
                                 answered (supervision) */
#define SHOAL_MSG_DOWN    0x20 /* to a supervisor: a child escalated its
                                 failure (from: the child; payload.u64[0]:
                                 its status) */
#define SHOAL_MSG_TRACE   0x40 /* the sender asks for this message to be
                                 traced (with Actors.TraceRing set) */

/* A fixed-size envelope (56 bytes), copied into the recipient's mailbox.
 * All fields public. Pointer payloads (SHOAL_MSG_PTR): once a send
 * returns 0 the pointer belongs to the recipient (its handler frees or
 * keeps it; if the message is discarded at unregister, the actor's drop
 * callback receives it); when a send fails the sender keeps it. A
 * published pointer is shared by all subscribers and stays the
 * publisher's to manage (a reference count, say). */
typedef struct shoal_msg {
  uint64_t from;     /* sender's actor id; 0 or the host's own id outside */
  uint64_t to;       /* recipient's id (set by every send) */
  uint64_t time_ns;  /* when it was sent, CLOCK_MONOTONIC (set by send) */
  uint32_t corr;     /* correlates a request and its reply (set by them) */
  uint32_t type;     /* the host's tag */
  uint32_t size;     /* bytes of payload in use (inline or behind ptr) */
  uint8_t priority;  /* carried to the handler; delivery stays FIFO */
  uint8_t flags;     /* SHOAL_MSG_* */
  uint16_t trace;    /* its trace id, 1 … 65535 (0: not traced): given by
                        a send when SHOAL_MSG_TRACE is set or the send is
                        sampled (Actors.TraceEvery); a reply and a copy
                        sent on keep it */
  union {
    unsigned char bytes[SHOAL_MSG_INLINE];
    uint64_t u64[2];
    void *ptr;
  } payload;
} shoal_msg;

typedef struct shoal_actors shoal_actors; /* an actor system and its router */
typedef struct shoal_actor shoal_actor;   /* a registered actor, as its
                                             handler sees itself */

/* All fields public; fill with shoal_actors_config_defaults first. The
 * names in brackets are the configuration keys. */
typedef struct shoal_actors_config {
  unsigned max_actors;   /* actors registered at once, 1 … 2^20 (16384);
                            their records are allocated at creation */
  unsigned queue_size;   /* [Actors.MessageQueueSize] mailbox capacity,
                            1 … 2^20, rounded up to a power of two (1024) */
  unsigned batch_size;   /* [Actors.BatchSize] messages per turn, 1 … 65536
                            (64) */
  unsigned max_per_tick; /* [Actors.MaxMessagesPerTick] messages one actor
                            handles between two shoal_actors_tick calls; the
                            rest wait for the next tick. 0: no limit (0) */
  unsigned depth_warn;   /* a mailbox holding this many messages is logged
                            once as WARN; 0: 3/4 of its capacity (0) */
  unsigned linger_us;    /* a worker whose actor emptied its mailbox keeps
                            watching it this long while it has nothing else
                            to do, so that a reply in flight costs no
                            scheduling (20); 0 disables */
  unsigned host_waiters; /* shoal_call / shoal_call_many at once, 0 … 2^20
                            (64) */
  unsigned max_requests; /* requests with a timeout waiting at once
                            (shoal_actor_request_timeout), 0 … 2^20;
                            their records are allocated at creation
                            (4096) */
  unsigned stuck_ms;     /* [Actors.StuckMs] a handler still running after
                            this long is reported once (ERROR: the actor,
                            its worker, how long) and counted in its
                            figures (stuck), 0 … 3600000; 0: not watched
                            (5000) */
  unsigned trace_ring;   /* [Actors.TraceRing] hops of traced messages
                            kept, 0 … 2^24, rounded up to a power of two;
                            0: no tracing, and a send pays one branch for
                            it (0) */
  unsigned trace_every;  /* [Actors.TraceEvery] one send in this many is
                            traced besides those marked SHOAL_MSG_TRACE,
                            0 … 2^30; 0: only those (0) */
  unsigned stall_ms;     /* [Actors.StallMs] an actor with messages waiting
                            that has handled none for this long while not
                            running is reported once (ERROR) and counted
                            (stalls), 0 … 3600000; 0: not watched (0) */
  shoal_log_fn log;      /* may be NULL */
  void *log_user;
  size_t struct_size;    /* sizeof(shoal_actors_config), set by defaults */
} shoal_actors_config;

/* Any thread. */
SHOAL_API void shoal_actors_config_defaults(shoal_actors_config *cfg);
/* Creates an actor system whose actors run on `rt`, which must outlive
 * it. Errors: SHOAL_EINVAL (NULL, a field out of its range above),
 * SHOAL_ENOMEM. Any
 * thread outside handlers. */
SHOAL_API int shoal_actors_create(shoal_actors **out, shoal_runtime *rt,
                                  const shoal_actors_config *cfg);
/* Unregisters every actor, waits until each has finished its last turn
 * (and its stop callback), and frees the system. Requests with a timeout
 * still waiting are dropped (counted). SHOAL_ESTATE from inside a handler,
 * or while a session manager is attached (shoal_mgr_attach_actors): destroy
 * or detach it first. The thread that calls shoal_actors_tick, once no other thread
 * calls into `sys`. NULL is ignored. */
SHOAL_API int shoal_actors_destroy(shoal_actors *sys);

/* Starts a new tick for max_per_tick: actors that reached their limit are
 * scheduled again; and fires the timeouts of actor requests that are due
 * (shoal_actor_request_timeout): a host that uses them calls this every
 * tick. The host's main thread (one thread). */
SHOAL_API void shoal_actors_tick(shoal_actors *sys);

typedef void (*shoal_actor_fn)(shoal_actor *self, void *state,
                               const shoal_msg *m);
/* A message accepted but never handled: the actor was unregistered first. */
typedef void (*shoal_actor_drop_fn)(void *state, const shoal_msg *m);
/* After the actor's last handler call and drop; then state is the host's. */
typedef void (*shoal_actor_stop_fn)(void *state);

typedef enum shoal_full_policy {
  SHOAL_FULL_BACKPRESSURE = 0, /* a send to a full mailbox fails with
                                  SHOAL_EAGAIN: try again later */
  SHOAL_FULL_DROP = 1          /* it fails with SHOAL_ELIMIT and the
                                  message is counted as dropped */
} shoal_full_policy;

/* All fields public; fill with shoal_actor_opts_defaults first. */
/* Supervision: what a failure of an actor does (shoal_actor_fail, or
 * shoal_actor_mark_failed). STOP unregisters it and answers the requests
 * still in its mailbox with SHOAL_MSG_REPLY | SHOAL_MSG_FAILED; RESTART
 * calls its init again with its state pointer, its mailbox kept (the
 * messages after the failing one run after the init), up to max_restarts
 * in restart_window_ms, past which it stops (or escalates, when it has a
 * parent); ESCALATE stops it and fails its parent, which gets a
 * SHOAL_MSG_DOWN message after its own policy has run — Erlang/OTP's
 * one_for_one supervisors, CAF's down and exit handlers. */
typedef enum shoal_supervise {
  SHOAL_SUPERVISE_STOP = 0,
  SHOAL_SUPERVISE_RESTART = 1,
  SHOAL_SUPERVISE_ESCALATE = 2
} shoal_supervise;

/* Sets an actor's state up: at registration (on the registering thread,
 * before any message, with the system's lock held: it must not register
 * or unregister actors) and at each restart (on its worker, in its
 * turn). */
typedef void (*shoal_actor_init_fn)(shoal_actor *self, void *state);

typedef struct shoal_actor_opts {
  shoal_actor_fn handler;   /* required; runs on a worker */
  void *state;              /* passed to the callbacks */
  shoal_actor_drop_fn drop; /* may be NULL */
  shoal_actor_stop_fn stop; /* may be NULL */
  unsigned queue_size;      /* 0 (default): the system's queue_size */
  shoal_full_policy full;   /* default SHOAL_FULL_BACKPRESSURE */
  int home;                 /* -1 (default): runs on any worker; else the
                               index of the one worker it always runs on
                               (worker 0 runs only while the host is inside
                               the runtime), < shoal_runtime_workers_max;
                               while that worker is not running (a resize),
                               on another one */
  const char *name;         /* for listings; up to 23 bytes are copied */
  shoal_actor_init_fn init; /* may be NULL */
  shoal_supervise on_failure; /* default SHOAL_SUPERVISE_STOP */
  unsigned max_restarts;    /* RESTART: at most this many in
                               restart_window_ms (3) */
  unsigned restart_window_ms; /* (5000) */
  uint64_t parent;          /* who an escalation fails (0: none) */
  size_t struct_size;
} shoal_actor_opts;

SHOAL_API void shoal_actor_opts_defaults(shoal_actor_opts *opts);

/* The handler running says its actor failed (status < 0 by convention):
 * when the handler returns, the actor's on_failure policy runs. Its own
 * handler only. */
SHOAL_API void shoal_actor_fail(shoal_actor *self, int status);
/* Marks actor id failed from outside (the host saw it misbehave): its
 * policy runs before its next message. SHOAL_EINVAL, SHOAL_ENOENT. Any
 * thread. */
SHOAL_API int shoal_actor_mark_failed(shoal_actors *sys, uint64_t id,
                                      int status);

/* Registers an actor under `id` (non-zero, below 2^63). Errors:
 * SHOAL_EINVAL (bad id or options), SHOAL_EEXIST (id already registered),
 * SHOAL_ESTATE (the system is closing), SHOAL_ELIMIT (max_actors
 * registered), SHOAL_ENOMEM. Any thread, handlers included. */
SHOAL_API int shoal_actor_register(shoal_actors *sys, uint64_t id,
                                   const shoal_actor_opts *opts);
/* Removes the actor: later sends to id fail with SHOAL_ENOENT at once. A
 * handler call already running finishes; messages still queued are passed
 * to drop (counted as dropped); then stop runs, on whichever thread
 * finishes the actor (this one when it is idle). Returns without waiting.
 * Errors: SHOAL_ENOENT. Any thread, handlers included (their own too). */
SHOAL_API int shoal_actor_unregister(shoal_actors *sys, uint64_t id);

/* --- Sending -------------------------------------------------------------
 * Sends copy *m into the recipient's mailbox, set m's `to` and `time_ns`
 * in the copy, never block and never allocate. Errors: SHOAL_EINVAL (NULL),
 * SHOAL_ENOENT (no actor has that id: counted as a routing failure),
 * SHOAL_EAGAIN / SHOAL_ELIMIT (the mailbox is full, by its policy). */

/* `from` as the caller set it. Any thread. */
SHOAL_API int shoal_try_send(shoal_actors *sys, uint64_t to,
                             const shoal_msg *m);
/* From a handler: `from` is self's id. */
SHOAL_API int shoal_actor_try_send(shoal_actor *self, uint64_t to,
                                   const shoal_msg *m);
/* A request: the reply comes back to self's mailbox as a message with
 * SHOAL_MSG_REPLY and the same corr (written to *corr; may be NULL). */
SHOAL_API int shoal_actor_request(shoal_actor *self, uint64_t to,
                                  const shoal_msg *m, uint32_t *corr);
/* A request with a timeout: the requesting actor receives exactly one of
 * the reply (SHOAL_MSG_REPLY) and, when none came within timeout_ms
 * (not 0) of the monotonic clock, a timeout message
 * (SHOAL_MSG_REPLY | SHOAL_MSG_TIMEOUT: the request as sent, `from` the
 * addressee), under the same corr. Timeouts fire in shoal_actors_tick, so
 * late by up to one of its periods. The addressee sees a reply address in
 * `from`, not an actor id: it answers with shoal_actor_reply. A reply
 * after the timeout is dropped and counted (late_replies). Errors: those
 * of the send, SHOAL_EINVAL (timeout 0), SHOAL_EAGAIN (max_requests
 * waiting). From a handler. */
SHOAL_API int shoal_actor_request_timeout(shoal_actor *self, uint64_t to,
                                          const shoal_msg *m,
                                          unsigned timeout_ms, uint32_t *corr);
/* Answers a request `req` (a handler's message with SHOAL_MSG_REQUEST)
 * with *m: to the requesting actor or session, or to the waiting
 * shoal_call. A reply to a call or request that has timed out is dropped
 * and counted (late_replies). From a handler. */
SHOAL_API int shoal_actor_reply(shoal_actor *self, const shoal_msg *req,
                                const shoal_msg *m);
/* Scatter: the same request to each of n actors under one corr; *sent
 * receives how many were accepted. Collect the replies with a
 * shoal_gather. From a handler. */
SHOAL_API int shoal_actor_scatter(shoal_actor *self, const uint64_t *to,
                                  unsigned n, const shoal_msg *m,
                                  uint32_t *corr, unsigned *sent);

/* Gather: counts the replies of one scatter as the handler receives them.
 * All fields public. */
typedef struct shoal_gather {
  uint32_t corr;
  unsigned expected; /* what the scatter sent */
  unsigned received;
} shoal_gather;
/* 1 when m is a reply of g's scatter (and counts it), else 0. */
static inline int shoal_gather_add(shoal_gather *g, const shoal_msg *m) {
  if (!(m->flags & SHOAL_MSG_REPLY) || m->corr != g->corr)
    return 0;
  g->received++;
  return 1;
}
static inline int shoal_gather_done(const shoal_gather *g) {
  return g->received >= g->expected;
}

/* Blocking request-reply for threads outside handlers (the host): sends
 * *m as a request to `to` and waits up to timeout_ms (0: no limit) for the
 * reply, copied to *reply. While it waits, the caller runs work as worker
 * 0 when that slot is free (as shoal_group_wait does). Errors: those of
 * the send, SHOAL_ETIMEDOUT, SHOAL_EAGAIN (host_waiters calls already
 * waiting), SHOAL_ESTATE (called from a handler). */
SHOAL_API int shoal_call(shoal_actors *sys, uint64_t to, const shoal_msg *m,
                         shoal_msg *reply, unsigned timeout_ms);
/* Scatter-gather for the host: the request to n actors, replies copied to
 * replies[0 … *got) in arrival order (each names its sender in `from`)
 * until all n have come or the time is up. Returns 0 when all came,
 * SHOAL_ETIMEDOUT otherwise (*got says how many did); sends that failed
 * count as never answered. */
SHOAL_API int shoal_call_many(shoal_actors *sys, const uint64_t *to,
                              unsigned n, const shoal_msg *m,
                              shoal_msg *replies, unsigned timeout_ms,
                              unsigned *got);

/* The actor's id and system. Inside its handler. */
SHOAL_API uint64_t shoal_actor_id(const shoal_actor *self);
SHOAL_API shoal_actors *shoal_actor_system(const shoal_actor *self);

/* --- Publish-subscribe ---------------------------------------------------
 * A topic holds up to `capacity` subscribers; publish copies the message
 * to every current subscriber's mailbox (cost linear in subscribers). */
typedef struct shoal_topic shoal_topic;

/* Errors: SHOAL_EINVAL, SHOAL_ENOMEM. Any thread. */
SHOAL_API int shoal_topic_create(shoal_actors *sys, shoal_topic **out,
                                 unsigned capacity);
/* Any thread, once no other thread uses the topic. NULL is ignored. */
SHOAL_API void shoal_topic_destroy(shoal_topic *t);
/* Errors: SHOAL_ENOENT (no such actor), SHOAL_EEXIST (already
 * subscribed), SHOAL_ELIMIT (topic full). Any thread, at any time, also
 * while others publish. An unregistered actor leaves its topics. */
SHOAL_API int shoal_topic_subscribe(shoal_topic *t, uint64_t id);
/* Errors: SHOAL_ENOENT (not subscribed). Any thread, at any time. */
SHOAL_API int shoal_topic_unsubscribe(shoal_topic *t, uint64_t id);
/* Sends *m (from as set) to every current subscriber; *delivered (may be
 * NULL) receives how many mailboxes accepted it. A subscriber that joins
 * or leaves during the call may or may not receive it. Full mailboxes
 * count as their policy says. Any thread. */
SHOAL_API int shoal_topic_publish(shoal_topic *t, const shoal_msg *m,
                                  unsigned *delivered);

/* --- Metrics ------------------------------------------------------------- */

/* One actor's figures; all fields public. */
typedef struct shoal_actor_stats {
  uint64_t id;
  char name[24];
  int home;                 /* -1: any worker */
  unsigned queue_size;      /* mailbox capacity */
  uint64_t processed;       /* messages handled */
  uint64_t dropped;         /* refused under SHOAL_FULL_DROP, or discarded
                               at unregister */
  uint64_t rejected;        /* refused under SHOAL_FULL_BACKPRESSURE */
  uint64_t depth;           /* messages in the mailbox now */
  uint64_t max_depth;       /* most seen at the start of a turn */
  uint64_t handler_mean_ns; /* per message */
  uint64_t handler_max_ns;
  uint64_t stuck;           /* handlers reported past stuck_ms */
  uint64_t stalls;          /* times reported stalled (stall_ms) */
  uint64_t failures;        /* failures seen by its supervision */
  uint64_t restarts;        /* of them, restarted */
} shoal_actor_stats;

/* System-wide counters; all fields public. */
typedef struct shoal_actors_stats {
  uint64_t registered;       /* actors now */
  uint64_t routing_failures; /* sends to an id nobody has */
  uint64_t late_replies;     /* replies to calls and requests that had
                                timed out */
  uint64_t deferred;         /* turns put off by max_per_tick */
  /* Actor requests with a timeout, since creation: requests = replies +
   * timeouts + dropped + those waiting. */
  uint64_t requests;         /* shoal_actor_request_timeout accepted */
  uint64_t replies;          /* replies passed to their requester */
  uint64_t timeouts;         /* timeout messages passed to it */
  uint64_t requests_dropped; /* answers its mailbox refused, or waiting
                                at destroy */
} shoal_actors_stats;

/* Errors: SHOAL_EINVAL, SHOAL_ENOENT. Any thread; figures may lag a turn. */
SHOAL_API int shoal_actor_stats_get(shoal_actors *sys, uint64_t id,
                                    shoal_actor_stats *out);
SHOAL_API int shoal_actors_stats_get(shoal_actors *sys,
                                     shoal_actors_stats *out);
/* Fills out[0 … min(cap, n)) with the registered actors and *count with
 * n. Any thread. */
SHOAL_API int shoal_actors_list(shoal_actors *sys, shoal_actor_stats *out,
                                size_t cap, size_t *count);
/* Writes a table of the actors, one line per call of fn (depth 0), for a
 * host's console: what = "status" (handled, dropped, rejected, handler
 * times, failures, restarts, stuck), "queue" (depth, most, capacity,
 * policy), "queue ACTOR" (one actor's line, by id or name; SHOAL_ENOENT
 * when there is none)
 * or "trace ID" (the hops of that trace id, oldest first; SHOAL_ENOTSUP
 * when tracing is off). SHOAL_EINVAL for anything else. Any thread. */
SHOAL_API int shoal_actors_report(shoal_actors *sys, const char *what,
                                  shoal_topo_line_fn fn, void *user);

/* --- Message tracing -------------------------------------------------------
 * With Actors.TraceRing set, a message marked SHOAL_MSG_TRACE (or one send
 * in Actors.TraceEvery) gets a trace id, and every hop it makes — its
 * send, the turn that runs it, a copy sent on, its reply, a refusal, a
 * drop at unregister — is recorded with its time and worker in a ring of
 * the system's (the oldest hops give way). */
typedef enum shoal_hop_kind {
  SHOAL_HOP_SEND = 0,    /* pushed into the mailbox of `to` */
  SHOAL_HOP_REFUSED = 1, /* the send failed: status */
  SHOAL_HOP_RUN = 2,     /* `to`'s handler began it */
  SHOAL_HOP_DROP = 3     /* dropped unrun: `to` was unregistered */
} shoal_hop_kind;

typedef struct shoal_hop {
  uint64_t ns;     /* CLOCK_MONOTONIC */
  uint64_t from, to;
  uint16_t trace;
  uint8_t kind;    /* shoal_hop_kind */
  uint8_t flags;   /* the message's (SHOAL_MSG_REPLY: a reply) */
  int32_t worker;  /* the worker it happened on; -1: a thread outside */
  int32_t status;  /* SHOAL_HOP_REFUSED: the send's error */
} shoal_hop;

/* The hops of trace id `trace` still in the ring, in time order, into
 * out[0 … cap); returns how many there are (may pass cap), or
 * SHOAL_EINVAL, SHOAL_ENOTSUP (tracing off). Any thread. */
SHOAL_API long shoal_actors_trace(shoal_actors *sys, unsigned trace,
                                  shoal_hop *out, size_t cap);
/* Every hop in the ring as Chrome trace events (JSON; Perfetto and
 * chrome://tracing read it): one slice per hop on its worker's track and
 * flow arrows from each hop of a trace to the next. Into buf[0 … cap);
 * *len gets the text's length: SHOAL_ENOSPC (buf too small; *len: what
 * it needs), SHOAL_EINVAL, SHOAL_ENOTSUP, SHOAL_ENOMEM. Any thread. */
SHOAL_API int shoal_actors_trace_chrome(shoal_actors *sys, char *buf,
                                        size_t cap, size_t *len);

/* ------------------------------------------------------------------------ */
/* Configuration                                                            */
/* ------------------------------------------------------------------------ */

/* Everything a host may set from its configuration file. All fields
 * public; fill with shoal_config_defaults first. The names in brackets are
 * the file's keys (see shoal_config_load). */
/* What a packet is about (its opcode's category, shoal_mgr_register_opcode):
 * counted per category, and rate-limited per category. */
typedef enum shoal_packet_category {
  SHOAL_CAT_SPELL, SHOAL_CAT_ITEM, SHOAL_CAT_RESURRECTION,
  SHOAL_CAT_MOVEMENT, /* movement and area triggers */
  SHOAL_CAT_COMBAT, SHOAL_CAT_QUEST, SHOAL_CAT_GROUP, SHOAL_CAT_TRADE,
  SHOAL_CAT_GOSSIP, SHOAL_CAT_LOOT, SHOAL_CAT_VENDOR, SHOAL_CAT_TRAINER,
  SHOAL_CAT_AUCTION, SHOAL_CAT_CHAT, SHOAL_CAT_MAIL, SHOAL_CAT_BANK,
  SHOAL_CAT_GUILD, SHOAL_CAT_PET, SHOAL_CAT_OTHER,
  SHOAL_CAT_COUNT
} shoal_packet_category;

typedef struct shoal_config {
  unsigned max_sessions;     /* [SessionMgr.MaxConcurrentSessions] sessions
                                at once, 1 … 2^24 (5000) */
  unsigned batch_size;       /* [SessionMgr.UpdateBatchSize] sessions per
                                batch of the tick, 1 … 256; 0: chosen from
                                the sessions and workers each tick (64) */
  unsigned worker_threads;   /* [SessionMgr.WorkerThreads] workers of a
                                runtime the manager creates itself,
                                0 … SHOAL_WORKERS_MAX; 0: one per core (0) */
  unsigned max_worker_threads; /* [SessionMgr.MaxWorkerThreads] the most
                                workers shoal_mgr_set_workers may ask for
                                on a runtime the manager creates, 0 …
                                SHOAL_WORKERS_MAX and not below a non-zero
                                WorkerThreads; 0: the larger of the
                                starting count and the machine's PUs (0) */
  unsigned hibernation_minutes; /* [SessionMgr.HibernationThresholdMinutes]
                                idle time before a session hibernates,
                                1 … 10080 (5) */
  int enable_simd;           /* [SessionMgr.EnableSIMD] 0 or 1: metric
                                columns summed with AVX2 / AVX-512 when the
                                CPU has them (1) */
  int auto_defragment;       /* [SessionMgr.EnableAutoDefragmentation] 0 or
                                1: shoal_mgr_defragment every
                                defragment_seconds of manager time while
                                hibernation is on (1) */
  unsigned defragment_seconds; /* [SessionMgr.DefragmentationIntervalSeconds]
                                1 … 86400 (60) */
  unsigned hysteresis_seconds; /* [SessionMgr.HibernationHysteresisSeconds]
                                a session woken this recently is not
                                hibernated again, 0 … 86400 (60) */
  unsigned hibernate_per_update; /* [SessionMgr.HibernatePerUpdate] sessions
                                one update hibernates at most, 1 … 2^24
                                (1024) */
  unsigned pool_preallocate; /* [SessionMgr.PoolPreallocate] sessions
                                allocated at creation, ≤ max_sessions
                                (1000) */
  unsigned pool_grow;        /* [SessionMgr.PoolGrowBatch] sessions added
                                at once when the pool grows, 1 … 65536
                                (100) */
  unsigned packets_per_update; /* [SessionMgr.MaxPacketsPerUpdate] packets
                                a session takes from its inbox per update,
                                1 … 65536 (100) */
  int strict_packet_order;   /* [SessionMgr.StrictPacketOrder] 0 or 1: once
                                a session has a deferred packet waiting, its
                                later packets are deferred behind it (1) */
  int defer_packets;         /* [SessionMgr.DeferPackets] 0 or 1: 0 runs
                                every packet on the worker (1) */
  unsigned deferred_per_session; /* [SessionMgr.DeferredPerSession] deferred
                                packets of one session run per drain call,
                                1 … 2^20 (50) */
  unsigned inbox_size;       /* [SessionMgr.InboxSize] packets waiting in one
                                session's inbox, 1 … 65536 (256) */
  unsigned max_queued_packets; /* [SessionMgr.MaxQueuedPackets] packets held
                                at once, inboxes and deferred queue, 64 …
                                2^26 (262144) */
  unsigned watchdog_ms;      /* [SessionMgr.WatchdogMs] a host callback
                                (update, packet handler, hibernate or wake)
                                still running after this long is reported
                                through the log as ERROR, naming the worker
                                and the session; no thread is stopped.
                                0 … 3600000; 0: off (5000) */
  unsigned callback_budget_ms; /* [SessionMgr.CallbackBudgetMs] one running
                                longer is counted and logged as WARN,
                                0 … 3600000; 0: off (0) */
  unsigned max_packet_bytes; /* [SessionMgr.MaxPacketBytes] the longest
                                payload a send takes, 96 …
                                SHOAL_PACKET_BYTES_MAX (65536) */
  unsigned deferred_warn;     /* [SessionMgr.DeferredDepthWarn] a deferred
                                queue this deep is logged as WARN once per
                                crossing (re-armed under half of it),
                                0 … 2^26; 0: off (65536) */
  unsigned payload_budget_mb; /* [SessionMgr.PayloadBudgetMB] the buffers
                                that hold payloads past the inline bytes,
                                in MiB at most, 1 … 65536 (64) */
  unsigned rate_limit[SHOAL_CAT_COUNT]; /* [SessionMgr.RateLimit.Spell] …
                                [SessionMgr.RateLimit.Other], one per
                                category in shoal_packet_category's order:
                                packets per second one session may have of
                                it; the excess is dropped on the worker
                                (SHOAL_DROP_RATE_LIMITED). 0 … 1000000, at
                                most 8 categories non-zero; 0: no limit
                                (0) */
  unsigned rate_burst_ms;    /* [SessionMgr.RateBurstMs] a limited
                                category's bucket holds this long's worth
                                of its rate (at least one packet), so a
                                session may send that many at once, 1 …
                                3600000 (1000) */
  unsigned moved_seconds;    /* [SessionMgr.MovedSeconds] after
                                shoal_session_export, calls that name the
                                session answer SHOAL_EMOVED for this long
                                of manager time (then SHOAL_ENOENT),
                                0 … 86400; 0: SHOAL_ENOENT at once (60) */
  shoal_actors_config actors; /* [Actors.MessageQueueSize], [Actors.BatchSize],
                                [Actors.MaxMessagesPerTick] */
  shoal_log_fn log;          /* may be NULL; also given to a runtime the
                                manager creates (it creates no actor
                                system: actors.log is the host's) */
  void *log_user;
  size_t struct_size;        /* sizeof(shoal_config), set by defaults */
} shoal_config;

/* Any thread. */
SHOAL_API void shoal_config_defaults(shoal_config *cfg);

/* Sets one key from its text, e.g. ("SessionMgr.UpdateBatchSize", "128").
 * Numbers are decimal; booleans are 0/1, true/false, yes/no, on/off. An
 * unknown key, a malformed value or one out of range is SHOAL_EFORMAT
 * (SHOAL_ELIMIT when out of range) with a message in err (may be NULL)
 * naming the key, and cfg is left unchanged. Any thread. */
SHOAL_API int shoal_config_set(shoal_config *cfg, const char *key,
                               const char *value, char *err, size_t err_len);

/* Reads a `key = value` file: one key per line, `#` or `;` starts a
 * comment (at a line's start, or after a blank following a value), and
 * keys may be written in full (`SessionMgr.WorkerThreads = 4`) or under a
 * section (`[SessionMgr]` then `WorkerThreads = 4`). Only a regular file
 * of at most 1 MiB, lines of at most 4096 bytes, UTF-8 without NUL bytes;
 * an indented line is a line of its own (no continuation); a key set
 * twice is an error. The first fault fails the load with a message
 * "FILE:LINE: why" in err and leaves cfg as it was (nothing of the file is
 * applied). Errors: SHOAL_EINVAL (NULL), SHOAL_EIO (cannot open or read,
 * or not a regular file), SHOAL_EFORMAT, SHOAL_ELIMIT (a value out of
 * range, a line or the file too long), SHOAL_ENOMEM. Any thread. */
SHOAL_API int shoal_config_load(shoal_config *cfg, const char *path,
                                char *err, size_t err_len);

/* A key a mixed load leaves to the host: a line outside shoal's sections
 * (SessionMgr.*, Actors.*), with its section ("" for none), name and value
 * as written (quotes kept), and its line. 0 takes it; a negative result
 * fails the load there ("FILE:LINE: KEY: refused by the host"). The host
 * hears each of its lines as it is read: when the load fails later, shoal's
 * configuration is left as it was, and what the host took of the lines
 * before is its own to drop. */
typedef int (*shoal_config_other_fn)(void *user, const char *section,
                                     const char *key, const char *value,
                                     int line);
/* shoal_config_load of one file shared with the host (a game server's own
 * configuration): keys outside shoal's sections go to other, NULL: they
 * are errors, as in shoal_config_load. A misspelled key inside shoal's
 * sections is an error either way. Same errors and threads. */
SHOAL_API int shoal_config_load_mixed(shoal_config *cfg, const char *path,
                                      shoal_config_other_fn other,
                                      void *user, char *err, size_t err_len);
/* The same from text in memory (NUL-terminated, at most 1 MiB), called
 * `name` in messages (NULL: "<string>"). Same errors (not SHOAL_EIO). */
SHOAL_API int shoal_config_load_string(shoal_config *cfg, const char *text,
                                       const char *name,
                                       shoal_config_other_fn other,
                                       void *user, char *err,
                                       size_t err_len);

/* Applies environment variables over cfg: each key's variable is SHOAL_
 * followed by the key upper-cased with '.' replaced by '_', e.g.
 * SHOAL_SESSIONMGR_UPDATEBATCHSIZE=128 or SHOAL_ACTORS_BATCHSIZE=32. A bad
 * value fails as shoal_config_set does, naming the variable, and leaves
 * cfg unchanged. A variable named SHOAL_… that is no key's (a misspelled
 * override) is logged as WARN through cfg->log, once per call, and
 * ignored; SHOAL_DEBUG_YIELD, SHOAL_TOPOLOGIES, SHOAL_SANITIZED,
 * SHOAL_ROOT, SHOAL_PACKAGES, SHOAL_EXTRA_PACKAGES and SHOAL_BENCH_… are
 * the tools' own and not warned of. Call it after
 * shoal_config_load so that the environment wins. Any thread (it reads
 * the environment). */
SHOAL_API int shoal_config_apply_env(shoal_config *cfg, char *err,
                                     size_t err_len);

/* The number of keys, and the i-th key's name (NULL past the end): for a
 * host's help text and for tests. Any thread. */
SHOAL_API unsigned shoal_config_key_count(void);
SHOAL_API const char *shoal_config_key_name(unsigned i);

/* ------------------------------------------------------------------------ */
/* Sessions: the manager                                                    */
/* ------------------------------------------------------------------------ */

/* A manager keeps a host's sessions: each is named by an account id
 * (uint32, 0 is invalid), carries a host pointer, a map id and a group id,
 * and is updated on the runtime by shoal_mgr_update, which the host's main
 * thread calls every tick.
 *
 * Threads. "Main thread" below is whichever thread calls shoal_mgr_update
 * (one at a time). Create, release, get and the per-session setters are
 * safe from any thread, also during a tick and from inside callbacks;
 * create and release hold the manager's list lock for O(1) work, get
 * takes no lock. A session created during a tick joins the next tick; a
 * session released during a tick may still be updated in that tick, and
 * its on_release callback runs after the tick (see below). */
typedef struct shoal_mgr shoal_mgr;

/* Update callback: called once per tick for each active session that is
 * due (see shoal_session_set_interval) on a worker of the runtime or on
 * the main thread inside shoal_mgr_update — never on another thread, and
 * never for one session on two threads at once. diff_ms is the time since
 * this session's previous update (the sum of the ticks' diff_ms). Returns
 * 0 when the session had nothing to do, a positive count of work it did
 * (its activity, for metrics and hibernation), or a negative status when
 * it failed: the session is then quarantined (not updated again until
 * shoal_session_clear_quarantine) and counted; the tick goes on. */
typedef int (*shoal_update_fn)(void *host, uint32_t id, void *user,
                               uint32_t diff_ms);
/* Batch update callback (shoal_mgr_set_update_batch): n due sessions,
 * 1 ≤ n ≤ SHOAL_UPDATE_BATCH_MAX, in one call in place of n calls of the
 * update callback: session k is ids[k] with users[k], diff_ms[k] since
 * its previous update. The rules of shoal_update_fn hold for each of
 * them: one worker (or the main thread) runs the call, a session is in
 * no other call meanwhile, and its packets of this tick were handled
 * before it. Returns 0 when every session's result is 0; otherwise it
 * writes each session's result, with shoal_update_fn's meaning, in
 * rc[k] for every k < n, and returns non-zero. The arrays are valid
 * only during the call. */
#define SHOAL_UPDATE_BATCH_MAX 8u
typedef int (*shoal_update_batch_fn)(void *host, uint32_t n,
                                     const uint32_t *ids, void *const *users,
                                     const uint32_t *diff_ms, int *rc);
/* Called once per session when it leaves the manager (release, or
 * destroy), after its last update has returned: the host may free `user`.
 * Runs on the thread that released it when no tick was running, else on
 * the main thread at the end of the tick; for sessions still in the
 * manager at destroy, on the thread that destroys it. */
typedef void (*shoal_release_fn)(void *host, uint32_t id, void *user);

typedef struct shoal_mgr_callbacks {
  shoal_update_fn update;      /* required */
  shoal_release_fn on_release; /* may be NULL */
  void *host;                  /* passed to every callback */
} shoal_mgr_callbacks;

/* Creates a manager on `rt`, which must outlive it; rt NULL: the manager
 * creates a runtime of cfg->worker_threads workers (the log callback
 * passed on) and destroys it with itself. cfg NULL: defaults. Errors:
 * SHOAL_EINVAL (NULL out or callbacks, no update callback, a field out of
 * range), SHOAL_ENOMEM, and the runtime's errors. The host's thread,
 * outside tasks. */
SHOAL_API int shoal_mgr_create(shoal_mgr **out, shoal_runtime *rt,
                               const shoal_config *cfg,
                               const shoal_mgr_callbacks *cb);
/* Releases every session (on_release runs exactly once for each, on this
 * thread) and frees the manager. An on_release may call release on any
 * id meanwhile (one already released: SHOAL_ENOENT; another: it is
 * released then, with its own on_release, and not again); create, update,
 * drain and destroy from it get SHOAL_ESTATE. Packets still pending
 * (shoal_packet_stats' pending) are dropped and reported through the log
 * as one WARN with their count; a host that wants them run updates and
 * drains until pending is 0 first. SHOAL_ESTATE (nothing done) during a
 * tick. The main thread, once no other thread calls into mgr. NULL is
 * ignored. */
SHOAL_API int shoal_mgr_destroy(shoal_mgr *mgr);
/* The runtime the manager runs on. Any thread. */
SHOAL_API shoal_runtime *shoal_mgr_runtime(const shoal_mgr *mgr);

/* Updates every due, non-quarantined session once, in batches on the
 * runtime with the calling thread working too, and returns when all are
 * done; then applies releases made during the tick. Errors: SHOAL_EINVAL,
 * SHOAL_ESTATE (another update is running, or called from a callback).
 * The main thread. */
SHOAL_API int shoal_mgr_update(shoal_mgr *mgr, uint32_t diff_ms);

/* Run-time setters (any thread; take effect at the next tick).
 * batch size: 0 (auto) or 1 … 256; max sessions: 1 … 2^24, below the
 * sessions now in use (active and hibernated) only stops creation: every
 * session that exists still wakes; hibernation threshold in
 * milliseconds, ≥ 1. SHOAL_EINVAL otherwise. */
SHOAL_API int shoal_mgr_set_batch_size(shoal_mgr *mgr, unsigned batch_size);
SHOAL_API int shoal_mgr_set_max_sessions(shoal_mgr *mgr, unsigned max);
SHOAL_API int shoal_mgr_set_hibernation_ms(shoal_mgr *mgr, uint64_t ms);

/* --- Sessions ------------------------------------------------------------ */

/* Creates session `id` with the host pointer `user`, map 0, group 0,
 * interval 1. Errors: SHOAL_EINVAL (id 0, NULL mgr), SHOAL_EEXIST,
 * SHOAL_ELIMIT (max_sessions in use), SHOAL_ENOMEM. Any thread. */
SHOAL_API int shoal_session_create(shoal_mgr *mgr, uint32_t id, void *user);
/* Removes session `id`; its on_release runs (see shoal_release_fn).
 * SHOAL_ENOENT when there is none. Any thread. */
SHOAL_API int shoal_session_release(shoal_mgr *mgr, uint32_t id);
/* n sessions at once under one lock; users may be NULL (all NULL). Each
 * id's own result goes to results[i] when results is not NULL; returns
 * how many succeeded (or SHOAL_EINVAL for NULL mgr / ids with n > 0). Any
 * thread. */
SHOAL_API long shoal_session_create_batch(shoal_mgr *mgr, const uint32_t *ids,
                                          void *const *users, size_t n,
                                          int *results);
SHOAL_API long shoal_session_release_batch(shoal_mgr *mgr, const uint32_t *ids,
                                           size_t n, int *results);

/* shoal_session_info.state */
#define SHOAL_SESSION_ACTIVE      0
#define SHOAL_SESSION_QUARANTINED 1
#define SHOAL_SESSION_HIBERNATED  2  /* user is NULL until it wakes */

/* A session as get sees it; all fields public. */
typedef struct shoal_session_info {
  uint32_t id;
  uint32_t map;
  uint32_t group;
  uint32_t interval;     /* updated every interval-th tick */
  int state;             /* SHOAL_SESSION_* */
  int last_error;        /* the status that quarantined it, else 0 */
  unsigned node;         /* home NUMA node (logical index) */
  void *user;
  uint32_t deferred;     /* its packets waiting in the deferred queue for
                            the main thread's drain now */
} shoal_session_info;

/* Fills *out (may be NULL: only checks that id exists). SHOAL_ENOENT when
 * there is none. Any thread; takes no lock. */
SHOAL_API int shoal_session_get(shoal_mgr *mgr, uint32_t id,
                                shoal_session_info *out);
/* Per-session setters. SHOAL_ENOENT when there is none. Any thread. */
SHOAL_API int shoal_session_set_user(shoal_mgr *mgr, uint32_t id, void *user);
SHOAL_API int shoal_session_set_map(shoal_mgr *mgr, uint32_t id, uint32_t map);
SHOAL_API int shoal_session_set_group(shoal_mgr *mgr, uint32_t id,
                                      uint32_t group);

/* A map or a group, or a list of ids: who a broadcast reaches and whose
 * sessions a listing names. A session is on map 0 and in group 0 until set
 * otherwise; map 0 is a map like any other, group 0 is no group (a
 * broadcast or listing of it is SHOAL_EINVAL). */
typedef enum shoal_audience_kind {
  SHOAL_TO_MAP = 0,
  SHOAL_TO_GROUP = 1,
  SHOAL_TO_IDS = 2
} shoal_audience_kind;

/* The sessions of map `key` (SHOAL_TO_MAP) or group `key`
 * (SHOAL_TO_GROUP), active and hibernated, as one snapshot: fills
 * ids[0 … min(cap, n)) in no particular order and returns n, the
 * members at that moment (call again with more room when n > cap).
 * SHOAL_EINVAL (NULL mgr, another kind, group 0, NULL ids with cap > 0).
 * Any thread, also handlers and callbacks: it holds only the key's stripe
 * of the member lists, never the manager. */
SHOAL_API long shoal_mgr_members(shoal_mgr *mgr, shoal_audience_kind kind,
                                 uint32_t key, uint32_t *ids, size_t cap);

/* Update every `interval`-th tick (1 … 65535; SHOAL_EINVAL otherwise):
 * session id is due on the ticks where tick_number % interval ==
 * id % interval, so that sessions with one interval spread over the
 * ticks. Its diff_ms then covers every tick since its last update. */
SHOAL_API int shoal_session_set_interval(shoal_mgr *mgr, uint32_t id,
                                         unsigned interval);
/* Lets a quarantined session be updated again. SHOAL_ENOENT; SHOAL_ESTATE
 * when it is not quarantined. Any thread. */
SHOAL_API int shoal_session_clear_quarantine(shoal_mgr *mgr, uint32_t id);

/* --- Packets ------------------------------------------------------------- */

/* Any thread may send a packet to a session: it waits in the session's
 * inbox (lock-free, bounded by SessionMgr.InboxSize) until the session's
 * next update. Then, on the worker that updates it and before its update
 * callback, the session takes up to SessionMgr.MaxPacketsPerUpdate packets
 * in the order they were sent and looks each opcode up in the manager's
 * table: an INPLACE packet runs its handler there and then; a MAIN packet
 * is appended to the session's deferred queue, which the host's main
 * thread runs with shoal_mgr_drain_deferred, serialized with its world
 * update.
 *
 * Order. A session's deferred packets always run in the order they were
 * sent. With SessionMgr.StrictPacketOrder = 1 (default) no packet
 * overtakes an earlier deferred one: while a session has a deferred packet
 * waiting, its INPLACE packets are deferred behind it too (and run on the
 * main thread). With 0, INPLACE packets run at once on the worker, maybe
 * before an earlier MAIN packet of the same session. SessionMgr.
 * DeferPackets = 0 runs every packet, MAIN ones included, on the worker.
 *
 * Accounting: every send that reaches a live session is counted `sent`
 * and is then rejected (full inbox, too many packets held: SHOAL_EAGAIN),
 * handled (a handler ran), pending (in an inbox or the deferred queue) or
 * dropped (its session was released first, or its opcode has no handler
 * and no default handler is set). */

/* Payload bytes a packet carries inline, in the packet itself. Longer
 * payloads, up to SessionMgr.MaxPacketBytes, go in a buffer of the
 * manager's (shoal_session_send) or stay the host's
 * (shoal_session_send_owned). */
#define SHOAL_PACKET_INLINE_MAX 96
#define SHOAL_PACKET_PAYLOAD_MAX SHOAL_PACKET_INLINE_MAX /* older name */
/* The most SessionMgr.MaxPacketBytes may be. */
#define SHOAL_PACKET_BYTES_MAX (16u << 20)

typedef enum shoal_packet_class {
  SHOAL_PACKET_INPLACE = 0, /* safe on a worker, during the update */
  SHOAL_PACKET_MAIN = 1,    /* deferred to the host's main thread */
  SHOAL_PACKET_MAP = 2      /* run in the update's map phase, serialized
                               with everything else of its session's map */
} shoal_packet_class;

/* shoal_packet_category: above, with the configuration. */

/* "spell", "item", … "other"; NULL out of range. Any thread. */
SHOAL_API const char *shoal_packet_category_name(shoal_packet_category c);

/* A packet as a handler sees it; data is valid during the call only. */
typedef struct shoal_packet {
  uint16_t opcode;
  uint16_t flags;   /* the sender's, passed through */
  uint32_t len;
  const void *data;
  uint64_t sent_ns; /* when it was sent (CLOCK_MONOTONIC) */
} shoal_packet;

/* A handler: INPLACE ones on the worker updating the session, MAIN (and
 * deferred INPLACE) ones on the thread in shoal_mgr_drain_deferred. A
 * negative result is counted as a failed packet; nothing else changes. */
typedef int (*shoal_packet_fn)(void *host, uint32_t session, void *user,
                               const shoal_packet *p);

/* Registers opcode with its class, category, handler (not NULL) and a
 * reason for diagnostics (copied; NULL: none). Registering an opcode
 * again replaces it. An opcode never registered is MAIN, category other,
 * and runs the default handler (below) on the main thread: never on a
 * worker. Errors: SHOAL_EINVAL, SHOAL_ENOMEM; SHOAL_ESTATE from a callback
 * or handler. Any thread; waits for a running tick or drain to end. */
SHOAL_API int shoal_mgr_register_opcode(shoal_mgr *mgr, uint16_t opcode,
                                        shoal_packet_class cls,
                                        shoal_packet_category category,
                                        shoal_packet_fn handler,
                                        const char *reason);
/* The handler of unregistered opcodes (main thread); NULL (default):
 * they are dropped and counted. Same threads and errors as above. */
SHOAL_API int shoal_mgr_set_default_handler(shoal_mgr *mgr,
                                            shoal_packet_fn handler);

/* The map phase. shoal_mgr_update runs, in order: (1) every due
 * session's update with its INPLACE packets, on the workers; (2) the map
 * phase: for each map with work, the MAP packets its sessions took in (1),
 * each session's in its send order, then the host's map update (below);
 * maps in parallel on the workers and the calling thread, one map on one
 * thread at a time; (3) it returns, MAIN packets waiting for the drain. A
 * MAP handler therefore never runs at the same time as another handler or
 * update of its map, nor as any session's update; different maps run at
 * once. A session's map is the one it is on when its packet is taken. A
 * session's packets keep their send order across classes: once one of its
 * MAP packets waits for the map phase, its later INPLACE packets of that
 * update run after it, in the map phase; behind a deferred packet (strict
 * order) a MAP packet is deferred too and runs in the drain, on the main
 * thread, where nothing else runs. One map is one thread's work: a map of
 * most of the sessions is serial by nature (docs/maps.md). */
/* One map's figures in the map phase, since creation or the last reset. */
typedef struct shoal_map_stats {
  uint32_t map;
  uint32_t sessions;          /* on it now, asleep ones too */
  uint64_t map_packets;       /* run in its turns */
  uint64_t turns;             /* map phases it had work in */
  uint64_t phase_ns;          /* its turns' time, its packets and update */
} shoal_map_stats;
/* The maps' figures, the most phase time first: fills out[0 … min(cap,
 * n)) and returns n; reset 1 starts them over. Errors: SHOAL_EINVAL,
 * SHOAL_ENOMEM, SHOAL_ESTATE from a callback. Any thread; waits for a
 * running tick. */
SHOAL_API long shoal_mgr_map_stats(shoal_mgr *mgr, shoal_map_stats *out,
                                   size_t cap, int reset);

/* The host's map update: map's turn in the map phase, after its MAP
 * packets; diff_ms as the update's. Called for every map with a session
 * (asleep ones count) and every map with MAP packets in this update, on a
 * worker or the updating thread. It may call the any-thread calls. */
typedef void (*shoal_map_update_fn)(void *host, uint32_t map,
                                    uint32_t diff_ms);
/* Sets it (NULL: none; the map phase still runs MAP packets). Errors:
 * SHOAL_EINVAL, SHOAL_ESTATE from a callback. Any thread; waits for a
 * running tick or drain. */
SHOAL_API int shoal_mgr_set_map_update(shoal_mgr *mgr, shoal_map_update_fn fn);

/* Why shoal dropped a packet it had accepted. */
typedef enum shoal_drop_reason {
  SHOAL_DROP_RELEASED = 1,   /* its session was released first (from its
                                inbox, deferred queue, or held while
                                hibernated) */
  SHOAL_DROP_DESTROYED = 2,  /* the manager was destroyed first */
  SHOAL_DROP_NO_HANDLER = 3, /* its opcode has no handler and no default
                                handler is set */
  SHOAL_DROP_RATE_LIMITED = 4 /* past its category's rate for its session
                                (SessionMgr.RateLimit.*): dropped on the
                                worker, before it could queue for the
                                main thread */
} shoal_drop_reason;

/* The drop hook: told of every packet shoal drops after accepting it
 * (never of a refused send: the sender had the error), before its payload
 * is given back, so that the host can free what the packet referred to or
 * log it; p and p->data live for the call. It runs on the thread that
 * drops the packet: a worker (RATE_LIMITED, NO_HANDLER) or the draining
 * thread (NO_HANDLER), or the
 * thread releasing the session or destroying the manager, with the
 * manager's lock held (RELEASED, DESTROYED): it must not call shoal. */
typedef void (*shoal_drop_fn)(void *host, uint32_t id, const shoal_packet *p,
                              shoal_drop_reason reason);
/* Sets the drop hook (NULL: none); it gets the manager's host pointer.
 * Errors: SHOAL_EINVAL, SHOAL_ESTATE from a callback. Any thread; waits
 * for a running tick or drain. */
SHOAL_API int shoal_mgr_set_drop_hook(shoal_mgr *mgr, shoal_drop_fn hook);

typedef struct shoal_opcode_info {
  int registered;
  shoal_packet_class cls;
  shoal_packet_category category;
  const char *reason; /* valid until the opcode is registered again or the
                         manager is destroyed */
} shoal_opcode_info;
/* What the table says of opcode. SHOAL_EINVAL for NULL. Any thread
 * outside callbacks; waits for a running tick or drain. */
SHOAL_API int shoal_mgr_opcode_info(shoal_mgr *mgr, uint16_t opcode,
                                    shoal_opcode_info *out);

/* One opcode's figures, since creation or the last reset. */
typedef struct shoal_opcode_stats {
  uint16_t opcode;            /* 0 with registered 0: every unregistered
                                 opcode run by the default handler */
  int registered;
  shoal_packet_class cls;
  shoal_packet_category category;
  uint64_t handled;           /* its handler ran */
  uint64_t failed;            /* of those, it returned < 0 */
  uint64_t timed;             /* handler runs timed: one in 16 of each
                                 thread's */
  uint64_t time_p50_ns;       /* the handler's time, from those samples */
  uint64_t time_p99_ns;       /* (a log-linear histogram, ±12.5 %) */
} shoal_opcode_stats;
/* Every registered opcode's figures (and the unregistered ones', as one
 * row), the most handled first: fills out[0 … min(cap, n)) and returns
 * n; reset 1 starts them over. Errors: SHOAL_EINVAL, SHOAL_ENOMEM;
 * SHOAL_ESTATE from a callback. Any thread; waits for a running tick or
 * drain. */
SHOAL_API long shoal_mgr_opcode_stats(shoal_mgr *mgr, shoal_opcode_stats *out,
                                      size_t cap, int reset);

/* Sends a packet to session id: copies len bytes of data into the
 * session's inbox, up to SHOAL_PACKET_INLINE_MAX inside the packet, longer
 * ones (up to SessionMgr.MaxPacketBytes) into a buffer of the manager's
 * size-class pools, given back when the packet ends (handled, dropped).
 * Never blocks; allocates nothing on a warm manager (a pool grows by a
 * slab when a size is first used). Errors: SHOAL_EINVAL (NULL mgr, id 0,
 * len past MaxPacketBytes, NULL data with len > 0), SHOAL_ENOENT (no such
 * session, or released), SHOAL_EAGAIN (its inbox is full, MaxQueuedPackets
 * are held, or the buffers' SessionMgr.PayloadBudgetMB is spent:
 * back-pressure, counted as rejected). Any thread, also handlers and
 * callbacks. */
SHOAL_API int shoal_session_send(shoal_mgr *mgr, uint32_t id, uint16_t opcode,
                                 uint16_t flags, const void *data,
                                 size_t len);

/* Frees a payload handed over with shoal_session_send_owned: called
 * exactly once, with the free_arg and data given, when the packet ends
 * (after its handler, or when it is dropped), or before the send returns
 * an error. It runs on the thread that ends the packet (a worker, the
 * draining thread, a thread releasing the session or destroying the
 * manager, or the sender), maybe with the manager's lock held: it must
 * not call shoal. */
typedef void (*shoal_payload_free_fn)(void *free_arg, void *data);

/* shoal_session_send without a copy: ownership of data (len bytes, len ≤
 * SessionMgr.MaxPacketBytes) passes to shoal whatever the result, and
 * free_fn (not NULL) gives it back. Same errors and threads. */
SHOAL_API int shoal_session_send_owned(shoal_mgr *mgr, uint32_t id,
                                       uint16_t opcode, uint16_t flags,
                                       void *data, size_t len,
                                       shoal_payload_free_fn free_fn,
                                       void *free_arg);

/* Who a broadcast reaches. */
typedef struct shoal_audience {
  shoal_audience_kind kind;
  uint32_t key;          /* the map or group (TO_MAP, TO_GROUP) */
  const uint32_t *ids;   /* TO_IDS: n ids (a repeated id gets one packet
                            per mention) */
  size_t n;
  uint32_t except;       /* a session left out (the speaker); 0: none */
  unsigned flags;        /* SHOAL_TO_AWAKE */
} shoal_audience;
/* Leaves hibernated sessions out; without it a packet for one waits for
 * it and wakes it, as a send does. */
#define SHOAL_TO_AWAKE 1u

/* One packet to every session of the audience: each gets its own packet
 * in its inbox (a delivery, counted as a send: sent, and rejected when
 * its inbox is full), in the sender's order with its other sends. The
 * payload is copied once: up to SHOAL_PACKET_INLINE_MAX bytes into each
 * packet, longer ones into one buffer that every delivery shares and
 * that is given back after the last one ends. A map's or group's members
 * are taken as they are when the call begins (shoal_mgr_members); a
 * session that leaves meanwhile may miss it. Returns the deliveries
 * (≥ 0). Errors: SHOAL_EINVAL (NULL mgr or to, another kind, group 0,
 * NULL ids with n > 0, len past MaxPacketBytes, NULL data with len > 0),
 * SHOAL_EAGAIN (the PayloadBudgetMB is spent), SHOAL_ENOMEM. Any thread,
 * also handlers and callbacks. */
SHOAL_API long shoal_mgr_broadcast(shoal_mgr *mgr, const shoal_audience *to,
                                   uint16_t opcode, uint16_t flags,
                                   const void *data, size_t len);

/* Runs deferred packets on the calling thread: round-robin over the
 * sessions that have some, at most SessionMgr.DeferredPerSession of one
 * session per call, and at most `budget` in all (0: no limit besides the
 * per-session one). Returns how many it took off the queue (ran, or were
 * dropped for want of a handler), and in *remaining (may be NULL)
 * how many are still deferred. Sessions released by a handler keep their
 * on_release until the call ends. Errors: SHOAL_EINVAL, SHOAL_ESTATE (an
 * update or another drain is running, or called from a callback). The
 * main thread, between updates. */
SHOAL_API long shoal_mgr_drain_deferred(shoal_mgr *mgr, size_t budget,
                                        size_t *remaining);
/* The same with a time budget as well: no packet starts after budget_us
 * microseconds (0: no time limit) from the call's start; at least one
 * runs when any waits. Same errors and thread. */
SHOAL_API long shoal_mgr_drain_deferred_timed(shoal_mgr *mgr, size_t budget,
                                              uint64_t budget_us,
                                              size_t *remaining);

/* All fields public. Totals since creation, except the window ones, which
 * run from the previous reset like shoal_mgr_metrics'. */
typedef struct shoal_packet_stats {
  uint64_t sent;              /* sends to a live session */
  uint64_t rejected;          /* of those, SHOAL_EAGAIN */
  uint64_t handled;           /* a handler ran */
  uint64_t failed;            /* of those, it returned < 0 */
  uint64_t dropped;           /* released first, or no handler */
  uint64_t pending;           /* counted in the inboxes and deferred queue
                                 now */
  uint64_t invalid;           /* sends refused with EINVAL or ENOENT */
  uint64_t inplace_on_main;   /* INPLACE packets deferred by strict order */
  uint64_t deferred_now;      /* the deferred queue's depth */
  uint64_t deferred_max;      /* its deepest, in the window */
  uint64_t drain_calls;       /* in the window */
  uint64_t drained;           /* packets those calls ran */
  uint64_t drained_last;      /* the latest call's */
  uint64_t by_class[3];       /* handled in the window, by class
                                 (shoal_packet_class) */
  uint64_t by_category[SHOAL_CAT_COUNT];
  double packets_per_s;       /* handled per second of the window */
  uint64_t wait_p50_ns;       /* send to handler, from a log-linear */
  uint64_t wait_p99_ns;       /* histogram (±3 %) of the window */
  double window_s;
  /* Payloads past the inline bytes, since creation: a buffer of the
   * manager's, or the host's own (send_owned). Every one taken is freed
   * once: taken − freed are in flight. */
  uint64_t payloads_taken;
  uint64_t payloads_freed;
  uint64_t payload_bytes;     /* their bytes in flight now */
  uint64_t payload_bytes_peak;
  uint64_t payload_buffer_bytes; /* the buffers' classes in use now, against
                                 SessionMgr.PayloadBudgetMB */
  uint64_t payload_refused;   /* sends refused for the budget (in
                                 rejected too) */
  uint64_t deferred_alarms;   /* crossings of DeferredDepthWarn, since
                                 creation */
  uint64_t broadcasts;        /* shoal_mgr_broadcast calls that went out,
                                 since creation */
  uint64_t deliveries;        /* their packets delivered (in sent too) */
  uint64_t deliveries_refused; /* their packets refused by a full inbox (in
                                 sent and rejected too) */
  uint64_t rate_limited;      /* dropped past their category's rate (in
                                 dropped too), since creation */
  uint64_t rate_limited_by_category[SHOAL_CAT_COUNT]; /* in the window */
  uint64_t mapped;            /* taken to a map phase (MAP packets, and
                                 those of a session that followed one),
                                 since creation */
  uint64_t moved;             /* packets that left with their session
                                 (shoal_session_export), since creation;
                                 sent = rejected + handled + dropped +
                                 pending + moved. An import's packets
                                 count in sent. */
  uint64_t sends_moved;       /* sends answered SHOAL_EMOVED (not in sent) */
} shoal_packet_stats;

/* Fills *out; reset 1 starts a new window. Waits for a running tick or
 * drain. Errors: SHOAL_EINVAL; SHOAL_ESTATE from a callback. Any thread. */
SHOAL_API int shoal_packet_stats_get(shoal_mgr *mgr, shoal_packet_stats *out,
                                     int reset);

/* --- Timers ------------------------------------------------------------- */

/* A timer delivers a packet to a session after delay_ms of manager time
 * (the sum of the updates' diff_ms), then every interval_ms when it is not
 * 0: the update whose clock reaches it puts the packet in the session's
 * inbox before its session updates, where it runs as any packet of its
 * opcode (a hibernated session is woken, as by a send). A timer belongs to
 * its session as it is when started: released, the session's timers never
 * fire (a session created again with the id does not get them); they are
 * dropped when their time comes and counted as gone. Timers run on a
 * hierarchical timing wheel: start and cancel are O(1), with no malloc on
 * a warm manager. A periodic timer fires once per interval of manager
 * time however long an update's diff_ms: an interval of 10 ms and an
 * update of 1000 ms give 100 packets in that update (docs/timers.md). */
typedef uint64_t shoal_timer_id; /* 0: none */
#define SHOAL_TIMER_DATA_MAX 48            /* a timer's payload, copied */
#define SHOAL_TIMER_DELAY_MAX (UINT64_C(1) << 40) /* ms */

/* Starts a timer for session id; *out (may be NULL) its handle. Errors:
 * SHOAL_EINVAL (NULL mgr, id 0, len past SHOAL_TIMER_DATA_MAX, NULL data
 * with len > 0, a delay or interval past SHOAL_TIMER_DELAY_MAX),
 * SHOAL_ENOENT (no such session), SHOAL_ENOMEM. Any thread, also handlers
 * and callbacks; lock-free for an active session. */
SHOAL_API int shoal_timer_start(shoal_mgr *mgr, uint32_t id,
                                uint64_t delay_ms, uint64_t interval_ms,
                                uint16_t opcode, uint16_t flags,
                                const void *data, size_t len,
                                shoal_timer_id *out);
/* Cancels it: it fires no more. SHOAL_ENOENT when it already fired (a
 * one-shot), was cancelled, or its session was found gone; SHOAL_EINVAL
 * for NULL mgr or handle 0. Any thread; one CAS. */
SHOAL_API int shoal_timer_cancel(shoal_mgr *mgr, shoal_timer_id timer);

/* A map task: runs in map's turn of the map phase (after its MAP packets,
 * before the host's map update), on a worker or the updating thread,
 * serialized with everything else of that map. It may call the
 * any-thread calls. */
typedef void (*shoal_map_task_fn)(void *host, uint32_t map, void *arg);
/* Starts a timer that runs fn(host, map, arg) in map's turn of the update
 * whose clock reaches delay_ms, then every interval_ms when not 0 (once
 * per interval, as a session timer); *out its handle, cancelled with
 * shoal_timer_cancel. A map needs no session to have a turn for its
 * tasks. Errors: SHOAL_EINVAL (NULL mgr or fn, a delay or interval past
 * SHOAL_TIMER_DELAY_MAX), SHOAL_ENOMEM. Any thread, also handlers and
 * callbacks. */
SHOAL_API int shoal_map_timer_start(shoal_mgr *mgr, uint32_t map,
                                    uint64_t delay_ms, uint64_t interval_ms,
                                    shoal_map_task_fn fn, void *arg,
                                    shoal_timer_id *out);

typedef struct shoal_timer_stats {
  uint64_t started;   /* shoal_timer_start and shoal_map_timer_start calls
                         that succeeded */
  uint64_t fired;     /* packets the timers delivered (sent, or refused by
                         a full inbox as a send is), and map tasks due */
  uint64_t cancelled; /* shoal_timer_cancel calls that succeeded */
  uint64_t gone;      /* timers dropped because their session was released */
  uint64_t moved;     /* timers that left with their session
                         (shoal_session_export); an import's count in
                         started */
} shoal_timer_stats;
/* Since creation. SHOAL_EINVAL. Any thread. */
SHOAL_API int shoal_timer_stats_get(shoal_mgr *mgr, shoal_timer_stats *out);

/* --- Session requests ---------------------------------------------------
 * A session asks an actor and gets the answer in its own inbox: no broker
 * actor, no blocking, no callback on a foreign thread. The request goes
 * to the actor as a message with SHOAL_MSG_REQUEST; the actor answers with
 * shoal_actor_reply, and the reply comes to the session as a packet of
 * the opcode the session chose (its class, category and handler as
 * registered), whose data is the reply's shoal_msg (56 bytes, flags
 * SHOAL_MSG_REPLY). When no reply came within timeout_ms of manager time,
 * the same opcode comes instead with the request as sent (flags
 * SHOAL_MSG_REPLY | SHOAL_MSG_TIMEOUT, `from` the actor), in the update
 * whose clock reaches it. Exactly one of the two comes; a reply after the
 * timeout is dropped and counted (late). An answer that finds the session
 * released (or its inbox full) is counted as dropped: requests = replies
 * + timeouts + dropped + pending. A session released and created again
 * never gets the old one's answers. Answers carry the actor's 16 inline
 * bytes, or a pointer (SHOAL_MSG_PTR) that the session's handler then
 * owns; a dropped answer's pointer is not freed by shoal: reference-count
 * such payloads (docs/requests.md). */

/* Attaches the actor system whose actors session requests go to (NULL:
 * detaches; replies then come late). One system per manager; the system
 * must not be destroyed while attached (shoal_actors_destroy answers
 * SHOAL_ESTATE), and the manager detaches at destroy. Errors:
 * SHOAL_EINVAL, SHOAL_ELIMIT (15 managers attached to sys), SHOAL_ESTATE
 * from a callback. Any thread, not while requests are being sent. */
SHOAL_API int shoal_mgr_attach_actors(shoal_mgr *mgr, shoal_actors *sys);
/* Sends *m as a request from session id to actor `to`; *corr (may be NULL)
 * the correlation its answer carries. timeout_ms: 1 …
 * SHOAL_TIMER_DELAY_MAX of manager time. Errors: SHOAL_EINVAL, SHOAL_ESTATE
 * (no actor system attached), SHOAL_ENOENT (no such session, or no such
 * actor), SHOAL_EAGAIN / SHOAL_ELIMIT (the actor's mailbox is full, by its
 * policy, or too many requests wait), SHOAL_ENOMEM. Any thread, also
 * handlers and callbacks: lock-free for an active session. */
SHOAL_API int shoal_session_request(shoal_mgr *mgr, uint32_t id, uint64_t to,
                                    const shoal_msg *m, uint16_t reply_opcode,
                                    uint64_t timeout_ms, uint32_t *corr);

typedef struct shoal_request_stats {
  uint64_t requests; /* accepted, since creation */
  uint64_t replies;  /* replies put in their session's inbox */
  uint64_t timeouts; /* timeouts put there */
  uint64_t dropped;  /* answers that found the session released, or its
                        inbox full */
  uint64_t pending;  /* waiting for an answer now */
  uint64_t late;     /* replies after their timeout (or drop): dropped,
                        not in the sum */
  uint64_t moved;    /* requests that left with their session
                        (shoal_session_export), in the sum; an import's
                        count in requests */
} shoal_request_stats;
/* SHOAL_EINVAL. Any thread. */
SHOAL_API int shoal_request_stats_get(shoal_mgr *mgr,
                                      shoal_request_stats *out);

/* --- Hibernation --------------------------------------------------------- */

/* A session is idle when its last activity — a packet taken, an update
 * that returned work (> 0), a shoal_session_touch — is older than the
 * threshold (SessionMgr.HibernationThresholdMinutes, or
 * shoal_mgr_set_hibernation_ms), in manager time (the sum of the updates'
 * diff_ms). With hibernation on (shoal_mgr_set_hibernation), each update,
 * after its tick, hibernates up to SessionMgr.HibernatePerUpdate idle
 * sessions in parallel batches of 32 on the runtime: the host's hibernate
 * callback writes what it must keep of the session and frees the rest;
 * shoal keeps the bytes LZ4-compressed behind a length and a CRC-32C, with
 * the session's id, map, group, interval and counters, and the session
 * leaves the active array. Never hibernated: a session with packets in its
 * inbox or deferred queue, a quarantined one, one woken less than
 * SessionMgr.HibernationHysteresisSeconds ago; and never while it is being
 * updated (passes run between ticks).
 *
 * Wake: a packet sent to a hibernated session (the packet is kept and runs
 * in order with those sent after it), shoal_mgr_wake, _wake_map and
 * _wake_group ask for a wake, from any thread. The next update (or
 * shoal_mgr_run_wakes) wakes every session asked for in parallel before
 * its tick, and they are updated in that tick: the host's wake callback
 * gets the bytes back exactly and returns the session's new user pointer.
 *
 * While hibernated, a session is still there for get (state
 * SHOAL_SESSION_HIBERNATED, user NULL), set_map, set_group,
 * set_interval, send and release; set_user and clear_quarantine are
 * SHOAL_ESTATE. Released while hibernated, its on_release gets user NULL.
 * It counts against max_sessions as an active session does. Calls that
 * reach a hibernated session (send, get, touch, wake) take the manager's
 * lock, as create and release do; on active sessions they stay
 * lock-free. */

/* The writer a hibernate callback fills. */
typedef struct shoal_hib_writer shoal_hib_writer;

/* The most bytes a session may keep. */
#define SHOAL_HIB_BLOB_MAX 0x7E000000u

/* Appends len bytes (data may be NULL when len is 0). Errors: SHOAL_EINVAL,
 * SHOAL_ELIMIT (the blob would pass SHOAL_HIB_BLOB_MAX: the callback
 * should refuse; if it goes on, the session is woken at once from what it
 * wrote, counted in too_large, and not tried again until its update
 * reports work), SHOAL_ENOMEM. Only inside the hibernate callback that
 * was given w. */
SHOAL_API int shoal_hib_write(shoal_hib_writer *w, const void *data,
                              size_t len);

/* Hibernate callback: writes what must be kept of session id through w,
 * frees the rest of its state, and returns the bytes of host memory it
 * freed (≥ 0; 0 if it does not say), which shoal_hib_stats_get
 * counts as saved. A negative result refuses: the session stays active
 * with its user pointer, and nothing may have been freed. If shoal cannot
 * keep the bytes afterwards (out of memory), it calls the wake callback at
 * once with them, so that nothing is lost. Runs on a worker of the runtime
 * or on the main thread, inside shoal_mgr_update or
 * shoal_mgr_hibernate_idle, never during the session's update. */
typedef long (*shoal_hibernate_fn)(void *host, uint32_t id, void *user,
                                   shoal_hib_writer *w);
/* Wake callback: rebuilds session id from the len bytes at blob (valid
 * during the call), and stores its new user pointer in *user (what it
 * holds on entry is not to be read). 0, or a negative status: the
 * session then stays hibernated with its bytes and its packets, the
 * failure is counted (wake_failures) and, the first of a row, logged as
 * ERROR, and the wake is tried again at a later update, 1, 2, 4 … 256
 * ticks after the failure. Same threads as the hibernate callback, inside
 * shoal_mgr_update or shoal_mgr_run_wakes. */
typedef int (*shoal_wake_fn)(void *host, uint32_t id, const void *blob,
                             size_t len, void **user);

/* Release callback of a hibernated session (a logout while asleep): the
 * len bytes its hibernate callback kept (valid during the call), so that
 * the host can save them; NULL and 0 when its record is corrupt (logged
 * as ERROR). It runs on the thread that releases the session (or destroys
 * the manager), outside the manager's lock, just before that session's
 * on_release (user NULL). */
typedef void (*shoal_hib_release_fn)(void *host, uint32_t id,
                                     const void *blob, size_t len);

typedef struct shoal_hib_callbacks {
  shoal_hibernate_fn hibernate; /* required */
  shoal_wake_fn wake;           /* required */
  shoal_hib_release_fn release; /* may be NULL */
} shoal_hib_callbacks;

/* Turns hibernation on with these callbacks (they get the manager's host
 * pointer); calling again replaces them. Errors: SHOAL_EINVAL (NULL
 * callbacks), SHOAL_ENOMEM; SHOAL_ESTATE from a callback. Any thread;
 * waits for a running update. Hibernation cannot be turned off again. */
SHOAL_API int shoal_mgr_set_hibernation(shoal_mgr *mgr,
                                        const shoal_hib_callbacks *cb);
/* A session woken less than ms ago is not hibernated. Any thread. */
SHOAL_API int shoal_mgr_set_hibernation_hysteresis_ms(shoal_mgr *mgr,
                                                      uint64_t ms);
/* Counts as activity for session id: it is not idle for another
 * threshold. SHOAL_ENOENT. Any thread, lock-free. */
SHOAL_API int shoal_session_touch(shoal_mgr *mgr, uint32_t id);
/* Asks for session id to wake (and touches it); SHOAL_OK as well when it
 * is active or already asked for. SHOAL_ENOENT. Any thread, lock-free. */
SHOAL_API int shoal_mgr_wake(shoal_mgr *mgr, uint32_t id);
/* Asks for every hibernated session of the map (group) to wake; returns
 * how many it asked for, or SHOAL_EINVAL. Any thread; O(hibernated)
 * under the manager's list lock. */
SHOAL_API long shoal_mgr_wake_map(shoal_mgr *mgr, uint32_t map);
SHOAL_API long shoal_mgr_wake_group(shoal_mgr *mgr, uint32_t group);

/* Runs a hibernation pass now: up to max idle sessions (0: no limit).
 * Returns how many hibernated. Errors: SHOAL_EINVAL, SHOAL_ESTATE (an
 * update or drain is running, hibernation is off, or called from a
 * callback). The main thread, between updates. */
SHOAL_API long shoal_mgr_hibernate_idle(shoal_mgr *mgr, size_t max);
/* Wakes now the sessions asked for, in parallel; returns how many woke.
 * Same errors and thread as above. */
SHOAL_API long shoal_mgr_run_wakes(shoal_mgr *mgr);

/* --- Moving a session between processes ---------------------------------
 * A host that shards its world across processes moves a session by
 * exporting it here and importing the record there; the transport is the
 * host's. The record (docs/moves.md) holds the session's id, map, group
 * and interval, the bytes its hibernate callback keeps, the packets still
 * waiting for it in order (inbox, deferred queue, held), its timers with
 * the manager time they had left, and its requests to actors with theirs.
 * It is versioned and checksummed; an import checks it whole first.
 *
 * Both need hibernation on (the host's callbacks make and take the
 * bytes). Both run holding the manager, as an update does: the main
 * thread, between updates. */

/* Exports session id into buf[0 … cap) and removes it from the manager;
 * *len gets the record's bytes. An active session is hibernated first
 * (its hibernate callback runs on this thread) and its waiting packets
 * are taken with it; a hibernated one is exported as it is. From then on
 * send, get, touch, wake, release and the setters naming id answer
 * SHOAL_EMOVED for SessionMgr.MovedSeconds of manager time (a create or
 * an import of id ends that at once): the host forwards what it meant
 * for the session to where it went. A send that raced the export either
 * is in the record or gets SHOAL_EMOVED; none is lost. Timers started
 * and requests answered on other threads while the export runs may stay
 * behind (counted gone, or late).
 *
 * The host keeps the record until the importing side confirms: if that
 * side fails, shoal_session_import of the same record here puts the
 * session back, nothing lost.
 *
 * Errors, all leaving the session in this manager: SHOAL_ENOSPC (cap is
 * short of the record: *len gets a length that suffices; the session is
 * left hibernated, its packets kept and a wake asked for when it has
 * some), SHOAL_EINVAL, SHOAL_ENOENT, SHOAL_EMOVED (exported already),
 * SHOAL_ESTATE (hibernation off, an update or drain running, called from
 * a callback, or the hibernate callback refused), SHOAL_ELIMIT (more than
 * 65536 waiting packets, timers or requests, or the host's bytes past
 * SHOAL_HIB_BLOB_MAX), SHOAL_ENOMEM. The main thread, between updates. */
SHOAL_API int shoal_session_export(shoal_mgr *mgr, uint32_t id, void *buf,
                                   size_t cap, size_t *len);

/* Creates the session of an exported record here, hibernated, with its
 * packets first in its inbox in their order, its timers and request
 * timeouts armed with the time they had left (a request's reply goes to
 * the process that sent it, so here it ends in its timeout), and asks for
 * its wake: the next update wakes it through the wake callback and
 * updates it. The record is checked whole before anything changes:
 * SHOAL_EFORMAT for a record that is truncated, corrupt or of another
 * version. Other errors, with nothing changed: SHOAL_EINVAL, SHOAL_EEXIST
 * (id is here), SHOAL_ELIMIT (max_sessions; a packet past MaxPacketBytes,
 * a timer's data past SHOAL_TIMER_DATA_MAX; the packet or timer pools
 * full), SHOAL_EAGAIN (the payload budget), SHOAL_ENOMEM, SHOAL_ESTATE
 * (as export). The main thread, between updates. */
SHOAL_API int shoal_session_import(shoal_mgr *mgr, const void *rec,
                                   size_t len);

/* What a defragmentation did; all fields public. */
typedef struct shoal_defrag_report {
  uint64_t rss_before;     /* resident bytes of the process, before */
  uint64_t rss_after;      /* and after */
  uint64_t bytes_returned; /* rss_before - rss_after, or 0 */
  uint64_t columns_bytes;  /* given back from the active array's unused
                              tail */
  uint64_t pool_bytes;     /* from session slabs wholly free */
  uint64_t table_bytes;    /* from the hibernated sessions' table and
                              the id tables that growth replaced */
  uint64_t ns;             /* time taken */
} shoal_defrag_report;

/* Compacts the manager's memory: the pages of the active array past the
 * sessions in use and of wholly free session slabs go back to the system
 * (they fault in again, zeroed, when used), the hibernated sessions' table
 * shrinks to fit, and the allocator returns its free memory (mi_collect;
 * malloc_trim with libc). out may be NULL. Errors: SHOAL_EINVAL;
 * SHOAL_ESTATE (an update or drain is running, or from a callback). The
 * main thread, between updates; with EnableAutoDefragmentation, updates
 * call it every DefragmentationIntervalSeconds of manager time. */
SHOAL_API int shoal_mgr_defragment(shoal_mgr *mgr, shoal_defrag_report *out);

/* Runs the manager's runtime on `workers` workers from the next update
 * on (shoal_runtime_set_workers: growing starts workers on the plan's next
 * PUs, shrinking removes the highest once they have handed their tasks
 * back). Sessions, packets and timers are untouched: the next tick splits
 * its batches over the new count. Errors: SHOAL_EINVAL (NULL, 0),
 * SHOAL_ELIMIT (over the runtime's max: SessionMgr.MaxWorkerThreads for a
 * runtime the manager created), SHOAL_ESTATE (an update or drain is
 * running, or from a callback), SHOAL_ENOMEM, SHOAL_EAGAIN; on an error
 * the count is unchanged. The main thread, between updates; on a runtime
 * shared with other managers or actors, the host's thread that owns the
 * runtime. */
SHOAL_API int shoal_mgr_set_workers(shoal_mgr *mgr, unsigned workers);

/* Updates the due sessions through `fn` from the next update on, several
 * in one call (shoal_update_batch_fn), in place of the update callback;
 * NULL goes back to the update callback. For a host whose per-session
 * update is small, one call per batch costs less than one per session.
 * The watchdog names a batch by its first session. Errors: SHOAL_EINVAL
 * (NULL mgr), SHOAL_ESTATE (an update or drain is running, or from a
 * callback). The main thread, between updates. */
SHOAL_API int shoal_mgr_set_update_batch(shoal_mgr *mgr,
                                         shoal_update_batch_fn fn);

/* All fields public. Counts since creation, except the window's. */
typedef struct shoal_hib_stats {
  uint64_t hibernated;       /* sessions hibernated now */
  uint64_t hibernations;     /* since creation */
  uint64_t wakes;
  uint64_t refused;          /* hibernate callbacks that returned < 0 */
  uint64_t failures;         /* records that could not be kept (memory);
                                the session was woken at once */
  uint64_t wake_failures;    /* wake callbacks < 0, or corrupt records */
  double hibernations_per_s; /* in the window */
  double wakes_per_s;
  uint64_t record_bytes;     /* what the hibernated sessions' records
                                take now (blob, header, counters) */
  uint64_t record_max;       /* the largest of them */
  double record_mean;
  uint64_t raw_bytes;        /* their blobs before compression */
  uint64_t bytes_saved;      /* host bytes freed (as its callbacks said)
                                less record_bytes, for those hibernated
                                now; 0 if below */
  uint64_t hibernate_p50_ns; /* per session: callback and compression */
  uint64_t hibernate_p99_ns;
  uint64_t wake_p50_ns;      /* per session: checks, decompression and
                                callback */
  uint64_t wake_p99_ns;
  uint64_t hibernate_shoal_p50_ns; /* the same less the host's callback */
  uint64_t hibernate_shoal_p99_ns;
  uint64_t wake_shoal_p50_ns;
  uint64_t wake_shoal_p99_ns;
  uint64_t defrags;          /* defragmentations since creation */
  uint64_t defrag_returned;  /* bytes the last one returned */
  double window_s;
  uint64_t too_large;        /* of failures, blobs past SHOAL_HIB_BLOB_MAX;
                                such a session is not tried again until
                                its update reports work */
  uint64_t exports;          /* shoal_session_export, since creation */
  uint64_t imports;          /* shoal_session_import, since creation */
} shoal_hib_stats;

/* Fills *out; reset 1 starts a new window. Errors: SHOAL_EINVAL;
 * SHOAL_ESTATE from a callback. Any thread; waits for a running update. */
SHOAL_API int shoal_hib_stats_get(shoal_mgr *mgr, shoal_hib_stats *out,
                                  int reset);

/* --- Metrics ------------------------------------------------------------- */

/* All fields public. Times in nanoseconds unless named otherwise. The
 * window runs from the previous reset (shoal_mgr_metrics with reset 1) or
 * the manager's creation. */
typedef struct shoal_mgr_metrics {
  uint64_t active;            /* active sessions now (the hibernated ones
                                 are not in it: the manager holds
                                 active + hibernated) */
  uint64_t hibernated;
  uint64_t quarantined;       /* now */
  uint64_t quarantines;       /* sessions quarantined in the window */
  uint64_t ticks;             /* updates in the window */
  uint64_t updates;           /* session updates in the window */
  uint64_t batches;           /* batches in the window */
  uint64_t batches_away;      /* of those, run by a worker of another NUMA
                                 node than their sessions' home */
  uint64_t home_nodes;        /* NUMA nodes sessions are homed on */
  uint64_t activity;          /* work reported in the window */
  double ticks_per_s;         /* update cycles per second of the window */
  uint64_t tick_p50_ns;       /* from a log-linear histogram: ±3 % */
  uint64_t tick_p99_ns;
  uint64_t tick_max_ns;       /* exact */
  uint64_t host_ns;           /* time in host update callbacks:
                                 host_ns_per_update × updates */
  uint64_t shoal_ns;          /* CPU time of the runtime's threads in the
                                 window less host_ns (their idle spinning
                                 included) */
  double host_ns_per_update;  /* the host's update callback, measured on the
                                 timed batches (one in 32) */
  double shoal_ns_per_update; /* shoal's own time per session update in the
                                 same batches: the batch's whole time less
                                 the host's callbacks, update and packet
                                 handlers (packets taken, scheduling
                                 checks, bookkeeping, splitting);
                                 the tick's fork-join and idle time are not
                                 in it (see tick_p50_ns) */
  uint64_t pool_bytes;        /* session slabs */
  uint64_t table_bytes;       /* registry, active array and columns */
  uint64_t heap_committed;    /* mimalloc's committed memory, process-wide
                                 (0 without mimalloc) */
  uint64_t pool_allocated;    /* sessions the slabs hold */
  uint64_t pool_available;
  uint64_t pool_high_water;
  double packets_per_s;       /* packets handled per second of the window */
  const char *simd;           /* "avx512", "avx2" or "scalar" */
  uint64_t overhead_samples;  /* session updates timed for the two figures
                                 per update */
  double window_s;
  uint64_t watchdog_stalls;   /* callbacks reported past WatchdogMs, total */
  uint64_t over_budget;       /* callbacks past CallbackBudgetMs, total */
  /* The update's wall time in the window, by phase (shares of the whole,
   * 0 … 1): the session updates, the map phase; the rest is the wakes,
   * hibernation and bookkeeping. */
  double session_phase_share;
  double map_phase_share;
  double biggest_map_share;   /* the map that took the most of the map
                                 phase's work (its jobs' time) over all the
                                 maps' work: near 1, one map is the phase */
} shoal_mgr_metrics;

/* Fills *out; with reset 1 starts a new window (the per-session counters
 * are summed and cleared). Waits for a running tick to end. Errors:
 * SHOAL_EINVAL; SHOAL_ESTATE from inside a callback. Any thread. */
SHOAL_API int shoal_mgr_metrics_get(shoal_mgr *mgr, shoal_mgr_metrics *out,
                                    int reset);

typedef struct shoal_map_count {
  uint32_t map;
  uint32_t sessions;
} shoal_map_count;
/* Sessions per map, active and hibernated, most populous first: fills
 * out[0 … min(cap, n)) and *count with n, the number of maps. Does not
 * wait for a running tick. Any thread outside callbacks. */
SHOAL_API int shoal_mgr_maps(shoal_mgr *mgr, shoal_map_count *out, size_t cap,
                             size_t *count);

typedef struct shoal_session_activity {
  uint32_t id;
  uint64_t activity; /* work reported in the window */
  uint64_t updates;
} shoal_session_activity;
/* The k most active sessions of the window, most active first: fills
 * out[0 … *count) with *count ≤ k. Waits for a running tick. Any thread
 * outside callbacks. */
SHOAL_API int shoal_mgr_top(shoal_mgr *mgr, shoal_session_activity *out,
                            size_t k, size_t *count);

/* --- Metrics for Prometheus -------------------------------------------- */

/* Renders the manager's metrics, its runtime's per worker and, when actors
 * is not NULL, the actor system's, in Prometheus' text exposition format
 * (version 0.0.4), for a host to serve on its own HTTP endpoint with the
 * content type "text/plain; version=0.0.4". Names carry the prefix
 * `shoal_` and their unit (`_seconds`, `_bytes`, `_total` for counters);
 * the tick time is a histogram (`shoal_tick_duration_seconds`); maps,
 * workers and actors are labels. The names, types and units are listed in
 * docs/embedding.md ("Metrics for Prometheus"). Counters count since the
 * manager's creation and never go back, whatever windows the host resets
 * through the other metric calls (except the per-map figures, which
 * shoal_mgr_map_stats with reset 1 starts over, as Prometheus allows a
 * counter to).
 *
 * Writes at most cap − 1 bytes and a NUL into buf; *len (when not NULL)
 * receives the whole text's length, so a call with too small a buffer
 * says how much to ask for. Errors: SHOAL_EINVAL (mgr NULL, buf NULL with
 * cap > 0), SHOAL_ENOSPC (the text did not fit: buf holds an empty
 * string), SHOAL_ESTATE from inside a callback. Any thread; waits for a
 * running tick or drain, as the metric calls it is built from. */
SHOAL_API int shoal_metrics_prometheus(shoal_mgr *mgr, shoal_actors *actors,
                                       char *buf, size_t cap, size_t *len);

#ifdef __cplusplus
}
#endif

#endif /* SHOAL_H */
