/* UDP sockets with batched receive (recvmmsg) and send (sendmmsg). */
#ifndef H3Q_IO_UDP_H
#define H3Q_IO_UDP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

/* Opens a non-blocking UDP socket bound to addr:port ("::" is dual-stack).
 * Returns the fd, or -1 with a message in err. */
int udp_open(const char *addr, uint16_t port, struct sockaddr_storage *local,
             socklen_t *local_len, char *err, size_t errlen);

/* A set of datagram buffers for one recvmmsg or sendmmsg call. */
typedef struct udp_batch {
  struct mmsghdr *msgs;
  struct iovec *iov;
  struct sockaddr_storage *addrs;
  uint8_t *bufs;
  size_t cap;      /* datagrams */
  size_t buf_size; /* bytes per datagram */
  size_t count;    /* filled datagrams */
} udp_batch;

int udp_batch_init(udp_batch *b, size_t cap, size_t buf_size);
void udp_batch_free(udp_batch *b);

static inline uint8_t *udp_batch_buf(udp_batch *b, size_t i) {
  return b->bufs + i * b->buf_size;
}

/* Receives up to b->cap datagrams; returns how many (0 when none are
 * waiting) or -1 on a socket error. Lengths are in msgs[i].msg_len. */
int udp_recv_batch(int fd, udp_batch *b);

/* Queues datagram slot b->count (already written into its buffer) with
 * length len to addr. */
void udp_batch_push(udp_batch *b, size_t len, const struct sockaddr *addr,
                    socklen_t addr_len);

/* Sends every queued datagram, then empties the batch. When the socket
 * buffer is full it waits for room briefly (bounded); datagrams that still
 * do not fit are dropped (QUIC treats them as lost). Returns the number of
 * datagrams dropped. */
size_t udp_flush(int fd, udp_batch *b);

#endif
