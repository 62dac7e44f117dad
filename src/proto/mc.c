/* src/proto/mc.c: resumable memcached text-protocol tokenizers for requests and replies.
 *
 * Request tokenizer (one request = one command line, plus a data block for storage):
 *
 *        +---- ' ' ends a token (a key is reported: KEY) ----+
 *        v                                                   |
 *   +-> RQ_LINE -- other bytes: token bytes, judged by role -+
 *   |      |-- 0x80 as a request's first byte (binary protocol) ----> RQ_FAIL (not recoverable)
 *   |      |   '\r' is held back (cr) until the next byte: '\n' ends the line,
 *   |      |   anything else makes it a line byte
 *   |      |-- line bound reached without '\n' ----------------------> RQ_FAIL (line too long)
 *   |      | '\n' (a key ending there is reported first: KEY)
 *   |      v
 *   |   RQ_EOL: count the arguments, apply memcached's rules
 *   |      |-- a problem on the line ------------------------------> RQ_FAIL (recoverable)
 *   |      |-- no data block --------------------------------------> RQ_DONE
 *   |      |-- vlen > max_value: RQ_SWALLOW skips vlen+2 bytes -----> RQ_FAIL (recoverable)
 *   |      v
 *   |   RQ_DATA skips vlen bytes -> RQ_DATA_CR '\r' -> RQ_DATA_LF '\n' -> RQ_DONE
 *   |                                   | other byte     | other byte
 *   |                                   +----------------+-> RQ_FAIL (bad data chunk)
 *   +-- mc_req_reset() after RQ_DONE or a recoverable RQ_FAIL
 *
 * Reply tokenizer, started by mc_rsp_init(cmd) for each reply:
 *
 *   +-> RS_LINE: its first word unknown or not an answer to cmd --> RS_FAIL; at '\n':
 *   |      |   VALUE / VA: RS_DATA skips the size -> RS_DATA_CR -> RS_DATA_LF
 *   |      |       VALUE: item complete (KEY) -----------------------+
 *   |      |       VA: RS_DONE                                       |
 *   |      |   STAT: next line ------------------------------------+ |
 *   |      |   END, error line, one-line replies: RS_DONE          | |
 *   +------+-----------------------------------------------------+-+
 *
 *   With then_mn (a quiet meta request the proxy followed with "mn"), a reply that ends
 *   before an MN line is the request's own: its results are kept (in_tail) and one more
 *   line, which must be MN, ends the reply. body_len marks where that MN starts.
 *
 * Tokens are never copied: a token is (offset, length) plus what its role needs to judge
 * it byte by byte (a numeric value, the first bytes of a word, a bad-byte flag). Each
 * token has a role decided by the command and its position (see req_role): key, number
 * of some kind, "noreply" slot, meta flag, extra (too many arguments), ignored. Problems
 * found on a line are remembered (the first one, except that argument-count errors win,
 * as in memcached, which counts tokens before it looks at them) and reported once the
 * line's '\n' is consumed, so the stream stays in step.
 *
 * Reply tokenizer: the same line machine with the roles of a reply line (first word,
 * then the key and numbers of VALUE, the size of VA); VALUE and VA lines are followed by
 * a data block skipped by length and a checked "\r\n". Which words may answer which
 * command is the `replies` mask in the command table below; anything else is an error,
 * because a reply that does not fit its request means the connection is out of step.
 */
#include "proto/mc.h"

#include "core/common.h"

#include <string.h>

enum {
    RQ_LINE,     /* reading the command line */
    RQ_EOL,      /* the line ended (a key ending with it may have been reported): judge it */
    RQ_DATA,     /* skipping the data block */
    RQ_DATA_CR,  /* expecting the '\r' after the data block */
    RQ_DATA_LF,  /* expecting the '\n' after it */
    RQ_SWALLOW,  /* skipping an oversized data block and its two trailing bytes */
    RQ_DONE,     /* complete: DONE until reset */
    RQ_FAIL,     /* error: ERROR until reset */
};

/* How a command's arguments are laid out. */
enum {
    SY_NONE,     /* unknown command */
    SY_RETRIEVE, /* get|gets <key>+ */
    SY_GAT,      /* gat|gats <exptime> <key>+ */
    SY_STORE,    /* set|add|replace|append|prepend <key> <flags> <exptime> <bytes> [noreply] */
    SY_CAS,      /* cas <key> <flags> <exptime> <bytes> <cas unique> [noreply] */
    SY_ARITH,    /* incr|decr <key> <delta> [noreply] */
    SY_DELETE,   /* delete <key> [0] [noreply] */
    SY_TOUCH,    /* touch <key> <exptime> [noreply] */
    SY_META,     /* mg|md|ma <key> <flag>* */
    SY_ME,       /* me <key> <flag>* */
    SY_MS,       /* ms <key> <datalen> <flag>* */
    SY_NOKEY,    /* version, quit, mn, stats: arguments ignored (stats: the first is its subcommand) */
    SY_ADMIN,    /* verbosity <level> [noreply], flush_all [<delay>] [noreply] */
};

/* What a request token is. */
enum {
    RL_WORD,     /* the command word */
    RL_KEY,
    RL_FLAGS,    /* client flags: unsigned 32-bit */
    RL_EXPTIME,  /* storage exptime: signed 64-bit */
    RL_TEXPTIME, /* touch/gat exptime: signed, with its own error text */
    RL_BYTES,    /* data length: unsigned, at most MC_MAX_VLEN_DECL */
    RL_CASID,    /* cas unique: unsigned 64-bit */
    RL_DELTA,    /* incr/decr delta: unsigned 64-bit */
    RL_NOREPLY,  /* the optional last argument: "noreply" or ignored */
    RL_DELARG,   /* delete's optional "0" and "noreply" */
    RL_NUMARG,   /* verbosity's level, flush_all's delay (or a lone "noreply"): judged at the line's end */
    RL_MFLAG,    /* a meta flag, passed through */
    RL_EXTRA,    /* one argument too many */
    RL_IGNORE,   /* arguments nobody reads */
};

#define RW(w) (1u << (w))
#define RW_RETRIEVE (RW(MC_RW_VALUE) | RW(MC_RW_END))
#define RW_STORE    (RW(MC_RW_STORED) | RW(MC_RW_NOT_STORED) | RW(MC_RW_EXISTS) | RW(MC_RW_NOT_FOUND))

struct cmd_info {
    const char *name;
    uint8_t     len;      /* strlen(name) */
    uint8_t     syntax;   /* SY_* */
    bool        data;     /* a data block follows the line */
    uint32_t    replies;  /* RW() mask of the reply words that may answer it, errors aside */
};

/* One place to add a command. A quiet meta request (q flag) may have no reply: its
 * parser then reads the MN of a following mn, hence RW(MC_RW_MN) on mg/ms/md/ma. */
static const struct cmd_info cmd_tab[MC_CMD_COUNT] = {
    [MC_CMD_UNKNOWN] = { "unknown",   7, SY_NONE,     false, 0 },
    [MC_GET]         = { "get",       3, SY_RETRIEVE, false, RW_RETRIEVE },
    [MC_GETS]        = { "gets",      4, SY_RETRIEVE, false, RW_RETRIEVE },
    [MC_GAT]         = { "gat",       3, SY_GAT,      false, RW_RETRIEVE },
    [MC_GATS]        = { "gats",      4, SY_GAT,      false, RW_RETRIEVE },
    [MC_SET]         = { "set",       3, SY_STORE,    true,  RW_STORE },
    [MC_ADD]         = { "add",       3, SY_STORE,    true,  RW_STORE },
    [MC_REPLACE]     = { "replace",   7, SY_STORE,    true,  RW_STORE },
    [MC_APPEND]      = { "append",    6, SY_STORE,    true,  RW_STORE },
    [MC_PREPEND]     = { "prepend",   7, SY_STORE,    true,  RW_STORE },
    [MC_CAS]         = { "cas",       3, SY_CAS,      true,  RW_STORE },
    [MC_INCR]        = { "incr",      4, SY_ARITH,    false, RW(MC_RW_NUMBER) | RW(MC_RW_NOT_FOUND) },
    [MC_DECR]        = { "decr",      4, SY_ARITH,    false, RW(MC_RW_NUMBER) | RW(MC_RW_NOT_FOUND) },
    [MC_DELETE]      = { "delete",    6, SY_DELETE,   false, RW(MC_RW_DELETED) | RW(MC_RW_NOT_FOUND) },
    [MC_TOUCH]       = { "touch",     5, SY_TOUCH,    false, RW(MC_RW_TOUCHED) | RW(MC_RW_NOT_FOUND) },
    [MC_VERSION]     = { "version",   7, SY_NOKEY,    false, RW(MC_RW_VERSION) },
    [MC_QUIT]        = { "quit",      4, SY_NOKEY,    false, 0 },
    [MC_MG]          = { "mg",        2, SY_META,     false,
                         RW(MC_RW_VA) | RW(MC_RW_HD) | RW(MC_RW_EN) | RW(MC_RW_MN) },
    [MC_MS]          = { "ms",        2, SY_MS,       true,
                         RW(MC_RW_HD) | RW(MC_RW_NS) | RW(MC_RW_EX) | RW(MC_RW_NF) | RW(MC_RW_MN) },
    [MC_MD]          = { "md",        2, SY_META,     false,
                         RW(MC_RW_HD) | RW(MC_RW_NF) | RW(MC_RW_EX) | RW(MC_RW_MN) },
    [MC_MA]          = { "ma",        2, SY_META,     false,
                         RW(MC_RW_VA) | RW(MC_RW_HD) | RW(MC_RW_NF) | RW(MC_RW_NS) | RW(MC_RW_EX) |
                         RW(MC_RW_MN) },
    [MC_MN]          = { "mn",        2, SY_NOKEY,    false, RW(MC_RW_MN) },
    [MC_ME]          = { "me",        2, SY_ME,       false, RW(MC_RW_ME) | RW(MC_RW_EN) },
    [MC_VERBOSITY]   = { "verbosity", 9, SY_ADMIN,    false, RW(MC_RW_OK) },
    [MC_FLUSH_ALL]   = { "flush_all", 9, SY_ADMIN,    false, RW(MC_RW_OK) },
    [MC_STATS]       = { "stats",     5, SY_NOKEY,    false, RW(MC_RW_STAT) | RW(MC_RW_END) },
};

/* Reply words; MC_RW_NUMBER is any all-digit first token. */
static const char *const word_tab[MC_RW_COUNT] = {
    [MC_RW_VALUE] = "VALUE", [MC_RW_END] = "END", [MC_RW_STAT] = "STAT",
    [MC_RW_STORED] = "STORED", [MC_RW_NOT_STORED] = "NOT_STORED", [MC_RW_EXISTS] = "EXISTS",
    [MC_RW_NOT_FOUND] = "NOT_FOUND", [MC_RW_DELETED] = "DELETED", [MC_RW_TOUCHED] = "TOUCHED",
    [MC_RW_OK] = "OK", [MC_RW_VERSION] = "VERSION",
    [MC_RW_VA] = "VA", [MC_RW_HD] = "HD", [MC_RW_NS] = "NS", [MC_RW_EX] = "EX",
    [MC_RW_NF] = "NF", [MC_RW_EN] = "EN", [MC_RW_MN] = "MN", [MC_RW_ME] = "ME",
    [MC_RW_ERROR] = "ERROR", [MC_RW_CLIENT_ERROR] = "CLIENT_ERROR",
    [MC_RW_SERVER_ERROR] = "SERVER_ERROR",
};

/* Replies memcached 1.6 gives, reused as reasons. */
static const char ERR_ERROR[] = "ERROR";
static const char ERR_FORMAT[] = "CLIENT_ERROR bad command line format";
static const char ERR_DELETE[] = "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]";
static const char ERR_EXPTIME[] = "CLIENT_ERROR invalid exptime argument";
static const char ERR_DELTA[] = "CLIENT_ERROR invalid numeric delta argument";
static const char ERR_CHUNK[] = "CLIENT_ERROR bad data chunk";
static const char ERR_LINE[] = "CLIENT_ERROR line too long";
static const char ERR_TOO_LARGE[] = "SERVER_ERROR object too large for cache";

const char mc_err_binary[] = "binary protocol not supported";

const char *
mc_cmd_name(enum mc_cmd cmd)
{
    if ((unsigned)cmd >= MC_CMD_COUNT)
        return cmd_tab[MC_CMD_UNKNOWN].name;
    return cmd_tab[cmd].name;
}

bool
mc_cmd_has_data(enum mc_cmd cmd)
{
    return (unsigned)cmd < MC_CMD_COUNT && cmd_tab[cmd].data;
}

/* A byte no key may hold: memcached's text protocol delimits keys by spaces and the
 * documented rule forbids control characters. */
static inline bool
key_byte_bad(uint8_t c)
{
    return c < 33 || c == 127;
}

/* Add decimal digit c to *num; false on a non-digit or on overflow. */
static inline bool
num_push(uint64_t *num, uint8_t c)
{
    if (c < '0' || c > '9')
        return false;
    uint64_t d = (uint64_t)(c - '0');
    if (*num > (UINT64_MAX - d) / 10)
        return false;
    *num = *num * 10 + d;
    return true;
}

/* ---- requests ---------------------------------------------------------------------- */

void
mc_req_reset(struct mc_req_parser *p)
{
    uint32_t max_key = p->max_key, max_line = p->max_line;
    uint64_t max_value = p->max_value, max_get_line = p->max_get_line;

    memset(p, 0, sizeof(*p));
    p->state = RQ_LINE;
    p->cmd = MC_CMD_UNKNOWN;
    p->max_key = max_key;
    p->max_line = max_line;
    p->max_value = max_value;
    p->max_get_line = max_get_line;
}

void
mc_req_init(struct mc_req_parser *p)
{
    memset(p, 0, sizeof(*p));
    p->max_key = MC_MAX_KEY;
    p->max_value = MC_MAX_VALUE;
    p->max_line = MC_MAX_LINE;
    p->max_get_line = MC_MAX_GET_LINE;
    mc_req_reset(p);
}

uint64_t
mc_req_msglen(const struct mc_req_parser *p)
{
    return p->off;
}

uint32_t
mc_req_nkeys(const struct mc_req_parser *p)
{
    return p->nkeys;
}

/* The first problem of the line wins ... */
static void
req_problem(struct mc_req_parser *p, const char *why)
{
    if (p->perr == NULL)
        p->perr = why;
}

/* ... except a wrong argument count, which memcached sees before anything else: its
 * dispatcher answers ERROR before any command looks for "noreply", so ERROR is never
 * silenced. */
static void
req_count_problem(struct mc_req_parser *p)
{
    p->perr = ERR_ERROR;
    p->noreply = false;
}

/* Role of token number i (0 = the command word) of the current command. */
static uint8_t
req_role(const struct mc_req_parser *p, uint32_t i)
{
    if (i == 0)
        return RL_WORD;
    switch (cmd_tab[p->cmd].syntax) {
    case SY_RETRIEVE:
        return RL_KEY;
    case SY_GAT:
        return i == 1 ? RL_TEXPTIME : RL_KEY;
    case SY_STORE: {
        static const uint8_t r[] = { RL_WORD, RL_KEY, RL_FLAGS, RL_EXPTIME, RL_BYTES, RL_NOREPLY };
        return i < KM_ARRAY_LEN(r) ? r[i] : RL_EXTRA;
    }
    case SY_CAS: {
        static const uint8_t r[] = { RL_WORD, RL_KEY, RL_FLAGS, RL_EXPTIME, RL_BYTES, RL_CASID,
                                     RL_NOREPLY };
        return i < KM_ARRAY_LEN(r) ? r[i] : RL_EXTRA;
    }
    case SY_ARITH: {
        static const uint8_t r[] = { RL_WORD, RL_KEY, RL_DELTA, RL_NOREPLY };
        return i < KM_ARRAY_LEN(r) ? r[i] : RL_EXTRA;
    }
    case SY_DELETE: {
        static const uint8_t r[] = { RL_WORD, RL_KEY, RL_DELARG, RL_DELARG };
        return i < KM_ARRAY_LEN(r) ? r[i] : RL_EXTRA;
    }
    case SY_TOUCH: {
        static const uint8_t r[] = { RL_WORD, RL_KEY, RL_TEXPTIME, RL_NOREPLY };
        return i < KM_ARRAY_LEN(r) ? r[i] : RL_EXTRA;
    }
    case SY_META:
    case SY_ME:
        return i == 1 ? RL_KEY : RL_MFLAG;
    case SY_MS:
        return i == 1 ? RL_KEY : i == 2 ? RL_BYTES : RL_MFLAG;
    case SY_ADMIN: {
        static const uint8_t r[] = { RL_WORD, RL_NUMARG, RL_NOREPLY };
        return i < KM_ARRAY_LEN(r) ? r[i] : RL_EXTRA;
    }
    default:
        return RL_IGNORE;
    }
}

/* The open word token equals the NUL-terminated s. */
static bool
req_word_is(const struct mc_req_parser *p, const char *s)
{
    size_t l = strlen(s);
    return p->tok_len == l && l <= sizeof(p->word) && memcmp(p->word, s, l) == 0;
}

/* One byte of a token (c may be a '\r' that did not end the line); pos is its offset. */
static void
req_tok_byte(struct mc_req_parser *p, uint8_t c, uint64_t pos)
{
    if (!p->in_tok) {
        p->in_tok = true;
        p->tok_pos = pos;
        p->tok_len = 0;
        p->role = req_role(p, p->ntok);
        p->wlen = 0;
        p->bad = false;
        p->neg = false;
        p->sign = false;
        p->num = 0;
    }
    p->tok_len++;
    switch (p->role) {
    case RL_WORD:
    case RL_NOREPLY:
    case RL_DELARG:
    case RL_MFLAG:
        if (p->wlen < sizeof(p->word))
            p->word[p->wlen++] = (char)c;
        break;
    case RL_KEY:
        if (key_byte_bad(c))
            p->bad = true;
        break;
    case RL_NUMARG:
        /* a number, or "noreply" where it is the last token */
        if (p->wlen < sizeof(p->word))
            p->word[p->wlen++] = (char)c;
        /* fall through */
    case RL_FLAGS:
    case RL_EXPTIME:
    case RL_TEXPTIME:
    case RL_BYTES:
    case RL_CASID:
    case RL_DELTA:
        if (p->tok_len == 1 && (c == '+' || c == '-')) {
            p->sign = true;
            p->neg = c == '-';
        } else if (!num_push(&p->num, c)) {
            p->bad = true;
        }
        break;
    default:
        break;
    }
}

/* A numeric token is well formed (digits after an optional sign, within 64 bits). */
static bool
req_num_ok(const struct mc_req_parser *p)
{
    return !p->bad && p->tok_len > (p->sign ? 1u : 0u);
}

/* The open token is complete. Returns true when it is a key to report (set in p->pend). */
static bool
req_tok_end(struct mc_req_parser *p)
{
    bool report = false;

    p->in_tok = false;
    if (p->ntok == 1) {
        p->arg.pos = p->tok_pos;
        p->arg.len = (uint32_t)p->tok_len;
    }
    switch (p->role) {
    case RL_WORD:
        p->cmd_pos = p->tok_pos;
        for (int c = MC_CMD_UNKNOWN + 1; c < MC_CMD_COUNT; c++) {
            if (req_word_is(p, cmd_tab[c].name)) {
                p->cmd = (enum mc_cmd)c;
                break;
            }
        }
        if (p->cmd == MC_CMD_UNKNOWN)
            req_count_problem(p);
        break;
    case RL_KEY:
        if (p->bad || p->tok_len > p->max_key) {
            req_problem(p, ERR_FORMAT);
        } else if (p->perr == NULL) {
            p->pend.pos = p->tok_pos;
            p->pend.len = (uint32_t)p->tok_len;
            p->nkeys++;
            report = true;
        }
        break;
    case RL_FLAGS:
        if (!req_num_ok(p) || p->neg || p->num > UINT32_MAX)
            req_problem(p, ERR_FORMAT);
        break;
    case RL_EXPTIME:
    case RL_TEXPTIME:
        if (!req_num_ok(p) || p->num > (p->neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX))
            req_problem(p, p->role == RL_EXPTIME ? ERR_FORMAT : ERR_EXPTIME);
        break;
    case RL_BYTES:
        if (!req_num_ok(p) || p->neg || p->num > MC_MAX_VLEN_DECL)
            req_problem(p, ERR_FORMAT);
        else
            p->vlen = p->num;
        break;
    case RL_CASID:
        if (!req_num_ok(p) || p->neg)
            req_problem(p, ERR_FORMAT);
        break;
    case RL_NUMARG:
        /* memcached 1.6.18: a level is unsigned (64-bit), a delay signed (64-bit) */
        p->arg_ok = req_num_ok(p) &&
                    (p->cmd == MC_VERBOSITY ? !p->neg
                                            : p->num <= (p->neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX));
        p->noreply = req_word_is(p, "noreply");
        break;
    case RL_DELTA:
        if (!req_num_ok(p) || p->neg)
            req_problem(p, ERR_DELTA);
        break;
    case RL_NOREPLY:
        /* memcached looks only at the last token: anything else there is ignored */
        p->noreply = req_word_is(p, "noreply");
        break;
    case RL_DELARG:
        if (p->ntok == 2)
            p->del_zero = req_word_is(p, "0");
        p->noreply = req_word_is(p, "noreply");
        break;
    case RL_MFLAG:
        /* a meta flag is its first byte; memcached ignores what follows it on q and b
         * ("mg foo qq" is quiet) */
        if (p->word[0] == 'q')
            p->quiet = true;
        else if (p->word[0] == 'b')
            p->base64 = true;
        break;
    case RL_EXTRA:
        req_count_problem(p);
        break;
    default:
        break;
    }
    p->ntok++;
    return report;
}

/* The bound on the current line: multigets have their own, as memcached lets them run long. */
static inline uint64_t
req_line_limit(const struct mc_req_parser *p)
{
    uint8_t sy = cmd_tab[p->cmd].syntax;
    return sy == SY_RETRIEVE || sy == SY_GAT ? p->max_get_line : p->max_line;
}

/* Fail with reason why; recoverable tells whether the stream stays in step. */
static int
req_fail(struct mc_req_parser *p, const char *why, bool recoverable)
{
    p->state = RQ_FAIL;
    p->err = why;
    p->recoverable = recoverable;
    return MC_EV_ERROR;
}

/* The line is complete (p->off counts it whole): check the argument count and decide
 * what follows. Returns the event to report, or AGAIN to go on reading bytes. */
static int
req_eol(struct mc_req_parser *p)
{
    uint32_t n = p->ntok;
    uint8_t sy = cmd_tab[p->cmd].syntax;

    p->line_len = p->off;
    if (n == 0) {
        req_count_problem(p);  /* memcached answers an empty line with ERROR */
    } else {
        switch (sy) {
        case SY_RETRIEVE: if (n < 2) req_count_problem(p); break;
        case SY_GAT:
            /* memcached takes "gat <exptime>" and answers END; keymux has no key to route
             * by: ERROR, unless the exptime was bad (memcached's reply then) */
            if (n < 2)
                req_count_problem(p);
            else if (n < 3)
                req_problem(p, ERR_ERROR);
            break;
        case SY_STORE:    if (n < 5) req_count_problem(p); break;
        case SY_CAS:      if (n < 6) req_count_problem(p); break;
        case SY_ARITH:    if (n < 3) req_count_problem(p); break;
        case SY_TOUCH:    if (n < 3) req_count_problem(p); break;
        case SY_META:     if (n < 2) req_count_problem(p); break;
        case SY_ME:       if (n < 2) req_problem(p, ERR_FORMAT); break;
        case SY_MS:
            if (n < 2)
                req_count_problem(p);
            else if (n < 3)
                req_problem(p, ERR_FORMAT);
            break;
        case SY_ADMIN:
            /* as memcached 1.6.18: "verbosity" alone is ERROR, a bad level CLIENT_ERROR bad
             * command line format, a bad delay CLIENT_ERROR invalid exptime argument (both
             * silenced by noreply); a lone "noreply" is flush_all's, not a delay */
            if (p->cmd == MC_VERBOSITY && n < 2)
                req_count_problem(p);
            else if (n >= 2 && !p->arg_ok && !(p->cmd == MC_FLUSH_ALL && n == 2 && p->noreply))
                req_problem(p, p->cmd == MC_VERBOSITY ? ERR_FORMAT : ERR_EXPTIME);
            break;
        case SY_DELETE:
            if (n < 2)
                req_count_problem(p);
            else if ((n == 3 && !p->del_zero && !p->noreply) || (n == 4 && !(p->del_zero && p->noreply)))
                req_problem(p, ERR_DELETE);
            break;
        default:
            break;
        }
    }
    if (p->perr != NULL)
        return req_fail(p, p->perr, true);
    if (!cmd_tab[p->cmd].data) {
        p->state = RQ_DONE;
        return MC_EV_DONE;
    }
    if (p->vlen > p->max_value) {
        /* memcached answers at once and swallows the block and two more bytes unchecked */
        p->perr = ERR_TOO_LARGE;
        p->swallowing = true;
        p->left = p->vlen + 2;
        p->state = RQ_SWALLOW;
        return MC_EV_AGAIN;
    }
    p->left = p->vlen;
    p->state = RQ_DATA;
    return MC_EV_AGAIN;
}

/*
 * Read command-line bytes from buf[*i..n). Returns AGAIN when they ran out, KEY when a
 * key completed (*key set), or the event req_eol or a failure gave.
 */
static int
req_line(struct mc_req_parser *p, const uint8_t *buf, size_t n, size_t *i, struct mc_tok *key)
{
    while (*i < n) {
        uint8_t c = buf[*i];
        uint64_t pos = p->off;

        if (c != '\n' && pos + 1 >= req_line_limit(p))
            return req_fail(p, ERR_LINE, false);
        (*i)++;
        p->off++;
        if (p->cr) {
            p->cr = false;
            if (c != '\n')
                req_tok_byte(p, '\r', pos - 1);  /* a lone '\r' is an ordinary byte */
        }
        if (c == '\n') {
            p->state = RQ_EOL;
            if (p->in_tok && req_tok_end(p)) {
                *key = p->pend;
                return MC_EV_KEY;
            }
            return req_eol(p);
        }
        if (c == '\r') {
            p->cr = true;
        } else if (c == ' ') {
            if (p->in_tok && req_tok_end(p)) {
                *key = p->pend;
                return MC_EV_KEY;
            }
        } else {
            req_tok_byte(p, c, pos);
        }
    }
    return MC_EV_AGAIN;
}

int
mc_req_feed(struct mc_req_parser *p, const uint8_t *buf, size_t n, size_t *used,
            struct mc_tok *key)
{
    size_t i = 0;
    int ev = MC_EV_AGAIN;

    while (ev == MC_EV_AGAIN) {
        switch (p->state) {
        case RQ_LINE:
            if (p->off == 0 && i < n && buf[i] == MC_BINARY_MAGIC) {
                /* a binary-protocol client: no text reply can reach it */
                ev = req_fail(p, mc_err_binary, false);
                break;
            }
            ev = req_line(p, buf, n, &i, key);
            if (ev == MC_EV_AGAIN && i == n)
                goto out;
            break;
        case RQ_EOL:
            ev = req_eol(p);
            break;
        case RQ_DATA:
        case RQ_SWALLOW: {
            size_t take = (size_t)KM_MIN((uint64_t)(n - i), p->left);
            i += take;
            p->off += take;
            p->left -= take;
            if (p->left > 0)
                goto out;
            if (p->state == RQ_SWALLOW) {
                p->swallowing = false;
                ev = req_fail(p, p->perr, true);
            } else {
                p->state = RQ_DATA_CR;
            }
            break;
        }
        case RQ_DATA_CR:
        case RQ_DATA_LF:
            if (i == n)
                goto out;
            if (buf[i] != (p->state == RQ_DATA_CR ? '\r' : '\n')) {
                ev = req_fail(p, ERR_CHUNK, false);
                break;
            }
            i++;
            p->off++;
            if (p->state == RQ_DATA_CR) {
                p->state = RQ_DATA_LF;
            } else {
                p->state = RQ_DONE;
                ev = MC_EV_DONE;
            }
            break;
        case RQ_DONE:
            ev = MC_EV_DONE;
            break;
        default:
            ev = MC_EV_ERROR;
            break;
        }
    }
out:
    *used = i;
    return ev;
}

/* ---- replies ----------------------------------------------------------------------- */

enum {
    RS_LINE,     /* reading a reply line */
    RS_DATA,     /* skipping the data block of a VALUE or VA */
    RS_DATA_CR,  /* expecting the '\r' after it */
    RS_DATA_LF,  /* expecting the '\n' */
    RS_DONE,
    RS_FAIL,
};

static const char RERR_LINE[] = "reply line too long";
static const char RERR_WORD[] = "unknown reply";
static const char RERR_UNEXPECTED[] = "reply does not answer the request";
static const char RERR_VALUE[] = "bad VALUE line";
static const char RERR_VA[] = "bad VA line";
static const char RERR_CHUNK[] = "bad data chunk";
static const char RERR_EMPTY[] = "empty reply line";

/* Start reading a line at the current offset. */
static void
rsp_new_line(struct mc_rsp_parser *p)
{
    p->state = RS_LINE;
    p->line_pos = p->off;
    p->ntok = 0;
    p->in_tok = false;
    p->cr = false;
    p->wlen = 0;
    p->word_id = MC_RW_NONE;
}

void
mc_rsp_init(struct mc_rsp_parser *p, enum mc_cmd cmd)
{
    memset(p, 0, sizeof(*p));
    p->cmd = (unsigned)cmd < MC_CMD_COUNT ? cmd : MC_CMD_UNKNOWN;
    p->max_key = MC_MAX_KEY;
    p->max_line = MC_MAX_LINE;
    p->kind = MC_RSP_NONE;
    rsp_new_line(p);
}

uint64_t
mc_rsp_msglen(const struct mc_rsp_parser *p)
{
    return p->off;
}

static int
rsp_fail(struct mc_rsp_parser *p, const char *why)
{
    p->state = RS_FAIL;
    p->err = why;
    return MC_EV_ERROR;
}

static bool
rsp_is_error_word(int w)
{
    return w == MC_RW_ERROR || w == MC_RW_CLIENT_ERROR || w == MC_RW_SERVER_ERROR;
}

/* One byte of a reply-line token (c may be a '\r' that did not end the line). */
static void
rsp_tok_byte(struct mc_rsp_parser *p, uint8_t c, uint64_t pos)
{
    if (!p->in_tok) {
        p->in_tok = true;
        p->tok_pos = pos;
        p->tok_len = 0;
        p->bad = false;
        p->num = 0;
        p->digits = true;
    }
    p->tok_len++;
    if (p->ntok == 0) {
        if (p->wlen < sizeof(p->word))
            p->word[p->wlen++] = (char)c;
        if (c < '0' || c > '9')
            p->digits = false;
        return;
    }
    if (p->word_id == MC_RW_VALUE) {
        if (p->ntok == 1) {
            if (key_byte_bad(c))
                p->bad = true;
        } else if (!num_push(&p->num, c)) {
            p->bad = true;
        }
    } else if (p->word_id == MC_RW_VA && p->ntok == 1) {
        if (!num_push(&p->num, c))
            p->bad = true;
    }
}

/* The open token of a reply line is complete; MC_EV_AGAIN or a failure. */
static int
rsp_tok_end(struct mc_rsp_parser *p)
{
    p->in_tok = false;
    if (p->ntok == 0) {
        int w = MC_RW_NONE;
        if (p->digits) {
            w = MC_RW_NUMBER;
        } else {
            for (int k = MC_RW_NONE + 1; k < MC_RW_COUNT; k++) {
                const char *s = word_tab[k];
                if (s != NULL && strlen(s) == p->tok_len && memcmp(p->word, s, p->tok_len) == 0) {
                    w = k;
                    break;
                }
            }
        }
        if (w == MC_RW_NONE)
            return rsp_fail(p, RERR_WORD);
        if (p->in_tail ? w != MC_RW_MN
                       : !rsp_is_error_word(w) && !(cmd_tab[p->cmd].replies & RW(w)) &&
                         !(p->then_mn && w == MC_RW_MN))
            return rsp_fail(p, RERR_UNEXPECTED);
        p->word_id = w;
    } else if (p->word_id == MC_RW_VALUE) {
        if (p->ntok == 1) {
            if (p->bad || p->tok_len > p->max_key)
                return rsp_fail(p, RERR_VALUE);
            p->ikey.pos = p->tok_pos;
            p->ikey.len = (uint32_t)p->tok_len;
        } else if (p->bad || p->ntok > 4 || (p->ntok == 2 && p->num > UINT32_MAX)) {
            return rsp_fail(p, RERR_VALUE);
        } else if (p->ntok == 3) {
            p->vlen = p->num;
        }
    } else if (p->word_id == MC_RW_VA && p->ntok == 1) {
        if (p->bad)
            return rsp_fail(p, RERR_VA);
        p->vlen = p->num;
    }
    p->ntok++;
    return MC_EV_AGAIN;
}

/* A reply is complete with the results already set: DONE, or with then_mn, go on to
 * the MN line after the request's own reply (keeping that reply's results). */
static int
rsp_complete(struct mc_rsp_parser *p)
{
    if (p->in_tail) {
        /* the MN that closes a quiet request's reply: results stay the body's */
        p->kind = p->tail_kind;
        p->word_id = p->tail_word;
        p->end_pos = p->tail_end;
    } else if (p->then_mn && p->word_id != MC_RW_MN) {
        p->body_len = p->off;
        p->tail_kind = p->kind;
        p->tail_word = p->word_id;
        p->tail_end = p->end_pos;
        p->in_tail = true;
        rsp_new_line(p);
        return MC_EV_AGAIN;
    } else {
        p->body_len = p->word_id == MC_RW_MN && p->then_mn ? p->line_pos : p->off;
    }
    p->state = RS_DONE;
    return MC_EV_DONE;
}

/* The reply line is complete: decide what follows. */
static int
rsp_eol(struct mc_rsp_parser *p)
{
    int w = p->word_id;

    if (p->ntok == 0)
        return rsp_fail(p, RERR_EMPTY);
    if (rsp_is_error_word(w)) {
        p->is_error = true;
        p->kind = MC_RSP_LINE;
        p->end_pos = p->line_pos;
        return rsp_complete(p);
    }
    switch (w) {
    case MC_RW_VALUE:
        if (p->ntok < 4)
            return rsp_fail(p, RERR_VALUE);
        /* fall through */
    case MC_RW_VA:
        if (w == MC_RW_VA && p->ntok < 2)
            return rsp_fail(p, RERR_VA);
        p->data_pos = p->off;
        p->left = p->vlen;
        p->state = RS_DATA;
        return MC_EV_AGAIN;
    case MC_RW_STAT:
        rsp_new_line(p);
        return MC_EV_AGAIN;
    case MC_RW_END:
        p->kind = p->cmd == MC_STATS ? MC_RSP_STATS : MC_RSP_VALUE_END;
        p->end_pos = p->line_pos;
        return rsp_complete(p);
    default:
        p->kind = MC_RSP_LINE;
        p->end_pos = p->line_pos;
        return rsp_complete(p);
    }
}

/* Read reply-line bytes from buf[*i..n); AGAIN when they ran out, else the event. */
static int
rsp_line(struct mc_rsp_parser *p, const uint8_t *buf, size_t n, size_t *i)
{
    while (*i < n) {
        uint8_t c = buf[*i];
        uint64_t pos = p->off;
        int ev;

        if (c != '\n' && pos - p->line_pos + 1 >= p->max_line)
            return rsp_fail(p, RERR_LINE);
        (*i)++;
        p->off++;
        if (p->cr) {
            p->cr = false;
            if (c != '\n')
                rsp_tok_byte(p, '\r', pos - 1);
        }
        if (c == '\n') {
            if (p->in_tok && (ev = rsp_tok_end(p)) != MC_EV_AGAIN)
                return ev;
            if ((ev = rsp_eol(p)) != MC_EV_AGAIN || p->state != RS_LINE)
                return ev;
        } else if (c == '\r') {
            p->cr = true;
        } else if (c == ' ') {
            if (p->in_tok && (ev = rsp_tok_end(p)) != MC_EV_AGAIN)
                return ev;
        } else {
            rsp_tok_byte(p, c, pos);
        }
    }
    return MC_EV_AGAIN;
}

int
mc_rsp_feed(struct mc_rsp_parser *p, const uint8_t *buf, size_t n, size_t *used,
            struct mc_elem *el)
{
    size_t i = 0;
    int ev = MC_EV_AGAIN;

    while (ev == MC_EV_AGAIN) {
        switch (p->state) {
        case RS_LINE:
            ev = rsp_line(p, buf, n, &i);
            if (ev == MC_EV_AGAIN && p->state == RS_LINE)
                goto out;  /* input ran out mid-line */
            break;
        case RS_DATA: {
            size_t take = (size_t)KM_MIN((uint64_t)(n - i), p->left);
            i += take;
            p->off += take;
            p->left -= take;
            if (p->left > 0)
                goto out;
            p->state = RS_DATA_CR;
            break;
        }
        case RS_DATA_CR:
        case RS_DATA_LF:
            if (i == n)
                goto out;
            if (buf[i] != (p->state == RS_DATA_CR ? '\r' : '\n')) {
                ev = rsp_fail(p, RERR_CHUNK);
                break;
            }
            i++;
            p->off++;
            if (p->state == RS_DATA_CR) {
                p->state = RS_DATA_LF;
            } else if (p->word_id == MC_RW_VA) {
                p->kind = MC_RSP_META_VALUE;
                p->end_pos = p->line_pos;
                ev = rsp_complete(p);
            } else {
                el->pos = p->line_pos;
                el->len = p->off - p->line_pos;
                el->key = p->ikey;
                p->nitems++;
                rsp_new_line(p);
                ev = MC_EV_KEY;
            }
            break;
        case RS_DONE:
            ev = MC_EV_DONE;
            break;
        default:
            ev = MC_EV_ERROR;
            break;
        }
    }
out:
    *used = i;
    return ev;
}
