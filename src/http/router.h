/* Request router: method + path pattern -> handler.
 * Patterns: literal segments, ":name" parameters (one whole segment), and a
 * final "*" matching the rest of the path (possibly empty). */
#ifndef H3Q_HTTP_ROUTER_H
#define H3Q_HTTP_ROUTER_H

#include "h3q.h"

#define ROUTER_MAX_PARAMS 8
#define ROUTER_ALLOW_MAX 128

typedef struct router router;

typedef struct router_param {
  const char *name; /* points into the route's pattern; not NUL-terminated */
  size_t name_len;  /* "*" for the wildcard */
  const char *value; /* points into the matched path; not NUL-terminated */
  size_t value_len;
} router_param;

typedef enum router_result {
  ROUTER_FOUND,
  ROUTER_NOT_FOUND,
  ROUTER_METHOD_NOT_ALLOWED,
} router_result;

typedef struct router_match {
  h3q_handler handler;
  void *user;
  bool head_via_get; /* a HEAD request matched a GET route */
  size_t param_count;
  router_param params[ROUTER_MAX_PARAMS];
  char allow[ROUTER_ALLOW_MAX]; /* for 405: "GET, HEAD, POST" */
} router_match;

router *router_new(void);
void router_free(router *r);

/* Errors: H3Q_EINVAL (method not an upper-case token or "*"; pattern not
 * starting with '/', empty parameter name, '*' not last, more than
 * ROUTER_MAX_PARAMS parameters), H3Q_EEXIST, H3Q_ENOMEM. */
int router_add(router *r, const char *method, const char *pattern,
               h3q_handler handler, void *user);

/* Matches path (no query string, path_len bytes). Exact literal routes win
 * over parameter routes, which win over wildcard routes; among equals the
 * first registered wins. */
router_result router_match(const router *r, const char *method,
                           const char *path, size_t path_len,
                           router_match *out);

#endif
