/* Local message sockets between server processes (and threads) of one
 * host: Linux abstract-namespace unix sockets of type SOCK_SEQPACKET.
 * An abstract name needs no file and disappears with its socket, so a
 * crashed process leaves nothing behind; names are per network namespace.
 * Connected sockets are used rather than datagrams to one bound name
 * because the kernel queues at most net.unix.max_dgram_qlen (often 10)
 * datagrams for an unconnected sender, while a connection is bounded by
 * its socket buffer. Every call is non-blocking. Linux only; elsewhere
 * every call fails with ENOSYS. */
#ifndef H3Q_IO_LOCAL_SOCK_H
#define H3Q_IO_LOCAL_SOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Longest name (without the leading NUL of the abstract namespace). */
#define LOCAL_SOCK_NAME_MAX 100

/* Binds and listens on name. Returns the fd, or -1 with errno
 * (EADDRINUSE: someone holds the name). */
int local_sock_listen(const char *name);

/* Connects to name. Returns the fd, or -1 with errno (ECONNREFUSED: no
 * one holds the name; EAGAIN: its backlog is full). */
int local_sock_connect(const char *name);

/* Accepts one connection from listening fd lfd. Returns the fd, or -1
 * with errno (EAGAIN when none waits). The peer's user id goes to *uid. */
int local_sock_accept(int lfd, uid_t *uid);

/* The user id of fd's peer, or false. */
bool local_sock_peer_uid(int fd, uid_t *uid);

/* Sends one message made of head and body (body may be NULL, body_len
 * 0), with fd_to_pass attached (SCM_RIGHTS) unless it is negative.
 * Returns 0, or -1 with errno (EAGAIN: the peer's queue is full; EPIPE,
 * ECONNRESET: the peer is gone). */
int local_sock_send(int fd, const void *head, size_t head_len, const void *body,
                    size_t body_len, int fd_to_pass);

/* Receives one message into head (head_len bytes) and body (body_cap
 * bytes). Returns the bytes received (head and body together; 0 at end
 * of stream), or -1 with errno (EAGAIN: nothing waits; EMSGSIZE: the
 * message did not fit and was dropped). A passed file descriptor is
 * stored in *fd_passed (-1 when there was none); pass NULL to close any. */
ssize_t local_sock_recv(int fd, void *head, size_t head_len, void *body,
                        size_t body_cap, int *fd_passed);

/* A set of sockets behind one descriptor (an epoll instance), so that an
 * event loop with a bounded number of watchers watches one fd for any
 * number of them: the set's fd is readable while one of them is. */
int local_set_new(void);
/* Adds fd (readability) with tag; returns 0 or -1. */
int local_set_add(int set, int fd, uint64_t tag);
void local_set_del(int set, int fd);
/* Stores up to max tags of readable sockets without waiting; returns how
 * many, or -1 with errno. */
int local_set_ready(int set, uint64_t *tags, int max);

/* Binds a datagram socket to name as a marker others can test for with
 * local_sock_exists. Returns the fd or -1 with errno. */
int local_sock_mark(const char *name);

/* Whether a marker made with local_sock_mark holds name. */
bool local_sock_exists(const char *name);

#endif
