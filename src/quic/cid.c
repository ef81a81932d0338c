#include "quic/cid.h"
#include "util/errmsg.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

/* Every failed check names the field and returns -1. */
#define fail(err, errlen, ...) errmsg_set(-1, err, errlen, __VA_ARGS__)

/* Hex digits only, an even count of 2..30. */
static int parse_server_id(cid_layout *l, const char *hex, char *err,
                           size_t errlen) {
  size_t n = strlen(hex), got = 0;
  const char *end = NULL;
  if (n < 2 || n > 2 * CID_LB_SERVER_ID_MAX || n % 2 ||
      sodium_hex2bin(l->server_id, sizeof l->server_id, hex, n, NULL, &got,
                     &end) != 0 ||
      *end || got != n / 2)
    return fail(err, errlen,
                "quic_lb_server_id: '%.40s' is not 1..%d bytes in hex (2..%d "
                "hex digits)",
                hex, CID_LB_SERVER_ID_MAX, 2 * CID_LB_SERVER_ID_MAX);
  l->server_id_len = got;
  return 0;
}

int cid_layout_init(cid_layout *l, uint32_t config_id,
                    const char *server_id_hex, size_t nonce_len, char *err,
                    size_t errlen) {
  memset(l, 0, sizeof *l);
  if (config_id > CID_LB_UNROUTABLE)
    return fail(err, errlen,
                "quic_lb_config_id: %u is out of range 0..6 (7: no QUIC-LB)",
                config_id);
  if (nonce_len < CID_LB_NONCE_MIN || nonce_len > CID_LB_NONCE_MAX)
    return fail(err, errlen, "quic_lb_nonce_len: %zu is out of range %d..%d",
                nonce_len, CID_LB_NONCE_MIN, CID_LB_NONCE_MAX);
  bool has_sid = server_id_hex != NULL;
  if (has_sid && parse_server_id(l, server_id_hex, err, errlen) != 0)
    return -1;
  if (config_id == CID_LB_UNROUTABLE && has_sid)
    return fail(err, errlen,
                "quic_lb_config_id: must be 0..6 with quic_lb_server_id "
                "(7 is the unroutable codepoint)");
  if (config_id != CID_LB_UNROUTABLE && !has_sid)
    return fail(err, errlen,
                "quic_lb_server_id: needed with quic_lb_config_id %u",
                config_id);
  if (!has_sid) {
    cid_layout_init_unroutable(l);
    return 0;
  }
  if (l->server_id_len + nonce_len > CID_LAYOUT_MAX_LEN - 1)
    return fail(err, errlen,
                "quic_lb_nonce_len: %zu with a %zu-byte quic_lb_server_id "
                "makes a %zu-byte connection ID (at most %d)",
                nonce_len, l->server_id_len, 1 + l->server_id_len + nonce_len,
                CID_LAYOUT_MAX_LEN);
  l->config_id = (uint8_t)config_id;
  l->len = 1 + l->server_id_len + nonce_len;
  return 0;
}

void cid_layout_init_unroutable(cid_layout *l) {
  memset(l, 0, sizeof *l);
  l->config_id = CID_LB_UNROUTABLE;
  l->len = CID_UNROUTABLE_LEN;
}

size_t cid_identity_offset(const cid_layout *l) {
  return 1 + l->server_id_len;
}

uint8_t cid_first_octet(const cid_layout *l) {
  /* The low 5 bits self-describe the length after the first octet (the
   * draft's "Length Self-Description"), which it requires of unroutable
   * CIDs and allows for the others. */
  return (uint8_t)(((unsigned)l->config_id << 5) |
                   (unsigned)((l->len - 1) & 0x1fu));
}

void cid_encode(const cid_layout *l, uint8_t identity, const uint8_t *entropy,
                uint8_t *out) {
  out[0] = cid_first_octet(l);
  memcpy(out + 1, l->server_id, l->server_id_len);
  size_t at = cid_identity_offset(l);
  out[at] = identity;
  memcpy(out + at + 1, entropy, l->len - at - 1);
}

bool cid_decode(const uint8_t *cid, size_t len, size_t server_id_len,
                uint8_t *config_id, uint8_t *server_id) {
  if (len < 1 + server_id_len)
    return false;
  *config_id = cid[0] >> 5;
  memcpy(server_id, cid + 1, server_id_len);
  return true;
}
