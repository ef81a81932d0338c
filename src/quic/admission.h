/* Admission of new connections: when a client must first prove its
 * address with a Retry (RFC 9000 §8.1.2) before the server spends a
 * connection on it, and when the server is too busy even for that.
 *
 * Retry is in force always with enable_retry; otherwise under load: while
 * retry_auto_threshold or more handshakes from unvalidated addresses are
 * in progress (a flood that the server keeps up with, whose half-open
 * connections would pile up), and for a second after the socket's receive
 * queue had a backlog (a flood faster than the server, where every
 * accepted Initial would cost the handshake crypto of a connection that
 * never completes while the packets of established connections wait
 * behind it; the second keeps the decision from flipping with every read
 * while the flood goes on). A flood
 * of Initials, spoofed or not, then costs one stateless Retry each; a
 * normal client pays one round trip, and without load nothing.
 *
 * A Retry still costs the server more than its Initial cost the sender (a
 * sealed token, the Retry's integrity tag, a datagram out), so a fast
 * flood can outrun even the Retries and overflow the receive queue, where
 * the packets of established connections are lost with the flood's.
 * While the queue has a backlog, at most a budget of Retries goes out per
 * read batch and the other Initials that would get one are dropped before
 * any crypto: the queue drains at the speed of reading.
 *
 * Bookkeeping only: the endpoint reads the socket, keeps the time and
 * sends. */
#ifndef H3Q_QUIC_ADMISSION_H
#define H3Q_QUIC_ADMISSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "h3q.h"

typedef struct admission {
  bool retry_always;    /* h3q_config.enable_retry */
  size_t auto_at;       /* h3q_config.retry_auto_threshold; 0 = never */
  size_t unvalidated;   /* handshakes in progress, address not validated */
  bool under_load;      /* Retry because of auto_at, until the count fell */
  uint64_t load_events; /* times under_load was entered (log bound) */
  bool backlog;         /* the last read left a backlog in the socket */
  size_t retry_budget;  /* Retries left until the next read (backlog) */
  uint64_t now_ns;      /* of the last read */
  uint64_t pressure_until_ns; /* Retry because of a recent backlog */
  h3q_server_stats *stats;    /* handshakes_unvalidated, retries_under_load */
} admission;

/* Starts with no handshake in progress and no backlog. stats is
 * borrowed. */
void admission_init(admission *a, bool retry_always, size_t auto_at,
                    h3q_server_stats *stats);

/* Whether a new connection without a valid token gets a Retry first. */
bool admission_wants_retry(const admission *a);

/* Whether the endpoint should look for a backlog after a full read (it
 * matters only when Retry may be in force). */
bool admission_watches_backlog(const admission *a);

/* A read batch was taken from the socket at now_ns (monotonic); backlog:
 * the receive queue still holds more than a few hundred datagrams. With
 * a backlog, at most budget Retries are sent until the next read. */
void admission_batch_read(admission *a, bool backlog, size_t budget,
                          uint64_t now_ns);

/* Whether the Retry for a new connection may go out now (takes one from
 * the budget); false: drop its Initial. */
bool admission_take_retry(admission *a);

/* Whether a new connection without a token would be refused now (a
 * backlog, and no Retry left in this read's budget): its Initial may be
 * dropped before any parsing (quic/rx_shed.h). */
bool admission_sheds(const admission *a);

/* A Retry was sent for a new connection (counts those sent under load). */
void admission_retry_sent(admission *a);

/* A connection was accepted without a validated address (no Retry token):
 * its handshake counts until admission_handshake_ended. */
void admission_handshake_started(admission *a);

/* That handshake completed (the address is validated) or the connection
 * is gone before it did. */
void admission_handshake_ended(admission *a);

#endif
