/* Unit tests for quic/rx_shed.h: which datagrams count as a QUIC v1
 * Initial without a token (the only ones shed under a backlog), read from
 * their first bytes; anything short, odd or of another kind is not. */
#include "check.h"
#include "quic/rx_shed.h"

#include <string.h>

/* A v1 Initial: first byte, version, DCID, SCID, token length varint,
 * then a few bytes of "length + packet number + payload". Returns its
 * length. */
static size_t initial(uint8_t *out, size_t dcid_len, size_t scid_len,
                      uint8_t token_len_byte) {
  size_t n = 0;
  out[n++] = 0xc3; /* long header, fixed bit, type Initial, pn length 4 */
  out[n++] = 0;
  out[n++] = 0;
  out[n++] = 0;
  out[n++] = 1;
  out[n++] = (uint8_t)dcid_len;
  for (size_t i = 0; i < dcid_len; i++)
    out[n++] = (uint8_t)(0xa0 + i);
  out[n++] = (uint8_t)scid_len;
  for (size_t i = 0; i < scid_len; i++)
    out[n++] = (uint8_t)(0xb0 + i);
  out[n++] = token_len_byte;
  for (size_t i = 0; i < 8; i++)
    out[n++] = 0x42;
  return n;
}

static void test_tokenless_initial(void) {
  uint8_t b[64];
  size_t n = initial(b, 8, 8, 0);
  const uint8_t *dcid = NULL;
  size_t dcid_len = 0;
  CHECK(rx_is_tokenless_initial(b, n, &dcid, &dcid_len));
  CHECK(dcid == b + 6 && dcid_len == 8 && dcid[0] == 0xa0);
  n = initial(b, 0, 0, 0); /* empty CIDs are allowed */
  CHECK(rx_is_tokenless_initial(b, n, &dcid, &dcid_len) && dcid_len == 0);
  n = initial(b, 20, 20, 0);
  CHECK(rx_is_tokenless_initial(b, n, &dcid, &dcid_len) && dcid_len == 20);
}

static void test_not_shed(void) {
  uint8_t b[64];
  const uint8_t *dcid;
  size_t dcid_len;
  size_t n = initial(b, 8, 8, 5); /* a token: the full path checks it */
  CHECK(!rx_is_tokenless_initial(b, n, &dcid, &dcid_len));
  n = initial(b, 8, 8, 0x40); /* a two-byte varint: not the short 0 */
  CHECK(!rx_is_tokenless_initial(b, n, &dcid, &dcid_len));
  n = initial(b, 8, 8, 0);
  b[0] = 0xe3; /* Handshake */
  CHECK(!rx_is_tokenless_initial(b, n, &dcid, &dcid_len));
  b[0] = 0x43; /* short header */
  CHECK(!rx_is_tokenless_initial(b, n, &dcid, &dcid_len));
  b[0] = 0xc3;
  b[4] = 2; /* another version */
  CHECK(!rx_is_tokenless_initial(b, n, &dcid, &dcid_len));
  b[4] = 1;
  b[5] = 21; /* a DCID longer than v1 allows */
  CHECK(!rx_is_tokenless_initial(b, n, &dcid, &dcid_len));
  n = initial(b, 8, 21, 0); /* an SCID longer than v1 allows */
  CHECK(!rx_is_tokenless_initial(b, n, &dcid, &dcid_len));
}

static void test_truncated(void) {
  uint8_t b[64];
  const uint8_t *dcid;
  size_t dcid_len;
  size_t n = initial(b, 8, 8, 0);
  /* Every prefix that ends before the token length byte is too short. */
  for (size_t cut = 0; cut <= 6 + 8 + 1 + 8; cut++)
    CHECK(!rx_is_tokenless_initial(b, cut, &dcid, &dcid_len));
  CHECK(rx_is_tokenless_initial(b, 6 + 8 + 1 + 8 + 1, &dcid, &dcid_len));
  CHECK(n > 6 + 8 + 1 + 8 + 1);
}

int main(void) {
  test_tokenless_initial();
  test_not_shed();
  test_truncated();
  return check_report("test_rx_shed");
}
