/*
 * httpd.h - the HTTP server every Vigil process embeds (libmicrohttpd).
 *
 * Handlers are registered per method and path (exact, or prefix when the
 * path ends in '*') and are called once with the whole request body, which
 * the wrapper collects up to max_body bytes (413 past it). A thread pool
 * serves connections, so handlers must be thread-safe and must not block on
 * long I/O. Query-string and form-encoded arguments are parsed for handlers.
 */
#ifndef VIGIL_HTTPD_H
#define VIGIL_HTTPD_H

#include <stddef.h>
#include <stdint.h>

#include "vigil/buf.h"
#include "vigil/error.h"

typedef struct vg_httpd vg_httpd_t;
typedef struct vg_http_req vg_http_req; /* opaque, valid during the handler call */

typedef struct vg_http_resp {
    int status;               /* default 200; 0 or another non-HTTP code is sent as 500 */
    const char *content_type; /* default "text/plain; charset=utf-8"; must be static */
    vg_buf body;              /* handler appends the body here */
    struct vg_http_hdr {
        char name[64];
        char value[256];
    } headers[8];
    int nheaders;
} vg_http_resp;

typedef void (*vg_http_handler)(void *ud, const vg_http_req *req, vg_http_resp *resp);

typedef struct vg_httpd_opts {
    const char *listen; /* "host:port", "[v6]:port"; port 0 picks a free port; NULL =
                           "127.0.0.1:0" */
    unsigned threads;   /* thread pool size; 0 = 2 */
    size_t max_body;    /* request body cap; 0 = 32 MiB */
    unsigned timeout_s; /* idle connection timeout; 0 = 30 */
} vg_httpd_opts;

/* New server, not yet listening. Copies opts. NULL on ENOMEM. */
vg_httpd_t *vg_httpd_new(const vg_httpd_opts *opts);
/* Register a handler; method NULL matches any method, HEAD also matches GET.
 * An exact path beats the longest matching '*' prefix. Register before start;
 * VG_EINVAL after it. */
vg_err_t vg_httpd_route(vg_httpd_t *h, const char *method, const char *path, vg_http_handler fn,
                        void *ud);
/* Bind and start serving. VG_EIO with a message when the address is taken. */
vg_err_t vg_httpd_start(vg_httpd_t *h, vg_error *err);
/* The bound port (useful with port 0), or 0 before start. */
uint16_t vg_httpd_port(const vg_httpd_t *h);
/* Stop serving (waits for handlers in flight) and free. NULL is a no-op. */
void vg_httpd_free(vg_httpd_t *h);

/* Request accessors. Strings are valid during the handler call only. */
const char *vg_http_req_method(const vg_http_req *r);
const char *vg_http_req_path(const vg_http_req *r);
const char *vg_http_req_header(const vg_http_req *r, const char *name); /* case-insensitive */
/* First value of a query-string or form-body (application/x-www-form-urlencoded) argument. */
const char *vg_http_req_arg(const vg_http_req *r, const char *name);
/* All values of a repeated argument such as match[]; returns the count, fills up to max. */
size_t vg_http_req_args(const vg_http_req *r, const char *name, const char **vals, size_t max);
const uint8_t *vg_http_req_body(const vg_http_req *r, size_t *len);

/* Response helpers. */
void vg_http_resp_header(vg_http_resp *resp, const char *name, const char *value);
/* Set status and a plain-text body in one go. */
void vg_http_resp_text(vg_http_resp *resp, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
