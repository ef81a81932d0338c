#include "handlers/file_cache.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "http/headers.h"

static uint64_t hash_str(const char *s) {
  uint64_t h = UINT64_C(14695981039346656037); /* FNV-1a */
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * UINT64_C(1099511628211);
  return h;
}

static size_t slot_at(uint64_t hash, size_t i) {
  return (size_t)(hash + i) & (FILE_CACHE_SLOTS - 1);
}

static void entry_clear(file_cache_entry *e) {
  if (!e->key)
    return;
  close(e->fd);
  free(e->key);
  free(e->rel);
  memset(e, 0, sizeof *e);
}

static void entry_drop(file_cache *c, file_cache_entry *e) {
  if (e->bytes) {
    c->bytes -= (size_t)e->st.st_size;
    free(e->bytes);
  }
  entry_clear(e);
}

void file_cache_init(file_cache *c) {
  memset(c, 0, sizeof *c);
  c->settle_s = FILE_CACHE_SETTLE_S;
}

void file_cache_free(file_cache *c) {
  for (size_t i = 0; i < FILE_CACHE_SLOTS; i++)
    entry_drop(c, &c->slots[i]);
}

static uint64_t ns_of(const struct timespec *t) {
  return (uint64_t)t->tv_sec * UINT64_C(1000000000) + (uint64_t)t->tv_nsec;
}

void file_cache_etag(const struct stat *st, char out[64]) {
  snprintf(out, 64, "\"%" PRIx64 "-%" PRIx64 "-%" PRIx64 "\"",
           (uint64_t)st->st_ino, (uint64_t)st->st_size, ns_of(&st->st_mtim));
}

/* Same inode, same size and times: nothing about the file changed that
 * its headers or its bytes' length depend on. ctime also moves on chmod,
 * chown, link count and rename. */
static bool same_file(const struct stat *a, const struct stat *b) {
  return a->st_dev == b->st_dev && a->st_ino == b->st_ino &&
         a->st_size == b->st_size && S_ISREG(b->st_mode) &&
         ns_of(&a->st_mtim) == ns_of(&b->st_mtim) &&
         ns_of(&a->st_ctim) == ns_of(&b->st_ctim);
}

static file_cache_entry *find(file_cache *c, const char *key, uint64_t h) {
  for (size_t i = 0; i < FILE_CACHE_PROBE; i++) {
    file_cache_entry *e = &c->slots[slot_at(h, i)];
    if (e->key && e->hash == h && strcmp(e->key, key) == 0)
      return e;
  }
  return NULL;
}

/* Reads the whole file when it is small, settled (see file_cache.h) and
 * fits the budget; NULL otherwise, or when the read comes up short. */
static uint8_t *keep_bytes(file_cache *c, int fd, const struct stat *st) {
  size_t size = (size_t)st->st_size;
  if (st->st_size <= 0 || size > FILE_CACHE_BYTES_MAX ||
      c->bytes + size > FILE_CACHE_BYTES_BUDGET ||
      st->st_ctim.tv_sec > time(NULL) - c->settle_s)
    return NULL;
  uint8_t *b = malloc(size);
  size_t got = 0;
  while (b && got < size) {
    ssize_t n = pread(fd, b + got, size - got, (off_t)got);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      free(b);
      return NULL;
    }
    got += (size_t)n;
  }
  if (b)
    c->bytes += size;
  return b;
}

/* A free slot in key's window, else its least recently used one. */
static file_cache_entry *victim(file_cache *c, uint64_t h) {
  file_cache_entry *oldest = NULL;
  for (size_t i = 0; i < FILE_CACHE_PROBE; i++) {
    file_cache_entry *e = &c->slots[slot_at(h, i)];
    if (!e->key)
      return e;
    if (!oldest || e->used < oldest->used)
      oldest = e;
  }
  return oldest;
}

const file_cache_entry *file_cache_get(file_cache *c, int root, const char *key,
                                       uint64_t epoch) {
  uint64_t h = hash_str(key);
  file_cache_entry *e = find(c, key, h);
  if (!e)
    return NULL;
  if (e->checked != epoch) {
    struct stat now;
    if (fstatat(root, e->rel, &now, AT_SYMLINK_NOFOLLOW) != 0 ||
        !same_file(&e->st, &now)) {
      entry_drop(c, e);
      return NULL;
    }
    e->checked = epoch;
    if (!e->bytes) /* it may have settled since */
      e->bytes = keep_bytes(c, e->fd, &e->st);
  }
  e->used = ++c->clock;
  return e;
}

const file_cache_entry *file_cache_put(file_cache *c, const char *key,
                                       const char *rel, const char *name,
                                       int fd, const struct stat *st,
                                       uint64_t epoch) {
  uint64_t h = hash_str(key);
  char *k = strdup(key), *r = strdup(rel);
  if (!k || !r) {
    free(k);
    free(r);
    return NULL;
  }
  file_cache_entry *e = find(c, key, h);
  if (!e)
    e = victim(c, h);
  entry_drop(c, e);
  *e = (file_cache_entry){.key = k,
                          .rel = r,
                          .hash = h,
                          .used = ++c->clock,
                          .checked = epoch,
                          .fd = fd,
                          .bytes = keep_bytes(c, fd, st),
                          .st = *st,
                          .type = mime_type_for_path(name)};
  file_cache_etag(st, e->etag);
  http_date_format(st->st_mtim.tv_sec, e->last_modified);
  return e;
}
