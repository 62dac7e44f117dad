/* src/core/net.h: socket helpers; each returns a descriptor or 0, and -errno on failure. */
#ifndef KM_NET_H
#define KM_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/* A listening socket on host:port (host may be a name, an IPv4 or an IPv6 literal);
 * reuseport sets SO_REUSEPORT before the bind, so that other sockets with it may listen
 * on the same address (-ENOPROTOOPT where the system has no such option). */
int net_listen_tcp(const char *host, int port, int backlog, bool reuseport);
/* A listening unix socket at path (an old socket file there is replaced); mode < 0 keeps
 * the umask's permissions. */
int net_listen_unix(const char *path, int mode, int backlog);
/* Start a non-blocking connect; the descriptor is returned while the connect is under way. */
int net_connect(const struct sockaddr *sa, socklen_t len, bool keepalive);
int net_nonblock(int fd);
void net_nodelay(int fd);
/* The peer of a connected socket as text ("127.0.0.1:5000", "[::1]:5000", "unix"), for
 * log lines; "?" when it cannot be told. Returns buf. */
const char *net_peer_name(int fd, char *buf, size_t len);
/* The pending error of a non-blocking connect: 0 or an errno value. */
int net_socket_error(int fd);

#endif
