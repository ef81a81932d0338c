#include "quic/qconfig.h"

#include "quic/conn.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int check_readable(const char *field, const char *path, char *err,
                          size_t errlen) {
  if (access(path, R_OK) == 0)
    return H3Q_OK;
  snprintf(err, errlen, "%s: cannot read '%s': %s", field, path,
           strerror(errno));
  return H3Q_ETLS;
}

/* With a client CA, clients are asked for a certificate, and one that
 * does not verify fails the handshake (BoringSSL's SSL_VERIFY_PEER; a
 * client without one gets through, see client_cert_required). */
static int load_client_ca(quiche_config *q, const h3q_config *c, char *err,
                          size_t errlen) {
  if (!c->client_ca_path)
    return H3Q_OK;
  int rc = check_readable("client_ca_path", c->client_ca_path, err, errlen);
  if (rc != H3Q_OK)
    return rc;
  if (quiche_config_load_verify_locations_from_file(q, c->client_ca_path) !=
      0) {
    snprintf(err, errlen, "client_ca_path: '%s' holds no PEM certificate",
             c->client_ca_path);
    return H3Q_ETLS;
  }
  quiche_config_verify_peer(q, true);
  return H3Q_OK;
}

static int load_tls(quiche_config *q, const h3q_config *c, char *err,
                    size_t errlen) {
  int rc = check_readable("cert_path", c->cert_path, err, errlen);
  if (rc == H3Q_OK)
    rc = check_readable("key_path", c->key_path, err, errlen);
  if (rc != H3Q_OK)
    return rc;
  if (quiche_config_load_cert_chain_from_pem_file(q, c->cert_path) != 0) {
    snprintf(err, errlen, "cert_path: '%s' is not a PEM certificate chain",
             c->cert_path);
    return H3Q_ETLS;
  }
  if (quiche_config_load_priv_key_from_pem_file(q, c->key_path) != 0) {
    snprintf(err, errlen,
             "key_path: '%s' is not a PEM private key matching the cert",
             c->key_path);
    return H3Q_ETLS;
  }
  return load_client_ca(q, c, err, errlen);
}

static void set_transport(quiche_config *q, const h3q_config *c) {
  quiche_config_set_max_idle_timeout(q, c->idle_timeout_ms);
  quiche_config_set_max_recv_udp_payload_size(q, c->max_recv_udp_payload_size);
  quiche_config_set_max_send_udp_payload_size(q, c->max_send_udp_payload_size);
  quiche_config_set_initial_max_data(q, c->initial_max_data);
  quiche_config_set_initial_max_stream_data_bidi_local(
      q, c->initial_max_stream_data_bidi_local);
  quiche_config_set_initial_max_stream_data_bidi_remote(
      q, c->initial_max_stream_data_bidi_remote);
  quiche_config_set_initial_max_stream_data_uni(q,
                                                c->initial_max_stream_data_uni);
  quiche_config_set_initial_max_streams_bidi(q, c->initial_max_streams_bidi);
  quiche_config_set_initial_max_streams_uni(q, c->initial_max_streams_uni);
  quiche_config_set_disable_active_migration(q, c->disable_active_migration);
  /* quiche issues at most min(ours, the peer's) CIDs: ours is the first
   * SCID plus the spares a connection may hold (quic/conn.h). */
  quiche_config_set_active_connection_id_limit(q, CONN_SPARE_SCIDS + 1);
  quiche_config_discover_pmtu(q, c->enable_pmtud);
  quiche_config_enable_pacing(q, c->enable_pacing);
  quiche_config_grease(q, c->grease);
  quiche_config_set_cc_algorithm_name(q, c->cc_algorithm);
  /* quiche announces max_datagram_frame_size 65536 whenever datagrams are
   * on; dgram_max_payload_size is enforced above it. */
  quiche_config_enable_dgram(q, c->enable_dgram, c->dgram_recv_queue_len,
                             c->dgram_send_queue_len);
}

int qconfig_build(const h3q_config *cfg, const uint8_t *alpn_wire,
                  size_t alpn_wire_len, const uint8_t *ticket_key,
                  quiche_config **qcfg, char *err, size_t errlen) {
  *qcfg = NULL;
  quiche_config *q = quiche_config_new(QUICHE_PROTOCOL_VERSION);
  if (!q)
    return H3Q_ENOMEM;
  int rc = load_tls(q, cfg, err, errlen);
  if (rc == H3Q_OK &&
      quiche_config_set_application_protos(q, alpn_wire, alpn_wire_len) != 0) {
    snprintf(err, errlen, "alpn: quiche rejected the list");
    rc = H3Q_ECONFIG;
  }
  if (rc != H3Q_OK) {
    quiche_config_free(q);
    return rc;
  }
  set_transport(q, cfg);
  if (cfg->keylog_path)
    quiche_config_log_keys(q);
  if (cfg->enable_early_data)
    quiche_config_enable_early_data(q);
  /* Always our key, never quiche's random one per config: tickets then
   * survive a certificate reload, and servers sharing the secret (or
   * ticket_key) resume each other's sessions. */
  const uint8_t *key = cfg->ticket_key ? cfg->ticket_key : ticket_key;
  size_t key_len = cfg->ticket_key ? cfg->ticket_key_len : 48;
  if (key && quiche_config_set_ticket_key(q, key, key_len) != 0) {
    snprintf(err, errlen, "ticket_key: quiche rejected the key");
    quiche_config_free(q);
    return H3Q_ECONFIG;
  }
  *qcfg = q;
  return H3Q_OK;
}
