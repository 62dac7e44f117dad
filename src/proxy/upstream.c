/* src/proxy/upstream.c: server connections: connect on demand, batch queued requests into
 * writev, pair replies with the in-flight FIFO, and fail everything on a broken connection. */
#include "proxy/proxy.h"

#include "core/common.h"
#include "core/log.h"
#include "core/net.h"

#include <errno.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define UPSTREAM_IOV 512

static void upstream_fail(struct upstream *u, const char *reason);

static void
sq_push(struct upstream *u, struct msg *m)
{
    m->snext = NULL;
    if (u->sq_tail != NULL)
        u->sq_tail->snext = m;
    else
        u->sq_head = m;
    u->sq_tail = m;
}

static void
if_push(struct upstream *u, struct msg *m)
{
    m->snext = NULL;
    if (u->if_tail != NULL)
        u->if_tail->snext = m;
    else
        u->if_head = m;
    u->if_tail = m;
    u->ninflight++;
}

static int
on_reply(struct conn *c, struct msg *rsp)
{
    struct upstream *u = (struct upstream *)c;
    struct msg *req = u->if_head;
    struct server *s = u->srv;

    ASSERT(req != NULL);
    u->if_head = req->snext;
    if (u->if_head == NULL)
        u->if_tail = NULL;
    u->ninflight--;
    req->snext = NULL;

    s->st.responses++;
    s->st.response_bytes += rsp->raw.len;
    pool_server_ok(c->pool, s);

    /* a whole request's reply goes back as it came; a fragment's waits for the merge */
    if (req->parent == NULL && msg_out_borrow(rsp, rsp->raw.b, rsp->raw.off, rsp->raw.len) != KM_OK) {
        msg_put(&c->w->mc, rsp);
        forward_fail(c->w, c->pool, req, "out of memory");
        return KM_OK;
    }
    req->rsp = rsp;
    req->done = true;
    forward_complete(c->w, req);
    return KM_OK;
}

static int
on_bad_reply(struct conn *c, const char *reason, bool recoverable)
{
    struct upstream *u = (struct upstream *)c;
    (void)recoverable;
    log_warn("pool %s: server %s sent a bad reply: %s", c->pool->cf->name, u->srv->ident, reason);
    u->srv->st.server_err++;
    return KM_ERROR;
}

static void
on_event(int fd, short what, void *arg)
{
    struct upstream *u = arg;

    if (u->connecting && (what & EV_WRITE)) {
        int err = net_socket_error(fd);
        if (err != 0) {
            u->srv->st.server_err++;
            upstream_fail(u, strerror(err));
            return;
        }
        u->connecting = false;
        log_info("pool %s: connected to server %s", u->c.pool->cf->name, u->srv->ident);
    }
    if (what & EV_READ) {
        int rc = conn_read(&u->c, false, on_reply, on_bad_reply);
        if (rc != KM_OK) {
            upstream_fail(u, "Connection reset by server");
            return;
        }
        if (u->c.eof) {
            u->srv->st.server_eof++;
            upstream_fail(u, "Connection closed by server");
            return;
        }
    }
    if (what & EV_WRITE)
        upstream_flush(u);
}

static struct upstream *
upstream_open(struct worker *w, struct server *s, uint32_t slot)
{
    struct pool *p = s->pool;
    struct upstream *u = calloc(1, sizeof(*u));
    int fd;

    if (u == NULL)
        return NULL;
    fd = net_connect((const struct sockaddr *)&s->addr, s->addrlen, p->cf->tcpkeepalive);
    if (fd < 0) {
        log_warn("pool %s: cannot connect to server %s: %s", p->cf->name, s->ident, strerror(-fd));
        free(u);
        errno = -fd;
        return NULL;
    }
    u->c.fd = fd;
    u->c.kind = CONN_SERVER;
    u->c.w = w;
    u->c.pool = p;
    u->c.fresh = true;
    u->srv = s;
    u->slot = slot;
    u->connecting = true;
    if (conn_events(&u->c, on_event) != KM_OK) {
        conn_close_fd(&u->c);
        free(u);
        errno = ENOMEM;
        return NULL;
    }
    conn_want_write(&u->c, true);
    s->conns[slot] = u;
    s->nconns++;
    w->curr_connections++;
    w->total_connections++;
    return u;
}

void
upstream_send(struct worker *w, struct server *s, struct msg *m)
{
    struct pool *p = s->pool;
    uint32_t max = p->cf->server_connections;
    uint32_t slot = s->next++ % max;
    struct upstream *u = s->conns[slot];

    if (u == NULL) {
        u = upstream_open(w, s, slot);
        if (u == NULL) {
            const char *why = strerror(errno);
            pool_server_failed(p, s, km_now_ms());
            forward_fail(w, p, m, why);
            return;
        }
    }
    m->server = (int32_t)s->idx;
    s->st.requests++;
    s->st.request_bytes += m->outlen;
    sq_push(u, m);
    worker_mark_dirty(w, &u->c);
}

int
upstream_flush(struct upstream *u)
{
    struct iovec iov[UPSTREAM_IOV];

    if (u->connecting)
        return KM_OK;
    while (u->sq_head != NULL) {
        int niov = 0;
        uint64_t skip = u->c.wpos;

        for (struct msg *m = u->sq_head; m != NULL && niov < UPSTREAM_IOV; m = m->snext) {
            for (uint32_t i = 0; i < m->nout && niov < UPSTREAM_IOV; i++) {
                if (skip >= m->out[i].len) {
                    skip -= m->out[i].len;
                    continue;
                }
                span_iov(&m->out[i], skip, iov, UPSTREAM_IOV, &niov);
                skip = 0;
            }
        }
        ssize_t wr = conn_writev(&u->c, iov, niov);
        if (wr < 0) {
            u->srv->st.server_err++;
            upstream_fail(u, strerror(errno));
            return KM_ERROR;
        }
        if (wr == 0)
            return KM_OK;   /* socket full: the write event resumes */

        uint64_t n = (uint64_t)wr;
        while (u->sq_head != NULL) {
            struct msg *m = u->sq_head;
            uint64_t left = m->outlen - u->c.wpos;
            if (n < left) {
                u->c.wpos += n;
                break;
            }
            n -= left;
            u->c.wpos = 0;
            u->sq_head = m->snext;
            if (u->sq_head == NULL)
                u->sq_tail = NULL;
            m->sent = true;
            msg_out_release(m);
            if (m->noreply) {
                m->done = true;
                forward_complete(u->c.w, m);
            } else {
                if_push(u, m);
            }
        }
    }
    conn_want_write(&u->c, false);
    return KM_OK;
}

/* Fail every request on the connection, close it, and count a failure of its server. */
static void
upstream_fail(struct upstream *u, const char *reason)
{
    struct worker *w = u->c.w;
    struct pool *p = u->c.pool;
    struct server *s = u->srv;
    struct msg *m;

    log_warn("pool %s: server %s connection failed: %s (%u in flight, %s queued)",
             p->cf->name, s->ident, reason, u->ninflight, u->sq_head != NULL ? "some" : "none");
    u->c.closing = true;
    worker_unmark_dirty(w, &u->c);
    s->conns[u->slot] = NULL;
    s->nconns--;
    w->curr_connections--;
    conn_close_fd(&u->c);
    pool_server_failed(p, s, km_now_ms());

    while ((m = u->if_head) != NULL) {
        u->if_head = m->snext;
        m->snext = NULL;
        forward_fail(w, p, m, reason);
    }
    while ((m = u->sq_head) != NULL) {
        u->sq_head = m->snext;
        m->snext = NULL;
        forward_fail(w, p, m, reason);
    }
    free(u);
}

/* At exit: every client is gone, so what the servers still owe has no one to go to. */
void
upstream_close_all(struct worker *w)
{
    for (uint32_t i = 0; i < w->npools; i++) {
        struct pool *p = &w->pools[i];
        for (uint32_t j = 0; j < p->nservers; j++) {
            struct server *s = &p->servers[j];
            for (uint32_t k = 0; k < p->cf->server_connections; k++) {
                struct upstream *u = s->conns[k];
                struct msg *m;
                if (u == NULL)
                    continue;
                u->c.closing = true;
                worker_unmark_dirty(w, &u->c);
                conn_close_fd(&u->c);
                while ((m = u->if_head) != NULL || (m = u->sq_head) != NULL) {
                    if (m == u->if_head)
                        u->if_head = m->snext;
                    else
                        u->sq_head = m->snext;
                    m->snext = NULL;
                    m->done = true;
                    forward_complete(w, m);
                }
                free(u);
                s->conns[k] = NULL;
            }
            s->nconns = 0;
        }
    }
}
