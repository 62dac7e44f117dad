/* src/proxy/listener.c: a pool's listening socket and the accept loop. */
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

static void
on_accept(int lfd, short what, void *arg)
{
    struct wpool *wp = arg;
    struct worker *w = wp->w;
    struct pool *p = wp->pool;

    (void)what;
    for (int i = 0; i < ACCEPTS_PER_WAKEUP; i++) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EMFILE || errno == ENFILE) {
                /* out of descriptors: shed this connection rather than spin on it */
                log_error("pool %s: accept: %s; refusing a connection", p->cf->name,
                          strerror(errno));
                if (w->spare_fd >= 0) {
                    close(w->spare_fd);
                    int shed = accept(lfd, NULL, NULL);
                    if (shed >= 0)
                        close(shed);
                    w->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
                }
            }
            return;
        }
        client_accept(wp, fd);
    }
}

int
listener_open(struct wpool *wp, char *err, size_t errlen)
{
    struct pool *p = wp->pool;
    const struct conf_listen *l = &p->cf->listen;
    int fd;

    if (l->path != NULL)
        fd = net_listen_unix(l->path, l->mode, p->cf->backlog);
    else
        fd = net_listen_tcp(l->host, l->port, p->cf->backlog, p->cf->reuseport);
    if (fd < 0) {
        snprintf(err, errlen, "pool '%s': cannot listen on '%s': %s", p->cf->name, l->text,
                 strerror(-fd));
        return KM_ERROR;
    }
    wp->lfd = fd;
    struct event *ev = event_new(wp->w->base, fd, EV_READ | EV_PERSIST, on_accept, wp);
    if (ev == NULL || event_add(ev, NULL) != 0) {
        snprintf(err, errlen, "pool '%s': cannot watch the listener", p->cf->name);
        if (ev != NULL)
            event_free(ev);
        return KM_ERROR;
    }
    wp->lev = ev;
    log_notice("pool %s: listening on %s (%s)", p->cf->name, l->text, p->proto->name);
    return KM_OK;
}

void
listener_close(struct wpool *wp)
{
    if (wp->lev != NULL)
        event_free(wp->lev);
    wp->lev = NULL;
    if (wp->lfd >= 0) {
        close(wp->lfd);
        if (wp->pool->cf->listen.path != NULL)
            unlink(wp->pool->cf->listen.path);
    }
    wp->lfd = -1;
}
