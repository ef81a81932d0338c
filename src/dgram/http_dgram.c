/* HTTP Datagrams (RFC 9297): the quarter stream id that ties a QUIC
 * DATAGRAM to its request stream, per-request receivers, and the Capsule
 * Protocol on request streams (DATAGRAM capsules, and capsules of other
 * types for a layer such as WebTransport). */
#include <stdlib.h>
#include <string.h>

#include "dgram/dgram_internal.h"
#include "h3/stream.h"
#include "util/log.h"
#include "util/varint.h"

/* Quarter stream ids are below 2^60 (RFC 9297 section 2.1). */
#define QUARTER_ID_LIMIT (UINT64_C(1) << 60)

void dgram_deliver_http(const dgram_ctx *d, h3_session *h, dgram_conn *dc,
                        const uint8_t *p, size_t len) {
  uint64_t quarter;
  ssize_t n = varint_decode(p, len, &quarter);
  if (n < 0 || quarter >= QUARTER_ID_LIMIT) {
    h3_session_fail(h, H3Q_H3_DATAGRAM_ERROR,
                    n < 0 ? "datagram without a quarter stream id"
                          : "quarter stream id >= 2^60");
    return;
  }
  dgram_route *r = u64map_get(&dc->routes, quarter * 4);
  if (!r || !r->cb || !h3_request_is_open(r->req)) {
    d->stats->datagrams_unroutable++; /* unknown, closed, or no receiver */
    return;
  }
  r->cb(r->req, p + n, len - (size_t)n, r->user);
}

static void route_free(dgram_route *r) {
  capsule_reader_free(&r->rd);
  free(r);
}

void dgram_route_closed(dgram_conn *dc, uint64_t id) {
  dgram_route *r = u64map_del(&dc->routes, id);
  if (r)
    route_free(r);
}

void dgram_routes_free(dgram_conn *dc) {
  for (size_t i = 0; i < dc->routes.cap; i++)
    if (dc->routes.slots[i].value)
      route_free(dc->routes.slots[i].value);
  u64map_free(&dc->routes);
}

/* ---- capsules on the request body ---- */

static bool on_capsule(uint64_t type, const uint8_t *value, size_t len,
                       void *user) {
  dgram_route *r = user;
  if (type != CAPSULE_DATAGRAM) {
    if (r->sink && r->sink->on_capsule)
      return r->sink->on_capsule(r->req, type, value, len, r->sink_user);
    return true; /* unknown capsule types are skipped (section 3.2) */
  }
  if (!value || len > r->d->max_payload)
    r->d->stats->datagrams_too_large++;
  else if (r->cb)
    r->cb(r->req, value, len, r->user);
  else
    r->d->stats->datagrams_unroutable++;
  return h3_request_is_open(r->req);
}

static void body_data(h3q_request *req, const uint8_t *p, size_t len,
                      void *user) {
  dgram_route *r = user;
  if (capsule_feed(&r->rd, p, len, on_capsule, r) < 0)
    h3q_response_reset(h3q_request_response(req), H3Q_H3_INTERNAL_ERROR);
}

static void body_end(h3q_request *req, void *user) {
  dgram_route *r = user;
  bool truncated = !capsule_at_boundary(&r->rd);
  if (r->sink) {
    r->sink->on_end(req, truncated, r->sink_user);
    return;
  }
  /* A capsule stream ends with its message (section 3.3); a capsule cut
   * short makes the message malformed. */
  h3q_response *res = h3q_request_response(req);
  if (truncated)
    h3q_response_reset(res, H3Q_H3_MESSAGE_ERROR);
  else
    h3q_response_end(res);
}

/* RFC 9297 section 3.4: "capsule-protocol: ?1" (a Structured Field
 * boolean; parameters after it are allowed and ignored). */
static bool says_capsule_protocol(const h3q_request *req) {
  const char *v = h3q_request_header(req, "capsule-protocol");
  return v && strncmp(v, "?1", 2) == 0 && (v[2] == '\0' || v[2] == ';');
}

int dgram_route_request(h3q_request *req, h3q_request_datagram_cb cb,
                        void *user, const capsule_sink *sink, void *sink_user) {
  dgram_conn *dc;
  const dgram_ctx *d = dgram_ctx_of(h3_request_session(req), &dc);
  if (!d || !d->http)
    return H3Q_ESTATE;
  if (!h3_request_is_open(req))
    return H3Q_ECLOSED;
  uint64_t id = h3q_request_stream_id(req);
  dgram_route *r = u64map_get(&dc->routes, id);
  if (!r) {
    r = calloc(1, sizeof *r);
    if (!r || u64map_put(&dc->routes, id, r) != 0) {
      free(r);
      return H3Q_ENOMEM;
    }
    r->d = d;
    r->req = req;
  }
  r->cb = cb;
  r->user = user;
  if (sink) {
    r->sink = sink;
    r->sink_user = sink_user;
  }
  if (!r->capsules && (sink || says_capsule_protocol(req))) {
    r->capsules = true;
    h3_request_set_tunnel(req);
    h3q_request_on_body(req, body_data, body_end, r);
  }
  return H3Q_OK;
}

int h3q_request_on_datagram(h3q_request *req, h3q_request_datagram_cb cb,
                            void *user) {
  return dgram_route_request(req, cb, user, NULL, NULL);
}

bool h3q_request_uses_capsules(const h3q_request *req) {
  dgram_conn *dc;
  if (!dgram_ctx_of(h3_request_session(req), &dc))
    return false;
  const dgram_route *r = u64map_get(&dc->routes, h3q_request_stream_id(req));
  return r && r->capsules;
}

/* A DATAGRAM capsule, sent whole or not at all. */
static int send_capsule(const dgram_ctx *d, h3q_request *req, const void *data,
                        size_t len) {
  if (len > d->max_payload)
    return H3Q_ETOOLARGE;
  h3q_response *res = h3q_request_response(req);
  uint8_t hdr[16];
  size_t hlen = capsule_header_encode(hdr, CAPSULE_DATAGRAM, len);
  ssize_t room = h3q_response_capacity(res);
  if (room < 0)
    return (int)room;
  if ((size_t)room < hlen + len) {
    d->stats->datagrams_send_dropped++;
    return H3Q_EAGAIN;
  }
  /* One write, so the capsule cannot be split by a partial write. */
  memcpy(d->tx, hdr, hlen);
  if (len)
    memcpy(d->tx + hlen, data, len);
  ssize_t n = h3q_response_write(res, d->tx, hlen + len);
  if (n < 0)
    return (int)n;
  return (size_t)n == hlen + len ? H3Q_OK : H3Q_EINTERNAL;
}

int dgram_request_send(h3q_request *req, const void *data, size_t len) {
  dgram_conn *dc;
  h3_session *h = h3_request_session(req);
  const dgram_ctx *d = dgram_ctx_of(h, &dc);
  if (!d || !d->http)
    return H3Q_ESTATE;
  if (!h3_request_is_open(req))
    return H3Q_ECLOSED;
  if (!data && len)
    return H3Q_EINVAL;
  const h3_settings *peer = h3_session_peer_settings(h);
  if (peer && peer->h3_datagram && dgram_max_payload(d, h, 0) >= 0) {
    uint8_t prefix[8];
    size_t plen =
        varint_encode(prefix, sizeof prefix, h3q_request_stream_id(req) / 4);
    return dgram_send(d, h, prefix, plen, data, len);
  }
  dgram_route *r = u64map_get(&dc->routes, h3q_request_stream_id(req));
  if (r && r->capsules)
    return send_capsule(d, req, data, len);
  return H3Q_ESTATE;
}

ssize_t dgram_request_max(h3q_request *req) {
  dgram_conn *dc;
  h3_session *h = h3_request_session(req);
  const dgram_ctx *d = dgram_ctx_of(h, &dc);
  if (!d || !d->http)
    return H3Q_ESTATE;
  const h3_settings *peer = h3_session_peer_settings(h);
  if (!peer || !peer->h3_datagram)
    return H3Q_ESTATE;
  return dgram_max_payload(d, h, varint_len(h3q_request_stream_id(req) / 4));
}

int h3q_response_send_datagram(h3q_response *res, const void *data,
                               size_t len) {
  return dgram_request_send(h3q_response_request(res), data, len);
}

int dgram_response_queue_capsule(h3q_request *req, uint64_t type,
                                 const void *value, size_t len) {
  uint8_t hdr[16];
  size_t hlen = capsule_header_encode(hdr, type, len);
  buf b = {0};
  int rc = buf_append(&b, hdr, hlen) || buf_append(&b, value, len)
               ? H3Q_ENOMEM
               : h3_response_queue(h3q_request_response(req), b.data, b.len);
  buf_free(&b);
  return rc;
}
