/* src/config/conf.h: the parsed configuration (pools, listen address, servers) and its loader. */
#ifndef KM_CONF_H
#define KM_CONF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The configuration is twemproxy's YAML, read unchanged: each top-level key
 * names a pool, each pool is a mapping of directives (see the table in
 * conf.c). Loading fills these plain structs; nothing here resolves names,
 * opens sockets or depends on libyaml. Every string is a NUL-terminated heap
 * copy owned by the struct conf and released by conf_free().
 */

/* Largest value any numeric directive accepts: twemproxy keeps them in an int. */
#define CONF_NUM_MAX 2147483647LL

/* Longest unix socket path, without its NUL (sizeof sun_path - 1 on Linux). */
#define CONF_UNIX_PATH_MAX 107

struct conf_listen {
    char *host;           /* IPv4/IPv6 literal or hostname, NULL for unix */
    int port;             /* 1..65535, 0 for unix */
    char *path;           /* unix socket path, NULL for TCP */
    int mode;             /* unix socket permission bits, -1 when not given */
    char *text;           /* the listen value as written, for messages and stats */
};

struct conf_server {
    char *host;           /* NULL for unix; IPv6 without its brackets */
    int port;             /* 1..65535, 0 for unix */
    char *path;           /* unix socket path or NULL */
    uint32_t weight;      /* >= 1 */
    char *name;           /* the configured name, or NULL */
    char *text;           /* the server line as written ("127.0.0.1:6379:1 web1") */
};

struct conf_pool {
    char *name;                    /* the top-level key */
    struct conf_listen listen;     /* listen: */
    int hash;                      /* enum hash_type, default fnv1a_64 */
    int distribution;              /* enum dist_type, default ketama */
    char hash_tag[3];              /* two chars + NUL, or "" when unset */
    int64_t timeout;               /* ms; -1 = forever (default); 0 also means no timeout in twemproxy */
    int backlog;                   /* default 512 */
    uint32_t client_connections;   /* 0 = unlimited */
    bool redis;                    /* default false */
    bool tcpkeepalive;             /* SO_KEEPALIVE on server connections, default false */
    bool reuseport;                /* SO_REUSEPORT on the listener (TCP), default false */
    char *redis_auth;              /* NULL when unset */
    int redis_db;                  /* default 0 */
    bool preconnect;               /* default false */
    bool auto_eject_hosts;         /* default false */
    bool allow_flush;              /* Redis FLUSHALL/FLUSHDB go to every server; default false */
    uint32_t server_connections;   /* default 1 */
    int64_t server_retry_timeout;  /* ms, default 30000 */
    uint32_t server_failure_limit; /* default 2 */
    int64_t max_request_size;      /* bytes of one request; default 1 GiB */
    int64_t max_bulk_length;       /* Redis bulk string; default 512 MiB */
    int64_t max_multibulk_length;  /* Redis arguments of one request; default 1048576 */
    int64_t max_value_size;        /* memcached value; default 1 MiB */
    int64_t client_output_limit;   /* replies queued for one client before it is closed;
                                      default 1 GiB, 0 = unlimited */
    uint32_t max_pinned_connections;   /* Redis: server connections held for one client's
                                          transaction or blocking command, per pool (all
                                          workers); default 256, 0 = none allowed */
    struct conf_server *servers;   /* in config order */
    uint32_t nservers;             /* >= 1 */
};

struct conf {
    struct conf_pool *pools;       /* in config order */
    uint32_t npools;               /* >= 1 after a successful load */
};

/*
 * Parse and validate the YAML file at path into *out. *out need not be
 * initialised. On success returns KM_OK and *out owns everything (release it
 * with conf_free). On failure returns KM_ERROR, leaves *out empty (nothing to
 * free) and writes one human-readable line to err (when err != NULL and
 * errlen > 0) naming the pool, key and value, e.g.
 * "pool 'alpha': key 'hash': unknown hash 'fnv9' (expected one of ...) (line 3)".
 */
int conf_load_file(const char *path, struct conf *out, char *err, size_t errlen);

/* As conf_load_file, from the len bytes at text (need not be NUL-terminated).
 * Any byte string is safe to pass: this is the loader's fuzzing entry point. */
int conf_load_string(const char *text, size_t len, struct conf *out, char *err, size_t errlen);

/* Release everything *c owns and leave it empty; safe on an empty conf and twice. */
void conf_free(struct conf *c);

/*
 * The string twemproxy identifies a server by, for consistent hashing (ketama
 * points are md5 of "<ident>-<i>"), stats and duplicate detection: the
 * configured name when given, else the address exactly as written: "host:port",
 * just "host" when the port is 11211 (libmemcached compatibility), and
 * "/path:" (with the colon) for an unnamed unix socket server. Returns a
 * pointer into s->name or s->text, valid while s is, and its length in *len;
 * the bytes are not NUL-terminated in general.
 */
const char *conf_server_ident(const struct conf_server *s, size_t *len);

/* ------------------------------------------------------------------------
 * Loader internals, shared by conf.c and conf_yaml.c only. conf_yaml.c walks
 * the YAML events and feeds pool names, keys and values to these functions;
 * conf.c owns the directive table, the setters and the validation.
 * ------------------------------------------------------------------------ */

struct conf_directive;

struct conf_load {
    struct conf *conf;                  /* being built */
    uint32_t cap_pools;                 /* allocated slots in conf->pools */
    uint32_t cap_servers;               /* allocated slots in the current pool's servers */
    struct conf_pool *pool;             /* current pool, or NULL between pools */
    const struct conf_directive *dir;   /* current directive, or NULL between keys */
    uint32_t seen;                      /* bit per directive already given in the current pool */
    unsigned long line;                 /* 1-based line of the event being handled, 0 if unknown */
    unsigned long pool_line;            /* line of the current pool's name */
    char *err;                          /* caller's error buffer, may be NULL */
    size_t errlen;                      /* its size */
};

/* Start a load into c (emptied first); err/errlen as for conf_load_file. */
void conf_load_init(struct conf_load *ld, struct conf *c, char *err, size_t errlen);

/* Open pool `name`: rejects an empty or duplicate name. */
int conf_load_pool_begin(struct conf_load *ld, const char *name, size_t len);

/* Select directive `key` of the current pool: rejects unknown and repeated
 * keys. Sets *is_list to whether the directive takes a list of values. */
int conf_load_key(struct conf_load *ld, const char *key, size_t len, bool *is_list);

/* Apply one value to the selected directive (once per list item for a list). */
int conf_load_value(struct conf_load *ld, const char *val, size_t len);

/* Close the selected directive; `items` is the number of values it received. */
int conf_load_key_end(struct conf_load *ld, uint32_t items);

/* Close the current pool: fill defaults, validate it alone and against the pools before it. */
int conf_load_pool_end(struct conf_load *ld);

/* Finish: rejects a configuration without pools. On error the caller calls conf_free. */
int conf_load_finish(struct conf_load *ld);

/* Write one error line to ld->err, prefixed with the current pool and key and
 * followed by the line number when known. Always returns KM_ERROR. */
int conf_load_error(struct conf_load *ld, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Write s (len bytes) into buf as a printable, quoted, shortened copy for
 * messages: 'abc', with control bytes as \xNN and "..." past 64 bytes. */
const char *conf_quote(char *buf, size_t size, const char *s, size_t len);

/* Size of a conf_quote buffer that never truncates the 64-byte excerpt. */
#define CONF_QUOTE_SIZE 280

/* Two optional strings (NULL for absent) are the same. */
bool conf_same_str(const char *a, const char *b);
/* Two listen values name the same address (host, port, path and mode). */
bool conf_same_listen(const struct conf_listen *a, const struct conf_listen *b);

#endif
