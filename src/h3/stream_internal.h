/* Functions shared by the stream modules (stream.c, request.c,
 * response.c); not used outside src/h3. */
#ifndef H3Q_H3_STREAM_INTERNAL_H
#define H3Q_H3_STREAM_INTERNAL_H

#include "h3/stream.h"

/* HTTP/3 error codes (RFC 9114 section 8.1). */
#define H3_NO_ERROR 0x100
#define H3_INTERNAL_ERROR 0x102
#define H3_REQUEST_CANCELLED 0x10c
#define H3_MESSAGE_ERROR 0x10e

/* request.c */
int request_check_pseudo(stream *s);
void request_pump(stream *s);
void request_stop_reading(stream *s, uint64_t h3_error);

/* response_send.c */
void response_block(stream *s);
void stream_apply_priority(stream *s);
/* Sends one header section (final or 1xx when !trailer; trailers). */
int response_send_section(stream *s, const arena *a, const field *f, size_t n,
                          int status, bool trailer, bool fin);
ssize_t response_send_body(stream *s, const uint8_t *data, size_t len,
                           bool fin);
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
/* The code of the peer's STOP_SENDING on this stream, or 0. */
uint64_t stream_peer_error(stream *s);

#endif
