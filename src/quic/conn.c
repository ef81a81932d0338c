#include "quic/conn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "h3/session.h"
#include "h3/stream.h"
#include "h3/stream_internal.h"
#include "util/log.h"

static void on_timer(void *arg) {
  conn *c = arg;
  quiche_conn_on_timeout(c->q);
  conn_mark_dirty(c);
}

static void set_qlog(conn *c) {
  const char *dir = c->srv->cfg.c.qlog_dir;
  if (!dir)
    return;
  char path[4096];
  snprintf(path, sizeof path, "%s/h3q-%llu-%llu.sqlog", dir,
           (unsigned long long)getpid(), (unsigned long long)c->number);
  if (!quiche_conn_set_qlog_path(c->q, path, "h3q", "h3q server connection"))
    LOG_WARN("conn %llu: cannot write qlog %s", (unsigned long long)c->number,
             path);
}

conn *conn_accept(h3q_server *srv, const uint8_t scid[CONN_SCID_LEN],
                  const struct sockaddr *peer, socklen_t peer_len) {
  conn *c = calloc(1, sizeof *c);
  if (!c)
    return NULL;
  c->srv = srv;
  memcpy(c->scid, scid, CONN_SCID_LEN);
  memcpy(&c->peer, peer, peer_len);
  c->peer_len = peer_len;
  c->number = srv->next_conn_number++;
  c->q = quiche_accept(scid, CONN_SCID_LEN, NULL, 0,
                       (struct sockaddr *)&srv->local, srv->local_len, peer,
                       peer_len, srv->qcfg);
  c->timer = c->q ? srv->lo->timer_new(srv->loop, on_timer, c) : NULL;
  if (!c->q || !c->timer ||
      conn_table_put(&srv->conns, scid, CONN_SCID_LEN, c) != 0) {
    if (c->q)
      quiche_conn_free(c->q);
    srv->lo->timer_free(c->timer);
    free(c);
    return NULL;
  }
  if (srv->cfg.c.keylog_path)
    quiche_conn_set_keylog_path(c->q, srv->cfg.c.keylog_path);
  set_qlog(c);
  c->next = srv->all;
  if (srv->all)
    srv->all->prev = c;
  srv->all = c;
  srv->stats.connections_accepted++;
  srv->stats.connections_active++;
  LOG_DEBUG("conn %llu: accepted", (unsigned long long)c->number);
  return c;
}

void conn_recv(conn *c, uint8_t *buf, size_t len, const struct sockaddr *from,
               socklen_t from_len) {
  quiche_recv_info ri = {
      .from = (struct sockaddr *)from,
      .from_len = from_len,
      .to = (struct sockaddr *)&c->srv->local,
      .to_len = c->srv->local_len,
  };
  ssize_t rc = quiche_conn_recv(c->q, buf, len, &ri);
  if (rc < 0 && rc != QUICHE_ERR_DONE) {
    LOG_DEBUG("conn %llu: recv error %zd", (unsigned long long)c->number, rc);
    c->srv->stats.packets_dropped++;
  }
  conn_mark_dirty(c);
}

void conn_mark_dirty(conn *c) {
  if (c->dirty)
    return;
  c->dirty = true;
  c->dirty_next = c->srv->dirty;
  c->srv->dirty = c;
}

#define URGENCY_LEVELS 8

/* Services queued streams most urgent first (RFC 9218): whoever writes
 * first takes the connection's send capacity, so the order of these
 * callbacks is what makes priorities real, not just quiche's packet
 * scheduler. Within one urgency, queue order. */
static void service_streams(conn *c) {
  struct stream *head[URGENCY_LEVELS] = {0}, *tail[URGENCY_LEVELS] = {0};
  for (struct stream *s = c->service, *next; s; s = next) {
    next = s->service_next;
    unsigned u = s->prio.urgency < URGENCY_LEVELS ? s->prio.urgency : 7;
    s->service_next = NULL;
    if (tail[u])
      tail[u]->service_next = s;
    else
      head[u] = s;
    tail[u] = s;
  }
  c->service = NULL;
  for (unsigned u = 0; u < URGENCY_LEVELS; u++) {
    for (struct stream *s = head[u], *next; s; s = next) {
      next = s->service_next;
      stream_service(s);
    }
  }
}

static void send_packets(conn *c) {
  udp_batch *tx = &c->srv->tx;
  for (;;) {
    if (tx->count == tx->cap)
      server_flush_tx(c->srv);
    quiche_send_info si;
    ssize_t n =
        quiche_conn_send(c->q, udp_batch_buf(tx, tx->count), tx->buf_size, &si);
    if (n == QUICHE_ERR_DONE)
      return;
    if (n < 0) {
      LOG_DEBUG("conn %llu: send error %zd", (unsigned long long)c->number, n);
      return;
    }
    udp_batch_push(tx, (size_t)n, (struct sockaddr *)&si.to, si.to_len);
    c->srv->stats.datagrams_sent++;
  }
}

static void arm_timer(conn *c) {
  uint64_t ns = quiche_conn_timeout_as_nanos(c->q);
  if (ns == UINT64_MAX)
    c->srv->lo->timer_stop(c->timer);
  else
    c->srv->lo->timer_arm(c->timer, ns);
}

void conn_process(conn *c) {
  if (!c->h3 &&
      (quiche_conn_is_established(c->q) || quiche_conn_is_in_early_data(c->q)))
    session_start(c);
  if (c->h3 && !quiche_conn_is_closed(c->q)) {
    conn_note_new_streams(c);
    session_poll(c);
    conn_retry_goaway(c);
  }
  service_streams(c);
  if (conn_drained(c) && !quiche_conn_is_draining(c->q))
    conn_close(c, H3_NO_ERROR); /* every response delivered */
  send_packets(c);
  if (quiche_conn_is_closed(c->q)) {
    conn_destroy(c);
    return;
  }
  arm_timer(c);
}

void conn_close(conn *c, uint64_t app_error) {
  static const uint8_t reason[1];
  /* Before the handshake completes an application close cannot be sent
   * (quiche would stall); use the transport's APPLICATION_ERROR then. */
  if (quiche_conn_is_established(c->q))
    quiche_conn_close(c->q, true, app_error, reason, 0);
  else
    quiche_conn_close(c->q, false, 0xc /* APPLICATION_ERROR */, reason, 0);
  conn_mark_dirty(c);
}

static void unlink_dirty(conn *c) {
  for (conn **p = &c->srv->dirty; *p; p = &(*p)->dirty_next) {
    if (*p == c) {
      *p = c->dirty_next;
      return;
    }
  }
}

void conn_destroy(conn *c) {
  h3q_server *srv = c->srv;
  LOG_DEBUG("conn %llu: closed", (unsigned long long)c->number);
  /* Close callbacks first: handlers may still look at their requests. */
  while (c->streams.len) {
    /* Freeing shifts entries around; restart from the first occupied. */
    size_t i = 0;
    while (!c->streams.slots[i].value)
      i++;
    stream_abort_and_free(c->streams.slots[i].value);
  }
  u64map_free(&c->streams);
  u64map_free(&c->awaiting_headers);
  u64map_free(&c->flushing);
  if (c->dirty)
    unlink_dirty(c);
  conn_table_del(&srv->conns, c->scid, CONN_SCID_LEN);
  if (c->prev)
    c->prev->next = c->next;
  else
    srv->all = c->next;
  if (c->next)
    c->next->prev = c->prev;
  srv->lo->timer_free(c->timer);
  if (c->h3)
    quiche_h3_conn_free(c->h3);
  quiche_conn_free(c->q);
  srv->stats.connections_active--;
  free(c);
}
