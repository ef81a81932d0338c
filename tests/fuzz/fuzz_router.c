/* The request router (src/http/router.h). Input: three lines: a method, a
 * path (any bytes but newline), and a pattern registered with that method
 * as an extra route before matching.
 * Invariants: only valid methods register; a pattern that registers
 * matches itself as a path, with each ":name" capturing ":name" and "*"
 * capturing "*"; a route clashes (H3Q_EEXIST) only with a same-shaped
 * route of the same method; matching agrees with a
 * plain reference matcher written here from the header's rules (which
 * routes match, which wins, what they capture, what 405's Allow lists);
 * captures lie inside the path. */
#include "fuzz.h"
#include "http/router.h"

#define MAX_ROUTES 64

typedef struct ref_route {
  const char *method;
  const char *pattern;
} ref_route;

static const ref_route fixed_routes[] = {
    {"GET", "/"},
    {"GET", "/hello"},
    {"GET", "/user/:id"},
    {"POST", "/user/:id"},
    {"GET", "/user/:id/posts/:post"},
    {"GET", "/user/me"},
    {"GET", "/files/*"},
    {"GET", "/files/special"},
    {"*", "/any/:x"},
    {"DELETE", "/a/b/c"},
    {"GET", "/a/:b/c"},
    {"PUT", "/a/b/:c"},
    {"GET", "/static/"},
    {"HEAD", "/h"},
    {"GET", "//double"},
    {"OPTIONS", "/opt/*"},
    {"PATCH", "/x/:a/:b/:c/:d/:e/:f/:g/*"},
    /* More methods on one path than 405's Allow can list. */
    {"PROPFIND", "/m/:x"},
    {"PROPPATCH", "/m/:x"},
    {"MKCOL", "/m/:x"},
    {"COPY", "/m/:x"},
    {"MOVE", "/m/:x"},
    {"LOCK", "/m/:x"},
    {"UNLOCK", "/m/:x"},
    {"GET", "/m/:x"},
    {"SEARCH", "/m/:x"},
    {"REPORT", "/m/:x"},
    {"MKCALENDAR", "/m/:x"},
    {"VERSION-CONTROL", "/m/:x"},
    {"CHECKOUT", "/m/:x"},
    {"UNCHECKOUT", "/m/:x"},
    {"MERGE", "/m/:x"},
    {"BASELINE-CONTROL", "/m/:x"},
    {"ACL", "/m/:x"},
};

static int dummy_handler(h3q_request *req, h3q_response *res, void *user) {
  return 0;
}

/* ------------------------------------------------ reference matcher */

/* Length of the segment starting at s (up to '/' or NUL). */
static size_t pattern_seg_len(const char *s) {
  return strcspn(s, "/");
}

/* Kind of one pattern segment: 0 literal, 1 parameter, 2 wildcard. */
static int seg_kind(const char *s, size_t len) {
  if (len == 1 && s[0] == '*') {
    return 2;
  }
  return len > 0 && s[0] == ':' ? 1 : 0;
}

/* Matches path against pattern; fills caps (up to ROUTER_MAX_PARAMS) and
 * *ncaps. Both start with '/'; the text after it is split at every '/'. */
static bool ref_match(const char *pattern, const char *path, size_t len,
                      router_param *caps, size_t *ncaps) {
  const char *pp = pattern + 1;
  size_t pos = 1, n = 0;
  bool path_left = true; /* a path segment starts at pos */
  for (;;) {
    size_t slen = pattern_seg_len(pp);
    int kind = seg_kind(pp, slen);
    if (!path_left) {
      return false;
    }
    if (kind == 2) {
      caps[n++] = (router_param){pp, 1, path + pos, len - pos};
      *ncaps = n;
      return true;
    }
    size_t end = pos;
    while (end < len && path[end] != '/') {
      end++;
    }
    if (kind == 1) {
      if (end == pos) {
        return false;
      }
      caps[n++] = (router_param){pp + 1, slen - 1, path + pos, end - pos};
    } else if (end - pos != slen || memcmp(path + pos, pp, slen) != 0) {
      return false;
    }
    path_left = end < len;
    pos = end + 1;
    if (pp[slen] == '\0') {
      *ncaps = n;
      return !path_left;
    }
    pp += slen + 1;
  }
}

/* -1, 0 or 1: a more specific than b (leftmost differing kind lower). */
static int ref_compare(const char *a, const char *b) {
  a++;
  b++;
  for (;;) {
    size_t al = pattern_seg_len(a), bl = pattern_seg_len(b);
    int ka = seg_kind(a, al), kb = seg_kind(b, bl);
    if (ka != kb) {
      return ka < kb ? -1 : 1;
    }
    if (a[al] == '\0' || b[bl] == '\0') {
      return 0;
    }
    a += al + 1;
    b += bl + 1;
  }
}

/* Same method and same shape, parameter names aside. */
static bool ref_same(const ref_route *a, const ref_route *b) {
  const char *x = a->pattern + 1, *y = b->pattern + 1;
  if (strcmp(a->method, b->method) != 0) {
    return false;
  }
  for (;;) {
    size_t xl = pattern_seg_len(x), yl = pattern_seg_len(y);
    int kx = seg_kind(x, xl), ky = seg_kind(y, yl);
    if (kx != ky || (kx == 0 && (xl != yl || memcmp(x, y, xl) != 0))) {
      return false;
    }
    if (x[xl] == '\0' || y[yl] == '\0') {
      return x[xl] == y[yl];
    }
    x += xl + 1;
    y += yl + 1;
  }
}

/* ------------------------------------------------ checks */

typedef struct table {
  ref_route routes[MAX_ROUTES];
  size_t count;
  router *r;
} table;

static bool applies(const ref_route *rt, const char *method, bool via_get) {
  if (via_get) {
    return strcmp(rt->method, "GET") == 0;
  }
  return strcmp(rt->method, "*") == 0 || strcmp(rt->method, method) == 0;
}

/* Index of the route the reference picks, or -1. */
static int ref_best(const table *t, const char *method, const char *path,
                    size_t len, bool via_get) {
  int best = -1;
  router_param caps[ROUTER_MAX_PARAMS];
  size_t n;
  for (size_t i = 0; i < t->count; i++) {
    const ref_route *rt = &t->routes[i];
    if (applies(rt, method, via_get) &&
        ref_match(rt->pattern, path, len, caps, &n) &&
        (best < 0 || ref_compare(rt->pattern, t->routes[best].pattern) < 0)) {
      best = (int)i;
    }
  }
  return best;
}

static void check_found(const table *t, const route_match *m, const char *path,
                        size_t len) {
  const ref_route *rt = m->user;
  FUZZ_CHECK(m->handler == dummy_handler);
  FUZZ_CHECK(rt >= t->routes && rt < t->routes + t->count);
  router_param caps[ROUTER_MAX_PARAMS];
  size_t n = 0;
  FUZZ_CHECK(ref_match(rt->pattern, path, len, caps, &n));
  FUZZ_CHECK(m->param_count == n && n <= ROUTER_MAX_PARAMS);
  for (size_t i = 0; i < n; i++) {
    const router_param *p = &m->params[i];
    FUZZ_CHECK(p->value >= path && p->value_len <= len &&
               (size_t)(p->value - path) <= len - p->value_len);
    FUZZ_CHECK(p->value == caps[i].value && p->value_len == caps[i].value_len);
    FUZZ_CHECK(p->name_len == caps[i].name_len &&
               memcmp(p->name, caps[i].name, p->name_len) == 0);
  }
}

static bool allow_has(const char *allow, const char *m) {
  size_t mlen = strlen(m);
  for (const char *p = allow; *p != '\0';) {
    size_t tlen = strcspn(p, ",");
    if (tlen == mlen && memcmp(p, m, mlen) == 0) {
      return true;
    }
    p += tlen;
    p += *p == ',' ? 2 : 0;
  }
  return false;
}

/* Allow lists methods of matching routes only (HEAD for GET), never the
 * request's own method. */
static void check_allow(const table *t, const route_match *m,
                        const char *method, const char *path, size_t len) {
  FUZZ_CHECK(strnlen(m->allow, ROUTER_ALLOW_MAX) < ROUTER_ALLOW_MAX);
  FUZZ_CHECK(!allow_has(m->allow, method));
  /* Empty only when every matching route's method is too long for it. */
  bool some_fits = false;
  for (size_t i = 0; i < t->count; i++) {
    router_param caps[ROUTER_MAX_PARAMS];
    size_t n;
    some_fits |= strlen(t->routes[i].method) < ROUTER_ALLOW_MAX &&
                 ref_match(t->routes[i].pattern, path, len, caps, &n);
  }
  FUZZ_CHECK((m->allow[0] != '\0') == some_fits);
  for (const char *p = m->allow; *p != '\0';) {
    size_t tlen = strcspn(p, ",");
    bool from_route = false;
    for (size_t i = 0; i < t->count && !from_route; i++) {
      const ref_route *rt = &t->routes[i];
      router_param caps[ROUTER_MAX_PARAMS];
      size_t n;
      bool named =
          strlen(rt->method) == tlen && memcmp(rt->method, p, tlen) == 0;
      bool head = tlen == 4 && memcmp(p, "HEAD", 4) == 0 &&
                  strcmp(rt->method, "GET") == 0;
      from_route =
          (named || head) && ref_match(rt->pattern, path, len, caps, &n);
    }
    FUZZ_CHECK(from_route);
    p += tlen;
    p += *p == ',' ? 2 : 0;
  }
}

static void check_match(const table *t, const char *method, const char *path,
                        size_t len) {
  route_match m;
  router_result res = router_match(t->r, method, path, len, &m);
  bool rooted = len > 0 && path[0] == '/';
  int best = rooted ? ref_best(t, method, path, len, false) : -1;
  bool via_get = false;
  if (best < 0 && rooted && strcmp(method, "HEAD") == 0) {
    best = ref_best(t, method, path, len, true);
    via_get = best >= 0;
  }
  if (best >= 0) {
    FUZZ_CHECK(res == ROUTER_FOUND);
    FUZZ_CHECK(m.user == &t->routes[best]);
    FUZZ_CHECK(m.head_via_get == via_get);
    check_found(t, &m, path, len);
    return;
  }
  FUZZ_CHECK(res != ROUTER_FOUND);
  FUZZ_CHECK(m.handler == NULL && m.param_count == 0 && !m.head_via_get);
  if (res == ROUTER_METHOD_NOT_ALLOWED) {
    FUZZ_CHECK(rooted);
    check_allow(t, &m, method, path, len);
  } else {
    FUZZ_CHECK(res == ROUTER_NOT_FOUND && m.allow[0] == '\0');
    router_param caps[ROUTER_MAX_PARAMS];
    size_t n;
    for (size_t i = 0; rooted && i < t->count; i++) {
      FUZZ_CHECK(!ref_match(t->routes[i].pattern, path, len, caps, &n));
    }
  }
}

/* "*" or an RFC 9110 token without lower-case letters. */
static bool method_valid(const char *m) {
  if (strcmp(m, "*") == 0) {
    return true;
  }
  for (const char *c = m; *c != '\0'; c++) {
    bool ok = (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              (*c != '\0' && strchr("!#$%&'*+-.^_`|~", *c) != NULL);
    if (!ok) {
      return false;
    }
  }
  return m[0] != '\0';
}

/* A pattern registered for method, used as a path, matches its own route;
 * other methods get 405 (or HEAD the GET route). */
static void check_self_match(const char *method, const char *pattern) {
  router *r = router_new();
  if (r == NULL) {
    abort();
  }
  FUZZ_CHECK(router_add(r, method, pattern, dummy_handler, NULL) == H3Q_OK);
  FUZZ_CHECK(router_add(r, method, pattern, dummy_handler, NULL) == H3Q_EEXIST);
  size_t len = strlen(pattern);
  route_match m;
  FUZZ_CHECK(router_match(r, method, pattern, len, &m) == ROUTER_FOUND);
  for (size_t i = 0; i < m.param_count; i++) {
    const router_param *p = &m.params[i];
    bool wildcard = p->name_len == 1 && p->name[0] == '*';
    if (wildcard) {
      FUZZ_CHECK(p->value_len == 1 && p->value[0] == '*');
    } else {
      FUZZ_CHECK(p->value_len == p->name_len + 1 && p->value[0] == ':' &&
                 memcmp(p->value + 1, p->name, p->name_len) == 0);
    }
  }
  bool get = strcmp(method, "GET") == 0, any = strcmp(method, "*") == 0;
  if (get) {
    FUZZ_CHECK(router_match(r, "HEAD", pattern, len, &m) == ROUTER_FOUND &&
               m.head_via_get);
  }
  const char *other = strcmp(method, "POST") == 0 ? "PUT" : "POST";
  router_result res = router_match(r, other, pattern, len, &m);
  if (any) {
    FUZZ_CHECK(res == ROUTER_FOUND);
  } else {
    FUZZ_CHECK(res == ROUTER_METHOD_NOT_ALLOWED);
    /* A method too long for Allow is left out of it. */
    bool fits = strlen(method) < ROUTER_ALLOW_MAX;
    FUZZ_CHECK(strcmp(m.allow, get ? "GET, HEAD" : fits ? method : "") == 0);
  }
  router_free(r);
}

static void build_table(table *t, const char *method, const char *extra) {
  t->r = router_new();
  t->count = 0;
  if (t->r == NULL) {
    abort();
  }
  for (size_t i = 0; i < sizeof fixed_routes / sizeof fixed_routes[0]; i++) {
    t->routes[t->count] = fixed_routes[i];
    FUZZ_CHECK(router_add(t->r, fixed_routes[i].method, fixed_routes[i].pattern,
                          dummy_handler, &t->routes[t->count]) == H3Q_OK);
    t->count++;
  }
  ref_route mine = {method, extra};
  t->routes[t->count] = mine;
  int rc = router_add(t->r, method, extra, dummy_handler, &t->routes[t->count]);
  FUZZ_CHECK(rc == H3Q_OK || rc == H3Q_EINVAL || rc == H3Q_EEXIST);
  if (!method_valid(method)) {
    FUZZ_CHECK(rc == H3Q_EINVAL);
  }
  bool clash = false;
  for (size_t i = 0; rc != H3Q_EINVAL && i < t->count; i++) {
    clash |= ref_same(&t->routes[i], &mine);
  }
  if (rc != H3Q_EINVAL) {
    FUZZ_CHECK(clash == (rc == H3Q_EEXIST));
  }
  if (rc == H3Q_OK) {
    t->count++;
    check_self_match(method, extra);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const uint8_t *p[3] = {NULL, NULL, NULL};
  size_t len[3] = {0, 0, 0};
  for (int i = 0; i < 3 && fuzz_next_piece(&data, &size, '\n', &p[i], &len[i]);
       i++) {
  }
  char *method = fuzz_strndup(p[0], len[0]);
  char *path = fuzz_strndup(p[1], len[1]); /* may hold NUL bytes */
  char *pattern = fuzz_strndup(p[2], len[2]);
  static table t;
  build_table(&t, method, pattern);
  check_match(&t, method, path, len[1]);
  router_free(t.r);
  free(pattern);
  free(path);
  free(method);
  return 0;
}
