#include "quic/endpoint.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/log.h"

/* Datagrams per sendmmsg call, and receive buffer size: any datagram a
 * peer may send before it learns our max_udp_payload_size, and a GRO
 * buffer of coalesced datagrams. Receive memory is recv_batch x 64 KiB. */
#define TX_BATCH 64
#define RX_DATAGRAM_MAX UDP_GRO_BUFFER
/* Rounds of connection processing per loop iteration before yielding to
 * I/O (the caller keeps the loop from blocking while work remains). */
#define PROCESS_ROUNDS 4

/* RFC 9000 section 14.1: a server must discard an Initial in a datagram
 * smaller than this; it also bounds what version negotiation answers. */
#define MIN_INITIAL_DATAGRAM 1200
/* quiche_header_info's packet types. */
#define QUIC_TYPE_INITIAL 1
#define QUIC_TYPE_ZERO_RTT 4

typedef struct packet_header {
  uint32_t version;
  uint8_t type;
  uint8_t scid[QUICHE_MAX_CONN_ID_LEN], dcid[QUICHE_MAX_CONN_ID_LEN];
  size_t scid_len, dcid_len;
  uint8_t token[512];
  size_t token_len;
} packet_header;

static bool parse_header(const uint8_t *buf, size_t len, packet_header *h) {
  h->scid_len = h->dcid_len = QUICHE_MAX_CONN_ID_LEN;
  h->token_len = sizeof h->token;
  return quiche_header_info(buf, len, CONN_SCID_LEN, &h->version, &h->type,
                            h->scid, &h->scid_len, h->dcid, &h->dcid_len,
                            h->token, &h->token_len) >= 0;
}

/* RFC 8999 (version-independent properties): a long header is first
 * byte with the high bit set, a 32-bit version, then length-prefixed DCID
 * and SCID. Unknown versions are answered from these fields alone, since
 * quiche parses version-specific fields (a token) that may not be there.
 * Returns true when the datagram had an unknown version (answered or
 * dropped). */
static bool negotiate_unknown_version(quic_endpoint *ep, const uint8_t *buf,
                                      size_t len, const struct sockaddr *to,
                                      socklen_t to_len) {
  if (len < 7 || !(buf[0] & 0x80))
    return false; /* short header: no version to negotiate */
  uint32_t version = (uint32_t)buf[1] << 24 | (uint32_t)buf[2] << 16 |
                     (uint32_t)buf[3] << 8 | buf[4];
  if (version == 0 || quiche_version_is_supported(version))
    return version == 0; /* a Version Negotiation packet: ignore it */
  size_t dcid_len = buf[5];
  if (len < MIN_INITIAL_DATAGRAM || dcid_len > QUICHE_MAX_CONN_ID_LEN ||
      6 + dcid_len >= len)
    return true;
  size_t scid_len = buf[6 + dcid_len];
  if (scid_len > QUICHE_MAX_CONN_ID_LEN || 7 + dcid_len + scid_len > len)
    return true;
  uint8_t *out = endpoint_tx_slot(ep);
  if (!out)
    return true; /* socket full: the client will retry */
  ssize_t n = quiche_negotiate_version(buf + 7 + dcid_len, scid_len, buf + 6,
                                       dcid_len, out, ep->tx.buf_size);
  if (n > 0)
    endpoint_tx_push(ep, (size_t)n, to, to_len, (struct sockaddr *)&ep->rx_to,
                     ep->rx_to_len);
  return true;
}

/* Our SCID for a client's first DCID, stable across its retransmissions. */
static void derive_scid(const quic_endpoint *ep, const packet_header *h,
                        uint8_t out[CONN_SCID_LEN]) {
  uint8_t mac[crypto_auth_hmacsha256_BYTES];
  crypto_auth_hmacsha256(mac, h->dcid, h->dcid_len, ep->cid_secret);
  memcpy(out, mac, CONN_SCID_LEN);
}

static conn *find_or_accept(quic_endpoint *ep, const packet_header *h,
                            size_t len, const struct sockaddr *from,
                            socklen_t from_len) {
  /* Until the client learns our SCID, its Initial and 0-RTT packets carry
   * the DCID it chose; ours was derived from that. */
  if (h->type != QUIC_TYPE_INITIAL && h->type != QUIC_TYPE_ZERO_RTT)
    return NULL;
  uint8_t scid[CONN_SCID_LEN];
  derive_scid(ep, h, scid);
  conn *c = conn_table_get(&ep->conns, scid, CONN_SCID_LEN);
  if (c)
    return c;
  /* A draining server takes no new connections: clients retry elsewhere
   * (or after the restart) while existing ones finish. */
  if (h->type != QUIC_TYPE_INITIAL || len < MIN_INITIAL_DATAGRAM ||
      !ep->accepting)
    return NULL;
  if (ep->stats->connections_active >= ep->max_connections) {
    LOG_WARN("refusing connection: max_connections (%zu) reached",
             ep->max_connections);
    return NULL;
  }
  return conn_accept(ep, scid, from, from_len);
}

void endpoint_handle_datagram(quic_endpoint *ep, uint8_t *buf, size_t len,
                              const struct sockaddr *from, socklen_t from_len) {
  packet_header h;
  ep->stats->udp_datagrams_received++;
  if (negotiate_unknown_version(ep, buf, len, from, from_len)) {
    ep->stats->packets_dropped++;
    return;
  }
  if (!parse_header(buf, len, &h)) {
    ep->stats->packets_dropped++;
    return;
  }
  conn *c = conn_table_get(&ep->conns, h.dcid, h.dcid_len);
  if (!c)
    c = find_or_accept(ep, &h, len, from, from_len);
  if (!c) {
    ep->stats->packets_dropped++;
    return;
  }
  conn_recv(c, buf, len, from, from_len);
}

static uint16_t local_port(const quic_endpoint *ep) {
  if (ep->local.ss_family == AF_INET6)
    return ((const struct sockaddr_in6 *)&ep->local)->sin6_port;
  return ((const struct sockaddr_in *)&ep->local)->sin_port;
}

/* Where message m was sent to: its pktinfo on a wildcard socket. */
static void set_rx_to(quic_endpoint *ep, const struct msghdr *m) {
  ep->rx_to_len = sizeof ep->rx_to;
  if (ep->rx.pktinfo &&
      udp_msg_local_addr(m, ep->local.ss_family, local_port(ep), &ep->rx_to,
                         &ep->rx_to_len))
    return;
  memcpy(&ep->rx_to, &ep->local, ep->local_len);
  ep->rx_to_len = ep->local_len;
}

/* Hands each datagram of received message i to the endpoint; with GRO a
 * message holds several. */
static void handle_message(quic_endpoint *ep, size_t i) {
  struct msghdr *m = &ep->rx.msgs[i].msg_hdr;
  if (m->msg_flags & MSG_TRUNC) {
    ep->stats->packets_dropped++; /* larger than any size we accept */
    return;
  }
  set_rx_to(ep, m);
  udp_segments s;
  udp_segments_init(&s, &ep->rx, i);
  uint8_t *data;
  size_t len;
  while (udp_segments_next(&s, &data, &len))
    endpoint_handle_datagram(ep, data, len, m->msg_name, m->msg_namelen);
}

void endpoint_on_readable(void *arg) {
  quic_endpoint *ep = arg;
  int n = udp_recv_batch(ep->fd, &ep->rx);
  if (n < 0) {
    LOG_WARN("recvmmsg failed");
    return;
  }
  for (int i = 0; i < n; i++)
    handle_message(ep, (size_t)i);
}

static bool is_wildcard(const struct sockaddr_storage *a) {
  if (a->ss_family == AF_INET)
    return ((const struct sockaddr_in *)a)->sin_addr.s_addr == INADDR_ANY;
  return a->ss_family == AF_INET6 &&
         IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)a)->sin6_addr);
}

int endpoint_init(quic_endpoint *ep, const h3q_config *cfg, quiche_config *qcfg,
                  char *err, size_t errlen) {
  ep->qcfg = qcfg;
  ep->fd = -1;
  ep->accepting = true;
  ep->max_connections = cfg->max_connections;
  ep->pacing = cfg->enable_pacing;
  ep->qlog_dir = cfg->qlog_dir;
  ep->keylog_path = cfg->keylog_path;
  randombytes_buf(ep->cid_secret, sizeof ep->cid_secret);
  if (conn_table_init(&ep->conns) != 0)
    return H3Q_ENOMEM;
  ep->fd = udp_open(cfg->bind_addr, (uint16_t)cfg->port, &ep->local,
                    &ep->local_len, err, errlen);
  if (ep->fd < 0)
    return H3Q_EIO;
  memcpy(&ep->rx_to, &ep->local, ep->local_len);
  ep->rx_to_len = ep->local_len;
  if (udp_batch_init(&ep->rx, cfg->recv_batch, RX_DATAGRAM_MAX) ||
      udp_batch_init(&ep->tx, TX_BATCH, cfg->max_send_udp_payload_size))
    return H3Q_ENOMEM;
  if (!udp_batch_enable_gso(&ep->tx, ep->fd))
    LOG_INFO("udp: no GSO on this socket; sending datagram by datagram");
  if (!udp_batch_enable_gro(&ep->rx, ep->fd))
    LOG_INFO("udp: no GRO on this socket; receiving datagram by datagram");
  ep->wildcard = is_wildcard(&ep->local);
  if (ep->wildcard &&
      !udp_batch_enable_pktinfo(&ep->rx, ep->fd, ep->local.ss_family))
    LOG_WARN("udp: no IP_PKTINFO: answers from a wildcard bind may leave "
             "from another address than the client wrote to");
  return H3Q_OK;
}

void endpoint_free(quic_endpoint *ep) {
  while (ep->all)
    conn_destroy(ep->all);
  if (ep->tx_blocked)
    ep->lo->unwatch_writable(ep->loop, ep->fd);
  ep->tx_blocked = false;
  conn_table_free(&ep->conns);
  udp_batch_free(&ep->rx);
  udp_batch_free(&ep->tx);
  if (ep->fd >= 0)
    close(ep->fd);
  ep->fd = -1;
  if (ep->qcfg)
    quiche_config_free(ep->qcfg);
  ep->qcfg = NULL;
}

/* Every connection that waited for room goes back to work. */
static void wake_tx_waiters(quic_endpoint *ep) {
  conn *list = ep->tx_waiters;
  ep->tx_waiters = NULL;
  while (list) {
    conn *c = list;
    list = c->tx_wait_next;
    c->tx_waiting = false;
    conn_mark_dirty(c);
  }
}

static void on_writable(void *arg) {
  quic_endpoint *ep = arg;
  if (udp_flush_nowait(ep->fd, &ep->tx) != 0)
    return; /* still full */
  ep->tx_blocked = false;
  ep->lo->unwatch_writable(ep->loop, ep->fd);
  wake_tx_waiters(ep);
}

void endpoint_flush(quic_endpoint *ep) {
  /* While blocked, on_writable sends the backlog. */
  if (ep->tx_blocked || ep->tx.count == 0 ||
      udp_flush_nowait(ep->fd, &ep->tx) == 0)
    return;
  if (ep->lo->watch_writable(ep->loop, ep->fd, on_writable, ep) != 0) {
    /* Cannot wait: drop the backlog rather than stall (QUIC recovers). */
    LOG_WARN("udp: cannot watch the socket for writability");
    ep->stats->packets_dropped += ep->tx.count - ep->tx.sent;
    ep->tx.count = ep->tx.sent = 0;
    return;
  }
  ep->tx_blocked = true;
}

uint8_t *endpoint_tx_slot(quic_endpoint *ep) {
  if (ep->tx.count == ep->tx.cap)
    endpoint_flush(ep);
  if (ep->tx_blocked || ep->tx.count == ep->tx.cap)
    return NULL;
  return udp_batch_buf(&ep->tx, ep->tx.count);
}

void endpoint_tx_push(quic_endpoint *ep, size_t len, const struct sockaddr *to,
                      socklen_t to_len, const struct sockaddr *from,
                      socklen_t from_len) {
  udp_batch_push(&ep->tx, len, to, to_len);
  if (ep->wildcard && from_len > 0)
    udp_batch_set_source(&ep->tx, from, from_len);
}

void endpoint_wait_writable(quic_endpoint *ep, conn *c) {
  if (c->tx_waiting)
    return;
  c->tx_waiting = true;
  c->tx_wait_next = ep->tx_waiters;
  ep->tx_waiters = c;
}

void endpoint_forget(quic_endpoint *ep, conn *c) {
  if (!c->tx_waiting)
    return;
  for (conn **p = &ep->tx_waiters; *p; p = &(*p)->tx_wait_next) {
    if (*p == c) {
      *p = c->tx_wait_next;
      break;
    }
  }
  c->tx_waiting = false;
}

bool endpoint_process(quic_endpoint *ep) {
  for (int round = 0; round < PROCESS_ROUNDS && ep->dirty; round++) {
    conn *list = ep->dirty;
    ep->dirty = NULL;
    while (list) {
      conn *c = list;
      list = c->dirty_next;
      c->dirty = false;
      conn_process(c);
    }
  }
  endpoint_flush(ep);
  return ep->dirty != NULL;
}

void endpoint_tick(quic_endpoint *ep, uint64_t now_ns) {
  for (conn *c = ep->all, *next; c; c = next) {
    next = c->next;
    if (c->app)
      ep->app->tick(c->app, now_ns);
  }
}

conn *endpoint_find(quic_endpoint *ep, uint64_t number) {
  for (conn *c = ep->all; c; c = c->next)
    if (c->number == number)
      return c;
  return NULL;
}
