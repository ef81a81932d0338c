/* Options both programs accept (-X, -H, -k, --cacert, --max-payload,
 * --timeout, -v, -h), parsed in one place so they behave the same. */
#ifndef H3C_OPTS_H
#define H3C_OPTS_H

#include "h3c_args.h"
#include "h3c_quic_cfg.h"

#include <getopt.h>
#include <stdbool.h>

/* Long-only option codes; program-specific ones start at H3C_OPT_LOCAL. */
enum {
  H3C_OPT_CACERT = 256,
  H3C_OPT_TIMEOUT,
  H3C_OPT_MAX_PAYLOAD,
  H3C_OPT_LOCAL = 300,
};

#define H3C_SHARED_SHORT "X:H:kvh"
#define H3C_SHARED_LONG                                                        \
  {"method", required_argument, NULL, 'X'},                                    \
      {"header", required_argument, NULL, 'H'},                                \
      {"insecure", no_argument, NULL, 'k'},                                    \
      {"cacert", required_argument, NULL, H3C_OPT_CACERT},                     \
      {"timeout", required_argument, NULL, H3C_OPT_TIMEOUT},                   \
      {"max-payload", required_argument, NULL, H3C_OPT_MAX_PAYLOAD},           \
      {"verbose", no_argument, NULL, 'v'}, {                                   \
    "help", no_argument, NULL, 'h'                                             \
  }

/* Help text for the shared options except -X and --timeout, whose
 * defaults differ per program. */
#define H3C_SHARED_HELP                                                        \
  "  -H, --header 'n: v'   extra request header (repeatable)\n"                \
  "  -k, --insecure        do not verify the server certificate\n"             \
  "      --cacert FILE     verify against this CA/certificate file\n"          \
  "      --max-payload N   max UDP payload size (default 1350)\n"              \
  "  -v, --verbose         debug logs to stderr (-vv adds quiche's)\n"         \
  "  -h, --help            show this help\n"

typedef struct h3c_shared_opts {
  const char *method; /* NULL: the program's default */
  h3c_kvlist headers;
  h3c_tls_opts tls;
  double timeout; /* seconds; 0 = no deadline */
  bool timeout_set;
  int verbose;
  bool help;
} h3c_shared_opts;

void h3c_shared_opts_init(h3c_shared_opts *s);

/* Applies option c (getopt_long's return) if it is a shared one and
 * returns true; exits with status 2 on a bad value. */
bool h3c_shared_opt(h3c_shared_opts *s, int c, const char *arg);

/* Applies -v: 0 quiet, 1 debug lines (the library's log, named after the
 * program), 2 and more also quiche's own trace. */
void h3c_set_verbosity(int verbose);

/* Checks a method token; exits with a usage error if invalid. */
void h3c_check_method(const char *m);

#endif
