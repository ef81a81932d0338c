#include "h3c_body_src.h"

#include "h3c_args.h"
#include "h3c_sink.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Copies fd to an unlinked temporary file and returns its descriptor. */
static int spool(int fd, uint64_t *size, char *err, size_t errlen) {
  const char *dir = getenv("TMPDIR");
  char path[4096];
  snprintf(path, sizeof(path), "%s/h3q-body-XXXXXX", dir ? dir : "/tmp");
  int out = mkstemp(path);
  if (out < 0) {
    snprintf(err, errlen, "cannot create temporary file: %s", strerror(errno));
    return -1;
  }
  unlink(path);
  uint8_t *buf = h3c_xmalloc(H3C_PIPE_BUF);
  *size = 0;
  for (;;) {
    ssize_t r = read(fd, buf, H3C_PIPE_BUF);
    if (r < 0 && errno == EINTR)
      continue;
    if (r == 0)
      break;
    if (r < 0 || h3c_write_all(out, buf, (size_t)r) != 0) {
      snprintf(err, errlen, "spooling request body: %s", strerror(errno));
      free(buf);
      close(out);
      return -1;
    }
    *size += (uint64_t)r;
  }
  free(buf);
  return out;
}

int h3c_body_spec_open(h3c_body_spec *s, const char *path, bool reusable,
                       char *err, size_t errlen) {
  memset(s, 0, sizeof(*s));
  bool is_stdin = strcmp(path, "-") == 0;
  s->fd = is_stdin ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
  struct stat st;
  if (s->fd < 0 || fstat(s->fd, &st) != 0) {
    snprintf(err, errlen, "%s: %s", path, strerror(errno));
    return -1;
  }
  if (S_ISREG(st.st_mode)) {
    off_t cur = is_stdin ? lseek(s->fd, 0, SEEK_CUR) : 0;
    s->kind = H3C_SRC_FILE;
    s->base = cur > 0 ? (uint64_t)cur : 0;
    s->size =
        (uint64_t)st.st_size > s->base ? (uint64_t)st.st_size - s->base : 0;
    return 0;
  }
  if (!reusable) {
    s->kind = H3C_SRC_PIPE;
    return 0;
  }
  int tmp = spool(s->fd, &s->size, err, errlen);
  if (!is_stdin)
    close(s->fd);
  s->fd = tmp;
  s->kind = H3C_SRC_FILE;
  return tmp < 0 ? -1 : 0;
}

void h3c_body_spec_close(h3c_body_spec *s) {
  if (s->fd > STDIN_FILENO)
    close(s->fd);
  s->fd = -1;
}

int h3c_body_src_init(h3c_body_src *s, h3c_body_spec *spec) {
  memset(s, 0, sizeof(*s));
  s->spec = spec;
  if (spec->kind == H3C_SRC_PIPE) {
    if (spec->claimed)
      return -1;
    spec->claimed = true;
    s->buf = h3c_xmalloc(H3C_PIPE_BUF);
  }
  return 0;
}

void h3c_body_src_free(h3c_body_src *s, struct ev_loop *loop) {
  if (s->spec && s->spec->kind == H3C_SRC_PIPE)
    ev_io_stop(loop, &s->watch);
  free(s->buf);
  s->buf = NULL;
  s->spec = NULL;
}

static h3c_chunk_rc peek_file(h3c_body_src *s, uint8_t *scratch, size_t max,
                              const uint8_t **p, size_t *n, bool *fin,
                              char *err, size_t errlen) {
  uint64_t left = s->spec->size - s->off;
  size_t want = left < max ? (size_t)left : max;
  ssize_t r = 0;
  while (want > 0 &&
         (r = pread(s->spec->fd, scratch, want,
                    (off_t)(s->spec->base + s->off))) < 0 &&
         errno == EINTR) {
  }
  if (r < 0 || (want > 0 && r == 0)) {
    snprintf(err, errlen, "reading request body: %s",
             r < 0 ? strerror(errno) : "file shrank");
    return H3C_CHUNK_ERR;
  }
  *p = scratch;
  *n = (size_t)r;
  *fin = s->off + (uint64_t)r == s->spec->size;
  return H3C_CHUNK_OK;
}

h3c_chunk_rc h3c_body_src_peek(h3c_body_src *s, uint8_t *scratch, size_t max,
                               const uint8_t **p, size_t *n, bool *fin,
                               char *err, size_t errlen) {
  if (s->spec->kind == H3C_SRC_FILE)
    return peek_file(s, scratch, max, p, n, fin, err, errlen);
  if (s->pos == s->len && !s->eof)
    return H3C_CHUNK_WAIT;
  size_t avail = s->len - s->pos;
  *p = s->buf + s->pos;
  *n = avail < max ? avail : max;
  *fin = s->eof && *n == avail;
  return H3C_CHUNK_OK;
}

void h3c_body_src_consume(h3c_body_src *s, size_t n) {
  s->off += n;
  if (s->spec->kind == H3C_SRC_PIPE) {
    s->pos += n;
    if (s->pos == s->len)
      s->pos = s->len = 0;
  }
}

int h3c_body_src_fill(h3c_body_src *s, char *err, size_t errlen) {
  if (s->len == H3C_PIPE_BUF || s->eof)
    return 0;
  /* One read per readiness notification never blocks, even though stdin
   * is left in blocking mode (it is shared with the parent shell). */
  ssize_t r = read(s->spec->fd, s->buf + s->len, H3C_PIPE_BUF - s->len);
  if (r < 0) {
    if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
      return 0;
    snprintf(err, errlen, "reading request body: %s", strerror(errno));
    return -1;
  }
  if (r == 0)
    s->eof = true;
  s->len += (size_t)r;
  return 0;
}
