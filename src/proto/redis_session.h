/* src/proto/redis_session.h: a Redis client's transaction and WATCH state, as the proxy
 * plans its requests (the connections that serve them are proxy/session.c's). */
#ifndef KM_REDIS_SESSION_H
#define KM_REDIS_SESSION_H

#include "proto/msg.h"
#include "proto/proto.h"
#include "proto/resp_cmd.h"

/*
 * A command of policy SESSION (MULTI EXEC DISCARD WATCH UNWATCH WAIT) whose word count
 * passed its arity: m becomes PLAN_SESSION with its m->sop, and ctx->sess follows it (WAIT
 * outside a transaction: SOP_WAIT, blocking; inside: queued, SOP_KEYLESS), or, where
 * Redis refuses it (EXEC without MULTI, WATCH inside MULTI, ...), an error reply with
 * Redis's text. Without a session (an internal request) it is refused. KM_OK or KM_ERROR
 * (out of memory).
 */
int redis_session_plan(struct msg *m, const struct resp_cmd *c, const struct proto_ctx *ctx);

/*
 * A command of policy LOCAL other than QUIT inside MULTI (ctx->sess->multi): PING, ECHO
 * are queued (PLAN_SESSION, SOP_KEYLESS) for the server to answer in EXEC's array; the
 * others, which the proxy answers itself, are refused (they cannot run inside the
 * server's transaction). KM_OK or KM_ERROR.
 */
int redis_session_local(struct msg *m, const struct resp_cmd *c, const struct proto_ctx *ctx);

/*
 * m was planned while a transaction was open (c its entry, NULL when unknown): what was
 * refused marks the transaction bad (EXEC then answers EXECABORT), as Redis marks it for
 * an unknown command or a wrong word count; a command with keys is queued (in_multi: its
 * keys must be on one server, a split command is not split). KM_OK.
 */
int redis_session_queued(struct msg *m, const struct resp_cmd *c, const struct proto_ctx *ctx);

#endif
