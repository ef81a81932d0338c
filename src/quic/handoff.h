/* Steering between the endpoints that share one UDP port (SO_REUSEPORT):
 * the server processes of a restart (one drains, one is new) and the
 * workers of a process. Each endpoint has an identity, generation << 5 |
 * worker, stamped into every connection ID it issues (at
 * ep->cid_identity_offset), so that any endpoint can tell whose
 * connection a datagram belongs to:
 *
 * - eBPF (io/reuseport_bpf.h): the kernel delivers the datagram to the
 *   socket its identity byte names. One map of sockets serves the port:
 *   the first process creates it, later ones get it passed from a running
 *   one, and each puts its own sockets in.
 * - Handoff: a datagram that still lands on an endpoint that does not
 *   have its connection (no eBPF, the hash moved after a restart, another
 *   IP) is passed over a local socket (io/local_sock.h) named
 *   "h3q/PORT/GEN/WORKER" to the endpoint it names, with the client's
 *   address and the local address it was sent to. The owner handles it as
 *   if its own socket had read it and answers from its own socket (same
 *   port, so the client sees no difference). One hop at most.
 *
 * The generation is claimed at startup by binding worker 0's name of the
 * lowest free generation, so a new process next to a draining one gets
 * another generation, and their connection IDs differ. */
#ifndef H3Q_QUIC_HANDOFF_H
#define H3Q_QUIC_HANDOFF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "h3q.h"

#define HANDOFF_GENERATIONS 8
#define HANDOFF_WORKERS 32
#define HANDOFF_IDENTITIES 256
/* Connections other endpoints opened to this one: one per peer endpoint. */
#define HANDOFF_MAX_INBOUND HANDOFF_IDENTITIES
/* What precedes a handed-off datagram: magic and version, kind, the
 * lengths of two socket addresses and the addresses (28 bytes each, the
 * kernel's sockaddr_in or sockaddr_in6). */
#define HANDOFF_HEADER_LEN 64

static inline uint8_t handoff_identity(unsigned generation, unsigned worker) {
  return (uint8_t)((generation % HANDOFF_GENERATIONS) << 5 |
                   (worker % HANDOFF_WORKERS));
}

static inline unsigned handoff_generation_of(uint8_t identity) {
  return identity >> 5;
}

static inline unsigned handoff_worker_of(uint8_t identity) {
  return identity & (HANDOFF_WORKERS - 1);
}

struct quic_endpoint;

typedef struct handoff {
  bool ready;      /* reset: the fds below are valid (-1 or open) */
  uint16_t port;   /* host order */
  int listen_fd;   /* our name; -1 when none */
  int draining_fd; /* marker "h3q/PORT/GEN/draining"; -1 when not */
  /* The listening socket and the accepted ones sit in one epoll set, so
   * the event loop watches one descriptor however many peers there are. */
  int set_fd;
  bool watched;                /* set_fd is on the loop */
  int out[HANDOFF_IDENTITIES]; /* connections to peers, -1 when none */
  int in[HANDOFF_MAX_INBOUND]; /* connections from peers, -1 when free */
  uint8_t *rx;                 /* HANDOFF_HEADER_LEN + one datagram */
  size_t rx_cap;
  /* While draining: the endpoint new connections go to (identity), or -1;
   * chosen again after HANDOFF_TARGET_TTL_NS or a failure. */
  int live_target;
  uint64_t live_checked_ns;
  /* Connection attempts to identities we have no connection to: a
   * token bucket, so that a flood of datagrams naming absent servers
   * costs no system call each. */
  double probe_tokens;
  uint64_t probe_last_ns;
  /* eBPF steering (-1 when off): the port's socket map, our program. */
  int map_fd, prog_fd;
  bool ebpf;
  bool warned_inbound_full;
} handoff;

typedef enum handoff_result {
  HANDOFF_SENT,     /* on its way to the owner */
  HANDOFF_DROPPED,  /* the owner exists but its socket is full: dropped */
  HANDOFF_NO_OWNER, /* no endpoint holds that identity: handle it here */
} handoff_result;

/* Puts h in its closed state (no sockets), before anything can fail. */
void handoff_reset(handoff *h);

/* Opens ep's local socket (ep->fd is bound, ep->local and ep->worker
 * are set). Without first (worker 0): claims the lowest free generation
 * of the port (sets ep->generation), then steering by eBPF per
 * cfg->steering: the port's map (from a running process, else a new
 * one), the program, attached to the group. With first (the worker-0
 * endpoint of the same process, opened before): takes its generation,
 * binds this worker's name, and puts ep's socket into first's map (the
 * group's program is already attached). Returns H3Q_OK, H3Q_EIO with a
 * message in err (every generation taken, a socket error, eBPF required
 * but refused) or H3Q_ENOMEM. */
int handoff_open(struct quic_endpoint *ep, const h3q_config *cfg,
                 const struct quic_endpoint *first, char *err, size_t errlen);

/* Watches the local socket on ep's loop (after the loop exists). Returns
 * 0 or -1. */
int handoff_watch(struct quic_endpoint *ep);

/* Closes every socket and program; unwatches them first when the loop
 * still exists. */
void handoff_close(struct quic_endpoint *ep);

/* Sends the datagram (len bytes, from the client at `from`, to ep->rx_to)
 * to the endpoint with this identity. */
handoff_result handoff_send(struct quic_endpoint *ep, uint8_t identity,
                            const uint8_t *buf, size_t len,
                            const struct sockaddr *from, socklen_t from_len);

/* While draining: sends a datagram that would open a connection to an
 * endpoint of the port that does not drain. */
handoff_result handoff_send_to_live(struct quic_endpoint *ep,
                                    const uint8_t *buf, size_t len,
                                    const struct sockaddr *from,
                                    socklen_t from_len);

/* ep drains: marks its generation so that others do not send it new
 * connections. */
void handoff_mark_draining(struct quic_endpoint *ep);

/* Writes the handoff header into out (HANDOFF_HEADER_LEN bytes). False
 * when an address is too long. Exposed for tests. */
bool handoff_header_write(uint8_t *out, const struct sockaddr *peer,
                          socklen_t peer_len, const struct sockaddr *local,
                          socklen_t local_len);

/* Reads a header written by handoff_header_write; the addresses are
 * converted to family (IPv4 as IPv4-mapped on AF_INET6). False when the
 * header is not one, or an address cannot be expressed in family. */
bool handoff_header_read(const uint8_t *in, size_t len, int family,
                         struct sockaddr_storage *peer, socklen_t *peer_len,
                         struct sockaddr_storage *local, socklen_t *local_len);

#endif
