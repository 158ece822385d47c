/* hello and echo (size=N, POST echo) on libfcgi, for benches/compare.sh.
 * Usage: libfcgi hello|echo [THREADS]; the listening socket is on fd 0. */
#include <fcgiapp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static int echo;
static char piece[65520];

static void answer(FCGX_Request *r) {
    FCGX_PutS("Content-Type: text/plain\r\n\r\n", r->out);
    if (!echo) {
        FCGX_PutS("Hello, World!\n", r->out);
        return;
    }
    const char *q = FCGX_GetParam("QUERY_STRING", r->envp);
    const char *m = FCGX_GetParam("REQUEST_METHOD", r->envp);
    const char *size = q ? strstr(q, "size=") : NULL;
    if (size) {
        for (long n = atol(size + 5); n > 0; n -= sizeof piece)
            FCGX_PutStr(piece, n < (long)sizeof piece ? (int)n : (int)sizeof piece, r->out);
    } else if (m && (!strcmp(m, "POST") || !strcmp(m, "PUT"))) {
        size_t cap = 1 << 20, len = 0;
        char *body = malloc(cap);
        int k;
        while ((k = FCGX_GetStr(body + len, (int)(cap - len), r->in)) > 0) {
            len += (size_t)k;
            if (len == cap)
                body = realloc(body, cap *= 2);
        }
        FCGX_PutStr(body, (int)len, r->out);
        free(body);
    }
}

static void *worker(void *unused) {
    FCGX_Request r;
    (void)unused;
    FCGX_InitRequest(&r, 0, 0);
    /* No lock around accept: Linux needs none, and with keep-conn a thread
     * waiting in accept() under a lock would keep another thread from
     * reading the next request on its kept connection. */
    for (;;) {
        if (FCGX_Accept_r(&r) < 0)
            return NULL;
        answer(&r);
        FCGX_Finish_r(&r);
    }
}

int main(int argc, char **argv) {
    echo = argc > 1 && !strcmp(argv[1], "echo");
    int threads = argc > 2 ? atoi(argv[2]) : 1;
    for (size_t i = 0; i < sizeof piece; i++)
        piece[i] = (char)('a' + i % 26);
    FCGX_Init();
    if (threads <= 1) {
        worker(NULL);
        return 0;
    }
    pthread_t t[64];
    for (int i = 0; i < threads && i < 64; i++)
        pthread_create(&t[i], NULL, worker, NULL);
    for (int i = 0; i < threads && i < 64; i++)
        pthread_join(t[i], NULL);
    return 0;
}
