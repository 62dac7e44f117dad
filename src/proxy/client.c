/* src/proxy/client.c: client connections: read -> parse -> forward, and the in-order
 * reply FIFO written back with one writev per flush. */
#include "proxy/proxy.h"

#include "core/clock.h"
#include "core/common.h"
#include "core/log.h"
#include "core/net.h"

#include <errno.h>
#include <event2/event.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CLIENT_IOV 512

static void client_close(struct client *cl, const char *why);

/* Bytes of m's reply that go to the client. */
static uint64_t
reply_len(const struct msg *m)
{
    if (m->rsp == NULL || m->noreply || m->swallow)
        return 0;
    return m->rsp->outlen;
}

static void
fifo_push(struct client *cl, struct msg *m)
{
    m->client = cl;
    m->cnext = NULL;
    if (cl->tail != NULL)
        cl->tail->cnext = m;
    else
        cl->head = m;
    cl->tail = m;
}

static struct msg *
fifo_pop(struct client *cl)
{
    struct msg *m = cl->head;
    cl->head = m->cnext;
    if (cl->head == NULL)
        cl->tail = NULL;
    m->cnext = NULL;
    return m;
}

static int
on_request(void *arg, struct msg *m)
{
    struct client *cl = arg;

    fifo_push(cl, m);
    m->read_us = worker_clock_us(conn_worker(&cl->c));
    if (order_holding(cl)) {
        m->waiting = true;   /* planned once the request it follows goes (proxy/order.c) */
        return conn_go_on(&cl->c);
    }
    forward_request(cl, m);
    if (m->quit) {
        /* QUIT: what came before it is answered, nothing after it is read or run; the
         * reply is the last thing written (client_flush closes after it) */
        cl->c.quit = true;
        conn_stop_reading(&cl->c);
        return KM_AGAIN;
    }
    return conn_go_on(&cl->c);
}

/* The tokenizer rejected the input: answer in order, and close after the answer when
 * the framing is lost. */
static int
on_bad_request(void *arg, const char *reason, bool recoverable)
{
    struct client *cl = arg;
    struct conn *c = &cl->c;
    struct worker *w = conn_worker(c);
    struct proto_ctx ctx = worker_ctx(w, conn_wpool(c));
    struct msg *m = msg_get(&w->mc);

    ctr_add(&conn_wpool(c)->st->client_err, 1);
    if (m == NULL)
        return KM_ERROR;
    m->rsp = msg_get(&w->mc);
    if (m->rsp == NULL || conn_pool(c)->proto->bad_request(m->rsp, reason, &ctx) != KM_OK) {
        msg_put(&w->mc, m);
        return KM_ERROR;
    }
    m->plan = PLAN_ERROR;
    m->done = true;
    if (!recoverable) {
        char peer[64];
        m->quit = true;
        log_warn("pool %s: closing client %s (fd %d) after a malformed request: %s",
                 conn_pool(c)->cf->name, net_peer_name(c->fd, peer, sizeof(peer)), c->fd,
                 reason[0] != '\0' ? reason : "bad input");
    }
    fifo_push(cl, m);
    client_reply_ready(cl, m);
    return KM_OK;
}

static const struct reader_ops client_reader_ops = { NULL, on_request, on_bad_request };

/* Read what is there and forward it. KM_ERROR when the client was closed (cl is gone). */
static int
client_read(struct client *cl)
{
    int rc = conn_read(&cl->c, true, &client_reader_ops);

    if (rc == KM_AGAIN) {
        /* after a QUIT: the rest of the input is dropped with the reader */
        worker_mark_dirty(conn_worker(&cl->c), &cl->c);
    } else if (rc != KM_OK || cl->c.eof) {
        if (rc != KM_OK && cl->tail == NULL) {
            ctr_add(&conn_wpool(&cl->c)->st->client_err, 1);
            client_close(cl, "read error");
            return KM_ERROR;
        }
        /* stop reading; close once the replies owed have been written */
        if (cl->c.eof)
            ctr_add(&conn_wpool(&cl->c)->st->client_eof, 1);
        if (cl->c.eof && session_blocked(cl)) {
            /* as Redis does: a client that leaves while blocked is gone, and its
             * connection (closed with it) unblocks the server */
            client_close(cl, "eof while blocked");
            return KM_ERROR;
        }
        conn_stop_reading(&cl->c);
        cl->c.quit = true;
        worker_mark_dirty(conn_worker(&cl->c), &cl->c);
    }
    return KM_OK;
}

void
client_event(int fd, short what, void *arg)
{
    struct client *cl = arg;

    (void)fd;
    if ((what & EV_READ) && client_read(cl) != KM_OK)
        return;
    if (what & EV_WRITE)
        client_flush(cl);
}

/* A place for one more client of p under client_connections (shared by every worker):
 * true when taken. */
static bool
admit(struct pool *p)
{
    uint32_t limit = p->cf->client_connections;
    uint32_t n = atomic_fetch_add_explicit(&p->state->nclients, 1, memory_order_relaxed);

    if (limit == 0 || n < limit)
        return true;
    atomic_fetch_sub_explicit(&p->state->nclients, 1, memory_order_relaxed);
    return false;
}

/* True when the peer of a just accepted fd has already closed without sending anything
 * (a TCP health check, a port probe): there is nothing to serve, and it must not take a
 * place under client_connections. */
static bool
gone_before_served(int fd)
{
    char b;
    ssize_t n = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);

    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

static void accept_client(struct wpool *wp, int fd, bool may_wait);

void
client_accept(struct wpool *wp, int fd)
{
    accept_client(wp, fd, true);
}

/* How long a client over client_connections waits for a place that a client leaving at
 * the same moment frees (on this worker or another), and how often it looks. */
#define ADMIT_WAIT_NS  (3 * 1000 * 1000)
#define ADMIT_LOOK_US  250

void
client_admit_deferred(struct worker *w)
{
    uint32_t n = w->ndeferred, kept = 0;
    uint64_t now = km_clock_ns(CLOCK_MONOTONIC);

    w->ndeferred = 0;
    for (uint32_t i = 0; i < n; i++) {
        struct wpool *wp = &w->pools[w->deferred[i].pidx];
        if (now < w->deferred[i].until_ns && !gone_before_served(w->deferred[i].fd) &&
            atomic_load_explicit(&wp->pool->state->nclients, memory_order_relaxed) >=
                wp->pool->cf->client_connections) {
            w->deferred[kept++] = w->deferred[i];   /* still full: look again soon */
            continue;
        }
        accept_client(wp, w->deferred[i].fd, false);
    }
    w->ndeferred += kept;
    if (w->ndeferred > 0) {
        struct timeval tv = { 0, ADMIT_LOOK_US };
        evtimer_add(w->admit_tev, &tv);
    }
}

static void
accept_client(struct wpool *wp, int fd, bool may_wait)
{
    struct worker *w = wp->w;
    struct pool *p = wp->pool;
    struct client *cl;

    if (gone_before_served(fd)) {
        log_debug("pool %s: a client left before it was served (fd %d)", p->cf->name, fd);
        close(fd);
        return;
    }
    bool in = admit(p);
    if (!in && may_wait && w->ndeferred < KM_ARRAY_LEN(w->deferred)) {
        w->deferred[w->ndeferred].fd = fd;
        w->deferred[w->ndeferred].pidx = (uint32_t)(wp - w->pools);
        w->deferred[w->ndeferred].until_ns = km_clock_ns(CLOCK_MONOTONIC) + ADMIT_WAIT_NS;
        w->ndeferred++;
        return;
    }
    if (!in) {
        /* one best-effort write of the protocol's error line, then close */
        const char *refuse = "too many client connections";
        struct proto_ctx ctx = worker_ctx(w, wp);
        struct msg *r = msg_get(&w->mc);
        if (r != NULL && p->proto->error(r, NULL, refuse, &ctx) == KM_OK) {
            struct iovec iov[MSG_OUT_INLINE];
            int niov = 0;
            for (uint32_t i = 0; i < r->nout; i++)
                span_iov(&r->out[i], 0, iov, MSG_OUT_INLINE, &niov);
            ssize_t wr = writev(fd, iov, niov);
            (void)wr;
        }
        if (r != NULL)
            msg_put(&w->mc, r);
        close(fd);
        log_warn("pool %s: refused a client: %s (client_connections %u)", p->cf->name, refuse,
                 p->cf->client_connections);
        return;
    }

    cl = slab_alloc(&w->client_slab);
    if (cl == NULL || net_nonblock(fd) < 0) {
        log_error("pool %s: cannot set up a client: %s", p->cf->name, strerror(errno));
        slab_free(&w->client_slab, cl);
        atomic_fetch_sub_explicit(&p->state->nclients, 1, memory_order_relaxed);
        close(fd);
        return;
    }
    net_nodelay(fd);
    cl->c.fd = fd;
    cl->c.kind = CONN_CLIENT;
    cl->c.w = w;
    cl->c.pidx = (uint32_t)(wp - w->pools);
    cl->sess.authed = p->cf->redis_auth == NULL;
    cl->sess.id = atomic_fetch_add_explicit(&w->px->client_ids, 1, memory_order_relaxed) + 1;
    if (conn_events(&cl->c) != KM_OK) {
        log_error("pool %s: cannot watch a client", p->cf->name);
        conn_close_fd(&cl->c);
        slab_free(&w->client_slab, cl);
        atomic_fetch_sub_explicit(&p->state->nclients, 1, memory_order_relaxed);
        return;
    }
    cl->next = w->clients;
    if (w->clients != NULL)
        w->clients->prev = cl;
    w->clients = cl;
    wp->nclients++;
    ctr_add(&w->curr_connections, 1);
    ctr_add(&w->total_connections, 1);
    log_debug("pool %s: client fd %d connected (worker %u)", p->cf->name, fd, w->id);
}

static void
client_close(struct client *cl, const char *why)
{
    struct worker *w = conn_worker(&cl->c);
    struct pool *p = conn_pool(&cl->c);

    log_debug("pool %s: closing client fd %d: %s", p->cf->name, cl->c.fd, why);
    cl->c.closing = true;
    worker_unmark_dirty(w, &cl->c);
    pubsub_release(cl);   /* its confirmations still awaited are freed below */
    while (cl->head != NULL) {
        struct msg *m = fifo_pop(cl);
        if (m->done || m->waiting)
            msg_put(&w->mc, m);
        else
            m->client = NULL;   /* still with a server: freed when it answers */
    }
    session_release(cl);
    conn_close_fd(&cl->c);
    proto_session_clear(&cl->sess);
    conn_wpool(&cl->c)->nclients--;
    if (cl->prev != NULL)
        cl->prev->next = cl->next;
    else
        w->clients = cl->next;
    if (cl->next != NULL)
        cl->next->prev = cl->prev;
    atomic_fetch_sub_explicit(&p->state->nclients, 1, memory_order_relaxed);
    ctr_sub(&w->curr_connections, 1);
    slab_free(&w->client_slab, cl);
}

void
client_finish(struct client *cl)
{
    if (!cl->c.rev_on || cl->c.quit) {
        cl->c.quit = true;
        worker_mark_dirty(conn_worker(&cl->c), &cl->c);
        return;
    }
    /* what the client sent before its pool went, as far as it is here already */
    if (client_read(cl) != KM_OK)
        return;
    conn_stop_reading(&cl->c);
    cl->c.quit = true;
    worker_mark_dirty(conn_worker(&cl->c), &cl->c);
}

void
client_close_all(struct worker *w)
{
    for (uint32_t i = 0; i < w->ndeferred; i++)
        close(w->deferred[i].fd);
    w->ndeferred = 0;
    while (w->clients != NULL)
        client_close(w->clients, "shutdown");
}

void
client_push(struct client *cl, struct msg *m)
{
    fifo_push(cl, m);
    client_reply_ready(cl, m);
}

void
client_reply_ready(struct client *cl, struct msg *m)
{
    int64_t limit = conn_pool(&cl->c)->cf->client_output_limit;

    cl->queued += reply_len(m);
    if (order_holding(cl))
        order_replied(cl);
    if (limit > 0 && cl->queued > (uint64_t)limit && !cl->c.overflow) {
        cl->c.overflow = true;
        log_warn("pool %s: closing client fd %d: %llu bytes of replies queued, over "
                 "client_output_limit %lld", conn_pool(&cl->c)->cf->name, cl->c.fd,
                 (unsigned long long)cl->queued, (long long)limit);
        worker_mark_dirty(conn_worker(&cl->c), &cl->c);
        return;
    }
    if (cl->head != NULL && cl->head->done)
        worker_mark_dirty(conn_worker(&cl->c), &cl->c);
}

int
client_flush(struct client *cl)
{
    struct worker *w = conn_worker(&cl->c);
    struct iovec iov[CLIENT_IOV];
    uint64_t now_us = 0;

    if (cl->c.overflow) {
        ctr_add(&conn_wpool(&cl->c)->st->client_err, 1);
        client_close(cl, "output limit");
        return KM_ERROR;
    }
    if (order_holding(cl))
        order_resume(cl);
    for (;;) {
        int niov = 0;
        uint64_t want = 0;
        uint64_t skip = cl->c.wpos;

        for (struct msg *m = cl->head; m != NULL && m->done && niov < CLIENT_IOV; m = m->cnext) {
            if (reply_len(m) > 0) {
                struct msg *r = m->rsp;
                for (uint32_t i = 0; i < r->nout && niov < CLIENT_IOV; i++) {
                    if (skip >= r->out[i].len) {
                        skip -= r->out[i].len;
                        continue;
                    }
                    want += span_iov(&r->out[i], skip, iov, CLIENT_IOV, &niov);
                    skip = 0;
                }
            }
            if (m->quit)
                break;
        }

        uint64_t n = 0;
        if (niov > 0) {
            ssize_t wr = conn_writev(&cl->c, iov, niov);
            if (wr < 0) {
                client_close(cl, "write error");
                return KM_ERROR;
            }
            n = (uint64_t)wr;
        }

        /* retire what was written, and replies with nothing to write */
        while (cl->head != NULL && cl->head->done) {
            struct msg *m = cl->head;
            uint64_t left = reply_len(m) - cl->c.wpos;
            if (n < left) {
                cl->c.wpos += n;
                n = 0;
                break;
            }
            n -= left;
            cl->c.wpos = 0;
            cl->queued -= reply_len(m);
            if (m->read_us != 0) {
                /* a request's whole time in the proxy: read -> reply written */
                if (now_us == 0)
                    now_us = worker_clock_us(w);
                hist_since(&conn_wpool(&cl->c)->st->latency, now_us, m->read_us);
            }
            fifo_pop(cl);
            w->replies++;
            bool quit = m->quit;
            msg_put(&w->mc, m);
            if (quit) {
                client_close(cl, "quit");
                return KM_OK;
            }
        }
        if (niov == 0 || (want > 0 && cl->c.wev_on))
            break;
        if (cl->head == NULL || !cl->head->done)
            break;
    }
    if (cl->head == NULL || !cl->head->done)
        conn_want_write(&cl->c, false);
    if (cl->c.quit && cl->head == NULL) {
        client_close(cl, cl->c.eof ? "eof" : "error");
        return KM_OK;
    }
    return KM_OK;
}
