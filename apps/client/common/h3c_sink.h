/* Where response bodies go: counted always; optionally written to a file
 * descriptor, hashed with SHA-256 (libsodium), and checked against the
 * test servers' deterministic pattern (byte i == i % 251). */
#ifndef H3C_SINK_H
#define H3C_SINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

typedef struct h3c_sink_opts {
  int out_fd;  /* -1: discard */
  bool hash;   /* compute SHA-256 (costly: only when reported) */
  bool verify; /* --verify-bytes */
} h3c_sink_opts;

typedef struct h3c_sink {
  uint64_t bytes;
  crypto_hash_sha256_state sha;
} h3c_sink;

void h3c_sink_init(h3c_sink *s, const h3c_sink_opts *o);

/* Consumes one chunk. Returns 0, or -1 with a message in err on a pattern
 * mismatch or an output write error. */
int h3c_sink_write(h3c_sink *s, const h3c_sink_opts *o, const uint8_t *p,
                   size_t n, char *err, size_t errlen);

/* Finishes the hash into 64 lowercase hex digits plus NUL. */
void h3c_sink_hex(h3c_sink *s, char out[65]);

/* Writes all of p to fd, waiting when fd is non-blocking and full.
 * Returns 0 or -1 (errno set). */
int h3c_write_all(int fd, const uint8_t *p, size_t n);

#endif
