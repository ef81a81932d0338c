/* Validators and conditional requests (RFC 9110 sections 8.8 and 13):
 * HTTP-date formatting and parsing, entity-tag comparison, and the
 * precondition evaluation order of section 13.2.2 for GET and HEAD. Pure:
 * no I/O, no allocation (http_date_parse reads the clock only for
 * two-digit years). */
#ifndef H3Q_HTTP_CONDITIONAL_H
#define H3Q_HTTP_CONDITIONAL_H

#include <stdbool.h>
#include <time.h>

/* "Sun, 06 Nov 1994 08:49:37 GMT" and its NUL. */
#define HTTP_DATE_SIZE 30

/* Formats t as an IMF-fixdate. Day and month names come from tables, not
 * from the locale. A t gmtime cannot represent gives the epoch. */
void http_date_format(time_t t, char out[HTTP_DATE_SIZE]);

/* Parses an HTTP-date in any of the three formats a recipient must accept:
 * IMF-fixdate, rfc850-date ("Sunday, 06-Nov-94 08:49:37 GMT"; a two-digit
 * year more than 50 years in the future means the previous century) and
 * asctime ("Sun Nov  6 08:49:37 1994"). The whole string must match:
 * no leading or trailing space, no second date. Fields are range-checked
 * (day against the month, second 60 allowed). Returns false, leaving *out
 * untouched, when value is NULL or not a valid HTTP-date. */
bool http_date_parse(const char *value, time_t *out);

/* Comparison of an entity-tag list (If-None-Match, If-Match) with etag,
 * the server's current strong entity-tag including its quotes. "*" matches
 * any etag. Weak comparison ignores a "W/" prefix on either side; strong
 * comparison needs both tags strong. Empty list elements and spaces around
 * commas are skipped. A list with a malformed element matches nothing. */
bool etag_list_match(const char *list, const char *etag, bool weak);

typedef enum conditional_result {
  COND_PROCEED,             /* send the representation (200 or 206) */
  COND_NOT_MODIFIED,        /* 304 */
  COND_PRECONDITION_FAILED, /* 412 */
} conditional_result;

/* The request's precondition fields; NULL when absent. */
typedef struct conditional_fields {
  const char *if_match;
  const char *if_unmodified_since;
  const char *if_none_match;
  const char *if_modified_since;
} conditional_fields;

/* Evaluates the preconditions of a GET or HEAD request in the order of RFC
 * 9110 section 13.2.2 against the current etag and last-modified time:
 * If-Match (strong; false gives 412), else If-Unmodified-Since (later
 * modification gives 412); then If-None-Match (weak; a match gives 304),
 * else If-Modified-Since (no later modification gives 304). Dates that do
 * not parse are ignored, as the RFC requires. */
conditional_result conditional_evaluate(const conditional_fields *f,
                                        const char *etag, time_t last_modified);

/* If-Range (RFC 9110 section 13.1.5): true when the Range header should be
 * honoured. An entity-tag must be strong and equal to etag; otherwise the
 * value must be an HTTP-date exactly equal to last_modified. NULL (no
 * If-Range) is true; anything malformed is false. */
bool conditional_if_range(const char *if_range, const char *etag,
                          time_t last_modified);

#endif
