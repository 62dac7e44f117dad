/* bench/kmload.c: load generator for the keymux benchmarks (Redis or memcached text protocol; closed-loop, paced, burst and idle modes; one epoll thread; JSON on stdout). */

/*
 * Modes
 *
 *   run    closed loop: --conns connections each keep --pipeline requests
 *          outstanding until --requests replies are in. Also the preloader
 *          (--op set --seq) and the single big MGET timer (--conns 1
 *          --pipeline 1 --keys 10000 --lat-list).
 *   paced  open loop: --rate requests per second for --duration seconds,
 *          spread round robin over --conns connections; each latency is taken
 *          from the moment the request was due, not from when it left, so a
 *          stall is charged to every request it delayed.
 *   burst  --clients connections are opened (at most --window handshakes at
 *          once); when all are up, each sends one request, reads its reply and
 *          closes.
 *   idle   --clients connections are opened and held; one JSON line is printed
 *          when all are up, then the program waits for EOF on stdin (or
 *          --duration seconds) and closes them.
 *
 * Every reply is parsed and judged against what was asked: the right type, the
 * right number of values, values of --vsize bytes when --check is given. Misses
 * (nil, absent memcached value) are counted apart from error replies and from
 * wrong replies. Every mode stops at --timeout seconds whatever happens.
 */

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

enum proto { PROTO_REDIS, PROTO_MC };
enum op { OP_GET, OP_SET, OP_MGET, OP_MSET };
enum mode { MODE_RUN, MODE_PACED, MODE_BURST, MODE_IDLE };
enum cstate { CS_CONNECTING, CS_OPEN, CS_CLOSED };
enum verdict { V_OK, V_MISS, V_ERR, V_WRONG };

#define MAX_LAT_SAMPLES (8u << 20)
#define READ_CHUNK      (64u << 10)
#define ERRTEXT_MAX     200

struct opts {
    const char *host;
    int port;
    enum proto proto;
    enum op op;
    enum mode mode;
    const char *prefix;
    unsigned keys;           /* keys per MGET / MSET / memcached get */
    unsigned vsize;          /* value bytes (SET, and the size --check expects) */
    unsigned long keyspace;  /* key numbers are 0 .. keyspace-1 */
    unsigned conns;
    unsigned pipeline;
    unsigned long requests;
    double rate;
    double duration;
    unsigned clients;
    unsigned window;
    double timeout;
    bool seq;
    bool check;
    bool lat_list;
    uint64_t seed;
};

struct bytes {
    char *p;
    size_t off;  /* first byte not yet consumed */
    size_t len;  /* bytes held */
    size_t cap;
};

struct lconn {
    int fd;
    enum cstate state;
    bool pollout;
    unsigned outstanding;
    struct bytes in;
    struct bytes out;
    uint64_t *ts;           /* FIFO of the due/send times of outstanding requests */
    unsigned ts_head;
    unsigned ts_n;
    unsigned ts_cap;
};

/* What one parsed reply contained; zeroed before each parse attempt. */
struct rstat {
    char top;               /* first byte of the reply */
    long elements;          /* top-level array length (-1: nil array) */
    unsigned bulks;         /* values present */
    unsigned nils;          /* values absent */
    unsigned badsize;       /* values whose size is not vsize */
    unsigned errors;        /* error replies inside */
    bool status_ok;         /* +OK / STORED */
    char errtext[ERRTEXT_MAX];
};

struct counts {
    unsigned long sent;
    unsigned long done;
    unsigned long ok;
    unsigned long misses;
    unsigned long errors;
    unsigned long wrong;
    unsigned long conn_errors;
    unsigned long connect_failed;
    unsigned long connected;
    unsigned long dropped;
    char first_error[ERRTEXT_MAX];
};

struct load {
    struct opts o;
    int ep;
    struct sockaddr_in addr;
    struct lconn *c;
    unsigned nconn;
    char *value;
    uint64_t rng;
    unsigned long seqno;
    uint64_t *lat;
    unsigned long nlat;
    struct counts n;
    uint64_t t_start;
    uint64_t t_first_send;
    uint64_t t_last_reply;
    uint64_t deadline;
    bool timed_out;
    uint64_t interval;      /* paced: ns between two due times */
    unsigned long total;    /* paced: requests to send */
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *what)
{
    fprintf(stderr, "kmload: %s: %s\n", what, strerror(errno));
    exit(2);
}

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n);
    if (q == NULL) {
        fprintf(stderr, "kmload: out of memory (%zu bytes)\n", n);
        exit(2);
    }
    return q;
}

static uint64_t rnd(struct load *L)
{
    uint64_t x = L->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    L->rng = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static void bytes_reserve(struct bytes *b, size_t extra)
{
    if (b->len + extra <= b->cap)
        return;
    if (b->off > 0 && b->len - b->off + extra <= b->cap) {
        memmove(b->p, b->p + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
        return;
    }
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + extra)
        cap *= 2;
    b->p = xrealloc(b->p, cap);
    b->cap = cap;
}

static void bytes_put(struct bytes *b, const void *p, size_t n)
{
    bytes_reserve(b, n);
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

static void bytes_printf(struct bytes *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void bytes_printf(struct bytes *b, const char *fmt, ...)
{
    va_list ap;
    bytes_reserve(b, 64);
    for (;;) {
        va_start(ap, fmt);
        int r = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (r < 0)
            die("vsnprintf");
        if ((size_t)r < b->cap - b->len) {
            b->len += (size_t)r;
            return;
        }
        bytes_reserve(b, (size_t)r + 1);
    }
}

static void bytes_free(struct bytes *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

/* ---------------------------------------------------------------- requests */

static unsigned long next_key(struct load *L)
{
    if (L->o.seq)
        return L->seqno++ % L->o.keyspace;
    return (unsigned long)(rnd(L) % L->o.keyspace);
}

static int fmt_key(struct load *L, char *buf, size_t cap)
{
    return snprintf(buf, cap, "%s%012lu", L->o.prefix, next_key(L));
}

static void build_redis(struct load *L, struct bytes *b)
{
    char key[300];
    int kl;
    unsigned i;

    switch (L->o.op) {
    case OP_GET:
        kl = fmt_key(L, key, sizeof(key));
        bytes_printf(b, "*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n", kl, key);
        break;
    case OP_SET:
        kl = fmt_key(L, key, sizeof(key));
        bytes_printf(b, "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%u\r\n", kl, key, L->o.vsize);
        bytes_put(b, L->value, L->o.vsize);
        bytes_put(b, "\r\n", 2);
        break;
    case OP_MGET:
        bytes_printf(b, "*%u\r\n$4\r\nMGET\r\n", L->o.keys + 1);
        for (i = 0; i < L->o.keys; i++) {
            kl = fmt_key(L, key, sizeof(key));
            bytes_printf(b, "$%d\r\n%s\r\n", kl, key);
        }
        break;
    case OP_MSET:
        bytes_printf(b, "*%u\r\n$4\r\nMSET\r\n", 2 * L->o.keys + 1);
        for (i = 0; i < L->o.keys; i++) {
            kl = fmt_key(L, key, sizeof(key));
            bytes_printf(b, "$%d\r\n%s\r\n$%u\r\n", kl, key, L->o.vsize);
            bytes_put(b, L->value, L->o.vsize);
            bytes_put(b, "\r\n", 2);
        }
        break;
    }
}

static void build_mc(struct load *L, struct bytes *b)
{
    char key[300];
    unsigned i;

    switch (L->o.op) {
    case OP_GET:
    case OP_MGET:
        bytes_put(b, "get", 3);
        for (i = 0; i < (L->o.op == OP_GET ? 1u : L->o.keys); i++) {
            fmt_key(L, key, sizeof(key));
            bytes_printf(b, " %s", key);
        }
        bytes_put(b, "\r\n", 2);
        break;
    case OP_SET:
        fmt_key(L, key, sizeof(key));
        bytes_printf(b, "set %s 0 0 %u\r\n", key, L->o.vsize);
        bytes_put(b, L->value, L->o.vsize);
        bytes_put(b, "\r\n", 2);
        break;
    case OP_MSET:
        break; /* refused at option parsing */
    }
}

/* ---------------------------------------------------------------- replies */

static void note_err(struct rstat *st, const char *p, size_t n)
{
    if (st->errtext[0] != '\0')
        return;
    if (n >= ERRTEXT_MAX)
        n = ERRTEXT_MAX - 1;
    memcpy(st->errtext, p, n);
    st->errtext[n] = '\0';
}

/* Offset of the CR of the first CRLF in b[0..n), -1 when none yet, -2 when a
 * bare LF comes first. */
static long find_crlf(const char *b, size_t n)
{
    const char *nl = memchr(b, '\n', n);
    if (nl == NULL)
        return -1;
    if (nl == b || nl[-1] != '\r')
        return -2;
    return (long)(nl - 1 - b);
}

static bool parse_long(const char *p, const char *end, long *out)
{
    bool neg = false;
    long v = 0;
    if (p < end && *p == '-') {
        neg = true;
        p++;
    }
    if (p == end)
        return false;
    for (; p < end; p++) {
        if (*p < '0' || *p > '9' || v > (1L << 40))
            return false;
        v = v * 10 + (*p - '0');
    }
    *out = neg ? -v : v;
    return true;
}

/* Parse one RESP reply from b[0..n): bytes consumed, 0 when incomplete, -1
 * when malformed. */
static long resp_parse(const struct load *L, const char *b, size_t n, struct rstat *st, int depth)
{
    long e, v, pos, i, r;

    if (n == 0)
        return 0;
    e = find_crlf(b, n);
    if (e == -1)
        return n > (1u << 20) ? -1 : 0;
    if (e < 1)
        return -1;
    if (depth == 0)
        st->top = b[0];
    switch (b[0]) {
    case '+':
        if (depth == 0 && e == 3 && memcmp(b + 1, "OK", 2) == 0)
            st->status_ok = true;
        return e + 2;
    case '-':
        st->errors++;
        note_err(st, b, (size_t)e);
        return e + 2;
    case ':':
        return parse_long(b + 1, b + e, &v) ? e + 2 : -1;
    case '$':
        if (!parse_long(b + 1, b + e, &v))
            return -1;
        if (v < 0) {
            st->nils++;
            return e + 2;
        }
        if ((size_t)(e + 2 + v + 2) > n)
            return 0;
        if (b[e + 2 + v] != '\r' || b[e + 2 + v + 1] != '\n')
            return -1;
        st->bulks++;
        if (L->o.check && (unsigned long)v != L->o.vsize)
            st->badsize++;
        return e + 2 + v + 2;
    case '*':
        if (!parse_long(b + 1, b + e, &v) || depth > 4)
            return -1;
        if (depth == 0)
            st->elements = v;
        pos = e + 2;
        for (i = 0; i < v; i++) {
            r = resp_parse(L, b + pos, n - (size_t)pos, st, depth + 1);
            if (r <= 0)
                return r;
            pos += r;
        }
        return pos;
    default:
        return -1;
    }
}

static bool starts(const char *b, long n, const char *s)
{
    size_t k = strlen(s);
    return (size_t)n >= k && memcmp(b, s, k) == 0;
}

/* Parse one memcached text reply to a get or a set: bytes consumed, 0 when
 * incomplete, -1 when malformed. */
static long mc_parse(const struct load *L, const char *b, size_t n, struct rstat *st)
{
    size_t pos = 0;
    long e;

    for (;;) {
        e = find_crlf(b + pos, n - pos);
        if (e == -1)
            return n - pos > (1u << 20) ? -1 : 0;
        if (e == -2)
            return -1;
        const char *line = b + pos;
        if (pos == 0)
            st->top = line[0];
        if (starts(line, e, "ERROR") || starts(line, e, "SERVER_ERROR") ||
            starts(line, e, "CLIENT_ERROR")) {
            st->errors++;
            note_err(st, line, (size_t)e);
            return (long)pos + e + 2;
        }
        if (L->o.op == OP_SET) {
            if (e == 6 && memcmp(line, "STORED", 6) == 0)
                st->status_ok = true;
            else
                note_err(st, line, (size_t)e);
            return e + 2;
        }
        if (e == 3 && memcmp(line, "END", 3) == 0)
            return (long)pos + 5;
        if (!starts(line, e, "VALUE "))
            return -1;
        /* VALUE <key> <flags> <bytes> [<cas>] */
        const char *p = line + 6, *end = line + e, *tok[4];
        unsigned nt = 0;
        while (p < end && nt < 4) {
            tok[nt++] = p;
            while (p < end && *p != ' ')
                p++;
            while (p < end && *p == ' ')
                p++;
        }
        if (nt < 3)
            return -1;
        const char *bend = tok[2];
        while (bend < end && *bend != ' ')
            bend++;
        long v;
        if (!parse_long(tok[2], bend, &v) || v < 0)
            return -1;
        size_t need = pos + (size_t)e + 2 + (size_t)v + 2;
        if (need > n)
            return 0;
        if (b[need - 2] != '\r' || b[need - 1] != '\n')
            return -1;
        st->bulks++;
        if (L->o.check && (unsigned long)v != L->o.vsize)
            st->badsize++;
        pos = need;
    }
}

static enum verdict judge(const struct load *L, const struct rstat *st)
{
    unsigned want = (L->o.op == OP_MGET) ? L->o.keys : 1;

    if (st->errors > 0)
        return V_ERR;
    if (L->o.op == OP_SET || L->o.op == OP_MSET)
        return st->status_ok ? V_OK : V_WRONG;
    if (L->o.proto == PROTO_REDIS) {
        if (L->o.op == OP_MGET && (st->top != '*' || st->elements != (long)want))
            return V_WRONG;
        if (L->o.op == OP_GET && st->top != '$')
            return V_WRONG;
        if (st->bulks + st->nils != want || st->badsize > 0)
            return V_WRONG;
        return st->nils > 0 ? V_MISS : V_OK;
    }
    if (st->bulks > want || st->badsize > 0)
        return V_WRONG;
    return st->bulks < want ? V_MISS : V_OK;
}

/* ---------------------------------------------------------------- connections */

static void conn_events(struct load *L, struct lconn *c, bool want_out)
{
    struct epoll_event ev = {.events = EPOLLIN | (want_out ? EPOLLOUT : 0), .data.ptr = c};
    if (c->pollout == want_out)
        return;
    if (epoll_ctl(L->ep, EPOLL_CTL_MOD, c->fd, &ev) < 0)
        die("epoll_ctl mod");
    c->pollout = want_out;
}

static void conn_close(struct load *L, struct lconn *c)
{
    if (c->state == CS_CLOSED)
        return;
    epoll_ctl(L->ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
    c->state = CS_CLOSED;
    bytes_free(&c->in);
    bytes_free(&c->out);
    free(c->ts);
    c->ts = NULL;
    c->ts_cap = c->ts_n = c->ts_head = 0;
}

static void conn_fail(struct load *L, struct lconn *c, const char *why)
{
    L->n.conn_errors++;
    if (c->state == CS_CONNECTING)
        L->n.connect_failed++;
    if (L->n.first_error[0] == '\0')
        snprintf(L->n.first_error, sizeof(L->n.first_error), "connection: %s", why);
    conn_close(L, c);
}

static bool conn_start(struct load *L, struct lconn *c)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;

    memset(c, 0, sizeof(*c));
    c->fd = -1;
    c->state = CS_CLOSED;
    if (fd < 0) {
        L->n.conn_errors++;
        L->n.connect_failed++;
        if (L->n.first_error[0] == '\0')
            snprintf(L->n.first_error, sizeof(L->n.first_error), "socket: %s", strerror(errno));
        return false;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->fd = fd;
    c->state = CS_CONNECTING;
    if (connect(fd, (struct sockaddr *)&L->addr, sizeof(L->addr)) < 0 && errno != EINPROGRESS) {
        conn_fail(L, c, strerror(errno));
        return false;
    }
    struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
    if (epoll_ctl(L->ep, EPOLL_CTL_ADD, fd, &ev) < 0)
        die("epoll_ctl add");
    c->pollout = true;
    return true;
}

/* Write what is queued; returns false when the connection failed. */
static bool conn_flush(struct load *L, struct lconn *c)
{
    while (c->out.off < c->out.len) {
        ssize_t w = write(c->fd, c->out.p + c->out.off, c->out.len - c->out.off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) {
                conn_events(L, c, true);
                return true;
            }
            conn_fail(L, c, strerror(errno));
            return false;
        }
        c->out.off += (size_t)w;
    }
    c->out.off = c->out.len = 0;
    conn_events(L, c, false);
    return true;
}

static void ts_push(struct lconn *c, uint64_t t)
{
    if (c->ts_n == c->ts_cap) {
        unsigned cap = c->ts_cap ? c->ts_cap * 2 : 16;
        uint64_t *n = xrealloc(NULL, cap * sizeof(*n));
        for (unsigned i = 0; i < c->ts_n; i++)
            n[i] = c->ts[(c->ts_head + i) % c->ts_cap];
        free(c->ts);
        c->ts = n;
        c->ts_cap = cap;
        c->ts_head = 0;
    }
    c->ts[(c->ts_head + c->ts_n) % c->ts_cap] = t;
    c->ts_n++;
}

static uint64_t ts_pop(struct lconn *c)
{
    if (c->ts_n == 0)
        return 0;
    uint64_t t = c->ts[c->ts_head];
    c->ts_head = (c->ts_head + 1) % c->ts_cap;
    c->ts_n--;
    return t;
}

/* Queue one request on c, stamped with t (when it was due). */
static void send_one(struct load *L, struct lconn *c, uint64_t t)
{
    if (L->o.proto == PROTO_REDIS)
        build_redis(L, &c->out);
    else
        build_mc(L, &c->out);
    ts_push(c, t);
    c->outstanding++;
    L->n.sent++;
    if (L->t_first_send == 0)
        L->t_first_send = t ? t : now_ns();
}

/* ---------------------------------------------------------------- mode hooks */

static void fill_pipeline(struct load *L, struct lconn *c)
{
    uint64_t t = now_ns();
    while (c->outstanding < L->o.pipeline && L->n.sent < L->o.requests)
        send_one(L, c, t);
}

static void on_connected(struct load *L, struct lconn *c)
{
    L->n.connected++;
    if (L->o.mode == MODE_RUN) {
        fill_pipeline(L, c);
        conn_flush(L, c);
    } else {
        conn_events(L, c, false);
    }
}

static void on_reply(struct load *L, struct lconn *c, const struct rstat *st)
{
    uint64_t t = now_ns(), t0 = ts_pop(c);

    c->outstanding--;
    L->n.done++;
    L->t_last_reply = t;
    if (L->nlat < MAX_LAT_SAMPLES && t0 != 0)
        L->lat[L->nlat++] = t - t0;
    switch (judge(L, st)) {
    case V_OK:
        L->n.ok++;
        break;
    case V_MISS:
        L->n.misses++;
        break;
    case V_ERR:
        L->n.errors++;
        if (L->n.first_error[0] == '\0')
            snprintf(L->n.first_error, sizeof(L->n.first_error), "error reply: %.100s", st->errtext);
        break;
    case V_WRONG:
        L->n.wrong++;
        if (L->n.first_error[0] == '\0')
            snprintf(L->n.first_error, sizeof(L->n.first_error),
                     "wrong reply: type '%c' elements %ld values %u nils %u badsize %u %.60s",
                     st->top ? st->top : '?', st->elements, st->bulks, st->nils, st->badsize,
                     st->errtext);
        break;
    }
    if (L->o.mode == MODE_RUN)
        fill_pipeline(L, c);
}

/* Read and parse everything available on c. */
static void conn_readable(struct load *L, struct lconn *c)
{
    for (int rounds = 0; rounds < 16; rounds++) {
        bytes_reserve(&c->in, READ_CHUNK);
        ssize_t r = read(c->fd, c->in.p + c->in.len, c->in.cap - c->in.len);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                break;
            conn_fail(L, c, strerror(errno));
            return;
        }
        if (r == 0) {
            if (c->outstanding > 0 || L->o.mode != MODE_IDLE) {
                char why[96];
                snprintf(why, sizeof(why), "closed by peer with %u request(s) outstanding",
                         c->outstanding);
                conn_fail(L, c, why);
            } else {
                L->n.dropped++;
                conn_close(L, c);
            }
            return;
        }
        c->in.len += (size_t)r;
        for (;;) {
            struct rstat st;
            memset(&st, 0, sizeof(st));
            size_t avail = c->in.len - c->in.off;
            if (avail == 0)
                break;
            long used = L->o.proto == PROTO_REDIS
                            ? resp_parse(L, c->in.p + c->in.off, avail, &st, 0)
                            : mc_parse(L, c->in.p + c->in.off, avail, &st);
            if (used == 0)
                break;
            if (used < 0 || c->outstanding == 0) {
                L->n.wrong++;
                if (L->n.first_error[0] == '\0')
                    snprintf(L->n.first_error, sizeof(L->n.first_error), "%s: %.60s",
                             used < 0 ? "malformed reply" : "unsolicited reply",
                             c->in.p + c->in.off);
                conn_fail(L, c, "bad reply");
                return;
            }
            c->in.off += (size_t)used;
            on_reply(L, c, &st);
            if (L->o.mode == MODE_BURST && c->outstanding == 0) {
                conn_close(L, c);
                return;
            }
        }
        if (c->in.off == c->in.len)
            c->in.off = c->in.len = 0;
        if ((size_t)r < READ_CHUNK)
            break;
    }
    if (c->out.len > c->out.off)
        conn_flush(L, c);
}

static void conn_event(struct load *L, struct lconn *c, uint32_t ev)
{
    if (c->state == CS_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof(err);
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
            err = errno;
        if (err != 0) {
            conn_fail(L, c, strerror(err));
            return;
        }
        if (!(ev & (EPOLLOUT | EPOLLIN)))
            return;
        c->state = CS_OPEN;
        on_connected(L, c);
        return;
    }
    if (c->state != CS_OPEN)
        return;
    if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR))
        conn_readable(L, c);
    if (c->state == CS_OPEN && (ev & EPOLLOUT))
        conn_flush(L, c);
}

/* ---------------------------------------------------------------- output */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct_us(const uint64_t *v, unsigned long n, double p)
{
    if (n == 0)
        return -1;
    unsigned long i = (unsigned long)(p * (double)(n - 1) + 0.5);
    return (double)v[i] / 1000.0;
}

static void json_str(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            printf("\\%c", ch);
        else if (ch < 0x20 || ch > 0x7e)
            printf("\\u%04x", ch);
        else
            putchar(ch);
    }
    putchar('"');
}

static void report(struct load *L)
{
    static const char *modes[] = {"run", "paced", "burst", "idle"};
    uint64_t t0 = L->t_first_send ? L->t_first_send : L->t_start;
    uint64_t t1 = L->t_last_reply > t0 ? L->t_last_reply : now_ns();
    double secs = (double)(t1 - t0) / 1e9;

    qsort(L->lat, L->nlat, sizeof(*L->lat), cmp_u64);
    printf("{\"mode\":\"%s\",\"sent\":%lu,\"replies\":%lu,\"ok\":%lu,\"misses\":%lu,"
           "\"errors\":%lu,\"wrong\":%lu,\"conn_errors\":%lu,\"connect_failed\":%lu,"
           "\"connected\":%lu,\"dropped\":%lu,"
           "\"timed_out\":%s,\"seconds\":%.6f,\"rps\":%.1f,",
           modes[L->o.mode], L->n.sent, L->n.done, L->n.ok, L->n.misses, L->n.errors,
           L->n.wrong, L->n.conn_errors, L->n.connect_failed, L->n.connected, L->n.dropped,
           L->timed_out ? "true" : "false", secs, secs > 0 ? (double)L->n.done / secs : 0.0);
    printf("\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,\"max_us\":%.1f,",
           pct_us(L->lat, L->nlat, 0.5), pct_us(L->lat, L->nlat, 0.9),
           pct_us(L->lat, L->nlat, 0.99), pct_us(L->lat, L->nlat, 0.999),
           pct_us(L->lat, L->nlat, 1.0));
    if (L->o.lat_list) {
        printf("\"lat_us\":[");
        for (unsigned long i = 0; i < L->nlat; i++)
            printf("%s%.1f", i ? "," : "", (double)L->lat[i] / 1000.0);
        printf("],");
    }
    printf("\"first_error\":");
    json_str(L->n.first_error);
    printf("}\n");
    fflush(stdout);
}

/* ---------------------------------------------------------------- modes */

/* Run the event loop until done() says so or the deadline passes. */
static void loop(struct load *L, bool (*done)(struct load *))
{
    struct epoll_event evs[512];

    while (!done(L)) {
        uint64_t t = now_ns();
        if (t >= L->deadline) {
            L->timed_out = true;
            return;
        }
        int ms = (int)((L->deadline - t) / 1000000u) + 1;
        if (ms > 100)
            ms = 100;
        int n = epoll_wait(L->ep, evs, (int)(sizeof(evs) / sizeof(evs[0])), ms);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("epoll_wait");
        }
        for (int i = 0; i < n; i++)
            if (evs[i].data.ptr != NULL)
                conn_event(L, evs[i].data.ptr, evs[i].events);
    }
}

static unsigned open_conns(const struct load *L)
{
    unsigned k = 0;
    for (unsigned i = 0; i < L->nconn; i++)
        k += L->c[i].state != CS_CLOSED;
    return k;
}

static bool run_done(struct load *L)
{
    if (L->n.done >= L->o.requests)
        return true;
    return open_conns(L) == 0;
}

static int mode_run(struct load *L)
{
    L->nconn = L->o.conns;
    L->c = xrealloc(NULL, L->nconn * sizeof(*L->c));
    for (unsigned i = 0; i < L->nconn; i++)
        conn_start(L, &L->c[i]);
    loop(L, run_done);
    report(L);
    return 0;
}

static void paced_tick(struct load *L)
{
    uint64_t t = now_ns();
    if (t < L->t_start)
        return;
    unsigned long due = (unsigned long)((t - L->t_start) / L->interval) + 1;
    if (due > L->total)
        due = L->total;
    bool touched = false;
    while (L->n.sent < due) {
        struct lconn *c = &L->c[L->n.sent % L->nconn];
        uint64_t when = L->t_start + L->n.sent * L->interval;
        if (c->state != CS_OPEN) {
            L->n.sent++; /* counted as lost: never answered */
            continue;
        }
        send_one(L, c, when);
        touched = true;
    }
    if (touched)
        for (unsigned i = 0; i < L->nconn; i++)
            if (L->c[i].state == CS_OPEN && L->c[i].out.len > L->c[i].out.off)
                conn_flush(L, &L->c[i]);
}

static int mode_paced(struct load *L)
{
    struct itimerspec its;
    int tfd;

    if (L->o.rate <= 0 || L->o.duration <= 0) {
        fprintf(stderr, "kmload: paced mode needs --rate and --duration\n");
        return 2;
    }
    L->interval = (uint64_t)(1e9 / L->o.rate);
    if (L->interval < 1000)
        L->interval = 1000;
    L->total = (unsigned long)(L->o.rate * L->o.duration);

    L->nconn = L->o.conns;
    L->c = xrealloc(NULL, L->nconn * sizeof(*L->c));
    for (unsigned i = 0; i < L->nconn; i++)
        conn_start(L, &L->c[i]);
    /* connect first (bounded), then start the clock */
    L->t_start = UINT64_MAX;
    while (L->n.connected + L->n.connect_failed < L->nconn && now_ns() < L->deadline) {
        struct epoll_event evs[64];
        int n = epoll_wait(L->ep, evs, 64, 100);
        for (int i = 0; i < n; i++)
            conn_event(L, evs[i].data.ptr, evs[i].events);
    }
    if (L->n.connected == 0) {
        report(L);
        return 1;
    }
    tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (tfd < 0)
        die("timerfd_create");
    memset(&its, 0, sizeof(its));
    its.it_value.tv_nsec = 1;
    its.it_interval.tv_sec = (time_t)(L->interval / 1000000000u);
    its.it_interval.tv_nsec = (long)(L->interval % 1000000000u);
    if (timerfd_settime(tfd, 0, &its, NULL) < 0)
        die("timerfd_settime");
    struct epoll_event tev = {.events = EPOLLIN, .data.ptr = NULL};
    if (epoll_ctl(L->ep, EPOLL_CTL_ADD, tfd, &tev) < 0)
        die("epoll_ctl timerfd");
    L->t_start = now_ns();
    L->t_first_send = L->t_start;
    uint64_t dl = L->t_start + (uint64_t)((L->o.duration + 10.0) * 1e9);
    if (dl < L->deadline)
        L->deadline = dl;

    struct epoll_event evs[512];
    while (open_conns(L) > 0) {
        uint64_t t = now_ns();
        if (t >= L->deadline) {
            L->timed_out = true;
            break;
        }
        paced_tick(L);
        if (L->n.sent >= L->total && L->n.done >= L->n.sent)
            break;
        int n = epoll_wait(L->ep, evs, 512, 50);
        if (n < 0 && errno != EINTR)
            die("epoll_wait");
        for (int i = 0; i < n; i++) {
            if (evs[i].data.ptr == NULL) {
                uint64_t exp;
                if (read(tfd, &exp, sizeof(exp)) < 0 && errno != EAGAIN)
                    die("read timerfd");
                continue;
            }
            conn_event(L, evs[i].data.ptr, evs[i].events);
        }
        if (L->n.sent >= L->total) {
            its.it_interval.tv_sec = 0;
            its.it_interval.tv_nsec = 0;
            its.it_value = its.it_interval;
            timerfd_settime(tfd, 0, &its, NULL);
        }
    }
    close(tfd);
    report(L);
    return 0;
}

static bool connect_phase_done(struct load *L)
{
    return L->n.connected + L->n.connect_failed >= L->o.clients;
}

/* Open --clients connections, at most --window handshakes at a time. */
static void connect_all(struct load *L)
{
    unsigned started = 0;
    struct epoll_event evs[512];

    L->nconn = L->o.clients;
    L->c = xrealloc(NULL, L->nconn * sizeof(*L->c));
    memset(L->c, 0, L->nconn * sizeof(*L->c));
    for (unsigned i = 0; i < L->nconn; i++) {
        L->c[i].fd = -1;
        L->c[i].state = CS_CLOSED;
    }
    while (!connect_phase_done(L)) {
        if (now_ns() >= L->deadline) {
            L->timed_out = true;
            return;
        }
        while (started < L->nconn &&
               started - (L->n.connected + L->n.connect_failed) < L->o.window)
            conn_start(L, &L->c[started++]);
        int n = epoll_wait(L->ep, evs, 512, 100);
        if (n < 0 && errno != EINTR)
            die("epoll_wait");
        for (int i = 0; i < n; i++)
            if (evs[i].data.ptr != NULL)
                conn_event(L, evs[i].data.ptr, evs[i].events);
    }
}

static bool burst_done(struct load *L)
{
    return open_conns(L) == 0;
}

static int mode_burst(struct load *L)
{
    uint64_t t0 = now_ns();
    connect_all(L);
    uint64_t t1 = now_ns();
    fprintf(stderr, "kmload: burst: %lu connected, %lu failed in %.3f s\n", L->n.connected,
            L->n.connect_failed, (double)(t1 - t0) / 1e9);
    L->t_start = t1;
    for (unsigned i = 0; i < L->nconn; i++) {
        struct lconn *c = &L->c[i];
        if (c->state != CS_OPEN)
            continue;
        send_one(L, c, now_ns());
        conn_flush(L, c);
    }
    loop(L, burst_done);
    for (unsigned i = 0; i < L->nconn; i++)
        conn_close(L, &L->c[i]);
    report(L);
    return 0;
}

static int mode_idle(struct load *L)
{
    uint64_t t0 = now_ns();
    connect_all(L);
    printf("{\"mode\":\"idle\",\"phase\":\"ready\",\"connected\":%lu,\"connect_failed\":%lu,"
           "\"conn_errors\":%lu,\"connect_s\":%.3f}\n",
           L->n.connected, L->n.connect_failed, L->n.conn_errors, (double)(now_ns() - t0) / 1e9);
    fflush(stdout);
    struct epoll_event sev = {.events = EPOLLIN, .data.ptr = NULL};
    bool stdin_ready = false;
    if (epoll_ctl(L->ep, EPOLL_CTL_ADD, 0, &sev) < 0)
        stdin_ready = false; /* stdin not pollable (a file): hold for --duration */
    uint64_t hold = now_ns() + (uint64_t)(L->o.duration * 1e9);
    if (hold < L->deadline)
        L->deadline = hold;
    L->t_start = now_ns();
    struct epoll_event evs[512];
    while (!stdin_ready && now_ns() < L->deadline) {
        int n = epoll_wait(L->ep, evs, 512, 100);
        if (n < 0 && errno != EINTR)
            die("epoll_wait");
        for (int i = 0; i < n; i++) {
            if (evs[i].data.ptr == NULL) {
                char buf[256];
                ssize_t r = read(0, buf, sizeof(buf));
                if (r <= 0)
                    stdin_ready = true;
                continue;
            }
            conn_event(L, evs[i].data.ptr, evs[i].events);
        }
    }
    for (unsigned i = 0; i < L->nconn; i++)
        conn_close(L, &L->c[i]);
    report(L);
    return 0;
}

/* ---------------------------------------------------------------- main */

static void usage(void)
{
    fprintf(stderr,
            "usage: kmload --port N [--host A] [--proto redis|mc] [--mode run|paced|burst|idle]\n"
            "  [--op get|set|mget|mset] [--keys K] [--vsize B] [--keyspace R] [--prefix S]\n"
            "  [--seq] [--check] [--conns C] [--pipeline P] [--requests N] [--rate R]\n"
            "  [--duration S] [--clients N] [--window W] [--timeout S] [--lat-list] [--seed X]\n");
    exit(2);
}

static void raise_nofile(unsigned need)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return;
    if (rl.rlim_cur >= need + 64)
        return;
    rl.rlim_cur = need + 64 > rl.rlim_max ? rl.rlim_max : need + 64;
    setrlimit(RLIMIT_NOFILE, &rl);
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"host", 1, 0, 'H'},     {"port", 1, 0, 'p'},     {"proto", 1, 0, 'P'},
        {"mode", 1, 0, 'M'},     {"op", 1, 0, 'o'},       {"keys", 1, 0, 'k'},
        {"vsize", 1, 0, 'v'},    {"keyspace", 1, 0, 'r'}, {"prefix", 1, 0, 'x'},
        {"seq", 0, 0, 'S'},      {"check", 0, 0, 'C'},    {"conns", 1, 0, 'c'},
        {"pipeline", 1, 0, 'd'}, {"requests", 1, 0, 'n'}, {"rate", 1, 0, 'R'},
        {"duration", 1, 0, 'D'}, {"clients", 1, 0, 'N'},  {"window", 1, 0, 'w'},
        {"timeout", 1, 0, 't'},  {"lat-list", 0, 0, 'L'}, {"seed", 1, 0, 's'},
        {0, 0, 0, 0},
    };
    struct load L;
    int ch;

    memset(&L, 0, sizeof(L));
    L.o = (struct opts){
        .host = "127.0.0.1", .proto = PROTO_REDIS, .op = OP_GET, .mode = MODE_RUN,
        .prefix = "k:", .keys = 10, .vsize = 32, .keyspace = 10000, .conns = 50,
        .pipeline = 1, .requests = 100000, .clients = 10000, .window = 1000,
        .timeout = 60, .duration = 5, .seed = 0,
    };
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (ch) {
        case 'H': L.o.host = optarg; break;
        case 'p': L.o.port = atoi(optarg); break;
        case 'P':
            if (strcmp(optarg, "redis") == 0) L.o.proto = PROTO_REDIS;
            else if (strcmp(optarg, "mc") == 0) L.o.proto = PROTO_MC;
            else usage();
            break;
        case 'M':
            if (strcmp(optarg, "run") == 0) L.o.mode = MODE_RUN;
            else if (strcmp(optarg, "paced") == 0) L.o.mode = MODE_PACED;
            else if (strcmp(optarg, "burst") == 0) L.o.mode = MODE_BURST;
            else if (strcmp(optarg, "idle") == 0) L.o.mode = MODE_IDLE;
            else usage();
            break;
        case 'o':
            if (strcmp(optarg, "get") == 0) L.o.op = OP_GET;
            else if (strcmp(optarg, "set") == 0) L.o.op = OP_SET;
            else if (strcmp(optarg, "mget") == 0) L.o.op = OP_MGET;
            else if (strcmp(optarg, "mset") == 0) L.o.op = OP_MSET;
            else usage();
            break;
        case 'k': L.o.keys = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'v': L.o.vsize = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'r': L.o.keyspace = strtoul(optarg, NULL, 10); break;
        case 'x': L.o.prefix = optarg; break;
        case 'S': L.o.seq = true; break;
        case 'C': L.o.check = true; break;
        case 'c': L.o.conns = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'd': L.o.pipeline = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'n': L.o.requests = strtoul(optarg, NULL, 10); break;
        case 'R': L.o.rate = atof(optarg); break;
        case 'D': L.o.duration = atof(optarg); break;
        case 'N': L.o.clients = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'w': L.o.window = (unsigned)strtoul(optarg, NULL, 10); break;
        case 't': L.o.timeout = atof(optarg); break;
        case 'L': L.o.lat_list = true; break;
        case 's': L.o.seed = strtoull(optarg, NULL, 10); break;
        default: usage();
        }
    }
    if (L.o.port <= 0 || L.o.port > 65535 || L.o.keyspace == 0 || L.o.keys == 0 ||
        L.o.conns == 0 || L.o.pipeline == 0 || L.o.clients == 0 || L.o.window == 0 ||
        L.o.timeout <= 0 || strlen(L.o.prefix) > 200 ||
        (L.o.proto == PROTO_MC && L.o.op == OP_MSET))
        usage();

    L.addr.sin_family = AF_INET;
    L.addr.sin_port = htons((uint16_t)L.o.port);
    if (inet_pton(AF_INET, L.o.host, &L.addr.sin_addr) != 1)
        usage();
    L.value = xrealloc(NULL, L.o.vsize + 1u);
    for (unsigned i = 0; i < L.o.vsize; i++)
        L.value[i] = (char)('a' + i % 26);
    L.rng = L.o.seed ? L.o.seed : ((uint64_t)getpid() << 20) ^ now_ns();
    if (L.rng == 0)
        L.rng = 88172645463325252ULL;
    unsigned long nlat = L.o.mode == MODE_PACED ? (unsigned long)(L.o.rate * L.o.duration)
                       : L.o.mode == MODE_RUN   ? L.o.requests
                                                : L.o.clients;
    if (nlat > MAX_LAT_SAMPLES)
        nlat = MAX_LAT_SAMPLES;
    L.lat = xrealloc(NULL, (nlat + 1) * sizeof(*L.lat));
    raise_nofile((L.o.mode == MODE_BURST || L.o.mode == MODE_IDLE) ? L.o.clients : L.o.conns);
    L.ep = epoll_create1(EPOLL_CLOEXEC);
    if (L.ep < 0)
        die("epoll_create1");
    L.t_start = now_ns();
    L.deadline = L.t_start + (uint64_t)(L.o.timeout * 1e9);

    int rc = 2;
    switch (L.o.mode) {
    case MODE_RUN: rc = mode_run(&L); break;
    case MODE_PACED: rc = mode_paced(&L); break;
    case MODE_BURST: rc = mode_burst(&L); break;
    case MODE_IDLE: rc = mode_idle(&L); break;
    }
    for (unsigned i = 0; i < L.nconn; i++)
        conn_close(&L, &L.c[i]);
    free(L.c);
    free(L.lat);
    free(L.value);
    close(L.ep);
    return rc;
}
