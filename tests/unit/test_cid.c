/* Unit tests for the connection ID layout (quic/cid.h): QUIC-LB's
 * plaintext algorithm against the draft's test vector, encode/decode round
 * trips for every length, the unroutable layout, and validation of the
 * quic_lb_* fields through config_validate and h3q_config_set. */
#include "check.h"
#include "core/config.h"
#include "h3q.h"
#include "quic/cid.h"

#include <sodium.h>
#include <string.h>

static size_t unhex(const char *hex, uint8_t *out, size_t cap) {
  size_t got = 0;
  CHECK(sodium_hex2bin(out, cap, hex, strlen(hex), NULL, &got, NULL) == 0);
  return got;
}

/* draft-ietf-quic-load-balancers-21, "Unencrypted CIDs": config rotation
 * 0, server id c4605e, nonce 4504cc4f, length self-described. The draft's
 * second plaintext vector cannot be used: its nonce has an odd number of
 * hex digits and its CID does not contain its server id. */
static void test_draft_vector(void) {
  cid_layout l;
  char err[256] = "";
  CHECK(cid_layout_init(&l, 0, "c4605e", 4, err, sizeof err) == 0);
  CHECK(l.len == 8 && l.server_id_len == 3 && cid_identity_offset(&l) == 4);
  uint8_t nonce[4], expected[8], cid[CID_LAYOUT_MAX_LEN];
  unhex("4504cc4f", nonce, sizeof nonce);
  unhex("07c4605e4504cc4f", expected, sizeof expected);
  /* The identity byte is the first nonce byte; the rest is entropy. */
  cid_encode(&l, nonce[0], nonce + 1, cid);
  CHECK(memcmp(cid, expected, sizeof expected) == 0);
  uint8_t config_id = 9, sid[CID_LB_SERVER_ID_MAX];
  CHECK(cid_decode(expected, sizeof expected, 3, &config_id, sid));
  CHECK(config_id == 0 && memcmp(sid, "\xc4\x60\x5e", 3) == 0);
}

/* Every server id and nonce length the draft allows: the first octet
 * holds the config id and length - 1, the server id follows, the
 * identity byte and the entropy after it. */
static void test_round_trips(void) {
  static const char hex[] = "0123456789abcdef0123456789abcd";
  uint8_t entropy[CID_LAYOUT_MAX_LEN];
  randombytes_buf(entropy, sizeof entropy);
  for (size_t s = 1; s <= CID_LB_SERVER_ID_MAX; s++) {
    char sid_hex[2 * CID_LB_SERVER_ID_MAX + 1];
    memcpy(sid_hex, hex, 2 * s);
    sid_hex[2 * s] = '\0';
    for (size_t n = CID_LB_NONCE_MIN; s + n <= 19; n++) {
      cid_layout l;
      uint32_t cfg_id = (uint32_t)((s + n) % 7);
      CHECK(cid_layout_init(&l, cfg_id, sid_hex, n, NULL, 0) == 0);
      CHECK(l.len == 1 + s + n);
      uint8_t cid[CID_LAYOUT_MAX_LEN + 1];
      cid[l.len] = 0xAA; /* nothing is written past the CID */
      cid_encode(&l, 0x5c, entropy, cid);
      CHECK(cid[0] == (uint8_t)(cfg_id << 5 | (l.len - 1)));
      CHECK(cid[1 + s] == 0x5c && cid[l.len] == 0xAA);
      CHECK(memcmp(cid + 2 + s, entropy, n - 1) == 0);
      uint8_t got_cfg = 0xFF, sid[CID_LB_SERVER_ID_MAX];
      CHECK(cid_decode(cid, l.len, s, &got_cfg, sid));
      CHECK(got_cfg == cfg_id && memcmp(sid, l.server_id, s) == 0);
      CHECK(!cid_decode(cid, s, s, &got_cfg, sid)); /* too short */
    }
  }
}

static void test_unroutable(void) {
  cid_layout l;
  CHECK(cid_layout_init(&l, CID_LB_UNROUTABLE, NULL, CID_LB_NONCE_DEFAULT, NULL,
                        0) == 0);
  CHECK(l.len == CID_UNROUTABLE_LEN && l.server_id_len == 0);
  CHECK(cid_identity_offset(&l) == 1);
  uint8_t entropy[CID_LAYOUT_MAX_LEN], cid[CID_LAYOUT_MAX_LEN];
  randombytes_buf(entropy, sizeof entropy);
  cid_encode(&l, 0, entropy, cid);
  /* 0b111 and a self-described length, as the draft requires. */
  CHECK(cid[0] == (0xE0 | (CID_UNROUTABLE_LEN - 1)) && cid[1] == 0);
  CHECK(memcmp(cid + 2, entropy, CID_UNROUTABLE_LEN - 2) == 0);
}

static h3q_config valid(void) {
  h3q_config c;
  h3q_config_init(&c);
  c.cert_path = "cert.pem";
  c.key_path = "key.pem";
  return c;
}

static void expect_field(const h3q_config *c, const char *field) {
  char err[256] = "";
  CHECK(config_validate(c, err, sizeof err) == H3Q_ECONFIG);
  if (strncmp(err, field, strlen(field)) != 0) {
    fprintf(stderr, "  expected '%s', got '%s'\n", field, err);
    CHECK(0);
  }
}

static void test_validation(void) {
  h3q_config c = valid();
  char err[256];
  CHECK(c.quic_lb_config_id == CID_LB_UNROUTABLE && !c.quic_lb_server_id);
  CHECK(c.quic_lb_nonce_len == CID_LB_NONCE_DEFAULT);
  CHECK(config_validate(&c, err, sizeof err) == H3Q_OK);
  c.quic_lb_server_id = "0a1b";
  expect_field(&c, "quic_lb_config_id"); /* 7 is not a configuration */
  c.quic_lb_config_id = 6;
  CHECK(config_validate(&c, err, sizeof err) == H3Q_OK);
  c.quic_lb_config_id = 8;
  expect_field(&c, "quic_lb_config_id");
  c.quic_lb_config_id = 0;
  const char *bad_ids[] = {"",    "a",  "0g",
                           "0a1", "zz", "000102030405060708090a0b0c0d0e0f"};
  for (size_t i = 0; i < sizeof bad_ids / sizeof bad_ids[0]; i++) {
    c.quic_lb_server_id = bad_ids[i];
    expect_field(&c, "quic_lb_server_id");
  }
  c.quic_lb_server_id = "000102030405060708090a0b0c0d0e"; /* 15 bytes */
  c.quic_lb_nonce_len = 4;
  CHECK(config_validate(&c, err, sizeof err) == H3Q_OK);
  c.quic_lb_nonce_len = 5; /* 21 bytes */
  expect_field(&c, "quic_lb_nonce_len");
  c.quic_lb_server_id = "0a";
  c.quic_lb_nonce_len = 18;
  CHECK(config_validate(&c, err, sizeof err) == H3Q_OK);
  c.quic_lb_nonce_len = 3;
  expect_field(&c, "quic_lb_nonce_len");
  c.quic_lb_nonce_len = 19;
  expect_field(&c, "quic_lb_nonce_len");
  c.quic_lb_server_id = NULL;
  c.quic_lb_nonce_len = 8;
  expect_field(&c, "quic_lb_server_id"); /* config id 0 without a server id */
}

static void test_config_set(void) {
  h3q_config *c = h3q_config_new();
  CHECK(c != NULL);
  if (!c)
    return;
  CHECK(h3q_config_set(c, "quic_lb_config_id", "3") == H3Q_OK &&
        c->quic_lb_config_id == 3);
  CHECK(h3q_config_set(c, "quic_lb_server_id", "c4605e") == H3Q_OK);
  CHECK_STR(c->quic_lb_server_id, "c4605e");
  CHECK(h3q_config_set(c, "quic_lb_nonce_len", "12") == H3Q_OK &&
        c->quic_lb_nonce_len == 12);
  CHECK(h3q_config_set(c, "quic_lb_nonce_len", "x") == H3Q_ECONFIG);
  c->cert_path = "cert.pem";
  c->key_path = "key.pem";
  char err[256];
  CHECK(config_validate(c, err, sizeof err) == H3Q_OK);
  h3q_config_free(c);
}

int main(void) {
  if (sodium_init() < 0)
    return 1;
  test_draft_vector();
  test_round_trips();
  test_unroutable();
  test_validation();
  test_config_set();
  return check_report("test_cid");
}
