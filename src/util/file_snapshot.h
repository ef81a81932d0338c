/* What two caches of files (the static handler's, and the host API's for
 * file bodies) need to trust what they keep: whether a file is unchanged,
 * and its bytes when they can be kept safely.
 *
 * A change to a file (a write, truncate, rename over, chmod, utimensat)
 * sets its ctime to the time of the change, and nothing can set a ctime
 * back. The bytes of a file whose ctime was settle_s seconds old when they
 * were read therefore stay its bytes while a later stat shows the same
 * device, inode, size, mtime and ctime: any change since has a later
 * ctime, even with the file system's coarse clock. A file changed more
 * recently might share its ctime with a change still to come, so its
 * bytes are not kept. */
#ifndef H3Q_UTIL_FILE_SNAPSHOT_H
#define H3Q_UTIL_FILE_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

/* Seconds a file's ctime must lie in the past before its bytes are kept. */
#define FILE_SETTLE_S 2

/* Same device, inode, size, mtime and ctime. */
bool file_unchanged(const struct stat *a, const struct stat *b);

/* The whole file (fd, whose fstat is st) in a new buffer when it has 1 to
 * max bytes and its ctime is at least settle_s seconds old; NULL
 * otherwise, when out of memory, or when it reads short. Free with free(). */
uint8_t *file_read_settled(int fd, const struct stat *st, size_t max,
                           long settle_s);

/* The same within a budget: NULL when the file would take *kept (the
 * bytes a cache keeps already) past budget; else *kept grows by the size
 * of the bytes returned. */
uint8_t *file_keep_settled(int fd, const struct stat *st, size_t max,
                           long settle_s, size_t *kept, size_t budget);

#endif
