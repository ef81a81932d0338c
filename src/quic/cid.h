/* The layout of the connection IDs a server issues: QUIC-LB's plaintext
 * algorithm (draft-ietf-quic-load-balancers-21, "CID format"), so that a
 * QUIC-LB-aware layer-4 load balancer can route a fleet by connection ID:
 *
 *   first octet = config rotation (3 bits) | CID length - 1 (5 bits)
 *   server id   = S bytes, the same in every CID of this server
 *   nonce       = N bytes; its first byte is the identity byte (which
 *                 worker/generation of this server owns the connection),
 *                 the rest is unique per CID (random or an HMAC)
 *
 * Without a QUIC-LB configuration the config rotation is 0b111, the
 * draft's "unroutable" codepoint (§3.2), S is 0 and the CID is
 * CID_UNROUTABLE_LEN bytes. Either way the first octet self-describes the
 * length, as the draft requires of unroutable CIDs. */
#ifndef H3Q_QUIC_CID_H
#define H3Q_QUIC_CID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CID_LAYOUT_MAX_LEN 20   /* QUIC v1's limit */
#define CID_LB_UNROUTABLE 7     /* config rotation codepoint 0b111 */
#define CID_LB_SERVER_ID_MAX 15 /* server id bytes, 1..15 */
#define CID_LB_NONCE_MIN 4      /* the draft's minimum nonce */
#define CID_LB_NONCE_MAX 18     /* server id + nonce <= 19 */
#define CID_LB_NONCE_DEFAULT 8  /* h3q_config.quic_lb_nonce_len */
#define CID_UNROUTABLE_LEN 16   /* without QUIC-LB */

typedef struct cid_layout {
  uint8_t config_id; /* 0..6, or CID_LB_UNROUTABLE without QUIC-LB */
  uint8_t server_id[CID_LB_SERVER_ID_MAX];
  size_t server_id_len; /* S; 0 without QUIC-LB */
  size_t len;           /* the whole CID: 1 + S + nonce */
} cid_layout;

/* The layout of h3q_config's quic_lb_* fields: config_id 0..6 with a
 * server id of 1..15 bytes in hex, or CID_LB_UNROUTABLE with
 * server_id_hex NULL for no QUIC-LB; nonce_len 4..18 with server id +
 * nonce at most 19 bytes (checked even without QUIC-LB, so a bad value
 * never waits for the day it is used). Returns 0, or -1 with a message
 * naming the field in err. */
int cid_layout_init(cid_layout *l, uint32_t config_id,
                    const char *server_id_hex, size_t nonce_len, char *err,
                    size_t errlen);

/* No QUIC-LB: unroutable CIDs of CID_UNROUTABLE_LEN bytes. */
void cid_layout_init_unroutable(cid_layout *l);

/* Where the identity byte (the first nonce byte) sits: 1 + S. */
size_t cid_identity_offset(const cid_layout *l);

/* The first octet of every CID in layout l (config rotation, length). */
uint8_t cid_first_octet(const cid_layout *l);

/* Writes a CID of l->len bytes to out: the first octet, the server id, the
 * identity byte, then l->len - 2 - S bytes taken from entropy (which must
 * hold at least that many). */
void cid_encode(const cid_layout *l, uint8_t identity, const uint8_t *entropy,
                uint8_t *out);

/* What a load balancer reads from a CID with the plaintext algorithm:
 * the config rotation bits, and the server_id_len bytes after the first
 * octet. Returns false when the CID is too short to hold them. */
bool cid_decode(const uint8_t *cid, size_t len, size_t server_id_len,
                uint8_t *config_id, uint8_t *server_id);

#endif
