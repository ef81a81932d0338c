/* Unit tests for util/log: line format, the program name, level filters. */
#include "check.h"
#include "util/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char captured[4096];

/* Runs fn with stderr going to a temporary file; keeps what it wrote. */
static void capture(void (*fn)(void)) {
  FILE *tmp = tmpfile();
  CHECK(tmp != NULL);
  if (!tmp)
    return;
  fflush(stderr);
  int saved = dup(STDERR_FILENO);
  dup2(fileno(tmp), STDERR_FILENO);
  fn();
  fflush(stderr);
  dup2(saved, STDERR_FILENO);
  close(saved);
  rewind(tmp);
  size_t n = fread(captured, 1, sizeof captured - 1, tmp);
  captured[n] = '\0';
  fclose(tmp);
}

static void write_warn(void) {
  log_write(H3Q_LOG_WARN, "hello %d", 42);
}

static void write_debug_macro(void) {
  LOG_DEBUG("debug %s", "line");
}

static void test_name(void) {
  capture(write_warn);
  CHECK(strstr(captured, " h3q warn  hello 42\n") != NULL);
  log_set_name("h3q-test");
  capture(write_warn);
  CHECK(strstr(captured, " h3q-test warn  hello 42\n") != NULL);
  /* NULL and "" keep the current name. */
  log_set_name(NULL);
  log_set_name("");
  capture(write_warn);
  CHECK(strstr(captured, " h3q-test warn  hello 42\n") != NULL);
  log_set_name("h3q");
}

static void test_levels(void) {
  h3q_log_set_level(H3Q_LOG_WARN);
  capture(write_debug_macro);
  CHECK(captured[0] == '\0');
  h3q_log_set_level(H3Q_LOG_DEBUG);
  capture(write_debug_macro);
#if H3Q_LOG_FLOOR >= 3
  CHECK(strstr(captured, " h3q debug debug line\n") != NULL);
#else
  CHECK(captured[0] == '\0');
#endif
  h3q_log_set_level(H3Q_LOG_WARN);
}

int main(void) {
  test_name();
  test_levels();
  return check_report("test_log");
}
