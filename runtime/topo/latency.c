/* latency.c — core-to-core cache-line round trips: two threads bound to two
 * PUs pass a counter back and forth on one line; the median of several
 * timed samples is a run's figure, and runs repeat (each direction of a
 * pair apart) until they agree within the spread asked, inside a time
 * budget. Backs `shoal topo --latency`. */
#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime/topo/topo.h"

void shoal_latency_opts_defaults(shoal_latency_opts *opts) {
  if (opts == NULL)
    return;
  opts->round_trips = 200;
  opts->samples = 15;
  opts->max_runs = 5;
  opts->spread = 0.10;
  opts->budget_ms = 60000;
  opts->progress = NULL;
  opts->progress_user = NULL;
  opts->log = NULL;
  opts->log_user = NULL;
  opts->struct_size = sizeof *opts;
}

/* The ball and the flags live on separate lines so that only the ball's
 * line moves between the two cores while a sample is timed. */
typedef struct pingpong {
  alignas(SHOAL__FALSE_SHARING) _Atomic uint64_t ball;
  alignas(SHOAL__FALSE_SHARING) _Atomic int ready; /* +1 bound, -1 failed */
  _Atomic int go;
  const shoal_topo *t;
  unsigned pu;
  uint64_t rounds; /* total round trips the partner answers */
} pingpong;

static void *partner_main(void *arg) {
  pingpong *pp = arg;
  int rc = shoal__topo_bind_self(pp->t, pp->pu);
  /* release: publishes nothing but the flag; pairs with the acquire load in
   * measure_pair. */
  atomic_store_explicit(&pp->ready, rc == SHOAL_OK ? 1 : -1,
                        memory_order_release);
  if (rc != SHOAL_OK)
    return NULL;
  /* acquire: pairs with the thrower's release store of `go`. */
  while (atomic_load_explicit(&pp->go, memory_order_acquire) == 0)
    shoal__cpu_relax();
  if (atomic_load_explicit(&pp->go, memory_order_relaxed) < 0)
    return NULL;
  for (uint64_t k = 0; k < pp->rounds; k++) {
    /* acquire/release on the ball: each hop must see the previous one; this
     * is the transfer being measured. */
    while (atomic_load_explicit(&pp->ball, memory_order_acquire) != 2 * k + 1)
      shoal__cpu_relax();
    atomic_store_explicit(&pp->ball, 2 * k + 2, memory_order_release);
  }
  return NULL;
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int dbl_cmp(const void *pa, const void *pb) {
  double a = *(const double *)pa, b = *(const double *)pb;
  return a < b ? -1 : a > b;
}

typedef struct pair_job {
  pingpong *pp;
  unsigned pu;
  const shoal_latency_opts *o;
  double *samples;
  double result;
  int rc;
} pair_job;

/* The timing side: bound to its own PU, it throws the ball and times the
 * round trips. */
static void *thrower_main(void *arg) {
  pair_job *j = arg;
  pingpong *pp = j->pp;
  int ready;
  uint64_t k = 0;

  j->rc = shoal__topo_bind_self(pp->t, j->pu);
  /* acquire: pairs with the partner's release store of `ready`. */
  while ((ready = atomic_load_explicit(&pp->ready, memory_order_acquire)) == 0)
    shoal__cpu_relax();
  if (j->rc != SHOAL_OK || ready < 0) {
    if (j->rc == SHOAL_OK)
      j->rc = SHOAL_EPIN;
    atomic_store_explicit(&pp->go, -1, memory_order_release);
    return NULL;
  }
  /* release: pairs with the partner's acquire wait on `go`. */
  atomic_store_explicit(&pp->go, 1, memory_order_release);
  for (unsigned s = 0; s < j->o->samples; s++) {
    uint64_t t0 = now_ns();
    for (unsigned r = 0; r < j->o->round_trips; r++, k++) {
      /* release/acquire: the mirror of the partner's hop. */
      atomic_store_explicit(&pp->ball, 2 * k + 1, memory_order_release);
      while (atomic_load_explicit(&pp->ball, memory_order_acquire) != 2 * k + 2)
        shoal__cpu_relax();
    }
    j->samples[s] = (double)(now_ns() - t0) / j->o->round_trips;
  }
  qsort(j->samples, j->o->samples, sizeof(double), dbl_cmp);
  j->result = j->samples[j->o->samples / 2];
  return NULL;
}

static int measure_pair(const shoal_topo *t, unsigned a, unsigned b,
                        const shoal_latency_opts *o, double *samples,
                        double *out) {
  pingpong *pp = shoal__aligned_alloc(SHOAL__FALSE_SHARING, sizeof *pp);
  pthread_t ta, tb;
  pair_job job;

  if (pp == NULL)
    return SHOAL_ENOMEM;
  atomic_init(&pp->ball, 0);
  atomic_init(&pp->ready, 0);
  atomic_init(&pp->go, 0);
  pp->t = t;
  pp->pu = b;
  pp->rounds = (uint64_t)o->samples * o->round_trips;
  job = (pair_job){.pp = pp, .pu = a, .o = o, .samples = samples};
  if (pthread_create(&tb, NULL, partner_main, pp) != 0) {
    shoal__free(pp);
    return SHOAL_ENOMEM;
  }
  if (pthread_create(&ta, NULL, thrower_main, &job) != 0) {
    /* The partner waits for `go`: release it, then reap it. */
    atomic_store_explicit(&pp->go, -1, memory_order_release);
    pthread_join(tb, NULL);
    shoal__free(pp);
    return SHOAL_ENOMEM;
  }
  pthread_join(ta, NULL);
  pthread_join(tb, NULL);
  shoal__free(pp);
  *out = job.result;
  return job.rc;
}

/* One direction of a pair: runs until their spread is small (3 at
 * least, max_runs at most). */
static int measure_direction(const shoal_topo *t, unsigned a, unsigned b,
                             const shoal_latency_opts *o, double *samples,
                             double *runs, shoal_latency_pair *out) {
  unsigned k = 0;
  int rc = SHOAL_OK;
  while (k < o->max_runs) {
    if ((rc = measure_pair(t, a, b, o, samples, &runs[k])) != SHOAL_OK)
      return rc;
    k++;
    if (k >= 3 || k == o->max_runs) {
      double lo = runs[0], hi = runs[0], mid;
      for (unsigned i = 1; i < k; i++) {
        lo = runs[i] < lo ? runs[i] : lo;
        hi = runs[i] > hi ? runs[i] : hi;
      }
      qsort(runs, k, sizeof *runs, dbl_cmp);
      mid = runs[k / 2];
      *out = (shoal_latency_pair){lo, mid, hi, k};
      if (mid > 0 && (hi - lo) / mid <= o->spread)
        break;
    }
  }
  return rc;
}

int shoal_latency_measure_pairs(const shoal_topo *t, const unsigned *pu_os,
                                unsigned n, shoal_latency_pair *pairs,
                                const shoal_latency_opts *opts) {
  shoal_latency_opts o;
  double *samples, *runs;
  uint64_t deadline;
  unsigned done = 0, total = n * (n - 1);
  int rc = SHOAL_OK;

  if (t == NULL || pu_os == NULL || pairs == NULL || n == 0)
    return SHOAL_EINVAL;
  shoal_latency_opts_defaults(&o);
  if (opts != NULL)
    shoal__copy_opts(&o, sizeof o, opts, opts->struct_size);
  if (o.round_trips == 0 || o.samples == 0 || o.max_runs == 0 ||
      !(o.spread >= 0))
    return SHOAL_EINVAL;
  if (!t->this_system) {
    shoal__log(o.log, o.log_user, SHOAL_LOG_ERROR,
               "latency needs this machine's own topology");
    return SHOAL_ENOTSUP;
  }
  for (unsigned i = 0; i < n; i++) {
    unsigned k;
    for (k = 0; k < t->npu && t->pus[k].os_index != pu_os[i]; k++)
      ;
    if (k == t->npu)
      return SHOAL_EINVAL;
  }
  samples = shoal__calloc(o.samples, sizeof *samples);
  runs = shoal__calloc(o.max_runs, sizeof *runs);
  if (samples == NULL || runs == NULL) {
    shoal__free(samples);
    shoal__free(runs);
    return SHOAL_ENOMEM;
  }
  memset(pairs, 0, (size_t)n * n * sizeof *pairs);
  deadline = o.budget_ms != 0 ? now_ns() + (uint64_t)o.budget_ms * 1000000u
                              : UINT64_MAX;
  for (unsigned i = 0; i < n && rc == SHOAL_OK; i++)
    for (unsigned j = 0; j < n && rc == SHOAL_OK; j++) {
      if (i == j || now_ns() >= deadline)
        continue;
      rc = measure_direction(t, pu_os[i], pu_os[j], &o, samples, runs,
                             &pairs[(size_t)i * n + j]);
      if (rc == SHOAL_EPIN)
        shoal__log(o.log, o.log_user, SHOAL_LOG_ERROR,
                   "the OS refused to bind a thread to PU %u or %u",
                   pu_os[i], pu_os[j]);
      if (o.progress != NULL)
        o.progress(o.progress_user, ++done, total);
    }
  shoal__free(samples);
  shoal__free(runs);
  return rc;
}

int shoal_latency_measure(const shoal_topo *t, const unsigned *pu_os,
                          unsigned n, double *matrix_ns,
                          const shoal_latency_opts *opts) {
  shoal_latency_pair *pairs;
  int rc;
  if (t == NULL || pu_os == NULL || matrix_ns == NULL || n == 0)
    return SHOAL_EINVAL;
  if ((pairs = shoal__calloc((size_t)n * n, sizeof *pairs)) == NULL)
    return SHOAL_ENOMEM;
  rc = shoal_latency_measure_pairs(t, pu_os, n, pairs, opts);
  for (size_t k = 0; k < (size_t)n * n; k++)
    matrix_ns[k] = pairs[k].median_ns;
  shoal__free(pairs);
  return rc;
}
