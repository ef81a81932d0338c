/* Running a server's workers: worker 0 on the thread that calls
 * h3q_server_run, the others on threads of their own; which worker owns a
 * connection or request; posts to a worker; the counters of all of them. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "core/server.h"
#include "h3/stream.h"
#include "quic/conn.h"
#include "util/clock.h"
#include "util/log.h"

_Static_assert(H3Q_WORKERS_MAX <= 256, "ep.worker is a byte");
_Static_assert(sizeof(h3q_server_stats) % sizeof(uint64_t) == 0,
               "h3q_server_stats holds only uint64_t counters");

/* The worker whose loop runs on this thread (NULL elsewhere). */
static _Thread_local server_worker *tl_worker;

int server_alloc_workers(h3q_server *srv, size_t n) {
  srv->workers = calloc(n, sizeof *srv->workers);
  if (!srv->workers)
    return H3Q_ENOMEM;
  srv->nworkers = n;
  for (size_t i = 0; i < n; i++) {
    server_worker *w = &srv->workers[i];
    w->srv = srv;
    w->ep.fd = -1;
    atomic_init(&w->loop_ended, false);
    atomic_init(&w->reload_requested, false);
    pthread_mutex_init(&w->post_lock, NULL);
  }
  return H3Q_OK;
}

server_worker *server_current_worker(h3q_server *srv) {
  if (srv->nworkers == 1)
    return &srv->workers[0];
  return tl_worker && tl_worker->srv == srv ? tl_worker : NULL;
}

server_worker *server_conn_worker(h3q_server *srv, uint64_t conn_id) {
  return &srv->workers[conn_id % srv->nworkers];
}

/* One worker's loop, on the calling thread, until it drained or failed. A
 * failed loop stops the others, so that h3q_server_run returns. */
static void worker_run(server_worker *w) {
  tl_worker = w;
  server_loop_begin(w);
  w->run_rc = H3Q_OK;
  if (!atomic_load(&w->srv->stop_requested))
    w->run_rc = w->ep.lo->run(w->ep.loop) == 0 ? H3Q_OK : H3Q_EIO;
  server_loop_end(w);
  tl_worker = NULL;
  if (w->run_rc != H3Q_OK) {
    LOG_ERROR("worker %u: event loop failed; stopping the server",
              (unsigned)w->ep.worker);
    h3q_server_stop(w->srv);
  }
}

static void *worker_main(void *arg) {
  worker_run(arg);
  return NULL;
}

/* Workers 1..N-1 on threads of their own. They block every signal, so
 * signals reach the caller's thread as with one worker. Returns false when
 * a thread could not be created (the server is then stopped). */
static bool start_threads(h3q_server *srv) {
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  bool ok = true;
  for (size_t i = 1; i < srv->nworkers && ok; i++) {
    server_worker *w = &srv->workers[i];
    w->thread_started = pthread_create(&w->thread, NULL, worker_main, w) == 0;
    ok = w->thread_started;
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (!ok) {
    LOG_ERROR("workers: cannot start a thread for every worker");
    h3q_server_stop(srv);
  }
  return ok;
}

static int join_threads(h3q_server *srv) {
  int rc = H3Q_OK;
  for (size_t i = 1; i < srv->nworkers; i++) {
    server_worker *w = &srv->workers[i];
    if (!w->thread_started)
      continue;
    pthread_join(w->thread, NULL);
    w->thread_started = false;
    if (w->run_rc != H3Q_OK)
      rc = w->run_rc;
  }
  return rc;
}

int h3q_server_run(h3q_server *srv) {
  if (!srv)
    return H3Q_EINVAL;
  if (srv->running || srv->embedded)
    return H3Q_ESTATE;
  srv->running = true;
  bool started = start_threads(srv);
  worker_run(&srv->workers[0]);
  int rc = join_threads(srv);
  if (srv->workers[0].run_rc != H3Q_OK)
    rc = srv->workers[0].run_rc;
  srv->running = false;
  return started ? rc : H3Q_EIO;
}

int h3q_server_post_worker(h3q_server *srv, unsigned worker,
                           void (*fn)(void *user), void *user) {
  if (!srv || !fn || worker >= srv->nworkers)
    return H3Q_EINVAL;
  return server_worker_post(&srv->workers[worker], fn, user);
}

int h3q_request_worker(const h3q_request *req) {
  if (!req)
    return H3Q_EINVAL;
  if (!h3_request_is_open(req))
    return H3Q_ECLOSED;
  return h3_session_conn(h3_request_session(req))->ep->worker;
}

/* ------------------------------------------------------------- goaway */

static int goaway_here(server_worker *w, uint64_t conn_id) {
  conn *c = endpoint_find(&w->ep, conn_id);
  if (!c)
    return H3Q_ENOTFOUND;
  conn_goaway(c, clock_now_ns() + w->srv->cfg.c.drain_timeout_ms * 1000000u);
  return H3Q_OK;
}

typedef struct goaway_job {
  server_worker *w;
  uint64_t conn_id;
} goaway_job;

static void goaway_posted(void *arg) {
  goaway_job *j = arg;
  goaway_here(j->w, j->conn_id);
  free(j);
}

int h3q_server_goaway(h3q_server *srv, uint64_t conn_id) {
  if (!srv)
    return H3Q_EINVAL;
  server_worker *owner = server_conn_worker(srv, conn_id);
  if (owner == server_current_worker(srv))
    return goaway_here(owner, conn_id);
  /* Another worker's connection: only its thread may touch it. */
  goaway_job *j = malloc(sizeof *j);
  if (!j)
    return H3Q_ENOMEM;
  j->w = owner;
  j->conn_id = conn_id;
  int rc = server_worker_post(owner, goaway_posted, j);
  if (rc != H3Q_OK)
    free(j);
  return rc;
}

/* ------------------------------------------------------------- counters */

void server_sum_stats(const h3q_server *srv, h3q_server_stats *out) {
  enum { N = sizeof(h3q_server_stats) / sizeof(uint64_t) };
  uint64_t sum[N];
  memset(sum, 0, sizeof sum);
  for (size_t i = 0; i < srv->nworkers; i++) {
    /* Read while the worker counts on: a sum may lag by a few events. */
    uint64_t one[N];
    memcpy(one, &srv->workers[i].stats, sizeof one);
    for (size_t k = 0; k < N; k++)
      sum[k] += one[k];
  }
  memcpy(out, sum, sizeof sum);
}

size_t h3q_server_get_stats(const h3q_server *srv, h3q_server_stats *out,
                            size_t size) {
  if (!srv || !out)
    return 0;
  h3q_server_stats sum;
  server_sum_stats(srv, &sum);
  size_t n = size < sizeof sum ? size : sizeof sum;
  memcpy(out, &sum, n);
  return n;
}
