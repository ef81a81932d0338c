/* A connection's spare connection IDs (RFC 9000 §5.1): random, each with
 * the stateless-reset token derived from the server secret, so a restarted
 * server that shares the secret can still reset the connection on any
 * of them. */
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
  randombytes_buf(cid, CONN_SCID_LEN);
  endpoint_stamp_cid(ep, cid); /* steering: whose connection it is */
  if (conn_table_get(&ep->conns, cid, CONN_SCID_LEN))
    return false; /* a 2^-128 collision: try on the next round */
  uint8_t token[RESET_TOKEN_LEN];
  secrets_reset_token(&ep->secrets, cid, CONN_SCID_LEN, token);
  if (conn_table_put(&ep->conns, cid, CONN_SCID_LEN, c) != 0)
    return false;
  uint64_t seq = 0;
  if (quiche_conn_new_scid(c->q, cid, CONN_SCID_LEN, token, false, &seq) < 0) {
    conn_table_del(&ep->conns, cid, CONN_SCID_LEN);
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
    if (len != CONN_SCID_LEN)
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
      conn_table_del(&c->ep->conns, c->spare[i], CONN_SCID_LEN);
    c->spare_used[i] = false;
  }
}
