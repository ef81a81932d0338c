/* The public response API (h3q.h): building the response and handing it to
 * response_send.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "h3/arena.h"
#include "h3/stream_internal.h"
#include "http/headers.h"
#include "util/varint.h"

/* Room reported for HEAD responses, whose body bytes are dropped. */
#define HEAD_CAPACITY (1 << 20)
#define TRAILER_NAMES_MAX 1024
/* Bodies up to this size go out with their header section in one stream
 * write, copied into the stream's reused frame buffer (no allocation once
 * the buffer has grown; larger ones are sent from the caller's buffer). */
#define SMALL_RESPONSE_MAX 16384

static bool response_open(const stream *s) {
  return !s->closed && s->wstate != RES_RESET;
}

/* Checks a field and stores it (name lowercased) in arena a. */
static int push_field(arena *a, field **arr, size_t *count, size_t *cap,
                      field *inline_arr, const char *name, const char *value) {
  if (!name || !value)
    return H3Q_EINVAL;
  size_t nlen = strlen(name), vlen = strlen(value);
  if (!header_name_is_token(name, nlen) || !header_value_is_valid(value, vlen))
    return H3Q_EINVAL;
  size_t n = arena_push(a, name, nlen);
  size_t v = arena_push(a, value, vlen);
  if (!n || !v ||
      fields_push(arr, count, cap, inline_arr,
                  inline_arr ? STREAM_INLINE_FIELDS : 0, n, v) != 0)
    return H3Q_ENOMEM;
  ascii_lower(a->buf + n, nlen);
  return H3Q_OK;
}

static int add_field(stream *s, field **arr, size_t *count, size_t *cap,
                     const char *name, const char *value) {
  field *inline_arr = arr == &s->wfields ? s->wfield_inline : NULL;
  return push_field(&s->warena, arr, count, cap, inline_arr, name, value);
}

int h3q_response_set_status(h3q_response *res, int status) {
  stream *s = res->s;
  if (status < 200 || status > 599)
    return H3Q_EINVAL;
  if (s->wstate != RES_IDLE)
    return H3Q_ESTATE;
  s->status = status;
  return H3Q_OK;
}

int h3q_response_header(h3q_response *res, const char *name,
                        const char *value) {
  stream *s = res->s;
  if (s->wstate != RES_IDLE)
    return H3Q_ESTATE;
  return add_field(s, &s->wfields, &s->wfield_count, &s->wfield_cap, name,
                   value);
}

static bool has_header(const stream *s, const char *name) {
  for (size_t i = 0; i < s->wfield_count; i++)
    if (strcmp(arena_str(&s->warena, s->wfields[i].name), name) == 0)
      return true;
  return false;
}

int h3q_response_trailer(h3q_response *res, const char *name,
                         const char *value) {
  stream *s = res->s;
  if (!response_open(s))
    return H3Q_ECLOSED;
  if (s->end_requested || s->wstate == RES_DONE)
    return H3Q_ESTATE;
  return add_field(s, &s->wtrailers, &s->wtrailer_count, &s->wtrailer_cap, name,
                   value);
}

/* Announces trailer names in a trailer header unless the handler did. */
static int announce_trailers(stream *s) {
  if (!s->wtrailer_count || s->wstate != RES_IDLE || has_header(s, "trailer"))
    return H3Q_OK;
  char names[TRAILER_NAMES_MAX];
  size_t len = 0;
  for (size_t i = 0; i < s->wtrailer_count; i++) {
    const char *n = arena_str(&s->warena, s->wtrailers[i].name);
    int w = snprintf(names + len, sizeof names - len, "%s%s", i ? ", " : "", n);
    if (w < 0 || (size_t)w >= sizeof names - len)
      break; /* too many to announce; they are still sent */
    len += (size_t)w;
  }
  return h3q_response_header(&s->res, "trailer", names);
}

/* Sends what can be sent now, announcing trailers first. */
static int progress(stream *s) {
  int rc = announce_trailers(s);
  return rc != H3Q_OK ? rc : response_progress(s);
}

int h3q_response_send_informational(h3q_response *res, int status,
                                    const char *const *names,
                                    const char *const *values, size_t count) {
  stream *s = res->s;
  if (!response_open(s))
    return H3Q_ECLOSED;
  if (status < 100 || status > 199 || status == 101 || (count && !names) ||
      (count && !values))
    return H3Q_EINVAL;
  if (s->wstate != RES_IDLE)
    return H3Q_ESTATE;
  arena a = {0};
  field *f = NULL;
  size_t n = 0, cap = 0;
  int rc = H3Q_OK;
  for (size_t i = 0; i < count && rc == H3Q_OK; i++)
    rc = push_field(&a, &f, &n, &cap, NULL, names[i], values[i]);
  if (rc == H3Q_OK)
    rc = response_send_section(s, &a, f, n, status, false, false);
  if (rc == H3Q_OK)
    s->informational_sent = true;
  else if (rc == H3Q_EAGAIN)
    s->want_writable = false; /* the caller retries; nothing is queued */
  free(f);
  arena_free(&a);
  return rc;
}

ssize_t h3q_response_write(h3q_response *res, const void *data, size_t len) {
  stream *s = res->s;
  if (!response_open(s))
    return H3Q_ECLOSED;
  if (s->end_requested || s->wstate == RES_DONE || s->producer)
    return H3Q_ESTATE;
  if (!data && len)
    return H3Q_EINVAL;
  if (s->wstate != RES_BODY) {
    int rc = progress(s);
    if (rc != H3Q_OK)
      return rc;
  }
  if (s->is_head)
    return (ssize_t)len;
  if (s->pending_off < s->pending_len)
    return H3Q_EAGAIN;
  if (len == 0)
    return 0;
  ssize_t n = response_send_body(s, data, len, false);
  return n == 0 ? H3Q_EAGAIN : n;
}

ssize_t h3q_response_capacity(h3q_response *res) {
  stream *s = res->s;
  if (!response_open(s))
    return H3Q_ECLOSED;
  if (s->end_requested || s->wstate == RES_DONE)
    return H3Q_ESTATE;
  if (s->wstate != RES_BODY) {
    int rc = progress(s);
    if (rc == H3Q_EAGAIN)
      return 0;
    if (rc != H3Q_OK)
      return rc;
  }
  if (s->is_head)
    return HEAD_CAPACITY;
  if (s->wframes.len)
    return 0; /* a header section still waits for room */
  /* What a write takes: the room less one DATA frame header. */
  ssize_t room = h3_stream_room(s->q, s->id, RESPONSE_DATA_HEADER_MAX);
  if (room < 0)
    return H3Q_ECLOSED;
  if (room == 0)
    response_block(s);
  return room;
}

int h3q_response_end(h3q_response *res) {
  stream *s = res->s;
  if (!response_open(s))
    return H3Q_ECLOSED;
  if (s->end_requested || s->wstate == RES_DONE || s->producer)
    return H3Q_ESTATE;
  s->end_requested = true;
  int rc = progress(s);
  return rc == H3Q_EAGAIN ? H3Q_OK : rc; /* finishes when room appears */
}

/* 1xx, 204 and 304 responses have no content (RFC 9110 sections 6.4.1,
 * 15.3.5, 15.4.5): no body and no content-length for it. */
static bool status_has_body(int status) {
  return status != 204 && status != 304;
}

/* The header section, then as much of the body as the stream takes now,
 * straight from the caller's buffer: only what does not fit is copied
 * (a small response allocates nothing for its body). */
static int send_whole_body(stream *s, const uint8_t *body, size_t len) {
  int rc = progress(s);
  if (rc != H3Q_OK && rc != H3Q_EAGAIN)
    return rc;
  size_t sent = 0;
  bool fin = s->wtrailer_count == 0;
  if (s->wstate == RES_BODY && !s->wframes.len) {
    ssize_t n = response_send_body(s, body, len, fin);
    if (n < 0 && n != H3Q_EAGAIN)
      return (int)n;
    sent = n > 0 ? (size_t)n : 0;
  }
  if (sent == len && fin && s->wstate == RES_DONE) {
    s->end_requested = true;
    stream_queue(s); /* stream_service finishes the request side */
    return H3Q_OK;
  }
  if (sent < len) {
    s->pending_body = malloc(len - sent);
    if (!s->pending_body)
      return H3Q_ENOMEM;
    memcpy(s->pending_body, body + sent, len - sent);
    s->pending_len = s->pending_cap = len - sent;
  }
  return h3q_response_end(&s->res);
}

/* Whether h3q_response_send can hand everything to quiche in one write
 * (response_send_small): a small body and nothing else to order it with. */
static bool fits_small_path(const stream *s, size_t len) {
  return len <= SMALL_RESPONSE_MAX && s->wtrailer_count == 0 &&
         s->wframes.len == 0 && s->pending_off >= s->pending_len;
}

int h3q_response_send(h3q_response *res, int status, const char *content_type,
                      const void *body, size_t len) {
  stream *s = res->s;
  if (!response_open(s))
    return H3Q_ECLOSED;
  if (s->wstate != RES_IDLE || s->producer)
    return H3Q_ESTATE;
  if ((!body && len) || (!status_has_body(status) && len))
    return H3Q_EINVAL;
  if (status >= 200 && status <= 599 && fits_small_path(s, len)) {
    bool has_body = status_has_body(status);
    if (content_type && has_body &&
        !header_value_is_valid(content_type, strlen(content_type)))
      return H3Q_EINVAL;
    s->status = status;
    return response_send_small(s, has_body ? content_type : NULL, has_body, len,
                               body, s->is_head ? 0 : len);
  }
  int rc = h3q_response_set_status(res, status);
  char clen[24];
  snprintf(clen, sizeof clen, "%zu", len);
  if (rc == H3Q_OK && content_type && status_has_body(status))
    rc = h3q_response_header(res, "content-type", content_type);
  if (rc == H3Q_OK && status_has_body(status))
    rc = h3q_response_header(res, "content-length", clen);
  if (rc != H3Q_OK)
    return rc;
  if (len && !s->is_head)
    return send_whole_body(s, body, len);
  return h3q_response_end(res);
}

int h3_response_queue(h3q_response *res, const void *data, size_t len) {
  stream *s = res->s;
  if (!response_open(s))
    return H3Q_ECLOSED;
  if (s->end_requested || s->wstate == RES_DONE || s->producer)
    return H3Q_ESTATE;
  if (s->is_head || len == 0)
    return progress(s) == H3Q_ECLOSED ? H3Q_ECLOSED : H3Q_OK;
  size_t left = s->pending_len - s->pending_off;
  if (s->pending_off) { /* compact: what was sent is gone */
    memmove(s->pending_body, s->pending_body + s->pending_off, left);
    s->pending_off = 0;
    s->pending_len = left;
  }
  if (left + len > s->pending_cap) {
    uint8_t *grown = realloc(s->pending_body, left + len);
    if (!grown)
      return H3Q_ENOMEM;
    s->pending_body = grown;
    s->pending_cap = left + len;
  }
  memcpy(s->pending_body + left, data, len);
  s->pending_len = left + len;
  int rc = progress(s);
  return rc == H3Q_EAGAIN ? H3Q_OK : rc; /* the rest as room appears */
}

int h3q_response_set_producer(h3q_response *res, h3q_producer producer,
                              void *user) {
  stream *s = res->s;
  if (!producer)
    return H3Q_EINVAL;
  if (!response_open(s))
    return H3Q_ECLOSED;
  if (s->end_requested || s->wstate == RES_DONE || s->producer ||
      s->pending_off < s->pending_len)
    return H3Q_ESTATE;
  if (s->is_head)
    return h3q_response_end(res); /* no body to produce */
  s->producer = producer;
  s->producer_user = user;
  s->producer_waiting = false;
  /* First call on the next round, not from inside the handler. */
  response_block(s);
  stream_wake(s);
  return H3Q_OK;
}

void h3q_response_resume(h3q_response *res) {
  stream *s = res->s;
  if (!s->producer || !s->producer_waiting || !response_open(s))
    return;
  s->producer_waiting = false;
  response_block(s);
  stream_wake(s);
}

int h3q_response_set_priority(h3q_response *res, uint8_t urgency,
                              bool incremental) {
  stream *s = res->s;
  if (urgency > 7)
    return H3Q_EINVAL;
  if (!response_open(s))
    return H3Q_ECLOSED;
  s->prio = (priority){urgency, incremental};
  s->prio_fixed = true;
  stream_apply_priority(s);
  return H3Q_OK;
}

uint64_t h3q_response_peer_error(const h3q_response *res) {
  return res->s->peer_error;
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
