/* The public server object: configuration, the QUIC endpoint, the HTTP/3
 * settings its sessions share, routes, and the loop that runs them. */
#ifndef H3Q_CORE_SERVER_H
#define H3Q_CORE_SERVER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

#include "core/cb_routes.h"
#include "core/config.h"
#include "dgram/dgram.h"
#include "h3/session.h"
#include "h3q.h"
#include "http/router.h"
#include "io/loop.h"
#include "quic/endpoint.h"
#include "wt/wt.h"

typedef struct post_item {
  struct post_item *next;
  void (*fn)(void *user);
  void *user;
} post_item;

struct h3q_server {
  config_owned cfg;
  quic_endpoint ep;
  h3_config h3;     /* shared, read-only, by every HTTP/3 session */
  pool stream_pool; /* finished request streams, reused (h3.stream_pool) */
  dgram_ctx dgram;
  h3q_datagram_cb on_datagram; /* connection-scoped datagrams */
  void *datagram_user;
  cb_routes dgram_routes; /* h3q_server_route_datagram */
  wt_ctx wt;
  cb_routes wt_routes; /* h3q_server_webtransport */

  loop_timer *tick; /* housekeeping: timeouts, drain deadlines */
  bool draining;    /* stop requested: GOAWAY sent, waiting */
  uint64_t drain_deadline_ns;
  router *router;
  h3q_handler fallback; /* for requests no route matches; NULL = 404 */
  void *fallback_user;
  struct h3q_static *static_files; /* owned: installed by serve_dir */

  atomic_bool stop_requested;
  atomic_bool loop_ended; /* the loop has closed everything: posts refused */
  atomic_bool reload_requested; /* h3q_server_reload_tls */
  uint8_t ticket_key[48];       /* from the secret, for reloaded configs */
  bool running;
  bool embedded;   /* started by h3q_server_start: the host runs the loop */
  bool in_process; /* inside h3q_server_process (refuses re-entry) */
  pthread_mutex_t post_lock;
  post_item *posts;

  h3q_server_stats stats;
  FILE *access_log;              /* access_log_path; NULL = none */
  bool access_log_owned;         /* a file we opened (not stdout) */
  struct http_listener *metrics; /* metrics_addr; NULL = off */
};

/* What h3q_server_run does around the loop, shared with the embedding API
 * (embed.c): begin arms housekeeping and marks the server running; end
 * closes every connection and marks it stopped. */
void server_loop_begin(h3q_server *srv);
void server_loop_end(h3q_server *srv);

/* Routes one request (h3_config.on_request). */
void server_on_request(h3q_request *req, h3q_response *res, void *user);

/* Sets up datagrams (datagram.c) once the HTTP/3 config exists. */
int server_init_datagrams(h3q_server *srv);
void server_free_datagrams(h3q_server *srv);

/* Gives req the datagram receiver of its datagram route, if any. */
void server_route_datagrams(h3q_server *srv, h3q_request *req);

/* webtransport.c: an extended CONNECT for WebTransport goes to its
 * session handler (or gets 404); returns false for other requests. */
bool server_route_webtransport(h3q_server *srv, h3q_request *req);
void server_free_webtransport(h3q_server *srv);

#endif
