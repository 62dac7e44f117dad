/* src/proto/redis_session.c: MULTI, EXEC, DISCARD, WATCH, UNWATCH as the proxy plans them.
 *
 * The session's state lives in struct proto_session (multi, multi_bad, watching); where
 * the requests then go (the pinned connection, the commands held until a transaction's
 * server is known) is proxy/session.c's. What Redis itself refuses without touching the
 * transaction (a nested MULTI, WATCH inside MULTI, EXEC or DISCARD without MULTI) is
 * refused here with Redis 7.0's text; what Redis refuses while queueing (an unknown
 * command, a wrong word count) marks the transaction, and its EXEC answers EXECABORT.
 * WAIT belongs here too: what it counts (the writes of its connection) is the session's.
 * Pure: no sockets, no globals.
 */
#include "proto/redis_session.h"

#include "proto/redis_local.h"

#include <stdio.h>

#define TEXT_EXECABORT "EXECABORT Transaction discarded because of previous errors."

static void
session_end(struct proto_session *s)
{
    s->multi = 0;
    s->multi_bad = 0;
    s->watching = 0;
}

int
redis_session_plan(struct msg *m, const struct resp_cmd *c, const struct proto_ctx *ctx)
{
    struct proto_session *s = ctx->sess;

    if (s == NULL)
        return redis_reply_error(m, "ERR unsupported command", ctx);
    switch (c->id) {
    case RESP_CMD_MULTI:
        if (s->multi)
            return redis_reply_error(m, "ERR MULTI calls can not be nested", ctx);
        s->multi = 1;
        s->multi_bad = 0;
        m->sop = SOP_MULTI;
        break;
    case RESP_CMD_EXEC:
        if (!s->multi)
            return redis_reply_error(m, "ERR EXEC without MULTI", ctx);
        if (s->multi_bad) {
            session_end(s);
            int rc = redis_reply_error(m, TEXT_EXECABORT, ctx);
            m->plan = PLAN_SESSION;
            m->sop = SOP_EXECABORT;
            return rc;
        }
        session_end(s);
        m->sop = SOP_EXEC;
        break;
    case RESP_CMD_DISCARD:
        if (!s->multi)
            return redis_reply_error(m, "ERR DISCARD without MULTI", ctx);
        session_end(s);
        m->sop = SOP_DISCARD;
        break;
    case RESP_CMD_WATCH:
        if (s->multi)
            return redis_reply_error(m, "ERR WATCH inside MULTI is not allowed", ctx);
        s->watching = 1;
        m->key_first = 1;
        m->key_last = m->ntok - 1;
        m->key_step = 1;
        m->sop = SOP_WATCH;
        break;
    case RESP_CMD_UNWATCH:
        if (s->multi) {
            m->sop = SOP_KEYLESS;   /* queued: Redis runs it inside EXEC */
        } else {
            s->watching = 0;
            m->sop = SOP_UNWATCH;
        }
        break;
    case RESP_CMD_WAIT:
        if (s->multi) {
            /* queued: inside EXEC Redis answers at once with the replicas that have
             * the transaction's writes so far, blocking no one */
            m->sop = SOP_KEYLESS;
        } else {
            /* it waits for the replicas to acknowledge the writes made on its own
             * connection: only the client's pinned one has writes of the client alone */
            m->sop = SOP_WAIT;
            m->blocking = true;
        }
        break;
    default:
        return redis_reply_error(m, "ERR unsupported command", ctx);
    }
    m->plan = PLAN_SESSION;
    return KM_OK;
}

int
redis_session_local(struct msg *m, const struct resp_cmd *c, const struct proto_ctx *ctx)
{
    char text[128];

    if (c->id == RESP_CMD_PING || c->id == RESP_CMD_ECHO) {
        m->plan = PLAN_SESSION;
        m->sop = SOP_KEYLESS;
        return KM_OK;
    }
    snprintf(text, sizeof(text), "ERR %s inside MULTI is not supported by the proxy", c->name);
    return redis_reply_error(m, text, ctx);
}

int
redis_session_queued(struct msg *m, const struct resp_cmd *c, const struct proto_ctx *ctx)
{
    struct proto_session *s = ctx->sess;

    if (c != NULL && c->policy == RESP_P_SESSION && resp_cmd_arity_ok(c, m->ntok))
        return KM_OK;   /* its own rules (redis_session_plan) */
    switch (m->plan) {
    case PLAN_ERROR:
        s->multi_bad = 1;
        break;
    case PLAN_SESSION:
        m->in_multi = true;
        break;
    case PLAN_SPLIT:
        /* one command of the transaction: its keys must be on the transaction's server */
        m->plan = PLAN_SAMESRV;
        m->merge = MERGE_NONE;
        m->in_multi = true;
        break;
    case PLAN_SINGLE:
    case PLAN_SAMESRV:
        m->in_multi = true;
        m->blocking = false;   /* Redis does not block inside a transaction */
        break;
    default:
        break;   /* QUIT */
    }
    return KM_OK;
}
