/* hib.h — what hibernate/hib.c shows the rest of the library and its
 * tests; the API itself is in shoal.h ("Hibernation"). Internal. */
#ifndef SHOAL_HIBERNATE_HIB_H
#define SHOAL_HIBERNATE_HIB_H

#include <stddef.h>
#include <stdint.h>

#include "shoal.h"

/* A hibernated session's record (its bytes as record.h lays them out) and
 * their length, or NULL: for tests that corrupt one on purpose. The
 * caller makes sure no update, wake or release runs meanwhile. */
unsigned char *shoal__hib_record_of(shoal_mgr *mgr, uint32_t id,
                                    size_t *len);

#endif /* SHOAL_HIBERNATE_HIB_H */
