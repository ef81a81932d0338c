/* The peer's unidirectional streams (RFC 9114 section 6.2): the stream
 * type, then the control stream's frames (SETTINGS first, GOAWAY,
 * MAX_PUSH_ID, CANCEL_PUSH, PRIORITY_UPDATE), the QPACK encoder and
 * decoder streams, streams claimed by extensions, and the rest refused. */
#include <stdlib.h>
#include <string.h>

#include "h3/session.h"
#include "h3/stream.h"
#include "h3/stream_internal.h"
#include "util/log.h"
#include "util/varint.h"

/* Bytes read per call from a uni stream, and calls per readable event. */
#define UNI_CHUNK 4096
#define UNI_READS 16
/* Largest control frame payload we buffer (SETTINGS, PRIORITY_UPDATE);
 * larger known frames are H3_EXCESSIVE_LOAD. Unknown frames are skipped
 * without buffering, whatever their size. */
#define CONTROL_FRAME_MAX 16384
/* PRIORITY_UPDATEs remembered for requests not yet open. */
#define EARLY_PRIORITY_MAX 256
#define PRIORITY_VALUE_MAX 1024

static void fail(h3_session *h, uint64_t code, const char *why) {
  h3_session_fail(h, code, why);
}

/* ---- control stream frames ---- */

static void on_goaway(h3_session *h, uint64_t id) {
  /* From a client the id is a push id, and it may only shrink. */
  if (h->peer_goaway && id > h->peer_goaway_id) {
    fail(h, H3Q_H3_ID_ERROR, "GOAWAY id increased");
    return;
  }
  h->peer_goaway = true;
  h->peer_goaway_id = id;
}

static void on_max_push_id(h3_session *h, uint64_t id) {
  if (h->have_max_push_id && id < h->max_push_id) {
    fail(h, H3Q_H3_ID_ERROR, "MAX_PUSH_ID decreased");
    return;
  }
  h->have_max_push_id = true;
  h->max_push_id = id;
}

/* We never push, so a push id is valid only if the client allowed it. */
static bool push_id_allowed(const h3_session *h, uint64_t id) {
  return h->have_max_push_id && id <= h->max_push_id;
}

static void remember_priority(h3_session *h, uint64_t id, const uint8_t *v,
                              size_t len) {
  if (len > PRIORITY_VALUE_MAX ||
      (h->early_priority.len >= EARLY_PRIORITY_MAX &&
       !u64map_get(&h->early_priority, id)))
    return; /* bounded: a flood of updates for unopened streams is dropped */
  char *copy = malloc(len + 1);
  if (!copy)
    return;
  memcpy(copy, v, len);
  copy[len] = '\0';
  free(u64map_del(&h->early_priority, id));
  if (u64map_put(&h->early_priority, id, copy) != 0)
    free(copy);
}

static void on_priority_update(h3_session *h, uint64_t type, const uint8_t *p,
                               size_t len) {
  uint64_t id;
  ssize_t n = varint_decode(p, len, &id);
  if (n < 0) {
    fail(h, H3Q_H3_FRAME_ERROR, "PRIORITY_UPDATE");
    return;
  }
  const uint8_t *v = p + n;
  size_t vlen = len - (size_t)n;
  if (type == H3_FRAME_PRIORITY_UPDATE_PUSH) {
    if (!push_id_allowed(h, id))
      fail(h, H3Q_H3_ID_ERROR, "PRIORITY_UPDATE for a push never allowed");
    return;
  }
  /* RFC 9218 section 7.1: it must name a client-initiated bidi stream. */
  if ((id & 3) != 0) {
    fail(h, H3Q_H3_ID_ERROR, "PRIORITY_UPDATE for a non-request stream");
    return;
  }
  stream *s = u64map_get(&h->streams, id);
  if (s && s->rstate != REQ_HEADERS)
    stream_priority_update(s, (const char *)v, vlen);
  else
    remember_priority(h, id, v, vlen);
}

static void on_control_frame(h3_session *h, uint64_t type, const uint8_t *p,
                             size_t len) {
  uint64_t value = 0;
  bool one_varint = type == H3_FRAME_GOAWAY || type == H3_FRAME_MAX_PUSH_ID ||
                    type == H3_FRAME_CANCEL_PUSH;
  if (one_varint && !h3_frame_decode_varint_payload(p, len, &value)) {
    fail(h, H3Q_H3_FRAME_ERROR, "malformed control frame");
    return;
  }
  switch (type) {
  case H3_FRAME_SETTINGS: {
    uint64_t err = h3_settings_decode(&h->peer, p, len);
    /* RFC 9297 section 2.1.1: H3_DATAGRAM needs the QUIC transport
     * parameter max_datagram_frame_size. */
    if (!err && h->peer.h3_datagram &&
        quiche_conn_dgram_max_writable_len(h->q) < 0)
      err = H3Q_H3_SETTINGS_ERROR;
    if (err)
      fail(h, err, "SETTINGS");
    h->peer_settings_received = true;
    break;
  }
  case H3_FRAME_GOAWAY:
    on_goaway(h, value);
    break;
  case H3_FRAME_MAX_PUSH_ID:
    on_max_push_id(h, value);
    break;
  case H3_FRAME_CANCEL_PUSH:
    if (!push_id_allowed(h, value))
      fail(h, H3Q_H3_ID_ERROR, "CANCEL_PUSH for a push never allowed");
    break;
  case H3_FRAME_PRIORITY_UPDATE_REQUEST:
  case H3_FRAME_PRIORITY_UPDATE_PUSH:
    on_priority_update(h, type, p, len);
    break;
  default:
    break; /* unknown or reserved: ignored */
  }
}

/* Checks a new control frame header; false when it is an error. */
static bool control_frame_starts(h3_session *h, uint64_t type, uint64_t len) {
  if (!h->peer_settings_received && type != H3_FRAME_SETTINGS) {
    fail(h, H3Q_H3_MISSING_SETTINGS, "first control frame is not SETTINGS");
    return false;
  }
  if (h->peer_settings_received && type == H3_FRAME_SETTINGS) {
    fail(h, H3Q_H3_FRAME_UNEXPECTED, "second SETTINGS");
    return false;
  }
  if (!h3_frame_allowed_on_control(type)) {
    fail(h, H3Q_H3_FRAME_UNEXPECTED, "frame not allowed on control stream");
    return false;
  }
  if (h3_frame_is_known(type) && len > CONTROL_FRAME_MAX) {
    fail(h, H3Q_H3_EXCESSIVE_LOAD, "control frame too large");
    return false;
  }
  return true;
}

/* Parses control stream bytes; returns false after a connection error. */
static bool control_bytes(h3_session *h, const uint8_t *p, size_t len) {
  frame_rx *rx = &h->ctrl_rx;
  size_t off = 0;
  while (off < len && !h->failed) {
    if (!rx->in_payload) {
      off += h3_frame_header_feed(&rx->hdr, p + off, len - off);
      if (h3_frame_header_need(&rx->hdr))
        break;
      h3_frame_header_get(&rx->hdr, &rx->type, &rx->left);
      h3_frame_header_reset(&rx->hdr);
      if (!control_frame_starts(h, rx->type, rx->left))
        return false;
      rx->in_payload = true;
      rx->payload.len = 0;
    }
    size_t take = len - off < rx->left ? len - off : (size_t)rx->left;
    bool keep = h3_frame_is_known(rx->type);
    if (keep && buf_append(&rx->payload, p + off, take) != 0) {
      fail(h, H3Q_H3_INTERNAL_ERROR, "out of memory");
      return false;
    }
    off += take;
    rx->left -= take;
    if (rx->left == 0) {
      rx->in_payload = false;
      on_control_frame(h, rx->type, rx->payload.data, rx->payload.len);
      if (rx->type == H3_FRAME_SETTINGS)
        buf_free(&rx->payload); /* once per connection: nothing kept */
    }
  }
  return !h->failed;
}

/* ---- stream types ---- */

typedef enum uni_kind {
  UNI_CONTROL,
  UNI_ENCODER,
  UNI_DECODER,
  UNI_OTHER
} uni_kind;

static uni_kind kind_of(const h3_session *h, uint64_t id) {
  if ((int64_t)id == h->peer_ctrl)
    return UNI_CONTROL;
  if ((int64_t)id == h->peer_enc)
    return UNI_ENCODER;
  if ((int64_t)id == h->peer_dec)
    return UNI_DECODER;
  return UNI_OTHER;
}

static bool critical_bytes(h3_session *h, uni_kind kind, const uint8_t *p,
                           size_t len) {
  uint64_t err = 0;
  switch (kind) {
  case UNI_CONTROL:
    return control_bytes(h, p, len);
  case UNI_ENCODER:
    err = qpack_decoder_on_encoder_stream(h->qdec, p, len);
    if (!err && h->blocked)
      h3_retry_blocked(h);
    break;
  case UNI_DECODER:
    err = qpack_encoder_on_decoder_stream(&h->dec_partial, p, len);
    break;
  default:
    return true;
  }
  if (err)
    fail(h, err, "QPACK stream");
  return !err;
}

/* Binds a stream to its type once the type varint is complete. */
static void bind_type(h3_session *h, uint64_t id, uint64_t type) {
  int64_t *slot = NULL;
  if (type == H3_STREAM_CONTROL)
    slot = &h->peer_ctrl;
  else if (type == H3_STREAM_QPACK_ENCODER)
    slot = &h->peer_enc;
  else if (type == H3_STREAM_QPACK_DECODER)
    slot = &h->peer_dec;
  if (slot) {
    if (*slot >= 0)
      fail(h, H3Q_H3_STREAM_CREATION_ERROR, "duplicate critical stream");
    else
      *slot = (int64_t)id;
    return;
  }
  if (type == H3_STREAM_PUSH) {
    fail(h, H3Q_H3_STREAM_CREATION_ERROR, "push stream from a client");
    return;
  }
  for (size_t i = 0; i < h->cfg->extension_count; i++) {
    const h3_extension *e = &h->cfg->extensions[i];
    if (!e->bidi && e->type == type) {
      h3_claim_stream(h, id, e, NULL);
      return;
    }
  }
  /* Unknown or reserved type: not read any further (section 6.2). */
  quiche_conn_stream_shutdown(h->q, id, QUICHE_SHUTDOWN_READ,
                              H3Q_H3_STREAM_CREATION_ERROR);
}

/* Bytes still missing from a partly read type varint. */
static size_t type_bytes_needed(const uni_stream *u) {
  return u->have ? ((size_t)1 << (u->type_bytes[0] >> 6)) - u->have : 1;
}

static void critical_closed(h3_session *h);

/* Reads the type varint; returns true once the stream is critical and has
 * more to read. */
static bool read_type(h3_session *h, uint64_t id) {
  uni_stream *u = u64map_get(&h->uni, id);
  if (!u) {
    u = calloc(1, sizeof *u);
    if (!u || u64map_put(&h->uni, id, u) != 0) {
      free(u);
      fail(h, H3Q_H3_INTERNAL_ERROR, "out of memory");
      return false;
    }
  }
  bool fin = false;
  while (type_bytes_needed(u) && !fin) {
    uint64_t code = 0;
    ssize_t n = quiche_conn_stream_recv(h->q, id, u->type_bytes + u->have,
                                        type_bytes_needed(u), &fin, &code);
    if (n == QUICHE_ERR_DONE)
      return false; /* the rest of the type comes later */
    if (n < 0) {
      free(u64map_del(&h->uni, id)); /* reset before it had a type */
      return false;
    }
    u->have = (uint8_t)(u->have + n);
  }
  bool complete = type_bytes_needed(u) == 0;
  uint64_t type = 0;
  if (complete)
    varint_decode(u->type_bytes, u->have, &type);
  free(u64map_del(&h->uni, id));
  if (!complete)
    return false; /* ended before its type: nothing to do */
  bind_type(h, id, type);
  bool critical = !h->failed && kind_of(h, id) != UNI_OTHER;
  if (critical && fin)
    critical_closed(h);
  return critical && !fin;
}

/* A critical stream ended or was reset: connection error (6.2.1, 4.2). */
static void critical_closed(h3_session *h) {
  fail(h, H3Q_H3_CLOSED_CRITICAL_STREAM, "critical stream closed");
}

static void read_critical(h3_session *h, uint64_t id, uni_kind kind) {
  uint8_t chunk[UNI_CHUNK];
  for (int i = 0; i < UNI_READS && !h->failed; i++) {
    bool fin = false;
    uint64_t code = 0;
    ssize_t n =
        quiche_conn_stream_recv(h->q, id, chunk, sizeof chunk, &fin, &code);
    if (n == QUICHE_ERR_DONE)
      return;
    if (n < 0) {
      critical_closed(h); /* reset by the peer */
      return;
    }
    if (n > 0 && !critical_bytes(h, kind, chunk, (size_t)n))
      return;
    if (fin)
      return critical_closed(h);
  }
  conn_mark_dirty(h->c); /* more next round */
}

void h3_uni_readable(h3_session *h, uint64_t id) {
  uni_kind kind = kind_of(h, id);
  if (kind == UNI_OTHER) {
    const h3_extension *e = u64map_get(&h->claimed, id);
    if (e) {
      e->on_readable(h, id, e->user);
      return;
    }
    if (!read_type(h, id))
      return;
    kind = kind_of(h, id);
  }
  read_critical(h, id, kind);
}
