/* Unit tests for QPACK (RFC 9204): static table, prefix integers, Huffman
 * (RFC 7541), the decoder with its dynamic table (RFC 9204 Appendix B and
 * every error path) and the encoder. */
#include "check.h"
#include "h3/qpack.h"
#include "h3/qpack_internal.h"
#include "h3q.h"

#include <stdint.h>
#include <stdlib.h>

/* ---- helpers ---- */

/* Parses hex digits (spaces ignored) into out; returns the byte count. */
static size_t unhex(const char *hex, uint8_t *out, size_t cap) {
  size_t n = 0;
  int hi = -1;
  for (const char *c = hex; *c; c++) {
    int v;
    if (*c >= '0' && *c <= '9')
      v = *c - '0';
    else if (*c >= 'a' && *c <= 'f')
      v = *c - 'a' + 10;
    else
      continue;
    if (hi < 0) {
      hi = v;
    } else if (n < cap) {
      out[n++] = (uint8_t)(hi * 16 + v);
      hi = -1;
    }
  }
  return n;
}

/* Lowercase hex of a buffer, into a static string. */
static const char *tohex(const uint8_t *p, size_t len) {
  static char s[4096];
  size_t n = 0;
  for (size_t i = 0; i < len && n + 3 < sizeof s; i++)
    n += (size_t)snprintf(s + n, sizeof s - n, "%02x", p[i]);
  s[n] = 0;
  return s;
}

/* Collects "name: value\n" lines. */
typedef struct fields {
  char text[8192];
  size_t len;
  int count;
  int stop_after; /* stop (return 1) at this field number when > 0 */
} fields;

static int collect(void *user, const uint8_t *name, size_t nlen,
                   const uint8_t *value, size_t vlen) {
  fields *f = user;
  f->count++;
  int n =
      snprintf(f->text + f->len, sizeof f->text - f->len, "%.*s: %.*s\n",
               (int)nlen, (const char *)name, (int)vlen, (const char *)value);
  if (n > 0 && (size_t)n < sizeof f->text - f->len)
    f->len += (size_t)n;
  return f->stop_after > 0 && f->count >= f->stop_after;
}

/* Feeds hex to the decoder's encoder stream. */
static uint64_t feed_encoder(qpack_decoder *d, const char *hex) {
  uint8_t b[2048];
  size_t n = unhex(hex, b, sizeof b);
  return qpack_decoder_on_encoder_stream(d, b, n);
}

/* Decodes a hex section; fills f and err. */
static qpack_result decode_hex(qpack_decoder *d, uint64_t stream,
                               const char *hex, uint64_t limit, fields *f,
                               uint64_t *err) {
  uint8_t b[4096];
  size_t n = unhex(hex, b, sizeof b);
  memset(f, 0, sizeof *f);
  return qpack_decode_section(d, stream, b, n, limit, collect, f, err);
}

/* Returns the pending decoder instructions as hex and consumes them. */
static const char *take_instructions(qpack_decoder *d) {
  buf *b = qpack_decoder_instructions(d);
  const char *s = tohex(b->data, b->len);
  buf_consume(b, b->len);
  return s;
}

#define BIG_LIMIT (UINT64_C(1) << 20)

/* ---- static table ---- */

static void test_static_table(void) {
  CHECK(strcmp(qpack_static_table[0].name, ":authority") == 0);
  CHECK(strcmp(qpack_static_table[25].value, "200") == 0);
  CHECK(strcmp(qpack_static_table[98].value, "sameorigin") == 0);
  for (int i = 0; i < QPACK_STATIC_COUNT; i++) {
    const qpack_static_entry *e = &qpack_static_table[i];
    int name_idx = -2;
    int idx = qpack_static_find((const uint8_t *)e->name, e->nlen,
                                (const uint8_t *)e->value, e->vlen, &name_idx);
    CHECK(idx == i);
    /* name_idx is the first entry with this name. */
    int first = -1;
    for (int j = 0; j < QPACK_STATIC_COUNT && first < 0; j++)
      if (strcmp(qpack_static_table[j].name, e->name) == 0)
        first = j;
    CHECK(name_idx == first);
    CHECK(strlen(e->name) == e->nlen && strlen(e->value) == e->vlen);
  }
  int name_idx;
  CHECK(qpack_static_find((const uint8_t *)"x-custom", 8, (const uint8_t *)"1",
                          1, &name_idx) == -1);
  CHECK(name_idx == -1);
  CHECK(qpack_static_find((const uint8_t *)":status", 7, (const uint8_t *)"299",
                          3, &name_idx) == -1);
  CHECK(name_idx == 24);
  CHECK(qpack_static_find((const uint8_t *)"", 0, (const uint8_t *)"", 0,
                          &name_idx) == -1);
  /* Longer than every static name. */
  const char *longname = "access-control-allow-credentials-x";
  CHECK(qpack_static_find((const uint8_t *)longname, strlen(longname),
                          (const uint8_t *)"", 0, &name_idx) == -1);
  for (unsigned s = 0; s < 1000; s++) {
    int idx = qpack_static_status_index(s);
    char v[8];
    int n = snprintf(v, sizeof v, "%u", s);
    int want = qpack_static_find((const uint8_t *)":status", 7,
                                 (const uint8_t *)v, (size_t)n, &name_idx);
    CHECK(idx == want);
  }
}

/* ---- prefix integers (RFC 7541 C.1) ---- */

static void test_prefix_integers(void) {
  uint8_t b[16];
  uint64_t v = 0;
  CHECK(qpack_write_int(b, 0, 5, 10) == 1 && b[0] == 0x0a);
  CHECK(qpack_write_int(b, 0xe0, 5, 1337) == 3 && b[0] == 0xff &&
        b[1] == 0x9a && b[2] == 0x0a);
  CHECK(qpack_read_int(b, 3, 5, &v) == 3 && v == 1337);
  CHECK(qpack_read_int(b, 2, 5, &v) == 0); /* truncated */
  CHECK(qpack_read_int(b, 0, 5, &v) == 0);
  CHECK(qpack_write_int(b, 0, 8, 42) == 1 && b[0] == 42);
  const uint64_t values[] = {0,
                             1,
                             30,
                             31,
                             32,
                             127,
                             128,
                             255,
                             16383,
                             1u << 20,
                             UINT32_MAX,
                             QPACK_INT_MAX - 1,
                             QPACK_INT_MAX};
  for (unsigned prefix = 1; prefix <= 8; prefix++) {
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
      size_t n = qpack_write_int(b, 0, prefix, values[i]);
      CHECK(n <= QPACK_INT_MAXLEN);
      CHECK(qpack_read_int(b, n, prefix, &v) == (ssize_t)n && v == values[i]);
      CHECK(qpack_read_int(b, n - 1, prefix, &v) == 0);
    }
    /* One above 62 bits is rejected. */
    size_t n = qpack_write_int(b, 0, prefix, QPACK_INT_MAX + 1);
    CHECK(qpack_read_int(b, n, prefix, &v) == -1);
    n = qpack_write_int(b, 0, prefix, UINT64_MAX);
    CHECK(qpack_read_int(b, n, prefix, &v) == -1);
  }
  /* Endless zero continuation bytes are rejected, not looped over. */
  memset(b, 0x80, sizeof b);
  b[0] = 0xff;
  CHECK(qpack_read_int(b, sizeof b, 8, &v) == -1);
}

/* ---- Huffman (RFC 7541 C.4, C.6) ---- */

static void huffman_vector(const char *text, const char *hex) {
  uint8_t want[128], got[128], dec[128];
  size_t n = unhex(hex, want, sizeof want);
  size_t len = strlen(text);
  CHECK(qpack_huffman_encoded_len((const uint8_t *)text, len) == n);
  CHECK(qpack_huffman_encode((const uint8_t *)text, len, got) == n);
  CHECK(memcmp(got, want, n) == 0);
  CHECK(qpack_huffman_decode(want, n, dec, sizeof dec) == (ssize_t)len);
  CHECK(memcmp(dec, text, len) == 0);
  /* One byte short of the output is an error, not an overflow. */
  CHECK(qpack_huffman_decode(want, n, dec, len - 1) == -1);
  CHECK(qpack_huffman_decode_bounded(want, n, dec, len - 1) ==
        QPACK_HUFF_NOSPACE);
}

static void test_huffman_vectors(void) {
  huffman_vector("www.example.com", "f1e3 c2e5 f23a 6ba0 ab90 f4ff");
  huffman_vector("no-cache", "a8eb 1064 9cbf");
  huffman_vector("custom-key", "25a8 49e9 5ba9 7d7f");
  huffman_vector("custom-value", "25a8 49e9 5bb8 e8b4 bf");
  huffman_vector("302", "6402");
  huffman_vector("private", "aec3 771a 4b");
  huffman_vector("Mon, 21 Oct 2013 20:13:21 GMT",
                 "d07a be94 1054 d444 a820 0595 040b 8166 e082 a62d 1bff");
  huffman_vector("https://www.example.com",
                 "9d29 ad17 1863 c78f 0b97 c8e9 ae82 ae43 d3");
  huffman_vector("foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1",
                 "94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1"
                 " ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07");
}

static void test_huffman_roundtrip(void) {
  uint8_t in[512], enc[2048], dec[512];
  for (int i = 0; i < 256; i++)
    in[i] = (uint8_t)i;
  size_t n = qpack_huffman_encode(in, 256, enc);
  CHECK(n == qpack_huffman_encoded_len(in, 256));
  CHECK(qpack_huffman_decode(enc, n, dec, sizeof dec) == 256);
  CHECK(memcmp(in, dec, 256) == 0);
  /* Every single byte alone (exercises each padding length). */
  for (int i = 0; i < 256; i++) {
    uint8_t c = (uint8_t)i, e[8], o[2];
    size_t m = qpack_huffman_encode(&c, 1, e);
    CHECK(qpack_huffman_decode(e, m, o, sizeof o) == 1 && o[0] == c);
  }
  /* Random strings with a fixed seed. */
  unsigned seed = 12345;
  for (int round = 0; round < 200; round++) {
    size_t len = (size_t)(rand_r(&seed) % 300);
    int ascii = round % 2;
    for (size_t i = 0; i < len; i++)
      in[i] = (uint8_t)(ascii ? 32 + rand_r(&seed) % 95 : rand_r(&seed));
    n = qpack_huffman_encode(in, len, enc);
    CHECK(qpack_huffman_decode(enc, n, dec, len) == (ssize_t)len);
    CHECK(memcmp(in, dec, len) == 0);
    CHECK(len <= qpack_huffman_max_decoded(n));
    CHECK(len >= qpack_huffman_min_decoded(n));
  }
  CHECK(qpack_huffman_decode(enc, 0, dec, 0) == 0);
}

static void test_huffman_invalid(void) {
  uint8_t out[64], b[16];
  /* EOS (thirty 1 bits) inside the string. */
  memset(b, 0xff, 4);
  CHECK(qpack_huffman_decode(b, 4, out, sizeof out) == -1);
  /* 'a' (00011) then EOS. */
  size_t n = unhex("18 ff ff ff ff", b, sizeof b);
  CHECK(qpack_huffman_decode(b, n, out, sizeof out) == -1);
  /* 'a' padded with 11 ones: padding longer than 7 bits. */
  n = unhex("1f ff", b, sizeof b);
  CHECK(qpack_huffman_decode(b, n, out, sizeof out) == -1);
  /* A whole byte of ones alone is padding longer than 7 bits. */
  n = unhex("ff", b, sizeof b);
  CHECK(qpack_huffman_decode(b, n, out, sizeof out) == -1);
  /* 'a' padded with zeros: padding not all ones. */
  n = unhex("18", b, sizeof b);
  CHECK(qpack_huffman_decode(b, n, out, sizeof out) == -1);
  /* 'a' padded with 101. */
  n = unhex("1d", b, sizeof b);
  CHECK(qpack_huffman_decode(b, n, out, sizeof out) == -1);
  /* 'a' with 111 padding is fine. */
  n = unhex("1f", b, sizeof b);
  CHECK(qpack_huffman_decode(b, n, out, sizeof out) == 1 && out[0] == 'a');
}

/* ---- decoder: RFC 9204 Appendix B ---- */

static void test_rfc_b1_static_name(void) {
  qpack_decoder *d = qpack_decoder_new(0, 0);
  fields f;
  uint64_t err = 1;
  CHECK(decode_hex(d, 0, "0000 510b 2f69 6e64 6578 2e68 746d 6c", BIG_LIMIT, &f,
                   &err) == QPACK_DONE);
  CHECK(err == 0);
  CHECK_STR(f.text, ":path: /index.html\n");
  CHECK(qpack_decoder_instructions(d)->len == 0);
  /* Without a dynamic table, cancelling a stream sends nothing. */
  qpack_decoder_cancel_stream(d, 0);
  CHECK(qpack_decoder_instructions(d)->len == 0);
  qpack_decoder_free(d);
}

static void test_rfc_b2_to_b5(void) {
  qpack_decoder *d = qpack_decoder_new(220, 2);
  fields f;
  uint64_t err;
  const char *b2_section = "0381 10 11";

  /* B.2, with the section arriving before the inserts it needs. */
  CHECK(decode_hex(d, 4, b2_section, BIG_LIMIT, &f, &err) == QPACK_BLOCKED);
  CHECK(f.count == 0 && qpack_decoder_blocked_streams(d) == 1);
  CHECK(feed_encoder(d, "3fbd01 c00f 7777 772e 6578 616d 706c 652e 636f 6d"
                        "c10c 2f73 616d 706c 652f 7061 7468") == 0);
  CHECK(qpack_decoder_insert_count(d) == 2);
  CHECK(qpack_decoder_table_size(d) == 106);
  CHECK_STR(take_instructions(d), "02"); /* Insert Count Increment (2) */
  CHECK(decode_hex(d, 4, b2_section, BIG_LIMIT, &f, &err) == QPACK_DONE);
  CHECK_STR(f.text, ":authority: www.example.com\n:path: /sample/path\n");
  CHECK(qpack_decoder_blocked_streams(d) == 0);
  CHECK_STR(take_instructions(d), "84"); /* Section Acknowledgment (4) */

  /* B.3: speculative insert. */
  CHECK(feed_encoder(d, "4a63 7573 746f 6d2d 6b65 790c 6375 7374"
                        "6f6d 2d76 616c 7565") == 0);
  CHECK(qpack_decoder_table_size(d) == 160);
  CHECK_STR(take_instructions(d), "01"); /* Insert Count Increment (1) */

  /* B.4: the section on stream 8 arrives before the Duplicate and the
   * stream is cancelled. */
  const char *b4_section = "0500 80 c1 81";
  CHECK(decode_hex(d, 8, b4_section, BIG_LIMIT, &f, &err) == QPACK_BLOCKED);
  CHECK(qpack_decoder_blocked_streams(d) == 1);
  qpack_decoder_cancel_stream(d, 8);
  CHECK(qpack_decoder_blocked_streams(d) == 0);
  CHECK_STR(take_instructions(d), "48"); /* Stream Cancellation (8) */
  CHECK(feed_encoder(d, "02") == 0);
  CHECK(qpack_decoder_table_size(d) == 217);
  CHECK(qpack_decoder_insert_count(d) == 4);
  CHECK_STR(take_instructions(d), "01");
  /* The same section decodes once the Duplicate is there. */
  CHECK(decode_hex(d, 12, b4_section, BIG_LIMIT, &f, &err) == QPACK_DONE);
  CHECK_STR(f.text, ":authority: www.example.com\n:path: /\n"
                    "custom-key: custom-value\n");
  CHECK_STR(take_instructions(d), "8c");

  /* B.5: insert with a dynamic name reference evicts entry 0. */
  CHECK(feed_encoder(d, "810d 6375 7374 6f6d 2d76 616c 7565 32") == 0);
  CHECK(qpack_decoder_table_size(d) == 215);
  CHECK(qpack_decoder_insert_count(d) == 5);
  CHECK_STR(take_instructions(d), "01");
  /* MaxEntries = 6: Required Insert Count 5 is encoded as 6. Base 5. */
  CHECK(decode_hex(d, 16, "0600 80 81 82 83", BIG_LIMIT, &f, &err) ==
        QPACK_DONE);
  CHECK_STR(f.text, "custom-key: custom-value2\n:authority: www.example.com\n"
                    "custom-key: custom-value\n:path: /sample/path\n");
  CHECK_STR(take_instructions(d), "90");
  /* Entry 0 was evicted. */
  CHECK(decode_hex(d, 20, "0600 84", BIG_LIMIT, &f, &err) == QPACK_ERROR);
  CHECK(err == H3Q_QPACK_DECOMPRESSION_FAILED);
  qpack_decoder_free(d);
}

/* The encoder stream of B.2 fed one byte at a time. */
static void test_encoder_stream_split(void) {
  qpack_decoder *d = qpack_decoder_new(220, 0);
  uint8_t b[64];
  size_t n = unhex("3fbd01 c00f 7777 772e 6578 616d 706c 652e 636f 6d"
                   "c10c 2f73 616d 706c 652f 7061 7468",
                   b, sizeof b);
  for (size_t i = 0; i < n; i++)
    CHECK(qpack_decoder_on_encoder_stream(d, b + i, 1) == 0);
  CHECK(qpack_decoder_insert_count(d) == 2);
  CHECK(qpack_decoder_table_size(d) == 106);
  CHECK_STR(take_instructions(d), "0101");
  qpack_decoder_free(d);
}

/* Inserts with Huffman-coded names and values, and every instruction
 * kind, checked through post-base and relative references. */
static void test_dynamic_huffman_and_post_base(void) {
  qpack_decoder *d = qpack_decoder_new(4096, 4);
  /* Capacity 4096; Insert with Literal Name, Huffman name custom-key and
   * Huffman value custom-value; Insert with static name ref :path,
   * Huffman value www.example.com. */
  CHECK(feed_encoder(d, "3fe11f"
                        "6825a849e95ba97d7f 8925a849e95bb8e8b4bf"
                        "c18cf1e3c2e5f23a6ba0ab90f4ff") == 0);
  CHECK(qpack_decoder_insert_count(d) == 2);
  CHECK_STR(take_instructions(d), "02");
  fields f;
  uint64_t err;
  /* RIC 2 (encoded 3), Base 0 (S=1, delta 1): post-base 0 and 1; post-base
   * name ref 1 with literal value; literal with relative name ref fails
   * (Base 0 has no entries before it). */
  CHECK(decode_hex(d, 0, "03 81 10 11 01 03 616263", BIG_LIMIT, &f, &err) ==
        QPACK_DONE);
  CHECK_STR(f.text, "custom-key: custom-value\n:path: www.example.com\n"
                    ":path: abc\n");
  CHECK(decode_hex(d, 0, "03 81 40 00", BIG_LIMIT, &f, &err) == QPACK_ERROR);
  /* Base 2: literal with dynamic name ref (relative 1 = abs 0), Huffman
   * value; literal with literal Huffman name. */
  CHECK(decode_hex(d, 0,
                   "03 00 41 8925a849e95bb8e8b4bf 2f01 25a849e95ba97d7f 01 78",
                   BIG_LIMIT, &f, &err) == QPACK_DONE);
  CHECK_STR(f.text, "custom-key: custom-value\ncustom-key: x\n");
  qpack_decoder_free(d);
}

/* Many inserts: the ring grows and wraps; the RIC wraps (RFC 9204
 * section 4.5.1.1 example: 100-byte table, RIC 9 encoded as 4). */
static void test_ring_and_ric_wrap(void) {
  qpack_decoder *d = qpack_decoder_new(100, 1);
  CHECK(feed_encoder(d, "3f45") == 0); /* capacity 100 */
  char hex[64];
  for (int i = 0; i < 10; i++) {
    /* Insert with Literal Name "a" = value "0".."9": 34 bytes each. */
    snprintf(hex, sizeof hex, "41 61 01 %02x", '0' + i);
    CHECK(feed_encoder(d, hex) == 0);
  }
  CHECK(qpack_decoder_insert_count(d) == 10);
  CHECK(qpack_decoder_table_size(d) == 68); /* two entries fit */
  fields f;
  uint64_t err;
  CHECK(decode_hex(d, 0, "04 00 80", BIG_LIMIT, &f, &err) == QPACK_DONE);
  CHECK_STR(f.text, "a: 8\n");
  CHECK(decode_hex(d, 0, "05 00 80", BIG_LIMIT, &f, &err) == QPACK_DONE);
  CHECK_STR(f.text, "a: 9\n");
  /* Encoded 6 means RIC 11: blocked. */
  CHECK(decode_hex(d, 0, "06 00 80", BIG_LIMIT, &f, &err) == QPACK_BLOCKED);
  qpack_decoder_cancel_stream(d, 0);
  /* abs 7 was evicted. */
  CHECK(decode_hex(d, 0, "04 00 81", BIG_LIMIT, &f, &err) == QPACK_ERROR);
  qpack_decoder_free(d);

  /* A large table: 300 entries, all reachable. */
  d = qpack_decoder_new(64 * 1024, 0);
  CHECK(feed_encoder(d, "3fe1ff03") == 0); /* capacity 65536 */
  for (int i = 0; i < 300; i++) {
    snprintf(hex, sizeof hex, "41 61 02 %02x%02x", '0' + i / 10 % 10,
             '0' + i % 10);
    CHECK(feed_encoder(d, hex) == 0);
  }
  CHECK(qpack_decoder_insert_count(d) == 300);
  for (int i = 0; i < 300; i += 37) {
    /* RIC = i + 1 (MaxEntries 2048, so encoded i + 2), Base = RIC. */
    uint8_t sec[16];
    size_t n = qpack_write_int(sec, 0, 8, (uint64_t)i + 2);
    sec[n++] = 0x00;
    sec[n++] = 0x80;
    char want[16];
    snprintf(want, sizeof want, "a: %d%d\n", i / 10 % 10, i % 10);
    fields g = {0};
    CHECK(qpack_decode_section(d, 0, sec, n, BIG_LIMIT, collect, &g, &err) ==
          QPACK_DONE);
    CHECK_STR(g.text, want);
  }
  qpack_decoder_free(d);
}

/* ---- decoder error paths ---- */

static void test_section_errors(void) {
  qpack_decoder *d = qpack_decoder_new(220, 1);
  fields f;
  uint64_t err;
  struct {
    const char *hex;
    const char *why;
  } bad[] = {
      {"", "empty"},
      {"00", "no base"},
      {"0000 ff24", "static index 99"},
      {"0000 5f54 00", "static name index 99"},
      {"0000 80", "dynamic reference with RIC 0"},
      {"0000 10", "post-base reference with RIC 0"},
      {"0000 00 00", "post-base name reference with RIC 0"},
      {"0000 40 00", "dynamic name reference with RIC 0"},
      {"0d00", "RIC encoding above 2 * MaxEntries"},
      {"0281", "sign bit with delta >= RIC"},
      {"0000 ffffffffffffffffffffff01", "prefix integer overflow"},
      {"ffffffffffffffffffffff01 00", "RIC integer overflow"},
      {"0000 51", "truncated value length"},
      {"0000 5105 2f", "truncated value"},
      {"0000 2305 6162", "truncated literal name"},
      {"0000 5184 ffffffff", "Huffman EOS in value"},
      {"0000 5181 00", "Huffman padding of zeros"},
      {"0000 ff", "truncated index"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    err = 0;
    qpack_result r = decode_hex(d, 0, bad[i].hex, BIG_LIMIT, &f, &err);
    if (r != QPACK_ERROR || err != H3Q_QPACK_DECOMPRESSION_FAILED)
      fprintf(stderr, "expected an error for %s\n", bad[i].why);
    CHECK(r == QPACK_ERROR && err == H3Q_QPACK_DECOMPRESSION_FAILED);
  }
  /* An empty HEADERS frame: the session passes its empty buffer, NULL
   * (found by fuzz_h3_session; UBSan flagged NULL + 0). */
  err = 0;
  memset(&f, 0, sizeof f);
  CHECK(qpack_decode_section(d, 0, NULL, 0, BIG_LIMIT, collect, &f, &err) ==
        QPACK_ERROR);
  CHECK(err == H3Q_QPACK_DECOMPRESSION_FAILED);
  /* Every truncation of a valid section fails or stops at a field
   * boundary; none crashes. */
  uint8_t sec[64];
  size_t n = unhex("0000 d9 510b 2f69 6e64 6578 2e68 746d 6c 23 616263"
                   "03 787878",
                   sec, sizeof sec);
  for (size_t cut = 0; cut <= n; cut++) {
    fields g = {0};
    qpack_result r =
        qpack_decode_section(d, 0, sec, cut, BIG_LIMIT, collect, &g, &err);
    bool boundary = cut == 2 || cut == 3 || cut == 16 || cut == n;
    CHECK(boundary ? r == QPACK_DONE : r == QPACK_ERROR);
  }
  qpack_decoder_free(d);

  /* Without a dynamic table any non-zero RIC is invalid. */
  d = qpack_decoder_new(0, 10);
  CHECK(decode_hex(d, 0, "0100 80", BIG_LIMIT, &f, &err) == QPACK_ERROR);
  CHECK(err == H3Q_QPACK_DECOMPRESSION_FAILED);
  qpack_decoder_free(d);
}

static void test_blocked_limit(void) {
  qpack_decoder *d = qpack_decoder_new(220, 1);
  fields f;
  uint64_t err;
  CHECK(decode_hex(d, 0, "0200 80", BIG_LIMIT, &f, &err) == QPACK_BLOCKED);
  /* The same stream retried still counts once. */
  CHECK(decode_hex(d, 0, "0200 80", BIG_LIMIT, &f, &err) == QPACK_BLOCKED);
  CHECK(qpack_decoder_blocked_streams(d) == 1);
  CHECK(decode_hex(d, 4, "0200 80", BIG_LIMIT, &f, &err) == QPACK_ERROR);
  CHECK(err == H3Q_QPACK_DECOMPRESSION_FAILED);
  qpack_decoder_free(d);

  d = qpack_decoder_new(220, 0);
  CHECK(decode_hex(d, 0, "0200 80", BIG_LIMIT, &f, &err) == QPACK_ERROR);
  CHECK(err == H3Q_QPACK_DECOMPRESSION_FAILED);
  qpack_decoder_free(d);
}

static void test_encoder_stream_errors(void) {
  struct {
    uint64_t max;
    const char *hex;
    const char *why;
  } bad[] = {
      {220, "3f8d02", "capacity 300 above 220"},
      {0, "21", "capacity 1 above 0"},
      {220, "3fbd01 ff24 00", "static name index 99"},
      {220, "3fbd01 80 00", "dynamic name reference into an empty table"},
      {220, "3fbd01 00", "duplicate of an empty table"},
      {220, "3fbd01 c0 01 61 01", "duplicate index 1 of one entry"},
      {64, "3f21 5f0a", "literal name of 41 bytes in a 64-byte table"},
      {64, "3f21 c07f00", "value longer than the table, before its bytes"},
      {64, "3f21 c0ff ffff ffff ffff ffff ff01", "value length overflow"},
      {0, "5f ff ff 03", "literal name in a table of capacity 0"},
      {220, "3fffffffffffffffffffff01", "capacity integer overflow"},
      {220, "3fbd01 c084 ffffffff", "Huffman EOS in value"},
      {220, "3fbd01 64ffffffff 00", "Huffman EOS in name"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    qpack_decoder *d = qpack_decoder_new(bad[i].max, 0);
    uint64_t e = feed_encoder(d, bad[i].hex);
    if (e != H3Q_QPACK_ENCODER_STREAM_ERROR)
      fprintf(stderr, "expected an encoder stream error for %s\n", bad[i].why);
    CHECK(e == H3Q_QPACK_ENCODER_STREAM_ERROR);
    /* Sticky. */
    CHECK(feed_encoder(d, "20") == H3Q_QPACK_ENCODER_STREAM_ERROR);
    qpack_decoder_free(d);
  }

  /* A Huffman value whose upper bound exceeds the room but whose decoded
   * size fits is accepted: :authority (10) + 15 + 32 = 57 <= 60. */
  qpack_decoder *d = qpack_decoder_new(60, 0);
  CHECK(feed_encoder(d, "3f1d c08cf1e3c2e5f23a6ba0ab90f4ff") == 0);
  CHECK(qpack_decoder_table_size(d) == 57);
  /* Lowering the capacity evicts. */
  CHECK(feed_encoder(d, "3f00") == 0); /* capacity 31 */
  CHECK(qpack_decoder_table_size(d) == 0);
  qpack_decoder_free(d);

  /* A Huffman value that decodes to more than the room (120 bytes of
   * '0' codes are 192 characters; the room is 220 - 32 - 10 = 178), with
   * all its bytes present. */
  d = qpack_decoder_new(220, 0);
  uint8_t ins[160];
  size_t n = unhex("3fbd01 c0f8", ins, sizeof ins); /* H, length 120 */
  memset(ins + n, 0, 120);
  CHECK(qpack_decoder_on_encoder_stream(d, ins, n + 120) ==
        H3Q_QPACK_ENCODER_STREAM_ERROR);
  qpack_decoder_free(d);
  /* The same with 110 bytes (176 characters) fits. */
  d = qpack_decoder_new(220, 0);
  n = unhex("3fbd01 c0ee", ins, sizeof ins); /* H, length 110 */
  memset(ins + n, 0, 110);
  CHECK(qpack_decoder_on_encoder_stream(d, ins, n + 110) == 0);
  CHECK(qpack_decoder_table_size(d) == 10 + 176 + 32);
  qpack_decoder_free(d);
}

static void test_section_too_large(void) {
  qpack_decoder *d = qpack_decoder_new(0, 0);
  fields f;
  uint64_t err;
  /* :path /index.html is 5 + 11 + 32 = 48 bytes. */
  const char *sec = "0000 510b 2f69 6e64 6578 2e68 746d 6c";
  CHECK(decode_hex(d, 0, sec, 48, &f, &err) == QPACK_DONE);
  CHECK(decode_hex(d, 0, sec, 47, &f, &err) == QPACK_TOO_LARGE);
  CHECK(f.count == 0 && err == 0);
  CHECK(decode_hex(d, 0, sec, 0, &f, &err) == QPACK_TOO_LARGE);
  /* The second field overflows: the first is delivered. */
  CHECK(decode_hex(d, 0, "0000 d9 d9", 2 * (7 + 3 + 32) - 1, &f, &err) ==
        QPACK_TOO_LARGE);
  CHECK(f.count == 1);

  /* A 1000-byte Huffman value of EOS codes: rejected as too large before
   * any expansion (expanding would find the EOS). */
  uint8_t big[1100];
  size_t n = unhex("0000 51ff e906", big, sizeof big); /* H, length 1000 */
  memset(big + n, 0xff, 1000);
  memset(&f, 0, sizeof f);
  CHECK(qpack_decode_section(d, 0, big, n + 1000, 200, collect, &f, &err) ==
        QPACK_TOO_LARGE);
  /* Same for a literal name. */
  n = unhex("0000 2fe107", big, sizeof big); /* H, name length 1000 */
  memset(big + n, 0xff, 1000);
  CHECK(qpack_decode_section(d, 0, big, n + 1000, 200, collect, &f, &err) ==
        QPACK_TOO_LARGE);
  /* Upper bound too large, exact size fits: www.example.com is 12 Huffman
   * bytes (bound 19) for 15 characters; 5 + 15 + 32 = 52. */
  CHECK(decode_hex(d, 0, "0000 518c f1e3 c2e5 f23a 6ba0 ab90 f4ff", 52, &f,
                   &err) == QPACK_DONE);
  CHECK_STR(f.text, ":path: www.example.com\n");
  CHECK(decode_hex(d, 0, "0000 518c f1e3 c2e5 f23a 6ba0 ab90 f4ff", 51, &f,
                   &err) == QPACK_TOO_LARGE);
  /* Literal-name Huffman name with an exact fit: custom-key (10) +
   * custom-value (12) + 32 = 54. */
  const char *lit = "0000 2f01 25a849e95ba97d7f 89 25a849e95bb8e8b4bf";
  CHECK(decode_hex(d, 0, lit, 54, &f, &err) == QPACK_DONE);
  CHECK_STR(f.text, "custom-key: custom-value\n");
  CHECK(decode_hex(d, 0, lit, 53, &f, &err) == QPACK_TOO_LARGE);
  CHECK(f.count == 0);
  qpack_decoder_free(d);

  /* With dynamic references, TOO_LARGE still acknowledges the section. */
  d = qpack_decoder_new(220, 0);
  CHECK(feed_encoder(d, "3fbd01 c00f 7777 772e 6578 616d 706c 652e 636f 6d") ==
        0);
  take_instructions(d);
  CHECK(decode_hex(d, 4, "0200 80", 10, &f, &err) == QPACK_TOO_LARGE);
  CHECK_STR(take_instructions(d), "84");
  qpack_decoder_free(d);
}

static void test_stopped(void) {
  qpack_decoder *d = qpack_decoder_new(0, 0);
  fields f = {0};
  f.stop_after = 1;
  uint8_t sec[8];
  size_t n = unhex("0000 d9 d1", sec, sizeof sec);
  uint64_t err;
  CHECK(qpack_decode_section(d, 0, sec, n, BIG_LIMIT, collect, &f, &err) ==
        QPACK_STOPPED);
  CHECK(f.count == 1 && err == 0);
  qpack_decoder_free(d);
}

/* ---- encoder ---- */

typedef struct field_case {
  const char *name, *value, *hex;
} field_case;

static void test_encode_fields(void) {
  const field_case cases[] = {
      {":status", "200", "d9"},
      {":status", "404", "db"},
      {":status", "500", "ff08"},
      {":path", "/", "c1"},
      /* Static name reference, Huffman value (shorter). */
      {":path", "/index.html", "518860d5485f2bce9a68"},
      {":authority", "www.example.com", "508cf1e3c2e5f23a6ba0ab90f4ff"},
      /* Literal name, Huffman name and value. */
      {"custom-key", "custom-value",
       "2f0125a849e95ba97d7f8925a849e95bb8e8b4bf"},
      /* Huffman not shorter: raw. */
      {"x", "\x01\x02", "2178 020102"},
      {"", "", "20 00"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    buf out = {0};
    CHECK(qpack_encode_field(
              &out, (const uint8_t *)cases[i].name, strlen(cases[i].name),
              (const uint8_t *)cases[i].value, strlen(cases[i].value)) == 0);
    uint8_t want[128];
    size_t n = unhex(cases[i].hex, want, sizeof want);
    CHECK(out.len == n && memcmp(out.data, want, n) == 0);
    if (out.len != n || memcmp(out.data, want, n) != 0)
      fprintf(stderr, "encode %s: got %s\n", cases[i].name,
              tohex(out.data, out.len));
    buf_free(&out);
  }
  /* qpack_encode_status matches qpack_encode_field for every code. */
  for (unsigned s = 100; s <= 999; s++) {
    buf a = {0}, b = {0};
    char v[4];
    snprintf(v, sizeof v, "%u", s);
    CHECK(qpack_encode_status(&a, s) == 0);
    CHECK(qpack_encode_field(&b, (const uint8_t *)":status", 7,
                             (const uint8_t *)v, 3) == 0);
    CHECK(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
    buf_free(&a);
    buf_free(&b);
  }
  buf o = {0};
  CHECK(qpack_encode_status(&o, 99) == -1);
  CHECK(qpack_encode_status(&o, 1000) == -1);
  CHECK(qpack_encode_prefix(&o) == 0 && o.len == 2 && o.data[0] == 0 &&
        o.data[1] == 0);
  buf_free(&o);
}

/* Random field lists through our encoder and decoder. */
static void test_encode_roundtrip(void) {
  qpack_decoder *d = qpack_decoder_new(4096, 16);
  unsigned seed = 777;
  static const char *names[] = {":status",       "content-type", "x-custom",
                                "cache-control", "set-cookie",   "a"};
  for (int round = 0; round < 300; round++) {
    buf out = {0};
    char want[8192];
    size_t wlen = 0;
    CHECK(qpack_encode_prefix(&out) == 0);
    int nfields = rand_r(&seed) % 8;
    for (int i = 0; i < nfields; i++) {
      const char *name = names[rand_r(&seed) % 6];
      char value[300];
      size_t vlen = (size_t)(rand_r(&seed) % 200);
      for (size_t k = 0; k < vlen; k++)
        value[k] = (char)(round % 3 ? 32 + rand_r(&seed) % 95
                                    : 1 + rand_r(&seed) % 255);
      if (rand_r(&seed) % 4 == 0) { /* a static-table value */
        const qpack_static_entry *e = &qpack_static_table[rand_r(&seed) % 99];
        name = e->name;
        vlen = e->vlen;
        memcpy(value, e->value, vlen);
      }
      CHECK(qpack_encode_field(&out, (const uint8_t *)name, strlen(name),
                               (const uint8_t *)value, vlen) == 0);
      wlen += (size_t)snprintf(want + wlen, sizeof want - wlen, "%s: %.*s\n",
                               name, (int)vlen, value);
    }
    want[wlen] = 0;
    fields f = {0};
    uint64_t err;
    CHECK(qpack_decode_section(d, 0, out.data, out.len, BIG_LIMIT, collect, &f,
                               &err) == QPACK_DONE);
    CHECK(f.count == nfields);
    CHECK(f.len == wlen && memcmp(f.text, want, wlen) == 0);
    buf_free(&out);
  }
  CHECK(qpack_decoder_instructions(d)->len == 0);
  qpack_decoder_free(d);
}

static void test_encoder_decoder_stream(void) {
  buf partial = {0};
  uint8_t b[32];
  size_t n = unhex("48 41 7f00", b, sizeof b); /* cancels: 8, 1, 63 */
  CHECK(qpack_encoder_on_decoder_stream(&partial, b, n) == 0);
  CHECK(partial.len == 0);
  /* Split inside a multi-byte stream id (63 + 0x81 + 0x01 << 7). */
  n = unhex("7f 81 01", b, sizeof b);
  CHECK(qpack_encoder_on_decoder_stream(&partial, b, 1) == 0);
  CHECK(partial.len == 1);
  CHECK(qpack_encoder_on_decoder_stream(&partial, b + 1, 1) == 0);
  CHECK(partial.len == 2);
  CHECK(qpack_encoder_on_decoder_stream(&partial, b + 2, 1) == 0);
  CHECK(partial.len == 0);
  CHECK(qpack_encoder_on_decoder_stream(&partial, NULL, 0) == 0);
  /* Section Acknowledgment and Insert Count Increment are errors. */
  n = unhex("84", b, sizeof b);
  CHECK(qpack_encoder_on_decoder_stream(&partial, b, n) ==
        H3Q_QPACK_DECODER_STREAM_ERROR);
  n = unhex("01", b, sizeof b);
  CHECK(qpack_encoder_on_decoder_stream(&partial, b, n) ==
        H3Q_QPACK_DECODER_STREAM_ERROR);
  /* Overflowing stream id. */
  n = unhex("7fffffffffffffffffffff01", b, sizeof b);
  CHECK(qpack_encoder_on_decoder_stream(&partial, b, n) ==
        H3Q_QPACK_DECODER_STREAM_ERROR);
  buf_free(&partial);
  /* Overflow found while completing a partial instruction. */
  n = unhex("7f ff ff ff ff ff ff ff ff", b, sizeof b);
  CHECK(qpack_encoder_on_decoder_stream(&partial, b, n) == 0);
  n = unhex("ff 01", b, sizeof b);
  CHECK(qpack_encoder_on_decoder_stream(&partial, b, n) ==
        H3Q_QPACK_DECODER_STREAM_ERROR);
  buf_free(&partial);
}

static int ignore_field(void *user, const uint8_t *name, size_t nlen,
                        const uint8_t *value, size_t vlen) {
  size_t *total = user;
  /* Touch every byte so that ASan sees out-of-bounds pointers. */
  for (size_t i = 0; i < nlen; i++)
    *total += name[i];
  for (size_t i = 0; i < vlen; i++)
    *total += value[i];
  return 0;
}

/* Mutated and random input never crashes, hangs or leaks (run under ASan
 * by make asan), and every failure carries an RFC 9204 error code. */
static void test_mutated_input(void) {
  uint8_t enc[64], sec[64], m[80];
  size_t elen = unhex("3fbd01 c00f 7777 772e 6578 616d 706c 652e 636f 6d"
                      "c10c 2f73 616d 706c 652f 7061 7468 02",
                      enc, sizeof enc);
  size_t slen =
      unhex("0400 80 c1 81 10 5184 f1e3 c2e5 2f01 25a849e95ba97d7f 01 78", sec,
            sizeof sec);
  unsigned seed = 4242;
  size_t total = 0;
  for (int round = 0; round < 20000; round++) {
    qpack_decoder *d = qpack_decoder_new(220, 2);
    const uint8_t *src = round % 2 ? enc : sec;
    size_t n = round % 2 ? elen : slen;
    memcpy(m, src, n);
    for (int k = rand_r(&seed) % 4; k >= 0; k--)
      m[(size_t)rand_r(&seed) % n] ^= (uint8_t)(1u << (rand_r(&seed) % 8));
    if (round % 7 == 0) /* pure noise */
      for (size_t i = 0; i < n; i++)
        m[i] = (uint8_t)rand_r(&seed);
    size_t cut = (size_t)rand_r(&seed) % (n + 1);
    uint64_t e = qpack_decoder_on_encoder_stream(d, round % 2 ? m : enc, cut);
    CHECK(e == 0 || e == H3Q_QPACK_ENCODER_STREAM_ERROR);
    uint64_t err = 0;
    qpack_result r = qpack_decode_section(
        d, 0, round % 2 ? sec : m, round % 2 ? slen : n,
        (uint64_t)rand_r(&seed) % 400, ignore_field, &total, &err);
    CHECK(r != QPACK_ERROR || err == H3Q_QPACK_DECOMPRESSION_FAILED);
    CHECK(r == QPACK_ERROR || err == 0);
    qpack_decoder_free(d);
  }
  CHECK(total > 0);
}

int main(void) {
  test_static_table();
  test_prefix_integers();
  test_huffman_vectors();
  test_huffman_roundtrip();
  test_huffman_invalid();
  test_rfc_b1_static_name();
  test_rfc_b2_to_b5();
  test_encoder_stream_split();
  test_dynamic_huffman_and_post_base();
  test_ring_and_ric_wrap();
  test_section_errors();
  test_blocked_limit();
  test_encoder_stream_errors();
  test_section_too_large();
  test_stopped();
  test_encode_fields();
  test_encode_roundtrip();
  test_encoder_decoder_stream();
  test_mutated_input();
  return check_report("test_qpack");
}
