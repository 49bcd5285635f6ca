/* topic.c — publish-subscribe: a topic is a fixed array of subscriber
 * references (record slot and generation, and an active bit), so
 * publishing resolves nothing by id and takes no lock: it walks the array
 * and pushes into each mailbox, announcing work to the runtime once at the
 * end. Subscribing and unsubscribing write single entries under the
 * topic's mutex.
 *
 * An actor keeps one entry per topic for as long as it is registered:
 * unsubscribing clears the active bit, subscribing again sets it on the
 * same entry. One publish can therefore never reach an actor twice (as it
 * could if a re-subscription took a later entry while the publish walked
 * past the earlier one). Entries of unregistered actors fail their
 * generation check and are reused first; inactive ones of live actors are
 * taken back only when the topic is otherwise full. */
#include "runtime/actors/actor.h"

#define ACTIVE (UINT64_C(1) << 63)

struct shoal_topic {
  shoal_actors *sys;
  pthread_mutex_t mu;
  unsigned cap;
  _Atomic unsigned used;  /* entries [0, used) may be set */
  _Atomic uint64_t *subs; /* ACTIVE | (gen << 32) | (slot + 1); 0 free */
};

static uint64_t ref_of(const shoal_actor *a, uint64_t gen) {
  return ((gen & SHOAL__MPSC_GEN_MASK) << 32) | ((uint64_t)a->slot + 1);
}

/* The actor a reference names while it is still that registration, with
 * its generation; NULL otherwise. */
static shoal_actor *deref(shoal_actors *sys, uint64_t ref, uint64_t *gen) {
  shoal_actor *a;
  uint64_t g;
  if ((ref & ~ACTIVE) == 0)
    return NULL;
  a = &sys->recs[(ref & 0xffffffffu) - 1];
  g = (ref & ~ACTIVE) >> 32;
  /* acquire: the registration's fields before we push and read its id. */
  if (shoal__mpsc_gen(atomic_load_explicit(&a->box.tail,
                                           memory_order_acquire)) != g)
    return NULL;
  *gen = g;
  return a;
}
int shoal_topic_create(shoal_actors *sys, shoal_topic **out,
                       unsigned capacity) {
  shoal_topic *t;
  if (out == NULL)
    return SHOAL_EINVAL;
  *out = NULL;
  if (sys == NULL || capacity == 0 || capacity > (1u << 24))
    return SHOAL_EINVAL;
  t = shoal__calloc(1, sizeof *t);
  if (t == NULL)
    return SHOAL_ENOMEM;
  t->subs = shoal__calloc(capacity, sizeof *t->subs);
  if (t->subs == NULL) {
    shoal__free(t);
    return SHOAL_ENOMEM;
  }
  t->sys = sys;
  t->cap = capacity;
  atomic_init(&t->used, 0);
  pthread_mutex_init(&t->mu, NULL);
  *out = t;
  return SHOAL_OK;
}

void shoal_topic_destroy(shoal_topic *t) {
  if (t == NULL)
    return;
  pthread_mutex_destroy(&t->mu);
  shoal__free((void *)t->subs);
  shoal__free(t);
}

/* The entry of the current registration of id (active or not), or -1.
 * Under t->mu. */
static long find_entry(shoal_topic *t, uint64_t id) {
  unsigned used = atomic_load_explicit(&t->used, memory_order_relaxed);
  for (unsigned i = 0; i < used; i++) {
    uint64_t gen, r = atomic_load_explicit(&t->subs[i], memory_order_relaxed);
    shoal_actor *a = deref(t->sys, r, &gen);
    if (a != NULL && atomic_load_explicit(&a->id, memory_order_relaxed) == id)
      return (long)i;
  }
  return -1;
}

/* An entry for a new subscriber: free or of an unregistered actor first,
 * else an inactive one; -1 when every entry is active. Under t->mu. */
static long free_entry(shoal_topic *t) {
  unsigned used = atomic_load_explicit(&t->used, memory_order_relaxed);
  long inactive = -1;
  for (unsigned i = 0; i < used; i++) {
    uint64_t g, r = atomic_load_explicit(&t->subs[i], memory_order_relaxed);
    if (deref(t->sys, r, &g) == NULL)
      return (long)i;
    if (!(r & ACTIVE) && inactive < 0)
      inactive = (long)i;
  }
  if (used < t->cap)
    return (long)used;
  return inactive;
}

int shoal_topic_subscribe(shoal_topic *t, uint64_t id) {
  shoal_actor *a;
  uint64_t gen;
  unsigned used;
  long i;
  if (t == NULL)
    return SHOAL_EINVAL;
  pthread_mutex_lock(&t->mu);
  a = shoal__router_find(t->sys, id);
  gen = a != NULL ? shoal__mpsc_gen(atomic_load_explicit(
                        &a->box.tail, memory_order_acquire))
                  : 1;
  if (a == NULL || (gen & 1) ||
      atomic_load_explicit(&a->id, memory_order_relaxed) != id) {
    pthread_mutex_unlock(&t->mu);
    return SHOAL_ENOENT;
  }
  if ((i = find_entry(t, id)) >= 0 &&
      (atomic_load_explicit(&t->subs[i], memory_order_relaxed) & ACTIVE)) {
    pthread_mutex_unlock(&t->mu);
    return SHOAL_EEXIST;
  }
  if (i < 0 && (i = free_entry(t)) < 0) {
    pthread_mutex_unlock(&t->mu);
    return SHOAL_ELIMIT;
  }
  /* relaxed: publishers check the generation through the record. */
  atomic_store_explicit(&t->subs[i], ACTIVE | ref_of(a, gen),
                        memory_order_relaxed);
  used = atomic_load_explicit(&t->used, memory_order_relaxed);
  if ((unsigned)i == used) /* release: the entry before the count */
    atomic_store_explicit(&t->used, used + 1, memory_order_release);
  pthread_mutex_unlock(&t->mu);
  return SHOAL_OK;
}

int shoal_topic_unsubscribe(shoal_topic *t, uint64_t id) {
  long i;
  uint64_t r = 0;
  if (t == NULL)
    return SHOAL_EINVAL;
  pthread_mutex_lock(&t->mu);
  i = find_entry(t, id);
  if (i >= 0)
    r = atomic_load_explicit(&t->subs[i], memory_order_relaxed);
  if (r & ACTIVE)
    atomic_store_explicit(&t->subs[i], r & ~ACTIVE, memory_order_relaxed);
  pthread_mutex_unlock(&t->mu);
  return (r & ACTIVE) ? SHOAL_OK : SHOAL_ENOENT;
}

int shoal_topic_publish(shoal_topic *t, const shoal_msg *m,
                        unsigned *delivered) {
  shoal_runtime *rt;
  unsigned used, ok = 0;
  shoal_msg c;
  if (delivered != NULL)
    *delivered = 0;
  if (t == NULL || m == NULL)
    return SHOAL_EINVAL;
  rt = t->sys->rt;
  c = *m;
  c.time_ns = shoal__fast_ns(); /* one stamp for every subscriber */
  used = atomic_load_explicit(&t->used, memory_order_acquire);
  /* The subscribers' next cells first, all at once (their lines were
   * last touched a lap of each ring ago): the pushes below then find them
   * on their way instead of missing one after another. */
  for (unsigned i = 0; i < used; i++) {
    uint64_t gen, r = atomic_load_explicit(&t->subs[i], memory_order_relaxed);
    shoal_actor *a = (r & ACTIVE) ? deref(t->sys, r, &gen) : NULL;
    if (a != NULL)
      shoal__mailbox_prefetch_push(&a->box);
  }
  for (unsigned i = 0; i < used; i++) {
    uint64_t gen, r = atomic_load_explicit(&t->subs[i], memory_order_relaxed);
    shoal_actor *a = (r & ACTIVE) ? deref(t->sys, r, &gen) : NULL;
    if (a == NULL)
      continue;
    c.to = atomic_load_explicit(&a->id, memory_order_relaxed);
    if (shoal__actor_push(a, gen, &c, 1) == SHOAL_OK)
      ok++;
  }
  if (ok != 0 && shoal__current(rt) != NULL)
    shoal__signal_work(rt); /* once for every subscriber it scheduled */
  if (delivered != NULL)
    *delivered = ok;
  return SHOAL_OK;
}
