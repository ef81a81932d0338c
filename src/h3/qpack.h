/* QPACK (RFC 9204): field section compression for HTTP/3.
 *
 * Decoder: static table, Huffman, and the dynamic table fed by the peer's
 * encoder stream, with blocked streams. Memory is bounded by the advertised
 * table capacity plus the field-section limit, which is enforced while a
 * section is decoded, before any string is expanded (no QPACK bombs).
 *
 * Encoder: static table and literals only (we never insert into the peer's
 * dynamic table, so our encoder stream carries nothing but its type).
 *
 * Pure code: no I/O, no quiche. Errors are RFC 9204 error codes
 * (H3Q_QPACK_* in h3q.h), returned through uint64_t *err. */
#ifndef H3Q_H3_QPACK_H
#define H3Q_H3_QPACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "util/buf.h"

/* ---- decoder ---- */

typedef struct qpack_decoder qpack_decoder;

/* max_table_capacity: what we advertise as SETTINGS_QPACK_MAX_TABLE_CAPACITY
 * (0 disables the dynamic table). max_blocked_streams: what we advertise as
 * SETTINGS_QPACK_BLOCKED_STREAMS. Returns NULL when out of memory. */
qpack_decoder *qpack_decoder_new(uint64_t max_table_capacity,
                                 uint64_t max_blocked_streams);
void qpack_decoder_free(qpack_decoder *d);

/* Feeds bytes of the peer's encoder stream (after its type byte). A partial
 * instruction is kept (bounded) until the rest arrives. Returns 0, or
 * H3Q_QPACK_ENCODER_STREAM_ERROR (connection error) for a malformed
 * instruction, a capacity above ours, an insert that does not fit, a bad
 * index, or an oversized partial instruction (H3Q_H3_INTERNAL_ERROR when
 * out of memory). After an error every later call fails the same way. */
uint64_t qpack_decoder_on_encoder_stream(qpack_decoder *d, const uint8_t *p,
                                         size_t len);

/* Called once per decoded field. name/value are valid during the call only.
 * Return 0 to continue, non-zero to stop decoding (the decode then returns
 * QPACK_STOPPED). */
typedef int (*qpack_field_cb)(void *user, const uint8_t *name, size_t nlen,
                              const uint8_t *value, size_t vlen);

typedef enum qpack_result {
  QPACK_DONE,      /* every field delivered */
  QPACK_BLOCKED,   /* needs inserts not received yet: keep the bytes, retry
                      after qpack_decoder_on_encoder_stream */
  QPACK_TOO_LARGE, /* the section exceeds max_section_size (RFC 9114
                      section 4.2.2: sum of name + value + 32 per field);
                      nothing more was expanded; answer 431 */
  QPACK_STOPPED,   /* the callback asked to stop */
  QPACK_ERROR,     /* *err holds the connection error code */
} qpack_result;

/* Decodes one encoded field section (a HEADERS frame payload) of request
 * stream stream_id. On QPACK_BLOCKED the stream is counted as blocked (if it
 * was not already); more blocked streams than allowed is an error
 * (QPACK_DECOMPRESSION_FAILED). A stream that decodes (or is cancelled)
 * stops counting. After a section with a non-zero Required Insert Count
 * decodes, a Section Acknowledgment is queued (see instructions below);
 * also after QPACK_TOO_LARGE and QPACK_STOPPED, since the section then
 * holds no references any more.
 * Fields are delivered in order; on QPACK_TOO_LARGE / QPACK_STOPPED /
 * QPACK_ERROR some fields may already have been delivered. *err is 0
 * unless QPACK_ERROR: then QPACK_DECOMPRESSION_FAILED, or
 * H3Q_H3_INTERNAL_ERROR when out of memory. Names and values passed to cb
 * point into p, the dynamic table or a decoder-owned scratch buffer. */
qpack_result qpack_decode_section(qpack_decoder *d, uint64_t stream_id,
                                  const uint8_t *p, size_t len,
                                  uint64_t max_section_size, qpack_field_cb cb,
                                  void *user, uint64_t *err);

/* The stream was reset or abandoned before its sections were decoded:
 * forget it as blocked and, when the dynamic table is enabled, queue a
 * Stream Cancellation instruction (RFC 9204 section 4.4.2). */
void qpack_decoder_cancel_stream(qpack_decoder *d, uint64_t stream_id);

/* Decoder instructions waiting to be written to our decoder stream
 * (Section Acknowledgment, Stream Cancellation, Insert Count Increment).
 * Insert Count Increments are queued by qpack_decoder_on_encoder_stream.
 * The caller writes what the stream takes and consumes it from the buf. */
buf *qpack_decoder_instructions(qpack_decoder *d);

/* Entries inserted so far (the decoder's Insert Count). */
uint64_t qpack_decoder_insert_count(const qpack_decoder *d);

/* Streams currently counted as blocked. */
size_t qpack_decoder_blocked_streams(const qpack_decoder *d);

/* Frees the decoder's working buffers that hold nothing now (decode
 * scratch, empty instruction buffers); the dynamic table stays. For idle
 * connections; they grow again when needed. */
void qpack_decoder_trim(qpack_decoder *d);

/* Current dynamic table size (RFC 9204 section 3.2.1: name + value + 32
 * per entry). */
uint64_t qpack_decoder_table_size(const qpack_decoder *d);

/* ---- encoder ---- */

/* Appends the field section prefix for a section that uses no dynamic
 * table entries (Required Insert Count 0, Base 0). Returns 0 or -1 (OOM). */
int qpack_encode_prefix(buf *out);

/* Appends one field line: a static-table index when name and value match,
 * a literal with a static name reference when the name matches, otherwise
 * a literal name; strings are Huffman-coded when that is shorter. name
 * must be lowercase. Returns 0 or -1 (OOM). */
int qpack_encode_field(buf *out, const uint8_t *name, size_t nlen,
                       const uint8_t *value, size_t vlen);

/* Appends ":status" with a three-digit code (100..999) without formatting
 * it first: the same bytes as qpack_encode_field. Returns 0, or -1 (OOM,
 * or a code out of range). */
int qpack_encode_status(buf *out, unsigned status);

/* Feeds bytes of the peer's decoder stream (after its type byte). Since we
 * never reference the dynamic table, a Section Acknowledgment or an Insert
 * Count Increment is H3Q_QPACK_DECODER_STREAM_ERROR; Stream Cancellation is
 * accepted. Partial instructions are kept in *partial (bounded). Returns 0
 * or the error code. */
uint64_t qpack_encoder_on_decoder_stream(buf *partial, const uint8_t *p,
                                         size_t len);

/* ---- pieces, exposed for tests and fuzzing ---- */

/* Huffman (RFC 7541 Appendix B). decode returns the decoded length, or -1
 * for an invalid code (EOS, padding longer than 7 bits or not all ones) or
 * when out_cap is too small. encoded_len gives the Huffman size of s. */
ssize_t qpack_huffman_decode(const uint8_t *in, size_t len, uint8_t *out,
                             size_t out_cap);
size_t qpack_huffman_encoded_len(const uint8_t *s, size_t len);
size_t qpack_huffman_encode(const uint8_t *s, size_t len, uint8_t *out);

#endif
