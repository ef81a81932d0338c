/* One HTTP/3 request/response exchange. The program allocates it (and owns
 * it again once the done hook ran); the connection drives it through two
 * independent state machines: sending (headers, then body) and receiving
 * (headers, body, trailers). */
#ifndef H3C_REQ_H
#define H3C_REQ_H

#include "h3c_body_src.h"
#include "h3c_sink.h"
#include "h3c_tmpl.h"

#include <stdbool.h>
#include <stdint.h>

#include <ev.h>

struct h3c_conn;

typedef enum h3c_send_state {
  H3C_SEND_QUEUED, /* no stream yet */
  H3C_SEND_BODY,   /* HEADERS sent, body still flowing */
  H3C_SEND_DONE,   /* FIN sent (or the peer stopped our sending side) */
} h3c_send_state;

typedef enum h3c_recv_state {
  H3C_RECV_HEADERS, /* waiting for the final (non-1xx) response headers */
  H3C_RECV_BODY,    /* body (and maybe trailers) arriving */
  H3C_RECV_DONE,    /* FIN read: complete */
} h3c_recv_state;

/* Which header section a header belongs to (header hook). */
typedef enum h3c_hdr_kind {
  H3C_HDR_INFO,    /* interim 1xx response */
  H3C_HDR_FINAL,   /* the response headers */
  H3C_HDR_TRAILER, /* trailer section after the body */
} h3c_hdr_kind;

typedef struct h3c_req {
  const h3c_tmpl *tmpl;
  void *user;            /* the program's own per-request data */
  struct h3c_conn *conn; /* set when handed to a connection */
  int64_t stream_id;     /* -1 until HEADERS were sent */
  h3c_send_state send;
  h3c_recv_state recv;
  int status;      /* final status, 0 until known */
  int64_t clen;    /* response content-length, -1 if absent or invalid */
  bool failed;     /* err says why */
  bool stalled;    /* --stall-after reached, body reads paused */
  bool stall_done; /* the one stall is over: read freely */
  bool retryable;  /* failed before the server processed it (GOAWAY): the
                      program may send it again on another connection */
  h3c_body_src src;
  h3c_sink sink;
  uint64_t t_start; /* HEADERS sent (monotonic ns) */
  uint64_t t_end;   /* completed or failed */
  ev_timer stall_timer;
  char err[192];
} h3c_req;

/* Prepares r for template t; user is returned untouched in hooks. */
void h3c_req_init(h3c_req *r, const h3c_tmpl *t, void *user);

/* Milliseconds from HEADERS sent to completion (0 if never sent). */
double h3c_req_ms(const h3c_req *r);

#endif
