/* A response body read from a file (host_file.h). */
#include "core/host_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHUNK_SIZE (64u * 1024u)

struct host_file {
  int fd;
  uint64_t size;   /* fstat of fd at open */
  uint64_t offset; /* next byte to read */
  uint8_t *buf;    /* read ahead, allocated at the first send */
  size_t cap;
  size_t start; /* buf[start..start+pending) waits to be written */
  size_t pending;
};

static int open_error(int e) {
  switch (e) {
  case ENOENT:
  case ENOTDIR:
  case ENAMETOOLONG:
  case ELOOP:
    return H3Q_ENOTFOUND;
  case EACCES:
  case EPERM:
    return H3Q_EFORBIDDEN;
  case ENOMEM:
    return H3Q_ENOMEM;
  default:
    return H3Q_EIO;
  }
}

int host_file_open(const char *path, int64_t expect_size, host_file **out) {
  *out = NULL;
  /* O_NONBLOCK: a FIFO must not block the caller; it is refused below. */
  int fd;
  do {
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0)
    return open_error(errno);
  struct stat st;
  int rc = H3Q_OK;
  if (fstat(fd, &st) != 0)
    rc = H3Q_EIO;
  else if (!S_ISREG(st.st_mode) || st.st_size < 0 ||
           (expect_size >= 0 && st.st_size != expect_size))
    rc = H3Q_EINVAL;
  if (rc != H3Q_OK) {
    close(fd);
    return rc;
  }
  host_file *f = calloc(1, sizeof *f);
  if (!f) {
    close(fd);
    return H3Q_ENOMEM;
  }
  *f = (host_file){.fd = fd, .size = (uint64_t)st.st_size};
  *out = f;
  return H3Q_OK;
}

uint64_t host_file_size(const host_file *f) {
  return f->size;
}

/* Reads the next chunk. A file shorter than its size at open is an error:
 * content-length already promised the bytes. */
static int fill(host_file *f) {
  if (!f->buf) {
    uint64_t left = f->size - f->offset;
    f->cap = left < CHUNK_SIZE ? (size_t)left : CHUNK_SIZE;
    f->buf = malloc(f->cap);
    if (!f->buf)
      return H3Q_ENOMEM;
  }
  uint64_t left = f->size - f->offset;
  size_t want = left < f->cap ? (size_t)left : f->cap;
  ssize_t n;
  do {
    n = pread(f->fd, f->buf, want, (off_t)f->offset);
  } while (n < 0 && errno == EINTR);
  if (n <= 0)
    return H3Q_EIO;
  f->start = 0;
  f->pending = (size_t)n;
  f->offset += (uint64_t)n;
  return H3Q_OK;
}

int host_file_send(host_file *f, h3q_response *res) {
  /* Bounded by the file: every round writes a whole chunk, or stops. */
  for (;;) {
    if (f->pending == 0 && f->offset >= f->size)
      return 1;
    if (f->pending == 0) {
      int rc = fill(f);
      if (rc != H3Q_OK)
        return rc;
    }
    ssize_t n = h3q_response_write(res, f->buf + f->start, f->pending);
    if (n == H3Q_EAGAIN || n == 0)
      return 0;
    if (n < 0)
      return (int)n;
    f->start += (size_t)n;
    f->pending -= (size_t)n;
    if (f->pending > 0)
      return 0; /* a short write: the writable callback follows */
  }
}

void host_file_free(host_file *f) {
  if (!f)
    return;
  close(f->fd);
  free(f->buf);
  free(f);
}
