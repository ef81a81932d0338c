#include "io/udp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
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
  int off = 0, size = UDP_SOCKET_BUFFER;
  if (local->ss_family == AF_INET6)
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
  /* Best effort: the kernel caps these at net.core.{r,w}mem_max. */
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
  if (bind(fd, (struct sockaddr *)local, *local_len) != 0) {
    snprintf(err, errlen, "port: cannot bind %s:%u: %s", addr, port,
             strerror(errno));
    close(fd);
    return -1;
  }
  getsockname(fd, (struct sockaddr *)local, local_len);
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

int udp_recv_batch(int fd, udp_batch *b) {
  for (size_t i = 0; i < b->cap; i++) {
    b->iov[i].iov_base = udp_batch_buf(b, i);
    b->iov[i].iov_len = b->buf_size;
    memset(&b->msgs[i].msg_hdr, 0, sizeof b->msgs[i].msg_hdr);
    b->msgs[i].msg_hdr.msg_iov = &b->iov[i];
    b->msgs[i].msg_hdr.msg_iovlen = 1;
    b->msgs[i].msg_hdr.msg_name = &b->addrs[i];
    b->msgs[i].msg_hdr.msg_namelen = sizeof b->addrs[i];
  }
  for (;;) {
    int n = recvmmsg(fd, b->msgs, (unsigned)b->cap, 0, NULL);
    if (n >= 0)
      return n;
    if (errno == EINTR)
      continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
      return 0;
    return -1;
  }
}

void udp_batch_push(udp_batch *b, size_t len, const struct sockaddr *addr,
                    socklen_t addr_len) {
  size_t i = b->count++;
  memcpy(&b->addrs[i], addr, addr_len);
  b->iov[i].iov_base = udp_batch_buf(b, i);
  b->iov[i].iov_len = len;
  memset(&b->msgs[i].msg_hdr, 0, sizeof b->msgs[i].msg_hdr);
  b->msgs[i].msg_hdr.msg_iov = &b->iov[i];
  b->msgs[i].msg_hdr.msg_iovlen = 1;
  b->msgs[i].msg_hdr.msg_name = &b->addrs[i];
  b->msgs[i].msg_hdr.msg_namelen = addr_len;
}

size_t udp_flush(int fd, udp_batch *b) {
  size_t sent = 0, waits = 0;
  while (sent < b->count) {
    int n = sendmmsg(fd, b->msgs + sent, (unsigned)(b->count - sent), 0);
    if (n > 0) {
      sent += (size_t)n;
      continue;
    }
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) &&
        waits++ < UDP_FLUSH_MAX_WAITS) {
      struct pollfd p = {.fd = fd, .events = POLLOUT};
      poll(&p, 1, UDP_FLUSH_WAIT_MS);
      continue;
    }
    /* Another error (e.g. an unreachable peer): skip this datagram. */
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
      sent++;
      continue;
    }
    break;
  }
  size_t dropped = b->count - sent;
  b->count = 0;
  return dropped;
}
