/* NEW_TOKEN (RFC 9000 §8.1.3): one address-validation token per
 * connection, for the client's next connection to skip the Retry. Bound
 * to the client's IP address (quic/token.h), sealed under the key from
 * the server secret, so restarts and workers accept it too. */
#include "quic/conn.h"
#include "quic/endpoint.h"
#include "quic/quiche_ext.h"
#include "quic/token.h"
#include "util/log.h"

void conn_send_new_token(conn *c) {
  /* quiche confirms a server's handshake when it completes: established. */
  if (c->new_token_sent || c->ep->new_token_lifetime_ms == 0 ||
      !quiche_conn_is_established(c->q))
    return;
  c->new_token_sent = true;
  uint8_t token[TOKEN_MAX_LEN];
  size_t len = token_seal(c->ep->secrets.token, TOKEN_KIND_NEW_TOKEN,
                          (const struct sockaddr *)&c->peer, NULL, 0,
                          token_now_ms(), token, sizeof token);
  if (len == 0 || h3qshim_conn_send_new_token(c->q, token, len) != 0) {
    LOG_DEBUG("conn %llu: no NEW_TOKEN", (unsigned long long)c->number);
    return;
  }
  c->ep->stats->new_tokens_sent++;
}
