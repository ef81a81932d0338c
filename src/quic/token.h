/* Address-validation tokens (RFC 9000 §8.1): sealed with an AEAD under the
 * server's token key, so a server keeps no state per Retry. A token holds
 * the time it was made and the client's original DCID; the client's
 * address is bound as associated data, so a token used from another
 * address does not open. Retry tokens bind address and port and live
 * briefly; NEW_TOKEN tokens (RFC 9000 §8.1.3, for a later connection)
 * bind the IP address only, since a returning client has a new port, and
 * live for h3q_config.new_token_lifetime; they carry no DCID. */
#ifndef H3Q_QUIC_TOKEN_H
#define H3Q_QUIC_TOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "quic/conn_table.h"

#define TOKEN_KIND_RETRY 0x52     /* 'R' */
#define TOKEN_KIND_NEW_TOKEN 0x4e /* 'N' */
/* A Retry token is good this long after it was made: a client answers a
 * Retry within one round trip. */
#define RETRY_TOKEN_LIFETIME_MS 10000u
/* Tokens made "in the future" by a peer server with a clock ahead of ours
 * are accepted within this skew. */
#define TOKEN_CLOCK_SKEW_MS 2000u
/* kind + nonce + sealed(time, odcid length, odcid) + tag */
#define TOKEN_MAX_LEN (1 + 24 + 8 + 1 + CID_MAX_LEN + 16)

typedef enum token_result {
  TOKEN_OK,
  TOKEN_MALFORMED, /* not one of ours: wrong size or kind */
  TOKEN_FORGED,    /* does not open: tampered, other key or other address */
  TOKEN_EXPIRED,   /* ours, from this address, but too old (or too new) */
} token_result;

/* Writes a token of kind for the client at addr with its original DCID
 * (odcid may be NULL when odcid_len is 0), made at now_ms (wall clock,
 * milliseconds since the epoch). Returns its length, or 0 when out_cap <
 * TOKEN_MAX_LEN or odcid is too long. */
size_t token_seal(const uint8_t *key, uint8_t kind, const struct sockaddr *addr,
                  const uint8_t *odcid, size_t odcid_len, uint64_t now_ms,
                  uint8_t *out, size_t out_cap);

/* Opens a token of kind presented by addr at now_ms, valid lifetime_ms
 * after it was made. On TOKEN_OK the original DCID is in odcid (at least
 * CID_MAX_LEN bytes) and *odcid_len. */
token_result token_open(const uint8_t *key, uint8_t kind,
                        const struct sockaddr *addr, const uint8_t *token,
                        size_t token_len, uint64_t now_ms, uint64_t lifetime_ms,
                        uint8_t *odcid, size_t *odcid_len);

/* Milliseconds since the epoch (tokens cross restarts and machines, so a
 * monotonic clock would not do). */
uint64_t token_now_ms(void);

#endif
