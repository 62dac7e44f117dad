/* src/proto/mc.h: resumable memcached text-protocol tokenizers (classic and meta commands; pure: no I/O, no allocation). */
#ifndef KM_MC_H
#define KM_MC_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

/*
 * Both tokenizers are fed a message in arbitrary chunks (the proxy's input is a chain of
 * fixed-size segments) and keep their state between calls, like the RESP ones in
 * resp.h. They never look at a byte twice, never look past the n bytes they are given,
 * skip data blocks by their declared length without scanning them, and report positions
 * as offsets from the first byte of the current message, never as pointers.
 */

/* What a feed call stopped at. */
enum mc_ev {
    MC_EV_AGAIN,  /* all n bytes consumed, no event: call again with more input */
    MC_EV_KEY,    /* request: a key is complete; reply: a VALUE item is complete */
    MC_EV_DONE,   /* the message is complete; reset (request) or init (reply) before the next */
    MC_EV_ERROR,  /* bad input; ->err says why; sticky until reset / init */
};

/* Commands, as the request tokenizer names them and the reply tokenizer expects them. */
enum mc_cmd {
    MC_CMD_UNKNOWN,
    MC_GET, MC_GETS, MC_GAT, MC_GATS,
    MC_SET, MC_ADD, MC_REPLACE, MC_APPEND, MC_PREPEND, MC_CAS,
    MC_INCR, MC_DECR, MC_DELETE, MC_TOUCH, MC_VERSION, MC_QUIT,
    MC_MG, MC_MS, MC_MD, MC_MA, MC_MN, MC_ME,
    MC_VERBOSITY, MC_FLUSH_ALL, MC_STATS,
    MC_CMD_COUNT
};

/* A token of a request: offset from the message start and length. */
struct mc_tok {
    uint64_t pos;
    uint32_t len;
};

#define MC_MAX_KEY        250u
#define MC_MAX_VALUE      (1024u * 1024u)       /* memcached's default item size (-I 1m) */
#define MC_MAX_LINE       2048u                 /* memcached's own bound on a command line */
#define MC_MAX_GET_LINE   (16u * 1024u * 1024u) /* get/gets/gat/gats lines (multigets) */
#define MC_MAX_VLEN_DECL  2147483645u           /* INT_MAX - 2: memcached's bound on <bytes> */
#define MC_BINARY_MAGIC   0x80u                 /* first byte of a binary-protocol request */

/* The error reason of a request that starts with MC_BINARY_MAGIC: a binary-protocol client,
 * which could read no text reply ("binary protocol not supported"). */
extern const char mc_err_binary[];

/*
 * Request tokenizer state. Fields before `cmd` are private to mc.c; the rest are results
 * (valid as their comments say) and caller-set limits (set by mc_req_init, kept by
 * mc_req_reset, may be changed between messages).
 */
struct mc_req_parser {
    uint8_t     state;      /* grammar position of the next byte (enum in mc.c) */
    uint8_t     role;       /* what the token being read is (enum in mc.c) */
    bool        in_tok;     /* a token of the command line is open */
    bool        cr;         /* the previous line byte was a '\r' not yet known to end the line */
    bool        bad;        /* the open token has a byte its role does not allow */
    bool        neg;        /* the open numeric token started with '-' */
    bool        del_zero;   /* delete: the token after the key was "0" */
    bool        arg_ok;     /* verbosity, flush_all: the first argument is a number of its kind */
    bool        sign;       /* the open numeric token started with '+' or '-' */
    uint8_t     wlen;       /* bytes of the open word token held in word[] (capped) */
    char        word[10];   /* start of the open word token (command, "noreply", "0", a meta flag) */
    uint32_t    ntok;       /* tokens completed on the command line, the command word included */
    uint32_t    nkeys;      /* keys reported so far */
    uint64_t    off;        /* bytes of the current message consumed so far */
    uint64_t    tok_pos;    /* offset of the open token */
    uint64_t    tok_len;    /* bytes of the open token so far */
    uint64_t    num;        /* value of the open numeric token */
    uint64_t    left;       /* data block (and its CRLF) bytes still to skip */
    struct mc_tok pend;     /* a key completed at the end of the line, reported before DONE */
    const char *perr;       /* reason of the first problem on the line, reported once it ends */

    enum mc_cmd cmd;        /* result: known once the command word is complete (MC_CMD_UNKNOWN before) */
    uint64_t    cmd_pos;    /* result: offset of the command word, valid once cmd is known */
    bool        noreply;    /* result: classic storage/incr/decr/delete/touch (and verbosity,
                               flush_all) with a trailing "noreply"; set even when the line is bad
                               (memcached then stays silent too); meta commands never set it (see quiet) */
    bool        quiet;      /* result: a meta request carries the q flag (its reply may be absent) */
    bool        base64;     /* result: a meta request carries the b flag (its key is base64, reported as written) */
    bool        swallowing; /* result: an oversized data block is being skipped: the bytes consumed
                               from now on belong to no request and may be dropped */
    uint64_t    vlen;       /* result: declared data length of set/add/replace/append/prepend/cas/ms */
    uint64_t    line_len;   /* result: bytes of the command line including its "\r\n" (or "\n"), once it ended */
    struct mc_tok arg;      /* result: the first argument after the command word, once complete (len 0
                               when none): stats' subcommand, verbosity's level, a key */
    uint32_t    max_key;    /* caller-set: longest key (default 250) */
    uint64_t    max_value;  /* caller-set: largest data block accepted (default 1 MiB) */
    uint32_t    max_line;   /* caller-set: longest command line, its "\r\n" included (default 2048),
                               for every command but get/gets/gat/gats */
    uint64_t    max_get_line; /* caller-set: the same for get/gets/gat/gats (default 16 MiB) */
    const char *err;        /* after MC_EV_ERROR: the reply to give, worded as memcached 1.6 does
                               ("ERROR", "CLIENT_ERROR bad command line format", ...) without CRLF;
                               or mc_err_binary, the one reason that is no reply (see below) */
    bool        recoverable;/* after MC_EV_ERROR: true when the bad request was consumed whole (through
                               its line's '\n', or through a skipped data block): reset and go on with
                               the next byte; false when framing is lost: close the connection */
};

/* Initialize a request tokenizer completely, with the default limits. */
void mc_req_init(struct mc_req_parser *p);

/* Make the tokenizer ready for the next request (after DONE or ERROR); the limits are kept. */
void mc_req_reset(struct mc_req_parser *p);

/*
 * Consume request bytes from buf[0..n) up to the first event; *used is always set to the
 * bytes consumed by this call, and the caller passes the rest in the next call.
 *
 * MC_EV_KEY: a key is complete, *key filled (offset from the message start). Keys are
 *   reported as soon as the byte after them arrives: get/gets every key, gat/gats every
 *   key after the exptime, storage/incr/decr/delete/touch/mg/ms/md/ma/me the one key.
 *   An ERROR may still follow (a later bad token, a bad data chunk): the keys then mean
 *   nothing. No KEY is reported once a problem was found on the line.
 * MC_EV_DONE: the request is complete: its line and, for set/add/replace/append/prepend/
 *   cas/ms, its data block and the "\r\n" after it (checked). Returned by the call that
 *   consumes the last byte, or by the call after a KEY reported at the end of the line
 *   (consuming 0 bytes). Every later call returns DONE again until mc_req_reset().
 * MC_EV_AGAIN: all n bytes consumed without an event.
 * MC_EV_ERROR: p->err is the reply to give and p->recoverable tells whether the stream
 *   can go on; sticky until reset.
 *   - Line errors (unknown command, missing or extra arguments, bad numbers, a bad key)
 *     are reported once the line's '\n' is consumed: recoverable. As in memcached, the
 *     data block of a storage command whose line is bad is not skipped: its bytes are
 *     read as the next command line.
 *   - A value longer than max_value: the line is taken, then the declared block and the
 *     two bytes after it (vlen + 2, not checked, as memcached does) are consumed as they
 *     arrive, returning AGAIN with p->swallowing set; the ERROR ("SERVER_ERROR object too
 *     large for cache", recoverable) comes from the call that consumes the last of them.
 *     Nothing is held meanwhile: the caller may drop consumed bytes while swallowing.
 *   - A data block not followed by "\r\n" ("CLIENT_ERROR bad data chunk") and a line
 *     longer than its bound without '\n' ("CLIENT_ERROR line too long") are not
 *     recoverable; the offending byte is not consumed.
 *   - A request whose first byte is MC_BINARY_MAGIC (a binary-protocol client) is not
 *     recoverable, with err mc_err_binary and nothing consumed: the caller closes the
 *     connection without a reply. The byte anywhere else is an ordinary one.
 * mc_req_msglen() is the size of what the request (or the bad input) consumed.
 */
int mc_req_feed(struct mc_req_parser *p, const uint8_t *buf, size_t n, size_t *used,
                struct mc_tok *key);

/* Bytes of the current request consumed so far: the total (line + data block + "\r\n") once DONE. */
uint64_t mc_req_msglen(const struct mc_req_parser *p);

/* Keys reported so far in the current request. */
uint32_t mc_req_nkeys(const struct mc_req_parser *p);

/* The command's name as memcached spells it ("get", "mg", ...); "unknown" for MC_CMD_UNKNOWN. */
const char *mc_cmd_name(enum mc_cmd cmd);

/* The command carries a data block: the storage commands (set, add, replace, append,
 * prepend, cas, ms). */
bool mc_cmd_has_data(enum mc_cmd cmd);

/* What a complete reply was. */
enum mc_rsp_kind {
    MC_RSP_NONE,        /* not complete yet */
    MC_RSP_LINE,        /* one line: STORED, a number, HD ..., VERSION x, ME ..., ERROR, ... */
    MC_RSP_VALUE_END,   /* get/gets/gat/gats: zero or more VALUE items then END */
    MC_RSP_META_VALUE,  /* mg/ma: "VA <size> <flags>*\r\n<data>\r\n" */
    MC_RSP_STATS,       /* stats: zero or more STAT lines then END */
};

/* The first word of a reply line. */
enum mc_rsp_word {
    MC_RW_NONE,
    MC_RW_VALUE, MC_RW_END, MC_RW_STAT,
    MC_RW_STORED, MC_RW_NOT_STORED, MC_RW_EXISTS, MC_RW_NOT_FOUND,
    MC_RW_DELETED, MC_RW_TOUCHED, MC_RW_OK, MC_RW_NUMBER, MC_RW_VERSION,
    MC_RW_VA, MC_RW_HD, MC_RW_NS, MC_RW_EX, MC_RW_NF, MC_RW_EN, MC_RW_MN, MC_RW_ME,
    MC_RW_ERROR, MC_RW_CLIENT_ERROR, MC_RW_SERVER_ERROR,
    MC_RW_COUNT
};

/* One VALUE item of a retrieval reply, as offsets into the reply. */
struct mc_elem {
    uint64_t pos;        /* offset of the 'V' of its VALUE line */
    uint64_t len;        /* raw length through the "\r\n" after its data */
    struct mc_tok key;   /* its key (offset from the reply start) */
};

/*
 * Reply tokenizer state. Fields before `cmd` are private to mc.c; the rest are set by
 * mc_rsp_init (cmd, limits) or results (valid once DONE unless said otherwise).
 */
struct mc_rsp_parser {
    uint8_t     state;      /* grammar position of the next byte (enum in mc.c) */
    bool        in_tok;     /* a token of the line is open */
    bool        cr;         /* the previous line byte was a '\r' not yet known to end the line */
    bool        bad;        /* the open token has a byte its role does not allow */
    bool        digits;     /* the first token of the line is all digits so far */
    uint8_t     wlen;       /* bytes of the line's first word held in word[] (capped) */
    char        word[14];   /* start of the line's first word */
    uint32_t    ntok;       /* tokens completed on the current line */
    uint64_t    line_pos;   /* offset of the current line */
    uint64_t    tok_pos;    /* offset of the open token */
    uint64_t    tok_len;    /* bytes of the open token so far */
    uint64_t    num;        /* value of the open numeric token */
    uint64_t    left;       /* data bytes still to skip */
    uint64_t    off;        /* bytes of the reply consumed so far */
    struct mc_tok ikey;     /* key of the VALUE item being read */
    bool        in_tail;    /* then_mn: the request's own reply is complete, the MN line is next */
    int         tail_kind;  /* then_mn: kind, word_id and end_pos of that reply, kept while the */
    int         tail_word;  /*   MN line is read */
    uint64_t    tail_end;

    enum mc_cmd cmd;        /* set by mc_rsp_init: the request this reply answers */
    uint32_t    max_key;    /* caller-set after init: longest key in a VALUE line (default 250) */
    uint32_t    max_line;   /* caller-set after init: longest reply line, "\r\n" included (default 2048) */
    bool        then_mn;    /* caller-set after init: the request was followed by "mn" on the connection
                               (a quiet meta request): the reply is the request's own reply, which may be
                               absent, then "MN"; DONE comes at the MN, and the results describe the
                               request's own reply (word_id MC_RW_MN when there was none) */
    int         kind;       /* result: enum mc_rsp_kind */
    int         word_id;    /* result: enum mc_rsp_word of the reply's last line (END for a retrieval,
                               VA for a meta value, MN when a quiet meta request had no reply of its
                               own and the MN of a following mn was read instead) */
    bool        is_error;   /* result: the reply is ERROR, CLIENT_ERROR ... or SERVER_ERROR ... */
    uint32_t    nitems;     /* VALUE items reported so far */
    uint64_t    end_pos;    /* result: offset of the reply's last line (the END line of a retrieval or
                               stats reply, or the error line that ended it; 0 for one-line replies) */
    uint64_t    vlen;       /* result: data length of a VA reply (and of the last VALUE item) */
    uint64_t    data_pos;   /* result: offset of that data block */
    uint64_t    body_len;   /* result: bytes of the request's own reply: the whole reply, or with then_mn
                               the bytes before the MN line (0 when the quiet request had no reply) */
    const char *err;        /* after MC_EV_ERROR: why the reply is malformed (the server connection
                               has lost framing and must be closed) */
};

/* Prepare a reply tokenizer for the reply to a request `cmd`, with the default limits. */
void mc_rsp_init(struct mc_rsp_parser *p, enum mc_cmd cmd);

/*
 * Consume reply bytes from buf[0..n) up to the first event, as mc_req_feed does.
 * MC_EV_KEY (get/gets/gat/gats): a "VALUE <key> <flags> <bytes> [<cas>]\r\n<data>\r\n"
 *   item is complete (the "\r\n" after the data checked); *el describes it.
 * MC_EV_DONE: the reply is complete; p->kind, p->word_id, p->is_error, p->end_pos,
 *   p->body_len and mc_rsp_msglen() describe it. A retrieval reply ends with END (part of
 *   the reply) or with an error line in place of a VALUE or END. With then_mn, the reply
 *   runs on through the "MN" line that follows the request's own reply (any line but MN
 *   there is an ERROR). Every later call returns DONE again.
 * MC_EV_ERROR: malformed reply or one that cannot answer p->cmd (p->err); sticky. The
 *   connection it came from is out of step and must be closed.
 * Data blocks are skipped by length; every line is bounded by max_line.
 */
int mc_rsp_feed(struct mc_rsp_parser *p, const uint8_t *buf, size_t n, size_t *used,
                struct mc_elem *el);

/* Bytes of the current reply consumed so far; the total once DONE. */
uint64_t mc_rsp_msglen(const struct mc_rsp_parser *p);

#endif
