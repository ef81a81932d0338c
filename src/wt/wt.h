/* WebTransport over HTTP/3 (draft-ietf-webtrans-http3, draft-02 and the
 * current drafts): sessions on extended CONNECT streams, their datagrams
 * (HTTP Datagrams) and capsules (CLOSE, DRAIN), and their streams, which
 * arrive through HTTP/3's stream-type registry (0x54 unidirectional, 0x41
 * bidirectional) or are opened by the server.
 *
 * Layering: above h3 and dgram; core routes extended CONNECTs here. */
#ifndef H3Q_WT_WT_H
#define H3Q_WT_WT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "h3/session.h"
#include "h3q.h"

/* SETTINGS and codes of the drafts. */
#define WT_SETTING_MAX_SESSIONS 0xc671706a     /* draft-07 and later */
#define WT_SETTING_ENABLE_DRAFT02 0x2b603742   /* draft-02 .. -06 */
#define WT_SETTING_MAX_SESSIONS_NEW 0x14e9cd29 /* draft-13 and later */
#define WT_SETTING_ENABLED 0x2c7cf000          /* draft-13 and later */
#define WT_STREAM_UNI 0x54
#define WT_STREAM_BIDI 0x41
#define WT_CAPSULE_CLOSE 0x2843
#define WT_CAPSULE_DRAIN 0x78ae
#define WT_REASON_MAX 1024

/* A server's WebTransport settings (one loop thread). */
typedef struct wt_ctx {
  size_t max_sessions, max_streams;
  h3q_server_stats *stats;
  int layer;                      /* our index among the session's layers */
  const h3_extension *uni, *bidi; /* our registry entries (in the config) */
} wt_ctx;

/* Registers WebTransport with cfg (SETTINGS, stream types, the layer)
 * when pub enables it; otherwise w stays inert. Returns H3Q_OK,
 * H3Q_ETOOLARGE (no room in the registries) or H3Q_EEXIST. */
int wt_ctx_init(wt_ctx *w, h3_config *cfg, const h3q_config *pub,
                h3q_server_stats *stats);

/* An extended CONNECT for WebTransport matched handler's pattern: starts
 * a session (after the client's SETTINGS, if they are still missing). */
void wt_begin(const wt_ctx *w, h3q_request *req, h3q_wt_handler handler,
              void *user);

#endif
