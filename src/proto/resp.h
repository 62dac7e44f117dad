/* src/proto/resp.h: resumable RESP tokenizers for requests and replies (pure: no I/O, no allocation). */
#ifndef KM_RESP_H
#define KM_RESP_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

/*
 * Both tokenizers are fed a message in arbitrary chunks (the proxy's input is a chain
 * of fixed-size segments) and keep their state between calls. They never look at a
 * byte twice, never look past the n bytes they are given, skip bulk payloads by
 * length, and report positions as offsets from the first byte of the current message,
 * so the caller can map them onto whatever segments hold the message.
 */

/* What a feed call stopped at. */
enum resp_ev {
    RESP_EV_AGAIN,  /* all n bytes consumed, no event: call again with more input */
    RESP_EV_ARG,    /* one argument (request) or top-level element (reply) is complete */
    RESP_EV_DONE,   /* the message is complete; reset before feeding the next one */
    RESP_EV_ERROR,  /* malformed input; ->err says why; the parser stays in error */
};

/* One request argument, as offsets into the message. */
struct resp_arg {
    uint64_t pos;   /* offset of the argument's first data byte from the start of the message */
    uint64_t len;   /* data length */
    uint32_t hdr;   /* framing bytes before the data ("$3\r\n" = 4) for multibulk, 0 for inline;
                       a multibulk argument's raw token is [pos - hdr, pos + len + 2) */
};

/* Request tokenizer state. Fields above the limits are private to resp.c. */
struct resp_req_parser {
    uint8_t     state;      /* grammar position of the next byte (enum in resp.c) */
    bool        inl;        /* the current message is an inline command */
    bool        neg;        /* the number being read started with '-' */
    uint8_t     ndig;       /* digits of the number being read */
    uint64_t    num;        /* magnitude of the number being read */
    uint64_t    off;        /* bytes of the current message consumed so far */
    uint64_t    argc;       /* multibulk: argument count declared by "*N" */
    uint64_t    nargs;      /* arguments reported so far */
    uint64_t    left;       /* payload bytes of the current bulk still to skip */
    uint64_t    tok;        /* offset of the current token ('$' of a bulk, first byte inline) */
    uint64_t    apos;       /* offset of the current bulk's first data byte */
    uint64_t    max_bulk;   /* caller-set: largest bulk length accepted (default 512 MiB) */
    uint64_t    max_args;   /* caller-set: largest multibulk count accepted (default 1024*1024) */
    uint32_t    max_inline; /* caller-set: longest inline line accepted, '\n' excluded (default 64 KiB) */
    const char *err;        /* after RESP_EV_ERROR: the reason, worded like Redis ("Protocol error: ..."),
                               without "-ERR "; valid until the next init/reset of this parser */
    char        errbuf[48]; /* storage for a reason that quotes the offending byte */
};

/* Reply tokenizer: deepest nesting it can track (max_depth is clamped to it). */
#define RESP_RSP_DEPTH_CAP 128

/* One complete element of a top-level aggregate reply, as offsets into the reply. */
struct resp_elem {
    uint64_t pos;   /* offset of its first byte (its type byte, or a '|' attribute before it) */
    uint64_t len;   /* raw length through its final CRLF, nested elements included */
    char     type;  /* its type byte: + - : $ * _ , # ! = ( % ~ > */
    int64_t  ival;  /* ':' value; '$' '!' '=' length ('$' null = -1); '*' '~' '%' '>' count
                       ('*' null = -1; '%' counts pairs); 0 for the other types */
};

/* Reply tokenizer state. Fields not marked caller-set or result are private to resp.c. */
struct resp_rsp_parser {
    uint8_t     state;      /* grammar position of the next byte (enum in resp.c) */
    char        cur;        /* type byte of the value being read */
    bool        neg;        /* the number being read started with '-' */
    bool        in_elem;    /* a top-level element has started and not yet completed */
    uint8_t     ndig;       /* digits of the number being read */
    uint64_t    num;        /* magnitude of the number being read */
    uint64_t    off;        /* bytes of the reply consumed so far */
    uint64_t    left;       /* payload bytes of the current blob still to skip */
    uint64_t    elem_pos;   /* offset where the current top-level element started */
    char        elem_type;  /* type byte of the current top-level element */
    int64_t     elem_ival;  /* its ival (see struct resp_elem) */
    uint64_t    nelem;      /* top-level elements reported so far */
    char        type;       /* result: the reply's top-level type byte (0 until read) */
    int64_t     ival;       /* result: top-level ':' value, '$' length, '*' count (-1 = null);
                               for the other types as in struct resp_elem */
    uint32_t    depth;      /* aggregates currently open */
    uint32_t    max_depth;  /* caller-set: deepest nesting accepted (default 128, at most RESP_RSP_DEPTH_CAP) */
    const char *err;        /* after RESP_EV_ERROR: the reason ("Protocol error: ...") */
    uint64_t    stack[RESP_RSP_DEPTH_CAP]; /* per open aggregate: values still to read; top bit = attribute */
};

/* Initialize a request tokenizer completely, with the default limits. */
void resp_req_init(struct resp_req_parser *p);

/* Make the tokenizer ready for the next message (after DONE or ERROR); the limits are kept. */
void resp_req_reset(struct resp_req_parser *p);

/*
 * Consume request bytes from buf[0..n) up to the first event; *used is always set to the
 * bytes consumed by this call, and the caller passes the rest in the next call.
 * RESP_EV_ARG: an argument is complete (multibulk: through its trailing CRLF), *arg filled.
 * RESP_EV_DONE: the message is complete; returned by the call after the last ARG (it may
 * consume 0 bytes). Every later call returns DONE again until resp_req_reset().
 * RESP_EV_AGAIN: all n bytes consumed without an event.
 * RESP_EV_ERROR: malformed input; p->err holds the reason; sticky until reset. The bytes
 * after the bad one were not consumed, and the stream cannot be resynchronized.
 * Empty messages ("*0\r\n", "*-1\r\n", blank inline lines) are consumed silently and the
 * next message starts after them; so the current message starts resp_req_msglen() bytes
 * before the end of what has been consumed since the last reset.
 */
int resp_req_feed(struct resp_req_parser *p, const uint8_t *buf, size_t n, size_t *used,
                  struct resp_arg *arg);

/* Bytes of the current message consumed so far (skipped empty messages excluded); the total once DONE. */
uint64_t resp_req_msglen(const struct resp_req_parser *p);

/* True when the current message is an inline command (known after its first byte). */
bool resp_req_inline(const struct resp_req_parser *p);

/* Arguments reported so far in the current message. */
uint64_t resp_req_nargs(const struct resp_req_parser *p);

/* Initialize a reply tokenizer completely, with the default limits. */
void resp_rsp_init(struct resp_rsp_parser *p);

/* Make the tokenizer ready for the next reply; max_depth is kept. */
void resp_rsp_reset(struct resp_rsp_parser *p);

/*
 * Consume reply bytes from buf[0..n) up to the first event, as resp_req_feed does.
 * RESP_EV_ARG: an element of a top-level aggregate (* ~ > %; each map key and each map
 * value counts) is complete, nested sub-tree included; *el describes it.
 * RESP_EV_DONE: the whole reply is complete (after the last element's ARG, by a call that
 * may consume 0 bytes); p->type, p->ival and resp_rsp_msglen() describe it. A RESP3
 * attribute ('|') is folded into the value that follows it, and a push ('>') is a reply of
 * its own: the caller tells it apart by p->type.
 * RESP_EV_ERROR: malformed reply, p->err set, sticky until reset.
 * Declared lengths and counts cost nothing until their bytes arrive.
 */
int resp_rsp_feed(struct resp_rsp_parser *p, const uint8_t *buf, size_t n, size_t *used,
                  struct resp_elem *el);

/* Bytes of the current reply consumed so far; the total once DONE. */
uint64_t resp_rsp_msglen(const struct resp_rsp_parser *p);

/*
 * Parse s[0..len) as a Redis integer argument (the grammar of Redis's string2ll:
 * "0" or an optional '-' then a digit 1-9 then digits; no '+', spaces or leading zeros;
 * within int64). Returns true and sets *v when valid. For numkeys and the like.
 */
bool resp_parse_int64(const uint8_t *s, size_t len, int64_t *v);

#endif
