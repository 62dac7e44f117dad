/* src/config/conf_yaml.c: walks libyaml's events over a config text; the only file that includes <yaml.h>. */
#include <stdio.h>
#include <string.h>

#include <yaml.h>

#include "config/conf.h"
#include "core/common.h"

/*
 * The accepted shape is fixed and shallow, so the walk is a flat state
 * machine over the event stream, never a recursion:
 *
 *   STREAM-START DOCUMENT-START MAPPING-START            root
 *     SCALAR(pool) MAPPING-START                         one pool
 *       SCALAR(key) SCALAR(value)                        a scalar directive
 *       SCALAR(key) SEQUENCE-START SCALAR* SEQUENCE-END  a list directive (servers)
 *     MAPPING-END
 *   MAPPING-END DOCUMENT-END STREAM-END
 *
 * Any other event where one of these is expected stops the load at once with
 * a message, so input nesting deeper than three levels is never followed.
 * Flow style ({...}, [...]), "---" and tags are accepted (twemproxy refuses
 * them, but they mean the same thing); anchors are ignored, aliases refused.
 */

enum conf_yaml_state {
    CY_STREAM,         /* before STREAM-START */
    CY_DOCUMENT,       /* DOCUMENT-START, or STREAM-END for an empty text */
    CY_ROOT,           /* the root mapping */
    CY_POOL_NAME,      /* a pool name or the root mapping's end */
    CY_POOL_MAP,       /* the pool's mapping */
    CY_KEY,            /* a key or the pool mapping's end */
    CY_VALUE,          /* a key's value */
    CY_ITEM,           /* a list item or the list's end */
    CY_DOCUMENT_END,   /* DOCUMENT-END */
    CY_STREAM_END,     /* STREAM-END; another document is an error */
    CY_DONE
};

struct conf_yaml_walk {
    struct conf_load ld;         /* receives pools, keys and values */
    enum conf_yaml_state state;  /* what the next event may be */
    bool is_list;                /* the selected key takes a list */
    uint32_t items;              /* values received for the selected key */
};

/* Describes an unexpected event for messages: "a list", "'text'". */
static const char *
conf_yaml_what(const yaml_event_t *ev, char *buf, size_t size)
{
    switch (ev->type) {
    case YAML_SCALAR_EVENT:
        if (ev->data.scalar.length == 0) {
            return "nothing";
        }
        return conf_quote(buf, size, (const char *)ev->data.scalar.value, ev->data.scalar.length);
    case YAML_SEQUENCE_START_EVENT:
        return "a list";
    case YAML_MAPPING_START_EVENT:
        return "a mapping";
    case YAML_ALIAS_EVENT:
        return "an alias";
    case YAML_DOCUMENT_START_EVENT:
        return "a second document";
    default:
        return "the end of a block";
    }
}

static int
conf_yaml_step(struct conf_yaml_walk *w, const yaml_event_t *ev)
{
    struct conf_load *ld = &w->ld;
    char q[CONF_QUOTE_SIZE];
    const char *s = (const char *)ev->data.scalar.value;
    size_t len = ev->data.scalar.length;

    if (ev->type == YAML_ALIAS_EVENT) {
        return conf_load_error(ld, "YAML aliases (*name) are not supported");
    }

    switch (w->state) {
    case CY_STREAM:
        ASSERT(ev->type == YAML_STREAM_START_EVENT);
        w->state = CY_DOCUMENT;
        return KM_OK;

    case CY_DOCUMENT:
        if (ev->type == YAML_DOCUMENT_START_EVENT) {
            w->state = CY_ROOT;
            return KM_OK;
        }
        ASSERT(ev->type == YAML_STREAM_END_EVENT);
        w->state = CY_DONE;
        return KM_OK; /* empty: conf_load_finish reports "no pools" */

    case CY_ROOT:
        if (ev->type == YAML_MAPPING_START_EVENT) {
            w->state = CY_POOL_NAME;
            return KM_OK;
        }
        if (ev->type == YAML_SCALAR_EVENT && len == 0) {
            w->state = CY_DOCUMENT_END; /* "~" or an empty document */
            return KM_OK;
        }
        return conf_load_error(ld, "expected a mapping of pool names at the top level, found %s",
                               conf_yaml_what(ev, q, sizeof(q)));

    case CY_POOL_NAME:
        if (ev->type == YAML_MAPPING_END_EVENT) {
            w->state = CY_DOCUMENT_END;
            return KM_OK;
        }
        if (ev->type != YAML_SCALAR_EVENT) {
            return conf_load_error(ld, "expected a pool name, found %s",
                                   conf_yaml_what(ev, q, sizeof(q)));
        }
        if (conf_load_pool_begin(ld, s, len) != KM_OK) {
            return KM_ERROR;
        }
        w->state = CY_POOL_MAP;
        return KM_OK;

    case CY_POOL_MAP:
        if (ev->type != YAML_MAPPING_START_EVENT) {
            return conf_load_error(ld, "expected a mapping of keys (listen, servers, ...), found %s",
                                   conf_yaml_what(ev, q, sizeof(q)));
        }
        w->state = CY_KEY;
        return KM_OK;

    case CY_KEY:
        if (ev->type == YAML_MAPPING_END_EVENT) {
            if (conf_load_pool_end(ld) != KM_OK) {
                return KM_ERROR;
            }
            w->state = CY_POOL_NAME;
            return KM_OK;
        }
        if (ev->type != YAML_SCALAR_EVENT) {
            return conf_load_error(ld, "expected a key, found %s", conf_yaml_what(ev, q, sizeof(q)));
        }
        if (conf_load_key(ld, s, len, &w->is_list) != KM_OK) {
            return KM_ERROR;
        }
        w->items = 0;
        w->state = CY_VALUE;
        return KM_OK;

    case CY_VALUE:
        if (ev->type == YAML_SCALAR_EVENT && !w->is_list) {
            if (conf_load_value(ld, s, len) != KM_OK || conf_load_key_end(ld, 1) != KM_OK) {
                return KM_ERROR;
            }
            w->state = CY_KEY;
            return KM_OK;
        }
        if (ev->type == YAML_SEQUENCE_START_EVENT && w->is_list) {
            w->state = CY_ITEM;
            return KM_OK;
        }
        return conf_load_error(ld, "expected %s, found %s",
                               w->is_list ? "a list" : "a single value",
                               conf_yaml_what(ev, q, sizeof(q)));

    case CY_ITEM:
        if (ev->type == YAML_SEQUENCE_END_EVENT) {
            if (conf_load_key_end(ld, w->items) != KM_OK) {
                return KM_ERROR;
            }
            w->state = CY_KEY;
            return KM_OK;
        }
        if (ev->type != YAML_SCALAR_EVENT) {
            return conf_load_error(ld, "expected a string as list item, found %s",
                                   conf_yaml_what(ev, q, sizeof(q)));
        }
        if (conf_load_value(ld, s, len) != KM_OK) {
            return KM_ERROR;
        }
        w->items++;
        return KM_OK;

    case CY_DOCUMENT_END:
        ASSERT(ev->type == YAML_DOCUMENT_END_EVENT);
        w->state = CY_STREAM_END;
        return KM_OK;

    case CY_STREAM_END:
        if (ev->type == YAML_STREAM_END_EVENT) {
            w->state = CY_DONE;
            return KM_OK;
        }
        return conf_load_error(ld, "more than one YAML document (a configuration is one document)");

    case CY_DONE:
        break;
    }
    return conf_load_error(ld, "unexpected YAML event");
}

/* One line from libyaml's error state: where, what, and in which construct. */
static void
conf_yaml_error(struct conf_load *ld, const yaml_parser_t *p)
{
    const char *problem = p->problem != NULL ? p->problem : "unknown error";

    if (ld->err == NULL || ld->errlen == 0) {
        return;
    }
    switch (p->error) {
    case YAML_MEMORY_ERROR:
        snprintf(ld->err, ld->errlen, "out of memory while parsing YAML");
        break;
    case YAML_READER_ERROR:
        snprintf(ld->err, ld->errlen, "invalid YAML: %s at byte %zu", problem, p->problem_offset);
        break;
    default:
        if (p->context != NULL) {
            snprintf(ld->err, ld->errlen, "invalid YAML at line %zu, column %zu: %s %s",
                     p->problem_mark.line + 1, p->problem_mark.column + 1, problem, p->context);
        } else {
            snprintf(ld->err, ld->errlen, "invalid YAML at line %zu, column %zu: %s",
                     p->problem_mark.line + 1, p->problem_mark.column + 1, problem);
        }
        break;
    }
}

int
conf_load_string(const char *text, size_t len, struct conf *out, char *err, size_t errlen)
{
    struct conf_yaml_walk w;
    yaml_parser_t parser;
    yaml_event_t ev;
    int rc = KM_OK;

    memset(&w, 0, sizeof(w));
    conf_load_init(&w.ld, out, err, errlen);
    w.state = CY_STREAM;
    if (!yaml_parser_initialize(&parser)) {
        return conf_load_error(&w.ld, "out of memory while starting the YAML parser");
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)(text != NULL ? text : ""),
                                 text != NULL ? len : 0);
    while (w.state != CY_DONE) {
        if (!yaml_parser_parse(&parser, &ev)) {
            conf_yaml_error(&w.ld, &parser);
            rc = KM_ERROR;
            break;
        }
        w.ld.line = (unsigned long)ev.start_mark.line + 1;
        rc = conf_yaml_step(&w, &ev);
        yaml_event_delete(&ev);
        if (rc != KM_OK) {
            break;
        }
    }
    yaml_parser_delete(&parser);
    if (rc == KM_OK) {
        rc = conf_load_finish(&w.ld);
    }
    if (rc != KM_OK) {
        conf_free(out);
    }
    return rc;
}
