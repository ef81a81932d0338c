/* Unit tests for RFC 9114 request validation and header limits: a valid
 * request of each shape, one failing request per rule (checked by verdict
 * and by reason, so a request refused for the wrong rule fails), and each
 * limit at its boundary. */
#include "check.h"
#include "http/validate.h"

#include <string.h>

typedef struct field {
  const char *name, *value;
  size_t nlen, vlen;
} field;

/* String literals only: sizeof keeps embedded NULs. */
#define F(n, v)                                                                \
  { (n), (v), sizeof(n) - 1, sizeof(v) - 1 }

#define GET_PSEUDO                                                             \
  F(":method", "GET"), F(":scheme", "https"), F(":authority", "example.com"),  \
      F(":path", "/")

/* The spec's defaults (issue 3, "Limits"). */
static const validate_limits defaults = {100, 256, 8192, 16384, 2048, false};
static const validate_limits with_ext = {100, 256, 8192, 16384, 2048, true};

static validate_state run(const validate_limits *l, bool trailers,
                          const field *f, size_t n) {
  validate_state v;
  validate_init(&v, l, trailers);
  for (size_t i = 0; i < n; i++) {
    validate_field(&v, (const uint8_t *)f[i].name, f[i].nlen,
                   (const uint8_t *)f[i].value, f[i].vlen);
  }
  validate_finish(&v);
  return v;
}

#define NFIELDS(a) (sizeof(a) / sizeof((a)[0]))

/* Runs the fields and checks verdict, status and reason (NULL: none). */
#define EXPECT(lim, tr, verd, st, why, ...)                                    \
  do {                                                                         \
    const field fs_[] = {__VA_ARGS__};                                         \
    validate_state v_ = run((lim), (tr), fs_, NFIELDS(fs_));                   \
    CHECK(v_.verdict == (verd));                                               \
    CHECK(v_.status == (st));                                                  \
    if ((why) != NULL) {                                                       \
      CHECK_STR(v_.reason, (why));                                             \
    } else {                                                                   \
      CHECK(v_.reason == NULL);                                                \
    }                                                                          \
  } while (0)

#define OK_REQ(...) EXPECT(&defaults, false, VALIDATE_OK, 0, NULL, __VA_ARGS__)
#define BAD_REQ(why, ...)                                                      \
  EXPECT(&defaults, false, VALIDATE_MALFORMED, 0, why, __VA_ARGS__)

static void test_valid_requests(void) {
  uint64_t cl = 99;
  OK_REQ(GET_PSEUDO, F("user-agent", "t/1"), F("accept", "*/*"));
  const field get[] = {GET_PSEUDO};
  validate_state v = run(&defaults, false, get, NFIELDS(get));
  CHECK(!validate_content_length(&v, &cl));

  const field post[] = {F(":method", "POST"), F(":scheme", "https"),
                        F(":authority", "example.com"), F(":path", "/up?x=1"),
                        F("content-length", "42")};
  v = run(&defaults, false, post, NFIELDS(post));
  CHECK(v.verdict == VALIDATE_OK);
  CHECK(validate_content_length(&v, &cl) && cl == 42);

  OK_REQ(F(":method", "OPTIONS"), F(":scheme", "https"),
         F(":authority", "example.com"), F(":path", "*"));
  /* Pseudo-headers in any order; :authority optional with host. */
  OK_REQ(F(":path", "/a"), F(":scheme", "http"), F(":method", "GET"),
         F("host", "example.com:8443"));
  OK_REQ(GET_PSEUDO, F("host", "EXAMPLE.com")); /* hosts ignore case */
  OK_REQ(GET_PSEUDO, F("te", "trailers"));
  OK_REQ(GET_PSEUDO, F("te", "Trailers"));
  OK_REQ(GET_PSEUDO, F("x-empty", ""), F("x-inner", "a b\tc"),
         F("x-utf8", "caf\xc3\xa9"), F("x-ctl", "a\x01z"));
  /* A scheme without a mandatory authority needs none. */
  OK_REQ(F(":method", "GET"), F(":scheme", "urn"), F(":path", "/x"));
  OK_REQ(F(":method", "PROPFIND"), F(":scheme", "HTTPS"),
         F(":authority", "example.com"), F(":path", "/"));
}

static void test_connect(void) {
  OK_REQ(F(":method", "CONNECT"), F(":authority", "example.com:443"));
  EXPECT(&with_ext, false, VALIDATE_OK, 0, NULL, F(":method", "CONNECT"),
         F(":authority", "example.com:443"));
  BAD_REQ("CONNECT with :scheme or :path", F(":method", "CONNECT"),
          F(":scheme", "https"), F(":authority", "example.com:443"));
  BAD_REQ("CONNECT with :scheme or :path", F(":method", "CONNECT"),
          F(":authority", "example.com:443"), F(":path", "/"));
  BAD_REQ("CONNECT without :authority", F(":method", "CONNECT"));
  BAD_REQ("CONNECT without :authority", F(":method", "CONNECT"),
          F("host", "example.com:443"));
  BAD_REQ("empty :authority", F(":method", "CONNECT"), F(":authority", ""));
  /* "connect" is another method (methods are case-sensitive). */
  BAD_REQ("missing :scheme", F(":method", "connect"),
          F(":authority", "example.com:443"));
}

#define WS_CONNECT                                                             \
  F(":method", "CONNECT"), F(":protocol", "websocket"), F(":scheme", "https"), \
      F(":authority", "example.com"), F(":path", "/chat")

static void test_extended_connect(void) {
  EXPECT(&with_ext, false, VALIDATE_OK, 0, NULL, WS_CONNECT);
  BAD_REQ(":protocol without extended CONNECT", WS_CONNECT);
  EXPECT(&with_ext, false, VALIDATE_MALFORMED, 0, "missing :path",
         F(":method", "CONNECT"), F(":protocol", "websocket"),
         F(":scheme", "https"), F(":authority", "example.com"));
  EXPECT(&with_ext, false, VALIDATE_MALFORMED, 0, "missing :scheme",
         F(":method", "CONNECT"), F(":protocol", "websocket"),
         F(":authority", "example.com"), F(":path", "/chat"));
  EXPECT(&with_ext, false, VALIDATE_MALFORMED, 0,
         "extended CONNECT without :authority", F(":method", "CONNECT"),
         F(":protocol", "websocket"), F(":scheme", "https"),
         F(":path", "/chat"), F("host", "example.com"));
  EXPECT(&with_ext, false, VALIDATE_MALFORMED, 0,
         ":protocol with a method other than CONNECT", GET_PSEUDO,
         F(":protocol", "websocket"));
  BAD_REQ(":protocol without extended CONNECT", GET_PSEUDO,
          F(":protocol", "websocket"));
  EXPECT(&with_ext, false, VALIDATE_MALFORMED, 0, ":protocol is not a token",
         F(":method", "CONNECT"), F(":protocol", "web socket"),
         F(":scheme", "https"), F(":authority", "example.com"),
         F(":path", "/chat"));
  EXPECT(&with_ext, false, VALIDATE_MALFORMED, 0,
         ":path \"*\" with a method other than OPTIONS",
         F(":method", "CONNECT"), F(":protocol", "websocket"),
         F(":scheme", "https"), F(":authority", "example.com"),
         F(":path", "*"));
  /* No limits at all: extended CONNECT is off. */
  EXPECT(NULL, false, VALIDATE_MALFORMED, 0,
         ":protocol without extended CONNECT", WS_CONNECT);
}

static void test_names(void) {
  BAD_REQ("empty field name", GET_PSEUDO, F("", "x"));
  BAD_REQ("uppercase field name", GET_PSEUDO, F("User-Agent", "t"));
  BAD_REQ("uppercase field name", F(":Method", "GET"), F(":scheme", "https"),
          F(":authority", "example.com"), F(":path", "/"));
  BAD_REQ("field name is not a token", GET_PSEUDO, F("x y", "1"));
  BAD_REQ("field name is not a token", GET_PSEUDO, F("x:y", "1"));
  BAD_REQ("field name is not a token", GET_PSEUDO, F("caf\xc3\xa9", "1"));
  BAD_REQ("field name is not a token", GET_PSEUDO, F("a\0b", "1"));
}

static void test_values(void) {
  BAD_REQ("CR, LF or NUL in field value", GET_PSEUDO, F("x", "a\rb"));
  BAD_REQ("CR, LF or NUL in field value", GET_PSEUDO, F("x", "a\nb"));
  BAD_REQ("CR, LF or NUL in field value", GET_PSEUDO, F("x", "a\0b"));
  BAD_REQ("CR, LF or NUL in field value", F(":method", "GET"),
          F(":scheme", "https"), F(":authority", "example.com"),
          F(":path", "/a\r\nx: y"));
  /* Whitespace policy: leading or trailing SP/HTAB is malformed. */
  BAD_REQ("leading or trailing whitespace in field value", GET_PSEUDO,
          F("x", " a"));
  BAD_REQ("leading or trailing whitespace in field value", GET_PSEUDO,
          F("x", "a\t"));
  BAD_REQ("leading or trailing whitespace in field value", GET_PSEUDO,
          F("x", " "));
}

static void test_pseudo_headers(void) {
  BAD_REQ("unknown or response pseudo-header", GET_PSEUDO, F(":status", "200"));
  BAD_REQ("unknown or response pseudo-header", F(":foo", "x"), GET_PSEUDO);
  BAD_REQ("unknown or response pseudo-header", F(":", "x"), GET_PSEUDO);
  BAD_REQ("pseudo-header after a regular field", F(":method", "GET"),
          F(":scheme", "https"), F(":authority", "example.com"),
          F("accept", "*/*"), F(":path", "/"));
  BAD_REQ("duplicate pseudo-header", GET_PSEUDO, F(":path", "/"));
  BAD_REQ("duplicate pseudo-header", F(":method", "GET"), GET_PSEUDO);
  BAD_REQ("duplicate pseudo-header", GET_PSEUDO, F(":authority", "a.com"));
  BAD_REQ("missing :method", F(":scheme", "https"),
          F(":authority", "example.com"), F(":path", "/"));
  BAD_REQ("missing :scheme", F(":method", "GET"),
          F(":authority", "example.com"), F(":path", "/"));
  BAD_REQ("missing :path", F(":method", "GET"), F(":scheme", "https"),
          F(":authority", "example.com"));
  BAD_REQ(":method is not a token", F(":method", "GE(T"), F(":scheme", "https"),
          F(":authority", "example.com"), F(":path", "/"));
  BAD_REQ(":method is not a token", F(":method", ""), F(":scheme", "https"),
          F(":authority", "example.com"), F(":path", "/"));
  BAD_REQ(":scheme is not a URI scheme", F(":method", "GET"),
          F(":scheme", "1http"), F(":authority", "example.com"),
          F(":path", "/"));
  BAD_REQ(":scheme is not a URI scheme", F(":method", "GET"), F(":scheme", ""),
          F(":authority", "example.com"), F(":path", "/"));
}

static void test_path(void) {
  BAD_REQ(":path empty or not starting with '/'", F(":method", "GET"),
          F(":scheme", "https"), F(":authority", "example.com"),
          F(":path", ""));
  BAD_REQ(":path empty or not starting with '/'", F(":method", "GET"),
          F(":scheme", "https"), F(":authority", "example.com"),
          F(":path", "index.html"));
  BAD_REQ(":path empty or not starting with '/'", F(":method", "GET"),
          F(":scheme", "https"), F(":authority", "example.com"),
          F(":path", "https://example.com/"));
  BAD_REQ(":path empty or not starting with '/'", F(":method", "OPTIONS"),
          F(":scheme", "https"), F(":authority", "example.com"),
          F(":path", "*?x"));
  BAD_REQ(":path \"*\" with a method other than OPTIONS", F(":method", "GET"),
          F(":scheme", "https"), F(":authority", "example.com"),
          F(":path", "*"));
}

static void test_authority(void) {
  BAD_REQ("http(s) request without :authority or host", F(":method", "GET"),
          F(":scheme", "https"), F(":path", "/"));
  BAD_REQ("http(s) request without :authority or host", F(":method", "GET"),
          F(":scheme", "HTTP"), F(":path", "/"));
  BAD_REQ(":authority and host differ", GET_PSEUDO, F("host", "other.com"));
  BAD_REQ(":authority and host differ", GET_PSEUDO,
          F("host", "example.com:443"));
  BAD_REQ("empty :authority", F(":method", "GET"), F(":scheme", "https"),
          F(":authority", ""), F(":path", "/"));
  BAD_REQ("empty host", F(":method", "GET"), F(":scheme", "https"),
          F(":path", "/"), F("host", ""));
  BAD_REQ("userinfo in :authority or host", F(":method", "GET"),
          F(":scheme", "https"), F(":authority", "u:p@example.com"),
          F(":path", "/"));
  BAD_REQ("userinfo in :authority or host", F(":method", "GET"),
          F(":scheme", "https"), F(":path", "/"), F("host", "u@example.com"));
  /* Two host fields are answered with 400, even when equal. */
  EXPECT(&defaults, false, VALIDATE_STATUS, 400, "more than one host field",
         F(":method", "GET"), F(":scheme", "https"), F(":path", "/"),
         F("host", "a.com"), F("host", "b.com"));
  EXPECT(&defaults, false, VALIDATE_STATUS, 400, "more than one host field",
         GET_PSEUDO, F("host", "example.com"), F("host", "example.com"));
}

static void test_connection_specific(void) {
  BAD_REQ("connection-specific field", GET_PSEUDO, F("connection", "close"));
  BAD_REQ("connection-specific field", GET_PSEUDO,
          F("keep-alive", "timeout=5"));
  BAD_REQ("connection-specific field", GET_PSEUDO,
          F("proxy-connection", "keep-alive"));
  BAD_REQ("connection-specific field", GET_PSEUDO,
          F("transfer-encoding", "chunked"));
  BAD_REQ("connection-specific field", GET_PSEUDO, F("upgrade", "h2c"));
  BAD_REQ("te other than trailers", GET_PSEUDO, F("te", "gzip"));
  BAD_REQ("te other than trailers", GET_PSEUDO, F("te", "trailers, deflate"));
  BAD_REQ("te other than trailers", GET_PSEUDO, F("te", ""));
}

#define CL_BAD(why, value) BAD_REQ(why, GET_PSEUDO, F("content-length", value))

static uint64_t cl_of(const field *f, size_t n) {
  uint64_t cl = 1234;
  validate_state v = run(&defaults, false, f, n);
  CHECK(v.verdict == VALIDATE_OK);
  CHECK(validate_content_length(&v, &cl));
  return cl;
}

static void test_content_length(void) {
  const field zero[] = {GET_PSEUDO, F("content-length", "0")};
  CHECK(cl_of(zero, NFIELDS(zero)) == 0);
  const field max[] = {GET_PSEUDO, F("content-length", "18446744073709551615")};
  CHECK(cl_of(max, NFIELDS(max)) == UINT64_MAX);
  const field list[] = {GET_PSEUDO, F("content-length", "42, 42,42 \t,42")};
  CHECK(cl_of(list, NFIELDS(list)) == 42);
  const field two[] = {GET_PSEUDO, F("content-length", "42"),
                       F("content-length", "042")};
  CHECK(cl_of(two, NFIELDS(two)) == 42);

  CL_BAD("invalid content-length", "");
  CL_BAD("invalid content-length", "-1");
  CL_BAD("invalid content-length", "+1");
  CL_BAD("invalid content-length", "1a");
  CL_BAD("invalid content-length", "0x10");
  CL_BAD("invalid content-length", "1 2");
  CL_BAD("invalid content-length", "1.0");
  CL_BAD("invalid content-length", "18446744073709551616");
  CL_BAD("invalid content-length", "99999999999999999999");
  CL_BAD("invalid content-length", "42,");
  CL_BAD("invalid content-length", ",42");
  CL_BAD("invalid content-length", "42,,42");
  CL_BAD("invalid content-length", "42, ,42");
  CL_BAD("conflicting content-length values", "42, 43");
  BAD_REQ("conflicting content-length values", GET_PSEUDO,
          F("content-length", "42"), F("content-length", "43"));
  BAD_REQ("leading or trailing whitespace in field value", GET_PSEUDO,
          F("content-length", " 42"));

  /* A refused request exposes no content-length. */
  const field bad[] = {GET_PSEUDO, F("content-length", "5"),
                       F("connection", "x")};
  uint64_t cl = 7;
  validate_state v = run(&defaults, false, bad, NFIELDS(bad));
  CHECK(!validate_content_length(&v, &cl) && cl == 7);
}

#define OK_TRAILERS(...)                                                       \
  EXPECT(&defaults, true, VALIDATE_OK, 0, NULL, __VA_ARGS__)
#define BAD_TRAILERS(why, ...)                                                 \
  EXPECT(&defaults, true, VALIDATE_MALFORMED, 0, why, __VA_ARGS__)

static void test_trailers(void) {
  OK_TRAILERS(F("x-checksum", "abc"), F("server-timing", "db;dur=53"));
  OK_TRAILERS(F("x", "1")); /* nothing required in a trailer section */
  /* Framing and target fields are ignored there, not parsed. */
  const field cl[] = {F("content-length", "x"), F("host", "a"), F("host", "b")};
  uint64_t n = 5;
  validate_state v = run(&defaults, true, cl, NFIELDS(cl));
  CHECK(v.verdict == VALIDATE_OK);
  CHECK(!validate_content_length(&v, &n) && n == 5);

  BAD_TRAILERS("pseudo-header in trailer section", F(":path", "/"));
  BAD_TRAILERS("pseudo-header in trailer section", F("x", "1"),
               F(":status", "200"));
  BAD_TRAILERS("uppercase field name", F("X-Sum", "1"));
  BAD_TRAILERS("field name is not a token", F("x y", "1"));
  BAD_TRAILERS("CR, LF or NUL in field value", F("x", "a\nb"));
  BAD_TRAILERS("leading or trailing whitespace in field value", F("x", "a "));
  BAD_TRAILERS("connection-specific field", F("transfer-encoding", "chunked"));
  BAD_TRAILERS("te other than trailers", F("te", "gzip"));
}

/* A name or value of exactly len bytes of 'a'. */
static char long_buf[2][64];

static field sized(const char *name, size_t nlen, size_t vlen) {
  memset(long_buf[0], 'a', sizeof long_buf[0]);
  memset(long_buf[1], 'b', sizeof long_buf[1]);
  field f = {name ? name : long_buf[0], long_buf[1], nlen, vlen};
  return f;
}

static validate_verdict run_limited(const validate_limits *l, bool trailers,
                                    field extra, int *status) {
  const field base[] = {GET_PSEUDO};
  validate_state v;
  validate_init(&v, l, trailers);
  for (size_t i = 0; !trailers && i < NFIELDS(base); i++) {
    validate_field(&v, (const uint8_t *)base[i].name, base[i].nlen,
                   (const uint8_t *)base[i].value, base[i].vlen);
  }
  validate_field(&v, (const uint8_t *)extra.name, extra.nlen,
                 (const uint8_t *)extra.value, extra.vlen);
  *status = v.status;
  return validate_finish(&v);
}

static void test_name_value_limits(void) {
  validate_limits l = defaults;
  int st = 0;
  l.max_header_name_length = 16;
  l.max_header_value_length = 32;
  CHECK(run_limited(&l, false, sized(NULL, 16, 32), &st) == VALIDATE_OK);
  CHECK(run_limited(&l, false, sized(NULL, 17, 1), &st) == VALIDATE_STATUS);
  CHECK(st == 431);
  CHECK(run_limited(&l, false, sized(NULL, 1, 33), &st) == VALIDATE_STATUS);
  CHECK(st == 431);
  /* The same limits hold in a trailer section. */
  CHECK(run_limited(&l, true, sized(NULL, 16, 32), &st) == VALIDATE_OK);
  CHECK(run_limited(&l, true, sized(NULL, 1, 33), &st) == VALIDATE_STATUS);
  CHECK(st == 431);
  /* A pseudo-header name counts as well (":authority" is 10 bytes). */
  l.max_header_name_length = 9;
  CHECK(run_limited(&l, true, sized("x", 1, 1), &st) == VALIDATE_OK);
  CHECK(run_limited(&l, false, sized("x", 1, 1), &st) == VALIDATE_STATUS);
  CHECK(st == 431);
}

/* GET_PSEUDO plus one "x: 1" is 5 fields and 49 + 2 = 51 bytes. */
static void test_count_and_size_limits(void) {
  validate_limits l = defaults;
  int st = 0;
  l.max_header_count = 5;
  CHECK(run_limited(&l, false, sized("x", 1, 1), &st) == VALIDATE_OK);
  l.max_header_count = 4;
  CHECK(run_limited(&l, false, sized("x", 1, 1), &st) == VALIDATE_STATUS);
  CHECK(st == 431);
  l = defaults;
  l.max_request_headers_size = 51;
  CHECK(run_limited(&l, false, sized("x", 1, 1), &st) == VALIDATE_OK);
  l.max_request_headers_size = 50;
  CHECK(run_limited(&l, false, sized("x", 1, 1), &st) == VALIDATE_STATUS);
  CHECK(st == 431);
}

static void test_path_limit(void) {
  validate_limits l = defaults;
  l.max_path_length = 10;
  EXPECT(&l, false, VALIDATE_OK, 0, NULL, F(":method", "GET"),
         F(":scheme", "https"), F(":authority", "example.com"),
         F(":path", "/123456789"));
  EXPECT(&l, false, VALIDATE_STATUS, 414, ":path too long", F(":method", "GET"),
         F(":scheme", "https"), F(":authority", "example.com"),
         F(":path", "/1234567890"));
  /* The query does not count. */
  EXPECT(&l, false, VALIDATE_OK, 0, NULL, F(":method", "GET"),
         F(":scheme", "https"), F(":authority", "example.com"),
         F(":path", "/123456789?a=much-longer-than-ten"));
  EXPECT(&l, false, VALIDATE_STATUS, 414, ":path too long", F(":method", "GET"),
         F(":scheme", "https"), F(":authority", "example.com"),
         F(":path", "/1234567890?a"));
}

/* Verdicts are reached as fields arrive, and the first one stays. */
static void test_first_problem_wins(void) {
  validate_limits l = defaults;
  l.max_header_value_length = 5; /* "https" fits */
  EXPECT(&l, false, VALIDATE_STATUS, 431, "header field value too long",
         F(":method", "GET"), F(":scheme", "https"), F(":authority", "a.b"),
         F(":path", "/"), F("x", "123456"), F("connection", "close"));
  EXPECT(&l, false, VALIDATE_MALFORMED, 0, "connection-specific field",
         F(":method", "GET"), F(":scheme", "https"), F(":authority", "a.b"),
         F(":path", "/"), F("connection", "x"), F("x", "123456"));
  /* An oversized field is refused before its content is looked at. */
  EXPECT(&l, false, VALIDATE_STATUS, 431, "header field value too long",
         F(":method", "GET"), F(":scheme", "https"), F(":authority", "a.b"),
         F(":path", "/"), F("x", "1\r\n456"));

  validate_state v;
  validate_init(&v, &l, false);
  validate_field(&v, (const uint8_t *)"X", 1, (const uint8_t *)"1", 1);
  CHECK(v.verdict == VALIDATE_MALFORMED); /* before validate_finish */
  validate_field(&v, (const uint8_t *)"x", 1, (const uint8_t *)"123456", 6);
  CHECK(v.verdict == VALIDATE_MALFORMED);
  CHECK_STR(v.reason, "uppercase field name");
  CHECK(validate_finish(&v) == VALIDATE_MALFORMED);
  CHECK(validate_finish(&v) == VALIDATE_MALFORMED);
}

/* Decoders reuse one buffer for every decoded value: the host check must
 * not read :authority from it after it changed. */
static void test_authority_copied(void) {
  validate_limits lim = {100, 256, 8192, 16384, 2048, false};
  validate_state v;
  validate_init(&v, &lim, false);
  char scratch[32];
  strcpy(scratch, "GET");
  validate_field(&v, (const uint8_t *)":method", 7, (uint8_t *)scratch, 3);
  strcpy(scratch, "https");
  validate_field(&v, (const uint8_t *)":scheme", 7, (uint8_t *)scratch, 5);
  strcpy(scratch, "example.com");
  validate_field(&v, (const uint8_t *)":authority", 10, (uint8_t *)scratch, 11);
  strcpy(scratch, "/");
  validate_field(&v, (const uint8_t *)":path", 5, (uint8_t *)scratch, 1);
  strcpy(scratch, "EXAMPLE.com");
  validate_field(&v, (const uint8_t *)"host", 4, (uint8_t *)scratch, 11);
  CHECK(validate_finish(&v) == VALIDATE_OK);
  char big[VALIDATE_AUTHORITY_MAX + 2];
  memset(big, 'a', sizeof big);
  validate_init(&v, &lim, false);
  validate_field(&v, (const uint8_t *)":authority", 10, (uint8_t *)big,
                 sizeof big);
  CHECK(v.verdict == VALIDATE_STATUS && v.status == 431);
}

int main(void) {
  /* It lives on the stack while a section decodes: small besides the
   * :authority copy. */
  CHECK(sizeof(validate_state) <= 96 + VALIDATE_AUTHORITY_MAX);
  test_authority_copied();
  test_valid_requests();
  test_connect();
  test_extended_connect();
  test_names();
  test_values();
  test_pseudo_headers();
  test_path();
  test_authority();
  test_connection_specific();
  test_content_length();
  test_trailers();
  test_name_value_limits();
  test_count_and_size_limits();
  test_path_limit();
  test_first_problem_wins();
  return check_report("test_validate");
}
