/* src/proxy/conn.c: what client and server connections share: events, and reading into the
 * input chain of the connection's reader (src/proto/reader.c turns it into messages). */
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

void
conn_start_reading(struct conn *c)
{
    if (c->rev_on || c->fd < 0)
        return;
    c->rev_on = true;
    watch(c);
}

/* What the connection's reader works with: its pool's protocol and limits. */
static struct reader_env
reader_env(struct conn *c)
{
    struct pool *p = conn_pool(c);
    struct reader_env env = { p->proto, &p->limits, (uint64_t)p->cf->max_request_size,
                              &conn_worker(c)->mc };
    return env;
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
    reader_init(&in->rd);
    in->next = NULL;
    c->in = in;
    if (c->kind == CONN_CLIENT) {
        struct reader_env env = reader_env(c);
        reader_req_start(&in->rd, &env);
    }
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
    reader_release(&in->rd, &w->mc);
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

int
conn_read(struct conn *c, bool is_req, const struct reader_ops *ops)
{
    struct conn_in *in;

    if (conn_in_attach(c) != KM_OK) {
        log_error("out of memory reading from fd %d", c->fd);
        return KM_ERROR;
    }
    in = c->in;
    struct reader_env env = reader_env(c);

    for (int i = 0; i < READS_PER_WAKEUP; i++) {
        size_t room;
        uint8_t *p = chain_space(&in->rd.in, &conn_worker(c)->bp, &room);
        ssize_t n;

        if (p == NULL) {
            log_error("out of memory reading from fd %d", c->fd);
            return KM_ERROR;
        }
        n = read(c->fd, p, room);
        if (n > 0) {
            chain_commit(&in->rd.in, (size_t)n);
            int rc = reader_parse(&in->rd, &env, is_req, ops, c);
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
    if (reader_idle(&in->rd, &env, is_req)) {
        if (c->kind == CONN_CLIENT)
            conn_in_detach(c);
        else if (in->rd.in.head != NULL)
            chain_release(&in->rd.in);
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
