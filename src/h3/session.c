#include "h3/session.h"

#include "h3/stream.h"
#include "h3/stream_internal.h"
#include "http/validate.h"
#include "util/log.h"

/* Events handled per session_poll call, so one busy connection cannot
 * starve the others; the rest are polled on the next round. */
#define SESSION_EVENTS_PER_POLL 1024

int session_start(conn *c) {
  c->h3 = quiche_h3_conn_new_with_transport(c->q, c->srv->h3cfg);
  if (!c->h3) {
    LOG_WARN("conn %llu: cannot start HTTP/3", (unsigned long long)c->number);
    conn_close(c, H3_INTERNAL_ERROR);
    return -1;
  }
  return 0;
}

/* One header section being read: validate.c's verdict and where the
 * fields go. The validator borrows values from quiche's event, so
 * validation finishes before the event is freed. */
typedef struct section {
  stream *s;
  validate_state v;
  bool trailers;
} section;

static int collect_field(uint8_t *name, size_t nlen, uint8_t *value,
                         size_t vlen, void *argp) {
  section *sec = argp;
  validate_field(&sec->v, name, nlen, value, vlen);
  if (sec->v.verdict != VALIDATE_OK)
    return 1; /* non-zero stops quiche's iteration */
  int rc = sec->trailers
               ? stream_add_request_trailer(sec->s, name, nlen, value, vlen)
               : stream_add_request_field(sec->s, name, nlen, value, vlen);
  return rc ? 1 : 0;
}

/* Reads and validates a section; returns false when the stream was reset
 * or answered because of it. */
static bool read_section(conn *c, stream *s, quiche_h3_event *ev,
                         bool trailers) {
  section sec = {.s = s, .trailers = trailers};
  validate_init(&sec.v, &c->srv->vlimits, trailers);
  bool stored = quiche_h3_event_for_each_header(ev, collect_field, &sec) == 0;
  validate_verdict verdict = validate_finish(&sec.v);
  if (verdict == VALIDATE_OK && !stored)
    verdict = VALIDATE_STATUS, sec.v.status = 500; /* out of memory */
  if (verdict == VALIDATE_OK) {
    if (!trailers)
      s->has_content_length =
          validate_content_length(&sec.v, &s->content_length);
    return true;
  }
  LOG_DEBUG("conn %llu stream %llu: rejected: %s",
            (unsigned long long)c->number, (unsigned long long)s->id,
            sec.v.reason ? sec.v.reason : "limit");
  if (verdict == VALIDATE_MALFORMED || s->wstate != RES_IDLE) {
    stream_abort(s, H3_MESSAGE_ERROR);
    return false;
  }
  s->reject_status = sec.v.status;
  return !trailers;
}

static void on_headers(conn *c, uint64_t id, quiche_h3_event *ev) {
  stream *s = u64map_get(&c->streams, id);
  if (s) {
    /* A second header section on a request is its trailer section. */
    if (!read_section(c, s, ev, true) && s->reject_status)
      stream_respond_status(s, s->reject_status, NULL);
    return;
  }
  if (conn_refuses_stream(c, id)) {
    u64map_del(&c->awaiting_headers, id);
    return;
  }
  size_t limit = c->srv->cfg.c.max_active_requests_per_conn;
  s = stream_new(c, id);
  if (!s) {
    quiche_conn_stream_shutdown(c->q, id, QUICHE_SHUTDOWN_READ,
                                H3_INTERNAL_ERROR);
    quiche_conn_stream_shutdown(c->q, id, QUICHE_SHUTDOWN_WRITE,
                                H3_INTERNAL_ERROR);
    return;
  }
  u64map_del(&c->awaiting_headers, id);
  c->max_request_id = id > c->max_request_id ? id : c->max_request_id;
  c->any_request = true;
  if (!read_section(c, s, ev, false))
    return;
  if (limit && c->streams.len > limit && !s->reject_status)
    s->reject_status = 503;
  stream_dispatch(s);
}

static int take_priority(uint8_t *value, uint64_t len, void *argp) {
  stream_priority_update(argp, (const char *)value, (size_t)len);
  return 0;
}

static void dispatch_event(conn *c, int64_t id, quiche_h3_event *ev) {
  enum quiche_h3_event_type type = quiche_h3_event_type(ev);
  if (type == QUICHE_H3_EVENT_HEADERS) {
    on_headers(c, (uint64_t)id, ev);
    return;
  }
  stream *s = u64map_get(&c->streams, (uint64_t)id);
  switch (type) {
  case QUICHE_H3_EVENT_DATA:
    if (s)
      stream_on_data(s);
    break;
  case QUICHE_H3_EVENT_FINISHED:
    if (s)
      stream_on_finished(s);
    break;
  case QUICHE_H3_EVENT_RESET:
    if (s)
      stream_on_reset(s, 0);
    break;
  case QUICHE_H3_EVENT_PRIORITY_UPDATE: {
    /* The id is the prioritized request stream, which may not have sent
     * its headers yet; then the update is taken when they arrive. */
    if (s)
      quiche_h3_take_last_priority_update(c->h3, (uint64_t)id, take_priority,
                                          s);
    break;
  }
  default:
    /* A client's GOAWAY only limits server push, which h3q does not do. */
    break;
  }
}

void session_poll(conn *c) {
  for (int i = 0; i < SESSION_EVENTS_PER_POLL; i++) {
    quiche_h3_event *ev = NULL;
    int64_t id = quiche_h3_conn_poll(c->h3, c->q, &ev);
    if (id == QUICHE_H3_ERR_DONE)
      return;
    if (id < 0) {
      /* quiche has already closed the connection with the right code. */
      LOG_DEBUG("conn %llu: HTTP/3 error %lld", (unsigned long long)c->number,
                (long long)id);
      return;
    }
    dispatch_event(c, id, ev);
    quiche_h3_event_free(ev);
  }
  conn_mark_dirty(c); /* events remain: poll again next round */
}
