/* WebTransport sessions: deciding on an extended CONNECT (the client's
 * SETTINGS, the session limit, the handler), the CONNECT stream's
 * capsules (CLOSE, DRAIN), datagrams, and the end of a session. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dgram/dgram.h"
#include "h3/stream.h"
#include "util/log.h"
#include "wt/wt_internal.h"

static void session_set_state(h3q_wt_session *ses, wt_state to) {
  LOG_TRACE("wt session %llu: state %d -> %d", (unsigned long long)ses->id,
            (int)ses->state, (int)to);
  ses->state = to;
}

static void session_free(h3q_wt_session *ses) {
  buf_free(&ses->close_reason);
  free(ses);
}

/* ---- the end of a session ---- */

static void unlink_pending(wt_conn *wc, h3q_wt_session *ses) {
  for (h3q_wt_session **p = &wc->pending; *p; p = &(*p)->pending_next) {
    if (*p == ses) {
      *p = ses->pending_next;
      return;
    }
  }
}

/* The CONNECT stream closed (the response's close callback): the session
 * is over. Its streams are closed first, then on_close, then it is
 * freed. */
static void connect_closed(h3q_response *res, bool aborted, void *user) {
  (void)res, (void)aborted;
  h3q_wt_session *ses = user;
  wt_conn *wc = ses->wc;
  if (ses->state == WT_PENDING) {
    unlink_pending(wc, ses);
    session_free(ses);
    return;
  }
  wt_streams_end_session(ses);
  wt_streams_reap(wc);
  u64map_del(&wc->sessions, ses->id);
  wc->open_sessions--;
  wc->w->stats->wt_sessions_active--;
  if (ses->on_close)
    ses->on_close(ses, ses->close_code, (const char *)ses->close_reason.data,
                  ses->close_reason.len, ses->close_user);
  session_free(ses);
}

/* Winds the session down from our side: streams reset, our end of the
 * CONNECT stream finished (after a CLOSE capsule, when there is one). */
static void session_closing(h3q_wt_session *ses) {
  if (ses->state != WT_OPEN)
    return;
  session_set_state(ses, WT_CLOSING);
  wt_streams_end_session(ses);
  h3q_response_end(h3q_request_response(ses->req));
  wt_conn_wake(ses->wc);
}

/* ---- capsules and datagrams from the client ---- */

static void on_close_capsule(h3q_wt_session *ses, const uint8_t *v,
                             size_t len) {
  if (!v || len < 4 || len - 4 > WT_REASON_MAX) {
    /* Malformed CLOSE_WEBTRANSPORT_SESSION: the message is malformed. */
    h3q_response_reset(h3q_request_response(ses->req), H3Q_H3_MESSAGE_ERROR);
    return;
  }
  ses->close_code =
      (uint32_t)v[0] << 24 | (uint32_t)v[1] << 16 | (uint32_t)v[2] << 8 | v[3];
  ses->close_reason.len = 0;
  buf_append(&ses->close_reason, v + 4, len - 4);
  ses->close_received = true;
  session_closing(ses);
}

static bool on_capsule(h3q_request *req, uint64_t type, const uint8_t *value,
                       size_t len, void *user) {
  (void)req;
  h3q_wt_session *ses = user;
  if (ses->state != WT_OPEN)
    return false; /* nothing may follow a CLOSE; the stream is ending */
  if (type == WT_CAPSULE_CLOSE) {
    on_close_capsule(ses, value, len);
    return false;
  }
  if (type == WT_CAPSULE_DRAIN && ses->on_drain)
    ses->on_drain(ses, ses->drain_user);
  return true; /* others (flow control of later drafts) are skipped */
}

static void on_connect_end(h3q_request *req, bool truncated, void *user) {
  h3q_wt_session *ses = user;
  if (truncated) {
    h3q_response_reset(h3q_request_response(req), H3Q_H3_MESSAGE_ERROR);
    return;
  }
  session_closing(ses); /* a clean end means code 0 (section 5) */
}

static const capsule_sink connect_sink = {
    .on_capsule = on_capsule,
    .on_end = on_connect_end,
};

static void on_datagram(h3q_request *req, const uint8_t *data, size_t len,
                        void *user) {
  (void)req;
  h3q_wt_session *ses = user;
  if (ses->state == WT_OPEN && ses->on_datagram)
    ses->on_datagram(ses, data, len, ses->datagram_user);
  else
    ses->wc->w->stats->datagrams_unroutable++;
}

/* ---- deciding on the CONNECT ---- */

/* The client's SETTINGS allow a session: HTTP Datagrams, which every
 * draft needs. Its own WebTransport setting is not required: draft-02
 * asks for it, but webtransport-go v0.10 (draft-02) never sends one, and
 * later drafts only ask it of servers. */
static bool client_allows_wt(const h3_settings *s) {
  uint64_t v = 0;
  bool announced =
      (h3_settings_extra(s, WT_SETTING_ENABLE_DRAFT02, &v) && v == 1) ||
      (h3_settings_extra(s, WT_SETTING_MAX_SESSIONS, &v) && v > 0) ||
      (h3_settings_extra(s, WT_SETTING_MAX_SESSIONS_NEW, &v) && v > 0) ||
      (h3_settings_extra(s, WT_SETTING_ENABLED, &v) && v == 1);
  if (!announced)
    LOG_DEBUG("WebTransport CONNECT from a client without a WebTransport "
              "setting");
  return s->h3_datagram;
}

static void refuse(h3q_wt_session *ses, int status) {
  char body[16];
  int n = snprintf(body, sizeof body, "%d\n", status);
  h3q_response *res = h3q_request_response(ses->req);
  h3q_response_on_close(res, NULL, NULL);
  h3q_response_send(res, status, "text/plain; charset=utf-8", body, (size_t)n);
  ses->wc->w->stats->wt_sessions_rejected++;
  session_free(ses);
}

static int accept_session(h3q_wt_session *ses, int status) {
  wt_conn *wc = ses->wc;
  h3q_response *res = h3q_request_response(ses->req);
  /* draft-02 clients (Chromium's older code, aioquic, webtransport-go
   * v0.10) announce their draft and expect it confirmed. */
  if (h3q_request_header(ses->req, "sec-webtransport-http3-draft02"))
    h3q_response_header(res, "sec-webtransport-http3-draft", "draft02");
  int rc = dgram_route_request(ses->req, on_datagram, ses, &connect_sink, ses);
  if (rc == H3Q_OK && u64map_put(&wc->sessions, ses->id, ses) != 0)
    rc = H3Q_ENOMEM;
  if (rc == H3Q_OK)
    rc = h3q_response_set_status(res, status);
  if (rc != H3Q_OK) {
    u64map_del(&wc->sessions, ses->id);
    return rc;
  }
  session_set_state(ses, WT_OPEN);
  wc->open_sessions++;
  wc->w->stats->wt_sessions_accepted++;
  wc->w->stats->wt_sessions_active++;
  /* The header section now; if the stream is already gone, its close
   * callback ends the session. */
  h3q_response_write(res, NULL, 0);
  return H3Q_OK;
}

/* The client's SETTINGS are here: check them, the limit, then ask. */
static void decide(h3q_wt_session *ses) {
  wt_conn *wc = ses->wc;
  if (!client_allows_wt(h3_session_peer_settings(wc->h))) {
    refuse(ses, 400);
    return;
  }
  if (wc->open_sessions >= wc->w->max_sessions) {
    refuse(ses, 429);
    return;
  }
  int status = ses->handler(ses->req, ses, ses->handler_user);
  if (status < 0)
    status = h3q_error_to_status(status);
  if (status < 200 || status > 599)
    status = 500;
  if (status >= 300) {
    refuse(ses, status);
    return;
  }
  if (accept_session(ses, status) != H3Q_OK) {
    /* Out of memory. The route may point at ses already: keep it (still
     * PENDING, so it answers nothing) until the stream's close callback
     * frees it. */
    wc->w->stats->wt_sessions_rejected++;
    h3q_response_reset(h3q_request_response(ses->req), H3Q_H3_INTERNAL_ERROR);
  }
}

void wt_session_decide_pending(wt_conn *wc) {
  if (!h3_session_peer_settings(wc->h))
    return;
  h3q_wt_session *list = wc->pending;
  wc->pending = NULL;
  while (list) {
    h3q_wt_session *next = list->pending_next;
    decide(list);
    list = next;
  }
}

void wt_begin(const wt_ctx *w, h3q_request *req, h3q_wt_handler handler,
              void *user) {
  h3q_response *res = h3q_request_response(req);
  wt_conn *wc = wt_conn_of(w, h3_request_session(req));
  h3q_wt_session *ses = wc ? calloc(1, sizeof *ses) : NULL;
  if (!ses) {
    h3q_response_send(res, 500, NULL, NULL, 0);
    return;
  }
  ses->wc = wc;
  ses->req = req;
  ses->id = h3q_request_stream_id(req);
  ses->handler = handler;
  ses->handler_user = user;
  session_set_state(ses, WT_PENDING);
  h3q_response_on_close(res, connect_closed, ses);
  if (h3_session_peer_settings(wc->h)) {
    decide(ses);
    return;
  }
  /* The CONNECT overtook the control stream: decide once SETTINGS are
   * read (wt_process, at the latest after this round's streams). */
  ses->pending_next = wc->pending;
  wc->pending = ses;
  wt_conn_wake(wc);
}

void wt_session_drain_all(wt_conn *wc) {
  for (size_t i = 0; i < wc->sessions.cap; i++) {
    h3q_wt_session *ses = wc->sessions.slots[i].value;
    if (ses)
      h3q_wt_session_drain(ses);
  }
}

/* ---- public API ---- */

uint64_t h3q_wt_session_id(const h3q_wt_session *ses) {
  return ses->id;
}

h3q_request *h3q_wt_session_request(h3q_wt_session *ses) {
  return ses->req;
}

void h3q_wt_session_on_datagram(h3q_wt_session *ses, h3q_wt_datagram_cb cb,
                                void *user) {
  ses->on_datagram = cb;
  ses->datagram_user = user;
}

void h3q_wt_session_on_stream(h3q_wt_session *ses, h3q_wt_stream_cb cb,
                              void *user) {
  ses->on_stream = cb;
  ses->stream_user = user;
}

void h3q_wt_session_on_drain(h3q_wt_session *ses, h3q_wt_session_cb cb,
                             void *user) {
  ses->on_drain = cb;
  ses->drain_user = user;
}

void h3q_wt_session_on_close(h3q_wt_session *ses, h3q_wt_close_cb cb,
                             void *user) {
  ses->on_close = cb;
  ses->close_user = user;
}

int h3q_wt_session_send_datagram(h3q_wt_session *ses, const void *data,
                                 size_t len) {
  if (!data && len)
    return H3Q_EINVAL;
  if (ses->state != WT_OPEN)
    return H3Q_ECLOSED;
  return dgram_request_send(ses->req, data, len);
}

ssize_t h3q_wt_session_datagram_max(h3q_wt_session *ses) {
  if (ses->state != WT_OPEN)
    return H3Q_ECLOSED;
  return dgram_request_max(ses->req);
}

int h3q_wt_session_close(h3q_wt_session *ses, uint32_t code,
                         const char *reason) {
  size_t rlen = reason ? strlen(reason) : 0;
  if (rlen > WT_REASON_MAX)
    return H3Q_EINVAL;
  if (ses->state != WT_OPEN)
    return H3Q_ECLOSED;
  uint8_t v[4 + WT_REASON_MAX];
  v[0] = (uint8_t)(code >> 24);
  v[1] = (uint8_t)(code >> 16);
  v[2] = (uint8_t)(code >> 8);
  v[3] = (uint8_t)code;
  if (rlen)
    memcpy(v + 4, reason, rlen);
  int rc =
      dgram_response_queue_capsule(ses->req, WT_CAPSULE_CLOSE, v, 4 + rlen);
  if (rc != H3Q_OK)
    return rc;
  ses->close_code = code;
  ses->close_reason.len = 0;
  if (buf_append(&ses->close_reason, reason, rlen) != 0)
    ses->close_reason.len = 0; /* the capsule went; only our copy is lost */
  ses->close_sent = true;
  session_closing(ses);
  return H3Q_OK;
}

int h3q_wt_session_drain(h3q_wt_session *ses) {
  if (ses->state != WT_OPEN)
    return H3Q_ECLOSED;
  int rc = dgram_response_queue_capsule(ses->req, WT_CAPSULE_DRAIN, NULL, 0);
  wt_conn_wake(ses->wc);
  return rc;
}
