#include "h3c_sink.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define PATTERN_MOD 251
/* One period plus a window, so any offset's window is contiguous. */
#define PATTERN_WIN 65536
static uint8_t g_pattern[PATTERN_MOD + PATTERN_WIN];
static bool g_pattern_ready;

static void pattern_init(void) {
  if (g_pattern_ready)
    return;
  for (size_t i = 0; i < sizeof(g_pattern); i++)
    g_pattern[i] = (uint8_t)(i % PATTERN_MOD);
  g_pattern_ready = true;
}

void h3c_sink_init(h3c_sink *s, const h3c_sink_opts *o) {
  s->bytes = 0;
  if (o->hash)
    crypto_hash_sha256_init(&s->sha);
  if (o->verify)
    pattern_init();
}

/* Returns the offset of the first byte that breaks the pattern, or
 * UINT64_MAX when the chunk at absolute offset off matches. */
static uint64_t pattern_check(uint64_t off, const uint8_t *p, size_t n) {
  size_t done = 0;
  while (done < n) {
    size_t k = n - done < PATTERN_WIN ? n - done : PATTERN_WIN;
    const uint8_t *want = g_pattern + (off + done) % PATTERN_MOD;
    if (memcmp(p + done, want, k) != 0) {
      for (size_t i = 0; i < k; i++)
        if (p[done + i] != want[i])
          return off + done + i;
    }
    done += k;
  }
  return UINT64_MAX;
}

int h3c_sink_write(h3c_sink *s, const h3c_sink_opts *o, const uint8_t *p,
                   size_t n, char *err, size_t errlen) {
  if (o->verify) {
    uint64_t bad = pattern_check(s->bytes, p, n);
    if (bad != UINT64_MAX) {
      snprintf(err, errlen,
               "body mismatch at offset %llu: got 0x%02x, expected 0x%02x",
               (unsigned long long)bad, p[bad - s->bytes],
               (unsigned)(bad % PATTERN_MOD));
      return -1;
    }
  }
  s->bytes += n;
  if (o->hash)
    crypto_hash_sha256_update(&s->sha, p, n);
  if (o->out_fd >= 0 && h3c_write_all(o->out_fd, p, n) != 0) {
    snprintf(err, errlen, "writing output: %s", strerror(errno));
    return -1;
  }
  return 0;
}

void h3c_sink_hex(h3c_sink *s, char out[65]) {
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256_final(&s->sha, digest);
  sodium_bin2hex(out, 65, digest, sizeof(digest));
}

int h3c_write_all(int fd, const uint8_t *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w > 0) {
      p += w;
      n -= (size_t)w;
      continue;
    }
    if (w < 0 && errno == EINTR)
      continue;
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      /* Output is a slow non-blocking pipe: waiting here is the natural
       * backpressure (QUIC timers fire late but recover). */
      struct pollfd pfd = {.fd = fd, .events = POLLOUT};
      (void)poll(&pfd, 1, -1);
      continue;
    }
    return -1;
  }
  return 0;
}
