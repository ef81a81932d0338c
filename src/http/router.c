/* Request router. Patterns are split into segments once, at router_add, so
 * that matching only walks the path bytes and never allocates. Routes live
 * in one array in registration order; a match scans it (the route count of
 * an embedded server is small, and the scan keeps precedence rules simple).
 */
#include "http/router.h"

#include "http/headers.h"

#include <stdlib.h>
#include <string.h>

/* Lower values are more specific: precedence compares kinds segment by
 * segment, leftmost first. */
typedef enum seg_kind {
  SEG_LITERAL = 0,
  SEG_PARAM = 1,
  SEG_WILDCARD = 2,
} seg_kind;

typedef struct segment {
  seg_kind kind;
  const char *text; /* literal bytes, parameter name, or "*" (in pattern) */
  size_t len;
} segment;

typedef struct route {
  char *method;  /* NUL-terminated copy; "*" matches any method */
  char *pattern; /* NUL-terminated copy; segments point into it */
  segment *segs;
  size_t seg_count;
  h3q_handler handler;
  void *user;
} route;

struct router {
  route *routes; /* registration order */
  size_t count;
  size_t cap;
};

router *router_new(void) {
  return calloc(1, sizeof(router));
}

static void route_clear(route *rt) {
  free(rt->method); /* one block holds method and pattern */
  free(rt->segs);
}

void router_free(router *r) {
  if (r == NULL) {
    return;
  }
  for (size_t i = 0; i < r->count; i++) {
    route_clear(&r->routes[i]);
  }
  free(r->routes);
  free(r);
}

/* ------------------------------------------------------------ validation */

/* "*" or an RFC 9110 token without lower-case letters: methods are
 * case-sensitive, and registered methods are upper case by convention. */
static bool method_is_valid(const char *m) {
  size_t len = strlen(m);
  if (len == 1 && m[0] == '*') {
    return true;
  }
  if (!header_name_is_token(m, len)) {
    return false;
  }
  for (size_t i = 0; i < len; i++) {
    if (m[i] >= 'a' && m[i] <= 'z') {
      return false;
    }
  }
  return true;
}

static bool is_param_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || c == '_' || c == '-';
}

/* Literal bytes that can never appear in a request path without a query,
 * or that would make a pattern ambiguous ('*' outside a final segment). */
static bool is_literal_char(char c) {
  unsigned char u = (unsigned char)c;
  return u > 0x20 && u != 0x7f && c != '?' && c != '#' && c != '*';
}

/* --------------------------------------------------------------- compile */

/* Classifies one pattern segment [s, s + len); last tells whether it is
 * the final one. Returns H3Q_EINVAL for a malformed segment. */
static int compile_segment(const char *s, size_t len, bool last, segment *out) {
  if (len == 1 && s[0] == '*') {
    *out = (segment){SEG_WILDCARD, s, 1};
    return last ? H3Q_OK : H3Q_EINVAL;
  }
  bool param = len > 0 && s[0] == ':';
  size_t start = param ? 1 : 0;
  if (param && len == 1) {
    return H3Q_EINVAL; /* empty parameter name */
  }
  for (size_t i = start; i < len; i++) {
    if (param ? !is_param_char(s[i]) : !is_literal_char(s[i])) {
      return H3Q_EINVAL;
    }
  }
  *out = (segment){param ? SEG_PARAM : SEG_LITERAL, s + start, len - start};
  return H3Q_OK;
}

/* Rejects more than ROUTER_MAX_PARAMS captures (the wildcard counts) and a
 * parameter name used twice, which h3q_request_param could not tell apart.
 */
static int check_params(const segment *segs, size_t n) {
  size_t captures = 0;
  for (size_t i = 0; i < n; i++) {
    if (segs[i].kind == SEG_LITERAL) {
      continue;
    }
    if (++captures > ROUTER_MAX_PARAMS) {
      return H3Q_EINVAL;
    }
    for (size_t j = 0; j < i; j++) {
      if (segs[j].kind == SEG_PARAM && segs[j].len == segs[i].len &&
          memcmp(segs[j].text, segs[i].text, segs[i].len) == 0) {
        return H3Q_EINVAL;
      }
    }
  }
  return H3Q_OK;
}

/* Splits rt->pattern (which starts with '/') into rt->segs. */
static int compile_pattern(route *rt) {
  const char *p = rt->pattern + 1;
  size_t n = 1;
  for (const char *c = p; *c != '\0'; c++) {
    n += *c == '/';
  }
  rt->segs = calloc(n, sizeof(segment));
  if (rt->segs == NULL) {
    return H3Q_ENOMEM;
  }
  rt->seg_count = n;
  for (size_t i = 0; i < n; i++) {
    size_t len = strcspn(p, "/");
    int rc = compile_segment(p, len, i + 1 == n, &rt->segs[i]);
    if (rc != H3Q_OK) {
      return rc;
    }
    p += len + 1; /* past the '/' (or the NUL after the last segment) */
  }
  return check_params(rt->segs, n);
}

/* Copies method and pattern into one block and compiles the pattern. On
 * failure rt holds nothing that route_clear cannot free. */
static int route_init(route *rt, const char *method, const char *pattern) {
  size_t mlen = strlen(method), plen = strlen(pattern);
  if (plen == 0 || pattern[0] != '/') {
    return H3Q_EINVAL;
  }
  rt->method = malloc(mlen + 1 + plen + 1);
  if (rt->method == NULL) {
    return H3Q_ENOMEM;
  }
  memcpy(rt->method, method, mlen + 1);
  rt->pattern = rt->method + mlen + 1;
  memcpy(rt->pattern, pattern, plen + 1);
  return compile_pattern(rt);
}

/* Same method and same shape (parameter names aside): the later route
 * could never be chosen, so registering it is an error. */
static bool route_same(const route *a, const route *b) {
  if (strcmp(a->method, b->method) != 0 || a->seg_count != b->seg_count) {
    return false;
  }
  for (size_t i = 0; i < a->seg_count; i++) {
    const segment *x = &a->segs[i], *y = &b->segs[i];
    if (x->kind != y->kind) {
      return false;
    }
    if (x->kind == SEG_LITERAL &&
        (x->len != y->len || memcmp(x->text, y->text, x->len) != 0)) {
      return false;
    }
  }
  return true;
}

static int router_push(router *r, const route *rt) {
  if (r->count == r->cap) {
    size_t cap = r->cap ? r->cap * 2 : 8;
    route *grown = realloc(r->routes, cap * sizeof(route));
    if (grown == NULL) {
      return H3Q_ENOMEM;
    }
    r->routes = grown;
    r->cap = cap;
  }
  r->routes[r->count++] = *rt;
  return H3Q_OK;
}

int router_add(router *r, const char *method, const char *pattern,
               h3q_handler handler, void *user) {
  if (r == NULL || method == NULL || pattern == NULL || handler == NULL ||
      !method_is_valid(method)) {
    return H3Q_EINVAL;
  }
  route rt = {.handler = handler, .user = user};
  int rc = route_init(&rt, method, pattern);
  for (size_t i = 0; rc == H3Q_OK && i < r->count; i++) {
    if (route_same(&r->routes[i], &rt)) {
      rc = H3Q_EEXIST;
    }
  }
  if (rc == H3Q_OK) {
    rc = router_push(r, &rt);
  }
  if (rc != H3Q_OK) {
    route_clear(&rt);
  }
  return rc;
}

/* ----------------------------------------------------------------- match */

/* Matches one path segment [path + pos, next '/' or end) against seg. */
static bool segment_matches(const segment *seg, const char *s, size_t len) {
  if (seg->kind == SEG_PARAM) {
    return len > 0; /* a parameter never captures an empty segment */
  }
  return len == seg->len && memcmp(s, seg->text, len) == 0;
}

static void add_param(router_param *params, size_t *n, const segment *seg,
                      const char *value, size_t len) {
  if (params != NULL) {
    params[*n] = (router_param){seg->text, seg->len, value, len};
  }
  (*n)++;
}

/* True if rt matches the path; when params is not NULL, also stores the
 * captures there and their count in *n. The path is split at every '/'
 * after the leading one, so "/" is one empty segment and "/a/" is "a"
 * followed by an empty segment. */
static bool route_matches(const route *rt, const char *path, size_t len,
                          router_param *params, size_t *n) {
  size_t pos = 1, captures = 0;
  bool more = true; /* the path has a segment starting at pos */
  for (size_t i = 0; i < rt->seg_count; i++) {
    const segment *seg = &rt->segs[i];
    if (!more) {
      return false;
    }
    if (seg->kind == SEG_WILDCARD) {
      add_param(params, &captures, seg, path + pos, len - pos);
      *n = captures;
      return true;
    }
    const char *slash = memchr(path + pos, '/', len - pos);
    size_t end = slash ? (size_t)(slash - path) : len;
    if (!segment_matches(seg, path + pos, end - pos)) {
      return false;
    }
    if (seg->kind == SEG_PARAM) {
      add_param(params, &captures, seg, path + pos, end - pos);
    }
    more = slash != NULL;
    pos = end + 1;
  }
  *n = captures;
  return !more;
}

/* True if a is more specific than b: at the leftmost segment where their
 * kinds differ, a has the lower kind. Equal ranks keep registration order.
 */
static bool more_specific(const route *a, const route *b) {
  size_t n = a->seg_count < b->seg_count ? a->seg_count : b->seg_count;
  for (size_t i = 0; i < n; i++) {
    if (a->segs[i].kind != b->segs[i].kind) {
      return a->segs[i].kind < b->segs[i].kind;
    }
  }
  return false;
}

static bool method_applies(const route *rt, const char *method, bool via_get) {
  if (via_get) {
    return strcmp(rt->method, "GET") == 0;
  }
  return strcmp(rt->method, "*") == 0 || strcmp(rt->method, method) == 0;
}

/* The most specific route for method (or, with via_get, the GET routes)
 * that matches the path; NULL if none. */
static const route *find_best(const router *r, const char *method,
                              const char *path, size_t len, bool via_get) {
  const route *best = NULL;
  size_t n;
  for (size_t i = 0; i < r->count; i++) {
    const route *rt = &r->routes[i];
    if (method_applies(rt, method, via_get) &&
        (best == NULL || more_specific(rt, best)) &&
        route_matches(rt, path, len, NULL, &n)) {
      best = rt;
    }
  }
  return best;
}

/* ----------------------------------------------------------------- allow */

static bool allow_contains(const char *allow, const char *m, size_t mlen) {
  const char *p = allow;
  while (*p != '\0') {
    size_t tlen = strcspn(p, ",");
    if (tlen == mlen && memcmp(p, m, mlen) == 0) {
      return true;
    }
    p += tlen;
    p += *p == ',' ? 2 : 0; /* skip ", " */
  }
  return false;
}

/* Appends m unless present. A method that does not fit is left out: the
 * list stays well-formed, only shorter (128 bytes hold many methods). */
static void allow_append(char *allow, size_t *len, const char *m) {
  size_t mlen = strlen(m);
  if (allow_contains(allow, m, mlen)) {
    return;
  }
  size_t sep = *len > 0 ? 2 : 0;
  if (*len + sep + mlen >= ROUTER_ALLOW_MAX) {
    return;
  }
  memcpy(allow + *len, ", ", sep);
  memcpy(allow + *len + sep, m, mlen + 1);
  *len += sep + mlen;
}

/* Fills allow with the methods of every route matching the path, in
 * registration order, HEAD right after GET. Returns whether any matched. */
static bool build_allow(const router *r, const char *path, size_t len,
                        char *allow) {
  size_t alen = 0, n;
  bool any = false;
  allow[0] = '\0';
  for (size_t i = 0; i < r->count; i++) {
    const route *rt = &r->routes[i];
    if (!route_matches(rt, path, len, NULL, &n)) {
      continue;
    }
    any = true;
    allow_append(allow, &alen, rt->method);
    if (strcmp(rt->method, "GET") == 0) {
      allow_append(allow, &alen, "HEAD");
    }
  }
  return any;
}

router_result router_match(const router *r, const char *method,
                           const char *path, size_t path_len,
                           route_match *out) {
  if (out == NULL) {
    return ROUTER_NOT_FOUND;
  }
  memset(out, 0, sizeof *out);
  if (r == NULL || method == NULL || path == NULL || path_len == 0 ||
      path[0] != '/') {
    return ROUTER_NOT_FOUND;
  }
  const route *best = find_best(r, method, path, path_len, false);
  if (best == NULL && strcmp(method, "HEAD") == 0) {
    best = find_best(r, method, path, path_len, true);
    out->head_via_get = best != NULL;
  }
  if (best != NULL) {
    route_matches(best, path, path_len, out->params, &out->param_count);
    out->handler = best->handler;
    out->user = best->user;
    return ROUTER_FOUND;
  }
  if (build_allow(r, path, path_len, out->allow)) {
    return ROUTER_METHOD_NOT_ALLOWED;
  }
  return ROUTER_NOT_FOUND;
}
