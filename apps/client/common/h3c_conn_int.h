/* Internals shared by the connection (h3c_conn.c: transport, timers,
 * socket), its HTTP/3 layer (h3c_conn_h3.c: events, scheduling) and the
 * request machinery (h3c_req.c). Not for the programs. */
#ifndef H3C_CONN_INT_H
#define H3C_CONN_INT_H

#include "h3c_conn.h"
#include "h3q.h"
#include "util/u64map.h"

struct h3c_conn {
  h3c_ctx *x;
  h3c_conn_state state;
  unsigned index;
  void *user;
  const h3c_url *origin;
  int fd;
  struct sockaddr_storage local, peer;
  socklen_t local_len, peer_len;
  ev_io io;        /* EV_READ always; EV_WRITE while tx is blocked */
  bool tx_blocked; /* socket buffer full: datagrams wait in tx */
  ev_timer timer;  /* quiche's loss/idle/ack timer */
  quiche_conn *q;
  quiche_h3_conn *h3;
  u64map map;           /* stream id -> in-flight request */
  unsigned active;      /* requests holding a stream */
  unsigned sending;     /* requests in H3C_SEND_BODY */
  h3c_req *blocked;     /* taken from next() but HEADERS did not fit yet */
  bool goaway;          /* peer sent GOAWAY: start nothing new */
  bool fail_fast;       /* see h3c_conn_set_fail_fast */
  bool graceful;        /* closed after GOAWAY or with a NO_ERROR code */
  bool unread;          /* a body read ended with data still queued */
  bool in_process;      /* guards against re-entry from hooks */
  bool closed_notified; /* the closed hook ran */
  bool close_built;     /* quiche wrote the CONNECTION_CLOSE into tx */
  udp_batch tx;         /* datagrams for the socket; held while tx_blocked */
  uint64_t t_connect, t_established;
  char err[192];
};

/* h3c_conn.c */
void h3c_conn_process(h3c_conn *c); /* h3 work, then flush and timers */
void h3c_conn_flush(h3c_conn *c);
/* h3c_conn_close with an explicit CONNECTION_CLOSE code. */
void h3c_conn_close_with(h3c_conn *c, bool app, uint64_t code, const char *why);

/* h3c_conn_h3.c */
void h3c_conn_on_established(h3c_conn *c);
void h3c_conn_h3_work(h3c_conn *c);
void h3c_conn_fail_all(h3c_conn *c, const char *why);

/* h3c_req.c */
/* Sends r's HEADERS. Returns 0 when started, 1 when the connection cannot
 * take it yet (retry later), -1 when r failed (done hook already ran). */
int h3c_req_start(h3c_conn *c, h3c_req *r);
void h3c_req_push_body(h3c_req *r);
void h3c_req_on_headers(h3c_req *r, quiche_h3_event *ev);
void h3c_req_read_body(h3c_req *r);
void h3c_req_on_finished(h3c_req *r);
void h3c_req_fail(h3c_req *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
