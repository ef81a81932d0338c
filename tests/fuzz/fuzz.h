/* Shared bits of the libFuzzer targets: the entry point's prototype, an
 * invariant check that survives NDEBUG, and input splitting helpers. */
#ifndef H3Q_FUZZ_H
#define H3Q_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A broken invariant is a finding: abort so that libFuzzer saves the
 * input. Never used on anything the code under test may legally refuse. */
#define FUZZ_CHECK(cond)                                                       \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__,     \
              #cond);                                                          \
      abort();                                                                 \
    }                                                                          \
  } while (0)

/* A NUL-terminated heap copy of data[0..size) (ASan then catches any read
 * past the terminator). Aborts when out of memory: not a finding, but the
 * fuzzer cannot go on either. */
static inline char *fuzz_strndup(const uint8_t *data, size_t size) {
  char *s = malloc(size + 1);
  if (s == NULL) {
    abort();
  }
  if (size > 0) {
    memcpy(s, data, size);
  }
  s[size] = '\0';
  return s;
}

/* Cuts the next piece off *data up to (not including) the byte sep, or the
 * whole rest when there is no sep. Returns false when nothing is left. */
static inline bool fuzz_next_piece(const uint8_t **data, size_t *size,
                                   uint8_t sep, const uint8_t **piece,
                                   size_t *len) {
  if (*data == NULL) {
    return false;
  }
  const uint8_t *end = *size > 0 ? memchr(*data, sep, *size) : NULL;
  *piece = *data;
  if (end == NULL) {
    *len = *size;
    *data = NULL; /* the last piece: the next call reports the end */
    *size = 0;
    return true;
  }
  *len = (size_t)(end - *data);
  *size -= *len + 1;
  *data = end + 1;
  return true;
}

#endif
