/* Serving files from a directory, built on the public response API only.
 * Full files for GET and HEAD (Range and conditionals come later). */
#ifndef H3Q_HTTP_STATIC_FILES_H
#define H3Q_HTTP_STATIC_FILES_H

#include "h3q.h"

typedef struct static_root static_root;

/* Opens dir as a root and keeps a descriptor to it (O_CLOEXEC) until
 * static_root_free, so renaming the directory later does not matter.
 * Returns NULL with *err (if err is not NULL) set to H3Q_EINVAL (NULL,
 * missing or not a directory) or H3Q_ENOMEM; *err is 0 on
 * success. */
static_root *static_root_new(const char *dir, int *err);
void static_root_free(static_root *root); /* accepts NULL */

/* An h3q_handler; user is a static_root. Serves h3q_request_path(req),
 * which must be the raw path as received (still percent-encoded, no query):
 * - 200 with content-type (by extension), content-length and last-modified;
 *   HEAD gets the same headers and no body.
 * - 400 for a malformed percent sequence anywhere in the path.
 * - 404 for: a missing entry; a "." or ".." segment (also encoded); an
 *   encoded NUL, '/' or '\' (%00, %2F, %5C) and a raw '\'; a component
 *   longer than NAME_MAX; anything but a directory or regular file (FIFOs,
 *   devices, sockets); a trailing '/' or more segments after a file; a
 *   directory without a regular index.html; permission errors (404 rather
 *   than 403, so responses do not reveal what exists).
 * - 503 when descriptors run out, 500 for I/O errors before the headers;
 *   a read error or a file shrinking after the headers resets the stream
 *   with H3_INTERNAL_ERROR.
 * - 405 with "allow: GET, HEAD" for any other method.
 * Symlink policy: symbolic links below the root are never followed, even
 * ones pointing inside it (each component is opened with openat and
 * O_NOFOLLOW from the root's descriptor), so they get 404. The root itself
 * may be a symlink: it is resolved once, by static_root_new. Empty
 * segments ("//") are ignored; "/dir" and "/dir/" both serve
 * dir/index.html (no redirect). Dotfiles are served like any file.
 * Memory: one chunk buffer (64 KiB, or the file size if smaller) and one
 * descriptor per GET in flight, released in the response's close
 * callback; HEAD and empty files hold nothing after the handler returns.
 * Reads use pread() on the loop thread (fine for page-cache-hot files; a
 * slow disk stalls the loop). */
int static_files_handler(h3q_request *req, h3q_response *res, void *user);

#endif
