#include "quic/conn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "quic/endpoint.h"
#include "util/log.h"

/* The transport's APPLICATION_ERROR, for closes before the handshake. */
#define QUIC_APPLICATION_ERROR 0xc
/* CRYPTO_ERROR carrying a TLS alert (RFC 9001 §4.8): 120
 * no_application_protocol, 116 certificate_required. */
#define QUIC_TLS_ALERT(alert) (0x100u + (alert))

static void on_timer(void *arg) {
  conn *c = arg;
  quiche_conn_on_timeout(c->q);
  conn_mark_dirty(c);
}

static void on_pace_timer(void *arg) {
  conn_mark_dirty(arg); /* the held packet is due */
}

static void set_qlog(conn *c) {
  const char *dir = c->ep->qlog_dir;
  if (!dir)
    return;
  char path[4096];
  snprintf(path, sizeof path, "%s/h3q-%llu-%llu.sqlog", dir,
           (unsigned long long)getpid(), (unsigned long long)c->number);
  if (!quiche_conn_set_qlog_path(c->q, path, "h3q", "h3q server connection"))
    LOG_WARN("conn %llu: cannot write qlog %s", (unsigned long long)c->number,
             path);
}

static conn *conn_create(quic_endpoint *ep, const uint8_t *scid,
                         const uint8_t *odcid, size_t odcid_len, bool validated,
                         const struct sockaddr *peer, socklen_t peer_len) {
  conn *c = calloc(1, sizeof *c);
  if (!c)
    return NULL;
  c->ep = ep;
  size_t scid_len = ep->cids.len;
  memcpy(c->scid, scid, scid_len);
  conn_path_init(c, peer, peer_len);
  c->number = ep->next_conn_number;
  ep->next_conn_number += ep->conn_number_step;
  /* A valid Retry or NEW_TOKEN token proves the client owns its address:
   * no 3x limit. */
  c->addr_validated = validated;
  /* quiche copies the config's token into this connection's transport
   * parameters at accept, so setting it per connection is safe. */
  uint8_t token[RESET_TOKEN_LEN];
  secrets_reset_token(&ep->secrets, scid, scid_len, token);
  quiche_config_set_stateless_reset_token(ep->qcfg, token);
  c->q = quiche_accept(scid, scid_len, odcid, odcid_len,
                       (struct sockaddr *)&ep->rx_to, ep->rx_to_len, peer,
                       peer_len, ep->qcfg);
  c->timer = c->q ? ep->lo->timer_new(ep->loop, on_timer, c) : NULL;
  c->pace_timer = c->q ? ep->lo->timer_new(ep->loop, on_pace_timer, c) : NULL;
  if (!c->q || !c->timer || !c->pace_timer ||
      conn_table_put(&ep->conns, scid, scid_len, c) != 0) {
    if (c->q)
      quiche_conn_free(c->q);
    ep->lo->timer_free(c->timer);
    ep->lo->timer_free(c->pace_timer);
    free(c);
    return NULL;
  }
  if (ep->keylog_path)
    quiche_conn_set_keylog_path(c->q, ep->keylog_path);
  set_qlog(c);
  c->next = ep->all;
  if (ep->all)
    ep->all->prev = c;
  ep->all = c;
  ep->stats->connections_accepted++;
  ep->stats->connections_active++;
  if (!c->addr_validated) {
    c->handshake_counted = true;
    admission_handshake_started(&ep->admission);
  }
  LOG_DEBUG("conn %llu: accepted", (unsigned long long)c->number);
  return c;
}

conn *conn_accept(quic_endpoint *ep, const uint8_t *scid, const uint8_t *odcid,
                  size_t odcid_len, bool validated, const struct sockaddr *peer,
                  socklen_t peer_len) {
  /* max_connections counts every worker's connections: the slot is taken
   * before the connection exists, so two workers cannot both take the
   * last one (conn_destroy gives it back). */
  if (atomic_fetch_add_explicit(ep->open_conns, 1, memory_order_relaxed) >=
      ep->max_connections) {
    atomic_fetch_sub_explicit(ep->open_conns, 1, memory_order_relaxed);
    return NULL;
  }
  conn *c = conn_create(ep, scid, odcid, odcid_len, validated, peer, peer_len);
  if (!c)
    atomic_fetch_sub_explicit(ep->open_conns, 1, memory_order_relaxed);
  return c;
}

void conn_recv(conn *c, uint8_t *buf, size_t len, const struct sockaddr *from,
               socklen_t from_len) {
  quiche_recv_info ri = {
      .from = (struct sockaddr *)from,
      .from_len = from_len,
      .to = (struct sockaddr *)&c->ep->rx_to,
      .to_len = c->ep->rx_to_len,
  };
  if (!c->addr_validated)
    c->unvalidated_rx += len;
  ssize_t rc = quiche_conn_recv(c->q, buf, len, &ri);
  if (rc < 0 && rc != QUICHE_ERR_DONE) {
    LOG_DEBUG("conn %llu: recv error %zd", (unsigned long long)c->number, rc);
    endpoint_count_drop(c->ep, H3Q_DROP_QUIC);
  }
  c->rx_unprocessed++;
  conn_mark_dirty(c);
}

void conn_mark_dirty(conn *c) {
  if (c->dirty)
    return;
  c->dirty = true;
  c->dirty_next = c->ep->dirty;
  c->ep->dirty = c;
  /* Marked between loop iterations (an embedding host calling the API from
   * its own callbacks): the loop must still process it before blocking.
   * In-memory tests run an endpoint without a loop. */
  const loop_ops *lo = c->ep->lo;
  if (lo && lo->schedule_before_block)
    lo->schedule_before_block(c->ep->loop);
}

static void arm_timer(conn *c) {
  uint64_t ns = quiche_conn_timeout_as_nanos(c->q);
  if (ns == UINT64_MAX)
    c->ep->lo->timer_stop(c->timer);
  else
    c->ep->lo->timer_arm(c->timer, ns);
}

static void start_app(conn *c) {
  const conn_app_ops *app = c->ep->app;
  /* Says how the handshake went: the interop matrix checks resumption and
   * 0-RTT on the server's side with this line. */
  LOG_INFO("conn %llu: started (resumed %s, early data accepted %s)",
           (unsigned long long)c->number,
           quiche_conn_is_resumed(c->q) ? "yes" : "no",
           quiche_conn_is_in_early_data(c->q) ? "yes" : "no");
  c->app = app->start(c, c->ep->app_ctx);
  if (!c->app) {
    LOG_WARN("conn %llu: cannot start the application",
             (unsigned long long)c->number);
    conn_close(c, app->internal_error);
  }
}

/* RFC 9001 §8.1 / RFC 7301: only the protocols we offered may run.
 * BoringSSL refuses a ClientHello without a common ALPN already; this
 * guards the application against a handshake that ended without one. */
static bool alpn_ok(const conn *c) {
  const uint8_t *proto = NULL;
  size_t len = 0;
  quiche_conn_application_proto(c->q, &proto, &len);
  const uint8_t *w = c->ep->alpn_wire;
  for (size_t i = 0; w && len && i < c->ep->alpn_wire_len; i += 1u + w[i])
    if (w[i] == len && i + 1 + len <= c->ep->alpn_wire_len &&
        memcmp(w + i + 1, proto, len) == 0)
      return true;
  return false;
}

bool conn_peer_cert_verified(const conn *c) {
  const uint8_t *der = NULL;
  size_t len = 0;
  quiche_conn_peer_cert(c->q, &der, &len);
  return der && len > 0;
}

/* Once the handshake is done: the ALPN, and a client certificate when one
 * is required. Returns false when the connection is being closed. */
static bool check_tls(conn *c) {
  if (c->tls_checked || !quiche_conn_is_established(c->q))
    return true;
  c->tls_checked = true;
  c->tls_refused = true; /* until both checks pass */
  static const uint8_t reason[1];
  if (!alpn_ok(c)) {
    LOG_WARN("conn %llu: closing: no ALPN we serve was negotiated",
             (unsigned long long)c->number);
    quiche_conn_close(c->q, false, QUIC_TLS_ALERT(120), reason, 0);
    return false;
  }
  if (c->ep->client_cert_required && !conn_peer_cert_verified(c)) {
    LOG_INFO("conn %llu: closing: the client sent no certificate",
             (unsigned long long)c->number);
    quiche_conn_close(c->q, false, QUIC_TLS_ALERT(116), reason, 0);
    return false;
  }
  c->tls_refused = false;
  return true;
}

static void uncount_handshake(conn *c) {
  if (!c->handshake_counted)
    return;
  c->handshake_counted = false;
  admission_handshake_ended(&c->ep->admission);
}

void conn_check_validated(conn *c) {
  if (c->addr_validated || !quiche_conn_is_established(c->q))
    return;
  c->addr_validated = true;
  uncount_handshake(c);
}

void conn_process(conn *c) {
  c->rx_unprocessed = 0;
  conn_check_validated(c);
  if (!quiche_conn_is_closed(c->q) && check_tls(c) &&
      quiche_conn_is_established(c->q)) {
    conn_update_scids(c);
    conn_send_new_token(c);
  }
  /* With client certificates required, nothing runs before the handshake
   * proved one (no 0-RTT requests). */
  bool early =
      quiche_conn_is_in_early_data(c->q) && !c->ep->client_cert_required;
  if (!c->app && !c->tls_refused && !quiche_conn_is_closed(c->q) &&
      (quiche_conn_is_established(c->q) || early))
    start_app(c);
  if (c->app && !quiche_conn_is_closed(c->q))
    c->ep->app->process(c->app);
  if (c->app && c->going_away) {
    /* A goaway asked mid-handshake, after the first round: requests that
     * arrived with the handshake are served, later ones go elsewhere. */
    c->going_away = false;
    c->ep->app->goaway(c->app, c->goaway_deadline_ns);
  }
  conn_path_events(c);
  conn_send_packets(c);
  if (quiche_conn_is_closed(c->q)) {
    conn_release_held(c); /* e.g. a CONNECTION_CLOSE: send it unpaced */
    conn_destroy(c);
    return;
  }
  arm_timer(c);
}

void conn_goaway(conn *c, uint64_t deadline_ns) {
  if (c->app) {
    c->ep->app->goaway(c->app, deadline_ns);
    return;
  }
  /* Mid-handshake (a server told to stop while a client connects): an
   * immediate close would fail the client's first requests without a
   * word; once the session exists it serves what came with the handshake
   * and GOAWAY tells the client to take the rest elsewhere. */
  c->going_away = true;
  c->goaway_deadline_ns = deadline_ns;
}

void conn_close(conn *c, uint64_t app_error) {
  static const uint8_t reason[1];
  /* Before the handshake completes an application close cannot be sent
   * (quiche would stall); use the transport's APPLICATION_ERROR then. */
  if (quiche_conn_is_established(c->q))
    quiche_conn_close(c->q, true, app_error, reason, 0);
  else
    quiche_conn_close(c->q, false, QUIC_APPLICATION_ERROR, reason, 0);
  conn_mark_dirty(c);
}

static void unlink_dirty(conn *c) {
  for (conn **p = &c->ep->dirty; *p; p = &(*p)->dirty_next) {
    if (*p == c) {
      *p = c->dirty_next;
      return;
    }
  }
}

void conn_process_now(conn *c) {
  if (c->dirty) {
    unlink_dirty(c);
    c->dirty = false;
  }
  conn_process(c);
}

h3q_close_reason conn_close_reason(const conn *c) {
  bool app = false;
  uint64_t code = 0;
  const uint8_t *reason = NULL;
  size_t reason_len = 0;
  /* A clean close is NO_ERROR (0) in the transport space or the
   * application's own no_error code. */
  const uint64_t no_error = c->ep->app ? c->ep->app->no_error : 0;
  if (quiche_conn_is_timed_out(c->q))
    return H3Q_CLOSE_IDLE_TIMEOUT;
  if (quiche_conn_peer_error(c->q, &app, &code, &reason, &reason_len))
    return code == 0 || (app && code == no_error) ? H3Q_CLOSE_PEER
                                                  : H3Q_CLOSE_PEER_ERROR;
  if (quiche_conn_local_error(c->q, &app, &code, &reason, &reason_len))
    return (app && code == no_error) || (!app && code == 0)
               ? H3Q_CLOSE_LOCAL
               : H3Q_CLOSE_LOCAL_ERROR;
  return H3Q_CLOSE_OTHER;
}

/* What the transport saw over the connection's life: where a slow
 * transfer lost its time (losses, a small window, a long RTT). */
static void log_final_stats(const conn *c) {
  if ((int)H3Q_LOG_DEBUG > log_runtime_level)
    return;
  quiche_stats st;
  quiche_conn_stats(c->q, &st);
  quiche_path_stats ps;
  memset(&ps, 0, sizeof ps);
  quiche_conn_path_stats(c->q, 0, &ps);
  LOG_DEBUG("conn %llu: closed: packets sent %zu, received %zu, lost %zu, "
            "retransmitted %zu, PTOs %zu; bytes sent %llu; blocked by flow "
            "control %llu (connection), %llu (streams); cwnd %zu, slow "
            "start exit cwnd %llu; rtt %llu us (min %llu)",
            (unsigned long long)c->number, st.sent, st.recv, st.lost,
            st.retrans, ps.total_pto_count, (unsigned long long)st.sent_bytes,
            (unsigned long long)st.data_blocked_sent_count,
            (unsigned long long)st.stream_data_blocked_sent_count, ps.cwnd,
            (unsigned long long)ps.startup_exit_cwnd,
            (unsigned long long)(ps.rtt / 1000u),
            (unsigned long long)(ps.min_rtt / 1000u));
}

void conn_destroy(conn *c) {
  quic_endpoint *ep = c->ep;
  log_final_stats(c);
  /* The session first: handlers may still look at their requests. */
  if (c->app)
    ep->app->destroy(c->app);
  c->app = NULL;
  if (c->dirty)
    unlink_dirty(c);
  uncount_handshake(c);
  endpoint_forget(ep, c);
  endpoint_tick_forget(ep, c);
  conn_table_del(&ep->conns, c->scid, ep->cids.len);
  conn_forget_scids(c);
  if (c->prev)
    c->prev->next = c->next;
  else
    ep->all = c->next;
  if (c->next)
    c->next->prev = c->prev;
  ep->lo->timer_free(c->timer);
  ep->lo->timer_free(c->pace_timer);
  free(c->held);
  ep->stats->connections_closed[conn_close_reason(c)]++;
  quiche_conn_free(c->q);
  ep->stats->connections_active--;
  atomic_fetch_sub_explicit(ep->open_conns, 1, memory_order_relaxed);
  free(c);
}
