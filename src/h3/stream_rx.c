/* Request streams read frame by frame as bytes arrive (RFC 9114 sections
 * 4.1 and 7): HEADERS (QPACK-decoded, validated, dispatched), DATA (body
 * bytes, read straight from quiche into the reader's buffer), trailers,
 * unknown frames (skipped), and every framing error. */
#include <string.h>

#include "h3/stream.h"
#include "h3/stream_internal.h"
#include "util/log.h"

/* Frames handled per call before other streams get their turn. */
#define RX_STEPS 64
#define SKIP_CHUNK 4096

typedef enum rx_result { RXR_DATA, RXR_AGAIN, RXR_END } rx_result;

static void rx_fail(stream *s, uint64_t code, const char *why) {
  s->rx = RX_END;
  h3_session_fail(s->h, code, why);
}

/* Reads from quiche. Returns a count (0 only with *fin), H3Q_EAGAIN, or
 * H3Q_ECLOSED once the stream was reset (handled here). */
static ssize_t rx_recv(stream *s, uint8_t *p, size_t len, bool *fin) {
  uint64_t code = 0;
  *fin = false;
  ssize_t n = quiche_conn_stream_recv(s->q, s->id, p, len, fin, &code);
  if (n >= 0)
    return n;
  if (n == QUICHE_ERR_DONE)
    return H3Q_EAGAIN;
  s->rx = RX_END;
  if (n == QUICHE_ERR_STREAM_RESET)
    stream_on_reset(s, code);
  return H3Q_ECLOSED;
}

/* FIN at a frame boundary. */
static void rx_finish(stream *s) {
  s->rx = RX_END;
  if (s->rstate == REQ_HEADERS) {
    /* RFC 9114 section 4.1: a request stream closed without a complete
     * request. */
    stream_abort(s, H3Q_H3_REQUEST_INCOMPLETE);
    return;
  }
  stream_on_finished(s);
}

/* A bidirectional stream whose first frame type an extension registered
 * (WebTransport's 0x41) leaves HTTP: the extension owns it from here. */
static bool rx_claim(stream *s, uint64_t type) {
  const h3_config *cfg = s->h->cfg;
  for (size_t i = 0; i < cfg->extension_count; i++) {
    const h3_extension *e = &cfg->extensions[i];
    if (e->bidi && e->type == type)
      return h3_claim_stream(s->h, s->id, e, s);
  }
  return false;
}

/* A complete frame header: checks where the frame may appear. */
static void rx_frame_start(stream *s, uint64_t type, uint64_t len) {
  h3_frame_header_reset(&s->rx_hdr);
  s->rx_left = len;
  if (!h3_frame_allowed_on_request(type)) {
    rx_fail(s, H3Q_H3_FRAME_UNEXPECTED, "frame not allowed on a request");
  } else if (type == H3_FRAME_DATA) {
    if (s->rstate != REQ_BODY || s->trailers_seen)
      rx_fail(s, H3Q_H3_FRAME_UNEXPECTED, "DATA outside the body");
    else
      s->rx = len ? RX_DATA : RX_FRAME_HEADER;
  } else if (type == H3_FRAME_HEADERS) {
    if (s->trailers_seen)
      rx_fail(s, H3Q_H3_FRAME_UNEXPECTED, "HEADERS after trailers");
    else if (len > s->h->cfg->max_headers_frame)
      section_too_large(s);
    else if (buf_reserve(&s->rx_section, (size_t)len) != 0)
      stream_abort(s, H3Q_H3_EXCESSIVE_LOAD);
    else
      s->rx = RX_SECTION;
    if (s->rx == RX_SECTION && len == 0)
      section_complete(s);
  } else {
    s->rx = len ? RX_SKIP : RX_FRAME_HEADER; /* unknown or reserved */
  }
}

static rx_result rx_frame_header(stream *s) {
  uint8_t tmp[16];
  size_t need = h3_frame_header_need(&s->rx_hdr);
  bool fin;
  ssize_t n = rx_recv(s, tmp, need, &fin);
  if (n < 0)
    return n == H3Q_EAGAIN ? RXR_AGAIN : RXR_END;
  h3_frame_header_feed(&s->rx_hdr, tmp, (size_t)n);
  uint64_t type, len;
  if (s->rstate == REQ_HEADERS && s->rx_section.len == 0 &&
      h3_frame_header_type(&s->rx_hdr, &type) && rx_claim(s, type))
    return RXR_END;
  if (h3_frame_header_need(&s->rx_hdr) == 0) {
    h3_frame_header_get(&s->rx_hdr, &type, &len);
    rx_frame_start(s, type, len);
  }
  if (fin) {
    if (s->rx == RX_FRAME_HEADER && s->rx_hdr.have == 0)
      rx_finish(s); /* after a whole frame */
    else if (s->rx == RX_BLOCKED)
      s->rx_fin_seen = true;
    else if (s->rx != RX_END)
      rx_fail(s, H3Q_H3_FRAME_ERROR, "stream ends inside a frame");
  }
  return s->rx == RX_END ? RXR_END : RXR_DATA;
}

static rx_result rx_section(stream *s) {
  bool fin;
  uint8_t *dst = s->rx_section.data + s->rx_section.len;
  ssize_t n = rx_recv(s, dst, (size_t)s->rx_left, &fin);
  if (n < 0)
    return n == H3Q_EAGAIN ? RXR_AGAIN : RXR_END;
  s->rx_section.len += (size_t)n;
  s->rx_left -= (uint64_t)n;
  if (fin && s->rx_left) {
    rx_fail(s, H3Q_H3_FRAME_ERROR, "stream ends inside HEADERS");
    return RXR_END;
  }
  if (s->rx_left == 0)
    section_complete(s);
  if (fin && s->rx == RX_FRAME_HEADER)
    s->rx = RX_FIN;
  else if (fin && s->rx == RX_BLOCKED)
    s->rx_fin_seen = true; /* applied once the section decodes */
  return RXR_DATA;
}

static rx_result rx_skip(stream *s) {
  uint8_t tmp[SKIP_CHUNK];
  bool fin;
  size_t want = s->rx_left < sizeof tmp ? (size_t)s->rx_left : sizeof tmp;
  ssize_t n = rx_recv(s, tmp, want, &fin);
  if (n < 0)
    return n == H3Q_EAGAIN ? RXR_AGAIN : RXR_END;
  s->rx_left -= (uint64_t)n;
  if (s->rx_left == 0)
    s->rx = RX_FRAME_HEADER;
  if (fin) {
    if (s->rx_left)
      rx_fail(s, H3Q_H3_FRAME_ERROR, "stream ends inside a frame");
    else
      s->rx = RX_FIN;
  }
  return RXR_DATA;
}

/* Moves through frames until body bytes are next (RXR_DATA with rx ==
 * RX_DATA), nothing is readable (RXR_AGAIN), or reading ended. */
static rx_result rx_advance(stream *s) {
  for (int step = 0; step < RX_STEPS; step++) {
    rx_result r;
    switch (s->rx) {
    case RX_DATA:
      return RXR_DATA;
    case RX_BLOCKED:
      return RXR_AGAIN;
    case RX_END:
      return RXR_END;
    case RX_FIN:
      rx_finish(s);
      return RXR_END;
    case RX_FRAME_HEADER:
      r = rx_frame_header(s);
      break;
    case RX_SECTION:
      r = rx_section(s);
      break;
    case RX_SKIP:
      r = rx_skip(s);
      break;
    }
    if (r != RXR_DATA)
      return r;
  }
  stream_request_pump(s); /* more frames: continue next round */
  return RXR_AGAIN;
}

ssize_t stream_read_body(stream *s, uint8_t *out, size_t len) {
  for (int step = 0; step < RX_STEPS; step++) {
    rx_result r = rx_advance(s);
    if (r == RXR_AGAIN) {
      s->body_readable = false;
      return H3Q_EAGAIN;
    }
    if (r == RXR_END)
      return s->fin_received ? 0 : H3Q_ECLOSED;
    size_t want = s->rx_left < len ? (size_t)s->rx_left : len;
    bool fin;
    ssize_t n = rx_recv(s, out, want, &fin);
    if (n == H3Q_EAGAIN) {
      s->body_readable = false;
      return H3Q_EAGAIN;
    }
    if (n < 0)
      return H3Q_ECLOSED;
    s->rx_left -= (uint64_t)n;
    if (s->rx_left == 0)
      s->rx = RX_FRAME_HEADER;
    if (fin && s->rx_left) {
      rx_fail(s, H3Q_H3_FRAME_ERROR, "stream ends inside DATA");
      return H3Q_ECLOSED;
    }
    if (fin) {
      s->rx = RX_FIN; /* handled after these bytes are delivered */
      stream_request_pump(s);
    }
    if (n > 0)
      return n;
  }
  stream_request_pump(s);
  return H3Q_EAGAIN;
}

/* Runs the frame reader when quiche says the stream has data, or when the
 * stream asked for another round. */
void stream_rx_pump(stream *s) {
  if (s->rx == RX_DATA && s->body_readable)
    return; /* known; the reader takes the bytes when it wants them */
  if (rx_advance(s) == RXR_DATA)
    stream_on_data(s);
}

void h3_request_readable(h3_session *h, uint64_t id) {
  stream *s = u64map_get(&h->streams, id);
  if (!s) {
    const h3_extension *e = u64map_get(&h->claimed, id);
    if (e) {
      e->on_readable(h, id, e->user);
      return;
    }
    if (h3_drain_refuses(h, id))
      return;
    s = stream_new(h, id);
    if (!s) {
      quiche_conn_stream_shutdown(h->q, id, QUICHE_SHUTDOWN_READ,
                                  H3Q_H3_EXCESSIVE_LOAD);
      quiche_conn_stream_shutdown(h->q, id, QUICHE_SHUTDOWN_WRITE,
                                  H3Q_H3_EXCESSIVE_LOAD);
      return;
    }
  }
  stream_rx_pump(s);
}
