/* A small HTTP/1.1 server on a non-blocking TCP listener, run by an h3q
 * event loop: GET requests only, one request per connection (Connection:
 * close), for the metrics endpoint. Bounded on every side: request heads
 * of at most HTTP_LISTEN_HEAD_MAX bytes, HTTP_LISTEN_CLIENTS clients at
 * once (more are closed at accept), and a deadline per client, so a slow
 * or silent client costs one slot for a while and never blocks the loop. */
#ifndef H3Q_IO_HTTP_LISTEN_H
#define H3Q_IO_HTTP_LISTEN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "io/loop.h"

#define HTTP_LISTEN_HEAD_MAX 4096
#define HTTP_LISTEN_CLIENTS 8
#define HTTP_LISTEN_TIMEOUT_NS (10ull * 1000000000ull)

/* Answers GET path (without query): returns the status, and for 200 a
 * body (malloc'd, the listener frees it) with its length and content
 * type. A NULL body with status 200 means out of memory (500). */
typedef int (*http_get_cb)(const char *path, char **body, size_t *len,
                           const char **content_type, void *user);

typedef struct http_listener http_listener;

/* Listens on addr (port 0: any free port). Returns NULL with a message in
 * err when the socket cannot be opened or bound, or memory runs out. */
http_listener *http_listener_new(const loop_ops *lo, loop *l,
                                 const struct sockaddr *addr, socklen_t len,
                                 http_get_cb cb, void *user, char *err,
                                 size_t errlen);

/* The bound port. */
uint16_t http_listener_port(const http_listener *h);

/* Closes the listener and every client. Accepts NULL. */
void http_listener_free(http_listener *h);

/* Parses a request head (exposed for tests): "GET /path?q HTTP/1.1\r\n...".
 * Returns 1 when the head is complete and valid (method and path, without
 * the query, copied NUL-terminated into the given buffers), 0 when more
 * bytes are needed, -1 when it is malformed or too long. */
int http_parse_head(const char *buf, size_t len, char *method,
                    size_t method_cap, char *path, size_t path_cap);

#endif
