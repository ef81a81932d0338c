/* QUIC DATAGRAM (RFC 9221) on HTTP/3 sessions: the queue policy over
 * quiche's datagram queues (the oldest datagram gives way when a queue is
 * full, and every drop is counted), the payload size limit, and delivery
 * of what arrives: to a connection-scoped receiver, or, with HTTP
 * Datagrams (RFC 9297), to the request stream a datagram names.
 *
 * Layering: an h3_layer (h3/session.h) above the HTTP/3 session; it reads
 * quiche's datagram queue once per process round and never touches
 * streams. */
#ifndef H3Q_DGRAM_DGRAM_H
#define H3Q_DGRAM_DGRAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "h3/session.h"
#include "h3q.h"
#include "util/u64map.h"

/* Receives one datagram that is not an HTTP Datagram (connection scope). */
typedef void (*dgram_conn_cb)(h3_session *h, const uint8_t *p, size_t len,
                              void *user);

/* A server's datagram settings and scratch space (one loop thread). */
typedef struct dgram_ctx {
  size_t max_payload; /* largest QUIC DATAGRAM payload, both directions */
  bool http;          /* HTTP Datagrams: payloads start with a stream id */
  h3q_server_stats *stats;
  dgram_conn_cb on_datagram; /* connection scope; NULL drops (counted) */
  void *user;
  uint8_t *rx, *tx; /* max_payload (+ prefix room) bytes each */
  int layer;        /* our index among the session's layers */
} dgram_ctx;

/* Sets d up from a validated public config and registers it as a layer
 * of cfg when datagrams are enabled (otherwise d stays inert). Returns
 * H3Q_OK, H3Q_ENOMEM or H3Q_ETOOLARGE (no room for another layer). */
int dgram_ctx_init(dgram_ctx *d, h3_config *cfg, const h3q_config *pub,
                   h3q_server_stats *stats);
void dgram_ctx_free(dgram_ctx *d);

/* Queues one QUIC DATAGRAM of prefix (may be empty) followed by payload.
 * When quiche's send queue is full the oldest queued datagram is dropped
 * (counted in datagrams_send_dropped) to make room, so a call that
 * returns H3Q_OK has always queued its datagram. Errors: H3Q_ESTATE
 * (datagrams are off, or the peer did not enable them), H3Q_ETOOLARGE
 * (over max_payload or what fits in a packet), H3Q_ECLOSED. */
int dgram_send(const dgram_ctx *d, h3_session *h, const uint8_t *prefix,
               size_t prefix_len, const void *payload, size_t len);

/* The largest payload dgram_send takes now after a prefix of prefix_len
 * bytes: H3Q_ESTATE when datagrams cannot be sent. */
ssize_t dgram_max_payload(const dgram_ctx *d, h3_session *h, size_t prefix_len);

/* ---- HTTP Datagrams and capsules on request streams (http_dgram.c) ---- */

/* A layer's view of a request's capsule stream (WebTransport's CONNECT
 * stream). DATAGRAM capsules go to the datagram receiver instead. */
typedef struct capsule_sink {
  /* A capsule of another type; value NULL when larger than
   * CAPSULE_VALUE_MAX (skipped). Return false to stop reading. */
  bool (*on_capsule)(h3q_request *req, uint64_t type, const uint8_t *value,
                     size_t len, void *user);
  /* The client ended its side; truncated when it ended inside a capsule
   * (the message is then malformed). */
  void (*on_end)(h3q_request *req, bool truncated, void *user);
} capsule_sink;

/* Sends req's HTTP Datagrams to cb (see h3q_request_on_datagram). With a
 * sink, the request body is always a capsule stream whose other capsules
 * and end go to the sink (which then owns the response's end); without
 * one, it is when the request says "capsule-protocol: ?1". Marks the
 * request a tunnel (h3_request_set_tunnel) when capsules are read.
 * Errors: H3Q_ESTATE (HTTP Datagrams off), H3Q_ECLOSED, H3Q_ENOMEM. */
int dgram_route_request(h3q_request *req, h3q_request_datagram_cb cb,
                        void *user, const capsule_sink *sink, void *sink_user);

/* Sends one HTTP Datagram for req (see h3q_response_send_datagram). */
int dgram_request_send(h3q_request *req, const void *data, size_t len);

/* The largest HTTP Datagram payload req's stream can send now as a QUIC
 * DATAGRAM (its quarter id counted), or H3Q_ESTATE. */
ssize_t dgram_request_max(h3q_request *req);

/* Appends a whole capsule to req's response, queued until it fits
 * (h3_response_queue): for capsules that must arrive (CLOSE, DRAIN). */
int dgram_response_queue_capsule(h3q_request *req, uint64_t type,
                                 const void *value, size_t len);

#endif
