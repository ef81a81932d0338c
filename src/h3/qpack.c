/* QPACK (RFC 9204): the decoder with its dynamic table, and the encoder
 * (static table and literals only).
 *
 * Memory is bounded by what we advertise: the dynamic table by its
 * capacity (entries are accounted with their 32-byte overhead, so there are
 * at most capacity / 32 of them), a partial encoder instruction by a few
 * times the capacity (checked before its bytes arrive), and the Huffman
 * scratch by the field-section limit. */
#include "h3/qpack.h"

#include <stdlib.h>
#include <string.h>

#include "h3/qpack_internal.h"
#include "h3q.h"

#define ENTRY_OVERHEAD 32 /* RFC 9204 section 3.2.1 */

/* Floor of the bound on a partial encoder instruction: an instruction for
 * an entry that fits may be up to 30/8 of its size when Huffman-coded. */
#define PARTIAL_FLOOR (64 * 1024)

/* Scratch above this is released after a section, so that one large
 * header does not stay with the connection. */
#define SCRATCH_KEEP 4096

/* ---- prefix integers (RFC 7541 section 5.1) ---- */

ssize_t qpack_read_int(const uint8_t *p, size_t len, unsigned prefix_bits,
                       uint64_t *v) {
  if (len == 0)
    return 0;
  uint64_t mask = (UINT64_C(1) << prefix_bits) - 1;
  uint64_t val = p[0] & mask;
  if (val < mask) {
    *v = val;
    return 1;
  }
  unsigned shift = 0;
  for (size_t i = 1; i < len; i++) {
    uint64_t b = p[i] & 0x7fu;
    /* Past 62 bits (or a run of zero continuation bytes that long) the
     * value cannot be one we accept. */
    if (shift > 56 || b > ((QPACK_INT_MAX - val) >> shift))
      return -1;
    val += b << shift;
    shift += 7;
    if ((p[i] & 0x80u) == 0) {
      *v = val;
      return (ssize_t)(i + 1);
    }
  }
  return 0;
}

size_t qpack_write_int(uint8_t *dst, uint8_t first, unsigned prefix_bits,
                       uint64_t v) {
  uint64_t mask = (UINT64_C(1) << prefix_bits) - 1;
  if (v < mask) {
    dst[0] = (uint8_t)(first | v);
    return 1;
  }
  dst[0] = (uint8_t)(first | mask);
  v -= mask;
  size_t n = 1;
  while (v >= 0x80) {
    dst[n++] = (uint8_t)(0x80u | (v & 0x7fu));
    v >>= 7;
  }
  dst[n++] = (uint8_t)v;
  return n;
}

static int buf_put_int(buf *b, uint8_t first, unsigned prefix_bits,
                       uint64_t v) {
  if (buf_reserve(b, QPACK_INT_MAXLEN) != 0)
    return -1;
  b->len += qpack_write_int(b->data + b->len, first, prefix_bits, v);
  return 0;
}

/* ---- string literals (RFC 9204 section 4.1.2) ---- */

/* An encoded string as it appears in the input. */
typedef struct qstr {
  const uint8_t *p;
  size_t len;
  bool huffman;
} qstr;

typedef enum parse_status {
  PARSE_OK,
  PARSE_INCOMPLETE,
  PARSE_ERROR, /* malformed, or a limit exceeded */
  PARSE_NOMEM,
} parse_status;

/* Reads an integer at *off; advances *off. */
static parse_status read_int_at(const uint8_t *p, size_t len, size_t *off,
                                unsigned prefix_bits, uint64_t *v) {
  /* Checked first: an empty section has p == NULL, and NULL + 0 is
   * undefined behaviour in C. */
  if (*off >= len)
    return PARSE_INCOMPLETE;
  ssize_t r = qpack_read_int(p + *off, len - *off, prefix_bits, v);
  if (r < 0)
    return PARSE_ERROR;
  if (r == 0)
    return PARSE_INCOMPLETE;
  *off += (size_t)r;
  return PARSE_OK;
}

/* Reads the header of an N-bit prefix string literal (the H flag just
 * above an (N-1)-bit length) at *off. Callers can check the length before
 * the bytes arrive. */
static parse_status read_string_len(const uint8_t *p, size_t len, size_t *off,
                                    unsigned prefix_bits, qstr *s) {
  if (*off >= len)
    return PARSE_INCOMPLETE;
  s->huffman = (p[*off] >> (prefix_bits - 1)) & 1u;
  uint64_t slen;
  parse_status st = read_int_at(p, len, off, prefix_bits - 1, &slen);
  if (st != PARSE_OK)
    return st;
  s->len = (size_t)slen;
  s->p = NULL;
  return PARSE_OK;
}

/* Takes the bytes of a string whose length was read. */
static parse_status take_string(const uint8_t *p, size_t len, size_t *off,
                                qstr *s) {
  if (s->len > len - *off)
    return PARSE_INCOMPLETE;
  s->p = p + *off;
  *off += s->len;
  return PARSE_OK;
}

static parse_status read_string(const uint8_t *p, size_t len, size_t *off,
                                unsigned prefix_bits, qstr *s) {
  parse_status st = read_string_len(p, len, off, prefix_bits, s);
  return st == PARSE_OK ? take_string(p, len, off, s) : st;
}

/* ---- decoder state ---- */

typedef struct dyn_entry {
  size_t nlen, vlen;
  uint8_t data[]; /* name, then value */
} dyn_entry;

struct qpack_decoder {
  uint64_t max_capacity; /* advertised SETTINGS_QPACK_MAX_TABLE_CAPACITY */
  uint64_t max_blocked;  /* advertised SETTINGS_QPACK_BLOCKED_STREAMS */
  uint64_t max_entries;  /* max_capacity / 32, for Required Insert Count */
  uint64_t capacity;     /* set by the peer's encoder, <= max_capacity */
  uint64_t size;         /* sum of entry sizes, <= capacity */
  /* Absolute indices of the entries in the table: [dropped, inserted). */
  uint64_t inserted, dropped;
  /* Insert count the peer's encoder will know of once it has read every
   * instruction we queued (Insert Count Increments, Section Acks). */
  uint64_t known_received;
  dyn_entry **ring;  /* entry of absolute index a at ring[a & (ring_cap-1)] */
  size_t ring_cap;   /* 0 or a power of two */
  uint64_t *blocked; /* ids of blocked streams */
  size_t nblocked, blocked_cap;
  buf partial;         /* unfinished encoder-stream instruction */
  buf instr;           /* decoder instructions to send */
  buf scratch;         /* Huffman output, reused */
  bool encoder_failed; /* an encoder-stream error was reported */
};

qpack_decoder *qpack_decoder_new(uint64_t max_table_capacity,
                                 uint64_t max_blocked_streams) {
  qpack_decoder *d = calloc(1, sizeof *d);
  if (!d)
    return NULL;
  d->max_capacity = max_table_capacity;
  d->max_blocked = max_blocked_streams;
  d->max_entries = max_table_capacity / ENTRY_OVERHEAD;
  return d;
}

static dyn_entry *entry_at(const qpack_decoder *d, uint64_t abs) {
  return d->ring[abs & (d->ring_cap - 1)];
}

static void evict_oldest(qpack_decoder *d) {
  dyn_entry *e = entry_at(d, d->dropped);
  d->size -= e->nlen + e->vlen + ENTRY_OVERHEAD;
  free(e);
  d->dropped++;
}

void qpack_decoder_free(qpack_decoder *d) {
  if (!d)
    return;
  while (d->dropped < d->inserted)
    evict_oldest(d);
  free(d->ring);
  free(d->blocked);
  buf_free(&d->partial);
  buf_free(&d->instr);
  buf_free(&d->scratch);
  free(d);
}

buf *qpack_decoder_instructions(qpack_decoder *d) {
  return &d->instr;
}

uint64_t qpack_decoder_insert_count(const qpack_decoder *d) {
  return d->inserted;
}

size_t qpack_decoder_blocked_streams(const qpack_decoder *d) {
  return d->nblocked;
}

uint64_t qpack_decoder_table_size(const qpack_decoder *d) {
  return d->size;
}

/* ---- dynamic table ---- */

/* Doubles the ring (it is full). Entries never exceed capacity / 32, so
 * the ring never exceeds the next power of two above max_entries. */
static int grow_ring(qpack_decoder *d) {
  size_t cap = d->ring_cap ? d->ring_cap * 2 : 16;
  dyn_entry **ring = malloc(cap * sizeof *ring);
  if (!ring)
    return -1;
  for (uint64_t a = d->dropped; a < d->inserted; a++)
    ring[a & (cap - 1)] = entry_at(d, a);
  free(d->ring);
  d->ring = ring;
  d->ring_cap = cap;
  return 0;
}

static void evict_to(qpack_decoder *d, uint64_t target) {
  while (d->size > target)
    evict_oldest(d);
}

/* Adds a new entry (RFC 9204 section 3.2.2): copies name and value first,
 * since the name may belong to an entry that this insert evicts. */
static parse_status insert_entry(qpack_decoder *d, const uint8_t *name,
                                 size_t nlen, const uint8_t *value,
                                 size_t vlen) {
  uint64_t esize = (uint64_t)nlen + vlen + ENTRY_OVERHEAD;
  if (esize > d->capacity)
    return PARSE_ERROR;
  dyn_entry *e = malloc(sizeof *e + nlen + vlen);
  if (!e)
    return PARSE_NOMEM;
  e->nlen = nlen;
  e->vlen = vlen;
  if (nlen)
    memcpy(e->data, name, nlen);
  if (vlen)
    memcpy(e->data + nlen, value, vlen);
  evict_to(d, d->capacity - esize);
  if (d->inserted - d->dropped == d->ring_cap && grow_ring(d) != 0) {
    free(e);
    return PARSE_NOMEM;
  }
  d->ring[d->inserted & (d->ring_cap - 1)] = e;
  d->inserted++;
  d->size += esize;
  return PARSE_OK;
}

/* Resolves a relative index of an encoder instruction (section 3.2.5). */
static const dyn_entry *encoder_ref(const qpack_decoder *d, uint64_t rel) {
  if (rel >= d->inserted - d->dropped)
    return NULL;
  return entry_at(d, d->inserted - 1 - rel);
}

/* ---- encoder stream (RFC 9204 section 4.3) ---- */

#define QPACK_HUFF_NOMEM (-3) /* decode_into_scratch: allocation failed */

/* Makes s usable at scratch offset at, decoding Huffman, with at most cap
 * bytes out. Returns the length, or QPACK_HUFF_INVALID / NOSPACE / NOMEM.
 * The size is checked against cap before anything is copied or expanded. */
static ssize_t decode_into_scratch(qpack_decoder *d, const qstr *s, size_t at,
                                   size_t cap) {
  size_t need = s->huffman ? qpack_huffman_max_decoded(s->len) : s->len;
  if (need > cap) {
    if (!s->huffman || qpack_huffman_min_decoded(s->len) > cap)
      return QPACK_HUFF_NOSPACE;
    need = cap; /* the exact size decides */
  }
  d->scratch.len = at;
  /* At least one byte, so that scratch.data is never NULL (an empty
   * string still points into it). */
  if (buf_reserve(&d->scratch, need ? need : 1) != 0)
    return QPACK_HUFF_NOMEM;
  if (!s->huffman) {
    if (s->len)
      memcpy(d->scratch.data + at, s->p, s->len);
    return (ssize_t)s->len;
  }
  return qpack_huffman_decode_bounded(s->p, s->len, d->scratch.data + at, need);
}

static parse_status scratch_status(ssize_t n) {
  return n == QPACK_HUFF_NOMEM ? PARSE_NOMEM : PARSE_ERROR;
}

/* Smallest size a string can decode to (for early rejection). */
static size_t min_decoded(const qstr *s) {
  return s->huffman ? qpack_huffman_min_decoded(s->len) : s->len;
}

/* Room for a value next to a name of nlen bytes in a new entry; false if
 * even an empty value would not fit. */
static bool value_room(const qpack_decoder *d, size_t nlen, size_t *room) {
  if ((uint64_t)nlen + ENTRY_OVERHEAD > d->capacity)
    return false;
  *room = (size_t)(d->capacity - ENTRY_OVERHEAD - nlen);
  return true;
}

/* Reads the value string of an insert: rejects a value that cannot fit
 * next to a name of at least nlen bytes as soon as its length is known. */
static parse_status read_insert_value(const qpack_decoder *d, const uint8_t *p,
                                      size_t len, size_t *off, size_t nlen,
                                      qstr *value) {
  parse_status st = read_string_len(p, len, off, 8, value);
  if (st != PARSE_OK)
    return st;
  size_t room;
  if (!value_room(d, nlen, &room) || min_decoded(value) > room)
    return PARSE_ERROR;
  return take_string(p, len, off, value);
}

/* Inserts name plus value; a Huffman value is decoded into the scratch
 * after scratch_at bytes (where a decoded name may be). */
static parse_status insert_decoded(qpack_decoder *d, const uint8_t *name,
                                   size_t nlen, const qstr *value,
                                   size_t scratch_at) {
  size_t room;
  if (!value_room(d, nlen, &room))
    return PARSE_ERROR;
  const uint8_t *v = value->p;
  size_t vlen = value->len;
  if (value->huffman) {
    ssize_t n = decode_into_scratch(d, value, scratch_at, room);
    if (n < 0)
      return scratch_status(n);
    v = d->scratch.data + scratch_at;
    vlen = (size_t)n;
  } else if (vlen > room) {
    return PARSE_ERROR;
  }
  if (name == NULL) /* the name is at the start of the scratch */
    name = d->scratch.data;
  return insert_entry(d, name, nlen, v, vlen);
}

/* 1Txxxxxx: Insert with Name Reference. */
static parse_status insert_with_name_ref(qpack_decoder *d, const uint8_t *p,
                                         size_t len, size_t *off) {
  bool is_static = p[0] & 0x40u;
  uint64_t idx;
  parse_status st = read_int_at(p, len, off, 6, &idx);
  if (st != PARSE_OK)
    return st;
  const uint8_t *name;
  size_t nlen;
  if (is_static) {
    if (idx >= QPACK_STATIC_COUNT)
      return PARSE_ERROR;
    name = (const uint8_t *)qpack_static_table[idx].name;
    nlen = qpack_static_table[idx].nlen;
  } else {
    const dyn_entry *e = encoder_ref(d, idx);
    if (!e)
      return PARSE_ERROR;
    name = e->data; /* own allocation: the scratch cannot move it */
    nlen = e->nlen;
  }
  qstr value;
  st = read_insert_value(d, p, len, off, nlen, &value);
  if (st != PARSE_OK)
    return st;
  return insert_decoded(d, name, nlen, &value, 0);
}

/* 01Hxxxxx: Insert with Literal Name. */
static parse_status insert_with_literal_name(qpack_decoder *d, const uint8_t *p,
                                             size_t len, size_t *off) {
  qstr name, value;
  parse_status st = read_string_len(p, len, off, 6, &name);
  if (st != PARSE_OK)
    return st;
  size_t room;
  if (!value_room(d, 0, &room) || min_decoded(&name) > room)
    return PARSE_ERROR;
  st = take_string(p, len, off, &name);
  if (st != PARSE_OK)
    return st;
  /* Wait for the whole instruction before decoding anything. */
  st = read_insert_value(d, p, len, off, min_decoded(&name), &value);
  if (st != PARSE_OK)
    return st;
  ssize_t nlen = decode_into_scratch(d, &name, 0, room);
  if (nlen < 0)
    return scratch_status(nlen);
  return insert_decoded(d, NULL, (size_t)nlen, &value, (size_t)nlen);
}

/* 001xxxxx: Set Dynamic Table Capacity. */
static parse_status set_capacity(qpack_decoder *d, const uint8_t *p, size_t len,
                                 size_t *off) {
  uint64_t cap;
  parse_status st = read_int_at(p, len, off, 5, &cap);
  if (st != PARSE_OK)
    return st;
  if (cap > d->max_capacity)
    return PARSE_ERROR;
  d->capacity = cap;
  evict_to(d, cap);
  return PARSE_OK;
}

/* 000xxxxx: Duplicate. */
static parse_status duplicate(qpack_decoder *d, const uint8_t *p, size_t len,
                              size_t *off) {
  uint64_t rel;
  parse_status st = read_int_at(p, len, off, 5, &rel);
  if (st != PARSE_OK)
    return st;
  const dyn_entry *e = encoder_ref(d, rel);
  if (!e)
    return PARSE_ERROR;
  return insert_entry(d, e->data, e->nlen, e->data + e->nlen, e->vlen);
}

/* Parses and applies one instruction at p (len > 0). Nothing changes
 * unless it returns PARSE_OK; *used then holds its length. A partial
 * instruction is parsed again from its start when more bytes arrive. */
static parse_status encoder_instruction(qpack_decoder *d, const uint8_t *p,
                                        size_t len, size_t *used) {
  size_t off = 0;
  parse_status st;
  if (p[0] & 0x80u)
    st = insert_with_name_ref(d, p, len, &off);
  else if (p[0] & 0x40u)
    st = insert_with_literal_name(d, p, len, &off);
  else if (p[0] & 0x20u)
    st = set_capacity(d, p, len, &off);
  else
    st = duplicate(d, p, len, &off);
  *used = off;
  return st;
}

/* Bound on a partial instruction: an entry that fits the table may take up
 * to 30/8 of its size when Huffman-coded, plus its integers. The length
 * checks above already reject larger ones; this is the last guard. */
static uint64_t partial_limit(const qpack_decoder *d) {
  if (d->max_capacity > (UINT64_MAX - 64) / 4)
    return UINT64_MAX;
  uint64_t lim = d->max_capacity * 4 + 64;
  return lim > PARTIAL_FLOOR ? lim : PARTIAL_FLOOR;
}

/* Runs every complete instruction in p; *used gets the bytes consumed. */
static parse_status run_instructions(qpack_decoder *d, const uint8_t *p,
                                     size_t len, size_t *used) {
  size_t off = 0;
  parse_status st = PARSE_OK;
  while (off < len) {
    size_t n = 0;
    st = encoder_instruction(d, p + off, len - off, &n);
    if (st != PARSE_OK)
      break;
    off += n;
  }
  *used = off;
  return st == PARSE_INCOMPLETE ? PARSE_OK : st;
}

static int queue_insert_count_increment(qpack_decoder *d) {
  if (d->inserted <= d->known_received)
    return 0;
  uint64_t inc = d->inserted - d->known_received;
  d->known_received = d->inserted;
  return buf_put_int(&d->instr, 0x00, 6, inc);
}

static uint64_t encoder_stream_failed(qpack_decoder *d, parse_status st) {
  d->encoder_failed = true;
  return st == PARSE_NOMEM ? H3Q_H3_INTERNAL_ERROR
                           : H3Q_QPACK_ENCODER_STREAM_ERROR;
}

/* Keeps the unfinished tail of the input for the next call. */
static parse_status keep_partial(qpack_decoder *d, const uint8_t *src, size_t n,
                                 size_t used) {
  if (n - used > partial_limit(d))
    return PARSE_ERROR;
  if (src == d->partial.data)
    buf_consume(&d->partial, used);
  else if (buf_append(&d->partial, src + used, n - used) != 0)
    return PARSE_NOMEM;
  if (d->partial.len == 0 && d->partial.cap > SCRATCH_KEEP)
    buf_free(&d->partial);
  return PARSE_OK;
}

void qpack_decoder_trim(qpack_decoder *d) {
  buf_free(&d->scratch); /* only used inside one decode call */
  if (d->partial.len == 0)
    buf_free(&d->partial);
  if (d->instr.len == 0)
    buf_free(&d->instr);
}

uint64_t qpack_decoder_on_encoder_stream(qpack_decoder *d, const uint8_t *p,
                                         size_t len) {
  if (d->encoder_failed)
    return H3Q_QPACK_ENCODER_STREAM_ERROR;
  const uint8_t *src = p;
  size_t n = len, used = 0;
  if (d->partial.len > 0) {
    if (buf_append(&d->partial, p, len) != 0)
      return encoder_stream_failed(d, PARSE_NOMEM);
    src = d->partial.data;
    n = d->partial.len;
  }
  parse_status st = run_instructions(d, src, n, &used);
  if (st == PARSE_OK)
    st = keep_partial(d, src, n, used);
  if (d->scratch.cap > SCRATCH_KEEP)
    buf_free(&d->scratch);
  if (st == PARSE_OK && queue_insert_count_increment(d) != 0)
    st = PARSE_NOMEM;
  if (st != PARSE_OK)
    return encoder_stream_failed(d, st);
  return 0;
}

/* ---- blocked streams ---- */

static bool find_blocked(const qpack_decoder *d, uint64_t stream_id,
                         size_t *at) {
  for (size_t i = 0; i < d->nblocked; i++) {
    if (d->blocked[i] == stream_id) {
      *at = i;
      return true;
    }
  }
  return false;
}

static void unblock(qpack_decoder *d, uint64_t stream_id) {
  size_t i;
  if (find_blocked(d, stream_id, &i))
    d->blocked[i] = d->blocked[--d->nblocked];
}

/* Counts the stream as blocked; -1 when over the advertised limit. */
static int block(qpack_decoder *d, uint64_t stream_id) {
  size_t i;
  if (find_blocked(d, stream_id, &i))
    return 0;
  if (d->nblocked >= d->max_blocked)
    return -1;
  if (d->nblocked == d->blocked_cap) {
    size_t cap = d->blocked_cap ? d->blocked_cap * 2 : 4;
    uint64_t *b = realloc(d->blocked, cap * sizeof *b);
    if (!b)
      return -1;
    d->blocked = b;
    d->blocked_cap = cap;
  }
  d->blocked[d->nblocked++] = stream_id;
  return 0;
}

void qpack_decoder_cancel_stream(qpack_decoder *d, uint64_t stream_id) {
  unblock(d, stream_id);
  /* A decoder without a dynamic table may omit it (section 4.4.2). An
   * allocation failure only costs the peer's encoder some table space. */
  if (d->max_capacity > 0)
    (void)buf_put_int(&d->instr, 0x40, 6, stream_id);
}

/* ---- field sections (RFC 9204 section 4.5) ---- */

typedef struct section {
  qpack_decoder *d;
  const uint8_t *p;
  size_t len, off;
  uint64_t ric, base;
  uint64_t used, limit; /* RFC 9114 section 4.2.2 size so far, and limit */
  qpack_field_cb cb;
  void *user;
  uint64_t error; /* connection error when QPACK_ERROR is returned */
} section;

/* Section 4.5.1.1. Returns -1 for an invalid encoding. */
static int decode_ric(const qpack_decoder *d, uint64_t encoded, uint64_t *ric) {
  if (encoded == 0) {
    *ric = 0;
    return 0;
  }
  uint64_t full_range = 2 * d->max_entries;
  if (encoded > full_range)
    return -1;
  uint64_t max_value = d->inserted + d->max_entries;
  uint64_t max_wrapped = max_value / full_range * full_range;
  uint64_t r = max_wrapped + encoded - 1;
  if (r > max_value) {
    if (r <= full_range)
      return -1;
    r -= full_range;
  }
  if (r == 0)
    return -1;
  *ric = r;
  return 0;
}

/* Section 4.5.1: Required Insert Count, then Sign and Delta Base. */
static int decode_prefix(section *s) {
  uint64_t encoded, delta;
  if (read_int_at(s->p, s->len, &s->off, 8, &encoded) != PARSE_OK)
    return -1;
  if (decode_ric(s->d, encoded, &s->ric) != 0)
    return -1;
  if (s->off >= s->len)
    return -1;
  bool negative = s->p[s->off] & 0x80u;
  if (read_int_at(s->p, s->len, &s->off, 7, &delta) != PARSE_OK)
    return -1;
  if (!negative) {
    s->base = s->ric + delta; /* ric < 2^61, delta < 2^62: no overflow */
  } else {
    if (delta >= s->ric)
      return -1;
    s->base = s->ric - delta - 1;
  }
  return 0;
}

/* A dynamic entry by absolute index, if the section may reference it
 * (section 2.2.3): below the Required Insert Count, not evicted. */
static const dyn_entry *section_ref(const section *s, uint64_t abs) {
  if (abs >= s->ric || abs < s->d->dropped)
    return NULL;
  return entry_at(s->d, abs);
}

static const dyn_entry *relative_ref(const section *s, uint64_t idx) {
  if (idx >= s->base)
    return NULL;
  return section_ref(s, s->base - 1 - idx);
}

static const dyn_entry *post_base_ref(const section *s, uint64_t idx) {
  return section_ref(s, s->base + idx); /* base < 2^63, idx < 2^62 */
}

/* A name or value ready for the callback. */
typedef struct field_str {
  const uint8_t *p;
  size_t len;
} field_str;

static qpack_result section_error(section *s, uint64_t code) {
  s->error = code;
  return QPACK_ERROR;
}

static qpack_result malformed(section *s) {
  return section_error(s, H3Q_QPACK_DECOMPRESSION_FAILED);
}

/* Room left in the section-size budget after the 32-byte overhead and
 * nlen bytes of name; false when even that does not fit. */
static bool budget(const section *s, size_t nlen, uint64_t *room) {
  uint64_t left = s->limit - s->used;
  if ((uint64_t)nlen + ENTRY_OVERHEAD > left)
    return false;
  *room = left - ENTRY_OVERHEAD - nlen;
  return true;
}

/* Makes a literal string usable: points into the input, or decodes it
 * into the scratch at offset at, with at most cap bytes. */
static qpack_result literal(section *s, const qstr *q, size_t at, uint64_t cap,
                            field_str *out) {
  if (!q->huffman) {
    if (q->len > cap)
      return QPACK_TOO_LARGE;
    *out = (field_str){q->p, q->len};
    return QPACK_DONE;
  }
  size_t bounded = cap < SIZE_MAX ? (size_t)cap : SIZE_MAX;
  ssize_t n = decode_into_scratch(s->d, q, at, bounded);
  if (n == QPACK_HUFF_NOSPACE)
    return QPACK_TOO_LARGE;
  if (n == QPACK_HUFF_NOMEM)
    return section_error(s, H3Q_H3_INTERNAL_ERROR);
  if (n < 0)
    return malformed(s);
  *out = (field_str){s->d->scratch.data + at, (size_t)n};
  return QPACK_DONE;
}

/* Reads a value string (8-bit prefix) next to a name of nlen bytes; a
 * Huffman value goes to the scratch after scratch_at bytes. */
static qpack_result read_value(section *s, size_t nlen, size_t scratch_at,
                               field_str *value) {
  qstr q;
  if (read_string(s->p, s->len, &s->off, 8, &q) != PARSE_OK)
    return malformed(s);
  uint64_t room;
  if (!budget(s, nlen, &room))
    return QPACK_TOO_LARGE;
  return literal(s, &q, scratch_at, room, value);
}

/* Counts the field against the budget and delivers it. */
static qpack_result deliver(section *s, field_str name, field_str value) {
  uint64_t room;
  if (!budget(s, name.len, &room) || value.len > room)
    return QPACK_TOO_LARGE;
  s->used += (uint64_t)name.len + value.len + ENTRY_OVERHEAD;
  if (s->cb(s->user, name.p, name.len, value.p, value.len) != 0)
    return QPACK_STOPPED;
  return QPACK_DONE;
}

static field_str static_name(uint64_t idx) {
  return (field_str){(const uint8_t *)qpack_static_table[idx].name,
                     qpack_static_table[idx].nlen};
}

static qpack_result deliver_entry(section *s, const dyn_entry *e) {
  if (!e)
    return malformed(s);
  return deliver(s, (field_str){e->data, e->nlen},
                 (field_str){e->data + e->nlen, e->vlen});
}

/* 1Txxxxxx: Indexed Field Line. */
static qpack_result indexed(section *s) {
  bool is_static = s->p[s->off] & 0x40u;
  uint64_t idx;
  if (read_int_at(s->p, s->len, &s->off, 6, &idx) != PARSE_OK)
    return malformed(s);
  if (!is_static)
    return deliver_entry(s, relative_ref(s, idx));
  if (idx >= QPACK_STATIC_COUNT)
    return malformed(s);
  const qpack_static_entry *e = &qpack_static_table[idx];
  return deliver(s, static_name(idx),
                 (field_str){(const uint8_t *)e->value, e->vlen});
}

/* 0001xxxx: Indexed Field Line with Post-Base Index. */
static qpack_result indexed_post_base(section *s) {
  uint64_t idx;
  if (read_int_at(s->p, s->len, &s->off, 4, &idx) != PARSE_OK)
    return malformed(s);
  return deliver_entry(s, post_base_ref(s, idx));
}

/* The value of a field whose name is a reference (static or dynamic). */
static qpack_result with_name(section *s, field_str name) {
  field_str value;
  qpack_result r = read_value(s, name.len, 0, &value);
  return r == QPACK_DONE ? deliver(s, name, value) : r;
}

static qpack_result with_entry_name(section *s, const dyn_entry *e) {
  if (!e)
    return malformed(s);
  return with_name(s, (field_str){e->data, e->nlen});
}

/* 01NTxxxx: Literal Field Line with Name Reference (N is ignored: we
 * never re-encode fields for another hop). */
static qpack_result literal_name_ref(section *s) {
  bool is_static = s->p[s->off] & 0x10u;
  uint64_t idx;
  if (read_int_at(s->p, s->len, &s->off, 4, &idx) != PARSE_OK)
    return malformed(s);
  if (!is_static)
    return with_entry_name(s, relative_ref(s, idx));
  if (idx >= QPACK_STATIC_COUNT)
    return malformed(s);
  return with_name(s, static_name(idx));
}

/* 0000Nxxx: Literal Field Line with Post-Base Name Reference. */
static qpack_result literal_post_base_name_ref(section *s) {
  uint64_t idx;
  if (read_int_at(s->p, s->len, &s->off, 3, &idx) != PARSE_OK)
    return malformed(s);
  return with_entry_name(s, post_base_ref(s, idx));
}

/* 001NHxxx: Literal Field Line with Literal Name. */
static qpack_result literal_literal_name(section *s) {
  qstr q;
  if (read_string(s->p, s->len, &s->off, 4, &q) != PARSE_OK)
    return malformed(s);
  uint64_t room;
  if (!budget(s, 0, &room))
    return QPACK_TOO_LARGE;
  field_str name, value;
  qpack_result r = literal(s, &q, 0, room, &name);
  if (r != QPACK_DONE)
    return r;
  /* A Huffman name sits in the scratch, which the value may reallocate. */
  size_t at = q.huffman ? name.len : 0;
  r = read_value(s, name.len, at, &value);
  if (r != QPACK_DONE)
    return r;
  if (q.huffman)
    name.p = s->d->scratch.data;
  return deliver(s, name, value);
}

static qpack_result field_line(section *s) {
  uint8_t b = s->p[s->off];
  if (b & 0x80u)
    return indexed(s);
  if (b & 0x40u)
    return literal_name_ref(s);
  if (b & 0x20u)
    return literal_literal_name(s);
  if (b & 0x10u)
    return indexed_post_base(s);
  return literal_post_base_name_ref(s);
}

static int queue_section_ack(qpack_decoder *d, uint64_t stream_id,
                             uint64_t ric) {
  if (ric > d->known_received)
    d->known_received = ric;
  return buf_put_int(&d->instr, 0x80, 7, stream_id);
}

qpack_result qpack_decode_section(qpack_decoder *d, uint64_t stream_id,
                                  const uint8_t *p, size_t len,
                                  uint64_t max_section_size, qpack_field_cb cb,
                                  void *user, uint64_t *err) {
  section s = {.d = d,
               .p = p,
               .len = len,
               .limit = max_section_size,
               .cb = cb,
               .user = user};
  *err = 0;
  if (decode_prefix(&s) != 0) {
    unblock(d, stream_id);
    *err = H3Q_QPACK_DECOMPRESSION_FAILED;
    return QPACK_ERROR;
  }
  if (s.ric > d->inserted) {
    if (block(d, stream_id) == 0)
      return QPACK_BLOCKED;
    *err = H3Q_QPACK_DECOMPRESSION_FAILED;
    return QPACK_ERROR;
  }
  unblock(d, stream_id);
  qpack_result r = QPACK_DONE;
  while (r == QPACK_DONE && s.off < s.len)
    r = field_line(&s);
  if (d->scratch.cap > SCRATCH_KEEP)
    buf_free(&d->scratch);
  if (r == QPACK_ERROR) {
    *err = s.error;
    return r;
  }
  /* A section we stopped reading (too large, or refused by the callback)
   * is processed as far as the encoder is concerned: acknowledging it
   * releases its references, which is all the encoder waits for. */
  if (s.ric > 0 && queue_section_ack(d, stream_id, s.ric) != 0) {
    *err = H3Q_H3_INTERNAL_ERROR;
    return QPACK_ERROR;
  }
  return r;
}

/* ---- encoder ---- */

int qpack_encode_prefix(buf *out) {
  static const uint8_t prefix[2] = {0x00, 0x00};
  return buf_append(out, prefix, sizeof prefix);
}

/* Appends a string literal with an N-bit prefix (H flag at hbit), Huffman
 * coded when that is shorter. Room has been reserved. */
static void put_string(buf *out, uint8_t first, uint8_t hbit,
                       unsigned prefix_bits, const uint8_t *s, size_t len) {
  size_t hlen = qpack_huffman_encoded_len(s, len);
  uint8_t *o = out->data + out->len;
  if (hlen < len) {
    o += qpack_write_int(o, first | hbit, prefix_bits, hlen);
    o += qpack_huffman_encode(s, len, o);
  } else {
    o += qpack_write_int(o, first, prefix_bits, len);
    if (len)
      memcpy(o, s, len);
    o += len;
  }
  out->len = (size_t)(o - out->data);
}

/* Worst-case encoded size of one field line, or 0 when it overflows. */
static size_t field_room(size_t nlen, size_t vlen) {
  if (nlen > SIZE_MAX / 4 || vlen > SIZE_MAX / 4)
    return 0;
  return nlen + vlen + 3 * QPACK_INT_MAXLEN;
}

int qpack_encode_field(buf *out, const uint8_t *name, size_t nlen,
                       const uint8_t *value, size_t vlen) {
  size_t need = field_room(nlen, vlen);
  if (need == 0 || buf_reserve(out, need) != 0)
    return -1;
  int name_idx;
  int idx = qpack_static_find(name, nlen, value, vlen, &name_idx);
  if (idx >= 0) { /* 11xxxxxx: indexed, static */
    out->len += qpack_write_int(out->data + out->len, 0xc0, 6, (uint64_t)idx);
    return 0;
  }
  if (name_idx >= 0) { /* 0101xxxx: literal with static name reference */
    out->len +=
        qpack_write_int(out->data + out->len, 0x50, 4, (uint64_t)name_idx);
  } else { /* 0010Hxxx: literal with literal name */
    put_string(out, 0x20, 0x08, 3, name, nlen);
  }
  put_string(out, 0x00, 0x80, 7, value, vlen);
  return 0;
}

int qpack_encode_status(buf *out, unsigned status) {
  if (status < 100 || status > 999)
    return -1;
  int idx = qpack_static_status_index(status);
  if (idx >= 0) {
    if (buf_reserve(out, QPACK_INT_MAXLEN) != 0)
      return -1;
    out->len += qpack_write_int(out->data + out->len, 0xc0, 6, (uint64_t)idx);
    return 0;
  }
  uint8_t digits[3] = {(uint8_t)('0' + status / 100),
                       (uint8_t)('0' + status / 10 % 10),
                       (uint8_t)('0' + status % 10)};
  if (buf_reserve(out, field_room(0, sizeof digits)) != 0)
    return -1;
  /* Name reference to ":status" 103, the lowest index with that name. */
  out->len += qpack_write_int(out->data + out->len, 0x50, 4, 24);
  put_string(out, 0x00, 0x80, 7, digits, sizeof digits);
  return 0;
}

/* One decoder instruction at p: bytes used, 0 if incomplete, or -1. */
static ssize_t decoder_instruction(const uint8_t *p, size_t len) {
  uint64_t v;
  ssize_t r;
  if (p[0] & 0x80u) /* Section Acknowledgment: we never reference entries */
    return -1;
  if (p[0] & 0x40u) { /* Stream Cancellation: nothing of ours to release */
    r = qpack_read_int(p, len, 6, &v);
    return r;
  }
  return -1; /* Insert Count Increment: we never insert */
}

uint64_t qpack_encoder_on_decoder_stream(buf *partial, const uint8_t *p,
                                         size_t len) {
  /* Finish a pending instruction byte by byte: it is a prefix integer of
   * at most QPACK_INT_MAXLEN bytes. */
  while (partial->len > 0 && len > 0) {
    if (buf_append_byte(partial, *p) != 0)
      return H3Q_QPACK_DECODER_STREAM_ERROR;
    p++;
    len--;
    ssize_t r = decoder_instruction(partial->data, partial->len);
    if (r < 0)
      return H3Q_QPACK_DECODER_STREAM_ERROR;
    if (r > 0)
      partial->len = 0;
  }
  while (len > 0) {
    ssize_t r = decoder_instruction(p, len);
    if (r < 0)
      return H3Q_QPACK_DECODER_STREAM_ERROR;
    if (r == 0)
      return buf_append(partial, p, len) == 0 ? 0
                                              : H3Q_QPACK_DECODER_STREAM_ERROR;
    p += r;
    len -= (size_t)r;
  }
  return 0;
}
