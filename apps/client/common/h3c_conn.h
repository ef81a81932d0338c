/* A client QUIC+HTTP/3 connection driven by libev, and the context shared
 * by the connections of one thread and its loop. Requests come
 * from the program through the next hook whenever the connection can start
 * one (parallel limit, the peer's stream credit); results go back through
 * the done hook. Hooks may call ev_break but must not close or free
 * connections (do that after ev_run returns or from the program's own
 * watchers). */
#ifndef H3C_CONN_H
#define H3C_CONN_H

#include "h3c_quic_cfg.h"
#include "h3c_req.h"
#include "h3c_sink.h"
#include "h3c_url.h"
#include "io/udp.h"

#include <stdbool.h>
#include <stdint.h>

#include <ev.h>
#include <quiche.h>

typedef struct h3c_conn h3c_conn;

typedef struct h3c_hooks {
  /* Next request for c, or NULL for none now. */
  h3c_req *(*next)(void *user, h3c_conn *c);
  /* r finished (r->failed tells how); the program owns r again. */
  void (*done)(void *user, h3c_req *r);
  /* One response header; may be NULL. */
  void (*header)(void *user, h3c_req *r, h3c_hdr_kind kind, const uint8_t *name,
                 size_t name_len, const uint8_t *value, size_t value_len);
  /* Handshake complete; may be NULL. */
  void (*established)(void *user, h3c_conn *c);
  /* The connection is gone and its requests were failed; may be NULL. */
  void (*closed)(void *user, h3c_conn *c);
  void *user;
} h3c_hooks;

typedef struct h3c_ctx {
  struct ev_loop *loop;
  quiche_config *qcfg;
  quiche_h3_config *h3cfg;
  size_t max_payload;
  unsigned parallel;    /* max concurrent requests per connection */
  bool verify_peer;     /* check IP SANs for IP-literal hosts */
  h3c_sink_opts sink;   /* applied to every response body */
  uint64_t stall_after; /* --stall-after bytes (with stall_s > 0) */
  double stall_s;       /* --stall-ms / 1000; 0 disables */
  h3c_hooks hooks;
  udp_batch rx; /* shared receive arena */
  uint8_t *buf; /* shared body read/write buffer */
  size_t buf_len;
} h3c_ctx;

/* Creates the shared quiche configs and buffers. Returns 0, or -1 with a
 * message in err. */
int h3c_ctx_init(h3c_ctx *x, struct ev_loop *loop, const h3c_tls_opts *tls,
                 char *err, size_t errlen);
void h3c_ctx_free(h3c_ctx *x);

typedef enum h3c_conn_state {
  H3C_CONN_CONNECTING, /* handshake in progress */
  H3C_CONN_READY,      /* HTTP/3 up: requests flow */
  H3C_CONN_CLOSING,    /* we sent CONNECTION_CLOSE; no more requests */
  H3C_CONN_CLOSED,     /* quiche reports closed; only free remains */
} h3c_conn_state;

/* Starts a connection to origin's host at peer and sends the first flight.
 * Returns NULL with a message in err. */
h3c_conn *h3c_conn_new(h3c_ctx *x, const h3c_url *origin,
                       const struct sockaddr *peer, socklen_t peer_len,
                       unsigned index, char *err, size_t errlen);

/* Asks c to pull requests from the next hook now and send them. */
void h3c_conn_kick(h3c_conn *c);

/* Fails in-flight requests with why, sends CONNECTION_CLOSE (H3_NO_ERROR)
 * and stops using c. Safe in any state. */
void h3c_conn_close(h3c_conn *c, const char *why);

void h3c_conn_free(h3c_conn *c);

/* What the programs give h3c_conns_close: a few PTOs on an established
 * path. */
#define H3C_CLOSE_WAIT_S 0.5

/* Closes every open connection of conns (NULL entries skipped) like
 * h3c_conn_close, then runs their loop until each CONNECTION_CLOSE has
 * reached the socket, for max_wait_s at most. quiche sends a close only
 * within the congestion window, so one right after a burst of request
 * body waits for the peer's ACKs; a program that exits before it leaves
 * the server holding the connection until its idle or drain timeout.
 * All of conns share one loop; they are not freed. */
void h3c_conns_close(h3c_conn *const *conns, size_t n, const char *why,
                     double max_wait_s);

h3c_conn_state h3c_conn_state_get(const h3c_conn *c);
unsigned h3c_conn_index(const h3c_conn *c);
/* Handshake duration in ns (0 while not established). */
uint64_t h3c_conn_handshake_ns(const h3c_conn *c);
/* Why the connection closed ("" while open). */
const char *h3c_conn_error(const h3c_conn *c);
/* True when the server ended the connection deliberately (GOAWAY, or a
 * CONNECTION_CLOSE with NO_ERROR/H3_NO_ERROR): requests it did not take
 * may be retried on a new connection. */
bool h3c_conn_graceful(const h3c_conn *c);
/* With on, an ICMP error (port unreachable) during the handshake closes c
 * at once instead of leaving it to the idle timeout or the deadline. Meant
 * for replacement connections; first connections keep waiting. */
void h3c_conn_set_fail_fast(h3c_conn *c, bool on);
void h3c_conn_set_user(h3c_conn *c, void *user);
void *h3c_conn_user(const h3c_conn *c);

#endif
