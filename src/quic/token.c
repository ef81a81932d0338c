#include "quic/token.h"

#include <netinet/in.h>
#include <sodium.h>
#include <string.h>
#include <time.h>

#define NONCE_LEN crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define TAG_LEN crypto_aead_xchacha20poly1305_ietf_ABYTES
#define PLAIN_MAX (8 + 1 + CID_MAX_LEN)
/* kind, family, 16 address bytes, port */
#define AD_MAX (1 + 1 + 16 + 2)

/* The associated data: the kind and the client's address, and its port for
 * a Retry token (a NEW_TOKEN token comes back from another port). */
static size_t address_ad(uint8_t kind, const struct sockaddr *addr,
                         uint8_t ad[AD_MAX]) {
  bool with_port = kind == TOKEN_KIND_RETRY;
  size_t n = 0;
  ad[n++] = kind;
  if (addr->sa_family == AF_INET6) {
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)addr;
    ad[n++] = 6;
    memcpy(ad + n, &a->sin6_addr, 16);
    n += 16;
    if (with_port)
      memcpy(ad + n, &a->sin6_port, 2);
  } else {
    const struct sockaddr_in *a = (const struct sockaddr_in *)addr;
    ad[n++] = 4;
    memcpy(ad + n, &a->sin_addr, 4);
    n += 4;
    if (with_port)
      memcpy(ad + n, &a->sin_port, 2);
  }
  return with_port ? n + 2 : n;
}

static void put_u64(uint8_t *p, uint64_t v) {
  for (int i = 7; i >= 0; i--, v >>= 8)
    p[i] = (uint8_t)v;
}

static uint64_t get_u64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++)
    v = v << 8 | p[i];
  return v;
}

size_t token_seal(const uint8_t *key, uint8_t kind, const struct sockaddr *addr,
                  const uint8_t *odcid, size_t odcid_len, uint64_t now_ms,
                  uint8_t *out, size_t out_cap) {
  if (out_cap < TOKEN_MAX_LEN || odcid_len > CID_MAX_LEN)
    return 0;
  uint8_t plain[PLAIN_MAX], ad[AD_MAX];
  put_u64(plain, now_ms);
  plain[8] = (uint8_t)odcid_len;
  if (odcid_len) /* NEW_TOKEN tokens carry none (odcid may be NULL) */
    memcpy(plain + 9, odcid, odcid_len);
  size_t ad_len = address_ad(kind, addr, ad);
  out[0] = kind;
  randombytes_buf(out + 1, NONCE_LEN);
  unsigned long long sealed = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(out + 1 + NONCE_LEN, &sealed,
                                             plain, 9 + odcid_len, ad, ad_len,
                                             NULL, out + 1, key);
  return 1 + NONCE_LEN + (size_t)sealed;
}

token_result token_open(const uint8_t *key, uint8_t kind,
                        const struct sockaddr *addr, const uint8_t *token,
                        size_t token_len, uint64_t now_ms, uint64_t lifetime_ms,
                        uint8_t *odcid, size_t *odcid_len) {
  if (token_len < 1 + NONCE_LEN + 9 + TAG_LEN || token_len > TOKEN_MAX_LEN ||
      token[0] != kind)
    return TOKEN_MALFORMED;
  uint8_t plain[PLAIN_MAX], ad[AD_MAX];
  size_t ad_len = address_ad(kind, addr, ad);
  unsigned long long plain_len = 0;
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(
          plain, &plain_len, NULL, token + 1 + NONCE_LEN,
          token_len - 1 - NONCE_LEN, ad, ad_len, token + 1, key) != 0)
    return TOKEN_FORGED;
  /* Authentic, so the layout is ours; still check it. */
  if (plain_len < 9 || plain[8] > CID_MAX_LEN || plain_len != 9u + plain[8])
    return TOKEN_MALFORMED;
  uint64_t made = get_u64(plain);
  if (made > now_ms + TOKEN_CLOCK_SKEW_MS ||
      (now_ms > made && now_ms - made > lifetime_ms))
    return TOKEN_EXPIRED;
  *odcid_len = plain[8];
  memcpy(odcid, plain + 9, plain[8]);
  return TOKEN_OK;
}

uint64_t token_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}
