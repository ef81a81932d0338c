/* QUIC variable-length integers (RFC 9000 section 16). */
#ifndef H3Q_UTIL_VARINT_H
#define H3Q_UTIL_VARINT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define VARINT_MAX ((UINT64_C(1) << 62) - 1)

/* Bytes needed to encode v (1, 2, 4 or 8); 0 if v > VARINT_MAX. */
size_t varint_len(uint64_t v);

/* Encodes v into buf; returns bytes written, or 0 if v > VARINT_MAX or cap
 * is too small. */
size_t varint_encode(uint8_t *buf, size_t cap, uint64_t v);

/* Decodes one varint from buf; returns bytes consumed, or -1 when buf is
 * shorter than the encoding says. */
ssize_t varint_decode(const uint8_t *buf, size_t len, uint64_t *out);

#endif
