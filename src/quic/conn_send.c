/* A connection's send loop: packets from quiche into the endpoint's send
 * batch, paced by quiche's send_info.at (quic/pacing.h), stopped by a
 * full socket buffer (the endpoint wakes the connection when it drained)
 * and by a burst limit that lets other connections have their turn. */
#include "quic/conn.h"

#include <stdlib.h>
#include <string.h>

#include "quic/endpoint.h"
#include "quic/pacing.h"
#include "util/clock.h"
#include "util/log.h"

/* Packets one call asks quiche for before other connections get their
 * turn (a bulk sender is marked dirty again to go on). */
#define SEND_BURST_MAX 512

static void queue_packet(conn *c, const uint8_t *pkt, size_t len,
                         const struct sockaddr_storage *to, socklen_t to_len,
                         const struct sockaddr_storage *from,
                         socklen_t from_len) {
  udp_batch *tx = &c->ep->tx;
  uint8_t *slot = udp_batch_buf(tx, tx->count);
  if (slot != pkt)
    memcpy(slot, pkt, len);
  endpoint_tx_push(c->ep, len, (const struct sockaddr *)to, to_len,
                   (const struct sockaddr *)from, from_len);
}

/* Keeps a packet that is not due yet and arms the pace timer. Returns
 * false when there is no memory to hold it (then it goes out early). */
static bool hold(conn *c, const uint8_t *pkt, size_t len,
                 const quiche_send_info *si, uint64_t at_ns, uint64_t wait) {
  if (!c->held && !(c->held = malloc(c->ep->tx.buf_size)))
    return false;
  memcpy(c->held, pkt, len);
  c->held_len = len;
  c->held_at_ns = at_ns;
  memcpy(&c->held_to, &si->to, si->to_len);
  c->held_to_len = si->to_len;
  memcpy(&c->held_from, &si->from, si->from_len);
  c->held_from_len = si->from_len;
  c->ep->lo->timer_arm(c->pace_timer, wait);
  return true;
}

void conn_release_held(conn *c) {
  if (!c->held_len)
    return;
  if (!endpoint_tx_slot(c->ep)) {
    endpoint_count_drop(c->ep, H3Q_DROP_SEND); /* closing, socket full */
  } else {
    queue_packet(c, c->held, c->held_len, &c->held_to, c->held_to_len,
                 &c->held_from, c->held_from_len);
  }
  c->held_len = 0;
}

/* Sends the held packet once it is due. Returns false while c must wait:
 * for its time (the pace timer is armed) or for room in the socket. */
static bool send_held(conn *c) {
  if (!c->held_len)
    return true;
  uint64_t wait = pace_wait_ns(c->held_at_ns, clock_now_ns());
  if (wait) {
    c->ep->lo->timer_arm(c->pace_timer, wait);
    return false;
  }
  if (!endpoint_tx_slot(c->ep)) {
    endpoint_wait_writable(c->ep, c);
    return false;
  }
  conn_release_held(c);
  return true;
}

/* With pacing on, whether the packet just made in out must wait; if so it
 * is held. *now_ns is refreshed only when the packet looks early. */
static bool paced(conn *c, const uint8_t *out, size_t len,
                  const quiche_send_info *si, uint64_t *now_ns) {
  if (!c->ep->pacing)
    return false;
  uint64_t at = pace_time_ns(&si->at);
  if (!pace_wait_ns(at, *now_ns))
    return false;
  *now_ns = clock_now_ns(); /* the cached time may be stale */
  uint64_t wait = pace_wait_ns(at, *now_ns);
  return wait && hold(c, out, len, si, at, wait);
}

#define AMPLIFICATION_FACTOR 3

/* Whether a datagram of len bytes may go to a peer whose address is not
 * validated yet (see conn.addr_validated); counts it if so. */
static bool amplification_allows(conn *c, size_t len) {
  conn_check_validated(c);
  if (c->addr_validated)
    return true;
  if (c->unvalidated_tx + len > AMPLIFICATION_FACTOR * c->unvalidated_rx) {
    LOG_DEBUG("conn %llu: %zu bytes held back by the amplification limit",
              (unsigned long long)c->number, len);
    return false;
  }
  c->unvalidated_tx += len;
  return true;
}

void conn_send_packets(conn *c) {
  quic_endpoint *ep = c->ep;
  if (!send_held(c))
    return;
  c->send_generation++; /* quiche is asked for packets from here on */
  uint64_t now = clock_now_ns();
  for (size_t i = 0; i < SEND_BURST_MAX; i++) {
    uint8_t *out = endpoint_tx_slot(ep);
    if (!out) {
      endpoint_wait_writable(ep, c);
      return;
    }
    quiche_send_info si;
    ssize_t n = quiche_conn_send(c->q, out, ep->tx.buf_size, &si);
    if (n == QUICHE_ERR_DONE)
      return;
    if (n < 0) {
      LOG_DEBUG("conn %llu: send error %zd", (unsigned long long)c->number, n);
      return;
    }
    if (!amplification_allows(c, (size_t)n))
      return; /* quiche counts it sent: it is lost and resent later */
    if (paced(c, out, (size_t)n, &si, &now))
      return;
    queue_packet(c, out, (size_t)n, &si.to, si.to_len, &si.from, si.from_len);
  }
  conn_mark_dirty(c);
}
