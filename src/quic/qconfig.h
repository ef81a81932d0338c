/* Builds quiche's transport config from an h3q_config. */
#ifndef H3Q_QUIC_QCONFIG_H
#define H3Q_QUIC_QCONFIG_H

#include <quiche.h>

#include "h3q.h"

/* alpn_wire is the length-prefixed ALPN list; ticket_key (48 bytes) is
 * the session-ticket key unless cfg->ticket_key is set. Returns H3Q_OK,
 * H3Q_ETLS (cert, key or client CA unreadable: the message names the
 * field), H3Q_ECONFIG or H3Q_ENOMEM. On failure nothing is left
 * allocated. Called again on a reload (new certificate files). */
int qconfig_build(const h3q_config *cfg, const uint8_t *alpn_wire,
                  size_t alpn_wire_len, const uint8_t *ticket_key,
                  quiche_config **qcfg, char *err, size_t errlen);

#endif
