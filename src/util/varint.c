/* QUIC variable-length integers (RFC 9000 section 16): the two high bits of
 * the first byte give the length (1, 2, 4 or 8 bytes), the remaining bits
 * hold the value in network byte order. */
#include "util/varint.h"

size_t varint_len(uint64_t v) {
  if (v <= 63) {
    return 1;
  }
  if (v <= 16383) {
    return 2;
  }
  if (v <= 1073741823) {
    return 4;
  }
  if (v <= VARINT_MAX) {
    return 8;
  }
  return 0;
}

size_t varint_encode(uint8_t *buf, size_t cap, uint64_t v) {
  size_t n = varint_len(v);
  if (n == 0 || buf == NULL || cap < n) {
    return 0;
  }
  /* Length prefix: 0b00, 0b01, 0b10, 0b11 for 1, 2, 4, 8 bytes. */
  uint8_t prefix = n == 1 ? 0x00 : n == 2 ? 0x40 : n == 4 ? 0x80 : 0xc0;
  for (size_t i = n; i > 0; i--) {
    buf[i - 1] = (uint8_t)(v & 0xff);
    v >>= 8;
  }
  buf[0] |= prefix;
  return n;
}

ssize_t varint_decode(const uint8_t *buf, size_t len, uint64_t *out) {
  if (buf == NULL || len == 0) {
    return -1;
  }
  size_t n = (size_t)1 << (buf[0] >> 6);
  if (len < n) {
    return -1;
  }
  uint64_t v = buf[0] & 0x3f;
  for (size_t i = 1; i < n; i++) {
    v = (v << 8) | buf[i];
  }
  if (out != NULL) {
    *out = v;
  }
  return (ssize_t)n;
}
