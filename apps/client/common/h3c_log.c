#include "h3c_log.h"

#include <stdio.h>
#include <string.h>

#include <quiche.h>

int h3c_verbosity = 0;
static const char *g_prog = "h3q-client";

static void quiche_log_line(const char *line, void *argp) {
  (void)argp;
  fprintf(stderr, "quiche: %s\n", line);
}

void h3c_log_init(const char *prog, int verbosity) {
  const char *slash = strrchr(prog, '/');
  g_prog = slash ? slash + 1 : prog;
  h3c_verbosity = verbosity;
  /* quiche's trace is very chatty; only with -vv. */
  if (verbosity >= 2)
    quiche_enable_debug_logging(quiche_log_line, NULL);
}

const char *h3c_prog(void) {
  return g_prog;
}

void h3c_warn(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "%s: ", g_prog);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

void h3c_debug(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "%s: debug: ", g_prog);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}
