/* The QPACK decoder (src/h3/qpack.h) fed like a connection feeds it.
 * Input: one config byte (bits 0-1: dynamic table capacity 0, 220, 4096
 * or 65536; bits 2-3: blocked streams 0, 1, 4 or 100; bits 4-5: section
 * limit 40, 200, 1024 or 16384 bytes; bit 6: the callback stops after
 * the first field of each section), then chunks of
 * [op][length: 2 bytes, big-endian][bytes]. op & 7 says what the bytes
 * are: 0 encoder-stream bytes, 1 a field section of stream (op >> 3) * 4,
 * 2 cancel that stream, 3 write out the queued decoder instructions, 4
 * decoder-stream bytes for our encoder. A section that blocks is retried
 * after each encoder-stream chunk, as the session does.
 * Invariants: delivered fields never add up to more than the section
 * limit (RFC 9114 section 4.2.2 sizes); results and error codes are the
 * documented ones; without a dynamic table nothing is inserted and no
 * decoder instruction is queued; inserts never outnumber encoder-stream
 * bytes; the insert count never goes down; the table stays within its
 * capacity; the decoder counts as blocked exactly the streams waiting. */
#include "fuzz.h"
#include "h3/qpack.h"
#include "h3q.h"

#define MAX_CHUNKS 64
#define MAX_PENDING 8

typedef struct pending {
  uint64_t stream_id;
  const uint8_t *p;
  size_t len;
} pending;

typedef struct session {
  qpack_decoder *d;
  uint64_t capacity, max_blocked, section_limit;
  bool stop_early;        /* the field callback asks to stop after one field */
  uint64_t encoder_bytes; /* fed so far */
  pending blocked[MAX_PENDING];
  size_t nblocked;
  buf decoder_partial; /* our encoder's view of the peer's decoder stream */
  bool closed;         /* a connection error ended the session */
} session;

typedef struct delivery {
  uint64_t total; /* name + value + 32 per field, RFC 9114 section 4.2.2 */
  uint64_t limit;
  size_t fields;
  bool stop_early;
  uint8_t sum; /* reads every byte, so ASan checks the whole field */
} delivery;

static int on_field(void *user, const uint8_t *name, size_t nlen,
                    const uint8_t *value, size_t vlen) {
  delivery *dl = user;
  FUZZ_CHECK(nlen == 0 || name != NULL);
  FUZZ_CHECK(vlen == 0 || value != NULL);
  for (size_t i = 0; i < nlen; i++) {
    dl->sum = (uint8_t)(dl->sum + name[i]);
  }
  for (size_t i = 0; i < vlen; i++) {
    dl->sum = (uint8_t)(dl->sum + value[i]);
  }
  dl->total += (uint64_t)nlen + (uint64_t)vlen + 32;
  FUZZ_CHECK(dl->total <= dl->limit);
  dl->fields++;
  return dl->stop_early ? 1 : 0;
}

static void check_instructions(session *s) {
  buf *ins = qpack_decoder_instructions(s->d);
  FUZZ_CHECK(ins != NULL);
  if (s->capacity == 0) {
    FUZZ_CHECK(ins->len == 0);
    FUZZ_CHECK(qpack_decoder_insert_count(s->d) == 0);
  }
  FUZZ_CHECK(qpack_decoder_insert_count(s->d) <= s->encoder_bytes);
  FUZZ_CHECK(qpack_decoder_table_size(s->d) <= s->capacity);
  /* The decoder counts as blocked exactly the streams we hold back. */
  FUZZ_CHECK(qpack_decoder_blocked_streams(s->d) == s->nblocked);
  FUZZ_CHECK(s->nblocked <= s->max_blocked);
}

/* Decodes one section; returns its result (the session closes on error). */
static qpack_result decode(session *s, uint64_t stream_id, const uint8_t *p,
                           size_t len) {
  delivery dl = {0, s->section_limit, 0, s->stop_early, 0};
  uint64_t err = 0;
  qpack_result r = qpack_decode_section(s->d, stream_id, p, len,
                                        s->section_limit, on_field, &dl, &err);
  FUZZ_CHECK(r == QPACK_DONE || r == QPACK_BLOCKED || r == QPACK_TOO_LARGE ||
             r == QPACK_STOPPED || r == QPACK_ERROR);
  FUZZ_CHECK((r == QPACK_STOPPED) == (s->stop_early && dl.fields > 0));
  FUZZ_CHECK(!s->stop_early || dl.fields <= 1);
  if (r == QPACK_ERROR) {
    FUZZ_CHECK(err == H3Q_QPACK_DECOMPRESSION_FAILED ||
               err == H3Q_H3_INTERNAL_ERROR); /* out of memory */
    s->closed = true;
  } else {
    FUZZ_CHECK(err == 0);
  }
  if (r == QPACK_BLOCKED) {
    FUZZ_CHECK(s->capacity > 0); /* no dynamic table: nothing to wait for */
    FUZZ_CHECK(dl.total == 0);   /* nothing delivered before blocking */
  }
  return r;
}

static bool is_blocked(const session *s, uint64_t stream_id) {
  for (size_t i = 0; i < s->nblocked; i++) {
    if (s->blocked[i].stream_id == stream_id) {
      return true;
    }
  }
  return false;
}

static void drop_blocked(session *s, size_t i) {
  s->blocked[i] = s->blocked[--s->nblocked];
}

/* A new section. A stream already waiting keeps its turn: the session
 * never decodes a stream's sections out of order. */
static void on_section(session *s, uint64_t stream_id, const uint8_t *p,
                       size_t len) {
  if (is_blocked(s, stream_id) || s->nblocked == MAX_PENDING) {
    return;
  }
  if (decode(s, stream_id, p, len) == QPACK_BLOCKED) {
    s->blocked[s->nblocked++] = (pending){stream_id, p, len};
  }
}

static void retry_blocked(session *s) {
  for (size_t i = 0; i < s->nblocked && !s->closed;) {
    pending b = s->blocked[i];
    if (decode(s, b.stream_id, b.p, b.len) == QPACK_BLOCKED) {
      i++;
    } else {
      drop_blocked(s, i);
    }
  }
}

static void on_encoder_stream(session *s, const uint8_t *p, size_t len) {
  uint64_t before = qpack_decoder_insert_count(s->d);
  s->encoder_bytes += len;
  uint64_t err = qpack_decoder_on_encoder_stream(s->d, p, len);
  FUZZ_CHECK(err == 0 || err == H3Q_QPACK_ENCODER_STREAM_ERROR ||
             err == H3Q_H3_INTERNAL_ERROR);
  FUZZ_CHECK(qpack_decoder_insert_count(s->d) >= before);
  if (err != 0) {
    s->closed = true;
    return;
  }
  retry_blocked(s);
}

static void on_cancel(session *s, uint64_t stream_id) {
  qpack_decoder_cancel_stream(s->d, stream_id);
  for (size_t i = 0; i < s->nblocked; i++) {
    if (s->blocked[i].stream_id == stream_id) {
      drop_blocked(s, i);
      break;
    }
  }
}

static void on_decoder_stream(session *s, const uint8_t *p, size_t len) {
  uint64_t err = qpack_encoder_on_decoder_stream(&s->decoder_partial, p, len);
  FUZZ_CHECK(err == 0 || err == H3Q_QPACK_DECODER_STREAM_ERROR);
  s->closed = err != 0;
}

static void run_chunk(session *s, uint8_t op, const uint8_t *p, size_t len) {
  uint64_t stream_id = (uint64_t)(op >> 3) * 4;
  switch (op & 7) {
  case 0:
    on_encoder_stream(s, p, len);
    break;
  case 1:
    on_section(s, stream_id, p, len);
    break;
  case 2:
    on_cancel(s, stream_id);
    break;
  case 3: {
    buf *ins = qpack_decoder_instructions(s->d);
    buf_consume(ins, ins->len);
    break;
  }
  case 4:
    on_decoder_stream(s, p, len);
    break;
  default:
    break;
  }
  if (!s->closed) {
    check_instructions(s);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const uint64_t capacities[4] = {0, 220, 4096, 65536};
  static const uint64_t blocked[4] = {0, 1, 4, 100};
  static const uint64_t limits[4] = {40, 200, 1024, 16384};
  if (size < 1) {
    return 0;
  }
  uint8_t cfg = data[0];
  session s = {.capacity = capacities[cfg & 3],
               .max_blocked = blocked[(cfg >> 2) & 3],
               .section_limit = limits[(cfg >> 4) & 3],
               .stop_early = (cfg & 0x40) != 0};
  s.d = qpack_decoder_new(s.capacity, s.max_blocked);
  if (s.d == NULL) {
    abort();
  }
  size_t pos = 1;
  for (int n = 0; n < MAX_CHUNKS && !s.closed && size - pos >= 3; n++) {
    uint8_t op = data[pos];
    size_t len = (size_t)data[pos + 1] << 8 | data[pos + 2];
    pos += 3;
    len = len < size - pos ? len : size - pos;
    run_chunk(&s, op, data + pos, len);
    pos += len;
  }
  qpack_decoder_free(s.d);
  buf_free(&s.decoder_partial);
  return 0;
}
