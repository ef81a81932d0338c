/* Small helpers for file descriptors shared by the io layer. */
#ifndef H3Q_IO_FD_H
#define H3Q_IO_FD_H

#include <errno.h>
#include <unistd.h>

/* Closes fd after a call on it failed and returns -1, keeping that call's
 * errno (close may overwrite it) so the caller can report the real cause. */
static inline int fd_close_failed(int fd) {
  int e = errno;
  close(fd);
  errno = e;
  return -1;
}

#endif
