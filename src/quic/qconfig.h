/* Builds quiche's transport config from an h3q_config. */
#ifndef H3Q_QUIC_QCONFIG_H
#define H3Q_QUIC_QCONFIG_H

#include <quiche.h>

#include "h3q.h"

/* alpn_wire is the length-prefixed ALPN list. Returns H3Q_OK, H3Q_ETLS
 * (cert/key unreadable: message names the field), H3Q_ECONFIG or
 * H3Q_ENOMEM. On failure nothing is left allocated. */
int qconfig_build(const h3q_config *cfg, const uint8_t *alpn_wire,
                  size_t alpn_wire_len, quiche_config **qcfg, char *err,
                  size_t errlen);

#endif
