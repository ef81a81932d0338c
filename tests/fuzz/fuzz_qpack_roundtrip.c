/* QPACK encoder and Huffman code (src/h3/qpack.h), checked against the
 * decoder. Input: fields, one per line, name and value split at the first
 * tab (names are lower-cased, as the encoder requires).
 * Invariants: an encoded section decodes to the same fields in the same
 * order; Huffman encoding has the predicted length and decodes back; any
 * byte string the Huffman decoder accepts re-encodes to itself (the code
 * is canonical and padding is at most 7 one bits); a too-small output
 * buffer is refused, never overrun. */
#include "fuzz.h"
#include "h3/qpack.h"

#define MAX_FIELDS 64

typedef struct field {
  uint8_t *name;
  const uint8_t *value;
  size_t nlen, vlen;
} field;

typedef struct expect {
  const field *fields;
  size_t count, next;
} expect;

static int on_field(void *user, const uint8_t *name, size_t nlen,
                    const uint8_t *value, size_t vlen) {
  expect *e = user;
  FUZZ_CHECK(e->next < e->count);
  const field *f = &e->fields[e->next++];
  FUZZ_CHECK(nlen == f->nlen &&
             (nlen == 0 || memcmp(name, f->name, nlen) == 0));
  FUZZ_CHECK(vlen == f->vlen &&
             (vlen == 0 || memcmp(value, f->value, vlen) == 0));
  return 0;
}

static void check_section_roundtrip(const field *fields, size_t count) {
  buf enc = {0};
  if (qpack_encode_prefix(&enc) != 0) {
    abort(); /* out of memory: not a finding */
  }
  for (size_t i = 0; i < count; i++) {
    const field *f = &fields[i];
    if (qpack_encode_field(&enc, f->name, f->nlen, f->value, f->vlen) != 0) {
      abort();
    }
  }
  qpack_decoder *d = qpack_decoder_new(0, 0);
  if (d == NULL) {
    abort();
  }
  expect e = {fields, count, 0};
  uint64_t err = 0;
  qpack_result r = qpack_decode_section(d, 0, enc.data, enc.len, UINT64_MAX,
                                        on_field, &e, &err);
  FUZZ_CHECK(r == QPACK_DONE);
  FUZZ_CHECK(e.next == count);
  qpack_decoder_free(d);
  buf_free(&enc);
}

/* s -> Huffman -> s, with the predicted length. */
static void check_huffman_encode(const uint8_t *s, size_t len) {
  size_t hlen = qpack_huffman_encoded_len(s, len);
  uint8_t *h = malloc(hlen + 1);
  uint8_t *back = malloc(len + 1);
  if (h == NULL || back == NULL) {
    abort();
  }
  FUZZ_CHECK(qpack_huffman_encode(s, len, h) == hlen);
  FUZZ_CHECK(qpack_huffman_decode(h, hlen, back, len) == (ssize_t)len);
  FUZZ_CHECK(len == 0 || memcmp(back, s, len) == 0);
  if (len > 0) {
    FUZZ_CHECK(qpack_huffman_decode(h, hlen, back, len - 1) == -1);
  }
  free(back);
  free(h);
}

/* Arbitrary bytes as Huffman input: refused, or canonical. */
static void check_huffman_decode(const uint8_t *in, size_t len) {
  size_t cap = len * 8 / 5 + 1; /* the shortest code has 5 bits */
  uint8_t *out = malloc(cap);
  if (out == NULL) {
    abort();
  }
  ssize_t n = qpack_huffman_decode(in, len, out, cap);
  FUZZ_CHECK(n >= -1 && n < (ssize_t)cap);
  if (n >= 0) {
    size_t un = (size_t)n;
    uint8_t *again = malloc(len + 1);
    if (again == NULL) {
      abort();
    }
    FUZZ_CHECK(qpack_huffman_encoded_len(out, un) == len);
    FUZZ_CHECK(qpack_huffman_encode(out, un, again) == len);
    FUZZ_CHECK(len == 0 || memcmp(again, in, len) == 0);
    free(again);
  }
  free(out);
}

/* Splits data into fields (names lower-cased copies, values in place). */
static size_t split(const uint8_t *data, size_t size, field *fields) {
  const uint8_t *p;
  size_t len, n = 0;
  while (n < MAX_FIELDS && fuzz_next_piece(&data, &size, '\n', &p, &len)) {
    const uint8_t *tab = len > 0 ? memchr(p, '\t', len) : NULL;
    field *f = &fields[n++];
    f->nlen = tab ? (size_t)(tab - p) : len;
    f->name = (uint8_t *)fuzz_strndup(p, f->nlen);
    for (size_t i = 0; i < f->nlen; i++) {
      if (f->name[i] >= 'A' && f->name[i] <= 'Z') {
        f->name[i] = (uint8_t)(f->name[i] - 'A' + 'a');
      }
    }
    f->value = tab ? tab + 1 : p + len;
    f->vlen = tab ? len - f->nlen - 1 : 0;
  }
  return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static field fields[MAX_FIELDS];
  check_huffman_encode(data, size);
  check_huffman_decode(data, size);
  size_t count = split(data, size, fields);
  check_section_roundtrip(fields, count);
  for (size_t i = 0; i < count; i++) {
    free(fields[i].name);
  }
  return 0;
}
