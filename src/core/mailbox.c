/* src/core/mailbox.c: the pipe behind a thread's inbox. */
#include "core/mailbox.h"

#include "core/common.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <unistd.h>

_Static_assert(sizeof(struct mail) < PIPE_BUF, "a record must be written in one piece");

static int
set_flags(int fd)
{
    int fl = fcntl(fd, F_GETFL, 0);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
        return -errno;
    return 0;
}

int
mailbox_open(struct mailbox *mb)
{
    int fds[2];

    mb->rfd = mb->wfd = -1;
    if (pipe(fds) != 0)
        return -errno;
    int rc = set_flags(fds[0]);
    if (rc == 0)
        rc = set_flags(fds[1]);
    if (rc != 0) {
        close(fds[0]);
        close(fds[1]);
        return rc;
    }
    mb->rfd = fds[0];
    mb->wfd = fds[1];
    return 0;
}

void
mailbox_close(struct mailbox *mb)
{
    if (mb->rfd >= 0)
        close(mb->rfd);
    if (mb->wfd >= 0)
        close(mb->wfd);
    mb->rfd = mb->wfd = -1;
}

int
mailbox_post(struct mailbox *mb, const struct mail *m)
{
    for (;;) {
        ssize_t n = write(mb->wfd, m, sizeof(*m));
        if (n == (ssize_t)sizeof(*m))
            return 0;
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return -EAGAIN;
        return n < 0 ? -errno : -EIO;
    }
}

int
mailbox_take(struct mailbox *mb, struct mail *m)
{
    for (;;) {
        ssize_t n = read(mb->rfd, m, sizeof(*m));
        if (n == (ssize_t)sizeof(*m))
            return 1;
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        /* records are written whole: a short read means the pipe is broken */
        return n < 0 ? -errno : -EIO;
    }
}
