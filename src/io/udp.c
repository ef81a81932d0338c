#include "io/udp.h"

#include "util/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Large kernel buffers absorb bursts of a full congestion window. */
#define UDP_SOCKET_BUFFER (8 * 1024 * 1024)
/* How long and how often udp_flush waits for a full socket buffer. */
#define UDP_FLUSH_WAIT_MS 5
#define UDP_FLUSH_MAX_WAITS 20

static int fill_addr(const char *addr, uint16_t port,
                     struct sockaddr_storage *ss, socklen_t *len) {
  memset(ss, 0, sizeof *ss);
  struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
  struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
  if (inet_pton(AF_INET, addr, &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    *len = sizeof *v4;
    return 0;
  }
  if (inet_pton(AF_INET6, addr, &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    *len = sizeof *v6;
    return 0;
  }
  return -1;
}

static void set_buffer(int fd, int opt, int force_opt) {
  int size = UDP_SOCKET_BUFFER;
  /* SO_*BUFFORCE passes the net.core.{r,w}mem_max caps when privileged;
   * otherwise best effort, capped by the kernel. */
  if (setsockopt(fd, SOL_SOCKET, force_opt, &size, sizeof size) != 0)
    setsockopt(fd, SOL_SOCKET, opt, &size, sizeof size);
}

static void set_buffers(int fd) {
  set_buffer(fd, SO_RCVBUF, SO_RCVBUFFORCE);
  set_buffer(fd, SO_SNDBUF, SO_SNDBUFFORCE);
}

int udp_open(const char *addr, uint16_t port, struct sockaddr_storage *local,
             socklen_t *local_len, char *err, size_t errlen) {
  if (fill_addr(addr, port, local, local_len) != 0) {
    snprintf(err, errlen, "bind_addr: '%s' is not an IP address", addr);
    return -1;
  }
  int fd = socket(local->ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                  IPPROTO_UDP);
  if (fd < 0) {
    snprintf(err, errlen, "socket: %s", strerror(errno));
    return -1;
  }
  int off = 0;
  if (local->ss_family == AF_INET6)
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
  set_buffers(fd);
  if (bind(fd, (struct sockaddr *)local, *local_len) != 0) {
    snprintf(err, errlen, "port: cannot bind %s:%u: %s", addr, port,
             strerror(errno));
    close(fd);
    return -1;
  }
  getsockname(fd, (struct sockaddr *)local, local_len);
  return fd;
}

int udp_open_connected(const struct sockaddr *peer, socklen_t peer_len,
                       struct sockaddr_storage *local, socklen_t *local_len,
                       char *err, size_t errlen) {
  int fd = socket(peer->sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                  IPPROTO_UDP);
  if (fd < 0) {
    snprintf(err, errlen, "socket: %s", strerror(errno));
    return -1;
  }
  set_buffers(fd);
  /* connect() lets the kernel filter foreign datagrams and saves passing
   * addresses on every send. */
  if (connect(fd, peer, peer_len) != 0) {
    snprintf(err, errlen, "connect: %s", strerror(errno));
    close(fd);
    return -1;
  }
  *local_len = sizeof *local;
  if (getsockname(fd, (struct sockaddr *)local, local_len) != 0) {
    snprintf(err, errlen, "getsockname: %s", strerror(errno));
    close(fd);
    return -1;
  }
  return fd;
}

int udp_batch_init(udp_batch *b, size_t cap, size_t buf_size) {
  memset(b, 0, sizeof *b);
  b->msgs = calloc(cap, sizeof *b->msgs);
  b->iov = calloc(cap, sizeof *b->iov);
  b->addrs = calloc(cap, sizeof *b->addrs);
  b->bufs = malloc(cap * buf_size);
  if (!b->msgs || !b->iov || !b->addrs || !b->bufs) {
    udp_batch_free(b);
    return -1;
  }
  b->cap = cap;
  b->buf_size = buf_size;
  return 0;
}

void udp_batch_free(udp_batch *b) {
  free(b->msgs);
  free(b->iov);
  free(b->addrs);
  free(b->bufs);
  memset(b, 0, sizeof *b);
}

static void prepare_recv(udp_batch *b) {
  for (size_t i = 0; i < b->cap; i++) {
    b->iov[i].iov_base = udp_batch_buf(b, i);
    b->iov[i].iov_len = b->buf_size;
    memset(&b->msgs[i].msg_hdr, 0, sizeof b->msgs[i].msg_hdr);
    b->msgs[i].msg_hdr.msg_iov = &b->iov[i];
    b->msgs[i].msg_hdr.msg_iovlen = 1;
    b->msgs[i].msg_hdr.msg_name = &b->addrs[i];
    b->msgs[i].msg_hdr.msg_namelen = sizeof b->addrs[i];
  }
}

/* Errors a connected socket reports for ICMP messages about earlier
 * sends. */
static bool is_icmp_error(int e) {
  return e == ECONNREFUSED || e == EHOSTUNREACH || e == ENETUNREACH ||
         e == EHOSTDOWN || e == ENETDOWN || e == EMSGSIZE;
}

/* With icmp_errno NULL, ICMP errors are socket errors like any other. */
static int recv_batch(int fd, udp_batch *b, int *icmp_errno) {
  prepare_recv(b);
  for (;;) {
    int n = recvmmsg(fd, b->msgs, (unsigned)b->cap, 0, NULL);
    if (n >= 0)
      return n;
    if (errno == EINTR)
      continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
      return 0;
    if (!icmp_errno || !is_icmp_error(errno))
      return -1;
    /* Reading consumed the pending error: go on to the real data. */
    LOG_DEBUG("udp: ignoring ICMP error: %s", strerror(errno));
    *icmp_errno = errno;
  }
}

int udp_recv_batch(int fd, udp_batch *b) {
  return recv_batch(fd, b, NULL);
}

int udp_recv_batch_connected(int fd, udp_batch *b, int *icmp_errno) {
  return recv_batch(fd, b, icmp_errno);
}

void udp_batch_push(udp_batch *b, size_t len, const struct sockaddr *addr,
                    socklen_t addr_len) {
  size_t i = b->count++;
  if (addr)
    memcpy(&b->addrs[i], addr, addr_len);
  b->iov[i].iov_base = udp_batch_buf(b, i);
  b->iov[i].iov_len = len;
  memset(&b->msgs[i].msg_hdr, 0, sizeof b->msgs[i].msg_hdr);
  b->msgs[i].msg_hdr.msg_iov = &b->iov[i];
  b->msgs[i].msg_hdr.msg_iovlen = 1;
  b->msgs[i].msg_hdr.msg_name = addr ? &b->addrs[i] : NULL;
  b->msgs[i].msg_hdr.msg_namelen = addr ? addr_len : 0;
}

/* Hands b's datagrams from b->sent on to the kernel. Returns 0 when all
 * are sent, -1 when the socket buffer is full (ENOBUFS too when
 * nobufs_is_full). A datagram refused for another reason (e.g. an ICMP
 * error of an earlier send on a connected socket) is skipped. */
static int send_pending(int fd, udp_batch *b, bool nobufs_is_full) {
  while (b->sent < b->count) {
    int n = sendmmsg(fd, b->msgs + b->sent, (unsigned)(b->count - b->sent), 0);
    if (n > 0) {
      b->sent += (size_t)n;
      continue;
    }
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK ||
                  (errno == ENOBUFS && nobufs_is_full)))
      return -1;
    LOG_DEBUG("udp: dropping a datagram: %s",
              n < 0 ? strerror(errno) : "not taken");
    b->sent++;
  }
  return 0;
}

size_t udp_flush(int fd, udp_batch *b) {
  for (size_t waits = 0;
       send_pending(fd, b, false) != 0 && waits < UDP_FLUSH_MAX_WAITS;
       waits++) {
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    poll(&p, 1, UDP_FLUSH_WAIT_MS);
  }
  size_t dropped = b->count - b->sent;
  b->count = b->sent = 0;
  return dropped;
}

int udp_flush_nowait(int fd, udp_batch *b) {
  /* ENOBUFS counts as full: the caller retries on writability rather than
   * losing the rest of the batch. */
  if (send_pending(fd, b, true) != 0)
    return 1;
  b->count = b->sent = 0;
  return 0;
}
