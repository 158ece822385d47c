/* The raw baseline of the cold-start scenario (S7): the least a FastCGI
 * program can do from exec to its first answer. It accepts on the
 * listening socket it was started with on fd 0, reads records (walking
 * only their headers) up to the empty FCGI_STDIN record, and writes a
 * precomputed hello reply. Built by benches/fcgi/cold.rs with `cc -O2`. */
#include <sys/socket.h>
#include <unistd.h>

static const char reply[] =
    /* STDOUT, id 1, 58 bytes of content, 6 of padding */
    "\x01\x06\x00\x01\x00\x3a\x06\x00"
    "Status: 200 OK\r\nContent-Type: text/plain\r\n\r\nHello, World!\n"
    "\0\0\0\0\0\0"
    /* the empty STDOUT record, then END_REQUEST */
    "\x01\x06\x00\x01\x00\x00\x00\x00"
    "\x01\x03\x00\x01\x00\x08\x00\x00" "\0\0\0\0\0\0\0\0";

static int serve(int c) {
    static unsigned char buf[1 << 17];
    size_t fill = 0, at = 0;
    for (;;) {
        while (fill - at >= 8) {
            unsigned char *h = buf + at;
            size_t len = 8 + (h[4] << 8 | h[5]) + h[6];
            if (fill - at < len)
                break;
            if (h[1] == 5 && h[4] == 0 && h[5] == 0)
                return write(c, reply, sizeof reply - 1) < 0;
            at += len;
        }
        if (at > 0) {
            for (size_t i = at; i < fill; i++)
                buf[i - at] = buf[i];
            fill -= at;
            at = 0;
        }
        ssize_t n = read(c, buf + fill, sizeof buf - fill);
        if (n <= 0)
            return 1;
        fill += (size_t)n;
    }
}

int main(void) {
    for (;;) {
        int c = accept(0, 0, 0);
        if (c < 0)
            return 1;
        serve(c);
        close(c);
    }
}
