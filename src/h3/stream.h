/* One request stream: the parsed request, the response being sent, and two
 * explicit state machines (request side, response side). The stream lives
 * until both sides are done; it is then freed in conn_process after its
 * close callback, never inside a user callback. */
#ifndef H3Q_H3_STREAM_H
#define H3Q_H3_STREAM_H

#include <quiche.h>

#include "h3/frame.h"
#include "h3/session.h"
#include "h3q.h"
#include "http/priority.h"
#include "http/router.h"

/* Request side: HEADERS (waiting for the header section) -> BODY (DATA
 * frames, then optional trailers) -> DONE (FIN consumed, reset by the
 * peer, or reading shut down by us). Changed only by request_set_state. */
typedef enum req_state { REQ_HEADERS, REQ_BODY, REQ_DONE } req_state;

/* Where the reader is inside the request stream's frames. */
typedef enum rx_phase {
  RX_FRAME_HEADER, /* reading a frame's type and length */
  RX_SECTION,      /* collecting a HEADERS payload */
  RX_BLOCKED,      /* HEADERS payload waits for QPACK inserts */
  RX_DATA,         /* inside a DATA payload: body bytes */
  RX_SKIP,         /* inside an unknown frame: discarded */
  RX_FIN,          /* FIN read with the last bytes: handled next */
  RX_END,          /* FIN seen, or reading stopped */
} rx_phase;

/* Response side: IDLE (no header section yet) -> BODY (the final section
 * is queued or sent) -> DONE (FIN written), or RESET from any state.
 * Changed only by response_set_state. Whether the handler asked to end is
 * the separate end_requested flag, because it can be asked in any state
 * before DONE. */
typedef enum res_state {
  RES_IDLE,
  RES_BODY,
  RES_DONE,
  RES_RESET,
} res_state;

struct h3q_request {
  struct stream *s;
};
struct h3q_response {
  struct stream *s;
};

typedef struct field {
  size_t name, value; /* offsets into the owning arena, NUL-terminated */
} field;

typedef struct arena {
  char *buf;
  size_t len, cap;
} arena;

/* Header fields a request or response holds inside the stream object
 * before its field array spills to the heap: most sections have fewer. */
#define STREAM_INLINE_FIELDS 16

typedef struct stream {
  struct h3q_request req;
  struct h3q_response res;
  h3_session *h;
  quiche_conn *q;
  uint64_t id;

  /* Request framing (stream_rx.c). */
  rx_phase rx;
  h3_frame_header_reader rx_hdr;
  uint64_t rx_left;   /* payload bytes left in the current frame */
  buf rx_section;     /* HEADERS payload being collected */
  bool trailers_seen; /* a second HEADERS arrived: only FIN may follow */
  bool rx_fin_seen;   /* FIN arrived with a section that is blocked */
  struct stream *blocked_next; /* h->blocked */

  /* Request. */
  req_state rstate;
  arena rarena;   /* request header strings and route params */
  field *rfields; /* rfield_inline, or the heap once that is full */
  size_t rfield_count, rfield_cap;
  field rfield_inline[STREAM_INLINE_FIELDS];
  field *rtrailers; /* request trailer section, in rarena */
  size_t rtrailer_count, rtrailer_cap;
  bool early_data; /* arrived before the handshake completed */
  priority prio;   /* from the request, or set by the handler */
  bool prio_fixed; /* the handler set it: PRIORITY_UPDATE no longer applies */
  /* arena offsets; 0 = unset */
  size_t method, path, query, authority, scheme, protocol;
  struct {
    const char *name; /* in the router's pattern; lives with the server */
    size_t name_len;
    size_t value; /* arena offset */
  } params[ROUTER_MAX_PARAMS];
  size_t param_count;
  int reject_status; /* non-zero: answer with this status, skip handler */
  bool has_content_length;
  uint64_t content_length;          /* declared; DATA must match it exactly */
  uint64_t body_bytes;              /* request body bytes received */
  uint64_t opened_ns, last_body_ns; /* for the body idle timeout */
  bool is_head;                     /* HEAD: body writes are dropped */
  bool body_readable; /* a DATA payload has unread bytes in quiche */
  bool fin_received;
  bool paused;
  bool end_pending; /* Finished arrived while paused */
  bool want_read_pump;
  h3q_body_data_cb on_data;
  h3q_request_cb on_end;
  void *body_user;
  h3q_request_cb on_readable;
  void *readable_user;

  /* Response. */
  res_state wstate;
  int status;
  arena warena;   /* response header strings */
  field *wfields; /* wfield_inline, or the heap once that is full */
  size_t wfield_count, wfield_cap;
  field wfield_inline[STREAM_INLINE_FIELDS];
  field *wtrailers; /* response trailers, in warena */
  size_t wtrailer_count, wtrailer_cap;
  bool informational_sent; /* a 1xx went out: the final section follows */
  bool trailers_queued;    /* the trailer section is in wframes or sent */
  /* Frame bytes (HEADERS frames) quiche had no room for yet; body bytes
   * wait until they are gone. Bounded by one header section. */
  buf wframes;
  bool wframes_fin; /* FIN goes with the last byte of wframes */
  /* Body bytes accepted but not yet in quiche: the h3q_response_send copy,
   * or the part of a producer's chunk quiche did not take. */
  uint8_t *pending_body;
  size_t pending_len, pending_off, pending_cap;
  h3q_producer producer;
  void *producer_user;
  bool producer_waiting; /* returned H3Q_EAGAIN: wait for resume */
  uint64_t peer_error;   /* code of the peer's RESET_STREAM/STOP_SENDING */
  bool want_writable;
  bool end_requested; /* h3q_response_end called; FIN follows the body */
  h3q_response_cb on_writable;
  void *writable_user;
  h3q_close_cb on_close;
  void *close_user;

  /* Observability (access log, metrics) and the download limit. */
  bool final_sent;    /* the final header section was queued */
  bool download;      /* counted in h->active_downloads */
  uint64_t body_sent; /* response body bytes handed to quiche */

  bool aborted;
  bool closed;    /* close callback ran or is running: API calls fail */
  bool forgotten; /* an extension took the stream: never a request */
  /* A tunnel (capsules, WebTransport): its body is a long-lived stream,
   * exempt from max_request_body_size and the body idle timeout. */
  bool tunnel;
  bool in_service;
  struct stream *service_next;
} stream;

/* Creates the stream for a new request and registers it with h (reusing
 * one from the config's stream pool when it holds any). */
stream *stream_new(h3_session *h, uint64_t id);

/* Stores one request header field (validated by the caller: validate.c).
 * Returns 0 or H3Q_ENOMEM. */
int stream_add_request_field(stream *s, const uint8_t *name, size_t nlen,
                             const uint8_t *value, size_t vlen);

/* Stores one request trailer field (validated by the caller). */
int stream_add_request_trailer(stream *s, const uint8_t *name, size_t nlen,
                               const uint8_t *value, size_t vlen);

/* Checks what HTTP/3 decides itself (pseudo-headers, 413, 425, 503) and
 * hands the request up (h3_config.on_request). */
void stream_dispatch(stream *s);

/* Copies a route's parameters into the request (h3q_request_param).
 * Returns H3Q_OK or H3Q_ENOMEM. */
int stream_set_route_params(stream *s, const route_match *m);

/* Events from the request stream's frames (stream_rx.c). */
void stream_on_data(stream *s);
void stream_on_finished(stream *s);
void stream_on_reset(stream *s, uint64_t h3_error);

/* Reads body bytes of the request stream into out: the count, 0 at the end
 * of the body (FIN, trailers read), H3Q_EAGAIN when nothing is readable,
 * H3Q_ECLOSED after a reset or a connection error. */
ssize_t stream_read_body(stream *s, uint8_t *out, size_t len);

/* Marks the connection for processing (API calls that changed state). */
void stream_wake(stream *s);

/* Called from conn_process for each queued stream: pumps reads and writes
 * and frees the stream when both sides are done. */
void stream_service(stream *s);

/* Aborts the stream (connection closing): close callback with aborted. */
void stream_abort_and_free(stream *s);

/* Queues the stream for stream_service in the next conn_process. */
void stream_queue(stream *s);

/* For layers above HTTP/3 (datagrams, WebTransport). */

/* The session a request belongs to. */
h3_session *h3_request_session(const h3q_request *req);

/* Makes the request's body a tunnel (see stream.tunnel). */
void h3_request_set_tunnel(h3q_request *req);

/* True while the request stream is open (its close callback has not
 * run). */
bool h3_request_is_open(const h3q_request *req);

/* Appends bytes (copied) to what the response sends, after the header
 * section and anything queued before; they go out as flow control
 * allows, whole and in order. For messages that must not be cut (a
 * capsule). Errors: H3Q_ECLOSED, H3Q_ESTATE (ended, or a producer
 * supplies the body), H3Q_ENOMEM. */
int h3_response_queue(h3q_response *res, const void *data, size_t len);

#endif
