#include "quic/rx_shed.h"

/* RFC 9000 §17.2: long header form bit, and the type bits of a v1
 * long header (00 = Initial). */
#define LONG_HEADER 0x80u
#define LONG_TYPE_MASK 0x30u
#define QUIC_V1 0x00000001u
/* A connection ID is at most 20 bytes in QUIC v1 (RFC 9000 §17.2). */
#define V1_MAX_CID_LEN 20u

bool rx_is_tokenless_initial(const uint8_t *buf, size_t len,
                             const uint8_t **dcid, size_t *dcid_len) {
  /* first byte, version (4), DCID length */
  if (len < 6 || !(buf[0] & LONG_HEADER) || (buf[0] & LONG_TYPE_MASK) != 0)
    return false;
  uint32_t version = (uint32_t)buf[1] << 24 | (uint32_t)buf[2] << 16 |
                     (uint32_t)buf[3] << 8 | buf[4];
  if (version != QUIC_V1)
    return false;
  size_t d_len = buf[5];
  if (d_len > V1_MAX_CID_LEN || len < 7 + d_len)
    return false;
  size_t s_len = buf[6 + d_len];
  size_t token_len_at = 7 + d_len + s_len;
  if (s_len > V1_MAX_CID_LEN || len <= token_len_at)
    return false;
  /* The token length is a varint; a one-byte 0 is an empty token (a
   * longer encoding of 0 takes the full path). */
  if (buf[token_len_at] != 0)
    return false;
  *dcid = buf + 6;
  *dcid_len = d_len;
  return true;
}

bool rx_shed(quic_endpoint *ep, const uint8_t *buf, size_t len) {
  if (!admission_sheds(&ep->admission))
    return false;
  const uint8_t *dcid;
  size_t dcid_len;
  if (!rx_is_tokenless_initial(buf, len, &dcid, &dcid_len) ||
      conn_table_get(&ep->conns, dcid, dcid_len))
    return false;
  endpoint_count_received(ep, len);
  endpoint_count_drop(ep, H3Q_DROP_OVERLOAD);
  return true;
}
