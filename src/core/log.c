/* src/core/log.c: the logger. Process-wide by nature (one log file, changed by signals);
 * it is the one piece of mutable state outside a worker, and it is only written from the
 * main thread's signal handling path. */
#include "core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static struct {
    int level;
    int fd;
    char *path;
} L = { LOG_NOTICE, STDERR_FILENO, NULL };

int
log_init(int level, const char *path)
{
    L.level = level;
    if (path == NULL || path[0] == '\0') {
        L.fd = STDERR_FILENO;
        return 0;
    }
    L.path = strdup(path);
    if (L.path == NULL)
        return -ENOMEM;
    L.fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (L.fd < 0) {
        int err = errno;
        L.fd = STDERR_FILENO;
        return -err;
    }
    return 0;
}

int
log_reopen(void)
{
    if (L.path == NULL)
        return 0;
    int fd = open(L.path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    if (L.fd != STDERR_FILENO)
        close(L.fd);
    L.fd = fd;
    return 0;
}

void
log_close(void)
{
    if (L.fd != STDERR_FILENO)
        close(L.fd);
    L.fd = STDERR_FILENO;
    free(L.path);
    L.path = NULL;
}

void log_level_up(void)   { if (L.level < LOG_PVERB) L.level++; }
void log_level_down(void) { if (L.level > LOG_EMERG) L.level--; }
int log_get_level(void)   { return L.level; }
int log_enabled(int level) { return level <= L.level; }

void
log_write(int level, const char *file, int line, const char *fmt, ...)
{
    char buf[1024];
    struct timeval tv;
    struct tm tm;
    int n;

    gettimeofday(&tv, NULL);
    localtime_r(&tv.tv_sec, &tm);
    n = (int)strftime(buf, sizeof(buf), "[%Y-%m-%d %H:%M:%S", &tm);
    n += snprintf(buf + n, sizeof(buf) - (size_t)n, ".%03ld] %s:%d ",
                  (long)tv.tv_usec / 1000, file, line);
    if (n >= (int)sizeof(buf) - 2)
        n = (int)sizeof(buf) - 2;

    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(buf + n, sizeof(buf) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        m = 0;
    n += m;
    if (n > (int)sizeof(buf) - 2)
        n = (int)sizeof(buf) - 2;
    buf[n++] = '\n';
    (void)level;
    ssize_t w = write(L.fd, buf, (size_t)n);
    (void)w;
}
