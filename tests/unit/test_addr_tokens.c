/* Unit tests for the server-secret keys (quic/secrets.h), address tokens
 * (quic/token.h) and stateless resets (quic/stateless_reset.h): tokens
 * open only for the address, key and kind they were made for and only
 * within their lifetime (Retry tokens for address and port, NEW_TOKEN
 * tokens for the address only); keys and reset tokens follow the secret. */
#include "check.h"
#include "quic/secrets.h"
#include "quic/stateless_reset.h"
#include "quic/token.h"

#include <arpa/inet.h>
#include <sodium.h>
#include <string.h>

static struct sockaddr_in v4(const char *ip, uint16_t port) {
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  inet_pton(AF_INET, ip, &a.sin_addr);
  return a;
}

static struct sockaddr_in6 v6(const char *ip, uint16_t port) {
  struct sockaddr_in6 a;
  memset(&a, 0, sizeof a);
  a.sin6_family = AF_INET6;
  a.sin6_port = htons(port);
  inet_pton(AF_INET6, ip, &a.sin6_addr);
  return a;
}

#define T0 1800000000000ull /* a wall-clock time in ms */
#define SA(a) ((const struct sockaddr *)&(a))

static token_result open_at(const quic_secrets *s, const struct sockaddr *addr,
                            const uint8_t *tok, size_t len, uint64_t now,
                            uint8_t *odcid, size_t *odcid_len) {
  return token_open(s->token, TOKEN_KIND_RETRY, addr, tok, len, now,
                    RETRY_TOKEN_LIFETIME_MS, odcid, odcid_len);
}

static void test_token_roundtrip(void) {
  quic_secrets s;
  secrets_random(&s);
  struct sockaddr_in a = v4("127.0.0.1", 4000);
  const uint8_t odcid[] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  uint8_t tok[TOKEN_MAX_LEN], got[CID_MAX_LEN];
  size_t len = token_seal(s.token, TOKEN_KIND_RETRY, SA(a), odcid, sizeof odcid,
                          T0, tok, sizeof tok);
  CHECK(len > 0 && len <= TOKEN_MAX_LEN);
  size_t got_len = 0;
  CHECK(open_at(&s, SA(a), tok, len, T0 + 5, got, &got_len) == TOKEN_OK);
  CHECK(got_len == sizeof odcid && memcmp(got, odcid, sizeof odcid) == 0);
  /* Two tokens for the same input differ (random nonce). */
  uint8_t tok2[TOKEN_MAX_LEN];
  size_t len2 = token_seal(s.token, TOKEN_KIND_RETRY, SA(a), odcid,
                           sizeof odcid, T0, tok2, sizeof tok2);
  CHECK(len2 == len && memcmp(tok, tok2, len) != 0);
  /* A 20-byte (maximum) DCID and an empty one. */
  uint8_t big[CID_MAX_LEN];
  memset(big, 0xab, sizeof big);
  len = token_seal(s.token, TOKEN_KIND_RETRY, SA(a), big, sizeof big, T0, tok,
                   sizeof tok);
  CHECK(open_at(&s, SA(a), tok, len, T0, got, &got_len) == TOKEN_OK &&
        got_len == CID_MAX_LEN);
  CHECK(token_seal(s.token, TOKEN_KIND_RETRY, SA(a), big, CID_MAX_LEN + 1, T0,
                   tok, sizeof tok) == 0);
  CHECK(token_seal(s.token, TOKEN_KIND_RETRY, SA(a), big, 8, T0, tok,
                   TOKEN_MAX_LEN - 1) == 0);
}

static void test_token_expiry(void) {
  quic_secrets s;
  secrets_random(&s);
  struct sockaddr_in a = v4("127.0.0.1", 4000);
  const uint8_t odcid[8] = {7};
  uint8_t tok[TOKEN_MAX_LEN], got[CID_MAX_LEN];
  size_t got_len;
  size_t len = token_seal(s.token, TOKEN_KIND_RETRY, SA(a), odcid, 8, T0, tok,
                          sizeof tok);
  CHECK(open_at(&s, SA(a), tok, len, T0 + RETRY_TOKEN_LIFETIME_MS, got,
                &got_len) == TOKEN_OK);
  CHECK(open_at(&s, SA(a), tok, len, T0 + RETRY_TOKEN_LIFETIME_MS + 1, got,
                &got_len) == TOKEN_EXPIRED);
  CHECK(open_at(&s, SA(a), tok, len, T0 + 3600000, got, &got_len) ==
        TOKEN_EXPIRED);
  /* Made by a server whose clock is ahead: a little is tolerated. */
  CHECK(open_at(&s, SA(a), tok, len, T0 - TOKEN_CLOCK_SKEW_MS, got, &got_len) ==
        TOKEN_OK);
  CHECK(open_at(&s, SA(a), tok, len, T0 - TOKEN_CLOCK_SKEW_MS - 1, got,
                &got_len) == TOKEN_EXPIRED);
}

static void test_token_binding(void) {
  quic_secrets s, other;
  secrets_random(&s);
  secrets_random(&other);
  struct sockaddr_in a = v4("127.0.0.1", 4000);
  struct sockaddr_in other_port = v4("127.0.0.1", 4001);
  struct sockaddr_in other_ip = v4("127.0.0.2", 4000);
  struct sockaddr_in6 a6 = v6("::1", 4000);
  const uint8_t odcid[8] = {1, 2, 3};
  uint8_t tok[TOKEN_MAX_LEN], got[CID_MAX_LEN];
  size_t got_len;
  size_t len = token_seal(s.token, TOKEN_KIND_RETRY, SA(a), odcid, 8, T0, tok,
                          sizeof tok);
  CHECK(open_at(&s, SA(other_port), tok, len, T0, got, &got_len) ==
        TOKEN_FORGED);
  CHECK(open_at(&s, SA(other_ip), tok, len, T0, got, &got_len) == TOKEN_FORGED);
  CHECK(open_at(&s, SA(a6), tok, len, T0, got, &got_len) == TOKEN_FORGED);
  CHECK(open_at(&other, SA(a), tok, len, T0, got, &got_len) == TOKEN_FORGED);
  /* IPv6 tokens work the same way. */
  size_t len6 = token_seal(s.token, TOKEN_KIND_RETRY, SA(a6), odcid, 8, T0, tok,
                           sizeof tok);
  CHECK(open_at(&s, SA(a6), tok, len6, T0, got, &got_len) == TOKEN_OK);
  CHECK(open_at(&s, SA(a), tok, len6, T0, got, &got_len) == TOKEN_FORGED);
}

static void test_token_tampering(void) {
  quic_secrets s;
  secrets_random(&s);
  struct sockaddr_in a = v4("10.1.2.3", 443);
  const uint8_t odcid[8] = {9, 9, 9};
  uint8_t tok[TOKEN_MAX_LEN], got[CID_MAX_LEN];
  size_t got_len;
  size_t len = token_seal(s.token, TOKEN_KIND_RETRY, SA(a), odcid, 8, T0, tok,
                          sizeof tok);
  /* Every single-bit flip after the kind byte is caught by the AEAD; a
   * flip of the kind byte makes it not ours at all. */
  int caught = 0;
  for (size_t i = 0; i < len; i++) {
    tok[i] ^= 0x01;
    token_result r = open_at(&s, SA(a), tok, len, T0, got, &got_len);
    caught += r == (i == 0 ? TOKEN_MALFORMED : TOKEN_FORGED);
    tok[i] ^= 0x01;
  }
  CHECK(caught == (int)len);
  CHECK(open_at(&s, SA(a), tok, len, T0, got, &got_len) == TOKEN_OK);
  CHECK(open_at(&s, SA(a), tok, len - 1, T0, got, &got_len) == TOKEN_FORGED);
  CHECK(open_at(&s, SA(a), tok, 10, T0, got, &got_len) == TOKEN_MALFORMED);
  CHECK(open_at(&s, SA(a), tok, 0, T0, got, &got_len) == TOKEN_MALFORMED);
  uint8_t junk[TOKEN_MAX_LEN];
  randombytes_buf(junk, sizeof junk);
  junk[0] = TOKEN_KIND_RETRY;
  CHECK(open_at(&s, SA(a), junk, sizeof junk, T0, got, &got_len) ==
        TOKEN_FORGED);
}

/* NEW_TOKEN tokens: bound to the IP address but not the port, their own
 * lifetime, no DCID, and never taken for a Retry token or the reverse. */
static void test_new_token_kind(void) {
  quic_secrets s, other;
  secrets_random(&s);
  secrets_random(&other);
  const uint64_t day = 86400000ull;
  struct sockaddr_in a = v4("127.0.0.1", 4000);
  struct sockaddr_in new_port = v4("127.0.0.1", 5000);
  struct sockaddr_in other_ip = v4("127.0.0.2", 4000);
  struct sockaddr_in6 a6 = v6("::1", 4000), a6_port = v6("::1", 6000);
  uint8_t tok[TOKEN_MAX_LEN], got[CID_MAX_LEN];
  size_t got_len = 99;
  size_t len = token_seal(s.token, TOKEN_KIND_NEW_TOKEN, SA(a), NULL, 0, T0,
                          tok, sizeof tok);
  CHECK(len > 0 && tok[0] == TOKEN_KIND_NEW_TOKEN);
  CHECK(token_open(s.token, TOKEN_KIND_NEW_TOKEN, SA(new_port), tok, len,
                   T0 + day - 1, day, got, &got_len) == TOKEN_OK);
  CHECK(got_len == 0);
  CHECK(token_open(s.token, TOKEN_KIND_NEW_TOKEN, SA(a), tok, len, T0 + day + 1,
                   day, got, &got_len) == TOKEN_EXPIRED);
  CHECK(token_open(s.token, TOKEN_KIND_NEW_TOKEN, SA(other_ip), tok, len, T0,
                   day, got, &got_len) == TOKEN_FORGED);
  CHECK(token_open(s.token, TOKEN_KIND_NEW_TOKEN, SA(a6), tok, len, T0, day,
                   got, &got_len) == TOKEN_FORGED);
  CHECK(token_open(other.token, TOKEN_KIND_NEW_TOKEN, SA(a), tok, len, T0, day,
                   got, &got_len) == TOKEN_FORGED);
  /* Not a Retry token, even with the kind byte changed to one. */
  CHECK(open_at(&s, SA(a), tok, len, T0, got, &got_len) == TOKEN_MALFORMED);
  tok[0] = TOKEN_KIND_RETRY;
  CHECK(open_at(&s, SA(a), tok, len, T0, got, &got_len) == TOKEN_FORGED);
  /* A Retry token is not a NEW_TOKEN token either. */
  const uint8_t odcid[8] = {4};
  len = token_seal(s.token, TOKEN_KIND_RETRY, SA(a), odcid, 8, T0, tok,
                   sizeof tok);
  CHECK(token_open(s.token, TOKEN_KIND_NEW_TOKEN, SA(a), tok, len, T0, day, got,
                   &got_len) == TOKEN_MALFORMED);
  tok[0] = TOKEN_KIND_NEW_TOKEN;
  CHECK(token_open(s.token, TOKEN_KIND_NEW_TOKEN, SA(a), tok, len, T0, day, got,
                   &got_len) == TOKEN_FORGED);
  /* IPv6: the port does not matter either. */
  len = token_seal(s.token, TOKEN_KIND_NEW_TOKEN, SA(a6), NULL, 0, T0, tok,
                   sizeof tok);
  CHECK(token_open(s.token, TOKEN_KIND_NEW_TOKEN, SA(a6_port), tok, len, T0,
                   day, got, &got_len) == TOKEN_OK);
  CHECK(token_open(s.token, TOKEN_KIND_NEW_TOKEN, SA(a), tok, len, T0, day, got,
                   &got_len) == TOKEN_FORGED);
}

static void test_secrets(void) {
  uint8_t secret[32], longer[100];
  for (size_t i = 0; i < sizeof secret; i++)
    secret[i] = (uint8_t)i;
  memset(longer, 5, sizeof longer);
  quic_secrets a, b, c;
  CHECK(secrets_derive(&a, secret, sizeof secret) == 0);
  CHECK(secrets_derive(&b, secret, sizeof secret) == 0);
  CHECK(secrets_derive(&c, longer, sizeof longer) == 0);
  CHECK(memcmp(&a, &b, sizeof a) == 0); /* same secret, same keys */
  CHECK(memcmp(&a, &c, sizeof a) != 0);
  CHECK(secrets_derive(&c, secret, 31) == -1);
  CHECK(secrets_derive(&c, NULL, 32) == -1);
  /* Subkeys differ from each other. */
  CHECK(memcmp(a.cid, a.reset, sizeof a.cid) != 0);
  CHECK(memcmp(a.reset, a.token, sizeof a.reset) != 0);
  /* The reset token: HMAC-SHA256(reset key, cid), first 16 bytes. */
  const uint8_t cid[16] = {0xde, 0xad, 0xbe, 0xef};
  uint8_t t1[RESET_TOKEN_LEN], t2[RESET_TOKEN_LEN], other[RESET_TOKEN_LEN];
  uint8_t mac[crypto_auth_hmacsha256_BYTES];
  secrets_reset_token(&a, cid, sizeof cid, t1);
  secrets_reset_token(&b, cid, sizeof cid, t2);
  crypto_auth_hmacsha256(mac, cid, sizeof cid, a.reset);
  CHECK(memcmp(t1, t2, sizeof t1) == 0);
  CHECK(memcmp(t1, mac, RESET_TOKEN_LEN) == 0);
  uint8_t cid2[16];
  memcpy(cid2, cid, sizeof cid2);
  cid2[15] ^= 1;
  secrets_reset_token(&a, cid2, sizeof cid2, other);
  CHECK(memcmp(t1, other, sizeof t1) != 0);
  quic_secrets r;
  secrets_random(&r);
  secrets_reset_token(&r, cid, sizeof cid, other);
  CHECK(memcmp(t1, other, sizeof t1) != 0);
}

static void test_reset_packet(void) {
  uint8_t token[RESET_TOKEN_LEN], out[100];
  memset(token, 0x5a, sizeof token);
  /* Too small to answer: the reply would be under 21 bytes. */
  CHECK(stateless_reset_build(token, 21, out, sizeof out) == 0);
  CHECK(stateless_reset_build(token, 0, out, sizeof out) == 0);
  CHECK(stateless_reset_build(token, 22, out, sizeof out) == 21);
  /* Always shorter than what it answers, never more than 43 bytes. */
  for (size_t in = 22; in < 100; in++) {
    size_t n = stateless_reset_build(token, in, out, sizeof out);
    CHECK(n < in && n >= STATELESS_RESET_MIN && n <= STATELESS_RESET_MAX);
    CHECK((out[0] & 0xc0) == 0x40); /* short header, fixed bit */
    CHECK(memcmp(out + n - RESET_TOKEN_LEN, token, RESET_TOKEN_LEN) == 0);
  }
  CHECK(stateless_reset_build(token, 1200, out, 42) == 0); /* no room */
  /* Resets answering resets shrink until they stop: no loop. */
  size_t len = 1200, rounds = 0;
  while ((len = stateless_reset_build(token, len, out, sizeof out)) != 0)
    rounds++;
  CHECK(rounds > 0 && rounds < 30);
}

static void test_limiter(void) {
  reset_limiter l = {0, 0};
  uint64_t now = 1000000000ull;
  int sent = 0;
  for (int i = 0; i < 1000; i++)
    sent += reset_limiter_take(&l, now);
  CHECK(sent == (int)RESET_BURST);
  /* 100 ms later, 10 more at 100/s. */
  sent = 0;
  for (int i = 0; i < 1000; i++)
    sent += reset_limiter_take(&l, now + 100000000ull);
  CHECK(sent == 10);
  /* A long pause refills to the burst, not beyond. */
  sent = 0;
  for (int i = 0; i < 1000; i++)
    sent += reset_limiter_take(&l, now + 3600ull * 1000000000ull);
  CHECK(sent == (int)RESET_BURST);
}

int main(void) {
  if (sodium_init() < 0)
    return 1;
  test_token_roundtrip();
  test_token_expiry();
  test_token_binding();
  test_token_tampering();
  test_new_token_kind();
  test_secrets();
  test_reset_packet();
  test_limiter();
  return check_report("test_addr_tokens");
}
