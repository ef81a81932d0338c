/* The shim's self-signed certificate generator: its errors, and a real
 * quiche server that loads its output completes a handshake with an
 * in-memory client (no sockets). Then NEW_TOKEN (quiche patch
 * 10-new-token): refused on a client, queued on the server, where it makes
 * a packet to send. */
#include <netinet/in.h>
#include <quiche.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include "check.h"
#include "h3q.h"
#include "quic/quiche_ext.h"
#include "quiche_pair.h"

/* Moves every packet a wants to send into b. */
static void pump(quiche_conn *a, quiche_conn *b, struct sockaddr_in *b_addr) {
  uint8_t buf[1500];
  quiche_send_info si;
  for (int i = 0; i < 64; i++) {
    ssize_t n = quiche_conn_send(a, buf, sizeof buf, &si);
    if (n <= 0)
      return;
    quiche_recv_info ri = {(struct sockaddr *)&si.from, si.from_len,
                           (struct sockaddr *)b_addr, sizeof *b_addr};
    quiche_conn_recv(b, buf, (size_t)n, &ri);
  }
}

/* Whether c has a packet to send now. */
static bool has_packet(quiche_conn *c, uint8_t *buf, size_t cap, ssize_t *n) {
  quiche_send_info si;
  *n = quiche_conn_send(c, buf, cap, &si);
  return *n > 0;
}

/* Both sides idle after the handshake; a NEW_TOKEN queued on the server is
 * what makes its next packet, and the client takes it without error. */
static void test_new_token(quiche_conn *server, quiche_conn *client,
                           struct sockaddr_in *sa, struct sockaddr_in *ca) {
  static const uint8_t token[64] = {0x4e, 1, 2, 3};
  uint8_t big[513] = {0};
  CHECK(h3qshim_conn_send_new_token(client, token, sizeof token) == -1);
  CHECK(h3qshim_conn_send_new_token(server, token, 0) == -1);
  CHECK(h3qshim_conn_send_new_token(server, big, sizeof big) == -1);
  CHECK(h3qshim_conn_send_new_token(NULL, token, sizeof token) == -1);
  CHECK(h3qshim_conn_send_new_token(server, NULL, 1) == -1);
  for (int i = 0; i < 4; i++) {
    pump(client, server, sa);
    pump(server, client, ca);
  }
  uint8_t buf[1500];
  ssize_t n = 0;
  CHECK(!has_packet(server, buf, sizeof buf, &n)); /* idle */
  CHECK(h3qshim_conn_send_new_token(server, token, sizeof token) == 0);
  CHECK(has_packet(server, buf, sizeof buf, &n));
  CHECK(n > (ssize_t)sizeof token); /* the frame carries the whole token */
  quiche_recv_info ri = {(struct sockaddr *)sa, sizeof *sa,
                         (struct sockaddr *)ca, sizeof *ca};
  CHECK(quiche_conn_recv(client, buf, (size_t)n, &ri) == n);
  CHECK(!has_packet(server, buf, sizeof buf, &n)); /* sent once */
  CHECK(!quiche_conn_is_closed(client));
}

/* quiche loads the generated certificate and key, and a client completes
 * a handshake against it. */
static void test_cert_serves_handshake(const char *cert, const char *key) {
  quiche_config *scfg = pipe_quiche_config(cert, key),
                *ccfg = pipe_quiche_config(NULL, NULL);
  struct sockaddr_in sa = pipe_addr(4433), ca = pipe_addr(5555);
  uint8_t scid[16] = {1}, ccid[16] = {2};
  quiche_conn *client =
      quiche_connect("localhost", ccid, sizeof ccid, (struct sockaddr *)&ca,
                     sizeof ca, (struct sockaddr *)&sa, sizeof sa, ccfg);
  quiche_conn *server =
      quiche_accept(scid, sizeof scid, NULL, 0, (struct sockaddr *)&sa,
                    sizeof sa, (struct sockaddr *)&ca, sizeof ca, scfg);
  for (int i = 0; i < 20 && !(quiche_conn_is_established(client) &&
                              quiche_conn_is_established(server));
       i++) {
    pump(client, server, &sa);
    pump(server, client, &ca);
  }
  CHECK(quiche_conn_is_established(server));
  CHECK(quiche_conn_is_established(client));
  test_new_token(server, client, &sa, &ca);
  quiche_conn_free(server);
  quiche_conn_free(client);
  quiche_config_free(scfg);
  quiche_config_free(ccfg);
}

int main(void) {
  char dir[] = "/tmp/h3q-shim-XXXXXX";
  CHECK(mkdtemp(dir) != NULL);
  char cert[64], key[64];
  snprintf(cert, sizeof cert, "%s/cert.pem", dir);
  snprintf(key, sizeof key, "%s/key.pem", dir);
  CHECK(h3q_generate_self_signed_cert(cert, key, "localhost", 14) == H3Q_OK);
  CHECK(h3q_generate_self_signed_cert(cert, key, "localhost", 0) == H3Q_EINVAL);
  CHECK(h3q_generate_self_signed_cert("/nonexistent/dir/c.pem",
                                      "/nonexistent/dir/k.pem", "localhost",
                                      1) == H3Q_EIO);
  CHECK(access(key, R_OK) == 0);
  test_cert_serves_handshake(cert, key);
  unlink(cert);
  unlink(key);
  rmdir(dir);
  return check_report("test_quiche_shim");
}
