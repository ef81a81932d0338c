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
#include "util/clock.h"
#include "util/log.h"

/* Housekeeping period, and how long closing connections get to send their
 * CONNECTION_CLOSE after the drain deadline before run() returns. */
#define TICK_NS (250u * 1000000u)
/* Most finished request streams kept for reuse (h3_stream_pool_init). */
#define STREAM_POOL_MAX 256
#define CLOSE_GRACE_NS (1000u * 1000000u)

static void process_dirty(void *arg) {
  h3q_server *srv = arg;
  quic_endpoint *ep = &srv->ep;
  if (endpoint_process(ep))
    ep->lo->wakeup(ep->loop); /* more work: do not block */
  else if (srv->draining && !ep->all)
    ep->lo->break_loop(ep->loop); /* drained */
}

static void on_tick(void *arg) {
  h3q_server *srv = arg;
  uint64_t now = clock_now_ns();
  endpoint_tick(&srv->ep, now);
  server_flush_access_log(srv);
  if (srv->draining && now >= srv->drain_deadline_ns + CLOSE_GRACE_NS)
    srv->ep.lo->break_loop(srv->ep.loop);
  srv->ep.lo->timer_arm(srv->tick, TICK_NS);
}

/* Graceful stop: GOAWAY everywhere; run() returns once every connection
 * closed, or after the drain deadline (plus a moment to send the closes). */
static void begin_drain(h3q_server *srv) {
  if (srv->draining)
    return;
  srv->draining = true;
  srv->ep.accepting = false;
  handoff_mark_draining(&srv->ep); /* new connections go elsewhere */
  srv->drain_deadline_ns =
      clock_now_ns() + srv->cfg.c.drain_timeout_ms * 1000000u;
  for (conn *c = srv->ep.all, *next; c; c = next) {
    next = c->next;
    conn_goaway(c, srv->drain_deadline_ns);
  }
  process_dirty(srv);
}

static void run_posts(h3q_server *srv) {
  pthread_mutex_lock(&srv->post_lock);
  post_item *list = srv->posts;
  srv->posts = NULL;
  pthread_mutex_unlock(&srv->post_lock);
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

static void close_all(h3q_server *srv) {
  for (conn *c = srv->ep.all; c; c = c->next)
    conn_close(c, H3Q_H3_NO_ERROR);
  process_dirty(srv);
}

/* A new quiche config from the certificate files as they are now; new
 * connections use it, open ones keep theirs. Failures keep the old one. */
static void reload_tls(h3q_server *srv) {
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
  endpoint_swap_qconfig(&srv->ep, q);
  LOG_WARN("tls: reloaded %s and %s for new connections", srv->cfg.c.cert_path,
           srv->cfg.c.key_path);
}

static void on_wakeup(void *arg) {
  h3q_server *srv = arg;
  run_posts(srv);
  if (atomic_exchange(&srv->reload_requested, false))
    reload_tls(srv);
  if (atomic_load(&srv->stop_requested))
    begin_drain(srv);
}

static int server_init_loop(h3q_server *srv, char *err, size_t errlen) {
  quic_endpoint *ep = &srv->ep;
  ep->lo = srv->cfg.c.loop_backend == H3Q_LOOP_EPOLL ? &loop_epoll_ops
                                                     : &loop_ev_ops;
  ep->loop = ep->lo->create();
  if (!ep->loop ||
      ep->lo->watch_readable(ep->loop, ep->fd, endpoint_on_readable, ep) ||
      handoff_watch(ep) || ep->lo->set_wakeup(ep->loop, on_wakeup, srv) ||
      ep->lo->set_before_block(ep->loop, process_dirty, srv) ||
      !(srv->tick = ep->lo->timer_new(ep->loop, on_tick, srv))) {
    snprintf(err, errlen, "event loop: cannot initialize");
    return H3Q_EIO;
  }
  return server_start_metrics(srv, err, errlen);
}

/* The keys behind Retry tokens, stateless resets, CIDs and tickets: from
 * the configured secret (buffer or file), else random for this server. */
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
  quic_secrets secrets;
  rc = server_load_secrets(srv, &secrets, err, errlen);
  if (rc != H3Q_OK)
    return rc;
  quiche_config *qcfg = NULL;
  rc = qconfig_build(&srv->cfg.c, srv->cfg.alpn_wire, srv->cfg.alpn_wire_len,
                     secrets.ticket, &qcfg, err, errlen);
  if (rc != H3Q_OK) {
    sodium_memzero(&secrets, sizeof secrets);
    return rc;
  }
  if (!(srv->router = router_new())) {
    quiche_config_free(qcfg);
    return H3Q_ENOMEM;
  }
  h3_config_init(&srv->h3, &srv->cfg.c);
  srv->h3.on_request = server_on_request;
  srv->h3.user = srv;
  srv->h3.stats = &srv->stats;
  /* One connection's worth of streams at most: enough for a busy
   * connection to allocate nothing per request, and independent of how
   * many connections sit idle. */
  uint64_t keep = srv->cfg.c.initial_max_streams_bidi;
  h3_stream_pool_init(
      &srv->stream_pool,
      (size_t)(keep < STREAM_POOL_MAX ? keep : STREAM_POOL_MAX));
  srv->h3.stream_pool = &srv->stream_pool;
  srv->h3.on_request_done = server_on_request_done;
  srv->ep.stats = &srv->stats;
  rc = server_init_datagrams(srv);
  if (rc == H3Q_OK)
    rc = wt_ctx_init(&srv->wt, &srv->h3, &srv->cfg.c, &srv->stats);
  if (rc != H3Q_OK) {
    quiche_config_free(qcfg);
    return rc;
  }
  srv->ep.app = &h3_app_ops;
  srv->ep.app_ctx = &srv->h3;
  srv->ep.alpn_wire = srv->cfg.alpn_wire;
  srv->ep.alpn_wire_len = srv->cfg.alpn_wire_len;
  memcpy(srv->ticket_key, secrets.ticket, sizeof srv->ticket_key);
  rc = endpoint_init(&srv->ep, &srv->cfg.c, qcfg, &secrets, err, errlen);
  sodium_memzero(&secrets, sizeof secrets);
  return rc == H3Q_OK ? server_init_loop(srv, err, errlen) : rc;
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
  srv->ep.fd = -1;
  pthread_mutex_init(&srv->post_lock, NULL);
  atomic_init(&srv->stop_requested, false);
  atomic_init(&srv->loop_ended, false);
  atomic_init(&srv->reload_requested, false);
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

void h3q_server_free(h3q_server *srv) {
  if (!srv)
    return;
  endpoint_free(&srv->ep);
  h3_stream_pool_close(&srv->stream_pool); /* after every session */
  post_item *p = srv->posts;
  while (p) {
    post_item *next = p->next;
    free(p);
    p = next;
  }
  server_stop_metrics(srv); /* before the loop it is watched by */
  if (srv->tick)
    srv->ep.lo->timer_free(srv->tick);
  if (srv->ep.loop)
    srv->ep.lo->destroy(srv->ep.loop);
  router_free(srv->router);
  server_free_webtransport(srv);
  server_free_datagrams(srv);
  h3q_static_free(srv->static_files);
  server_close_access_log(srv); /* after the last request finished */
  config_owned_free(&srv->cfg);
  pthread_mutex_destroy(&srv->post_lock);
  free(srv);
}

uint16_t h3q_server_port(const h3q_server *srv) {
  const struct sockaddr *sa = (const struct sockaddr *)&srv->ep.local;
  if (sa->sa_family == AF_INET6)
    return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
  return ntohs(((const struct sockaddr_in *)sa)->sin_port);
}

void server_loop_begin(h3q_server *srv) {
  srv->running = true;
  srv->ep.lo->timer_arm(srv->tick, TICK_NS);
}

void server_loop_end(h3q_server *srv) {
  srv->ep.lo->timer_stop(srv->tick);
  close_all(srv);
  srv->running = false;
  atomic_store(&srv->loop_ended, true);
}

int h3q_server_run(h3q_server *srv) {
  if (!srv)
    return H3Q_EINVAL;
  if (srv->running || srv->embedded)
    return H3Q_ESTATE;
  server_loop_begin(srv);
  int rc = H3Q_OK;
  if (!atomic_load(&srv->stop_requested))
    rc = srv->ep.lo->run(srv->ep.loop) == 0 ? H3Q_OK : H3Q_EIO;
  server_loop_end(srv);
  return rc;
}

void h3q_server_stop(h3q_server *srv) {
  if (!srv)
    return;
  atomic_store(&srv->stop_requested, true);
  srv->ep.lo->wakeup(srv->ep.loop);
}

void h3q_server_reload_tls(h3q_server *srv) {
  if (!srv)
    return;
  atomic_store(&srv->reload_requested, true);
  srv->ep.lo->wakeup(srv->ep.loop);
}

int h3q_server_post(h3q_server *srv, void (*fn)(void *user), void *user) {
  if (!srv || !fn)
    return H3Q_EINVAL;
  /* A stopping server still runs posts while it drains (a host may be
   * finishing responses); once its loop has ended nothing would run them. */
  if (atomic_load(&srv->loop_ended))
    return H3Q_ESTATE;
  post_item *p = malloc(sizeof *p);
  if (!p)
    return H3Q_ENOMEM;
  p->fn = fn;
  p->user = user;
  pthread_mutex_lock(&srv->post_lock);
  p->next = srv->posts;
  srv->posts = p;
  pthread_mutex_unlock(&srv->post_lock);
  srv->ep.lo->wakeup(srv->ep.loop);
  return H3Q_OK;
}

int h3q_server_route(h3q_server *srv, const char *method, const char *pattern,
                     h3q_handler handler, void *user) {
  if (!srv || !method || !pattern || !handler)
    return H3Q_EINVAL;
  if (srv->running)
    return H3Q_ESTATE;
  return router_add(srv->router, method, pattern, handler, user);
}

int h3q_server_goaway(h3q_server *srv, uint64_t conn_id) {
  if (!srv)
    return H3Q_EINVAL;
  conn *c = endpoint_find(&srv->ep, conn_id);
  if (!c)
    return H3Q_ENOTFOUND;
  conn_goaway(c, clock_now_ns() + srv->cfg.c.drain_timeout_ms * 1000000u);
  return H3Q_OK;
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

size_t h3q_server_get_stats(const h3q_server *srv, h3q_server_stats *out,
                            size_t size) {
  if (!srv || !out)
    return 0;
  size_t n = size < sizeof srv->stats ? size : sizeof srv->stats;
  memcpy(out, &srv->stats, n);
  return n;
}
