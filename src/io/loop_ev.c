/* libev backend for loop_ops. Each loop owns its own ev_loop so servers in
 * different threads do not share state. */
#include "io/loop.h"

#include "util/clock.h"

#include <ev.h>
#include <stdlib.h>

/* I/O watchers per loop (a readable and a writable one count as two). */
#define LOOP_EV_MAX_WATCHERS 32

typedef struct io_watch {
  ev_io w;
  int fd;     /* -1: slot free */
  int events; /* EV_READ or EV_WRITE */
  loop_cb cb;
  void *arg;
} io_watch;

struct loop {
  struct ev_loop *ev;
  io_watch io[LOOP_EV_MAX_WATCHERS];
  ev_async async;
  ev_prepare prepare;
  loop_cb wakeup_cb, prepare_cb;
  void *wakeup_arg, *prepare_arg;
};

struct loop_timer {
  struct loop *l;
  ev_timer w;
  loop_cb cb;
  void *arg;
};

static loop *ev_create(void) {
  loop *l = calloc(1, sizeof *l);
  if (!l)
    return NULL;
  l->ev = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOSIGMASK);
  if (!l->ev) {
    free(l);
    return NULL;
  }
  for (int i = 0; i < LOOP_EV_MAX_WATCHERS; i++)
    l->io[i].fd = -1;
  return l;
}

static void ev_destroy(loop *l) {
  if (!l)
    return;
  for (int i = 0; i < LOOP_EV_MAX_WATCHERS; i++)
    if (l->io[i].fd >= 0)
      ev_io_stop(l->ev, &l->io[i].w);
  ev_async_stop(l->ev, &l->async);
  ev_prepare_stop(l->ev, &l->prepare);
  ev_loop_destroy(l->ev);
  free(l);
}

static int ev_run_loop(loop *l) {
  ev_run(l->ev, 0);
  return 0;
}

static void ev_break_loop(loop *l) {
  ev_break(l->ev, EVBREAK_ALL);
}

static void on_io(struct ev_loop *ev, ev_io *w, int revents) {
  io_watch *iw = w->data;
  iw->cb(iw->arg);
}

/* The slot watching fd for events, or NULL. */
static io_watch *find_watch(loop *l, int fd, int events) {
  for (int i = 0; i < LOOP_EV_MAX_WATCHERS; i++)
    if (l->io[i].fd == fd && l->io[i].events == events)
      return &l->io[i];
  return NULL;
}

static io_watch *free_slot(loop *l) {
  for (int i = 0; i < LOOP_EV_MAX_WATCHERS; i++)
    if (l->io[i].fd < 0)
      return &l->io[i];
  return NULL;
}

static void stop_watch(loop *l, io_watch *iw) {
  ev_io_stop(l->ev, &iw->w);
  iw->fd = -1;
}

/* Starts watching fd for events (EV_READ or EV_WRITE); an existing
 * watcher of the same kind gets the new callback. */
static int watch(loop *l, int fd, int events, loop_cb cb, void *arg) {
  if (fd < 0)
    return -1;
  io_watch *iw = find_watch(l, fd, events);
  if (!iw)
    iw = free_slot(l);
  if (!iw)
    return -1;
  ev_io_stop(l->ev, &iw->w);
  ev_io_init(&iw->w, on_io, fd, events);
  iw->w.data = iw;
  iw->fd = fd;
  iw->events = events;
  iw->cb = cb;
  iw->arg = arg;
  ev_io_start(l->ev, &iw->w);
  return 0;
}

static int ev_watch_readable(loop *l, int fd, loop_cb cb, void *arg) {
  return watch(l, fd, EV_READ, cb, arg);
}

static int ev_watch_writable(loop *l, int fd, loop_cb cb, void *arg) {
  return watch(l, fd, EV_WRITE, cb, arg);
}

static void ev_unwatch_writable(loop *l, int fd) {
  io_watch *iw = fd >= 0 ? find_watch(l, fd, EV_WRITE) : NULL;
  if (iw)
    stop_watch(l, iw);
}

static void ev_unwatch(loop *l, int fd) {
  for (int i = 0; i < LOOP_EV_MAX_WATCHERS; i++)
    if (l->io[i].fd == fd && fd >= 0)
      stop_watch(l, &l->io[i]);
}

static void on_timer(struct ev_loop *ev, ev_timer *w, int revents) {
  loop_timer *t = w->data;
  t->cb(t->arg);
}

static loop_timer *ev_timer_new_(loop *l, loop_cb cb, void *arg) {
  loop_timer *t = calloc(1, sizeof *t);
  if (!t)
    return NULL;
  t->l = l;
  t->cb = cb;
  t->arg = arg;
  ev_init(&t->w, on_timer);
  t->w.data = t;
  return t;
}

static void ev_timer_arm(loop_timer *t, uint64_t after_ns) {
  ev_timer_stop(t->l->ev, &t->w);
  ev_timer_set(&t->w, clock_ns_to_s(after_ns), 0.);
  ev_timer_start(t->l->ev, &t->w);
}

static void ev_timer_stop_(loop_timer *t) {
  ev_timer_stop(t->l->ev, &t->w);
}

static void ev_timer_free(loop_timer *t) {
  if (!t)
    return;
  ev_timer_stop(t->l->ev, &t->w);
  free(t);
}

static void on_async(struct ev_loop *ev, ev_async *w, int revents) {
  loop *l = w->data;
  l->wakeup_cb(l->wakeup_arg);
}

static int ev_set_wakeup(loop *l, loop_cb cb, void *arg) {
  l->wakeup_cb = cb;
  l->wakeup_arg = arg;
  ev_async_init(&l->async, on_async);
  l->async.data = l;
  ev_async_start(l->ev, &l->async);
  return 0;
}

/* ev_async_send is documented as safe from signal handlers and threads. */
static void ev_wakeup(loop *l) {
  ev_async_send(l->ev, &l->async);
}

static void on_prepare(struct ev_loop *ev, ev_prepare *w, int revents) {
  loop *l = w->data;
  l->prepare_cb(l->prepare_arg);
}

static int ev_set_before_block(loop *l, loop_cb cb, void *arg) {
  l->prepare_cb = cb;
  l->prepare_arg = arg;
  ev_prepare_init(&l->prepare, on_prepare);
  l->prepare.data = l;
  ev_prepare_start(l->ev, &l->prepare);
  return 0;
}

/* No schedule_before_block: h3q code runs on a libev loop only inside
 * ev_run's callbacks, and the prepare watcher runs before every block. No
 * embedding operations either: libev keeps its backend fd private. */
const loop_ops loop_ev_ops = {
    .create = ev_create,
    .destroy = ev_destroy,
    .run = ev_run_loop,
    .break_loop = ev_break_loop,
    .watch_readable = ev_watch_readable,
    .unwatch = ev_unwatch,
    .watch_writable = ev_watch_writable,
    .unwatch_writable = ev_unwatch_writable,
    .timer_new = ev_timer_new_,
    .timer_arm = ev_timer_arm,
    .timer_stop = ev_timer_stop_,
    .timer_free = ev_timer_free,
    .set_wakeup = ev_set_wakeup,
    .wakeup = ev_wakeup,
    .set_before_block = ev_set_before_block,
};
