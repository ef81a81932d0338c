/* The public server API: creation, routes, run/stop, cross-thread posts. */
#include "core/server.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "quic/conn.h"
#include "quic/endpoint.h"
#include "quic/qconfig.h"
#include "util/clock.h"
#include "util/log.h"

/* Datagrams per sendmmsg call, and receive buffer size (any datagram a
 * peer may send before it learns our max_udp_payload_size). */
#define TX_BATCH 64
#define RX_DATAGRAM_MAX 65535
/* Rounds of connection processing per loop iteration before yielding to
 * I/O (the loop is woken up to continue without blocking). */
#define PROCESS_ROUNDS 4
/* Housekeeping period, and how long closing connections get to send their
 * CONNECTION_CLOSE after the drain deadline before run() returns. */
#define TICK_NS (250u * 1000000u)
#define CLOSE_GRACE_NS (1000u * 1000000u)

void server_flush_tx(h3q_server *srv) {
  if (srv->tx.count)
    srv->stats.packets_dropped += udp_flush(srv->fd, &srv->tx);
}

static void process_dirty(void *arg) {
  h3q_server *srv = arg;
  for (int round = 0; round < PROCESS_ROUNDS && srv->dirty; round++) {
    conn *list = srv->dirty;
    srv->dirty = NULL;
    while (list) {
      conn *c = list;
      list = c->dirty_next;
      c->dirty = false;
      conn_process(c);
    }
  }
  server_flush_tx(srv);
  if (srv->dirty)
    srv->lo->wakeup(srv->loop); /* more work: do not block */
  else if (srv->draining && !srv->all)
    srv->lo->break_loop(srv->loop); /* drained */
}

static void on_tick(void *arg) {
  h3q_server *srv = arg;
  uint64_t now = clock_now_ns();
  for (conn *c = srv->all; c; c = c->next)
    conn_tick(c, now);
  if (srv->draining && now >= srv->drain_deadline_ns + CLOSE_GRACE_NS)
    srv->lo->break_loop(srv->loop);
  srv->lo->timer_arm(srv->tick, TICK_NS);
}

/* Graceful stop: GOAWAY everywhere; run() returns once every connection
 * closed, or after the drain deadline (plus a moment to send the closes). */
static void begin_drain(h3q_server *srv) {
  if (srv->draining)
    return;
  srv->draining = true;
  srv->drain_deadline_ns =
      clock_now_ns() + srv->cfg.c.drain_timeout_ms * 1000000u;
  for (conn *c = srv->all; c; c = c->next)
    conn_goaway(c, srv->drain_deadline_ns);
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
  for (conn *c = srv->all; c; c = c->next)
    conn_close(c, 0x100 /* H3_NO_ERROR */);
  process_dirty(srv);
}

static void on_wakeup(void *arg) {
  h3q_server *srv = arg;
  run_posts(srv);
  if (atomic_load(&srv->stop_requested))
    begin_drain(srv);
}

static int server_init_io(h3q_server *srv, char *err, size_t errlen) {
  srv->fd = udp_open(srv->cfg.c.bind_addr, (uint16_t)srv->cfg.c.port,
                     &srv->local, &srv->local_len, err, errlen);
  if (srv->fd < 0)
    return H3Q_EIO;
  if (udp_batch_init(&srv->rx, srv->cfg.c.recv_batch, RX_DATAGRAM_MAX) ||
      udp_batch_init(&srv->tx, TX_BATCH, srv->cfg.c.max_send_udp_payload_size))
    return H3Q_ENOMEM;
  srv->lo = &loop_ev_ops;
  srv->loop = srv->lo->create();
  if (!srv->loop ||
      srv->lo->watch_readable(srv->loop, srv->fd, endpoint_on_readable, srv) ||
      srv->lo->set_wakeup(srv->loop, on_wakeup, srv) ||
      srv->lo->set_before_block(srv->loop, process_dirty, srv) ||
      !(srv->tick = srv->lo->timer_new(srv->loop, on_tick, srv))) {
    snprintf(err, errlen, "event loop: cannot initialize");
    return H3Q_EIO;
  }
  return H3Q_OK;
}

static int server_init(h3q_server *srv, const h3q_config *cfg, char *err,
                       size_t errlen) {
  int rc = config_validate(cfg, err, errlen);
  if (rc != H3Q_OK)
    return rc;
  if (config_copy(&srv->cfg, cfg) != H3Q_OK)
    return H3Q_ENOMEM;
  h3q_log_set_level(cfg->log_level);
  log_apply_env();
  rc = qconfig_build(&srv->cfg, &srv->qcfg, &srv->h3cfg, err, errlen);
  if (rc != H3Q_OK)
    return rc;
  if (conn_table_init(&srv->conns) != 0 || !(srv->router = router_new()))
    return H3Q_ENOMEM;
  randombytes_buf(srv->cid_secret, sizeof srv->cid_secret);
  srv->vlimits = (validate_limits){
      .max_header_count = cfg->max_header_count,
      .max_header_name_length = cfg->max_header_name_length,
      .max_header_value_length = cfg->max_header_value_length,
      .max_request_headers_size = cfg->max_request_headers_size,
      .max_path_length = cfg->max_path_length,
      .extended_connect = cfg->enable_extended_connect,
  };
  return server_init_io(srv, err, errlen);
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
  srv->fd = -1;
  pthread_mutex_init(&srv->post_lock, NULL);
  atomic_init(&srv->stop_requested, false);
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
  while (srv->all)
    conn_destroy(srv->all);
  post_item *p = srv->posts;
  while (p) {
    post_item *next = p->next;
    free(p);
    p = next;
  }
  if (srv->tick)
    srv->lo->timer_free(srv->tick);
  if (srv->loop)
    srv->lo->destroy(srv->loop);
  if (srv->fd >= 0)
    close(srv->fd);
  udp_batch_free(&srv->rx);
  udp_batch_free(&srv->tx);
  conn_table_free(&srv->conns);
  router_free(srv->router);
  h3q_static_free(srv->static_files);
  if (srv->h3cfg)
    quiche_h3_config_free(srv->h3cfg);
  if (srv->qcfg)
    quiche_config_free(srv->qcfg);
  config_owned_free(&srv->cfg);
  pthread_mutex_destroy(&srv->post_lock);
  free(srv);
}

uint16_t h3q_server_port(const h3q_server *srv) {
  const struct sockaddr *sa = (const struct sockaddr *)&srv->local;
  if (sa->sa_family == AF_INET6)
    return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
  return ntohs(((const struct sockaddr_in *)sa)->sin_port);
}

int h3q_server_run(h3q_server *srv) {
  if (!srv)
    return H3Q_EINVAL;
  if (srv->running)
    return H3Q_ESTATE;
  srv->running = true;
  int rc = H3Q_OK;
  srv->lo->timer_arm(srv->tick, TICK_NS);
  if (!atomic_load(&srv->stop_requested))
    rc = srv->lo->run(srv->loop) == 0 ? H3Q_OK : H3Q_EIO;
  srv->lo->timer_stop(srv->tick);
  close_all(srv);
  srv->running = false;
  return rc;
}

void h3q_server_stop(h3q_server *srv) {
  if (!srv)
    return;
  atomic_store(&srv->stop_requested, true);
  srv->lo->wakeup(srv->loop);
}

int h3q_server_post(h3q_server *srv, void (*fn)(void *user), void *user) {
  if (!srv || !fn)
    return H3Q_EINVAL;
  if (atomic_load(&srv->stop_requested))
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
  srv->lo->wakeup(srv->loop);
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
  for (conn *c = srv->all; c; c = c->next) {
    if (c->number == conn_id) {
      conn_goaway(c, clock_now_ns() + srv->cfg.c.drain_timeout_ms * 1000000u);
      return H3Q_OK;
    }
  }
  return H3Q_ENOTFOUND;
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

void h3q_server_get_stats(const h3q_server *srv, h3q_server_stats *out) {
  if (srv && out)
    *out = srv->stats;
}
