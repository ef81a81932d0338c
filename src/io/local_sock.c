#include "io/local_sock.h"
#include "io/fd.h"

#include <errno.h>
#include <string.h>

#ifdef __linux__
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* Pending connections per listening socket: one per peer endpoint
 * (8 generations x 32 workers) fits. */
#define LOCAL_SOCK_BACKLOG 256

/* The abstract address of name: a NUL, then the name (no terminator). */
static socklen_t abstract_addr(const char *name, struct sockaddr_un *a) {
  size_t len = strnlen(name, LOCAL_SOCK_NAME_MAX);
  memset(a, 0, sizeof *a);
  a->sun_family = AF_UNIX;
  memcpy(a->sun_path + 1, name, len);
  return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + len);
}

static int open_bound(const char *name, int type) {
  struct sockaddr_un a;
  socklen_t len = abstract_addr(name, &a);
  int fd = socket(AF_UNIX, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -1;
  if (bind(fd, (struct sockaddr *)&a, len) != 0)
    return fd_close_failed(fd);
  return fd;
}

int local_sock_listen(const char *name) {
  int fd = open_bound(name, SOCK_SEQPACKET);
  if (fd >= 0 && listen(fd, LOCAL_SOCK_BACKLOG) != 0)
    return fd_close_failed(fd);
  return fd;
}

static int connect_to(const char *name, int type) {
  struct sockaddr_un a;
  socklen_t len = abstract_addr(name, &a);
  int fd = socket(AF_UNIX, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -1;
  int rc;
  do
    rc = connect(fd, (struct sockaddr *)&a, len);
  while (rc != 0 && errno == EINTR);
  if (rc != 0)
    return fd_close_failed(fd);
  return fd;
}

int local_sock_connect(const char *name) {
  return connect_to(name, SOCK_SEQPACKET);
}

bool local_sock_peer_uid(int fd, uid_t *uid) {
  struct ucred cred;
  socklen_t len = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
    return false;
  *uid = cred.uid;
  return true;
}

int local_sock_accept(int lfd, uid_t *uid) {
  int fd;
  do
    fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
  while (fd < 0 && errno == EINTR);
  if (fd >= 0 && !local_sock_peer_uid(fd, uid)) {
    close(fd);
    errno = EPERM;
    return -1;
  }
  return fd;
}

int local_sock_send(int fd, const void *head, size_t head_len, const void *body,
                    size_t body_len, int fd_to_pass) {
  struct iovec iov[2] = {{(void *)head, head_len}, {(void *)body, body_len}};
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } ctrl;
  struct msghdr m;
  memset(&m, 0, sizeof m);
  m.msg_iov = iov;
  m.msg_iovlen = body_len ? 2 : 1;
  if (fd_to_pass >= 0) {
    memset(&ctrl, 0, sizeof ctrl);
    m.msg_control = ctrl.buf;
    m.msg_controllen = sizeof ctrl.buf;
    struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &fd_to_pass, sizeof(int));
  }
  ssize_t n;
  do
    n = sendmsg(fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  return n < 0 ? -1 : 0;
}

/* The descriptor passed with message m, if any (-1). */
static int passed_fd(struct msghdr *m) {
  int fd = -1;
  for (struct cmsghdr *cm = CMSG_FIRSTHDR(m); cm; cm = CMSG_NXTHDR(m, cm))
    if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS &&
        cm->cmsg_len >= CMSG_LEN(sizeof(int)) && fd < 0)
      memcpy(&fd, CMSG_DATA(cm), sizeof fd);
  return fd;
}

ssize_t local_sock_recv(int fd, void *head, size_t head_len, void *body,
                        size_t body_cap, int *fd_passed) {
  struct iovec iov[2] = {{head, head_len}, {body, body_cap}};
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } ctrl;
  struct msghdr m;
  memset(&m, 0, sizeof m);
  m.msg_iov = iov;
  m.msg_iovlen = body_cap ? 2 : 1;
  m.msg_control = ctrl.buf;
  m.msg_controllen = sizeof ctrl.buf;
  ssize_t n;
  do
    n = recvmsg(fd, &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  int got = n >= 0 ? passed_fd(&m) : -1;
  if (fd_passed)
    *fd_passed = got;
  else if (got >= 0)
    close(got);
  if (n >= 0 && (m.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
    if (fd_passed && got >= 0)
      close(got);
    if (fd_passed)
      *fd_passed = -1;
    errno = EMSGSIZE;
    return -1;
  }
  return n;
}

int local_sock_mark(const char *name) {
  return open_bound(name, SOCK_DGRAM);
}

bool local_sock_exists(const char *name) {
  int fd = connect_to(name, SOCK_DGRAM);
  if (fd < 0)
    return false;
  close(fd);
  return true;
}

int local_set_new(void) {
  return epoll_create1(EPOLL_CLOEXEC);
}

int local_set_add(int set, int fd, uint64_t tag) {
  struct epoll_event ev = {.events = EPOLLIN, .data.u64 = tag};
  return epoll_ctl(set, EPOLL_CTL_ADD, fd, &ev);
}

void local_set_del(int set, int fd) {
  epoll_ctl(set, EPOLL_CTL_DEL, fd, NULL);
}

int local_set_ready(int set, uint64_t *tags, int max) {
  struct epoll_event ev[64];
  if (max > 64)
    max = 64;
  int n;
  do
    n = epoll_wait(set, ev, max, 0);
  while (n < 0 && errno == EINTR);
  for (int i = 0; i < n; i++)
    tags[i] = ev[i].data.u64;
  return n;
}

#else /* !__linux__: abstract unix sockets and epoll are Linux's */

static int unsupported(void) {
  errno = ENOSYS;
  return -1;
}

int local_sock_listen(const char *name) {
  return unsupported();
}

int local_sock_connect(const char *name) {
  return unsupported();
}

int local_sock_accept(int lfd, uid_t *uid) {
  return unsupported();
}

bool local_sock_peer_uid(int fd, uid_t *uid) {
  return false;
}

int local_sock_send(int fd, const void *head, size_t head_len, const void *body,
                    size_t body_len, int fd_to_pass) {
  return unsupported();
}

ssize_t local_sock_recv(int fd, void *head, size_t head_len, void *body,
                        size_t body_cap, int *fd_passed) {
  return unsupported();
}

int local_sock_mark(const char *name) {
  return unsupported();
}

bool local_sock_exists(const char *name) {
  return false;
}

int local_set_new(void) {
  return unsupported();
}

int local_set_add(int set, int fd, uint64_t tag) {
  return unsupported();
}

void local_set_del(int set, int fd) {}

int local_set_ready(int set, uint64_t *tags, int max) {
  return unsupported();
}

#endif
