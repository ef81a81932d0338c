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
#include "util/varint.h"

/* quiche maps RFC 9218 urgency 0..7 onto its stream urgencies from here. */
#define QUICHE_URGENCY_OFFSET 124
/* Producer chunk size, and chunks per call before other streams' turn. */
#define PRODUCER_CHUNK 65536
#define PRODUCER_CHUNKS_PER_ROUND 16

static ssize_t response_finish(stream *s);

void response_set_state(stream *s, res_state to) {
  LOG_TRACE("stream %llu: response state %d -> %d", (unsigned long long)s->id,
            (int)s->wstate, (int)to);
  s->wstate = to;
  if (to == RES_BODY || to == RES_DONE)
    s->final_sent = true;
}

void response_block(stream *s) {
  s->want_writable = true;
  stream_queue(s);
}

void stream_apply_priority(stream *s) {
  quiche_conn_stream_priority(
      s->q, s->id, (uint8_t)(QUICHE_URGENCY_OFFSET + s->prio.urgency),
      s->prio.incremental);
}

/* Writes queued frame bytes (a header section, or the empty DATA frame
 * that carries FIN): H3Q_OK when none are left, H3Q_EAGAIN, or
 * H3Q_ECLOSED. With wframes_fin, FIN goes with the last byte (quiche drops
 * it from a write it truncates, so it is sent again with the rest). */
static int flush_frames(stream *s) {
  if (!s->wframes.len)
    return H3Q_OK;
  uint64_t code = 0;
  ssize_t n = quiche_conn_stream_send(s->q, s->id, s->wframes.data,
                                      s->wframes.len, s->wframes_fin, &code);
  if (n == QUICHE_ERR_DONE) {
    response_block(s);
    return H3Q_EAGAIN;
  }
  if (n < 0) {
    s->peer_error = n == QUICHE_ERR_STREAM_STOPPED ? code : 0;
    stream_abort(s, H3Q_H3_REQUEST_CANCELLED);
    return H3Q_ECLOSED;
  }
  buf_consume(&s->wframes, (size_t)n);
  if (n > 0)
    stream_wake(s);
  if (s->wframes.len) {
    response_block(s);
    return H3Q_EAGAIN;
  }
  if (s->wframes_fin) {
    s->wframes_fin = false;
    response_set_state(s, RES_DONE);
  }
  return H3Q_OK;
}

/* HEADERS frames are encoded straight into s->wframes: room for the
 * largest frame header (type 1 byte, length up to 8) is left first and
 * closed up once the payload's length is known, so no second buffer is
 * kept per connection. */
#define HEADERS_HEADER_MAX 9

/* Starts a HEADERS frame at the end of w (*start: where it begins). 0 or
 * -1. */
static int headers_frame_begin(buf *w, size_t *start) {
  *start = w->len;
  if (buf_reserve(w, HEADERS_HEADER_MAX) != 0)
    return -1;
  w->len += HEADERS_HEADER_MAX;
  return qpack_encode_prefix(w);
}

/* Writes the frame header in front of the payload encoded since
 * headers_frame_begin (rc 0), or drops the partial frame (rc != 0). */
static int headers_frame_end(buf *w, size_t start, int rc) {
  if (rc != 0) {
    w->len = start;
    return H3Q_ENOMEM;
  }
  size_t payload = w->len - start - HEADERS_HEADER_MAX;
  uint8_t hdr[16];
  size_t hlen = h3_frame_header_encode(hdr, H3_FRAME_HEADERS, payload);
  memmove(w->data + start + hlen, w->data + start + HEADERS_HEADER_MAX,
          payload);
  memcpy(w->data + start, hdr, hlen);
  w->len = start + hlen + payload;
  return H3Q_OK;
}

/* QPACK-encodes status (unless trailer) and the fields onto q. 0 or -1. */
static int encode_fields(buf *q, const arena *a, const field *f, size_t n,
                         int status, bool trailer) {
  int rc = 0;
  if (!trailer)
    rc = qpack_encode_status(q, (unsigned)status);
  for (size_t i = 0; i < n && rc == 0; i++) {
    const char *name = arena_str(a, f[i].name);
    const char *value = arena_str(a, f[i].value);
    rc = qpack_encode_field(q, (const uint8_t *)name, strlen(name),
                            (const uint8_t *)value, strlen(value));
  }
  return rc;
}

/* Encodes one header section as a HEADERS frame onto s->wframes. */
static int encode_section(stream *s, const arena *a, const field *f, size_t n,
                          int status, bool trailer) {
  size_t start;
  int rc = headers_frame_begin(&s->wframes, &start);
  if (rc == 0)
    rc = encode_fields(&s->wframes, a, f, n, status, trailer);
  return headers_frame_end(&s->wframes, start, rc);
}

static int encode_str_field(buf *q, const char *name, const char *value,
                            size_t vlen) {
  return qpack_encode_field(q, (const uint8_t *)name, strlen(name),
                            (const uint8_t *)value, vlen);
}

/* Decimal digits of v into out (>= 20 bytes); returns their count. */
static size_t format_u64(char *out, uint64_t v) {
  char tmp[20];
  size_t n = 0;
  do {
    tmp[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v && n < sizeof tmp);
  for (size_t i = 0; i < n; i++)
    out[i] = tmp[n - 1 - i];
  return n;
}

int response_send_small(stream *s, const char *content_type, bool with_length,
                        uint64_t content_length, const uint8_t *body,
                        size_t len) {
  if (!s->informational_sent)
    stream_apply_priority(s);
  buf *w = &s->wframes;
  size_t start;
  w->len = 0; /* nothing queued: the caller checked */
  int rc = headers_frame_begin(w, &start);
  if (rc == 0)
    rc = encode_fields(w, &s->warena, s->wfields, s->wfield_count, s->status,
                       false);
  if (rc == 0 && content_type)
    rc =
        encode_str_field(w, "content-type", content_type, strlen(content_type));
  if (rc == 0 && with_length) {
    char digits[24];
    rc = encode_str_field(w, "content-length", digits,
                          format_u64(digits, content_length));
  }
  rc = headers_frame_end(w, start, rc) == H3Q_OK ? 0 : -1;
  if (rc == 0 && len)
    rc = h3_frame_write_header(w, H3_FRAME_DATA, len);
  if (rc == 0)
    rc = buf_append(w, body, len);
  if (rc != 0) {
    w->len = 0;
    return H3Q_ENOMEM;
  }
  response_set_state(s, RES_BODY);
  s->body_sent += len; /* queued in wframes counts as handed over */
  s->end_requested = true;
  s->wframes_fin = true;
  rc = flush_frames(s); /* what quiche does not take waits for room */
  if (rc == H3Q_ECLOSED)
    return rc;
  if (s->wstate == RES_DONE)
    stream_queue(s); /* stream_service finishes the request side */
  return H3Q_OK;
}

int response_send_section(stream *s, const arena *a, const field *f, size_t n,
                          int status, bool trailer, bool fin) {
  if (!trailer && !s->informational_sent && status >= 200)
    stream_apply_priority(s);
  int rc = encode_section(s, a, f, n, status, trailer);
  if (rc != H3Q_OK)
    return rc;
  s->wframes_fin = fin;
  /* Queued counts as sent: what quiche does not take now goes out before
   * anything else on this stream. */
  rc = flush_frames(s);
  return rc == H3Q_EAGAIN ? H3Q_OK : rc;
}

/* The final header section, then FIN when nothing follows. */
static int send_final_headers(stream *s, bool fin) {
  int rc = response_send_section(s, &s->warena, s->wfields, s->wfield_count,
                                 s->status, false, fin);
  if (rc == H3Q_OK && s->wstate == RES_IDLE)
    response_set_state(s, RES_BODY); /* DONE already when FIN went too */
  return rc;
}

static ssize_t send_failed(stream *s, ssize_t n, uint64_t code) {
  if (n == QUICHE_ERR_DONE) {
    response_block(s);
    return H3Q_EAGAIN;
  }
  s->peer_error = n == QUICHE_ERR_STREAM_STOPPED ? code : stream_peer_error(s);
  stream_abort(s, H3Q_H3_REQUEST_CANCELLED);
  return H3Q_ECLOSED;
}

/* One DATA frame sized to what the stream takes now, so the frame header
 * and its payload always go in together and no body byte is copied. */
ssize_t response_send_body(stream *s, const uint8_t *data, size_t len,
                           bool fin) {
  int rc = flush_frames(s);
  if (rc != H3Q_OK)
    return rc;
  if (len == 0)
    return fin ? response_finish(s) : 0;
  ssize_t room = h3_stream_room(s->q, s->id, RESPONSE_DATA_HEADER_MAX);
  if (room < 0)
    return send_failed(s, room, 0);
  if (room == 0) {
    response_block(s);
    return H3Q_EAGAIN;
  }
  size_t take = len < (size_t)room ? len : (size_t)room;
  bool last = fin && take == len;
  uint8_t hdr[16];
  size_t hlen = h3_frame_header_encode(hdr, H3_FRAME_DATA, take);
  uint64_t code = 0;
  ssize_t n = quiche_conn_stream_send(s->q, s->id, hdr, hlen, false, &code);
  if (n >= 0 && (size_t)n == hlen)
    n = quiche_conn_stream_send(s->q, s->id, data, take, last, &code);
  if (n < 0)
    return send_failed(s, n, code);
  s->body_sent += take; /* what quiche did not take is kept in wframes */
  if ((size_t)n < take) {
    /* The capacity said otherwise; keep the frame whole regardless. */
    if (buf_append(&s->wframes, data + n, take - (size_t)n) != 0) {
      stream_abort(s, H3Q_H3_INTERNAL_ERROR);
      return H3Q_ECLOSED;
    }
    n = (ssize_t)take;
    last = false;
  }
  stream_wake(s);
  if ((size_t)n < len || (fin && !last))
    response_block(s);
  else if (fin)
    response_set_state(s, RES_DONE);
  return n;
}

/* FIN after everything queued. It always travels with stream bytes: on the
 * last queued frame, or on an empty DATA frame. (quiche 0.30 can leave a
 * FIN written alone unsent when the stream sits at the peer's flow-control
 * limit: seen as responses whose end never arrived.) */
static ssize_t response_finish(stream *s) {
  if (!s->wframes.len &&
      h3_frame_write_header(&s->wframes, H3_FRAME_DATA, 0) != 0) {
    stream_abort(s, H3Q_H3_INTERNAL_ERROR);
    return H3Q_ECLOSED;
  }
  s->wframes_fin = true;
  return flush_frames(s);
}

static bool has_pending_body(const stream *s) {
  return s->pending_off < s->pending_len;
}

/* FIN, after trailers when there are any. */
static int send_fin(stream *s) {
  if (s->wtrailer_count && !s->is_head && !s->trailers_queued) {
    int rc = response_send_section(s, &s->warena, s->wtrailers,
                                   s->wtrailer_count, 0, true, true);
    if (rc == H3Q_OK)
      s->trailers_queued = true; /* FIN goes with them */
    return rc;
  }
  ssize_t n = response_finish(s);
  return n < 0 ? (int)n : H3Q_OK;
}

int response_progress(stream *s) {
  bool ending = s->end_requested;
  if (s->wstate == RES_IDLE) {
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
    stream_abort(s, H3Q_H3_INTERNAL_ERROR);
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
    ssize_t cap =
        s->is_head ? PRODUCER_CHUNK : quiche_conn_stream_capacity(s->q, s->id);
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
  stream_wake(s);
}

/* The stream may have room again: continue, then let the handler write. */
void response_on_room(stream *s) {
  ssize_t cap = quiche_conn_stream_capacity(s->q, s->id);
  if (cap < 0) {
    s->peer_error = stream_peer_error(s);
    stream_abort(s, H3Q_H3_REQUEST_CANCELLED);
    return;
  }
  if (cap == 0)
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
