/*
 * httpd_args.h - private to the HTTP server: query-string and form decoding.
 *
 * Split out of httpd.c so the decoder of untrusted input can be unit-tested
 * and fuzzed without a socket (tests/fuzz/fuzz_form.c). Not a public header:
 * handlers read arguments through vg_http_req_arg/vg_http_req_args.
 */
#ifndef VIGIL_HTTPD_ARGS_H
#define VIGIL_HTTPD_ARGS_H

#include <stddef.h>

#include "vigil/arena.h"
#include "vigil/error.h"

/* Most arguments one request may carry (query plus form body together). */
#define VG_HTTP_MAX_ARGS 65536

typedef struct vg_http_arg {
    const char *name; /* decoded, NUL-terminated (an embedded %00 shortens it) */
    const char *value;
    size_t name_len, value_len; /* decoded lengths, embedded NULs included */
} vg_http_arg;

typedef struct vg_http_args {
    vg_http_arg *v; /* arena memory */
    size_t n;
} vg_http_args;

/* Decode "a=1&b=x%20y&c" (application/x-www-form-urlencoded: '+' is a space,
 * %XX a byte, a malformed escape is kept literally, empty pairs are skipped,
 * a pair without '=' has value "") and append the pairs to out. All memory
 * comes from a. VG_ETOOLARGE past VG_HTTP_MAX_ARGS, VG_ENOMEM; out is left
 * unchanged on failure. */
vg_err_t vg_http_parse_args(vg_arena_t *a, const char *s, size_t len, vg_http_args *out);

/* Percent-decode src[0..n) into dst (room for n+1 bytes); '+' becomes a space
 * when plus_space. Returns the decoded length; dst is NUL-terminated. */
size_t vg_http_unescape(char *dst, const char *src, size_t n, int plus_space);

#endif
