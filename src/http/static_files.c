/* Static files over the public response API only.
 *
 * Path resolution walks the decoded path one component at a time with
 * openat(O_NOFOLLOW) from a directory descriptor held for the root, so no
 * symbolic link is ever followed below the root and ".." never reaches the
 * kernel: nothing outside the root can be named, whatever is renamed or
 * linked concurrently.
 *
 * Streaming: one file_stream per GET holds the descriptor and one chunk
 * buffer. pump() writes what the stream accepts, keeps the rest, and waits
 * for the writable callback; the close callback, which the library calls
 * exactly once per response, is the only place that frees. */
#include "http/static_files.h"

#include "http/headers.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CHUNK_SIZE (64 * 1024)
#define H3_INTERNAL_ERROR 0x102
#define INDEX_NAME "index.html"
#define TEXT_PLAIN "text/plain; charset=utf-8"

#ifndef NAME_MAX
#define NAME_MAX 255
#endif
#define NAME_BUF (NAME_MAX + 1)

/* Directories are only searched, never read: O_PATH (Linux) or O_SEARCH
 * (POSIX) need search permission only, not read permission. */
#if defined(O_PATH)
#define DIR_OPEN_FLAGS (O_PATH | O_DIRECTORY | O_CLOEXEC)
#elif defined(O_SEARCH)
#define DIR_OPEN_FLAGS (O_SEARCH | O_DIRECTORY | O_CLOEXEC)
#else
#define DIR_OPEN_FLAGS (O_RDONLY | O_DIRECTORY | O_CLOEXEC)
#endif

struct static_root {
  int dirfd; /* the root directory, open for the root's lifetime */
};

typedef struct file_stream {
  int fd;
  uint64_t size;   /* bytes promised in content-length (st_size at open) */
  uint64_t offset; /* next file offset to read */
  size_t start;    /* first unsent byte in buf */
  size_t pending;  /* unsent bytes in buf */
  size_t cap;      /* buf size: one chunk, less for small files */
  uint8_t buf[];
} file_stream;

static_root *static_root_new(const char *dir, int *err) {
  int rc = H3Q_EINVAL;
  static_root *root = NULL;
  int fd = dir ? open(dir, DIR_OPEN_FLAGS) : -1;
  if (fd >= 0) {
    root = malloc(sizeof *root);
    rc = root ? H3Q_OK : H3Q_ENOMEM;
  }
  if (root != NULL) {
    root->dirfd = fd;
  } else if (fd >= 0) {
    close(fd);
  }
  if (err != NULL) {
    *err = rc;
  }
  return root;
}

void static_root_free(static_root *root) {
  if (root != NULL) {
    close(root->dirfd);
    free(root);
  }
}

/* ------------------------------------------------------- path decoding */

static int hex_value(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

/* Syntax first: a malformed percent sequence anywhere is a 400, even when
 * an earlier component would be a 404. */
static bool percent_valid(const char *path) {
  for (const char *p = strchr(path, '%'); p != NULL; p = strchr(p + 1, '%')) {
    if (hex_value(p[1]) < 0 || hex_value(p[2]) < 0) {
      return false; /* also catches a '%' one or two bytes before the NUL */
    }
  }
  return true;
}

/* Decodes the (percent-valid) segment [s, s + len) into out. NUL, '/' and
 * '\' (encoded or not, '\' is a separator elsewhere), "." and "..", and
 * names longer than NAME_MAX are H3Q_ENOTFOUND. */
static int decode_segment(const char *s, size_t len, char out[NAME_BUF]) {
  size_t o = 0;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '%') {
      c = (unsigned char)(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
      i += 2;
    }
    if (c == '\0' || c == '/' || c == '\\' || o == NAME_MAX) {
      return H3Q_ENOTFOUND;
    }
    out[o++] = (char)c;
  }
  out[o] = '\0';
  if (strcmp(out, ".") == 0 || strcmp(out, "..") == 0) {
    return H3Q_ENOTFOUND;
  }
  return H3Q_OK;
}

/* ------------------------------------------------------- path resolving */

/* Errors that say nothing about the file (descriptors or memory ran out)
 * are not a 404; everything else (ENOENT, ENOTDIR, ELOOP for a symlink,
 * EACCES, ...) is, so responses do not reveal what exists. */
static int errno_to_error(int e) {
  switch (e) {
  case EMFILE:
  case ENFILE:
    return H3Q_EAGAIN; /* 503: may succeed later */
  case ENOMEM:
    return H3Q_ENOMEM;
  case EIO:
    return H3Q_EIO;
  default:
    return H3Q_ENOTFOUND;
  }
}

/* Opens the entry name in dir without following a symlink. Only
 * directories and regular files qualify; the type is checked before open
 * (opening a FIFO or device can block or have side effects) and again
 * after it, on the same inode, in case the entry was swapped between. */
static int open_entry(int dir, const char *name, int *fd_out, struct stat *st) {
  struct stat pre;
  if (fstatat(dir, name, &pre, AT_SYMLINK_NOFOLLOW) != 0) {
    return errno_to_error(errno);
  }
  int flags = O_NOFOLLOW;
  if (S_ISDIR(pre.st_mode)) {
    flags |= DIR_OPEN_FLAGS;
  } else if (S_ISREG(pre.st_mode)) {
    flags |= O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
  } else {
    return H3Q_ENOTFOUND;
  }
  int fd;
  do {
    fd = openat(dir, name, flags);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    return errno_to_error(errno);
  }
  if (fstat(fd, st) != 0 || st->st_ino != pre.st_ino ||
      st->st_dev != pre.st_dev || (st->st_mode ^ pre.st_mode) & S_IFMT) {
    close(fd);
    return H3Q_ENOTFOUND;
  }
  *fd_out = fd;
  return H3Q_OK;
}

/* The walk's state: cur is the directory reached so far (the root's
 * descriptor is borrowed, others are owned); file is the regular file
 * reached, or -1. */
typedef struct walk {
  int root;
  int cur;
  int file;
  struct stat st;
  char name[NAME_BUF]; /* last component, for the content type */
} walk;

static void walk_set_dir(walk *w, int fd) {
  if (w->cur != w->root) {
    close(w->cur);
  }
  w->cur = fd;
}

/* Takes one raw segment. Empty segments ("//") are skipped below a
 * directory; anything after a regular file, even a trailing '/', is 404. */
static int walk_step(walk *w, const char *seg, size_t len) {
  if (w->file >= 0) {
    return H3Q_ENOTFOUND;
  }
  if (len == 0) {
    return H3Q_OK;
  }
  int rc = decode_segment(seg, len, w->name);
  int fd = -1;
  if (rc == H3Q_OK) {
    rc = open_entry(w->cur, w->name, &fd, &w->st);
  }
  if (rc == H3Q_OK && S_ISDIR(w->st.st_mode)) {
    walk_set_dir(w, fd);
  } else if (rc == H3Q_OK) {
    w->file = fd;
  }
  return rc;
}

/* A walk that ends on a directory serves its index.html, which must be a
 * regular file itself. */
static int walk_finish(walk *w) {
  if (w->file >= 0) {
    return H3Q_OK;
  }
  memcpy(w->name, INDEX_NAME, sizeof INDEX_NAME);
  int fd = -1;
  int rc = open_entry(w->cur, w->name, &fd, &w->st);
  if (rc == H3Q_OK && !S_ISREG(w->st.st_mode)) {
    close(fd);
    rc = H3Q_ENOTFOUND;
  }
  w->file = rc == H3Q_OK ? fd : -1;
  return rc;
}

/* Resolves path below the root to an open regular file (w->file). */
static int resolve(const static_root *root, const char *path, walk *w) {
  *w = (walk){.root = root->dirfd, .cur = root->dirfd, .file = -1};
  if (path == NULL || path[0] != '/') {
    return H3Q_ENOTFOUND;
  }
  if (!percent_valid(path)) {
    return H3Q_EBADREQUEST;
  }
  int rc = H3Q_OK;
  for (const char *p = path + 1; rc == H3Q_OK; p++) {
    size_t len = strcspn(p, "/");
    rc = walk_step(w, p, len);
    p += len;
    if (*p == '\0') {
      break;
    }
  }
  if (rc == H3Q_OK) {
    rc = walk_finish(w);
  }
  walk_set_dir(w, w->root);
  if (rc != H3Q_OK && w->file >= 0) {
    close(w->file);
    w->file = -1;
  }
  return rc;
}

/* ------------------------------------------------------------ responses */

static int respond_error(h3q_response *res, int err) {
  int status = h3q_error_to_status(err);
  const char *body = status == 400   ? "bad request\n"
                     : status == 404 ? "not found\n"
                     : status == 503 ? "service unavailable\n"
                                     : "internal server error\n";
  return h3q_response_send(res, status, TEXT_PLAIN, body, strlen(body));
}

static int method_not_allowed(h3q_response *res) {
  static const char body[] = "method not allowed\n";
  int rc = h3q_response_header(res, "allow", "GET, HEAD");
  if (rc != H3Q_OK) {
    return rc;
  }
  return h3q_response_send(res, 405, TEXT_PLAIN, body, sizeof body - 1);
}

/* IMF-fixdate (RFC 9110 section 5.6.7). Names come from tables rather than
 * strftime's %a and %b, which follow the process locale. */
static void http_date(time_t t, char *out, size_t cap) {
  static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed",
                                  "Thu", "Fri", "Sat"};
  static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  struct tm tm;
  if (gmtime_r(&t, &tm) == NULL) {
    t = 0;
    gmtime_r(&t, &tm);
  }
  snprintf(out, cap, "%s, %02d %s %04d %02d:%02d:%02d GMT",
           days[tm.tm_wday % 7], tm.tm_mday, months[tm.tm_mon % 12],
           tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* Status 200 and the entity headers; the body (if any) follows. */
static int set_headers(h3q_response *res, const walk *w) {
  char length[24], date[64];
  snprintf(length, sizeof length, "%" PRIu64, (uint64_t)w->st.st_size);
  http_date(w->st.st_mtime, date, sizeof date);
  int rc = h3q_response_set_status(res, 200);
  if (rc == H3Q_OK) {
    rc = h3q_response_header(res, "content-type", mime_type_for_path(w->name));
  }
  if (rc == H3Q_OK) {
    rc = h3q_response_header(res, "content-length", length);
  }
  if (rc == H3Q_OK) {
    rc = h3q_response_header(res, "last-modified", date);
  }
  return rc;
}

/* ------------------------------------------------------------ streaming */

/* Reads the next chunk. A short file (truncated since fstat) is an error:
 * content-length already promised st_size bytes. */
static int stream_fill(file_stream *fs) {
  uint64_t left = fs->size - fs->offset;
  size_t want = left < fs->cap ? (size_t)left : fs->cap;
  ssize_t n;
  do {
    n = pread(fs->fd, fs->buf, want, (off_t)fs->offset);
  } while (n < 0 && errno == EINTR);
  if (n <= 0) {
    return H3Q_EIO;
  }
  fs->start = 0;
  fs->pending = (size_t)n;
  fs->offset += (uint64_t)n;
  return H3Q_OK;
}

static void stream_free(file_stream *fs) {
  close(fs->fd);
  free(fs);
}

static void stream_closed(h3q_response *res, bool aborted, void *user) {
  stream_free(user);
}

/* Sends as much as the stream takes. After end, reset or a failed write the
 * close callback may already have freed fs, so each of those returns at
 * once. A write is attempted even when capacity is 0: h3q.h arms the
 * writable callback after a short or H3Q_EAGAIN write. */
static void stream_pump(h3q_response *res, void *user) {
  file_stream *fs = user;
  for (;;) {
    if (fs->pending == 0 && fs->offset >= fs->size) {
      h3q_response_end(res);
      return;
    }
    ssize_t cap = h3q_response_capacity(res);
    if (cap < 0) {
      return; /* closed or reset: the close callback frees */
    }
    if (fs->pending == 0 && stream_fill(fs) != H3Q_OK) {
      h3q_response_reset(res, H3_INTERNAL_ERROR);
      return;
    }
    size_t want = fs->pending;
    if (cap > 0 && (size_t)cap < want) {
      want = (size_t)cap;
    }
    ssize_t n = h3q_response_write(res, fs->buf + fs->start, want);
    if (n < 0 && n != H3Q_EAGAIN) {
      return;
    }
    if (n > 0) {
      fs->start += (size_t)n;
      fs->pending -= (size_t)n;
    }
    if (n == H3Q_EAGAIN || (size_t)n < want) {
      h3q_response_on_writable(res, stream_pump, fs);
      return;
    }
  }
}

/* Allocates the stream and reads the first chunk before any header is
 * set, so a failure here can still be answered with a plain error. */
static int stream_new(int fd, uint64_t size, file_stream **out) {
  size_t cap = size < CHUNK_SIZE ? (size_t)size : CHUNK_SIZE;
  file_stream *fs = malloc(sizeof *fs + cap);
  if (fs == NULL) {
    close(fd);
    return H3Q_ENOMEM;
  }
  *fs = (file_stream){.fd = fd, .size = size, .cap = cap};
  int rc = stream_fill(fs);
  if (rc != H3Q_OK) {
    stream_free(fs);
    return rc;
  }
  *out = fs;
  return H3Q_OK;
}

/* Takes ownership of w->file. Empty files and HEAD need no stream. */
static int serve_file(h3q_response *res, walk *w, bool head) {
  uint64_t size = (uint64_t)w->st.st_size;
  file_stream *fs = NULL;
  int rc = H3Q_OK;
  if (!head && size > 0) {
    rc = stream_new(w->file, size, &fs);
  } else {
    close(w->file);
  }
  if (rc != H3Q_OK) {
    return respond_error(res, rc);
  }
  rc = set_headers(res, w);
  if (rc != H3Q_OK) {
    /* Half-built headers must not reach an error response: reset. */
    if (fs != NULL) {
      stream_free(fs);
    }
    h3q_response_reset(res, H3_INTERNAL_ERROR);
    return H3Q_OK;
  }
  if (fs == NULL) {
    return h3q_response_end(res);
  }
  h3q_response_on_close(res, stream_closed, fs);
  stream_pump(res, fs);
  return H3Q_OK;
}

int static_files_handler(h3q_request *req, h3q_response *res, void *user) {
  const static_root *root = user;
  const char *method = h3q_request_method(req);
  if (root == NULL || method == NULL) {
    return H3Q_EINTERNAL;
  }
  bool head = strcmp(method, "HEAD") == 0;
  if (!head && strcmp(method, "GET") != 0) {
    return method_not_allowed(res);
  }
  walk w;
  int rc = resolve(root, h3q_request_path(req), &w);
  if (rc != H3Q_OK) {
    return respond_error(res, rc);
  }
  return serve_file(res, &w, head);
}

/* ---- public API (h3q.h) ---- */

h3q_static *h3q_static_new(const char *root, const h3q_static_options *opts,
                           int *err) {
  (void)opts;
  return (h3q_static *)static_root_new(root, err);
}

void h3q_static_free(h3q_static *st) {
  static_root_free((static_root *)st);
}

int h3q_static_handler(h3q_request *req, h3q_response *res, void *user) {
  return static_files_handler(req, res, user);
}
