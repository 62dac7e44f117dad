/* src/proxy/listener.c: a pool's listening sockets and their accept loops.
 *
 *   a worker's own socket (one worker, or TCP with SO_REUSEPORT: the kernel spreads
 *   connections over the workers' sockets)
 *       accept -> client_accept on that worker
 *
 *   a shared socket (a unix socket, or TCP without SO_REUSEPORT), watched by the main
 *   thread only, so no worker is woken for nothing:
 *       accept -> mailbox of the next worker in turn -> client_accept on that worker
 */
#include "proxy/proxy.h"

#include "core/common.h"
#include "core/log.h"
#include "core/net.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Accepts per wakeup, so a connection storm cannot starve established clients. */
#define ACCEPTS_PER_WAKEUP 64

/* Accept what is pending on lfd (bounded) and hand each descriptor to take(arg, fd).
 * Out of descriptors, one pending connection is shed with the spare descriptor rather
 * than left to wake the loop again at once. */
static void
accept_some(int lfd, const struct pool *p, int *spare_fd, void (*take)(void *, int), void *arg)
{
    for (int i = 0; i < ACCEPTS_PER_WAKEUP; i++) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EMFILE || errno == ENFILE) {
                log_error("pool %s: accept: %s; refusing a connection", p->cf->name,
                          strerror(errno));
                if (*spare_fd >= 0) {
                    close(*spare_fd);
                    int shed = accept(lfd, NULL, NULL);
                    if (shed >= 0)
                        close(shed);
                    *spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
                }
            }
            return;
        }
        take(arg, fd);
    }
}

static void
take_here(void *arg, int fd)
{
    client_accept(arg, fd);
}

static void
on_accept(int lfd, short what, void *arg)
{
    struct wpool *wp = arg;

    (void)what;
    accept_some(lfd, wp->pool, &wp->w->spare_fd, take_here, wp);
}

/* Deal fd to the next worker whose mailbox takes it. */
static void
deal(void *arg, int fd)
{
    struct shared_listener *sl = arg;
    struct proxy *px = sl->px;
    struct mail m = { MAIL_CLIENT, fd, sl->snap->pools[sl->pidx].state->id };

    for (uint32_t tries = 0; tries < px->nworkers; tries++) {
        struct worker *w = &px->workers[sl->next++ % px->nworkers];
        if (mailbox_post(&w->mb, &m) == 0)
            return;
    }
    log_error("pool %s: every worker's mailbox is full; refusing a connection",
              sl->snap->pools[sl->pidx].cf->name);
    close(fd);
}

static void
on_shared_accept(int lfd, short what, void *arg)
{
    struct shared_listener *sl = arg;

    (void)what;
    accept_some(lfd, &sl->snap->pools[sl->pidx], &sl->spare_fd, deal, sl);
}

/* The listening socket for p; shared_port sets SO_REUSEPORT (TCP) whatever the config. */
static int
listen_on(const struct pool *p, bool shared_port, char *err, size_t errlen)
{
    const struct conf_listen *l = &p->cf->listen;
    int fd;

    if (l->path != NULL)
        fd = net_listen_unix(l->path, l->mode, p->cf->backlog);
    else
        fd = net_listen_tcp(l->host, l->port, p->cf->backlog, p->cf->reuseport || shared_port);
    if (fd < 0)
        snprintf(err, errlen, "pool '%s': cannot listen on '%s': %s", p->cf->name, l->text,
                 strerror(-fd));
    return fd;
}

int
listener_socket(const struct pool *p, bool shared_port, char *err, size_t errlen)
{
    return listen_on(p, shared_port, err, errlen);
}

int
listener_attach(struct wpool *wp, int fd)
{
    struct event *ev = event_new(wp->w->base, fd, EV_READ | EV_PERSIST, on_accept, wp);

    wp->lfd = fd;
    if (ev == NULL || event_add(ev, NULL) != 0) {
        if (ev != NULL)
            event_free(ev);
        return KM_ERROR;
    }
    wp->lev = ev;
    return KM_OK;
}

int
listener_detach(struct wpool *wp)
{
    int fd = wp->lfd;

    if (wp->lev != NULL)
        event_free(wp->lev);
    wp->lev = NULL;
    wp->lfd = -1;
    return fd;
}

int
listener_open(struct wpool *wp, bool shared_port, char *err, size_t errlen)
{
    struct pool *p = wp->pool;
    int fd = listen_on(p, shared_port, err, errlen);

    if (fd < 0)
        return KM_ERROR;
    if (listener_attach(wp, fd) != KM_OK) {
        snprintf(err, errlen, "pool '%s': cannot watch the listener", p->cf->name);
        return KM_ERROR;
    }
    return KM_OK;
}

/* Close a listening socket; a unix socket's file goes with it. */
static void
unlisten(const struct pool *p, int fd)
{
    close(fd);
    if (p->cf->listen.path != NULL)
        unlink(p->cf->listen.path);
}

void
listener_close(struct wpool *wp)
{
    if (wp->lev != NULL)
        event_free(wp->lev);
    wp->lev = NULL;
    if (wp->lfd >= 0)
        unlisten(wp->pool, wp->lfd);
    wp->lfd = -1;
}

int
listener_attach_shared(struct shared_listener *sl, int fd)
{
    sl->fd = fd;
    if (sl->spare_fd < 0)
        sl->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    sl->ev = event_new(sl->px->base, fd, EV_READ | EV_PERSIST, on_shared_accept, sl);
    if (sl->ev == NULL || event_add(sl->ev, NULL) != 0)
        return KM_ERROR;
    return KM_OK;
}

int
listener_open_shared(struct shared_listener *sl, char *err, size_t errlen)
{
    struct pool *p = &sl->snap->pools[sl->pidx];
    int fd = listen_on(p, false, err, errlen);

    if (fd < 0)
        return KM_ERROR;
    if (listener_attach_shared(sl, fd) != KM_OK) {
        snprintf(err, errlen, "pool '%s': cannot watch the listener", p->cf->name);
        return KM_ERROR;
    }
    return KM_OK;
}

int
listener_move_shared(struct shared_listener *from, struct shared_listener *to)
{
    int fd = from->fd;

    if (from->ev != NULL)
        event_free(from->ev);
    from->ev = NULL;
    from->fd = -1;
    to->spare_fd = from->spare_fd;
    from->spare_fd = -1;
    return listener_attach_shared(to, fd);
}

void
listener_close_shared(struct shared_listener *sl)
{
    if (sl->ev != NULL)
        event_free(sl->ev);
    sl->ev = NULL;
    if (sl->fd >= 0)
        unlisten(&sl->snap->pools[sl->pidx], sl->fd);
    sl->fd = -1;
    if (sl->spare_fd >= 0)
        close(sl->spare_fd);
    sl->spare_fd = -1;
}
