/* Command-line helpers shared by h3q-client and h3q-bench: numeric option
 * parsing with ranges, "name: value" header arguments, and usage errors
 * (exit status 2 with a message naming the option). Messages for the user
 * go to stderr as "program: message" (err.h's warnx); debug lines go
 * through the library's log (util/log.h, enabled by -v). */
#ifndef H3C_ARGS_H
#define H3C_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdnoreturn.h>

/* Prints "prog: message" and a --help hint, then exits with status 2. */
noreturn void h3c_usage_error(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

/* Parses a decimal integer in [min, max] or exits with a usage error that
 * names opt. */
uint64_t h3c_arg_u64(const char *opt, const char *s, uint64_t min,
                     uint64_t max);

/* Parses a non-negative decimal number of seconds in [min, max]. */
double h3c_arg_seconds(const char *opt, const char *s, double min, double max);

/* True when s is a non-empty RFC 9110 token (methods, header names). */
bool h3c_is_token(const char *s);

/* A header given on the command line; both strings are owned (malloc). */
typedef struct h3c_kv {
  char *name;
  char *value;
} h3c_kv;

typedef struct h3c_kvlist {
  h3c_kv *v;
  size_t n;
  size_t cap;
} h3c_kvlist;

/* Parses "name: value" (name lowercased, value trimmed) and appends it to
 * list; exits with a usage error when the line is malformed. */
void h3c_arg_header(h3c_kvlist *list, const char *line);

/* Returns the value of the first header named name, or NULL. */
const char *h3c_kvlist_get(const h3c_kvlist *list, const char *name);

void h3c_kvlist_free(h3c_kvlist *list);

/* malloc that exits on failure: the programs cannot do anything useful
 * without memory, and the messages would only hide the cause. */
noreturn void h3c_out_of_memory(void);
void *h3c_xmalloc(size_t n);
void *h3c_xcalloc(size_t n, size_t size);
void *h3c_xrealloc(void *p, size_t n);
char *h3c_xstrdup(const char *s);

#endif
