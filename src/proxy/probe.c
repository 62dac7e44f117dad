/* src/proxy/probe.c: an ejected server (auto_eject_hosts) is asked whether it is healthy,
 * on a fresh connection, before it rejoins the ring; all of it on the main thread's loop.
 *
 *   every PROBE_SCAN_MS: each pool of px->pools with auto_eject_hosts, each server
 *   ejected whose retry time has come and that has no probe in flight
 *     |
 *     v
 *   connect (non-blocking) --writable--> write the probe --readable--> read the answer
 *     Redis: [AUTH <redis_auth>] PING           -> [+OK] +PONG
 *     memcached: version                        -> VERSION <anything>
 *     |
 *     +-- the answer, within the pool's timeout: pool_server_rejoin (ring published)
 *     +-- anything else (refused, reset, closed, another answer, no answer in time):
 *         pool_server_retry_later (probed again after server_retry_timeout)
 *
 * The workers never bring a server back: they only eject (pool_server_failed). A probe
 * keeps what it needs by value (address, request, names for its log lines) and a
 * reference to the server's state block, which is what names the server across a
 * reload: when the probe ends it looks the state up in the pools current then, so a
 * reload while it is in flight needs nothing, and a server the reload removed is just
 * let go.
 */
#include "proxy/proxy.h"

#include "core/clock.h"
#include "core/common.h"
#include "core/log.h"
#include "core/net.h"

#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PROBE_SCAN_MS 100
/* the bound of a probe when the pool's timeout is unset (forever): a server that takes
 * longer to answer a PING is not one to send requests to */
#define PROBE_TIMEOUT_MS 1000
#define PROBE_RSP_MAX 256          /* the longest answer read (an error line, cut) */

struct probe {
    struct probe *next;            /* px->probes */
    struct proxy *px;
    struct server_state *state;    /* the server's (a reference): who it is across reloads */
    char *who;                     /* "pool P: server S", for the log lines */
    bool redis;                    /* else memcached */
    bool auth;                     /* the request begins with AUTH */
    int fd;
    struct event *ev;              /* fd's, writable then readable, with the deadline */
    uint64_t deadline_ms;          /* monotonic */
    int64_t timeout_ms;            /* for the log line of a probe timed out */
    char *req;                     /* the request, sent from req + sent */
    size_t reqlen, sent;
    char rsp[PROBE_RSP_MAX];       /* the answer so far */
    size_t got;
};

/* The request of a probe of pool p's server: Redis PING, after AUTH when the pool has a
 * password; memcached version. NULL when out of memory. */
static char *
probe_request(const struct pool *p, size_t *len)
{
    const char *auth = p->cf->redis_auth;
    char *req;
    int n;

    if (!p->cf->redis) {
        req = strdup("version\r\n");
        *len = req != NULL ? strlen(req) : 0;
        return req;
    }
    size_t cap = 64 + (auth != NULL ? strlen(auth) : 0);
    if ((req = malloc(cap)) == NULL)
        return NULL;
    if (auth != NULL)
        n = snprintf(req, cap, "*2\r\n$4\r\nAUTH\r\n$%zu\r\n%s\r\n*1\r\n$4\r\nPING\r\n",
                     strlen(auth), auth);
    else
        n = snprintf(req, cap, "*1\r\n$4\r\nPING\r\n");
    *len = (size_t)n;
    return req;
}

/* Is the answer read so far the one a healthy server gives? 1: all of it; 0: good so
 * far, more to come; -1: another answer, whose offending line is rsp[*bad, *bad + *badlen). */
static int
probe_check(const struct probe *pr, size_t *bad, size_t *badlen)
{
    static const char *const redis_lines[] = { "+OK", "+PONG" };
    static const char *const mc_line = "VERSION ";
    const char *const *want = pr->redis ? redis_lines + !pr->auth : &mc_line;
    size_t nwant = pr->redis ? 1 + pr->auth : 1;
    size_t pos = 0;

    for (size_t i = 0; i < nwant; i++) {
        const char *line = pr->rsp + pos;
        size_t avail = pr->got - pos;
        const char *nl = memchr(line, '\n', avail);
        const char *eol = nl != NULL && nl > line && nl[-1] == '\r' ? nl - 1 : NULL;
        /* a line not yet ended may have its CR already */
        size_t len = eol != NULL ? (size_t)(eol - line)
                                 : avail - (avail > 0 && line[avail - 1] == '\r');
        size_t wl = strlen(want[i]);
        /* a Redis line is the whole of want[i], a memcached one begins with it */
        bool match = memcmp(line, want[i], len < wl ? len : wl) == 0 && (!pr->redis || len <= wl);
        if (match && eol == NULL && nl == NULL)
            return 0;
        if (!match || len < wl || eol == NULL) {
            *bad = pos;
            *badlen = len;
            return -1;
        }
        pos += len + 2;
    }
    return 1;
}

static void
probe_free(struct probe *pr)
{
    struct probe **pp = &pr->px->probes;

    while (*pp != pr)
        pp = &(*pp)->next;
    *pp = pr->next;
    if (pr->ev != NULL)
        event_free(pr->ev);
    if (pr->fd >= 0)
        close(pr->fd);
    pool_server_state_put(pr->state);
    free(pr->req);
    free(pr->who);
    free(pr);
}

/* The current pool and server that carry the probe's server state; false when a reload
 * removed the server. */
static bool
probe_server(const struct probe *pr, struct pool **pp, struct server **sp)
{
    struct proxy *px = pr->px;

    for (uint32_t i = 0; i < px->npools; i++) {
        struct server *s = pool_server_of(&px->pools[i], pr->state);
        if (s != NULL) {
            *pp = &px->pools[i];
            *sp = s;
            return true;
        }
    }
    return false;
}

/* The probe is over: ok, or failed for the reason why. The server rejoins or waits
 * another server_retry_timeout; the probe is freed. */
static void
probe_end(struct probe *pr, const char *why)
{
    struct pool *p;
    struct server *s;
    bool found = probe_server(pr, &p, &s);

    if (why != NULL)
        atomic_fetch_add_explicit(&pr->state->h.probe_failures, 1, memory_order_relaxed);
    if (!found) {
        log_info("%s: probe %s%s; the server was removed by a reload meanwhile", pr->who,
                 why != NULL ? "failed: " : "ok", why != NULL ? why : "");
    } else if (why == NULL) {
        log_notice("%s: probe ok", pr->who);
        pool_server_rejoin(p, s);
    } else {
        log_warn("%s: probe failed: %s; it stays out, probed again in %lld ms", pr->who, why,
                 (long long)p->cf->server_retry_timeout);
        pool_server_retry_later(p, s, km_now_ms());
    }
    probe_free(pr);
}

static void on_probe(int fd, short what, void *arg);

/* Wait for fd to be ready for what (EV_WRITE, EV_READ) until the deadline. KM_OK, or
 * KM_ERROR when the deadline has passed or the event cannot be armed. */
static int
probe_wait(struct probe *pr, short what)
{
    uint64_t now = km_now_ms();
    struct timeval tv;

    if (now >= pr->deadline_ms)
        return KM_ERROR;
    tv.tv_sec = (time_t)((pr->deadline_ms - now) / 1000);
    tv.tv_usec = (suseconds_t)((pr->deadline_ms - now) % 1000 * 1000);
    if (event_assign(pr->ev, pr->px->base, pr->fd, what, on_probe, pr) != 0 ||
        event_add(pr->ev, &tv) != 0)
        return KM_ERROR;
    return KM_OK;
}

static void
on_probe(int fd, short what, void *arg)
{
    struct probe *pr = arg;
    char why[160];
    ssize_t n;

    if (what & EV_TIMEOUT) {
        snprintf(why, sizeof(why), "no answer within %lld ms", (long long)pr->timeout_ms);
        goto fail;
    }
    if (pr->sent < pr->reqlen) {
        /* connecting, or the request not all written */
        int err = net_socket_error(fd);
        if (err != 0) {
            snprintf(why, sizeof(why), "connect: %s", strerror(err));
            goto fail;
        }
        n = write(fd, pr->req + pr->sent, pr->reqlen - pr->sent);
        if (n < 0 && errno != EAGAIN && errno != EINTR) {
            snprintf(why, sizeof(why), "write: %s", strerror(errno));
            goto fail;
        }
        if (n > 0)
            pr->sent += (size_t)n;
        if (probe_wait(pr, pr->sent < pr->reqlen ? EV_WRITE : EV_READ) != KM_OK)
            goto late;
        return;
    }
    n = read(fd, pr->rsp + pr->got, sizeof(pr->rsp) - pr->got);
    if (n == 0) {
        snprintf(why, sizeof(why), "the server closed the connection");
        goto fail;
    }
    if (n < 0 && errno != EAGAIN && errno != EINTR) {
        snprintf(why, sizeof(why), "read: %s", strerror(errno));
        goto fail;
    }
    if (n > 0)
        pr->got += (size_t)n;
    size_t bad = 0, badlen = 0;
    int rc = probe_check(pr, &bad, &badlen);
    if (rc > 0) {
        probe_end(pr, NULL);
        return;
    }
    if (rc < 0) {
        snprintf(why, sizeof(why), "answered \"%.*s\"", (int)(badlen < 100 ? badlen : 100),
                 pr->rsp + bad);
        goto fail;
    }
    if (pr->got == sizeof(pr->rsp)) {
        snprintf(why, sizeof(why), "an answer longer than %d bytes", PROBE_RSP_MAX);
        goto fail;
    }
    if (probe_wait(pr, EV_READ) == KM_OK)
        return;
late:
    snprintf(why, sizeof(why), "no answer within %lld ms", (long long)pr->timeout_ms);
fail:
    probe_end(pr, why);
}

/* Probe server s of pool p (ejected, its retry time come): connect and wait for the
 * socket to take the request. A probe that cannot even start fails at once. */
static void
probe_start(struct proxy *px, struct pool *p, struct server *s)
{
    size_t wl = strlen(p->cf->name) + strlen(s->ident) + 16;
    struct probe *pr = calloc(1, sizeof(*pr));
    char *who = malloc(wl);
    char why[80];

    if (pr == NULL || who == NULL) {
        free(pr);
        free(who);
        log_error("pool %s: server %s: cannot probe it: out of memory; it stays out",
                  p->cf->name, s->ident);
        pool_server_retry_later(p, s, km_now_ms());
        return;
    }
    snprintf(who, wl, "pool %s: server %s", p->cf->name, s->ident);
    pr->who = who;
    pr->px = px;
    pr->fd = -1;
    pr->state = pool_server_state_get(s);
    pr->next = px->probes;
    px->probes = pr;
    atomic_fetch_add_explicit(&s->h->probes, 1, memory_order_relaxed);
    pr->redis = p->cf->redis;
    pr->auth = p->cf->redis && p->cf->redis_auth != NULL;
    pr->timeout_ms = p->cf->timeout > 0 ? p->cf->timeout : PROBE_TIMEOUT_MS;
    pr->deadline_ms = km_now_ms() + (uint64_t)pr->timeout_ms;
    log_info("%s: probing it on a new connection", pr->who);
    snprintf(why, sizeof(why), "out of memory");
    if ((pr->req = probe_request(p, &pr->reqlen)) == NULL)
        goto fail;
    pr->fd = net_connect((const struct sockaddr *)&s->addr, s->addrlen, false);
    if (pr->fd < 0) {
        snprintf(why, sizeof(why), "connect: %s", strerror(-pr->fd));
        goto fail;
    }
    snprintf(why, sizeof(why), "cannot watch the connection");
    if ((pr->ev = event_new(px->base, -1, 0, on_probe, pr)) == NULL ||
        probe_wait(pr, EV_WRITE) != KM_OK)
        goto fail;
    return;
fail:
    probe_end(pr, why);
}

static bool
probe_in_flight(const struct proxy *px, const struct server_state *st)
{
    for (const struct probe *pr = px->probes; pr != NULL; pr = pr->next) {
        if (pr->state == st)
            return true;
    }
    return false;
}

static void
on_scan(int fd, short what, void *arg)
{
    struct proxy *px = arg;
    uint64_t now = km_now_ms();

    (void)fd;
    (void)what;
    for (uint32_t i = 0; i < px->npools; i++) {
        struct pool *p = &px->pools[i];
        if (!p->cf->auto_eject_hosts)
            continue;
        for (uint32_t k = 0; k < p->nservers; k++) {
            struct server *s = &p->servers[k];
            if (atomic_load(&s->h->ejected) && now >= atomic_load(&s->h->retry_at_ms) &&
                !probe_in_flight(px, s->state))
                probe_start(px, p, s);
        }
    }
}

void
probe_arm(struct proxy *px)
{
    const struct timeval every = { 0, PROBE_SCAN_MS * 1000 };
    bool want = false;

    for (uint32_t i = 0; i < px->npools; i++)
        want |= px->pools[i].cf->auto_eject_hosts;
    if (want && px->probe_ev == NULL) {
        px->probe_ev = event_new(px->base, -1, EV_PERSIST, on_scan, px);
        if (px->probe_ev == NULL || event_add(px->probe_ev, &every) != 0)
            log_error("cannot arm the timer that probes ejected servers: they stay out");
    } else if (!want && px->probe_ev != NULL) {
        event_free(px->probe_ev);
        px->probe_ev = NULL;
    }
}

void
probe_stop(struct proxy *px)
{
    if (px->probe_ev != NULL)
        event_free(px->probe_ev);
    px->probe_ev = NULL;
    while (px->probes != NULL)
        probe_free(px->probes);
}
