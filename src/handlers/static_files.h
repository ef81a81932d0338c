/* Serving files from a directory, built on the public response API only.
 * The public entry points are in h3q.h: h3q_static_new, h3q_static_free
 * and h3q_static_handler (h3q_server_serve_dir installs the handler as the
 * server's fallback). This header documents their behaviour; the HTTP
 * parsing they rely on is in http/conditional.h (dates, entity-tags,
 * preconditions), http/http_range.h (Range) and http/dir_listing.h.
 *
 * h3q_static_new(root, opts, &err): opens root (O_CLOEXEC) and keeps the
 * descriptor until h3q_static_free, so renaming the directory later does
 * not matter. opts NULL means {list_directories = false, index_file =
 * "index.html"}; index_file NULL means no index file. Errors: H3Q_EINVAL
 * (root NULL, missing or not a directory; index_file empty, ".", "..",
 * longer than NAME_MAX or containing '/', '\' or a control character),
 * H3Q_ENOMEM. *err is 0 on success.
 *
 * h3q_static_handler(req, res, st) serves, for GET and HEAD, the path "/"
 * followed by the route's wildcard parameter (h3q_request_param(req, "*"))
 * when the route has one, else h3q_request_path(req). Paths are raw (still
 * percent-encoded, no query).
 *
 * Files: 200 with content-type (by extension), content-length,
 * accept-ranges: bytes, etag and last-modified; HEAD gets the same headers
 * and no body. The etag is strong: "INODE-SIZE-MTIMENS" in lower-case hex,
 * quoted, so any write that changes size or mtime changes it.
 *
 * Preconditions (RFC 9110 section 13.2.2, in that order): If-Match (strong
 * comparison, "*" matches) failing gives 412; else If-Unmodified-Since
 * older than the file gives 412; If-None-Match (weak comparison, "*"
 * matches) matching gives 304; else If-Modified-Since not older than the
 * file gives 304. Dates that are not valid HTTP-dates (any of the three
 * formats) are ignored; a malformed entity-tag list matches nothing. A 304
 * carries etag and last-modified, no body and no content-length.
 *
 * Ranges (GET only: RFC 9110 section 14.2 makes the server ignore Range on
 * HEAD): "bytes=a-b", "bytes=a-" and "bytes=-n" with one satisfiable range
 * give 206 with content-range "bytes a-b/LEN" and the part's
 * content-length. When none of the ranges is satisfiable: 416 with
 * content-range "bytes STAR/LEN" (STAR a literal asterisk, as in RFC 9110
 * section 14.4). A syntactically invalid Range
 * or another unit is ignored (200, whole file); so is any Range on an
 * empty file that only suffix ranges could satisfy. SEVERAL RANGES: when
 * more than one range is satisfiable the whole file is sent with 200 (no
 * multipart/byteranges); unsatisfiable ranges next to a single
 * satisfiable one are dropped (206 for that one). If-Range: a strong etag
 * equal to the current one, or an HTTP-date equal to last-modified,
 * honours Range; anything else (weak etag, other date, garbage) gives 200
 * with the whole file. A date If-Range trusts last-modified's one-second
 * resolution; clients that need certainty use the etag.
 *
 * Directories: "/dir" and "/dir/" serve dir/INDEX (the index file, a
 * regular file) with no redirect. Without one, 404, or when
 * list_directories is set: "/dir" answers 301 to "/dir/" (query kept) and
 * "/dir/" gets a text/html listing (HEAD: headers only) of the regular
 * files and directories in it, sorted by name, with a "../" link below the
 * root. Names are HTML-escaped and percent-encoded in links; symlinks,
 * other file types, "." and "..", and names with a control character or a
 * backslash are left out. At most the first 10000 directory entries are
 * read and the page is at most 4 MiB; a truncated listing says so.
 *
 * Errors:
 * - 400 for a malformed percent sequence anywhere in the path.
 * - 404 for: a missing entry; a "." or ".." segment (also encoded); an
 *   encoded NUL, '/' or '\' (%00, %2F, %5C) and a raw '\'; a component
 *   longer than NAME_MAX; anything but a directory or regular file (FIFOs,
 *   devices, sockets); a trailing '/' or more segments after a file; a
 *   directory without a regular index file (and listings off); permission
 *   errors (404 rather than 403, so responses do not reveal what exists).
 * - 405 with "allow: GET, HEAD" for any other method.
 * - 503 when descriptors run out, 500 for I/O errors before the headers;
 *   a read error or a file shrinking after the headers resets the stream
 *   with H3_INTERNAL_ERROR.
 *
 * Symlink policy: symbolic links below the root are never followed, even
 * ones pointing inside it (each component is opened with openat and
 * O_NOFOLLOW from the root's descriptor), so they get 404. The root itself
 * may be a symlink: it is resolved once, by h3q_static_new. Empty segments
 * ("//") are ignored. Dotfiles are served like any file.
 *
 * Cache (handlers/file_cache.h): the descriptors and metadata (size,
 * times, etag, last-modified, content type) of up to 128 files served
 * recently, keyed by request path. Each request re-checks its entry with
 * one fstatat of the decoded path below the root; unless that names the
 * same inode with the same size, mtime and ctime, the entry is dropped and
 * the path is walked again as above. So a rewritten, renamed-over,
 * deleted or chmod-ed file is never served from the cache, and the body
 * is always read from the file itself. (The re-check would follow a
 * symlink put in place of a directory on the way, but a hit still needs
 * the very inode the safe walk opened, so nothing new becomes reachable.)
 * A hit costs fstatat + pread for a small file instead of fstatat,
 * openat, fstat, pread and close.
 *
 * Memory: parts up to 16 KiB are read into one buffer the handler owns and
 * sent at once with h3q_response_send. Larger ones hold one chunk buffer
 * (64 KiB, or the part's size if smaller) and one descriptor (a duplicate
 * of the cached one) per GET in flight, released in the response's close
 * callback; HEAD, 304, 412, 416 and empty parts hold nothing after the
 * handler returns. The cache holds at most 128 descriptors per
 * thread that serves (each worker has a lane: cache and small-part buffer,
 * locked for the handler call; more than 16 threads share lanes). A listing is
 * built in one buffer (at most 4 MiB) and handed to h3q_response_send. Reads
 * use pread() on the loop thread (fine for page-cache-hot files; a slow disk
 * stalls the loop). */
#ifndef H3Q_HANDLERS_STATIC_FILES_H
#define H3Q_HANDLERS_STATIC_FILES_H

#include "h3q.h"

#endif
