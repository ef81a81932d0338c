#include "quic/stateless_reset.h"

#include <sodium.h>
#include <string.h>

size_t stateless_reset_build(const uint8_t token[RESET_TOKEN_LEN],
                             size_t in_len, uint8_t *out, size_t out_cap) {
  if (in_len <= STATELESS_RESET_MIN)
    return 0;
  size_t len = in_len - 1;
  if (len > STATELESS_RESET_MAX)
    len = STATELESS_RESET_MAX;
  if (out_cap < len)
    return 0;
  randombytes_buf(out, len - RESET_TOKEN_LEN);
  /* A short header: form bit 0, fixed bit 1, the rest unpredictable. */
  out[0] = (uint8_t)((out[0] & 0x3f) | 0x40);
  memcpy(out + len - RESET_TOKEN_LEN, token, RESET_TOKEN_LEN);
  return len;
}

int reset_limiter_take(reset_limiter *l, uint64_t now_ns) {
  if (l->last_ns == 0) {
    l->tokens = RESET_BURST;
  } else if (now_ns > l->last_ns) {
    l->tokens += (double)(now_ns - l->last_ns) * RESET_RATE_PER_SEC / 1e9;
    if (l->tokens > RESET_BURST)
      l->tokens = RESET_BURST;
  }
  l->last_ns = now_ns;
  if (l->tokens < 1.0)
    return 0;
  l->tokens -= 1.0;
  return 1;
}
