#include "h3c_opts.h"

#include "util/log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <quiche.h>

void h3c_shared_opts_init(h3c_shared_opts *s) {
  memset(s, 0, sizeof(*s));
  s->tls.max_payload = 1350;
  s->timeout = 30;
}

void h3c_check_method(const char *m) {
  if (m[0] == '\0')
    h3c_usage_error("-X: empty method");
  if (!h3c_is_token(m))
    h3c_usage_error("-X: invalid method '%s'", m);
}

bool h3c_shared_opt(h3c_shared_opts *s, int c, const char *arg) {
  switch (c) {
  case 'X':
    h3c_check_method(arg);
    s->method = arg;
    return true;
  case 'H':
    h3c_arg_header(&s->headers, arg);
    return true;
  case 'k':
    s->tls.insecure = true;
    return true;
  case H3C_OPT_CACERT:
    s->tls.cacert = arg;
    return true;
  case H3C_OPT_TIMEOUT:
    s->timeout = h3c_arg_seconds("--timeout", arg, 0, 86400 * 7);
    s->timeout_set = true;
    return true;
  case H3C_OPT_MAX_PAYLOAD:
    s->tls.max_payload = (size_t)h3c_arg_u64("--max-payload", arg, 1200, 65527);
    return true;
  case 'v':
    s->verbose++;
    return true;
  case 'h':
    s->help = true;
    return true;
  default:
    return false;
  }
}

static void quiche_log_line(const char *line, void *arg) {
  (void)arg;
  fprintf(stderr, "quiche: %s\n", line);
}

void h3c_set_verbosity(int verbose) {
  log_set_name(program_invocation_short_name);
  h3q_log_set_level(verbose >= 2   ? H3Q_LOG_TRACE
                    : verbose == 1 ? H3Q_LOG_DEBUG
                                   : H3Q_LOG_WARN);
  /* quiche's trace is very chatty; only with -vv. */
  if (verbose >= 2)
    quiche_enable_debug_logging(quiche_log_line, NULL);
}
