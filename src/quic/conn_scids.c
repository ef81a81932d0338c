/* A connection's spare connection IDs (RFC 9000 §5.1): in the endpoint's
 * layout (quic/cid.h: a QUIC-LB load balancer routes them to this server)
 * with a random nonce, each with the stateless-reset token derived from
 * the server secret, so a restarted server, or another of the fleet, that
 * shares the secret can still reset the connection on any of them. */
#include <sodium.h>
#include <string.h>

#include "quic/conn.h"
#include "quic/endpoint.h"
#include "util/log.h"

static int free_slot(const conn *c) {
  for (int i = 0; i < CONN_SCID_SLOTS; i++)
    if (!c->spare_used[i])
      return i;
  return -1;
}

/* Issues one SCID in slot i. Returns false when it cannot (then stop). */
static bool issue_one(conn *c, int i) {
  quic_endpoint *ep = c->ep;
  uint8_t *cid = c->spare[i];
  size_t len = ep->cids.len;
  uint8_t nonce[CID_LAYOUT_MAX_LEN];
  randombytes_buf(nonce, sizeof nonce);
  cid_encode(&ep->cids, endpoint_identity(ep), nonce, cid);
  if (conn_table_get(&ep->conns, cid, len))
    return false; /* a collision (2^-24 at worst): try on the next round */
  uint8_t token[RESET_TOKEN_LEN];
  secrets_reset_token(&ep->secrets, cid, len, token);
  if (conn_table_put(&ep->conns, cid, len, c) != 0)
    return false;
  uint64_t seq = 0;
  if (quiche_conn_new_scid(c->q, cid, len, token, false, &seq) < 0) {
    conn_table_del(&ep->conns, cid, len);
    return false;
  }
  c->spare_used[i] = true;
  LOG_TRACE("conn %llu: issued connection ID #%llu",
            (unsigned long long)c->number, (unsigned long long)seq);
  return true;
}

static void forget_retired(conn *c) {
  if (quiche_conn_retired_scids(c->q) == 0)
    return;
  quiche_connection_id_iter *it = quiche_conn_retired_scid_iter(c->q);
  if (!it)
    return;
  const uint8_t *cid;
  size_t len;
  while (quiche_connection_id_iter_next(it, &cid, &len)) {
    if (len != c->ep->cids.len)
      continue;
    for (int i = 0; i < CONN_SCID_SLOTS; i++) {
      if (c->spare_used[i] && memcmp(c->spare[i], cid, len) == 0) {
        conn_table_del(&c->ep->conns, cid, len);
        c->spare_used[i] = false;
      }
    }
    /* The first SCID stays in the table until the connection ends: a
     * retransmitted Initial may still name it. */
  }
  quiche_connection_id_iter_free(it);
}

void conn_update_scids(conn *c) {
  forget_retired(c);
  size_t left = quiche_conn_scids_left(c->q);
  for (size_t n = 0; n < left; n++) {
    int i = free_slot(c);
    if (i < 0 || !issue_one(c, i))
      return;
  }
}

void conn_forget_scids(conn *c) {
  for (int i = 0; i < CONN_SCID_SLOTS; i++) {
    if (c->spare_used[i])
      conn_table_del(&c->ep->conns, c->spare[i], c->ep->cids.len);
    c->spare_used[i] = false;
  }
}
