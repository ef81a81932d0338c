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

/* response.c */
void response_on_room(stream *s);

/* stream.c */
void stream_respond_status(stream *s, int status, const char *allow);
void stream_abort(stream *s, uint64_t h3_error);

#endif
