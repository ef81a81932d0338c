/* The public datagram API: connection-scoped QUIC DATAGRAMs, and routes
 * for HTTP Datagrams. */
#include "core/server.h"
#include "quic/conn.h"

void server_free_datagrams(h3q_server *srv) {
  cb_routes_free(&srv->dgram_routes);
  for (size_t i = 0; i < srv->nworkers; i++)
    dgram_ctx_free(&srv->workers[i].dgram);
}

/* HTTP Datagrams are on (every worker has the same settings). */
static bool http_datagrams(const h3q_server *srv) {
  return srv->workers[0].dgram.http;
}

int h3q_server_route_datagram(h3q_server *srv, const char *method,
                              const char *pattern, h3q_request_datagram_cb cb,
                              void *user) {
  if (!srv || !method || !pattern || !cb)
    return H3Q_EINVAL;
  if (!http_datagrams(srv) || srv->running)
    return H3Q_ESTATE;
  return cb_routes_add(&srv->dgram_routes, method, pattern,
                       (cb_target){.datagram = cb}, user);
}

void server_route_datagrams(h3q_server *srv, h3q_request *req) {
  route_match m;
  const cb_route *e = cb_routes_match(
      &srv->dgram_routes, h3q_request_method(req), h3q_request_path(req), &m);
  if (e)
    h3q_request_on_datagram(req, e->fn.datagram, e->user);
}

/* A datagram that is not an HTTP Datagram, for the server's receiver. */
static void on_conn_datagram(h3_session *h, const uint8_t *p, size_t len,
                             void *user) {
  server_worker *w = user;
  h3q_server *srv = w->srv;
  if (srv->on_datagram)
    srv->on_datagram(srv, h3_session_conn(h)->number, p, len,
                     srv->datagram_user);
  else
    w->stats.datagrams_unroutable++;
}

int server_init_datagrams(server_worker *w) {
  int rc = dgram_ctx_init(&w->dgram, &w->h3, &w->srv->cfg.c, &w->stats);
  if (rc != H3Q_OK)
    return rc;
  w->dgram.on_datagram = on_conn_datagram;
  w->dgram.user = w;
  return H3Q_OK;
}

int h3q_server_on_datagram(h3q_server *srv, h3q_datagram_cb cb, void *user) {
  if (!srv)
    return H3Q_EINVAL;
  if (!srv->cfg.c.enable_dgram || http_datagrams(srv))
    return H3Q_ESTATE;
  srv->on_datagram = cb;
  srv->datagram_user = user;
  return H3Q_OK;
}

/* The open session of connection conn_id, or NULL with *err set. Only
 * the worker that owns it may touch it: on another worker's thread it is
 * not found. */
static h3_session *session_of(h3q_server *srv, uint64_t conn_id,
                              server_worker **w, int *err) {
  *err = H3Q_OK;
  if (!srv->cfg.c.enable_dgram || http_datagrams(srv)) {
    *err = H3Q_ESTATE;
    return NULL;
  }
  *w = server_conn_worker(srv, conn_id);
  conn *c = *w == server_current_worker(srv) ? endpoint_find(&(*w)->ep, conn_id)
                                             : NULL;
  if (!c || !c->app) {
    *err = H3Q_ENOTFOUND;
    return NULL;
  }
  return c->app;
}

int h3q_server_send_datagram(h3q_server *srv, uint64_t conn_id,
                             const void *data, size_t len) {
  if (!srv || (!data && len))
    return H3Q_EINVAL;
  int err;
  server_worker *w;
  h3_session *h = session_of(srv, conn_id, &w, &err);
  return h ? dgram_send(&w->dgram, h, NULL, 0, data, len) : err;
}

ssize_t h3q_server_datagram_max(h3q_server *srv, uint64_t conn_id) {
  if (!srv)
    return H3Q_EINVAL;
  int err;
  server_worker *w;
  h3_session *h = session_of(srv, conn_id, &w, &err);
  return h ? dgram_max_payload(&w->dgram, h, 0) : err;
}
