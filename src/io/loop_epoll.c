/* epoll backend for loop_ops (Linux), blocking or embedded.
 *
 * One epoll fd aggregates everything the loop waits for: the watched fds
 * (readable and writable), an eventfd for wakeups and a timerfd set to the
 * earliest timer. So that one fd, readable whenever there is work, is all
 * an embedding host has to watch, and the blocking run needs no timeout
 * arithmetic: timers fire with the timerfd's nanosecond precision. Timers
 * live in a binary min-heap by deadline, so arming and stopping are
 * O(log n) with one timer per connection. Everything except wakeup runs on
 * the loop thread. */
#ifdef __linux__

#include "io/loop.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "util/clock.h"

#define EPOLL_MAX_WATCHES 16
/* epoll_event.data of the loop's own fds; watched fds carry their slot. */
#define TAG_WAKEUP EPOLL_MAX_WATCHES
#define TAG_TIMER (EPOLL_MAX_WATCHES + 1)
#define MAX_EVENTS (EPOLL_MAX_WATCHES + 2)
#define NOT_IN_HEAP SIZE_MAX
#define NS_PER_S 1000000000u

/* One slot per fd: epoll keeps one entry per fd, whose event mask is the
 * union of the fd's readable and writable watchers. */
typedef struct watch {
  int fd;                    /* -1: free slot */
  loop_cb read_cb, write_cb; /* NULL: not watched that way */
  void *read_arg, *write_arg;
} watch;

struct loop {
  int epfd, wakefd, timerfd;
  watch watches[EPOLL_MAX_WATCHES];
  loop_timer **heap; /* min-heap by deadline */
  size_t heap_len;
  size_t heap_cap;     /* >= timer_count, so arming never allocates */
  size_t timer_count;  /* timers created and not freed */
  uint64_t timerfd_at; /* deadline the timerfd is set to; 0: none */
  loop_cb wakeup_cb, before_cb;
  void *wakeup_arg, *before_arg;
  atomic_bool wake_pending; /* eventfd written, callback not run yet */
  bool fd_ready;            /* a watched fd was ready last iteration */
  bool in_iteration;        /* run_once is running: the before hook will run */
  bool broken;              /* break_loop called */
};

struct loop_timer {
  loop *l;
  uint64_t deadline; /* clock_now_ns() time */
  size_t index;      /* in l->heap, or NOT_IN_HEAP */
  loop_cb cb;
  void *arg;
};

/* ------------------------------------------------------------ the heap */

static void heap_place(loop *l, size_t i, loop_timer *t) {
  l->heap[i] = t;
  t->index = i;
}

static void sift_up(loop *l, size_t i) {
  loop_timer *t = l->heap[i];
  while (i > 0) {
    size_t parent = (i - 1) / 2;
    if (l->heap[parent]->deadline <= t->deadline)
      break;
    heap_place(l, i, l->heap[parent]);
    i = parent;
  }
  heap_place(l, i, t);
}

static void sift_down(loop *l, size_t i) {
  loop_timer *t = l->heap[i];
  for (;;) {
    size_t child = 2 * i + 1;
    if (child >= l->heap_len)
      break;
    if (child + 1 < l->heap_len &&
        l->heap[child + 1]->deadline < l->heap[child]->deadline)
      child++;
    if (t->deadline <= l->heap[child]->deadline)
      break;
    heap_place(l, i, l->heap[child]);
    i = child;
  }
  heap_place(l, i, t);
}

static void heap_remove(loop *l, loop_timer *t) {
  size_t i = t->index;
  t->index = NOT_IN_HEAP;
  loop_timer *last = l->heap[--l->heap_len];
  if (i == l->heap_len)
    return;
  heap_place(l, i, last);
  sift_up(l, i);
  sift_down(l, last->index);
}

/* The timerfd must never be later than the earliest timer while the loop
 * (or its host) may block. A later timer needs no change: the timerfd then
 * fires early once, and is set again after that iteration. */
static void program_timerfd(loop *l) {
  if (l->heap_len == 0)
    return;
  uint64_t at = l->heap[0]->deadline;
  if (at == 0)
    at = 1; /* 0 would disarm the timerfd */
  if (l->timerfd_at != 0 && l->timerfd_at <= at)
    return;
  struct itimerspec its;
  memset(&its, 0, sizeof its);
  its.it_value.tv_sec = (time_t)(at / NS_PER_S);
  its.it_value.tv_nsec = (long)(at % NS_PER_S);
  if (timerfd_settime(l->timerfd, TFD_TIMER_ABSTIME, &its, NULL) == 0)
    l->timerfd_at = at;
}

/* Runs expired timers, earliest first. A callback may re-arm its timer for
 * now: the round is bounded by the number of timers it started with. */
static void run_timers(loop *l) {
  uint64_t now = clock_now_ns();
  for (size_t budget = l->heap_len;
       budget > 0 && l->heap_len > 0 && l->heap[0]->deadline <= now; budget--) {
    loop_timer *t = l->heap[0];
    heap_remove(l, t);
    t->cb(t->arg);
  }
}

/* -------------------------------------------------------------- timers */

static loop_timer *ep_timer_new(loop *l, loop_cb cb, void *arg) {
  if (l->timer_count == l->heap_cap) {
    size_t cap = l->heap_cap ? l->heap_cap * 2 : 16;
    loop_timer **heap = realloc(l->heap, cap * sizeof *heap);
    if (!heap)
      return NULL;
    l->heap = heap;
    l->heap_cap = cap;
  }
  loop_timer *t = calloc(1, sizeof *t);
  if (!t)
    return NULL;
  t->l = l;
  t->cb = cb;
  t->arg = arg;
  t->index = NOT_IN_HEAP;
  l->timer_count++;
  return t;
}

static void ep_timer_arm(loop_timer *t, uint64_t after_ns) {
  loop *l = t->l;
  uint64_t now = clock_now_ns();
  t->deadline = after_ns > UINT64_MAX - now ? UINT64_MAX : now + after_ns;
  if (t->index == NOT_IN_HEAP) {
    heap_place(l, l->heap_len++, t);
    sift_up(l, t->index);
  } else {
    sift_up(l, t->index);
    sift_down(l, t->index);
  }
  if (!l->in_iteration)
    program_timerfd(l); /* the iteration does it before blocking */
}

static void ep_timer_stop(loop_timer *t) {
  if (t->index != NOT_IN_HEAP)
    heap_remove(t->l, t);
}

static void ep_timer_free(loop_timer *t) {
  if (!t)
    return;
  ep_timer_stop(t);
  t->l->timer_count--;
  free(t);
}

/* ------------------------------------------------------------- wakeups */

/* Safe from any thread and from signal handlers: one lock-free exchange
 * and at most one write(2), with errno preserved. The flag coalesces
 * wakeups until the loop consumes them. */
static void ep_wakeup(loop *l) {
  if (atomic_exchange(&l->wake_pending, true))
    return;
  int saved = errno;
  uint64_t one = 1;
  while (write(l->wakefd, &one, sizeof one) < 0 && errno == EINTR)
    ;
  errno = saved;
}

static void on_wakeup_fd(loop *l) {
  /* Clear the flag before draining: a wakeup after the clear writes
   * again, one before it is covered by the callback below. */
  atomic_store(&l->wake_pending, false);
  uint64_t count;
  while (read(l->wakefd, &count, sizeof count) < 0 && errno == EINTR)
    ;
  if (l->wakeup_cb)
    l->wakeup_cb(l->wakeup_arg);
}

static void on_timer_fd(loop *l) {
  uint64_t expirations;
  while (read(l->timerfd, &expirations, sizeof expirations) < 0 &&
         errno == EINTR)
    ;
  l->timerfd_at = 0;
}

static int ep_set_wakeup(loop *l, loop_cb cb, void *arg) {
  l->wakeup_cb = cb;
  l->wakeup_arg = arg;
  return 0;
}

static void ep_schedule_before_block(loop *l) {
  if (!l->in_iteration)
    ep_wakeup(l);
}

/* ----------------------------------------------------------- watchers */

static int epoll_set(loop *l, int op, int fd, uint32_t events, uint64_t tag) {
  struct epoll_event ev;
  memset(&ev, 0, sizeof ev);
  ev.events = events;
  ev.data.u64 = tag;
  return epoll_ctl(l->epfd, op, fd, &ev);
}

static int epoll_add(loop *l, int fd, uint64_t tag) {
  return epoll_set(l, EPOLL_CTL_ADD, fd, EPOLLIN, tag);
}

static watch *find_watch(loop *l, int fd) {
  for (size_t i = 0; i < EPOLL_MAX_WATCHES; i++)
    if (l->watches[i].fd == fd)
      return &l->watches[i];
  return NULL;
}

/* Brings fd's epoll entry in line with its callbacks: added, changed, or
 * removed (and the slot freed) when nothing watches it any more. */
static int sync_watch(loop *l, watch *w, bool registered) {
  uint32_t events =
      (w->read_cb ? EPOLLIN : 0u) | (w->write_cb ? (uint32_t)EPOLLOUT : 0u);
  uint64_t slot = (uint64_t)(w - l->watches);
  if (!events) {
    epoll_ctl(l->epfd, EPOLL_CTL_DEL, w->fd, NULL);
    w->fd = -1;
    return 0;
  }
  return epoll_set(l, registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, w->fd, events,
                   slot);
}

/* Watching again replaces the callback of that kind. */
static int watch_fd(loop *l, int fd, bool writable, loop_cb cb, void *arg) {
  if (fd < 0)
    return -1;
  watch *w = find_watch(l, fd);
  bool registered = w != NULL;
  if (!w)
    w = find_watch(l, -1);
  if (!w)
    return -1;
  watch before = *w;
  w->fd = fd;
  if (writable) {
    w->write_cb = cb;
    w->write_arg = arg;
  } else {
    w->read_cb = cb;
    w->read_arg = arg;
  }
  if (sync_watch(l, w, registered) != 0) {
    *w = before;
    return -1;
  }
  return 0;
}

static int ep_watch_readable(loop *l, int fd, loop_cb cb, void *arg) {
  return watch_fd(l, fd, false, cb, arg);
}

static int ep_watch_writable(loop *l, int fd, loop_cb cb, void *arg) {
  return watch_fd(l, fd, true, cb, arg);
}

static void ep_unwatch_writable(loop *l, int fd) {
  watch *w = fd >= 0 ? find_watch(l, fd) : NULL;
  if (!w || !w->write_cb)
    return;
  w->write_cb = NULL;
  sync_watch(l, w, true);
}

static void ep_unwatch(loop *l, int fd) {
  watch *w = fd >= 0 ? find_watch(l, fd) : NULL;
  if (!w)
    return;
  epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
  *w = (watch){.fd = -1};
}

static int ep_set_before_block(loop *l, loop_cb cb, void *arg) {
  l->before_cb = cb;
  l->before_arg = arg;
  return 0;
}

/* ---------------------------------------------------------- iterations */

/* Errors and hang-ups go to whichever callbacks there are: their own
 * calls (recv, send) report them. A callback may unwatch its fd: then the
 * slot is free (or reused by another fd) and the rest is skipped. */
static void dispatch_watch(loop *l, uint64_t slot, uint32_t events) {
  watch *w = &l->watches[slot];
  int fd = w->fd;
  if (fd < 0)
    return;
  l->fd_ready = true; /* level-triggered: it may still be ready */
  if (w->read_cb && (events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
    w->read_cb(w->read_arg);
  if (w->fd == fd && w->write_cb &&
      (events & ((uint32_t)EPOLLOUT | EPOLLERR | EPOLLHUP)))
    w->write_cb(w->write_arg);
}

static void dispatch(loop *l, const struct epoll_event *ev) {
  if (ev->data.u64 == TAG_WAKEUP)
    on_wakeup_fd(l);
  else if (ev->data.u64 == TAG_TIMER)
    on_timer_fd(l);
  else if (ev->data.u64 < EPOLL_MAX_WATCHES)
    dispatch_watch(l, ev->data.u64, ev->events);
}

static int ep_run_once(loop *l, int timeout_ms) {
  struct epoll_event evs[MAX_EVENTS];
  l->in_iteration = true;
  int n = epoll_wait(l->epfd, evs, MAX_EVENTS, timeout_ms);
  if (n < 0 && errno != EINTR) {
    l->in_iteration = false;
    return -1;
  }
  l->fd_ready = false;
  for (int i = 0; i < n; i++)
    dispatch(l, &evs[i]);
  run_timers(l);
  if (l->before_cb)
    l->before_cb(l->before_arg);
  l->in_iteration = false;
  program_timerfd(l);
  return l->broken ? 1 : 0;
}

static int ep_run(loop *l) {
  l->broken = false;
  if (l->before_cb)
    l->before_cb(l->before_arg); /* like libev's prepare, before blocking */
  program_timerfd(l);
  int rc = 0;
  while (rc == 0 && !l->broken)
    rc = ep_run_once(l, -1);
  return rc < 0 ? -1 : 0;
}

static void ep_break_loop(loop *l) {
  l->broken = true;
}

static int64_t ep_next_timeout_ns(const loop *l) {
  if (atomic_load(&((loop *)l)->wake_pending) || l->fd_ready)
    return 0;
  if (l->heap_len == 0)
    return -1;
  uint64_t now = clock_now_ns(), at = l->heap[0]->deadline;
  if (at <= now)
    return 0;
  return at - now > INT64_MAX ? INT64_MAX : (int64_t)(at - now);
}

static int ep_fd(const loop *l) {
  return l->epfd;
}

/* ---------------------------------------------------------- lifecycle */

static void ep_destroy(loop *l) {
  if (!l)
    return;
  if (l->epfd >= 0)
    close(l->epfd);
  if (l->wakefd >= 0)
    close(l->wakefd);
  if (l->timerfd >= 0)
    close(l->timerfd);
  free(l->heap);
  free(l);
}

static loop *ep_create(void) {
  loop *l = calloc(1, sizeof *l);
  if (!l)
    return NULL;
  for (size_t i = 0; i < EPOLL_MAX_WATCHES; i++)
    l->watches[i].fd = -1;
  atomic_init(&l->wake_pending, false);
  l->epfd = epoll_create1(EPOLL_CLOEXEC);
  l->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  l->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (l->epfd < 0 || l->wakefd < 0 || l->timerfd < 0 ||
      epoll_add(l, l->wakefd, TAG_WAKEUP) != 0 ||
      epoll_add(l, l->timerfd, TAG_TIMER) != 0) {
    ep_destroy(l);
    return NULL;
  }
  return l;
}

const loop_ops loop_epoll_ops = {
    .create = ep_create,
    .destroy = ep_destroy,
    .run = ep_run,
    .break_loop = ep_break_loop,
    .watch_readable = ep_watch_readable,
    .unwatch = ep_unwatch,
    .watch_writable = ep_watch_writable,
    .unwatch_writable = ep_unwatch_writable,
    .timer_new = ep_timer_new,
    .timer_arm = ep_timer_arm,
    .timer_stop = ep_timer_stop,
    .timer_free = ep_timer_free,
    .set_wakeup = ep_set_wakeup,
    .wakeup = ep_wakeup,
    .set_before_block = ep_set_before_block,
    .schedule_before_block = ep_schedule_before_block,
    .run_once = ep_run_once,
    .next_timeout_ns = ep_next_timeout_ns,
    .fd = ep_fd,
};

#endif /* __linux__ */
