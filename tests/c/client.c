/* A plain blocking C client, unaware of greenlets: it connects, sends a
 * request, sleeps a little with usleep, and reads the reply until EOF.
 * Compiled into a shared object by tests/monkey_clients.rs and dlopen'ed,
 * so its libc calls bind to the monkey hooks like any C library's would. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int c_exchange(int port, const char *msg, char *out, int outlen) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) { close(fd); return -2; }
    size_t len = strlen(msg);
    if (send(fd, msg, len, 0) != (ssize_t)len) { close(fd); return -3; }
    shutdown(fd, SHUT_WR);
    usleep(50 * 1000);
    int total = 0;
    for (;;) {
        ssize_t n = recv(fd, out + total, (size_t)(outlen - 1 - total), 0);
        if (n < 0) { close(fd); return -4; }
        if (n == 0) break;
        total += (int)n;
        if (total >= outlen - 1) break;
    }
    out[total] = 0;
    close(fd);
    return total;
}
