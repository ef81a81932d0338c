/* Shared by the WebTransport modules (conn.c, session.c, stream.c). */
#ifndef H3Q_WT_INTERNAL_H
#define H3Q_WT_INTERNAL_H

#include "util/buf.h"
#include "util/u64map.h"
#include "wt/wt.h"

typedef struct wt_conn wt_conn;

/* PENDING (waiting for the client's SETTINGS) -> OPEN (accepted) ->
 * CLOSING (a CLOSE capsule or the end of the CONNECT stream went either
 * way; streams are gone) -> freed when the CONNECT stream closes. Changed
 * only by session_set_state. */
typedef enum wt_state { WT_PENDING, WT_OPEN, WT_CLOSING } wt_state;

struct h3q_wt_session {
  wt_conn *wc;
  h3q_request *req;
  uint64_t id;
  wt_state state;
  h3q_wt_handler handler; /* until it ran */
  void *handler_user;
  h3q_wt_datagram_cb on_datagram;
  void *datagram_user;
  h3q_wt_stream_cb on_stream;
  void *stream_user;
  h3q_wt_session_cb on_drain;
  void *drain_user;
  h3q_wt_close_cb on_close;
  void *close_user;
  uint32_t close_code; /* from the CLOSE capsule either way */
  buf close_reason;
  bool close_sent, close_received;
  struct h3q_wt_stream *streams; /* open streams (doubly linked) */
  size_t stream_count;
  struct h3q_wt_session *pending_next; /* wc->pending */
};

struct h3q_wt_stream {
  wt_conn *wc;
  h3q_wt_session *ses; /* NULL until the peer's preface named it */
  uint64_t id;
  bool bidi, local;
  bool can_read, can_write; /* the directions this stream has */
  /* A peer stream's preface: the session id varint, read byte by byte. */
  uint8_t sid[8];
  uint8_t sid_have;
  bool read_done;     /* FIN read, reset by the peer, or stopped by us */
  bool fin_read;      /* read_done because of FIN */
  bool fin_pending;   /* FIN arrived with bytes: the next read returns 0 */
  bool fin_sent;      /* write_done because of FIN */
  bool readable;      /* quiche reported data since the last H3Q_EAGAIN */
  bool write_done;    /* FIN sent, reset by us, or stopped by the peer */
  bool end_requested; /* FIN waits for room or the preface */
  bool want_writable; /* tell on_writable when room appears */
  bool notify_readable;
  bool aborted;  /* a direction was reset or stopped */
  bool finished; /* both directions done: in wc->reap */
  bool in_todo;
  int64_t reset_code, stop_code; /* h3q_wt_stream_reset_code semantics */
  uint64_t write_generation;     /* see stream.write_generation in h3 */
  buf preface; /* ours: stream type and session id not yet sent */
  h3q_wt_stream_event_cb on_readable, on_writable;
  void *readable_user, *writable_user;
  h3q_wt_stream_close_cb on_close;
  void *close_user;
  struct h3q_wt_stream *prev, *next; /* ses->streams */
  struct h3q_wt_stream *reap_next, *todo_next;
};

struct wt_conn {
  const wt_ctx *w;
  h3_session *h;
  u64map sessions;            /* session id -> h3q_wt_session (OPEN+) */
  u64map streams;             /* stream id -> h3q_wt_stream */
  h3q_wt_session *pending;    /* waiting for the client's SETTINGS */
  struct h3q_wt_stream *reap; /* finished: close callbacks next */
  struct h3q_wt_stream *todo; /* blocked writes, readable notices */
  size_t open_sessions;
};

/* conn.c */
wt_conn *wt_conn_of(const wt_ctx *w, h3_session *h);
void wt_conn_wake(wt_conn *wc);

/* session.c */
void wt_session_decide_pending(wt_conn *wc);
void wt_session_drain_all(wt_conn *wc);

/* stream.c */
uint64_t wt_stream_on_claim(h3_session *h, uint64_t id, void *user);
void wt_stream_on_readable(h3_session *h, uint64_t id, void *user);
/* Resets and stops every stream of ses with WT_SESSION_GONE. */
void wt_streams_end_session(h3q_wt_session *ses);
/* Runs the close callbacks of finished streams, then frees them. */
void wt_streams_reap(wt_conn *wc);
/* Retries blocked writes and delivers readable notices. */
void wt_streams_service(wt_conn *wc);
/* Frees every stream without callbacks (the connection is gone). */
void wt_streams_free_all(wt_conn *wc);

#endif
