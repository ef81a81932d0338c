/* RFC 9114 sections 4.1-4.4 request checks, fed one field at a time.
 *
 * Verdicts: everything RFC 9114 calls malformed (section 4.1.2) is
 * VALIDATE_MALFORMED, so the caller resets the stream with
 * H3_MESSAGE_ERROR. VALIDATE_STATUS is for size limits (431, 414) and for
 * the one refusal RFC 9114 does not call malformed: more than one host
 * field (400, as RFC 9112 section 3.2 answers it).
 *
 * Field values with leading or trailing SP/HTAB are malformed (RFC 9114
 * section 4.2 allows it): RFC 9110 section 5.5 field values never carry
 * them, so only a peer trying to make two parsers disagree sends them.
 * Other control characters pass, as RFC 9110 section 5.5 allows. */
#include "http/validate.h"

#include <string.h>

#include "http/headers.h"

/* validate_state.flags bits. */
enum {
  VF_METHOD = 1u << 0, /* the pseudo-headers seen */
  VF_SCHEME = 1u << 1,
  VF_AUTHORITY = 1u << 2,
  VF_PATH = 1u << 3,
  VF_PROTOCOL = 1u << 4,
  VF_REGULAR = 1u << 5, /* a regular field seen: no pseudo-header after */
  VF_HOST = 1u << 6,
  VF_HOST_EMPTY = 1u << 7,
  VF_HOST_USERINFO = 1u << 8,
  VF_CONTENT_LENGTH = 1u << 9,
  VF_CONNECT = 1u << 10, /* :method is CONNECT */
  VF_OPTIONS = 1u << 11, /* :method is OPTIONS */
  VF_HTTP = 1u << 12,    /* :scheme is http or https */
  VF_AUTH_USERINFO = 1u << 13,
  VF_PATH_SLASH = 1u << 14,    /* :path starts with '/' */
  VF_PATH_ASTERISK = 1u << 15, /* :path is "*" */
};

static const struct {
  const char *name;
  uint32_t bit;
} pseudo_headers[] = {
    {":method", VF_METHOD},       {":scheme", VF_SCHEME},
    {":authority", VF_AUTHORITY}, {":path", VF_PATH},
    {":protocol", VF_PROTOCOL}, /* RFC 9220 */
};

static bool bytes_are(const uint8_t *s, size_t len, const char *lit) {
  return len == strlen(lit) && memcmp(s, lit, len) == 0;
}

/* Index of the first c in s[0..len), or len. A loop, not memchr: quiche
 * may hand an empty value with any pointer. */
static size_t find_byte(const uint8_t *s, size_t len, uint8_t c) {
  size_t i = 0;
  while (i < len && s[i] != c) {
    i++;
  }
  return i;
}

static bool is_ows(uint8_t c) {
  return c == ' ' || c == '\t';
}

static void malformed(validate_state *v, const char *reason) {
  v->verdict = VALIDATE_MALFORMED;
  v->reason = reason;
}

static void refuse(validate_state *v, int status, const char *reason) {
  v->verdict = VALIDATE_STATUS;
  v->status = status;
  v->reason = reason;
}

void validate_init(validate_state *v, const validate_limits *limits,
                   bool trailers) {
  memset(v, 0, sizeof *v);
  v->limits = limits;
  v->trailers = trailers;
  v->verdict = VALIDATE_OK;
}

/* Size limits come before any look at the bytes, so an oversized field is
 * refused without being scanned. A NULL limits means no limits. */
static bool within_limits(validate_state *v, size_t nlen, size_t vlen) {
  const validate_limits *l = v->limits;
  v->field_count++;
  /* Saturating: a sum that wraps must not pass the check. */
  size_t add = nlen + vlen < nlen ? SIZE_MAX : nlen + vlen;
  v->section_bytes =
      v->section_bytes > SIZE_MAX - add ? SIZE_MAX : v->section_bytes + add;
  if (l == NULL) {
    return true;
  }
  if (v->field_count > l->max_header_count) {
    refuse(v, 431, "too many header fields");
  } else if (nlen > l->max_header_name_length) {
    refuse(v, 431, "header field name too long");
  } else if (vlen > l->max_header_value_length) {
    refuse(v, 431, "header field value too long");
  } else if (v->section_bytes > l->max_request_headers_size) {
    refuse(v, 431, "header section too large");
  }
  return v->verdict == VALIDATE_OK;
}

/* RFC 9114 section 4.2: lowercase RFC 9110 tokens; a pseudo-header name is
 * checked against the known ones later, which covers its syntax. */
static bool name_ok(validate_state *v, const uint8_t *name, size_t nlen) {
  const char *n = (const char *)name;
  if (nlen == 0) {
    malformed(v, "empty field name");
  } else if (!header_name_is_lower(n, nlen)) {
    malformed(v, "uppercase field name");
  } else if (n[0] != ':' && !header_name_is_token(n, nlen)) {
    malformed(v, "field name is not a token");
  }
  return v->verdict == VALIDATE_OK;
}

/* RFC 9114 section 4.2: NUL, CR or LF make a message malformed; leading
 * or trailing whitespace too, by h3q's choice (see the top comment). */
static bool value_ok(validate_state *v, const uint8_t *value, size_t vlen) {
  for (size_t i = 0; i < vlen; i++) {
    if (value[i] == '\0' || value[i] == '\r' || value[i] == '\n') {
      malformed(v, "CR, LF or NUL in field value");
      return false;
    }
  }
  if (vlen > 0 && (is_ows(value[0]) || is_ows(value[vlen - 1]))) {
    malformed(v, "leading or trailing whitespace in field value");
    return false;
  }
  return true;
}

/* RFC 3986 section 3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) */
static bool scheme_syntax_ok(const uint8_t *s, size_t len) {
  if (len == 0 || !((s[0] | 0x20) >= 'a' && (s[0] | 0x20) <= 'z')) {
    return false;
  }
  for (size_t i = 1; i < len; i++) {
    bool alpha = (s[i] | 0x20) >= 'a' && (s[i] | 0x20) <= 'z';
    bool digit = s[i] >= '0' && s[i] <= '9';
    if (!alpha && !digit && s[i] != '+' && s[i] != '-' && s[i] != '.') {
      return false;
    }
  }
  return true;
}

/* :method and :scheme values (RFC 9110 section 9.1: methods are
 * case-sensitive tokens; schemes compare case-insensitively). */
static void on_method_or_scheme(validate_state *v, uint32_t bit,
                                const uint8_t *value, size_t vlen) {
  const char *s = (const char *)value;
  if (bit == VF_METHOD) {
    if (!header_name_is_token(s, vlen)) {
      malformed(v, ":method is not a token");
    } else if (bytes_are(value, vlen, "CONNECT")) {
      v->flags |= VF_CONNECT;
    } else if (bytes_are(value, vlen, "OPTIONS")) {
      v->flags |= VF_OPTIONS;
    }
    return;
  }
  if (!scheme_syntax_ok(value, vlen)) {
    malformed(v, ":scheme is not a URI scheme");
  } else if (ascii_case_equal(s, vlen, "http", 4) ||
             ascii_case_equal(s, vlen, "https", 5)) {
    v->flags |= VF_HTTP;
  }
}

/* :path: the 414 limit counts the path without its query; its form is
 * checked in validate_finish, once :method is known ("*" needs OPTIONS). */
static void on_path(validate_state *v, const uint8_t *value, size_t vlen) {
  size_t plen = find_byte(value, vlen, '?');
  if (v->limits && plen > v->limits->max_path_length) {
    refuse(v, 414, ":path too long");
  } else if (vlen > 0 && value[0] == '/') {
    v->flags |= VF_PATH_SLASH;
  } else if (bytes_are(value, vlen, "*")) {
    v->flags |= VF_PATH_ASTERISK;
  }
}

/* Dispatches one pseudo-header value to the check that knows it. */
static void on_pseudo_value(validate_state *v, uint32_t bit,
                            const uint8_t *value, size_t vlen) {
  if (bit == VF_METHOD || bit == VF_SCHEME) {
    on_method_or_scheme(v, bit, value, vlen);
  } else if (bit == VF_PATH) {
    on_path(v, value, vlen);
  } else if (bit == VF_AUTHORITY) {
    if (vlen > sizeof v->authority) {
      refuse(v, 431, ":authority too long");
      return;
    }
    memcpy(v->authority, value, vlen); /* compared with host later */
    v->authority_len = vlen;
    if (find_byte(value, vlen, '@') < vlen) {
      v->flags |= VF_AUTH_USERINFO; /* refused for http(s) at finish */
    }
  } else if (!v->limits || !v->limits->extended_connect) {
    /* RFC 9220 section 3 (RFC 8441 section 3): :protocol without
     * SETTINGS_ENABLE_CONNECT_PROTOCOL sent is malformed. */
    malformed(v, ":protocol without extended CONNECT");
  } else if (!header_name_is_token((const char *)value, vlen)) {
    malformed(v, ":protocol is not a token");
  }
}

/* RFC 9114 section 4.3: only the request pseudo-headers, each once, all
 * before the regular fields, and none in a trailer section. */
static void on_pseudo(validate_state *v, const uint8_t *name, size_t nlen,
                      const uint8_t *value, size_t vlen) {
  if (v->trailers) {
    malformed(v, "pseudo-header in trailer section");
    return;
  }
  if (v->flags & VF_REGULAR) {
    malformed(v, "pseudo-header after a regular field");
    return;
  }
  uint32_t bit = 0; /* stays 0 for :status and unknown names */
  for (size_t i = 0; i < sizeof pseudo_headers / sizeof pseudo_headers[0];
       i++) {
    if (bytes_are(name, nlen, pseudo_headers[i].name)) {
      bit = pseudo_headers[i].bit;
      break;
    }
  }
  if (bit == 0) {
    malformed(v, "unknown or response pseudo-header");
  } else if (v->flags & bit) {
    malformed(v, "duplicate pseudo-header");
  } else {
    v->flags |= bit;
    on_pseudo_value(v, bit, value, vlen);
  }
}

/* Parses one list element of content-length: 1*DIGIT fitting in uint64
 * (RFC 9110 section 8.6). Returns false on anything else. */
static bool parse_decimal(const uint8_t *s, size_t len, uint64_t *out) {
  uint64_t n = 0;
  if (len == 0) {
    return false;
  }
  for (size_t i = 0; i < len; i++) {
    if (s[i] < '0' || s[i] > '9') {
      return false;
    }
    uint64_t d = (uint64_t)(s[i] - '0');
    if (n > (UINT64_MAX - d) / 10) {
      return false;
    }
    n = n * 10 + d;
  }
  *out = n;
  return true;
}

/* content-length: a number, or a list ("42, 42") whose elements, and all
 * the section's content-length fields, agree (RFC 9110 section 8.6); any
 * disagreement is malformed (RFC 9114 section 4.1.2). Values compare as
 * numbers, so "042" equals "42". OWS is allowed only around commas (the
 * value's own edges were checked by value_ok); empty elements are not. */
static void on_content_length(validate_state *v, const uint8_t *value,
                              size_t vlen) {
  size_t i = 0;
  for (;;) {
    size_t end = i + find_byte(value + i, vlen - i, ',');
    size_t a = i, b = end;
    while (a < b && is_ows(value[a])) {
      a++;
    }
    while (b > a && is_ows(value[b - 1])) {
      b--;
    }
    uint64_t n;
    if (!parse_decimal(value + a, b - a, &n)) {
      malformed(v, "invalid content-length");
      return;
    }
    if ((v->flags & VF_CONTENT_LENGTH) && n != v->content_length) {
      malformed(v, "conflicting content-length values");
      return;
    }
    v->flags |= VF_CONTENT_LENGTH;
    v->content_length = n;
    if (end == vlen) {
      return;
    }
    i = end + 1; /* past the comma */
  }
}

/* host: RFC 9114 section 4.3.1 wants it equal to :authority when both are
 * present. Pseudo-headers all precede it, so :authority is known here.
 * Hosts compare case-insensitively (RFC 3986 section 3.2.2). */
static void on_host(validate_state *v, const uint8_t *value, size_t vlen) {
  if (v->flags & VF_HOST) {
    refuse(v, 400, "more than one host field"); /* RFC 9112 section 3.2 */
    return;
  }
  v->flags |= VF_HOST;
  if (vlen == 0) {
    v->flags |= VF_HOST_EMPTY;
  }
  if (find_byte(value, vlen, '@') < vlen) {
    v->flags |= VF_HOST_USERINFO;
  }
  if ((v->flags & VF_AUTHORITY) &&
      !ascii_case_equal((const char *)v->authority, v->authority_len,
                        (const char *)value, vlen)) {
    malformed(v, ":authority and host differ");
  }
}

/* RFC 9114 section 4.2: connection-specific fields are malformed, and te
 * may only say "trailers". */
static void on_regular(validate_state *v, const uint8_t *name, size_t nlen,
                       const uint8_t *value, size_t vlen) {
  static const char *const connection_specific[] = {
      "connection", "keep-alive", "proxy-connection", "transfer-encoding",
      "upgrade"};
  v->flags |= VF_REGULAR;
  for (size_t i = 0;
       i < sizeof connection_specific / sizeof connection_specific[0]; i++) {
    if (bytes_are(name, nlen, connection_specific[i])) {
      malformed(v, "connection-specific field");
      return;
    }
  }
  if (bytes_are(name, nlen, "te")) {
    if (!ascii_case_equal((const char *)value, vlen, "trailers", 8)) {
      malformed(v, "te other than trailers");
    }
  } else if (v->trailers) {
    return; /* framing and target fields mean nothing in trailers */
  } else if (bytes_are(name, nlen, "content-length")) {
    on_content_length(v, value, vlen);
  } else if (bytes_are(name, nlen, "host")) {
    on_host(v, value, vlen);
  }
}

void validate_field(validate_state *v, const uint8_t *name, size_t nlen,
                    const uint8_t *value, size_t vlen) {
  if (v->verdict != VALIDATE_OK || !within_limits(v, nlen, vlen)) {
    return;
  }
  if (!name_ok(v, name, nlen) || !value_ok(v, value, vlen)) {
    return;
  }
  if (name[0] == ':') {
    on_pseudo(v, name, nlen, value, vlen);
  } else {
    on_regular(v, name, nlen, value, vlen);
  }
}

/* RFC 9114 section 4.3.1: http(s) requests name their authority, in
 * :authority or host, non-empty and without userinfo. */
static void check_authority(validate_state *v) {
  uint32_t f = v->flags;
  if (!(f & VF_HTTP)) {
    return; /* other schemes may lack an authority */
  }
  if (!(f & (VF_AUTHORITY | VF_HOST))) {
    malformed(v, "http(s) request without :authority or host");
  } else if ((f & VF_AUTHORITY) && v->authority_len == 0) {
    malformed(v, "empty :authority");
  } else if ((f & VF_HOST) && (f & VF_HOST_EMPTY)) {
    malformed(v, "empty host");
  } else if (f & (VF_AUTH_USERINFO | VF_HOST_USERINFO)) {
    malformed(v, "userinfo in :authority or host");
  }
}

/* RFC 9114 section 4.4: a plain CONNECT carries :method and :authority
 * only; its target is host:port, left for the CONNECT handler to parse. */
static void check_connect(validate_state *v) {
  if (v->flags & (VF_SCHEME | VF_PATH)) {
    malformed(v, "CONNECT with :scheme or :path");
  } else if (!(v->flags & VF_AUTHORITY)) {
    malformed(v, "CONNECT without :authority");
  } else if (v->authority_len == 0) {
    malformed(v, "empty :authority");
  }
}

/* RFC 9114 section 4.3.1 (and RFC 9220 section 3 for extended CONNECT,
 * which must also carry :authority): :scheme and :path present, :path
 * absolute ("/...") or "*" for OPTIONS only. */
static void check_request(validate_state *v) {
  uint32_t f = v->flags;
  if (!(f & VF_SCHEME)) {
    malformed(v, "missing :scheme");
  } else if (!(f & VF_PATH)) {
    malformed(v, "missing :path");
  } else if ((f & VF_CONNECT) && !(f & VF_AUTHORITY)) {
    malformed(v, "extended CONNECT without :authority");
  } else if (f & VF_PATH_SLASH) {
    check_authority(v);
  } else if ((f & VF_PATH_ASTERISK) && (f & VF_OPTIONS)) {
    check_authority(v);
  } else if (f & VF_PATH_ASTERISK) {
    malformed(v, ":path \"*\" with a method other than OPTIONS");
  } else {
    malformed(v, ":path empty or not starting with '/'");
  }
}

validate_verdict validate_finish(validate_state *v) {
  if (v->verdict != VALIDATE_OK || v->trailers) {
    return v->verdict; /* trailers: all checks were per field */
  }
  uint32_t f = v->flags;
  if (!(f & VF_METHOD)) {
    malformed(v, "missing :method");
  } else if ((f & VF_PROTOCOL) && !(f & VF_CONNECT)) {
    malformed(v, ":protocol with a method other than CONNECT");
  } else if ((f & VF_CONNECT) && !(f & VF_PROTOCOL)) {
    check_connect(v);
  } else {
    check_request(v); /* extended CONNECT included */
  }
  return v->verdict;
}

bool validate_content_length(const validate_state *v, uint64_t *out) {
  if (v->verdict != VALIDATE_OK || !(v->flags & VF_CONTENT_LENGTH)) {
    return false;
  }
  *out = v->content_length;
  return true;
}
