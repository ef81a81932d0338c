#include "quic/endpoint.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "quic/rx_shed.h"
#include "quic/rx_split.h"
#include "quic/token.h"
#include "util/clock.h"
#include "util/io_epoch.h"
#include "util/log.h"

/* Datagrams per sendmmsg call, and receive buffer size: any datagram a
 * peer may send before it learns our max_udp_payload_size, and a GRO
 * buffer of coalesced datagrams. Receive memory is recv_batch x 64 KiB. */
#define TX_BATCH 64
#define RX_DATAGRAM_MAX UDP_GRO_BUFFER
/* See receive(). */
#define RX_ANSWER_EVERY 16u
/* See endpoint_read_batch(). */
#define RX_ANSWER_AFTER_NS 100000u
/* Rounds of connection processing per loop iteration before yielding to
 * I/O (the caller keeps the loop from blocking while work remains). */
#define PROCESS_ROUNDS 4

/* A receive queue holding this much (a few hundred Initials, a
 * millisecond or two of work) is a backlog: new connections then get a
 * Retry, within a budget of a quarter of the read batch (see
 * quic/admission.h). */
#define RX_BACKLOG_BYTES (512u * 1024u)
#define RETRIES_PER_BACKLOG_BATCH(n) ((n) / 4 > 0 ? (n) / 4 : 1)

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

static bool parse_header(const quic_endpoint *ep, const uint8_t *buf,
                         size_t len, packet_header *h) {
  h->scid_len = h->dcid_len = QUICHE_MAX_CONN_ID_LEN;
  h->token_len = sizeof h->token;
  return quiche_header_info(buf, len, ep->cids.len, &h->version, &h->type,
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
  if (n > 0) {
    endpoint_tx_push(ep, (size_t)n, to, to_len, (struct sockaddr *)&ep->rx_to,
                     ep->rx_to_len);
    ep->stats->version_negotiations_sent++;
  }
  return true;
}

/* Our SCID for a client's first DCID, stable across its retransmissions:
 * in the endpoint's layout (QUIC-LB server id), our identity byte (which
 * generation and worker of this server own it, quic/handoff.h), and the
 * rest of the nonce from an HMAC, so every server sharing the secret
 * derives the same nonce. */
static void derive_scid(const quic_endpoint *ep, const uint8_t *dcid,
                        size_t dcid_len, uint8_t out[CID_LAYOUT_MAX_LEN]) {
  uint8_t mac[crypto_auth_hmacsha256_BYTES];
  crypto_auth_hmacsha256(mac, dcid, dcid_len, ep->secrets.cid);
  cid_encode(&ep->cids, endpoint_identity(ep), mac, out);
}

/* Answers an Initial without a token with a Retry (RFC 9000 §8.1.2): the
 * token carries the client's DCID, and our SCID in it is the one the
 * connection will have, so nothing is kept until the client comes back. */
static void send_retry(quic_endpoint *ep, const packet_header *h,
                       const uint8_t *scid, const struct sockaddr *from,
                       socklen_t from_len) {
  uint8_t token[TOKEN_MAX_LEN];
  size_t token_len =
      token_seal(ep->secrets.token, TOKEN_KIND_RETRY, from, h->dcid,
                 h->dcid_len, token_now_ms(), token, sizeof token);
  uint8_t *out = endpoint_tx_slot(ep);
  if (!token_len || !out)
    return; /* socket full: the client retransmits its Initial */
  ssize_t n = quiche_retry(h->scid, h->scid_len, h->dcid, h->dcid_len, scid,
                           ep->cids.len, token, token_len, h->version, out,
                           ep->tx.buf_size);
  if (n > 0) {
    endpoint_tx_push(ep, (size_t)n, from, from_len,
                     (struct sockaddr *)&ep->rx_to, ep->rx_to_len);
    ep->stats->retries_sent++;
    admission_retry_sent(&ep->admission);
    LOG_DEBUG("retry sent");
  }
}

/* Whether dcid is the SCID of a Retry for odcid sent by any server that
 * shares our secret and layout: only the HMAC-derived bytes after the
 * identity byte are compared, since the Retry may have come from another
 * server of a QUIC-LB fleet (another server id) or another worker. */
static bool is_retry_scid_for(const quic_endpoint *ep, const uint8_t *dcid,
                              size_t dcid_len, const uint8_t *odcid,
                              size_t odcid_len) {
  uint8_t expected[CID_LAYOUT_MAX_LEN];
  derive_scid(ep, odcid, odcid_len, expected);
  size_t from = cid_identity_offset(&ep->cids) + 1;
  return dcid_len == ep->cids.len &&
         sodium_memcmp(expected + from, dcid + from, dcid_len - from) == 0;
}

/* Checks the Retry token of an Initial. On success the connection's SCID
 * is the client's DCID (our Retry's SCID, which must be the one derived
 * from the original DCID in the token) and odcid is filled. While Retry
 * is in force a token that fails is dropped: it may be forged, and RFC
 * 9000 §8.1.2 allows a server to discard the packet rather than spend a
 * handshake on an INVALID_TOKEN close. */
static bool check_retry_token(quic_endpoint *ep, const packet_header *h,
                              const struct sockaddr *from, uint8_t *odcid,
                              size_t *odcid_len) {
  token_result r = token_open(ep->secrets.token, TOKEN_KIND_RETRY, from,
                              h->token, h->token_len, token_now_ms(),
                              RETRY_TOKEN_LIFETIME_MS, odcid, odcid_len);
  if (r != TOKEN_OK) {
    LOG_DEBUG("initial: %s address token",
              r == TOKEN_EXPIRED ? "expired" : "invalid");
    return false;
  }
  if (!is_retry_scid_for(ep, h->dcid, h->dcid_len, odcid, *odcid_len)) {
    LOG_DEBUG("initial dropped: token for another connection ID");
    return false;
  }
  return true;
}

/* Whether an Initial carries a valid NEW_TOKEN token from a connection
 * this client had before (RFC 9000 §8.1.3): its address is validated.
 * With new_token_lifetime 0 none is valid. */
static bool has_valid_new_token(quic_endpoint *ep, const packet_header *h,
                                const struct sockaddr *from) {
  if (h->token_len == 0 || h->token[0] != TOKEN_KIND_NEW_TOKEN ||
      ep->new_token_lifetime_ms == 0)
    return false;
  uint8_t odcid[CID_MAX_LEN];
  size_t odcid_len = 0;
  token_result r = token_open(ep->secrets.token, TOKEN_KIND_NEW_TOKEN, from,
                              h->token, h->token_len, token_now_ms(),
                              ep->new_token_lifetime_ms, odcid, &odcid_len);
  if (r != TOKEN_OK) {
    LOG_DEBUG("initial: %s NEW_TOKEN token ignored",
              r == TOKEN_EXPIRED ? "expired" : "invalid");
    return false;
  }
  ep->stats->new_tokens_accepted++;
  LOG_DEBUG("initial: NEW_TOKEN token accepted, no Retry");
  return true;
}

static bool may_accept(quic_endpoint *ep, const packet_header *h, size_t len) {
  /* A draining server takes no new connections: clients retry elsewhere
   * (or after the restart) while existing ones finish. */
  if (h->type != QUIC_TYPE_INITIAL || len < MIN_INITIAL_DATAGRAM ||
      !ep->accepting)
    return false;
  if (atomic_load_explicit(ep->open_conns, memory_order_relaxed) >=
      ep->max_connections) {
    /* Not one line per refused Initial: under a flood the log would become
     * the attack. The 1st, 2nd, 4th, 8th... refusal is logged. */
    ep->connections_refused++;
    if ((ep->connections_refused & (ep->connections_refused - 1)) == 0)
      LOG_WARN("refusing connections: max_connections (%zu) reached "
               "(%llu refused so far)",
               ep->max_connections,
               (unsigned long long)ep->connections_refused);
    return false;
  }
  return true;
}

/* A new connection for an Initial (may_accept said yes). A client that
 * came back with a valid Retry token gets its validated connection even
 * once the load is over; one with a valid NEW_TOKEN token is validated
 * without a Retry. Without a valid token: a Retry when admission wants
 * one (an invalid Retry token is then dropped, as with enable_retry
 * alone; an invalid NEW_TOKEN token counts as none, since the client
 * cannot know it went stale), else a connection as if there were no
 * token (RFC 9000 §8.1.3: a token from elsewhere or stale does not block
 * a client). */
static conn *admit(quic_endpoint *ep, const packet_header *h,
                   const uint8_t *scid, const struct sockaddr *from,
                   socklen_t from_len, h3q_drop_reason *drop) {
  if (has_valid_new_token(ep, h, from))
    return conn_accept(ep, scid, NULL, 0, true, from, from_len);
  bool retry = admission_wants_retry(&ep->admission);
  if (h->token_len > 0 && h->token[0] != TOKEN_KIND_NEW_TOKEN) {
    uint8_t odcid[CID_MAX_LEN];
    size_t odcid_len = 0;
    if (check_retry_token(ep, h, from, odcid, &odcid_len))
      return conn_accept(ep, h->dcid, odcid, odcid_len, true, from, from_len);
    if (retry) {
      *drop = H3Q_DROP_INVALID_TOKEN;
      return NULL;
    }
  }
  if (!retry)
    return conn_accept(ep, scid, NULL, 0, false, from, from_len);
  if (!admission_take_retry(&ep->admission)) {
    *drop = H3Q_DROP_OVERLOAD;
    return NULL;
  }
  send_retry(ep, h, scid, from, from_len);
  *drop = H3Q_DROP_REASONS;
  return NULL;
}

/* Finds the connection of an Initial or 0-RTT packet, or accepts a new
 * one. NULL when there is none: *drop says why (H3Q_DROP_REASONS when the
 * packet was answered with a Retry, which is not a drop). */
static conn *find_or_accept(quic_endpoint *ep, const packet_header *h,
                            size_t len, const struct sockaddr *from,
                            socklen_t from_len, h3q_drop_reason *drop) {
  *drop = H3Q_DROP_UNKNOWN_CONN;
  /* Until the client learns our SCID, its Initial and 0-RTT packets carry
   * the DCID it chose; ours was derived from that. */
  if (h->type != QUIC_TYPE_INITIAL && h->type != QUIC_TYPE_ZERO_RTT)
    return NULL;
  uint8_t scid[CID_LAYOUT_MAX_LEN];
  derive_scid(ep, h->dcid, h->dcid_len, scid);
  conn *c = conn_table_get(&ep->conns, scid, ep->cids.len);
  if (c || !may_accept(ep, h, len))
    return c;
  return admit(ep, h, scid, from, from_len, drop);
}

/* A short-header packet for a connection we do not have (we restarted, or
 * it closed): a stateless reset tells the peer at once (RFC 9000 §10.3).
 * Our CIDs are ep->cids.len long, so the DCID sits right after the first
 * byte; its token is derived from the secret like the one we announced. */
static void send_stateless_reset(quic_endpoint *ep, const uint8_t *buf,
                                 size_t len, const struct sockaddr *to,
                                 socklen_t to_len) {
  if (len < 1 + ep->cids.len || (buf[0] & 0x80) ||
      !reset_limiter_take(&ep->resets, clock_now_ns()))
    return;
  uint8_t token[RESET_TOKEN_LEN];
  secrets_reset_token(&ep->secrets, buf + 1, ep->cids.len, token);
  uint8_t *out = endpoint_tx_slot(ep);
  if (!out)
    return;
  size_t n = stateless_reset_build(token, len, out, ep->tx.buf_size);
  if (n) {
    endpoint_tx_push(ep, n, to, to_len, (struct sockaddr *)&ep->rx_to,
                     ep->rx_to_len);
    ep->stats->stateless_resets_sent++;
    LOG_DEBUG("stateless reset sent (%zu bytes)", n);
  }
}

/* A short-header (1-RTT) packet starts with one byte, then the DCID,
 * which is always one of our ep->cids.len-byte ids: the connection is
 * found without quiche_header_info, which copies both ids to the heap for
 * every packet. Anything else takes the full path below. */
static conn *find_short_header_conn(quic_endpoint *ep, const uint8_t *buf,
                                    size_t len) {
  if (len <= ep->cids.len || (buf[0] & 0x80))
    return NULL;
  return conn_table_get(&ep->conns, buf + 1, ep->cids.len);
}

/* Whether a client's Initial or 0-RTT packet belongs to a connection we
 * already accepted (its retransmission: our SCID derives from its DCID). */
static bool initial_known(quic_endpoint *ep, const packet_header *h) {
  uint8_t scid[CID_LAYOUT_MAX_LEN];
  derive_scid(ep, h->dcid, h->dcid_len, scid);
  return conn_table_get(&ep->conns, scid, ep->cids.len) != NULL;
}

/* Whether a DCID can be one a server of this port issued: our length,
 * and for a packet that may open a connection (whose DCID a client may
 * have chosen at random) our first octet too (quic/cid.h). */
static bool may_be_ours(const quic_endpoint *ep, const packet_header *h,
                        bool opening) {
  return h->dcid_len == ep->cids.len &&
         (!opening || h->dcid[0] == cid_first_octet(&ep->cids));
}

/* Sends a datagram for a connection we do not have to the endpoint of the
 * port whose identity its DCID carries (quic/handoff.h). A client's
 * Initial names no one when its random DCID has another length or first
 * octet; when it happens to carry a live identity, that endpoint takes the
 * connection: consistently, since its retransmissions carry the same
 * DCID. While we
 * drain, packets that would open a connection go to an endpoint that does
 * not drain. One hop at most: what was handed to us stays here. Returns
 * true when the datagram was handed over or dropped. */
static bool steer_elsewhere(quic_endpoint *ep, const packet_header *h,
                            const uint8_t *buf, size_t len,
                            const struct sockaddr *from, socklen_t from_len) {
  bool opening = h->type == QUIC_TYPE_INITIAL || h->type == QUIC_TYPE_ZERO_RTT;
  if (ep->rx_handed_in || (opening && initial_known(ep, h)))
    return false;
  uint8_t id = h->dcid_len > ep->cid_identity_offset
                   ? h->dcid[ep->cid_identity_offset]
                   : endpoint_identity(ep);
  handoff_result r = HANDOFF_NO_OWNER;
  /* A CID another endpoint issued goes there, draining or not; only what
   * opens a new connection goes to a live one while we drain. */
  if (may_be_ours(ep, h, opening) && id != endpoint_identity(ep))
    r = handoff_send(ep, id, buf, len, from, from_len);
  if (r == HANDOFF_NO_OWNER && opening && !ep->accepting)
    r = handoff_send_to_live(ep, buf, len, from, from_len);
  if (r == HANDOFF_DROPPED)
    endpoint_count_drop(ep, H3Q_DROP_HANDOFF);
  return r != HANDOFF_NO_OWNER;
}

/* Feeds a datagram to its connection. A peer's burst reaches us in one
 * read (recvmmsg, and GRO joins up to 64 datagrams in a message).
 * Answered only after the whole read, the peer idles while we work and
 * then we idle while it works: one connection with 100 streams of small
 * requests left both sides a quarter idle that way. A connection is
 * therefore processed after every RX_ANSWER_EVERY of its datagrams, so
 * its answers leave while the rest of the read is handled (1 KB GETs on
 * 1 x 100 streams: about 100k -> 130k req/s; 5 x 100 no worse). */
static void receive(quic_endpoint *ep, conn *c, uint8_t *buf, size_t len,
                    const struct sockaddr *from, socklen_t from_len) {
  conn_recv(c, buf, len, from, from_len);
  if (c->rx_unprocessed >= RX_ANSWER_EVERY) {
    conn_process_now(c); /* may destroy c */
    endpoint_flush(ep);
  }
}

void endpoint_handle_datagram(quic_endpoint *ep, uint8_t *buf, size_t len,
                              const struct sockaddr *from, socklen_t from_len) {
  packet_header h;
  endpoint_count_received(ep, len);
  conn *known = find_short_header_conn(ep, buf, len);
  if (known) {
    receive(ep, known, buf, len, from, from_len);
    return;
  }
  if (negotiate_unknown_version(ep, buf, len, from, from_len)) {
    endpoint_count_drop(ep, H3Q_DROP_VERSION);
    return;
  }
  if (!parse_header(ep, buf, len, &h)) {
    endpoint_count_drop(ep, H3Q_DROP_MALFORMED);
    return;
  }
  conn *c = conn_table_get(&ep->conns, h.dcid, h.dcid_len);
  if (!c && steer_elsewhere(ep, &h, buf, len, from, from_len))
    return;
  h3q_drop_reason drop = H3Q_DROP_UNKNOWN_CONN;
  if (!c)
    c = find_or_accept(ep, &h, len, from, from_len, &drop);
  if (!c) {
    if (drop != H3Q_DROP_REASONS)
      endpoint_count_drop(ep, drop);
    if (!(buf[0] & 0x80))
      send_stateless_reset(ep, buf, len, from, from_len);
    return;
  }
  receive(ep, c, buf, len, from, from_len);
}

/* A socket bound to one address serves only datagrams sent to it. */
static bool may_answer_from(const quic_endpoint *ep, const struct sockaddr *to,
                            socklen_t to_len) {
  return ep->wildcard ||
         (to_len == ep->local_len && memcmp(to, &ep->local, to_len) == 0);
}

void endpoint_handle_handed_in(quic_endpoint *ep, uint8_t *buf, size_t len,
                               const struct sockaddr *from, socklen_t from_len,
                               const struct sockaddr *to, socklen_t to_len) {
  if (!may_answer_from(ep, to, to_len)) {
    endpoint_count_drop(ep, H3Q_DROP_HANDOFF);
    return;
  }
  memcpy(&ep->rx_to, to, to_len);
  ep->rx_to_len = to_len;
  io_epoch_advance();
  ep->rx_handed_in = true;
  endpoint_handle_datagram(ep, buf, len, from, from_len);
  ep->rx_handed_in = false;
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
    /* larger than any size we accept */
    endpoint_count_drop(ep, H3Q_DROP_TRUNCATED);
    return;
  }
  set_rx_to(ep, m);
  udp_segments s;
  udp_segments_init(&s, &ep->rx, i);
  uint8_t *data;
  size_t len;
  while (udp_segments_next(&s, &data, &len))
    if (!rx_shed(ep, data, len))
      endpoint_handle_datagram(ep, data, len, m->msg_name, m->msg_namelen);
}

/* Whether socket fd's receive queue still holds a backlog after a read
 * of n messages of the want asked for (see quic/admission.h). Asked only
 * after a full read; where the kernel cannot tell, a full read is taken
 * as the sign. */
static bool rx_backlog(const quic_endpoint *ep, int fd, size_t n, size_t want) {
  if (n < want || !admission_watches_backlog(&ep->admission))
    return false;
  size_t queued = 0;
  return !udp_rx_queued(fd, &queued) || queued >= RX_BACKLOG_BYTES;
}

int endpoint_read_batch(quic_endpoint *ep, int fd, size_t want, bool admits) {
  if (want == 0 || want > ep->rx.cap)
    want = ep->rx.cap;
  int n = udp_recv_batch_upto(fd, &ep->rx, want);
  if (n < 0) {
    LOG_WARN("recvmmsg failed");
    return -1;
  }
  if (n > 0)
    io_epoch_advance();
  if (admits)
    admission_batch_read(&ep->admission, rx_backlog(ep, fd, (size_t)n, want),
                         RETRIES_PER_BACKLOG_BATCH(want), clock_now_ns());
  /* A read that takes long to handle (costly datagrams: a flood of tiny
   * frames, handshakes) answers what it touched so far every
   * RX_ANSWER_AFTER_NS, so other connections' answers do not wait for
   * the whole read (1-byte DATA frames on one connection held another's
   * requests up to 3x its idle p99). */
  uint64_t since = n > 1 ? clock_now_ns() : 0;
  for (int i = 0; i < n; i++) {
    handle_message(ep, (size_t)i);
    if (since && i + 1 < n && ep->dirty) {
      uint64_t now = clock_now_ns();
      if (now - since >= RX_ANSWER_AFTER_NS) {
        endpoint_process(ep);
        since = clock_now_ns();
      }
    }
  }
  return n;
}

void endpoint_on_readable(void *arg) {
  quic_endpoint *ep = arg;
  if (ep->long_fd >= 0)
    rx_split_on_short_readable(ep);
  else
    endpoint_read_batch(ep, ep->fd, ep->rx.cap, true);
}

/* Socket buffer sizes (recv_buffer_size, send_buffer_size) and the
 * single-datagram system calls (udp_single_syscalls, H3Q_UDP_NO_MMSG=1). */
static void setup_socket(quic_endpoint *ep, const h3q_config *cfg) {
  int rcv = 0, snd = 0;
  udp_set_buffer_sizes(ep->fd, cfg->recv_buffer_size, cfg->send_buffer_size,
                       &rcv, &snd);
  LOG_DEBUG("udp: socket buffers: receive %d, send %d bytes (asked %zu, %zu; "
            "0 = default)",
            rcv, snd, cfg->recv_buffer_size, cfg->send_buffer_size);
  const char *env = getenv("H3Q_UDP_NO_MMSG");
  if (cfg->udp_single_syscalls || (env && strcmp(env, "1") == 0)) {
    udp_batch_single(&ep->rx);
    udp_batch_single(&ep->tx);
    LOG_INFO("udp: one datagram per system call (recvmsg/sendmsg)");
  }
}

static void log_cid_layout(const cid_layout *l) {
  if (l->config_id == CID_LB_UNROUTABLE) {
    LOG_DEBUG("connection IDs: %zu bytes, no QUIC-LB (unroutable codepoint)",
              l->len);
    return;
  }
  char sid[2 * CID_LB_SERVER_ID_MAX + 1];
  sodium_bin2hex(sid, sizeof sid, l->server_id, l->server_id_len);
  LOG_INFO("connection IDs: QUIC-LB config %u, server id %s, %zu-byte nonce "
           "(%zu bytes in all)",
           l->config_id, sid, l->len - 1 - l->server_id_len, l->len);
}

static bool is_wildcard(const struct sockaddr_storage *a) {
  if (a->ss_family == AF_INET)
    return ((const struct sockaddr_in *)a)->sin_addr.s_addr == INADDR_ANY;
  return a->ss_family == AF_INET6 &&
         IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)a)->sin6_addr);
}

int endpoint_init(quic_endpoint *ep, const h3q_config *cfg, quiche_config *qcfg,
                  const quic_secrets *secrets, char *err, size_t errlen) {
  ep->qcfg = qcfg;
  ep->fd = -1;
  ep->long_fd = -1;
  ep->tick_next = NULL;
  ep->tick_midway = false;
  ep->rx_long_busy = false;
  ep->rx_long_cost_ns = 0;
  ep->rx_split_ways = rx_split_ways(cfg);
  handoff_reset(&ep->handoff);
  ep->accepting = true;
  ep->max_connections = cfg->max_connections;
  atomic_init(&ep->own_conns, 0);
  if (!ep->open_conns)
    ep->open_conns = &ep->own_conns;
  ep->next_conn_number = ep->worker;
  ep->conn_number_step = cfg->workers > 1 ? cfg->workers : 1;
  ep->connections_refused = 0;
  ep->pacing = cfg->enable_pacing;
  ep->qlog_dir = cfg->qlog_dir;
  ep->keylog_path = cfg->keylog_path;
  ep->secrets = *secrets;
  admission_init(&ep->admission, cfg->enable_retry, cfg->retry_auto_threshold,
                 ep->stats);
  ep->new_token_lifetime_ms = cfg->new_token_lifetime * 1000u;
  ep->client_cert_required = cfg->client_cert_required;
  if (cid_layout_init(&ep->cids, cfg->quic_lb_config_id, cfg->quic_lb_server_id,
                      cfg->quic_lb_nonce_len, err, errlen) != 0)
    return H3Q_ECONFIG;
  log_cid_layout(&ep->cids);
  ep->cid_identity_offset = cid_identity_offset(&ep->cids);
  if (conn_table_init(&ep->conns) != 0)
    return H3Q_ENOMEM;
  ep->fd = udp_open(cfg->bind_addr, (uint16_t)cfg->port, &ep->local,
                    &ep->local_len, err, errlen);
  if (ep->fd < 0)
    return H3Q_EIO;
  int rc = handoff_open(ep, cfg, ep->first_worker, err, errlen);
  if (rc != H3Q_OK)
    return rc;
  memcpy(&ep->rx_to, &ep->local, ep->local_len);
  ep->rx_to_len = ep->local_len;
  if (udp_batch_init(&ep->rx, cfg->recv_batch, RX_DATAGRAM_MAX) ||
      udp_batch_init(&ep->tx, TX_BATCH, cfg->max_send_udp_payload_size))
    return H3Q_ENOMEM;
  setup_socket(ep, cfg);
  if (!udp_batch_enable_gso(&ep->tx, ep->fd))
    LOG_INFO("udp: no GSO on this socket; sending datagram by datagram");
  if (!udp_batch_enable_gro(&ep->rx, ep->fd))
    LOG_INFO("udp: no GRO on this socket; receiving datagram by datagram");
  ep->wildcard = is_wildcard(&ep->local);
  if (ep->wildcard &&
      !udp_batch_enable_pktinfo(&ep->rx, ep->fd, ep->local.ss_family))
    LOG_WARN("udp: no IP_PKTINFO: answers from a wildcard bind may leave "
             "from another address than the client wrote to");
  rx_split_open(ep, cfg);
  return H3Q_OK;
}

void endpoint_stop_receiving(quic_endpoint *ep) {
  rx_split_close(ep);
  if (ep->fd < 0)
    return;
  if (ep->loop)
    ep->lo->unwatch(ep->loop, ep->fd);
  ep->tx_blocked = false;
  close(ep->fd);
  ep->fd = -1;
}

void endpoint_free(quic_endpoint *ep) {
  while (ep->all)
    conn_destroy(ep->all);
  handoff_close(ep);
  if (ep->tx_blocked)
    ep->lo->unwatch_writable(ep->loop, ep->fd);
  ep->tx_blocked = false;
  conn_table_free(&ep->conns);
  rx_split_close(ep);
  udp_batch_free(&ep->rx);
  udp_batch_free(&ep->tx);
  if (ep->fd >= 0)
    close(ep->fd);
  ep->fd = -1;
  if (ep->qcfg)
    quiche_config_free(ep->qcfg);
  ep->qcfg = NULL;
}

void endpoint_swap_qconfig(quic_endpoint *ep, quiche_config *qcfg) {
  /* A quiche connection holds its own reference to the TLS context, so
   * freeing the old config leaves open connections untouched. */
  if (ep->qcfg)
    quiche_config_free(ep->qcfg);
  ep->qcfg = qcfg;
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
    ep->stats->packets_dropped_by[H3Q_DROP_SEND] += ep->tx.count - ep->tx.sent;
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
  /* Counted here, so that Retries, version negotiation and stateless
   * resets are in the totals too. */
  ep->stats->udp_datagrams_sent++;
  ep->stats->udp_bytes_sent += len;
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

/* conn_mark_dirty pushes on the front; reversed, the list is served in
 * the order connections became dirty (mostly: the order their datagrams
 * arrived), so the one that waited longest is not served last. */
static conn *take_dirty_in_order(quic_endpoint *ep) {
  conn *in = ep->dirty, *out = NULL;
  ep->dirty = NULL;
  while (in) {
    conn *c = in;
    in = c->dirty_next;
    c->dirty_next = out;
    out = c;
  }
  return out;
}

bool endpoint_process(quic_endpoint *ep) {
  for (int round = 0; round < PROCESS_ROUNDS && ep->dirty; round++) {
    conn *list = take_dirty_in_order(ep);
    while (list) {
      conn *c = list;
      list = c->dirty_next;
      c->dirty = false;
      conn_process(c);
      /* A connection's packets leave as soon as it is done, not after
       * every other connection's requests were handled: with several busy
       * connections that wait would add their whole processing time to
       * this one's latency. A GSO run cannot span two peers anyway, so
       * this costs a syscall per busy connection, not datagrams. */
      endpoint_flush(ep);
    }
  }
  endpoint_flush(ep); /* what no connection sent (version negotiation) */
  return ep->dirty != NULL;
}

bool endpoint_tick(quic_endpoint *ep, uint64_t now_ns, size_t max) {
  conn *c = ep->tick_midway ? ep->tick_next : ep->all;
  for (size_t n = 0; c && n < max; n++) {
    /* Set first: freeing the next connection meanwhile moves it on
     * (endpoint_tick_forget). */
    ep->tick_next = c->next;
    if (c->app)
      ep->app->tick(c->app, now_ns);
    c = ep->tick_next;
  }
  ep->tick_next = c;
  ep->tick_midway = c != NULL;
  return !ep->tick_midway;
}

void endpoint_tick_forget(quic_endpoint *ep, conn *c) {
  if (ep->tick_next == c)
    ep->tick_next = c->next;
}

conn *endpoint_find(quic_endpoint *ep, uint64_t number) {
  for (conn *c = ep->all; c; c = c->next)
    if (c->number == number)
      return c;
  return NULL;
}
