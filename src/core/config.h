/* Configuration defaults, validation, and the server's owned copy. */
#ifndef H3Q_CORE_CONFIG_H
#define H3Q_CORE_CONFIG_H

#include <stdbool.h>
#include <sys/socket.h>

#include "h3q.h"

/* A validated copy of h3q_config whose strings the server owns. */
typedef struct config_owned {
  h3q_config c; /* string fields point at the copies below */
  char *bind_addr, *cert_path, *key_path, *cc_algorithm, *alpn, *qlog_dir,
      *keylog_path, *access_log_path, *metrics_addr, *secret_file,
      *client_ca_path, *quic_lb_server_id;
  uint8_t *secret;        /* copy of the caller's secret (c.secret_len bytes) */
  uint8_t ticket_key[48]; /* copy of the caller's key */
  unsigned char alpn_wire[256]; /* length-prefixed ALPN list for quiche */
  size_t alpn_wire_len;
} config_owned;

/* Checks every field; on failure writes "FIELD: reason" into err and
 * returns H3Q_ECONFIG. Does not touch the file system. */
int config_validate(const h3q_config *cfg, char *err, size_t errlen);

/* Copies a validated cfg. Returns H3Q_ENOMEM. */
int config_copy(config_owned *dst, const h3q_config *cfg);
void config_owned_free(config_owned *c);

/* Reads the server secret from path into a new buffer (*out, freed by the
 * caller). Returns H3Q_OK, H3Q_ECONFIG ("secret_file: ..." in err: not
 * readable, or not 32..4096 bytes) or H3Q_ENOMEM. */
int config_load_secret(const char *path, uint8_t **out, size_t *out_len,
                       char *err, size_t errlen);

#endif
