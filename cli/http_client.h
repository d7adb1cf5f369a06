/* A minimal HTTP/1.1 client for a server on this machine's loopback interface: one request per
 * connection (Connection: close), a Content-Length or read-to-close body. What the pipeline's
 * serving check needs to talk to llama-server, and no more. */
#ifndef CT_HTTP_CLIENT_H
#define CT_HTTP_CLIENT_H

/* Sends `method path` with `body` (JSON, or NULL for none) to 127.0.0.1:port and waits at most
 * timeout_s seconds for each read. *status gets the HTTP status, *response the body (NUL-
 * terminated; the caller frees it). 0, or -1 with a message (connection refused, timeout,
 * malformed reply). */
int ct_http_request(int port, const char *method, const char *path, const char *body, int timeout_s, int *status,
                    char **response);

/* A TCP port that was free on 127.0.0.1 a moment ago (bound to port 0 and released), or -1. */
int ct_http_free_port(void);

#endif
