/* HTTP-dates, entity-tag lists and preconditions (src/http/conditional.h).
 * Input: newline-separated pieces: the current etag (empty: none), then
 * If-Match, If-Unmodified-Since, If-None-Match, If-Modified-Since and
 * If-Range values (missing or empty pieces are absent fields).
 * Invariants: a parsed date formats to 29 characters that parse back to
 * the same time; If-Range holds for exactly the date it names; a strong
 * etag match is also a weak one; "*" and the etag itself match; If-Match
 * that does not match gives 412; a request without preconditions
 * proceeds; 304 needs If-None-Match or If-Modified-Since. */
#include "fuzz.h"
#include "http/conditional.h"

enum { P_ETAG, P_IF_MATCH, P_IUS, P_INM, P_IMS, P_IF_RANGE, P_COUNT };

/* 1994-11-06 08:49:37 UTC, the RFC's example date. */
#define SOME_TIME ((time_t)784111777)
/* 9999-12-31 23:59:59 UTC. */
#define LAST_FORMATTABLE ((time_t)253402300799)

static void check_date(const char *value, const char *etag) {
  time_t t = 0;
  if (!http_date_parse(value, &t)) {
    return;
  }
  char text[HTTP_DATE_SIZE];
  time_t again = 0;
  http_date_format(t, text);
  FUZZ_CHECK(strlen(text) == HTTP_DATE_SIZE - 1);
  FUZZ_CHECK(http_date_parse(text, &again));
  /* "31 Dec 9999 23:59:60" is a leap second into year 10000, which the
   * four-digit format cannot write: it documents the epoch instead. */
  FUZZ_CHECK(again == (t > LAST_FORMATTABLE ? 0 : t));
  /* An HTTP-date never starts like an entity-tag, so If-Range compares
   * it as a date: equal to last-modified or not. */
  FUZZ_CHECK(conditional_if_range(value, etag, t));
  FUZZ_CHECK(!conditional_if_range(value, etag, t + 1));
}

/* True for a strong entity-tag as RFC 9110 section 8.8.3 writes it. */
static bool strong_etag(const char *e) {
  size_t len = strlen(e);
  if (len < 2 || e[0] != '"' || e[len - 1] != '"') {
    return false;
  }
  for (size_t i = 1; i + 1 < len; i++) {
    unsigned char c = (unsigned char)e[i];
    if (c < 0x21 || c == 0x7f || c == '"') {
      return false;
    }
  }
  return true;
}

static void check_etags(const char *list, const char *etag) {
  if (etag_list_match(list, etag, false)) {
    FUZZ_CHECK(etag_list_match(list, etag, true));
  }
  if (etag == NULL) {
    return;
  }
  FUZZ_CHECK(etag_list_match("*", etag, true));
  FUZZ_CHECK(etag_list_match("*", etag, false));
  if (strong_etag(etag)) {
    char weak[512];
    FUZZ_CHECK(etag_list_match(etag, etag, false));
    FUZZ_CHECK(conditional_if_range(etag, etag, SOME_TIME));
    if (strlen(etag) + 3 <= sizeof weak) {
      snprintf(weak, sizeof weak, "W/%s", etag);
      FUZZ_CHECK(etag_list_match(weak, etag, true));
      FUZZ_CHECK(!etag_list_match(weak, etag, false));
      FUZZ_CHECK(!conditional_if_range(weak, etag, SOME_TIME));
    }
  }
}

static void check_evaluate(const conditional_fields *f, const char *etag,
                           time_t last_modified) {
  conditional_result r = conditional_evaluate(f, etag, last_modified);
  FUZZ_CHECK(r == COND_PROCEED || r == COND_NOT_MODIFIED ||
             r == COND_PRECONDITION_FAILED);
  /* RFC 9110 section 13.2.2 step 1. */
  if (f->if_match != NULL && !etag_list_match(f->if_match, etag, false)) {
    FUZZ_CHECK(r == COND_PRECONDITION_FAILED);
  }
  if (r == COND_NOT_MODIFIED) {
    FUZZ_CHECK(f->if_none_match != NULL || f->if_modified_since != NULL);
  }
  if (r == COND_PRECONDITION_FAILED) {
    FUZZ_CHECK(f->if_match != NULL || f->if_unmodified_since != NULL);
  }
  conditional_fields none = {0};
  FUZZ_CHECK(conditional_evaluate(&none, etag, last_modified) == COND_PROCEED);
}

/* An empty line stands for an absent field. */
static const char *field_or_null(const char *piece) {
  return piece != NULL && piece[0] != '\0' ? piece : NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *piece[P_COUNT] = {0};
  const uint8_t *p;
  size_t len;
  for (int i = 0; i < P_COUNT && fuzz_next_piece(&data, &size, '\n', &p, &len);
       i++) {
    piece[i] = fuzz_strndup(p, len);
  }
  const char *etag = field_or_null(piece[P_ETAG]);
  conditional_fields f = {
      field_or_null(piece[P_IF_MATCH]), field_or_null(piece[P_IUS]),
      field_or_null(piece[P_INM]), field_or_null(piece[P_IMS])};
  FUZZ_CHECK(conditional_if_range(NULL, etag, SOME_TIME));
  for (int i = 0; i < P_COUNT; i++) {
    if (piece[i] != NULL) {
      check_date(piece[i], etag);
      check_etags(piece[i], etag);
    }
  }
  /* Last-modified before, at and after each date the fields name. */
  check_evaluate(&f, etag, SOME_TIME);
  for (int i = P_IUS; i <= P_IMS; i += 2) {
    time_t t;
    if (http_date_parse(piece[i], &t)) {
      check_evaluate(&f, etag, t - 1);
      check_evaluate(&f, etag, t);
      check_evaluate(&f, etag, t + 1);
    }
  }
  (void)conditional_if_range(field_or_null(piece[P_IF_RANGE]), etag, SOME_TIME);
  for (int i = 0; i < P_COUNT; i++) {
    free(piece[i]);
  }
  return 0;
}
