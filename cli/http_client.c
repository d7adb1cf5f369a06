/* See cli/http_client.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "cli/http_client.h"
#include "core/error.h"
#include "core/strbuf.h"

static int connect_loopback(int port, int timeout_s) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return ct_fail("socket: %s", strerror(errno));
    struct timeval tv = {.tv_sec = timeout_s};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        int e = errno;
        close(fd);
        return ct_fail("127.0.0.1:%d: %s", port, strerror(e));
    }
    return fd;
}

static int send_all(int fd, const char *data, size_t n) {
    while (n > 0) {
        ssize_t w = send(fd, data, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return ct_fail("sending the request: %s", strerror(errno));
        data += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads until the server closes the connection (it was asked to). */
static int read_all(int fd, ct_strbuf *reply) {
    char buf[16384];
    for (;;) {
        ssize_t r = recv(fd, buf, sizeof buf, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return ct_fail("reading the reply: %s", errno == EAGAIN ? "timed out" : strerror(errno));
        if (r == 0) return reply->data ? 0 : ct_fail("the server closed the connection without a reply");
        CT_TRY(ct_strbuf_append(reply, buf, (size_t)r));
    }
}

static int parse_reply(const ct_strbuf *reply, int *status, char **response) {
    int major, minor;
    if (sscanf(reply->data, "HTTP/%d.%d %d", &major, &minor, status) != 3) return ct_fail("not an HTTP reply");
    const char *body = strstr(reply->data, "\r\n\r\n");
    if (!body) return ct_fail("an HTTP reply without the end of its headers");
    body += 4;
    size_t n = reply->len - (size_t)(body - reply->data);
    const char *length = strcasestr(reply->data, "\r\ncontent-length:");
    if (length && length < body) {
        size_t declared = strtoull(length + 17, NULL, 10);
        if (declared < n) n = declared;
    }
    *response = malloc(n + 1);
    if (!*response) return ct_fail("out of memory");
    memcpy(*response, body, n);
    (*response)[n] = '\0';
    return 0;
}

int ct_http_request(int port, const char *method, const char *path, const char *body, int timeout_s, int *status,
                    char **response) {
    int fd = connect_loopback(port, timeout_s);
    if (fd < 0) return -1;
    size_t body_len = body ? strlen(body) : 0;
    char head[512];
    int n = snprintf(head, sizeof head,
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                     method, path, port, body_len);
    ct_strbuf reply = {0};
    int rc = n > 0 && (size_t)n < sizeof head ? send_all(fd, head, (size_t)n) : ct_fail("request line too long");
    if (rc == 0 && body_len) rc = send_all(fd, body, body_len);
    if (rc == 0) rc = read_all(fd, &reply);
    close(fd);
    if (rc == 0) rc = parse_reply(&reply, status, response);
    ct_strbuf_free(&reply);
    return rc;
}

int ct_http_free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct sockaddr_in addr = {.sin_family = AF_INET};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    int port = bind(fd, (struct sockaddr *)&addr, sizeof addr) == 0 &&
                       getsockname(fd, (struct sockaddr *)&addr, &len) == 0
                   ? ntohs(addr.sin_port)
                   : -1;
    close(fd);
    return port;
}
