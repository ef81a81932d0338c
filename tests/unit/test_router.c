/* Unit tests for the router: matching, precedence, 404/405, validation. */
#include "check.h"
#include "http/router.h"

#include <stdlib.h>
#include <string.h>

static int handler_a(h3q_request *req, h3q_response *res, void *user) {
  return 0;
}

static int handler_b(h3q_request *req, h3q_response *res, void *user) {
  return 1;
}

/* Routes are told apart by their user pointer: &tags[n]. */
static int tags[16];
#define TAG(n) ((void *)&tags[(n)])

static int add(router *r, const char *method, const char *pattern, int tag) {
  return router_add(r, method, pattern, handler_a, TAG(tag));
}

static router_result match(const router *r, const char *method,
                           const char *path, route_match *out) {
  return router_match(r, method, path, strlen(path), out);
}

/* The tag of the route that matched, or -1. */
static int matched_tag(const router *r, const char *method, const char *path) {
  route_match m;
  if (match(r, method, path, &m) != ROUTER_FOUND) {
    return -1;
  }
  return (int)((int *)m.user - tags);
}

/* True if out has a parameter name whose value is want. */
static bool has_param(const route_match *m, const char *name,
                      const char *want) {
  for (size_t i = 0; i < m->param_count; i++) {
    const router_param *p = &m->params[i];
    if (p->name_len == strlen(name) && memcmp(p->name, name, p->name_len) == 0)
      return p->value_len == strlen(want) &&
             memcmp(p->value, want, p->value_len) == 0;
  }
  return false;
}

static void test_exact(void) {
  router *r = router_new();
  route_match m;
  CHECK(router_add(r, "GET", "/hello", handler_b, TAG(1)) == H3Q_OK);
  CHECK(add(r, "GET", "/", 2) == H3Q_OK);
  CHECK(add(r, "GET", "/a/b/c", 3) == H3Q_OK);
  CHECK(match(r, "GET", "/hello", &m) == ROUTER_FOUND);
  CHECK(m.handler == handler_b && m.user == TAG(1));
  CHECK(m.param_count == 0 && !m.head_via_get);
  CHECK(matched_tag(r, "GET", "/") == 2);
  CHECK(matched_tag(r, "GET", "/a/b/c") == 3);
  CHECK(matched_tag(r, "GET", "/a/b") == -1);
  CHECK(matched_tag(r, "GET", "/a/b/c/d") == -1);
  CHECK(matched_tag(r, "GET", "/Hello") == -1); /* case-sensitive */
  CHECK(matched_tag(r, "GET", "/hell") == -1);
  CHECK(matched_tag(r, "GET", "/helloo") == -1);
  CHECK(matched_tag(r, "get", "/hello") == -1); /* methods too */
  router_free(r);
}

static void test_params(void) {
  router *r = router_new();
  route_match m;
  CHECK(add(r, "GET", "/user/:id", 1) == H3Q_OK);
  CHECK(add(r, "GET", "/org/:org/repo/:repo_name/issue/:n", 2) == H3Q_OK);
  CHECK(match(r, "GET", "/user/42", &m) == ROUTER_FOUND);
  CHECK(m.user == TAG(1) && m.param_count == 1 && has_param(&m, "id", "42"));
  CHECK(match(r, "GET", "/org/h3q/repo/core/issue/7", &m) == ROUTER_FOUND);
  CHECK(m.user == TAG(2) && m.param_count == 3);
  CHECK(has_param(&m, "org", "h3q") && has_param(&m, "repo_name", "core"));
  CHECK(has_param(&m, "n", "7") && !has_param(&m, "id", "7"));
  CHECK(m.params[0].name_len == 3 && memcmp(m.params[0].name, "org", 3) == 0);
  CHECK(matched_tag(r, "GET", "/user/") == -1); /* empty param */
  CHECK(matched_tag(r, "GET", "/user") == -1);
  CHECK(matched_tag(r, "GET", "/user/42/x") == -1);
  CHECK(matched_tag(r, "GET", "/org/a/repo//issue/7") == -1);
  router_free(r);
}

static void test_wildcard(void) {
  router *r = router_new();
  route_match m;
  CHECK(add(r, "GET", "/files/*", 1) == H3Q_OK);
  CHECK(add(r, "GET", "/u/:id/*", 2) == H3Q_OK);
  CHECK(match(r, "GET", "/files/a/b/c.txt", &m) == ROUTER_FOUND);
  CHECK(m.user == TAG(1) && m.param_count == 1);
  CHECK(has_param(&m, "*", "a/b/c.txt"));
  CHECK(match(r, "GET", "/files/", &m) == ROUTER_FOUND); /* empty rest */
  CHECK(m.param_count == 1 && has_param(&m, "*", ""));
  CHECK(match(r, "GET", "/files//x/", &m) == ROUTER_FOUND);
  CHECK(has_param(&m, "*", "/x/"));
  CHECK(matched_tag(r, "GET", "/files") == -1); /* no slash: no match */
  CHECK(matched_tag(r, "GET", "/filesx/a") == -1);
  CHECK(match(r, "GET", "/u/9/p/q", &m) == ROUTER_FOUND);
  CHECK(m.user == TAG(2) && m.param_count == 2);
  CHECK(has_param(&m, "id", "9") && has_param(&m, "*", "p/q"));
  router_free(r);
  /* A pattern of "/" + "*" matches every path, including "/". */
  r = router_new();
  CHECK(add(r, "GET", "/*", 3) == H3Q_OK);
  CHECK(match(r, "GET", "/", &m) == ROUTER_FOUND && has_param(&m, "*", ""));
  CHECK(matched_tag(r, "GET", "/any/thing") == 3);
  router_free(r);
}

static void test_precedence(void) {
  router *r = router_new();
  /* Registered least specific first, so order alone cannot explain wins. */
  CHECK(add(r, "GET", "/a/*", 1) == H3Q_OK);
  CHECK(add(r, "GET", "/a/:x", 2) == H3Q_OK);
  CHECK(add(r, "GET", "/a/b", 3) == H3Q_OK);
  CHECK(add(r, "GET", "/:p/c", 4) == H3Q_OK);
  CHECK(add(r, "GET", "/a/:y/d", 5) == H3Q_OK);
  CHECK(add(r, "GET", "/:q/b/d", 6) == H3Q_OK);
  CHECK(add(r, "GET", "/:first/:second", 7) == H3Q_OK);
  CHECK(matched_tag(r, "GET", "/a/b") == 3); /* literal beats param */
  CHECK(matched_tag(r, "GET", "/a/z") == 2); /* param beats wildcard */
  CHECK(matched_tag(r, "GET", "/a/z/y") == 1);
  CHECK(matched_tag(r, "GET", "/a/") == 1);    /* param needs non-empty */
  CHECK(matched_tag(r, "GET", "/a/c") == 2);   /* "/a/:x" beats "/:p/c" */
  CHECK(matched_tag(r, "GET", "/x/c") == 4);   /* "/:p/c" vs "/:f/:s" */
  CHECK(matched_tag(r, "GET", "/a/b/d") == 5); /* leftmost decides */
  CHECK(matched_tag(r, "GET", "/x/y") == 7);
  /* Equal rank: first registered wins. */
  CHECK(add(r, "GET", "/:p/e", 8) == H3Q_OK);
  CHECK(add(r, "GET", "/:p/:q/f", 9) == H3Q_OK);
  CHECK(add(r, "GET", "/:p/:q/*", 10) == H3Q_OK);
  CHECK(matched_tag(r, "GET", "/x/e") == 8);
  CHECK(matched_tag(r, "GET", "/x/y/f") == 9);
  router_free(r);
  r = router_new();
  CHECK(add(r, "*", "/same/:x", 1) == H3Q_OK);
  CHECK(add(r, "GET", "/same/:y", 2) == H3Q_OK);
  CHECK(add(r, "GET", "/same/lit", 3) == H3Q_OK);
  CHECK(matched_tag(r, "GET", "/same/v") == 1); /* registration order */
  CHECK(matched_tag(r, "GET", "/same/lit") == 3);
  router_free(r);
}

static void test_not_found_and_405(void) {
  router *r = router_new();
  route_match m;
  CHECK(match(r, "GET", "/", &m) == ROUTER_NOT_FOUND); /* empty router */
  CHECK(add(r, "POST", "/items", 1) == H3Q_OK);
  CHECK(add(r, "GET", "/items", 2) == H3Q_OK);
  CHECK(add(r, "DELETE", "/items/:id", 3) == H3Q_OK);
  CHECK(add(r, "PUT", "/items/*", 4) == H3Q_OK);
  CHECK(add(r, "POST", "/items/:id", 5) == H3Q_OK);
  CHECK(add(r, "PUT", "/items/:id", 6) == H3Q_OK);
  CHECK(match(r, "GET", "/nothing", &m) == ROUTER_NOT_FOUND);
  CHECK(m.allow[0] == '\0' && m.handler == NULL);
  CHECK(match(r, "GET", "", &m) == ROUTER_NOT_FOUND);
  CHECK(match(r, "GET", "items", &m) == ROUTER_NOT_FOUND);
  CHECK(match(r, "PATCH", "/items", &m) == ROUTER_METHOD_NOT_ALLOWED);
  CHECK_STR(m.allow, "POST, GET, HEAD");
  CHECK(m.handler == NULL);
  CHECK(match(r, "GET", "/items/1", &m) == ROUTER_METHOD_NOT_ALLOWED);
  CHECK_STR(m.allow, "DELETE, PUT, POST"); /* deduplicated, no HEAD */
  CHECK(match(r, "HEAD", "/items/1", &m) == ROUTER_METHOD_NOT_ALLOWED);
  CHECK(match(r, "GET", "/items/1/2", &m) == ROUTER_METHOD_NOT_ALLOWED);
  CHECK_STR(m.allow, "PUT");
  CHECK(matched_tag(r, "POST", "/items/1") == 5);
  router_free(r);
  /* An explicit HEAD route is not listed twice. */
  r = router_new();
  CHECK(add(r, "HEAD", "/h", 1) == H3Q_OK);
  CHECK(add(r, "GET", "/h", 2) == H3Q_OK);
  CHECK(add(r, "OPTIONS", "/h", 3) == H3Q_OK);
  CHECK(match(r, "POST", "/h", &m) == ROUTER_METHOD_NOT_ALLOWED);
  CHECK_STR(m.allow, "HEAD, GET, OPTIONS");
  router_free(r);
}

static void test_allow_overflow(void) {
  router *r = router_new();
  route_match m;
  char method[40];
  for (int i = 0; i < 8; i++) {
    memset(method, 'A' + i, 30);
    method[30] = '\0';
    CHECK(add(r, method, "/x", i) == H3Q_OK);
  }
  CHECK(match(r, "GET", "/x", &m) == ROUTER_METHOD_NOT_ALLOWED);
  CHECK(strlen(m.allow) < ROUTER_ALLOW_MAX);
  CHECK(strncmp(m.allow, "AAAA", 4) == 0);
  /* Whole methods only: the list ends with a complete 30-byte method. */
  size_t len = strlen(m.allow);
  CHECK(len >= 30 && (len == 30 || strncmp(m.allow + len - 32, ", ", 2) == 0));
  router_free(r);
}

static void test_head(void) {
  router *r = router_new();
  route_match m;
  CHECK(add(r, "GET", "/page", 1) == H3Q_OK);
  CHECK(add(r, "GET", "/both", 2) == H3Q_OK);
  CHECK(add(r, "HEAD", "/both", 3) == H3Q_OK);
  CHECK(add(r, "HEAD", "/hp/:x", 4) == H3Q_OK);
  CHECK(add(r, "GET", "/hp/lit", 5) == H3Q_OK);
  CHECK(match(r, "HEAD", "/page", &m) == ROUTER_FOUND);
  CHECK(m.user == TAG(1) && m.head_via_get);
  CHECK(match(r, "HEAD", "/both", &m) == ROUTER_FOUND);
  CHECK(m.user == TAG(3) && !m.head_via_get);
  CHECK(match(r, "GET", "/both", &m) == ROUTER_FOUND);
  CHECK(m.user == TAG(2) && !m.head_via_get);
  /* Any matching HEAD route beats a GET route, however specific. */
  CHECK(match(r, "HEAD", "/hp/lit", &m) == ROUTER_FOUND);
  CHECK(m.user == TAG(4) && !m.head_via_get);
  CHECK(match(r, "POST", "/page", &m) == ROUTER_METHOD_NOT_ALLOWED);
  CHECK_STR(m.allow, "GET, HEAD");
  router_free(r);
}

static void test_any_method(void) {
  router *r = router_new();
  route_match m;
  CHECK(add(r, "*", "/any", 1) == H3Q_OK);
  CHECK(add(r, "GET", "/any", 2) == H3Q_OK); /* not a duplicate of "*" */
  CHECK(add(r, "*", "/only", 3) == H3Q_OK);
  CHECK(matched_tag(r, "PATCH", "/only") == 3);
  CHECK(matched_tag(r, "BREW", "/only") == 3);
  CHECK(match(r, "HEAD", "/only", &m) == ROUTER_FOUND);
  CHECK(m.user == TAG(3) && !m.head_via_get);
  CHECK(matched_tag(r, "DELETE", "/any") == 1);
  CHECK(matched_tag(r, "GET", "/any") == 1); /* "*" registered first */
  CHECK(match(r, "GET", "/none", &m) == ROUTER_NOT_FOUND);
  router_free(r);
}

static void test_add_errors(void) {
  router *r = router_new();
  CHECK(add(r, "GET", "/dup/:id", 1) == H3Q_OK);
  CHECK(add(r, "GET", "/dup/:id", 2) == H3Q_EEXIST);
  CHECK(add(r, "GET", "/dup/:other", 2) == H3Q_EEXIST);
  CHECK(add(r, "POST", "/dup/:id", 2) == H3Q_OK);
  CHECK(add(r, "GET", "/dup/lit", 2) == H3Q_OK);
  CHECK(add(r, "GET", "/dup/lit", 2) == H3Q_EEXIST);
  CHECK(add(r, "GET", "/dup/lit/", 2) == H3Q_OK); /* differs by a slash */
  CHECK(add(r, "get", "/x", 1) == H3Q_EINVAL);
  CHECK(add(r, "Get", "/x", 1) == H3Q_EINVAL);
  CHECK(add(r, "", "/x", 1) == H3Q_EINVAL);
  CHECK(add(r, "G T", "/x", 1) == H3Q_EINVAL);
  CHECK(add(r, "GET\r\n", "/x", 1) == H3Q_EINVAL);
  CHECK(add(r, "M-SEARCH", "/x", 1) == H3Q_OK);
  CHECK(add(r, "GET", "", 1) == H3Q_EINVAL);
  CHECK(add(r, "GET", "x", 1) == H3Q_EINVAL);
  CHECK(add(r, "GET", "/a/:", 1) == H3Q_EINVAL);
  CHECK(add(r, "GET", "/a/:b:c", 1) == H3Q_EINVAL);
  CHECK(add(r, "GET", "/a/:b/:b", 1) == H3Q_EINVAL);
  CHECK(add(r, "GET", "/*/a", 1) == H3Q_EINVAL);
  CHECK(add(r, "GET", "/a*", 1) == H3Q_EINVAL);
  CHECK(add(r, "GET", "/a/**", 1) == H3Q_EINVAL);
  CHECK(add(r, "GET", "/a b", 1) == H3Q_EINVAL);
  CHECK(add(r, "GET", "/a?b", 1) == H3Q_EINVAL);
  CHECK(add(r, "GET", "/a#b", 1) == H3Q_EINVAL);
  CHECK(add(r, "GET", "/a:b", 1) == H3Q_OK); /* ':' mid-segment is literal */
  CHECK(router_add(r, "GET", "/h", NULL, NULL) == H3Q_EINVAL);
  CHECK(router_add(r, NULL, "/h", handler_a, NULL) == H3Q_EINVAL);
  CHECK(router_add(r, "GET", NULL, handler_a, NULL) == H3Q_EINVAL);
  CHECK(router_add(NULL, "GET", "/h", handler_a, NULL) == H3Q_EINVAL);
  CHECK(matched_tag(r, "GET", "/a:b") == 1);
  router_free(r);
}

static void test_too_many_params(void) {
  router *r = router_new();
  route_match m;
  const char *eight = "/:a/:b/:c/:d/:e/:f/:g/:h";
  CHECK(ROUTER_MAX_PARAMS == 8);
  CHECK(add(r, "GET", eight, 1) == H3Q_OK);
  CHECK(add(r, "GET", "/:a/:b/:c/:d/:e/:f/:g/:h/:i", 2) == H3Q_EINVAL);
  CHECK(add(r, "GET", "/x/:a/:b/:c/:d/:e/:f/:g/:h/*", 2) == H3Q_EINVAL);
  CHECK(add(r, "GET", "/y/:a/:b/:c/:d/:e/:f/:g/*", 3) == H3Q_OK);
  CHECK(match(r, "GET", "/1/2/3/4/5/6/7/8", &m) == ROUTER_FOUND);
  CHECK(m.param_count == 8 && has_param(&m, "h", "8"));
  CHECK(match(r, "GET", "/y/1/2/3/4/5/6/7/r/s", &m) == ROUTER_FOUND);
  CHECK(m.param_count == 8 && has_param(&m, "*", "r/s"));
  router_free(r);
}

static void test_path_len(void) {
  router *r = router_new();
  route_match m;
  CHECK(add(r, "GET", "/abc", 1) == H3Q_OK);
  CHECK(add(r, "GET", "/u/:id", 2) == H3Q_OK);
  /* Not NUL-terminated: only path_len bytes count. */
  char buf[8] = {'/', 'a', 'b', 'c', 'd', 'e', 'f', 'g'};
  CHECK(router_match(r, "GET", buf, 4, &m) == ROUTER_FOUND);
  CHECK(m.user == TAG(1));
  CHECK(router_match(r, "GET", buf, 3, &m) == ROUTER_NOT_FOUND);
  CHECK(router_match(r, "GET", buf, 5, &m) == ROUTER_NOT_FOUND);
  const char *path = "/u/12?q=1";
  CHECK(router_match(r, "GET", path, 5, &m) == ROUTER_FOUND);
  CHECK(m.param_count == 1 && has_param(&m, "id", "12"));
  CHECK(m.params[0].value == path + 3);
  CHECK(router_match(r, "GET", "/u/12/", 5, &m) == ROUTER_FOUND);
  CHECK(router_match(r, "GET", NULL, 0, &m) == ROUTER_NOT_FOUND);
  CHECK(router_match(NULL, "GET", "/abc", 4, &m) == ROUTER_NOT_FOUND);
  CHECK(router_match(r, "GET", "/abc", 4, NULL) == ROUTER_NOT_FOUND);
  router_free(r);
}

static void test_slashes(void) {
  router *r = router_new();
  CHECK(add(r, "GET", "/a", 1) == H3Q_OK);
  CHECK(add(r, "GET", "/b/", 2) == H3Q_OK);
  CHECK(add(r, "GET", "/c//d", 3) == H3Q_OK);
  CHECK(matched_tag(r, "GET", "/a") == 1);
  CHECK(matched_tag(r, "GET", "/a/") == -1);
  CHECK(matched_tag(r, "GET", "/b/") == 2);
  CHECK(matched_tag(r, "GET", "/b") == -1);
  CHECK(matched_tag(r, "GET", "/c//d") == 3);
  CHECK(matched_tag(r, "GET", "/c/d") == -1);
  CHECK(matched_tag(r, "GET", "//a") == -1);
  router_free(r);
}

static void test_many_routes(void) {
  router *r = router_new();
  char pat[32];
  for (int i = 0; i < 100; i++) {
    snprintf(pat, sizeof pat, "/r%d/:x", i);
    CHECK(router_add(r, "GET", pat, handler_a, NULL) == H3Q_OK);
  }
  CHECK(add(r, "GET", "/r99/z", 1) == H3Q_OK);
  CHECK(matched_tag(r, "GET", "/r99/z") == 1);
  route_match m;
  CHECK(match(r, "GET", "/r57/q", &m) == ROUTER_FOUND &&
        has_param(&m, "x", "q"));
  router_free(NULL);
  router_free(r);
}

int main(void) {
  test_exact();
  test_params();
  test_wildcard();
  test_precedence();
  test_not_found_and_405();
  test_allow_overflow();
  test_head();
  test_any_method();
  test_add_errors();
  test_too_many_params();
  test_path_len();
  test_slashes();
  test_many_routes();
  return check_report("test_router");
}
