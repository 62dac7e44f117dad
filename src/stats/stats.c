/* src/stats/stats.c: the JSON snapshot of every counter, the stats port that serves it, and -D.
 *
 *   stats port (listening fd, read event)
 *     | accept (bounded per wakeup)
 *     v
 *   snapshot = stats_json_at(now)      one malloc'd document per connection
 *     | write what the socket takes
 *     v
 *   [stats_conn: buf, off] --write event--> sent --shutdown(WR)--> linger until the
 *                                           client's EOF, then close
 *
 * A snapshot is written at once when the socket takes it (the usual case); otherwise
 * the connection keeps its document and a write event until it is sent, bounded by
 * SEND_MS from accept. After the last byte keymux half-closes and reads (and drops)
 * whatever the client sent until its EOF, so that unread input never turns the close
 * into a reset that could destroy the document in flight. Counters are read live:
 * each worker's own counters (relaxed atomic words that only it writes) are summed,
 * the shared figures (clients, ejections) read from the pools; nothing is aggregated
 * on a timer, so -i (the aggregation interval) has nothing to pace and is only
 * recorded, and a snapshot never waits for a worker.
 *
 * The document has twemproxy 0.5.0's shape, key order and separators, so tools that
 * parse nutcracker's output (even with regular expressions) read keymux's unchanged:
 *   {"service":"keymux", "source":"host", "version":"v", "uptime":1, "timestamp":2,
 *    "total_connections":3, "curr_connections":4, "pool": {"client_eof":0, ...,
 *    "fragments":0, "server": {"server_eof":0, ..., "out_queue_bytes":0},"server2": {...}},
 *    "pool2": {...}}\n
 * Pools, and the servers of each pool, come in nutcracker's order, which is its
 * duplicate-check sort: shorter name first, then bytewise (config order is not kept).
 * keymux's own figures (reloads, config generation) are not added here, where they would
 * change the text: they are in INFO proxy and memcached stats. Unlike nutcracker, pool
 * and server names are escaped, so the document is always valid JSON.
 */
#include "stats/stats.h"
#include "stats/http.h"
#include "stats/metrics.h"
#include "stats/text.h"
#include "stats/values.h"

#include "core/clock.h"
#include "core/common.h"
#include "core/log.h"
#include "core/net.h"
#include "pool/pool.h"
#include "proxy/proxy.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define STATS_BACKLOG        128
#define ACCEPTS_PER_WAKEUP   16
#define MAX_PENDING          64     /* connections still being written to at once */
#define SEND_MS              5000   /* from accept to the last byte written */
#define SNIFF_MS             25     /* how long a connection that sends nothing waits for its
                                       JSON: an HTTP client's request line comes at once */
#define LINGER_MS            1000   /* after the last byte: wait this long for the client's EOF */
#define RETRY_ACCEPT_MS      100    /* pause after running out of descriptors */
#define HOSTNAME_MAX         256

/* One accepted connection whose snapshot is not fully written yet, or is lingering. */
enum sconn_state {
    SC_READ,                   /* waiting for the first bytes, or an HTTP request's rest */
    SC_SEND,                   /* writing buf */
    SC_LINGER,                 /* sent: reading (and dropping) until the client's EOF */
};

struct stats_conn {
    struct stats_server *ss;
    int fd;
    enum sconn_state state;
    struct event *ev;          /* what the state waits for, with the deadline */
    char *in;                  /* SC_READ: the bytes read so far (HTTP_MAX_REQUEST at most) */
    size_t inlen;
    char *buf;                 /* SC_SEND: the answer */
    size_t len, off;           /* its length and the bytes already written */
    uint64_t accepted_ms;      /* monotonic */
    uint64_t deadline_ms;      /* monotonic: give up and close at this time */
    struct stats_conn *prev, *next;
};

struct stats_server {
    const struct proxy *px;
    struct event_base *base;
    int fd;                    /* listening socket */
    struct event *lev;         /* its read event */
    struct event *retry;       /* re-arms lev after running out of descriptors */
    time_t started;            /* wall clock at stats_start, for uptime */
    int interval_ms;           /* -i, recorded only: snapshots are live */
    struct stats_conn *conns;  /* connections being written to or lingering */
    uint32_t nconns;
};

/* ------------------------------------------------------------------------
 * The snapshot */

/* nutcracker's order of names: shorter first, then bytewise; ties keep config order. */
static int
cmp_names(const char *x, uint32_t xi, const char *y, uint32_t yi)
{
    size_t lx = strlen(x), ly = strlen(y);
    if (lx != ly)
        return lx < ly ? -1 : 1;
    int c = memcmp(x, y, lx);
    if (c != 0)
        return c;
    return xi < yi ? -1 : xi > yi;
}

static int
cmp_server_order(const void *a, const void *b)
{
    const struct server *x = *(const struct server *const *)a;
    const struct server *y = *(const struct server *const *)b;
    return cmp_names(x->ident, x->idx, y->ident, y->idx);
}

static int
cmp_pool_order(const void *a, const void *b)
{
    const struct pool *x = *(const struct pool *const *)a;
    const struct pool *y = *(const struct pool *const *)b;
    return cmp_names(x->cf->name, x->idx, y->cf->name, y->idx);
}

/* As stats_json, with uptime counted from started and the timestamp now (unix seconds). */
char *
stats_json_at(const struct proxy *px, time_t started, time_t now, size_t *len)
{
    struct text b = { 0 };
    char host[HOSTNAME_MAX + 1];
    const struct server **order = NULL;
    uint32_t order_cap = 0;
    const struct pool **porder = calloc(px->npools + 1, sizeof(*porder));
    uint64_t total, curr;

    if (porder == NULL)
        return NULL;
    for (uint32_t i = 0; i < px->npools; i++)
        porder[i] = &px->pools[i];
    qsort(porder, px->npools, sizeof(*porder), cmp_pool_order);
    stats_connections(px, &total, &curr);

    if (gethostname(host, HOSTNAME_MAX) != 0)
        strcpy(host, "localhost");
    host[HOSTNAME_MAX] = '\0';

    text_puts(&b, "{\"service\":\"keymux\", \"source\":");
    text_json_str(&b, host);
    text_puts(&b, ", \"version\":\"" KM_VERSION "\"");
    text_printf(&b, ", \"uptime\":%lld, \"timestamp\":%lld",
              (long long)(now > started ? now - started : 0), (long long)now);
    text_printf(&b, ", \"total_connections\":%" PRIu64 ", \"curr_connections\":%" PRIu64,
              total, curr);

    for (uint32_t i = 0; i < px->npools; i++) {
        const struct pool *p = porder[i];
        text_puts(&b, i == 0 ? ", " : ",");
        text_json_str(&b, p->cf->name);
        text_puts(&b, ": {");
        for (int k = 0; k < PSTAT_N; k++)
            text_printf(&b, "\"%s\":%" PRIu64 ", ", stats_pool_info[k].name,
                      stats_pool_value(px, p, (enum pool_stat)k));
        if (p->nservers > order_cap) {
            const struct server **o = realloc(order, p->nservers * sizeof(*o));
            if (o == NULL) {
                b.oom = true;
                break;
            }
            order = o;
            order_cap = p->nservers;
        }
        for (uint32_t j = 0; j < p->nservers; j++)
            order[j] = &p->servers[j];
        qsort(order, p->nservers, sizeof(*order), cmp_server_order);
        for (uint32_t j = 0; j < p->nservers; j++) {
            const struct server *s = order[j];
            if (j != 0)
                text_puts(&b, ",");
            text_json_str(&b, s->ident);
            text_puts(&b, ": {");
            for (int k = 0; k < SSTAT_N; k++)
                text_printf(&b, "%s\"%s\":%" PRId64, k == 0 ? "" : ", ", stats_server_info[k].name,
                          stats_server_value(px, s, (enum server_stat)k));
            text_puts(&b, "}");
        }
        text_puts(&b, "}");
    }
    text_puts(&b, "}\n");
    free(order);
    free(porder);

    if (b.oom) {
        free(b.p);
        return NULL;
    }
    *len = b.len;
    return b.p;
}

char *
stats_json(const struct proxy *px, size_t *len)
{
    time_t now = time(NULL);
    return stats_json_at(px, now, now, len);
}

void
stats_describe(FILE *out)
{
    fprintf(out, "pool stats:\n");
    for (int k = 0; k < PSTAT_N; k++)
        fprintf(out, "  %-20s\"%s\"\n", stats_pool_info[k].name, stats_pool_info[k].desc);
    fprintf(out, "\nserver stats:\n");
    for (int k = 0; k < SSTAT_N; k++)
        fprintf(out, "  %-20s\"%s\"\n", stats_server_info[k].name, stats_server_info[k].desc);
}

/* ------------------------------------------------------------------------
 * The stats port */

static void
sconn_free(struct stats_conn *sc)
{
    struct stats_server *ss = sc->ss;
    if (sc->prev != NULL)
        sc->prev->next = sc->next;
    else
        ss->conns = sc->next;
    if (sc->next != NULL)
        sc->next->prev = sc->prev;
    ss->nconns--;
    if (sc->ev != NULL)
        event_free(sc->ev);
    close(sc->fd);
    free(sc->in);
    free(sc->buf);
    free(sc);
}

/* Read and drop what the client sent. True when it reached EOF or failed (time to
 * close), false when the socket has nothing more for now. */
static bool
drain_input(int fd)
{
    char junk[4096];
    for (int i = 0; i < 16; i++) {
        ssize_t n = recv(fd, junk, sizeof(junk), 0);
        if (n == 0)
            return true;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno != EAGAIN && errno != EWOULDBLOCK;
        }
    }
    return false;
}

/* Write what the socket takes. KM_OK when everything is out, KM_AGAIN when the socket
 * is full, KM_ERROR when the client is gone. */
static int
send_some(int fd, const char *buf, size_t len, size_t *off)
{
    while (*off < len) {
        ssize_t n = send(fd, buf + *off, len - *off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return KM_AGAIN;
            return KM_ERROR;
        }
        *off += (size_t)n;
    }
    return KM_OK;
}

static void on_conn_event(int fd, short what, void *arg);

/* Wait on fd for `what` with a timeout that ends at the connection's deadline. */
static int
sconn_wait(struct stats_conn *sc, short what)
{
    uint64_t now = km_now_ms();
    uint64_t left = sc->deadline_ms > now ? sc->deadline_ms - now : 0;
    struct timeval tv = { (time_t)(left / 1000), (suseconds_t)((left % 1000) * 1000) };

    if (sc->ev != NULL)
        event_free(sc->ev);
    sc->ev = event_new(sc->ss->base, sc->fd, what, on_conn_event, sc);
    if (sc->ev == NULL || event_add(sc->ev, &tv) != 0)
        return KM_ERROR;
    return KM_OK;
}

/* The whole answer is out: half-close and linger for the client's EOF. */
static void
sconn_sent(struct stats_conn *sc)
{
    free(sc->buf);
    sc->buf = NULL;
    sc->state = SC_LINGER;
    shutdown(sc->fd, SHUT_WR);
    if (drain_input(sc->fd)) {
        sconn_free(sc);
        return;
    }
    sc->deadline_ms = km_now_ms() + LINGER_MS;
    if (sconn_wait(sc, EV_READ) != KM_OK)
        sconn_free(sc);
}

/* Write buf (taken over; NULL: out of memory, and the connection closes). */
static void
sconn_send(struct stats_conn *sc, char *buf, size_t len)
{
    free(sc->in);
    sc->in = NULL;
    if (buf == NULL) {
        log_error("stats: out of memory building an answer");
        sconn_free(sc);
        return;
    }
    sc->state = SC_SEND;
    sc->buf = buf;
    sc->len = len;
    sc->off = 0;
    sc->deadline_ms = sc->accepted_ms + SEND_MS;
    int r = send_some(sc->fd, sc->buf, sc->len, &sc->off);
    if (r == KM_OK)
        sconn_sent(sc);
    else if (r == KM_ERROR || sconn_wait(sc, EV_WRITE) != KM_OK)
        sconn_free(sc);
}

static void
send_json(struct stats_conn *sc)
{
    size_t len = 0;
    char *doc = stats_json_at(sc->ss->px, sc->ss->started, time(NULL), &len);

    sconn_send(sc, doc, len);
}

/* The answer to an HTTP request: /metrics, /stats, /health. */
static void
send_http(struct stats_conn *sc, const struct http_req *req, bool bad)
{
    const struct stats_server *ss = sc->ss;
    bool head = !bad && strcmp(req->method, "HEAD") == 0;
    struct text b = { 0 };
    char *body = NULL;
    size_t blen = 0;
    int status = 200;
    const char *ctype = "text/plain; charset=utf-8";

    if (bad) {
        status = 400;
    } else if (!head && strcmp(req->method, "GET") != 0) {
        status = 405;
    } else if (strcmp(req->path, "/metrics") == 0) {
        body = stats_metrics(ss->px, ss->started, time(NULL), &blen);
        ctype = "text/plain; version=0.0.4; charset=utf-8";
    } else if (strcmp(req->path, "/stats") == 0 || strcmp(req->path, "/") == 0) {
        /* "/" too: what `curl host:port` got from twemproxy, now as HTTP */
        body = stats_json_at(ss->px, ss->started, time(NULL), &blen);
        ctype = "application/json";
    } else if (strcmp(req->path, "/health") == 0) {
        bool ok = false;
        body = stats_health(ss->px, &ok, &blen);
        status = ok ? 200 : 503;
    } else {
        status = 404;
    }
    if (status == 400 || status == 404 || status == 405) {
        static const char *const text[] = {
            "bad request\n", "not found: the stats port serves /metrics, /stats and /health\n",
            "only GET and HEAD are served\n" };
        const char *t = text[status == 400 ? 0 : status == 404 ? 1 : 2];
        http_answer(&b, status, ctype, t, strlen(t), head);
    } else if (body != NULL) {
        http_answer(&b, status, ctype, body, blen, head);
    } else {
        b.oom = true;
    }
    free(body);
    size_t len = 0;
    char *out = text_take(&b, &len);
    sconn_send(sc, out, len);
}

/* SC_READ: read what came; decide between the JSON client (anything but an HTTP request
 * line) and HTTP, and answer once an HTTP request is complete. */
static void
sconn_read(struct stats_conn *sc)
{
    for (;;) {
        char tmp[2048];
        size_t room = HTTP_MAX_REQUEST - sc->inlen;
        ssize_t n = recv(sc->fd, tmp, room < sizeof(tmp) ? room : sizeof(tmp), 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n < 0) {
            sconn_free(sc);
            return;
        }
        if (n == 0) {
            /* EOF: a client that sent nothing, or not HTTP, still gets the JSON; a
             * request cut short is a bad one */
            struct http_req req = { 0 };
            if (sc->inlen > 0 && http_sniff(sc->in, sc->inlen) == HTTP_SNIFF_YES)
                send_http(sc, &req, true);
            else
                send_json(sc);
            return;
        }
        char *in = realloc(sc->in, sc->inlen + (size_t)n);
        if (in == NULL) {
            log_error("stats: out of memory reading a request");
            sconn_free(sc);
            return;
        }
        memcpy(in + sc->inlen, tmp, (size_t)n);
        sc->in = in;
        sc->inlen += (size_t)n;
        if (sc->inlen >= HTTP_MAX_REQUEST)
            break;
    }
    if (sc->inlen == 0) {
        if (sconn_wait(sc, EV_READ) != KM_OK)
            sconn_free(sc);
        return;
    }
    switch (http_sniff(sc->in, sc->inlen)) {
    case HTTP_SNIFF_NO:
        send_json(sc);   /* what it sent is dropped, as twemproxy drops it */
        return;
    case HTTP_SNIFF_MORE:
        break;
    case HTTP_SNIFF_YES: {
        struct http_req req;
        enum http_status st = http_parse(sc->in, sc->inlen, &req);
        if (st != HTTP_MORE) {
            send_http(sc, &req, st == HTTP_BAD);
            return;
        }
        break;
    }
    }
    /* more to come: the request may take until the connection's deadline */
    sc->deadline_ms = sc->accepted_ms + SEND_MS;
    if (sconn_wait(sc, EV_READ) != KM_OK)
        sconn_free(sc);
}

static void
on_conn_event(int fd, short what, void *arg)
{
    struct stats_conn *sc = arg;

    if ((what & EV_TIMEOUT) != 0 || km_now_ms() >= sc->deadline_ms) {
        if (sc->state == SC_READ && sc->inlen == 0) {
            send_json(sc);   /* nothing sent: a twemproxy client */
            return;
        }
        if (sc->state == SC_READ)
            log_warn("stats: closing a client whose request did not come whole in %d ms",
                     SEND_MS);
        else if (sc->state == SC_SEND)
            log_warn("stats: client too slow, %zu of %zu bytes sent", sc->off, sc->len);
        sconn_free(sc);
        return;
    }
    switch (sc->state) {
    case SC_READ:
        sconn_read(sc);
        return;
    case SC_LINGER:
        if (drain_input(fd))
            sconn_free(sc);
        else if (sconn_wait(sc, EV_READ) != KM_OK)
            sconn_free(sc);
        return;
    case SC_SEND:
        break;
    }
    int r = send_some(fd, sc->buf, sc->len, &sc->off);
    if (r == KM_OK)
        sconn_sent(sc);
    else if (r == KM_ERROR || sconn_wait(sc, EV_WRITE) != KM_OK)
        sconn_free(sc);
}

/* A new stats client: the JSON at once when it sends nothing within SNIFF_MS (or
 * anything but an HTTP request line), else the HTTP answer to its request. */
static void
serve(struct stats_server *ss, int fd)
{
    if (net_nonblock(fd) != 0 || ss->nconns >= MAX_PENDING) {
        if (ss->nconns >= MAX_PENDING)
            log_warn("stats: %u clients still being served; refusing a client", ss->nconns);
        close(fd);
        return;
    }
    struct stats_conn *sc = calloc(1, sizeof(*sc));
    if (sc == NULL) {
        close(fd);
        return;
    }
    sc->ss = ss;
    sc->fd = fd;
    sc->next = ss->conns;
    if (ss->conns != NULL)
        ss->conns->prev = sc;
    ss->conns = sc;
    ss->nconns++;
    sc->state = SC_READ;
    sc->accepted_ms = km_now_ms();
    sc->deadline_ms = sc->accepted_ms + SNIFF_MS;
    sconn_read(sc);
}

static void
on_retry(int fd, short what, void *arg)
{
    struct stats_server *ss = arg;
    (void)fd;
    (void)what;
    if (event_add(ss->lev, NULL) != 0)
        log_error("stats: cannot watch the stats port again");
}

static void
on_accept(int lfd, short what, void *arg)
{
    struct stats_server *ss = arg;
    (void)what;

    for (int i = 0; i < ACCEPTS_PER_WAKEUP; i++) {
        int fd = accept(lfd, NULL, NULL);
        if (fd >= 0) {
            serve(ss, fd);
            continue;
        }
        if (errno == EINTR)
            continue;
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            /* the pending connection would wake us again at once: pause this port */
            log_error("stats: accept: %s; pausing the stats port", strerror(errno));
            struct timeval tv = { 0, RETRY_ACCEPT_MS * 1000 };
            event_del(ss->lev);
            if (event_add(ss->retry, &tv) != 0)
                event_add(ss->lev, NULL);
        }
        return;
    }
}

struct stats_server *
stats_start(struct event_base *base, const struct proxy *px, const char *addr, int port,
            int interval_ms, char *err, size_t errlen)
{
    struct stats_server *ss = calloc(1, sizeof(*ss));
    if (ss == NULL) {
        snprintf(err, errlen, "stats: out of memory");
        return NULL;
    }
    ss->px = px;
    ss->base = base;
    ss->started = time(NULL);
    ss->interval_ms = interval_ms;
    ss->fd = net_listen_tcp(addr, port, STATS_BACKLOG, false);
    if (ss->fd < 0) {
        snprintf(err, errlen, "cannot listen for stats on %s:%d: %s", addr, port,
                 strerror(-ss->fd));
        free(ss);
        return NULL;
    }
    ss->lev = event_new(base, ss->fd, EV_READ | EV_PERSIST, on_accept, ss);
    ss->retry = evtimer_new(base, on_retry, ss);
    if (ss->lev == NULL || ss->retry == NULL || event_add(ss->lev, NULL) != 0) {
        snprintf(err, errlen, "cannot watch the stats port %s:%d", addr, port);
        stats_stop(ss);
        return NULL;
    }
    log_notice("stats: listening on %s:%d", addr, port);
    return ss;
}

void
stats_stop(struct stats_server *ss)
{
    if (ss == NULL)
        return;
    while (ss->conns != NULL)
        sconn_free(ss->conns);
    if (ss->lev != NULL)
        event_free(ss->lev);
    if (ss->retry != NULL)
        event_free(ss->retry);
    if (ss->fd >= 0)
        close(ss->fd);
    free(ss);
}
