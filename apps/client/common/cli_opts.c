#include "cli_opts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
  OPT_NO_BODY = H3C_OPT_LOCAL,
  OPT_JSON,
  OPT_VERIFY,
  OPT_STALL_AFTER,
  OPT_STALL_MS,
  OPT_FAIL,
};

static void usage(void) {
  fputs(
      "Usage: h3q-client [options] URL [URL...]\n"
      "HTTP/3 client. URL = https://HOST[:PORT]/path?query\n\n"
      "  -X, --method M        request method (default GET; POST with -d)\n"
      "  -d, --data-file FILE  stream the request body from FILE ('-' = "
      "stdin)\n"
      "  -o, --output FILE     write response bodies to FILE ('-' = stdout)\n"
      "      --no-body         discard response bodies\n"
      "  -i, --include         print response headers and trailers to "
      "stderr\n"
      "      --json            one JSON object per request on stdout, then a "
      "summary\n"
      "  -n, --repeat N        send each URL N times (default 1)\n"
      "  -c, --connections N   connections per origin, round-robin (default "
      "1)\n"
      "  -p, --parallel N      max concurrent requests per connection "
      "(default 100)\n"
      "      --timeout SEC     overall deadline (default 30; 0 = none)\n"
      "      --verify-bytes    check bodies against the pattern byte[i] = i % "
      "251\n"
      "      --stall-after B   slow reader: after B body bytes stop reading\n"
      "      --stall-ms MS     ... for MS milliseconds, then resume\n"
      "      --fail            treat HTTP status >= 400 as a "
      "failure\n" H3C_SHARED_HELP
      "\nExit status: 0 all requests completed, 1 a request failed, 2 usage "
      "error.\n",
      stdout);
}

static const struct option longopts[] = {
    H3C_SHARED_LONG,
    {"data-file", required_argument, NULL, 'd'},
    {"output", required_argument, NULL, 'o'},
    {"no-body", no_argument, NULL, OPT_NO_BODY},
    {"include", no_argument, NULL, 'i'},
    {"json", no_argument, NULL, OPT_JSON},
    {"repeat", required_argument, NULL, 'n'},
    {"connections", required_argument, NULL, 'c'},
    {"parallel", required_argument, NULL, 'p'},
    {"verify-bytes", no_argument, NULL, OPT_VERIFY},
    {"stall-after", required_argument, NULL, OPT_STALL_AFTER},
    {"stall-ms", required_argument, NULL, OPT_STALL_MS},
    {"fail", no_argument, NULL, OPT_FAIL},
    {NULL, 0, NULL, 0},
};

static void apply(cli_opts *o, int c, const char *arg, bool *stall_after_set) {
  switch (c) {
  case 'd':
    o->data_file = arg;
    break;
  case 'o':
    o->output = arg;
    break;
  case OPT_NO_BODY:
    o->no_body = true;
    break;
  case 'i':
    o->include = true;
    break;
  case OPT_JSON:
    o->json = true;
    break;
  case 'n':
    o->repeat = h3c_arg_u64("--repeat", arg, 1, 100000000);
    break;
  case 'c':
    o->conns = h3c_arg_u64("--connections", arg, 1, 10000);
    break;
  case 'p':
    o->parallel = h3c_arg_u64("--parallel", arg, 1, 100000);
    break;
  case OPT_VERIFY:
    o->verify = true;
    break;
  case OPT_STALL_AFTER:
    o->stall_after = h3c_arg_u64("--stall-after", arg, 0, UINT64_MAX / 2);
    *stall_after_set = true;
    break;
  case OPT_STALL_MS:
    o->stall_ms = (double)h3c_arg_u64("--stall-ms", arg, 1, 3600000);
    break;
  case OPT_FAIL:
    o->fail_status = true;
    break;
  default:
    h3c_usage_error("unknown option");
  }
}

void cli_opts_parse(cli_opts *o, int argc, char **argv) {
  memset(o, 0, sizeof(*o));
  h3c_shared_opts_init(&o->s);
  o->repeat = o->conns = 1;
  o->parallel = 100;
  bool stall_after_set = false;
  int c;
  opterr = 0; /* our own messages, with the exit status 2 */
  while ((c = getopt_long(argc, argv, H3C_SHARED_SHORT "d:o:in:c:p:", longopts,
                          NULL)) != -1) {
    if (c == '?' || c == ':')
      h3c_usage_error("invalid or incomplete option '%s'", argv[optind - 1]);
    if (!h3c_shared_opt(&o->s, c, optarg))
      apply(o, c, optarg, &stall_after_set);
  }
  if (o->s.help) {
    usage();
    exit(0);
  }
  if (stall_after_set != (o->stall_ms > 0))
    h3c_usage_error("--stall-after and --stall-ms must be given together");
  if (optind >= argc)
    h3c_usage_error("no URL given");
  o->urls = argv + optind;
  o->nurls = (size_t)(argc - optind);
}
