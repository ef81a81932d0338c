/* Steering of a SO_REUSEPORT group by connection ID: a BPF program
 * (BPF_PROG_TYPE_SK_REUSEPORT), loaded with the raw bpf(2) system call
 * from instructions assembled here (no libbpf, no BPF compiler), reads one
 * byte of the QUIC packet's destination connection ID and picks the socket
 * stored at that index of a BPF_MAP_TYPE_REUSEPORT_SOCKARRAY map. A packet
 * it cannot parse, or whose index holds no socket, is left to the kernel's
 * 4-tuple hash. Linux only; elsewhere every call fails with ENOSYS. */
#ifndef H3Q_IO_REUSEPORT_BPF_H
#define H3Q_IO_REUSEPORT_BPF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Map entries: one per value of the steering byte. */
#define REUSEPORT_BPF_SLOTS 256
/* With the header split (io/header_split.h), a server's second socket,
 * which takes long-header packets, sits at LONG_BASE + the steering byte
 * (a socket can sit at one index only). */
#define REUSEPORT_BPF_LONG_BASE REUSEPORT_BPF_SLOTS
#define REUSEPORT_BPF_MAP_ENTRIES (2 * REUSEPORT_BPF_SLOTS)
/* At most this many sockets share new clients' Initials by hash. */
#define REUSEPORT_BPF_SPLIT_WAYS_MAX 32
/* Upper bound of the program's length in instructions. */
#define REUSEPORT_BPF_MAX_INSNS 128

/* Creates the socket map (REUSEPORT_BPF_MAP_ENTRIES entries). Returns its fd,
 * or -1 with errno (EPERM without CAP_BPF, ENOSYS). */
int reuseport_bpf_map_create(void);

/* Loads the program: the steering byte is at cid_offset within the DCID
 * (short header: UDP payload offset 1 + cid_offset; long header: after
 * the version and the DCID length, if the DCID is longer than
 * cid_offset). A short header goes to the socket at the steering byte.
 * With split_ways 0 a long header does too. With split_ways > 0 (at most
 * REUSEPORT_BPF_SPLIT_WAYS_MAX) a long header goes to the first socket
 * found at LONG_BASE + byte, at byte, then (a DCID that names no one: a
 * new client's Initial) at LONG_BASE + (a generation from bits 16-18 of
 * the kernel's 4-tuple hash) * 32 + hash % split_ways, then at
 * split_first + hash % split_ways (split_first: the loading server's
 * worker 0). Returns the program fd, or -1 with errno; the verifier's
 * complaint, if any, goes to log (may be NULL). */
int reuseport_bpf_prog_load(int map_fd, size_t cid_offset, size_t split_ways,
                            uint32_t split_first, char *log, size_t log_len);

/* Puts UDP socket udp_fd (bound, SO_REUSEPORT) at index slot. Returns 0,
 * or -1 with errno. A socket sits in one map at most; closing it removes
 * it. */
int reuseport_bpf_map_set(int map_fd, uint32_t slot, int udp_fd);

/* Makes prog_fd the program of udp_fd's reuseport group (it replaces the
 * group's previous program, whoever attached it). Returns 0 or -1. */
int reuseport_bpf_attach(int udp_fd, int prog_fd);

/* Builds the program's instructions into out (REUSEPORT_BPF_MAX_INSNS
 * 8-byte instructions) and returns how many; exposed for tests. */
size_t reuseport_bpf_build(void *out, int map_fd, size_t cid_offset,
                           size_t split_ways, uint32_t split_first);

#endif
