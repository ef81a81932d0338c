/* The shim's extra HTTP/3 SETTINGS reach a real quiche peer: an in-memory
 * client and server (no sockets) handshake, start HTTP/3, and the client
 * reads the server's SETTINGS. Also covers the self-signed certificate
 * generator, whose output the server loads. */
#include <netinet/in.h>
#include <quiche.h>
#include <stdlib.h>
#include <unistd.h>

#include "check.h"
#include "h3q.h"
#include "quic/quiche_ext.h"

#define WT_ENABLED 0x2b603742u
#define FAKE_SETTING 0x1f3au

static struct sockaddr_in addr_of(uint16_t port) {
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

static quiche_config *make_config(const char *cert, const char *key) {
  quiche_config *c = quiche_config_new(QUICHE_PROTOCOL_VERSION);
  quiche_config_set_application_protos(c, (const uint8_t *)"\x02h3", 3);
  quiche_config_set_initial_max_data(c, 1 << 20);
  quiche_config_set_initial_max_stream_data_bidi_local(c, 1 << 18);
  quiche_config_set_initial_max_stream_data_bidi_remote(c, 1 << 18);
  quiche_config_set_initial_max_stream_data_uni(c, 1 << 18);
  quiche_config_set_initial_max_streams_bidi(c, 10);
  quiche_config_set_initial_max_streams_uni(c, 10);
  quiche_config_verify_peer(c, false);
  if (cert) {
    CHECK(quiche_config_load_cert_chain_from_pem_file(c, cert) == 0);
    CHECK(quiche_config_load_priv_key_from_pem_file(c, key) == 0);
  }
  return c;
}

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

static int find_setting(uint64_t id, uint64_t value, void *argp) {
  uint64_t *want = argp; /* want[0] id, want[1] out value, want[2] found */
  if (id == want[0]) {
    want[1] = value;
    want[2] = 1;
  }
  return 0;
}

static uint64_t peer_setting(quiche_h3_conn *h3, uint64_t id, bool *found) {
  uint64_t want[3] = {id, 0, 0};
  quiche_h3_for_each_setting(h3, find_setting, want);
  *found = want[2] != 0;
  return want[1];
}

static void test_additional_settings_reach_peer(const char *cert,
                                                const char *key) {
  quiche_h3_config *h3s = quiche_h3_config_new();
  uint64_t ids[] = {WT_ENABLED, FAKE_SETTING}, values[] = {1, 77};
  CHECK(quiche_h3_config_set_additional_settings(h3s, ids, values, 2) == 0);
  CHECK(quiche_h3_config_set_additional_settings(NULL, ids, values, 2) == -1);

  quiche_config *scfg = make_config(cert, key), *ccfg = make_config(NULL, NULL);
  struct sockaddr_in sa = addr_of(4433), ca = addr_of(5555);
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
  quiche_h3_config *h3c = quiche_h3_config_new();
  quiche_h3_conn *sh3 = quiche_h3_conn_new_with_transport(server, h3s);
  quiche_h3_conn *ch3 = quiche_h3_conn_new_with_transport(client, h3c);
  for (int i = 0; i < 5; i++) {
    pump(server, client, &ca);
    pump(client, server, &sa);
    quiche_h3_event *ev;
    while (quiche_h3_conn_poll(ch3, client, &ev) >= 0)
      quiche_h3_event_free(ev);
  }
  bool found = false;
  CHECK(peer_setting(ch3, WT_ENABLED, &found) == 1 && found);
  CHECK(peer_setting(ch3, FAKE_SETTING, &found) == 77 && found);
  peer_setting(ch3, 0x12345, &found);
  CHECK(!found); /* only what was sent is seen */

  quiche_h3_conn_free(sh3);
  quiche_h3_conn_free(ch3);
  quiche_conn_free(server);
  quiche_conn_free(client);
  quiche_h3_config_free(h3s);
  quiche_h3_config_free(h3c);
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
  test_additional_settings_reach_peer(cert, key);
  unlink(cert);
  unlink(key);
  rmdir(dir);
  return check_report("test_quiche_shim");
}
