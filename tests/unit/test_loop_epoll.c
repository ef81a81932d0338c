/* The epoll loop backend: timer order and precision (never early), the
 * heap under many timers with stops and re-arms, the aggregated fd that
 * turns readable for timers, wakeups (other threads, signal handlers) and
 * work queued between iterations, fd watchers, break, and the embedding
 * operations (run_once, next_timeout_ns). */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "io/loop.h"
#include "util/clock.h"

#define MS 1000000u
/* Upper bounds are loose (shared machines, sanitizers); lower bounds are
 * exact: a timer must never fire before its deadline. */
#define SLACK_NS (2000u * MS)
#define MAX_ITERATIONS 10000 /* and a 60 s alarm in main */

static const loop_ops *lo = &loop_epoll_ops;

/* ------------------------------------------------------------ helpers */

/* The loop computes a deadline from its own clock reading inside
 * timer_arm; the test knows it lies in [due_ns, due_max_ns]. */
typedef struct fired {
  int id;
  uint64_t due_ns;     /* earliest possible deadline */
  uint64_t due_max_ns; /* latest possible deadline */
  uint64_t at_ns;      /* when it fired */
  int count;
  struct fired_log *log;
} fired;

typedef struct fired_log {
  int ids[4096];
  uint64_t due[4096], due_max[4096];
  size_t n;
  int early; /* fired before due */
} fired_log;

static void on_fire(void *arg) {
  fired *f = arg;
  f->at_ns = clock_now_ns();
  f->count++;
  if (f->at_ns < f->due_ns)
    f->log->early++;
  if (f->log->n < 4096) {
    f->log->ids[f->log->n] = f->id;
    f->log->due[f->log->n] = f->due_ns;
    f->log->due_max[f->log->n] = f->due_max_ns;
    f->log->n++;
  }
}

static void arm(loop_timer *t, fired *f, uint64_t after_ns) {
  f->due_ns = clock_now_ns() + after_ns;
  lo->timer_arm(t, after_ns);
  f->due_max_ns = clock_now_ns() + after_ns;
}

static int fd_readable(loop *l, int timeout_ms) {
  struct pollfd p = {.fd = lo->fd(l), .events = POLLIN};
  return poll(&p, 1, timeout_ms);
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* -------------------------------------------------------------- timers */

static void test_timer_order(void) {
  loop *l = lo->create();
  CHECK(l != NULL);
  fired_log log = {0};
  static const int delays_ms[] = {40, 10, 30, 20, 50};
  fired f[5];
  loop_timer *t[5];
  uint64_t start = clock_now_ns();
  for (int i = 0; i < 5; i++) {
    f[i] = (fired){.id = delays_ms[i], .log = &log};
    t[i] = lo->timer_new(l, on_fire, &f[i]);
    arm(t[i], &f[i], (uint64_t)delays_ms[i] * MS);
  }
  for (int i = 0; i < MAX_ITERATIONS && log.n < 5; i++)
    CHECK(lo->run_once(l, -1) == 0);
  CHECK(log.n == 5);
  for (size_t i = 0; i < log.n; i++)
    CHECK(log.ids[i] == 10 * (int)(i + 1));
  CHECK(log.early == 0);
  CHECK(clock_now_ns() - start < 50 * MS + SLACK_NS);
  CHECK(lo->next_timeout_ns(l) == -1); /* all fired, none re-armed */
  for (int i = 0; i < 5; i++)
    lo->timer_free(t[i]);
  lo->destroy(l);
}

static void test_rearm_stop_free(void) {
  loop *l = lo->create();
  fired_log log = {0};
  fired a = {.id = 1, .log = &log}, b = {.id = 2, .log = &log},
        c = {.id = 3, .log = &log};
  loop_timer *ta = lo->timer_new(l, on_fire, &a);
  loop_timer *tb = lo->timer_new(l, on_fire, &b);
  loop_timer *tc = lo->timer_new(l, on_fire, &c);
  arm(ta, &a, 10 * MS);
  arm(tb, &b, 20 * MS);
  arm(tc, &c, 5 * MS);
  arm(ta, &a, 60 * MS); /* moved later */
  lo->timer_stop(tb);
  lo->timer_stop(tb); /* twice is fine */
  lo->timer_free(tc); /* freed while armed */
  for (int i = 0; i < MAX_ITERATIONS && a.count == 0; i++)
    lo->run_once(l, -1);
  CHECK(a.count == 1);
  CHECK(b.count == 0);
  CHECK(c.count == 0);
  CHECK(log.early == 0);
  CHECK(lo->next_timeout_ns(l) == -1);
  lo->timer_free(ta);
  lo->timer_free(tb);
  lo->timer_free(NULL);
  lo->destroy(l);
}

/* Thousands of timers with stops and re-arms fire once each, in deadline
 * order, none early. */
static void test_many_timers(void) {
  enum { N = 3000 };
  loop *l = lo->create();
  static fired f[N];
  static loop_timer *t[N];
  static fired_log log;
  log = (fired_log){0};
  uint32_t seed = 12345;
  int expected = 0;
  for (int i = 0; i < N; i++) {
    f[i] = (fired){.id = i, .log = &log};
    t[i] = lo->timer_new(l, on_fire, &f[i]);
    CHECK(t[i] != NULL);
    seed = seed * 1103515245u + 12345u;
    arm(t[i], &f[i], (seed >> 8) % (40 * MS));
  }
  for (int i = 0; i < N; i++) {
    seed = seed * 1103515245u + 12345u;
    if (i % 7 == 0)
      lo->timer_stop(t[i]);
    else if (i % 5 == 0)
      arm(t[i], &f[i], (seed >> 8) % (40 * MS));
    if (i % 7 != 0)
      expected++;
  }
  for (int i = 0; i < MAX_ITERATIONS && log.n < (size_t)expected; i++)
    lo->run_once(l, -1);
  CHECK(log.n == (size_t)expected);
  CHECK(log.early == 0);
  int out_of_order = 0, twice = 0;
  /* Fired later means a deadline no earlier. */
  for (size_t i = 1; i < log.n; i++)
    out_of_order += log.due_max[i] < log.due[i - 1];
  for (int i = 0; i < N; i++)
    twice += f[i].count > 1 || (i % 7 == 0 && f[i].count != 0);
  CHECK(out_of_order == 0);
  CHECK(twice == 0);
  for (int i = 0; i < N; i++)
    lo->timer_free(t[i]);
  lo->destroy(l);
}

/* A callback that re-arms its own timer for "now" does not keep run_once
 * busy: the iteration ends and next_timeout says to come back at once. */
static loop_timer *self_timer;
static int self_runs;
static void rearm_now(void *arg) {
  (void)arg;
  self_runs++;
  lo->timer_arm(self_timer, 0);
}

static void test_rearm_now_is_bounded(void) {
  loop *l = lo->create();
  self_timer = lo->timer_new(l, rearm_now, NULL);
  self_runs = 0;
  lo->timer_arm(self_timer, 0);
  CHECK(lo->run_once(l, 0) == 0);
  CHECK(self_runs == 1);
  CHECK(lo->next_timeout_ns(l) == 0);
  CHECK(fd_readable(l, 1000) == 1); /* the timerfd says so too */
  lo->run_once(l, 0);
  CHECK(self_runs == 2);
  lo->timer_free(self_timer);
  lo->destroy(l);
}

/* ------------------------------------------------- the aggregated fd */

typedef struct chained {
  loop_timer *t;
  fired *f;
  int runs;
} chained;

static void arm_chained(void *arg) {
  chained *ch = arg;
  ch->runs++;
  arm(ch->t, ch->f, 20 * MS);
}

static void test_fd_turns_readable_for_timers(void) {
  loop *l = lo->create();
  fired_log log = {0};
  fired f = {.id = 1, .log = &log};
  loop_timer *t = lo->timer_new(l, on_fire, &f);
  CHECK(lo->fd(l) >= 0);
  CHECK(lo->next_timeout_ns(l) == -1);
  CHECK(fd_readable(l, 0) == 0);
  arm(t, &f, 30 * MS);
  int64_t left = lo->next_timeout_ns(l);
  CHECK(left > 0 && left <= (int64_t)(30 * MS));
  /* The host waits on the fd alone, with no timeout of its own. */
  CHECK(fd_readable(l, 5000) == 1);
  CHECK(clock_now_ns() >= f.due_ns);
  CHECK(f.count == 0); /* callbacks run only inside run_once */
  CHECK(lo->next_timeout_ns(l) == 0);
  CHECK(lo->run_once(l, 0) == 0);
  CHECK(f.count == 1);
  CHECK(log.early == 0);
  CHECK(fd_readable(l, 0) == 0);
  /* Armed during an iteration (by another timer's callback), the timer
   * still makes the fd readable: the timerfd is set before it ends. */
  chained ch = {.t = t, .f = &f};
  loop_timer *first = lo->timer_new(l, arm_chained, &ch);
  lo->timer_arm(first, 0);
  lo->run_once(l, 0);
  CHECK(ch.runs == 1);
  CHECK(f.count == 1);
  CHECK(fd_readable(l, 5000) == 1);
  lo->run_once(l, 0);
  CHECK(f.count == 2);
  CHECK(log.early == 0);
  lo->timer_free(first);
  lo->timer_free(t);
  lo->destroy(l);
}

/* ------------------------------------------------------------ wakeups */

static atomic_int wakeups;
static pthread_t wakeup_thread_seen;
static void on_wakeup(void *arg) {
  (void)arg;
  wakeup_thread_seen = pthread_self();
  atomic_fetch_add(&wakeups, 1);
}

static void *wake_later(void *arg) {
  sleep_ms(30);
  lo->wakeup(arg);
  return NULL;
}

static void test_wakeup_from_thread(void) {
  loop *l = lo->create();
  CHECK(lo->set_wakeup(l, on_wakeup, NULL) == 0);
  atomic_store(&wakeups, 0);
  pthread_t th;
  uint64_t t0 = clock_now_ns();
  CHECK(pthread_create(&th, NULL, wake_later, l) == 0);
  for (int i = 0; i < 100 && atomic_load(&wakeups) == 0; i++)
    lo->run_once(l, 5000);
  CHECK(atomic_load(&wakeups) == 1);
  CHECK(pthread_equal(wakeup_thread_seen, pthread_self()));
  CHECK(clock_now_ns() - t0 < SLACK_NS + 30 * MS);
  pthread_join(th, NULL);
  /* Many wakeups before the loop runs coalesce into one callback. */
  for (int i = 0; i < 100; i++)
    lo->wakeup(l);
  CHECK(lo->next_timeout_ns(l) == 0);
  CHECK(fd_readable(l, 0) == 1);
  lo->run_once(l, 0);
  CHECK(atomic_load(&wakeups) == 2);
  CHECK(fd_readable(l, 0) == 0);
  CHECK(lo->next_timeout_ns(l) == -1);
  lo->destroy(l);
}

static loop *signal_loop;
static void on_sigusr1(int sig) {
  (void)sig;
  lo->wakeup(signal_loop);
}

static void test_wakeup_from_signal_handler(void) {
  loop *l = lo->create();
  lo->set_wakeup(l, on_wakeup, NULL);
  atomic_store(&wakeups, 0);
  signal_loop = l;
  struct sigaction sa = {0};
  sa.sa_handler = on_sigusr1;
  sigemptyset(&sa.sa_mask);
  CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);
  errno = 1234;
  raise(SIGUSR1);
  CHECK(errno == 1234); /* the handler preserved errno */
  for (int i = 0; i < 100 && atomic_load(&wakeups) == 0; i++)
    lo->run_once(l, 5000);
  CHECK(atomic_load(&wakeups) == 1);
  signal(SIGUSR1, SIG_DFL);
  lo->destroy(l);
}

/* --------------------------------------------------- fds and the hook */

static int pipe_reads, before_runs;
static int pipe_fds[2];
static void on_pipe(void *arg) {
  (void)arg;
  char c;
  if (read(pipe_fds[0], &c, 1) == 1)
    pipe_reads++;
}
static void on_before(void *arg) {
  (void)arg;
  before_runs++;
}

static void test_watch_and_hook(void) {
  loop *l = lo->create();
  CHECK(pipe(pipe_fds) == 0);
  CHECK(lo->watch_readable(l, pipe_fds[0], on_before, NULL) == 0);
  CHECK(lo->watch_readable(l, pipe_fds[0], on_pipe, NULL) == 0); /* replaces */
  CHECK(lo->set_before_block(l, on_before, NULL) == 0);
  pipe_reads = before_runs = 0;
  CHECK(write(pipe_fds[1], "xy", 2) == 2);
  CHECK(fd_readable(l, 1000) == 1);
  lo->run_once(l, 0);
  CHECK(pipe_reads == 1);
  CHECK(before_runs == 1);
  CHECK(lo->next_timeout_ns(l) == 0); /* the fd may be readable still */
  lo->run_once(l, 0);
  CHECK(pipe_reads == 2);
  lo->run_once(l, 0);
  CHECK(pipe_reads == 2);
  CHECK(before_runs == 3); /* once per iteration, idle or not */
  CHECK(lo->next_timeout_ns(l) == -1);
  lo->unwatch(l, pipe_fds[0]);
  CHECK(write(pipe_fds[1], "z", 1) == 1);
  CHECK(fd_readable(l, 0) == 0);
  lo->run_once(l, 0);
  CHECK(pipe_reads == 2);
  close(pipe_fds[0]);
  close(pipe_fds[1]);
  /* A bounded number of watched fds (the server needs one, and the
   * metrics listener one per client and one more). */
  int fds[18][2], ok = 0;
  for (int i = 0; i < 18; i++) {
    CHECK(pipe(fds[i]) == 0);
    ok += lo->watch_readable(l, fds[i][0], on_pipe, NULL) == 0;
  }
  CHECK(ok == 16);
  CHECK(lo->watch_readable(l, -1, on_pipe, NULL) == -1);
  for (int i = 0; i < 18; i++) {
    close(fds[i][0]);
    close(fds[i][1]);
  }
  lo->destroy(l);
}

/* Work queued between iterations (an embedding host calling the API)
 * wakes the host; queued inside an iteration it waits for the hook. */
static loop *sched_loop;
static void schedule_from_timer(void *arg) {
  (void)arg;
  lo->schedule_before_block(sched_loop);
}

static void test_schedule_before_block(void) {
  loop *l = lo->create();
  sched_loop = l;
  lo->set_before_block(l, on_before, NULL);
  before_runs = 0;
  lo->schedule_before_block(l);
  CHECK(fd_readable(l, 0) == 1);
  CHECK(lo->next_timeout_ns(l) == 0);
  lo->run_once(l, 0);
  CHECK(before_runs == 1);
  CHECK(fd_readable(l, 0) == 0);
  loop_timer *t = lo->timer_new(l, schedule_from_timer, NULL);
  lo->timer_arm(t, 0);
  lo->run_once(l, 0);
  CHECK(before_runs == 2);
  CHECK(fd_readable(l, 0) == 0); /* no needless wakeup */
  lo->timer_free(t);
  lo->destroy(l);
}

/* ---------------------------------------------------------- run/break */

static loop *break_loop_l;
static void break_now(void *arg) {
  (void)arg;
  lo->break_loop(break_loop_l);
}

static void test_run_and_break(void) {
  loop *l = lo->create();
  break_loop_l = l;
  loop_timer *t = lo->timer_new(l, break_now, NULL);
  uint64_t t0 = clock_now_ns();
  lo->timer_arm(t, 20 * MS);
  CHECK(lo->run(l) == 0);
  CHECK(clock_now_ns() - t0 >= 20 * MS);
  /* Embedded, the break is reported by every later run_once... */
  CHECK(lo->run_once(l, 0) == 1);
  CHECK(lo->run_once(l, 0) == 1);
  /* ...until run starts again. */
  lo->timer_arm(t, 10 * MS);
  CHECK(lo->run(l) == 0);
  lo->timer_free(t);
  lo->destroy(l);
}

int main(void) {
  /* Loops below block on the loop alone; a lost timer would hang them. */
  alarm(60);
  test_timer_order();
  test_rearm_stop_free();
  test_many_timers();
  test_rearm_now_is_bounded();
  test_fd_turns_readable_for_timers();
  test_wakeup_from_thread();
  test_wakeup_from_signal_handler();
  test_watch_and_hook();
  test_schedule_before_block();
  test_run_and_break();
  return check_report("test_loop_epoll");
}
