/* src/proto/redis_local.c: the Redis commands keymux answers itself: PING ECHO QUIT AUTH SELECT HELLO CLIENT COMMAND INFO READONLY READWRITE. */
/*
 * None of these ever reaches a server. They are what client libraries send when they
 * connect or when asked (docs/CLIENTS.md lists who sends what): each is answered the way
 * Redis 7.0 answers it, in RESP2 and with Redis's error texts, so that a library neither
 * fails nor logs at connect. HELLO 3 gets NOPROTO, on which the libraries that try RESP3
 * go on with RESP2; the proxy speaks RESP2 only, as its server connections are shared.
 *
 * Transactions and WATCH are redis_session.c's.
 *
 * Like the rest of src/proto this is pure: no sockets, no mutable globals. The session
 * (struct proto_session) is the only state; a client name is copied only once it has been
 * read and checked against REDIS_NAME_MAX.
 */
#include "proto/redis_local.h"

#include "proto/resp.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/*
 * The Redis version keymux says it is (HELLO, INFO). Its command table (resp_cmd.def) is
 * Redis 7.0's, checked against a 7.0 server by tests/check_resp_cmd.py, so a client that
 * reads the version to choose what to send stays inside what keymux serves. The servers
 * behind it may be older: a 7.0 argument then gets their error.
 */
#define REDIS_LOCAL_VERSION "7.0.0"

#define TEXT_NOAUTH_HELLO                                                             \
    "NOAUTH HELLO must be called with the client already authenticated, otherwise the " \
    "HELLO AUTH <user> <pass> option can be used to authenticate the client and select " \
    "the RESP protocol version at the same time"
#define TEXT_WRONGPASS "WRONGPASS invalid username-password pair or user is disabled."
#define TEXT_BAD_NAME "ERR Client names cannot contain spaces, newlines or special characters."
#define TEXT_SELECT                                                                      \
    "ERR SELECT is not allowed through the proxy: the pool's database is chosen by redis_db"

/* ---- replies ------------------------------------------------------------------------ */

/* A reply being built: bytes gather in buf and go to r's out 256 at a time. */
struct rb {
    struct msg *r;           /* the reply (already m->rsp, so it is freed with m) */
    struct bufpool *bp;
    size_t n;                /* bytes waiting in buf */
    bool failed;             /* out of memory: the rest is dropped, rb_end says so */
    char buf[256];
};

static void
rb_flush(struct rb *b)
{
    if (b->n > 0 && !b->failed && msg_out_bytes(b->r, b->bp, b->buf, b->n) != KM_OK)
        b->failed = true;
    b->n = 0;
}

static void
rb_add(struct rb *b, const void *p, size_t n)
{
    const char *s = p;

    while (n > 0) {
        size_t take;

        if (b->n == sizeof(b->buf))
            rb_flush(b);
        take = KM_MIN(n, sizeof(b->buf) - b->n);
        memcpy(b->buf + b->n, s, take);
        b->n += take;
        s += take;
        n -= take;
    }
}

static void
rb_head(struct rb *b, char type, uint64_t n)
{
    char h[24];

    rb_add(b, h, redis_head(h, type, n));
}

static void
rb_int(struct rb *b, int64_t v)
{
    char h[32];
    size_t n;

    if (v >= 0) {
        rb_head(b, ':', (uint64_t)v);
        return;
    }
    h[0] = ':';
    h[1] = '-';
    n = 2 + km_u64_dec(h + 2, (uint64_t)0 - (uint64_t)v);
    h[n++] = '\r';
    h[n++] = '\n';
    rb_add(b, h, n);
}

static void
rb_bulk(struct rb *b, const void *s, size_t n)
{
    rb_head(b, '$', n);
    rb_add(b, s, n);
    rb_add(b, "\r\n", 2);
}

static void
rb_str(struct rb *b, const char *s)
{
    rb_bulk(b, s, strlen(s));
}

/* Start m's reply; KM_ERROR when there is no message for it. */
static int
rb_start(struct rb *b, struct msg *m, const struct proto_ctx *ctx)
{
    b->r = msg_get(ctx->mc);
    b->bp = ctx->bp;
    b->n = 0;
    b->failed = b->r == NULL;
    m->rsp = b->r;
    m->plan = PLAN_LOCAL;
    m->done = true;
    return b->failed ? KM_ERROR : KM_OK;
}

static int
rb_end(struct rb *b)
{
    rb_flush(b);
    return b->failed ? KM_ERROR : KM_OK;
}

int
redis_reply_error(struct msg *m, const char *text, const struct proto_ctx *ctx)
{
    char buf[320];
    size_t n = proto_error_line(buf, sizeof(buf), "-", text);

    m->plan = PLAN_ERROR;
    m->done = true;
    m->rsp = proto_reply_bytes(ctx, buf, n);
    if (m->rsp == NULL)
        return KM_ERROR;
    m->rsp->is_error = true;
    m->rsp->type = '-';
    return KM_OK;
}

/* An integer reply. */
static int
reply_int(struct msg *m, int64_t v, const struct proto_ctx *ctx)
{
    struct rb b;

    if (rb_start(&b, m, ctx) != KM_OK)
        return KM_ERROR;
    rb_int(&b, v);
    return rb_end(&b);
}

/* A fixed reply such as "+OK\r\n". */
static int
reply_status(struct msg *m, const char *text, const struct proto_ctx *ctx)
{
    m->plan = PLAN_LOCAL;
    m->done = true;
    m->rsp = proto_reply_bytes(ctx, text, strlen(text));
    return m->rsp == NULL ? KM_ERROR : KM_OK;
}

int
redis_out_bulk(struct msg *r, const struct tok *t, const struct proto_ctx *ctx)
{
    char hdr[32];

    if (t->aux > 0) {
        /* multibulk: "$len\r\n<data>\r\n" is already a bulk reply */
        return msg_out_borrow(r, t->b, t->off, t->aux + t->len + 2);
    }
    if (msg_out_bytes(r, ctx->bp, hdr, redis_head(hdr, '$', t->len)) != KM_OK)
        return KM_ERROR;
    if (t->len > 0 && msg_out_borrow(r, t->b, t->off, t->len) != KM_OK)
        return KM_ERROR;
    return msg_out_bytes(r, ctx->bp, "\r\n", 2);
}

/* Reply to a PING with an argument or an ECHO: the argument as a bulk string. */
static int
reply_bulk_of(struct msg *m, const struct tok *t, const struct proto_ctx *ctx)
{
    struct msg *r = msg_get(ctx->mc);

    if (r == NULL)
        return KM_ERROR;
    m->rsp = r;
    m->done = true;
    return redis_out_bulk(r, t, ctx);
}

/* ---- tokens ------------------------------------------------------------------------- */

void
redis_printable(const struct tok *t, char *dst, size_t cap)
{
    size_t n = msg_tok_copy(t, 0, dst, cap - 1);

    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)dst[i];
        if (ch < ' ' || ch > '~' || ch == '\'')
            dst[i] = '?';
    }
    dst[n] = '\0';
}

/* True when token t is exactly s (case matters: passwords, user names). */
static bool
tok_equals(const struct tok *t, const char *s)
{
    char buf[256];
    size_t n = strlen(s);

    if (t->len != n)
        return false;
    for (size_t done = 0; done < n; ) {
        size_t got = msg_tok_copy(t, done, buf, KM_MIN(sizeof(buf), n - done));
        if (got == 0 || memcmp(buf, s + done, got) != 0)
            return false;
        done += got;
    }
    return true;
}

/* Token t as a NUL-terminated word for a case-insensitive comparison; "" when it does
 * not fit in cap - 1 bytes (no keyword is that long) or holds a NUL. */
static const char *
tok_word(const struct tok *t, char *dst, size_t cap)
{
    if (t->len >= cap)
        return "";
    size_t n = msg_tok_copy(t, 0, dst, (size_t)t->len);
    dst[n] = '\0';
    return memchr(dst, '\0', n) != NULL ? "" : dst;
}

/* Token t as an integer in Redis's grammar (string2ll: no '+', spaces or leading zeros). */
static bool
tok_int(const struct tok *t, int64_t *v)
{
    uint8_t buf[24];

    if (t->len == 0 || t->len > 20)
        return false;
    size_t n = msg_tok_copy(t, 0, buf, (size_t)t->len);
    return resp_parse_int64(buf, n, v);
}

/* Redis's rule for client names and CLIENT SETINFO values: every byte in '!'..'~'. */
static bool
tok_chars_ok(const struct tok *t)
{
    char buf[256];

    for (uint64_t done = 0; done < t->len; ) {
        size_t got = msg_tok_copy(t, done, buf, (size_t)KM_MIN(sizeof(buf), t->len - done));
        if (got == 0)
            return false;
        for (size_t i = 0; i < got; i++) {
            if (buf[i] < '!' || buf[i] > '~')
                return false;
        }
        done += got;
    }
    return true;
}

/* Why name t cannot be a client's name (the reply text), or NULL when it can. */
static const char *
name_error(const struct tok *t)
{
    if (t->len > REDIS_NAME_MAX)
        return "ERR Client name too long: the proxy keeps names of at most 256 bytes";
    return tok_chars_ok(t) ? NULL : TEXT_BAD_NAME;
}
_Static_assert(REDIS_NAME_MAX == 256, "name_error's text says 256");

/* Give the session the name t (checked by name_error); an empty name clears it. */
static int
set_name(struct proto_session *s, const struct tok *t)
{
    char *copy = NULL;

    if (s == NULL)
        return KM_OK;
    if (t->len > 0) {
        copy = malloc((size_t)t->len + 1);
        if (copy == NULL)
            return KM_ERROR;
        copy[msg_tok_copy(t, 0, copy, (size_t)t->len)] = '\0';
    }
    free(s->name);
    s->name = copy;
    return KM_OK;
}

/* ---- subcommands (CLIENT, COMMAND) -------------------------------------------------- */

/* One subcommand: its name, Redis 7's arity for it, and what keymux does (0: refused). */
struct sub {
    const char *name;        /* upper case */
    int8_t arity;            /* n = exactly n words, -n = at least n */
    uint8_t op;
};

/*
 * Find the subcommand in word 1 of m in the table of parent. Returns its entry, or NULL
 * after making the error reply Redis gives (unknown subcommand, wrong word count), or
 * keymux's for one it does not serve (op 0). *rc is the status of making that reply.
 */
static const struct sub *
sub_find(struct msg *m, const char *parent, const struct sub *tab, size_t n, int *rc,
         const struct proto_ctx *ctx)
{
    char word[24], shown[64], text[160];
    const char *w = tok_word(&m->tok[1], word, sizeof(word));
    const struct sub *s = NULL;

    *rc = KM_OK;
    for (size_t i = 0; i < n && s == NULL; i++) {
        if (strcasecmp(w, tab[i].name) == 0)
            s = &tab[i];
    }
    if (s == NULL) {
        redis_printable(&m->tok[1], shown, sizeof(shown));
        snprintf(text, sizeof(text), "ERR unknown subcommand '%s'. Try %s HELP.", shown, parent);
    } else if (s->arity > 0 ? m->ntok != (uint32_t)s->arity : m->ntok < (uint32_t)-s->arity) {
        char lp[16], ls[24];
        size_t i;
        for (i = 0; parent[i] != '\0' && i < sizeof(lp) - 1; i++)
            lp[i] = (char)(parent[i] | 0x20);
        lp[i] = '\0';
        for (i = 0; s->name[i] != '\0' && i < sizeof(ls) - 1; i++)
            ls[i] = (char)(s->name[i] >= 'A' && s->name[i] <= 'Z' ? s->name[i] | 0x20 : s->name[i]);
        ls[i] = '\0';
        snprintf(text, sizeof(text), "ERR wrong number of arguments for '%s|%s' command", lp, ls);
    } else if (s->op == 0) {
        snprintf(text, sizeof(text), "ERR %s %s is not supported by the proxy", parent, s->name);
    } else {
        return s;
    }
    *rc = redis_reply_error(m, text, ctx);
    return NULL;
}

/* ---- HELLO -------------------------------------------------------------------------- */

/* The map Redis 7 answers HELLO with, flattened into an array as RESP2 does. */
static int
reply_hello(struct msg *m, const struct proto_ctx *ctx)
{
    struct rb b;

    if (rb_start(&b, m, ctx) != KM_OK)
        return KM_ERROR;
    rb_head(&b, '*', 14);
    rb_str(&b, "server");
    rb_str(&b, "redis");
    rb_str(&b, "version");
    rb_str(&b, REDIS_LOCAL_VERSION);
    rb_str(&b, "proto");
    rb_int(&b, 2);
    rb_str(&b, "id");
    rb_int(&b, ctx->sess != NULL ? (int64_t)ctx->sess->id : 0);
    rb_str(&b, "mode");
    rb_str(&b, "standalone");
    rb_str(&b, "role");
    rb_str(&b, "master");
    rb_str(&b, "modules");
    rb_head(&b, '*', 0);
    return rb_end(&b);
}

/* HELLO [protover [AUTH user pass] [SETNAME name]], in the order Redis 7.0 checks it:
 * the version, the options, the password, then authentication. */
static int
plan_hello(struct msg *m, const struct proto_ctx *ctx)
{
    struct proto_session *s = ctx->sess;
    const struct tok *user = NULL, *pass = NULL, *name = NULL;
    char word[16], shown[64], text[128];
    uint32_t i = 1;

    if (m->ntok >= 2) {
        int64_t ver;
        if (!tok_int(&m->tok[1], &ver))
            return redis_reply_error(m, "ERR Protocol version is not an integer or out of range", ctx);
        /* 3 too: RESP3 is refused, and the clients that ask for it fall back to RESP2 */
        if (ver != 2)
            return redis_reply_error(m, "NOPROTO unsupported protocol version", ctx);
        i = 2;
    }
    for (; i < m->ntok; i++) {
        uint32_t more = m->ntok - 1 - i;
        const char *opt = tok_word(&m->tok[i], word, sizeof(word));
        const char *err;

        if (strcasecmp(opt, "AUTH") == 0 && more >= 2) {
            user = &m->tok[i + 1];
            pass = &m->tok[i + 2];
            i += 2;
        } else if (strcasecmp(opt, "SETNAME") == 0 && more >= 1) {
            name = &m->tok[++i];
            if ((err = name_error(name)) != NULL)
                return redis_reply_error(m, err, ctx);
        } else {
            redis_printable(&m->tok[i], shown, sizeof(shown));
            snprintf(text, sizeof(text), "ERR Syntax error in HELLO option '%s'", shown);
            return redis_reply_error(m, text, ctx);
        }
    }
    if (user != NULL) {
        /* the only user is "default"; without redis_auth it takes any password, as
         * Redis's nopass default user does */
        if (!tok_equals(user, "default") || (ctx->auth != NULL && !tok_equals(pass, ctx->auth)))
            return redis_reply_error(m, TEXT_WRONGPASS, ctx);
        if (s != NULL)
            s->authed = true;
    }
    if (s != NULL && !s->authed)
        return redis_reply_error(m, TEXT_NOAUTH_HELLO, ctx);
    if (name != NULL && set_name(s, name) != KM_OK)
        return KM_ERROR;
    return reply_hello(m, ctx);
}

/* ---- CLIENT ------------------------------------------------------------------------- */

enum { CL_ID = 1, CL_GETNAME, CL_SETNAME, CL_SETINFO, CL_INFO };

/* Redis 7.2's CLIENT subcommands: those a connection asks about itself are served. */
static const struct sub client_subs[] = {
    { "ID", 2, CL_ID }, { "GETNAME", 2, CL_GETNAME }, { "SETNAME", 3, CL_SETNAME },
    { "SETINFO", 4, CL_SETINFO }, { "INFO", 2, CL_INFO },
    { "CACHING", 3, 0 }, { "GETREDIR", 2, 0 }, { "HELP", 2, 0 }, { "KILL", -3, 0 },
    { "LIST", -2, 0 }, { "NO-EVICT", 3, 0 }, { "NO-TOUCH", 3, 0 }, { "PAUSE", -3, 0 },
    { "REPLY", 3, 0 }, { "TRACKING", -3, 0 }, { "TRACKINGINFO", 2, 0 }, { "UNBLOCK", -3, 0 },
    { "UNPAUSE", 2, 0 },
};

/* CLIENT SETINFO LIB-NAME|LIB-VER value: checked as Redis 7.2 does, then +OK (the proxy
 * keeps neither: no place in a client's few bytes is worth it). */
static int
plan_setinfo(struct msg *m, const struct proto_ctx *ctx)
{
    char word[16], shown[64], text[160];
    const char *attr = tok_word(&m->tok[2], word, sizeof(word));

    redis_printable(&m->tok[2], shown, sizeof(shown));
    if (strcasecmp(attr, "LIB-NAME") != 0 && strcasecmp(attr, "LIB-VER") != 0) {
        snprintf(text, sizeof(text), "ERR Unrecognized option '%s'", shown);
        return redis_reply_error(m, text, ctx);
    }
    if (!tok_chars_ok(&m->tok[3])) {
        snprintf(text, sizeof(text), "ERR %s cannot contain spaces, newlines or special characters.",
                 shown);
        return redis_reply_error(m, text, ctx);
    }
    return reply_status(m, "+OK\r\n", ctx);
}

static int
plan_client(struct msg *m, const struct proto_ctx *ctx)
{
    struct proto_session *s = ctx->sess;
    const char *name = s != NULL ? s->name : NULL;
    const struct sub *sub;
    const char *err;
    struct rb b;
    char line[REDIS_NAME_MAX + 96];
    int rc, n;

    sub = sub_find(m, "CLIENT", client_subs, KM_ARRAY_LEN(client_subs), &rc, ctx);
    if (sub == NULL)
        return rc;
    switch (sub->op) {
    case CL_ID:
        return reply_int(m, s != NULL ? (int64_t)s->id : 0, ctx);
    case CL_GETNAME:
        if (name == NULL)
            return reply_status(m, "$-1\r\n", ctx);
        if (rb_start(&b, m, ctx) != KM_OK)
            return KM_ERROR;
        rb_str(&b, name);
        return rb_end(&b);
    case CL_SETNAME:
        if ((err = name_error(&m->tok[2])) != NULL)
            return redis_reply_error(m, err, ctx);
        if (set_name(s, &m->tok[2]) != KM_OK)
            return KM_ERROR;
        return reply_status(m, "+OK\r\n", ctx);
    case CL_SETINFO:
        return plan_setinfo(m, ctx);
    default:
        /* CLIENT INFO: this connection's line, with what the proxy knows of it */
        n = snprintf(line, sizeof(line), "id=%llu name=%s db=0 user=default resp=2\n",
                     (unsigned long long)(s != NULL ? s->id : 0), name != NULL ? name : "");
        if (rb_start(&b, m, ctx) != KM_OK)
            return KM_ERROR;
        rb_bulk(&b, line, (size_t)KM_MIN((size_t)n, sizeof(line) - 1));
        return rb_end(&b);
    }
}

/* ---- COMMAND ------------------------------------------------------------------------ */

enum { CO_COUNT = 1, CO_DOCS, CO_INFO, CO_LIST };

static const struct sub command_subs[] = {
    { "COUNT", 2, CO_COUNT }, { "DOCS", -2, CO_DOCS }, { "INFO", -2, CO_INFO },
    { "LIST", -2, CO_LIST }, { "GETKEYS", -3, 0 }, { "GETKEYSANDFLAGS", -3, 0 },
    { "HELP", 2, 0 },
};

/* The command's name in lower case, as Redis prints it; returns its length. */
size_t
redis_lower_name(const struct resp_cmd *c, char *dst)
{
    for (size_t i = 0; i < c->len; i++)
        dst[i] = (char)(c->name[i] >= 'A' && c->name[i] <= 'Z' ? c->name[i] | 0x20 : c->name[i]);
    return c->len;
}

/*
 * One entry of COMMAND / COMMAND INFO in Redis 7's shape: name, arity, flags, first key,
 * last key, step, ACL categories, tips, key specs, subcommands. keymux's table has no
 * flags but movablekeys (the numkeys commands, XREAD and XREADGROUP) and none of the last
 * four: they are empty arrays, which parsers accept.
 */
static void
rb_command_info(struct rb *b, const struct resp_cmd *c)
{
    char lname[RESP_CMD_NAME_MAX];
    bool keyed = c->first_key > 0;

    rb_head(b, '*', 10);
    rb_bulk(b, lname, redis_lower_name(c, lname));
    rb_int(b, c->arity);
    if (c->numkeys_at != 0 || c->policy == RESP_P_STREAMS)
        rb_add(b, "*1\r\n+movablekeys\r\n", 18);
    else
        rb_add(b, "*0\r\n", 4);
    rb_int(b, keyed ? c->first_key : 0);
    rb_int(b, keyed ? c->last_key : 0);
    rb_int(b, keyed ? c->step : 0);
    rb_add(b, "*0\r\n*0\r\n*0\r\n*0\r\n", 16);
}

/* What keymux does with a command, as the summary of its COMMAND DOCS entry. */
static const char *
policy_summary(uint8_t policy)
{
    switch (policy) {
    case RESP_P_SINGLE:
        return "Forwarded to the server its key maps to";
    case RESP_P_SAMESRV:
        return "Forwarded when all its keys map to one server, else refused with CROSSSLOT";
    case RESP_P_MGET:
        return "Split over the servers of its keys, the values merged in key order";
    case RESP_P_MSET:
        return "Split over the servers of its keys, OK when every server said OK";
    case RESP_P_SUM:
        return "Split over the servers of its keys, the counts added up";
    case RESP_P_KEYSPACE:
        return "Over every server of the pool: SCAN walks them in turn, DBSIZE adds them up, "
               "FLUSHALL/FLUSHDB need allow_flush, KEYS is refused";
    case RESP_P_SESSION:
        return "A transaction or WATCH on a server connection pinned to the client; its keys "
               "must map to one server";
    case RESP_P_BLOCK:
        return "Blocks on a server connection pinned to the client, past the pool timeout; "
               "its keys must map to one server";
    case RESP_P_PUBSUB:
        return "Pub/sub: a channel lives on the server its name maps to, a pattern on every "
               "server";
    case RESP_P_STREAMS:
        return "Forwarded when the keys after STREAMS map to one server, else refused with "
               "CROSSSLOT; with BLOCK, on a server connection of the client's own";
    default:
        return "Answered by keymux itself";
    }
}

/* One COMMAND DOCS entry: the name, then a map of summary and group (redis-cli builds its
 * help from these; group "keymux" gathers what the proxy serves under `help @keymux`). */
static void
rb_command_docs(struct rb *b, const struct resp_cmd *c)
{
    char lname[RESP_CMD_NAME_MAX];

    rb_bulk(b, lname, redis_lower_name(c, lname));
    rb_head(b, '*', 4);
    rb_str(b, "summary");
    rb_str(b, policy_summary(c->policy));
    rb_str(b, "group");
    rb_str(b, "keymux");
}


/* The table entry for the command named by token t, NULL when keymux does not serve it. */
static const struct resp_cmd *
lookup_tok(const struct tok *t)
{
    uint8_t name[RESP_CMD_NAME_MAX];

    if (t->len == 0 || t->len > sizeof(name))
        return NULL;
    return resp_cmd_lookup(name, msg_tok_copy(t, 0, name, (size_t)t->len));
}

/* One entry of op's reply (COMMAND INFO, DOCS or LIST) for c; c NULL: an unknown name. */
static void
rb_command(struct rb *b, const struct resp_cmd *c, int op)
{
    char lname[RESP_CMD_NAME_MAX];

    if (c == NULL) {
        if (op == CO_INFO)
            rb_add(b, "$-1\r\n", 5);
    } else if (op == CO_DOCS) {
        rb_command_docs(b, c);
    } else if (op == CO_LIST) {
        rb_bulk(b, lname, redis_lower_name(c, lname));
    } else {
        rb_command_info(b, c);
    }
}

/* The entries of op for the names in words from..ntok of m, or for the whole table when
 * there is none. As in Redis, an unknown name is nil for INFO and left out of DOCS (whose
 * reply is a map, flattened: name, docs, name, docs, ...). */
static int
reply_commands(struct msg *m, uint32_t from, int op, const struct proto_ctx *ctx)
{
    struct rb b;
    uint64_t n = 0;
    bool all = from >= m->ntok;
    uint32_t count = all ? (uint32_t)RESP_CMD_COUNT : m->ntok - from;

    if (rb_start(&b, m, ctx) != KM_OK)
        return KM_ERROR;
    for (uint32_t i = 0; i < count; i++) {
        if (op != CO_DOCS)
            n++;
        else if (all || lookup_tok(&m->tok[from + i]) != NULL)
            n += 2;
    }
    rb_head(&b, '*', n);
    for (uint32_t i = 0; i < count; i++)
        rb_command(&b, all ? resp_cmd_by_id(i) : lookup_tok(&m->tok[from + i]), op);
    return rb_end(&b);
}

static int
plan_command(struct msg *m, const struct proto_ctx *ctx)
{
    const struct sub *sub;
    int rc;

    if (m->ntok == 1)
        return reply_commands(m, 1, CO_INFO, ctx);
    sub = sub_find(m, "COMMAND", command_subs, KM_ARRAY_LEN(command_subs), &rc, ctx);
    if (sub == NULL)
        return rc;
    switch (sub->op) {
    case CO_COUNT:
        return reply_int(m, RESP_CMD_COUNT, ctx);
    case CO_LIST:
        if (m->ntok > 2)
            return redis_reply_error(m, "ERR COMMAND LIST FILTERBY is not supported by the proxy", ctx);
        return reply_commands(m, 2, CO_LIST, ctx);
    default:
        return reply_commands(m, 2, sub->op, ctx);
    }
}

/* ---- INFO --------------------------------------------------------------------------- */

/* INFO's text, bounded: what does not fit is cut at a line end. */
struct text {
    size_t n;
    char buf[2048];
};

static void text_add(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
text_add(struct text *t, const char *fmt, ...)
{
    va_list ap;
    int k;

    va_start(ap, fmt);
    k = vsnprintf(t->buf + t->n, sizeof(t->buf) - t->n, fmt, ap);
    va_end(ap);
    if (k > 0 && (size_t)k < sizeof(t->buf) - t->n)
        t->n += (size_t)k;
}

/* INFO's sections, in Redis's order; the proxy's own figures under Proxy. */
static const char *const info_sections[] = {
    "Server", "Clients", "Persistence", "Stats", "Proxy", "Keyspace",
};

/* Section i of INFO into t; me is NULL when there is no proxy around (unit tests,
 * fuzzing): only what the protocol itself knows is said then. */
static void
info_section(struct text *t, size_t i, const struct proto_self *me)
{
    char pool[65];
    size_t k = 0;

    text_add(t, "# %s\r\n", info_sections[i]);
    switch (i) {
    case 0:
        text_add(t, "redis_version:" REDIS_LOCAL_VERSION "\r\nredis_mode:proxy\r\n"
                    "keymux_version:" KM_VERSION "\r\narch_bits:%d\r\n", (int)(8 * sizeof(void *)));
        if (me != NULL)
            text_add(t, "process_id:%lld\r\nuptime_in_seconds:%lld\r\nuptime_in_days:%lld\r\n",
                     (long long)me->pid, (long long)me->uptime_s, (long long)(me->uptime_s / 86400));
        break;
    case 1:
        if (me != NULL)
            text_add(t, "connected_clients:%llu\r\n", (unsigned long long)me->pool_clients);
        break;
    case 2:
        text_add(t, "loading:0\r\n");
        break;
    case 3:
        if (me != NULL)
            text_add(t, "total_connections_received:%llu\r\n",
                     (unsigned long long)me->total_connections);
        break;
    case 4:
        if (me == NULL)
            break;
        for (const char *p = me->pool != NULL ? me->pool : ""; *p != '\0' && k < sizeof(pool) - 1; p++)
            pool[k++] = *p >= '!' && *p <= '~' ? *p : '_';
        pool[k] = '\0';
        text_add(t, "pool:%s\r\nservers:%u\r\nservers_live:%u\r\nworkers:%u\r\n"
                    "curr_connections:%llu\r\nconfig_generation:%llu\r\nreloads:%llu\r\n"
                    "reload_failures:%llu\r\n", pool, me->nservers, me->nlive, me->workers,
                 (unsigned long long)me->curr_connections, (unsigned long long)me->config_gen,
                 (unsigned long long)me->reloads, (unsigned long long)me->reload_failures);
        break;
    default:
        break;
    }
}

/* INFO [section ...]: the sections asked for ("all", "everything", "default" or none:
 * every one), as one bulk string of "field:value\r\n" lines, sections apart by an empty line. */
static int
plan_info(struct msg *m, const struct proto_ctx *ctx)
{
    struct proto_self me;
    struct text t;
    struct rb b;
    unsigned want = m->ntok == 1 ? ~0u : 0;
    char word[16];

    for (uint32_t i = 1; i < m->ntok; i++) {
        const char *w = tok_word(&m->tok[i], word, sizeof(word));
        if (strcasecmp(w, "all") == 0 || strcasecmp(w, "everything") == 0 ||
            strcasecmp(w, "default") == 0)
            want = ~0u;
        for (size_t s = 0; s < KM_ARRAY_LEN(info_sections); s++) {
            if (strcasecmp(w, info_sections[s]) == 0)
                want |= 1u << s;
        }
    }
    if (ctx->self != NULL)
        ctx->self(ctx->self_arg, &me);
    t.n = 0;
    for (size_t s = 0; s < KM_ARRAY_LEN(info_sections); s++) {
        if ((want & (1u << s)) == 0)
            continue;
        if (t.n > 0)
            text_add(&t, "\r\n");
        info_section(&t, s, ctx->self != NULL ? &me : NULL);
    }
    if (rb_start(&b, m, ctx) != KM_OK)
        return KM_ERROR;
    rb_bulk(&b, t.buf, t.n);
    return rb_end(&b);
}

/* ---- the rest ----------------------------------------------------------------------- */

/* AUTH [user] password: the pool's redis_auth, the user (if given) "default". */
static int
plan_auth(struct msg *m, const struct proto_ctx *ctx)
{
    if (ctx->auth == NULL)
        return redis_reply_error(m, "ERR Client sent AUTH, but no password is set", ctx);
    if ((m->ntok == 2 || tok_equals(&m->tok[1], "default")) &&
        tok_equals(&m->tok[m->ntok - 1], ctx->auth)) {
        if (ctx->sess != NULL)
            ctx->sess->authed = true;
        return reply_status(m, "+OK\r\n", ctx);
    }
    if (ctx->sess != NULL)
        ctx->sess->authed = false;
    return redis_reply_error(m, "ERR invalid password", ctx);
}

/* SELECT 0, or the pool's redis_db: both name the one database a client sees. */
static int
plan_select(struct msg *m, const struct proto_ctx *ctx)
{
    int64_t db;

    if (!tok_int(&m->tok[1], &db))
        return redis_reply_error(m, "ERR value is not an integer or out of range", ctx);
    if (db == 0 || db == ctx->db)
        return reply_status(m, "+OK\r\n", ctx);
    return redis_reply_error(m, TEXT_SELECT, ctx);
}

int
redis_local_plan(struct msg *m, const struct resp_cmd *c, const struct proto_ctx *ctx)
{
    m->plan = PLAN_LOCAL;
    switch (c->id) {
    case RESP_CMD_PING:
        if (m->ntok > 1)
            return reply_bulk_of(m, &m->tok[1], ctx);
        return reply_status(m, "+PONG\r\n", ctx);
    case RESP_CMD_ECHO:
        return reply_bulk_of(m, &m->tok[1], ctx);
    case RESP_CMD_QUIT:
        m->quit = true;
        return reply_status(m, "+OK\r\n", ctx);
    case RESP_CMD_AUTH:
        return plan_auth(m, ctx);
    case RESP_CMD_SELECT:
        return plan_select(m, ctx);
    case RESP_CMD_HELLO:
        return plan_hello(m, ctx);
    case RESP_CMD_CLIENT:
        return plan_client(m, ctx);
    case RESP_CMD_COMMAND:
        return plan_command(m, ctx);
    case RESP_CMD_INFO:
        return plan_info(m, ctx);
    case RESP_CMD_READONLY:
    case RESP_CMD_READWRITE:
        /* no cluster to read replicas of */
        return reply_status(m, "+OK\r\n", ctx);
    default:
        return redis_reply_error(m, "ERR unsupported command", ctx);
    }
}
