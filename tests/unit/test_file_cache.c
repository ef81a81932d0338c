/* Unit tests for handlers/file_cache: a hit for an unchanged file, misses
 * after every kind of change (rewrite, rename over, delete, chmod), one
 * check per io epoch, kept bytes of small settled files and their budget,
 * the descriptor bound, and freeing with entries. */
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
static uint64_t epoch; /* each get() is a new io epoch unless told */

static const file_cache_entry *get(file_cache *c, const char *key) {
  return file_cache_get(c, root, key, ++epoch);
}

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
  const file_cache_entry *e =
      file_cache_put(c, key, name, name, fd, &st, epoch);
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
  const file_cache_entry *g = get(&c, "/a.txt");
  CHECK(g == e);
  CHECK(g && g->st.st_size == 6);
  CHECK(g && strcmp(g->type, "text/plain; charset=utf-8") == 0);
  CHECK(g && g->etag[0] == '"');
  CHECK(get(&c, "/other.txt") == NULL);
  file_cache_free(&c);
}

static void test_changes_miss(void) {
  file_cache c;
  file_cache_init(&c);
  write_file("b.txt", "one\n");
  CHECK(put(&c, "/b.txt", "b.txt") != NULL);
  write_file("b.txt", "longer now\n"); /* in place, new size */
  CHECK(get(&c, "/b.txt") == NULL);
  CHECK(put(&c, "/b.txt", "b.txt") != NULL);
  write_file("b.tmp", "renamed\n");
  char from[128], to[128];
  snprintf(from, sizeof from, "%s/b.tmp", dir);
  snprintf(to, sizeof to, "%s/b.txt", dir);
  CHECK(rename(from, to) == 0); /* a new inode under the same name */
  CHECK(get(&c, "/b.txt") == NULL);
  CHECK(put(&c, "/b.txt", "b.txt") != NULL);
  usleep(20000); /* ctime moves with the kernel's coarse clock tick */
  CHECK(chmod(to, 0600) == 0); /* only ctime moves */
  CHECK(get(&c, "/b.txt") == NULL);
  CHECK(put(&c, "/b.txt", "b.txt") != NULL);
  CHECK(get(&c, "/b.txt") != NULL);
  CHECK(unlink(to) == 0);
  CHECK(get(&c, "/b.txt") == NULL);
  file_cache_free(&c);
}

static void test_one_check_per_epoch(void) {
  file_cache c;
  file_cache_init(&c);
  write_file("e.txt", "one\n");
  CHECK(put(&c, "/e.txt", "e.txt") != NULL);
  uint64_t now = ++epoch;
  CHECK(file_cache_get(&c, root, "/e.txt", now) != NULL); /* checked */
  write_file("e.txt", "changed\n");
  /* Same epoch: no request of it was sent after the change. */
  CHECK(file_cache_get(&c, root, "/e.txt", now) != NULL);
  CHECK(file_cache_get(&c, root, "/e.txt", now + 1) == NULL);
  epoch = now + 1;
  file_cache_free(&c);
}

static void test_bytes_kept(void) {
  file_cache c;
  file_cache_init(&c);
  write_file("fresh.txt", "just written\n");
  const file_cache_entry *e = put(&c, "/fresh.txt", "fresh.txt");
  CHECK(e && e->bytes == NULL); /* changed within settle_s: not kept */
  c.settle_s = 0;
  e = get(&c, "/fresh.txt"); /* settled since: kept at the next check */
  CHECK(e && e->bytes && memcmp(e->bytes, "just written\n", 13) == 0);
  CHECK(c.bytes == 13);
  write_file("k.txt", "kept bytes\n");
  e = put(&c, "/k.txt", "k.txt");
  CHECK(e && e->bytes && memcmp(e->bytes, "kept bytes\n", 11) == 0);
  CHECK(c.bytes == 13 + 11);
  CHECK(get(&c, "/k.txt") == e);
  usleep(20000); /* ctime moves with the kernel's coarse clock tick */
  write_file("k.txt", "KEPT BYTES\n"); /* same size, new bytes */
  CHECK(get(&c, "/k.txt") == NULL);
  CHECK(c.bytes == 13);
  e = put(&c, "/k.txt", "k.txt");
  CHECK(e && e->bytes && memcmp(e->bytes, "KEPT BYTES\n", 11) == 0);
  /* Too large to keep; an empty file has nothing to keep. */
  static char big[FILE_CACHE_BYTES_MAX + 2];
  memset(big, 'b', sizeof big - 1);
  write_file("big.txt", big);
  e = put(&c, "/big.txt", "big.txt");
  CHECK(e && e->bytes == NULL);
  write_file("empty.txt", "");
  e = put(&c, "/empty.txt", "empty.txt");
  CHECK(e && e->bytes == NULL);
  /* The budget: at most FILE_CACHE_BYTES_BUDGET kept in all. */
  big[FILE_CACHE_BYTES_MAX] = '\0';
  char name[32];
  size_t kept = 0;
  for (int i = 0; i < 2 * FILE_CACHE_BYTES_BUDGET / FILE_CACHE_BYTES_MAX; i++) {
    snprintf(name, sizeof name, "f%d.txt", i);
    write_file(name, big);
    char key[40];
    snprintf(key, sizeof key, "/%s", name);
    e = put(&c, key, name);
    kept += e && e->bytes;
  }
  CHECK(c.bytes <= FILE_CACHE_BYTES_BUDGET);
  CHECK(kept >= FILE_CACHE_BYTES_BUDGET / FILE_CACHE_BYTES_MAX - 1);
  CHECK(kept < 2 * FILE_CACHE_BYTES_BUDGET / FILE_CACHE_BYTES_MAX);
  file_cache_free(&c);
  CHECK(c.bytes == 0);
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
  CHECK(get(&c, key) != NULL);
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
  test_one_check_per_epoch();
  test_bytes_kept();
  test_bounded();
  close(root);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd) != 0)
    fprintf(stderr, "could not remove %s\n", dir);
  return check_report("test_file_cache");
}
