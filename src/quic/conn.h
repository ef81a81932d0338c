/* One QUIC connection: quiche state, its timer, and the application
 * session on top (HTTP/3), reached only through conn_app_ops. A
 * connection knows its endpoint (socket, loop, tables), never the server
 * object or HTTP. */
#ifndef H3Q_QUIC_CONN_H
#define H3Q_QUIC_CONN_H

#include <quiche.h>
#include <stdbool.h>
#include <sys/socket.h>

#include "h3q.h"
#include "io/loop.h"
#include "quic/cid.h"

/* Connection IDs we keep issued per connection beyond the first: what the
 * peer's active_connection_id_limit allows, capped here (RFC 9000 §5.1.1:
 * a peer that allows more is not owed more). */
#define CONN_SPARE_SCIDS 7
/* The first SCID stays registered after the peer retires it (a late
 * Initial may name it), so one more slot holds its replacement. */
#define CONN_SCID_SLOTS (CONN_SPARE_SCIDS + 1)

typedef struct conn conn;
struct quic_endpoint;

/* What an application protocol provides to run on a connection. */
typedef struct conn_app_ops {
  /* QUIC is established (or 0-RTT data can be read): creates the
   * per-connection session. NULL refuses (the connection closes with
   * internal_error). */
  void *(*start)(conn *c, void *app_ctx);
  /* Something happened (packets, timers, API calls): read streams and
   * write what can be written. May close the connection. */
  void (*process)(void *app);
  /* Housekeeping with the current time (timeouts, drain deadlines). */
  void (*tick)(void *app, uint64_t now_ns);
  /* Graceful close: finish what was received by deadline_ns, then close. */
  void (*goaway)(void *app, uint64_t deadline_ns);
  /* The connection is gone: free the session (in-flight work aborts). */
  void (*destroy)(void *app);
  uint64_t no_error;       /* application code for a clean close */
  uint64_t internal_error; /* application code for our own failures */
} conn_app_ops;

struct conn {
  struct quic_endpoint *ep;
  quiche_conn *q;
  void *app;       /* the session, once started */
  uint64_t number; /* endpoint-unique, for logs and the request API */
  /* Our CIDs are ep->cids.len bytes long (quic/cid.h). */
  uint8_t scid[CID_LAYOUT_MAX_LEN];
  /* Spare SCIDs issued with NEW_CONNECTION_ID (each in the endpoint's
   * table until quiche reports it retired). */
  uint8_t spare[CONN_SCID_SLOTS][CID_LAYOUT_MAX_LEN];
  bool spare_used[CONN_SCID_SLOTS];
  bool tls_checked;    /* ALPN and client certificate checked once */
  bool tls_refused;    /* ... and found wanting: closing, no application */
  bool new_token_sent; /* conn_send_new_token did its one token */
  /* The peer's address where quiche last moved the connection (NAT
   * rebinding or migration, quic/conn_path.c), for logs. */
  struct sockaddr_storage peer;
  socklen_t peer_len;
  uint64_t migrations; /* path changes quiche made (for logs) */
  loop_timer *timer;
  /* Goaway asked before the session started (mid-handshake): the session
   * gets it, with this deadline, after its first round. */
  bool going_away;
  uint64_t goaway_deadline_ns;
  /* Counts the times quiche was asked for packets: bytes given to quiche
   * since the last change are certainly still unsent. */
  uint64_t send_generation;

  /* Pacing (see quic/pacing.h): a packet quiche made that is not due yet
   * waits here, and the connection asks for no more, until pace_timer. */
  loop_timer *pace_timer;
  uint8_t *held;   /* ep->tx.buf_size bytes, allocated on first use */
  size_t held_len; /* 0: nothing held */
  uint64_t held_at_ns;
  struct sockaddr_storage held_to, held_from;
  socklen_t held_to_len, held_from_len;

  /* Anti-amplification (RFC 9000 section 8.1), enforced here as well as
   * in quiche: quiche 0.30 does not charge the padding of Initial
   * datagrams to its budget, so its PTO probes took a lone Initial to
   * over 5x. Until the handshake completes (the client's Finished is in a
   * Handshake packet, which validates its address) at most 3x the bytes
   * received are sent; packets beyond are dropped as if lost. */
  bool addr_validated;
  uint64_t unvalidated_rx, unvalidated_tx;
  /* Counted in ep->admission as a handshake from an unvalidated address,
   * until addr_validated or the end of the connection. */
  bool handshake_counted;

  conn *dirty_next;
  bool dirty;
  unsigned rx_unprocessed; /* datagrams received since conn_process */
  conn *tx_wait_next;      /* ep->tx_waiters */
  bool tx_waiting;         /* stopped sending: the socket buffer was full */
  conn *prev, *next;       /* ep->all */
};

/* Sets the peer's address (conn_path.c). */
void conn_path_init(conn *c, const struct sockaddr *peer, socklen_t len);

/* Sets addr_validated once the handshake completed (the client's
 * Finished proved its address) and leaves the admission count. */
void conn_check_validated(conn *c);

/* Drains quiche's path events (a migration moves c->peer). */
void conn_path_events(conn *c);

/* Creates a server-side connection for a client Initial, with scid
 * (ep->cids.len bytes) as its first SCID; odcid is the client's original
 * DCID after a Retry (else NULL); validated: a Retry or NEW_TOKEN token
 * proved the client's address. Our stateless-reset token for scid goes
 * into the transport parameters. Returns NULL when quiche refuses it or
 * memory runs out. */
conn *conn_accept(struct quic_endpoint *ep, const uint8_t *scid,
                  const uint8_t *odcid, size_t odcid_len, bool validated,
                  const struct sockaddr *peer, socklen_t peer_len);

/* Once the handshake is confirmed, queues one NEW_TOKEN token for the
 * client's next connection (quic/conn_token.c; new_token_lifetime). */
void conn_send_new_token(conn *c);

/* Issues spare SCIDs up to what the peer accepts (each registered in the
 * endpoint's table, with its stateless-reset token) and unregisters those
 * quiche reports retired. */
void conn_update_scids(conn *c);

/* Unregisters every spare SCID (the connection is going away). */
void conn_forget_scids(conn *c);

/* Whether the client presented a certificate (verified against the
 * configured CA: quiche fails the handshake otherwise). */
bool conn_peer_cert_verified(const conn *c);

/* Feeds one datagram to quiche and marks the connection dirty. */
void conn_recv(conn *c, uint8_t *buf, size_t len, const struct sockaddr *from,
               socklen_t from_len);

/* Moves c's packets from quiche into the endpoint's send batch, within
 * pacing, the socket buffer and a per-call burst limit (conn_send.c). */
void conn_send_packets(conn *c);

/* Queues a held packet whatever its time (the connection is closing). */
void conn_release_held(conn *c);

/* Queues c for conn_process before the loop blocks again. */
void conn_mark_dirty(conn *c);
/* conn_process at once, out of the dirty list's order (may destroy c). */
void conn_process_now(conn *c);

/* Runs the application, sends packets, re-arms the timer; frees c when
 * quiche says it is closed. c must not be used after a call unless it is
 * known to be open. */
void conn_process(conn *c);

/* Asks the application to close gracefully by deadline_ns; before it
 * started, right after its first round (so a client whose handshake was
 * under way gets the requests it sent with it served, and GOAWAY). */
void conn_goaway(conn *c, uint64_t deadline_ns);

/* Starts closing: CONNECTION_CLOSE with an application error code (the
 * transport's APPLICATION_ERROR before the handshake completed). */
void conn_close(conn *c, uint64_t app_error);

/* Why c ended, from quiche's view (for h3q_server_stats). */
h3q_close_reason conn_close_reason(const conn *c);

/* Frees c at once, destroying its session. */
void conn_destroy(conn *c);

#endif
