#include "util/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <time.h>

int log_runtime_level = H3Q_LOG_WARN;
static const char *log_name = "h3q";
static h3q_log_format log_format = H3Q_LOG_TEXT;
/* Set by h3q_log_set_callback; read on every line, from any thread (a
 * hosted server logs from its own thread). */
static _Atomic(h3q_log_cb) log_cb;
static void *_Atomic log_cb_user;

static const char *const level_names[] = {"error", "warn", "info", "debug",
                                          "trace"};

void h3q_log_set_level(h3q_log_level level) {
  if ((int)level >= H3Q_LOG_ERROR && level <= H3Q_LOG_TRACE)
    log_runtime_level = (int)level;
}

void h3q_log_set_callback(h3q_log_cb cb, void *user) {
  atomic_store(&log_cb_user, user);
  atomic_store(&log_cb, cb);
}

void log_set_format(h3q_log_format format) {
  if (format == H3Q_LOG_TEXT || format == H3Q_LOG_JSON)
    log_format = format;
}

h3q_log_format log_get_format(void) {
  return log_format;
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

size_t log_json_escape(char *out, size_t cap, const char *s) {
  static const char hex[] = "0123456789abcdef";
  size_t n = 0;
  if (cap == 0)
    return 0;
  for (; *s; s++) {
    unsigned char ch = (unsigned char)*s;
    char esc[7];
    size_t len = 1;
    esc[0] = (char)ch;
    if (ch == '"' || ch == '\\') {
      esc[0] = '\\', esc[1] = (char)ch, len = 2;
    } else if (ch < 0x20 || ch == 0x7f) {
      esc[0] = '\\', esc[1] = 'u', esc[2] = '0', esc[3] = '0';
      esc[4] = hex[ch >> 4], esc[5] = hex[ch & 15], len = 6;
    }
    if (n + len >= cap)
      break; /* cut at a character boundary of the escaped form */
    for (size_t i = 0; i < len; i++)
      out[n++] = esc[i];
  }
  out[n] = '\0';
  return n;
}

size_t log_format_time(char *out, size_t cap, bool iso) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  int n;
  if (iso)
    n = snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                 tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
  else
    n = snprintf(out, cap, "%02d:%02d:%02d.%03ld", tm.tm_hour, tm.tm_min,
                 tm.tm_sec, ts.tv_nsec / 1000000);
  return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

static void write_line(h3q_log_level level, const char *msg) {
  char when[40];
  log_format_time(when, sizeof when, log_format == H3Q_LOG_JSON);
  if (log_format == H3Q_LOG_TEXT) {
    /* One call per line so lines from threads do not interleave. */
    fprintf(stderr, "%s %s %-5s %s\n", when, log_name, level_names[level], msg);
    return;
  }
  char esc[2048];
  log_json_escape(esc, sizeof esc, msg);
  fprintf(stderr,
          "{\"ts\":\"%s\",\"level\":\"%s\",\"program\":\"%s\",\"msg\":\"%s\"}"
          "\n",
          when, level_names[level], log_name, esc);
}

void log_write(h3q_log_level level, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  h3q_log_cb cb = atomic_load(&log_cb);
  if (cb)
    cb(level, msg, atomic_load(&log_cb_user));
  else
    write_line(level, msg);
}
