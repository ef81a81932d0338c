/* UDP sockets with batched receive (recvmmsg) and send (sendmmsg): bound
 * sockets for the server, connected ones for clients (h3q-client). Sends
 * can use the kernel's segmentation offload (GSO, UDP_SEGMENT): a run of
 * same-size datagrams to one destination leaves in one sendmsg and one
 * skb chain, instead of one trip through the UDP stack per datagram.
 * Receives can take coalesced buffers (GRO, UDP_GRO) that udp_segments
 * splits into the datagrams they are made of. */
#ifndef H3Q_IO_UDP_H
#define H3Q_IO_UDP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

/* Opens a non-blocking UDP socket bound to addr:port ("::" is dual-stack)
 * with SO_REUSEPORT, so other sockets of the same user may bind the same
 * addr:port next to it. Returns the fd, or -1 with a message in err. */
int udp_open(const char *addr, uint16_t port, struct sockaddr_storage *local,
             socklen_t *local_len, char *err, size_t errlen);

/* Opens a non-blocking UDP socket connected to peer, with the same large
 * buffers as udp_open, and stores the local address the kernel chose. A
 * connected socket receives only from peer and reports ICMP errors of
 * earlier sends on receive (see udp_recv_batch_connected); send with
 * udp_batch_push(b, len, NULL, 0). Returns the fd, or -1 with a message in
 * err. */
int udp_open_connected(const struct sockaddr *peer, socklen_t peer_len,
                       struct sockaddr_storage *local, socklen_t *local_len,
                       char *err, size_t errlen);

/* The kernel's limits for one GSO send: at most 64 segments
 * (UDP_MAX_SEGMENTS), and the whole run must fit one IP packet of 64 KiB
 * with its IPv6 and UDP headers. */
#define UDP_GSO_MAX_SEGMENTS 64
#define UDP_GSO_MAX_BYTES (65535 - 40 - 8)
/* A GRO buffer holds up to 64 KiB of datagrams; smaller receive buffers
 * would truncate it. */
#define UDP_GRO_BUFFER 65535

/* A set of datagram buffers for one recvmmsg or sendmmsg call. On send,
 * msgs holds one message per GSO run (built at flush time from iov,
 * addrs and addr_lens, which describe one datagram each). */
typedef struct udp_batch {
  struct mmsghdr *msgs;
  struct iovec *iov;
  struct sockaddr_storage *addrs;
  socklen_t *addr_lens;          /* 0: no address (connected socket) */
  struct sockaddr_storage *srcs; /* source address per datagram, */
  socklen_t *src_lens;           /* 0: the kernel chooses */
  uint8_t *ctrl;                 /* one control buffer per message (cmsg) */
  uint8_t *bufs;
  size_t cap;      /* datagrams */
  size_t buf_size; /* bytes per datagram */
  size_t count;    /* filled datagrams */
  size_t sent;     /* of count, already handed to the kernel: non-zero
                      only while the socket buffer is full */
  bool gso;        /* send runs with UDP_SEGMENT; cleared for good when
                      the kernel refuses (see udp_batch_enable_gso) */
  bool gro;        /* receive with room for the kernel's UDP_GRO segment
                      size (see udp_batch_enable_gro) */
  bool single;     /* one recvmsg/sendmsg per message instead of
                      recvmmsg/sendmmsg: asked for (udp_batch_single), or
                      set for good when the kernel lacks them (ENOSYS) */
  bool pktinfo;    /* receive each datagram's destination address (see
                      udp_batch_enable_pktinfo) */
} udp_batch;

int udp_batch_init(udp_batch *b, size_t cap, size_t buf_size);

/* Makes b use one system call per message (recvmsg, sendmsg; GSO and GRO
 * still apply) instead of the batch calls. */
void udp_batch_single(udp_batch *b);

/* Sets fd's SO_RCVBUF / SO_SNDBUF to the given sizes (0 leaves one
 * alone), past the system cap when the process may (SO_*BUFFORCE), and
 * stores the sizes the kernel reports afterwards in *rcv_out, *snd_out
 * (Linux reports twice what was granted, bookkeeping included). */
void udp_set_buffer_sizes(int fd, size_t rcv, size_t snd, int *rcv_out,
                          int *snd_out);
void udp_batch_free(udp_batch *b);

/* Sends from b to fd group datagrams into GSO runs when the kernel
 * supports UDP_SEGMENT on fd (Linux >= 4.18). When a GSO send is refused
 * later (EIO from a device without checksum offload, EINVAL, ENOPROTOOPT)
 * the run is sent again datagram by datagram and b stays without GSO.
 * Returns whether GSO is on. */
bool udp_batch_enable_gso(udp_batch *b, int fd);

/* Asks the kernel to coalesce datagrams received on fd (UDP_GRO, Linux
 * >= 5.0) and prepares b, whose buffers must hold UDP_GRO_BUFFER bytes, to
 * receive the segment size with each buffer; read b's messages with
 * udp_segments. Returns whether GRO is on (false: nothing changed). */
bool udp_batch_enable_gro(udp_batch *b, int fd);

/* Asks the kernel for each received datagram's destination address
 * (IP_PKTINFO; IPV6_RECVPKTINFO too when family is AF_INET6), read with
 * udp_msg_local_addr: a socket bound to a wildcard address learns which
 * of the host's addresses the peer wrote to. Returns whether it is on. */
bool udp_batch_enable_pktinfo(udp_batch *b, int fd, int family);

/* The destination address of received message h, with the socket's port
 * (network byte order), as an address of the socket's family (IPv4 on an
 * IPv6 socket is IPv4-mapped). False when h carries none. */
bool udp_msg_local_addr(const struct msghdr *h, int family, uint16_t port,
                        struct sockaddr_storage *out, socklen_t *len);

/* The datagrams of one received message: the message itself, or with GRO
 * several of the segment size the kernel reported (the last may be
 * shorter). */
typedef struct udp_segments {
  uint8_t *next;
  size_t left; /* bytes not yet returned */
  size_t seg;  /* bytes per datagram */
} udp_segments;

/* Starts on message i of a batch filled by udp_recv_batch*. */
void udp_segments_init(udp_segments *s, udp_batch *b, size_t i);

/* Stores the next datagram in *data, *len; false when there is none. */
bool udp_segments_next(udp_segments *s, uint8_t **data, size_t *len);

/* How many queued datagrams from index first on make one GSO run: same
 * destination and the same length as the first, except that the last may
 * be shorter; at most UDP_GSO_MAX_SEGMENTS and UDP_GSO_MAX_BYTES. 1 without
 * GSO, 0 when first is past the queue. Exposed for tests. */
size_t udp_batch_run_length(const udp_batch *b, size_t first);

static inline uint8_t *udp_batch_buf(udp_batch *b, size_t i) {
  return b->bufs + i * b->buf_size;
}

/* Receives up to b->cap datagrams; returns how many (0 when none are
 * waiting) or -1 on a socket error. Lengths are in msgs[i].msg_len. */
int udp_recv_batch(int fd, udp_batch *b);

/* Like udp_recv_batch, reading at most max datagrams (1..b->cap; 0 or
 * more than b->cap mean b->cap): a caller that bounds the work per read. */
int udp_recv_batch_upto(int fd, udp_batch *b, size_t max);

/* Like udp_recv_batch, for a socket opened with udp_open_connected, where
 * the kernel reports ICMP errors of earlier sends (port or host
 * unreachable, EMSGSIZE) on receive. Those are skipped, as they are
 * unauthenticated and QUIC's timers bound a dead peer anyway; the errno of
 * the last one is stored in *icmp_errno (left alone when there was none)
 * for callers that want to fail fast. */
int udp_recv_batch_connected(int fd, udp_batch *b, int *icmp_errno);

/* Bytes the kernel holds in fd's receive queue (datagrams not read yet,
 * counted with its per-datagram overhead, as SO_RCVBUF is), in *bytes.
 * False where the kernel cannot tell (no SO_MEMINFO: not Linux, or older
 * than 4.6). */
bool udp_rx_queued(int fd, size_t *bytes);

/* Queues datagram slot b->count (already written into its buffer) with
 * length len to addr; addr may be NULL (addr_len 0) on a connected
 * socket. */
void udp_batch_push(udp_batch *b, size_t len, const struct sockaddr *addr,
                    socklen_t addr_len);

/* Sends the datagram queued last from src (IP_PKTINFO / IPV6_PKTINFO;
 * for sockets bound to a wildcard address). Datagrams from different
 * sources never share a GSO run. */
void udp_batch_set_source(udp_batch *b, const struct sockaddr *src,
                          socklen_t src_len);

/* Sends the queued datagrams without waiting; callers watch the fd for
 * writability when it is full. Returns 0 when all were sent (the batch is
 * empty again), 1 when the socket buffer is full (EAGAIN, ENOBUFS): the
 * rest stays queued (b->sent counts those handed over; more may still be
 * pushed while count < cap) and the next call, once the fd is writable,
 * goes on from there. Datagrams refused for another reason are dropped
 * (QUIC treats them as lost). Never blocks. */
int udp_flush_nowait(int fd, udp_batch *b);

#endif
