#include "bench_report.h"

#include "h3c_json.h"

#include <stdio.h>

static double per_s(double v, double seconds) {
  return seconds > 0 ? v / seconds : 0;
}

static void print_json(const bench_result *r) {
  FILE *f = stdout;
  double mbit = per_s((double)r->body_bytes * 8 / 1e6, r->seconds);
  fprintf(f, "{\"requests\":%llu,\"ok\":%llu,\"failed\":%llu,\"seconds\":",
          (unsigned long long)(r->ok + r->failed), (unsigned long long)r->ok,
          (unsigned long long)r->failed);
  h3c_json_num(f, r->seconds);
  fputs(",\"req_per_s\":", f);
  h3c_json_num(f, per_s((double)r->ok, r->seconds));
  fprintf(f, ",\"body_bytes\":%llu,\"goodput_mbit_s\":",
          (unsigned long long)r->body_bytes);
  h3c_json_num(f, mbit);
  static const char *const names[] = {"p50", "p90", "p99", "max"};
  static const double pcts[] = {50, 90, 99, 100};
  fputs(",\"latency_ms\":{", f);
  for (int i = 0; i < 4; i++) {
    fprintf(f, "%s\"%s\":", i ? "," : "", names[i]);
    h3c_json_num(f, bench_lat_pct(r->lat, pcts[i]));
  }
  fputs(",\"mean\":", f);
  h3c_json_num(f, bench_lat_mean(r->lat));
  fputs("},\"connect_ms\":", f);
  h3c_json_num(f, r->connect_ms);
  fprintf(f, ",\"connections\":%llu,\"streams\":%llu,\"threads\":%llu",
          (unsigned long long)r->conns, (unsigned long long)r->streams,
          (unsigned long long)r->threads);
  fputs(",\"rate\":", f);
  h3c_json_num(f, r->rate);
  fputs("}\n", f);
}

static void print_human(const bench_result *r) {
  double mbit = per_s((double)r->body_bytes * 8 / 1e6, r->seconds);
  printf("%s\n", r->url);
  printf("  connections %llu x streams %llu, threads %llu, connect %.2f ms\n",
         (unsigned long long)r->conns, (unsigned long long)r->streams,
         (unsigned long long)r->threads, r->connect_ms);
  if (r->rate > 0)
    printf("  open loop: %.0f requests/s offered\n", r->rate);
  printf("  requests %llu: ok %llu, failed %llu in %.3f s = %.1f req/s\n",
         (unsigned long long)(r->ok + r->failed), (unsigned long long)r->ok,
         (unsigned long long)r->failed, r->seconds,
         per_s((double)r->ok, r->seconds));
  printf("  body %llu bytes, goodput %.1f Mbit/s\n",
         (unsigned long long)r->body_bytes, mbit);
  printf("  latency ms: p50 %.3f  p90 %.3f  p99 %.3f  max %.3f  mean %.3f\n",
         bench_lat_pct(r->lat, 50), bench_lat_pct(r->lat, 90),
         bench_lat_pct(r->lat, 99), bench_lat_pct(r->lat, 100),
         bench_lat_mean(r->lat));
}

void bench_report_print(const bench_result *r, bool json) {
  if (json)
    print_json(r);
  else
    print_human(r);
  fflush(stdout);
}
