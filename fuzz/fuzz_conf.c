/* fuzz/fuzz_conf.c: libFuzzer target for the YAML configuration loader (conf_load_string). */
#include "fuzz_util.h"

#include "config/conf.h"

/*
 * Any byte string is a legal argument to conf_load_string. The target loads the input
 * twice and demands the same verdict and the same message; then:
 *  - on success: at least one pool, each with a name, a listen address (TCP port 1..65535
 *    or a unix path), at least one server with weight >= 1 and a non-empty identity, a
 *    hash_tag of 0 or 2 characters, sane numbers; every string is NUL-terminated;
 *  - on failure: the conf is left empty and the message is one non-empty line.
 * conf_free runs twice (it must be idempotent); LeakSanitizer checks nothing is left.
 */

static void
check_str(const char *s, const char *what)
{
    FZ_CHECK(s != NULL, "%s is NULL", what);
    (void)strlen(s);   /* ASan: the string is terminated inside its allocation */
}

static void
check_conf(const struct conf *c)
{
    FZ_CHECK(c->npools >= 1 && c->pools != NULL, "loaded with %u pools", c->npools);
    for (uint32_t i = 0; i < c->npools; i++) {
        const struct conf_pool *p = &c->pools[i];

        check_str(p->name, "pool name");
        FZ_CHECK(p->name[0] != '\0', "empty pool name");
        for (uint32_t j = 0; j < i; j++)
            FZ_CHECK(strcmp(c->pools[j].name, p->name) != 0, "pool '%s' twice", p->name);
        check_str(p->listen.text, "listen text");
        if (p->listen.path != NULL) {
            check_str(p->listen.path, "listen path");
            FZ_CHECK(p->listen.host == NULL && p->listen.port == 0, "unix listen with a host");
            FZ_CHECK(strlen(p->listen.path) <= CONF_UNIX_PATH_MAX, "listen path too long");
        } else {
            check_str(p->listen.host, "listen host");
            FZ_CHECK(p->listen.port >= 1 && p->listen.port <= 65535, "listen port %d", p->listen.port);
        }
        FZ_CHECK(p->hash_tag[0] == '\0' || (p->hash_tag[1] != '\0' && p->hash_tag[2] == '\0'),
                 "hash_tag of odd length");
        FZ_CHECK(p->timeout >= -1 && p->timeout <= CONF_NUM_MAX, "timeout %lld", (long long)p->timeout);
        FZ_CHECK(p->backlog >= 0, "backlog %d", p->backlog);
        FZ_CHECK(p->server_connections >= 1, "server_connections %u", p->server_connections);
        FZ_CHECK(p->server_retry_timeout >= 0 && p->server_retry_timeout <= CONF_NUM_MAX,
                 "server_retry_timeout %lld", (long long)p->server_retry_timeout);
        if (p->redis_auth != NULL)
            check_str(p->redis_auth, "redis_auth");
        FZ_CHECK(p->nservers >= 1 && p->servers != NULL, "pool with %u servers", p->nservers);
        for (uint32_t k = 0; k < p->nservers; k++) {
            const struct conf_server *s = &p->servers[k];
            size_t idlen = 0;
            const char *id;

            check_str(s->text, "server text");
            if (s->name != NULL)
                check_str(s->name, "server name");
            if (s->path != NULL) {
                check_str(s->path, "server path");
                FZ_CHECK(s->host == NULL && s->port == 0, "unix server with a host");
            } else {
                check_str(s->host, "server host");
                FZ_CHECK(s->port >= 1 && s->port <= 65535, "server port %d", s->port);
            }
            FZ_CHECK(s->weight >= 1, "server weight %u", s->weight);
            id = conf_server_ident(s, &idlen);
            FZ_CHECK(id != NULL && idlen > 0, "server without an identity");
            /* the identity points into the name or the text */
            bool in_name = s->name != NULL && id >= s->name && id + idlen <= s->name + strlen(s->name);
            bool in_text = id >= s->text && id + idlen <= s->text + strlen(s->text);
            FZ_CHECK(in_name || in_text, "identity outside the server's strings");
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct conf c1, c2;
    char e1[512], e2[512];
    int r1, r2;

    memset(e1, 'x', sizeof(e1));
    memset(e2, 'y', sizeof(e2));
    e1[0] = e2[0] = '\0';
    r1 = conf_load_string((const char *)data, size, &c1, e1, sizeof(e1));
    r2 = conf_load_string((const char *)data, size, &c2, e2, sizeof(e2));
    FZ_CHECK(r1 == r2, "verdicts differ: %d then %d", r1, r2);
    FZ_CHECK(r1 == 0 || r1 == -1, "status %d", r1);
    if (r1 == 0) {
        check_conf(&c1);
        FZ_CHECK(c1.npools == c2.npools, "pool counts differ");
    } else {
        size_t l = strnlen(e1, sizeof(e1));
        FZ_CHECK(l > 0 && l < sizeof(e1), "error message of length %zu", l);
        FZ_CHECK(strchr(e1, '\n') == NULL, "error message of several lines: %s", e1);
        FZ_CHECK(strcmp(e1, e2) == 0, "messages differ: '%s' then '%s'", e1, e2);
        FZ_CHECK(c1.npools == 0 && c1.pools == NULL, "failed load left %u pools", c1.npools);
    }
    conf_free(&c1);
    conf_free(&c1);
    conf_free(&c2);

    /* a tiny error buffer must be filled without overflow and stay terminated */
    {
        struct conf c3;
        char small[8];
        if (conf_load_string((const char *)data, size, &c3, small, sizeof(small)) != 0)
            FZ_CHECK(memchr(small, '\0', sizeof(small)) != NULL, "small error buffer not terminated");
        else
            conf_free(&c3);
    }
    return 0;
}
