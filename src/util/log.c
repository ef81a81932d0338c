#include "util/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <time.h>

int log_runtime_level = H3Q_LOG_WARN;
static const char *log_name = "h3q";
/* Set by h3q_log_set_callback; read on every line (any thread). */
static _Atomic(h3q_log_fn) log_fn;
static void *_Atomic log_fn_user;

static const char *const level_names[] = {"error", "warn", "info", "debug",
                                          "trace"};

void h3q_log_set_level(h3q_log_level level) {
  if ((int)level >= H3Q_LOG_ERROR && level <= H3Q_LOG_TRACE)
    log_runtime_level = (int)level;
}

void h3q_log_set_callback(h3q_log_fn fn, void *user) {
  atomic_store(&log_fn_user, user);
  atomic_store(&log_fn, fn);
}

int log_level_parse(const char *s) {
  if (!s)
    return -1;
  for (int i = 0; i <= H3Q_LOG_TRACE; i++)
    if (strcasecmp(s, level_names[i]) == 0)
      return i;
  return -1;
}

void log_set_name(const char *name) {
  if (name && name[0])
    log_name = name;
}

void log_apply_env(void) {
  int level = log_level_parse(getenv("H3Q_LOG_LEVEL"));
  if (level >= 0)
    log_runtime_level = level;
}

void log_write(h3q_log_level level, const char *fmt, ...) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  char line[1024];
  int n = snprintf(line, sizeof line, "%02d:%02d:%02d.%03ld %s %-5s ",
                   tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
                   log_name, level_names[level]);
  va_list ap;
  va_start(ap, fmt);
  if (n > 0 && (size_t)n < sizeof line)
    vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
  va_end(ap);
  h3q_log_fn fn = atomic_load(&log_fn);
  if (fn) {
    fn((int)level, line, atomic_load(&log_fn_user));
    return;
  }
  /* One fputs per line so lines from threads do not interleave. */
  fprintf(stderr, "%s\n", line);
}
