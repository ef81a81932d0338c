/* Driving a server from another program's event loop (include/h3q.h,
 * "embedding"): the same loop as h3q_server_run, one non-blocking
 * iteration per h3q_server_process call. One worker only: the host's loop
 * is one thread. */
#include "core/server.h"
#include "util/log.h"

#define NS_PER_MS 1000000

static bool embeddable(const h3q_server *srv) {
  if (srv->nworkers > 1) {
    LOG_ERROR("workers: the embedding API drives one event loop; workers "
              "must be 1 (it is %zu)",
              srv->nworkers);
    return false;
  }
  return srv->workers[0].ep.lo->run_once != NULL;
}

static server_worker *the_worker(const h3q_server *srv) {
  return &srv->workers[0];
}

int h3q_server_fd(const h3q_server *srv) {
  if (!srv)
    return H3Q_EINVAL;
  if (!embeddable(srv))
    return H3Q_ECONFIG;
  const quic_endpoint *ep = &the_worker(srv)->ep;
  return ep->lo->fd(ep->loop);
}

int h3q_server_start(h3q_server *srv) {
  if (!srv)
    return H3Q_EINVAL;
  if (!embeddable(srv))
    return H3Q_ECONFIG;
  if (srv->running || srv->embedded)
    return H3Q_ESTATE;
  srv->embedded = true;
  srv->running = true;
  server_loop_begin(the_worker(srv));
  return H3Q_OK;
}

int h3q_server_process(h3q_server *srv) {
  if (!srv)
    return H3Q_EINVAL;
  if (!srv->embedded || srv->in_process)
    return H3Q_ESTATE;
  if (!srv->running)
    return H3Q_SERVER_STOPPED;
  server_worker *w = the_worker(srv);
  srv->in_process = true;
  int rc = w->ep.lo->run_once(w->ep.loop, 0);
  srv->in_process = false;
  if (rc == 0)
    return H3Q_OK;
  /* Drained, past the drain deadline, or the loop failed: what
   * h3q_server_run does when its loop returns. */
  srv->in_process = true; /* close callbacks run here too */
  server_loop_end(w);
  srv->running = false;
  srv->in_process = false;
  return rc > 0 ? H3Q_SERVER_STOPPED : H3Q_EIO;
}

int64_t h3q_server_next_timeout_ms(const h3q_server *srv) {
  if (!srv || !srv->embedded || !srv->running)
    return -1;
  const quic_endpoint *ep = &the_worker(srv)->ep;
  int64_t ns = ep->lo->next_timeout_ns(ep->loop);
  if (ns <= 0)
    return ns;
  /* Rounded up: a host that wakes before the timer is due would only call
   * again with nothing to do. */
  return ns / NS_PER_MS + (ns % NS_PER_MS != 0);
}
