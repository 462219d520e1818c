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

struct at_peer_cred {
    pid_t pid;
    uid_t uid;
    gid_t gid;
};

static inline int at_peer_credentials(int fd, pid_t *pid, uid_t *uid, gid_t *gid) {
    struct at_peer_cred cred;
    socklen_t len = sizeof(cred);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return -1;
    *pid = cred.pid;
    *uid = cred.uid;
    *gid = cred.gid;
    return 0;
}

#endif
