/*
 * Reference peer: a single-threaded C epoll OK-echo server, "the practical limit".
 *
 * Level-triggered epoll; every readable socket is read once (64 KiB), its complete lines are
 * answered with one write, and only the unterminated tail is kept.  Replies that the kernel
 * does not take at once wait in a per-connection buffer, and reading from that client stops
 * until they are written (backpressure).  The benchmark compiles it at run time:
 *
 *     gcc -O2 -o peer_epoll benchmarks/peer_epoll.c && ./peer_epoll --port 8888
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

static const char WELCOME[] = "Welcome to the server. Type something and hit enter\n";
static const char PREFIX[] = "OK...";
#define PREFIX_LEN (sizeof(PREFIX) - 1)
#define READ_SIZE 65536
#define MAX_LINE 65536

struct conn {
    int fd;
    char *in;       /* unterminated tail of the input */
    size_t in_len;
    char *out;      /* replies the kernel has not taken yet */
    size_t out_len, out_off;
};

static char rbuf[READ_SIZE];
static char *wbuf;
static size_t wcap;

static void drop(int ep, struct conn *c) {
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c->in);
    free(c->out);
    free(c);
}

/* Append to the pending output; returns -1 on allocation failure. */
static int queue_out(struct conn *c, const char *p, size_t n) {
    char *o = realloc(c->out, c->out_len + n);
    if (!o) return -1;
    memcpy(o + c->out_len, p, n);
    c->out = o;
    c->out_len += n;
    return 0;
}

/* Write what is pending; switch the interest set between reading and writing. */
static int flush_out(int ep, struct conn *c) {
    while (c->out_off < c->out_len) {
        ssize_t w = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
        if (w < 0) {
            if (errno == EAGAIN) {
                struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
                return epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
            }
            return -1;
        }
        c->out_off += (size_t)w;
    }
    free(c->out);
    c->out = NULL;
    c->out_len = c->out_off = 0;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    return epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Read once, answer every complete line with one write. */
static int on_readable(int ep, struct conn *c) {
    ssize_t n = read(c->fd, rbuf, READ_SIZE);
    if (n == 0) return -1;
    if (n < 0) return errno == EAGAIN ? 0 : -1;
    const char *data = rbuf;
    size_t len = (size_t)n;
    char *joined = NULL;
    if (c->in_len) { /* prepend the tail kept from the last read */
        joined = malloc(c->in_len + len);
        if (!joined) return -1;
        memcpy(joined, c->in, c->in_len);
        memcpy(joined + c->in_len, rbuf, len);
        data = joined;
        len += c->in_len;
        free(c->in);
        c->in = NULL;
        c->in_len = 0;
    }
    size_t need = len + len * PREFIX_LEN; /* worst case: every byte a line */
    if (need > wcap) {
        free(wbuf);
        wcap = need;
        wbuf = malloc(wcap);
        if (!wbuf) { free(joined); return -1; }
    }
    size_t start = 0, w = 0;
    const char *nl;
    while (start < len && (nl = memchr(data + start, '\n', len - start))) {
        size_t end = (size_t)(nl - data) + 1;
        memcpy(wbuf + w, PREFIX, PREFIX_LEN);
        memcpy(wbuf + w + PREFIX_LEN, data + start, end - start);
        w += PREFIX_LEN + end - start;
        start = end;
    }
    if (start < len) {
        if (len - start >= MAX_LINE) { free(joined); return -1; }
        c->in = malloc(len - start);
        if (!c->in) { free(joined); return -1; }
        memcpy(c->in, data + start, len - start);
        c->in_len = len - start;
    }
    free(joined);
    if (!w) return 0;
    ssize_t sent = write(c->fd, wbuf, w);
    if (sent < 0) {
        if (errno != EAGAIN) return -1;
        sent = 0;
    }
    if ((size_t)sent < w) {
        if (queue_out(c, wbuf + sent, w - (size_t)sent) < 0) return -1;
        return flush_out(ep, c);
    }
    return 0;
}

int main(int argc, char **argv) {
    int port = 8888;
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], "--port")) port = atoi(argv[i + 1]);
    signal(SIGPIPE, SIG_IGN);
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(ls, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(ls, 128) < 0) {
        perror("listen");
        return 1;
    }
    int ep = epoll_create1(0);
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, ls, &lev);
    struct epoll_event events[256];
    for (;;) {
        int n = epoll_wait(ep, events, 256, -1);
        for (int i = 0; i < n; i++) {
            struct conn *c = events[i].data.ptr;
            if (!c) { /* the listening socket */
                int fd;
                while ((fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    c = calloc(1, sizeof *c);
                    c->fd = fd;
                    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
                    if (queue_out(c, WELCOME, sizeof WELCOME - 1) < 0 || flush_out(ep, c) < 0)
                        drop(ep, c);
                }
                continue;
            }
            int rc = (events[i].events & EPOLLOUT) ? flush_out(ep, c) : on_readable(ep, c);
            if (rc < 0) drop(ep, c);
        }
    }
}
