/* h3q-server's demo routes (see --help). */
#ifndef H3Q_SERVER_DEMO_H
#define H3Q_SERVER_DEMO_H

#include <stdbool.h>
#include <stdint.h>

#include "h3q.h"

/* Registers the demo routes, and files under root (NULL: none) for paths
 * no route claims, with directory listings when list_dirs. Returns an
 * H3Q_E* code after printing why. */
int demo_add_routes(h3q_server *srv, const char *root, bool list_dirs);

/* Echoes every connection-scoped QUIC DATAGRAM back to its sender, or
 * with HTTP Datagrams (h3), every datagram of a request to /dgram/echo
 * (any method; the response ends when the request does). Returns an
 * H3Q_E* code after printing why. */
int demo_add_datagram_echo(h3q_server *srv, bool h3);

/* The WebTransport demo (demo_wt.c): /wt/echo and GET /wt/cert-hash
 * (the SHA-256 of cert_path's certificate). Returns an H3Q_E* code after
 * printing why. */
int demo_add_webtransport(h3q_server *srv, const char *cert_path);

/* Parses a decimal number <= max; 0, or -1 when s is not one. */
int demo_parse_u64(const char *s, uint64_t max, uint64_t *out);

#endif
