/* The HTTP/3 session of one connection (RFC 9114), on quiche's transport
 * streams only: our control and QPACK streams, the peer's critical
 * streams, SETTINGS, GOAWAY both ways, PRIORITY_UPDATE, request streams
 * and a registry that lets extensions claim stream types.
 *
 * Layering: the session sits on a QUIC connection (quic/conn.h) and hands
 * complete requests up through h3_config.on_request; it never sees the
 * server object. */
#ifndef H3Q_H3_SESSION_H
#define H3Q_H3_SESSION_H

#include <quiche.h>
#include <stdbool.h>
#include <stdint.h>

#include "h3/frame.h"
#include "h3/qpack.h"
#include "h3q.h"
#include "http/validate.h"
#include "quic/conn.h"
#include "util/buf.h"
#include "util/pool.h"
#include "util/u64map.h"

typedef struct h3_session h3_session;
struct stream;

/* An extension's claim on streams (the stream-type registry): a
 * unidirectional stream type, or a bidirectional client stream whose first
 * frame type is `type` (WebTransport uses 0x54 and 0x41). */
typedef struct h3_extension {
  uint64_t type;
  bool bidi;
  /* The stream is the extension's from now on: its type varint has been
   * read, and the extension reads and writes the rest through quiche.
   * Return 0 to keep it, or an HTTP/3 error code to refuse it (the
   * stream is then reset and stopped with that code). */
  uint64_t (*on_stream)(h3_session *h, uint64_t stream_id, void *user);
  /* The claimed stream has data (or FIN, or was reset) to read. */
  void (*on_readable)(h3_session *h, uint64_t stream_id, void *user);
  void *user;
} h3_extension;

#define H3_EXTENSIONS_MAX 8

/* A layer above HTTP/3 (datagrams, WebTransport) that rides on every
 * session: per-session state, and the session events it needs besides
 * the streams it claims. Every callback is optional. */
typedef struct h3_layer {
  /* The session started: sets *state (may stay NULL). Returns 0, or -1
   * when out of memory (the connection is then refused). */
  int (*on_start)(h3_session *h, void **state, void *user);
  /* Once per process round, after readable streams were read and before
   * responses are serviced: QUIC datagrams, blocked writes. */
  void (*on_process)(h3_session *h, void *state, void *user);
  /* Request stream id is being freed (after its close callback). */
  void (*on_stream_closed)(h3_session *h, void *state, uint64_t id, void *user);
  /* The connection is about to close gracefully (GOAWAY sent). */
  void (*on_goaway)(h3_session *h, void *state, void *user);
  /* The session goes away, after every request's close callback: frees
   * the state. */
  void (*on_destroy)(h3_session *h, void *state, void *user);
  void *user;
} h3_layer;

#define H3_LAYERS_MAX 4

/* What a finished request leaves behind (h3_config.on_request_done). */
typedef struct h3_request_done {
  int status;           /* final status sent; 0 when none was */
  uint64_t body_bytes;  /* response body bytes handed to QUIC */
  uint64_t duration_ns; /* from the stream's opening until now */
  bool aborted;         /* reset, stopped, or the connection closed */
} h3_request_done;

/* A session's own copy of its settings: built once per server, shared by
 * every session of it (read-only). */
typedef struct h3_config {
  h3_settings local; /* what we announce in SETTINGS */
  validate_limits vlimits;
  uint64_t max_request_body_size;
  size_t max_active_requests;  /* 0 = only QUIC's stream limit */
  size_t max_active_downloads; /* GET/HEAD in progress; 0 = no limit */
  size_t max_resets_per_sec;   /* peer resets of requests; 0 = no limit */
  uint64_t header_timeout_ns;  /* 0 = none */
  uint64_t body_idle_timeout_ns;
  /* Largest HEADERS frame buffered; a larger one gets 431 unread. */
  uint64_t max_headers_frame;
  h3_extension extensions[H3_EXTENSIONS_MAX];
  size_t extension_count;
  h3_layer layers[H3_LAYERS_MAX];
  size_t layer_count;
  /* A request's header section arrived and passed validation: route it.
   * Called on the loop thread; the request may be answered at once. */
  void (*on_request)(h3q_request *req, h3q_response *res, void *user);
  void *user;
  /* Optional: a request the handler saw is finishing (called before its
   * close callback, while its fields can still be read). */
  void (*on_request_done)(const h3q_request *req, const h3_request_done *d,
                          void *user);
  h3q_server_stats *stats;
  /* Finished request streams kept for the next requests of any session on
   * this loop (h3_stream_pool_init); NULL = plain malloc and free. */
  pool *stream_pool;
} h3_config;

/* Fills cfg's HTTP/3 and request limits from a public configuration. */
void h3_config_init(h3_config *cfg, const h3q_config *pub);

/* Adds an extension to the registry. Returns H3Q_EEXIST when the type is
 * taken, H3Q_ETOOLARGE when the registry is full, H3Q_EINVAL when the type
 * is one of HTTP/3's own. */
int h3_config_add_extension(h3_config *cfg, const h3_extension *ext);

/* Sets up p as a pool of request streams for every session of one loop,
 * holding at most max idle streams. */
void h3_stream_pool_init(pool *p, size_t max);

/* Frees the streams p holds and closes it: streams freed later go back to
 * the heap. Call after every session using it is gone, or before (then
 * the rest are freed as they finish). */
void h3_stream_pool_close(pool *p);

/* Adds a layer; returns its index (for h3_session_layer_state), or
 * H3Q_EINVAL (NULL) or H3Q_ETOOLARGE (no room). */
int h3_config_add_layer(h3_config *cfg, const h3_layer *layer);

/* The per-session state layer number index set in on_start (or NULL). */
void *h3_session_layer_state(const h3_session *h, int index);

/* The application interface the QUIC layer calls (quic/conn.h). */
extern const conn_app_ops h3_app_ops;

/* The QUIC connection under a session, for extensions. */
quiche_conn *h3_session_quiche(h3_session *h);
conn *h3_session_conn(h3_session *h);

/* Opens a server-initiated stream (bidi or uni) for extension e: its id
 * is claimed for e (quiche reports it to e->on_readable), and the first
 * byte sent on it creates it in quiche. Returns the id, or H3Q_EAGAIN
 * when the peer's stream limit allows no more now, H3Q_ENOMEM. */
int64_t h3_open_stream(h3_session *h, bool bidi, const h3_extension *e);

/* How many bytes one write on stream id may take now, less header_max
 * for a frame header in front of them: the stream's send capacity (flow
 * control and congestion window). When that leaves nothing, quiche is
 * asked to report the stream writable again and 0 is returned; a
 * negative value is quiche's error (QUICHE_ERR_STREAM_STOPPED, ...). The
 * backpressure of responses and of extension streams alike. */
ssize_t h3_stream_room(quiche_conn *q, uint64_t id, size_t header_max);

/* Ends stream id with a FIN and no data. quiche 0.30 loses such a FIN
 * when every data byte has left but is not acknowledged yet and an ACK
 * for it is processed before the FIN leaves: the send buffer then counts
 * as complete (SendBuf::is_complete looks at the final size, not at the
 * FIN) and the stream is collected. A FIN written while some of the
 * stream's bytes are still unsent travels with them and is safe:
 * data_unsent says so (data written since the connection last sent, see
 * conn.send_generation). Otherwise the FIN is written only while the
 * session is processing (packets go out right after, before anything is
 * received) and when the connection can send it now, queued datagrams
 * included, with the stream moved to the front of the send order.
 * Returns >= 0 when written, QUICHE_ERR_DONE to retry in a processing
 * round (h3_session_processing), or quiche's error (code: STOP_SENDING's).
 */
ssize_t h3_stream_send_fin(h3_session *h, uint64_t id, bool data_unsent,
                           uint64_t *code);

/* True while the session runs inside conn_process (packets are sent right
 * after). */
bool h3_session_processing(const h3_session *h);

/* The connection's send generation (conn.send_generation). */
uint64_t h3_session_send_generation(const h3_session *h);

/* The peer's SETTINGS, or NULL before they arrived. */
const h3_settings *h3_session_peer_settings(const h3_session *h);

/* Closes the connection with an HTTP/3 error code (connection error). */
void h3_session_fail(h3_session *h, uint64_t code, const char *why);

/* The peer reset a request stream: beyond max_resets_per_sec in one
 * second, the connection fails with H3_EXCESSIVE_LOAD (rapid reset). */
void h3_session_count_peer_reset(h3_session *h);

/* ---- internal to src/h3 ---- */

/* Ids of peer unidirectional streams whose type is still being read. */
typedef struct uni_stream {
  uint8_t type_bytes[8];
  uint8_t have;
} uni_stream;

/* Incoming frames of a control stream, parsed as bytes arrive. */
typedef struct frame_rx {
  h3_frame_header_reader hdr;
  uint64_t type, left; /* current frame; left = payload bytes to come */
  bool in_payload;
  buf payload; /* collected payload of frames we act on */
} frame_rx;

struct h3_session {
  conn *c;
  quiche_conn *q;
  const h3_config *cfg;

  /* Our unidirectional streams and what waits for room on them. */
  buf ctrl_out, enc_out, dec_out;
  bool started_streams;

  /* The peer's critical streams (-1 until opened). */
  int64_t peer_ctrl, peer_enc, peer_dec;
  frame_rx ctrl_rx;
  bool peer_settings_received;
  h3_settings peer;
  buf dec_partial; /* partial instruction on the peer's decoder stream */
  u64map uni;      /* peer uni streams: id -> uni_stream (type unread) */
  u64map claimed;  /* streams an extension took: id -> h3_extension */

  qpack_decoder *qdec;

  u64map streams;         /* request streams: id -> struct stream */
  struct stream *blocked; /* waiting for QPACK inserts (linked) */
  /* PRIORITY_UPDATEs for requests whose headers are not here yet. */
  u64map early_priority; /* id -> heap copy of the field value */

  /* GOAWAY we send (RFC 9114 section 5.2). */
  uint64_t max_request_id; /* highest request stream seen */
  bool any_request;
  bool going_away;
  uint64_t goaway_id; /* requests at or above this are refused */
  uint64_t drain_deadline_ns;
  uint64_t goaway_sent_ns; /* 0 until the frame left our buffer */
  /* GOAWAY, MAX_PUSH_ID received: limits that must not move backwards. */
  bool peer_goaway;
  uint64_t peer_goaway_id;
  bool have_max_push_id;
  uint64_t max_push_id;

  /* Finished responses quiche may still be delivering: a draining
   * connection closes only after they are. */
  u64map flushing;
  struct stream *service; /* streams to service this round */
  bool failed;            /* a connection error was raised */
  void *layer_state[H3_LAYERS_MAX];
  bool processing; /* inside session_process */
  /* Next server-initiated stream ids (3, 7 and 11 are ours already). */
  uint64_t next_local_bidi, next_local_uni;
  size_t layers_started;   /* on_start ran for layers [0, layers_started) */
  size_t active_downloads; /* streams with stream.download set */
  /* Request streams the peer reset in the current one-second window. */
  uint64_t reset_window_start_ns;
  size_t resets_in_window;
};

/* control.c: the peer's unidirectional streams. */
void h3_uni_readable(h3_session *h, uint64_t id);

/* session.c: writes what waits on our unidirectional streams. */
void h3_flush_uni(h3_session *h);

/* drain.c: GOAWAY, drain and timeouts. */
void h3_drain_goaway(h3_session *h, uint64_t deadline_ns);
void h3_drain_tick(h3_session *h, uint64_t now_ns);
bool h3_drain_refuses(h3_session *h, uint64_t id);
bool h3_drain_done(h3_session *h);
void h3_drain_track_flushing(h3_session *h, uint64_t id);

/* stream_rx.c: request stream frames. */
void h3_request_readable(h3_session *h, uint64_t id);
void h3_retry_blocked(h3_session *h);

#endif
