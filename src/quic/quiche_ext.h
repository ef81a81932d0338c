/* C functions h3q needs that quiche.h lacks; implemented in Rust by the
 * shim crate deps/quiche/src/lib.rs. */
#ifndef H3Q_QUIC_QUICHE_EXT_H
#define H3Q_QUIC_QUICHE_EXT_H

#include <quiche.h>
#include <stddef.h>
#include <stdint.h>

/* Writes a self-signed ECDSA P-256 certificate and key (PEM). 0, or -1 bad
 * input, -2 generation failed, -3 a file could not be written. */
int h3qshim_generate_self_signed(const char *cert_path, const char *key_path,
                                 const char *host, uint32_t days);

/* Queues a NEW_TOKEN frame with len bytes of token on a server connection
 * (quiche patch 10-new-token: sent once the handshake is confirmed,
 * retransmitted when lost; the token is copied). 0, or -1 on a client
 * connection, an empty token or one over 512 bytes. */
int h3qshim_conn_send_new_token(quiche_conn *conn, const uint8_t *token,
                                size_t len);

#endif
