/* The event loop seen by the rest of h3q: readable fds, timers, a wakeup
 * that is safe from signal handlers and other threads, and a hook that runs
 * before the loop blocks. Backends implement loop_ops (libev: loop_ev.c), so
 * a raw epoll backend can replace libev without touching callers. */
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
} loop_ops;

extern const loop_ops loop_ev_ops;

#endif
