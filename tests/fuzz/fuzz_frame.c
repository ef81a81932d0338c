/* HTTP/3 frame pieces (src/h3/frame.h). Input: one byte giving the piece
 * size (1..16) in which the rest is fed to the frame header reader; the
 * rest is also decoded as a SETTINGS payload and as a one-varint payload,
 * and its first 16 bytes give a type and length to encode.
 * Invariants: the incremental header reader, fed in any pieces, agrees
 * with decoding the two varints at once and takes no byte past them;
 * encoded headers, varint frames and SETTINGS frames read back to what
 * was written; SETTINGS errors are exactly the documented ones (checked
 * against an independent walk of the identifier/value pairs); frame
 * placement follows RFC 9114 sections 7.2.8 and 9. */
#include "fuzz.h"
#include "h3/frame.h"
#include "h3q.h"
#include "util/varint.h"

/* Feeds p[0..len) in pieces of step bytes; returns the bytes taken. A
 * piece may cover several of the reader's decisions (type, then length),
 * so only the total is checked, by the caller. */
static size_t feed_in_pieces(h3_frame_header_reader *r, const uint8_t *p,
                             size_t len, size_t step) {
  size_t taken = 0;
  while (taken < len && h3_frame_header_need(r) > 0) {
    size_t piece = len - taken < step ? len - taken : step;
    size_t n = h3_frame_header_feed(r, p + taken, piece);
    FUZZ_CHECK(n > 0 && n <= piece);
    taken += n;
  }
  return taken;
}

static void check_reader(const uint8_t *p, size_t len, size_t step) {
  h3_frame_header_reader r;
  memset(&r, 0xa5, sizeof r); /* reset must be all it takes */
  h3_frame_header_reset(&r);
  FUZZ_CHECK(h3_frame_header_need(&r) >= 1);
  size_t taken = feed_in_pieces(&r, p, len, step);
  uint64_t want_type = 0, want_len = 0, type = 0, flen = 0;
  ssize_t a = varint_decode(p, len, &want_type);
  ssize_t b = a < 0 ? -1 : varint_decode(p + a, len - (size_t)a, &want_len);
  FUZZ_CHECK(h3_frame_header_type(&r, &type) == (a >= 0));
  if (a >= 0) {
    FUZZ_CHECK(type == want_type);
  }
  if (b < 0) { /* the input ends inside the header */
    FUZZ_CHECK(taken == len && h3_frame_header_need(&r) >= 1);
    return;
  }
  FUZZ_CHECK(h3_frame_header_need(&r) == 0);
  FUZZ_CHECK(taken == (size_t)a + (size_t)b);
  h3_frame_header_get(&r, &type, &flen);
  FUZZ_CHECK(type == want_type && flen == want_len);
  FUZZ_CHECK(h3_frame_header_feed(&r, p, len) == 0); /* complete: no more */
}

static uint64_t take_u62(const uint8_t *p, size_t len) {
  uint64_t v = 0;
  for (size_t i = 0; i < 8 && i < len; i++) {
    v = (v << 8) | p[i];
  }
  return v & VARINT_MAX;
}

/* A header written either way reads back. */
static void check_header_roundtrip(uint64_t type, uint64_t length) {
  uint8_t hdr[16];
  size_t n = h3_frame_header_encode(hdr, type, length);
  FUZZ_CHECK(n == varint_len(type) + varint_len(length));
  buf b = {0};
  FUZZ_CHECK(h3_frame_write_header(&b, type, length) == 0);
  FUZZ_CHECK(b.len == n && memcmp(b.data, hdr, n) == 0);
  buf_free(&b);
  h3_frame_header_reader r;
  h3_frame_header_reset(&r);
  FUZZ_CHECK(h3_frame_header_feed(&r, hdr, n) == n);
  FUZZ_CHECK(h3_frame_header_need(&r) == 0);
  uint64_t t, l;
  h3_frame_header_get(&r, &t, &l);
  FUZZ_CHECK(t == type && l == length);
}

/* A one-varint frame (GOAWAY and the like) reads back. */
static void check_varint_frame(uint64_t type, uint64_t value) {
  buf b = {0};
  FUZZ_CHECK(h3_frame_write_varint_frame(&b, type, value) == 0);
  h3_frame_header_reader r;
  h3_frame_header_reset(&r);
  size_t n = h3_frame_header_feed(&r, b.data, b.len);
  FUZZ_CHECK(h3_frame_header_need(&r) == 0);
  uint64_t t, l, v;
  h3_frame_header_get(&r, &t, &l);
  FUZZ_CHECK(t == type && l == b.len - n);
  FUZZ_CHECK(h3_frame_decode_varint_payload(b.data + n, b.len - n, &v));
  FUZZ_CHECK(v == value);
  buf_free(&b);
}

static void check_varint_payload(const uint8_t *p, size_t len) {
  uint64_t v = 0, want = 0;
  ssize_t n = varint_decode(p, len, &want);
  bool ok = h3_frame_decode_varint_payload(p, len, &v);
  FUZZ_CHECK(ok == (n > 0 && (size_t)n == len));
  if (ok) {
    FUZZ_CHECK(v == want);
  }
}

/* What an independent walk of the pairs says about a SETTINGS payload. */
typedef struct settings_walk {
  bool truncated;  /* a varint runs past the payload */
  bool forbidden;  /* an HTTP/2 identifier or a bad boolean */
  bool duplicates; /* some identifier occurs twice */
  bool known_dup;  /* one of the five known identifiers occurs twice */
} settings_walk;

static bool is_known_setting(uint64_t id) {
  return id == H3_SETTING_QPACK_MAX_TABLE_CAPACITY ||
         id == H3_SETTING_MAX_FIELD_SECTION_SIZE ||
         id == H3_SETTING_QPACK_BLOCKED_STREAMS ||
         id == H3_SETTING_ENABLE_CONNECT_PROTOCOL ||
         id == H3_SETTING_H3_DATAGRAM;
}

static settings_walk walk_settings(const uint8_t *p, size_t len) {
  settings_walk w = {false, false, false, false};
  uint64_t ids[64];
  size_t count = 0, off = 0;
  while (off < len) {
    uint64_t id, value;
    ssize_t a = varint_decode(p + off, len - off, &id);
    ssize_t b = a < 0 ? -1
                      : varint_decode(p + off + (size_t)a,
                                      len - off - (size_t)a, &value);
    if (b < 0) {
      w.truncated = true;
      return w;
    }
    off += (size_t)a + (size_t)b;
    bool is_bool = id == H3_SETTING_ENABLE_CONNECT_PROTOCOL ||
                   id == H3_SETTING_H3_DATAGRAM;
    w.forbidden |= (id >= 0x02 && id <= 0x05) || (is_bool && value > 1);
    for (size_t i = 0; i < count; i++) {
      if (ids[i] == id) {
        w.duplicates = true;
        w.known_dup |= is_known_setting(id);
      }
    }
    if (count < sizeof ids / sizeof ids[0]) {
      ids[count++] = id;
    } else {
      w.duplicates = true; /* unknown beyond this: make no claim */
    }
  }
  return w;
}

static void check_settings_equal(const h3_settings *a, const h3_settings *b) {
  FUZZ_CHECK(a->qpack_max_table_capacity == b->qpack_max_table_capacity);
  FUZZ_CHECK(a->max_field_section_size == b->max_field_section_size);
  FUZZ_CHECK(a->qpack_blocked_streams == b->qpack_blocked_streams);
  FUZZ_CHECK(a->enable_connect_protocol == b->enable_connect_protocol);
  FUZZ_CHECK(a->h3_datagram == b->h3_datagram);
  FUZZ_CHECK(a->extra_count == b->extra_count);
  for (size_t i = 0; i < a->extra_count && i < H3_SETTINGS_EXTRA_MAX; i++) {
    FUZZ_CHECK(a->extra[i].id == b->extra[i].id);
    FUZZ_CHECK(a->extra[i].value == b->extra[i].value);
  }
}

/* Our SETTINGS frame for s decodes to s again. */
static void check_settings_roundtrip(const h3_settings *s) {
  buf b = {0};
  FUZZ_CHECK(h3_settings_write_frame(&b, s) == 0);
  h3_frame_header_reader r;
  h3_frame_header_reset(&r);
  size_t n = h3_frame_header_feed(&r, b.data, b.len);
  uint64_t type, length;
  FUZZ_CHECK(h3_frame_header_need(&r) == 0);
  h3_frame_header_get(&r, &type, &length);
  FUZZ_CHECK(type == H3_FRAME_SETTINGS && length == b.len - n);
  h3_settings again;
  h3_settings_init(&again);
  FUZZ_CHECK(h3_settings_decode(&again, b.data + n, b.len - n) == 0);
  check_settings_equal(s, &again);
  buf_free(&b);
}

static void check_settings(const uint8_t *p, size_t len) {
  h3_settings s;
  h3_settings_init(&s);
  uint64_t err = h3_settings_decode(&s, p, len);
  settings_walk w = walk_settings(p, len);
  FUZZ_CHECK(err == 0 || err == H3Q_H3_FRAME_ERROR ||
             err == H3Q_H3_SETTINGS_ERROR);
  FUZZ_CHECK(s.extra_count <= H3_SETTINGS_EXTRA_MAX);
  if (err != 0) {
    FUZZ_CHECK(w.truncated || w.forbidden || w.duplicates);
    if (!w.forbidden && !w.duplicates) {
      FUZZ_CHECK(err == H3Q_H3_FRAME_ERROR);
    }
    return;
  }
  FUZZ_CHECK(!w.truncated && !w.forbidden && !w.known_dup);
  for (size_t i = 0; i < s.extra_count; i++) {
    uint64_t v;
    FUZZ_CHECK(!is_known_setting(s.extra[i].id));
    FUZZ_CHECK(h3_settings_extra(&s, s.extra[i].id, &v));
    FUZZ_CHECK(v == s.extra[i].value);
  }
  check_settings_roundtrip(&s);
}

/* RFC 9114 section 7.2.8 (HTTP/2 types are errors anywhere) and section
 * 9 (unknown and reserved types are ignored anywhere). */
static void check_placement(uint64_t type) {
  bool control = h3_frame_allowed_on_control(type);
  bool request = h3_frame_allowed_on_request(type);
  if (h3_is_reserved_id(type)) {
    FUZZ_CHECK(!h3_frame_is_known(type) && !h3_frame_is_http2_only(type));
  }
  if (h3_frame_is_http2_only(type)) {
    FUZZ_CHECK(!control && !request);
  } else if (!h3_frame_is_known(type)) {
    FUZZ_CHECK(control && request);
  } else {
    FUZZ_CHECK(!(control && request)); /* no known frame fits both */
  }
  FUZZ_CHECK(h3_is_reserved_id(type) ==
             (type >= 0x21 && (type - 0x21) % 0x1f == 0));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) {
    return 0;
  }
  size_t step = (size_t)(data[0] % 16) + 1;
  const uint8_t *p = data + 1;
  size_t len = size - 1;
  check_reader(p, len, step);
  check_varint_payload(p, len);
  check_settings(p, len);
  uint64_t type = take_u62(p, len);
  uint64_t length = len > 8 ? take_u62(p + 8, len - 8) : 0;
  check_header_roundtrip(type, length);
  check_varint_frame(type, length);
  check_placement(type);
  check_placement(type & 0xff);
  uint64_t t;
  if (varint_decode(p, len, &t) > 0) {
    check_placement(t);
  }
  return 0;
}
