/* Stateless reset (RFC 9000 §10.3): what a server without the connection
 * answers to a short-header packet, so the peer learns at once that the
 * connection is gone (instead of waiting for its idle timeout). */
#ifndef H3Q_QUIC_STATELESS_RESET_H
#define H3Q_QUIC_STATELESS_RESET_H

#include <stddef.h>
#include <stdint.h>

#include "quic/secrets.h"

/* RFC 9000 §10.3: 5 unpredictable bytes and the 16-byte token at least. */
#define STATELESS_RESET_MIN 21
/* Long enough to look like a short packet with a 16-byte DCID, a packet
 * number and an AEAD tag; RFC 9000 §10.3 suggests 43 for a response to
 * anything larger. */
#define STATELESS_RESET_MAX 43

/* Writes a stateless reset answering a packet of in_len bytes: one byte
 * shorter than it (so two endpoints cannot reset each other in a loop,
 * §10.3.3), at most STATELESS_RESET_MAX, random but for the fixed bit and
 * the token at the end. Returns the length, or 0 when in_len is too small
 * to answer (that packet may itself be a reset) or out_cap too small. */
size_t stateless_reset_build(const uint8_t token[RESET_TOKEN_LEN],
                             size_t in_len, uint8_t *out, size_t out_cap);

/* A token bucket bounding resets per second, so spoofed packets cannot
 * turn the server into a reset generator. */
typedef struct reset_limiter {
  double tokens;
  uint64_t last_ns;
} reset_limiter;

#define RESET_RATE_PER_SEC 100.0
#define RESET_BURST 50.0

/* Whether one more reset may go out at now_ns (takes a token if so). */
int reset_limiter_take(reset_limiter *l, uint64_t now_ns);

#endif
