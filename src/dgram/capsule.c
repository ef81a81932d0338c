#include "dgram/capsule.h"

#include <stdint.h>

bool capsule_at_boundary(const capsule_reader *r) {
  return !r->in_value && r->hdr.have == 0;
}

void capsule_reader_free(capsule_reader *r) {
  buf_free(&r->value);
}

size_t capsule_header_encode(uint8_t *hdr, uint64_t type, uint64_t len) {
  return h3_frame_header_encode(hdr, type, len);
}

/* A header is complete: starts collecting (or skipping) the value. */
static void begin_value(capsule_reader *r) {
  h3_frame_header_get(&r->hdr, &r->type, &r->size);
  r->left = r->size;
  h3_frame_header_reset(&r->hdr);
  r->in_value = true;
  r->skipping = r->left > CAPSULE_VALUE_MAX;
  r->value.len = 0;
}

int capsule_feed(capsule_reader *r, const uint8_t *p, size_t len, capsule_cb cb,
                 void *user) {
  size_t off = 0;
  /* Each pass consumes bytes or completes a capsule: bounded by len + 1
   * passes per capsule boundary. */
  while (off < len || (r->in_value && r->left == 0)) {
    if (!r->in_value) {
      off += h3_frame_header_feed(&r->hdr, p + off, len - off);
      if (h3_frame_header_need(&r->hdr))
        return 0;
      begin_value(r);
    }
    size_t take = len - off < r->left ? len - off : (size_t)r->left;
    if (!r->skipping && take && buf_append(&r->value, p + off, take) != 0)
      return -1;
    off += take;
    r->left -= take;
    if (r->left)
      return 0;
    r->in_value = false;
    bool go_on =
        r->skipping
            ? cb(r->type, NULL, r->size > SIZE_MAX ? SIZE_MAX : (size_t)r->size,
                 user)
            : cb(r->type, r->value.data ? r->value.data : (const uint8_t *)"",
                 r->value.len, user);
    if (!go_on)
      return 1;
  }
  return 0;
}
