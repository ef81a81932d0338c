/* HTTP/3 side of a client connection: creating the h3 layer once the
 * handshake completes, dispatching quiche_h3_conn_poll events to requests,
 * moving request bodies when streams become writable, and starting queued
 * requests within the parallel limit and the peer's stream credit. */
#include "h3c_conn_int.h"

#include "h3c_cert_ip.h"
#include "util/clock.h"
#include "util/log.h"

#include <stdio.h>

/* An IP-literal host was connected without SNI; the chain was verified by
 * BoringSSL, the address is matched here. */
static bool peer_cert_ok(h3c_conn *c) {
  if (!c->x->verify_peer || !c->origin->host_is_ip)
    return true;
  const uint8_t *der = NULL;
  size_t len = 0;
  quiche_conn_peer_cert(c->q, &der, &len);
  return der != NULL && h3c_cert_matches_ip(der, len, c->origin->host);
}

void h3c_conn_on_established(h3c_conn *c) {
  c->t_established = clock_now_ns();
  if (!peer_cert_ok(c)) {
    /* CRYPTO_ERROR bad_certificate (0x100 + alert 42). */
    h3c_conn_close_with(c, false, 0x12a,
                        "server certificate does not match the IP address");
    return;
  }
  c->h3 = quiche_h3_conn_new_with_transport(c->q, c->x->h3cfg);
  if (c->h3 == NULL) {
    h3c_conn_close(c, "cannot create the HTTP/3 connection");
    return;
  }
  c->state = H3C_CONN_READY;
  LOG_DEBUG("conn %u: established in %.2f ms", c->index,
            clock_ns_to_ms(h3c_conn_handshake_ns(c)));
  if (c->x->hooks.established)
    c->x->hooks.established(c->x->hooks.user, c);
}

/* GOAWAY(id): the server will not process requests on streams >= id
 * (RFC 9114 §5.2), so they fail now as retryable instead of hanging. */
static void on_goaway(h3c_conn *c, uint64_t id) {
  LOG_DEBUG("conn %u: GOAWAY %llu", c->index, (unsigned long long)id);
  c->goaway = true;
  h3c_req *r;
  for (size_t i = 0; i < c->map.cap; i++) {
    /* Failing r removes it, which may refill slot i (see u64map.h). */
    while ((r = c->map.slots[i].value) != NULL &&
           (uint64_t)r->stream_id >= id) {
      r->retryable = true;
      h3c_req_fail(r, "not processed: server sent GOAWAY");
    }
  }
}

static void dispatch(h3c_conn *c, int64_t sid, quiche_h3_event *ev) {
  enum quiche_h3_event_type type = quiche_h3_event_type(ev);
  if (type == QUICHE_H3_EVENT_GOAWAY) {
    on_goaway(c, (uint64_t)sid);
    return;
  }
  h3c_req *r = u64map_get(&c->map, (uint64_t)sid);
  if (r == NULL)
    return; /* a request we already failed or completed */
  switch (type) {
  case QUICHE_H3_EVENT_HEADERS:
    h3c_req_on_headers(r, ev);
    break;
  case QUICHE_H3_EVENT_DATA:
    h3c_req_read_body(r);
    break;
  case QUICHE_H3_EVENT_FINISHED:
    h3c_req_on_finished(r);
    break;
  case QUICHE_H3_EVENT_RESET:
    h3c_req_fail(r, "stream reset by peer");
    break;
  default: /* PRIORITY_UPDATE: not for clients */
    break;
  }
}

static void poll_events(h3c_conn *c) {
  for (;;) {
    quiche_h3_event *ev = NULL;
    int64_t sid = quiche_h3_conn_poll(c->h3, c->q, &ev);
    if (sid < 0) {
      /* On protocol errors quiche has already closed the connection; the
       * close path reports it. */
      if (sid != QUICHE_H3_ERR_DONE)
        LOG_DEBUG("conn %u: h3 poll error %lld", c->index, (long long)sid);
      return;
    }
    dispatch(c, sid, ev);
    quiche_h3_event_free(ev);
  }
}

/* Gives writable streams with pending request bodies another chunk. */
static void push_bodies(h3c_conn *c) {
  quiche_stream_iter *it = quiche_conn_writable(c->q);
  if (it == NULL)
    return;
  uint64_t sid;
  while (c->sending > 0 && quiche_stream_iter_next(it, &sid)) {
    h3c_req *r = u64map_get(&c->map, sid);
    if (r && r->send == H3C_SEND_BODY)
      h3c_req_push_body(r);
  }
  quiche_stream_iter_free(it);
}

static bool can_start(const h3c_conn *c) {
  return c->state == H3C_CONN_READY && !c->goaway &&
         c->active < c->x->parallel &&
         quiche_conn_peer_streams_left_bidi(c->q) > 0;
}

static void start_requests(h3c_conn *c) {
  while (can_start(c)) {
    h3c_req *r = c->blocked;
    c->blocked = NULL;
    if (r == NULL)
      r = c->x->hooks.next(c->x->hooks.user, c);
    if (r == NULL)
      return;
    if (h3c_req_start(c, r) == 1) {
      c->blocked = r; /* HEADERS did not fit; retry after more credit */
      return;
    }
  }
}

/* Re-reads bodies whose last read left data queued (see h3c_req_read_body).
 * Stream ids are collected first: reads may complete requests and so
 * change the map. Returns whether any were found. */
static bool reread_bodies(h3c_conn *c) {
  uint64_t ids[64];
  size_t n = 0;
  c->unread = false;
  for (size_t i = 0; i < c->map.cap && n < 64; i++) {
    h3c_req *r = c->map.slots[i].value;
    if (r && r->recv == H3C_RECV_BODY && !r->stalled &&
        quiche_conn_stream_readable(c->q, (uint64_t)r->stream_id))
      ids[n++] = (uint64_t)r->stream_id;
  }
  for (size_t i = 0; i < n; i++) {
    h3c_req *r = u64map_get(&c->map, ids[i]);
    if (r)
      h3c_req_read_body(r);
  }
  return n > 0;
}

void h3c_conn_h3_work(h3c_conn *c) {
  poll_events(c);
  /* Bounded: each round moves quiche past one empty DATA frame. */
  for (int round = 0; c->unread && round < 16; round++)
    if (reread_bodies(c))
      poll_events(c);
  if (c->sending > 0)
    push_bodies(c);
  start_requests(c);
  /* After GOAWAY nothing new may start here: once the last exchange is
   * over, close so the program learns the rest cannot run on c. */
  if (c->goaway && c->active == 0) {
    c->graceful = true;
    h3c_conn_close(c, "server sent GOAWAY");
  }
}

void h3c_conn_fail_all(h3c_conn *c, const char *why) {
  h3c_req *r;
  for (size_t i = 0; i < c->map.cap; i++)
    while ((r = c->map.slots[i].value) != NULL) /* failing r removes it */
      h3c_req_fail(r, "%s", why);
  if (c->blocked) {
    r = c->blocked;
    c->blocked = NULL;
    h3c_req_fail(r, "%s", why);
  }
}
