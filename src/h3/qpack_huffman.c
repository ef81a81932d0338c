/* The HPACK Huffman code (RFC 7541 Appendix B), used by QPACK strings.
 *
 * Decoding keeps up to 64 input bits in an accumulator (refilled 8 bytes
 * at a time) and looks at the next 8: one table lookup gives every symbol
 * of up to 8 bits (all letters, digits and common punctuation). Longer
 * codes all start with 0xfe or 0xff and are found by comparing the next
 * 32 bits against the canonical code's per-length limits. */
#include "h3/qpack.h"
#include "h3/qpack_huffman_table.h"
#include "h3/qpack_internal.h"

#define EOS_SYMBOL 256

size_t qpack_huffman_encoded_len(const uint8_t *s, size_t len) {
  size_t bits = 0;
  for (size_t i = 0; i < len; i++)
    bits += huff_len[s[i]];
  return (bits + 7) / 8;
}

size_t qpack_huffman_encode(const uint8_t *s, size_t len, uint8_t *out) {
  uint64_t acc = 0; /* only the low `bits` bits are pending */
  unsigned bits = 0;
  uint8_t *o = out;
  for (size_t i = 0; i < len; i++) {
    acc = (acc << huff_len[s[i]]) | huff_code[s[i]];
    bits += huff_len[s[i]];
    while (bits >= 8) {
      bits -= 8;
      *o++ = (uint8_t)(acc >> bits);
    }
  }
  /* Pad with the most significant bits of EOS (all ones). */
  if (bits > 0)
    *o++ = (uint8_t)((acc << (8 - bits)) | (0xffu >> bits));
  return (size_t)(o - out);
}

/* Decodes the code at the start of v (left-aligned 32 bits). */
static inline void decode_symbol(uint32_t v, unsigned *sym, unsigned *len) {
  uint16_t fast = huff_fast[v >> 24];
  if (fast != 0) {
    *sym = fast & 0xffu;
    *len = (unsigned)fast >> 8;
    return;
  }
  unsigned n = 9;
  while (n < 30 && v >= huff_limit[n])
    n++;
  *sym = huff_sorted[huff_offset[n] + (v >> (32 - n)) - huff_first[n]];
  *len = n;
}

static inline uint64_t load_be64(const uint8_t *p) {
  return (uint64_t)p[0] << 56 | (uint64_t)p[1] << 48 | (uint64_t)p[2] << 40 |
         (uint64_t)p[3] << 32 | (uint64_t)p[4] << 24 | (uint64_t)p[5] << 16 |
         (uint64_t)p[6] << 8 | (uint64_t)p[7];
}

/* Bit reader state: the next bits of the input, left-aligned in bits,
 * count of them valid. */
typedef struct bitreader {
  const uint8_t *in, *end;
  uint64_t bits;
  unsigned count;
} bitreader;

/* Stores a decoded symbol and drops its len bits. Returns 0, or a
 * QPACK_HUFF_* error (EOS inside a string, or no room). */
static inline int put_symbol(bitreader *r, unsigned sym, unsigned len,
                             uint8_t *out, size_t *n, size_t cap) {
  if (sym == EOS_SYMBOL)
    return QPACK_HUFF_INVALID;
  if (*n == cap)
    return QPACK_HUFF_NOSPACE;
  out[(*n)++] = (uint8_t)sym;
  r->bits <<= len;
  r->count -= len;
  return 0;
}

/* Emits one symbol decoded from the top of r->bits (which holds at least
 * 30 valid bits). Returns 0, or a QPACK_HUFF_* error. */
static inline int emit(bitreader *r, uint8_t *out, size_t *n, size_t cap) {
  unsigned sym, len;
  decode_symbol((uint32_t)(r->bits >> 32), &sym, &len);
  return put_symbol(r, sym, len, out, n, cap);
}

/* While 8 input bytes remain: refill to 56..63 bits with one load (the
 * bits below count are input bits too, so overlapping loads agree), then
 * decode while at least 30 bits (the longest code) are there. */
static int decode_bulk(bitreader *r, uint8_t *out, size_t *n, size_t cap) {
  while (r->end - r->in >= 8) {
    r->bits |= load_be64(r->in) >> r->count;
    r->in += (63 - r->count) >> 3;
    r->count |= 56;
    while (r->count >= 30) {
      int rc = emit(r, out, n, cap);
      if (rc != 0)
        return rc;
    }
  }
  /* Only the counted bits are kept for the tail. */
  r->bits &= r->count ? ~(UINT64_MAX >> r->count) : 0;
  return 0;
}

/* The last bytes, one at a time; past the end the code is padded with
 * ones, which only padding or EOS can match. */
static int decode_tail(bitreader *r, uint8_t *out, size_t *n, size_t cap) {
  for (;;) {
    while (r->count <= 56 && r->in < r->end) {
      r->bits |= (uint64_t)*r->in++ << (56 - r->count);
      r->count += 8;
    }
    if (r->count == 0)
      return 0;
    uint32_t v = (uint32_t)(r->bits >> 32);
    if (r->count < 32)
      v |= UINT32_MAX >> r->count;
    unsigned sym, len;
    decode_symbol(v, &sym, &len);
    if (len > r->count) {
      /* Input exhausted inside a code: it must be padding, at most 7 bits,
       * all ones (RFC 7541 section 5.2). */
      if (r->count > 7)
        return QPACK_HUFF_INVALID;
      uint32_t pad = UINT32_MAX << (32 - r->count);
      return (v & pad) == pad ? 0 : QPACK_HUFF_INVALID;
    }
    int rc = put_symbol(r, sym, len, out, n, cap);
    if (rc != 0)
      return rc;
  }
}

ssize_t qpack_huffman_decode_bounded(const uint8_t *in, size_t len,
                                     uint8_t *out, size_t out_cap) {
  bitreader r = {in, in + len, 0, 0};
  size_t n = 0;
  int rc = decode_bulk(&r, out, &n, out_cap);
  if (rc == 0)
    rc = decode_tail(&r, out, &n, out_cap);
  return rc != 0 ? rc : (ssize_t)n;
}

ssize_t qpack_huffman_decode(const uint8_t *in, size_t len, uint8_t *out,
                             size_t out_cap) {
  ssize_t n = qpack_huffman_decode_bounded(in, len, out, out_cap);
  return n < 0 ? -1 : n;
}
