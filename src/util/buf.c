#include "util/buf.h"

#include <stdlib.h>
#include <string.h>

#include "util/varint.h"

int buf_reserve(buf *b, size_t extra) {
  if (extra <= b->cap - b->len)
    return 0;
  if (extra > SIZE_MAX / 2 - b->len)
    return -1;
  size_t cap = b->cap ? b->cap : 64;
  while (cap < b->len + extra)
    cap *= 2;
  uint8_t *d = realloc(b->data, cap);
  if (!d)
    return -1;
  b->data = d;
  b->cap = cap;
  return 0;
}

int buf_append(buf *b, const void *p, size_t n) {
  if (n == 0)
    return 0;
  if (buf_reserve(b, n) != 0)
    return -1;
  memcpy(b->data + b->len, p, n);
  b->len += n;
  return 0;
}

int buf_append_byte(buf *b, uint8_t byte) {
  return buf_append(b, &byte, 1);
}

int buf_append_varint(buf *b, uint64_t v) {
  size_t n = varint_len(v);
  if (n == 0 || buf_reserve(b, n) != 0)
    return -1;
  b->len += varint_encode(b->data + b->len, n, v);
  return 0;
}

void buf_consume(buf *b, size_t n) {
  if (n >= b->len) {
    b->len = 0;
    return;
  }
  memmove(b->data, b->data + n, b->len - n);
  b->len -= n;
}

void buf_free(buf *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}
