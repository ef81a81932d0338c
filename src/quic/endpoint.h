/* The server's UDP endpoint: reads datagram batches, routes each to its
 * connection by DCID, and accepts new connections from client Initials. */
#ifndef H3Q_QUIC_ENDPOINT_H
#define H3Q_QUIC_ENDPOINT_H

#include "core/server.h"

/* Loop callback for the readable socket (arg is the server). */
void endpoint_on_readable(void *arg);

/* Processes one datagram (buf is modified in place). */
void endpoint_handle_datagram(h3q_server *srv, uint8_t *buf, size_t len,
                              const struct sockaddr *from, socklen_t from_len);

#endif
