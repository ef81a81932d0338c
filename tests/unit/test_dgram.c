/* QUIC DATAGRAM queues (src/dgram) on an in-memory session
 * (tests/unit/h3_pipe.h): delivery to the connection-scoped receiver,
 * the oldest datagram dropped and counted when either queue is full, the
 * payload limit both ways, and a peer without datagrams. */
#include "dgram/dgram.h"
#include "h3_pipe.h"

#define QUEUE 4

typedef struct seen {
  int count;
  uint8_t first[QUEUE * 4]; /* first byte of each datagram, in order */
  bool echo;
} seen;

static dgram_ctx g_dgram;

static void on_datagram(h3_session *h, const uint8_t *p, size_t len,
                        void *user) {
  seen *s = user;
  if (s->count < (int)sizeof s->first)
    s->first[s->count] = len ? p[0] : 0;
  s->count++;
  if (s->echo)
    CHECK(dgram_send(&g_dgram, h, NULL, 0, p, len) == H3Q_OK);
}

/* A pipe whose client and server both enable datagrams (server queues of
 * QUEUE), with the dgram layer on the session. */
static void setup(pipe_ctx *p, seen *s, size_t max_payload, bool client_dgram) {
  CHECK(pipe_init(p) == 0);
  if (client_dgram)
    quiche_config_enable_dgram(p->ccfg, true, 64, 64);
  quiche_config_enable_dgram(p->scfg, true, QUEUE, QUEUE);
  h3q_config pub;
  h3q_config_init(&pub);
  pub.enable_dgram = true;
  pub.dgram_max_payload_size = max_payload;
  CHECK(dgram_ctx_init(&g_dgram, &p->cfg, &pub, &p->stats) == H3Q_OK);
  g_dgram.on_datagram = on_datagram;
  g_dgram.user = s;
  pipe_start(p);
  pipe_client_control(p, NULL);
  pipe_run(p);
  CHECK(p->h != NULL);
}

static void teardown(pipe_ctx *p) {
  pipe_free(p);
  dgram_ctx_free(&g_dgram);
}

static void client_send(pipe_ctx *p, uint8_t first, size_t len) {
  uint8_t tmp[2048];
  memset(tmp, first, sizeof tmp);
  CHECK(quiche_conn_dgram_send(p->client, tmp, len) == (ssize_t)len);
}

/* Reads what the client received; returns the count, firsts in out. */
static int client_recv(pipe_ctx *p, uint8_t *out, size_t cap) {
  uint8_t tmp[2048];
  int n = 0;
  for (int i = 0; i < 64; i++) {
    ssize_t r = quiche_conn_dgram_recv(p->client, tmp, sizeof tmp);
    if (r < 0)
      break;
    if ((size_t)n < cap)
      out[n] = r ? tmp[0] : 0;
    n++;
  }
  return n;
}

static void test_echo(void) {
  pipe_ctx p;
  seen s = {.echo = true};
  setup(&p, &s, 65527, true);
  for (uint8_t i = 1; i <= 3; i++)
    client_send(&p, i, 100 * i);
  pipe_run(&p);
  CHECK(s.count == 3);
  CHECK(s.first[0] == 1 && s.first[1] == 2 && s.first[2] == 3);
  uint8_t got[8];
  CHECK(client_recv(&p, got, sizeof got) == 3);
  CHECK(got[0] == 1 && got[2] == 3);
  CHECK(p.stats.datagrams_received == 3 && p.stats.datagrams_sent == 3);
  CHECK(p.stats.datagrams_send_dropped == 0);
  CHECK(p.stats.datagrams_recv_dropped == 0);
  CHECK(pipe_close_code(&p) == -1);
  teardown(&p);
}

/* Ten arrive in one flight; the server's queue holds four: the six oldest
 * are dropped and counted, the newest four delivered in order. */
static void test_recv_queue_full(void) {
  pipe_ctx p;
  seen s = {0};
  setup(&p, &s, 65527, true);
  for (uint8_t i = 1; i <= 10; i++)
    client_send(&p, i, 50);
  pipe_run(&p);
  CHECK(s.count == QUEUE);
  CHECK(s.first[0] == 7 && s.first[3] == 10);
  CHECK(p.stats.datagrams_received == QUEUE);
  CHECK(p.stats.datagrams_recv_dropped == 10 - QUEUE);
  teardown(&p);
}

/* Ten queued before any packet leaves: each send past four drops the
 * oldest queued one; every call reports its own datagram queued. */
static void test_send_queue_full(void) {
  pipe_ctx p;
  seen s = {0};
  setup(&p, &s, 65527, true);
  for (uint8_t i = 1; i <= 10; i++) {
    uint8_t d[40];
    memset(d, i, sizeof d);
    CHECK(dgram_send(&g_dgram, p.h, NULL, 0, d, sizeof d) == H3Q_OK);
  }
  CHECK(p.stats.datagrams_sent == 10);
  CHECK(p.stats.datagrams_send_dropped == 10 - QUEUE);
  pipe_run(&p);
  uint8_t got[16];
  CHECK(client_recv(&p, got, sizeof got) == QUEUE);
  CHECK(got[0] == 7 && got[3] == 10);
  teardown(&p);
}

static void test_payload_limit(void) {
  pipe_ctx p;
  seen s = {0};
  setup(&p, &s, 100, true);
  client_send(&p, 1, 100);
  client_send(&p, 2, 101);
  client_send(&p, 3, 1000);
  pipe_run(&p);
  CHECK(s.count == 1 && s.first[0] == 1);
  CHECK(p.stats.datagrams_too_large == 2);
  uint8_t d[101] = {0};
  CHECK(dgram_max_payload(&g_dgram, p.h, 0) == 100);
  CHECK(dgram_max_payload(&g_dgram, p.h, 1) == 99);
  CHECK(dgram_send(&g_dgram, p.h, NULL, 0, d, 101) == H3Q_ETOOLARGE);
  CHECK(dgram_send(&g_dgram, p.h, NULL, 0, d, 100) == H3Q_OK);
  CHECK(pipe_close_code(&p) == -1);
  teardown(&p);
}

/* A client that never announced max_datagram_frame_size gets none. */
static void test_peer_without_datagrams(void) {
  pipe_ctx p;
  seen s = {0};
  setup(&p, &s, 65527, false);
  CHECK(dgram_max_payload(&g_dgram, p.h, 0) == H3Q_ESTATE);
  CHECK(dgram_send(&g_dgram, p.h, NULL, 0, "x", 1) == H3Q_ESTATE);
  CHECK(p.stats.datagrams_sent == 0);
  teardown(&p);
}

/* Without a receiver, datagrams are dropped and counted. */
static void test_no_receiver(void) {
  pipe_ctx p;
  seen s = {0};
  setup(&p, &s, 65527, true);
  g_dgram.on_datagram = NULL;
  client_send(&p, 1, 10);
  pipe_run(&p);
  CHECK(p.stats.datagrams_received == 1);
  CHECK(p.stats.datagrams_unroutable == 1);
  teardown(&p);
}

int main(void) {
  test_echo();
  test_recv_queue_full();
  test_send_queue_full();
  test_payload_limit();
  test_peer_without_datagrams();
  test_no_receiver();
  return check_report("test_dgram");
}
