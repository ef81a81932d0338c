/* QUIC varints (src/util/varint.h, and buf_append_varint): decoding any
 * bytes, then encoding what was decoded, must round-trip; encoding any
 * 64-bit value must either refuse it (> VARINT_MAX) or round-trip. */
#include "fuzz.h"
#include "util/buf.h"
#include "util/varint.h"

/* v was decoded from n bytes at p: its canonical encoding must decode to
 * v again, and equal p when n was already the shortest length. */
static void check_reencode(const uint8_t *p, size_t n, uint64_t v) {
  uint8_t enc[8];
  uint64_t again = 0;
  size_t len = varint_len(v);
  FUZZ_CHECK(v <= VARINT_MAX);
  FUZZ_CHECK(len >= 1 && len <= n);
  FUZZ_CHECK(varint_encode(enc, sizeof enc, v) == len);
  FUZZ_CHECK(varint_decode(enc, len, &again) == (ssize_t)len);
  FUZZ_CHECK(again == v);
  if (len == n) {
    FUZZ_CHECK(memcmp(enc, p, n) == 0);
  }
}

/* Decodes varints back to back until the input runs out. */
static void decode_all(const uint8_t *data, size_t size) {
  size_t pos = 0;
  while (pos < size) {
    uint64_t v = 0;
    ssize_t n = varint_decode(data + pos, size - pos, &v);
    if (n < 0) {
      /* Only a truncated encoding may fail. */
      FUZZ_CHECK(((size_t)1 << (data[pos] >> 6)) > size - pos);
      return;
    }
    size_t un = (size_t)n;
    FUZZ_CHECK(un == 1 || un == 2 || un == 4 || un == 8);
    FUZZ_CHECK(un <= size - pos);
    FUZZ_CHECK(varint_decode(data + pos, size - pos, NULL) == n);
    FUZZ_CHECK(varint_decode(data + pos, un - 1, &v) == -1);
    check_reencode(data + pos, un, v);
    pos += un;
  }
}

/* Encodes the raw 64-bit value in the first 8 bytes, by both encoders. */
static void encode_raw(const uint8_t *data, size_t size) {
  uint64_t v = 0;
  for (size_t i = 0; i < 8 && i < size; i++) {
    v = (v << 8) | data[i];
  }
  uint8_t enc[8];
  buf b = {0};
  size_t len = varint_len(v);
  if (v > VARINT_MAX) {
    FUZZ_CHECK(len == 0);
    FUZZ_CHECK(varint_encode(enc, sizeof enc, v) == 0);
    FUZZ_CHECK(buf_append_varint(&b, v) == -1);
    FUZZ_CHECK(b.len == 0);
    buf_free(&b);
    return;
  }
  FUZZ_CHECK(varint_encode(enc, len - 1, v) == 0); /* no room: refused */
  FUZZ_CHECK(varint_encode(enc, sizeof enc, v) == len);
  FUZZ_CHECK(buf_append_varint(&b, v) == 0);
  FUZZ_CHECK(b.len == len && memcmp(b.data, enc, len) == 0);
  uint64_t again = 0;
  FUZZ_CHECK(varint_decode(enc, len, &again) == (ssize_t)len);
  FUZZ_CHECK(again == v);
  buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  decode_all(data, size);
  encode_raw(data, size);
  return 0;
}
