/* src/proxy/conn.c: what client and server connections share: events, reading into the
 * input chain, and driving the protocol's tokenizer over it to complete messages. */
#include "proxy/proxy.h"

#include "core/common.h"
#include "core/log.h"

#include <errno.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

/* Reads per wakeup: protects the loop from one busy connection. */
#define READS_PER_WAKEUP 8

int
conn_events(struct conn *c, void (*cb)(int, short, void *))
{
    c->rev = event_new(c->w->base, c->fd, EV_READ | EV_PERSIST, cb, c);
    c->wev = event_new(c->w->base, c->fd, EV_WRITE | EV_PERSIST, cb, c);
    if (c->rev == NULL || c->wev == NULL)
        return KM_ERROR;
    if (event_add(c->rev, NULL) != 0)
        return KM_ERROR;
    return KM_OK;
}

void
conn_want_write(struct conn *c, bool on)
{
    if (on == c->wev_on)
        return;
    c->wev_on = on;
    if (on)
        event_add(c->wev, NULL);
    else
        event_del(c->wev);
}

void
conn_close_fd(struct conn *c)
{
    if (c->rev != NULL)
        event_free(c->rev);
    if (c->wev != NULL)
        event_free(c->wev);
    c->rev = c->wev = NULL;
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    if (c->cur != NULL) {
        msg_put(&c->w->mc, c->cur);
        c->cur = NULL;
    }
    chain_release(&c->in);
}

/* Start a message at the current event: its first byte is req_len bytes back. */
static int
begin_msg(struct conn *c, uint64_t msglen)
{
    struct msg *m = msg_get(&c->w->mc);
    uint32_t off;

    if (m == NULL)
        return KM_ERROR;
    c->cur = m;
    c->cur_start = c->in.pabs - msglen;
    c->cur_b = c->in.head;
    c->cur_b_abs = c->in.head_abs;
    chain_locate(&c->cur_b, &c->cur_b_abs, c->cur_start, &off);
    c->cur_sb = c->cur_b;
    c->cur_soff = off;
    return KM_OK;
}

/* A server connection at a reply boundary: set the tokenizer up for the request the next
 * reply answers. KM_ERROR when the server speaks with nothing asked. */
static int
begin_reply(struct conn *c)
{
    struct upstream *u = (struct upstream *)c;
    struct msg *req = u->if_head;

    if (req == NULL)
        return KM_ERROR;
    c->keep_toks = req->parent != NULL &&
                   (req->parent->merge == MERGE_ARRAY || req->parent->merge == MERGE_VALUES);
    c->pool->proto->rsp_init(&c->ps, req, c->keep_toks);
    return KM_OK;
}

static int
parse(struct conn *c, bool is_req, conn_msg_fn done, conn_err_fn bad)
{
    const struct proto *pr = c->pool->proto;

    bool more = false;   /* a token was just reported: the end may follow with no new byte */

    while (more || c->in.pabs < c->in.end_abs) {
        struct ptok t;
        size_t used = 0;
        size_t n = c->in.pb->len - c->in.poff;
        const uint8_t *p = c->in.pb->data + c->in.poff;
        int ev;

        if (!is_req && c->fresh) {
            if (begin_reply(c) != KM_OK)
                return bad(c, "unexpected data from server", false);
            c->fresh = false;
        }
        ev = is_req ? pr->req_feed(&c->ps, p, n, &used, &t)
                    : pr->rsp_feed(&c->ps, p, n, &used, &t);
        chain_advance(&c->in, used);
        more = ev == PEV_TOKEN;
        if (is_req && ev == PEV_AGAIN && pr->req_discarding != NULL && pr->req_discarding(&c->ps)) {
            /* refused bytes: nothing will point into them, so do not keep them */
            chain_consume(&c->in);
        }

        switch (ev) {
        case PEV_AGAIN:
            break;

        case PEV_TOKEN:
        case PEV_DONE: {
            uint64_t msglen = is_req ? pr->req_len(&c->ps) : pr->rsp_len(&c->ps);
            if (c->cur == NULL && begin_msg(c, msglen) != KM_OK)
                return bad(c, "out of memory", false);
            struct msg *m = c->cur;
            if (ev == PEV_TOKEN) {
                if (is_req || c->keep_toks) {
                    /* for requests kpos carries the token's offset in the message */
                    struct tok tk = { NULL, 0, t.aux, t.len, is_req ? t.pos : t.kpos, t.klen, t.type };
                    chain_locate(&c->cur_b, &c->cur_b_abs, c->cur_start + t.pos, &tk.off);
                    tk.b = c->cur_b;
                    if (msg_tok_push(m, &tk) != KM_OK)
                        return bad(c, "out of memory", false);
                }
                break;
            }
            m->raw.b = c->cur_sb;
            m->raw.off = c->cur_soff;
            m->raw.len = msglen;
            span_hold(&m->raw);
            chain_consume(&c->in);
            c->cur = NULL;
            if (!is_req) {
                pr->rsp_done(m, &c->ps);
                c->fresh = true;
            }
            /* done() may read the tokenizer's view of the request; reset it after */
            int rc = done(c, m);
            if (rc != KM_OK)
                return rc;
            if (c->closing)
                return KM_ERROR;
            if (is_req)
                pr->req_init(&c->ps);
            break;
        }

        default: {
            bool recoverable = false;
            const char *why = is_req ? pr->req_err(&c->ps, &recoverable) : pr->rsp_err(&c->ps);
            int rc = bad(c, why, recoverable);
            if (rc != KM_OK || !recoverable)
                return KM_ERROR;
            /* the bad line is consumed; carry on with the next request */
            if (c->cur != NULL) {
                msg_put(&c->w->mc, c->cur);
                c->cur = NULL;
            }
            chain_consume(&c->in);
            pr->req_init(&c->ps);
            break;
        }
        }
    }
    return KM_OK;
}

int
conn_read(struct conn *c, bool is_req, conn_msg_fn done, conn_err_fn bad)
{
    const struct proto *pr = c->pool->proto;

    for (int i = 0; i < READS_PER_WAKEUP; i++) {
        size_t room;
        uint8_t *p = chain_space(&c->in, &c->w->bp, &room);
        ssize_t n;

        if (p == NULL) {
            log_error("out of memory reading from fd %d", c->fd);
            return KM_ERROR;
        }
        n = read(c->fd, p, room);
        if (n > 0) {
            chain_commit(&c->in, (size_t)n);
            int rc = parse(c, is_req, done, bad);
            if (rc != KM_OK)
                return rc;
            if ((size_t)n < room)
                break;
            continue;
        }
        if (n == 0) {
            c->eof = true;
            break;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            break;
        log_info("read on fd %d failed: %s", c->fd, strerror(errno));
        return KM_ERROR;
    }

    /* an idle connection holds no segment */
    bool idle = c->cur == NULL && c->in.pabs == c->in.end_abs &&
                (is_req ? pr->req_len(&c->ps) == 0 : c->fresh);
    if (idle && c->in.head != NULL)
        chain_release(&c->in);
    return KM_OK;
}

ssize_t
conn_writev(struct conn *c, const struct iovec *iov, int n)
{
    for (;;) {
        ssize_t w = writev(c->fd, iov, n);
        if (w >= 0)
            return w;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            conn_want_write(c, true);
            return 0;
        }
        log_info("write on fd %d failed: %s", c->fd, strerror(errno));
        return -1;
    }
}
