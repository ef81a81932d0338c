#include "h3c_args.h"

#include <ctype.h>
#include <err.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void h3c_usage_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vwarnx(fmt, ap);
  va_end(ap);
  fprintf(stderr, "Try '%s --help' for more information.\n",
          program_invocation_short_name);
  exit(2);
}

uint64_t h3c_arg_u64(const char *opt, const char *s, uint64_t min,
                     uint64_t max) {
  char *end = NULL;
  errno = 0;
  /* strtoull accepts a leading '-' and wraps; refuse it explicitly. */
  if (s[0] == '\0' || !isdigit((unsigned char)s[0]))
    h3c_usage_error("%s: '%s' is not a non-negative integer", opt, s);
  unsigned long long v = strtoull(s, &end, 10);
  if (errno != 0 || *end != '\0')
    h3c_usage_error("%s: '%s' is not a valid integer", opt, s);
  if (v < min || v > max)
    h3c_usage_error("%s: %llu is out of range [%llu, %llu]", opt, v,
                    (unsigned long long)min, (unsigned long long)max);
  return (uint64_t)v;
}

double h3c_arg_seconds(const char *opt, const char *s, double min, double max) {
  char *end = NULL;
  errno = 0;
  double v = strtod(s, &end);
  if (errno != 0 || end == s || *end != '\0' || !isfinite(v))
    h3c_usage_error("%s: '%s' is not a number of seconds", opt, s);
  if (v < min || v > max)
    h3c_usage_error("%s: %g is out of range [%g, %g]", opt, v, min, max);
  return v;
}

/* RFC 9110 token characters; header names must consist of them. */
static int is_tchar(int c) {
  return isalnum(c) || (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

bool h3c_is_token(const char *s) {
  if (s[0] == '\0')
    return false;
  for (const char *p = s; *p; p++)
    if (!is_tchar((unsigned char)*p))
      return false;
  return true;
}

static void kvlist_push(h3c_kvlist *list, char *name, char *value) {
  if (list->n == list->cap) {
    list->cap = list->cap ? list->cap * 2 : 8;
    list->v = h3c_xrealloc(list->v, list->cap * sizeof(*list->v));
  }
  list->v[list->n].name = name;
  list->v[list->n].value = value;
  list->n++;
}

void h3c_arg_header(h3c_kvlist *list, const char *line) {
  const char *colon = strchr(line, ':');
  if (colon == NULL || colon == line)
    h3c_usage_error("-H: '%s' is not of the form 'name: value'", line);
  size_t nlen = (size_t)(colon - line);
  char *name = h3c_xmalloc(nlen + 1);
  for (size_t i = 0; i < nlen; i++) {
    int c = (unsigned char)line[i];
    if (!is_tchar(c))
      h3c_usage_error("-H: invalid character in header name '%.*s'", (int)nlen,
                      line);
    name[i] = (char)tolower(c);
  }
  name[nlen] = '\0';
  const char *v = colon + 1;
  while (*v == ' ' || *v == '\t')
    v++;
  size_t vlen = strlen(v);
  while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
    vlen--;
  for (size_t i = 0; i < vlen; i++)
    if (v[i] == '\r' || v[i] == '\n')
      h3c_usage_error("-H: header value of '%s' contains CR or LF", name);
  char *value = h3c_xmalloc(vlen + 1);
  memcpy(value, v, vlen);
  value[vlen] = '\0';
  kvlist_push(list, name, value);
}

const char *h3c_kvlist_get(const h3c_kvlist *list, const char *name) {
  for (size_t i = 0; i < list->n; i++)
    if (strcmp(list->v[i].name, name) == 0)
      return list->v[i].value;
  return NULL;
}

void h3c_kvlist_free(h3c_kvlist *list) {
  for (size_t i = 0; i < list->n; i++) {
    free(list->v[i].name);
    free(list->v[i].value);
  }
  free(list->v);
  list->v = NULL;
  list->n = list->cap = 0;
}

void h3c_out_of_memory(void) {
  errx(1, "out of memory");
}

void *h3c_xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (p == NULL)
    h3c_out_of_memory();
  return p;
}

void *h3c_xcalloc(size_t n, size_t size) {
  void *p = calloc(n ? n : 1, size ? size : 1);
  if (p == NULL)
    h3c_out_of_memory();
  return p;
}

void *h3c_xrealloc(void *p, size_t n) {
  void *q = realloc(p, n ? n : 1);
  if (q == NULL)
    h3c_out_of_memory();
  return q;
}

char *h3c_xstrdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *p = h3c_xmalloc(n);
  memcpy(p, s, n);
  return p;
}
