/* Unit tests for handlers/file_cache: a hit for an unchanged file, misses
 * after every kind of change (rewrite, rename over, delete, chmod), the
 * descriptor bound, and freeing with entries. */
#include "check.h"
#include "handlers/file_cache.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64];
static int root = -1;

static void write_file(const char *name, const char *data) {
  char path[128];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "wb");
  if (f) {
    fputs(data, f);
    fclose(f);
  }
}

/* Opens name below root and puts it into c under key. */
static const file_cache_entry *put(file_cache *c, const char *key,
                                   const char *name) {
  int fd = openat(root, name, O_RDONLY | O_CLOEXEC);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0)
    return NULL;
  const file_cache_entry *e = file_cache_put(c, key, name, name, fd, &st);
  if (!e)
    close(fd);
  return e;
}

static int open_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  int n = 0;
  if (!d)
    return -1;
  while (readdir(d))
    n++;
  closedir(d);
  return n;
}

static void test_hit_and_metadata(void) {
  file_cache c;
  file_cache_init(&c);
  write_file("a.txt", "hello\n");
  const file_cache_entry *e = put(&c, "/a.txt", "a.txt");
  CHECK(e != NULL);
  const file_cache_entry *g = file_cache_get(&c, root, "/a.txt");
  CHECK(g == e);
  CHECK(g && g->st.st_size == 6);
  CHECK(g && strcmp(g->type, "text/plain; charset=utf-8") == 0);
  CHECK(g && g->etag[0] == '"');
  CHECK(file_cache_get(&c, root, "/other.txt") == NULL);
  file_cache_free(&c);
}

static void test_changes_miss(void) {
  file_cache c;
  file_cache_init(&c);
  write_file("b.txt", "one\n");
  CHECK(put(&c, "/b.txt", "b.txt") != NULL);
  write_file("b.txt", "longer now\n"); /* in place, new size */
  CHECK(file_cache_get(&c, root, "/b.txt") == NULL);
  CHECK(put(&c, "/b.txt", "b.txt") != NULL);
  write_file("b.tmp", "renamed\n");
  char from[128], to[128];
  snprintf(from, sizeof from, "%s/b.tmp", dir);
  snprintf(to, sizeof to, "%s/b.txt", dir);
  CHECK(rename(from, to) == 0); /* a new inode under the same name */
  CHECK(file_cache_get(&c, root, "/b.txt") == NULL);
  CHECK(put(&c, "/b.txt", "b.txt") != NULL);
  usleep(20000); /* ctime moves with the kernel's coarse clock tick */
  CHECK(chmod(to, 0600) == 0); /* only ctime moves */
  CHECK(file_cache_get(&c, root, "/b.txt") == NULL);
  CHECK(put(&c, "/b.txt", "b.txt") != NULL);
  CHECK(file_cache_get(&c, root, "/b.txt") != NULL);
  CHECK(unlink(to) == 0);
  CHECK(file_cache_get(&c, root, "/b.txt") == NULL);
  file_cache_free(&c);
}

static void test_bounded(void) {
  file_cache c;
  file_cache_init(&c);
  write_file("many.txt", "x\n");
  int before = open_fds();
  char key[32];
  for (int i = 0; i < 3 * FILE_CACHE_SLOTS; i++) {
    snprintf(key, sizeof key, "/many.txt?%d", i);
    CHECK(put(&c, key, "many.txt") != NULL);
  }
  int used = 0;
  for (size_t i = 0; i < FILE_CACHE_SLOTS; i++)
    used += c.slots[i].key != NULL;
  CHECK(used <= FILE_CACHE_SLOTS);
  CHECK(open_fds() - before <= FILE_CACHE_SLOTS); /* evicted ones closed */
  /* The most recent key is still there. */
  CHECK(file_cache_get(&c, root, key) != NULL);
  file_cache_free(&c);
  CHECK(open_fds() == before);
}

int main(void) {
  snprintf(dir, sizeof dir, "/tmp/h3q-fcache-XXXXXX");
  if (!mkdtemp(dir))
    return 1;
  root = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  test_hit_and_metadata();
  test_changes_miss();
  test_bounded();
  close(root);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd) != 0)
    fprintf(stderr, "could not remove %s\n", dir);
  return check_report("test_file_cache");
}
