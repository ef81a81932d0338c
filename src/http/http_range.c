/* Range header parsing (RFC 9110 sections 14.1 and 14.2). */
#include "http/http_range.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct range_spec {
  bool suffix;   /* "-n": the last n bytes */
  bool has_last; /* "a-b" rather than "a-" */
  uint64_t first;
  uint64_t last; /* or the suffix length */
} range_spec;

typedef enum clip_result {
  CLIP_UNSATISFIABLE,
  CLIP_OK,
  CLIP_EMPTY, /* satisfiable, but the representation has no bytes */
} clip_result;

static bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

static const char *skip_ows(const char *p) {
  while (*p == ' ' || *p == '\t') {
    p++;
  }
  return p;
}

/* 1*DIGIT, saturating at UINT64_MAX. NULL when there is no digit. */
static const char *parse_number(const char *p, uint64_t *out) {
  if (!is_digit(*p)) {
    return NULL;
  }
  uint64_t v = 0;
  for (; is_digit(*p); p++) {
    uint64_t d = (uint64_t)(*p - '0');
    v = v > (UINT64_MAX - d) / 10 ? UINT64_MAX : v * 10 + d;
  }
  *out = v;
  return p;
}

/* int-range = first-pos "-" [ last-pos ]; suffix-range = "-" suffix-length.
 * Returns the end of the spec, or NULL when it is not one. */
static const char *parse_spec(const char *p, range_spec *s) {
  *s = (range_spec){0};
  if (*p == '-') {
    s->suffix = true;
    return parse_number(p + 1, &s->last);
  }
  p = parse_number(p, &s->first);
  if (p == NULL || *p != '-') {
    return NULL;
  }
  p++;
  if (!is_digit(*p)) {
    return p;
  }
  s->has_last = true;
  p = parse_number(p, &s->last);
  return s->last < s->first ? NULL : p;
}

static clip_result clip(const range_spec *s, uint64_t size,
                        http_byte_range *r) {
  if (s->suffix) {
    if (s->last == 0) {
      return CLIP_UNSATISFIABLE;
    }
    if (size == 0) {
      return CLIP_EMPTY;
    }
    r->first = s->last >= size ? 0 : size - s->last;
    r->last = size - 1;
    return CLIP_OK;
  }
  if (s->first >= size) {
    return CLIP_UNSATISFIABLE;
  }
  r->first = s->first;
  r->last = s->has_last && s->last < size ? s->last : size - 1;
  return CLIP_OK;
}

static bool unit_is_bytes(const char **p) {
  static const char unit[] = "bytes=";
  const char *s = *p;
  for (size_t i = 0; i < sizeof unit - 1; i++) {
    char c = s[i];
    if (c >= 'A' && c <= 'Z') {
      c = (char)(c - 'A' + 'a');
    }
    if (c != unit[i]) {
      return false;
    }
  }
  *p = s + sizeof unit - 1;
  return true;
}

http_range_kind http_range_parse(const char *value, uint64_t size,
                                 http_byte_range *out) {
  const char *p = value;
  if (p == NULL || !unit_is_bytes(&p)) {
    return HTTP_RANGE_NONE;
  }
  size_t specs = 0, satisfiable = 0;
  bool empty = false;
  http_byte_range first = {0, 0};
  for (p = skip_ows(p); *p != '\0'; p = skip_ows(p)) {
    if (*p == ',') { /* an empty list element */
      p++;
      continue;
    }
    range_spec s;
    http_byte_range r;
    p = parse_spec(p, &s);
    if (p == NULL) {
      return HTTP_RANGE_NONE;
    }
    p = skip_ows(p);
    if (*p != ',' && *p != '\0') {
      return HTTP_RANGE_NONE;
    }
    specs++;
    clip_result c = clip(&s, size, &r);
    empty |= c == CLIP_EMPTY;
    if (c == CLIP_OK && satisfiable++ == 0) {
      first = r;
    }
  }
  if (specs == 0 || empty) {
    return HTTP_RANGE_NONE;
  }
  if (satisfiable == 0) {
    return HTTP_RANGE_UNSATISFIABLE;
  }
  if (satisfiable > 1) {
    return HTTP_RANGE_MULTIPLE;
  }
  *out = first;
  return HTTP_RANGE_SINGLE;
}
