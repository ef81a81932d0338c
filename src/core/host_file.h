/* A response body read from a file, for the host API's respond_file
 * command (src/core/host.c): the file is opened by the thread that queues
 * the command, and its size is that of the open descriptor, so the
 * content-length sent and the bytes read are the same file's.
 *
 * Descriptors are kept in a small cache (64, least recently used out) and
 * shared by the responses reading them: a path that still names the same
 * unchanged file (device, inode, size, mtime and ctime of a fresh stat
 * equal those of the descriptor's fstat) costs one stat instead of open,
 * fstat and close, and no system call at all when it was already checked
 * in the current io epoch (util/io_epoch.h). The bytes of files up to
 * 16 KB whose ctime is 2 s old are kept in memory (up to 1 MiB in all;
 * util/file_snapshot.h) and sent without a read. A changed, replaced or
 * deleted file is opened anew (or refused); a descriptor is closed once
 * the cache and every response have let go of it. Thread-safe (one
 * lock). */
#ifndef H3Q_CORE_HOST_FILE_H
#define H3Q_CORE_HOST_FILE_H

#include <stdint.h>

#include "h3q.h"

typedef struct host_file host_file;
typedef struct host_file_cache host_file_cache;

/* An empty cache; NULL when out of memory. */
host_file_cache *host_file_cache_new(void);

/* Closes the cache's descriptors; every host_file of it must be freed
 * first. Accepts NULL. */
void host_file_cache_free(host_file_cache *c);

/* Opens path (a regular file) for reading, through c. expect_size >= 0: the
 * file must be that large. Errors: H3Q_ENOTFOUND (no such file), H3Q_EFORBIDDEN
 * (permission), H3Q_EINVAL (not a regular file, or not expect_size bytes),
 * H3Q_EIO, H3Q_ENOMEM. */
int host_file_open(host_file_cache *c, const char *path, int64_t expect_size,
                   host_file **out);

uint64_t host_file_size(const host_file *f);

/* Writes the file's bytes while res takes them. Returns 1 once every byte
 * was written, 0 when res is full (its writable callback should call this
 * again), or a negative H3Q_E* code (a read failed or the file shrank: the
 * caller resets the stream). */
int host_file_send(host_file *f, h3q_response *res);

/* Lets go of the file (closed when no one holds it) and frees f. Accepts
 * NULL. Any thread. */
void host_file_free(host_file *f);

#endif
