/* Unit tests for steering between servers that share a port
 * (quic/handoff.h): the identity byte, the handoff header, the claim of
 * generations, and the connection IDs a real server issues. A quiche
 * client on a loopback UDP socket talks to the server's endpoint, whose
 * functions are called directly (no event loop runs). */
#include "check.h"
#include "core/server.h"
#include "io/local_sock.h"
#include "io/udp.h"
#include "quic/endpoint.h"
#include "quic/handoff.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <quiche.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static char cert[96], key[96];

static void test_identity_byte(void) {
  CHECK(handoff_identity(0, 0) == 0);
  CHECK(handoff_identity(1, 0) == 32);
  CHECK(handoff_identity(7, 31) == 255);
  for (unsigned g = 0; g < HANDOFF_GENERATIONS; g++)
    for (unsigned w = 0; w < HANDOFF_WORKERS; w++) {
      uint8_t id = handoff_identity(g, w);
      CHECK(handoff_generation_of(id) == g && handoff_worker_of(id) == w);
    }
}

static struct sockaddr_in v4(const char *ip, uint16_t port) {
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
  inet_pton(AF_INET, ip, &a.sin_addr);
  return a;
}

static void test_header(void) {
  uint8_t h[HANDOFF_HEADER_LEN];
  struct sockaddr_in peer = v4("192.0.2.7", 5000), local = v4("127.0.0.1", 443);
  CHECK(handoff_header_write(h, (struct sockaddr *)&peer, sizeof peer,
                             (struct sockaddr *)&local, sizeof local));
  struct sockaddr_storage p, l;
  socklen_t pl, ll;
  CHECK(handoff_header_read(h, sizeof h, AF_INET, &p, &pl, &l, &ll));
  CHECK(pl == sizeof peer && memcmp(&p, &peer, sizeof peer) == 0);
  CHECK(ll == sizeof local && memcmp(&l, &local, sizeof local) == 0);
  /* To a dual-stack socket, IPv4 becomes IPv4-mapped IPv6. */
  CHECK(handoff_header_read(h, sizeof h, AF_INET6, &p, &pl, &l, &ll));
  const struct sockaddr_in6 *m = (const struct sockaddr_in6 *)&p;
  CHECK(pl == sizeof *m && m->sin6_family == AF_INET6 &&
        IN6_IS_ADDR_V4MAPPED(&m->sin6_addr) && m->sin6_port == htons(5000) &&
        memcmp(&m->sin6_addr.s6_addr[12], &peer.sin_addr, 4) == 0);
  /* ... and back to an IPv4 socket; a real IPv6 address cannot. */
  uint8_t h6[HANDOFF_HEADER_LEN];
  CHECK(handoff_header_write(h6, (struct sockaddr *)&p, pl,
                             (struct sockaddr *)&l, ll));
  struct sockaddr_storage p4, l4;
  socklen_t p4l, l4l;
  CHECK(handoff_header_read(h6, sizeof h6, AF_INET, &p4, &p4l, &l4, &l4l));
  CHECK(p4l == sizeof peer && memcmp(&p4, &peer, sizeof peer) == 0);
  struct sockaddr_in6 real = {.sin6_family = AF_INET6};
  inet_pton(AF_INET6, "2001:db8::1", &real.sin6_addr);
  CHECK(handoff_header_write(h6, (struct sockaddr *)&real, sizeof real,
                             (struct sockaddr *)&l, ll));
  CHECK(!handoff_header_read(h6, sizeof h6, AF_INET, &p4, &p4l, &l4, &l4l));
  /* Not a header: short, another version, a bad length. */
  CHECK(!handoff_header_read(h, sizeof h - 1, AF_INET, &p, &pl, &l, &ll));
  h[3]++;
  CHECK(!handoff_header_read(h, sizeof h, AF_INET, &p, &pl, &l, &ll));
  h[3]--;
  h[5] = 200;
  CHECK(!handoff_header_read(h, sizeof h, AF_INET, &p, &pl, &l, &ll));
}

static h3q_server *server_with_workers(uint32_t port, bool retry,
                                       h3q_steering mode, uint32_t workers,
                                       char *err, size_t errlen) {
  h3q_config cfg;
  h3q_config_init(&cfg);
  cfg.workers = workers;
  cfg.bind_addr = "127.0.0.1";
  cfg.port = port;
  cfg.cert_path = cert;
  cfg.key_path = key;
  cfg.enable_retry = retry;
  cfg.steering = mode;
  static const uint8_t secret[32] = "shared by the servers of a port";
  cfg.secret = secret;
  cfg.secret_len = sizeof secret;
  h3q_server *srv = NULL;
  h3q_server_new(&cfg, &srv, err, errlen);
  return srv;
}

static h3q_server *server_with(uint32_t port, bool retry, h3q_steering mode,
                               char *err, size_t errlen) {
  return server_with_workers(port, retry, mode, 1, err, errlen);
}

static h3q_server *server_on(uint32_t port, bool retry, char *err,
                             size_t errlen) {
  /* no eBPF needed here */
  return server_with(port, retry, H3Q_STEERING_HANDOFF, err, errlen);
}

/* Eight servers on one port get generations 0..7; a ninth is refused
 * with a message that says why; a freed generation is claimed again. */
static void test_generation_claim(void) {
  char err[256] = "";
  h3q_server *s[HANDOFF_GENERATIONS + 1] = {0};
  s[0] = server_on(0, false, err, sizeof err);
  CHECK(s[0] != NULL);
  if (!s[0])
    return;
  uint16_t port = h3q_server_port(s[0]);
  for (int i = 1; i < HANDOFF_GENERATIONS; i++) {
    s[i] = server_on(port, false, err, sizeof err);
    CHECK(s[i] && s[i]->workers[0].ep.generation == i);
  }
  CHECK(s[0]->workers[0].ep.generation == 0);
  s[HANDOFF_GENERATIONS] = server_on(port, false, err, sizeof err);
  CHECK(s[HANDOFF_GENERATIONS] == NULL);
  CHECK(strstr(err, "all 8 server generations") != NULL);
  h3q_server_free(s[3]);
  s[3] = server_on(port, false, err, sizeof err);
  CHECK(s[3] && s[3]->workers[0].ep.generation == 3);
  for (int i = 0; i <= HANDOFF_GENERATIONS; i++)
    h3q_server_free(s[i]);
}

/* A quiche client on its own UDP socket. */
typedef struct client {
  int fd;
  struct sockaddr_in addr, server;
  quiche_config *cfg;
  quiche_conn *q;
} client;

static bool client_open(client *c, uint16_t server_port) {
  memset(c, 0, sizeof *c);
  c->fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  c->addr = v4("127.0.0.1", 0);
  socklen_t len = sizeof c->addr;
  if (c->fd < 0 ||
      bind(c->fd, (struct sockaddr *)&c->addr, sizeof c->addr) != 0 ||
      getsockname(c->fd, (struct sockaddr *)&c->addr, &len) != 0)
    return false;
  c->server = v4("127.0.0.1", server_port);
  c->cfg = quiche_config_new(QUICHE_PROTOCOL_VERSION);
  quiche_config_set_application_protos(c->cfg, (const uint8_t *)"\x02h3", 3);
  quiche_config_set_initial_max_data(c->cfg, 1 << 20);
  quiche_config_set_initial_max_streams_uni(c->cfg, 10);
  quiche_config_set_max_idle_timeout(c->cfg, 10000);
  quiche_config_set_active_connection_id_limit(c->cfg, 8);
  quiche_config_verify_peer(c->cfg, false);
  uint8_t scid[16];
  randombytes_buf(scid, sizeof scid);
  c->q = quiche_connect(
      "localhost", scid, sizeof scid, (struct sockaddr *)&c->addr,
      sizeof c->addr, (struct sockaddr *)&c->server, sizeof c->server, c->cfg);
  return c->q != NULL;
}

static void client_close(client *c) {
  if (c->q)
    quiche_conn_free(c->q);
  if (c->cfg)
    quiche_config_free(c->cfg);
  if (c->fd >= 0)
    close(c->fd);
}

/* The client's next datagram, or 0. */
static size_t client_datagram(client *c, uint8_t *out, size_t cap) {
  quiche_send_info si;
  ssize_t n = quiche_conn_send(c->q, out, cap, &si);
  return n > 0 ? (size_t)n : 0;
}

/* Feeds what the server sent to the client's socket into the client. */
static int client_read(client *c, int wait_ms) {
  uint8_t in[65536];
  int got = 0;
  struct pollfd p = {.fd = c->fd, .events = POLLIN};
  while (got < 256 && poll(&p, 1, got ? 0 : wait_ms) == 1) {
    struct sockaddr_storage from;
    socklen_t from_len = sizeof from;
    ssize_t n =
        recvfrom(c->fd, in, sizeof in, 0, (struct sockaddr *)&from, &from_len);
    if (n <= 0)
      break;
    quiche_recv_info ri = {(struct sockaddr *)&from, from_len,
                           (struct sockaddr *)&c->addr, sizeof c->addr};
    quiche_conn_recv(c->q, in, (size_t)n, &ri);
    got++;
  }
  return got;
}

/* One round: the client's datagrams into the endpoint (as if read from
 * its socket), the endpoint's processing, its answers into the client. */
static void round_trip(client *c, quic_endpoint *ep) {
  uint8_t pkt[1500];
  size_t n;
  while ((n = client_datagram(c, pkt, sizeof pkt)) > 0)
    endpoint_handle_datagram(ep, pkt, n, (struct sockaddr *)&c->addr,
                             sizeof c->addr);
  endpoint_process(ep);
  client_read(c, 100);
}

static int spare_cids(const conn *c, uint8_t identity, int *wrong) {
  int used = 0;
  for (int i = 0; i < CONN_SCID_SLOTS; i++) {
    if (!c->spare_used[i])
      continue;
    used++;
    if (c->spare[i][c->ep->cid_identity_offset] != identity)
      (*wrong)++;
  }
  return used;
}

/* A server of generation 1 (another holds 0): its first SCID and every
 * spare one carry identity 32. */
static void test_issued_cids_carry_identity(void) {
  char err[256] = "";
  h3q_server *first = server_on(0, false, err, sizeof err);
  CHECK(first != NULL);
  if (!first)
    return;
  h3q_server *srv = server_on(h3q_server_port(first), false, err, sizeof err);
  CHECK(srv && srv->workers[0].ep.generation == 1);
  client c;
  if (srv && client_open(&c, h3q_server_port(srv))) {
    for (int i = 0; i < 20 && !(quiche_conn_is_established(c.q) &&
                                srv->workers[0].ep.all &&
                                srv->workers[0].ep.all->spare_used[0]);
         i++)
      round_trip(&c, &srv->workers[0].ep);
    CHECK(quiche_conn_is_established(c.q));
    conn *sc = srv->workers[0].ep.all;
    CHECK(sc != NULL);
    if (sc) {
      CHECK(sc->scid[srv->workers[0].ep.cid_identity_offset] ==
            handoff_identity(1, 0));
      int wrong = 0;
      CHECK(spare_cids(sc, handoff_identity(1, 0), &wrong) > 0);
      CHECK(wrong == 0);
    }
    client_close(&c);
  }
  h3q_server_free(srv);
  h3q_server_free(first);
}

/* With Retry, the token's connection ID came from the endpoint that sent
 * the Retry. Another generation sharing the secret that is handed the
 * client's next Initial accepts it: the identity byte is not its own. */
static void test_retry_from_another_generation(void) {
  char err[256] = "";
  h3q_server *a = server_on(0, true, err, sizeof err);
  CHECK(a != NULL);
  if (!a)
    return;
  h3q_server *b = server_on(h3q_server_port(a), true, err, sizeof err);
  client c;
  if (b && client_open(&c, h3q_server_port(a))) {
    round_trip(&c,
               &a->workers[0].ep); /* Initial -> Retry from a (generation 0) */
    /* one Retry per Initial datagram (a large ClientHello takes two) */
    CHECK(a->workers[0].stats.retries_sent >= 1 &&
          a->workers[0].ep.all == NULL);
    uint8_t pkt[1500];
    size_t n = client_datagram(&c, pkt, sizeof pkt); /* with the token */
    CHECK(n >= 1200);
    endpoint_handle_handed_in(&b->workers[0].ep, pkt, n,
                              (struct sockaddr *)&c.addr, sizeof c.addr,
                              (struct sockaddr *)&c.server, sizeof c.server);
    CHECK(b->workers[0].ep.all != NULL);
    CHECK(b->workers[0].stats.packets_handed_in == 1);
    CHECK(b->workers[0].stats.packets_dropped_by[H3Q_DROP_INVALID_TOKEN] == 0);
    if (b->workers[0].ep.all)
      CHECK(b->workers[0].ep.all->scid[b->workers[0].ep.cid_identity_offset] ==
            handoff_identity(0, 0));
    client_close(&c);
  }
  h3q_server_free(b);
  h3q_server_free(a);
}

/* Datagrams naming identity id, from 8 source ports, that arrive at fd. */
static int steered_to(int fd, const struct sockaddr_in *to, size_t offset,
                      uint8_t id) {
  uint8_t pkt[64], in[64];
  memset(pkt, 0x5a, sizeof pkt);
  pkt[0] = 0x40;
  pkt[1 + offset] = id;
  for (int i = 0; i < 8; i++) {
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sendto(s, pkt, sizeof pkt, 0, (const struct sockaddr *)to, sizeof *to);
    close(s);
  }
  int got = 0;
  struct pollfd p = {.fd = fd, .events = POLLIN};
  while (got < 100 && poll(&p, 1, 100) == 1 &&
         recv(fd, in, sizeof in, MSG_DONTWAIT) > 0)
    got++;
  return got;
}

/* A second worker's endpoint opened with the first one's: same
 * generation, its own name, and (with eBPF) its socket in the same map,
 * so datagrams naming it reach its socket. */
static void test_second_worker(void) {
  char err[256] = "";
  h3q_server *srv = server_with(0, false, H3Q_STEERING_AUTO, err, sizeof err);
  CHECK(srv != NULL);
  if (!srv)
    return;
  uint16_t port = h3q_server_port(srv);
  h3q_server_stats stats = {0};
  quic_endpoint w;
  memset(&w, 0, sizeof w);
  w.stats = &stats;
  w.worker = 1;
  w.cid_identity_offset = srv->workers[0].ep.cid_identity_offset;
  w.fd = udp_open("127.0.0.1", port, &w.local, &w.local_len, err, sizeof err);
  h3q_config cfg;
  h3q_config_init(&cfg);
  CHECK(w.fd >= 0 &&
        handoff_open(&w, &cfg, &srv->workers[0].ep, err, sizeof err) == 0);
  CHECK(w.generation == srv->workers[0].ep.generation);
  CHECK(w.handoff.ebpf == srv->workers[0].ep.handoff.ebpf);
  char name[64];
  snprintf(name, sizeof name, "h3q/%u/%u/1", port, w.generation);
  int probe = local_sock_connect(name);
  CHECK(probe >= 0);
  close(probe);
  if (srv->workers[0].ep.handoff.ebpf) {
    struct sockaddr_in to = v4("127.0.0.1", port);
    CHECK(steered_to(w.fd, &to, w.cid_identity_offset, endpoint_identity(&w)) ==
          8);
    CHECK(steered_to(srv->workers[0].ep.fd, &to, w.cid_identity_offset,
                     endpoint_identity(&srv->workers[0].ep)) == 8);
  } else {
    printf("test_second_worker: no eBPF here; steering not checked\n");
  }
  handoff_close(&w);
  close(w.fd);
  h3q_server_free(srv);
}

/* A server of two workers next to one of generation 0: both workers get
 * generation 1, their own identities, and (with eBPF) the datagrams that
 * name them. (The first server's loop does not run here, so it cannot
 * pass its map: the second makes its own, which holds its workers.) */
static void test_server_workers(void) {
  char err[256] = "";
  h3q_server *first = server_with(0, false, H3Q_STEERING_AUTO, err, sizeof err);
  CHECK(first != NULL);
  if (!first)
    return;
  uint16_t port = h3q_server_port(first);
  h3q_server *srv =
      server_with_workers(port, false, H3Q_STEERING_AUTO, 2, err, sizeof err);
  CHECK(srv != NULL && srv->nworkers == 2);
  if (srv && srv->nworkers == 2) {
    quic_endpoint *w0 = &srv->workers[0].ep, *w1 = &srv->workers[1].ep;
    CHECK(w0->generation == 1 && w1->generation == 1);
    CHECK(endpoint_identity(w0) == handoff_identity(1, 0));
    CHECK(endpoint_identity(w1) == handoff_identity(1, 1));
    CHECK(w1->handoff.ebpf == w0->handoff.ebpf);
    struct sockaddr_in to = v4("127.0.0.1", port);
    if (w0->handoff.ebpf) {
      CHECK(steered_to(w1->fd, &to, w1->cid_identity_offset,
                       endpoint_identity(w1)) == 8);
      CHECK(steered_to(w0->fd, &to, w0->cid_identity_offset,
                       endpoint_identity(w0)) == 8);
    }
  }
  h3q_server_free(srv);
  h3q_server_free(first);
}

int main(void) {
  if (sodium_init() < 0)
    return 1;
  char dir[] = "/tmp/h3q-steer-XXXXXX";
  if (!mkdtemp(dir))
    return 1;
  snprintf(cert, sizeof cert, "%s/cert.pem", dir);
  snprintf(key, sizeof key, "%s/key.pem", dir);
  CHECK(h3q_generate_self_signed_cert(cert, key, "localhost", 1) == H3Q_OK);
  test_identity_byte();
  test_header();
  test_generation_claim();
  test_issued_cids_carry_identity();
  test_retry_from_another_generation();
  test_second_worker();
  test_server_workers();
  unlink(cert);
  unlink(key);
  rmdir(dir);
  return check_report("test_steering");
}
