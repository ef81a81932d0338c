/* The Capsule Protocol (RFC 9297 section 3): capsules (type, length,
 * value) in a byte stream that arrives in pieces, and their encoding.
 * The framing is that of HTTP/3 frames, so the header reader is h3's.
 * Pure code: no streams, no quiche. */
#ifndef H3Q_DGRAM_CAPSULE_H
#define H3Q_DGRAM_CAPSULE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "h3/frame.h"
#include "util/buf.h"

#define CAPSULE_DATAGRAM 0x00 /* RFC 9297 section 3.5 */
/* Values up to this size are collected and handed over; larger ones are
 * skipped as they stream by (the callback learns their type and size). */
#define CAPSULE_VALUE_MAX 65536

/* One capsule: value is NULL (and len the declared size) when it was
 * larger than CAPSULE_VALUE_MAX. Return false to stop reading: the reader
 * may then have been freed by the callback and is not touched again. */
typedef bool (*capsule_cb)(uint64_t type, const uint8_t *value, size_t len,
                           void *user);

typedef struct capsule_reader {
  h3_frame_header_reader hdr;
  uint64_t type, size, left; /* current capsule; left = bytes to come */
  bool in_value;
  bool skipping; /* larger than CAPSULE_VALUE_MAX: not collected */
  buf value;
} capsule_reader;

/* Feeds stream bytes, calling cb for each complete capsule. Returns 0
 * when every byte was taken, 1 when cb asked to stop, -1 when out of
 * memory. */
int capsule_feed(capsule_reader *r, const uint8_t *p, size_t len, capsule_cb cb,
                 void *user);

/* True between capsules (a stream may end here; elsewhere it is
 * truncated, which makes the message malformed). */
bool capsule_at_boundary(const capsule_reader *r);

void capsule_reader_free(capsule_reader *r);

/* Writes a capsule header (type, value length) into hdr (>= 16 bytes);
 * returns its size. */
size_t capsule_header_encode(uint8_t *hdr, uint64_t type, uint64_t len);

#endif
