/* A QUIC server endpoint: one UDP socket, the connections behind it (by
 * DCID), accepting client Initials, version negotiation, and the send
 * batch. It runs one application protocol (conn_app_ops) and knows
 * nothing of HTTP. */
#ifndef H3Q_QUIC_ENDPOINT_H
#define H3Q_QUIC_ENDPOINT_H

#include <quiche.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "h3q.h"
#include "io/loop.h"
#include "io/udp.h"
#include "quic/admission.h"
#include "quic/cid.h"
#include "quic/conn.h"
#include "quic/conn_table.h"
#include "quic/handoff.h"
#include "quic/secrets.h"
#include "quic/stateless_reset.h"

typedef struct quic_endpoint {
  const loop_ops *lo;
  loop *loop;
  int fd;
  /* The header split's long-header socket (quic/rx_split.h), -1 without;
   * rx_split_ways: the eBPF program's split_ways (0: split off). */
  int long_fd;
  size_t rx_split_ways;
  /* The housekeeping sweep (endpoint_tick): the next connection, while
   * one is under way. */
  conn *tick_next;
  bool tick_midway;
  bool rx_long_busy;        /* its last read was full, and more waited */
  uint64_t rx_long_cost_ns; /* recent cost of one of its datagrams */
  struct sockaddr_storage local;
  socklen_t local_len;
  /* Bound to a wildcard address (0.0.0.0, ::): each datagram's own
   * destination (IP_PKTINFO) is what quiche sees as the local address, and
   * answers leave from it. rx_to is that of the datagram being handled
   * (ep->local when unknown). */
  bool wildcard;
  struct sockaddr_storage rx_to;
  socklen_t rx_to_len;
  udp_batch rx, tx;
  quiche_config *qcfg; /* owned */

  conn_table conns; /* by the SCIDs we issue */
  conn *all;        /* every live connection (doubly linked) */
  conn *dirty;      /* connections to process before the loop blocks */
  /* The socket buffer is full: tx keeps what it could not send, the fd is
   * watched for writability, and no connection asks quiche for packets
   * until tx drained; those that wanted to are in tx_waiters. */
  bool tx_blocked;
  conn *tx_waiters;
  /* Our SCID for a new connection is HMAC(secrets.cid, client's DCID), so
   * a retransmitted Initial finds the connection it already created (and,
   * after a Retry, the client's new DCID is that same SCID). */
  quic_secrets secrets;
  /* The layout of every CID we issue: QUIC-LB's config rotation and
   * server id, or unroutable (quic/cid.h). */
  cid_layout cids;
  admission admission; /* Retry first: always, or under load */
  /* NEW_TOKEN tokens: sent and accepted this long after they were made
   * (h3q_config.new_token_lifetime); 0: none sent or accepted. */
  uint64_t new_token_lifetime_ms;
  reset_limiter resets;      /* stateless resets sent */
  bool client_cert_required; /* h3q_config.client_cert_required */
  const uint8_t *alpn_wire;  /* the ALPN list we serve (borrowed) */
  size_t alpn_wire_len;
  /* The server's event loop this endpoint belongs to (0..workers-1): every
   * worker owns one endpoint with its own socket on the same port. */
  uint8_t worker;
  /* Connection numbers are worker + k * workers, so they are unique across
   * a server's workers and name the worker that owns the connection. */
  uint64_t next_conn_number;
  uint64_t conn_number_step;

  size_t max_connections;
  /* Open connections of every worker of the server, for max_connections
   * (shared; points at own_conns when the endpoint is alone). */
  atomic_size_t *open_conns;
  atomic_size_t own_conns;
  uint64_t connections_refused; /* Initials dropped at max_connections */
  bool pacing;    /* honour send_info.at (h3q_config.enable_pacing) */
  bool accepting; /* false while draining: new Initials are dropped */
  const char *qlog_dir, *keylog_path; /* borrowed from the server config */
  h3q_server_stats *stats;

  const conn_app_ops *app;
  void *app_ctx;

  /* Steering between the endpoints of the port (quic/handoff.h): every
   * CID we issue carries identity (generation << 5 | worker) at
   * cid_identity_offset. */
  uint8_t generation; /* 0..7, claimed by handoff_open (worker 0's) */
  /* Worker 0's endpoint, for the workers after it (they take its
   * generation and eBPF map); NULL for worker 0. */
  const struct quic_endpoint *first_worker;
  /* 1 + the QUIC-LB server id's length: the first nonce byte (quic/cid.h;
   * the BPF program reads it there) */
  size_t cid_identity_offset;
  /* The datagram being handled was handed to us by another endpoint: it
   * is never handed on (one hop). */
  bool rx_handed_in;
  handoff handoff;
} quic_endpoint;

static inline uint8_t endpoint_identity(const quic_endpoint *ep) {
  return handoff_identity(ep->generation, ep->worker);
}

/* Counts a datagram read from the socket, or handed in by another server
 * of the port. */
static inline void endpoint_count_received(quic_endpoint *ep, size_t len) {
  if (ep->rx_handed_in) {
    ep->stats->packets_handed_in++;
  } else {
    ep->stats->udp_datagrams_received++;
    ep->stats->udp_bytes_received += len;
  }
}

/* Counts a dropped datagram (the total and its reason). */
static inline void endpoint_count_drop(quic_endpoint *ep, h3q_drop_reason why) {
  ep->stats->packets_dropped++;
  ep->stats->packets_dropped_by[why]++;
}

/* Opens the socket and tables. Set ep->worker, ep->first_worker (for
 * workers after the first) and ep->open_conns (NULL: this endpoint's own
 * count) before. Returns H3Q_OK, H3Q_ECONFIG (bad
 * quic_lb_* fields), H3Q_EIO (message in err) or H3Q_ENOMEM. qcfg is owned
 * by the endpoint from now on, even on failure; secrets are copied. */
int endpoint_init(quic_endpoint *ep, const h3q_config *cfg, quiche_config *qcfg,
                  const quic_secrets *secrets, char *err, size_t errlen);

/* Serves new connections with qcfg from now on (a reloaded certificate);
 * open connections keep the TLS context they started with. Takes qcfg. */
void endpoint_swap_qconfig(quic_endpoint *ep, quiche_config *qcfg);

/* Closes the UDP socket (after the last sends): the port's other sockets
 * get what the kernel would have given this one. For an endpoint whose
 * loop ended while others of the port still run (a worker that drained
 * before the others): an open socket nobody reads would swallow the
 * datagrams hashed to it. */
void endpoint_stop_receiving(quic_endpoint *ep);

/* Destroys every connection, closes the socket, frees the tables. */
void endpoint_free(quic_endpoint *ep);

/* Loop callback for the readable socket (arg is the endpoint). */
void endpoint_on_readable(void *arg);

/* Reads one batch of at most want datagrams (1..rx.cap; 0: rx.cap) from
 * fd (the endpoint's socket or its long-header socket) and handles them;
 * admits: this socket carries new clients' Initials, so its backlog feeds
 * admission (quic/admission.h). Returns the messages read, or -1
 * (logged). */
int endpoint_read_batch(quic_endpoint *ep, int fd, size_t want, bool admits);

/* Processes one datagram (buf is modified in place), addressed to
 * ep->rx_to. */
void endpoint_handle_datagram(quic_endpoint *ep, uint8_t *buf, size_t len,
                              const struct sockaddr *from, socklen_t from_len);

/* Processes a datagram another endpoint of the port handed over (see
 * quic/handoff.h): sent by the client at `from` to our port at `to`. */
void endpoint_handle_handed_in(quic_endpoint *ep, uint8_t *buf, size_t len,
                               const struct sockaddr *from, socklen_t from_len,
                               const struct sockaddr *to, socklen_t to_len);

/* Processes dirty connections (bounded rounds) and flushes the send batch.
 * Returns true when work remains (do not block). */
bool endpoint_process(quic_endpoint *ep);

/* Hands the queued datagrams to the kernel without waiting; what does not
 * fit stays queued and the endpoint waits for writability (tx_blocked). */
void endpoint_flush(quic_endpoint *ep);

/* The buffer for the next datagram to send (ep->tx.buf_size bytes; queue
 * it with udp_batch_push on &ep->tx), flushing a full batch first; NULL
 * while the socket buffer is full. */
uint8_t *endpoint_tx_slot(quic_endpoint *ep);

/* Queues the datagram written into the next slot, len bytes, to `to` from
 * `from` (the local address quiche chose; used on a wildcard socket). */
void endpoint_tx_push(quic_endpoint *ep, size_t len, const struct sockaddr *to,
                      socklen_t to_len, const struct sockaddr *from,
                      socklen_t from_len);

/* c stopped sending because endpoint_tx_slot said the socket is full: it
 * is marked dirty (processed again) once the backlog drained. */
void endpoint_wait_writable(quic_endpoint *ep, conn *c);

/* Forgets c (about to be freed) in the list of endpoint_wait_writable. */
void endpoint_forget(quic_endpoint *ep, conn *c);

/* Housekeeping (the application's tick) for the next at most max
 * connections of the current sweep: one pass over every connection,
 * resumed where the last call stopped, so that 10,000 connections are not
 * swept in one go while established ones wait (a whole sweep of 10,000
 * idle connections held requests up for about 3 ms). Connections opened
 * during a sweep wait for the next one. Returns true when this call
 * finished the sweep (the next call starts a new one). */
bool endpoint_tick(quic_endpoint *ep, uint64_t now_ns, size_t max);

/* Keeps the sweep's place when c (about to be freed) is its next. */
void endpoint_tick_forget(quic_endpoint *ep, conn *c);

/* The open connection with this number, or NULL. */
conn *endpoint_find(quic_endpoint *ep, uint64_t number);

#endif
