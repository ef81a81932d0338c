/* The server object shared by the QUIC, HTTP/3 and API layers. */
#ifndef H3Q_CORE_SERVER_H
#define H3Q_CORE_SERVER_H

#include <pthread.h>
#include <quiche.h>
#include <sodium.h>
#include <stdatomic.h>

#include "core/config.h"
#include "h3q.h"
#include "http/router.h"
#include "http/static_files.h"
#include "http/validate.h"
#include "io/loop.h"
#include "io/udp.h"
#include "quic/conn_table.h"

struct conn;

typedef struct post_item {
  struct post_item *next;
  void (*fn)(void *user);
  void *user;
} post_item;

struct h3q_server {
  config_owned cfg;
  quiche_config *qcfg;
  quiche_h3_config *h3cfg;

  const loop_ops *lo;
  loop *loop;
  int fd;
  struct sockaddr_storage local;
  socklen_t local_len;
  udp_batch rx, tx;

  conn_table conns;   /* by the SCIDs we issue */
  struct conn *all;   /* every live connection (doubly linked) */
  struct conn *dirty; /* connections to process before the loop blocks */
  /* Our SCID for a new connection is HMAC(cid_secret, client's DCID), so
   * a retransmitted Initial finds the connection it already created. */
  uint8_t cid_secret[crypto_auth_hmacsha256_KEYBYTES];

  validate_limits vlimits; /* request header limits from the config */
  loop_timer *tick;        /* housekeeping: timeouts, drain deadlines */
  bool draining;           /* stop requested: GOAWAY sent, waiting */
  uint64_t drain_deadline_ns;
  router *router;
  h3q_handler fallback; /* for requests no route matches; NULL = 404 */
  void *fallback_user;
  h3q_static *static_files; /* owned: installed by h3q_server_serve_dir */

  atomic_bool stop_requested;
  bool running;
  pthread_mutex_t post_lock;
  post_item *posts;

  h3q_server_stats stats;
  uint64_t next_conn_number;
};

/* Sends every queued datagram in srv->tx. */
void server_flush_tx(h3q_server *srv);

#endif
