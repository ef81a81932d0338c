#include "quic/rx_split.h"

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "io/header_split.h"
#include "io/reuseport_bpf.h"
#include "quic/endpoint.h"
#include "util/clock.h"
#include "util/log.h"

size_t rx_split_ways(const h3q_config *cfg) {
  if (cfg->steering == H3Q_STEERING_HANDOFF || header_split_disabled_by_env())
    return 0;
  size_t ways = cfg->workers > 0 ? cfg->workers : 1;
  return ways < REUSEPORT_BPF_SPLIT_WAYS_MAX ? ways
                                             : REUSEPORT_BPF_SPLIT_WAYS_MAX;
}

static uint16_t port_of_local(const quic_endpoint *ep) {
  if (ep->local.ss_family == AF_INET6)
    return ntohs(((const struct sockaddr_in6 *)&ep->local)->sin6_port);
  return ntohs(((const struct sockaddr_in *)&ep->local)->sin_port);
}

/* The long-header socket's place in the map: at its owner's identity;
 * the program also picks it there for new clients by hash when it is one
 * of the newest server's first split_ways workers. An older server of the
 * port may have made a smaller map: then the update fails. */
static int put_in_map(quic_endpoint *ep, int fd) {
  uint32_t slot = REUSEPORT_BPF_LONG_BASE + endpoint_identity(ep);
  return reuseport_bpf_map_set(ep->handoff.map_fd, slot, fd);
}

void rx_split_open(quic_endpoint *ep, const h3q_config *cfg) {
  if (!ep->handoff.ebpf || ep->rx_split_ways == 0)
    return;
  char err[160];
  size_t rcvbuf =
      cfg->recv_buffer_size && cfg->recv_buffer_size < HEADER_SPLIT_RCVBUF
          ? cfg->recv_buffer_size
          : HEADER_SPLIT_RCVBUF;
  int fd = header_split_open(cfg->bind_addr, port_of_local(ep), rcvbuf, err,
                             sizeof err);
  if (fd < 0) {
    LOG_INFO("udp: no header split (%s); one socket", err);
    return;
  }
  if (put_in_map(ep, fd) != 0) {
    LOG_INFO("udp: no header split (map update: %s); one socket",
             strerror(errno));
    close(fd); /* closing removes it from the map */
    return;
  }
  /* Same receive options as the first socket: both fill ep->rx. */
  if (ep->rx.gro)
    udp_batch_enable_gro(&ep->rx, fd);
  if (ep->rx.pktinfo)
    udp_batch_enable_pktinfo(&ep->rx, fd, ep->local.ss_family);
  ep->long_fd = fd;
  LOG_DEBUG("udp: long-header packets on a second socket (receive buffer "
            "%zu)",
            rcvbuf);
}

size_t rx_split_long_quota(uint64_t cost_ns, size_t cap) {
  if (cost_ns == 0)
    return cap;
  uint64_t q = RX_SPLIT_LONG_BUDGET_NS / cost_ns;
  return q < 1 ? 1 : q > cap ? cap : (size_t)q;
}

uint64_t rx_split_cost_update(uint64_t avg_ns, uint64_t spent_ns, size_t n) {
  uint64_t one = spent_ns / n;
  if (one == 0)
    one = 1;
  if (one >= avg_ns)
    return one; /* at once: a read must not overrun twice */
  return avg_ns - avg_ns / 8 + one / 8;
}

static void read_short_fully(quic_endpoint *ep) {
  for (int i = 0; i < RX_SPLIT_SHORT_BATCHES; i++)
    if (endpoint_read_batch(ep, ep->fd, ep->rx.cap, false) < (int)ep->rx.cap)
      return; /* empty now (or an error, logged) */
}

/* One read of the long-header socket, as many datagrams as fit the time
 * budget at their recent cost. Busy: the read was full and more is
 * queued (a flood, or a burst of costly handshakes). */
static void read_long(quic_endpoint *ep) {
  size_t want = rx_split_long_quota(ep->rx_long_cost_ns, ep->rx.cap);
  uint64_t t0 = clock_now_ns();
  int n = endpoint_read_batch(ep, ep->long_fd, want, true);
  if (n <= 0) {
    ep->rx_long_busy = false;
    return;
  }
  ep->rx_long_cost_ns =
      rx_split_cost_update(ep->rx_long_cost_ns, clock_now_ns() - t0, (size_t)n);
  size_t queued = 0;
  ep->rx_long_busy =
      (size_t)n >= want && (!udp_rx_queued(ep->long_fd, &queued) || queued > 0);
}

/* Unless the long-header socket is busy, it is read first: a client's
 * last handshake packet (long header) and its first 1-RTT packets (short)
 * then reach quiche in the order they were sent; read the other way
 * round, 1-RTT packets that arrive before the handshake completes are
 * dropped beyond quiche's few buffered ones (a burst of DATAGRAMs right
 * after the handshake lost 33 of 50). While it is busy (a full batch
 * last time: a flood), the short-header socket goes first. */
void rx_split_on_short_readable(quic_endpoint *ep) {
  if (!ep->rx_long_busy)
    read_long(ep);
  read_short_fully(ep);
}

static void on_long_readable(void *arg) {
  quic_endpoint *ep = arg;
  if (ep->rx_long_busy) {
    read_short_fully(ep);
    read_long(ep);
  } else {
    read_long(ep);
    read_short_fully(ep);
  }
}

int rx_split_watch(quic_endpoint *ep) {
  if (ep->long_fd < 0)
    return 0;
  return ep->lo->watch_readable(ep->loop, ep->long_fd, on_long_readable, ep);
}

void rx_split_close(quic_endpoint *ep) {
  if (ep->long_fd < 0)
    return;
  if (ep->loop)
    ep->lo->unwatch(ep->loop, ep->long_fd);
  close(ep->long_fd);
  ep->long_fd = -1;
}
