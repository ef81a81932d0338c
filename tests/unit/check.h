/* Minimal unit-test harness: CHECK records failures and goes on; each test
 * binary ends with "N passed, N failed" and a non-zero exit on failure. */
#ifndef H3Q_TEST_CHECK_H
#define H3Q_TEST_CHECK_H

#include <stdio.h>
#include <string.h>

static int check_passed, check_failed;

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (cond) {                                                                \
      check_passed++;                                                          \
    } else {                                                                   \
      check_failed++;                                                          \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
    }                                                                          \
  } while (0)

#define CHECK_STR(a, b)                                                        \
  do {                                                                         \
    const char *check_a_ = (a), *check_b_ = (b);                               \
    if (check_a_ && check_b_ && strcmp(check_a_, check_b_) == 0) {             \
      check_passed++;                                                          \
    } else {                                                                   \
      check_failed++;                                                          \
      fprintf(stderr, "%s:%d: CHECK_STR failed: \"%s\" != \"%s\"\n", __FILE__, \
              __LINE__, check_a_ ? check_a_ : "(null)",                        \
              check_b_ ? check_b_ : "(null)");                                 \
    }                                                                          \
  } while (0)

static inline int check_report(const char *name) {
  printf("%s: %d passed, %d failed\n", name, check_passed, check_failed);
  return check_failed == 0 ? 0 : 1;
}

#endif
