/* Diagnostics for the client programs: one program name prefix, a debug
 * switch (-v), and warnings that always reach stderr. */
#ifndef H3C_LOG_H
#define H3C_LOG_H

#include <stdarg.h>

/* 0 quiet, 1 our debug lines (-v), 2 plus quiche's own trace (-vv). */
extern int h3c_verbosity;

void h3c_log_init(const char *prog, int verbosity);
const char *h3c_prog(void);

/* "prog: message\n" on stderr, always printed. */
void h3c_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* "prog: debug: message\n" on stderr; use H3C_DEBUG to skip argument
 * evaluation when -v is off. */
void h3c_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define H3C_DEBUG(...)                                                         \
  do {                                                                         \
    if (h3c_verbosity > 0)                                                     \
      h3c_debug(__VA_ARGS__);                                                  \
  } while (0)

#endif
