/* A count of the datagram reads of every thread, for caches of things that
 * can change outside the process (files).
 *
 * A request arrives in a read, and the read advances the epoch before the
 * request is handled. A check of a file made at epoch E therefore
 * happened after every read that counted up to E, so it saw every change
 * that happened before any request of those reads was sent. A cache may
 * trust a check for as long as the epoch has not moved: no request it
 * answers can have been sent after a change that the check missed. Many
 * requests of one read (or of several threads' reads between two
 * advances) share one check instead of one each. */
#ifndef H3Q_UTIL_IO_EPOCH_H
#define H3Q_UTIL_IO_EPOCH_H

#include <stdint.h>

/* The current epoch; load it before the check it stamps. */
uint64_t io_epoch_now(void);

/* Called after each read of datagrams, before they are handled. */
void io_epoch_advance(void);

#endif
