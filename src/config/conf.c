/* src/config/conf.c: pool directives (name, setter, offset), defaults, validation and error messages. */
#include "config/conf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/common.h"
#include "route/hash.h"
#include "route/route.h"

/*
 * How a load runs: conf_yaml.c turns YAML events into calls
 *
 *   pool_begin("alpha")  key("listen") value("127.0.0.1:22121") key_end(1)
 *                        key("servers") value(...) value(...) key_end(2)
 *   pool_end()           pool_begin("beta") ... pool_end()   finish()
 *
 * and this file checks each call against the directive table below. A setter
 * parses one value into the field at its offset inside struct conf_pool.
 * Defaults are written when a pool opens; a bit in ld->seen per directive
 * catches keys given twice. Checks that need the whole pool (listen and
 * servers present, duplicate server names, redis_auth only with redis, a
 * listen address shared with an earlier pool) run at pool_end. Accepted
 * values follow twemproxy 0.5.0 (`nutcracker -t`); where nutcracker accepts
 * something that cannot work (a number that overflows its int, a unix socket
 * mode with non-octal digits, an empty server name) keymux rejects it.
 */

typedef int (*conf_set_t)(struct conf_load *ld, const struct conf_directive *d,
                          void *field, const char *val, size_t len);

struct conf_directive {
    const char *name;   /* key in the pool mapping */
    conf_set_t set;     /* parses one value into the field */
    size_t offset;      /* of the field in struct conf_pool */
    int64_t min, max;   /* range, for numbers */
    bool list;          /* takes a YAML list of values */
};

static int conf_set_listen(struct conf_load *, const struct conf_directive *, void *, const char *, size_t);
static int conf_set_hash(struct conf_load *, const struct conf_directive *, void *, const char *, size_t);
static int conf_set_hash_tag(struct conf_load *, const struct conf_directive *, void *, const char *, size_t);
static int conf_set_distribution(struct conf_load *, const struct conf_directive *, void *, const char *, size_t);
static int conf_set_i64(struct conf_load *, const struct conf_directive *, void *, const char *, size_t);
static int conf_set_int(struct conf_load *, const struct conf_directive *, void *, const char *, size_t);
static int conf_set_u32(struct conf_load *, const struct conf_directive *, void *, const char *, size_t);
static int conf_set_bool(struct conf_load *, const struct conf_directive *, void *, const char *, size_t);
static int conf_set_string(struct conf_load *, const struct conf_directive *, void *, const char *, size_t);
static int conf_add_server(struct conf_load *, const struct conf_directive *, void *, const char *, size_t);

#define CONF_FIELD(f) offsetof(struct conf_pool, f)

/* Index of each directive in conf_directives[], also its bit in ld->seen. */
enum conf_directive_index {
    CONF_D_LISTEN, CONF_D_HASH, CONF_D_HASH_TAG, CONF_D_DISTRIBUTION,
    CONF_D_TIMEOUT, CONF_D_BACKLOG, CONF_D_CLIENT_CONNECTIONS, CONF_D_REDIS,
    CONF_D_TCPKEEPALIVE, CONF_D_REDIS_AUTH, CONF_D_REDIS_DB, CONF_D_PRECONNECT,
    CONF_D_AUTO_EJECT_HOSTS, CONF_D_SERVER_CONNECTIONS,
    CONF_D_SERVER_RETRY_TIMEOUT, CONF_D_SERVER_FAILURE_LIMIT, CONF_D_SERVERS,
    CONF_D_REUSEPORT,   /* twemproxy after 0.5.0 */
    /* keymux's own limits (twemproxy has none) */
    CONF_D_MAX_REQUEST_SIZE, CONF_D_MAX_BULK_LENGTH, CONF_D_MAX_MULTIBULK_LENGTH,
    CONF_D_MAX_VALUE_SIZE, CONF_D_CLIENT_OUTPUT_LIMIT, CONF_D_MAX_PINNED_CONNECTIONS,
    CONF_D_ALLOW_FLUSH,   /* keymux's own: FLUSHALL/FLUSHDB reach the servers */
    CONF_D_COUNT
};

/* bit 31 of ld->seen is the "given twice" flag */
_Static_assert(CONF_D_COUNT < 31, "too many directives for the seen mask");

static const struct conf_directive conf_directives[CONF_D_COUNT] = {
    [CONF_D_LISTEN]               = { "listen", conf_set_listen, CONF_FIELD(listen), 0, 0, false },
    [CONF_D_HASH]                 = { "hash", conf_set_hash, CONF_FIELD(hash), 0, 0, false },
    [CONF_D_HASH_TAG]             = { "hash_tag", conf_set_hash_tag, CONF_FIELD(hash_tag), 0, 0, false },
    [CONF_D_DISTRIBUTION]         = { "distribution", conf_set_distribution, CONF_FIELD(distribution), 0, 0, false },
    [CONF_D_TIMEOUT]              = { "timeout", conf_set_i64, CONF_FIELD(timeout), 0, CONF_NUM_MAX, false },
    [CONF_D_BACKLOG]              = { "backlog", conf_set_int, CONF_FIELD(backlog), 0, CONF_NUM_MAX, false },
    [CONF_D_CLIENT_CONNECTIONS]   = { "client_connections", conf_set_u32, CONF_FIELD(client_connections), 0, CONF_NUM_MAX, false },
    [CONF_D_REDIS]                = { "redis", conf_set_bool, CONF_FIELD(redis), 0, 0, false },
    [CONF_D_TCPKEEPALIVE]         = { "tcpkeepalive", conf_set_bool, CONF_FIELD(tcpkeepalive), 0, 0, false },
    [CONF_D_REDIS_AUTH]           = { "redis_auth", conf_set_string, CONF_FIELD(redis_auth), 0, 0, false },
    [CONF_D_REDIS_DB]             = { "redis_db", conf_set_int, CONF_FIELD(redis_db), 0, CONF_NUM_MAX, false },
    [CONF_D_PRECONNECT]           = { "preconnect", conf_set_bool, CONF_FIELD(preconnect), 0, 0, false },
    [CONF_D_AUTO_EJECT_HOSTS]     = { "auto_eject_hosts", conf_set_bool, CONF_FIELD(auto_eject_hosts), 0, 0, false },
    [CONF_D_SERVER_CONNECTIONS]   = { "server_connections", conf_set_u32, CONF_FIELD(server_connections), 1, CONF_NUM_MAX, false },
    [CONF_D_SERVER_RETRY_TIMEOUT] = { "server_retry_timeout", conf_set_i64, CONF_FIELD(server_retry_timeout), 0, CONF_NUM_MAX, false },
    [CONF_D_SERVER_FAILURE_LIMIT] = { "server_failure_limit", conf_set_u32, CONF_FIELD(server_failure_limit), 0, CONF_NUM_MAX, false },
    [CONF_D_SERVERS]              = { "servers", conf_add_server, CONF_FIELD(servers), 0, 0, true },
    [CONF_D_REUSEPORT]            = { "reuseport", conf_set_bool, CONF_FIELD(reuseport), 0, 0, false },
    [CONF_D_MAX_REQUEST_SIZE]     = { "max_request_size", conf_set_i64, CONF_FIELD(max_request_size), 1, CONF_NUM_MAX, false },
    [CONF_D_MAX_BULK_LENGTH]      = { "max_bulk_length", conf_set_i64, CONF_FIELD(max_bulk_length), 1, CONF_NUM_MAX, false },
    [CONF_D_MAX_MULTIBULK_LENGTH] = { "max_multibulk_length", conf_set_i64, CONF_FIELD(max_multibulk_length), 1, CONF_NUM_MAX, false },
    [CONF_D_MAX_VALUE_SIZE]       = { "max_value_size", conf_set_i64, CONF_FIELD(max_value_size), 1, CONF_NUM_MAX, false },
    [CONF_D_CLIENT_OUTPUT_LIMIT]  = { "client_output_limit", conf_set_i64, CONF_FIELD(client_output_limit), 0, CONF_NUM_MAX, false },
    [CONF_D_MAX_PINNED_CONNECTIONS] = { "max_pinned_connections", conf_set_u32, CONF_FIELD(max_pinned_connections), 0, CONF_NUM_MAX, false },
    [CONF_D_ALLOW_FLUSH]          = { "allow_flush", conf_set_bool, CONF_FIELD(allow_flush), 0, 0, false },
};

/* For messages only; the lookups themselves belong to src/route. */
static const char conf_hash_names[] =
    "one_at_a_time, md5, crc16, crc32, crc32a, fnv1_64, fnv1a_64, fnv1_32, "
    "fnv1a_32, hsieh, murmur, jenkins";
static const char conf_dist_names[] = "ketama, modula, random";

#define CONF_DEFAULT_HASH "fnv1a_64"
#define CONF_DEFAULT_DIST "ketama"
#define CONF_DEFAULT_BACKLOG 512
#define CONF_DEFAULT_SERVER_CONNECTIONS 1
#define CONF_DEFAULT_MAX_PINNED 256
#define CONF_DEFAULT_SERVER_RETRY_TIMEOUT 30000
#define CONF_DEFAULT_SERVER_FAILURE_LIMIT 2
#define CONF_KETAMA_DEFAULT_PORT 11211
#define CONF_DEFAULT_MAX_REQUEST_SIZE (1024LL << 20)       /* Redis's client-query-buffer-limit */
#define CONF_DEFAULT_MAX_BULK_LENGTH (512LL << 20)         /* Redis's proto-max-bulk-len */
#define CONF_DEFAULT_MAX_MULTIBULK_LENGTH (1024LL * 1024)  /* Redis's limit on a multibulk count */
#define CONF_DEFAULT_MAX_VALUE_SIZE (1024LL * 1024)        /* memcached's default item size */
#define CONF_DEFAULT_CLIENT_OUTPUT_LIMIT (1024LL << 20)
#define CONF_FILE_MAX (64u << 20)

/* ---------------------------------------------------------------- messages */

const char *
conf_quote(char *buf, size_t size, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0, i, shown = len;
    bool cut = false;

    if (size < 3) {
        if (size > 0) {
            buf[0] = '\0';
        }
        return buf;
    }
    if (shown > 64) {
        shown = 64;
        /* do not split a UTF-8 sequence */
        while (shown > 0 && ((unsigned char)s[shown] & 0xc0) == 0x80) {
            shown--;
        }
        cut = true;
    }
    buf[o++] = '\'';
    for (i = 0; i < shown; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f) {
            if (o + 4 >= size - 1) {
                break;
            }
            buf[o++] = '\\';
            buf[o++] = 'x';
            buf[o++] = hex[c >> 4];
            buf[o++] = hex[c & 15];
        } else {
            if (o + 1 >= size - 1) {
                break;
            }
            buf[o++] = (char)c;
        }
    }
    if (o + 1 < size - 1) {
        buf[o++] = '\'';
    }
    if (cut && o + 3 < size - 1) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o] = '\0';
    return buf;
}

int
conf_load_error(struct conf_load *ld, const char *fmt, ...)
{
    char q[CONF_QUOTE_SIZE];
    size_t o = 0;
    int n;
    va_list ap;

    if (ld->err == NULL || ld->errlen == 0) {
        return KM_ERROR;
    }
    ld->err[0] = '\0';
    if (ld->pool != NULL && ld->pool->name != NULL) {
        n = snprintf(ld->err, ld->errlen, "pool %s: ",
                     conf_quote(q, sizeof(q), ld->pool->name, strlen(ld->pool->name)));
        o = n < 0 ? 0 : KM_MIN((size_t)n, ld->errlen - 1);
    }
    if (ld->dir != NULL && o < ld->errlen - 1) {
        n = snprintf(ld->err + o, ld->errlen - o, "key '%s': ", ld->dir->name);
        o += n < 0 ? 0 : KM_MIN((size_t)n, ld->errlen - 1 - o);
    }
    if (o < ld->errlen - 1) {
        va_start(ap, fmt);
        n = vsnprintf(ld->err + o, ld->errlen - o, fmt, ap);
        va_end(ap);
        o += n < 0 ? 0 : KM_MIN((size_t)n, ld->errlen - 1 - o);
    }
    if (ld->line > 0 && o < ld->errlen - 1) {
        snprintf(ld->err + o, ld->errlen - o, " (line %lu)", ld->line);
    }
    return KM_ERROR;
}

/* ------------------------------------------------------------ small parsers */

static char *
conf_strndup(const char *s, size_t len)
{
    char *p = malloc(len + 1);

    if (p != NULL) {
        memcpy(p, s, len);
        p[len] = '\0';
    }
    return p;
}

static const char *
conf_memrchr(const char *s, char c, size_t len)
{
    while (len > 0) {
        len--;
        if (s[len] == c) {
            return s + len;
        }
    }
    return NULL;
}

/* Decimal digits only (leading zeros allowed, as twemproxy's atoi does), at
 * least one; value into *out. Returns false when not a number; a value past
 * CONF_NUM_MAX is reported as CONF_NUM_MAX + 1 so callers can say "out of range". */
static bool
conf_parse_uint(const char *s, size_t len, int64_t *out)
{
    int64_t v = 0;
    size_t i;

    if (len == 0) {
        return false;
    }
    for (i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
        if (v <= CONF_NUM_MAX) {
            v = v * 10 + (s[i] - '0');
        }
    }
    *out = v > CONF_NUM_MAX ? CONF_NUM_MAX + 1 : v;
    return true;
}

static bool
conf_has_ctl(const char *s, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f) {
            return true;
        }
    }
    return false;
}

/* A host literal as bytes, for comparing listen addresses. */
struct conf_addr {
    int family;                 /* AF_INET, AF_INET6, or 0 for a hostname */
    unsigned char bytes[16];    /* network order */
};

/* Classify host text (IPv6 already without brackets). Returns false when it
 * looks like a literal but is not a valid one (999.1.1.1, 1::2::3). */
static bool
conf_addr_parse(const char *host, size_t len, struct conf_addr *a)
{
    char buf[INET6_ADDRSTRLEN + 64];
    const char *pct;
    size_t i, n;
    bool numeric = true;

    memset(a, 0, sizeof(*a));
    if (memchr(host, ':', len) != NULL) {
        /* IPv6, maybe with a %scope that inet_pton does not take */
        pct = memchr(host, '%', len);
        n = pct != NULL ? (size_t)(pct - host) : len;
        if (pct != NULL && pct + 1 == host + len) {
            return false;
        }
        if (n == 0 || n >= sizeof(buf)) {
            return false;
        }
        memcpy(buf, host, n);
        buf[n] = '\0';
        if (inet_pton(AF_INET6, buf, a->bytes) != 1) {
            return false;
        }
        a->family = AF_INET6;
        return true;
    }
    for (i = 0; i < len; i++) {
        if (!((host[i] >= '0' && host[i] <= '9') || host[i] == '.')) {
            numeric = false;
            break;
        }
    }
    if (!numeric) {
        return true; /* a hostname, resolved later */
    }
    /* digits and dots: the resolver reads it as an IPv4 number in any of
     * inet_aton's forms (127.1, 2130706433), so accept exactly those */
    if (len >= sizeof(buf)) {
        return false;
    }
    memcpy(buf, host, len);
    buf[len] = '\0';
    {
        struct in_addr in;
        if (inet_aton(buf, &in) == 0) {
            return false;
        }
        memcpy(a->bytes, &in, 4);
    }
    a->family = AF_INET;
    return true;
}

static bool
conf_addr_is_any(const struct conf_addr *a)
{
    size_t i, n = a->family == AF_INET ? 4 : 16;

    for (i = 0; i < n; i++) {
        if (a->bytes[i] != 0) {
            return false;
        }
    }
    return true;
}

/*
 * Parse "host:port" (host may be a hostname, an IPv4 literal, "[v6]" or a bare
 * IPv6 literal: the port is after the last colon, as in twemproxy). On
 * success *host is a fresh copy without brackets. `whole` is the full value
 * for messages.
 */
static int
conf_parse_host_port(struct conf_load *ld, const char *s, size_t len,
                     const char *whole, size_t wlen, const char *expect,
                     char **host, int *port)
{
    char q[CONF_QUOTE_SIZE], q2[CONF_QUOTE_SIZE];
    const char *colon, *h;
    size_t hlen;
    int64_t p;
    struct conf_addr a;

    colon = conf_memrchr(s, ':', len);
    if (colon == NULL) {
        return conf_load_error(ld, "%s has no port (expected %s)",
                               conf_quote(q, sizeof(q), whole, wlen), expect);
    }
    if (!conf_parse_uint(colon + 1, (size_t)(s + len - colon - 1), &p) || p < 1 || p > 65535) {
        return conf_load_error(ld, "invalid port %s in %s (expected 1 to 65535)",
                               conf_quote(q2, sizeof(q2), colon + 1, (size_t)(s + len - colon - 1)),
                               conf_quote(q, sizeof(q), whole, wlen));
    }
    h = s;
    hlen = (size_t)(colon - s);
    if (hlen == 0) {
        return conf_load_error(ld, "%s has no host before the port",
                               conf_quote(q, sizeof(q), whole, wlen));
    }
    if (h[0] == '[' || h[hlen - 1] == ']') {
        if (hlen < 3 || h[0] != '[' || h[hlen - 1] != ']' || memchr(h + 1, ':', hlen - 2) == NULL) {
            return conf_load_error(ld, "bad bracketed address in %s (expected [IPv6]:port)",
                                   conf_quote(q, sizeof(q), whole, wlen));
        }
        h++;
        hlen -= 2;
    }
    if (memchr(h, ' ', hlen) != NULL || memchr(h, '[', hlen) != NULL ||
        memchr(h, ']', hlen) != NULL || memchr(h, '/', hlen) != NULL) {
        return conf_load_error(ld, "invalid host %s in %s",
                               conf_quote(q2, sizeof(q2), h, hlen),
                               conf_quote(q, sizeof(q), whole, wlen));
    }
    if (!conf_addr_parse(h, hlen, &a)) {
        return conf_load_error(ld, "invalid IP address %s in %s",
                               conf_quote(q2, sizeof(q2), h, hlen),
                               conf_quote(q, sizeof(q), whole, wlen));
    }
    *host = conf_strndup(h, hlen);
    if (*host == NULL) {
        return conf_load_error(ld, "out of memory");
    }
    *port = (int)p;
    return KM_OK;
}

static int
conf_check_unix_path(struct conf_load *ld, const char *path, size_t len,
                     const char *whole, size_t wlen)
{
    char q[CONF_QUOTE_SIZE];

    if (len <= 1 || path[len - 1] == '/') {
        return conf_load_error(ld, "%s does not name a socket file",
                               conf_quote(q, sizeof(q), whole, wlen));
    }
    if (path[len - 1] == ' ') {
        return conf_load_error(ld, "socket path in %s ends with a space",
                               conf_quote(q, sizeof(q), whole, wlen));
    }
    if (len > CONF_UNIX_PATH_MAX) {
        return conf_load_error(ld, "socket path in %s is longer than %d bytes",
                               conf_quote(q, sizeof(q), whole, wlen), CONF_UNIX_PATH_MAX);
    }
    return KM_OK;
}

/* ------------------------------------------------------------------ setters */

static int
conf_set_listen(struct conf_load *ld, const struct conf_directive *d, void *field,
                const char *val, size_t len)
{
    struct conf_listen *l = field, n = { .mode = -1 };
    char q[CONF_QUOTE_SIZE], q2[CONF_QUOTE_SIZE];

    if (len == 0) {
        return conf_load_error(ld, "empty value (expected host:port or /path/to/socket [mode])");
    }
    if (conf_has_ctl(val, len)) {
        return conf_load_error(ld, "%s contains control characters", conf_quote(q, sizeof(q), val, len));
    }
    if (val[0] == '/') {
        const char *sp = conf_memrchr(val, ' ', len);
        size_t plen = len;

        if (sp != NULL) {
            const char *m = sp + 1;
            size_t mlen = (size_t)(val + len - m), i;
            int mode = 0;

            plen = (size_t)(sp - val);
            if (mlen == 0) {
                return conf_load_error(ld, "%s ends with a space (expected /path/to/socket [mode])",
                                       conf_quote(q, sizeof(q), val, len));
            }
            for (i = 0; i < mlen; i++) {
                if (m[i] < '0' || m[i] > '7') {
                    return conf_load_error(ld, "invalid permission %s in %s (expected octal, e.g. 0666)",
                                           conf_quote(q2, sizeof(q2), m, mlen),
                                           conf_quote(q, sizeof(q), val, len));
                }
                if (mode <= 0777) {
                    mode = mode * 8 + (m[i] - '0');
                }
            }
            if (mode > 0777) {
                return conf_load_error(ld, "permission %s in %s is above 0777",
                                       conf_quote(q2, sizeof(q2), m, mlen),
                                       conf_quote(q, sizeof(q), val, len));
            }
            n.mode = mode;
        }
        if (conf_check_unix_path(ld, val, plen, val, len) != KM_OK) {
            return KM_ERROR;
        }
        n.path = conf_strndup(val, plen);
        if (n.path == NULL) {
            return conf_load_error(ld, "out of memory");
        }
    } else if (conf_parse_host_port(ld, val, len, val, len, "host:port or /path/to/socket [mode]",
                                    &n.host, &n.port) != KM_OK) {
        return KM_ERROR;
    }
    n.text = conf_strndup(val, len);
    if (n.text == NULL) {
        free(n.host);
        free(n.path);
        return conf_load_error(ld, "out of memory");
    }
    *l = n;
    return KM_OK;
}

static int
conf_set_hash(struct conf_load *ld, const struct conf_directive *d, void *field,
              const char *val, size_t len)
{
    char q[CONF_QUOTE_SIZE];
    int h = hash_from_name(val, len);

    if (h < 0) {
        return conf_load_error(ld, "unknown hash %s (expected one of %s)",
                               conf_quote(q, sizeof(q), val, len), conf_hash_names);
    }
    *(int *)field = h;
    return KM_OK;
}

static int
conf_set_distribution(struct conf_load *ld, const struct conf_directive *d, void *field,
                      const char *val, size_t len)
{
    char q[CONF_QUOTE_SIZE];
    int t = dist_from_name(val, len);

    if (t < 0) {
        return conf_load_error(ld, "unknown distribution %s (expected one of %s)",
                               conf_quote(q, sizeof(q), val, len), conf_dist_names);
    }
    *(int *)field = t;
    return KM_OK;
}

static int
conf_set_hash_tag(struct conf_load *ld, const struct conf_directive *d, void *field,
                  const char *val, size_t len)
{
    char q[CONF_QUOTE_SIZE];
    char *tag = field;

    if (len != 2) {
        return conf_load_error(ld, "%s is not two characters (expected e.g. \"{}\")",
                               conf_quote(q, sizeof(q), val, len));
    }
    tag[0] = val[0];
    tag[1] = val[1];
    tag[2] = '\0';
    return KM_OK;
}

static int
conf_get_num(struct conf_load *ld, const struct conf_directive *d,
             const char *val, size_t len, int64_t *out)
{
    char q[CONF_QUOTE_SIZE];
    int64_t v;

    if (!conf_parse_uint(val, len, &v)) {
        return conf_load_error(ld, "%s is not a number (expected a whole number from %lld to %lld)",
                               conf_quote(q, sizeof(q), val, len),
                               (long long)d->min, (long long)d->max);
    }
    if (v < d->min || v > d->max) {
        return conf_load_error(ld, "%s is out of range (expected %lld to %lld)",
                               conf_quote(q, sizeof(q), val, len),
                               (long long)d->min, (long long)d->max);
    }
    *out = v;
    return KM_OK;
}

static int
conf_set_i64(struct conf_load *ld, const struct conf_directive *d, void *field,
             const char *val, size_t len)
{
    int64_t v;

    if (conf_get_num(ld, d, val, len, &v) != KM_OK) {
        return KM_ERROR;
    }
    *(int64_t *)field = v;
    return KM_OK;
}

static int
conf_set_int(struct conf_load *ld, const struct conf_directive *d, void *field,
             const char *val, size_t len)
{
    int64_t v;

    if (conf_get_num(ld, d, val, len, &v) != KM_OK) {
        return KM_ERROR;
    }
    *(int *)field = (int)v;
    return KM_OK;
}

static int
conf_set_u32(struct conf_load *ld, const struct conf_directive *d, void *field,
             const char *val, size_t len)
{
    int64_t v;

    if (conf_get_num(ld, d, val, len, &v) != KM_OK) {
        return KM_ERROR;
    }
    *(uint32_t *)field = (uint32_t)v;
    return KM_OK;
}

static int
conf_set_bool(struct conf_load *ld, const struct conf_directive *d, void *field,
              const char *val, size_t len)
{
    char q[CONF_QUOTE_SIZE];

    /* twemproxy takes exactly these two spellings (not yes/no, True, 1) */
    if (len == 4 && memcmp(val, "true", 4) == 0) {
        *(bool *)field = true;
    } else if (len == 5 && memcmp(val, "false", 5) == 0) {
        *(bool *)field = false;
    } else {
        return conf_load_error(ld, "%s is not a boolean (expected true or false)",
                               conf_quote(q, sizeof(q), val, len));
    }
    return KM_OK;
}

static int
conf_set_string(struct conf_load *ld, const struct conf_directive *d, void *field,
                const char *val, size_t len)
{
    char *s;

    if (len == 0) {
        return conf_load_error(ld, "empty value");
    }
    s = conf_strndup(val, len);
    if (s == NULL) {
        return conf_load_error(ld, "out of memory");
    }
    *(char **)field = s;
    return KM_OK;
}

static void
conf_server_free(struct conf_server *s)
{
    free(s->host);
    free(s->path);
    free(s->name);
    free(s->text);
    memset(s, 0, sizeof(*s));
}

/* "host:port:weight [name]" or "/path:weight [name]", parsed from the end as
 * twemproxy does: the name after the last space, the weight after the last
 * colon before it, then the port. */
static int
conf_parse_server(struct conf_load *ld, const char *val, size_t len, struct conf_server *s)
{
    char q[CONF_QUOTE_SIZE], q2[CONF_QUOTE_SIZE];
    const char *sp, *colon;
    size_t rlen = len;
    int64_t w;

    memset(s, 0, sizeof(*s));
    if (len == 0) {
        return conf_load_error(ld, "empty server (expected host:port:weight [name] or /path:weight [name])");
    }
    if (conf_has_ctl(val, len)) {
        return conf_load_error(ld, "server %s contains control characters",
                               conf_quote(q, sizeof(q), val, len));
    }
    sp = conf_memrchr(val, ' ', len);
    if (sp != NULL) {
        size_t nlen = (size_t)(val + len - sp - 1);

        if (nlen == 0) {
            return conf_load_error(ld, "server %s ends with a space (expected host:port:weight [name])",
                                   conf_quote(q, sizeof(q), val, len));
        }
        rlen = (size_t)(sp - val);
        s->name = conf_strndup(sp + 1, nlen);
        if (s->name == NULL) {
            return conf_load_error(ld, "out of memory");
        }
    }
    colon = conf_memrchr(val, ':', rlen);
    if (colon == NULL || rlen == 0) {
        conf_load_error(ld, "server %s is not host:port:weight [name] or /path:weight [name]",
                        conf_quote(q, sizeof(q), val, len));
        goto fail;
    }
    if (!conf_parse_uint(colon + 1, (size_t)(val + rlen - colon - 1), &w) || w < 1 || w > CONF_NUM_MAX) {
        conf_load_error(ld, "invalid weight %s in server %s (expected 1 to %lld)",
                        conf_quote(q2, sizeof(q2), colon + 1, (size_t)(val + rlen - colon - 1)),
                        conf_quote(q, sizeof(q), val, len), (long long)CONF_NUM_MAX);
        goto fail;
    }
    s->weight = (uint32_t)w;
    if (val[0] == '/') {
        size_t plen = (size_t)(colon - val);

        if (memchr(val, ':', plen) != NULL) {
            /* twemproxy refuses this too; it is most likely a port by mistake */
            conf_load_error(ld, "unix socket server %s has a colon in its path "
                            "(expected /path:weight [name], no port)",
                            conf_quote(q, sizeof(q), val, len));
            goto fail;
        }
        if (conf_check_unix_path(ld, val, plen, val, len) != KM_OK) {
            goto fail;
        }
        s->path = conf_strndup(val, plen);
        if (s->path == NULL) {
            conf_load_error(ld, "out of memory");
            goto fail;
        }
    } else if (conf_parse_host_port(ld, val, (size_t)(colon - val), val, len,
                                    "host:port:weight [name] or /path:weight [name]",
                                    &s->host, &s->port) != KM_OK) {
        goto fail;
    }
    s->text = conf_strndup(val, len);
    if (s->text == NULL) {
        conf_load_error(ld, "out of memory");
        goto fail;
    }
    return KM_OK;

fail:
    conf_server_free(s);
    return KM_ERROR;
}

static int
conf_add_server(struct conf_load *ld, const struct conf_directive *d, void *field,
                const char *val, size_t len)
{
    struct conf_pool *p = ld->pool;
    struct conf_server s;

    if (conf_parse_server(ld, val, len, &s) != KM_OK) {
        return KM_ERROR;
    }
    if (p->nservers == ld->cap_servers) {
        uint32_t cap = ld->cap_servers == 0 ? 4 : ld->cap_servers * 2;
        struct conf_server *ns;

        if (cap <= ld->cap_servers || cap > UINT32_MAX / 2) {
            conf_server_free(&s);
            return conf_load_error(ld, "too many servers");
        }
        ns = realloc(p->servers, (size_t)cap * sizeof(*ns));
        if (ns == NULL) {
            conf_server_free(&s);
            return conf_load_error(ld, "out of memory");
        }
        p->servers = ns;
        ld->cap_servers = cap;
    }
    p->servers[p->nservers++] = s;
    return KM_OK;
}

/* ------------------------------------------------------------------ loading */

const char *
conf_server_ident(const struct conf_server *s, size_t *len)
{
    const char *t = s->text, *wcolon, *pcolon;
    size_t tlen;

    if (s->name != NULL) {
        *len = strlen(s->name);
        return s->name;
    }
    tlen = strlen(t);
    wcolon = conf_memrchr(t, ':', tlen);
    ASSERT(wcolon != NULL);
    if (s->path != NULL) {
        *len = (size_t)(wcolon - t) + 1;     /* "/path:", colon included */
        return t;
    }
    if (s->port == CONF_KETAMA_DEFAULT_PORT) {
        pcolon = conf_memrchr(t, ':', (size_t)(wcolon - t));
        ASSERT(pcolon != NULL);
        *len = (size_t)(pcolon - t);         /* "host" */
        return t;
    }
    *len = (size_t)(wcolon - t);             /* "host:port" */
    return t;
}

void
conf_load_init(struct conf_load *ld, struct conf *c, char *err, size_t errlen)
{
    memset(ld, 0, sizeof(*ld));
    memset(c, 0, sizeof(*c));
    ld->conf = c;
    ld->err = err;
    ld->errlen = errlen;
    if (err != NULL && errlen > 0) {
        err[0] = '\0';
    }
}

static void
conf_pool_defaults(struct conf_pool *p)
{
    p->listen.mode = -1;
    p->hash = hash_from_name(CONF_DEFAULT_HASH, sizeof(CONF_DEFAULT_HASH) - 1);
    p->distribution = dist_from_name(CONF_DEFAULT_DIST, sizeof(CONF_DEFAULT_DIST) - 1);
    ASSERT(p->hash >= 0 && p->distribution >= 0);
    p->hash_tag[0] = '\0';
    p->timeout = -1;
    p->backlog = CONF_DEFAULT_BACKLOG;
    p->max_request_size = CONF_DEFAULT_MAX_REQUEST_SIZE;
    p->max_bulk_length = CONF_DEFAULT_MAX_BULK_LENGTH;
    p->max_multibulk_length = CONF_DEFAULT_MAX_MULTIBULK_LENGTH;
    p->max_value_size = CONF_DEFAULT_MAX_VALUE_SIZE;
    p->client_output_limit = CONF_DEFAULT_CLIENT_OUTPUT_LIMIT;
    p->client_connections = 0;
    p->max_pinned_connections = CONF_DEFAULT_MAX_PINNED;
    p->redis = false;
    p->tcpkeepalive = false;
    p->reuseport = false;
    p->redis_auth = NULL;
    p->redis_db = 0;
    p->preconnect = false;
    p->auto_eject_hosts = false;
    p->allow_flush = false;
    p->server_connections = CONF_DEFAULT_SERVER_CONNECTIONS;
    p->server_retry_timeout = CONF_DEFAULT_SERVER_RETRY_TIMEOUT;
    p->server_failure_limit = CONF_DEFAULT_SERVER_FAILURE_LIMIT;
}

int
conf_load_pool_begin(struct conf_load *ld, const char *name, size_t len)
{
    struct conf *c = ld->conf;
    struct conf_pool *p;
    char q[CONF_QUOTE_SIZE];
    uint32_t i;

    ASSERT(ld->pool == NULL);
    ld->dir = NULL;
    ld->pool_line = ld->line;
    if (len == 0) {
        return conf_load_error(ld, "empty pool name");
    }
    if (memchr(name, '\0', len) != NULL || conf_has_ctl(name, len)) {
        return conf_load_error(ld, "pool name %s contains control characters",
                               conf_quote(q, sizeof(q), name, len));
    }
    for (i = 0; i < c->npools; i++) {
        if (strlen(c->pools[i].name) == len && memcmp(c->pools[i].name, name, len) == 0) {
            return conf_load_error(ld, "pool %s is defined twice",
                                   conf_quote(q, sizeof(q), name, len));
        }
    }
    if (c->npools == ld->cap_pools) {
        uint32_t cap = ld->cap_pools == 0 ? 4 : ld->cap_pools * 2;
        struct conf_pool *np;

        if (cap <= ld->cap_pools || cap > UINT32_MAX / 2) {
            return conf_load_error(ld, "too many pools");
        }
        np = realloc(c->pools, (size_t)cap * sizeof(*np));
        if (np == NULL) {
            return conf_load_error(ld, "out of memory");
        }
        c->pools = np;
        ld->cap_pools = cap;
    }
    p = &c->pools[c->npools];
    memset(p, 0, sizeof(*p));
    p->name = conf_strndup(name, len);
    if (p->name == NULL) {
        return conf_load_error(ld, "out of memory");
    }
    conf_pool_defaults(p);
    c->npools++;
    ld->pool = p;
    ld->seen = 0;
    ld->cap_servers = 0;
    return KM_OK;
}

/* Bit 31 of ld->seen: the selected key was already given in this pool. */
static bool
conf_dup_pending(const struct conf_load *ld)
{
    return (ld->seen & (1u << 31)) != 0;
}

int
conf_load_key(struct conf_load *ld, const char *key, size_t len, bool *is_list)
{
    char q[CONF_QUOTE_SIZE];
    size_t i;

    ASSERT(ld->pool != NULL);
    ld->dir = NULL;
    for (i = 0; i < CONF_D_COUNT; i++) {
        const struct conf_directive *d = &conf_directives[i];
        if (strlen(d->name) == len && memcmp(d->name, key, len) == 0) {
            ld->dir = d;
            *is_list = d->list;
            /* a repeat is reported with its value, in conf_load_value */
            if (ld->seen & (1u << i)) {
                ld->seen |= 1u << 31;
            } else {
                ld->seen |= 1u << i;
            }
            return KM_OK;
        }
    }
    return conf_load_error(ld, "unknown key %s (expected one of listen, hash, hash_tag, "
                           "distribution, timeout, backlog, client_connections, redis, "
                           "tcpkeepalive, redis_auth, redis_db, preconnect, auto_eject_hosts, "
                           "server_connections, server_retry_timeout, server_failure_limit, servers, "
                           "reuseport, max_request_size, max_bulk_length, max_multibulk_length, "
                           "max_value_size, client_output_limit, max_pinned_connections, allow_flush)",
                           conf_quote(q, sizeof(q), key, len));
}

int
conf_load_value(struct conf_load *ld, const char *val, size_t len)
{
    char q[CONF_QUOTE_SIZE];
    const struct conf_directive *d = ld->dir;

    ASSERT(ld->pool != NULL && d != NULL);
    if (conf_dup_pending(ld)) {
        return conf_load_error(ld, "given twice, the second time as %s (a key may appear once per pool)",
                               conf_quote(q, sizeof(q), val, len));
    }
    if (memchr(val, '\0', len) != NULL) {
        return conf_load_error(ld, "%s contains a NUL byte", conf_quote(q, sizeof(q), val, len));
    }
    return d->set(ld, d, (char *)ld->pool + d->offset, val, len);
}

int
conf_load_key_end(struct conf_load *ld, uint32_t items)
{
    ASSERT(ld->pool != NULL && ld->dir != NULL);
    if (conf_dup_pending(ld)) {
        return conf_load_error(ld, "given twice (a key may appear once per pool)");
    }
    if (ld->dir->list && items == 0) {
        return conf_load_error(ld, "empty list (a pool needs at least one server)");
    }
    ld->dir = NULL;
    return KM_OK;
}

struct conf_ident {
    const char *p;      /* ident bytes */
    size_t len;         /* their length */
    uint32_t idx;       /* server index, to keep the order stable */
};

static int
conf_ident_cmp(const void *a, const void *b)
{
    const struct conf_ident *x = a, *y = b;
    size_t n = KM_MIN(x->len, y->len);
    int r = memcmp(x->p, y->p, n);

    if (r != 0) {
        return r;
    }
    if (x->len != y->len) {
        return x->len < y->len ? -1 : 1;
    }
    return x->idx < y->idx ? -1 : (x->idx > y->idx);
}

/* Two servers with the same ident would get the same ketama points and the
 * same stats entry; twemproxy rejects that, so do we. */
static int
conf_check_server_dups(struct conf_load *ld, struct conf_pool *p)
{
    char q[CONF_QUOTE_SIZE], q1[CONF_QUOTE_SIZE], q2[CONF_QUOTE_SIZE];
    struct conf_ident *v;
    uint32_t i;
    int rc = KM_OK;

    v = malloc((size_t)p->nservers * sizeof(*v));
    if (v == NULL) {
        return conf_load_error(ld, "out of memory");
    }
    for (i = 0; i < p->nservers; i++) {
        v[i].p = conf_server_ident(&p->servers[i], &v[i].len);
        v[i].idx = i;
    }
    qsort(v, p->nservers, sizeof(*v), conf_ident_cmp);
    for (i = 0; i + 1 < p->nservers; i++) {
        if (v[i].len == v[i + 1].len && memcmp(v[i].p, v[i + 1].p, v[i].len) == 0) {
            const struct conf_server *a = &p->servers[v[i].idx], *b = &p->servers[v[i + 1].idx];
            rc = conf_load_error(ld, "servers %s and %s have the same name %s "
                                 "(give each a distinct name after a space)",
                                 conf_quote(q1, sizeof(q1), a->text, strlen(a->text)),
                                 conf_quote(q2, sizeof(q2), b->text, strlen(b->text)),
                                 conf_quote(q, sizeof(q), v[i].p, v[i].len));
            break;
        }
    }
    free(v);
    return rc;
}

/* True when binding both listen addresses cannot succeed. Hostnames are not
 * resolved here, so "localhost:1" and "127.0.0.1:1" are not caught. */
static bool
conf_listen_conflict(const struct conf_listen *a, const struct conf_listen *b)
{
    struct conf_addr x, y;

    if ((a->path != NULL) != (b->path != NULL)) {
        return false;
    }
    if (a->path != NULL) {
        return strcmp(a->path, b->path) == 0;
    }
    if (a->port != b->port) {
        return false;
    }
    if (!conf_addr_parse(a->host, strlen(a->host), &x) ||
        !conf_addr_parse(b->host, strlen(b->host), &y)) {
        return false;
    }
    if (x.family == 0 && y.family == 0) {
        return strcasecmp(a->host, b->host) == 0;
    }
    if (x.family != y.family) {
        return false;
    }
    return conf_addr_is_any(&x) || conf_addr_is_any(&y) ||
           memcmp(x.bytes, y.bytes, x.family == AF_INET ? 4 : 16) == 0;
}

int
conf_load_pool_end(struct conf_load *ld)
{
    struct conf *c = ld->conf;
    struct conf_pool *p = ld->pool;
    char q[CONF_QUOTE_SIZE], q2[CONF_QUOTE_SIZE];
    uint32_t i;

    ASSERT(p != NULL && ld->dir == NULL);
    ld->line = ld->pool_line;
    if (!(ld->seen & (1u << CONF_D_LISTEN))) {
        ld->dir = &conf_directives[CONF_D_LISTEN];
        return conf_load_error(ld, "missing (every pool needs a listen address)");
    }
    if (p->nservers == 0) {
        ld->dir = &conf_directives[CONF_D_SERVERS];
        return conf_load_error(ld, "missing (every pool needs at least one server)");
    }
    if (p->redis_auth != NULL && !p->redis) {
        ld->dir = &conf_directives[CONF_D_REDIS_AUTH];
        return conf_load_error(ld, "only valid in a redis pool (add 'redis: true')");
    }
    /* like redis_auth: a memcached pool's flush_all does not read it, so a pool that sets
     * it believes in a guard it does not have */
    if ((ld->seen & (1u << CONF_D_ALLOW_FLUSH)) && !p->redis) {
        ld->dir = &conf_directives[CONF_D_ALLOW_FLUSH];
        return conf_load_error(ld, "only valid in a redis pool (add 'redis: true')");
    }
    ld->dir = &conf_directives[CONF_D_SERVERS];
    if (conf_check_server_dups(ld, p) != KM_OK) {
        return KM_ERROR;
    }
    ld->dir = &conf_directives[CONF_D_LISTEN];
    for (i = 0; i + 1 < c->npools; i++) {
        const struct conf_pool *o = &c->pools[i];
        if (conf_listen_conflict(&o->listen, &p->listen)) {
            return conf_load_error(ld, "%s clashes with %s of pool '%s'",
                                   conf_quote(q, sizeof(q), p->listen.text, strlen(p->listen.text)),
                                   conf_quote(q2, sizeof(q2), o->listen.text, strlen(o->listen.text)),
                                   o->name);
        }
    }
    ld->dir = NULL;
    ld->pool = NULL;
    ld->seen = 0;
    /* give back the spare server slots */
    if (ld->cap_servers > p->nservers) {
        struct conf_server *ns = realloc(p->servers, (size_t)p->nservers * sizeof(*ns));
        if (ns != NULL) {
            p->servers = ns;
        }
    }
    ld->cap_servers = 0;
    return KM_OK;
}

int
conf_load_finish(struct conf_load *ld)
{
    ASSERT(ld->pool == NULL);
    if (ld->conf->npools == 0) {
        ld->line = 0;
        return conf_load_error(ld, "no pools defined (expected a mapping of pool names)");
    }
    return KM_OK;
}

void
conf_free(struct conf *c)
{
    uint32_t i, j;

    if (c == NULL) {
        return;
    }
    for (i = 0; i < c->npools; i++) {
        struct conf_pool *p = &c->pools[i];

        free(p->name);
        free(p->listen.host);
        free(p->listen.path);
        free(p->listen.text);
        free(p->redis_auth);
        for (j = 0; j < p->nservers; j++) {
            conf_server_free(&p->servers[j]);
        }
        free(p->servers);
    }
    free(c->pools);
    c->pools = NULL;
    c->npools = 0;
}

int
conf_load_file(const char *path, struct conf *out, char *err, size_t errlen)
{
    FILE *fh;
    char *buf = NULL, *nb;
    size_t len = 0, cap = 0, n;
    int rc;

    memset(out, 0, sizeof(*out));
    if (err != NULL && errlen > 0) {
        err[0] = '\0';
    }
    fh = fopen(path, "rb");
    if (fh == NULL) {
        if (err != NULL && errlen > 0) {
            snprintf(err, errlen, "cannot open '%s': %s", path, strerror(errno));
        }
        return KM_ERROR;
    }
    for (;;) {
        if (len == cap) {
            cap = cap == 0 ? 4096 : cap * 2;
            if (cap > CONF_FILE_MAX) {
                if (err != NULL && errlen > 0) {
                    snprintf(err, errlen, "'%s' is larger than %u bytes", path, CONF_FILE_MAX);
                }
                goto fail;
            }
            nb = realloc(buf, cap);
            if (nb == NULL) {
                if (err != NULL && errlen > 0) {
                    snprintf(err, errlen, "out of memory reading '%s'", path);
                }
                goto fail;
            }
            buf = nb;
        }
        n = fread(buf + len, 1, cap - len, fh);
        len += n;
        if (n == 0) {
            break;
        }
    }
    if (ferror(fh)) {
        if (err != NULL && errlen > 0) {
            snprintf(err, errlen, "cannot read '%s': %s", path, strerror(errno));
        }
        goto fail;
    }
    fclose(fh);
    rc = conf_load_string(buf, len, out, err, errlen);
    free(buf);
    return rc;

fail:
    fclose(fh);
    free(buf);
    return KM_ERROR;
}

bool
conf_same_str(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

bool
conf_same_listen(const struct conf_listen *a, const struct conf_listen *b)
{
    return conf_same_str(a->host, b->host) && a->port == b->port &&
           conf_same_str(a->path, b->path) && a->mode == b->mode;
}
