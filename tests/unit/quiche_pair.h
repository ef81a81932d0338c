/* A real quiche client and server in one test process, without sockets:
 * the addresses and the transport settings both ends use. */
#ifndef H3Q_TEST_QUICHE_PAIR_H
#define H3Q_TEST_QUICHE_PAIR_H

#include <netinet/in.h>
#include <quiche.h>

#include "check.h"

static inline struct sockaddr_in pipe_addr(uint16_t port) {
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

static inline quiche_config *pipe_quiche_config(const char *cert,
                                                const char *key) {
  quiche_config *c = quiche_config_new(QUICHE_PROTOCOL_VERSION);
  quiche_config_set_application_protos(c, (const uint8_t *)"\x02h3", 3);
  quiche_config_set_initial_max_data(c, 1 << 22);
  quiche_config_set_initial_max_stream_data_bidi_local(c, 1 << 20);
  quiche_config_set_initial_max_stream_data_bidi_remote(c, 1 << 20);
  quiche_config_set_initial_max_stream_data_uni(c, 1 << 20);
  quiche_config_set_initial_max_streams_bidi(c, 100);
  quiche_config_set_initial_max_streams_uni(c, 10);
  quiche_config_set_max_idle_timeout(c, 30000);
  quiche_config_verify_peer(c, false);
  if (cert) {
    CHECK(quiche_config_load_cert_chain_from_pem_file(c, cert) == 0);
    CHECK(quiche_config_load_priv_key_from_pem_file(c, key) == 0);
  }
  return c;
}

#endif
