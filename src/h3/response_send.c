/* Moving a response into quiche: header sections (1xx, final, trailers),
 * body bytes and FIN, and the pull producer. quiche accepts only what the
 * stream's flow control and congestion window allow: that is the
 * backpressure, and it bounds per-stream memory without an h3q buffer
 * beyond one pending chunk. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "h3/arena.h"
#include "h3/stream_internal.h"
#include "util/log.h"

/* quiche maps RFC 9218 urgency 0..7 onto its stream urgencies from here. */
#define QUICHE_URGENCY_OFFSET 124
/* Producer chunk size, and chunks per call before other streams' turn. */
#define PRODUCER_CHUNK 65536
#define PRODUCER_CHUNKS_PER_ROUND 16

void response_block(stream *s) {
  s->want_writable = true;
  stream_queue(s);
}

void stream_apply_priority(stream *s) {
  quiche_conn_stream_priority(
      s->c->q, s->id, (uint8_t)(QUICHE_URGENCY_OFFSET + s->prio.urgency),
      s->prio.incremental);
}

/* Builds quiche's header array: optional :status, then fields. */
static quiche_h3_header *build_headers(const arena *a, const field *f, size_t n,
                                       const char *status, size_t *out_n) {
  size_t first = status ? 1 : 0;
  quiche_h3_header *h = calloc(n + first, sizeof *h);
  if (!h)
    return NULL;
  if (status)
    h[0] = (quiche_h3_header){(const uint8_t *)":status", 7,
                              (const uint8_t *)status, strlen(status)};
  for (size_t i = 0; i < n; i++) {
    const char *name = arena_str(a, f[i].name);
    const char *value = arena_str(a, f[i].value);
    h[i + first] = (quiche_h3_header){(const uint8_t *)name, strlen(name),
                                      (const uint8_t *)value, strlen(value)};
  }
  *out_n = n + first;
  return h;
}

/* Maps a quiche header-send result; blocked means retry on room. */
static int headers_result(stream *s, int rc) {
  if (rc == QUICHE_H3_ERR_STREAM_BLOCKED || rc == QUICHE_H3_ERR_DONE) {
    response_block(s);
    return H3Q_EAGAIN;
  }
  if (rc < 0) {
    stream_abort(s, H3_INTERNAL_ERROR);
    return H3Q_ECLOSED;
  }
  conn_mark_dirty(s->c);
  return H3Q_OK;
}

int response_send_section(stream *s, const arena *a, const field *f, size_t n,
                          int status, bool trailer, bool fin) {
  char code[4];
  snprintf(code, sizeof code, "%03d", status);
  size_t count;
  quiche_h3_header *h = build_headers(a, f, n, trailer ? NULL : code, &count);
  if (!h)
    return H3Q_ENOMEM;
  int rc;
  if (!trailer && !s->informational_sent) {
    quiche_h3_priority p = {s->prio.urgency, s->prio.incremental};
    rc = quiche_h3_send_response_with_priority(s->c->h3, s->c->q, s->id, h,
                                               count, &p, fin);
  } else {
    rc = quiche_h3_send_additional_headers(s->c->h3, s->c->q, s->id, h, count,
                                           trailer, fin);
  }
  free(h);
  return headers_result(s, rc);
}

/* The final header section; fin when nothing follows. */
static int send_final_headers(stream *s, bool fin) {
  int rc = response_send_section(s, &s->warena, s->wfields, s->wfield_count,
                                 s->status, false, fin);
  if (rc == H3Q_EAGAIN)
    s->wstate = RES_HEADERS_PENDING;
  if (rc != H3Q_OK)
    return rc;
  s->wstate = fin ? RES_DONE : RES_BODY;
  return H3Q_OK;
}

ssize_t response_send_body(stream *s, const uint8_t *data, size_t len,
                           bool fin) {
  ssize_t n = quiche_h3_send_body(s->c->h3, s->c->q, s->id, data, len, fin);
  if (n == QUICHE_H3_ERR_DONE || n == QUICHE_H3_ERR_STREAM_BLOCKED) {
    response_block(s);
    return H3Q_EAGAIN;
  }
  if (n < 0) {
    s->peer_error = stream_peer_error(s);
    stream_abort(s, H3_REQUEST_CANCELLED);
    return H3Q_ECLOSED;
  }
  conn_mark_dirty(s->c);
  if ((size_t)n < len)
    response_block(s);
  else if (fin)
    s->wstate = RES_DONE;
  return n;
}

static bool has_pending_body(const stream *s) {
  return s->pending_off < s->pending_len;
}

/* FIN, after trailers when there are any. */
static int send_fin(stream *s) {
  if (s->wtrailer_count && !s->is_head) {
    int rc = response_send_section(s, &s->warena, s->wtrailers,
                                   s->wtrailer_count, 0, true, true);
    if (rc == H3Q_OK)
      s->wstate = RES_DONE;
    return rc;
  }
  static const uint8_t empty[1];
  ssize_t n = response_send_body(s, empty, 0, true);
  return n < 0 ? (int)n : H3Q_OK;
}

int response_progress(stream *s) {
  bool ending = s->end_requested;
  if (s->wstate == RES_IDLE || s->wstate == RES_HEADERS_PENDING) {
    bool fin = ending &&
               (s->is_head || (!has_pending_body(s) && s->wtrailer_count == 0));
    int rc = send_final_headers(s, fin);
    if (rc != H3Q_OK)
      return rc;
  }
  while (has_pending_body(s) && !s->is_head) {
    size_t left = s->pending_len - s->pending_off;
    bool fin = ending && s->wtrailer_count == 0;
    ssize_t n =
        response_send_body(s, s->pending_body + s->pending_off, left, fin);
    if (n < 0)
      return (int)n;
    s->pending_off += (size_t)n;
    if ((size_t)n < left)
      return H3Q_EAGAIN;
  }
  if (ending && s->wstate != RES_DONE) {
    int rc = send_fin(s);
    if (rc != H3Q_OK)
      return rc;
  }
  if (s->wstate == RES_DONE)
    stream_queue(s); /* stream_service finishes the request side */
  return H3Q_OK;
}

/* Asks the producer for one chunk into the pending buffer. Returns 1 when
 * it produced bytes, 0 when it has nothing now or finished, <0 on abort. */
static int produce_chunk(stream *s, size_t room) {
  if (!s->pending_body) {
    s->pending_body = malloc(PRODUCER_CHUNK);
    if (!s->pending_body)
      return H3Q_ENOMEM;
    s->pending_cap = PRODUCER_CHUNK;
  }
  bool eof = false;
  size_t want = room < s->pending_cap ? room : s->pending_cap;
  ssize_t n =
      s->producer(&s->res, s->pending_body, want, &eof, s->producer_user);
  if (s->closed || s->wstate == RES_RESET)
    return H3Q_ECLOSED;
  if (n == H3Q_EAGAIN) {
    s->producer_waiting = true;
    return 0;
  }
  if (n < 0 || (size_t)n > want) {
    LOG_DEBUG("stream %llu: producer failed (%zd)", (unsigned long long)s->id,
              n);
    stream_abort(s, H3_INTERNAL_ERROR);
    return H3Q_ECLOSED;
  }
  s->pending_off = 0;
  s->pending_len = (size_t)n;
  if (eof) {
    s->producer = NULL;
    s->end_requested = true;
  }
  return n > 0 ? 1 : 0;
}

void response_run_producer(stream *s) {
  for (int i = 0; i < PRODUCER_CHUNKS_PER_ROUND; i++) {
    /* Flush what the last chunk left (and FIN after eof) first. */
    if (s->closed || response_progress(s) != H3Q_OK || !s->producer ||
        s->producer_waiting)
      return;
    ssize_t cap = s->is_head ? PRODUCER_CHUNK
                             : quiche_conn_stream_capacity(s->c->q, s->id);
    if (cap <= 0) {
      response_block(s);
      return;
    }
    int rc = produce_chunk(s, (size_t)cap);
    if (rc < 0)
      return;
    if (rc == 0 && !s->end_requested)
      return; /* waiting for h3q_response_resume */
  }
  /* More next round; other streams and connections go first. */
  response_block(s);
  conn_mark_dirty(s->c);
}

/* The stream may have room again: continue, then let the handler write. */
void response_on_room(stream *s) {
  ssize_t cap = quiche_conn_stream_capacity(s->c->q, s->id);
  if (cap < 0) {
    s->peer_error = stream_peer_error(s);
    stream_abort(s, H3_REQUEST_CANCELLED);
    return;
  }
  if (cap == 0 && s->wstate != RES_HEADERS_PENDING)
    return; /* stays queued */
  s->want_writable = false;
  if (response_progress(s) != H3Q_OK)
    return;
  if (s->producer)
    response_run_producer(s);
  else if (s->wstate == RES_BODY && !s->end_requested && s->on_writable &&
           !s->closed)
    s->on_writable(&s->res, s->writable_user);
}
