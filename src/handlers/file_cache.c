#include "handlers/file_cache.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http/headers.h"
#include "util/file_snapshot.h"

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
  c->settle_s = FILE_SETTLE_S;
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

static file_cache_entry *find(file_cache *c, const char *key, uint64_t h) {
  for (size_t i = 0; i < FILE_CACHE_PROBE; i++) {
    file_cache_entry *e = &c->slots[slot_at(h, i)];
    if (e->key && e->hash == h && strcmp(e->key, key) == 0)
      return e;
  }
  return NULL;
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

/* The whole file when it is small, settled and fits the budget. */
static uint8_t *keep_bytes(file_cache *c, int fd, const struct stat *st) {
  return file_keep_settled(fd, st, FILE_CACHE_BYTES_MAX, c->settle_s, &c->bytes,
                           FILE_CACHE_BYTES_BUDGET);
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
        !S_ISREG(now.st_mode) || !file_unchanged(&e->st, &now)) {
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
