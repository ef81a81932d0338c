/* Request header validation (src/http/validate.h). Input: a first line
 * whose first byte holds flags (bit 0: trailer section, bit 1: extended
 * CONNECT enabled, bit 2: small limits instead of h3q's defaults; the
 * digits '0'..'7' spell them), then one field per line, name and value
 * split at the first tab.
 * Invariants: a verdict is stable and explained; a status is 400, 414 or
 * 431; an accepted section obeys the limits and RFC 9114 sections
 * 4.1-4.3 as checked independently here; content-length is reported
 * exactly when present and equals every element; raising the limits
 * changes nothing but limit refusals. */
#include <strings.h>

#include "fuzz.h"
#include "http/validate.h"

#define MAX_FIELDS 256

typedef struct field {
  const uint8_t *name, *value;
  size_t nlen, vlen;
} field;

typedef struct section {
  field f[MAX_FIELDS];
  size_t count;
  bool trailers;
} section;

static const validate_limits default_limits = {100,   256,  8192,
                                               16384, 2048, false};
static const validate_limits small_limits = {6, 16, 48, 160, 24, false};

static bool is(const field *f, const char *name) {
  return f->nlen == strlen(name) && memcmp(f->name, name, f->nlen) == 0;
}

static bool value_is(const field *f, const char *v) {
  return f->vlen == strlen(v) && memcmp(f->value, v, f->vlen) == 0;
}

static validate_verdict run(const section *s, const validate_limits *l,
                            validate_state *v) {
  validate_init(v, l, s->trailers);
  for (size_t i = 0; i < s->count; i++) {
    const field *f = &s->f[i];
    validate_field(v, f->name, f->nlen, f->value, f->vlen);
  }
  validate_verdict verdict = validate_finish(v);
  FUZZ_CHECK(verdict == v->verdict);
  FUZZ_CHECK(verdict == VALIDATE_OK || verdict == VALIDATE_MALFORMED ||
             verdict == VALIDATE_STATUS);
  FUZZ_CHECK((verdict == VALIDATE_OK) == (v->reason == NULL));
  if (verdict == VALIDATE_STATUS) {
    FUZZ_CHECK(v->status == 400 || v->status == 414 || v->status == 431);
  }
  return verdict;
}

static void check_limits_kept(const section *s, const validate_limits *l) {
  size_t total = 0;
  FUZZ_CHECK(s->count <= l->max_header_count);
  for (size_t i = 0; i < s->count; i++) {
    const field *f = &s->f[i];
    FUZZ_CHECK(f->nlen <= l->max_header_name_length);
    FUZZ_CHECK(f->vlen <= l->max_header_value_length);
    total += f->nlen + f->vlen;
    if (is(f, ":path")) {
      const uint8_t *q = memchr(f->value, '?', f->vlen);
      FUZZ_CHECK((q ? (size_t)(q - f->value) : f->vlen) <= l->max_path_length);
    }
  }
  FUZZ_CHECK(total <= l->max_request_headers_size);
}

/* RFC 9114 section 4.2 for each field of an accepted section. */
static void check_field_syntax(const field *f) {
  static const char *const banned[] = {"connection", "keep-alive",
                                       "proxy-connection", "transfer-encoding",
                                       "upgrade"};
  FUZZ_CHECK(f->nlen > 0);
  for (size_t i = 0; i < f->nlen; i++) {
    FUZZ_CHECK(!(f->name[i] >= 'A' && f->name[i] <= 'Z'));
  }
  for (size_t i = 0; i < f->vlen; i++) {
    uint8_t c = f->value[i];
    FUZZ_CHECK(c != '\0' && c != '\r' && c != '\n');
  }
  if (f->vlen > 0) {
    FUZZ_CHECK(f->value[0] != ' ' && f->value[0] != '\t');
    FUZZ_CHECK(f->value[f->vlen - 1] != ' ' && f->value[f->vlen - 1] != '\t');
  }
  for (size_t i = 0; i < sizeof banned / sizeof banned[0]; i++) {
    FUZZ_CHECK(!is(f, banned[i]));
  }
  if (is(f, "te")) {
    FUZZ_CHECK(f->vlen == 8 &&
               strncasecmp((const char *)f->value, "trailers", 8) == 0);
  }
}

/* RFC 9114 section 4.3 for an accepted request header section. */
static void check_pseudo_headers(const section *s, bool extended_connect) {
  static const char *const known[] = {":method", ":scheme", ":authority",
                                      ":path", ":protocol"};
  size_t seen[5] = {0};
  bool regular = false;
  const field *method = NULL, *path = NULL;
  for (size_t i = 0; i < s->count; i++) {
    const field *f = &s->f[i];
    if (f->name[0] != ':') {
      regular = true;
      continue;
    }
    FUZZ_CHECK(!s->trailers && !regular);
    size_t k = 0;
    while (k < 5 && !is(f, known[k])) {
      k++;
    }
    FUZZ_CHECK(k < 5);
    seen[k]++;
    method = k == 0 ? f : method;
    path = k == 3 ? f : path;
  }
  for (size_t k = 0; k < 5; k++) {
    FUZZ_CHECK(seen[k] <= 1);
  }
  if (s->trailers) {
    return;
  }
  FUZZ_CHECK(method != NULL);
  if (seen[4]) { /* RFC 9220 extended CONNECT */
    FUZZ_CHECK(extended_connect && value_is(method, "CONNECT") && seen[2]);
  }
  if (value_is(method, "CONNECT") && !seen[4]) {
    FUZZ_CHECK(seen[2] && !seen[1] && !path);
    return;
  }
  FUZZ_CHECK(seen[1] && path != NULL);
  FUZZ_CHECK((path->vlen > 0 && path->value[0] == '/') ||
             (value_is(path, "*") && value_is(method, "OPTIONS")));
}

static bool has_byte(const field *f, uint8_t c) {
  return f->vlen > 0 && memchr(f->value, c, f->vlen) != NULL;
}

static bool case_equal(const field *a, const field *b) {
  return a->vlen == b->vlen &&
         (a->vlen == 0 || strncasecmp((const char *)a->value,
                                      (const char *)b->value, a->vlen) == 0);
}

/* RFC 9114 section 4.3.1: one host at most, equal to :authority; http(s)
 * requests name a non-empty authority without userinfo. */
static void check_authority(const section *s) {
  const field *authority = NULL, *host = NULL, *scheme = NULL;
  for (size_t i = 0; i < s->count; i++) {
    const field *f = &s->f[i];
    if (is(f, "host")) {
      FUZZ_CHECK(host == NULL);
      host = f;
    }
    authority = is(f, ":authority") ? f : authority;
    scheme = is(f, ":scheme") ? f : scheme;
  }
  if (host != NULL && authority != NULL) {
    FUZZ_CHECK(case_equal(host, authority));
  }
  if (scheme == NULL ||
      !((scheme->vlen == 4 &&
         strncasecmp((const char *)scheme->value, "http", 4) == 0) ||
        (scheme->vlen == 5 &&
         strncasecmp((const char *)scheme->value, "https", 5) == 0))) {
    return;
  }
  FUZZ_CHECK(host != NULL || authority != NULL);
  if (host != NULL) {
    FUZZ_CHECK(host->vlen > 0 && !has_byte(host, '@'));
  }
  if (authority != NULL) {
    FUZZ_CHECK(authority->vlen > 0 && !has_byte(authority, '@'));
  }
}

/* Every element of every content-length field, as a number. */
static void check_content_length(const section *s, const validate_state *v) {
  uint64_t want = 0;
  bool present = validate_content_length(v, &want);
  if (s->trailers) { /* framing fields mean nothing in trailers */
    FUZZ_CHECK(!present);
    return;
  }
  bool any = false;
  for (size_t i = 0; i < s->count; i++) {
    const field *f = &s->f[i];
    if (!is(f, "content-length")) {
      continue;
    }
    any = true;
    uint64_t n = 0;
    bool digits = false, closed = false; /* closed: OWS after the digits */
    for (size_t j = 0; j <= f->vlen; j++) {
      uint8_t c = j < f->vlen ? f->value[j] : ',';
      if (c >= '0' && c <= '9') {
        FUZZ_CHECK(!closed);
        FUZZ_CHECK(n <= (UINT64_MAX - (uint64_t)(c - '0')) / 10);
        n = n * 10 + (uint64_t)(c - '0');
        digits = true;
      } else if (c == ',') {
        FUZZ_CHECK(digits && n == want);
        n = 0;
        digits = closed = false;
      } else {
        FUZZ_CHECK(c == ' ' || c == '\t');
        closed = digits;
      }
    }
  }
  FUZZ_CHECK(present == any);
}

static void check_accepted(const section *s, const validate_limits *l,
                           const validate_state *v) {
  check_limits_kept(s, l);
  for (size_t i = 0; i < s->count; i++) {
    check_field_syntax(&s->f[i]);
  }
  check_pseudo_headers(s, l->extended_connect);
  if (!s->trailers) {
    check_authority(s);
  }
  check_content_length(s, v);
}

/* Cuts the input into a section: a flags line, then name TAB value lines. */
static void split(const uint8_t *data, size_t size, section *s,
                  uint8_t *flags) {
  const uint8_t *p;
  size_t len;
  *flags = 0;
  if (fuzz_next_piece(&data, &size, '\n', &p, &len) && len > 0) {
    *flags = p[0];
  }
  s->count = 0;
  s->trailers = (*flags & 1) != 0;
  while (s->count < MAX_FIELDS &&
         fuzz_next_piece(&data, &size, '\n', &p, &len)) {
    if (len == 0 && data == NULL) {
      break; /* a final newline ends the last field, it adds none */
    }
    field *f = &s->f[s->count++];
    const uint8_t *tab = len > 0 ? memchr(p, '\t', len) : NULL;
    f->name = p;
    f->nlen = tab ? (size_t)(tab - p) : len;
    f->value = tab ? tab + 1 : p + len;
    f->vlen = tab ? len - f->nlen - 1 : 0;
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static section s; /* 8 KB: off the stack */
  uint8_t flags;
  split(data, size, &s, &flags);
  validate_limits l = (flags & 4) ? small_limits : default_limits;
  l.extended_connect = (flags & 2) != 0;
  validate_limits huge = {SIZE_MAX, SIZE_MAX, SIZE_MAX,
                          SIZE_MAX, SIZE_MAX, l.extended_connect};
  validate_state v, again, loose;
  validate_verdict verdict = run(&s, &l, &v);
  FUZZ_CHECK(run(&s, &l, &again) == verdict && again.status == v.status);
  if (verdict == VALIDATE_OK) {
    check_accepted(&s, &l, &v);
  }
  /* Larger limits only lift the limit refusals (414, 431). */
  validate_verdict lv = run(&s, &huge, &loose);
  FUZZ_CHECK(lv != VALIDATE_STATUS || loose.status == 400);
  if (verdict != VALIDATE_STATUS || v.status == 400) {
    FUZZ_CHECK(lv == verdict && loose.status == v.status);
  }
  if (lv == VALIDATE_OK) {
    check_accepted(&s, &huge, &loose);
  }
  /* NULL limits: no limits and no extended CONNECT. */
  huge.extended_connect = false;
  validate_state none;
  FUZZ_CHECK(run(&s, NULL, &none) == run(&s, &huge, &loose));
  FUZZ_CHECK(none.status == loose.status);
  return 0;
}
