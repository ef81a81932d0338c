#include "h3c_udp.h"

#include "h3c_args.h"
#include "h3c_log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A 1 GB download arrives much faster than one loop iteration drains it on
 * a busy host; a small receive buffer turns that into loss. */
#define H3C_SOCK_BUF (8 * 1024 * 1024)

h3c_rx_batch *h3c_rx_batch_new(void) {
  h3c_rx_batch *b = h3c_xcalloc(1, sizeof(*b));
  b->bufs = h3c_xmalloc((size_t)H3C_UDP_BATCH * H3C_RX_SLOT);
  return b;
}

void h3c_rx_batch_free(h3c_rx_batch *b) {
  if (b == NULL)
    return;
  free(b->bufs);
  free(b);
}

static int is_icmp_error(int e) {
  return e == ECONNREFUSED || e == EHOSTUNREACH || e == ENETUNREACH ||
         e == EHOSTDOWN || e == ENETDOWN || e == EMSGSIZE;
}

int h3c_udp_recv(int fd, h3c_rx_batch *b, int *icmp_errno) {
  for (int i = 0; i < H3C_UDP_BATCH; i++) {
    b->iov[i].iov_base = b->bufs + (size_t)i * H3C_RX_SLOT;
    b->iov[i].iov_len = H3C_RX_SLOT;
    memset(&b->msgs[i].msg_hdr, 0, sizeof(b->msgs[i].msg_hdr));
    b->msgs[i].msg_hdr.msg_iov = &b->iov[i];
    b->msgs[i].msg_hdr.msg_iovlen = 1;
  }
  for (;;) {
    int n = recvmmsg(fd, b->msgs, H3C_UDP_BATCH, 0, NULL);
    if (n >= 0)
      return n;
    if (errno == EINTR)
      continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
      return 0;
    if (is_icmp_error(errno)) {
      H3C_DEBUG("recv: ignoring ICMP error: %s", strerror(errno));
      *icmp_errno = errno;
      continue; /* the pending error is consumed; read the real data */
    }
    return -1;
  }
}

int h3c_tx_init(h3c_tx_queue *q, size_t slot) {
  memset(q, 0, sizeof(*q));
  q->slot = slot;
  q->bufs = h3c_xmalloc((size_t)H3C_UDP_BATCH * slot);
  for (int i = 0; i < H3C_UDP_BATCH; i++) {
    q->iov[i].iov_base = q->bufs + (size_t)i * slot;
    q->msgs[i].msg_hdr.msg_iov = &q->iov[i];
    q->msgs[i].msg_hdr.msg_iovlen = 1;
  }
  return 0;
}

void h3c_tx_free(h3c_tx_queue *q) {
  free(q->bufs);
  q->bufs = NULL;
}

int h3c_tx_flush(int fd, h3c_tx_queue *q) {
  while (q->sent < q->count) {
    int n = sendmmsg(fd, q->msgs + q->sent, q->count - q->sent, 0);
    if (n > 0) {
      q->sent += (unsigned)n;
      continue;
    }
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS))
      return 1;
    /* ICMP-reported errors and anything else: drop this datagram and go
     * on; QUIC's loss recovery treats it as lost. */
    H3C_DEBUG("send: dropping datagram: %s", strerror(errno));
    q->sent++;
  }
  q->count = q->sent = 0;
  return 0;
}

static void set_buf(int fd, int opt, int force_opt) {
  int v = H3C_SOCK_BUF;
  /* SO_*BUFFORCE passes the rmem_max/wmem_max caps when privileged. */
  if (setsockopt(fd, SOL_SOCKET, force_opt, &v, sizeof(v)) != 0)
    (void)setsockopt(fd, SOL_SOCKET, opt, &v, sizeof(v));
}

int h3c_udp_open(const struct sockaddr *peer, socklen_t peer_len,
                 struct sockaddr_storage *local, socklen_t *local_len,
                 char *err, size_t errlen) {
  int fd =
      socket(peer->sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    snprintf(err, errlen, "socket: %s", strerror(errno));
    return -1;
  }
  set_buf(fd, SO_RCVBUF, SO_RCVBUFFORCE);
  set_buf(fd, SO_SNDBUF, SO_SNDBUFFORCE);
  /* connect() lets the kernel filter foreign datagrams and saves passing
   * addresses on every send. */
  if (connect(fd, peer, peer_len) != 0) {
    snprintf(err, errlen, "connect: %s", strerror(errno));
    close(fd);
    return -1;
  }
  *local_len = sizeof(*local);
  if (getsockname(fd, (struct sockaddr *)local, local_len) != 0) {
    snprintf(err, errlen, "getsockname: %s", strerror(errno));
    close(fd);
    return -1;
  }
  return fd;
}
