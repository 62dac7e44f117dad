/* src/proxy/upstream.c: server connections: connect on demand, batch queued requests into
 * writev, pair replies with the in-flight FIFO, time out the oldest request, and fail
 * everything on a broken connection.
 *
 * Timeouts: one timer per connection, armed for the oldest request in flight (timed from
 * when it was written, not queued). When it fires, that request alone is answered with
 * "Connection timed out"; a ghost message takes its place in the FIFO so that the late
 * reply, when it comes, is paired with the ghost and dropped, and the connection goes on.
 */
#include "proxy/proxy.h"

#include "core/clock.h"
#include "core/common.h"
#include "core/log.h"
#include "core/net.h"

#include <errno.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define UPSTREAM_IOV 512
#define INIT_MSGS 4
/* Timed-out requests whose late replies a connection may still wait for; past this the
 * server is not answering at all and the connection is closed. */
#define MAX_GHOSTS 1024

static void upstream_fail(struct upstream *u, const char *reason);

static void
sq_push(struct upstream *u, struct msg *m)
{
    struct server_stats *st = u->ws->st;

    m->snext = NULL;
    if (u->sq_tail != NULL)
        u->sq_tail->snext = m;
    else
        u->sq_head = m;
    u->sq_tail = m;
    ctr_add(&st->in_queue, 1);
    ctr_add(&st->in_queue_bytes, m->outlen);
}

static struct msg *
sq_pop(struct upstream *u)
{
    struct msg *m = u->sq_head;
    struct server_stats *st = u->ws->st;

    u->sq_head = m->snext;
    if (u->sq_head == NULL)
        u->sq_tail = NULL;
    m->snext = NULL;
    ctr_sub(&st->in_queue, 1);
    ctr_sub(&st->in_queue_bytes, m->outlen);
    return m;
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
    ctr_add(&u->ws->st->out_queue, 1);
    ctr_add(&u->ws->st->out_queue_bytes, m->wire_bytes);
}

static struct msg *
if_pop(struct upstream *u)
{
    struct msg *m = u->if_head;

    u->if_head = m->snext;
    if (u->if_head == NULL)
        u->if_tail = NULL;
    m->snext = NULL;
    u->ninflight--;
    ctr_sub(&u->ws->st->out_queue, 1);
    ctr_sub(&u->ws->st->out_queue_bytes, m->wire_bytes);
    return m;
}

/* Arm the connection's timer for its connect, or for its oldest request still owed a
 * reply (ghosts excepted); disarm when there is none. */
static void
timer_update(struct upstream *u)
{
    int64_t tmo = conn_pool(&u->c)->cf->timeout;
    uint64_t deadline = 0;

    if (tmo <= 0)
        return;
    if (u->connecting) {
        deadline = u->tev_deadline != 0 ? u->tev_deadline : km_now_ms() + (uint64_t)tmo;
    } else {
        for (struct msg *m = u->if_head; m != NULL; m = m->snext) {
            if (m->blocking)
                break;   /* it has its own timeout; what follows waits behind it */
            if (!m->ghost) {
                deadline = m->sent_ms + (uint64_t)tmo;
                break;
            }
        }
    }
    if (deadline == u->tev_deadline)
        return;
    u->tev_deadline = deadline;
    if (deadline == 0) {
        evtimer_del(u->tev);
        return;
    }
    uint64_t now = km_now_ms();
    uint64_t left = deadline > now ? deadline - now : 0;
    struct timeval tv = { (time_t)(left / 1000), (suseconds_t)((left % 1000) * 1000) };
    evtimer_add(u->tev, &tv);
}

static void
on_timer(int fd, short what, void *arg)
{
    struct upstream *u = arg;
    struct worker *w = conn_worker(&u->c);
    struct wpool *wp = conn_wpool(&u->c);
    struct pool *p = wp->pool;
    uint64_t now = km_now_ms();

    (void)fd;
    (void)what;
    u->tev_deadline = 0;
    if (u->connecting) {
        ctr_add(&u->ws->st->server_timedout, 1);
        upstream_fail(u, "Connection timed out");
        return;
    }

    /* every request in flight past its deadline times out alone; on a pinned connection
     * the client's session cannot go on past a reply it never got: the connection goes */
    uint64_t tmo = (uint64_t)p->cf->timeout;
    for (struct msg **pp = &u->if_head; *pp != NULL; pp = &(*pp)->snext) {
        struct msg *m = *pp;
        if (m->blocking)
            break;
        if (m->ghost)
            continue;
        if (u->pinned && m->sent_ms + tmo <= now) {
            ctr_add(&u->ws->st->server_timedout, 1);
            upstream_fail(u, "Connection timed out");
            return;
        }
        if (m->sent_ms + tmo > now)
            break;
        struct msg *g = u->nghosts < MAX_GHOSTS ? msg_get(&w->mc) : NULL;
        if (g == NULL) {
            ctr_add(&u->ws->st->server_timedout, 1);
            upstream_fail(u, "Connection timed out");
            return;
        }
        u->nghosts++;
        g->ghost = true;
        g->swallow = true;
        g->cmd = m->cmd;
        g->noreply = m->noreply;
        g->type = m->type;
        g->sent_ms = m->sent_ms;
        g->wire_bytes = m->wire_bytes;
        g->snext = m->snext;
        if (u->if_tail == m)
            u->if_tail = g;
        *pp = g;
        m->snext = NULL;
        ctr_add(&u->ws->st->server_timedout, 1);
        log_info("pool %s: request to server %s timed out after %lld ms", p->cf->name,
                 u->srv->ident, (long long)p->cf->timeout);
        pool_server_failed(p, u->srv, now);
        forward_fail(w, wp, m, "Connection timed out");
    }
    timer_update(u);
}

/* A server connection at a reply boundary: the request the next reply answers. */
static struct msg *
on_answers(void *arg)
{
    return ((struct upstream *)arg)->if_head;
}

static int
on_reply(void *arg, struct msg *rsp)
{
    struct upstream *u = arg;
    struct conn *c = &u->c;
    struct server *s = u->srv;
    struct msg *req;

    ASSERT(u->if_head != NULL);
    req = if_pop(u);
    ctr_add(&u->ws->st->responses, 1);
    ctr_add(&u->ws->st->response_bytes, rsp->raw.len);

    if (req->ghost)
        u->nghosts--;
    if (req->ghost || req->swallow) {
        if (req->swallow && !req->ghost && rsp->is_error)
            log_error("pool %s: server %s refused the connection set-up (AUTH/SELECT)",
                      conn_pool(c)->cf->name, s->ident);
        msg_put(&conn_worker(c)->mc, rsp);
        msg_put(&conn_worker(c)->mc, req);
        timer_update(u);
        return conn_go_on(c);
    }
    pool_server_ok(s);
    if (req->sent_us != 0)
        hist_since(&u->ws->st->latency, worker_clock_us(conn_worker(c)), req->sent_us);
    if (req->parent == NULL && conn_pool(c)->proto->rsp_count != NULL)
        conn_pool(c)->proto->rsp_count(&conn_wpool(c)->st->counts, req, &c->in->rd.ps);

    /* a whole request's reply goes back as it came; a fragment's waits for the merge */
    if (req->parent == NULL && msg_out_borrow(rsp, rsp->raw.b, rsp->raw.off, rsp->raw.len) != KM_OK) {
        msg_put(&conn_worker(c)->mc, rsp);
        forward_fail(conn_worker(c), conn_wpool(c), req, "out of memory");
        timer_update(u);
        return conn_go_on(c);
    }
    req->rsp = rsp;
    req->done = true;
    timer_update(u);
    forward_complete(conn_worker(c), req);
    if (u->pinned)
        session_after_reply(u);
    return conn_go_on(c);
}

static int
on_bad_reply(void *arg, const char *reason, bool recoverable)
{
    struct upstream *u = arg;
    (void)recoverable;
    log_warn("pool %s: server %s sent a bad reply: %s", conn_pool(&u->c)->cf->name, u->srv->ident,
             reason);
    ctr_add(&u->ws->st->server_err, 1);
    return KM_ERROR;
}

static const struct reader_ops upstream_reader_ops = { on_answers, on_reply, on_bad_reply };

void
upstream_event(int fd, short what, void *arg)
{
    struct upstream *u = arg;

    if (u->connecting && (what & EV_WRITE)) {
        int err = net_socket_error(fd);
        if (err != 0) {
            ctr_add(&u->ws->st->server_err, 1);
            upstream_fail(u, strerror(err));
            return;
        }
        u->connecting = false;
        u->tev_deadline = 0;
        evtimer_del(u->tev);
        log_info("pool %s: connected to server %s", conn_pool(&u->c)->cf->name, u->srv->ident);
    }
    if (what & EV_READ) {
        int rc = conn_read(&u->c, false, u->sub ? &pubsub_reader_ops : &upstream_reader_ops);
        if (rc != KM_OK) {
            upstream_fail(u, "Connection reset by server");
            return;
        }
        if (u->c.eof) {
            ctr_add(&u->ws->st->server_eof, 1);
            upstream_fail(u, "Connection closed by server");
            return;
        }
    }
    if (what & EV_WRITE)
        upstream_flush(u);
}

static struct upstream *
upstream_open(struct wpool *wp, struct wserver *ws, uint32_t slot)
{
    struct worker *w = wp->w;
    struct server *s = ws->srv;
    struct pool *p = s->pool;
    struct upstream *u = calloc(1, conn_alloc_size(CONN_SERVER));
    struct msg *init[INIT_MSGS];
    struct proto_ctx ctx = worker_ctx(w, wp);
    int ninit = 0, fd;

    if (u == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    if (p->proto->conn_init != NULL) {
        ninit = p->proto->conn_init(init, INIT_MSGS, p->cf->redis_auth, p->cf->redis_db, &ctx);
        if (ninit < 0) {
            free(u);
            errno = ENOMEM;
            return NULL;
        }
    }
    fd = net_connect((const struct sockaddr *)&s->addr, s->addrlen, p->cf->tcpkeepalive);
    if (fd < 0) {
        if (atomic_load_explicit(&s->h->failures, memory_order_relaxed) == 0)
            log_warn("pool %s: cannot connect to server %s: %s", p->cf->name, s->ident,
                     strerror(-fd));
        for (int i = 0; i < ninit; i++)
            msg_put(&w->mc, init[i]);
        free(u);
        errno = -fd;
        return NULL;
    }
    u->c.fd = fd;
    u->c.kind = CONN_SERVER;
    u->c.w = w;
    u->c.pidx = (uint32_t)(wp - w->pools);
    u->ws = ws;
    u->srv = s;
    u->slot = slot;
    u->connecting = true;
    u->tev = evtimer_new(w->base, on_timer, u);
    if (u->tev == NULL || conn_in_attach(&u->c) != KM_OK ||
        conn_events(&u->c) != KM_OK) {
        if (u->tev != NULL)
            event_free(u->tev);
        conn_close_fd(&u->c);
        for (int i = 0; i < ninit; i++)
            msg_put(&w->mc, init[i]);
        free(u);
        errno = ENOMEM;
        return NULL;
    }
    conn_want_write(&u->c, true);
    if (slot < p->cf->server_connections)
        ws->conns[slot] = u;
    else
        u->pinned = true;
    ctr_add(&ws->st->connections, 1);
    ctr_add(&w->curr_connections, 1);
    ctr_add(&w->total_connections, 1);
    for (int i = 0; i < ninit; i++)
        sq_push(u, init[i]);
    timer_update(u);
    return u;
}

struct upstream *
upstream_open_pinned(struct wpool *wp, struct wserver *ws)
{
    return upstream_open(wp, ws, UINT32_MAX);
}

void
upstream_preconnect(struct wpool *wp)
{
    struct pool *p = wp->pool;

    for (uint32_t i = 0; i < p->nservers; i++) {
        struct wserver *ws = &wp->servers[i];
        for (uint32_t k = 0; k < p->cf->server_connections; k++) {
            if (ws->conns[k] == NULL && upstream_open(wp, ws, k) == NULL)
                pool_server_failed(p, ws->srv, km_now_ms());
        }
    }
}

void
upstream_send(struct wpool *wp, struct wserver *ws, struct msg *m)
{
    struct worker *w = wp->w;
    struct server *s = ws->srv;
    struct pool *p = s->pool;
    uint32_t max = p->cf->server_connections;
    struct client *cl = m->client != NULL ? m->client
                      : m->parent != NULL ? m->parent->client : NULL;
    /* one client's requests to one server always share a connection, so a server runs
     * them in the order the client sent them; clients spread over the connections */
    uint32_t slot = cl != NULL ? (uint32_t)cl->c.fd % max : ws->next++ % max;
    struct upstream *u = ws->conns[slot];

    if (u == NULL) {
        u = upstream_open(wp, ws, slot);
        if (u == NULL) {
            const char *why = strerror(errno);
            pool_server_failed(p, s, km_now_ms());
            forward_fail(w, wp, m, why);
            return;
        }
    }
    upstream_queue(u, m);
}

void
upstream_queue(struct upstream *u, struct msg *m)
{
    struct wserver *ws = u->ws;

    m->server = (int32_t)ws->srv->idx;
    ctr_add(&ws->st->requests, 1);
    ctr_add(&ws->st->request_bytes, m->outlen);
    sq_push(u, m);
    worker_mark_dirty(conn_worker(&u->c), &u->c);
}

int
upstream_flush(struct upstream *u)
{
    struct iovec iov[UPSTREAM_IOV];
    bool sent_any = false;
    uint64_t now = 0, now_us = 0;

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
            ctr_add(&u->ws->st->server_err, 1);
            upstream_fail(u, strerror(errno));
            return KM_ERROR;
        }
        if (wr == 0)
            break;   /* socket full: the write event resumes */

        uint64_t n = (uint64_t)wr;
        if (now == 0) {
            now = km_now_ms();
            now_us = worker_clock_us(conn_worker(&u->c));
        }
        while (u->sq_head != NULL) {
            struct msg *m = u->sq_head;
            uint64_t left = m->outlen - u->c.wpos;
            if (n < left) {
                u->c.wpos += n;
                break;
            }
            n -= left;
            u->c.wpos = 0;
            sq_pop(u);
            m->wire_bytes = m->outlen;
            m->sent = true;
            m->sent_ms = now;
            m->sent_us = now_us;
            msg_out_release(m);
            msg_drop_input(m);
            sent_any = true;
            if (m->noreply) {
                m->done = true;
                forward_complete(conn_worker(&u->c), m);
            } else {
                if_push(u, m);
            }
        }
    }
    if (u->sq_head == NULL)
        conn_want_write(&u->c, false);
    if (sent_any)
        timer_update(u);
    return KM_OK;
}

/* Detach u from its server and the worker and close its socket. */
static void
upstream_detach(struct upstream *u)
{
    struct worker *w = conn_worker(&u->c);
    struct wserver *ws = u->ws;

    u->c.closing = true;
    worker_unmark_dirty(w, &u->c);
    if (u->pinned) {
        if (u->owner != NULL && u->sub)
            pubsub_conn_lost(u);
        else if (u->owner != NULL)
            session_conn_lost(u);
        if (u->cached) {
            for (struct upstream **pp = &ws->idle; *pp != NULL; pp = &(*pp)->inext) {
                if (*pp == u) {
                    *pp = u->inext;
                    ws->nidle--;
                    break;
                }
            }
            u->cached = false;
        }
        ctr_sub(&ws->st->connections, 1);
    } else if (ws->conns[u->slot] == u) {
        ws->conns[u->slot] = NULL;
        ctr_sub(&ws->st->connections, 1);
    }
    ctr_sub(&w->curr_connections, 1);
    if (u->tev != NULL)
        event_free(u->tev);
    u->tev = NULL;
    conn_close_fd(&u->c);
}

/* Answer everything u still owes with reason, and free it (detached). */
static void
fail_all(struct upstream *u, const char *reason)
{
    struct worker *w = conn_worker(&u->c);
    struct wpool *wp = conn_wpool(&u->c);

    while (u->if_head != NULL) {
        struct msg *m = if_pop(u);
        if (m->ghost || m->swallow)
            msg_put(&w->mc, m);
        else
            forward_fail(w, wp, m, reason);
    }
    while (u->sq_head != NULL) {
        struct msg *m = sq_pop(u);
        if (m->swallow)
            msg_put(&w->mc, m);
        else
            forward_fail(w, wp, m, reason);
    }
    free(u);
}

/* Fail every request on the connection, close it, and count a failure of its server. */
static void
upstream_fail(struct upstream *u, const char *reason)
{
    struct pool *p = conn_pool(&u->c);
    struct server *s = u->srv;

    /* the first failure in a row is news; the ones after it while the server stays
     * down would flood the log at one line per attempt */
    if (atomic_load_explicit(&s->h->failures, memory_order_relaxed) == 0)
        log_warn("pool %s: server %s connection failed: %s (%u in flight)", p->cf->name,
                 s->ident, reason, u->ninflight);
    else
        log_info("pool %s: server %s connection failed again: %s (%u in flight)", p->cf->name,
                 s->ident, reason, u->ninflight);
    upstream_detach(u);
    pool_server_failed(p, s, km_now_ms());
    fail_all(u, reason);
}

void
upstream_abandon(struct upstream *u, const char *reason)
{
    log_info("pool %s: closing the pinned connection to server %s: %s",
             conn_pool(&u->c)->cf->name, u->srv->ident, reason);
    upstream_detach(u);
    fail_all(u, reason);
}

struct msg *
upstream_pop_reply(struct upstream *u)
{
    struct msg *m = if_pop(u);

    timer_update(u);
    return m;
}

bool
upstream_busy(const struct upstream *u)
{
    return u->if_head != NULL || u->sq_head != NULL;
}

void
upstream_close(struct upstream *u)
{
    ASSERT(!upstream_busy(u));
    log_info("pool %s: closing the connection to server %s", conn_pool(&u->c)->cf->name,
             u->srv->ident);
    upstream_detach(u);
    free(u);
}

/* At exit: every client is gone, so what the servers still owe has no one to go to. */
void
upstream_close_all(struct worker *w)
{
    for (uint32_t i = 0; i < w->npools; i++) {
        struct wpool *wp = &w->pools[i];
        if (wp->pool == NULL)
            continue;   /* a drained view */
        if (wp->servers != NULL)
            session_close_idle(wp, true);
        for (uint32_t j = 0; wp->servers != NULL && j < wp->pool->nservers; j++) {
            struct wserver *ws = &wp->servers[j];
            for (uint32_t k = 0; k < wp->pool->cf->server_connections; k++) {
                struct upstream *u = ws->conns[k];
                if (u == NULL)
                    continue;
                upstream_detach(u);
                while (u->if_head != NULL || u->sq_head != NULL) {
                    struct msg *m = u->if_head != NULL ? if_pop(u) : sq_pop(u);
                    if (m->ghost || m->swallow) {
                        msg_put(&w->mc, m);
                        continue;
                    }
                    m->done = true;
                    forward_complete(w, m);
                }
                free(u);
            }
        }
    }
}
