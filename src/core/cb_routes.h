/* Routes whose target is not a request handler: HTTP Datagram receivers
 * (h3q_server_route_datagram) and WebTransport session handlers
 * (h3q_server_webtransport). The router matches paths; the table owns
 * the targets it hands the router as user data. */
#ifndef H3Q_CORE_CB_ROUTES_H
#define H3Q_CORE_CB_ROUTES_H

#include "h3q.h"
#include "http/router.h"

typedef union cb_target {
  h3q_request_datagram_cb datagram;
  h3q_wt_handler webtransport;
} cb_target;

typedef struct cb_route {
  struct cb_route *next;
  cb_target fn;
  void *user;
} cb_route;

typedef struct cb_routes {
  router *r; /* NULL until the first route */
  cb_route *list;
} cb_routes;

/* Adds a route. Errors: those of router_add (H3Q_EINVAL, H3Q_EEXIST),
 * H3Q_ENOMEM. */
int cb_routes_add(cb_routes *t, const char *method, const char *pattern,
                  cb_target fn, void *user);

/* The route for method and path (and its parameters in *m), or NULL. */
const cb_route *cb_routes_match(const cb_routes *t, const char *method,
                                const char *path, route_match *m);

void cb_routes_free(cb_routes *t);

#endif
