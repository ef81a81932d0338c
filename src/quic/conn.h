/* One QUIC connection: quiche state, its timer, its HTTP/3 session and
 * streams, and the processing step run whenever something happened. */
#ifndef H3Q_QUIC_CONN_H
#define H3Q_QUIC_CONN_H

#include <quiche.h>
#include <stdbool.h>

#include "core/server.h"
#include "util/u64map.h"

#define CONN_SCID_LEN 16

struct stream;

typedef struct conn {
  h3q_server *srv;
  quiche_conn *q;
  quiche_h3_conn *h3; /* created once the handshake completes */
  uint64_t number;    /* server-unique, for logs and the request API */
  uint8_t scid[CONN_SCID_LEN];
  struct sockaddr_storage peer;
  socklen_t peer_len;
  loop_timer *timer;

  u64map streams; /* stream id -> struct stream */
  /* Request streams with data but no complete header section yet, by id:
   * value is the time (ns, never 0) they were first seen, for the header
   * timeout. quiche's HTTP/3 layer reads partial sections out of sight. */
  u64map awaiting_headers;
  /* Finished responses quiche may still be delivering (stream not yet
   * collected): a draining connection closes only after they are. */
  u64map flushing;
  uint64_t max_request_id; /* highest request stream that sent headers */
  bool any_request;
  bool going_away;    /* GOAWAY sent: no new requests, close when idle */
  uint64_t goaway_id; /* requests at or above this are refused */
  uint64_t drain_deadline_ns;
  uint64_t goaway_sent_ns; /* 0 while quiche had no room for the frame */
  struct stream *service;  /* streams to service in conn_process */

  struct conn *dirty_next;
  bool dirty;
  struct conn *prev, *next; /* srv->all */
} conn;

/* Creates a server-side connection for a client Initial. Returns NULL when
 * quiche refuses it or memory runs out. */
conn *conn_accept(h3q_server *srv, const uint8_t scid[CONN_SCID_LEN],
                  const struct sockaddr *peer, socklen_t peer_len);

/* Feeds one datagram to quiche and marks the connection dirty. */
void conn_recv(conn *c, uint8_t *buf, size_t len, const struct sockaddr *from,
               socklen_t from_len);

/* Queues c for conn_process before the loop blocks again. */
void conn_mark_dirty(conn *c);

/* Runs HTTP/3, services streams, sends packets, re-arms the timer; frees c
 * when quiche says it is closed. c must not be used after a call unless it
 * is known to be open. */
void conn_process(conn *c);

/* Sends GOAWAY: requests already received may finish until deadline_ns
 * (monotonic), newer ones are refused, then the connection closes with
 * H3_NO_ERROR. Before HTTP/3 is up, closes at once. */
void conn_goaway(conn *c, uint64_t deadline_ns);

/* Queues a GOAWAY that quiche had no room for yet (call before streams
 * write). */
void conn_retry_goaway(conn *c);

/* Refuses (resets with H3_REQUEST_REJECTED) a request stream above the
 * GOAWAY id; returns whether it did. */
bool conn_refuses_stream(conn *c, uint64_t id);

/* Notes request streams that have data but no headers yet (call before
 * polling HTTP/3), for the header timeout. */
void conn_note_new_streams(conn *c);

/* True once a going-away connection has nothing left to deliver. */
bool conn_drained(conn *c);

/* Remembers a finished stream until quiche has delivered it. */
void conn_track_flushing(conn *c, uint64_t id);

/* Housekeeping every tick: drain deadline, header and body timeouts. */
void conn_tick(conn *c, uint64_t now_ns);

/* Starts closing: CONNECTION_CLOSE with an application error code. */
void conn_close(conn *c, uint64_t app_error);

/* Frees c at once, aborting its streams (close callbacks run). */
void conn_destroy(conn *c);

#endif
