/*
 * httpc.h - a small blocking HTTP client on libcurl easy handles.
 *
 * One vg_httpc_t per thread; it keeps its connection alive between calls.
 * Responses are read into a capped buffer. Used by the agent's HTTP sink,
 * notifiers and tests; the scrape loop drives libcurl multi itself.
 */
#ifndef VIGIL_HTTPC_H
#define VIGIL_HTTPC_H

#include <stddef.h>
#include <stdint.h>

#include "vigil/buf.h"
#include "vigil/error.h"

typedef struct vg_httpc vg_httpc_t;

typedef struct vg_httpc_req {
    const char *method; /* "GET", "POST", ...; NULL = GET, or POST when body set */
    const char *url;
    const char *const *headers; /* NULL-terminated "Name: value" list, may be NULL */
    const void *body;
    size_t body_len;
    long timeout_ms;      /* 0 = 10 s */
    size_t max_response;  /* response body cap; 0 = 16 MiB */
    vg_buf *resp_headers; /* optional: gets the final response's header lines
                             ("Name: value\r\n", status line first), e.g. to
                             read Retry-After; capped like the body */
} vg_httpc_req;

/* New client; NULL on ENOMEM. */
vg_httpc_t *vg_httpc_new(void);
void vg_httpc_free(vg_httpc_t *c);

/* Perform req. *status gets the HTTP status; resp (may be NULL) gets the body.
 * Transport failures (refused, timeout, DNS) return VG_ERETRY with a message;
 * any HTTP status is VG_OK and is for the caller to judge. */
vg_err_t vg_httpc_do(vg_httpc_t *c, const vg_httpc_req *req, int *status, vg_buf *resp,
                     vg_error *err);

/* Value of header name (case-insensitive) in a resp_headers block, copied into
 * val (NUL-terminated, truncated to n) with blanks trimmed; 1 if found, else 0. */
int vg_httpc_header(const vg_buf *headers, const char *name, char *val, size_t n);

#endif
