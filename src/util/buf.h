/* A growable byte buffer: append at the end, consume from the front. Used
 * for frames and QPACK instructions that wait for stream capacity, and for
 * header blocks being collected. */
#ifndef H3Q_UTIL_BUF_H
#define H3Q_UTIL_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct buf {
  uint8_t *data;
  size_t len, cap;
} buf;

/* Makes room for extra more bytes. Returns 0, or -1 when out of memory. */
int buf_reserve(buf *b, size_t extra);

/* Appends n bytes (p may be NULL when n is 0). Returns 0 or -1. */
int buf_append(buf *b, const void *p, size_t n);

/* Appends one byte. Returns 0 or -1. */
int buf_append_byte(buf *b, uint8_t byte);

/* Appends a QUIC varint (RFC 9000 section 16). Returns 0, or -1 when out of
 * memory or v does not fit in 62 bits. */
int buf_append_varint(buf *b, uint64_t v);

/* Drops the first n bytes (n <= len). */
void buf_consume(buf *b, size_t n);

/* Frees the storage; the buffer is empty and reusable afterwards. */
void buf_free(buf *b);

#endif
