#include "quic/handoff.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/local_sock.h"
#include "io/reuseport_bpf.h"
#include "quic/endpoint.h"
#include "util/clock.h"
#include "util/log.h"

#define HANDOFF_MAGIC0 'h'
#define HANDOFF_MAGIC1 '3'
#define HANDOFF_MAGIC2 'q'
/* The header layout's version: old and new processes of a restart may be
 * different builds. */
#define HANDOFF_VERSION 1
#define ADDR_FIELD 28 /* sizeof(struct sockaddr_in6) */
#define PEER_AT 8
#define LOCAL_AT (PEER_AT + ADDR_FIELD)

enum handoff_kind {
  KIND_PACKET = 1,    /* a datagram follows */
  KIND_MAP_ASK = 2,   /* "pass me the port's socket map" */
  KIND_MAP_REPLY = 3, /* the map's fd attached (none: no eBPF here) */
};

/* Largest datagram passed on (a UDP payload). */
#define HANDOFF_DATAGRAM_MAX 65536
/* Per wakeup: connections accepted and messages read per connection, so
 * one busy peer cannot starve the loop. */
#define ACCEPT_PER_WAKEUP 16
#define MESSAGES_PER_WAKEUP 64
/* Tags in the epoll set: the listening socket, else 1 + inbound slot. */
#define TAG_LISTEN 0
/* How long a draining endpoint keeps its choice of live endpoint. */
#define HANDOFF_TARGET_TTL_NS (1000u * 1000000u)
/* Connection attempts to absent identities: per second, and burst. */
#define PROBE_RATE_PER_SEC 1000.0
#define PROBE_BURST 200.0
/* How long a new process waits for a running one to pass the map. */
#define MAP_ASK_TIMEOUT_MS 500

static void name_of(char *out, size_t cap, uint16_t port, unsigned gen,
                    unsigned worker) {
  snprintf(out, cap, "h3q/%u/%u/%u", (unsigned)port, gen, worker);
}

static void draining_name(char *out, size_t cap, uint16_t port, unsigned gen) {
  snprintf(out, cap, "h3q/%u/%u/draining", (unsigned)port, gen);
}

static uint16_t port_of(const struct sockaddr_storage *ss) {
  if (ss->ss_family == AF_INET6)
    return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
  return ntohs(((const struct sockaddr_in *)ss)->sin_port);
}

/* ---------------------------------------------------------------- header */

bool handoff_header_write(uint8_t *out, const struct sockaddr *peer,
                          socklen_t peer_len, const struct sockaddr *local,
                          socklen_t local_len) {
  if (peer_len > ADDR_FIELD || local_len > ADDR_FIELD)
    return false;
  memset(out, 0, HANDOFF_HEADER_LEN);
  out[0] = HANDOFF_MAGIC0;
  out[1] = HANDOFF_MAGIC1;
  out[2] = HANDOFF_MAGIC2;
  out[3] = HANDOFF_VERSION;
  out[4] = KIND_PACKET;
  out[5] = (uint8_t)peer_len;
  out[6] = (uint8_t)local_len;
  memcpy(out + PEER_AT, peer, peer_len);
  memcpy(out + LOCAL_AT, local, local_len);
  return true;
}

/* Converts the address in field (len bytes) to family: IPv4 and IPv6
 * sockets of the same port may hand to each other. */
static bool addr_in_family(const uint8_t *field, size_t len, int family,
                           struct sockaddr_storage *out, socklen_t *out_len) {
  struct sockaddr_storage a;
  memset(&a, 0, sizeof a);
  memset(out, 0, sizeof *out);
  if (len < sizeof(sa_family_t) || len > ADDR_FIELD)
    return false;
  memcpy(&a, field, len);
  const struct sockaddr_in *v4 = (const struct sockaddr_in *)&a;
  const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)&a;
  struct sockaddr_in *o4 = (struct sockaddr_in *)out;
  struct sockaddr_in6 *o6 = (struct sockaddr_in6 *)out;
  if (a.ss_family == family &&
      len == (family == AF_INET ? sizeof *v4 : sizeof *v6)) {
    memcpy(out, &a, len);
    *out_len = (socklen_t)len;
    return true;
  }
  if (a.ss_family == AF_INET && family == AF_INET6 && len == sizeof *v4) {
    o6->sin6_family = AF_INET6;
    o6->sin6_port = v4->sin_port;
    o6->sin6_addr.s6_addr[10] = o6->sin6_addr.s6_addr[11] = 0xff;
    memcpy(&o6->sin6_addr.s6_addr[12], &v4->sin_addr, 4);
    *out_len = sizeof *o6;
    return true;
  }
  if (a.ss_family == AF_INET6 && family == AF_INET && len == sizeof *v6 &&
      IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr)) {
    o4->sin_family = AF_INET;
    o4->sin_port = v6->sin6_port;
    memcpy(&o4->sin_addr, &v6->sin6_addr.s6_addr[12], 4);
    *out_len = sizeof *o4;
    return true;
  }
  return false;
}

static bool header_ok(const uint8_t *in, size_t len) {
  return len >= HANDOFF_HEADER_LEN && in[0] == HANDOFF_MAGIC0 &&
         in[1] == HANDOFF_MAGIC1 && in[2] == HANDOFF_MAGIC2 &&
         in[3] == HANDOFF_VERSION;
}

bool handoff_header_read(const uint8_t *in, size_t len, int family,
                         struct sockaddr_storage *peer, socklen_t *peer_len,
                         struct sockaddr_storage *local, socklen_t *local_len) {
  return header_ok(in, len) && in[4] == KIND_PACKET &&
         addr_in_family(in + PEER_AT, in[5], family, peer, peer_len) &&
         addr_in_family(in + LOCAL_AT, in[6], family, local, local_len);
}

static void control_header(uint8_t *out, uint8_t kind) {
  memset(out, 0, HANDOFF_HEADER_LEN);
  out[0] = HANDOFF_MAGIC0;
  out[1] = HANDOFF_MAGIC1;
  out[2] = HANDOFF_MAGIC2;
  out[3] = HANDOFF_VERSION;
  out[4] = kind;
}

/* ---------------------------------------------------------- connections */

/* Whether one more connection attempt fits the probe budget. Beyond it
 * the identity counts as absent for this datagram (a short header gets a
 * rate-limited stateless reset, an Initial is accepted here). */
static bool take_probe(handoff *h) {
  uint64_t now = clock_now_ns();
  h->probe_tokens +=
      (double)(now - h->probe_last_ns) / 1e9 * PROBE_RATE_PER_SEC;
  if (h->probe_tokens > PROBE_BURST)
    h->probe_tokens = PROBE_BURST;
  h->probe_last_ns = now;
  if (h->probe_tokens < 1.0)
    return false;
  h->probe_tokens -= 1.0;
  return true;
}

/* Our connection to the endpoint with this identity, connected now if
 * needed. -1 with errno: ECONNREFUSED when no one holds the name (or the
 * probe budget is spent). Only a peer of our own user is trusted with
 * client addresses. */
static int peer_fd(quic_endpoint *ep, uint8_t identity) {
  handoff *h = &ep->handoff;
  if (h->out[identity] >= 0)
    return h->out[identity];
  if (!take_probe(h)) {
    errno = ECONNREFUSED;
    return -1;
  }
  char name[LOCAL_SOCK_NAME_MAX];
  name_of(name, sizeof name, h->port, handoff_generation_of(identity),
          handoff_worker_of(identity));
  int fd = local_sock_connect(name);
  if (fd < 0)
    return -1;
  uid_t uid;
  if (!local_sock_peer_uid(fd, &uid) || uid != geteuid()) {
    LOG_WARN("handoff: %s belongs to another user; not used", name);
    close(fd);
    errno = ECONNREFUSED;
    return -1;
  }
  h->out[identity] = fd;
  return fd;
}

static void close_peer(handoff *h, uint8_t identity) {
  if (h->out[identity] >= 0)
    close(h->out[identity]);
  h->out[identity] = -1;
}

static bool peer_gone(int e) {
  return e == EPIPE || e == ECONNRESET || e == ENOTCONN || e == ECONNREFUSED;
}

/* One attempt: 0 sent, 1 the owner's queue is full, -1 no owner (or a
 * dead connection, closed). */
static int send_once(quic_endpoint *ep, uint8_t identity, const uint8_t *head,
                     const uint8_t *buf, size_t len) {
  int fd = peer_fd(ep, identity);
  if (fd < 0)
    return errno == EAGAIN ? 1 : -1; /* EAGAIN: its backlog is full */
  if (local_sock_send(fd, head, HANDOFF_HEADER_LEN, buf, len, -1) == 0)
    return 0;
  if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)
    return 1;
  if (!peer_gone(errno))
    LOG_DEBUG("handoff: send to %u failed: %s", identity, strerror(errno));
  close_peer(&ep->handoff, identity);
  return -1;
}

handoff_result handoff_send(quic_endpoint *ep, uint8_t identity,
                            const uint8_t *buf, size_t len,
                            const struct sockaddr *from, socklen_t from_len) {
  handoff *h = &ep->handoff;
  uint8_t head[HANDOFF_HEADER_LEN];
  if (h->listen_fd < 0 ||
      !handoff_header_write(head, from, from_len,
                            (const struct sockaddr *)&ep->rx_to, ep->rx_to_len))
    return HANDOFF_NO_OWNER;
  /* A connection that was open may have died with its peer: one retry
   * on a fresh one (the identity may belong to a newer process now). */
  bool was_open = h->out[identity] >= 0;
  int rc = send_once(ep, identity, head, buf, len);
  if (rc < 0 && was_open)
    rc = send_once(ep, identity, head, buf, len);
  if (rc < 0)
    return HANDOFF_NO_OWNER;
  if (rc > 0)
    return HANDOFF_DROPPED;
  ep->stats->packets_handed_off++;
  return HANDOFF_SENT;
}

/* ------------------------------------------------------------- draining */

/* An endpoint of the port that does not drain: worker 0 of another
 * generation without a draining marker. */
static int choose_live(quic_endpoint *ep) {
  handoff *h = &ep->handoff;
  char name[LOCAL_SOCK_NAME_MAX];
  for (unsigned gen = 0; gen < HANDOFF_GENERATIONS; gen++) {
    if (gen == ep->generation)
      continue;
    draining_name(name, sizeof name, h->port, gen);
    uint8_t id = handoff_identity(gen, 0);
    if (!local_sock_exists(name) && peer_fd(ep, id) >= 0)
      return id;
  }
  return -1;
}

/* The choice is kept for HANDOFF_TARGET_TTL_NS, "none" too, so that a
 * flood of Initials to a draining server scans the names once a second. */
static int live_target(quic_endpoint *ep, bool fresh) {
  handoff *h = &ep->handoff;
  uint64_t now = clock_now_ns();
  if (fresh || h->live_checked_ns == 0 ||
      now - h->live_checked_ns > HANDOFF_TARGET_TTL_NS) {
    h->live_target = choose_live(ep);
    h->live_checked_ns = now;
  }
  return h->live_target;
}

handoff_result handoff_send_to_live(quic_endpoint *ep, const uint8_t *buf,
                                    size_t len, const struct sockaddr *from,
                                    socklen_t from_len) {
  handoff_result r = HANDOFF_NO_OWNER;
  /* A target that went away is replaced at once (one rescan). */
  for (int attempt = 0; attempt < 2 && r == HANDOFF_NO_OWNER; attempt++) {
    int id = live_target(ep, attempt > 0);
    if (id < 0)
      return HANDOFF_NO_OWNER;
    r = handoff_send(ep, (uint8_t)id, buf, len, from, from_len);
  }
  return r;
}

void handoff_mark_draining(quic_endpoint *ep) {
  handoff *h = &ep->handoff;
  if (h->listen_fd < 0 || h->draining_fd >= 0)
    return;
  char name[LOCAL_SOCK_NAME_MAX];
  draining_name(name, sizeof name, h->port, ep->generation);
  h->draining_fd = local_sock_mark(name); /* held by another worker: fine */
}

/* -------------------------------------------------------------- inbound */

static void close_inbound(handoff *h, size_t slot) {
  local_set_del(h->set_fd, h->in[slot]);
  close(h->in[slot]);
  h->in[slot] = -1;
}

static void accept_peers(quic_endpoint *ep) {
  handoff *h = &ep->handoff;
  for (int k = 0; k < ACCEPT_PER_WAKEUP; k++) {
    uid_t uid;
    int fd = local_sock_accept(h->listen_fd, &uid);
    if (fd < 0)
      return;
    size_t slot = 0;
    while (slot < HANDOFF_MAX_INBOUND && h->in[slot] >= 0)
      slot++;
    if (uid != geteuid() || slot == HANDOFF_MAX_INBOUND ||
        local_set_add(h->set_fd, fd, 1 + slot) != 0) {
      if (!h->warned_inbound_full)
        LOG_WARN("handoff: refused a local connection (%s)",
                 uid != geteuid() ? "another user" : "no room");
      h->warned_inbound_full = true;
      close(fd);
      continue;
    }
    h->in[slot] = fd;
  }
}

/* Answers a new process that asks for the port's socket map. */
static void reply_map(quic_endpoint *ep, int fd) {
  uint8_t head[HANDOFF_HEADER_LEN];
  control_header(head, KIND_MAP_REPLY);
  local_sock_send(fd, head, sizeof head, NULL, 0, ep->handoff.map_fd);
}

static void handle_packet(quic_endpoint *ep, size_t n) {
  handoff *h = &ep->handoff;
  struct sockaddr_storage peer, local;
  socklen_t peer_len, local_len;
  if (!handoff_header_read(h->rx, n, ep->local.ss_family, &peer, &peer_len,
                           &local, &local_len)) {
    endpoint_count_drop(ep, H3Q_DROP_HANDOFF);
    return;
  }
  endpoint_handle_handed_in(ep, h->rx + HANDOFF_HEADER_LEN,
                            n - HANDOFF_HEADER_LEN, (struct sockaddr *)&peer,
                            peer_len, (struct sockaddr *)&local, local_len);
}

/* Reads what one peer sent (bounded); false when its connection ended. */
static bool read_inbound(quic_endpoint *ep, int fd) {
  handoff *h = &ep->handoff;
  for (int k = 0; k < MESSAGES_PER_WAKEUP; k++) {
    ssize_t n = local_sock_recv(fd, h->rx, HANDOFF_HEADER_LEN,
                                h->rx + HANDOFF_HEADER_LEN,
                                h->rx_cap - HANDOFF_HEADER_LEN, NULL);
    if (n < 0 && errno == EMSGSIZE) {
      endpoint_count_drop(ep, H3Q_DROP_HANDOFF);
      continue;
    }
    if (n < 0)
      return errno == EAGAIN || errno == EWOULDBLOCK;
    if (n == 0)
      return false;
    if (!header_ok(h->rx, (size_t)n))
      endpoint_count_drop(ep, H3Q_DROP_HANDOFF);
    else if (h->rx[4] == KIND_PACKET)
      handle_packet(ep, (size_t)n);
    else if (h->rx[4] == KIND_MAP_ASK)
      reply_map(ep, fd);
  }
  return true;
}

static void on_set_readable(void *arg) {
  quic_endpoint *ep = arg;
  handoff *h = &ep->handoff;
  uint64_t tags[32];
  int n = local_set_ready(h->set_fd, tags, 32);
  for (int i = 0; i < n; i++) {
    if (tags[i] == TAG_LISTEN) {
      accept_peers(ep);
      continue;
    }
    size_t slot = (size_t)(tags[i] - 1);
    if (slot < HANDOFF_MAX_INBOUND && h->in[slot] >= 0 &&
        !read_inbound(ep, h->in[slot]))
      close_inbound(h, slot);
  }
}

/* ----------------------------------------------------------------- eBPF */

/* Milliseconds left until deadline_ns (0 when past). */
static int ms_left(uint64_t deadline_ns) {
  uint64_t now = clock_now_ns();
  return now >= deadline_ns ? 0 : (int)((deadline_ns - now) / 1000000u);
}

/* Asks the running endpoints of the port for their socket map, so that
 * one program steers for every process. -1 when none has one. A process
 * that does not answer (stopped, busy) costs MAP_ASK_TIMEOUT_MS at most
 * for all of them together. */
static int ask_for_map(quic_endpoint *ep) {
  uint64_t deadline = clock_now_ns() + MAP_ASK_TIMEOUT_MS * 1000000ull;
  for (unsigned gen = 0; gen < HANDOFF_GENERATIONS; gen++) {
    uint8_t id = handoff_identity(gen, 0);
    if (gen == ep->generation || peer_fd(ep, id) < 0)
      continue;
    uint8_t head[HANDOFF_HEADER_LEN];
    control_header(head, KIND_MAP_ASK);
    int fd = ep->handoff.out[id];
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (local_sock_send(fd, head, sizeof head, NULL, 0, -1) != 0 ||
        poll(&p, 1, ms_left(deadline)) != 1)
      continue;
    int map = -1;
    ssize_t n = local_sock_recv(fd, head, sizeof head, NULL, 0, &map);
    if (n == HANDOFF_HEADER_LEN && header_ok(head, (size_t)n) &&
        head[4] == KIND_MAP_REPLY && map >= 0)
      return map;
    if (map >= 0)
      close(map);
  }
  return -1;
}

/* Loads the program over the port's map and puts our socket in. Returns
 * 0, or -1 with errno and a reason in why. */
static int setup_ebpf(quic_endpoint *ep, const char **why) {
  handoff *h = &ep->handoff;
  char log[2048];
  h->map_fd = ask_for_map(ep);
  bool shared = h->map_fd >= 0;
  if (!shared && (h->map_fd = reuseport_bpf_map_create()) < 0)
    return *why = "map", -1;
  h->prog_fd = reuseport_bpf_prog_load(
      h->map_fd, ep->cid_identity_offset, ep->rx_split_ways,
      REUSEPORT_BPF_LONG_BASE + handoff_identity(ep->generation, 0), log,
      sizeof log);
  if (h->prog_fd < 0) {
    int e = errno;
    LOG_DEBUG("steering: the verifier said: %s", log);
    errno = e;
    return *why = "program", -1;
  }
  if (reuseport_bpf_map_set(h->map_fd, endpoint_identity(ep), ep->fd) != 0)
    return *why = "map update", -1;
  if (reuseport_bpf_attach(ep->fd, h->prog_fd) != 0)
    return *why = "attach", -1;
  LOG_INFO("steering: eBPF on port %u, generation %u (%s map)",
           (unsigned)h->port, ep->generation, shared ? "shared" : "new");
  return 0;
}

static void drop_ebpf(handoff *h) {
  if (h->prog_fd >= 0)
    close(h->prog_fd);
  if (h->map_fd >= 0)
    close(h->map_fd);
  h->prog_fd = h->map_fd = -1;
  h->ebpf = false;
}

/* Said once per process: every server of it would say the same. */
static atomic_bool ebpf_refusal_logged;

/* Another worker of the process: the socket joined the group whose
 * program `first` attached, so it only goes into the same map. */
static int join_ebpf(quic_endpoint *ep, const quic_endpoint *first,
                     const char **why) {
  handoff *h = &ep->handoff;
  if ((h->map_fd = dup(first->handoff.map_fd)) < 0)
    return *why = "map", -1;
  if (reuseport_bpf_map_set(h->map_fd, endpoint_identity(ep), ep->fd) != 0)
    return *why = "map update", -1;
  return 0;
}

static int start_ebpf(quic_endpoint *ep, const quic_endpoint *first,
                      h3q_steering mode, char *err, size_t errlen) {
  const char *why = "";
  if (mode == H3Q_STEERING_HANDOFF || (first && !first->handoff.ebpf))
    return H3Q_OK;
  if ((first ? join_ebpf(ep, first, &why) : setup_ebpf(ep, &why)) == 0) {
    ep->handoff.ebpf = true;
    return H3Q_OK;
  }
  int e = errno;
  drop_ebpf(&ep->handoff);
  if (mode == H3Q_STEERING_EBPF) {
    snprintf(err, errlen, "steering: eBPF refused (%s: %s)", why, strerror(e));
    return H3Q_EIO;
  }
  if (!atomic_exchange(&ebpf_refusal_logged, true))
    LOG_INFO("steering: no eBPF (%s: %s); datagrams that reach another "
             "server of the port are handed over",
             why, strerror(e));
  return H3Q_OK;
}

/* ------------------------------------------------------------ lifecycle */

/* Binds our name: for worker 0 the lowest free generation (the claim). */
static int claim_name(quic_endpoint *ep, char *err, size_t errlen) {
  handoff *h = &ep->handoff;
  char name[LOCAL_SOCK_NAME_MAX];
  unsigned first = ep->worker == 0 ? 0 : ep->generation;
  unsigned last = ep->worker == 0 ? HANDOFF_GENERATIONS - 1 : ep->generation;
  for (unsigned gen = first; gen <= last; gen++) {
    name_of(name, sizeof name, h->port, gen, ep->worker);
    h->listen_fd = local_sock_listen(name);
    if (h->listen_fd >= 0) {
      ep->generation = (uint8_t)gen;
      return H3Q_OK;
    }
    if (errno != EADDRINUSE)
      break;
  }
  if (errno == ENOSYS)
    return H3Q_OK; /* no abstract sockets here: one process per port */
  if (errno == EADDRINUSE)
    snprintf(err, errlen,
             "port: all %d server generations of port %u are in use "
             "(servers still draining?)",
             HANDOFF_GENERATIONS, (unsigned)h->port);
  else
    snprintf(err, errlen, "steering: local socket %s: %s", name,
             strerror(errno));
  return H3Q_EIO;
}

void handoff_reset(handoff *h) {
  memset(h, 0, sizeof *h);
  h->ready = true;
  h->listen_fd = h->draining_fd = h->set_fd = -1;
  h->map_fd = h->prog_fd = -1;
  h->live_target = -1;
  h->probe_tokens = PROBE_BURST;
  h->probe_last_ns = clock_now_ns();
  for (size_t i = 0; i < HANDOFF_IDENTITIES; i++)
    h->out[i] = -1;
  for (size_t i = 0; i < HANDOFF_MAX_INBOUND; i++)
    h->in[i] = -1;
}

int handoff_open(quic_endpoint *ep, const h3q_config *cfg,
                 const quic_endpoint *first, char *err, size_t errlen) {
  handoff *h = &ep->handoff;
  handoff_reset(h);
  h->port = port_of(&ep->local);
  if (first)
    ep->generation = first->generation;
  int rc = claim_name(ep, err, errlen);
  if (rc != H3Q_OK || h->listen_fd < 0)
    return rc;
  h->rx_cap = HANDOFF_HEADER_LEN + HANDOFF_DATAGRAM_MAX;
  if (!(h->rx = malloc(h->rx_cap)))
    return H3Q_ENOMEM;
  h->set_fd = local_set_new();
  if (h->set_fd < 0 || local_set_add(h->set_fd, h->listen_fd, TAG_LISTEN)) {
    snprintf(err, errlen, "steering: epoll: %s", strerror(errno));
    return H3Q_EIO;
  }
  LOG_DEBUG("steering: port %u generation %u worker %u", (unsigned)h->port,
            ep->generation, ep->worker);
  return start_ebpf(ep, first, cfg->steering, err, errlen);
}

int handoff_watch(quic_endpoint *ep) {
  handoff *h = &ep->handoff;
  if (h->set_fd < 0)
    return 0;
  if (ep->lo->watch_readable(ep->loop, h->set_fd, on_set_readable, ep) != 0)
    return -1;
  h->watched = true;
  return 0;
}

void handoff_close(quic_endpoint *ep) {
  handoff *h = &ep->handoff;
  if (!h->ready)
    return; /* never set up: the fields are zeros, not descriptors */
  if (h->watched && ep->loop)
    ep->lo->unwatch(ep->loop, h->set_fd);
  h->watched = false;
  for (size_t i = 0; i < HANDOFF_MAX_INBOUND; i++)
    if (h->in[i] >= 0)
      close_inbound(h, i);
  for (size_t i = 0; i < HANDOFF_IDENTITIES; i++)
    close_peer(h, (uint8_t)i);
  int fds[] = {h->listen_fd, h->draining_fd, h->set_fd};
  for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++)
    if (fds[i] >= 0)
      close(fds[i]);
  drop_ebpf(h);
  free(h->rx);
  handoff_reset(h);
}
