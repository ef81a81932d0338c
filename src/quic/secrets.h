/* Keys derived from one server secret (h3q_config.secret / secret_file):
 * Retry-token sealing, stateless-reset tokens, connection IDs and TLS
 * session tickets. Processes that share the secret accept each other's
 * tokens and tickets and can reset each other's connections; without one
 * every key is random for the process. */
#ifndef H3Q_QUIC_SECRETS_H
#define H3Q_QUIC_SECRETS_H

#include <sodium.h>
#include <stddef.h>
#include <stdint.h>

#define SECRET_MIN_LEN 32
#define RESET_TOKEN_LEN 16
#define TICKET_KEY_BYTES 48

typedef struct quic_secrets {
  uint8_t cid[crypto_auth_hmacsha256_KEYBYTES];   /* initial SCIDs */
  uint8_t reset[crypto_auth_hmacsha256_KEYBYTES]; /* stateless-reset tokens */
  uint8_t token[crypto_aead_xchacha20poly1305_ietf_KEYBYTES]; /* address
                                                                 tokens */
  uint8_t ticket[TICKET_KEY_BYTES]; /* TLS session-ticket key */
} quic_secrets;

/* Derives every key from secret (at least SECRET_MIN_LEN bytes; any
 * length is hashed down first). Returns 0, or -1 when secret is too
 * short. */
int secrets_derive(quic_secrets *s, const uint8_t *secret, size_t len);

/* Fresh random keys for this process only. */
void secrets_random(quic_secrets *s);

/* The stateless-reset token for one of our connection IDs:
 * HMAC-SHA256(reset key, cid) truncated to 16 bytes (RFC 9000 §10.3.2). */
void secrets_reset_token(const quic_secrets *s, const uint8_t *cid,
                         size_t cid_len, uint8_t out[RESET_TOKEN_LEN]);

#endif
