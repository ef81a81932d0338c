/* The response side of a stream. Writes go straight into quiche, which
 * accepts only what the stream's flow control and congestion window allow:
 * that is the backpressure, and it keeps per-stream memory bounded without
 * an h3q send buffer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "h3/arena.h"
#include "h3/stream_internal.h"
#include "http/headers.h"
#include "util/log.h"

/* Room reported for HEAD responses, whose body bytes are dropped. */
#define HEAD_CAPACITY (1 << 20)

static bool response_open(const stream *s) {
  return !s->closed && s->wstate != RES_RESET;
}

static void block(stream *s) {
  s->want_writable = true;
  stream_queue(s);
}

/* Sends the header section; fin when nothing follows. */
static int send_headers(stream *s, bool fin) {
  size_t n = 1 + s->wfield_count;
  quiche_h3_header *h = calloc(n, sizeof *h);
  if (!h)
    return H3Q_ENOMEM;
  char status[4];
  snprintf(status, sizeof status, "%03d", s->status);
  h[0] = (quiche_h3_header){(const uint8_t *)":status", 7,
                            (const uint8_t *)status, 3};
  for (size_t i = 0; i < s->wfield_count; i++) {
    const char *name = arena_str(&s->warena, s->wfields[i].name);
    const char *value = arena_str(&s->warena, s->wfields[i].value);
    h[i + 1] = (quiche_h3_header){(const uint8_t *)name, strlen(name),
                                  (const uint8_t *)value, strlen(value)};
  }
  int rc = quiche_h3_send_response(s->c->h3, s->c->q, s->id, h, n, fin);
  free(h);
  if (rc == QUICHE_H3_ERR_STREAM_BLOCKED || rc == QUICHE_H3_ERR_DONE) {
    s->wstate = RES_HEADERS_PENDING;
    block(s);
    return H3Q_EAGAIN;
  }
  if (rc < 0) {
    stream_abort(s, H3_INTERNAL_ERROR);
    return H3Q_ECLOSED;
  }
  s->wstate = fin ? RES_DONE : RES_BODY;
  conn_mark_dirty(s->c);
  return H3Q_OK;
}

/* One quiche_h3_send_body call mapped to h3q's return convention. */
static ssize_t send_body(stream *s, const uint8_t *data, size_t len, bool fin) {
  ssize_t n = quiche_h3_send_body(s->c->h3, s->c->q, s->id, data, len, fin);
  if (n == QUICHE_H3_ERR_DONE || n == QUICHE_H3_ERR_STREAM_BLOCKED) {
    block(s);
    return H3Q_EAGAIN;
  }
  if (n < 0) {
    stream_abort(s, H3_REQUEST_CANCELLED);
    return H3Q_ECLOSED;
  }
  conn_mark_dirty(s->c);
  if ((size_t)n < len)
    block(s);
  else if (fin)
    s->wstate = RES_DONE;
  return n;
}

static bool has_pending_body(const stream *s) {
  return s->pending_off < s->pending_len;
}

/* Moves the response forward as far as the stream allows: header section,
 * the h3q_response_send body, then FIN. Returns 0 when nothing is left
 * waiting, H3Q_EAGAIN when blocked, or H3Q_ECLOSED. */
static int response_progress(stream *s, bool ending) {
  if (s->wstate == RES_IDLE || s->wstate == RES_HEADERS_PENDING) {
    bool fin = ending && (s->is_head || !has_pending_body(s));
    int rc = send_headers(s, fin);
    if (rc != H3Q_OK)
      return rc;
  }
  while (has_pending_body(s)) {
    size_t left = s->pending_len - s->pending_off;
    ssize_t n = send_body(s, s->pending_body + s->pending_off, left, ending);
    if (n < 0)
      return (int)n;
    s->pending_off += (size_t)n;
    if ((size_t)n < left)
      return H3Q_EAGAIN;
  }
  if (ending && s->wstate != RES_DONE) {
    static const uint8_t empty[1];
    ssize_t n = send_body(s, empty, 0, true);
    if (n < 0)
      return (int)n;
  }
  if (s->wstate == RES_DONE)
    stream_queue(s); /* stream_service finishes the request side */
  return H3Q_OK;
}

/* The stream may have room again: continue, then let the handler write. */
void response_on_room(stream *s) {
  ssize_t cap = quiche_conn_stream_capacity(s->c->q, s->id);
  LOG_TRACE("conn %llu stream %llu: room %zd", (unsigned long long)s->c->number,
            (unsigned long long)s->id, cap);
  if (cap < 0) {
    stream_abort(s, H3_REQUEST_CANCELLED);
    return;
  }
  if (cap == 0 && s->wstate != RES_HEADERS_PENDING)
    return; /* stays queued */
  s->want_writable = false;
  if (response_progress(s, s->end_requested) != H3Q_OK)
    return;
  if (s->wstate == RES_BODY && !s->end_requested && s->on_writable &&
      !s->closed)
    s->on_writable(&s->res, s->writable_user);
}

/* ---- public API ---- */

int h3q_response_set_status(h3q_response *res, int status) {
  stream *s = res->s;
  if (status < 100 || status > 599 || status == 101)
    return H3Q_EINVAL;
  if (s->wstate != RES_IDLE)
    return H3Q_ESTATE;
  s->status = status;
  return H3Q_OK;
}

int h3q_response_header(h3q_response *res, const char *name,
                        const char *value) {
  stream *s = res->s;
  if (!name || !value)
    return H3Q_EINVAL;
  size_t nlen = strlen(name), vlen = strlen(value);
  if (!header_name_is_token(name, nlen) || !header_value_is_valid(value, vlen))
    return H3Q_EINVAL;
  if (s->wstate != RES_IDLE)
    return H3Q_ESTATE;
  size_t n = arena_push(&s->warena, name, nlen);
  size_t v = arena_push(&s->warena, value, vlen);
  if (!n || !v ||
      fields_push(&s->wfields, &s->wfield_count, &s->wfield_cap, n, v) != 0)
    return H3Q_ENOMEM;
  ascii_lower(s->warena.buf + n, nlen);
  return H3Q_OK;
}

ssize_t h3q_response_write(h3q_response *res, const void *data, size_t len) {
  stream *s = res->s;
  if (!response_open(s))
    return H3Q_ECLOSED;
  if (s->end_requested || s->wstate == RES_DONE)
    return H3Q_ESTATE;
  if (!data && len)
    return H3Q_EINVAL;
  if (s->wstate != RES_BODY) {
    int rc = response_progress(s, false);
    if (rc != H3Q_OK)
      return rc;
  }
  if (s->is_head)
    return (ssize_t)len;
  if (has_pending_body(s))
    return H3Q_EAGAIN;
  if (len == 0)
    return 0;
  ssize_t n = send_body(s, data, len, false);
  return n == 0 ? H3Q_EAGAIN : n;
}

ssize_t h3q_response_capacity(h3q_response *res) {
  stream *s = res->s;
  if (!response_open(s))
    return H3Q_ECLOSED;
  if (s->end_requested || s->wstate == RES_DONE)
    return H3Q_ESTATE;
  if (s->wstate != RES_BODY) {
    int rc = response_progress(s, false);
    if (rc == H3Q_EAGAIN)
      return 0;
    if (rc != H3Q_OK)
      return rc;
  }
  if (s->is_head)
    return HEAD_CAPACITY;
  ssize_t cap = quiche_conn_stream_capacity(s->c->q, s->id);
  if (cap < 0)
    return H3Q_ECLOSED;
  if (cap == 0)
    block(s);
  return cap;
}

int h3q_response_end(h3q_response *res) {
  stream *s = res->s;
  if (!response_open(s))
    return H3Q_ECLOSED;
  if (s->end_requested || s->wstate == RES_DONE)
    return H3Q_ESTATE;
  s->end_requested = true;
  int rc = response_progress(s, true);
  return rc == H3Q_EAGAIN ? H3Q_OK : rc; /* finishes when room appears */
}

int h3q_response_send(h3q_response *res, int status, const char *content_type,
                      const void *body, size_t len) {
  stream *s = res->s;
  if (!response_open(s))
    return H3Q_ECLOSED;
  if (s->wstate != RES_IDLE)
    return H3Q_ESTATE;
  if (!body && len)
    return H3Q_EINVAL;
  int rc = h3q_response_set_status(res, status);
  char clen[24];
  snprintf(clen, sizeof clen, "%zu", len);
  if (rc == H3Q_OK && content_type)
    rc = h3q_response_header(res, "content-type", content_type);
  if (rc == H3Q_OK)
    rc = h3q_response_header(res, "content-length", clen);
  if (rc != H3Q_OK)
    return rc;
  if (len && !s->is_head) {
    s->pending_body = malloc(len);
    if (!s->pending_body)
      return H3Q_ENOMEM;
    memcpy(s->pending_body, body, len);
    s->pending_len = len;
  }
  return h3q_response_end(res);
}

void h3q_response_on_writable(h3q_response *res, h3q_response_cb cb,
                              void *user) {
  res->s->on_writable = cb;
  res->s->writable_user = user;
}

void h3q_response_on_close(h3q_response *res, h3q_close_cb cb, void *user) {
  res->s->on_close = cb;
  res->s->close_user = user;
}

int h3q_response_reset(h3q_response *res, uint64_t h3_error) {
  stream *s = res->s;
  if (!response_open(s) || s->wstate == RES_DONE)
    return H3Q_ECLOSED;
  stream_abort(s, h3_error);
  return H3Q_OK;
}

h3q_request *h3q_response_request(h3q_response *res) {
  return &res->s->req;
}
