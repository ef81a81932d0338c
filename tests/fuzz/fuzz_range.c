/* The Range header parser (src/http/http_range.h). Input: an optional first
 * line with the representation size in decimal, then the Range value (no
 * newline: the whole input is the value and the size is 1000).
 * Invariants: a single range lies inside the representation and parses
 * back to itself; out is untouched unless the result is a single range;
 * letter case does not matter; an extra unsatisfiable range changes
 * nothing in a valid header. */
#include <inttypes.h>

#include "fuzz.h"
#include "http/http_range.h"

/* Decimal digits of s[0..len), saturating; non-digits are skipped. */
static uint64_t parse_size(const uint8_t *s, size_t len) {
  uint64_t v = 0;
  for (size_t i = 0; i < len; i++) {
    if (s[i] >= '0' && s[i] <= '9') {
      uint64_t d = (uint64_t)(s[i] - '0');
      v = v > (UINT64_MAX - d) / 10 ? UINT64_MAX : v * 10 + d;
    }
  }
  return v;
}

/* Parses value, checking the invariants that hold for any input. */
static http_range_kind parse_checked(const char *value, uint64_t size,
                                     http_byte_range *out) {
  const http_byte_range sentinel = {UINT64_MAX - 1, 1};
  *out = sentinel;
  http_range_kind k = http_range_parse(value, size, out);
  FUZZ_CHECK(k == HTTP_RANGE_NONE || k == HTTP_RANGE_SINGLE ||
             k == HTTP_RANGE_MULTIPLE || k == HTTP_RANGE_UNSATISFIABLE);
  if (k == HTTP_RANGE_SINGLE) {
    FUZZ_CHECK(out->first <= out->last);
    FUZZ_CHECK(out->last < size);
  } else {
    FUZZ_CHECK(out->first == sentinel.first && out->last == sentinel.last);
  }
  return k;
}

/* The single range, written as "bytes=first-last", must parse to itself. */
static void check_single_roundtrip(const http_byte_range *r, uint64_t size) {
  char text[64];
  snprintf(text, sizeof text, "bytes=%" PRIu64 "-%" PRIu64, r->first, r->last);
  http_byte_range again;
  FUZZ_CHECK(parse_checked(text, size, &again) == HTTP_RANGE_SINGLE);
  FUZZ_CHECK(again.first == r->first && again.last == r->last);
}

/* Upper-casing the whole value changes nothing: only "bytes" has letters. */
static void check_case(const char *value, uint64_t size, http_range_kind k,
                       const http_byte_range *r) {
  size_t len = strlen(value);
  char *upper = fuzz_strndup((const uint8_t *)value, len);
  for (size_t i = 0; i < len; i++) {
    if (upper[i] >= 'a' && upper[i] <= 'z') {
      upper[i] = (char)(upper[i] - 'a' + 'A');
    }
  }
  http_byte_range again;
  FUZZ_CHECK(parse_checked(upper, size, &again) == k);
  if (k == HTTP_RANGE_SINGLE) {
    FUZZ_CHECK(again.first == r->first && again.last == r->last);
  }
  free(upper);
}

/* A valid header plus a range starting past any size keeps its result. */
static void check_extra_unsatisfiable(const char *value, uint64_t size,
                                      http_range_kind k,
                                      const http_byte_range *r) {
  static const char extra[] = ",18446744073709551615-";
  size_t len = strlen(value);
  char *longer = malloc(len + sizeof extra);
  if (longer == NULL) {
    abort();
  }
  memcpy(longer, value, len);
  memcpy(longer + len, extra, sizeof extra);
  http_byte_range again;
  FUZZ_CHECK(parse_checked(longer, size, &again) == k);
  if (k == HTTP_RANGE_SINGLE) {
    FUZZ_CHECK(again.first == r->first && again.last == r->last);
  }
  free(longer);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uint64_t rep_size = 1000;
  const uint8_t *nl = size > 0 ? memchr(data, '\n', size) : NULL;
  if (nl != NULL) {
    rep_size = parse_size(data, (size_t)(nl - data));
    size -= (size_t)(nl + 1 - data);
    data = nl + 1;
  }
  char *value = fuzz_strndup(data, size);
  http_byte_range r;
  http_range_kind k = parse_checked(value, rep_size, &r);
  if (k == HTTP_RANGE_SINGLE) {
    check_single_roundtrip(&r, rep_size);
  }
  check_case(value, rep_size, k, &r);
  if (k != HTTP_RANGE_NONE) {
    check_extra_unsatisfiable(value, rep_size, k, &r);
  }
  free(value);
  return 0;
}
