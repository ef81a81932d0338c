/* The HTTP/3 session: created when QUIC is up, it opens our control and
 * QPACK streams, reads every stream quiche reports readable, and services
 * request streams in urgency order. */
#include "h3/session.h"

#include <stdlib.h>
#include <string.h>

#include "h3/stream.h"
#include "h3/stream_internal.h"
#include "util/clock.h"
#include "util/log.h"

/* Our unidirectional streams (server-initiated: 3, 7, 11). */
#define OUR_CONTROL_STREAM 3
#define OUR_ENCODER_STREAM 7
#define OUR_DECODER_STREAM 11
/* Readable streams handled per process call, so one busy connection cannot
 * starve the others; the rest are read on the next round. */
#define READABLE_PER_PROCESS 1024
/* quiche urgency for critical streams: ahead of every request (quiche
 * maps RFC 9218 urgencies from 124 upward, see response_send.c). */
#define CRITICAL_URGENCY 0

quiche_conn *h3_session_quiche(h3_session *h) {
  return h->q;
}
conn *h3_session_conn(h3_session *h) {
  return h->c;
}
const h3_settings *h3_session_peer_settings(const h3_session *h) {
  return h->peer_settings_received ? &h->peer : NULL;
}

void h3_session_fail(h3_session *h, uint64_t code, const char *why) {
  if (h->failed)
    return;
  h->failed = true;
  LOG_DEBUG("conn %llu: HTTP/3 error 0x%llx: %s",
            (unsigned long long)h->c->number, (unsigned long long)code, why);
  conn_close(h->c, code);
}

void h3_session_count_peer_reset(h3_session *h) {
  size_t limit = h->cfg->max_resets_per_sec;
  if (limit == 0 || h->failed)
    return;
  uint64_t now = clock_now_ns();
  if (now - h->reset_window_start_ns >= 1000000000u) {
    h->reset_window_start_ns = now;
    h->resets_in_window = 0;
  }
  if (++h->resets_in_window <= limit)
    return;
  LOG_WARN("conn %llu: peer reset more than %zu requests in a second; "
           "closing (H3_EXCESSIVE_LOAD)",
           (unsigned long long)h->c->number, limit);
  h3_session_fail(h, H3Q_H3_EXCESSIVE_LOAD, "too many request streams reset");
}

/* Writes as much of out as quiche takes on our stream id. */
static void flush_one(h3_session *h, uint64_t id, buf *out) {
  if (!out->len || h->failed)
    return;
  uint64_t code = 0;
  ssize_t n =
      quiche_conn_stream_send(h->q, id, out->data, out->len, false, &code);
  if (n == QUICHE_ERR_DONE)
    return;
  if (n < 0) {
    /* STOP_SENDING on a critical stream, or no stream credit. */
    h3_session_fail(h,
                    n == QUICHE_ERR_STREAM_STOPPED
                        ? H3Q_H3_CLOSED_CRITICAL_STREAM
                        : H3Q_H3_STREAM_CREATION_ERROR,
                    "cannot write a critical stream");
    return;
  }
  buf_consume(out, (size_t)n);
  if (!out->len && id != OUR_DECODER_STREAM)
    buf_free(out); /* written once or rarely: no memory kept while idle */
}

void h3_flush_uni(h3_session *h) {
  buf *dec = qpack_decoder_instructions(h->qdec);
  if (dec->len && buf_append(&h->dec_out, dec->data, dec->len) == 0)
    dec->len = 0;
  flush_one(h, OUR_CONTROL_STREAM, &h->ctrl_out);
  flush_one(h, OUR_ENCODER_STREAM, &h->enc_out);
  flush_one(h, OUR_DECODER_STREAM, &h->dec_out);
}

static int open_uni_streams(h3_session *h) {
  if (buf_append_byte(&h->ctrl_out, H3_STREAM_CONTROL) ||
      h3_settings_write_frame(&h->ctrl_out, &h->cfg->local) ||
      buf_append_byte(&h->enc_out, H3_STREAM_QPACK_ENCODER) ||
      buf_append_byte(&h->dec_out, H3_STREAM_QPACK_DECODER))
    return -1;
  h3_flush_uni(h);
  quiche_conn_stream_priority(h->q, OUR_CONTROL_STREAM, CRITICAL_URGENCY,
                              false);
  quiche_conn_stream_priority(h->q, OUR_ENCODER_STREAM, CRITICAL_URGENCY,
                              false);
  quiche_conn_stream_priority(h->q, OUR_DECODER_STREAM, CRITICAL_URGENCY,
                              false);
  return 0;
}

void *h3_session_layer_state(const h3_session *h, int index) {
  return index >= 0 && (size_t)index < h->layers_started ? h->layer_state[index]
                                                         : NULL;
}

void h3_layers_stream_closed(h3_session *h, uint64_t id) {
  for (size_t i = 0; i < h->layers_started; i++) {
    const h3_layer *l = &h->cfg->layers[i];
    if (l->on_stream_closed)
      l->on_stream_closed(h, h->layer_state[i], id, l->user);
  }
}

static int start_layers(h3_session *h) {
  for (size_t i = 0; i < h->cfg->layer_count; i++) {
    const h3_layer *l = &h->cfg->layers[i];
    if (l->on_start && l->on_start(h, &h->layer_state[i], l->user) != 0)
      return -1;
    h->layers_started = i + 1;
  }
  return 0;
}

static void *session_start(conn *c, void *ctx) {
  const h3_config *cfg = ctx;
  h3_session *h = calloc(1, sizeof *h);
  if (!h)
    return NULL;
  h->c = c;
  h->q = c->q;
  h->cfg = cfg;
  h->peer_ctrl = h->peer_enc = h->peer_dec = -1;
  h->next_local_bidi = 1;
  h->next_local_uni = OUR_DECODER_STREAM + 4;
  h3_settings_init(&h->peer);
  h->qdec = qpack_decoder_new(cfg->local.qpack_max_table_capacity,
                              cfg->local.qpack_blocked_streams);
  if (!h->qdec || open_uni_streams(h) != 0 || start_layers(h) != 0) {
    h3_app_ops.destroy(h);
    return NULL;
  }
  return h;
}

/* Client-initiated bidirectional streams carry requests (RFC 9114 6.1);
 * client-initiated unidirectional ones carry the peer's control, QPACK
 * and extension streams; server-initiated ones are ours to write. */
static void on_readable(h3_session *h, uint64_t id) {
  switch (id & 3) {
  case 0:
    h3_request_readable(h, id);
    break;
  case 2:
    h3_uni_readable(h, id);
    break;
  case 1: { /* ours, opened for an extension (h3_open_stream) */
    const h3_extension *e = u64map_get(&h->claimed, id);
    if (e)
      e->on_readable(h, id, e->user);
    break;
  }
  default:
    break;
  }
}

#define URGENCY_LEVELS 8

/* Services queued streams most urgent first (RFC 9218): whoever writes
 * first takes the connection's send capacity, so the order of these
 * callbacks is what makes priorities real, not just quiche's packet
 * scheduler. Within one urgency, queue order. */
static void service_streams(h3_session *h) {
  stream *head[URGENCY_LEVELS] = {0}, *tail[URGENCY_LEVELS] = {0};
  for (stream *s = h->service, *next; s; s = next) {
    next = s->service_next;
    unsigned u = s->prio.urgency < URGENCY_LEVELS ? s->prio.urgency : 7;
    s->service_next = NULL;
    if (tail[u])
      tail[u]->service_next = s;
    else
      head[u] = s;
    tail[u] = s;
  }
  h->service = NULL;
  for (unsigned u = 0; u < URGENCY_LEVELS; u++) {
    for (stream *s = head[u], *next; s; s = next) {
      next = s->service_next;
      stream_service(s);
    }
  }
}

static void session_process(void *app) {
  h3_session *h = app;
  h->processing = true;
  for (int i = 0; i < READABLE_PER_PROCESS && !h->failed; i++) {
    int64_t id = quiche_conn_stream_readable_next(h->q);
    if (id < 0)
      break;
    on_readable(h, (uint64_t)id);
    if (i == READABLE_PER_PROCESS - 1)
      conn_mark_dirty(h->c); /* more to read next round */
  }
  for (size_t i = 0; i < h->layers_started && !h->failed; i++) {
    const h3_layer *l = &h->cfg->layers[i];
    if (l->on_process)
      l->on_process(h, h->layer_state[i], l->user);
  }
  h3_flush_uni(h); /* GOAWAY and QPACK instructions before responses */
  if (!h->failed)
    service_streams(h);
  if (h3_drain_done(h) && !quiche_conn_is_draining(h->q))
    conn_close(h->c, H3Q_H3_NO_ERROR); /* every response delivered */
  h->processing = false;
}

/* Frees a map's slots once it is empty (it grows again on the next put). */
static void map_trim(u64map *m) {
  if (m->len == 0 && m->cap)
    u64map_free(m);
}

/* A session with no request open gives back what its requests left behind
 * (stream map slots, QPACK's decode scratch), so that idle connections
 * keep only what they need. From the housekeeping tick: a busy connection
 * never pays for it. */
static void session_trim(h3_session *h) {
  if (h->streams.len)
    return;
  map_trim(&h->streams);
  map_trim(&h->uni);
  map_trim(&h->claimed);
  map_trim(&h->flushing);
  map_trim(&h->early_priority);
  qpack_decoder_trim(h->qdec);
}

static void session_tick(void *app, uint64_t now_ns) {
  h3_drain_tick(app, now_ns);
  session_trim(app);
}

static void session_goaway(void *app, uint64_t deadline_ns) {
  h3_session *h = app;
  bool first = !h->going_away;
  h3_drain_goaway(h, deadline_ns);
  for (size_t i = 0; first && i < h->layers_started; i++) {
    const h3_layer *l = &h->cfg->layers[i];
    if (l->on_goaway)
      l->on_goaway(h, h->layer_state[i], l->user);
  }
}

static void free_map_values(u64map *m) {
  for (size_t i = 0; i < m->cap; i++)
    free(m->slots[i].value);
  u64map_free(m);
}

static void session_destroy(void *app) {
  h3_session *h = app;
  /* Close callbacks first: handlers may still look at their requests. */
  while (h->streams.len) {
    /* Freeing shifts entries around; restart from the first occupied. */
    size_t i = 0;
    while (!h->streams.slots[i].value)
      i++;
    stream_abort_and_free(h->streams.slots[i].value);
  }
  u64map_free(&h->streams);
  for (size_t i = h->layers_started; i-- > 0;) {
    const h3_layer *l = &h->cfg->layers[i];
    if (l->on_destroy)
      l->on_destroy(h, h->layer_state[i], l->user);
  }
  free_map_values(&h->uni);
  free_map_values(&h->early_priority);
  u64map_free(&h->claimed);
  u64map_free(&h->flushing);
  buf_free(&h->ctrl_out);
  buf_free(&h->enc_out);
  buf_free(&h->dec_out);
  buf_free(&h->ctrl_rx.payload);
  buf_free(&h->dec_partial);
  qpack_decoder_free(h->qdec);
  free(h);
}

const conn_app_ops h3_app_ops = {
    .start = session_start,
    .process = session_process,
    .tick = session_tick,
    .goaway = session_goaway,
    .destroy = session_destroy,
    .no_error = H3Q_H3_NO_ERROR,
    .internal_error = H3Q_H3_INTERNAL_ERROR,
};

int64_t h3_open_stream(h3_session *h, bool bidi, const h3_extension *e) {
  uint64_t left = bidi ? quiche_conn_peer_streams_left_bidi(h->q)
                       : quiche_conn_peer_streams_left_uni(h->q);
  if (left == 0)
    return H3Q_EAGAIN;
  uint64_t *next = bidi ? &h->next_local_bidi : &h->next_local_uni;
  uint64_t id = *next;
  if (u64map_put(&h->claimed, id, (void *)e) != 0)
    return H3Q_ENOMEM;
  *next += 4;
  return (int64_t)id;
}

ssize_t h3_stream_room(quiche_conn *q, uint64_t id, size_t header_max) {
  ssize_t cap = quiche_conn_stream_capacity(q, id);
  if (cap < 0)
    return cap;
  if ((size_t)cap <= header_max) {
    quiche_conn_stream_writable(q, id, header_max + 1);
    return 0;
  }
  return cap - (ssize_t)header_max;
}

/* Room a FIN-only STREAM frame needs in the packets sent next, besides
 * the queued datagrams (which quiche sends before stream frames), and per
 * datagram the packet overhead. */
#define FIN_ROOM 64
#define DGRAM_OVERHEAD 64

bool h3_session_processing(const h3_session *h) {
  return h->processing;
}

uint64_t h3_session_send_generation(const h3_session *h) {
  return h->c->send_generation;
}

ssize_t h3_stream_send_fin(h3_session *h, uint64_t id, bool data_unsent,
                           uint64_t *code) {
  static const uint8_t empty[1];
  if (data_unsent)
    return quiche_conn_stream_send(h->q, id, empty, 0, true, code);
  if (!h->processing)
    return QUICHE_ERR_DONE;
  ssize_t queued = quiche_conn_dgram_send_queue_byte_size(h->q);
  ssize_t count = quiche_conn_dgram_send_queue_len(h->q);
  size_t need = FIN_ROOM + (queued > 0 ? (size_t)queued : 0) +
                (count > 0 ? (size_t)count * DGRAM_OVERHEAD : 0);
  ssize_t room = h3_stream_room(h->q, id, need);
  if (room < 0)
    return room;
  if (room == 0)
    return QUICHE_ERR_DONE;
  quiche_conn_stream_priority(h->q, id, CRITICAL_URGENCY, false);
  return quiche_conn_stream_send(h->q, id, empty, 0, true, code);
}

bool h3_claim_stream(h3_session *h, uint64_t id, const h3_extension *e,
                     stream *s) {
  if (u64map_put(&h->claimed, id, (void *)e) != 0)
    return false;
  if (s)
    stream_forget(s); /* not a request: no handler, no close callback */
  uint64_t refuse = e->on_stream(h, id, e->user);
  if (refuse) {
    u64map_del(&h->claimed, id);
    quiche_conn_stream_shutdown(h->q, id, QUICHE_SHUTDOWN_READ, refuse);
    if ((id & 2) == 0)
      quiche_conn_stream_shutdown(h->q, id, QUICHE_SHUTDOWN_WRITE, refuse);
    return true;
  }
  if (quiche_conn_stream_readable(h->q, id))
    e->on_readable(h, id, e->user); /* what came with the type */
  return true;
}

void h3_config_init(h3_config *cfg, const h3q_config *pub) {
  memset(cfg, 0, sizeof *cfg);
  h3_settings_init(&cfg->local);
  cfg->local.qpack_max_table_capacity = pub->qpack_max_table_capacity;
  cfg->local.qpack_blocked_streams = pub->qpack_blocked_streams;
  /* Announced at twice the configured size: sections just over the limit
   * still arrive and get a 431 instead of a refusal by the client. */
  cfg->local.max_field_section_size =
      2 * (uint64_t)pub->max_request_headers_size;
  cfg->local.enable_connect_protocol = pub->enable_extended_connect;
  cfg->local.h3_datagram = pub->enable_dgram && pub->enable_h3_datagram;
  cfg->vlimits = (validate_limits){
      .max_header_count = pub->max_header_count,
      .max_header_name_length = pub->max_header_name_length,
      .max_header_value_length = pub->max_header_value_length,
      .max_request_headers_size = pub->max_request_headers_size,
      .max_path_length = pub->max_path_length,
      .extended_connect = pub->enable_extended_connect,
  };
  /* An encoded section is never much larger than its decoded size. */
  cfg->max_headers_frame = cfg->local.max_field_section_size + 1024;
  cfg->max_request_body_size = pub->max_request_body_size;
  cfg->max_active_requests = pub->max_active_requests_per_conn;
  cfg->max_active_downloads = pub->max_active_downloads_per_conn;
  cfg->max_resets_per_sec = pub->max_request_resets_per_sec;
  cfg->header_timeout_ns = pub->request_header_timeout_ms * 1000000u;
  cfg->body_idle_timeout_ns = pub->body_idle_timeout_ms * 1000000u;
}

int h3_config_add_layer(h3_config *cfg, const h3_layer *layer) {
  if (!layer)
    return H3Q_EINVAL;
  if (cfg->layer_count == H3_LAYERS_MAX)
    return H3Q_ETOOLARGE;
  cfg->layers[cfg->layer_count] = *layer;
  return (int)cfg->layer_count++;
}

static bool type_is_h3s_own(uint64_t type, bool bidi) {
  if (bidi)
    return h3_frame_is_known(type);
  return type <= H3_STREAM_QPACK_DECODER;
}

int h3_config_add_extension(h3_config *cfg, const h3_extension *ext) {
  if (!ext || !ext->on_stream || !ext->on_readable ||
      type_is_h3s_own(ext->type, ext->bidi))
    return H3Q_EINVAL;
  for (size_t i = 0; i < cfg->extension_count; i++)
    if (cfg->extensions[i].type == ext->type &&
        cfg->extensions[i].bidi == ext->bidi)
      return H3Q_EEXIST;
  if (cfg->extension_count == H3_EXTENSIONS_MAX)
    return H3Q_ETOOLARGE;
  cfg->extensions[cfg->extension_count++] = *ext;
  return H3Q_OK;
}
