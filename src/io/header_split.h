/* The header split: a second UDP socket in the port's SO_REUSEPORT group
 * that receives only QUIC long-header packets (first byte & 0x80:
 * Initial, 0-RTT, Handshake, Retry), chosen by the eBPF program of
 * io/reuseport_bpf.h. The first socket then holds only short-header
 * (1-RTT) packets: an Initial flood fills the second socket's small queue,
 * where the kernel drops its excess, instead of the queue that established
 * connections' packets wait in. io level: opening the socket; what reads
 * which socket when is quic/rx_split.h. */
#ifndef H3Q_IO_HEADER_SPLIT_H
#define H3Q_IO_HEADER_SPLIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The second socket's receive buffer (asked; Linux grants twice that with
 * its bookkeeping): about a thousand Initials, a millisecond or two of
 * work. What a flood sends beyond is dropped by the kernel at no cost to
 * the server; a longer queue would only make new clients wait longer. */
#define HEADER_SPLIT_RCVBUF (1024u * 1024u)

/* Whether the environment turned the split off (H3Q_HEADER_SPLIT=0), as
 * if the kernel had refused it: for tests of the one-socket fallback. */
bool header_split_disabled_by_env(void);

/* Opens the second socket on addr:port (bound like udp_open, SO_REUSEPORT)
 * with a receive buffer of rcvbuf bytes (0: the default). Returns the fd,
 * or -1 with a message in err. */
int header_split_open(const char *addr, uint16_t port, size_t rcvbuf, char *err,
                      size_t errlen);

#endif
