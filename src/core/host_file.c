/* A response body read from a file (host_file.h). */
#include "core/host_file.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHUNK_SIZE (64u * 1024u)
#define CACHE_SLOTS 64

/* An open descriptor shared by the cache and the responses reading it;
 * closed when the last of them lets go. */
typedef struct fd_entry {
  char *path;
  int fd;
  struct stat st; /* fstat of fd at open */
  unsigned refs;  /* the cache's slot and each host_file; cache lock */
  uint64_t used;  /* cache clock at the last hit */
} fd_entry;

struct host_file_cache {
  pthread_mutex_t lock;
  fd_entry *slots[CACHE_SLOTS];
  uint64_t clock;
};

struct host_file {
  host_file_cache *cache;
  fd_entry *entry;
  uint64_t size;   /* the entry's fstat size */
  uint64_t offset; /* next byte to read */
  uint8_t *buf;    /* read ahead, allocated at the first send */
  size_t cap;
  size_t start; /* buf[start..start+pending) waits to be written */
  size_t pending;
};

static int path_error(int e) {
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

/* Whether a and b describe the same unchanged file. */
static bool same_file(const struct stat *a, const struct stat *b) {
  return a->st_dev == b->st_dev && a->st_ino == b->st_ino &&
         a->st_size == b->st_size && a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
         a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
         a->st_ctim.tv_sec == b->st_ctim.tv_sec &&
         a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/* A regular file of expect_size bytes (any size when negative)? */
static int check_file(const struct stat *st, int64_t expect_size) {
  if (!S_ISREG(st->st_mode) || st->st_size < 0 ||
      (expect_size >= 0 && st->st_size != expect_size))
    return H3Q_EINVAL;
  return H3Q_OK;
}

host_file_cache *host_file_cache_new(void) {
  host_file_cache *c = calloc(1, sizeof *c);
  if (c)
    pthread_mutex_init(&c->lock, NULL);
  return c;
}

/* Drops one reference; cache lock held. */
static void entry_release(fd_entry *e) {
  if (--e->refs > 0)
    return;
  close(e->fd);
  free(e->path);
  free(e);
}

void host_file_cache_free(host_file_cache *c) {
  if (!c)
    return;
  for (size_t i = 0; i < CACHE_SLOTS; i++)
    if (c->slots[i])
      entry_release(c->slots[i]);
  pthread_mutex_destroy(&c->lock);
  free(c);
}

/* The slot holding path, or CACHE_SLOTS; cache lock held. */
static size_t find_slot(const host_file_cache *c, const char *path) {
  for (size_t i = 0; i < CACHE_SLOTS; i++)
    if (c->slots[i] && strcmp(c->slots[i]->path, path) == 0)
      return i;
  return CACHE_SLOTS;
}

/* A reference to the cached descriptor of path when it still names the
 * file st describes; a stale entry is dropped. Cache lock held. */
static fd_entry *cache_hit(host_file_cache *c, const char *path,
                           const struct stat *st) {
  size_t i = find_slot(c, path);
  if (i == CACHE_SLOTS)
    return NULL;
  fd_entry *e = c->slots[i];
  if (!same_file(&e->st, st)) {
    c->slots[i] = NULL;
    entry_release(e);
    return NULL;
  }
  e->used = ++c->clock;
  e->refs++;
  return e;
}

/* Puts e in a free or the least recently used slot (replacing an entry
 * for the same path). Cache lock held. */
static void cache_put(host_file_cache *c, fd_entry *e) {
  size_t victim = find_slot(c, e->path);
  for (size_t i = 0; victim == CACHE_SLOTS && i < CACHE_SLOTS; i++)
    if (!c->slots[i])
      victim = i;
  if (victim == CACHE_SLOTS) {
    victim = 0;
    for (size_t i = 1; i < CACHE_SLOTS; i++)
      if (c->slots[i]->used < c->slots[victim]->used)
        victim = i;
  }
  if (c->slots[victim])
    entry_release(c->slots[victim]);
  e->used = ++c->clock;
  e->refs++;
  c->slots[victim] = e;
}

/* Forgets path's entry, if any. */
static void cache_drop(host_file_cache *c, const char *path) {
  pthread_mutex_lock(&c->lock);
  size_t i = find_slot(c, path);
  if (i < CACHE_SLOTS) {
    entry_release(c->slots[i]);
    c->slots[i] = NULL;
  }
  pthread_mutex_unlock(&c->lock);
}

/* Opens path; the entry has one reference (the caller's). */
static int entry_open(const char *path, int64_t expect_size, fd_entry **out) {
  /* O_NONBLOCK: a FIFO must not block the caller; it is refused below. */
  int fd;
  do {
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0)
    return path_error(errno);
  fd_entry *e = calloc(1, sizeof *e);
  int rc = e ? H3Q_OK : H3Q_ENOMEM;
  if (rc == H3Q_OK && fstat(fd, &e->st) != 0)
    rc = H3Q_EIO;
  if (rc == H3Q_OK)
    rc = check_file(&e->st, expect_size);
  if (rc == H3Q_OK && !(e->path = strdup(path)))
    rc = H3Q_ENOMEM;
  if (rc != H3Q_OK) {
    close(fd);
    free(e);
    return rc;
  }
  e->fd = fd;
  e->refs = 1;
  *out = e;
  return H3Q_OK;
}

/* The descriptor for path: the cached one when path still names that
 * unchanged file (one stat instead of open, fstat and close), else a new
 * one that the cache keeps. */
static int entry_get(host_file_cache *c, const char *path, int64_t expect_size,
                     fd_entry **out) {
  struct stat st;
  if (stat(path, &st) != 0) {
    int rc = path_error(errno);
    cache_drop(c, path); /* gone: do not keep it open */
    return rc;
  }
  int rc = check_file(&st, expect_size);
  if (rc != H3Q_OK)
    return rc;
  pthread_mutex_lock(&c->lock);
  *out = cache_hit(c, path, &st);
  pthread_mutex_unlock(&c->lock);
  if (*out)
    return H3Q_OK;
  rc = entry_open(path, expect_size, out);
  if (rc != H3Q_OK)
    return rc;
  pthread_mutex_lock(&c->lock);
  cache_put(c, *out);
  pthread_mutex_unlock(&c->lock);
  return H3Q_OK;
}

int host_file_open(host_file_cache *c, const char *path, int64_t expect_size,
                   host_file **out) {
  *out = NULL;
  host_file *f = calloc(1, sizeof *f);
  if (!f)
    return H3Q_ENOMEM;
  fd_entry *e;
  int rc = entry_get(c, path, expect_size, &e);
  if (rc != H3Q_OK) {
    free(f);
    return rc;
  }
  /* The size of the descriptor's fstat: the bytes it can read. */
  *f = (host_file){.cache = c, .entry = e, .size = (uint64_t)e->st.st_size};
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
    n = pread(f->entry->fd, f->buf, want, (off_t)f->offset);
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
  pthread_mutex_lock(&f->cache->lock);
  entry_release(f->entry);
  pthread_mutex_unlock(&f->cache->lock);
  free(f->buf);
  free(f);
}
