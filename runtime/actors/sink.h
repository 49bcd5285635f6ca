/* sink.h — reply addresses that other layers own: a session manager
 * attached to an actor system (sessions/requests.c) adds a sink, and
 * replies to addresses of that sink are handed to its function instead of
 * a mailbox. What the layers above may use of the actor room. Internal. */
#ifndef SHOAL_ACTORS_SINK_H
#define SHOAL_ACTORS_SINK_H

#include <stdint.h>

#include "shoal.h"

/* Delivers a reply (m->to is the address, m->from the replier) to the
 * owner of tag. SHOAL_OK when it was taken or counted late. Runs on the
 * replying thread (a handler's worker). */
typedef int (*shoal__sink_fn)(void *ctx, uint64_t tag, shoal_msg *m);

/* The bits a tag may use. */
#define SHOAL__SINK_TAG_BITS 58

/* Adds a sink; *k its number. SHOAL_ELIMIT when all are taken. Any
 * thread. */
int shoal__sink_add(shoal_actors *sys, shoal__sink_fn fn, void *ctx,
                    unsigned *k);
/* Removes sink k, and returns once no delivery to it runs: later replies
 * to its addresses are counted as late. Any thread outside its fn. */
void shoal__sink_remove(shoal_actors *sys, unsigned k);
/* The reply address of tag at sink k. */
uint64_t shoal__sink_address(unsigned k, uint64_t tag);
/* A send with `from` as m has it (shoal_try_send without the copy). */
int shoal__send(shoal_actors *sys, uint64_t to, shoal_msg *m);

#endif /* SHOAL_ACTORS_SINK_H */
