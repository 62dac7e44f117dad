/* src/proxy/conn.c: what client and server connections share: events, reading into the
 * input chain, and driving the protocol's tokenizer over it to complete messages. */
#include "proxy/proxy.h"

#include "core/common.h"
#include "core/log.h"

#include <errno.h>
#include <event2/event.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

/* Reads per wakeup: protects the loop from one busy connection. */
#define READS_PER_WAKEUP 8

#define FREE_INPUT_STATES 256

static size_t
event_offset(enum conn_kind kind)
{
    size_t size = kind == CONN_CLIENT ? sizeof(struct client) : sizeof(struct upstream);
    return (size + 7) & ~(size_t)7;
}

static struct event *
conn_ev(struct conn *c)
{
    return (struct event *)((char *)c + event_offset((enum conn_kind)c->kind));
}

static void (*conn_cb(const struct conn *c))(int, short, void *)
{
    return c->kind == CONN_CLIENT ? client_event : upstream_event;
}

size_t
conn_alloc_size(enum conn_kind kind)
{
    return event_offset(kind) + event_get_struct_event_size();
}

/* Point the event at what c wants to watch now. */
static void
watch(struct conn *c)
{
    short what = (short)((c->rev_on ? EV_READ : 0) | (c->wev_on ? EV_WRITE : 0));

    struct event *ev = conn_ev(c);

    event_del(ev);
    event_assign(ev, conn_worker(c)->base, c->fd, (short)(what | EV_PERSIST), conn_cb(c), c);
    if (what != 0)
        event_add(ev, NULL);
}

int
conn_events(struct conn *c)
{
    struct event *ev = conn_ev(c);

    if (event_assign(ev, conn_worker(c)->base, c->fd, EV_READ | EV_PERSIST, conn_cb(c), c) != 0 ||
        event_add(ev, NULL) != 0)
        return KM_ERROR;
    c->rev_on = true;
    return KM_OK;
}

void
conn_want_write(struct conn *c, bool on)
{
    if (on == c->wev_on || c->fd < 0)
        return;
    c->wev_on = on;
    watch(c);
}

void
conn_stop_reading(struct conn *c)
{
    if (!c->rev_on || c->fd < 0)
        return;
    c->rev_on = false;
    watch(c);
}

/* Ready the request tokenizer for the next message, with the pool's limits. */
static void
req_start(struct conn *c)
{
    const struct proto *pr = c->pool->proto;

    pr->req_init(&c->in->ps);
    if (pr->req_limits != NULL)
        pr->req_limits(&c->in->ps, &c->pool->limits);
}

int
conn_in_attach(struct conn *c)
{
    struct worker *w = conn_worker(c);
    struct conn_in *in = w->free_in;

    if (c->in != NULL)
        return KM_OK;
    if (in != NULL) {
        w->free_in = in->next;
        w->nfree_in--;
        if (w->nfree_in < w->low_in)
            w->low_in = w->nfree_in;
    } else {
        in = malloc(sizeof(*in));
        if (in == NULL)
            return KM_ERROR;
    }
    memset(in, 0, offsetof(struct conn_in, ps));
    in->cur = NULL;
    in->fresh = true;
    in->keep_toks = false;
    in->next = NULL;
    c->in = in;
    if (c->kind == CONN_CLIENT)
        req_start(c);
    return KM_OK;
}

/* Give the input state back: nothing is half-read or half-parsed. */
static void
conn_in_detach(struct conn *c)
{
    struct worker *w = conn_worker(c);
    struct conn_in *in = c->in;

    if (in == NULL)
        return;
    if (in->cur != NULL) {
        msg_put(&w->mc, in->cur);
        in->cur = NULL;
    }
    chain_release(&in->in);
    c->in = NULL;
    if (w->nfree_in < FREE_INPUT_STATES) {
        in->next = w->free_in;
        w->free_in = in;
        w->nfree_in++;
    } else {
        free(in);
    }
}

void
conn_in_cache_trim(struct worker *w)
{
    for (uint32_t n = w->low_in; n > 0 && w->free_in != NULL; n--) {
        struct conn_in *in = w->free_in;
        w->free_in = in->next;
        w->nfree_in--;
        free(in);
    }
    w->low_in = w->nfree_in;
}

void
conn_in_cache_free(struct worker *w)
{
    while (w->free_in != NULL) {
        struct conn_in *in = w->free_in;
        w->free_in = in->next;
        free(in);
    }
    w->nfree_in = 0;
}

void
conn_close_fd(struct conn *c)
{
    if (c->fd >= 0) {
        if (c->rev_on || c->wev_on)
            event_del(conn_ev(c));
        c->rev_on = c->wev_on = false;
        close(c->fd);
    }
    c->fd = -1;
    conn_in_detach(c);
}

/* Start a message at the current event: its first byte is req_len bytes back. */
static int
begin_msg(struct conn *c, uint64_t msglen)
{
    struct conn_in *in = c->in;
    struct msg *m = msg_get(&conn_worker(c)->mc);
    uint32_t off;

    if (m == NULL)
        return KM_ERROR;
    in->cur = m;
    in->cur_start = in->in.pabs - msglen;
    in->cur_b = in->in.head;
    in->cur_b_abs = in->in.head_abs;
    chain_locate(&in->cur_b, &in->cur_b_abs, in->cur_start, &off);
    in->cur_sb = in->cur_b;
    in->cur_soff = off;
    return KM_OK;
}

/* A server connection at a reply boundary: set the tokenizer up for the request the next
 * reply answers. KM_ERROR when the server speaks with nothing asked. */
static int
begin_reply(struct conn *c)
{
    struct conn_in *in = c->in;
    struct upstream *u = (struct upstream *)c;
    struct msg *req = u->if_head;

    if (req == NULL)
        return KM_ERROR;
    in->keep_toks = req->parent != NULL &&
                   (req->parent->merge == MERGE_ARRAY || req->parent->merge == MERGE_VALUES);
    c->pool->proto->rsp_init(&in->ps, req, in->keep_toks);
    return KM_OK;
}

static int
parse(struct conn *c, bool is_req, conn_msg_fn done, conn_err_fn bad)
{
    struct conn_in *in = c->in;
    const struct proto *pr = c->pool->proto;

    bool more = false;   /* a token was just reported: the end may follow with no new byte */

    while (more || in->in.pabs < in->in.end_abs) {
        struct ptok t;
        size_t used = 0;
        size_t n = in->in.pb->len - in->in.poff;
        const uint8_t *p = in->in.pb->data + in->in.poff;
        int ev;

        if (!is_req && in->fresh) {
            if (begin_reply(c) != KM_OK) {
                bad(c, "unexpected data from server", false);
                return KM_ERROR;
            }
            in->fresh = false;
        }
        ev = is_req ? pr->req_feed(&in->ps, p, n, &used, &t)
                    : pr->rsp_feed(&in->ps, p, n, &used, &t);
        chain_advance(&in->in, used);
        more = ev == PEV_TOKEN;
        if (ev == PEV_ERROR) {
            bool recoverable = false;
            const char *why = is_req ? pr->req_err(&in->ps, &recoverable) : pr->rsp_err(&in->ps);
            int rc = bad(c, why, recoverable);
            if (rc != KM_OK || !recoverable)
                return KM_ERROR;
            /* the bad line is consumed; carry on with the next request */
            if (in->cur != NULL) {
                msg_put(&conn_worker(c)->mc, in->cur);
                in->cur = NULL;
            }
            chain_consume(&in->in);
            req_start(c);
            continue;
        }
        /* bytes of the message so far (all of it once DONE) */
        uint64_t msglen = is_req ? pr->req_len(&in->ps) : pr->rsp_len(&in->ps);
        if (is_req && msglen > (uint64_t)c->pool->cf->max_request_size) {
            bad(c, "Protocol error: request larger than max_request_size", false);
            return KM_ERROR;
        }
        if (is_req && ev == PEV_AGAIN && pr->req_discarding != NULL && pr->req_discarding(&in->ps)) {
            /* refused bytes: nothing will point into them, so do not keep them */
            chain_consume(&in->in);
        }

        switch (ev) {
        case PEV_AGAIN:
            break;

        case PEV_TOKEN:
        case PEV_DONE: {
            if (in->cur == NULL && begin_msg(c, msglen) != KM_OK) {
                bad(c, "out of memory", false);
                return KM_ERROR;
            }
            struct msg *m = in->cur;
            if (ev == PEV_TOKEN) {
                if (is_req || in->keep_toks) {
                    /* for requests kpos carries the token's offset in the message */
                    struct tok tk = { NULL, 0, t.aux, t.len, is_req ? t.pos : t.kpos, t.klen, t.type };
                    chain_locate(&in->cur_b, &in->cur_b_abs, in->cur_start + t.pos, &tk.off);
                    tk.b = in->cur_b;
                    if (msg_tok_push(m, &tk) != KM_OK) {
                        bad(c, "out of memory", false);
                        return KM_ERROR;
                    }
                }
                break;
            }
            m->raw.b = in->cur_sb;
            m->raw.off = in->cur_soff;
            m->raw.len = msglen;
            span_hold(&m->raw);
            chain_consume(&in->in);
            in->cur = NULL;
            if (!is_req) {
                pr->rsp_done(m, &in->ps);
                in->fresh = true;
            }
            /* done() may read the tokenizer's view of the request; reset it after */
            int rc = done(c, m);
            if (rc != KM_OK)
                return rc;
            if (c->closing)
                return KM_ERROR;
            if (is_req)
                req_start(c);
            break;
        }
        }
    }
    return KM_OK;
}

int
conn_read(struct conn *c, bool is_req, conn_msg_fn done, conn_err_fn bad)
{
    struct conn_in *in;

    if (conn_in_attach(c) != KM_OK) {
        log_error("out of memory reading from fd %d", c->fd);
        return KM_ERROR;
    }
    in = c->in;
    const struct proto *pr = c->pool->proto;

    for (int i = 0; i < READS_PER_WAKEUP; i++) {
        size_t room;
        uint8_t *p = chain_space(&in->in, &conn_worker(c)->bp, &room);
        ssize_t n;

        if (p == NULL) {
            log_error("out of memory reading from fd %d", c->fd);
            return KM_ERROR;
        }
        n = read(c->fd, p, room);
        if (n > 0) {
            chain_commit(&in->in, (size_t)n);
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
    bool idle = in->cur == NULL && in->in.pabs == in->in.end_abs &&
                (is_req ? pr->req_len(&in->ps) == 0 : in->fresh);
    if (idle) {
        if (c->kind == CONN_CLIENT)
            conn_in_detach(c);
        else if (in->in.head != NULL)
            chain_release(&in->in);
    }
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
