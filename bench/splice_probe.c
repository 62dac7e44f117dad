/* bench/splice_probe.c: what moving bytes between two loopback TCP sockets costs the
 * thread in the middle, by copying (read into a 16 KB buffer, write it out) or by splice(2)
 * through a pipe, which passes page references instead of copying. Linux only: a probe for
 * PERFORMANCE.md, not part of keymux.
 *
 *     cc -O2 -Wall -Wextra -pthread bench/splice_probe.c -o build/splice_probe
 *     build/splice_probe copy; build/splice_probe splice
 *
 * A writer thread (CPU 0) sends 2 GiB in 4 KB writes to socket A; the middle (CPU 1) moves
 * everything from A to socket B; a reader thread (CPU 0) drains B. Printed: the middle
 * thread's CPU time per 4 KB moved. Everything is on 127.0.0.1, on ports the kernel picks. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define TOTAL  (2048L << 20)
#define CHUNK  4096
#define PIPE_SZ (1 << 20)

static void
die(const char *what)
{
    perror(what);
    exit(1);
}

static int
listener(int *port)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof(a);
    int s = socket(AF_INET, SOCK_STREAM, 0);

    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(s, 1) < 0 ||
        getsockname(s, (struct sockaddr *)&a, &len) < 0)
        die("listen");
    *port = ntohs(a.sin_port);
    return s;
}

/* A connected pair on 127.0.0.1: out[0] writes, out[1] reads. */
static void
pair(int out[2])
{
    int port, l = listener(&port);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                             .sin_port = htons((uint16_t)port) };

    out[0] = socket(AF_INET, SOCK_STREAM, 0);
    if (out[0] < 0 || connect(out[0], (struct sockaddr *)&a, sizeof(a)) < 0)
        die("connect");
    out[1] = accept(l, NULL, NULL);
    if (out[1] < 0)
        die("accept");
    close(l);
}

static void
pin(int cpu)
{
    cpu_set_t set;

    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

static void *
writer(void *arg)
{
    int fd = *(int *)arg;
    static char buf[CHUNK];

    pin(0);
    memset(buf, 'x', sizeof(buf));
    for (long left = TOTAL; left > 0;) {
        ssize_t n = write(fd, buf, sizeof(buf));
        if (n <= 0)
            break;
        left -= n;
    }
    close(fd);
    return NULL;
}

static void *
reader(void *arg)
{
    int fd = *(int *)arg;
    static char buf[65536];

    pin(0);
    while (read(fd, buf, sizeof(buf)) > 0) {
    }
    return NULL;
}

static long
move_copy(int from, int to)
{
    static char buf[16384];
    long moved = 0;
    ssize_t n;

    while ((n = read(from, buf, sizeof(buf))) > 0) {
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(to, buf + off, (size_t)(n - off));
            if (w <= 0)
                die("write");
            off += w;
        }
        moved += n;
    }
    return moved;
}

static long
move_splice(int from, int to)
{
    int p[2];
    long moved = 0;
    ssize_t n;

    if (pipe(p) < 0)
        die("pipe");
    fcntl(p[1], F_SETPIPE_SZ, PIPE_SZ);
    while ((n = splice(from, NULL, p[1], NULL, PIPE_SZ, SPLICE_F_MOVE)) > 0) {
        for (ssize_t off = 0; off < n;) {
            ssize_t w = splice(p[0], NULL, to, NULL, (size_t)(n - off), SPLICE_F_MOVE);
            if (w <= 0)
                die("splice");
            off += w;
        }
        moved += n;
    }
    return moved;
}

int
main(int argc, char **argv)
{
    int a[2], b[2];
    pthread_t tw, tr;
    struct timespec t0, t1;
    int use_splice = argc > 1 && strcmp(argv[1], "splice") == 0;

    if (argc != 2 || (!use_splice && strcmp(argv[1], "copy") != 0)) {
        fprintf(stderr, "usage: %s copy|splice\n", argv[0]);
        return 2;
    }
    pair(a);
    pair(b);
    if (pthread_create(&tw, NULL, writer, &a[0]) != 0 ||
        pthread_create(&tr, NULL, reader, &b[1]) != 0)
        die("pthread_create");
    pin(1);
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
    long moved = use_splice ? move_splice(a[1], b[0]) : move_copy(a[1], b[0]);
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t1);
    close(b[0]);
    pthread_join(tw, NULL);
    pthread_join(tr, NULL);

    double cpu = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
    printf("%s: moved %ld MB, middle thread CPU %.3f s = %.2f us per 4 KB\n", argv[1],
           moved >> 20, cpu, cpu * 1e6 / ((double)moved / CHUNK));
    return moved == TOTAL ? 0 : 1;
}
