#include "quic/endpoint.h"

#include <string.h>

#include "quic/conn.h"
#include "util/log.h"

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
static bool negotiate_unknown_version(h3q_server *srv, const uint8_t *buf,
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
  udp_batch *tx = &srv->tx;
  if (tx->count == tx->cap)
    server_flush_tx(srv);
  ssize_t n =
      quiche_negotiate_version(buf + 7 + dcid_len, scid_len, buf + 6, dcid_len,
                               udp_batch_buf(tx, tx->count), tx->buf_size);
  if (n > 0)
    udp_batch_push(tx, (size_t)n, to, to_len);
  return true;
}

/* Our SCID for a client's first DCID, stable across its retransmissions. */
static void derive_scid(const h3q_server *srv, const packet_header *h,
                        uint8_t out[CONN_SCID_LEN]) {
  uint8_t mac[crypto_auth_hmacsha256_BYTES];
  crypto_auth_hmacsha256(mac, h->dcid, h->dcid_len, srv->cid_secret);
  memcpy(out, mac, CONN_SCID_LEN);
}

static conn *find_or_accept(h3q_server *srv, const packet_header *h, size_t len,
                            const struct sockaddr *from, socklen_t from_len) {
  /* Until the client learns our SCID, its Initial and 0-RTT packets carry
   * the DCID it chose; ours was derived from that. */
  if (h->type != QUIC_TYPE_INITIAL && h->type != QUIC_TYPE_ZERO_RTT)
    return NULL;
  uint8_t scid[CONN_SCID_LEN];
  derive_scid(srv, h, scid);
  conn *c = conn_table_get(&srv->conns, scid, CONN_SCID_LEN);
  if (c)
    return c;
  /* A draining server takes no new connections: clients retry elsewhere
   * (or after the restart) while existing ones finish. */
  if (h->type != QUIC_TYPE_INITIAL || len < MIN_INITIAL_DATAGRAM ||
      srv->draining)
    return NULL;
  if (srv->stats.connections_active >= srv->cfg.c.max_connections) {
    LOG_WARN("refusing connection: max_connections (%zu) reached",
             srv->cfg.c.max_connections);
    return NULL;
  }
  return conn_accept(srv, scid, from, from_len);
}

void endpoint_handle_datagram(h3q_server *srv, uint8_t *buf, size_t len,
                              const struct sockaddr *from, socklen_t from_len) {
  packet_header h;
  srv->stats.datagrams_received++;
  if (negotiate_unknown_version(srv, buf, len, from, from_len)) {
    srv->stats.packets_dropped++;
    return;
  }
  if (!parse_header(buf, len, &h)) {
    srv->stats.packets_dropped++;
    return;
  }
  conn *c = conn_table_get(&srv->conns, h.dcid, h.dcid_len);
  if (!c)
    c = find_or_accept(srv, &h, len, from, from_len);
  if (!c) {
    srv->stats.packets_dropped++;
    return;
  }
  conn_recv(c, buf, len, from, from_len);
}

void endpoint_on_readable(void *arg) {
  h3q_server *srv = arg;
  int n = udp_recv_batch(srv->fd, &srv->rx);
  if (n < 0) {
    LOG_WARN("recvmmsg failed");
    return;
  }
  for (int i = 0; i < n; i++) {
    struct msghdr *m = &srv->rx.msgs[i].msg_hdr;
    if (m->msg_flags & MSG_TRUNC) {
      srv->stats.packets_dropped++; /* larger than any size we accept */
      continue;
    }
    endpoint_handle_datagram(srv, udp_batch_buf(&srv->rx, (size_t)i),
                             srv->rx.msgs[i].msg_len, m->msg_name,
                             m->msg_namelen);
  }
}
