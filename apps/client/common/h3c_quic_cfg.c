#include "h3c_quic_cfg.h"

#include "util/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define MIB (1024u * 1024u)

/* Loads the system trust store. BoringSSL's default paths (OPENSSLDIR of
 * the vendored build, SSL_CERT_FILE/SSL_CERT_DIR) are used by quiche when
 * verify_peer is on; we also add the usual distribution bundles because
 * BoringSSL's compiled-in directory need not match this system's. */
static void load_system_cas(quiche_config *cfg) {
  static const char *const bundles[] = {
      "/etc/ssl/certs/ca-certificates.crt", /* Debian, Ubuntu, Alpine */
      "/etc/pki/tls/certs/ca-bundle.crt",   /* Fedora, RHEL */
      "/etc/ssl/cert.pem",                  /* macOS, BSDs */
  };
  const char *env = getenv("SSL_CERT_FILE");
  if (env && quiche_config_load_verify_locations_from_file(cfg, env) == 0)
    return;
  for (size_t i = 0; i < sizeof(bundles) / sizeof(bundles[0]); i++) {
    if (access(bundles[i], R_OK) == 0 &&
        quiche_config_load_verify_locations_from_file(cfg, bundles[i]) == 0)
      return;
  }
  LOG_DEBUG("no system CA bundle found; relying on BoringSSL defaults");
}

static void set_transport(quiche_config *cfg, size_t max_payload) {
  quiche_config_set_max_idle_timeout(cfg, 30000);
  quiche_config_set_max_recv_udp_payload_size(cfg, max_payload);
  quiche_config_set_max_send_udp_payload_size(cfg, max_payload);
  quiche_config_set_initial_max_data(cfg, 10 * MIB);
  quiche_config_set_initial_max_stream_data_bidi_local(cfg, 1 * MIB);
  quiche_config_set_initial_max_stream_data_bidi_remote(cfg, 1 * MIB);
  quiche_config_set_initial_max_stream_data_uni(cfg, 1 * MIB);
  /* Flow-control auto-tuning may grow windows up to these limits. */
  quiche_config_set_max_stream_window(cfg, 8 * MIB);
  quiche_config_set_max_connection_window(cfg, 24 * MIB);
  quiche_config_set_initial_max_streams_bidi(cfg, 100);
  quiche_config_set_initial_max_streams_uni(cfg, 100);
  quiche_config_set_disable_active_migration(cfg, true);
  quiche_config_set_cc_algorithm(cfg, QUICHE_CC_CUBIC);
}

quiche_config *h3c_quic_config_new(const h3c_tls_opts *o, char *err,
                                   size_t errlen) {
  quiche_config *cfg = quiche_config_new(0x00000001); /* QUIC v1 */
  if (cfg == NULL) {
    snprintf(err, errlen, "quiche_config_new failed");
    return NULL;
  }
  static const uint8_t alpn[] = "\x02h3";
  if (quiche_config_set_application_protos(cfg, alpn, sizeof(alpn) - 1) != 0) {
    snprintf(err, errlen, "cannot set ALPN");
    quiche_config_free(cfg);
    return NULL;
  }
  set_transport(cfg, o->max_payload);
  quiche_config_verify_peer(cfg, !o->insecure);
  if (o->insecure)
    return cfg;
  if (o->cacert) {
    if (quiche_config_load_verify_locations_from_file(cfg, o->cacert) != 0) {
      snprintf(err, errlen, "cannot load CA file '%s'", o->cacert);
      quiche_config_free(cfg);
      return NULL;
    }
  } else {
    load_system_cas(cfg);
  }
  if (getenv("SSLKEYLOGFILE"))
    quiche_config_log_keys(cfg);
  return cfg;
}
