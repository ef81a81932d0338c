/* The request side of a stream: header collection, body delivery (pushed
 * through on_data or pulled with h3q_request_read), and the public request
 * API. Body bytes stay in quiche until read, so QUIC flow control, not an
 * h3q buffer, bounds what a peer can send ahead. */
#include <string.h>
#include <strings.h>

#include "h3/arena.h"
#include "h3/stream_internal.h"
#include "util/clock.h"
#include "util/log.h"

/* Body bytes handed to on_data per call, and calls per pump before
 * yielding to other streams (the rest is read on the next round). */
#define BODY_CHUNK 16384
#define BODY_CHUNKS_PER_PUMP 64

static bool name_is(const uint8_t *name, size_t len, const char *lit) {
  return len == strlen(lit) && memcmp(name, lit, len) == 0;
}

static int set_pseudo(stream *s, const uint8_t *name, size_t nlen,
                      const uint8_t *value, size_t vlen) {
  size_t *slot = NULL;
  if (name_is(name, nlen, ":method"))
    slot = &s->method;
  else if (name_is(name, nlen, ":scheme"))
    slot = &s->scheme;
  else if (name_is(name, nlen, ":authority"))
    slot = &s->authority;
  else if (name_is(name, nlen, ":protocol"))
    slot = &s->protocol;
  else if (!name_is(name, nlen, ":path"))
    return 0; /* validate.c rejects any other */
  if (slot) {
    *slot = arena_push(&s->rarena, value, vlen);
    return *slot ? 0 : H3Q_ENOMEM;
  }
  const uint8_t *q = memchr(value, '?', vlen);
  size_t plen = q ? (size_t)(q - value) : vlen;
  s->path = arena_push(&s->rarena, value, plen);
  s->query = q ? arena_push(&s->rarena, q + 1, vlen - plen - 1)
               : arena_push(&s->rarena, "", 0);
  return s->path && s->query ? 0 : H3Q_ENOMEM;
}

int stream_add_request_field(stream *s, const uint8_t *name, size_t nlen,
                             const uint8_t *value, size_t vlen) {
  if (nlen > 0 && name[0] == ':')
    return set_pseudo(s, name, nlen, value, vlen);
  size_t n = arena_push(&s->rarena, name, nlen);
  size_t v = arena_push(&s->rarena, value, vlen);
  if (!n || !v ||
      fields_push(&s->rfields, &s->rfield_count, &s->rfield_cap,
                  s->rfield_inline, STREAM_INLINE_FIELDS, n, v) != 0)
    return H3Q_ENOMEM;
  return 0;
}

int stream_add_request_trailer(stream *s, const uint8_t *name, size_t nlen,
                               const uint8_t *value, size_t vlen) {
  size_t n = arena_push(&s->rarena, name, nlen);
  size_t v = arena_push(&s->rarena, value, vlen);
  if (!n || !v ||
      fields_push(&s->rtrailers, &s->rtrailer_count, &s->rtrailer_cap, NULL, 0,
                  n, v))
    return H3Q_ENOMEM;
  return 0;
}

int request_check_pseudo(stream *s) {
  /* validate.c accepted the section; what is left is what h3q serves:
   * plain CONNECT (no :path) is for proxies, which h3q is not. */
  if (!s->method || !s->path)
    return 501;
  return 0;
}

/* Shuts the read side unless the whole body was already consumed. */
void request_stop_reading(stream *s, uint64_t h3_error) {
  if (s->rstate == REQ_DONE)
    return;
  if (!quiche_conn_stream_finished(s->q, s->id))
    quiche_conn_stream_shutdown(s->q, s->id, QUICHE_SHUTDOWN_READ, h3_error);
  request_set_state(s, REQ_DONE);
}

/* Counts body bytes against the configured limit; past it, the request is
 * refused with 413 (or reset when the response already started). */
static bool body_within_limit(stream *s, size_t n) {
  s->body_bytes += n;
  s->last_body_ns = clock_now_ns();
  if (s->has_content_length && s->body_bytes > s->content_length) {
    /* RFC 9114 section 4.1.2: more DATA than content-length: malformed. */
    stream_abort(s, H3Q_H3_MESSAGE_ERROR);
    return false;
  }
  if (s->tunnel || s->body_bytes <= s->h->cfg->max_request_body_size)
    return true;
  request_stop_reading(s, H3Q_H3_NO_ERROR);
  if (s->wstate == RES_IDLE)
    stream_respond_status(s, 413, NULL);
  else
    stream_abort(s, H3Q_H3_REQUEST_CANCELLED);
  return false;
}

static void push_body(stream *s) {
  uint8_t chunk[BODY_CHUNK];
  for (int i = 0; i < BODY_CHUNKS_PER_PUMP; i++) {
    if (s->paused || s->closed || s->rstate == REQ_DONE)
      return;
    ssize_t n = stream_read_body(s, chunk, sizeof chunk);
    if (n <= 0)
      return; /* nothing now, the end (on_end follows), or closed */
    if (!body_within_limit(s, (size_t)n))
      return;
    s->on_data(&s->req, chunk, (size_t)n, s->body_user);
  }
  stream_request_pump(s); /* more may be waiting: continue next round */
}

static void notify_end(stream *s) {
  if (s->paused) {
    s->end_pending = true;
    return;
  }
  s->end_pending = false;
  if (s->on_end)
    s->on_end(&s->req, s->body_user);
  else if (s->on_readable)
    s->on_readable(&s->req, s->readable_user);
}

/* Delivers what is readable now: pushes to on_data or signals on_readable. */
void request_pump(stream *s) {
  if (s->paused || s->closed)
    return;
  if (s->body_readable) {
    if (s->on_data)
      push_body(s);
    else if (s->on_readable)
      s->on_readable(&s->req, s->readable_user);
  }
  if (s->end_pending && !s->body_readable && !s->closed)
    notify_end(s);
}

void stream_on_data(stream *s) {
  s->body_readable = true;
  s->last_body_ns = clock_now_ns();
  request_pump(s);
}

void stream_on_finished(stream *s) {
  if (s->rstate == REQ_DONE && !s->fin_received)
    return; /* we stopped reading earlier */
  if (s->has_content_length && s->body_bytes != s->content_length) {
    stream_abort(s, H3Q_H3_MESSAGE_ERROR); /* fewer bytes than declared */
    return;
  }
  s->fin_received = true;
  request_set_state(s, REQ_DONE);
  /* on_end runs from stream_service, never from inside a read call. */
  s->end_pending = true;
  stream_request_pump(s);
}

/* ---- public API ---- */

const char *h3q_request_method(const h3q_request *req) {
  return arena_str(&req->s->rarena, req->s->method);
}
const char *h3q_request_path(const h3q_request *req) {
  return arena_str(&req->s->rarena, req->s->path);
}
const char *h3q_request_query(const h3q_request *req) {
  return arena_str(&req->s->rarena, req->s->query);
}
const char *h3q_request_scheme(const h3q_request *req) {
  return arena_str(&req->s->rarena, req->s->scheme);
}
const char *h3q_request_authority(const h3q_request *req) {
  const char *a = arena_str(&req->s->rarena, req->s->authority);
  return a ? a : h3q_request_header(req, "host");
}

static const char *find_field(const stream *s, const field *f, size_t n,
                              const char *name);

/* The i-th of n fields, for the header and trailer accessors. */
static int field_at(const stream *s, const field *f, size_t n, size_t i,
                    const char **name, const char **value) {
  if (i >= n)
    return H3Q_EINVAL;
  if (name)
    *name = arena_str(&s->rarena, f[i].name);
  if (value)
    *value = arena_str(&s->rarena, f[i].value);
  return H3Q_OK;
}

const char *h3q_request_header(const h3q_request *req, const char *name) {
  const stream *s = req->s;
  return name ? find_field(s, s->rfields, s->rfield_count, name) : NULL;
}

size_t h3q_request_header_count(const h3q_request *req) {
  return req->s->rfield_count;
}

int h3q_request_header_at(const h3q_request *req, size_t i, const char **name,
                          const char **value) {
  const stream *s = req->s;
  return field_at(s, s->rfields, s->rfield_count, i, name, value);
}

const char *h3q_request_param(const h3q_request *req, const char *name) {
  const stream *s = req->s;
  if (!name)
    return NULL;
  if (name[0] == ':')
    name++;
  size_t len = strlen(name);
  for (size_t i = 0; i < s->param_count; i++)
    if (s->params[i].name_len == len &&
        memcmp(s->params[i].name, name, len) == 0)
      return arena_str(&s->rarena, s->params[i].value);
  return NULL;
}

const char *h3q_request_protocol(const h3q_request *req) {
  return arena_str(&req->s->rarena, req->s->protocol);
}

h3_session *h3_request_session(const h3q_request *req) {
  return req->s->h;
}

void h3_request_set_tunnel(h3q_request *req) {
  req->s->tunnel = true;
}

bool h3_request_is_open(const h3q_request *req) {
  return !req->s->closed;
}

uint64_t h3q_request_stream_id(const h3q_request *req) {
  return req->s->id;
}
uint64_t h3q_request_connection_id(const h3q_request *req) {
  return req->s->h->c->number;
}
bool h3q_request_client_cert_verified(const h3q_request *req) {
  return conn_peer_cert_verified(req->s->h->c);
}

void h3q_request_on_body(h3q_request *req, h3q_body_data_cb on_data,
                         h3q_request_cb on_end, void *user) {
  stream *s = req->s;
  s->on_data = on_data;
  s->on_end = on_end;
  s->body_user = user;
  /* Data or FIN that arrived before the callbacks were set is delivered on
   * the next round rather than from inside this call. */
  if (!s->closed && (s->body_readable || s->fin_received)) {
    s->end_pending = s->end_pending || s->fin_received;
    stream_request_pump(s);
  }
}

void h3q_request_on_readable(h3q_request *req, h3q_request_cb on_readable,
                             void *user) {
  req->s->on_readable = on_readable;
  req->s->readable_user = user;
}

void h3q_request_pause(h3q_request *req) {
  req->s->paused = true;
}

void h3q_request_resume(h3q_request *req) {
  stream *s = req->s;
  if (!s->paused)
    return;
  s->paused = false;
  if (s->closed)
    return;
  stream_request_pump(s);
}

ssize_t h3q_request_read(h3q_request *req, void *out, size_t len) {
  stream *s = req->s;
  if (s->aborted || s->closed)
    return H3Q_ECLOSED;
  if (s->rstate == REQ_DONE)
    return 0;
  if (len == 0)
    return H3Q_EINVAL;
  ssize_t n = stream_read_body(s, out, len);
  if (n <= 0)
    return n;
  if (!body_within_limit(s, (size_t)n))
    return H3Q_ETOOLARGE;
  stream_wake(s); /* reading opened flow-control credit */
  return n;
}

static const char *find_field(const stream *s, const field *f, size_t n,
                              const char *name) {
  for (size_t i = 0; i < n; i++)
    if (strcasecmp(arena_str(&s->rarena, f[i].name), name) == 0)
      return arena_str(&s->rarena, f[i].value);
  return NULL;
}

const char *h3q_request_trailer(const h3q_request *req, const char *name) {
  const stream *s = req->s;
  return name ? find_field(s, s->rtrailers, s->rtrailer_count, name) : NULL;
}

size_t h3q_request_trailer_count(const h3q_request *req) {
  return req->s->rtrailer_count;
}

int h3q_request_trailer_at(const h3q_request *req, size_t i, const char **name,
                           const char **value) {
  const stream *s = req->s;
  return field_at(s, s->rtrailers, s->rtrailer_count, i, name, value);
}

bool h3q_request_is_early_data(const h3q_request *req) {
  return req->s->early_data;
}

void h3q_request_priority(const h3q_request *req, uint8_t *urgency,
                          bool *incremental) {
  if (urgency)
    *urgency = req->s->prio.urgency;
  if (incremental)
    *incremental = req->s->prio.incremental;
}

h3q_response *h3q_request_response(h3q_request *req) {
  return &req->s->res;
}

bool h3q_request_body_done(const h3q_request *req) {
  return req->s->fin_received;
}
