/* The public datagram API: connection-scoped QUIC DATAGRAMs, and routes
 * for HTTP Datagrams. */
#include "core/server.h"
#include "quic/conn.h"

void server_free_datagrams(h3q_server *srv) {
  cb_routes_free(&srv->dgram_routes);
  dgram_ctx_free(&srv->dgram);
}

int h3q_server_route_datagram(h3q_server *srv, const char *method,
                              const char *pattern, h3q_request_datagram_cb cb,
                              void *user) {
  if (!srv || !method || !pattern || !cb)
    return H3Q_EINVAL;
  if (!srv->dgram.http || srv->running)
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
  h3q_server *srv = user;
  if (srv->on_datagram)
    srv->on_datagram(srv, h3_session_conn(h)->number, p, len,
                     srv->datagram_user);
  else
    srv->stats.datagrams_unroutable++;
}

int server_init_datagrams(h3q_server *srv) {
  int rc = dgram_ctx_init(&srv->dgram, &srv->h3, &srv->cfg.c, &srv->stats);
  if (rc != H3Q_OK)
    return rc;
  srv->dgram.on_datagram = on_conn_datagram;
  srv->dgram.user = srv;
  return H3Q_OK;
}

int h3q_server_on_datagram(h3q_server *srv, h3q_datagram_cb cb, void *user) {
  if (!srv)
    return H3Q_EINVAL;
  if (!srv->cfg.c.enable_dgram || srv->dgram.http)
    return H3Q_ESTATE;
  srv->on_datagram = cb;
  srv->datagram_user = user;
  return H3Q_OK;
}

/* The open session of connection conn_id, or NULL with *err set. */
static h3_session *session_of(h3q_server *srv, uint64_t conn_id, int *err) {
  *err = H3Q_OK;
  if (!srv->cfg.c.enable_dgram || srv->dgram.http) {
    *err = H3Q_ESTATE;
    return NULL;
  }
  conn *c = endpoint_find(&srv->ep, conn_id);
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
  h3_session *h = session_of(srv, conn_id, &err);
  return h ? dgram_send(&srv->dgram, h, NULL, 0, data, len) : err;
}

ssize_t h3q_server_datagram_max(h3q_server *srv, uint64_t conn_id) {
  if (!srv)
    return H3Q_EINVAL;
  int err;
  h3_session *h = session_of(srv, conn_id, &err);
  return h ? dgram_max_payload(&srv->dgram, h, 0) : err;
}
