/* Unit tests for header validation helpers and MIME types. */
#include "check.h"
#include "http/headers.h"

#include <string.h>

#define S(lit) (lit), (sizeof(lit) - 1)

static void test_token(void) {
  CHECK(header_name_is_token(S("content-type")));
  CHECK(header_name_is_token(S("X-Custom_1")));
  CHECK(header_name_is_token(S("!#$%&'*+-.^_`|~09azAZ")));
  CHECK(!header_name_is_token(S("")));
  CHECK(!header_name_is_token(NULL, 0));
  CHECK(!header_name_is_token(S(":path"))); /* ':' is not a tchar */
  CHECK(!header_name_is_token(S("a b")));
  CHECK(!header_name_is_token(S("a\tb")));
  CHECK(!header_name_is_token(S("a(b)")));
  CHECK(!header_name_is_token(S("a,b")));
  CHECK(!header_name_is_token(S("a\"b")));
  CHECK(!header_name_is_token(S("a/b")));
  CHECK(!header_name_is_token(S("a@b")));
  CHECK(!header_name_is_token(S("a\x7f")));
  CHECK(!header_name_is_token(S("caf\xc3\xa9")));
  CHECK(!header_name_is_token("a\0b", 3)); /* embedded NUL */
  /* Only len bytes are examined. */
  CHECK(header_name_is_token("abc def", 3));
}

static void test_lower(void) {
  CHECK(header_name_is_lower(S("content-type")));
  CHECK(header_name_is_lower(S("x-1_~")));
  CHECK(!header_name_is_lower(S("Content-Type")));
  CHECK(!header_name_is_lower(S("x-A")));
  CHECK(!header_name_is_lower(S("Z")));
  CHECK(header_name_is_lower("abcD", 3));
}

static void test_values(void) {
  CHECK(header_value_is_valid(S("text/html; charset=utf-8")));
  CHECK(header_value_is_valid(S("")));
  CHECK(header_value_is_valid(S("a b\tc")));
  CHECK(header_value_is_valid(S("caf\xc3\xa9"))); /* obs-text is allowed */
  CHECK(!header_value_is_valid(S("a\rb")));
  CHECK(!header_value_is_valid(S("a\nb")));
  CHECK(!header_value_is_valid(S("a\r\nSet-Cookie: x")));
  CHECK(!header_value_is_valid("a\0b", 3));
  CHECK(!header_value_is_valid(S(" lead")));
  CHECK(!header_value_is_valid(S("\tlead")));
  CHECK(!header_value_is_valid(S("trail ")));
  CHECK(!header_value_is_valid(S("trail\t")));
  CHECK(!header_value_is_valid(S(" ")));
  CHECK(header_value_is_valid("ok\n", 2)); /* only len bytes */
}

static void test_case_equal(void) {
  char buf[] = "Content-TYPE 123 \xc3\x89";
  CHECK(ascii_case_equal(S("Content-Type"), S("content-type")));
  CHECK(ascii_case_equal(S(""), S("")));
  CHECK(!ascii_case_equal(S("content-type"), S("content-typ")));
  CHECK(!ascii_case_equal(S("a"), S("b")));
  CHECK(!ascii_case_equal(S("["), S("{"))); /* differ by 0x20, not letters */
  CHECK(!ascii_case_equal(S("@"), S("`")));
  CHECK(!ascii_case_equal(S("\xc3\x89"), S("\xc3\xa9"))); /* not ASCII */
  ascii_lower(buf, strlen(buf));
  CHECK_STR(buf, "content-type 123 \xc3\x89");
}

static void test_mime(void) {
  const char *utf8 = "; charset=utf-8";
  CHECK_STR(mime_type_for_path("/index.html"), "text/html; charset=utf-8");
  CHECK_STR(mime_type_for_path("a.HTM"), "text/html; charset=utf-8");
  CHECK_STR(mime_type_for_path("/a/b.c/style.CsS"), "text/css; charset=utf-8");
  CHECK_STR(mime_type_for_path("app.js"), "text/javascript; charset=utf-8");
  CHECK_STR(mime_type_for_path("app.mjs"), "text/javascript; charset=utf-8");
  CHECK_STR(mime_type_for_path("x.json"), "application/json");
  CHECK_STR(mime_type_for_path("x.txt"), "text/plain; charset=utf-8");
  CHECK_STR(mime_type_for_path("x.svg"), "image/svg+xml");
  CHECK_STR(mime_type_for_path("x.png"), "image/png");
  CHECK_STR(mime_type_for_path("x.JPG"), "image/jpeg");
  CHECK_STR(mime_type_for_path("x.jpeg"), "image/jpeg");
  CHECK_STR(mime_type_for_path("x.wasm"), "application/wasm");
  CHECK_STR(mime_type_for_path("x.woff2"), "font/woff2");
  CHECK_STR(mime_type_for_path("x.tar.gz"), "application/gzip");
  CHECK_STR(mime_type_for_path("x.md"), "text/markdown; charset=utf-8");
  CHECK_STR(mime_type_for_path("x.csv"), "text/csv; charset=utf-8");
  CHECK_STR(mime_type_for_path("x.unknownext"), "application/octet-stream");
  CHECK_STR(mime_type_for_path("x.bin"), "application/octet-stream");
  CHECK_STR(mime_type_for_path("Makefile"), "application/octet-stream");
  CHECK_STR(mime_type_for_path("x."), "application/octet-stream");
  CHECK_STR(mime_type_for_path("/dir.html/file"), "application/octet-stream");
  CHECK_STR(mime_type_for_path("/.html"), "application/octet-stream");
  CHECK_STR(mime_type_for_path(""), "application/octet-stream");
  CHECK_STR(mime_type_for_path(NULL), "application/octet-stream");
  /* Every listed extension resolves (fails if the table is not sorted), and
   * text types, only they, carry a charset. */
  static const char *const exts[] = {
      "html", "htm",  "css",   "js",  "mjs",  "json", "txt",  "xml", "svg",
      "png",  "jpg",  "jpeg",  "gif", "webp", "ico",  "wasm", "pdf", "mp4",
      "webm", "woff", "woff2", "ttf", "otf",  "gz",   "zip",  "tar", "csv",
      "md",   "map",  "avif",  "mp3", "ogg",  "wav"};
  for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++) {
    char path[32] = "/f.";
    strcat(path, exts[i]);
    const char *t = mime_type_for_path(path);
    CHECK(strcmp(t, "application/octet-stream") != 0);
    CHECK((strncmp(t, "text/", 5) == 0) == (strstr(t, utf8) != NULL));
  }
}

int main(void) {
  test_token();
  test_lower();
  test_values();
  test_case_equal();
  test_mime();
  return check_report("test_headers");
}
