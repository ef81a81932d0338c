/* UDP for the client: one connected, non-blocking socket per QUIC
 * connection; datagrams are read with recvmmsg into a shared arena and
 * written with sendmmsg from a per-connection queue. No per-packet malloc. */
#ifndef H3C_UDP_H
#define H3C_UDP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Datagrams per recvmmsg/sendmmsg call. */
#define H3C_UDP_BATCH 32
/* Receive slots are large enough for any UDP payload: a peer that ignores
 * our max_udp_payload_size must not get its packets truncated silently. */
#define H3C_RX_SLOT 65536

typedef struct h3c_rx_batch {
  struct mmsghdr msgs[H3C_UDP_BATCH];
  struct iovec iov[H3C_UDP_BATCH];
  uint8_t *bufs; /* H3C_UDP_BATCH * H3C_RX_SLOT bytes */
} h3c_rx_batch;

h3c_rx_batch *h3c_rx_batch_new(void);
void h3c_rx_batch_free(h3c_rx_batch *b);

/* Reads up to H3C_UDP_BATCH datagrams. Returns the count (0 when nothing is
 * pending) or -1 on an error other than EAGAIN/ICMP errors (errno set).
 * ICMP errors (ECONNREFUSED etc.) are skipped, as they are unauthenticated
 * and the overall deadline bounds a dead peer anyway; *icmp_errno records
 * the last one for callers that want to fail fast. */
int h3c_udp_recv(int fd, h3c_rx_batch *b, int *icmp_errno);

static inline uint8_t *h3c_rx_data(h3c_rx_batch *b, int i, size_t *len) {
  *len = b->msgs[i].msg_len;
  return b->bufs + (size_t)i * H3C_RX_SLOT;
}

typedef struct h3c_tx_queue {
  struct mmsghdr msgs[H3C_UDP_BATCH];
  struct iovec iov[H3C_UDP_BATCH];
  uint8_t *bufs;  /* H3C_UDP_BATCH * slot bytes */
  size_t slot;    /* max UDP payload */
  unsigned count; /* datagrams queued */
  unsigned sent;  /* of which already handed to the kernel */
} h3c_tx_queue;

int h3c_tx_init(h3c_tx_queue *q, size_t slot);
void h3c_tx_free(h3c_tx_queue *q);

/* Buffer for the next datagram, or NULL when the queue is full. */
static inline uint8_t *h3c_tx_slot(h3c_tx_queue *q) {
  return q->count < H3C_UDP_BATCH ? q->bufs + (size_t)q->count * q->slot : NULL;
}

static inline void h3c_tx_commit(h3c_tx_queue *q, size_t len) {
  q->iov[q->count].iov_len = len;
  q->count++;
}

/* Sends the queued datagrams. Returns 0 when the queue is empty afterwards,
 * 1 when the socket buffer is full (the rest stays queued: wait for
 * EV_WRITE). Hard errors drop the batch (QUIC recovers as from loss). */
int h3c_tx_flush(int fd, h3c_tx_queue *q);

/* Opens a non-blocking UDP socket connected to peer with large buffers and
 * stores its local address. Returns the fd, or -1 with a message in err. */
int h3c_udp_open(const struct sockaddr *peer, socklen_t peer_len,
                 struct sockaddr_storage *local, socklen_t *local_len,
                 char *err, size_t errlen);

#endif
