/* Levelled logging to stderr (text or JSON lines), or to an embedder's
 * callback (h3q_log_set_callback). LOG_* calls above H3Q_LOG_FLOOR compile to
 * nothing; the rest are filtered by the runtime level (h3q_log_set_level,
 * H3Q_LOG_LEVEL). */
#ifndef H3Q_UTIL_LOG_H
#define H3Q_UTIL_LOG_H

#include <stdbool.h>
#include <stddef.h>

#include "h3q.h"

#ifndef H3Q_LOG_FLOOR
#define H3Q_LOG_FLOOR 3
#endif

extern int log_runtime_level;

void log_write(h3q_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Parses "error".."trace" (case-insensitive); returns -1 when unknown. */
int log_level_parse(const char *s);

/* Names the program in every line ("h3q" by default), so that lines of a
 * client and a server sharing a terminal can be told apart. name must
 * outlive all logging; call before other threads log. */
void log_set_name(const char *name);

/* Applies H3Q_LOG_LEVEL from the environment when set and valid. */
void log_apply_env(void);

/* How stderr lines look (h3q_config.log_format); process-wide. */
void log_set_format(h3q_log_format format);
h3q_log_format log_get_format(void);

/* Writes s into out as the inside of a JSON string (quotes, backslashes
 * and control characters escaped), NUL-terminated, cut to fit cap; returns
 * the length written. */
size_t log_json_escape(char *out, size_t cap, const char *s);

/* The current UTC time: "2026-11-28T12:00:00.000Z" when iso, else
 * "12:00:00.000". Returns the length (0 when cap is too small). */
size_t log_format_time(char *out, size_t cap, bool iso);

#define LOG_AT(level, ...)                                                     \
  do {                                                                         \
    if ((level) <= H3Q_LOG_FLOOR && (int)(level) <= log_runtime_level)         \
      log_write((level), __VA_ARGS__);                                         \
  } while (0)

#define LOG_ERROR(...) LOG_AT(H3Q_LOG_ERROR, __VA_ARGS__)
#define LOG_WARN(...) LOG_AT(H3Q_LOG_WARN, __VA_ARGS__)
#define LOG_INFO(...) LOG_AT(H3Q_LOG_INFO, __VA_ARGS__)
#define LOG_DEBUG(...) LOG_AT(H3Q_LOG_DEBUG, __VA_ARGS__)
#define LOG_TRACE(...) LOG_AT(H3Q_LOG_TRACE, __VA_ARGS__)

#endif
