/* The event loop seen by the rest of h3q: readable fds, timers, a wakeup
 * that is safe from signal handlers and other threads, and a hook that runs
 * before the loop blocks. Backends implement loop_ops (libev: loop_ev.c;
 * epoll: loop_epoll.c), so callers do not depend on one. A backend that
 * fills the embedding operations (run_once, next_timeout_ns, fd) can also
 * be driven, one iteration at a time, by another program's event loop. */
#ifndef H3Q_IO_LOOP_H
#define H3Q_IO_LOOP_H

#include <stdint.h>

typedef struct loop loop;
typedef struct loop_timer loop_timer;
typedef void (*loop_cb)(void *arg);

typedef struct loop_ops {
  loop *(*create)(void);
  void (*destroy)(loop *l);
  /* Runs until loop_break; returns 0, or -1 when the backend fails. */
  int (*run)(loop *l);
  void (*break_loop)(loop *l);
  /* One readable watcher per fd; cb runs while the fd is readable. */
  int (*watch_readable)(loop *l, int fd, loop_cb cb, void *arg);
  /* Removes every watcher of fd (readable and writable). */
  void (*unwatch)(loop *l, int fd);
  /* One writable watcher per fd, next to its readable one; cb runs while
   * the fd is writable, so watch only while something waits for room
   * (e.g. a full socket buffer). Watching again replaces cb and arg.
   * Returns 0, or -1 when no watcher can be added. */
  int (*watch_writable)(loop *l, int fd, loop_cb cb, void *arg);
  /* Removes fd's writable watcher, if any. */
  void (*unwatch_writable)(loop *l, int fd);
  loop_timer *(*timer_new)(loop *l, loop_cb cb, void *arg);
  /* (Re)arms the timer to fire once, after_ns from now. */
  void (*timer_arm)(loop_timer *t, uint64_t after_ns);
  void (*timer_stop)(loop_timer *t);
  void (*timer_free)(loop_timer *t);
  /* wakeup_cb runs on the loop thread after loop_wakeup, which is safe
   * from any thread and from signal handlers. */
  int (*set_wakeup)(loop *l, loop_cb cb, void *arg);
  void (*wakeup)(loop *l);
  /* Runs once per iteration before the loop blocks for events. */
  int (*set_before_block)(loop *l, loop_cb cb, void *arg);
  /* Work was queued on the loop thread (e.g. a connection became dirty):
   * make sure the before-block hook runs soon. Inside an iteration there is
   * nothing to do; between iterations of an embedded loop the host must be
   * woken, since it does not know h3q has work. NULL when no h3q code
   * runs on the loop thread outside an iteration. */
  void (*schedule_before_block)(loop *l);

  /* Embedding; NULL when the backend cannot be driven from outside. */
  /* One iteration: waits up to timeout_ms (-1: until something happens,
   * 0: not at all) for fds, wakeups and timers, runs their callbacks and
   * the before-block hook. Returns 1 once break_loop was called (until run
   * starts again), 0 otherwise, -1 when the backend fails. */
  int (*run_once)(loop *l, int timeout_ms);
  /* ns until the loop has work: -1 none (only fds or a wakeup can bring
   * some), 0 now (pending wakeup, expired timer, or an fd that may still
   * be readable), else time until the earliest timer. */
  int64_t (*next_timeout_ns)(const loop *l);
  /* One fd that is readable whenever run_once has something to do. */
  int (*fd)(const loop *l);
} loop_ops;

extern const loop_ops loop_ev_ops;
extern const loop_ops loop_epoll_ops; /* Linux */

#endif
