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

#include "util/file_snapshot.h"
#include "util/io_epoch.h"

#define CHUNK_SIZE (64u * 1024u)
#define CACHE_SLOTS 64
/* Files of up to BYTES_MAX bytes are kept in memory (util/file_snapshot.h
 * says when that is safe), at most BYTES_BUDGET bytes per cache. */
#define BYTES_MAX (16u * 1024u)
#define BYTES_BUDGET (1024u * 1024u)

/* An open descriptor shared by the cache and the responses reading it;
 * closed when the last of them lets go. */
typedef struct fd_entry {
  char *path;
  int fd;
  struct stat st;   /* fstat of fd at open */
  unsigned refs;    /* the cache's slot and each host_file; cache lock */
  uint64_t used;    /* cache clock at the last hit */
  uint64_t checked; /* io epoch of the last stat that matched */
  uint8_t *bytes;   /* the whole file, or NULL; set once, cache lock */
} fd_entry;

struct host_file_cache {
  pthread_mutex_t lock;
  fd_entry *slots[CACHE_SLOTS];
  uint64_t clock;
  size_t bytes; /* kept file bytes, at most BYTES_BUDGET */
};

struct host_file {
  host_file_cache *cache;
  fd_entry *entry;
  const uint8_t *bytes; /* the entry's kept bytes when it was opened */
  uint64_t size;        /* the entry's fstat size */
  uint64_t offset;      /* next byte to read */
  uint8_t *buf;         /* read ahead, allocated at the first send */
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
static void entry_release(host_file_cache *c, fd_entry *e) {
  if (--e->refs > 0)
    return;
  if (e->bytes)
    c->bytes -= (size_t)e->st.st_size;
  free(e->bytes);
  close(e->fd);
  free(e->path);
  free(e);
}

/* Keeps e's bytes when the file is small and settled and they fit the
 * budget. Cache lock held. */
static void keep_bytes(host_file_cache *c, fd_entry *e) {
  if (!e->bytes)
    e->bytes = file_keep_settled(e->fd, &e->st, BYTES_MAX, FILE_SETTLE_S,
                                 &c->bytes, BYTES_BUDGET);
}

void host_file_cache_free(host_file_cache *c) {
  if (!c)
    return;
  for (size_t i = 0; i < CACHE_SLOTS; i++)
    if (c->slots[i])
      entry_release(c, c->slots[i]);
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

/* A reference to the cached descriptor of path when it was found
 * unchanged at io epoch epoch (util/io_epoch.h: no request answered now
 * was sent after a change that check missed); NULL otherwise. Cache lock
 * held. */
static fd_entry *cache_checked(host_file_cache *c, const char *path,
                               uint64_t epoch) {
  size_t i = find_slot(c, path);
  if (i == CACHE_SLOTS || c->slots[i]->checked != epoch)
    return NULL;
  fd_entry *e = c->slots[i];
  e->used = ++c->clock;
  e->refs++;
  return e;
}

/* A reference to the cached descriptor of path when it still names the
 * file st (a stat taken at io epoch epoch or later) describes; a stale
 * entry is dropped. Cache lock held. */
static fd_entry *cache_hit(host_file_cache *c, const char *path,
                           const struct stat *st, uint64_t epoch) {
  size_t i = find_slot(c, path);
  if (i == CACHE_SLOTS)
    return NULL;
  fd_entry *e = c->slots[i];
  if (!file_unchanged(&e->st, st)) {
    c->slots[i] = NULL;
    entry_release(c, e);
    return NULL;
  }
  e->checked = epoch;
  keep_bytes(c, e); /* it may have settled since */
  e->used = ++c->clock;
  e->refs++;
  return e;
}

/* Puts e in a free or the least recently used slot (replacing an entry
 * for the same path). Cache lock held. */
static void cache_put(host_file_cache *c, fd_entry *e, uint64_t epoch) {
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
    entry_release(c, c->slots[victim]);
  e->checked = epoch;
  keep_bytes(c, e);
  e->used = ++c->clock;
  e->refs++;
  c->slots[victim] = e;
}

/* Forgets path's entry, if any. */
static void cache_drop(host_file_cache *c, const char *path) {
  pthread_mutex_lock(&c->lock);
  size_t i = find_slot(c, path);
  if (i < CACHE_SLOTS) {
    entry_release(c, c->slots[i]);
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

/* The descriptor for path, and its kept bytes (or NULL): the cached one
 * when path still names that unchanged file (no system call when it was
 * checked in this io epoch, else one stat instead of open, fstat and
 * close), else a new one that the cache keeps. */
static int entry_get(host_file_cache *c, const char *path, int64_t expect_size,
                     fd_entry **out, const uint8_t **bytes) {
  uint64_t epoch = io_epoch_now(); /* before the check it stamps */
  pthread_mutex_lock(&c->lock);
  *out = cache_checked(c, path, epoch);
  *bytes = *out ? (*out)->bytes : NULL;
  pthread_mutex_unlock(&c->lock);
  if (*out) {
    int rc = check_file(&(*out)->st, expect_size);
    if (rc != H3Q_OK) {
      pthread_mutex_lock(&c->lock);
      entry_release(c, *out);
      pthread_mutex_unlock(&c->lock);
    }
    return rc;
  }
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
  *out = cache_hit(c, path, &st, epoch);
  *bytes = *out ? (*out)->bytes : NULL;
  pthread_mutex_unlock(&c->lock);
  if (*out)
    return H3Q_OK;
  rc = entry_open(path, expect_size, out);
  if (rc != H3Q_OK)
    return rc;
  pthread_mutex_lock(&c->lock);
  cache_put(c, *out, epoch);
  *bytes = (*out)->bytes;
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
  const uint8_t *bytes;
  int rc = entry_get(c, path, expect_size, &e, &bytes);
  if (rc != H3Q_OK) {
    free(f);
    return rc;
  }
  /* The size of the descriptor's fstat: the bytes it can read. */
  *f = (host_file){
      .cache = c, .entry = e, .bytes = bytes, .size = (uint64_t)e->st.st_size};
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

/* The same from the kept bytes: no read, no buffer. */
static int send_kept(host_file *f, h3q_response *res) {
  while (f->offset < f->size) { /* each round writes a byte or more, or stops */
    ssize_t n = h3q_response_write(res, f->bytes + f->offset,
                                   (size_t)(f->size - f->offset));
    if (n == H3Q_EAGAIN || n == 0)
      return 0;
    if (n < 0)
      return (int)n;
    f->offset += (uint64_t)n;
    if (f->offset < f->size)
      return 0; /* a short write: the writable callback follows */
  }
  return 1;
}

int host_file_send(host_file *f, h3q_response *res) {
  if (f->bytes)
    return send_kept(f, res);
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
  entry_release(f->cache, f->entry);
  pthread_mutex_unlock(&f->cache->lock);
  free(f->buf);
  free(f);
}
