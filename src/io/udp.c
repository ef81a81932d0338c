#include "io/udp.h"

#include "io/fd.h"
#include "util/addr.h"
#include "util/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef __linux__
#include <linux/sock_diag.h> /* SK_MEMINFO_* for SO_MEMINFO */
#endif

/* Large kernel buffers absorb bursts of a full congestion window. */
#define UDP_SOCKET_BUFFER (8 * 1024 * 1024)
/* Room for the control messages of one message: UDP_SEGMENT (uint16_t)
 * and a source address (IP_PKTINFO or IPV6_PKTINFO) on send; UDP_GRO
 * (int) and the destination address (either pktinfo; a dual-stack socket
 * may give both kinds) on receive. */
#define UDP_CTRL_SIZE                                                          \
  (CMSG_SPACE(sizeof(int)) + CMSG_SPACE(sizeof(struct in_pktinfo)) +           \
   CMSG_SPACE(sizeof(struct in6_pktinfo)))

static void set_buffer_to(int fd, int opt, int force_opt, int size) {
  /* SO_*BUFFORCE passes the net.core.{r,w}mem_max caps when privileged;
   * otherwise best effort, capped by the kernel. */
  if (setsockopt(fd, SOL_SOCKET, force_opt, &size, sizeof size) != 0)
    setsockopt(fd, SOL_SOCKET, opt, &size, sizeof size);
}

static void set_buffers(int fd) {
  set_buffer_to(fd, SO_RCVBUF, SO_RCVBUFFORCE, UDP_SOCKET_BUFFER);
  set_buffer_to(fd, SO_SNDBUF, SO_SNDBUFFORCE, UDP_SOCKET_BUFFER);
}

void udp_set_buffer_sizes(int fd, size_t rcv, size_t snd, int *rcv_out,
                          int *snd_out) {
  /* The configuration caps both at 1 GiB, well inside int. */
  if (rcv)
    set_buffer_to(fd, SO_RCVBUF, SO_RCVBUFFORCE, (int)rcv);
  if (snd)
    set_buffer_to(fd, SO_SNDBUF, SO_SNDBUFFORCE, (int)snd);
  socklen_t len = sizeof *rcv_out;
  if (getsockopt(fd, SOL_SOCKET, SO_RCVBUF, rcv_out, &len) != 0)
    *rcv_out = -1;
  len = sizeof *snd_out;
  if (getsockopt(fd, SOL_SOCKET, SO_SNDBUF, snd_out, &len) != 0)
    *snd_out = -1;
}

void udp_batch_single(udp_batch *b) {
  b->single = true;
}

/* The batch calls are missing (ENOSYS: an old kernel, a seccomp filter or
 * an emulator): one system call per message from now on. */
static bool mmsg_missing(udp_batch *b, int err) {
  if (err != ENOSYS || b->single)
    return false;
  LOG_WARN("udp: recvmmsg/sendmmsg unavailable (%s); one datagram per "
           "system call",
           strerror(err));
  b->single = true;
  return true;
}

/* recvmmsg's contract with recvmsg: messages received, or -1 (errno)
 * when the first one failed. */
static int recv_single(int fd, udp_batch *b, size_t max) {
  size_t i = 0;
  for (; i < max; i++) {
    ssize_t n = recvmsg(fd, &b->msgs[i].msg_hdr, 0);
    if (n < 0)
      return i ? (int)i : -1; /* a later error recurs on the next call */
    b->msgs[i].msg_len = (unsigned)n;
  }
  return (int)i;
}

/* sendmmsg's contract with sendmsg, likewise. */
static int send_single(int fd, struct mmsghdr *msgs, size_t count) {
  size_t i = 0;
  for (; i < count; i++) {
    ssize_t n = sendmsg(fd, &msgs[i].msg_hdr, 0);
    if (n < 0)
      return i ? (int)i : -1;
    msgs[i].msg_len = (unsigned)n;
  }
  return (int)i;
}

/* With SO_REUSEPORT, bind() to port 0 may pick a port that another
 * SO_REUSEPORT socket of this user already holds (the kernel only avoids
 * ports held by a socket without the option), so two servers started on
 * "any port" could end up sharing one. A plain socket bound to port 0 gets
 * a port nobody holds; the caller then binds its own socket to it. */
static uint16_t pick_unshared_port(const struct sockaddr_storage *local,
                                   socklen_t local_len) {
  int fd = socket(local->ss_family, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_UDP);
  if (fd < 0)
    return 0;
  struct sockaddr_storage got = *local;
  socklen_t got_len = local_len;
  uint16_t port = 0;
  if (bind(fd, (const struct sockaddr *)local, local_len) == 0 &&
      getsockname(fd, (struct sockaddr *)&got, &got_len) == 0)
    port = ntohs(got.ss_family == AF_INET6
                     ? ((struct sockaddr_in6 *)&got)->sin6_port
                     : ((struct sockaddr_in *)&got)->sin_port);
  close(fd);
  return port;
}

/* Binds a new server socket to local; -1 with errno on failure. */
static int bind_shared(const struct sockaddr_storage *local,
                       socklen_t local_len) {
  int fd = socket(local->ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                  IPPROTO_UDP);
  if (fd < 0)
    return -1;
  int off = 0;
  if (local->ss_family == AF_INET6)
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
  set_buffers(fd);
  /* Every worker of a server binds its own socket to the same address and
   * port, and so does a new process next to one that drains; the kernel
   * spreads datagrams over them by their 4-tuple. */
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  if (bind(fd, (const struct sockaddr *)local, local_len) != 0)
    return fd_close_failed(fd);
  return fd;
}

/* Tries for a port-0 bind: another program may take the picked port
 * between the probe and our bind. */
#define ANY_PORT_ATTEMPTS 8

int udp_open(const char *addr, uint16_t port, struct sockaddr_storage *local,
             socklen_t *local_len, char *err, size_t errlen) {
  if (!addr_from_ip(addr, port, local, local_len)) {
    snprintf(err, errlen, "bind_addr: '%s' is not an IP address", addr);
    return -1;
  }
  int fd = -1;
  for (int i = 0; i < (port ? 1 : ANY_PORT_ATTEMPTS) && fd < 0; i++) {
    if (!port) {
      uint16_t picked = pick_unshared_port(local, *local_len);
      if (!addr_from_ip(addr, picked, local, local_len) || !picked)
        break;
    }
    fd = bind_shared(local, *local_len);
    if (fd < 0 && errno != EADDRINUSE)
      break;
  }
  if (fd < 0) {
    snprintf(err, errlen, "port: cannot bind %s:%u: %s", addr, port,
             strerror(errno));
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
  b->addr_lens = calloc(cap, sizeof *b->addr_lens);
  b->srcs = calloc(cap, sizeof *b->srcs);
  b->src_lens = calloc(cap, sizeof *b->src_lens);
  b->ctrl = calloc(cap, UDP_CTRL_SIZE);
  b->bufs = malloc(cap * buf_size);
  if (!b->msgs || !b->iov || !b->addrs || !b->addr_lens || !b->srcs ||
      !b->src_lens || !b->ctrl || !b->bufs) {
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
  free(b->addr_lens);
  free(b->srcs);
  free(b->src_lens);
  free(b->ctrl);
  free(b->bufs);
  memset(b, 0, sizeof *b);
}

static void prepare_recv(udp_batch *b, size_t max) {
  for (size_t i = 0; i < max; i++) {
    struct msghdr *h = &b->msgs[i].msg_hdr;
    b->iov[i].iov_base = udp_batch_buf(b, i);
    b->iov[i].iov_len = b->buf_size;
    memset(h, 0, sizeof *h);
    h->msg_iov = &b->iov[i];
    h->msg_iovlen = 1;
    h->msg_name = &b->addrs[i];
    h->msg_namelen = sizeof b->addrs[i];
    if (b->gro || b->pktinfo) {
      h->msg_control = b->ctrl + i * UDP_CTRL_SIZE;
      h->msg_controllen = UDP_CTRL_SIZE;
    }
  }
}

bool udp_batch_enable_gro(udp_batch *b, int fd) {
#ifdef UDP_GRO
  int on = 1;
  if (b->buf_size >= UDP_GRO_BUFFER &&
      setsockopt(fd, SOL_UDP, UDP_GRO, &on, sizeof on) == 0)
    b->gro = true;
#endif
  return b->gro;
}

bool udp_batch_enable_pktinfo(udp_batch *b, int fd, int family) {
  int on = 1;
  /* A dual-stack IPv6 socket reports IPv4 datagrams with IP_PKTINFO. */
  bool v4 = setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &on, sizeof on) == 0;
  bool v6 = family == AF_INET6 &&
            setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &on, sizeof on) == 0;
  b->pktinfo = family == AF_INET6 ? v6 : v4;
  return b->pktinfo;
}

/* Fills *out with the destination of an IPv4 datagram (on either socket
 * family: a dual-stack socket's peers are IPv4-mapped, and so is this). */
static void local_from_in_pktinfo(const struct in_pktinfo *pi, int family,
                                  uint16_t port, struct sockaddr_storage *out,
                                  socklen_t *len) {
  memset(out, 0, sizeof *out);
  if (family == AF_INET6) {
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)out;
    v6->sin6_family = AF_INET6;
    v6->sin6_port = port;
    v6->sin6_addr.s6_addr[10] = v6->sin6_addr.s6_addr[11] = 0xff;
    memcpy(&v6->sin6_addr.s6_addr[12], &pi->ipi_addr, 4);
    *len = sizeof *v6;
    return;
  }
  struct sockaddr_in *v4 = (struct sockaddr_in *)out;
  v4->sin_family = AF_INET;
  v4->sin_port = port;
  v4->sin_addr = pi->ipi_addr;
  *len = sizeof *v4;
}

bool udp_msg_local_addr(const struct msghdr *h, int family, uint16_t port,
                        struct sockaddr_storage *out, socklen_t *len) {
  if (!h->msg_control)
    return false;
  for (struct cmsghdr *cm = CMSG_FIRSTHDR(h); cm;
       cm = CMSG_NXTHDR((struct msghdr *)h, cm)) {
    if (cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_PKTINFO &&
        cm->cmsg_len >= CMSG_LEN(sizeof(struct in_pktinfo))) {
      struct in_pktinfo pi;
      memcpy(&pi, CMSG_DATA(cm), sizeof pi);
      local_from_in_pktinfo(&pi, family, port, out, len);
      return true;
    }
    if (cm->cmsg_level == IPPROTO_IPV6 && cm->cmsg_type == IPV6_PKTINFO &&
        cm->cmsg_len >= CMSG_LEN(sizeof(struct in6_pktinfo))) {
      struct in6_pktinfo pi;
      memcpy(&pi, CMSG_DATA(cm), sizeof pi);
      struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)out;
      memset(out, 0, sizeof *out);
      v6->sin6_family = AF_INET6;
      v6->sin6_port = port;
      v6->sin6_addr = pi.ipi6_addr;
      *len = sizeof *v6;
      return true;
    }
  }
  return false;
}

/* The GRO segment size in h's control data, or 0 when there is none. */
static size_t gro_segment_size(const struct msghdr *h) {
#ifdef UDP_GRO
  if (!h->msg_control)
    return 0;
  for (struct cmsghdr *cm = CMSG_FIRSTHDR(h); cm;
       cm = CMSG_NXTHDR((struct msghdr *)h, cm)) {
    int size;
    if (cm->cmsg_level != SOL_UDP || cm->cmsg_type != UDP_GRO ||
        cm->cmsg_len < CMSG_LEN(sizeof size))
      continue;
    memcpy(&size, CMSG_DATA(cm), sizeof size);
    return size > 0 ? (size_t)size : 0;
  }
#endif
  return 0;
}

void udp_segments_init(udp_segments *s, udp_batch *b, size_t i) {
  s->next = udp_batch_buf(b, i);
  s->left = b->msgs[i].msg_len;
  s->seg = b->gro ? gro_segment_size(&b->msgs[i].msg_hdr) : 0;
  if (s->seg == 0 || s->seg > s->left)
    s->seg = s->left; /* one datagram */
}

bool udp_segments_next(udp_segments *s, uint8_t **data, size_t *len) {
  if (s->left == 0)
    return false;
  size_t n = s->left < s->seg ? s->left : s->seg;
  *data = s->next;
  *len = n;
  s->next += n;
  s->left -= n;
  return true;
}

/* Errors a connected socket reports for ICMP messages about earlier
 * sends. */
static bool is_icmp_error(int e) {
  return e == ECONNREFUSED || e == EHOSTUNREACH || e == ENETUNREACH ||
         e == EHOSTDOWN || e == ENETDOWN || e == EMSGSIZE;
}

/* With icmp_errno NULL, ICMP errors are socket errors like any other. */
static int recv_batch(int fd, udp_batch *b, size_t max, int *icmp_errno) {
  if (max == 0 || max > b->cap)
    max = b->cap;
  prepare_recv(b, max);
  for (;;) {
    int n = b->single ? recv_single(fd, b, max)
                      : recvmmsg(fd, b->msgs, (unsigned)max, 0, NULL);
    if (n >= 0)
      return n;
    if (errno == EINTR || mmsg_missing(b, errno))
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
  return recv_batch(fd, b, b->cap, NULL);
}

int udp_recv_batch_upto(int fd, udp_batch *b, size_t max) {
  return recv_batch(fd, b, max, NULL);
}

int udp_recv_batch_connected(int fd, udp_batch *b, int *icmp_errno) {
  return recv_batch(fd, b, b->cap, icmp_errno);
}

bool udp_rx_queued(int fd, size_t *bytes) {
#if defined(__linux__) && defined(SO_MEMINFO)
  uint32_t mem[SK_MEMINFO_VARS];
  socklen_t len = sizeof mem;
  if (getsockopt(fd, SOL_SOCKET, SO_MEMINFO, mem, &len) != 0 ||
      len < (socklen_t)((SK_MEMINFO_RMEM_ALLOC + 1) * sizeof mem[0]))
    return false;
  *bytes = mem[SK_MEMINFO_RMEM_ALLOC];
  return true;
#else
  (void)fd;
  (void)bytes;
  return false;
#endif
}

void udp_batch_push(udp_batch *b, size_t len, const struct sockaddr *addr,
                    socklen_t addr_len) {
  size_t i = b->count++;
  b->src_lens[i] = 0;
  b->addr_lens[i] = addr ? addr_len : 0;
  if (addr)
    memcpy(&b->addrs[i], addr, addr_len);
  b->iov[i].iov_base = udp_batch_buf(b, i);
  b->iov[i].iov_len = len;
}

void udp_batch_set_source(udp_batch *b, const struct sockaddr *src,
                          socklen_t src_len) {
  if (b->count == 0 || src_len > sizeof b->srcs[0])
    return;
  memcpy(&b->srcs[b->count - 1], src, src_len);
  b->src_lens[b->count - 1] = src_len;
}

bool udp_batch_enable_gso(udp_batch *b, int fd) {
  b->gso = false;
#ifdef UDP_SEGMENT
  /* Kernels without UDP GSO do not know the option at all. */
  int size = 0;
  socklen_t len = sizeof size;
  b->gso = getsockopt(fd, SOL_UDP, UDP_SEGMENT, &size, &len) == 0;
#endif
  return b->gso;
}

/* Byte-wise: the addresses come from one place (quiche or the caller), so
 * equal destinations are equal bytes; a false "different" only ends a run
 * early. */
static bool same_destination(const udp_batch *b, size_t i, size_t j) {
  return b->addr_lens[i] == b->addr_lens[j] &&
         memcmp(&b->addrs[i], &b->addrs[j], b->addr_lens[i]) == 0 &&
         b->src_lens[i] == b->src_lens[j] &&
         memcmp(&b->srcs[i], &b->srcs[j], b->src_lens[i]) == 0;
}

size_t udp_batch_run_length(const udp_batch *b, size_t first) {
  if (first >= b->count)
    return 0;
  size_t seg = b->iov[first].iov_len;
  size_t max = seg ? UDP_GSO_MAX_BYTES / seg : 0;
  if (max > UDP_GSO_MAX_SEGMENTS)
    max = UDP_GSO_MAX_SEGMENTS;
  if (!b->gso || max < 2)
    return 1;
  size_t n = 1;
  while (first + n < b->count && n < max) {
    size_t len = b->iov[first + n].iov_len;
    if (len == 0 || len > seg || !same_destination(b, first, first + n))
      break;
    n++;
    if (len < seg)
      break; /* the kernel cuts at seg: a short datagram must be last */
  }
  return n;
}

/* Appends a control message to h (its buffer holds UDP_CTRL_SIZE bytes,
 * zeroed, and msg_controllen counts what is used). */
static void add_cmsg(struct msghdr *h, int level, int type, const void *data,
                     size_t len) {
  struct cmsghdr *cm =
      (struct cmsghdr *)((uint8_t *)h->msg_control + h->msg_controllen);
  cm->cmsg_level = level;
  cm->cmsg_type = type;
  cm->cmsg_len = CMSG_LEN(len);
  memcpy(CMSG_DATA(cm), data, len);
  h->msg_controllen += CMSG_SPACE(len);
}

/* Tells the kernel to cut message h's payload into datagrams of seg bytes. */
static void set_segment_size(struct msghdr *h, size_t seg) {
#ifdef UDP_SEGMENT
  uint16_t size = (uint16_t)seg;
  add_cmsg(h, SOL_UDP, UDP_SEGMENT, &size, sizeof size);
#endif
}

/* Sends message h from src (a local address of a socket bound to a
 * wildcard): the answer leaves from the address the peer wrote to. */
static void set_source(struct msghdr *h, const struct sockaddr_storage *src) {
  if (src->ss_family == AF_INET6) {
    const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)src;
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0,    0,
                                       0, 0, 0, 0, 0xff, 0xff};
    if (memcmp(v6->sin6_addr.s6_addr, mapped, sizeof mapped) == 0) {
      struct in_pktinfo pi = {0};
      memcpy(&pi.ipi_spec_dst, &v6->sin6_addr.s6_addr[12], 4);
      add_cmsg(h, IPPROTO_IP, IP_PKTINFO, &pi, sizeof pi);
      return;
    }
    struct in6_pktinfo pi = {.ipi6_addr = v6->sin6_addr};
    add_cmsg(h, IPPROTO_IPV6, IPV6_PKTINFO, &pi, sizeof pi);
  } else if (src->ss_family == AF_INET) {
    struct in_pktinfo pi = {0};
    pi.ipi_spec_dst = ((const struct sockaddr_in *)src)->sin_addr;
    add_cmsg(h, IPPROTO_IP, IP_PKTINFO, &pi, sizeof pi);
  }
}

/* Message k carries the n datagrams from index first on, gathered from
 * their own buffers (GSO takes any iovec layout). */
static void fill_send_msg(udp_batch *b, size_t k, size_t first, size_t n) {
  struct msghdr *h = &b->msgs[k].msg_hdr;
  memset(h, 0, sizeof *h);
  h->msg_iov = &b->iov[first];
  h->msg_iovlen = n;
  h->msg_name = b->addr_lens[first] ? &b->addrs[first] : NULL;
  h->msg_namelen = b->addr_lens[first];
  if (n < 2 && !b->src_lens[first])
    return;
  memset(b->ctrl + k * UDP_CTRL_SIZE, 0, UDP_CTRL_SIZE);
  h->msg_control = b->ctrl + k * UDP_CTRL_SIZE;
  h->msg_controllen = 0;
  if (n > 1)
    set_segment_size(h, b->iov[first].iov_len);
  if (b->src_lens[first])
    set_source(h, &b->srcs[first]);
}

/* Builds one message per run for the datagrams from b->sent on. Returns
 * how many messages. */
static size_t build_send_msgs(udp_batch *b) {
  size_t k = 0;
  for (size_t i = b->sent; i < b->count; k++) {
    size_t n = udp_batch_run_length(b, i);
    fill_send_msg(b, k, i, n);
    i += n;
  }
  return k;
}

/* A GSO send the kernel refused as such (no checksum offload on the
 * device: EIO; no UDP GSO or unsuitable socket: EINVAL, ENOPROTOOPT):
 * turns GSO off for good, so the caller resends datagram by datagram. */
static bool gso_refused(udp_batch *b, const struct msghdr *h, int err) {
  if (h->msg_iovlen < 2 || (err != EIO && err != EINVAL && err != ENOPROTOOPT))
    return false;
  LOG_WARN("udp: the kernel refused GSO (%s); sending datagrams one by one",
           strerror(err));
  b->gso = false;
  return true;
}

/* ENOBUFS counts as full: the caller retries on writability rather than
 * losing the rest of the batch. */
static bool socket_full(int err) {
  return err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS;
}

/* Hands b's datagrams from b->sent on to the kernel, a GSO run per
 * message. Returns 0 when all are sent, -1 when the socket buffer is full.
 * A message refused for another reason
 * (e.g. an ICMP error of an earlier send on a connected socket) is
 * dropped; QUIC treats its datagrams as lost. */
static int send_pending(int fd, udp_batch *b) {
  size_t total = build_send_msgs(b);
  for (size_t k = 0; k < total;) {
    int n = b->single ? send_single(fd, b->msgs + k, total - k)
                      : sendmmsg(fd, b->msgs + k, (unsigned)(total - k), 0);
    for (int j = 0; j < n; j++, k++)
      b->sent += b->msgs[k].msg_hdr.msg_iovlen;
    if (n > 0 || (n < 0 && (errno == EINTR || mmsg_missing(b, errno))))
      continue;
    if (n < 0 && socket_full(errno))
      return -1;
    if (n < 0 && gso_refused(b, &b->msgs[k].msg_hdr, errno)) {
      total = build_send_msgs(b); /* at most once: GSO is off now */
      k = 0;
      continue;
    }
    LOG_DEBUG("udp: dropping %zu datagram(s): %s",
              (size_t)b->msgs[k].msg_hdr.msg_iovlen,
              n < 0 ? strerror(errno) : "not taken");
    b->sent += b->msgs[k++].msg_hdr.msg_iovlen;
  }
  return 0;
}

int udp_flush_nowait(int fd, udp_batch *b) {
  if (send_pending(fd, b) != 0)
    return 1;
  b->count = b->sent = 0;
  return 0;
}
