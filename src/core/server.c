/* The public server API: creation, routes, run/stop, cross-thread posts. */
#include "core/server.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/observe.h"
#include "quic/conn.h"
#include "quic/endpoint.h"
#include "quic/qconfig.h"
#include "quic/rx_split.h"
#include "util/clock.h"
#include "util/log.h"

/* Housekeeping period, and how long closing connections get to send their
 * CONNECTION_CLOSE after the drain deadline before run() returns. */
#define TICK_NS (250u * 1000000u)
/* A sweep over the connections goes TICK_SLICE at a time, TICK_STEP_NS
 * apart (about 0.1 ms of work per step; 10,000 connections in 40 ms). */
#define TICK_SLICE 256
#define TICK_STEP_NS (1u * 1000000u)
/* Most finished request streams kept for reuse (h3_stream_pool_init). */
#define STREAM_POOL_MAX 256
#define CLOSE_GRACE_NS (1000u * 1000000u)

static void process_dirty(void *arg) {
  server_worker *w = arg;
  quic_endpoint *ep = &w->ep;
  if (endpoint_process(ep))
    ep->lo->wakeup(ep->loop); /* more work: do not block */
  else if (w->draining && !ep->all)
    ep->lo->break_loop(ep->loop); /* drained */
}

static void on_tick(void *arg) {
  server_worker *w = arg;
  uint64_t now = clock_now_ns();
  bool swept = endpoint_tick(&w->ep, now, TICK_SLICE);
  if (swept)
    server_flush_access_log(w->srv);
  if (w->draining && now >= w->drain_deadline_ns + CLOSE_GRACE_NS)
    w->ep.lo->break_loop(w->ep.loop);
  w->ep.lo->timer_arm(w->tick, swept ? TICK_NS : TICK_STEP_NS);
}

/* Graceful stop: GOAWAY everywhere; the loop ends once every connection
 * closed, or after the drain deadline (plus a moment to send the closes). */
static void begin_drain(server_worker *w) {
  if (w->draining)
    return;
  w->draining = true;
  w->ep.accepting = false;
  handoff_mark_draining(&w->ep); /* new connections go elsewhere */
  w->drain_deadline_ns =
      clock_now_ns() + w->srv->cfg.c.drain_timeout_ms * 1000000u;
  for (conn *c = w->ep.all, *next; c; c = next) {
    next = c->next;
    conn_goaway(c, w->drain_deadline_ns);
  }
  process_dirty(w);
}

static void run_posts(server_worker *w) {
  pthread_mutex_lock(&w->post_lock);
  post_item *list = w->posts;
  w->posts = NULL;
  pthread_mutex_unlock(&w->post_lock);
  /* Reverse to run in posting order. */
  post_item *ordered = NULL;
  while (list) {
    post_item *next = list->next;
    list->next = ordered;
    ordered = list;
    list = next;
  }
  while (ordered) {
    post_item *next = ordered->next;
    ordered->fn(ordered->user);
    free(ordered);
    ordered = next;
  }
}

static void close_all(server_worker *w) {
  for (conn *c = w->ep.all; c; c = c->next)
    conn_close(c, H3Q_H3_NO_ERROR);
  process_dirty(w);
}

/* A new quiche config from the certificate files as they are now; new
 * connections of this worker use it, open ones keep theirs. Failures keep
 * the old one. Every worker builds its own: quiche configs are changed per
 * accepted connection (the stateless reset token). */
static void reload_tls(server_worker *w) {
  h3q_server *srv = w->srv;
  char err[512] = "";
  quiche_config *q = NULL;
  int rc =
      qconfig_build(&srv->cfg.c, srv->cfg.alpn_wire, srv->cfg.alpn_wire_len,
                    srv->ticket_key, &q, err, sizeof err);
  if (rc != H3Q_OK) {
    LOG_ERROR("tls reload failed, keeping the current certificate: %s",
              err[0] ? err : h3q_strerror(rc));
    return;
  }
  endpoint_swap_qconfig(&w->ep, q);
  if (w->ep.worker == 0)
    LOG_WARN("tls: reloaded %s and %s for new connections",
             srv->cfg.c.cert_path, srv->cfg.c.key_path);
}

static void on_wakeup(void *arg) {
  server_worker *w = arg;
  run_posts(w);
  if (atomic_exchange(&w->reload_requested, false))
    reload_tls(w);
  if (atomic_load(&w->srv->stop_requested))
    begin_drain(w);
}

static int worker_init_loop(server_worker *w, char *err, size_t errlen) {
  quic_endpoint *ep = &w->ep;
  ep->loop = ep->lo->create();
  if (!ep->loop ||
      ep->lo->watch_readable(ep->loop, ep->fd, endpoint_on_readable, ep) ||
      rx_split_watch(ep) || handoff_watch(ep) ||
      ep->lo->set_wakeup(ep->loop, on_wakeup, w) ||
      ep->lo->set_before_block(ep->loop, process_dirty, w) ||
      !(w->tick = ep->lo->timer_new(ep->loop, on_tick, w))) {
    snprintf(err, errlen, "event loop: cannot initialize");
    return H3Q_EIO;
  }
  return H3Q_OK;
}

/* The keys behind Retry tokens, stateless resets, CIDs and tickets: from
 * the configured secret (buffer or file), else random for this server.
 * Every worker gets the same keys. */
static int server_load_secrets(h3q_server *srv, quic_secrets *out, char *err,
                               size_t errlen) {
  const h3q_config *c = &srv->cfg.c;
  if (c->secret)
    return secrets_derive(out, c->secret, c->secret_len) == 0 ? H3Q_OK
                                                              : H3Q_ECONFIG;
  if (!c->secret_file) {
    secrets_random(out);
    return H3Q_OK;
  }
  uint8_t *bytes = NULL;
  size_t len = 0;
  int rc = config_load_secret(c->secret_file, &bytes, &len, err, errlen);
  if (rc != H3Q_OK)
    return rc;
  rc = secrets_derive(out, bytes, len) == 0 ? H3Q_OK : H3Q_ECONFIG;
  sodium_memzero(bytes, len);
  free(bytes);
  return rc;
}

/* A worker's HTTP/3 settings, whose callbacks and counters lead back to
 * the worker, and the layers (datagrams, WebTransport) registered in them. */
static int worker_init_h3(server_worker *w) {
  const h3q_config *c = &w->srv->cfg.c;
  h3_config_init(&w->h3, c);
  w->h3.on_request = server_on_request;
  w->h3.on_request_done = server_on_request_done;
  w->h3.user = w;
  w->h3.stats = &w->stats;
  /* One connection's worth of streams at most: enough for a busy
   * connection to allocate nothing per request, and independent of how
   * many connections sit idle. */
  uint64_t keep = c->initial_max_streams_bidi;
  h3_stream_pool_init(
      &w->stream_pool,
      (size_t)(keep < STREAM_POOL_MAX ? keep : STREAM_POOL_MAX));
  w->h3.stream_pool = &w->stream_pool;
  int rc = server_init_datagrams(w);
  return rc == H3Q_OK ? wt_ctx_init(&w->wt, &w->h3, c, &w->stats) : rc;
}

/* Worker index's endpoint and loop. Workers after the first bind the port
 * the first one got (it may have asked for port 0). */
static int worker_init(server_worker *w, size_t index,
                       const quic_secrets *secrets, char *err, size_t errlen) {
  h3q_server *srv = w->srv;
  h3q_config c = srv->cfg.c;
  if (index > 0)
    c.port = h3q_server_port(srv);
  quiche_config *qcfg = NULL;
  int rc = qconfig_build(&c, srv->cfg.alpn_wire, srv->cfg.alpn_wire_len,
                         secrets->ticket, &qcfg, err, errlen);
  if (rc != H3Q_OK)
    return rc;
  rc = worker_init_h3(w);
  if (rc != H3Q_OK) {
    quiche_config_free(qcfg);
    return rc;
  }
  quic_endpoint *ep = &w->ep;
  ep->worker = (uint8_t)index;
  /* steering: later workers share worker 0's generation and eBPF map */
  ep->first_worker = index > 0 ? &srv->workers[0].ep : NULL;
  ep->open_conns = &srv->open_conns;
  ep->stats = &w->stats;
  ep->app = &h3_app_ops;
  ep->app_ctx = &w->h3;
  ep->alpn_wire = srv->cfg.alpn_wire;
  ep->alpn_wire_len = srv->cfg.alpn_wire_len;
  ep->lo = c.loop_backend == H3Q_LOOP_EPOLL ? &loop_epoll_ops : &loop_ev_ops;
  rc = endpoint_init(ep, &c, qcfg, secrets, err, errlen);
  return rc == H3Q_OK ? worker_init_loop(w, err, errlen) : rc;
}

static int server_init_workers(h3q_server *srv, char *err, size_t errlen) {
  quic_secrets secrets;
  int rc = server_load_secrets(srv, &secrets, err, errlen);
  if (rc != H3Q_OK)
    return rc;
  memcpy(srv->ticket_key, secrets.ticket, sizeof srv->ticket_key);
  for (size_t i = 0; i < srv->nworkers && rc == H3Q_OK; i++)
    rc = worker_init(&srv->workers[i], i, &secrets, err, errlen);
  sodium_memzero(&secrets, sizeof secrets);
  return rc;
}

static int server_init(h3q_server *srv, const h3q_config *cfg, char *err,
                       size_t errlen) {
  int rc = config_validate(cfg, err, errlen);
  if (rc != H3Q_OK)
    return rc;
  if (config_copy(&srv->cfg, cfg) != H3Q_OK)
    return H3Q_ENOMEM;
  if (srv->cfg.c.enable_webtransport) {
    /* WebTransport rides on extended CONNECT and HTTP Datagrams. */
    srv->cfg.c.enable_extended_connect = true;
    srv->cfg.c.enable_dgram = true;
    srv->cfg.c.enable_h3_datagram = true;
  }
  h3q_log_set_level(cfg->log_level);
  log_set_format(cfg->log_format);
  log_apply_env();
  server_route_quiche_log();
  rc = server_open_access_log(srv, err, errlen);
  if (rc != H3Q_OK)
    return rc;
  if (!(srv->router = router_new()))
    return H3Q_ENOMEM;
  rc = server_alloc_workers(srv, srv->cfg.c.workers);
  if (rc == H3Q_OK)
    rc = server_init_workers(srv, err, errlen);
  return rc == H3Q_OK ? server_start_metrics(srv, err, errlen) : rc;
}

int h3q_server_new(const h3q_config *cfg, h3q_server **out, char *err,
                   size_t errlen) {
  char scratch[1];
  if (!err || !errlen) {
    err = scratch;
    errlen = sizeof scratch;
  }
  err[0] = '\0';
  if (!out || !cfg) {
    snprintf(err, errlen, "h3q_server_new: NULL argument");
    return H3Q_EINVAL;
  }
  *out = NULL;
  h3q_server *srv = calloc(1, sizeof *srv);
  if (!srv) {
    snprintf(err, errlen, "out of memory");
    return H3Q_ENOMEM;
  }
  atomic_init(&srv->stop_requested, false);
  atomic_init(&srv->open_conns, 0);
  int rc = server_init(srv, cfg, err, errlen);
  if (rc != H3Q_OK) {
    if (!err[0])
      snprintf(err, errlen, "%s", h3q_strerror(rc));
    h3q_server_free(srv);
    return rc;
  }
  *out = srv;
  return H3Q_OK;
}

/* Connections first (their requests' callbacks may still look at the
 * worker), then the pool they return streams to. */
static void worker_free_conns(server_worker *w) {
  endpoint_free(&w->ep);
  h3_stream_pool_close(&w->stream_pool); /* after every session */
  post_item *p = w->posts;
  while (p) {
    post_item *next = p->next;
    free(p);
    p = next;
  }
  w->posts = NULL;
}

static void worker_free_loop(server_worker *w) {
  if (w->tick)
    w->ep.lo->timer_free(w->tick);
  if (w->ep.loop)
    w->ep.lo->destroy(w->ep.loop);
  pthread_mutex_destroy(&w->post_lock);
}

void h3q_server_free(h3q_server *srv) {
  if (!srv)
    return;
  for (size_t i = 0; i < srv->nworkers; i++)
    worker_free_conns(&srv->workers[i]);
  server_stop_metrics(srv); /* before the loop it is watched by */
  for (size_t i = 0; i < srv->nworkers; i++)
    worker_free_loop(&srv->workers[i]);
  router_free(srv->router);
  server_free_webtransport(srv);
  server_free_datagrams(srv);
  free(srv->workers);
  h3q_static_free(srv->static_files);
  server_close_access_log(srv); /* after the last request finished */
  config_owned_free(&srv->cfg);
  free(srv);
}

uint16_t h3q_server_port(const h3q_server *srv) {
  const struct sockaddr *sa =
      (const struct sockaddr *)&srv->workers[0].ep.local;
  if (sa->sa_family == AF_INET6)
    return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
  return ntohs(((const struct sockaddr_in *)sa)->sin_port);
}

void server_loop_begin(server_worker *w) {
  w->ep.lo->timer_arm(w->tick, TICK_NS);
}

void server_loop_end(server_worker *w) {
  w->ep.lo->timer_stop(w->tick);
  close_all(w);
  /* Other workers (or a new process) may still serve the port: leave it
   * to them rather than hold datagrams no loop reads. */
  endpoint_stop_receiving(&w->ep);
  atomic_store(&w->loop_ended, true);
}

void h3q_server_stop(h3q_server *srv) {
  if (!srv)
    return;
  atomic_store(&srv->stop_requested, true);
  for (size_t i = 0; i < srv->nworkers; i++)
    srv->workers[i].ep.lo->wakeup(srv->workers[i].ep.loop);
}

void h3q_server_reload_tls(h3q_server *srv) {
  if (!srv)
    return;
  for (size_t i = 0; i < srv->nworkers; i++) {
    server_worker *w = &srv->workers[i];
    atomic_store(&w->reload_requested, true);
    w->ep.lo->wakeup(w->ep.loop);
  }
}

int server_worker_post(server_worker *w, void (*fn)(void *user), void *user) {
  /* A stopping server still runs posts while it drains (a host may be
   * finishing responses); once the loop has ended nothing would run them. */
  if (atomic_load(&w->loop_ended))
    return H3Q_ESTATE;
  post_item *p = malloc(sizeof *p);
  if (!p)
    return H3Q_ENOMEM;
  p->fn = fn;
  p->user = user;
  pthread_mutex_lock(&w->post_lock);
  p->next = w->posts;
  w->posts = p;
  pthread_mutex_unlock(&w->post_lock);
  w->ep.lo->wakeup(w->ep.loop);
  return H3Q_OK;
}

int h3q_server_post(h3q_server *srv, void (*fn)(void *user), void *user) {
  if (!srv || !fn)
    return H3Q_EINVAL;
  return server_worker_post(&srv->workers[0], fn, user);
}

int h3q_server_route(h3q_server *srv, const char *method, const char *pattern,
                     h3q_handler handler, void *user) {
  if (!srv || !method || !pattern || !handler)
    return H3Q_EINVAL;
  if (srv->running)
    return H3Q_ESTATE;
  return router_add(srv->router, method, pattern, handler, user);
}

int h3q_server_set_fallback(h3q_server *srv, h3q_handler handler, void *user) {
  if (!srv)
    return H3Q_EINVAL;
  if (srv->running)
    return H3Q_ESTATE;
  srv->fallback = handler;
  srv->fallback_user = user;
  return H3Q_OK;
}

int h3q_server_serve_dir(h3q_server *srv, const char *root) {
  if (!srv || !root)
    return H3Q_EINVAL;
  if (srv->running)
    return H3Q_ESTATE;
  int err = H3Q_OK;
  h3q_static *st = h3q_static_new(root, NULL, &err);
  if (!st)
    return err ? err : H3Q_ENOMEM;
  h3q_static_free(srv->static_files);
  srv->static_files = st;
  return h3q_server_set_fallback(srv, h3q_static_handler, st);
}
