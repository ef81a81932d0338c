/* The HTTP/3 layer of one connection: created once QUIC is established,
 * then quiche_h3_conn_poll events are dispatched to streams. */
#ifndef H3Q_H3_SESSION_H
#define H3Q_H3_SESSION_H

#include "quic/conn.h"

/* Creates c->h3. Returns 0, or -1 (the connection is then closed). */
int session_start(conn *c);

/* Polls HTTP/3 events until quiche has none left (bounded per call). */
void session_poll(conn *c);

#endif
