/* Open descriptors and metadata of recently served files, for the static
 * file handler: a hit costs one fstatat instead of fstatat, openat, fstat
 * and close.
 *
 * Correctness first: every lookup re-checks the path with fstatat (no
 * symlink followed at the last component) and drops the entry unless the
 * path still names the same inode with the same size, mtime and ctime. A
 * file rewritten in place (new size or times), replaced by rename, deleted
 * or chmod-ed is therefore never served from the entry; the caller walks
 * the path again. Reads go to the descriptor, so the bytes are the file's
 * current ones, exactly as without the cache.
 *
 * Bounded: FILE_CACHE_SLOTS entries (descriptors), found by hashing the
 * request path into a window of FILE_CACHE_PROBE slots; a full window
 * evicts its least recently used entry. Loop thread only. */
#ifndef H3Q_HANDLERS_FILE_CACHE_H
#define H3Q_HANDLERS_FILE_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "http/conditional.h"

#define FILE_CACHE_SLOTS 128 /* a power of two */
#define FILE_CACHE_PROBE 8

typedef struct file_cache_entry {
  char *key;        /* the request path it answers; NULL: free slot */
  char *rel;        /* the file below the root, for re-checking */
  uint64_t hash;    /* of key */
  uint64_t used;    /* file_cache.clock at the last hit */
  int fd;           /* open for reading; owned by the cache */
  struct stat st;   /* at open time */
  const char *type; /* content type (static string) */
  char etag[64];    /* strong: "INODE-SIZE-MTIMENS" in hex, quoted */
  char last_modified[HTTP_DATE_SIZE];
} file_cache_entry;

typedef struct file_cache {
  file_cache_entry slots[FILE_CACHE_SLOTS];
  uint64_t clock; /* counts lookups and inserts: recency for eviction */
} file_cache;

/* An empty cache. */
void file_cache_init(file_cache *c);

/* Closes every descriptor and frees the entries. */
void file_cache_free(file_cache *c);

/* The entry for key when the path it resolved to (below root) still names
 * the same unchanged file; a stale entry is dropped. NULL when none. The
 * entry stays valid until the next file_cache call. */
const file_cache_entry *file_cache_get(file_cache *c, int root,
                                       const char *key);

/* Remembers that key resolved to the regular file rel (below root) open as
 * fd with metadata st; the cache takes fd. Fills the entry's etag, date
 * and type (from name, the last path component). Returns the entry, or
 * NULL when out of memory (fd is then still the caller's). */
const file_cache_entry *file_cache_put(file_cache *c, const char *key,
                                       const char *rel, const char *name,
                                       int fd, const struct stat *st);

/* The strong entity-tag of a file with metadata st, into out[64]. */
void file_cache_etag(const struct stat *st, char out[64]);

#endif
