/* The quiche configuration both programs share: pinned like a real HTTP/3
 * client so the server under test sees realistic transport parameters. */
#ifndef H3C_QUIC_CFG_H
#define H3C_QUIC_CFG_H

#include <stdbool.h>
#include <stddef.h>

#include <quiche.h>

typedef struct h3c_tls_opts {
  bool insecure;      /* -k: do not verify the server certificate */
  const char *cacert; /* --cacert: trust this CA/cert file instead */
  size_t max_payload; /* --max-payload: UDP payload limit both ways */
} h3c_tls_opts;

/* Returns a new config, or NULL with a message in err. */
quiche_config *h3c_quic_config_new(const h3c_tls_opts *o, char *err,
                                   size_t errlen);

#endif
