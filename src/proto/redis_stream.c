/* src/proto/redis_stream.c: XREAD and XREADGROUP: keys after STREAMS, BLOCK as blocking.
 *
 * Redis finds these commands' keys by walking their options: the words that follow
 * STREAMS are keys then IDs, half and half. The proxy walks them the same way, so that a
 * word that is an option's argument (a group named STREAMS) is never taken for the
 * keyword, and answers what Redis refuses in the options with Redis's own text, since
 * without STREAMS there is no key to route by. What lies past the options (the IDs, a
 * group that does not exist) is the server's to judge.
 *
 * With BLOCK the command may wait for as long as its timeout says (0: for ever), so it
 * is a blocking command: proxy/session.c runs it on a connection pinned to the client,
 * where it holds up no other client and the pool timeout does not cut it short. Without
 * BLOCK it is an ordinary read on the shared connections.
 *
 * Pure, like the rest of src/proto: no sockets, no globals.
 */
#include "proto/redis_stream.h"

#include "core/common.h"
#include "proto/redis_local.h"

#include <string.h>
#include <strings.h>

#define TEXT_SYNTAX "ERR syntax error"
#define TEXT_NOT_INT "ERR value is not an integer or out of range"
#define TEXT_TMO_NOT_INT "ERR timeout is not an integer or out of range"
#define TEXT_TMO_NEG "ERR timeout is negative"
#define TEXT_UNBALANCED \
    "ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified."
#define TEXT_GROUP_ONLY \
    "ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead."
#define TEXT_NOACK_ONLY \
    "ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead."
#define TEXT_NO_GROUP "ERR Missing GROUP option for XREADGROUP"

enum xopt { XOPT_OTHER, XOPT_BLOCK, XOPT_COUNT, XOPT_STREAMS, XOPT_GROUP, XOPT_NOACK };

/* Which option word t is, case-insensitively; only its first bytes are read. */
static enum xopt
xopt_of(const struct tok *t)
{
    static const struct { const char *name; enum xopt opt; } opts[] = {
        { "BLOCK", XOPT_BLOCK }, { "COUNT", XOPT_COUNT }, { "STREAMS", XOPT_STREAMS },
        { "GROUP", XOPT_GROUP }, { "NOACK", XOPT_NOACK },
    };
    char w[8];

    if (t->len >= sizeof(w))
        return XOPT_OTHER;
    size_t n = msg_tok_copy(t, 0, w, sizeof(w) - 1);
    w[n] = '\0';
    for (size_t i = 0; i < KM_ARRAY_LEN(opts); i++) {
        if (strcasecmp(w, opts[i].name) == 0)
            return opts[i].opt;
    }
    return XOPT_OTHER;
}

/* BLOCK's argument, as Redis's getTimeoutFromObjectOrReply reads milliseconds: NULL when
 * good, else the error. (A timeout too far in the future to add to the clock is the
 * server's to refuse.) */
static const char *
timeout_err(const struct tok *t)
{
    int64_t v;

    if (msg_tok_int(t, &v) != KM_OK)
        return TEXT_TMO_NOT_INT;
    return v < 0 ? TEXT_TMO_NEG : NULL;
}

void
redis_stream_scan(const struct msg *m, bool group, struct redis_streams *out)
{
    uint32_t n = m->ntok;
    bool has_group = false;
    int64_t count;

    memset(out, 0, sizeof(*out));
    for (uint32_t i = 1; i < n && out->err == NULL; i++) {
        uint32_t more = n - i - 1;   /* words after this one */

        switch (xopt_of(&m->tok[i])) {
        case XOPT_BLOCK:
            if (more == 0)
                break;
            out->err = timeout_err(&m->tok[++i]);
            out->block = out->err == NULL;
            continue;
        case XOPT_COUNT:
            if (more == 0)
                break;
            if (msg_tok_int(&m->tok[++i], &count) != KM_OK)
                out->err = TEXT_NOT_INT;
            continue;
        case XOPT_STREAMS:
            if (more == 0)
                break;
            if (more % 2 != 0) {
                out->err = TEXT_UNBALANCED;
            } else {
                out->first = i + 1;
                out->nkeys = more / 2;
            }
            i = n;   /* the rest are keys and IDs */
            continue;
        case XOPT_GROUP:
            if (more < 2)
                break;
            if (!group)
                out->err = TEXT_GROUP_ONLY;
            has_group = true;
            i += 2;
            continue;
        case XOPT_NOACK:
            if (!group)
                out->err = TEXT_NOACK_ONLY;
            continue;
        default:
            break;
        }
        out->err = TEXT_SYNTAX;   /* an unknown word, or an option short of its arguments */
    }
    if (out->err == NULL && out->first == 0)
        out->err = TEXT_SYNTAX;
    else if (out->err == NULL && group && !has_group)
        out->err = TEXT_NO_GROUP;
    if (out->err != NULL) {
        out->first = out->nkeys = 0;
        out->block = false;
    }
}

int
redis_stream_plan(struct msg *m, const struct resp_cmd *c, const struct proto_ctx *ctx)
{
    struct redis_streams s;

    redis_stream_scan(m, c->id == RESP_CMD_XREADGROUP, &s);
    if (s.err != NULL)
        return redis_reply_error(m, s.err, ctx);
    m->key_first = s.first;
    m->key_last = s.first + s.nkeys - 1;
    m->key_step = 1;
    m->key_extra = 0;
    m->plan = s.nkeys == 1 ? PLAN_SINGLE : PLAN_SAMESRV;
    /* on a connection of its own, so that it blocks no other client (proxy/session.c) */
    m->blocking = s.block && ctx->sess != NULL;
    return KM_OK;
}
