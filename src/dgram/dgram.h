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

#endif
