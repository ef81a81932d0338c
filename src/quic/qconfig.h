/* Builds quiche's transport and HTTP/3 configs from an h3q_config. */
#ifndef H3Q_QUIC_QCONFIG_H
#define H3Q_QUIC_QCONFIG_H

#include <quiche.h>

#include "core/config.h"

/* Returns H3Q_OK, H3Q_ETLS (cert/key unreadable: message names the field),
 * H3Q_ECONFIG or H3Q_ENOMEM. On failure nothing is left allocated. */
int qconfig_build(const config_owned *cfg, quiche_config **qcfg,
                  quiche_h3_config **h3cfg, char *err, size_t errlen);

#endif
