/* Request machinery: sending HEADERS and the body with backpressure,
 * receiving headers/body/trailers, the slow-reader stall, completion. */
#include "h3c_conn_int.h"

#include "util/clock.h"
#include "util/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void h3c_req_init(h3c_req *r, const h3c_tmpl *t, void *user) {
  memset(r, 0, sizeof(*r));
  r->tmpl = t;
  r->user = user;
  r->stream_id = -1;
  r->clen = -1;
}

double h3c_req_ms(const h3c_req *r) {
  if (r->t_start == 0 || r->t_end < r->t_start)
    return 0;
  return clock_ns_to_ms(r->t_end - r->t_start);
}

/* Detaches r from its connection and hands it back to the program. */
static void complete(h3c_req *r) {
  h3c_conn *c = r->conn;
  h3c_ctx *x = c->x;
  r->t_end = clock_now_ns();
  ev_timer_stop(x->loop, &r->stall_timer);
  if (r->src.spec)
    h3c_body_src_free(&r->src, x->loop);
  if (r->stream_id >= 0) {
    u64map_del(&c->map, (uint64_t)r->stream_id);
    c->active--;
  }
  if (r->send == H3C_SEND_BODY)
    c->sending--;
  r->send = H3C_SEND_DONE;
  x->hooks.done(x->hooks.user, r);
}

void h3c_req_fail(h3c_req *r, const char *fmt, ...) {
  char msg[sizeof(r->err)]; /* fmt's arguments may point into r->err */
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  memcpy(r->err, msg, sizeof(msg));
  r->failed = true;
  h3c_conn *c = r->conn;
  if (r->stream_id >= 0 && !quiche_conn_is_closed(c->q)) {
    /* Tell the server we gave up so it stops sending (and we stop). */
    uint64_t sid = (uint64_t)r->stream_id;
    (void)quiche_conn_stream_shutdown(c->q, sid, QUICHE_SHUTDOWN_READ,
                                      H3Q_H3_REQUEST_CANCELLED);
    if (r->send != H3C_SEND_DONE)
      (void)quiche_conn_stream_shutdown(c->q, sid, QUICHE_SHUTDOWN_WRITE,
                                        H3Q_H3_REQUEST_CANCELLED);
  }
  LOG_DEBUG("conn %u stream %lld: failed: %s", c->index,
            (long long)r->stream_id, r->err);
  complete(r);
}

static void body_sent(h3c_req *r) {
  r->send = H3C_SEND_DONE;
  r->conn->sending--;
}

int h3c_req_start(h3c_conn *c, h3c_req *r) {
  const h3c_tmpl *t = r->tmpl;
  r->conn = c;
  if (t->body && r->src.spec == NULL &&
      h3c_body_src_init(&r->src, t->body) != 0) {
    h3c_req_fail(r, "a request body read from a pipe can be sent only once");
    return -1;
  }
  int64_t sid =
      quiche_h3_send_request(c->h3, c->q, t->hdrs, t->nhdrs, t->body == NULL);
  if (sid == QUICHE_H3_ERR_STREAM_BLOCKED ||
      sid == QUICHE_H3_TRANSPORT_ERR_STREAM_LIMIT)
    return 1;
  if (sid < 0) {
    h3c_req_fail(r, "cannot send request (quiche error %lld)", (long long)sid);
    return -1;
  }
  r->stream_id = sid;
  if (u64map_put(&c->map, (uint64_t)sid, r) != 0)
    h3c_out_of_memory();
  c->active++;
  r->t_start = clock_now_ns();
  h3c_sink_init(&r->sink, &c->x->sink);
  r->send = t->body ? H3C_SEND_BODY : H3C_SEND_DONE;
  if (t->body) {
    c->sending++;
    h3c_req_push_body(r);
  }
  return 0;
}

static void input_cb(struct ev_loop *loop, ev_io *w, int revents) {
  (void)revents;
  h3c_req *r = w->data;
  h3c_conn *c = r->conn;
  ev_io_stop(loop, w);
  if (h3c_body_src_fill(&r->src, r->err, sizeof(r->err)) != 0)
    h3c_req_fail(r, "%s", r->err);
  else
    h3c_req_push_body(r);
  h3c_conn_process(c);
}

static void wait_input(h3c_req *r) {
  if (ev_is_active(&r->src.watch))
    return; /* already waiting (push_body runs for every writable turn) */
  ev_io_init(&r->src.watch, input_cb, r->src.spec->fd, EV_READ);
  r->src.watch.data = r;
  ev_io_start(r->conn->x->loop, &r->src.watch);
}

/* Result of one quiche_h3_send_body call: 1 to continue, 0 to stop. */
static int send_chunk(h3c_req *r, const uint8_t *p, size_t n, bool fin) {
  h3c_conn *c = r->conn;
  ssize_t w =
      quiche_h3_send_body(c->h3, c->q, (uint64_t)r->stream_id, p, n, fin);
  if (w == QUICHE_H3_ERR_DONE)
    return 0; /* no capacity: quiche reports the stream writable later */
  if (w == QUICHE_H3_TRANSPORT_ERR_STREAM_STOPPED) {
    /* The server answered early and does not want the rest (RFC 9114
     * §4.1.1); the response still counts. */
    body_sent(r);
    return 0;
  }
  if (w < 0) {
    h3c_req_fail(r, "sending request body (quiche error %zd)", w);
    return 0;
  }
  h3c_body_src_consume(&r->src, (size_t)w);
  if ((size_t)w == n && fin) {
    body_sent(r);
    return 0;
  }
  return (size_t)w == n;
}

void h3c_req_push_body(h3c_req *r) {
  h3c_conn *c = r->conn;
  h3c_ctx *x = c->x;
  for (;;) {
    ssize_t cap = quiche_conn_stream_capacity(c->q, (uint64_t)r->stream_id);
    /* Read no more than the stream takes, so a file chunk is not re-read
     * many times; at least 1 byte so quiche registers writable interest. */
    size_t max = cap > 0 && (size_t)cap < x->buf_len ? (size_t)cap : x->buf_len;
    const uint8_t *p;
    size_t n;
    bool fin;
    h3c_chunk_rc rc = h3c_body_src_peek(&r->src, x->buf, max, &p, &n, &fin,
                                        r->err, sizeof(r->err));
    if (rc == H3C_CHUNK_WAIT) {
      wait_input(r);
      return;
    }
    if (rc == H3C_CHUNK_ERR) {
      h3c_req_fail(r, "%s", r->err);
      return;
    }
    if (!send_chunk(r, p, n, fin))
      return;
  }
}

typedef struct hdr_walk {
  h3c_req *r;
  h3c_hdr_kind kind;
  int status; /* -1: malformed */
} hdr_walk;

static int parse_status(const uint8_t *v, size_t n) {
  if (n != 3)
    return -1;
  int s = 0;
  for (size_t i = 0; i < 3; i++) {
    if (v[i] < '0' || v[i] > '9')
      return -1;
    s = s * 10 + (v[i] - '0');
  }
  return s >= 100 ? s : -1;
}

/* Decimal content-length, or -1 when absent/invalid (not checked then). */
static int64_t parse_clen(const uint8_t *v, size_t n) {
  if (n == 0 || n > 18)
    return -1;
  int64_t x = 0;
  for (size_t i = 0; i < n; i++) {
    if (v[i] < '0' || v[i] > '9')
      return -1;
    x = x * 10 + (v[i] - '0');
  }
  return x;
}

static int on_header(uint8_t *name, size_t nlen, uint8_t *value, size_t vlen,
                     void *argp) {
  hdr_walk *h = argp;
  if (h->kind != H3C_HDR_TRAILER && nlen == 7 &&
      memcmp(name, ":status", 7) == 0) {
    h->status = parse_status(value, vlen);
    h->kind =
        h->status >= 100 && h->status < 200 ? H3C_HDR_INFO : H3C_HDR_FINAL;
  } else if (h->kind != H3C_HDR_TRAILER && h->status == 0) {
    h->status = -1; /* a field before :status */
  } else if (h->kind == H3C_HDR_FINAL && nlen == 14 &&
             memcmp(name, "content-length", 14) == 0) {
    h->r->clen = parse_clen(value, vlen);
  }
  h3c_hooks *hk = &h->r->conn->x->hooks;
  if (hk->header)
    hk->header(hk->user, h->r, h->kind, name, nlen, value, vlen);
  return 0;
}

void h3c_req_on_headers(h3c_req *r, quiche_h3_event *ev) {
  hdr_walk h = {r, H3C_HDR_FINAL, 0};
  if (r->recv == H3C_RECV_BODY) {
    h.kind = H3C_HDR_TRAILER;
    (void)quiche_h3_event_for_each_header(ev, on_header, &h);
    return;
  }
  (void)quiche_h3_event_for_each_header(ev, on_header, &h);
  if (h.status <= 0) {
    h3c_req_fail(r, "invalid response: missing or malformed :status");
    return;
  }
  if (h.kind == H3C_HDR_INFO)
    return; /* interim response; the final one follows */
  r->status = h.status;
  r->recv = H3C_RECV_BODY;
}

static void stall_cb(struct ev_loop *loop, ev_timer *w, int revents) {
  (void)loop;
  (void)revents;
  h3c_req *r = w->data;
  h3c_conn *c = r->conn;
  r->stalled = false;
  r->stall_done = true;
  LOG_DEBUG("conn %u stream %lld: stall over", c->index,
            (long long)r->stream_id);
  /* quiche raises no new DATA event for data left unread, so resume the
   * reads ourselves; then poll for FINISHED and send flow-control credit. */
  h3c_req_read_body(r);
  h3c_conn_process(c);
}

static void start_stall(h3c_req *r) {
  h3c_ctx *x = r->conn->x;
  r->stalled = true;
  LOG_DEBUG("conn %u stream %lld: stalling reads for %.0f ms", r->conn->index,
            (long long)r->stream_id, x->stall_s * 1e3);
  ev_timer_init(&r->stall_timer, stall_cb, x->stall_s, 0.);
  r->stall_timer.data = r;
  ev_timer_start(x->loop, &r->stall_timer);
}

void h3c_req_read_body(h3c_req *r) {
  if (r->stalled || r->recv != H3C_RECV_BODY)
    return;
  h3c_conn *c = r->conn;
  h3c_ctx *x = c->x;
  for (;;) {
    size_t max = x->buf_len;
    if (x->stall_s > 0 && !r->stall_done) {
      uint64_t left =
          x->stall_after > r->sink.bytes ? x->stall_after - r->sink.bytes : 0;
      if (left == 0) {
        start_stall(r);
        return;
      }
      if (left < max)
        max = (size_t)left;
    }
    ssize_t n =
        quiche_h3_recv_body(c->h3, c->q, (uint64_t)r->stream_id, x->buf, max);
    if (n == QUICHE_H3_ERR_DONE) {
      /* An empty DATA frame with more frames behind it ends the read with
       * the stream still readable, and quiche raises no further event for
       * it: let the connection re-poll (h3c_conn_h3_work). */
      if (quiche_conn_stream_readable(c->q, (uint64_t)r->stream_id))
        c->unread = true;
      return;
    }
    if (n < 0) {
      h3c_req_fail(r, "reading response body (quiche error %zd)", n);
      return;
    }
    if (h3c_sink_write(&r->sink, &x->sink, x->buf, (size_t)n, r->err,
                       sizeof(r->err)) != 0) {
      h3c_req_fail(r, "%s", r->err);
      return;
    }
  }
}

void h3c_req_on_finished(h3c_req *r) {
  if (r->recv == H3C_RECV_HEADERS) {
    h3c_req_fail(r, "response ended without headers");
    return;
  }
  r->recv = H3C_RECV_DONE;
  /* RFC 9114 §4.1.2: a body that disagrees with content-length is a
   * malformed response (HEAD, 204 and 304 carry none by definition). */
  bool bodyless = r->tmpl->is_head || r->status == 204 || r->status == 304;
  if (!bodyless && r->clen >= 0 && (uint64_t)r->clen != r->sink.bytes) {
    h3c_req_fail(r, "malformed response: content-length %lld, body %llu",
                 (long long)r->clen, (unsigned long long)r->sink.bytes);
    return;
  }
  if (r->send == H3C_SEND_BODY) {
    /* Complete response before our body ended: stop sending the rest. */
    (void)quiche_conn_stream_shutdown(r->conn->q, (uint64_t)r->stream_id,
                                      QUICHE_SHUTDOWN_WRITE, H3Q_H3_NO_ERROR);
  }
  complete(r);
}
