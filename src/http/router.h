/* Request router: method + path pattern -> handler.
 *
 * A pattern starts with '/' and is split at every '/' into segments:
 * - literal: matched byte for byte against the path segment (the router
 *   does no percent-decoding or case folding);
 *   an empty literal matches an empty segment ("//", or a trailing '/');
 * - ":name" parameter: one whole, non-empty segment; name is [A-Za-z0-9_-]+
 *   and unique within the pattern;
 * - "*" wildcard, only as the final segment: the rest of the path, possibly
 *   empty, slashes included; its parameter name is "*".
 * The path is split the same way, so a trailing slash matters: "/a/" does
 * not match "/a" (nor the reverse), and the pattern "/files/" + "*"
 * matches "/files/" and "/files/x/y" but not "/files".
 *
 * Matching does not allocate: patterns are compiled at router_add, and
 * params point into the route's pattern and into the caller's path. */
#ifndef H3Q_HTTP_ROUTER_H
#define H3Q_HTTP_ROUTER_H

#include "h3q.h"

#define ROUTER_MAX_PARAMS 8
#define ROUTER_ALLOW_MAX 128

typedef struct router router;

typedef struct router_param {
  const char *name;  /* points into the route's pattern; not NUL-terminated */
  size_t name_len;   /* "*" for the wildcard */
  const char *value; /* points into the matched path; not NUL-terminated */
  size_t value_len;
} router_param;

typedef enum router_result {
  ROUTER_FOUND,
  ROUTER_NOT_FOUND,
  ROUTER_METHOD_NOT_ALLOWED,
} router_result;

/* The result of router_match. (Named route_match, not router_match: a
 * typedef and the function cannot share one identifier in C.) */
typedef struct route_match {
  h3q_handler handler;
  void *user;
  bool head_via_get; /* a HEAD request matched a GET route */
  size_t param_count;
  router_param params[ROUTER_MAX_PARAMS];
  char allow[ROUTER_ALLOW_MAX]; /* for 405: "GET, HEAD, POST" */
} route_match;

router *router_new(void);
void router_free(router *r);

/* Registers handler for method and pattern (both copied). Errors:
 * H3Q_EINVAL (NULL argument; method not an upper-case token or "*"; pattern
 * not starting with '/', empty or invalid parameter name, a parameter name
 * used twice, '*' anywhere but as the whole final segment, a literal byte
 * that is a control, space, '?' or '#', more than ROUTER_MAX_PARAMS
 * parameters counting the wildcard), H3Q_EEXIST (same method and same
 * pattern, parameter names aside: "/u/:a" then "/u/:b"), H3Q_ENOMEM. */
int router_add(router *r, const char *method, const char *pattern,
               h3q_handler handler, void *user);

/* Matches path (no query string, path_len bytes, need not be
 * NUL-terminated; it must outlive the use of out->params). Routes whose
 * method equals method, or is "*", compete: at the leftmost segment where
 * two routes differ in kind, literal beats parameter beats wildcard; equal
 * ranks go to the first registered (so a "*" route registered first beats
 * a same-shaped GET route). If none matches a HEAD request, GET routes
 * compete the same way and head_via_get is set. ROUTER_FOUND fills
 * handler, user and params. ROUTER_METHOD_NOT_ALLOWED (the path matches
 * only routes of other methods) fills allow: their methods in registration
 * order, deduplicated, HEAD right after GET, ", " separated (a method that
 * would overflow ROUTER_ALLOW_MAX is left out). Otherwise, including a path
 * not starting with '/', ROUTER_NOT_FOUND. out is always reset first. */
router_result router_match(const router *r, const char *method,
                           const char *path, size_t path_len, route_match *out);

#endif
