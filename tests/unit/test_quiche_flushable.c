/* quiche's send queue after a late ACK
 * (deps/quiche/patches/30-stale-flushable-stream.patch): a stream whose
 * bytes were queued for retransmission by a probe timeout, and then acked
 * in their original packets before all of them were resent, must not keep
 * other streams from being sent.
 *
 * A real quiche client and server pass packets through memory (no sockets);
 * the server's packets are held back and handed over late, after its probe
 * timeout ran: the same order every run (the wait only has to reach the
 * timer quiche reports). The streams use h3q's response priority (urgency
 * 3, not incremental). Unpatched quiche 0.30.0 leaves stream 0 at the front
 * of its send queue with nothing to send, and stream 4's bytes never leave:
 * the stall seen in test_impaired.py's corruption test. */
#include <netinet/in.h>
#include <quiche.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "h3q.h"
#include "quiche_pair.h"

/* quiche's urgency for RFC 9218 urgency 3, as src/h3/response_send.c sets
 * it (QUICHE_URGENCY_OFFSET there). */
#define RESPONSE_URGENCY (124 + 3)
/* Server packets held in flight, at most. */
#define HELD_MAX 16
/* A probe packet smaller than the packet whose bytes it resends. */
#define PROBE_LEN 1000

typedef struct peers {
  quiche_config *ccfg, *scfg;
  quiche_conn *client, *server;
  struct sockaddr_in caddr, saddr;
} peers;

typedef struct packet {
  uint8_t data[1500];
  size_t len;
} packet;

static void deliver(quiche_conn *to, struct sockaddr_in *to_addr,
                    struct sockaddr_in *from_addr, uint8_t *pkt, size_t len) {
  quiche_recv_info ri = {(struct sockaddr *)from_addr, sizeof *from_addr,
                         (struct sockaddr *)to_addr, sizeof *to_addr};
  CHECK(quiche_conn_recv(to, pkt, len, &ri) == (ssize_t)len);
}

/* Moves every packet a wants to send into b; returns how many. */
static int pump(quiche_conn *a, struct sockaddr_in *a_addr, quiche_conn *b,
                struct sockaddr_in *b_addr) {
  uint8_t pkt[1500];
  quiche_send_info si;
  int moved = 0;
  for (int i = 0; i < 64; i++) {
    ssize_t n = quiche_conn_send(a, pkt, sizeof pkt, &si);
    if (n <= 0)
      break;
    deliver(b, b_addr, a_addr, pkt, (size_t)n);
    moved++;
  }
  return moved;
}

/* Runs both ways until neither end has anything to send. */
static void pump_both(peers *p) {
  for (int round = 0; round < 16; round++) {
    int moved = pump(p->client, &p->caddr, p->server, &p->saddr);
    moved += pump(p->server, &p->saddr, p->client, &p->caddr);
    if (moved == 0)
      return;
  }
}

static int peers_start(peers *p) {
  char dir[] = "/tmp/h3q-flushable-XXXXXX", cert[64], key[64];
  if (!mkdtemp(dir))
    return -1;
  snprintf(cert, sizeof cert, "%s/cert.pem", dir);
  snprintf(key, sizeof key, "%s/key.pem", dir);
  int rc = h3q_generate_self_signed_cert(cert, key, "localhost", 1);
  if (rc == 0) {
    p->scfg = pipe_quiche_config(cert, key);
    p->ccfg = pipe_quiche_config(NULL, NULL);
  }
  unlink(cert);
  unlink(key);
  rmdir(dir);
  if (rc != 0)
    return -1;
  p->caddr = pipe_addr(40000);
  p->saddr = pipe_addr(4433);
  uint8_t ccid[16] = {1, 2, 3}, scid[16] = {9, 8, 7};
  p->client = quiche_connect(
      "localhost", ccid, sizeof ccid, (struct sockaddr *)&p->caddr,
      sizeof p->caddr, (struct sockaddr *)&p->saddr, sizeof p->saddr, p->ccfg);
  p->server = quiche_accept(
      scid, sizeof scid, NULL, 0, (struct sockaddr *)&p->saddr, sizeof p->saddr,
      (struct sockaddr *)&p->caddr, sizeof p->caddr, p->scfg);
  if (!p->client || !p->server)
    return -1;
  pump_both(p);
  return quiche_conn_is_established(p->client) &&
                 quiche_conn_is_established(p->server)
             ? 0
             : -1;
}

static void peers_free(peers *p) {
  if (p->client)
    quiche_conn_free(p->client);
  if (p->server)
    quiche_conn_free(p->server);
  if (p->ccfg)
    quiche_config_free(p->ccfg);
  if (p->scfg)
    quiche_config_free(p->scfg);
}

/* The client opens streams 0 and 4 (a request byte each); the server
 * gives them h3q's response priority. */
static void open_streams(peers *p) {
  uint64_t code = 0;
  CHECK(quiche_conn_stream_send(p->client, 0, (const uint8_t *)"a", 1, true,
                                &code) == 1);
  CHECK(quiche_conn_stream_send(p->client, 4, (const uint8_t *)"b", 1, true,
                                &code) == 1);
  pump_both(p);
  CHECK(quiche_conn_stream_priority(p->server, 0, RESPONSE_URGENCY, false) ==
        0);
  CHECK(quiche_conn_stream_priority(p->server, 4, RESPONSE_URGENCY, false) ==
        0);
}

/* Collects the server's packets without delivering them. */
static size_t hold_server_packets(peers *p, packet *held) {
  size_t n = 0;
  quiche_send_info si;
  while (n < HELD_MAX) {
    ssize_t len =
        quiche_conn_send(p->server, held[n].data, sizeof held[n].data, &si);
    if (len <= 0)
      break;
    held[n++].len = (size_t)len;
  }
  return n;
}

/* Bytes the client can read from stream id, up to max. */
static size_t client_reads(peers *p, uint64_t id, size_t max) {
  uint8_t buf[4096];
  size_t total = 0;
  bool fin = false;
  for (int i = 0; i < 64 && total < max; i++) {
    uint64_t code = 0;
    ssize_t n =
        quiche_conn_stream_recv(p->client, id, buf, sizeof buf, &fin, &code);
    if (n <= 0)
      break;
    total += (size_t)n;
  }
  return total;
}

/* Sleeps until the server's timer is due and runs it; returns false when
 * no loss timer was armed (only the idle timeout, 30 s). */
static bool fire_server_timer(peers *p) {
  uint64_t ns = quiche_conn_timeout_as_nanos(p->server);
  if (ns >= 10ull * 1000 * 1000 * 1000)
    return false;
  ns += 1000 * 1000; /* past the deadline, not on it */
  struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
  nanosleep(&ts, NULL);
  quiche_conn_on_timeout(p->server);
  return true;
}

static size_t server_pto_count(peers *p) {
  quiche_path_stats ps;
  if (quiche_conn_path_stats(p->server, 0, &ps) != 0)
    return 0;
  return ps.total_pto_count;
}

static void test_late_ack_does_not_block_next_stream(void) {
  peers p = {0};
  CHECK(peers_start(&p) == 0);
  open_streams(&p);

  /* Stream 0 writes its last bytes for now (within the initial congestion
   * window); the packets are held in flight. */
  static uint8_t body[5000];
  memset(body, 'x', sizeof body);
  uint64_t code = 0;
  CHECK(quiche_conn_stream_send(p.server, 0, body, sizeof body, false, &code) ==
        (ssize_t)sizeof body);
  packet *held = calloc(HELD_MAX, sizeof *held);
  size_t n = hold_server_packets(&p, held);
  CHECK(n >= 2);

  /* No ACK comes in time: the probe timeout queues the oldest packet's
   * bytes for retransmission. The probe carries only part of them (a
   * smaller packet here; an ACK frame beside them did so in the stalled
   * runs), so stream 0 stays queued with the rest. */
  CHECK(fire_server_timer(&p));
  CHECK(server_pto_count(&p) == 1);
  packet probe;
  quiche_send_info si;
  CHECK(quiche_conn_send(p.server, probe.data, PROBE_LEN, &si) > 0);

  /* Before the server sends again, every packet arrives after all: the
   * ACK covers the bytes waiting for retransmission, and stream 0 has
   * nothing left to send. */
  for (size_t i = 0; i < n; i++)
    deliver(p.client, &p.caddr, &p.saddr, held[i].data, held[i].len);
  CHECK(pump(p.client, &p.caddr, p.server, &p.saddr) > 0);
  quiche_stats st;
  quiche_conn_stats(p.server, &st);
  CHECK(st.lost == 0 && st.retrans == 1); /* the probe only */
  CHECK(client_reads(&p, 0, sizeof body) == sizeof body);

  /* Stream 4 has a response to send: it must leave now. */
  static const char reply[] = "stream 4 response";
  CHECK(quiche_conn_stream_send(p.server, 4, (const uint8_t *)reply,
                                sizeof reply, true,
                                &code) == (ssize_t)sizeof reply);
  pump_both(&p);
  CHECK(client_reads(&p, 4, sizeof reply) == sizeof reply);
  CHECK(quiche_conn_stream_finished(p.client, 4));

  free(held);
  peers_free(&p);
}

int main(void) {
  test_late_ack_does_not_block_next_stream();
  return check_report("test_quiche_flushable");
}
