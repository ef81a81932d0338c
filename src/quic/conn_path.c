/* Where a connection's peer is, as opposed to where quiche thinks it is.
 *
 * Why: quiche 0.30 keeps loss recovery per path. When a NAT rebinds the
 * client to a new port, quiche makes a new path active, and the packets
 * it had just sent on the old path (to the dead port) are never declared
 * lost: ACKs of packets on the new path run loss detection only on the
 * new path's recovery (congestion/recovery.rs returns early when a path
 * has nothing newly acked), and the old path's PTO re-queues the same
 * two oldest packets each time. Their stream data is never resent and the
 * download stalls. A second rebinding is refused outright: paths are
 * capped at active_connection_id_limit (2) and the old path keeps its
 * reused DCID, so it is never "unused" and the third 4-tuple's packets
 * are dropped. (Measured through tests/tools/relay.c; see
 * tests/integration/test_migration.py.)
 *
 * So a port change on the same IP address, which is what NAT rebinding
 * looks like, is not shown to quiche: packets from the new port are fed
 * to quiche with the address it knows (c->peer), and once one of them
 * proved itself (quiche processed it: it decrypted and was no duplicate)
 * packets quiche addresses to c->peer go to the new port (c->peer_now).
 * One path, one recovery: losses are found and resent as usual. A change
 * of IP address still goes to quiche (its migration with path
 * validation); its PEER_MIGRATED event moves both addresses there.
 *
 * Not validating a port change is bounded: the traffic can only move to
 * another port of the host that sent an authenticated packet, never to
 * another host, and the next packet from the real port moves it back.
 *
 * RFC 9000 §9.3 moves sends only for the highest-numbered packet; quiche
 * does not tell us packet numbers, so a packet from a port the peer left
 * less than LEFT_PORT_NS ago is taken for a late one (reordered, or
 * handed over by another server of the port, quic/handoff.h, which delays
 * it by a hop) and does not move the sends back. */
#include "quic/conn.h"

#include <netinet/in.h>
#include <string.h>

#include "quic/endpoint.h"
#include "util/clock.h"
#include "util/log.h"

/* How long a port the peer left stays suspect. */
#define LEFT_PORT_NS (1000u * 1000000u)

static bool same_ip(const struct sockaddr *a, const struct sockaddr *b) {
  if (a->sa_family != b->sa_family)
    return false;
  if (a->sa_family == AF_INET)
    return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
           ((const struct sockaddr_in *)b)->sin_addr.s_addr;
  if (a->sa_family == AF_INET6)
    return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                  &((const struct sockaddr_in6 *)b)->sin6_addr,
                  sizeof(struct in6_addr)) == 0;
  return false;
}

static uint16_t port_of(const struct sockaddr *a) {
  if (a->sa_family == AF_INET)
    return ((const struct sockaddr_in *)a)->sin_port;
  if (a->sa_family == AF_INET6)
    return ((const struct sockaddr_in6 *)a)->sin6_port;
  return 0;
}

static bool same_addr(const struct sockaddr *a, const struct sockaddr *b) {
  return same_ip(a, b) && port_of(a) == port_of(b);
}

static void set_addr(struct sockaddr_storage *dst, socklen_t *dst_len,
                     const struct sockaddr *src, socklen_t len) {
  if (len > sizeof *dst)
    len = sizeof *dst;
  memcpy(dst, src, len);
  *dst_len = len;
}

void conn_path_init(conn *c, const struct sockaddr *peer, socklen_t len) {
  set_addr(&c->peer, &c->peer_len, peer, len);
  set_addr(&c->peer_now, &c->peer_now_len, peer, len);
}

bool conn_path_recv_from(const conn *c, const struct sockaddr *from,
                         const struct sockaddr **qfrom, socklen_t *qfrom_len) {
  const struct sockaddr *known = (const struct sockaddr *)&c->peer;
  if (!same_ip(from, known))
    return false; /* another address: quiche's own migration */
  *qfrom = known;
  *qfrom_len = c->peer_len;
  return !same_addr(from, (const struct sockaddr *)&c->peer_now);
}

static size_t packets_processed(const conn *c) {
  quiche_stats st;
  quiche_conn_stats(c->q, &st);
  return st.recv;
}

size_t conn_path_mark(const conn *c) {
  return packets_processed(c);
}

/* Whether port (network order) is one the peer left lately. */
static bool left_lately(const conn *c, uint16_t port, uint64_t now) {
  for (int i = 0; i < CONN_LEFT_PORTS; i++)
    if (c->left_ports[i] == port && port != 0 &&
        now - c->left_at_ns[i] < LEFT_PORT_NS)
      return true;
  return false;
}

static void remember_left(conn *c, uint16_t port, uint64_t now) {
  unsigned i = c->left_next++ % CONN_LEFT_PORTS;
  c->left_ports[i] = port;
  c->left_at_ns[i] = now;
}

void conn_path_adopt_if_proved(conn *c, size_t mark,
                               const struct sockaddr *from,
                               socklen_t from_len) {
  if (packets_processed(c) <= mark)
    return; /* undecryptable, a duplicate or a replay: not proof */
  uint64_t now = clock_now_ns();
  if (left_lately(c, port_of(from), now)) {
    LOG_DEBUG("conn %llu: late packet from port %u, which the peer left",
              (unsigned long long)c->number, (unsigned)ntohs(port_of(from)));
    return;
  }
  remember_left(c, port_of((struct sockaddr *)&c->peer_now), now);
  LOG_INFO("conn %llu: peer port changed %u -> %u (NAT rebinding)",
           (unsigned long long)c->number,
           (unsigned)ntohs(port_of((struct sockaddr *)&c->peer_now)),
           (unsigned)ntohs(port_of(from)));
  set_addr(&c->peer_now, &c->peer_now_len, from, from_len);
  c->rebindings++;
}

void conn_path_send_to(const conn *c, quiche_send_info *si) {
  if (!same_addr((const struct sockaddr *)&si->to,
                 (const struct sockaddr *)&c->peer))
    return;
  memcpy(&si->to, &c->peer_now, c->peer_now_len);
  si->to_len = c->peer_now_len;
}

static void on_peer_migrated(conn *c, const quiche_path_event *ev) {
  struct sockaddr_storage local, peer;
  socklen_t local_len = sizeof local, peer_len = sizeof peer;
  quiche_path_event_peer_migrated(ev, &local, &local_len, &peer, &peer_len);
  LOG_INFO("conn %llu: peer migrated to a new address",
           (unsigned long long)c->number);
  conn_path_init(c, (struct sockaddr *)&peer, peer_len);
}

void conn_path_events(conn *c) {
  /* quiche queues one event per path change; bounded by its path table. */
  for (int i = 0; i < 64; i++) {
    quiche_path_event *ev = quiche_conn_path_event_next(c->q);
    if (!ev)
      return;
    enum quiche_path_event_type t = quiche_path_event_type(ev);
    if (t == QUICHE_PATH_EVENT_PEER_MIGRATED)
      on_peer_migrated(c, ev);
    else if (t == QUICHE_PATH_EVENT_FAILED_VALIDATION)
      LOG_DEBUG("conn %llu: path validation failed",
                (unsigned long long)c->number);
    quiche_path_event_free(ev);
  }
}
