#include "quic/secrets.h"

#include <string.h>

/* crypto_kdf's context: 8 bytes naming the purpose of each subkey. */
static const char KDF_CONTEXT[crypto_kdf_CONTEXTBYTES] = {'h', '3', 'q', 's',
                                                          'e', 'c', 'r', 't'};
enum { SUBKEY_CID = 1, SUBKEY_RESET, SUBKEY_TOKEN, SUBKEY_TICKET };

int secrets_derive(quic_secrets *s, const uint8_t *secret, size_t len) {
  if (!secret || len < SECRET_MIN_LEN || sodium_init() < 0)
    return -1;
  /* The secret may be any length >= 32: hash it to crypto_kdf's master
   * key size so every byte counts. */
  uint8_t master[crypto_kdf_KEYBYTES];
  crypto_generichash(master, sizeof master, secret, len, NULL, 0);
  crypto_kdf_derive_from_key(s->cid, sizeof s->cid, SUBKEY_CID, KDF_CONTEXT,
                             master);
  crypto_kdf_derive_from_key(s->reset, sizeof s->reset, SUBKEY_RESET,
                             KDF_CONTEXT, master);
  crypto_kdf_derive_from_key(s->token, sizeof s->token, SUBKEY_TOKEN,
                             KDF_CONTEXT, master);
  crypto_kdf_derive_from_key(s->ticket, sizeof s->ticket, SUBKEY_TICKET,
                             KDF_CONTEXT, master);
  sodium_memzero(master, sizeof master);
  return 0;
}

void secrets_random(quic_secrets *s) {
  randombytes_buf(s, sizeof *s);
}

void secrets_reset_token(const quic_secrets *s, const uint8_t *cid,
                         size_t cid_len, uint8_t out[RESET_TOKEN_LEN]) {
  uint8_t mac[crypto_auth_hmacsha256_BYTES];
  crypto_auth_hmacsha256(mac, cid, cid_len, s->reset);
  memcpy(out, mac, RESET_TOKEN_LEN);
}
