/* members.c — who is on each map and in each group (members.h): 64
 * stripes by the key's hash, each a reader-writer lock over the lists of
 * its keys, sorted by key (a binary search finds one). A list is an
 * unordered array of ids: a member joins at the end and leaves by having
 * the last one take its place, so both are O(1) given its position, which
 * the manager keeps in the session's record. */
#include <string.h>

#include "sessions/members.h"

static shoal__mstripe *stripe_of(shoal__members *m, uint32_t key) {
  return &m->s[(key * UINT32_C(0x9E3779B9)) >> 26];
}

_Static_assert(SHOAL__MSTRIPES == 64, "stripe_of takes the top 6 bits");

int shoal__members_init(shoal__members *m) {
  pthread_rwlockattr_t a;
  int rc = SHOAL_OK;
  memset(m, 0, sizeof *m);
  if (pthread_rwlockattr_init(&a) != 0)
    return SHOAL_ENOMEM;
#ifdef __GLIBC__
  /* Writers first: broadcasts to a busy map come one after another, and a
   * member's release (holding the manager's lock) must not wait behind an
   * endless stream of them. No reader takes a stripe twice. */
  (void)pthread_rwlockattr_setkind_np(
      &a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
#endif
  for (unsigned k = 0; k < SHOAL__MSTRIPES; k++)
    if (pthread_rwlock_init(&m->s[k].lock, &a) != 0) {
      while (k-- > 0)
        pthread_rwlock_destroy(&m->s[k].lock);
      rc = SHOAL_ENOMEM;
      break;
    }
  pthread_rwlockattr_destroy(&a);
  return rc;
}

void shoal__members_destroy(shoal__members *m) {
  for (unsigned k = 0; k < SHOAL__MSTRIPES; k++) {
    shoal__mstripe *s = &m->s[k];
    for (uint32_t i = 0; i < s->n; i++)
      shoal__free(s->lists[i].ids);
    shoal__free(s->lists);
    pthread_rwlock_destroy(&s->lock);
  }
  memset(m, 0, sizeof *m);
}

/* Where key is in s's lists, or where it would go. */
static uint32_t search(const shoal__mstripe *s, uint32_t key) {
  uint32_t lo = 0, hi = s->n;
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    if (s->lists[mid].key < key)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

static int grow(void **p, uint32_t *cap, size_t elem) {
  uint32_t n = *cap != 0 ? *cap * 2 : 4;
  void *q = shoal__realloc(*p, (size_t)n * elem);
  if (q == NULL)
    return SHOAL_ENOMEM;
  *p = q;
  *cap = n;
  return SHOAL_OK;
}

int shoal__members_add(shoal__members *m, uint32_t key, uint32_t id,
                       uint32_t *pos) {
  shoal__mstripe *s = stripe_of(m, key);
  shoal__mlist *l;
  uint32_t at;
  int rc = SHOAL_OK;
  pthread_rwlock_wrlock(&s->lock);
  at = search(s, key);
  if (at == s->n || s->lists[at].key != key) {
    if (s->n == s->cap &&
        (rc = grow((void **)&s->lists, &s->cap, sizeof *s->lists)) != SHOAL_OK)
      goto out;
    memmove(&s->lists[at + 1], &s->lists[at],
            (s->n - at) * sizeof *s->lists);
    s->lists[at] = (shoal__mlist){key, 0, 0, NULL};
    s->n++;
    m->keys++;
  }
  l = &s->lists[at];
  if (l->n == l->cap &&
      (rc = grow((void **)&l->ids, &l->cap, sizeof *l->ids)) != SHOAL_OK) {
    if (l->n == 0) { /* just made: taken out again */
      memmove(&s->lists[at], &s->lists[at + 1],
              (s->n - at - 1) * sizeof *s->lists);
      s->n--;
      m->keys--;
    }
    goto out;
  }
  *pos = l->n;
  l->ids[l->n++] = id;
out:
  pthread_rwlock_unlock(&s->lock);
  return rc;
}

uint32_t shoal__members_remove(shoal__members *m, uint32_t key, uint32_t pos) {
  shoal__mstripe *s = stripe_of(m, key);
  uint32_t at, moved = 0;
  shoal__mlist *l;
  pthread_rwlock_wrlock(&s->lock);
  at = search(s, key);
  l = &s->lists[at];
  if (--l->n != pos)
    l->ids[pos] = moved = l->ids[l->n];
  if (l->n == 0) {
    shoal__free(l->ids);
    memmove(&s->lists[at], &s->lists[at + 1],
            (s->n - at - 1) * sizeof *s->lists);
    s->n--;
    m->keys--;
  }
  pthread_rwlock_unlock(&s->lock);
  return moved;
}

const shoal__mlist *shoal__members_lock(shoal__members *m, uint32_t key) {
  shoal__mstripe *s = stripe_of(m, key);
  uint32_t at;
  pthread_rwlock_rdlock(&s->lock);
  at = search(s, key);
  return at < s->n && s->lists[at].key == key ? &s->lists[at] : NULL;
}

void shoal__members_unlock(shoal__members *m, uint32_t key) {
  pthread_rwlock_unlock(&stripe_of(m, key)->lock);
}

void shoal__members_each(shoal__members *m,
                         void (*f)(void *arg, const shoal__mlist *l),
                         void *arg) {
  for (unsigned k = 0; k < SHOAL__MSTRIPES; k++) {
    shoal__mstripe *s = &m->s[k];
    pthread_rwlock_rdlock(&s->lock);
    for (uint32_t i = 0; i < s->n; i++)
      f(arg, &s->lists[i]);
    pthread_rwlock_unlock(&s->lock);
  }
}
