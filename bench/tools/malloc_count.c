/* Counts a process's heap calls, for measuring allocations per request.
 * Not part of the library; built and preloaded by bench/tools/mallocs.sh:
 *
 *   cc -shared -fPIC -O2 -o malloc_count.so malloc_count.c
 *   LD_PRELOAD=./malloc_count.so MALLOC_COUNT_OUT=/tmp/m h3q-server ...
 *   kill -USR2 PID   # appends "malloc calloc realloc free inuse heap" to
 *                    # the file (inuse: bytes in live blocks; heap: bytes
 *                    # malloc holds from the kernel, both from mallinfo2)
 *
 * Forwards to glibc's __libc_* entry points, so no dlsym (which itself
 * allocates) is needed. Counts are relaxed atomics: the server is one
 * thread, but quiche or libev may start others. */
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);

static atomic_ulong n_malloc, n_calloc, n_realloc, n_free;

void *malloc(size_t n) {
  atomic_fetch_add_explicit(&n_malloc, 1, memory_order_relaxed);
  return __libc_malloc(n);
}

void *calloc(size_t a, size_t b) {
  atomic_fetch_add_explicit(&n_calloc, 1, memory_order_relaxed);
  return __libc_calloc(a, b);
}

void *realloc(void *p, size_t n) {
  atomic_fetch_add_explicit(&n_realloc, 1, memory_order_relaxed);
  return __libc_realloc(p, n);
}

void free(void *p) {
  if (p)
    atomic_fetch_add_explicit(&n_free, 1, memory_order_relaxed);
  __libc_free(p);
}

/* Async-signal-safe: formats by hand and writes with write(2). */
static size_t put_num(char *out, unsigned long v) {
  char tmp[24];
  size_t n = 0;
  do {
    tmp[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v && n < sizeof tmp);
  for (size_t i = 0; i < n; i++)
    out[i] = tmp[n - 1 - i];
  return n;
}

static void on_usr2(int sig) {
  (void)sig;
  const char *path = getenv("MALLOC_COUNT_OUT");
  if (!path)
    return;
  char line[160];
  size_t len = 0;
  /* mallinfo2 is not async-signal-safe in general; the server is idle
   * (blocked in epoll) when the bench scripts signal it. */
  struct mallinfo2 mi = mallinfo2();
  unsigned long v[6] = {atomic_load(&n_malloc),
                        atomic_load(&n_calloc),
                        atomic_load(&n_realloc),
                        atomic_load(&n_free),
                        (unsigned long)(mi.uordblks + mi.hblkhd),
                        (unsigned long)(mi.arena + mi.hblkhd)};
  for (int i = 0; i < 6; i++) {
    len += put_num(line + len, v[i]);
    line[len++] = i == 5 ? '\n' : ' ';
  }
  int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (fd >= 0) {
    ssize_t w = write(fd, line, len);
    (void)w;
    close(fd);
  }
}

__attribute__((constructor)) static void install(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_usr2;
  sa.sa_flags = SA_RESTART;
  sigaction(SIGUSR2, &sa, NULL);
}
