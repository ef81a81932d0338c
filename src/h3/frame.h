/* HTTP/3 frames (RFC 9114 section 7): types, an incremental frame header
 * reader, SETTINGS and GOAWAY payload codecs, and frame writers. Pure code
 * (no quiche), so it is unit-tested and fuzzed on bytes alone. */
#ifndef H3Q_H3_FRAME_H
#define H3Q_H3_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

#define H3_FRAME_DATA 0x00
#define H3_FRAME_HEADERS 0x01
#define H3_FRAME_CANCEL_PUSH 0x03
#define H3_FRAME_SETTINGS 0x04
#define H3_FRAME_PUSH_PROMISE 0x05
#define H3_FRAME_GOAWAY 0x07
#define H3_FRAME_MAX_PUSH_ID 0x0d
#define H3_FRAME_PRIORITY_UPDATE_REQUEST 0xf0700 /* RFC 9218 */
#define H3_FRAME_PRIORITY_UPDATE_PUSH 0xf0701

/* Unidirectional stream types (RFC 9114 section 6.2, RFC 9204 4.2). */
#define H3_STREAM_CONTROL 0x00
#define H3_STREAM_PUSH 0x01
#define H3_STREAM_QPACK_ENCODER 0x02
#define H3_STREAM_QPACK_DECODER 0x03

/* SETTINGS identifiers. */
#define H3_SETTING_QPACK_MAX_TABLE_CAPACITY 0x01
#define H3_SETTING_MAX_FIELD_SECTION_SIZE 0x06
#define H3_SETTING_QPACK_BLOCKED_STREAMS 0x07
#define H3_SETTING_ENABLE_CONNECT_PROTOCOL 0x08 /* RFC 9220 */
#define H3_SETTING_H3_DATAGRAM 0x33             /* RFC 9297 */

/* Frame types of HTTP/2 that HTTP/3 reserves: receiving one is
 * H3_FRAME_UNEXPECTED (RFC 9114 section 7.2.8). */
bool h3_frame_is_http2_only(uint64_t type);

/* Where a frame may appear: on the control stream, on a request stream. A
 * known frame outside its place is H3_FRAME_UNEXPECTED; unknown and
 * reserved types are allowed everywhere and skipped. */
bool h3_frame_allowed_on_control(uint64_t type);
bool h3_frame_allowed_on_request(uint64_t type);
bool h3_frame_is_known(uint64_t type);

/* Reads a frame header (type and length varints) from a byte stream that
 * arrives in pieces. Feed bytes until it reports the header complete. */
typedef struct h3_frame_header_reader {
  uint8_t bytes[16];
  uint8_t have;
} h3_frame_header_reader;

/* How many more bytes the reader needs before it can decide (at least 1
 * while incomplete), or 0 when the header is complete. */
size_t h3_frame_header_need(const h3_frame_header_reader *r);

/* Appends up to the needed bytes from p; returns how many it took. */
size_t h3_frame_header_feed(h3_frame_header_reader *r, const uint8_t *p,
                            size_t len);

/* True once the type varint is complete (the length may still be
 * missing); *type is then set. Lets a reader look at a stream's first
 * frame type before reading further. */
bool h3_frame_header_type(const h3_frame_header_reader *r, uint64_t *type);

/* The decoded header once complete (need == 0). */
void h3_frame_header_get(const h3_frame_header_reader *r, uint64_t *type,
                         uint64_t *length);

/* Starts the next frame. */
void h3_frame_header_reset(h3_frame_header_reader *r);

/* Peer SETTINGS (RFC 9114 section 7.2.4). Unknown identifiers are kept in
 * extra[] (up to H3_SETTINGS_EXTRA_MAX; more are ignored) so extensions
 * such as WebTransport can read them; reserved (GREASE) identifiers are
 * dropped. */
#define H3_SETTINGS_EXTRA_MAX 16
typedef struct h3_settings {
  uint64_t qpack_max_table_capacity; /* default 0 */
  uint64_t max_field_section_size;   /* default unlimited (UINT64_MAX) */
  uint64_t qpack_blocked_streams;    /* default 0 */
  bool enable_connect_protocol;
  bool h3_datagram;
  struct {
    uint64_t id, value;
  } extra[H3_SETTINGS_EXTRA_MAX];
  size_t extra_count;
} h3_settings;

/* The defaults a peer has before its SETTINGS arrive. */
void h3_settings_init(h3_settings *s);

/* Decodes a SETTINGS payload. Returns 0, or the connection error:
 * H3_FRAME_ERROR (a varint runs past the payload), H3_SETTINGS_ERROR
 * (duplicate identifier, an HTTP/2-only identifier 0x02..0x05, or a
 * boolean setting other than 0 or 1). */
uint64_t h3_settings_decode(h3_settings *s, const uint8_t *p, size_t len);

/* Looks up an identifier the decoder kept in extra[]; false when absent. */
bool h3_settings_extra(const h3_settings *s, uint64_t id, uint64_t *value);

/* Appends a whole SETTINGS frame with our values (omitting defaults) plus
 * extra identifiers (for extensions and GREASE). Returns 0 or -1 (OOM). */
int h3_settings_write_frame(buf *out, const h3_settings *s);

/* Appends a frame header. Returns 0 or -1 (OOM). */
int h3_frame_write_header(buf *out, uint64_t type, uint64_t length);

/* Writes a frame header into hdr (at least 16 bytes); returns its size. */
size_t h3_frame_header_encode(uint8_t *hdr, uint64_t type, uint64_t length);

/* Appends a frame whose payload is one varint (GOAWAY, MAX_PUSH_ID,
 * CANCEL_PUSH). Returns 0 or -1. */
int h3_frame_write_varint_frame(buf *out, uint64_t type, uint64_t value);

/* Decodes a payload that must be exactly one varint. Returns false when it
 * is not (H3_FRAME_ERROR). */
bool h3_frame_decode_varint_payload(const uint8_t *p, size_t len,
                                    uint64_t *value);

/* Reserved ("GREASE") identifiers 0x1f * N + 0x21 (RFC 9114 section 7.2.8,
 * 7.2.4.1, 6.2.3). */
bool h3_is_reserved_id(uint64_t id);

#endif
