/* WebTransport's per-connection state (an h3_layer), its registration
 * with the HTTP/3 config (SETTINGS and stream types), and the error code
 * mapping of the draft. */
#include <stdlib.h>
#include <string.h>

#include "quic/conn.h"
#include "wt/wt_internal.h"

/* draft-ietf-webtrans-http3 section 4.3: application codes 0..2^32-1
 * map onto HTTP/3 codes from here, skipping the reserved ones. */
#define WT_H3_FIRST UINT64_C(0x52e4a40fa8db)
#define WT_H3_LAST UINT64_C(0x52e5ac983162)

uint64_t h3q_wt_code_to_h3(uint32_t code) {
  return WT_H3_FIRST + code + code / 0x1e;
}

bool h3q_wt_code_from_h3(uint64_t h3_code, uint32_t *code) {
  if (h3_code < WT_H3_FIRST || h3_code > WT_H3_LAST ||
      (h3_code - 0x21) % 0x1f == 0)
    return false;
  uint64_t shifted = h3_code - WT_H3_FIRST;
  uint64_t v = shifted - shifted / 0x1f;
  if (code)
    *code = (uint32_t)v;
  return true;
}

wt_conn *wt_conn_of(const wt_ctx *w, h3_session *h) {
  return h3_session_layer_state(h, w->layer);
}

void wt_conn_wake(wt_conn *wc) {
  conn_mark_dirty(h3_session_conn(wc->h));
}

static int wt_start(h3_session *h, void **state, void *user) {
  wt_conn *wc = calloc(1, sizeof *wc);
  if (!wc)
    return -1;
  wc->w = user;
  wc->h = h;
  *state = wc;
  return 0;
}

static void wt_process(h3_session *h, void *state, void *user) {
  (void)h, (void)user;
  wt_conn *wc = state;
  if (wc->pending)
    wt_session_decide_pending(wc);
  wt_streams_service(wc);
  wt_streams_reap(wc);
}

static void wt_goaway(h3_session *h, void *state, void *user) {
  (void)h, (void)user;
  wt_session_drain_all(state);
}

/* Runs after every request's close callback: sessions are gone and their
 * streams reaped; what is left are streams that never named a session. */
static void wt_destroy(h3_session *h, void *state, void *user) {
  (void)h, (void)user;
  wt_conn *wc = state;
  wt_streams_reap(wc);
  wt_streams_free_all(wc);
  u64map_free(&wc->sessions);
  u64map_free(&wc->streams);
  free(wc);
}

static int add_setting(h3_settings *s, uint64_t id, uint64_t value) {
  if (s->extra_count == H3_SETTINGS_EXTRA_MAX)
    return H3Q_ETOOLARGE;
  s->extra[s->extra_count].id = id;
  s->extra[s->extra_count++].value = value;
  return H3Q_OK;
}

static int add_stream_type(h3_config *cfg, uint64_t type, bool bidi, wt_ctx *w,
                           const h3_extension **out) {
  h3_extension e = {.type = type,
                    .bidi = bidi,
                    .on_stream = wt_stream_on_claim,
                    .on_readable = wt_stream_on_readable,
                    .user = w};
  int rc = h3_config_add_extension(cfg, &e);
  if (rc == H3Q_OK)
    *out = &cfg->extensions[cfg->extension_count - 1];
  return rc;
}

int wt_ctx_init(wt_ctx *w, h3_config *cfg, const h3q_config *pub,
                h3q_server_stats *stats) {
  memset(w, 0, sizeof *w);
  w->layer = -1;
  w->stats = stats;
  if (!pub->enable_webtransport)
    return H3Q_OK;
  w->max_sessions = pub->wt_max_sessions_per_conn;
  w->max_streams = pub->wt_max_streams_per_session;
  /* Both drafts' announcements: Chromium picks the newest it shares;
   * aioquic and webtransport-go v0.10 look for draft-02's. */
  int rc = add_setting(&cfg->local, WT_SETTING_MAX_SESSIONS, w->max_sessions);
  if (rc == H3Q_OK)
    rc = add_setting(&cfg->local, WT_SETTING_ENABLE_DRAFT02, 1);
  if (rc == H3Q_OK)
    rc = add_stream_type(cfg, WT_STREAM_UNI, false, w, &w->uni);
  if (rc == H3Q_OK)
    rc = add_stream_type(cfg, WT_STREAM_BIDI, true, w, &w->bidi);
  if (rc != H3Q_OK)
    return rc;
  h3_layer layer = {.on_start = wt_start,
                    .on_process = wt_process,
                    .on_goaway = wt_goaway,
                    .on_destroy = wt_destroy,
                    .user = w};
  w->layer = h3_config_add_layer(cfg, &layer);
  return w->layer < 0 ? w->layer : H3Q_OK;
}
