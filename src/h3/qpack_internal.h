/* Internals shared by the QPACK sources, the unit tests and the test tool:
 * the static table, prefix integers and a Huffman decoder that tells an
 * invalid code from a full output buffer. */
#ifndef H3Q_H3_QPACK_INTERNAL_H
#define H3Q_H3_QPACK_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define QPACK_STATIC_COUNT 99

typedef struct qpack_static_entry {
  const char *name, *value;
  uint8_t nlen, vlen;
} qpack_static_entry;

extern const qpack_static_entry qpack_static_table[QPACK_STATIC_COUNT];

/* Returns the index of the entry whose name and value both match, or -1.
 * *name_index receives the lowest index of an entry with that name, or -1
 * when no entry has it. */
int qpack_static_find(const uint8_t *name, size_t nlen, const uint8_t *value,
                      size_t vlen, int *name_index);

/* Index of ":status" with that code, or -1 when the table has none. */
int qpack_static_status_index(unsigned status);

/* Largest value a prefix integer may carry: 62 bits, as RFC 9204 section
 * 4.1.1 requires decoders to accept (stream ids and counts fit). */
#define QPACK_INT_MAX ((UINT64_C(1) << 62) - 1)

/* Most bytes a prefix integer up to UINT64_MAX takes: the prefix byte and
 * ten 7-bit continuation bytes. */
#define QPACK_INT_MAXLEN 11

/* Reads an RFC 7541 section 5.1 integer whose prefix is the low
 * prefix_bits (1..8) bits of p[0]. Returns the bytes used, 0 when len ends
 * inside the integer, or -1 when the value exceeds QPACK_INT_MAX. */
ssize_t qpack_read_int(const uint8_t *p, size_t len, unsigned prefix_bits,
                       uint64_t *v);

/* Writes v as a prefix integer: the high bits of the first byte come from
 * first (the bits above the prefix). Returns the bytes written (at most
 * QPACK_INT_MAXLEN). */
size_t qpack_write_int(uint8_t *dst, uint8_t first, unsigned prefix_bits,
                       uint64_t v);

#define QPACK_HUFF_INVALID (-1) /* EOS, bad padding */
#define QPACK_HUFF_NOSPACE (-2) /* the output would exceed out_cap */

/* Like qpack_huffman_decode, but tells QPACK_HUFF_INVALID from
 * QPACK_HUFF_NOSPACE. On NOSPACE, the input was valid up to that point and
 * out_cap bytes were written. */
ssize_t qpack_huffman_decode_bounded(const uint8_t *in, size_t len,
                                     uint8_t *out, size_t out_cap);

/* Upper bound of the decoded size of len Huffman-coded bytes: every code
 * is at least 5 bits long. */
static inline size_t qpack_huffman_max_decoded(size_t len) {
  return len / 5 * 8 + (len % 5) * 8 / 5;
}

/* Lower bound of the decoded size: codes are at most 30 bits long, so
 * every 4 bytes hold at least one symbol. */
static inline size_t qpack_huffman_min_decoded(size_t len) {
  return len / 4;
}

#endif
