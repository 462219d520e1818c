#ifndef C_SYSTEMD_SHIM_H
#define C_SYSTEMD_SHIM_H
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>

/* The peer of a connected Unix socket (SO_PEERCRED). glibc declares `struct ucred` only under _GNU_SOURCE, and
   defining that here would give this module other definitions of shared types (fd_set) than Swift's Glibc
   module has; the kernel's layout is spelled out instead. */
#ifndef SO_PEERCRED
#define SO_PEERCRED 17
#endif

/// The layout of Linux's `struct ucred` (SO_PEERCRED), which glibc declares only under _GNU_SOURCE.
struct at_peer_cred {
    pid_t pid;
    uid_t uid;
    gid_t gid;
};

/// SO_PEERCRED for Swift (the control socket reads it through NIO's socket option provider).
static const int at_so_peercred = SO_PEERCRED;

#endif
