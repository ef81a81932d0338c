/* RFC 9114 sections 4.1-4.3 checks for one request header section (or
 * trailer section), fed field by field in wire order as quiche delivers
 * them, plus h3q's size limits. Pure: no I/O, no allocation. */
#ifndef H3Q_HTTP_VALIDATE_H
#define H3Q_HTTP_VALIDATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct validate_limits {
  size_t max_header_count;         /* fields incl. pseudo-headers -> 431 */
  size_t max_header_name_length;   /* -> 431 */
  size_t max_header_value_length;  /* -> 431 */
  size_t max_request_headers_size; /* sum of name+value lengths -> 431 */
  size_t max_path_length;          /* :path without the query -> 414 */
  bool extended_connect;           /* :protocol allowed with CONNECT */
} validate_limits;

typedef enum validate_verdict {
  VALIDATE_OK = 0,
  VALIDATE_MALFORMED, /* reset the stream with H3_MESSAGE_ERROR */
  VALIDATE_STATUS,    /* answer with v->status (400, 414, 431) */
} validate_verdict;

/* Longest :authority accepted (a DNS name, port and brackets fit many
 * times over). */
#define VALIDATE_AUTHORITY_MAX 1024

typedef struct validate_state {
  const validate_limits *limits;
  bool trailers; /* a trailer section: no pseudo-headers at all */
  validate_verdict verdict;
  int status;         /* with VALIDATE_STATUS */
  const char *reason; /* static text for logs, with any verdict != OK */
  /* Internal to validate.c. */
  uint32_t flags;          /* VF_* bits: what the section has shown */
  size_t field_count;      /* fields so far, pseudo-headers included */
  size_t section_bytes;    /* running sum of name + value lengths */
  uint64_t content_length; /* with VF_CONTENT_LENGTH */
  /* :authority, copied (decoders reuse their buffers between fields) to
   * compare it with a later host field. */
  uint8_t authority[VALIDATE_AUTHORITY_MAX];
  size_t authority_len;
} validate_state;

void validate_init(validate_state *v, const validate_limits *limits,
                   bool trailers);

/* Checks one field. Once a verdict other than OK is reached, later calls
 * do nothing (the first problem wins; a limit status never hides a
 * malformed field already seen, and vice versa).
 * Values are read during the call only (the :authority value is copied;
 * one longer than VALIDATE_AUTHORITY_MAX gives 431). */
void validate_field(validate_state *v, const uint8_t *name, size_t nlen,
                    const uint8_t *value, size_t vlen);

/* Whole-section checks (required pseudo-headers, CONNECT shape,
 * :authority vs host); returns the final verdict. */
validate_verdict validate_finish(validate_state *v);

/* Parsed content-length after validate_finish returned OK: true and *out
 * when present (repeated identical values count once). */
bool validate_content_length(const validate_state *v, uint64_t *out);

#endif
