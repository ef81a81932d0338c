/* The public WebTransport entry point: session handlers by path, and the
 * routing of extended CONNECTs to them. */
#include <stdlib.h>
#include <string.h>

#include "core/server.h"
#include "h3/stream.h"

/* A WebTransport route's handler: the router's user data for it. */
typedef struct wt_route_entry {
  struct wt_route_entry *next;
  h3q_wt_handler handler;
  void *user;
} wt_route_entry;

static int no_handler(h3q_request *req, h3q_response *res, void *user) {
  (void)req, (void)res, (void)user;
  return H3Q_EINTERNAL; /* WebTransport routes are only ever matched */
}

int h3q_server_webtransport(h3q_server *srv, const char *pattern,
                            h3q_wt_handler handler, void *user) {
  if (!srv || !pattern || !handler)
    return H3Q_EINVAL;
  if (!srv->cfg.c.enable_webtransport || srv->running)
    return H3Q_ESTATE;
  if (!srv->wt_router && !(srv->wt_router = router_new()))
    return H3Q_ENOMEM;
  wt_route_entry *e = calloc(1, sizeof *e);
  if (!e)
    return H3Q_ENOMEM;
  e->handler = handler;
  e->user = user;
  int rc = router_add(srv->wt_router, "CONNECT", pattern, no_handler, e);
  if (rc != H3Q_OK) {
    free(e);
    return rc;
  }
  e->next = srv->wt_routes;
  srv->wt_routes = e;
  return H3Q_OK;
}

void server_free_webtransport(h3q_server *srv) {
  router_free(srv->wt_router);
  srv->wt_router = NULL;
  while (srv->wt_routes) {
    wt_route_entry *next = srv->wt_routes->next;
    free(srv->wt_routes);
    srv->wt_routes = next;
  }
}

/* :protocol of WebTransport: "webtransport" up to draft-14,
 * "webtransport-h3" from draft-15. */
static bool is_webtransport(const h3q_request *req) {
  const char *p = h3q_request_protocol(req);
  return p && strcmp(h3q_request_method(req), "CONNECT") == 0 &&
         (strcmp(p, "webtransport") == 0 || strcmp(p, "webtransport-h3") == 0);
}

bool server_route_webtransport(h3q_server *srv, h3q_request *req) {
  if (!srv->cfg.c.enable_webtransport || !is_webtransport(req))
    return false;
  const char *path = h3q_request_path(req);
  route_match m;
  if (!srv->wt_router || router_match(srv->wt_router, "CONNECT", path,
                                      strlen(path), &m) != ROUTER_FOUND) {
    static const char body[] = "404\n";
    h3q_response_send(h3q_request_response(req), 404,
                      "text/plain; charset=utf-8", body, sizeof body - 1);
    srv->stats.wt_sessions_rejected++;
    return true;
  }
  const wt_route_entry *e = m.user;
  if (stream_set_route_params(req->s, &m) != H3Q_OK) {
    h3q_response_send(h3q_request_response(req), 500, NULL, NULL, 0);
    return true;
  }
  wt_begin(&srv->wt, req, e->handler, e->user);
  return true;
}
