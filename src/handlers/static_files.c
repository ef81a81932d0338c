/* Static files over the public response API only.
 *
 * Path resolution walks the decoded path one component at a time with
 * openat(O_NOFOLLOW) from a directory descriptor held for the root, so no
 * symbolic link is ever followed below the root and ".." never reaches the
 * kernel: nothing outside the root can be named, whatever is renamed or
 * linked concurrently.
 *
 * HTTP semantics live in pure modules: http/conditional.c (dates, etags,
 * preconditions), http/http_range.c (Range) and http/dir_listing.c (the
 * listing page). This file is the I/O glue.
 *
 * Streaming: one file_stream per GET holds the descriptor and one chunk
 * buffer. pump() writes what the stream accepts, keeps the rest, and waits
 * for the writable callback; the close callback, which the library calls
 * exactly once per response, is the only place that frees. */
#include "handlers/static_files.h"

#include "handlers/dir_listing.h"
#include "handlers/file_cache.h"
#include "http/conditional.h"
#include "http/headers.h"
#include "http/http_range.h"
#include "util/io_epoch.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CHUNK_SIZE (64 * 1024)
/* Parts up to this size are read whole into the handler's buffer and sent
 * with h3q_response_send (one stream write, no per-request allocation). */
#define SMALL_PART (16 * 1024)
#define H3_INTERNAL_ERROR 0x102
#define INDEX_NAME "index.html"
#define TEXT_PLAIN "text/plain; charset=utf-8"
#define TEXT_HTML "text/html; charset=utf-8"

#ifndef NAME_MAX
#define NAME_MAX 255
#endif
#define NAME_BUF (NAME_MAX + 1)
/* Threads that serve files from one h3q_static (a server's workers) each
 * get a lane of their own; more threads than this share lanes. */
#define STATIC_LANES 16

/* Directories are only searched, never read: O_PATH (Linux) or O_SEARCH
 * (POSIX) need search permission only, not read permission. */
#if defined(O_PATH)
#define DIR_OPEN_FLAGS (O_PATH | O_DIRECTORY | O_CLOEXEC)
#elif defined(O_SEARCH)
#define DIR_OPEN_FLAGS (O_SEARCH | O_DIRECTORY | O_CLOEXEC)
#else
#define DIR_OPEN_FLAGS (O_RDONLY | O_DIRECTORY | O_CLOEXEC)
#endif

/* What one handler call uses besides the root: locked for the call, so
 * the cache entry and descriptor it borrows stay valid while it runs. */
typedef struct static_lane {
  pthread_mutex_t lock;
  file_cache cache;          /* descriptors and metadata of served files */
  uint8_t small[SMALL_PART]; /* a small part, read and sent in one call */
} static_lane;

struct h3q_static {
  int dirfd;             /* the root directory, open for the root's lifetime */
  bool list_directories; /* listing for directories without an index file */
  char *index_file;      /* owned; NULL for none */
  pthread_mutex_t lanes_lock;               /* creating lanes */
  static_lane *_Atomic lanes[STATIC_LANES]; /* created on first use */
};

typedef struct file_stream {
  int fd;
  uint64_t end;    /* one past the last file offset to send */
  uint64_t offset; /* next file offset to read */
  size_t start;    /* first unsent byte in buf */
  size_t pending;  /* unsent bytes in buf */
  size_t cap;      /* buf size: one chunk, less for small parts */
  uint8_t buf[];
} file_stream;

/* ------------------------------------------------------------- the root */

/* One name in a directory: not empty, ".", ".." or longer than NAME_MAX,
 * no '/', '\' or control character. */
static bool index_name_valid(const char *name) {
  return strlen(name) <= NAME_MAX && dir_listing_name_is_safe(name);
}

static int static_init(h3q_static *st, const char *root,
                       const h3q_static_options *o) {
  if (o->index_file != NULL && !index_name_valid(o->index_file)) {
    return H3Q_EINVAL;
  }
  if (o->index_file != NULL) {
    st->index_file = strdup(o->index_file);
    if (st->index_file == NULL) {
      return H3Q_ENOMEM;
    }
  }
  st->list_directories = o->list_directories;
  st->dirfd = root ? open(root, DIR_OPEN_FLAGS) : -1;
  return st->dirfd >= 0 ? H3Q_OK : H3Q_EINVAL;
}

h3q_static *h3q_static_new(const char *root, const h3q_static_options *opts,
                           int *err) {
  static const h3q_static_options defaults = {.list_directories = false,
                                              .index_file = INDEX_NAME};
  h3q_static *st = calloc(1, sizeof *st);
  int rc = H3Q_ENOMEM;
  if (st != NULL) {
    st->dirfd = -1;
    pthread_mutex_init(&st->lanes_lock, NULL);
    rc = static_init(st, root, opts ? opts : &defaults);
  }
  if (rc != H3Q_OK) {
    h3q_static_free(st);
    st = NULL;
  }
  if (err != NULL) {
    *err = rc;
  }
  return st;
}

void h3q_static_free(h3q_static *st) {
  if (st != NULL) {
    if (st->dirfd >= 0) {
      close(st->dirfd);
    }
    for (size_t i = 0; i < STATIC_LANES; i++) {
      static_lane *l = atomic_load(&st->lanes[i]);
      if (l != NULL) {
        file_cache_free(&l->cache);
        pthread_mutex_destroy(&l->lock);
        free(l);
      }
    }
    pthread_mutex_destroy(&st->lanes_lock);
    free(st->index_file);
    free(st);
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
 * reached, or -1; dir is set instead when the path names a directory
 * without an index file and listings are enabled. */
typedef struct walk {
  int root;
  int cur;
  int file;
  int dir; /* a directory to list (readable, owned), or -1 */
  struct stat st;
  char name[NAME_BUF]; /* last component, for the content type */
  /* The decoded path below the root ("a/b.txt"), for the file cache;
   * rel_ok is false when it did not fit (the file is then not cached). */
  char rel[PATH_MAX];
  size_t rel_len;
  bool rel_ok;
} walk;

/* Appends one decoded component to w->rel. */
static void walk_append_rel(walk *w, const char *name) {
  size_t len = strlen(name), sep = w->rel_len ? 1 : 0;
  if (!w->rel_ok || w->rel_len + sep + len >= sizeof w->rel) {
    w->rel_ok = false;
    return;
  }
  if (sep) {
    w->rel[w->rel_len++] = '/';
  }
  memcpy(w->rel + w->rel_len, name, len + 1);
  w->rel_len += len;
}

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
    walk_append_rel(w, w->name);
    rc = open_entry(w->cur, w->name, &fd, &w->st);
  }
  if (rc == H3Q_OK && S_ISDIR(w->st.st_mode)) {
    walk_set_dir(w, fd);
  } else if (rc == H3Q_OK) {
    w->file = fd;
  }
  return rc;
}

/* The directory's index file, which must be a regular file itself. */
static int open_index(walk *w, const char *index) {
  size_t len = strlen(index); /* <= NAME_MAX: checked by h3q_static_new */
  memcpy(w->name, index, len + 1);
  int fd = -1;
  int rc = open_entry(w->cur, w->name, &fd, &w->st);
  if (rc == H3Q_OK && !S_ISREG(w->st.st_mode)) {
    close(fd);
    rc = H3Q_ENOTFOUND;
  }
  if (rc == H3Q_OK) {
    w->file = fd;
    walk_append_rel(w, w->name);
  }
  return rc;
}

/* cur may be an O_PATH descriptor: listing needs one opened for reading. */
static int open_listing(walk *w) {
  int fd;
  do {
    fd = openat(w->cur, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    return errno_to_error(errno);
  }
  w->dir = fd;
  return H3Q_OK;
}

/* A walk that ends on a directory serves its index file; without one it
 * is listed (when enabled) or 404. */
static int walk_finish(walk *w, const h3q_static *st) {
  if (w->file >= 0) {
    return H3Q_OK;
  }
  if (st->index_file != NULL) {
    int rc = open_index(w, st->index_file);
    if (rc != H3Q_ENOTFOUND) {
      return rc;
    }
  }
  return st->list_directories ? open_listing(w) : H3Q_ENOTFOUND;
}

/* Resolves path below the root to an open regular file (w->file) or a
 * directory to list (w->dir). */
static int resolve(const h3q_static *st, const char *path, walk *w) {
  w->root = w->cur = st->dirfd;
  w->file = w->dir = -1;
  w->rel[0] = '\0';
  w->rel_len = 0;
  w->rel_ok = true;
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
    rc = walk_finish(w, st);
  }
  walk_set_dir(w, w->root);
  if (rc != H3Q_OK && w->file >= 0) {
    close(w->file);
    w->file = -1;
  }
  return rc;
}

/* ------------------------------------------------------------ responses */

static int respond_text(h3q_response *res, int status, const char *body) {
  return h3q_response_send(res, status, TEXT_PLAIN, body, strlen(body));
}

static int respond_error(h3q_response *res, int err) {
  int status = h3q_error_to_status(err);
  return respond_text(res, status,
                      status == 400   ? "bad request\n"
                      : status == 404 ? "not found\n"
                      : status == 503 ? "service unavailable\n"
                                      : "internal server error\n");
}

static int method_not_allowed(h3q_response *res) {
  int rc = h3q_response_header(res, "allow", "GET, HEAD");
  return rc == H3Q_OK ? respond_text(res, 405, "method not allowed\n") : rc;
}

/* Half-built headers must not reach an error response: reset instead. */
static int reset_internal(h3q_response *res) {
  h3q_response_reset(res, H3_INTERNAL_ERROR);
  return H3Q_OK;
}

/* What the validators and headers say about one file. */
typedef struct entity {
  uint64_t size;
  time_t mtime;
  const char *type;
  char etag[64]; /* strong: "inode-size-mtime_ns" in hex, quoted */
  char last_modified[HTTP_DATE_SIZE];
} entity;

static void entity_init(entity *e, const walk *w) {
  const struct stat *st = &w->st;
  e->size = (uint64_t)st->st_size;
  e->mtime = st->st_mtim.tv_sec;
  e->type = mime_type_for_path(w->name);
  file_cache_etag(st, e->etag);
  http_date_format(e->mtime, e->last_modified);
}

/* The same, computed once when the file entered the cache. */
static void entity_from_cache(entity *e, const file_cache_entry *c) {
  e->size = (uint64_t)c->st.st_size;
  e->mtime = c->st.st_mtim.tv_sec;
  e->type = c->type;
  memcpy(e->etag, c->etag, sizeof e->etag);
  memcpy(e->last_modified, c->last_modified, sizeof e->last_modified);
}

/* A descriptor to serve from: the cache's (borrowed) or the request's own
 * (closed when done). */
typedef struct file_ref {
  int fd;
  bool borrowed;
  const uint8_t *bytes; /* the whole file, kept by the cache; or NULL */
} file_ref;

static void file_ref_done(file_ref f) {
  if (!f.borrowed) {
    close(f.fd);
  }
}

static int add_validators(h3q_response *res, const entity *e) {
  int rc = h3q_response_header(res, "etag", e->etag);
  return rc == H3Q_OK
             ? h3q_response_header(res, "last-modified", e->last_modified)
             : rc;
}

/* 304: the validators, no body and no content-length (h3q_response_send
 * would add one). */
static int respond_not_modified(h3q_response *res, const entity *e) {
  int rc = h3q_response_set_status(res, 304);
  if (rc == H3Q_OK) {
    rc = add_validators(res, e);
  }
  return rc == H3Q_OK ? h3q_response_end(res) : reset_internal(res);
}

static int respond_unsatisfiable(h3q_response *res, const entity *e) {
  char range[40];
  snprintf(range, sizeof range, "bytes */%" PRIu64, e->size);
  int rc = h3q_response_header(res, "content-range", range);
  return rc == H3Q_OK ? respond_text(res, 416, "range not satisfiable\n")
                      : reset_internal(res);
}

/* The bytes [start, end) of the file, sent with status 200 or 206. */
typedef struct part {
  uint64_t start;
  uint64_t end;
  int status; /* 200, 206, or 416 for nothing */
} part;

/* accept-ranges, the validators and, for a 206, content-range. */
static int set_entity_headers(h3q_response *res, const entity *e,
                              const part *p) {
  char range[72];
  int rc = h3q_response_header(res, "accept-ranges", "bytes");
  if (rc == H3Q_OK) {
    rc = add_validators(res, e);
  }
  if (rc == H3Q_OK && p->status == 206) {
    snprintf(range, sizeof range, "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64,
             p->start, p->end - 1, e->size);
    rc = h3q_response_header(res, "content-range", range);
  }
  return rc;
}

/* Status and entity headers of a 200 or 206; the body (if any) follows. */
static int set_headers(h3q_response *res, const entity *e, const part *p) {
  char length[24];
  snprintf(length, sizeof length, "%" PRIu64, p->end - p->start);
  int rc = h3q_response_set_status(res, p->status);
  if (rc == H3Q_OK) {
    rc = h3q_response_header(res, "content-type", e->type);
  }
  if (rc == H3Q_OK) {
    rc = h3q_response_header(res, "content-length", length);
  }
  return rc == H3Q_OK ? set_entity_headers(res, e, p) : rc;
}

/* ------------------------------------------------------------ streaming */

/* Reads the next chunk. A short file (truncated since fstat) is an error:
 * content-length already promised the bytes. */
static int stream_fill(file_stream *fs) {
  uint64_t left = fs->end - fs->offset;
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

/* Reads [p->start, p->end) (at most SMALL_PART bytes) into out; a short
 * file (truncated since its metadata was read) is H3Q_EIO. */
static int read_small(int fd, const part *p, uint8_t *out) {
  size_t len = (size_t)(p->end - p->start), got = 0;
  while (got < len) { /* each step reads at least one byte or fails */
    ssize_t n = pread(fd, out + got, len - got, (off_t)(p->start + got));
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      return H3Q_EIO;
    }
    got += (size_t)n;
  }
  return H3Q_OK;
}

/* A small part: read whole, then headers and body in one response call. */
static int send_small_part(h3q_response *res, static_lane *lane, file_ref f,
                           const entity *e, const part *p) {
  const uint8_t *body = lane->small;
  int rc = H3Q_OK;
  if (f.bytes != NULL) {
    body = f.bytes + p->start;
  } else {
    rc = read_small(f.fd, p, lane->small);
  }
  file_ref_done(f);
  if (rc != H3Q_OK) {
    return respond_error(res, rc);
  }
  if (h3q_response_set_status(res, p->status) != H3Q_OK ||
      set_entity_headers(res, e, p) != H3Q_OK) {
    return reset_internal(res);
  }
  return h3q_response_send(res, p->status, e->type, body,
                           (size_t)(p->end - p->start));
}

/* The stream's own descriptor: a borrowed one is duplicated (the cache may
 * close its copy while the body still streams). -1 with errno. */
static int own_fd(file_ref f) {
  return f.borrowed ? fcntl(f.fd, F_DUPFD_CLOEXEC, 0) : f.fd;
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
    if (fs->pending == 0 && fs->offset >= fs->end) {
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

/* Allocates the stream for [p->start, p->end) and reads the first chunk
 * before any header is set, so a failure here can still be answered with a
 * plain error. Takes fd (closed on failure). */
static int stream_new(int fd, const part *p, file_stream **out) {
  uint64_t len = p->end - p->start;
  size_t cap = len < CHUNK_SIZE ? (size_t)len : CHUNK_SIZE;
  file_stream *fs = malloc(sizeof *fs + cap);
  if (fs == NULL) {
    close(fd);
    return H3Q_ENOMEM;
  }
  *fs = (file_stream){.fd = fd, .end = p->end, .offset = p->start, .cap = cap};
  int rc = stream_fill(fs);
  if (rc != H3Q_OK) {
    stream_free(fs);
    return rc;
  }
  *out = fs;
  return H3Q_OK;
}

/* Done with f when it returns. An empty part and HEAD need no stream. */
static int send_part(h3q_response *res, static_lane *lane, file_ref f,
                     const entity *e, const part *p, bool head) {
  file_stream *fs = NULL;
  int rc = H3Q_OK;
  if (!head && p->end > p->start && p->end - p->start <= SMALL_PART) {
    return send_small_part(res, lane, f, e, p);
  }
  if (!head && p->end > p->start) {
    int fd = own_fd(f);
    rc = fd >= 0 ? stream_new(fd, p, &fs) : errno_to_error(errno);
  } else {
    file_ref_done(f);
  }
  if (rc != H3Q_OK) {
    return respond_error(res, rc);
  }
  if (set_headers(res, e, p) != H3Q_OK) {
    if (fs != NULL) {
      stream_free(fs);
    }
    return reset_internal(res);
  }
  if (fs == NULL) {
    return h3q_response_end(res);
  }
  h3q_response_on_close(res, stream_closed, fs);
  stream_pump(res, fs);
  return H3Q_OK;
}

/* ------------------------------------------------------- files, ranges */

/* The bytes to send. Range applies to GET only (RFC 9110 section 14.2),
 * and only when If-Range, if present, holds. */
static part select_part(h3q_request *req, const entity *e, bool head) {
  part p = {0, e->size, 200};
  const char *range = head ? NULL : h3q_request_header(req, "range");
  if (range == NULL ||
      !conditional_if_range(h3q_request_header(req, "if-range"), e->etag,
                            e->mtime)) {
    return p;
  }
  http_byte_range r;
  switch (http_range_parse(range, e->size, &r)) {
  case HTTP_RANGE_SINGLE:
    p = (part){r.first, r.last + 1, 206};
    break;
  case HTTP_RANGE_UNSATISFIABLE:
    p.status = 416;
    break;
  default: /* none, invalid, or several: the whole file */
    break;
  }
  return p;
}

/* Done with f when it returns. Preconditions first (RFC 9110 section
 * 13.2.2), then Range. */
static int serve_file(h3q_request *req, h3q_response *res, static_lane *lane,
                      file_ref file, const entity *ep, bool head) {
  entity e = *ep;
  conditional_fields f = {
      .if_match = h3q_request_header(req, "if-match"),
      .if_unmodified_since = h3q_request_header(req, "if-unmodified-since"),
      .if_none_match = h3q_request_header(req, "if-none-match"),
      .if_modified_since = h3q_request_header(req, "if-modified-since"),
  };
  conditional_result c = conditional_evaluate(&f, e.etag, e.mtime);
  part p = select_part(req, &e, head);
  if (c == COND_PROCEED && p.status != 416) {
    return send_part(res, lane, file, &e, &p, head);
  }
  file_ref_done(file);
  if (c == COND_NOT_MODIFIED) {
    return respond_not_modified(res, &e);
  }
  if (c == COND_PRECONDITION_FAILED) {
    return respond_text(res, 412, "precondition failed\n");
  }
  return respond_unsatisfiable(res, &e);
}

/* ------------------------------------------------------------- listings */

#define LISTING_MAX_ENTRIES 10000

typedef struct listing {
  dir_listing_entry *entries;
  size_t count;
  size_t cap;
  bool truncated;
} listing;

static void listing_free(listing *l) {
  for (size_t i = 0; i < l->count; i++) {
    free((char *)l->entries[i].name);
  }
  free(l->entries);
}

/* Adds name if the handler could serve it: a safe name naming a regular
 * file or directory (not a symlink). */
static int listing_add(listing *l, int dir, const char *name) {
  struct stat st;
  if (!dir_listing_name_is_safe(name) ||
      fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
      !(S_ISDIR(st.st_mode) || S_ISREG(st.st_mode))) {
    return H3Q_OK;
  }
  if (l->count == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 64;
    dir_listing_entry *e = realloc(l->entries, cap * sizeof *e);
    if (e == NULL) {
      return H3Q_ENOMEM;
    }
    l->entries = e;
    l->cap = cap;
  }
  char *copy = strdup(name);
  if (copy == NULL) {
    return H3Q_ENOMEM;
  }
  l->entries[l->count++] = (dir_listing_entry){.name = copy,
                                               .is_dir = S_ISDIR(st.st_mode),
                                               .size = (uint64_t)st.st_size};
  return H3Q_OK;
}

/* Reads at most LISTING_MAX_ENTRIES entries of fd (which it closes). */
static int listing_read(int fd, listing *l) {
  DIR *d = fdopendir(fd);
  if (d == NULL) {
    int e = errno;
    close(fd);
    return errno_to_error(e);
  }
  int rc = H3Q_OK;
  for (size_t seen = 0; rc == H3Q_OK; seen++) {
    errno = 0;
    struct dirent *de = readdir(d);
    if (de == NULL) {
      rc = errno == 0 ? H3Q_OK : H3Q_EIO;
      break;
    }
    if (seen == LISTING_MAX_ENTRIES) {
      l->truncated = true;
      break;
    }
    rc = listing_add(l, dirfd(d), de->d_name);
  }
  closedir(d);
  return rc;
}

/* "/dir" lists as "/dir/" so that relative links resolve below it. */
static int redirect_to_slash(h3q_request *req, h3q_response *res) {
  const char *path = h3q_request_path(req), *query = h3q_request_query(req);
  size_t len = strlen(path) + strlen(query) + 3;
  char *location = malloc(len);
  if (location == NULL) {
    return H3Q_ENOMEM;
  }
  snprintf(location, len, "%s/%s%s", path, query[0] ? "?" : "", query);
  int rc = h3q_response_header(res, "location", location);
  free(location);
  return rc == H3Q_OK ? respond_text(res, 301, "moved permanently\n") : rc;
}

/* Takes ownership of dir. target is the path below the root. */
static int serve_listing(h3q_request *req, h3q_response *res, int dir,
                         const char *target) {
  if (target[strlen(target) - 1] != '/') {
    close(dir);
    return redirect_to_slash(req, res);
  }
  listing l = {0};
  int rc = listing_read(dir, &l);
  dir_listing_buf page = {0};
  bool parent = target[strspn(target, "/")] != '\0';
  if (rc == H3Q_OK &&
      !dir_listing_render(h3q_request_path(req), l.entries, l.count, parent,
                          l.truncated, &page)) {
    rc = H3Q_ENOMEM;
  }
  listing_free(&l);
  if (rc != H3Q_OK) {
    return respond_error(res, rc);
  }
  rc = h3q_response_send(res, 200, TEXT_HTML, page.data, page.len);
  free(page.data);
  return rc;
}

/* -------------------------------------------------------------- handler */

/* The path below the root: "/" and the route's wildcard when it has one,
 * else the whole request path. *owned is what to free. */
static const char *target_path(h3q_request *req, char **owned) {
  const char *wild = h3q_request_param(req, "*");
  *owned = NULL;
  if (wild == NULL) {
    return h3q_request_path(req);
  }
  size_t len = strlen(wild);
  *owned = malloc(len + 2);
  if (*owned != NULL) {
    (*owned)[0] = '/';
    memcpy(*owned + 1, wild, len + 1);
  }
  return *owned;
}

/* A walk that reached a regular file: remembered in the cache (which then
 * owns the descriptor) when possible, then served. */
static int serve_walked(h3q_request *req, h3q_response *res, static_lane *lane,
                        const char *target, walk *w, bool head,
                        uint64_t epoch) {
  entity e;
  const file_cache_entry *c =
      w->rel_ok ? file_cache_put(&lane->cache, target, w->rel, w->name, w->file,
                                 &w->st, epoch)
                : NULL;
  if (c != NULL) {
    entity_from_cache(&e, c);
    return serve_file(req, res, lane, (file_ref){c->fd, true, c->bytes}, &e,
                      head);
  }
  entity_init(&e, w);
  return serve_file(req, res, lane, (file_ref){w->file, false, NULL}, &e, head);
}

/* Serves target from the cache when it holds it unchanged. 1 when served
 * (rc set), 0 when the path must be walked. */
static int serve_cached(h3q_request *req, h3q_response *res,
                        const h3q_static *st, static_lane *lane,
                        const char *target, bool head, uint64_t epoch,
                        int *rc) {
  const file_cache_entry *c =
      file_cache_get(&lane->cache, st->dirfd, target, epoch);
  if (c == NULL) {
    return 0;
  }
  entity e;
  entity_from_cache(&e, c);
  *rc = serve_file(req, res, lane, (file_ref){c->fd, true, c->bytes}, &e, head);
  return 1;
}

/* ---------------------------------------------------------------- lanes */

static atomic_uint lanes_given; /* threads that got a lane number */
static _Thread_local unsigned thread_lane_plus1; /* 0: none yet */

/* This thread's lane number: the same for every h3q_static. */
static unsigned thread_lane(void) {
  if (thread_lane_plus1 == 0) {
    thread_lane_plus1 = atomic_fetch_add(&lanes_given, 1) % STATIC_LANES + 1;
  }
  return thread_lane_plus1 - 1;
}

static static_lane *lane_new(void) {
  static_lane *l = calloc(1, sizeof *l);
  if (l != NULL) {
    pthread_mutex_init(&l->lock, NULL);
    file_cache_init(&l->cache);
  }
  return l;
}

/* The calling thread's lane, created on first use and locked; NULL when
 * out of memory. */
static static_lane *lane_enter(h3q_static *st) {
  unsigned i = thread_lane();
  static_lane *l = atomic_load_explicit(&st->lanes[i], memory_order_acquire);
  if (l == NULL) {
    pthread_mutex_lock(&st->lanes_lock);
    l = atomic_load_explicit(&st->lanes[i], memory_order_relaxed);
    if (l == NULL && (l = lane_new()) != NULL) {
      atomic_store_explicit(&st->lanes[i], l, memory_order_release);
    }
    pthread_mutex_unlock(&st->lanes_lock);
  }
  if (l != NULL) {
    pthread_mutex_lock(&l->lock);
  }
  return l;
}

static int serve_target(h3q_request *req, h3q_response *res, h3q_static *st,
                        static_lane *lane, const char *target, bool head) {
  int rc = H3Q_OK;
  uint64_t epoch = io_epoch_now(); /* before any check it stamps */
  if (serve_cached(req, res, st, lane, target, head, epoch, &rc)) {
    return rc;
  }
  walk w;
  rc = resolve(st, target, &w);
  if (rc != H3Q_OK) {
    return respond_error(res, rc);
  }
  if (w.file >= 0) {
    return serve_walked(req, res, lane, target, &w, head, epoch);
  }
  return serve_listing(req, res, w.dir, target);
}

int h3q_static_handler(h3q_request *req, h3q_response *res, void *user) {
  h3q_static *st = user;
  const char *method = h3q_request_method(req);
  if (st == NULL || method == NULL) {
    return H3Q_EINTERNAL;
  }
  bool head = strcmp(method, "HEAD") == 0;
  if (!head && strcmp(method, "GET") != 0) {
    return method_not_allowed(res);
  }
  char *owned;
  const char *target = target_path(req, &owned);
  if (target == NULL) {
    return respond_error(res, H3Q_ENOMEM);
  }
  static_lane *lane = lane_enter(st);
  int rc = lane != NULL ? serve_target(req, res, st, lane, target, head)
                        : respond_error(res, H3Q_ENOMEM);
  if (lane != NULL) {
    pthread_mutex_unlock(&lane->lock);
  }
  free(owned);
  return rc;
}
