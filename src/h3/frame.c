#include "h3/frame.h"

#include <string.h>

#include "util/varint.h"

bool h3_frame_is_http2_only(uint64_t type) {
  return type == 0x02 || type == 0x06 || type == 0x08 || type == 0x09;
}

bool h3_frame_is_known(uint64_t type) {
  switch (type) {
  case H3_FRAME_DATA:
  case H3_FRAME_HEADERS:
  case H3_FRAME_CANCEL_PUSH:
  case H3_FRAME_SETTINGS:
  case H3_FRAME_PUSH_PROMISE:
  case H3_FRAME_GOAWAY:
  case H3_FRAME_MAX_PUSH_ID:
  case H3_FRAME_PRIORITY_UPDATE_REQUEST:
  case H3_FRAME_PRIORITY_UPDATE_PUSH:
    return true;
  default:
    return h3_frame_is_http2_only(type);
  }
}

bool h3_frame_allowed_on_control(uint64_t type) {
  switch (type) {
  case H3_FRAME_CANCEL_PUSH:
  case H3_FRAME_SETTINGS:
  case H3_FRAME_GOAWAY:
  case H3_FRAME_MAX_PUSH_ID:
  case H3_FRAME_PRIORITY_UPDATE_REQUEST:
  case H3_FRAME_PRIORITY_UPDATE_PUSH:
    return true;
  default:
    return !h3_frame_is_known(type);
  }
}

bool h3_frame_allowed_on_request(uint64_t type) {
  /* PUSH_PROMISE is allowed only from servers; we are one. */
  if (type == H3_FRAME_DATA || type == H3_FRAME_HEADERS)
    return true;
  return !h3_frame_is_known(type);
}

/* Length of a varint from its first byte. */
static size_t varint_size(uint8_t first) {
  return (size_t)1 << (first >> 6);
}

size_t h3_frame_header_need(const h3_frame_header_reader *r) {
  if (r->have == 0)
    return 1;
  size_t tlen = varint_size(r->bytes[0]);
  if (r->have < tlen)
    return tlen - r->have;
  if (r->have == tlen)
    return 1;
  size_t llen = varint_size(r->bytes[tlen]);
  return r->have < tlen + llen ? tlen + llen - r->have : 0;
}

size_t h3_frame_header_feed(h3_frame_header_reader *r, const uint8_t *p,
                            size_t len) {
  size_t taken = 0;
  for (;;) {
    size_t need = h3_frame_header_need(r);
    if (need == 0 || taken == len)
      return taken;
    size_t n = need < len - taken ? need : len - taken;
    memcpy(r->bytes + r->have, p + taken, n);
    r->have = (uint8_t)(r->have + n);
    taken += n;
  }
}

bool h3_frame_header_type(const h3_frame_header_reader *r, uint64_t *type) {
  if (r->have == 0 || r->have < varint_size(r->bytes[0]))
    return false;
  varint_decode(r->bytes, r->have, type);
  return true;
}

void h3_frame_header_get(const h3_frame_header_reader *r, uint64_t *type,
                         uint64_t *length) {
  ssize_t t = varint_decode(r->bytes, r->have, type);
  varint_decode(r->bytes + t, r->have - (size_t)t, length);
}

void h3_frame_header_reset(h3_frame_header_reader *r) {
  r->have = 0;
}

void h3_settings_init(h3_settings *s) {
  memset(s, 0, sizeof *s);
  s->max_field_section_size = UINT64_MAX;
}

bool h3_is_reserved_id(uint64_t id) {
  return id >= 0x21 && (id - 0x21) % 0x1f == 0;
}

bool h3_settings_extra(const h3_settings *s, uint64_t id, uint64_t *value) {
  for (size_t i = 0; i < s->extra_count; i++) {
    if (s->extra[i].id == id) {
      *value = s->extra[i].value;
      return true;
    }
  }
  return false;
}

/* Stores one identifier; returns 0 or the error code. seen[] remembers
 * the known ones, extra[] the others, for the duplicate check. */
static uint64_t settings_store(h3_settings *s, uint64_t id, uint64_t value,
                               bool seen[8], size_t *ignored_unknown) {
  if (id >= 0x02 && id <= 0x05)
    return 0x109; /* HTTP/2 settings: H3_SETTINGS_ERROR */
  bool is_bool =
      id == H3_SETTING_ENABLE_CONNECT_PROTOCOL || id == H3_SETTING_H3_DATAGRAM;
  if (is_bool && value > 1)
    return 0x109;
  size_t slot;
  switch (id) {
  case H3_SETTING_QPACK_MAX_TABLE_CAPACITY:
    slot = 0, s->qpack_max_table_capacity = value;
    break;
  case H3_SETTING_MAX_FIELD_SECTION_SIZE:
    slot = 1, s->max_field_section_size = value;
    break;
  case H3_SETTING_QPACK_BLOCKED_STREAMS:
    slot = 2, s->qpack_blocked_streams = value;
    break;
  case H3_SETTING_ENABLE_CONNECT_PROTOCOL:
    slot = 3, s->enable_connect_protocol = value == 1;
    break;
  case H3_SETTING_H3_DATAGRAM:
    slot = 4, s->h3_datagram = value == 1;
    break;
  default: {
    uint64_t old;
    if (h3_settings_extra(s, id, &old))
      return 0x109;
    if (h3_is_reserved_id(id))
      return 0; /* GREASE: ignored */
    if (s->extra_count == H3_SETTINGS_EXTRA_MAX) {
      (*ignored_unknown)++;
      return 0;
    }
    s->extra[s->extra_count].id = id;
    s->extra[s->extra_count++].value = value;
    return 0;
  }
  }
  if (seen[slot])
    return 0x109;
  seen[slot] = true;
  return 0;
}

uint64_t h3_settings_decode(h3_settings *s, const uint8_t *p, size_t len) {
  bool seen[8] = {false};
  size_t ignored = 0, off = 0;
  while (off < len) {
    uint64_t id, value;
    ssize_t a = varint_decode(p + off, len - off, &id);
    if (a < 0)
      return 0x106; /* H3_FRAME_ERROR */
    off += (size_t)a;
    ssize_t b = varint_decode(p + off, len - off, &value);
    if (b < 0)
      return 0x106;
    off += (size_t)b;
    uint64_t err = settings_store(s, id, value, seen, &ignored);
    if (err)
      return err;
  }
  return 0;
}

static int put_setting(buf *b, uint64_t id, uint64_t value) {
  return buf_append_varint(b, id) || buf_append_varint(b, value) ? -1 : 0;
}

int h3_settings_write_frame(buf *out, const h3_settings *s) {
  buf payload = {0};
  int rc = 0;
  if (s->qpack_max_table_capacity)
    rc |= put_setting(&payload, H3_SETTING_QPACK_MAX_TABLE_CAPACITY,
                      s->qpack_max_table_capacity);
  if (s->max_field_section_size != UINT64_MAX)
    rc |= put_setting(&payload, H3_SETTING_MAX_FIELD_SECTION_SIZE,
                      s->max_field_section_size);
  if (s->qpack_blocked_streams)
    rc |= put_setting(&payload, H3_SETTING_QPACK_BLOCKED_STREAMS,
                      s->qpack_blocked_streams);
  if (s->enable_connect_protocol)
    rc |= put_setting(&payload, H3_SETTING_ENABLE_CONNECT_PROTOCOL, 1);
  if (s->h3_datagram)
    rc |= put_setting(&payload, H3_SETTING_H3_DATAGRAM, 1);
  for (size_t i = 0; i < s->extra_count; i++)
    rc |= put_setting(&payload, s->extra[i].id, s->extra[i].value);
  if (rc == 0)
    rc = h3_frame_write_header(out, H3_FRAME_SETTINGS, payload.len) ||
                 buf_append(out, payload.data, payload.len)
             ? -1
             : 0;
  buf_free(&payload);
  return rc;
}

size_t h3_frame_header_encode(uint8_t *hdr, uint64_t type, uint64_t length) {
  size_t n = varint_encode(hdr, 8, type);
  return n + varint_encode(hdr + n, 8, length);
}

int h3_frame_write_header(buf *out, uint64_t type, uint64_t length) {
  return buf_append_varint(out, type) || buf_append_varint(out, length) ? -1
                                                                        : 0;
}

int h3_frame_write_varint_frame(buf *out, uint64_t type, uint64_t value) {
  return h3_frame_write_header(out, type, varint_len(value)) ||
                 buf_append_varint(out, value)
             ? -1
             : 0;
}

bool h3_frame_decode_varint_payload(const uint8_t *p, size_t len,
                                    uint64_t *value) {
  ssize_t n = varint_decode(p, len, value);
  return n > 0 && (size_t)n == len;
}
