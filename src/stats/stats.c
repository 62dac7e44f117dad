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
#define LINGER_MS            1000   /* after the last byte: wait this long for the client's EOF */
#define RETRY_ACCEPT_MS      100    /* pause after running out of descriptors */
#define HOSTNAME_MAX         256

/* The stats of each scope, in stats.def order; the enums make the value getters below
 * fail to compile (-Wswitch) when a stat is added without a value. */
#define X(scope, name, kind, desc) X_##scope(name, kind, desc)
#define X_POOL(name, kind, desc) PSTAT_##name,
#define X_SERVER(name, kind, desc)
enum pool_stat {
#include "stats/stats.def"
    PSTAT_N
};
#undef X_POOL
#undef X_SERVER
#define X_POOL(name, kind, desc)
#define X_SERVER(name, kind, desc) SSTAT_##name,
enum server_stat {
#include "stats/stats.def"
    SSTAT_N
};
#undef X_POOL
#undef X_SERVER

struct stat_info {
    const char *name;   /* JSON key and -D name */
    const char *desc;   /* -D description */
};

#define X_POOL(name, kind, desc) { #name, desc },
#define X_SERVER(name, kind, desc)
static const struct stat_info pool_info[PSTAT_N] = {
#include "stats/stats.def"
};
#undef X_POOL
#undef X_SERVER
#define X_POOL(name, kind, desc)
#define X_SERVER(name, kind, desc) { #name, desc },
static const struct stat_info server_info[SSTAT_N] = {
#include "stats/stats.def"
};
#undef X_POOL
#undef X_SERVER
#undef X

/* One accepted connection whose snapshot is not fully written yet, or is lingering. */
struct stats_conn {
    struct stats_server *ss;
    int fd;
    struct event *ev;          /* write readiness, then read readiness while lingering */
    char *buf;                 /* the snapshot, NULL once sent */
    size_t len, off;           /* its length and the bytes already written */
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
 * Values */

/* A pool's value: the workers' counters summed, or the shared figure. */
static uint64_t
pool_value(const struct proxy *px, const struct pool *p, enum pool_stat id)
{
    uint64_t sum = 0;

    switch (id) {
    case PSTAT_client_connections:
        return atomic_load_explicit(&p->state->nclients, memory_order_relaxed);
    case PSTAT_server_ejects:
        return atomic_load_explicit(&p->state->server_ejects, memory_order_relaxed);
    default:
        break;
    }
    for (uint32_t w = 0; w < p->state->nworkers; w++) {
        const struct pool_stats *st = pool_wstats(p, w);
        switch (id) {
        case PSTAT_client_eof:      sum += ctr_get(&st->client_eof); break;
        case PSTAT_client_err:      sum += ctr_get(&st->client_err); break;
        case PSTAT_forward_error:   sum += ctr_get(&st->forward_error); break;
        case PSTAT_fragments:       sum += ctr_get(&st->fragments); break;
        case PSTAT_client_connections:
        case PSTAT_server_ejects:
        case PSTAT_N:               break;
        }
    }
    return sum;
}

/* A server's value, summed over the workers; signed: server_ejected_at is a timestamp,
 * printed as such. */
static int64_t
server_value(const struct proxy *px, const struct server *s, enum server_stat id)
{
    uint64_t sum = 0;

    if (id == SSTAT_server_ejected_at)
        return atomic_load_explicit(&s->h->ejected_at_us, memory_order_relaxed);
    for (uint32_t w = 0; w < s->state->nworkers; w++) {
        const struct server_stats *st = server_wstats(s, w);
        switch (id) {
        case SSTAT_server_eof:          sum += ctr_get(&st->server_eof); break;
        case SSTAT_server_err:          sum += ctr_get(&st->server_err); break;
        case SSTAT_server_timedout:     sum += ctr_get(&st->server_timedout); break;
        case SSTAT_server_connections:  sum += ctr_get(&st->connections); break;
        case SSTAT_requests:            sum += ctr_get(&st->requests); break;
        case SSTAT_request_bytes:       sum += ctr_get(&st->request_bytes); break;
        case SSTAT_responses:           sum += ctr_get(&st->responses); break;
        case SSTAT_response_bytes:      sum += ctr_get(&st->response_bytes); break;
        case SSTAT_in_queue:            sum += ctr_get(&st->in_queue); break;
        case SSTAT_in_queue_bytes:      sum += ctr_get(&st->in_queue_bytes); break;
        case SSTAT_out_queue:           sum += ctr_get(&st->out_queue); break;
        case SSTAT_out_queue_bytes:     sum += ctr_get(&st->out_queue_bytes); break;
        case SSTAT_server_ejected_at:
        case SSTAT_N:                   break;
        }
    }
    return (int64_t)sum;
}

/* ------------------------------------------------------------------------
 * A growable text buffer; after a failed allocation every append is a no-op and
 * the result is NULL. */

struct jbuf {
    char *p;
    size_t len, cap;
    bool oom;
};

static bool
jb_reserve(struct jbuf *b, size_t more)
{
    if (b->oom)
        return false;
    if (b->len + more + 1 <= b->cap)
        return true;
    size_t cap = b->cap != 0 ? b->cap : 1024;
    while (cap < b->len + more + 1)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (p == NULL) {
        b->oom = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

static void
jb_put(struct jbuf *b, const char *s, size_t n)
{
    if (!jb_reserve(b, n))
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void
jb_puts(struct jbuf *b, const char *s)
{
    jb_put(b, s, strlen(s));
}

static void __attribute__((format(printf, 2, 3)))
jb_printf(struct jbuf *b, const char *fmt, ...)
{
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    ASSERT(n >= 0 && (size_t)n < sizeof(tmp));
    jb_put(b, tmp, (size_t)n);
}

/* s as a JSON string with its quotes: '"' and '\' escaped, control bytes as \u00XX.
 * Other bytes pass unchanged (config text is UTF-8: libyaml checks it). */
static void
jb_str(struct jbuf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    jb_put(b, "\"", 1);
    for (const unsigned char *c = (const unsigned char *)s; *c != '\0'; c++) {
        char esc[6];
        if (*c == '"' || *c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*c;
            jb_put(b, esc, 2);
        } else if (*c < 0x20) {
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[*c >> 4];
            esc[5] = hex[*c & 0xf];
            jb_put(b, esc, 6);
        } else {
            jb_put(b, (const char *)c, 1);
        }
    }
    jb_put(b, "\"", 1);
}

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
    struct jbuf b = { 0 };
    char host[HOSTNAME_MAX + 1];
    const struct server **order = NULL;
    uint32_t order_cap = 0;
    const struct pool **porder = calloc(px->npools + 1, sizeof(*porder));
    uint64_t total = px->nlisteners, curr = px->nlisteners;

    if (porder == NULL)
        return NULL;
    for (uint32_t i = 0; i < px->npools; i++)
        porder[i] = &px->pools[i];
    qsort(porder, px->npools, sizeof(*porder), cmp_pool_order);
    for (uint32_t i = 0; i < px->nworkers; i++) {
        total += ctr_get(&px->workers[i].total_connections);
        curr += ctr_get(&px->workers[i].curr_connections);
    }

    if (gethostname(host, HOSTNAME_MAX) != 0)
        strcpy(host, "localhost");
    host[HOSTNAME_MAX] = '\0';

    jb_puts(&b, "{\"service\":\"keymux\", \"source\":");
    jb_str(&b, host);
    jb_puts(&b, ", \"version\":\"" KM_VERSION "\"");
    jb_printf(&b, ", \"uptime\":%lld, \"timestamp\":%lld",
              (long long)(now > started ? now - started : 0), (long long)now);
    jb_printf(&b, ", \"total_connections\":%" PRIu64 ", \"curr_connections\":%" PRIu64,
              total, curr);

    for (uint32_t i = 0; i < px->npools; i++) {
        const struct pool *p = porder[i];
        jb_puts(&b, i == 0 ? ", " : ",");
        jb_str(&b, p->cf->name);
        jb_puts(&b, ": {");
        for (int k = 0; k < PSTAT_N; k++)
            jb_printf(&b, "\"%s\":%" PRIu64 ", ", pool_info[k].name,
                      pool_value(px, p, (enum pool_stat)k));
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
                jb_puts(&b, ",");
            jb_str(&b, s->ident);
            jb_puts(&b, ": {");
            for (int k = 0; k < SSTAT_N; k++)
                jb_printf(&b, "%s\"%s\":%" PRId64, k == 0 ? "" : ", ", server_info[k].name,
                          server_value(px, s, (enum server_stat)k));
            jb_puts(&b, "}");
        }
        jb_puts(&b, "}");
    }
    jb_puts(&b, "}\n");
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
        fprintf(out, "  %-20s\"%s\"\n", pool_info[k].name, pool_info[k].desc);
    fprintf(out, "\nserver stats:\n");
    for (int k = 0; k < SSTAT_N; k++)
        fprintf(out, "  %-20s\"%s\"\n", server_info[k].name, server_info[k].desc);
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

/* The whole snapshot is out: half-close and linger for the client's EOF. */
static void
sconn_sent(struct stats_conn *sc)
{
    free(sc->buf);
    sc->buf = NULL;
    shutdown(sc->fd, SHUT_WR);
    if (drain_input(sc->fd)) {
        sconn_free(sc);
        return;
    }
    sc->deadline_ms = km_now_ms() + LINGER_MS;
    if (sconn_wait(sc, EV_READ) != KM_OK)
        sconn_free(sc);
}

static void
on_conn_event(int fd, short what, void *arg)
{
    struct stats_conn *sc = arg;

    if ((what & EV_TIMEOUT) != 0 || km_now_ms() >= sc->deadline_ms) {
        if (sc->buf != NULL)
            log_warn("stats: client too slow, %zu of %zu bytes sent", sc->off, sc->len);
        sconn_free(sc);
        return;
    }
    if (sc->buf == NULL) {
        /* lingering */
        if (drain_input(fd))
            sconn_free(sc);
        else if (sconn_wait(sc, EV_READ) != KM_OK)
            sconn_free(sc);
        return;
    }
    int r = send_some(fd, sc->buf, sc->len, &sc->off);
    if (r == KM_OK)
        sconn_sent(sc);
    else if (r == KM_ERROR || sconn_wait(sc, EV_WRITE) != KM_OK)
        sconn_free(sc);
}

/* A new stats client: snapshot, write, and keep it only if the socket was full. */
static void
serve(struct stats_server *ss, int fd)
{
    if (net_nonblock(fd) != 0 || ss->nconns >= MAX_PENDING) {
        if (ss->nconns >= MAX_PENDING)
            log_warn("stats: %u snapshots still being sent; refusing a client", ss->nconns);
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
    sc->deadline_ms = km_now_ms() + SEND_MS;
    sc->buf = stats_json_at(ss->px, ss->started, time(NULL), &sc->len);
    if (sc->buf == NULL) {
        log_error("stats: out of memory building a snapshot");
        sconn_free(sc);
        return;
    }
    int r = send_some(fd, sc->buf, sc->len, &sc->off);
    if (r == KM_OK)
        sconn_sent(sc);
    else if (r == KM_ERROR || sconn_wait(sc, EV_WRITE) != KM_OK)
        sconn_free(sc);
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
