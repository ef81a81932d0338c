/* Open descriptors and metadata of recently served files, and the bytes
 * of small ones, for the static file handler: a hit costs at most one
 * fstatat instead of fstatat, openat, fstat, pread and close.
 *
 * Correctness first: a lookup re-checks the path with fstatat (no symlink
 * followed at the last component) and drops the entry unless the path
 * still names the same inode with the same size, mtime and ctime. A file
 * rewritten in place (new size or times), replaced by rename, deleted or
 * chmod-ed is therefore never served from the entry; the caller walks the
 * path again. The check is made once per io epoch (util/io_epoch.h): the
 * requests of one read of datagrams share it, and none of them was sent
 * after a change it missed.
 *
 * Bytes: reads go to the descriptor, so they are the file's current ones,
 * except for files of at most FILE_CACHE_BYTES_MAX bytes whose ctime was
 * settle_s seconds old when they entered the cache or at a later check:
 * those are kept in memory, and the check above drops them with the entry
 * at any change (util/file_snapshot.h says why that is enough). At most
 * FILE_CACHE_BYTES_BUDGET bytes are kept per cache.
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
#define FILE_CACHE_BYTES_MAX (16 * 1024)
#define FILE_CACHE_BYTES_BUDGET (1024 * 1024)

typedef struct file_cache_entry {
  char *key;        /* the request path it answers; NULL: free slot */
  char *rel;        /* the file below the root, for re-checking */
  uint64_t hash;    /* of key */
  uint64_t used;    /* file_cache.clock at the last hit */
  uint64_t checked; /* io epoch of the last fstatat that matched */
  int fd;           /* open for reading; owned by the cache */
  uint8_t *bytes;   /* the whole file (st.st_size bytes), or NULL */
  struct stat st;   /* at open time */
  const char *type; /* content type (static string) */
  char etag[64];    /* strong: "INODE-SIZE-MTIMENS" in hex, quoted */
  char last_modified[HTTP_DATE_SIZE];
} file_cache_entry;

typedef struct file_cache {
  file_cache_entry slots[FILE_CACHE_SLOTS];
  uint64_t clock; /* counts lookups and inserts: recency for eviction */
  size_t bytes;   /* kept file bytes, at most FILE_CACHE_BYTES_BUDGET */
  long settle_s;  /* FILE_SETTLE_S (tests set 0) */
} file_cache;

/* An empty cache. */
void file_cache_init(file_cache *c);

/* Closes every descriptor and frees the entries. */
void file_cache_free(file_cache *c);

/* The entry for key when the path it resolved to (below root) still names
 * the same unchanged file, checked unless already checked at io epoch
 * epoch (io_epoch_now() loaded before the call); a stale entry is dropped.
 * NULL when none. The entry stays valid until the next file_cache call. */
const file_cache_entry *file_cache_get(file_cache *c, int root, const char *key,
                                       uint64_t epoch);

/* Remembers that key resolved to the regular file rel (below root) open as
 * fd with metadata st, taken at io epoch epoch or later; the cache takes
 * fd. Fills the entry's etag, date and type (from name, the last path
 * component), and keeps the bytes of a small settled file (see above).
 * Returns the entry, or NULL when out of memory (fd is then still the
 * caller's). */
const file_cache_entry *file_cache_put(file_cache *c, const char *key,
                                       const char *rel, const char *name,
                                       int fd, const struct stat *st,
                                       uint64_t epoch);

/* The strong entity-tag of a file with metadata st, into out[64]. */
void file_cache_etag(const struct stat *st, char out[64]);

#endif
