/* A growable byte arena of NUL-terminated strings addressed by offset (so
 * growth does not invalidate references). Offset 0 is reserved as "unset". */
#ifndef H3Q_H3_ARENA_H
#define H3Q_H3_ARENA_H

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "h3/stream.h"

/* Appends len bytes plus a NUL; returns the offset, or 0 when out of
 * memory. data may point into the arena itself (e.g. a route parameter
 * inside the stored path): it is re-found after the buffer moves. */
static inline size_t arena_push(arena *a, const void *data, size_t len) {
  if (a->len == 0)
    a->len = 1; /* reserve offset 0 */
  const char *src = data;
  bool inside = a->buf && src >= a->buf && src < a->buf + a->cap;
  size_t src_off = inside ? (size_t)(src - a->buf) : 0;
  if (a->len + len + 1 > a->cap) {
    size_t cap = a->cap ? a->cap : 256;
    while (cap < a->len + len + 1)
      cap *= 2;
    char *grown = realloc(a->buf, cap);
    if (!grown)
      return 0;
    a->buf = grown;
    a->cap = cap;
    if (inside)
      src = a->buf + src_off;
  }
  size_t off = a->len;
  if (len)
    memcpy(a->buf + off, src, len);
  a->buf[off + len] = '\0';
  a->len += len + 1;
  return off;
}

static inline const char *arena_str(const arena *a, size_t off) {
  return off ? a->buf + off : NULL;
}

static inline void arena_free(arena *a) {
  free(a->buf);
  a->buf = NULL;
  a->len = a->cap = 0;
}

/* Appends a field (name, value offsets) to a growable array that starts
 * in inline_arr (inline_cap fields; NULL, 0 for none) and moves to the
 * heap when that is full. 0 or -1. */
static inline int fields_push(field **arr, size_t *count, size_t *cap,
                              field *inline_arr, size_t inline_cap, size_t name,
                              size_t value) {
  if (!*arr && inline_arr) {
    *arr = inline_arr;
    *cap = inline_cap;
  }
  if (*count == *cap) {
    size_t ncap = *cap ? *cap * 2 : 16;
    bool spill = *arr == inline_arr;
    field *n =
        spill ? malloc(ncap * sizeof *n) : realloc(*arr, ncap * sizeof *n);
    if (!n)
      return -1;
    if (spill && *count)
      memcpy(n, *arr, *count * sizeof *n);
    *arr = n;
    *cap = ncap;
  }
  (*arr)[(*count)++] = (field){name, value};
  return 0;
}

/* Frees a field array unless it is the inline one. */
static inline void fields_free(field *arr, const field *inline_arr) {
  if (arr != inline_arr)
    free(arr);
}

#endif
