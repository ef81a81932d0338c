/* The metrics listener's request-head parser (src/io/http_listen.c): any
 * bytes from a TCP client. It must stay inside the buffer (the input is an
 * exact-size heap copy, not NUL-terminated, so ASan sees any overread),
 * and what it accepts must be a method and a path that fit. */
#include "fuzz.h"
#include "io/http_listen.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > HTTP_LISTEN_HEAD_MAX)
    size = HTTP_LISTEN_HEAD_MAX; /* the listener never holds more */
  char *copy = malloc(size ? size : 1);
  if (!copy)
    abort();
  memcpy(copy, data, size);
  char method[16], path[1024];
  int rc =
      http_parse_head(copy, size, method, sizeof method, path, sizeof path);
  FUZZ_CHECK(rc >= -1 && rc <= 1);
  if (rc == 1) {
    FUZZ_CHECK(method[0] && strlen(method) < sizeof method);
    FUZZ_CHECK(path[0] == '/' && strlen(path) < sizeof path);
    FUZZ_CHECK(!strchr(path, '?') && !strchr(path, ' '));
  }
  free(copy);
  return 0;
}
