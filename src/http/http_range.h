/* The Range request header (RFC 9110 section 14), for byte ranges of a
 * representation of known length. Pure: no I/O, no allocation. */
#ifndef H3Q_HTTP_RANGE_H
#define H3Q_HTTP_RANGE_H

#include <stdint.h>

typedef enum http_range_kind {
  /* Serve the whole representation with 200: the header is absent, not
   * syntactically valid (RFC 9110 says a server MAY ignore it), names a
   * unit other than "bytes", or the representation is empty and only
   * suffix ranges ask for it (a 206 cannot describe zero bytes). */
  HTTP_RANGE_NONE,
  /* Exactly one satisfiable range (unsatisfiable ones beside it are
   * dropped): 206 with *out. */
  HTTP_RANGE_SINGLE,
  /* More than one satisfiable range. h3q does not send
   * multipart/byteranges: the caller serves the whole file with 200. */
  HTTP_RANGE_MULTIPLE,
  /* A valid header none of whose ranges overlaps the representation: 416
   * with content-range "bytes STAR/LEN" (STAR a literal asterisk). */
  HTTP_RANGE_UNSATISFIABLE,
} http_range_kind;

typedef struct http_byte_range {
  uint64_t first; /* offset of the first byte */
  uint64_t last;  /* offset of the last byte, inclusive; >= first */
} http_byte_range;

/* Parses value (a Range field value, or NULL) against a representation of
 * size bytes. Grammar: "bytes" (case-insensitive) "=" then a comma list of
 * "first-last", "first-" or "-suffix" (digits only, no sign, no space
 * inside a range-spec; optional spaces and tabs around the commas and
 * empty list elements are accepted). A last below first makes the whole
 * header invalid (HTTP_RANGE_NONE). Numbers too large for uint64_t
 * saturate: such a first is unsatisfiable, such a last or suffix reaches
 * the end. For HTTP_RANGE_SINGLE, *out is the range clipped to the
 * representation; out is untouched otherwise. */
http_range_kind http_range_parse(const char *value, uint64_t size,
                                 http_byte_range *out);

#endif
