/* Routing a request that HTTP/3 accepted: the route's handler, 405 with
 * allow, the fallback, or 404. */
#include <stdio.h>
#include <string.h>

#include "core/server.h"
#include "h3/stream.h"
#include "util/log.h"

/* Answers with a short text body; for routing errors. */
static void respond_status(h3q_response *res, int status, const char *allow) {
  char body[16];
  int n = snprintf(body, sizeof body, "%d\n", status);
  if (allow)
    h3q_response_header(res, "allow", allow);
  h3q_response_send(res, status, "text/plain; charset=utf-8", body, (size_t)n);
}

static void call_handler(h3q_request *req, h3q_response *res, h3q_handler fn,
                         void *user) {
  int rc = fn(req, res, user);
  if (rc >= 0 || req->s->closed)
    return;
  LOG_DEBUG("stream %llu: handler returned %s",
            (unsigned long long)h3q_request_stream_id(req), h3q_strerror(rc));
  /* Not yet answered: a status for the error; answering: a reset. */
  if (req->s->wstate == RES_IDLE)
    respond_status(res, h3q_error_to_status(rc), NULL);
  else
    h3q_response_reset(res, H3Q_H3_INTERNAL_ERROR);
}

void server_on_request(h3q_request *req, h3q_response *res, void *user) {
  server_worker *w = user;
  h3q_server *srv = w->srv;
  const char *method = h3q_request_method(req);
  const char *path = h3q_request_path(req);
  if (server_route_webtransport(w, req))
    return;
  server_route_datagrams(srv, req);
  route_match m;
  router_result r = router_match(srv->router, method, path, strlen(path), &m);
  if (r == ROUTER_FOUND) {
    if (stream_set_route_params(req->s, &m) != H3Q_OK)
      respond_status(res, 500, NULL);
    else
      call_handler(req, res, m.handler, m.user);
  } else if (r == ROUTER_METHOD_NOT_ALLOWED) {
    respond_status(res, 405, m.allow);
  } else if (srv->fallback) {
    call_handler(req, res, srv->fallback, srv->fallback_user);
  } else {
    respond_status(res, 404, NULL);
  }
}
