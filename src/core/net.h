/* src/core/net.h: socket helpers; each returns a descriptor or 0, and -errno on failure. */
#ifndef KM_NET_H
#define KM_NET_H

#include <stdbool.h>
#include <sys/socket.h>

/* A listening socket on host:port (host may be a name, an IPv4 or an IPv6 literal). */
int net_listen_tcp(const char *host, int port, int backlog);
/* A listening unix socket at path (an old socket file there is replaced); mode < 0 keeps
 * the umask's permissions. */
int net_listen_unix(const char *path, int mode, int backlog);
/* Start a non-blocking connect; the descriptor is returned while the connect is under way. */
int net_connect(const struct sockaddr *sa, socklen_t len, bool keepalive);
int net_nonblock(int fd);
void net_nodelay(int fd);
/* The pending error of a non-blocking connect: 0 or an errno value. */
int net_socket_error(int fd);

#endif
