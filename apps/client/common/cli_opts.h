/* h3q-client's command line. */
#ifndef CLI_OPTS_H
#define CLI_OPTS_H

#include "h3c_opts.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct cli_opts {
  h3c_shared_opts s;
  const char *data_file; /* -d; '-' = stdin */
  const char *output;    /* -o; NULL or '-' = stdout */
  bool no_body;          /* --no-body */
  bool include;          /* -i */
  bool json;             /* --json */
  bool verify;           /* --verify-bytes */
  bool fail_status;      /* --fail */
  uint64_t repeat;       /* -n */
  uint64_t conns;        /* -c */
  uint64_t parallel;     /* -p */
  uint64_t stall_after;  /* --stall-after */
  double stall_ms;       /* --stall-ms; 0 = off */
  char **urls;
  size_t nurls;
} cli_opts;

/* Parses argv into o; prints help and exits 0 for -h, exits 2 on usage
 * errors. */
void cli_opts_parse(cli_opts *o, int argc, char **argv);

#endif
