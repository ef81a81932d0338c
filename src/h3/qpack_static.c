/* The QPACK static table (RFC 9204 Appendix A) and the encoder's lookup in
 * it. The lookup runs for every field of every response, so it avoids a
 * scan of all 99 entries: names are bucketed by length (at most six names
 * share a length), and each name lists the entries that carry it. */
#include "h3/qpack_internal.h"

#include <string.h>

#define S(name, value)                                                         \
  { name, value, sizeof name - 1, sizeof value - 1 }

const qpack_static_entry qpack_static_table[QPACK_STATIC_COUNT] = {
    S(":authority", ""),
    S(":path", "/"),
    S("age", "0"),
    S("content-disposition", ""),
    S("content-length", "0"),
    S("cookie", ""),
    S("date", ""),
    S("etag", ""),
    S("if-modified-since", ""),
    S("if-none-match", ""),
    S("last-modified", ""),
    S("link", ""),
    S("location", ""),
    S("referer", ""),
    S("set-cookie", ""),
    S(":method", "CONNECT"),
    S(":method", "DELETE"),
    S(":method", "GET"),
    S(":method", "HEAD"),
    S(":method", "OPTIONS"),
    S(":method", "POST"),
    S(":method", "PUT"),
    S(":scheme", "http"),
    S(":scheme", "https"),
    S(":status", "103"),
    S(":status", "200"),
    S(":status", "304"),
    S(":status", "404"),
    S(":status", "503"),
    S("accept", "*/*"),
    S("accept", "application/dns-message"),
    S("accept-encoding", "gzip, deflate, br"),
    S("accept-ranges", "bytes"),
    S("access-control-allow-headers", "cache-control"),
    S("access-control-allow-headers", "content-type"),
    S("access-control-allow-origin", "*"),
    S("cache-control", "max-age=0"),
    S("cache-control", "max-age=2592000"),
    S("cache-control", "max-age=604800"),
    S("cache-control", "no-cache"),
    S("cache-control", "no-store"),
    S("cache-control", "public, max-age=31536000"),
    S("content-encoding", "br"),
    S("content-encoding", "gzip"),
    S("content-type", "application/dns-message"),
    S("content-type", "application/javascript"),
    S("content-type", "application/json"),
    S("content-type", "application/x-www-form-urlencoded"),
    S("content-type", "image/gif"),
    S("content-type", "image/jpeg"),
    S("content-type", "image/png"),
    S("content-type", "text/css"),
    S("content-type", "text/html; charset=utf-8"),
    S("content-type", "text/plain"),
    S("content-type", "text/plain;charset=utf-8"),
    S("range", "bytes=0-"),
    S("strict-transport-security", "max-age=31536000"),
    S("strict-transport-security", "max-age=31536000; includesubdomains"),
    S("strict-transport-security",
      "max-age=31536000; includesubdomains; preload"),
    S("vary", "accept-encoding"),
    S("vary", "origin"),
    S("x-content-type-options", "nosniff"),
    S("x-xss-protection", "1; mode=block"),
    S(":status", "100"),
    S(":status", "204"),
    S(":status", "206"),
    S(":status", "302"),
    S(":status", "400"),
    S(":status", "403"),
    S(":status", "421"),
    S(":status", "425"),
    S(":status", "500"),
    S("accept-language", ""),
    S("access-control-allow-credentials", "FALSE"),
    S("access-control-allow-credentials", "TRUE"),
    S("access-control-allow-headers", "*"),
    S("access-control-allow-methods", "get"),
    S("access-control-allow-methods", "get, post, options"),
    S("access-control-allow-methods", "options"),
    S("access-control-expose-headers", "content-length"),
    S("access-control-request-headers", "content-type"),
    S("access-control-request-method", "get"),
    S("access-control-request-method", "post"),
    S("alt-svc", "clear"),
    S("authorization", ""),
    S("content-security-policy",
      "script-src 'none'; object-src 'none'; base-uri 'none'"),
    S("early-data", "1"),
    S("expect-ct", ""),
    S("forwarded", ""),
    S("if-range", ""),
    S("origin", ""),
    S("purpose", "prefetch"),
    S("server", ""),
    S("timing-allow-origin", "*"),
    S("upgrade-insecure-requests", "1"),
    S("user-agent", ""),
    S("x-forwarded-for", ""),
    S("x-frame-options", "deny"),
    S("x-frame-options", "sameorigin"),
};

/* One distinct name: its lowest index (used for name references) and the
 * indices of all entries with that name, most used first. */
typedef struct static_name {
  const char *name;
  uint8_t len;
  uint8_t name_index;
  uint8_t nvalues;
  uint8_t first_value; /* offset into static_values */
} static_name;

static const static_name static_names[] = {
    {"age", 3, 2, 1, 0},
    {"date", 4, 6, 1, 1},
    {"etag", 4, 7, 1, 2},
    {"link", 4, 11, 1, 3},
    {"vary", 4, 59, 2, 4},
    {":path", 5, 1, 1, 6},
    {"range", 5, 55, 1, 7},
    {"accept", 6, 29, 2, 8},
    {"cookie", 6, 5, 1, 10},
    {"origin", 6, 90, 1, 11},
    {"server", 6, 92, 1, 12},
    {":method", 7, 15, 7, 13},
    {":scheme", 7, 22, 2, 20},
    {":status", 7, 24, 14, 22},
    {"alt-svc", 7, 83, 1, 36},
    {"purpose", 7, 91, 1, 37},
    {"referer", 7, 13, 1, 38},
    {"if-range", 8, 89, 1, 39},
    {"location", 8, 12, 1, 40},
    {"expect-ct", 9, 87, 1, 41},
    {"forwarded", 9, 88, 1, 42},
    {":authority", 10, 0, 1, 43},
    {"early-data", 10, 86, 1, 44},
    {"set-cookie", 10, 14, 1, 45},
    {"user-agent", 10, 95, 1, 46},
    {"content-type", 12, 44, 11, 47},
    {"accept-ranges", 13, 32, 1, 58},
    {"authorization", 13, 84, 1, 59},
    {"cache-control", 13, 36, 6, 60},
    {"if-none-match", 13, 9, 1, 66},
    {"last-modified", 13, 10, 1, 67},
    {"content-length", 14, 4, 1, 68},
    {"accept-encoding", 15, 31, 1, 69},
    {"accept-language", 15, 72, 1, 70},
    {"x-forwarded-for", 15, 96, 1, 71},
    {"x-frame-options", 15, 97, 2, 72},
    {"content-encoding", 16, 42, 2, 74},
    {"x-xss-protection", 16, 62, 1, 76},
    {"if-modified-since", 17, 8, 1, 77},
    {"content-disposition", 19, 3, 1, 78},
    {"timing-allow-origin", 19, 93, 1, 79},
    {"x-content-type-options", 22, 61, 1, 80},
    {"content-security-policy", 23, 85, 1, 81},
    {"strict-transport-security", 25, 56, 3, 82},
    {"upgrade-insecure-requests", 25, 94, 1, 85},
    {"access-control-allow-origin", 27, 35, 1, 86},
    {"access-control-allow-headers", 28, 33, 3, 87},
    {"access-control-allow-methods", 28, 76, 3, 90},
    {"access-control-expose-headers", 29, 79, 1, 93},
    {"access-control-request-method", 29, 81, 2, 94},
    {"access-control-request-headers", 30, 80, 1, 96},
    {"access-control-allow-credentials", 32, 73, 2, 97},
};

static const uint8_t static_values[QPACK_STATIC_COUNT] = {
    2,  6,  7,  11, 59, 60, 1,  55, 29, 30, 5,  90, 92, 15, 16, 17, 18,
    19, 20, 21, 22, 23, 25, 27, 26, 64, 65, 66, 67, 68, 71, 28, 63, 24,
    69, 70, 83, 91, 13, 89, 12, 87, 88, 0,  86, 14, 95, 44, 45, 46, 47,
    48, 49, 50, 51, 52, 53, 54, 32, 84, 36, 37, 38, 39, 40, 41, 9,  10,
    4,  31, 72, 96, 97, 98, 42, 43, 62, 8,  3,  93, 61, 85, 56, 57, 58,
    94, 35, 33, 34, 75, 76, 77, 78, 79, 81, 82, 80, 73, 74,
};

/* static_names[by_len[n] .. by_len[n + 1]) are the names of length n. */
#define STATIC_MAX_NAME 32
static const uint8_t by_len[STATIC_MAX_NAME + 2] = {
    0,  0,  0,  0,  1,  5,  7,  11, 17, 19, 21, 25, 25, 26, 31, 32, 36,
    38, 39, 39, 41, 41, 41, 42, 43, 43, 45, 45, 46, 48, 50, 51, 51, 52,
};

static const static_name *find_name(const uint8_t *name, size_t nlen) {
  if (nlen == 0 || nlen > STATIC_MAX_NAME)
    return NULL;
  for (unsigned i = by_len[nlen]; i < by_len[nlen + 1]; i++) {
    const static_name *n = &static_names[i];
    /* The first byte differs between most names of one length. */
    if ((uint8_t)n->name[0] == name[0] && memcmp(n->name, name, nlen) == 0)
      return n;
  }
  return NULL;
}

int qpack_static_find(const uint8_t *name, size_t nlen, const uint8_t *value,
                      size_t vlen, int *name_index) {
  const static_name *n = find_name(name, nlen);
  if (!n) {
    *name_index = -1;
    return -1;
  }
  *name_index = n->name_index;
  for (unsigned i = 0; i < n->nvalues; i++) {
    unsigned idx = static_values[n->first_value + i];
    const qpack_static_entry *e = &qpack_static_table[idx];
    if (e->vlen == vlen && memcmp(e->value, value, vlen) == 0)
      return (int)idx;
  }
  return -1;
}

int qpack_static_status_index(unsigned status) {
  switch (status) {
  case 103:
    return 24;
  case 200:
    return 25;
  case 304:
    return 26;
  case 404:
    return 27;
  case 503:
    return 28;
  case 100:
    return 63;
  case 204:
    return 64;
  case 206:
    return 65;
  case 302:
    return 66;
  case 400:
    return 67;
  case 403:
    return 68;
  case 421:
    return 69;
  case 425:
    return 70;
  case 500:
    return 71;
  default:
    return -1;
  }
}
