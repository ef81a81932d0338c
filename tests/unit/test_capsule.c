/* The Capsule Protocol codec (src/dgram/capsule.c): capsules split at every
 * byte, empty values, skipped oversized values, stream-end boundaries,
 * and a callback that stops the reader. */
#include "check.h"
#include "dgram/capsule.h"
#include "util/varint.h"

typedef struct got {
  int count;
  uint64_t types[8];
  size_t lens[8];
  bool null_value[8];
  uint8_t first[8];
  int stop_after; /* return false after this many (0: never) */
} got;

static bool on_capsule(uint64_t type, const uint8_t *v, size_t len,
                       void *user) {
  got *g = user;
  if (g->count < 8) {
    g->types[g->count] = type;
    g->lens[g->count] = len;
    g->null_value[g->count] = v == NULL;
    g->first[g->count] = v && len ? v[0] : 0;
  }
  g->count++;
  return g->stop_after == 0 || g->count < g->stop_after;
}

static void put(buf *b, uint64_t type, size_t len, uint8_t fill) {
  uint8_t hdr[16];
  buf_append(b, hdr, capsule_header_encode(hdr, type, len));
  for (size_t i = 0; i < len; i++)
    buf_append_byte(b, fill);
}

static void test_split_everywhere(void) {
  buf b = {0};
  put(&b, CAPSULE_DATAGRAM, 5, 'a');
  put(&b, 0x2843, 0, 0);     /* empty value */
  put(&b, 0x78ae, 300, 'c'); /* two-byte length */
  for (size_t step = 1; step <= b.len; step++) {
    capsule_reader r = {0};
    got g = {0};
    for (size_t off = 0; off < b.len; off += step) {
      size_t n = b.len - off < step ? b.len - off : step;
      CHECK(capsule_feed(&r, b.data + off, n, on_capsule, &g) == 0);
      CHECK(capsule_at_boundary(&r) ==
            (off + n == 7 || off + n == 10 || off + n == b.len));
    }
    CHECK(g.count == 3);
    CHECK(g.types[0] == CAPSULE_DATAGRAM && g.lens[0] == 5 &&
          g.first[0] == 'a');
    CHECK(g.types[1] == 0x2843 && g.lens[1] == 0 && !g.null_value[1]);
    CHECK(g.types[2] == 0x78ae && g.lens[2] == 300 && g.first[2] == 'c');
    capsule_reader_free(&r);
  }
  buf_free(&b);
}

static void test_oversized_skipped(void) {
  buf b = {0};
  put(&b, 0x21, CAPSULE_VALUE_MAX + 1, 'x');
  put(&b, CAPSULE_DATAGRAM, 1, 'y');
  capsule_reader r = {0};
  got g = {0};
  CHECK(capsule_feed(&r, b.data, b.len, on_capsule, &g) == 0);
  CHECK(g.count == 2);
  CHECK(g.null_value[0] && g.lens[0] == CAPSULE_VALUE_MAX + 1);
  CHECK(g.first[1] == 'y');
  CHECK(r.value.cap < CAPSULE_VALUE_MAX); /* never collected */
  capsule_reader_free(&r);
  buf_free(&b);
}

static void test_truncated_and_stop(void) {
  buf b = {0};
  put(&b, CAPSULE_DATAGRAM, 4, 'a');
  put(&b, CAPSULE_DATAGRAM, 4, 'b');
  capsule_reader r = {0};
  got g = {.stop_after = 1};
  CHECK(capsule_feed(&r, b.data, b.len, on_capsule, &g) == 1);
  CHECK(g.count == 1);
  capsule_reader_free(&r);
  capsule_reader r2 = {0};
  got g2 = {0};
  CHECK(capsule_feed(&r2, b.data, b.len - 1, on_capsule, &g2) == 0);
  CHECK(g2.count == 1 && !capsule_at_boundary(&r2));
  capsule_reader_free(&r2);
  buf_free(&b);
}

int main(void) {
  test_split_everywhere();
  test_oversized_skipped();
  test_truncated_and_stop();
  return check_report("test_capsule");
}
