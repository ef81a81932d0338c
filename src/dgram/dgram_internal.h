/* Shared by dgram.c (QUIC DATAGRAM queues) and http_dgram.c (HTTP
 * Datagrams and capsules); not used outside src/dgram. */
#ifndef H3Q_DGRAM_INTERNAL_H
#define H3Q_DGRAM_INTERNAL_H

#include "dgram/capsule.h"
#include "dgram/dgram.h"

/* Per-connection state of the datagram layer. */
typedef struct dgram_conn {
  uint64_t popped;     /* datagrams taken from quiche's receive queue */
  uint64_t overflowed; /* quiche's receive-queue drops already counted */
  u64map routes;       /* request stream id -> dgram_route */
} dgram_conn;

/* Where one request stream's HTTP Datagrams go, and its capsule stream. */
typedef struct dgram_route {
  const dgram_ctx *d;
  h3q_request *req;
  h3q_request_datagram_cb cb; /* NULL: dropped, counted */
  void *user;
  bool capsules;            /* the request body is read as capsules */
  const capsule_sink *sink; /* a layer's (WebTransport), or NULL */
  void *sink_user;
  capsule_reader rd;
} dgram_route;

/* http_dgram.c: an HTTP Datagram arrived (p: quarter stream id, then the
 * payload). */
void dgram_deliver_http(const dgram_ctx *d, h3_session *h, dgram_conn *dc,
                        const uint8_t *p, size_t len);

/* http_dgram.c: the stream is being freed: forget its route. */
void dgram_route_closed(dgram_conn *dc, uint64_t id);
void dgram_routes_free(dgram_conn *dc);

/* dgram.c: the datagram layer of h's server, with h's state in *dc; NULL
 * when the server has no datagrams. */
const dgram_ctx *dgram_ctx_of(const h3_session *h, dgram_conn **dc);

#endif
