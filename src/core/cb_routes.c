#include "core/cb_routes.h"

#include <stdlib.h>
#include <string.h>

/* The router stores a handler per route; these routes are only matched. */
static int never_called(h3q_request *req, h3q_response *res, void *user) {
  (void)req, (void)res, (void)user;
  return H3Q_EINTERNAL;
}

int cb_routes_add(cb_routes *t, const char *method, const char *pattern,
                  cb_target fn, void *user) {
  if (!t->r && !(t->r = router_new()))
    return H3Q_ENOMEM;
  cb_route *e = calloc(1, sizeof *e);
  if (!e)
    return H3Q_ENOMEM;
  e->fn = fn;
  e->user = user;
  int rc = router_add(t->r, method, pattern, never_called, e);
  if (rc != H3Q_OK) {
    free(e);
    return rc;
  }
  e->next = t->list;
  t->list = e;
  return H3Q_OK;
}

const cb_route *cb_routes_match(const cb_routes *t, const char *method,
                                const char *path, route_match *m) {
  if (!t->r ||
      router_match(t->r, method, path, strlen(path), m) != ROUTER_FOUND)
    return NULL;
  return m->user;
}

void cb_routes_free(cb_routes *t) {
  router_free(t->r);
  t->r = NULL;
  while (t->list) {
    cb_route *next = t->list->next;
    free(t->list);
    t->list = next;
  }
}
