/* A response body read from a file, for the host API's respond_file
 * command (src/core/host.c): the file is opened once, by the thread that
 * queues the command, and its size is that of the open descriptor, so the
 * content-length sent and the bytes read are the same file's. */
#ifndef H3Q_CORE_HOST_FILE_H
#define H3Q_CORE_HOST_FILE_H

#include <stdint.h>

#include "h3q.h"

typedef struct host_file host_file;

/* Opens path (a regular file) for reading. expect_size >= 0: the file must
 * be that large. Errors: H3Q_ENOTFOUND (no such file), H3Q_EFORBIDDEN
 * (permission), H3Q_EINVAL (not a regular file, or not expect_size bytes),
 * H3Q_EIO, H3Q_ENOMEM. */
int host_file_open(const char *path, int64_t expect_size, host_file **out);

uint64_t host_file_size(const host_file *f);

/* Writes the file's bytes while res takes them. Returns 1 once every byte
 * was written, 0 when res is full (its writable callback should call this
 * again), or a negative H3Q_E* code (a read failed or the file shrank: the
 * caller resets the stream). */
int host_file_send(host_file *f, h3q_response *res);

/* Closes the file and frees f. Accepts NULL. */
void host_file_free(host_file *f);

#endif
