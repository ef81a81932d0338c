/* Stream lifecycle: creation, dispatch to the router, servicing queued
 * work, and freeing once both sides are done. */
#include "h3/stream.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "h3/arena.h"
#include "h3/stream_internal.h"
#include "util/clock.h"
#include "util/log.h"

/* Buffers a finished stream keeps for its next request when they are no
 * larger than this, so a request with huge headers does not pin that
 * memory; the frame buffer may hold a whole small response (response.c's
 * SMALL_RESPONSE_MAX plus its header section). Sanitizer builds keep
 * none: freed strings stay detectable. */
#define STREAM_KEEP_MAX 4096
#define STREAM_KEEP_FRAMES_MAX (20 * 1024)
#define STREAM_KEEPS_BUFFERS (!POOL_SANITIZED)

/* The buffers a recycled stream carries over, emptied. */
typedef struct kept_buffers {
  buf rx_section, wframes;
  arena rarena, warena;
} kept_buffers;

static void keep_buf(buf *from, buf *to, size_t max) {
  if (STREAM_KEEPS_BUFFERS && from->cap <= max) {
    *to = (buf){from->data, 0, from->cap};
    *from = (buf){0};
  }
  buf_free(from);
}

static void keep_arena(arena *from, arena *to) {
  if (STREAM_KEEPS_BUFFERS && from->cap <= STREAM_KEEP_MAX) {
    *to = (arena){from->buf, 0, from->cap};
    *from = (arena){0};
  }
  arena_free(from);
}

/* Frees what the stream owns, moving small buffers into keep (NULL: free
 * them all). The stream object itself stays. */
static void stream_release_storage(stream *s, kept_buffers *keep) {
  kept_buffers none = {0};
  kept_buffers *k = keep ? keep : &none;
  keep_buf(&s->rx_section, &k->rx_section, STREAM_KEEP_MAX);
  keep_buf(&s->wframes, &k->wframes, STREAM_KEEP_FRAMES_MAX);
  keep_arena(&s->rarena, &k->rarena);
  keep_arena(&s->warena, &k->warena);
  if (!keep) {
    buf_free(&none.rx_section);
    buf_free(&none.wframes);
    arena_free(&none.rarena);
    arena_free(&none.warena);
  }
  fields_free(s->rfields, s->rfield_inline);
  fields_free(s->wfields, s->wfield_inline);
  free(s->rtrailers);
  free(s->wtrailers);
  free(s->pending_body);
  s->rfields = s->wfields = s->rtrailers = s->wtrailers = NULL;
  s->pending_body = NULL;
}

/* A pooled stream holds its kept buffers in its own fields, emptied. */
static void stream_pool_release(void *obj) {
  stream_release_storage(obj, NULL);
  free(obj);
}

void stream_section_done(stream *s) {
  if (STREAM_KEEPS_BUFFERS && s->rx_section.cap <= STREAM_KEEP_MAX)
    s->rx_section.len = 0;
  else
    buf_free(&s->rx_section);
}

void h3_stream_pool_init(pool *p, size_t max) {
  pool_init(p, sizeof(stream), max);
}

void h3_stream_pool_close(pool *p) {
  pool_close(p, stream_pool_release);
}

/* A zeroed stream: from the pool with its kept buffers, or new. */
static stream *stream_alloc(h3_session *h) {
  pool *p = h->cfg->stream_pool;
  stream *s = p ? pool_take(p) : NULL;
  if (!s)
    return calloc(1, sizeof *s);
  kept_buffers k = {s->rx_section, s->wframes, s->rarena, s->warena};
  memset(s, 0, sizeof *s);
  s->rx_section = k.rx_section;
  s->wframes = k.wframes;
  s->rarena = k.rarena;
  s->warena = k.warena;
  return s;
}

stream *stream_new(h3_session *h, uint64_t id) {
  stream *s = stream_alloc(h);
  if (!s)
    return NULL;
  if (u64map_put(&h->streams, id, s) != 0) {
    stream_pool_release(s);
    return NULL;
  }
  s->req.s = s;
  s->res.s = s;
  s->h = h;
  s->q = h->q;
  s->id = id;
  s->rx = RX_FRAME_HEADER;
  s->rstate = REQ_HEADERS;
  s->wstate = RES_IDLE;
  s->status = 200;
  s->prio = (priority){PRIORITY_DEFAULT_URGENCY, false};
  s->early_data = quiche_conn_is_in_early_data(h->q);
  s->opened_ns = clock_now_ns();
  return s;
}

static void unlink_from(stream **list, stream *s, size_t link_offset) {
  for (stream **p = list; *p; p = (stream **)((char *)*p + link_offset)) {
    if (*p == s) {
      *p = *(stream **)((char *)s + link_offset);
      return;
    }
  }
}

static void stream_free(stream *s) {
  if (s->in_service) /* it may have queued itself while finishing */
    unlink_from(&s->h->service, s, offsetof(stream, service_next));
  if (s->rx == RX_BLOCKED)
    unlink_from(&s->h->blocked, s, offsetof(stream, blocked_next));
  if (s->rx == RX_BLOCKED || s->rx == RX_SECTION)
    qpack_decoder_cancel_stream(s->h->qdec, s->id);
  u64map_del(&s->h->streams, s->id);
  if (s->download)
    s->h->active_downloads--;
  if (!s->forgotten)
    h3_layers_stream_closed(s->h, s->id);
  pool *p = s->h->cfg->stream_pool;
  if (!p || p->closed || p->count >= p->max) {
    stream_pool_release(s);
    return;
  }
  kept_buffers k = {0};
  stream_release_storage(s, &k);
  s->rx_section = k.rx_section; /* carried to the stream's next use */
  s->wframes = k.wframes;
  s->rarena = k.rarena;
  s->warena = k.warena;
  if (!pool_give(p, s))
    stream_pool_release(s);
}

void stream_queue(stream *s) {
  if (s->in_service || s->closed)
    return;
  s->in_service = true;
  s->service_next = s->h->service;
  s->h->service = s;
}

void stream_wake(stream *s) {
  conn_mark_dirty(s->h->c);
}

void stream_request_pump(stream *s) {
  s->want_read_pump = true;
  stream_queue(s);
  stream_wake(s);
}

void stream_forget(stream *s) {
  s->closed = true; /* no handler ever saw it: no close callback */
  s->forgotten = true;
  s->rx = RX_END;
  stream_free(s);
}

void request_set_state(stream *s, req_state to) {
  if (s->rstate == to)
    return;
  LOG_TRACE("stream %llu: request state %d -> %d", (unsigned long long)s->id,
            (int)s->rstate, (int)to);
  s->rstate = to;
  if (to == REQ_DONE) {
    s->body_readable = false;
    if (s->rx != RX_BLOCKED)
      s->rx = RX_END;
  }
}

static void report_done(stream *s) {
  const h3_config *cfg = s->h->cfg;
  /* A stream reset before its header section is no request. */
  if (!cfg->on_request_done || (!s->method && !s->final_sent))
    return;
  h3_request_done d = {
      .status = s->final_sent ? s->status : 0,
      .body_bytes = s->body_sent,
      .duration_ns = clock_now_ns() - s->opened_ns,
      .aborted = s->aborted,
  };
  cfg->on_request_done(&s->req, &d, cfg->user);
}

static void run_close_cb(stream *s) {
  report_done(s);
  s->closed = true;
  if (s->on_close)
    s->on_close(&s->res, s->aborted, s->close_user);
}

void stream_abort_and_free(stream *s) {
  s->aborted = s->aborted || s->wstate != RES_DONE;
  run_close_cb(s);
  stream_free(s);
}

static bool stream_finished(const stream *s) {
  return s->rstate == REQ_DONE &&
         (s->wstate == RES_DONE || s->wstate == RES_RESET);
}

void stream_service(stream *s) {
  s->in_service = false;
  if (s->want_read_pump && !s->paused) {
    s->want_read_pump = false;
    if (s->rstate != REQ_DONE)
      stream_rx_pump(s);
    request_pump(s);
  }
  if (s->want_writable && s->wstate != RES_RESET)
    response_on_room(s);
  /* Runs after every polled event, so a FIN that already arrived has been
   * seen: a request still open here is really unfinished (e.g. a body
   * nobody reads after a 404), and STOP_SENDING tells the peer to stop. */
  if (s->wstate == RES_DONE)
    request_stop_reading(s, H3Q_H3_NO_ERROR);
  if (stream_finished(s)) {
    run_close_cb(s);
    if (!s->aborted)
      h3_drain_track_flushing(s->h, s->id);
    stream_free(s);
    return;
  }
  if (s->want_writable || (s->want_read_pump && !s->paused))
    stream_queue(s); /* still waiting; looked at again next round */
}

/* Answers with a short text body; used for routing and validation errors. */
void stream_respond_status(stream *s, int status, const char *allow) {
  char body[64];
  int n = snprintf(body, sizeof body, "%d\n", status);
  if (allow)
    h3q_response_header(&s->res, "allow", allow);
  h3q_response_send(&s->res, status, "text/plain; charset=utf-8", body,
                    (size_t)n);
}

/* RFC 9110 section 9.2.1. */
static bool method_is_safe(const char *m) {
  return strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0 ||
         strcmp(m, "OPTIONS") == 0 || strcmp(m, "TRACE") == 0;
}

static void apply_request_priority(stream *s) {
  const char *p = h3q_request_header(&s->req, "priority");
  if (!p)
    return;
  priority_parse(p, strlen(p), &s->prio);
  stream_apply_priority(s);
}

void stream_priority_update(stream *s, const char *value, size_t len) {
  if (s->prio_fixed)
    return; /* the handler's choice wins */
  priority_parse(value, len, &s->prio);
  stream_apply_priority(s);
}

void stream_take_early_priority(stream *s) {
  char *v = u64map_del(&s->h->early_priority, s->id);
  if (v)
    stream_priority_update(s, v, strlen(v));
  free(v);
}

/* max_active_downloads_per_conn: GET and HEAD requests in progress on the
 * connection, this one included; one over the limit gets 503. */
static bool download_refused(stream *s, const char *method) {
  h3_session *h = s->h;
  if (strcmp(method, "GET") != 0 && !s->is_head)
    return false;
  s->download = true;
  h->active_downloads++;
  size_t limit = h->cfg->max_active_downloads;
  if (!limit || h->active_downloads <= limit)
    return false;
  LOG_WARN("conn %llu stream %llu: 503: max_active_downloads_per_conn (%zu) "
           "reached",
           (unsigned long long)h->c->number, (unsigned long long)s->id, limit);
  if (h->cfg->stats)
    h->cfg->stats->downloads_rejected++;
  stream_respond_status(s, 503, NULL);
  return true;
}

void stream_dispatch(stream *s) {
  h3_session *h = s->h;
  if (h->cfg->stats)
    h->cfg->stats->requests++;
  if (!s->reject_status)
    s->reject_status = request_check_pseudo(s);
  if (!s->reject_status && s->has_content_length &&
      s->content_length > h->cfg->max_request_body_size)
    s->reject_status = 413; /* the rest is refused with STOP_SENDING */
  if (s->reject_status) {
    stream_respond_status(s, s->reject_status, NULL);
    return;
  }
  const char *method = arena_str(&s->rarena, s->method);
  s->is_head = strcmp(method, "HEAD") == 0;
  if (download_refused(s, method))
    return;
  apply_request_priority(s);
  stream_take_early_priority(s); /* a PRIORITY_UPDATE overrides the header */
  if (s->early_data && !method_is_safe(method)) {
    /* RFC 8470: an unsafe request in 0-RTT could be replayed. */
    stream_respond_status(s, 425, NULL);
    return;
  }
  h->cfg->on_request(&s->req, &s->res, h->cfg->user);
}

int stream_set_route_params(stream *s, const route_match *m) {
  s->param_count = m->param_count;
  for (size_t i = 0; i < m->param_count; i++) {
    s->params[i].name = m->params[i].name;
    s->params[i].name_len = m->params[i].name_len;
    s->params[i].value =
        arena_push(&s->rarena, m->params[i].value, m->params[i].value_len);
    if (!s->params[i].value)
      return H3Q_ENOMEM;
  }
  return H3Q_OK;
}

uint64_t stream_peer_error(stream *s) {
  uint64_t code = 0;
  uint8_t none = 0;
  if (quiche_conn_stream_send(s->q, s->id, &none, 0, false, &code) ==
      QUICHE_ERR_STREAM_STOPPED)
    return code;
  return 0;
}

void stream_on_reset(stream *s, uint64_t h3_error) {
  s->peer_error = h3_error;
  LOG_DEBUG("conn %llu stream %llu: reset by peer (0x%llx)",
            (unsigned long long)s->h->c->number, (unsigned long long)s->id,
            (unsigned long long)h3_error);
  stream_abort(s, H3Q_H3_REQUEST_CANCELLED);
  h3_session_count_peer_reset(s->h);
}

/* Stops both directions and marks the stream for freeing. */
void stream_abort(stream *s, uint64_t h3_error) {
  if (s->wstate != RES_DONE && s->wstate != RES_RESET) {
    quiche_conn_stream_shutdown(s->q, s->id, QUICHE_SHUTDOWN_WRITE, h3_error);
    response_set_state(s, RES_RESET);
    s->aborted = true;
  }
  request_stop_reading(s, h3_error);
  s->want_writable = false;
  stream_queue(s);
  stream_wake(s);
}
