#include "bench_opts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { OPT_JSON = H3C_OPT_LOCAL };

static void usage(void) {
  fputs("Usage: h3q-bench [options] URL\n"
        "HTTP/3 load generator (bodies are counted and discarded).\n\n"
        "  -c, --connections N   connections (default 1)\n"
        "  -s, --streams N       concurrent requests per connection (default "
        "1)\n"
        "  -n, --requests N      total requests (default 1000), or\n"
        "  -D, --duration SEC    run for SEC seconds (in-flight requests at "
        "the end\n"
        "                        are not counted)\n"
        "  -r, --rate R          open loop: R requests per second in all, "
        "evenly\n"
        "                        spaced per connection (at most -s in flight "
        "each);\n"
        "                        default: closed loop, each response starts "
        "the\n"
        "                        next request\n"
        "  -t, --threads N       threads, each with its own connections,\n"
        "                        sockets and event loop (default 1; at most\n"
        "                        one per connection); results are merged\n"
        "  -X, --method M        request method (default GET)\n"
        "      --timeout SEC     overall deadline (default 30, with -D: SEC + "
        "30;\n"
        "                        0 = none)\n"
        "      --json            print the result as one JSON "
        "object\n" H3C_SHARED_HELP
        "\nTiming starts when all connections are established; connect_ms "
        "is\n"
        "the time until then. A request's latency runs from sending its\n"
        "HEADERS to the end of its response. Responses with status >= 400 "
        "count\n"
        "as failed.\n"
        "Connections the server closes during the run are replaced.\n"
        "Exit status: 0 no failures, 1 failures, 2 usage error.\n",
        stdout);
}

static const struct option longopts[] = {
    H3C_SHARED_LONG,
    {"connections", required_argument, NULL, 'c'},
    {"streams", required_argument, NULL, 's'},
    {"requests", required_argument, NULL, 'n'},
    {"duration", required_argument, NULL, 'D'},
    {"threads", required_argument, NULL, 't'},
    {"rate", required_argument, NULL, 'r'},
    {"json", no_argument, NULL, OPT_JSON},
    {NULL, 0, NULL, 0},
};

static void apply(bench_opts *o, int c, const char *arg) {
  switch (c) {
  case 'c':
    o->conns = h3c_arg_u64("--connections", arg, 1, 10000);
    break;
  case 's':
    o->streams = h3c_arg_u64("--streams", arg, 1, 100000);
    break;
  case 'n':
    o->requests = h3c_arg_u64("--requests", arg, 1, UINT64_MAX / 2);
    break;
  case 'D':
    o->duration = h3c_arg_seconds("--duration", arg, 0.001, 86400 * 7);
    break;
  case 't':
    o->threads = h3c_arg_u64("--threads", arg, 1, BENCH_MAX_THREADS);
    break;
  case 'r':
    o->rate = (double)h3c_arg_u64("--rate", arg, 1, 100000000);
    break;
  case OPT_JSON:
    o->json = true;
    break;
  default:
    h3c_usage_error("unknown option");
  }
}

void bench_opts_parse(bench_opts *o, int argc, char **argv) {
  memset(o, 0, sizeof(*o));
  h3c_shared_opts_init(&o->s);
  o->conns = o->streams = o->threads = 1;
  int c;
  opterr = 0;
  while ((c = getopt_long(argc, argv, H3C_SHARED_SHORT "c:s:n:D:t:r:", longopts,
                          NULL)) != -1) {
    if (c == '?' || c == ':')
      h3c_usage_error("invalid or incomplete option '%s'", argv[optind - 1]);
    if (!h3c_shared_opt(&o->s, c, optarg))
      apply(o, c, optarg);
  }
  if (o->s.help) {
    usage();
    exit(0);
  }
  if (o->requests && o->duration > 0)
    h3c_usage_error("-n and -D are mutually exclusive");
  if (!o->requests && o->duration <= 0)
    o->requests = 1000;
  if (o->threads > o->conns)
    o->threads = o->conns; /* a thread without connections has no work */
  if (o->duration > 0 && !o->s.timeout_set)
    o->s.timeout = o->duration + 30;
  if (optind != argc - 1)
    h3c_usage_error(optind >= argc ? "no URL given" : "exactly one URL");
  o->url = argv[optind];
}
