/* Transport side of a client connection: socket I/O, quiche timers, the
 * send loop and the close paths. HTTP/3 work lives in h3c_conn_h3.c. */
#include "h3c_conn_int.h"

#include "h3c_args.h"
#include "util/clock.h"
#include "util/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#define H3C_BODY_BUF (256 * 1024)
/* Datagrams per recvmmsg/sendmmsg call. */
#define H3C_UDP_BATCH 32
/* Receive slots are large enough for any UDP payload: a peer that ignores
 * our max_udp_payload_size must not get its packets truncated silently. */
#define H3C_RX_SLOT 65536
/* recvmmsg calls per wakeup: bounded so timers and our own sends are not
 * starved by a fast sender; libev calls back while data remains. */
#define H3C_RX_ROUNDS 4

int h3c_ctx_init(h3c_ctx *x, struct ev_loop *loop, const h3c_tls_opts *tls,
                 char *err, size_t errlen) {
  memset(x, 0, sizeof(*x));
  if (sodium_init() < 0) {
    snprintf(err, errlen, "libsodium initialisation failed");
    return -1;
  }
  x->qcfg = h3c_quic_config_new(tls, err, errlen);
  if (x->qcfg == NULL)
    return -1;
  x->h3cfg = quiche_h3_config_new();
  if (x->h3cfg == NULL) {
    snprintf(err, errlen, "quiche_h3_config_new failed");
    quiche_config_free(x->qcfg);
    return -1;
  }
  x->loop = loop;
  x->max_payload = tls->max_payload;
  x->verify_peer = !tls->insecure;
  x->parallel = 100;
  x->sink.out_fd = -1;
  if (udp_batch_init(&x->rx, H3C_UDP_BATCH, H3C_RX_SLOT) != 0)
    h3c_out_of_memory();
  x->buf_len = H3C_BODY_BUF;
  x->buf = h3c_xmalloc(x->buf_len);
  return 0;
}

void h3c_ctx_free(h3c_ctx *x) {
  if (x->h3cfg)
    quiche_h3_config_free(x->h3cfg);
  if (x->qcfg)
    quiche_config_free(x->qcfg);
  udp_batch_free(&x->rx);
  free(x->buf);
  memset(x, 0, sizeof(*x));
}

static void notify_closed(h3c_conn *c);

/* Names for the TLS alerts a failed handshake usually ends with. */
static const char *alert_name(uint64_t alert) {
  switch (alert) {
  case 40:
    return "handshake_failure";
  case 42:
    return "bad_certificate";
  case 43:
    return "unsupported_certificate";
  case 44:
    return "certificate_revoked";
  case 45:
    return "certificate_expired";
  case 46:
    return "certificate_unknown";
  case 48:
    return "unknown_ca: certificate not trusted";
  case 70:
    return "protocol_version";
  case 80:
    return "internal_error";
  case 112:
    return "unrecognized_name";
  case 120:
    return "no_application_protocol";
  default:
    return "alert";
  }
}

/* Names of HTTP/3 application error codes (RFC 9114 §8.1, RFC 9204). */
static const char *h3_error_name(uint64_t code) {
  static const char *const names[] = {"H3_NO_ERROR",
                                      "H3_GENERAL_PROTOCOL_ERROR",
                                      "H3_INTERNAL_ERROR",
                                      "H3_STREAM_CREATION_ERROR",
                                      "H3_CLOSED_CRITICAL_STREAM",
                                      "H3_FRAME_UNEXPECTED",
                                      "H3_FRAME_ERROR",
                                      "H3_EXCESSIVE_LOAD",
                                      "H3_ID_ERROR",
                                      "H3_SETTINGS_ERROR",
                                      "H3_MISSING_SETTINGS",
                                      "H3_REQUEST_REJECTED",
                                      "H3_REQUEST_CANCELLED",
                                      "H3_REQUEST_INCOMPLETE",
                                      "H3_MESSAGE_ERROR",
                                      "H3_CONNECT_ERROR",
                                      "H3_VERSION_FALLBACK"};
  if (code >= 0x100 && code < 0x100 + sizeof(names) / sizeof(names[0]))
    return names[code - 0x100];
  if (code >= 0x200 && code <= 0x202)
    return "QPACK error";
  return "unknown";
}

/* Describes why quiche closed the connection, for request errors. */
static void describe_close(h3c_conn *c) {
  bool app = false;
  uint64_t code = 0;
  const uint8_t *reason = NULL;
  size_t rlen = 0;
  const char *who = "peer";
  bool have = quiche_conn_peer_error(c->q, &app, &code, &reason, &rlen);
  /* The server ended the connection on purpose (shutdown, idle or request
   * limits): unsent requests can be retried elsewhere. */
  c->graceful = have && code == (app ? H3Q_H3_NO_ERROR : 0);
  if (!have) {
    have = quiche_conn_local_error(c->q, &app, &code, &reason, &rlen);
    who = "local";
  }
  if (have && !app && code >= 0x100 && code <= 0x1ff)
    snprintf(c->err, sizeof(c->err), "%s TLS alert %u (%s)%s%.*s", who,
             (unsigned)(code - 0x100), alert_name(code - 0x100),
             rlen ? ": " : "", (int)rlen, reason);
  else if (have)
    snprintf(c->err, sizeof(c->err),
             "connection closed by %s: %s error 0x%llx (%s)%s%.*s", who,
             app ? "application" : "transport", (unsigned long long)code,
             app ? h3_error_name(code) : "see RFC 9000 §20.1", rlen ? ": " : "",
             (int)rlen, reason);
  else if (quiche_conn_is_timed_out(c->q))
    snprintf(c->err, sizeof(c->err), "%s",
             c->t_established ? "idle timeout" : "handshake timed out");
  else
    snprintf(c->err, sizeof(c->err), "connection closed");
}

static void on_closed(h3c_conn *c) {
  if (c->state == H3C_CONN_CLOSED)
    return;
  if (c->err[0] == '\0')
    describe_close(c);
  LOG_DEBUG("conn %u: closed: %s", c->index, c->err);
  c->state = H3C_CONN_CLOSED;
  ev_io_stop(c->x->loop, &c->io);
  ev_timer_stop(c->x->loop, &c->timer);
  h3c_conn_fail_all(c, c->err);
  notify_closed(c);
}

static void arm_timer(h3c_conn *c) {
  uint64_t ns = quiche_conn_timeout_as_nanos(c->q);
  if (ns == UINT64_MAX) {
    ev_timer_stop(c->x->loop, &c->timer);
    return;
  }
  /* ev_timer_again stops a timer whose repeat is 0, and quiche reports 0
   * for an already-expired timeout: keep it at least 1 us. */
  double t = clock_ns_to_s(ns);
  c->timer.repeat = t > 1e-6 ? t : 1e-6;
  ev_timer_again(c->x->loop, &c->timer);
}

static void set_tx_blocked(h3c_conn *c, bool blocked) {
  if (c->tx_blocked == blocked)
    return;
  c->tx_blocked = blocked;
  ev_io_stop(c->x->loop, &c->io);
  ev_io_set(&c->io, c->fd, blocked ? EV_READ | EV_WRITE : EV_READ);
  ev_io_start(c->x->loop, &c->io);
}

/* quiche_conn_close was called: from then on quiche writes nothing but
 * the CONNECTION_CLOSE. */
static bool close_asked(const h3c_conn *c) {
  bool app;
  uint64_t code;
  const uint8_t *reason;
  size_t reason_len;
  return quiche_conn_local_error(c->q, &app, &code, &reason, &reason_len);
}

/* Fills the tx queue from quiche and hands it to the kernel in batches.
 * Stops early when the socket buffer is full (resumed on EV_WRITE). */
void h3c_conn_flush(h3c_conn *c) {
  if (c->state == H3C_CONN_CLOSED)
    return;
  bool more = true;
  while (more) {
    while (c->tx.count < c->tx.cap) {
      quiche_send_info si;
      ssize_t n = quiche_conn_send(c->q, udp_batch_buf(&c->tx, c->tx.count),
                                   c->tx.buf_size, &si);
      if (n < 0) {
        if (n != QUICHE_ERR_DONE)
          LOG_DEBUG("conn %u: quiche_conn_send: %zd", c->index, n);
        more = false;
        break;
      }
      udp_batch_push(&c->tx, (size_t)n, NULL, 0); /* connected socket */
      if (c->state == H3C_CONN_CLOSING && !c->close_built)
        c->close_built = close_asked(c);
    }
    if (udp_flush_nowait(c->fd, &c->tx) != 0) {
      set_tx_blocked(c, true);
      break;
    }
  }
  if (!more)
    set_tx_blocked(c, false);
  arm_timer(c);
}

static void check_closed(h3c_conn *c) {
  if (quiche_conn_is_closed(c->q))
    on_closed(c);
}

void h3c_conn_process(h3c_conn *c) {
  if (c->in_process || c->state == H3C_CONN_CLOSED)
    return;
  c->in_process = true;
  if (c->state == H3C_CONN_CONNECTING && quiche_conn_is_established(c->q))
    h3c_conn_on_established(c);
  if (c->state == H3C_CONN_READY)
    h3c_conn_h3_work(c);
  c->in_process = false;
  h3c_conn_flush(c);
  check_closed(c);
}

/* A replacement connection (fail_fast) gives up on an ICMP error during
 * its handshake: the server that sent GOAWAY is most likely gone. */
static void on_icmp(h3c_conn *c, int e) {
  if (!c->fail_fast || c->state != H3C_CONN_CONNECTING)
    return;
  char why[128];
  snprintf(why, sizeof(why), "reconnect failed: %s", strerror(e));
  h3c_conn_close_with(c, false, 0, why);
}

/* Feeds quiche the datagrams of received message i: one, or with GRO
 * several that the kernel coalesced. */
static void recv_message(h3c_conn *c, size_t i) {
  udp_segments seg;
  udp_segments_init(&seg, &c->x->rx, i);
  uint8_t *data;
  size_t len;
  while (udp_segments_next(&seg, &data, &len)) {
    quiche_recv_info ri = {(struct sockaddr *)&c->peer, c->peer_len,
                           (struct sockaddr *)&c->local, c->local_len};
    ssize_t done = quiche_conn_recv(c->q, data, len, &ri);
    if (done < 0)
      LOG_DEBUG("conn %u: quiche_conn_recv: %zd", c->index, done);
  }
}

static void read_packets(h3c_conn *c) {
  udp_batch *rx = &c->x->rx;
  for (int round = 0; round < H3C_RX_ROUNDS; round++) {
    int icmp = 0;
    int n = udp_recv_batch_connected(c->fd, rx, &icmp);
    if (icmp)
      on_icmp(c, icmp);
    if (n < 0)
      LOG_DEBUG("conn %u: recv: %s", c->index, strerror(errno));
    for (int i = 0; i < n; i++)
      recv_message(c, (size_t)i);
    if ((size_t)n < rx->cap)
      break;
  }
}

static void io_cb(struct ev_loop *loop, ev_io *w, int revents) {
  (void)loop;
  h3c_conn *c = w->data;
  if ((revents & EV_WRITE) && udp_flush_nowait(c->fd, &c->tx) == 0)
    set_tx_blocked(c, false);
  if (revents & EV_READ)
    read_packets(c);
  h3c_conn_process(c);
}

static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents) {
  (void)loop;
  (void)revents;
  h3c_conn *c = w->data;
  quiche_conn_on_timeout(c->q);
  h3c_conn_process(c);
}

static int conn_connect(h3c_conn *c, char *err, size_t errlen) {
  uint8_t scid[16];
  randombytes_buf(scid, sizeof(scid));
  /* No SNI for IP literals (RFC 6066 §3); see h3c_cert_ip.h. */
  const char *sni = c->origin->host_is_ip ? NULL : c->origin->host;
  c->q = quiche_connect(sni, scid, sizeof(scid), (struct sockaddr *)&c->local,
                        c->local_len, (struct sockaddr *)&c->peer, c->peer_len,
                        c->x->qcfg);
  if (c->q == NULL) {
    snprintf(err, errlen, "quiche_connect failed");
    return -1;
  }
  return 0;
}

h3c_conn *h3c_conn_new(h3c_ctx *x, const h3c_url *origin,
                       const struct sockaddr *peer, socklen_t peer_len,
                       unsigned index, char *err, size_t errlen) {
  h3c_conn *c = h3c_xcalloc(1, sizeof(*c));
  c->x = x;
  c->origin = origin;
  c->index = index;
  c->state = H3C_CONN_CONNECTING;
  memcpy(&c->peer, peer, peer_len);
  c->peer_len = peer_len;
  c->fd =
      udp_open_connected(peer, peer_len, &c->local, &c->local_len, err, errlen);
  if (c->fd < 0 || conn_connect(c, err, errlen) != 0) {
    if (c->fd >= 0)
      close(c->fd);
    free(c);
    return NULL;
  }
  if (udp_batch_init(&c->tx, H3C_UDP_BATCH, x->max_payload) != 0)
    h3c_out_of_memory();
  /* Offloads where the kernel has them: a flight of same-size packets
   * leaves in one GSO send, and a burst from the server arrives as one
   * GRO buffer (the shared receive slots are 64 KiB). Both fall back by
   * themselves. */
  (void)udp_batch_enable_gso(&c->tx, c->fd);
  (void)udp_batch_enable_gro(&x->rx, c->fd);
  ev_io_init(&c->io, io_cb, c->fd, EV_READ);
  c->io.data = c;
  ev_io_start(x->loop, &c->io);
  ev_init(&c->timer, timer_cb);
  c->timer.data = c;
  c->t_connect = clock_now_ns();
  h3c_conn_flush(c);
  return c;
}

void h3c_conn_kick(h3c_conn *c) {
  h3c_conn_process(c);
}

/* Tells the program once that c takes no more requests. */
static void notify_closed(h3c_conn *c) {
  if (c->closed_notified)
    return;
  c->closed_notified = true;
  if (c->x->hooks.closed)
    c->x->hooks.closed(c->x->hooks.user, c);
}

void h3c_conn_close_with(h3c_conn *c, bool app, uint64_t code,
                         const char *why) {
  if (c->state == H3C_CONN_CLOSED || c->state == H3C_CONN_CLOSING)
    return;
  c->state = H3C_CONN_CLOSING;
  snprintf(c->err, sizeof(c->err), "%s", why);
  h3c_conn_fail_all(c, why);
  /* quiche puts an application CONNECTION_CLOSE only in 1-RTT packets and
   * sends nothing while handshake data is still pending, so before the
   * h3 layer is up a transport close is the one that reaches the peer. */
  if (app && c->h3 == NULL) {
    app = false;
    code = 0x0c; /* APPLICATION_ERROR, RFC 9000 §10.2.3 */
  }
  (void)quiche_conn_close(c->q, app, code, (const uint8_t *)why, strlen(why));
  h3c_conn_flush(c);
  notify_closed(c);
  check_closed(c);
}

void h3c_conn_close(h3c_conn *c, const char *why) {
  h3c_conn_close_with(c, true, H3Q_H3_NO_ERROR, why);
}

/* The CONNECTION_CLOSE has not reached the socket yet (and quiche still
 * holds the connection). */
static bool close_pending(const h3c_conn *c) {
  return c->state == H3C_CONN_CLOSING && !quiche_conn_is_closed(c->q) &&
         (!c->close_built || c->tx.count > 0);
}

static void close_wait_cb(struct ev_loop *loop, ev_timer *w, int revents) {
  (void)loop;
  (void)revents;
  *(bool *)w->data = true; /* the deadline passed */
}

void h3c_conns_close(h3c_conn *const *conns, size_t n, const char *why,
                     double max_wait_s) {
  struct ev_loop *loop = NULL;
  for (size_t i = 0; i < n; i++) {
    if (conns[i]) {
      h3c_conn_close(conns[i], why);
      loop = conns[i]->x->loop;
    }
  }
  if (loop == NULL)
    return;
  bool expired = false;
  ev_timer deadline;
  ev_timer_init(&deadline, close_wait_cb, max_wait_s, 0.);
  deadline.data = &expired;
  ev_timer_start(loop, &deadline);
  while (!expired) {
    bool pending = false;
    for (size_t i = 0; i < n && !pending; i++)
      pending = conns[i] && close_pending(conns[i]);
    if (!pending)
      break;
    ev_run(loop, EVRUN_ONCE);
  }
  ev_timer_stop(loop, &deadline);
}

void h3c_conn_free(h3c_conn *c) {
  if (c == NULL)
    return;
  h3c_conn_fail_all(c, "connection freed");
  ev_io_stop(c->x->loop, &c->io);
  ev_timer_stop(c->x->loop, &c->timer);
  if (c->h3)
    quiche_h3_conn_free(c->h3);
  quiche_conn_free(c->q);
  close(c->fd);
  u64map_free(&c->map);
  udp_batch_free(&c->tx);
  free(c);
}

h3c_conn_state h3c_conn_state_get(const h3c_conn *c) {
  return c->state;
}
unsigned h3c_conn_index(const h3c_conn *c) {
  return c->index;
}
uint64_t h3c_conn_handshake_ns(const h3c_conn *c) {
  return c->t_established ? c->t_established - c->t_connect : 0;
}
const char *h3c_conn_error(const h3c_conn *c) {
  return c->err;
}
void h3c_conn_set_fail_fast(h3c_conn *c, bool on) {
  c->fail_fast = on;
}
bool h3c_conn_graceful(const h3c_conn *c) {
  return c->graceful;
}
void h3c_conn_set_user(h3c_conn *c, void *user) {
  c->user = user;
}
void *h3c_conn_user(const h3c_conn *c) {
  return c->user;
}
