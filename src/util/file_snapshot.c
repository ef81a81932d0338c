#include "util/file_snapshot.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static bool same_time(const struct timespec *a, const struct timespec *b) {
  return a->tv_sec == b->tv_sec && a->tv_nsec == b->tv_nsec;
}

bool file_unchanged(const struct stat *a, const struct stat *b) {
  return a->st_dev == b->st_dev && a->st_ino == b->st_ino &&
         a->st_size == b->st_size && same_time(&a->st_mtim, &b->st_mtim) &&
         same_time(&a->st_ctim, &b->st_ctim);
}

uint8_t *file_read_settled(int fd, const struct stat *st, size_t max,
                           long settle_s) {
  size_t size = (size_t)st->st_size;
  if (st->st_size <= 0 || size > max ||
      st->st_ctim.tv_sec > time(NULL) - settle_s)
    return NULL;
  uint8_t *b = malloc(size);
  size_t got = 0;
  while (b && got < size) { /* each round reads a byte or more, or stops */
    ssize_t n = pread(fd, b + got, size - got, (off_t)got);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      free(b);
      return NULL;
    }
    got += (size_t)n;
  }
  return b;
}

uint8_t *file_keep_settled(int fd, const struct stat *st, size_t max,
                           long settle_s, size_t *kept, size_t budget) {
  if (*kept + (size_t)st->st_size > budget)
    return NULL;
  uint8_t *b = file_read_settled(fd, st, max, settle_s);
  if (b)
    *kept += (size_t)st->st_size;
  return b;
}
