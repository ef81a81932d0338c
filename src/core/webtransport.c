/* The public WebTransport entry point: session handlers by path, and the
 * routing of extended CONNECTs to them. */
#include <string.h>

#include "core/server.h"
#include "h3/stream.h"

int h3q_server_webtransport(h3q_server *srv, const char *pattern,
                            h3q_wt_handler handler, void *user) {
  if (!srv || !pattern || !handler)
    return H3Q_EINVAL;
  if (!srv->cfg.c.enable_webtransport || srv->running)
    return H3Q_ESTATE;
  return cb_routes_add(&srv->wt_routes, "CONNECT", pattern,
                       (cb_target){.webtransport = handler}, user);
}

void server_free_webtransport(h3q_server *srv) {
  cb_routes_free(&srv->wt_routes);
}

/* :protocol of WebTransport: "webtransport" up to draft-14,
 * "webtransport-h3" from draft-15. */
static bool is_webtransport(const h3q_request *req) {
  const char *p = h3q_request_protocol(req);
  return p && strcmp(h3q_request_method(req), "CONNECT") == 0 &&
         (strcmp(p, "webtransport") == 0 || strcmp(p, "webtransport-h3") == 0);
}

bool server_route_webtransport(server_worker *w, h3q_request *req) {
  h3q_server *srv = w->srv;
  if (!srv->cfg.c.enable_webtransport || !is_webtransport(req))
    return false;
  route_match m;
  const cb_route *e =
      cb_routes_match(&srv->wt_routes, "CONNECT", h3q_request_path(req), &m);
  if (!e) {
    static const char body[] = "404\n";
    h3q_response_send(h3q_request_response(req), 404,
                      "text/plain; charset=utf-8", body, sizeof body - 1);
    w->stats.wt_sessions_rejected++;
    return true;
  }
  if (stream_set_route_params(req->s, &m) != H3Q_OK) {
    h3q_response_send(h3q_request_response(req), 500, NULL, NULL, 0);
    return true;
  }
  wt_begin(&w->wt, req, e->fn.webtransport, e->user);
  return true;
}
