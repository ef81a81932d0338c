/* Functions shared by the stream modules (stream.c, stream_rx.c,
 * section.c, request.c, response.c, response_send.c); not used outside
 * src/h3. */
#ifndef H3Q_H3_STREAM_INTERNAL_H
#define H3Q_H3_STREAM_INTERNAL_H

#include "h3/stream.h"

/* A DATA frame header is at most this long (type 1 byte, length 8). */
#define RESPONSE_DATA_HEADER_MAX 9

/* request.c */
int request_check_pseudo(stream *s);
void request_pump(stream *s);
void request_stop_reading(stream *s, uint64_t h3_error);

/* response_send.c */
/* The one place the response state changes. */
void response_set_state(stream *s, res_state to);
void response_block(stream *s);
void stream_apply_priority(stream *s);
/* Queues one header section as a HEADERS frame (final or 1xx when
 * !trailer; trailers), FIN with it when fin, and writes what fits.
 * Returns H3Q_OK (queued), H3Q_ENOMEM or H3Q_ECLOSED. */
int response_send_section(stream *s, const arena *a, const field *f, size_t n,
                          int status, bool trailer, bool fin);
ssize_t response_send_body(stream *s, const uint8_t *data, size_t len,
                           bool fin);
/* A whole response in one stream write: the final header section (the
 * handler's fields, then content-type when not NULL and content_length
 * when with_length), len body bytes (copied; 0 for HEAD) and FIN, built in
 * s->wframes.
 * For a response in RES_IDLE with nothing queued and no trailers. Returns
 * H3Q_OK (sent, or queued until the stream has room), H3Q_ENOMEM or
 * H3Q_ECLOSED. */
int response_send_small(stream *s, const char *content_type, bool with_length,
                        uint64_t content_length, const uint8_t *body,
                        size_t len);
/* Moves the response forward as far as the stream allows: header section,
 * pending body, trailers and FIN when ending. 0 when nothing is left
 * waiting, H3Q_EAGAIN when blocked, or H3Q_ECLOSED. */
int response_progress(stream *s);
void response_run_producer(stream *s);
void response_on_room(stream *s);

/* stream.c */
void stream_respond_status(stream *s, int status, const char *allow);
void stream_abort(stream *s, uint64_t h3_error);
/* Applies a PRIORITY_UPDATE field value unless the handler set one. */
void stream_priority_update(stream *s, const char *value, size_t len);
/* Applies a PRIORITY_UPDATE that arrived before the request. */
void stream_take_early_priority(stream *s);
/* The code of the peer's STOP_SENDING on this stream, or 0. */
uint64_t stream_peer_error(stream *s);
/* The one place the request state changes. */
void request_set_state(stream *s, req_state to);
/* Reads the stream again on the next round (and wakes the connection). */
void stream_request_pump(stream *s);
/* Drops a stream that turned out not to be a request (an extension took
 * it): no callbacks. */
void stream_forget(stream *s);

/* stream.c: the collected HEADERS payload was decoded; its buffer is
 * emptied (kept for trailers and the stream's next use when small). */
void stream_section_done(stream *s);

/* stream_rx.c, section.c */
void stream_rx_pump(stream *s);
void section_complete(stream *s);
void section_too_large(stream *s);

/* session.c: tells the layers that request stream id is being freed. */
void h3_layers_stream_closed(h3_session *h, uint64_t id);

/* session.c: hands stream id to extension e (s: the stream object made
 * for it, if any, which is dropped). Returns true (the id is claimed or
 * refused). */
bool h3_claim_stream(h3_session *h, uint64_t id, const h3_extension *e,
                     stream *s);

#endif
