/* Unit tests for the loop backends' I/O watchers (libev and epoll): a
 * writable watcher runs once a full socket buffer has room again and not
 * before, stops when removed, and lives next to the fd's readable
 * watcher. */
#include "check.h"
#include "io/loop.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <unistd.h>

static const loop_ops *lo;

typedef struct fixture {
  loop *l;
  int fds[2]; /* fds[0] writes into a small buffer, fds[1] reads */
  int writable_calls, readable_calls;
  bool drained; /* the reader emptied the buffer */
  bool early;   /* writable ran while the buffer was still full */
  loop_timer *drain, *stop;
} fixture;

/* Fills fds[0]'s send buffer until the kernel says EAGAIN. */
static void fill(int fd) {
  char buf[512] = {0};
  for (int i = 0; i < 10000; i++)
    if (send(fd, buf, sizeof buf, MSG_DONTWAIT) < 0)
      return;
}

static void drain(int fd) {
  char buf[1024];
  for (int i = 0; i < 10000; i++)
    if (recv(fd, buf, sizeof buf, MSG_DONTWAIT) < 0)
      return;
}

static void on_writable(void *arg) {
  fixture *f = arg;
  f->writable_calls++;
  if (!f->drained)
    f->early = true;
  lo->break_loop(f->l);
}

static void on_readable(void *arg) {
  fixture *f = arg;
  f->readable_calls++;
}

static void on_drain(void *arg) {
  fixture *f = arg;
  f->drained = true;
  drain(f->fds[1]);
}

static void on_stop(void *arg) {
  fixture *f = arg;
  lo->break_loop(f->l);
}

static void setup(fixture *f) {
  int size = 4096;
  *f = (fixture){0};
  CHECK(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0, f->fds) == 0);
  CHECK(setsockopt(f->fds[0], SOL_SOCKET, SO_SNDBUF, &size, sizeof size) == 0);
  f->l = lo->create();
  CHECK(f->l != NULL);
  f->drain = lo->timer_new(f->l, on_drain, f);
  f->stop = lo->timer_new(f->l, on_stop, f);
  fill(f->fds[0]);
}

static void teardown(fixture *f) {
  lo->timer_free(f->drain);
  lo->timer_free(f->stop);
  lo->destroy(f->l);
  close(f->fds[0]);
  close(f->fds[1]);
}

static void test_writable_after_drain(void) {
  fixture f;
  setup(&f);
  CHECK(lo->watch_readable(f.l, f.fds[0], on_readable, &f) == 0);
  CHECK(lo->watch_writable(f.l, f.fds[0], on_writable, &f) == 0);
  lo->timer_arm(f.drain, 50 * 1000000u);
  lo->timer_arm(f.stop, 5000 * 1000000u); /* a safety net, not a measure */
  CHECK(lo->run(f.l) == 0);
  CHECK(f.drained && !f.early && f.writable_calls == 1);

  /* Removed: no more calls although the fd is writable now. */
  lo->unwatch_writable(f.l, f.fds[0]);
  lo->timer_arm(f.stop, 50 * 1000000u);
  CHECK(lo->run(f.l) == 0);
  CHECK(f.writable_calls == 1);
  /* The readable watcher of the same fd stayed (and never ran: nothing
   * is sent to fds[0]); unwatch removes it too. */
  CHECK(f.readable_calls == 0);
  lo->unwatch(f.l, f.fds[0]);
  teardown(&f);
}

static void test_watch_twice_replaces(void) {
  fixture f;
  setup(&f);
  drain(f.fds[1]);
  f.drained = true;
  CHECK(lo->watch_writable(f.l, f.fds[0], on_stop, &f) == 0);
  CHECK(lo->watch_writable(f.l, f.fds[0], on_writable, &f) == 0);
  lo->timer_arm(f.stop, 5000 * 1000000u);
  CHECK(lo->run(f.l) == 0);
  CHECK(f.writable_calls == 1); /* the second callback, and only once */
  CHECK(lo->watch_writable(f.l, -1, on_writable, &f) == -1);
  lo->unwatch_writable(f.l, f.fds[0]);
  lo->unwatch_writable(f.l, f.fds[0]); /* a second removal is harmless */
  teardown(&f);
}

int main(void) {
  const loop_ops *backends[] = {&loop_ev_ops, &loop_epoll_ops};
  for (size_t i = 0; i < sizeof backends / sizeof backends[0]; i++) {
    lo = backends[i];
    test_writable_after_drain();
    test_watch_twice_replaces();
  }
  return check_report("test_loop");
}
