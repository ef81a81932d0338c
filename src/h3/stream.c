/* Stream lifecycle: creation, dispatch to the router, servicing queued
 * work, and freeing once both sides are done. */
#include "h3/stream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "h3/arena.h"
#include "h3/stream_internal.h"
#include "util/clock.h"
#include "util/log.h"

stream *stream_new(conn *c, uint64_t id) {
  stream *s = calloc(1, sizeof *s);
  if (!s)
    return NULL;
  if (u64map_put(&c->streams, id, s) != 0) {
    free(s);
    return NULL;
  }
  s->req.s = s;
  s->res.s = s;
  s->c = c;
  s->id = id;
  s->rstate = REQ_BODY;
  s->wstate = RES_IDLE;
  s->status = 200;
  s->prio = (priority){PRIORITY_DEFAULT_URGENCY, false};
  s->early_data = quiche_conn_is_in_early_data(c->q);
  s->opened_ns = clock_now_ns();
  return s;
}

static void unlink_service(stream *s) {
  for (stream **p = &s->c->service; *p; p = &(*p)->service_next) {
    if (*p == s) {
      *p = s->service_next;
      return;
    }
  }
}

static void stream_free(stream *s) {
  if (s->in_service)
    unlink_service(s); /* it may have queued itself while finishing */
  u64map_del(&s->c->streams, s->id);
  arena_free(&s->rarena);
  arena_free(&s->warena);
  free(s->rfields);
  free(s->rtrailers);
  free(s->wfields);
  free(s->wtrailers);
  free(s->pending_body);
  free(s);
}

void stream_queue(stream *s) {
  if (s->in_service || s->closed)
    return;
  s->in_service = true;
  s->service_next = s->c->service;
  s->c->service = s;
}

static void run_close_cb(stream *s) {
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
    request_pump(s);
  }
  if (s->want_writable && s->wstate != RES_RESET)
    response_on_room(s);
  /* Runs after every polled event, so a FIN that already arrived has been
   * seen: a request still open here is really unfinished (e.g. a body
   * nobody reads after a 404), and STOP_SENDING tells the peer to stop. */
  if (s->wstate == RES_DONE)
    request_stop_reading(s, H3_NO_ERROR);
  if (stream_finished(s)) {
    run_close_cb(s);
    if (!s->aborted)
      conn_track_flushing(s->c, s->id);
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

static void call_handler(stream *s, h3q_handler fn, void *user) {
  int rc = fn(&s->req, &s->res, user);
  if (rc >= 0 || s->closed)
    return;
  LOG_DEBUG("conn %llu stream %llu: handler returned %s",
            (unsigned long long)s->c->number, (unsigned long long)s->id,
            h3q_strerror(rc));
  if (s->wstate == RES_IDLE)
    stream_respond_status(s, h3q_error_to_status(rc), NULL);
  else
    h3q_response_reset(&s->res, H3_INTERNAL_ERROR);
}

static int copy_params(stream *s, const route_match *m) {
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

void stream_dispatch(stream *s) {
  h3q_server *srv = s->c->srv;
  srv->stats.requests++;
  if (!s->reject_status)
    s->reject_status = request_check_pseudo(s);
  if (!s->reject_status && s->has_content_length &&
      s->content_length > srv->cfg.c.max_request_body_size)
    s->reject_status = 413; /* the rest is refused with STOP_SENDING */
  if (s->reject_status) {
    stream_respond_status(s, s->reject_status, NULL);
    return;
  }
  const char *method = arena_str(&s->rarena, s->method);
  const char *path = arena_str(&s->rarena, s->path);
  s->is_head = strcmp(method, "HEAD") == 0;
  apply_request_priority(s);
  if (s->early_data && !method_is_safe(method)) {
    /* RFC 8470: an unsafe request in 0-RTT could be replayed. */
    stream_respond_status(s, 425, NULL);
    return;
  }
  route_match m;
  router_result r = router_match(srv->router, method, path, strlen(path), &m);
  if (r == ROUTER_FOUND) {
    if (copy_params(s, &m) != H3Q_OK) {
      stream_respond_status(s, 500, NULL);
      return;
    }
    call_handler(s, m.handler, m.user);
  } else if (r == ROUTER_METHOD_NOT_ALLOWED) {
    stream_respond_status(s, 405, m.allow);
  } else if (srv->fallback) {
    call_handler(s, srv->fallback, srv->fallback_user);
  } else {
    stream_respond_status(s, 404, NULL);
  }
}

uint64_t stream_peer_error(stream *s) {
  uint64_t code = 0;
  uint8_t none = 0;
  if (quiche_conn_stream_send(s->c->q, s->id, &none, 0, false, &code) ==
      QUICHE_ERR_STREAM_STOPPED)
    return code;
  return 0;
}

void stream_on_reset(stream *s, uint64_t h3_error) {
  /* The peer's RESET_STREAM code; reading a reset stream reports it and
   * consumes nothing. */
  uint8_t byte;
  bool fin = false;
  uint64_t code = 0;
  if (quiche_conn_stream_recv(s->c->q, s->id, &byte, sizeof byte, &fin,
                              &code) == QUICHE_ERR_STREAM_RESET)
    h3_error = code;
  s->peer_error = h3_error;
  LOG_DEBUG("conn %llu stream %llu: reset by peer (0x%llx)",
            (unsigned long long)s->c->number, (unsigned long long)s->id,
            (unsigned long long)h3_error);
  stream_abort(s, H3_REQUEST_CANCELLED);
}

/* Stops both directions and marks the stream for freeing. */
void stream_abort(stream *s, uint64_t h3_error) {
  if (s->wstate != RES_DONE && s->wstate != RES_RESET) {
    quiche_conn_stream_shutdown(s->c->q, s->id, QUICHE_SHUTDOWN_WRITE,
                                h3_error);
    s->wstate = RES_RESET;
    s->aborted = true;
  }
  request_stop_reading(s, h3_error);
  s->want_writable = false;
  stream_queue(s);
  conn_mark_dirty(s->c);
}
