/*
 * tests/fixture_server.c: the fixture HTTP server (tests/lib/httpd.c) as a
 * program, for integration tests and the bench that drive the witpipe
 * binary: `fixture_server DOCROOT` listens on 127.0.0.1 (ephemeral port),
 * prints the port on stdout, and serves until stdin reaches end of file or
 * it gets SIGTERM/SIGINT.
 */
#include "tests/lib/httpd.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

int main(int argc, char **argv)
{
    struct sigaction sa;
    tl_httpd *h;
    char buf[256];

    if (argc != 2) {
        fprintf(stderr, "usage: fixture_server DOCROOT\n");
        return 2;
    }
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    h = tl_httpd_start(argv[1]);
    if (h == NULL)
        return 1;
    printf("%d\n", tl_httpd_port(h));
    fflush(stdout);
    /* The parent holds our stdin open for as long as it wants us alive. */
    while (!g_stop) {
        ssize_t n = read(STDIN_FILENO, buf, sizeof buf);
        if (n == 0 || (n < 0 && errno != EINTR))
            break;
    }
    tl_httpd_stop(h);
    return 0;
}
