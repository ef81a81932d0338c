/* Unit tests for QUIC varints (RFC 9000 section 16 and Appendix A.1). */
#include "check.h"
#include "util/varint.h"

#include <stdint.h>

/* Encodes v, checks the expected length, decodes it back. */
static void roundtrip(uint64_t v, size_t want_len) {
  uint8_t buf[8];
  uint64_t got = 0;
  CHECK(varint_len(v) == want_len);
  CHECK(varint_encode(buf, sizeof buf, v) == want_len);
  CHECK(varint_decode(buf, want_len, &got) == (ssize_t)want_len);
  CHECK(got == v);
  /* One byte short of the encoding must be reported as truncated. */
  CHECK(varint_decode(buf, want_len - 1, &got) == -1);
}

static void test_lengths_and_boundaries(void) {
  roundtrip(0, 1);
  roundtrip(37, 1);
  roundtrip(63, 1);
  roundtrip(64, 2);
  roundtrip(16383, 2);
  roundtrip(16384, 4);
  roundtrip((UINT64_C(1) << 30) - 1, 4);
  roundtrip(UINT64_C(1) << 30, 8);
  roundtrip(VARINT_MAX, 8);
  CHECK(VARINT_MAX == UINT64_C(4611686018427387903));
}

static void test_prefix_bits(void) {
  uint8_t buf[8];
  CHECK(varint_encode(buf, sizeof buf, 63) == 1 && buf[0] == 0x3f);
  CHECK(varint_encode(buf, sizeof buf, 64) == 2 && buf[0] == 0x40 &&
        buf[1] == 0x40);
  CHECK(varint_encode(buf, sizeof buf, 16384) == 4 && buf[0] == 0x80 &&
        buf[1] == 0x00 && buf[2] == 0x40 && buf[3] == 0x00);
  CHECK(varint_encode(buf, sizeof buf, VARINT_MAX) == 8 && buf[0] == 0xff &&
        buf[7] == 0xff);
}

static void test_too_large(void) {
  uint8_t buf[8] = {0};
  CHECK(varint_len(VARINT_MAX + 1) == 0);
  CHECK(varint_len(UINT64_MAX) == 0);
  CHECK(varint_encode(buf, sizeof buf, VARINT_MAX + 1) == 0);
  CHECK(varint_encode(buf, sizeof buf, UINT64_MAX) == 0);
}

static void test_small_buffer(void) {
  uint8_t buf[8] = {0};
  CHECK(varint_encode(buf, 1, 64) == 0);
  CHECK(varint_encode(buf, 3, 16384) == 0);
  CHECK(varint_encode(buf, 7, UINT64_C(1) << 30) == 0);
  CHECK(varint_encode(buf, 0, 0) == 0);
  CHECK(varint_encode(NULL, 8, 1) == 0);
}

static void test_truncated_input(void) {
  const uint8_t eight[] = {0xc2, 0x19, 0x7c, 0x5e, 0xff, 0x14, 0xe8};
  const uint8_t four[] = {0x9d, 0x7f, 0x3e};
  const uint8_t two[] = {0x7b};
  uint64_t v = 0;
  CHECK(varint_decode(eight, sizeof eight, &v) == -1);
  CHECK(varint_decode(four, sizeof four, &v) == -1);
  CHECK(varint_decode(two, sizeof two, &v) == -1);
  CHECK(varint_decode(two, 0, &v) == -1);
  CHECK(varint_decode(NULL, 4, &v) == -1);
}

static void test_rfc9000_a1(void) {
  const uint8_t ex8[] = {0xc2, 0x19, 0x7c, 0x5e, 0xff, 0x14, 0xe8, 0x8c};
  const uint8_t ex4[] = {0x9d, 0x7f, 0x3e, 0x7d};
  const uint8_t ex2[] = {0x7b, 0xbd};
  const uint8_t ex1[] = {0x25};
  const uint8_t ex2_37[] = {0x40, 0x25}; /* two-byte encoding of 37 */
  const uint8_t trailing[] = {0x25, 0xff};
  uint64_t v = 0;
  CHECK(varint_decode(ex8, sizeof ex8, &v) == 8);
  CHECK(v == UINT64_C(151288809941952652));
  CHECK(varint_decode(ex4, sizeof ex4, &v) == 4 && v == 494878333);
  CHECK(varint_decode(ex2, sizeof ex2, &v) == 2 && v == 15293);
  CHECK(varint_decode(ex1, sizeof ex1, &v) == 1 && v == 37);
  CHECK(varint_decode(ex2_37, sizeof ex2_37, &v) == 2 && v == 37);
  CHECK(varint_decode(trailing, sizeof trailing, &v) == 1 && v == 37);
  uint8_t buf[8];
  CHECK(varint_encode(buf, sizeof buf, UINT64_C(151288809941952652)) == 8);
  CHECK(memcmp(buf, ex8, sizeof ex8) == 0);
  CHECK(varint_encode(buf, sizeof buf, 494878333) == 4);
  CHECK(memcmp(buf, ex4, sizeof ex4) == 0);
  CHECK(varint_encode(buf, sizeof buf, 15293) == 2);
  CHECK(memcmp(buf, ex2, sizeof ex2) == 0);
}

int main(void) {
  test_lengths_and_boundaries();
  test_prefix_bits();
  test_too_large();
  test_small_buffer();
  test_truncated_input();
  test_rfc9000_a1();
  return check_report("test_varint");
}
