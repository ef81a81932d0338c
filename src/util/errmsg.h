/* Error messages written into a caller's buffer, as the config checks do
 * ("field: what is wrong"). */
#ifndef H3Q_UTIL_ERRMSG_H
#define H3Q_UTIL_ERRMSG_H

#include <stddef.h>

/* Formats the message into err (when err and errlen are non-zero; always
 * NUL-terminated, cut to fit) and returns code, so a check can say
 * `return errmsg_set(H3Q_ECONFIG, err, errlen, "...", ...)`. */
int errmsg_set(int code, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
