/* src/main.c: command line, signals, daemon, pid file; builds the pools and the workers.
 * The one place that wires the modules together. */
#include "config/conf.h"
#include "core/common.h"
#include "core/cpus.h"
#include "core/crash.h"
#include "core/log.h"
#include "core/pace.h"
#include "pool/pool.h"
#include "proxy/proxy.h"
#include "stats/stats.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_CONF        "conf/keymux.yml"
#define DEFAULT_STATS_PORT  22222
#define DEFAULT_STATS_ADDR  "0.0.0.0"
#define DEFAULT_STATS_MS    30000
#define DEFAULT_MBUF        16384

struct options {
    bool help, version, test_conf, daemonize, describe;
    int verbosity;
    const char *log_file, *conf_file, *stats_addr, *pid_file;
    long stats_port, stats_interval, mbuf_size, workers;
    enum pace_policy pace;
};

enum { OPT_PACE = 256 };    /* long options with no short form */

#define MAX_WORKERS 1024

static const struct option long_opts[] = {
    { "help",           no_argument,       NULL, 'h' },
    { "version",        no_argument,       NULL, 'V' },
    { "test-conf",      no_argument,       NULL, 't' },
    { "daemonize",      no_argument,       NULL, 'd' },
    { "describe-stats", no_argument,       NULL, 'D' },
    { "verbose",        required_argument, NULL, 'v' },
    { "output",         required_argument, NULL, 'o' },
    { "conf-file",      required_argument, NULL, 'c' },
    { "stats-port",     required_argument, NULL, 's' },
    { "stats-interval", required_argument, NULL, 'i' },
    { "stats-addr",     required_argument, NULL, 'a' },
    { "pid-file",       required_argument, NULL, 'p' },
    { "mbuf-size",      required_argument, NULL, 'm' },
    { "workers",        required_argument, NULL, 'w' },
    { "pace",           required_argument, NULL, OPT_PACE },
    { NULL, 0, NULL, 0 }
};

static void
usage(FILE *out)
{
    fprintf(out,
        "Usage: keymux [-?hVdDt] [-v verbosity level] [-o output file]\n"
        "              [-c conf file] [-s stats port] [-a stats addr]\n"
        "              [-i stats interval] [-p pid file] [-m mbuf size]\n"
        "              [-w workers|auto] [--pace auto|block|nap]\n"
        "\n"
        "Options:\n"
        "  -h, --help             : this help\n"
        "  -V, --version          : show version and exit\n"
        "  -t, --test-conf        : test configuration for syntax errors and exit\n"
        "  -d, --daemonize        : run as a daemon\n"
        "  -D, --describe-stats   : print stats description and exit\n"
        "  -v, --verbose=N        : set logging level (default: %d, min: 0, max: 11)\n"
        "  -o, --output=S         : set logging file (default: stderr)\n"
        "  -c, --conf-file=S      : set configuration file (default: %s)\n"
        "  -s, --stats-port=N     : set stats monitoring port (default: %d)\n"
        "  -a, --stats-addr=S     : set stats monitoring ip (default: %s)\n"
        "  -i, --stats-interval=N : set stats aggregation interval in msec (default: %d msec)\n"
        "  -p, --pid-file=S       : set pid file (default: off)\n"
        "  -m, --mbuf-size=N      : set size of mbuf chunk in bytes (default: %d bytes, min %u, max %u)\n"
        "  -w, --workers=N|auto   : worker threads, each serving its own clients; auto = one per\n"
        "                           CPU the process may run on (default: 1, max: %d)\n"
        "      --pace=S           : under load, nap up to %u us between polls to gather messages:\n"
        "                           auto (when it measures cheaper), block (never), nap (always)\n"
        "                           (default: auto)\n",
        LOG_NOTICE, DEFAULT_CONF, DEFAULT_STATS_PORT, DEFAULT_STATS_ADDR, DEFAULT_STATS_MS,
        DEFAULT_MBUF, BUF_MIN_SIZE, BUF_MAX_SIZE, MAX_WORKERS, PACE_NAP_NS / 1000);
}

static int
parse_num(const char *s, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
        return KM_ERROR;
    *out = v;
    return KM_OK;
}

static int
parse_options(int argc, char **argv, struct options *o)
{
    long v;
    int c;

    memset(o, 0, sizeof(*o));
    o->verbosity = LOG_NOTICE;
    o->conf_file = DEFAULT_CONF;
    o->stats_addr = DEFAULT_STATS_ADDR;
    o->stats_port = DEFAULT_STATS_PORT;
    o->stats_interval = DEFAULT_STATS_MS;
    o->mbuf_size = DEFAULT_MBUF;
    o->pace = PACE_AUTO;
    o->workers = 1;

    /* '?' is left out of the option string, so that "-?" comes back as an unknown
     * option whose optopt is '?' and every other unknown option can be told from it */
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":hVtdDv:o:c:s:i:a:p:m:w:", long_opts, NULL)) != -1) {
        const char *word = argv[optind - 1];
        bool is_long = strncmp(word, "--", 2) == 0;

        switch (c) {
        case '?':
            if (optopt == '?' && !is_long) {
                o->help = true;
                break;
            }
            if (optopt == 0)
                fprintf(stderr, "keymux: unknown or ambiguous option '%s'\n", word);
            else if (is_long)
                fprintf(stderr, "keymux: option '%s' takes no argument\n", word);
            else
                fprintf(stderr, "keymux: unknown option -- '%c'\n", optopt);
            return KM_ERROR;
        case ':':
            if (is_long)
                fprintf(stderr, "keymux: option '%s' requires an argument\n", word);
            else
                fprintf(stderr, "keymux: option -%c requires an argument\n", optopt);
            return KM_ERROR;
        case 'h':
            o->help = true;
            break;
        case 'V': o->version = true; break;
        case 't': o->test_conf = true; break;
        case 'd': o->daemonize = true; break;
        case 'D': o->describe = true; break;
        case 'v':
            if (parse_num(optarg, LOG_EMERG, LOG_PVERB, &v) != KM_OK) {
                fprintf(stderr, "keymux: option -v requires a number from 0 to 11\n");
                return KM_ERROR;
            }
            o->verbosity = (int)v;
            break;
        case 'o': o->log_file = optarg; break;
        case OPT_PACE: {
            int pace = pace_from_name(optarg, strlen(optarg));
            if (pace < 0) {
                fprintf(stderr, "keymux: option --pace requires auto, block or nap\n");
                return KM_ERROR;
            }
            o->pace = (enum pace_policy)pace;
            break;
        }
        case 'c': o->conf_file = optarg; break;
        case 'a': o->stats_addr = optarg; break;
        case 'p': o->pid_file = optarg; break;
        case 's':
            if (parse_num(optarg, 1, 65535, &o->stats_port) != KM_OK) {
                fprintf(stderr, "keymux: option -s requires a valid port number\n");
                return KM_ERROR;
            }
            break;
        case 'i':
            if (parse_num(optarg, 1, 2147483647L, &o->stats_interval) != KM_OK) {
                fprintf(stderr, "keymux: option -i requires a positive number of milliseconds\n");
                return KM_ERROR;
            }
            break;
        case 'w':
            if (strcmp(optarg, "auto") == 0) {
                o->workers = KM_MIN(km_ncpus(), MAX_WORKERS);
            } else if (parse_num(optarg, 1, MAX_WORKERS, &o->workers) != KM_OK) {
                fprintf(stderr, "keymux: option -w requires a number from 1 to %d, or auto\n",
                        MAX_WORKERS);
                return KM_ERROR;
            }
            break;
        case 'm':
            if (parse_num(optarg, BUF_MIN_SIZE, BUF_MAX_SIZE, &o->mbuf_size) != KM_OK) {
                fprintf(stderr, "keymux: option -m requires a size from %u to %u bytes\n",
                        BUF_MIN_SIZE, BUF_MAX_SIZE);
                return KM_ERROR;
            }
            break;
        default:
            return KM_ERROR;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "keymux: unexpected argument '%s'\n", argv[optind]);
        return KM_ERROR;
    }
    return KM_OK;
}

static int
daemonize(void)
{
    pid_t pid = fork();
    if (pid < 0)
        return -errno;
    if (pid > 0)
        _exit(0);
    if (setsid() < 0)
        return -errno;
    signal(SIGHUP, SIG_IGN);
    pid = fork();
    if (pid < 0)
        return -errno;
    if (pid > 0)
        _exit(0);
    if (chdir("/") < 0)
        return -errno;
    umask(0);
    int fd = open("/dev/null", O_RDWR);
    if (fd >= 0) {
        dup2(fd, STDIN_FILENO);
        dup2(fd, STDOUT_FILENO);
        if (log_get_level() >= 0)
            dup2(fd, STDERR_FILENO);
        if (fd > STDERR_FILENO)
            close(fd);
    }
    return 0;
}

static int
write_pid_file(const char *path)
{
    char buf[32];
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    int n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
    if (write(fd, buf, (size_t)n) != n) {
        int err = errno;
        close(fd);
        return -err;
    }
    close(fd);
    return 0;
}

/* Once a second on the main thread. */
static void
on_tick(int fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    proxy_tick(arg);
}

/* The signals keymux acts on, with the names its log gives them. */
static const struct {
    int sig;
    const char *name;
} handled_sigs[] = {
    { SIGINT, "SIGINT" }, { SIGTERM, "SIGTERM" }, { SIGHUP, "SIGHUP" },
    { SIGTTIN, "SIGTTIN" }, { SIGTTOU, "SIGTTOU" }, { SIGUSR1, "SIGUSR1" },
};
#define NSIGS KM_ARRAY_LEN(handled_sigs)

/* Each signal is logged as nutcracker logs it: "signal N (NAME) received, what it does". */
static void
on_signal(int sig, short what, void *arg)
{
    struct proxy *px = arg;
    struct event_base *base = px->base;
    const char *name = "?";

    (void)what;
    for (size_t i = 0; i < NSIGS; i++) {
        if (handled_sigs[i].sig == sig)
            name = handled_sigs[i].name;
    }
    switch (sig) {
    case SIGINT:
    case SIGTERM:
        log_always("signal %d (%s) received, exiting", sig, name);
        event_base_loopbreak(base);
        break;
    case SIGHUP: {
        log_always("signal %d (%s) received, reopening log file", sig, name);
        int lr = log_reopen();
        if (lr < 0)
            log_error("cannot reopen the log file: %s", strerror(-lr));
        break;
    }
    case SIGTTIN:
        log_level_up();
        log_always("signal %d (%s) received, log level raised to %d", sig, name,
                   log_get_level());
        break;
    case SIGUSR1:
        log_always("signal %d (%s) received, reloading the configuration", sig, name);
        proxy_reload(px);
        break;
    case SIGTTOU:
        log_level_down();
        log_always("signal %d (%s) received, log level lowered to %d", sig, name,
                   log_get_level());
        break;
    default:
        break;
    }
}

int
main(int argc, char **argv)
{
    struct options o;
    struct conf cf;
    char err[512];
    struct proxy px;
    struct event_base *base = NULL;
    struct event *tick = NULL;
    char *conf_abs = NULL;
    struct event *sigev[NSIGS] = { NULL };
    struct stats_server *stats = NULL;
    int status = 1;
    bool pid_written = false;

    memset(&cf, 0, sizeof(cf));
    memset(&px, 0, sizeof(px));
    if (parse_options(argc, argv, &o) != KM_OK) {
        usage(stderr);
        return 1;
    }
    if (o.version) {
        printf("This is keymux-%s\n", KM_VERSION);
        return 0;
    }
    if (o.help) {
        printf("This is keymux-%s\n\n", KM_VERSION);
        usage(stdout);
        return 0;
    }
    if (o.describe) {
        printf("This is keymux-%s\n\n", KM_VERSION);
        stats_describe(stdout);
        return 0;
    }

    if (conf_load_file(o.conf_file, &cf, err, sizeof(err)) != KM_OK) {
        fprintf(stderr, "keymux: configuration file '%s' syntax is invalid: %s\n", o.conf_file, err);
        return 1;
    }
    if (o.test_conf) {
        printf("keymux: configuration file '%s' syntax is ok\n", o.conf_file);
        conf_free(&cf);
        return 0;
    }

    /* the file SIGUSR1 reads again, found from wherever the process is by then (a daemon
     * moves to /) */
    conf_abs = realpath(o.conf_file, NULL);
    int lr = log_init(o.verbosity, o.log_file);
    if (lr < 0) {
        fprintf(stderr, "keymux: cannot open log file '%s': %s\n", o.log_file, strerror(-lr));
        conf_free(&cf);
        free(conf_abs);
        return 1;
    }
    if (o.daemonize) {
        int dr = daemonize();
        if (dr < 0) {
            log_error("cannot daemonize: %s", strerror(-dr));
            goto out;
        }
    }
    if (o.pid_file != NULL) {
        int pr = write_pid_file(o.pid_file);
        if (pr < 0) {
            log_error("cannot write pid file '%s': %s", o.pid_file, strerror(-pr));
            goto out;
        }
        pid_written = true;
    }
    signal(SIGPIPE, SIG_IGN);
    int cr = crash_init();
    if (cr < 0)
        log_warn("cannot catch fatal signals: %s", strerror(-cr));

    base = event_base_new();
    if (base == NULL) {
        log_error("cannot create the event loop");
        goto out;
    }
    uint32_t npools = cf.npools;
    if (proxy_init(&px, &cf, (uint32_t)o.workers, (uint32_t)o.mbuf_size, o.pace, base, err,
                   sizeof(err)) != KM_OK) {
        log_error("%s", err);
        goto out;
    }
    px.conf_path = conf_abs != NULL ? conf_abs : o.conf_file;
    for (size_t i = 0; i < NSIGS; i++) {
        sigev[i] = evsignal_new(base, handled_sigs[i].sig, on_signal, &px);
        if (sigev[i] == NULL || event_add(sigev[i], NULL) != 0) {
            log_error("cannot watch signal %s", handled_sigs[i].name);
            goto out;
        }
    }
    tick = event_new(base, -1, EV_PERSIST, on_tick, &px);
    struct timeval one_s = { 1, 0 };
    if (tick == NULL || event_add(tick, &one_s) != 0) {
        log_error("cannot arm the main thread's timer");
        goto out;
    }
    stats = stats_start(base, &px, o.stats_addr, (int)o.stats_port, (int)o.stats_interval,
                        err, sizeof(err));
    if (stats == NULL) {
        log_error("%s", err);
        goto out;
    }
    if (proxy_listen(&px, err, sizeof(err)) != KM_OK) {
        log_error("%s", err);
        goto out;
    }
    if (proxy_start(&px, err, sizeof(err)) != KM_OK) {
        log_error("%s", err);
        goto out_stop;
    }
    log_notice("keymux-%s started on pid %d with %u pool(s), %ld worker(s), mbuf %ld bytes",
               KM_VERSION, (int)getpid(), npools, o.workers, o.mbuf_size);

    if (event_base_dispatch(base) < 0)
        log_error("the main event loop failed");
    else
        status = 0;

out_stop:
    proxy_stop(&px);
out:
    stats_stop(stats);
    for (size_t i = 0; i < NSIGS; i++) {
        if (sigev[i] != NULL)
            event_free(sigev[i]);
    }
    if (tick != NULL)
        event_free(tick);
    proxy_free(&px);
    if (base != NULL)
        event_base_free(base);
    conf_free(&cf);
    free(conf_abs);
    if (pid_written)
        unlink(o.pid_file);
    log_close();
    return status;
}
