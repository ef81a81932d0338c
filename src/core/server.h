/* The public server object: configuration and routes shared by its
 * workers, and the workers: each an event loop with its own QUIC endpoint,
 * HTTP/3 settings and counters (workers.c runs them). */
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

struct h3q_server;

/* One event loop of a server (h3q_config.workers): its own endpoint (UDP
 * socket on the shared port, connection table, batches), loop, timers,
 * HTTP/3 settings, stream pool, datagram and WebTransport contexts, posts
 * and counters. Everything in it is touched by its loop thread only,
 * except posts (post_lock), the atomics, and stats (read without locks by
 * h3q_server_get_stats, so a sum may lag). */
typedef struct server_worker {
  struct h3q_server *srv;
  quic_endpoint ep; /* ep.worker is this worker's index */
  h3_config h3;     /* read-only by its sessions; user, stats, stream_pool
                       point at this worker */
  pool stream_pool; /* finished request streams, reused (h3.stream_pool) */
  dgram_ctx dgram;
  wt_ctx wt;
  loop_timer *tick; /* housekeeping: timeouts, drain deadlines */
  bool draining;    /* stop requested: GOAWAY sent, waiting */
  uint64_t drain_deadline_ns;
  atomic_bool loop_ended; /* the loop has closed everything: posts refused */
  atomic_bool reload_requested; /* h3q_server_reload_tls */
  pthread_mutex_t post_lock;
  post_item *posts;
  pthread_t thread; /* workers 1..N-1 while h3q_server_run runs */
  bool thread_started;
  int run_rc; /* what its loop returned (H3Q_OK or H3Q_EIO) */
  h3q_server_stats stats;
} server_worker;

/* The shared part: configuration and what the user registered (read-only
 * once the server runs), the access log, the metrics listener (on worker
 * 0's loop), and the stop flag every worker watches. */
struct h3q_server {
  config_owned cfg;
  size_t nworkers;
  server_worker *workers;      /* worker 0 runs on h3q_server_run's caller */
  atomic_size_t open_conns;    /* of every worker, for max_connections */
  h3q_datagram_cb on_datagram; /* connection-scoped datagrams */
  void *datagram_user;
  cb_routes dgram_routes; /* h3q_server_route_datagram */
  cb_routes wt_routes;    /* h3q_server_webtransport */

  router *router;
  h3q_handler fallback; /* for requests no route matches; NULL = 404 */
  void *fallback_user;
  struct h3q_static *static_files; /* owned: installed by serve_dir */

  atomic_bool stop_requested;
  uint8_t ticket_key[48]; /* from the secret, for reloaded configs */
  bool running;
  bool embedded;   /* started by h3q_server_start: the host runs the loop */
  bool in_process; /* inside h3q_server_process (refuses re-entry) */

  FILE *access_log;              /* access_log_path; NULL = none */
  bool access_log_owned;         /* a file we opened (not stdout) */
  struct http_listener *metrics; /* metrics_addr; NULL = off */
};

/* Allocates srv's n workers (not yet initialized: no socket, no loop). */
int server_alloc_workers(h3q_server *srv, size_t n);

/* The worker whose loop runs on the calling thread, if it is one of srv's;
 * with one worker, that worker (whose thread is the caller's to know). NULL
 * on other threads of a server with several workers. */
server_worker *server_current_worker(h3q_server *srv);

/* The worker that owns connection number conn_id (numbers are worker +
 * k * workers). */
server_worker *server_conn_worker(h3q_server *srv, uint64_t conn_id);

/* Queues fn(user) for w's loop thread. H3Q_ESTATE once its loop ended. */
int server_worker_post(server_worker *w, void (*fn)(void *user), void *user);

/* The sum of every worker's counters. */
void server_sum_stats(const h3q_server *srv, h3q_server_stats *out);

/* What h3q_server_run does around a worker's loop, shared with the
 * embedding API (embed.c, one worker): begin arms housekeeping; end closes
 * every connection and refuses further posts. */
void server_loop_begin(server_worker *w);
void server_loop_end(server_worker *w);

/* Routes one request (h3_config.on_request; user is the worker). */
void server_on_request(h3q_request *req, h3q_response *res, void *user);

/* Sets up a worker's datagrams (datagram.c) once its HTTP/3 config
 * exists. */
int server_init_datagrams(server_worker *w);
void server_free_datagrams(h3q_server *srv);

/* Gives req the datagram receiver of its datagram route, if any. */
void server_route_datagrams(h3q_server *srv, h3q_request *req);

/* webtransport.c: an extended CONNECT for WebTransport goes to its
 * session handler (or gets 404); returns false for other requests. */
bool server_route_webtransport(server_worker *w, h3q_request *req);
void server_free_webtransport(h3q_server *srv);

#endif
