/*
 * httpd_args.c - decoder for query strings and form-encoded bodies.
 *
 * We decode ourselves rather than use libmicrohttpd's argument iterator so
 * that repeated keys (Prometheus's match[]) keep their order, '+' is a space
 * in both the query and the body (as Go's url.ParseQuery does), and a form
 * body never has to go through MHD's post processor. The decoder is lenient
 * (a bad %-escape stays literal) because rejecting a whole request for one
 * odd byte helps nobody; it is capped in count so a body of "&&&&" cannot
 * turn into an unbounded array.
 */
#include "httpd_args.h"

#include <string.h>

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

size_t vg_http_unescape(char *dst, const char *src, size_t n, int plus_space)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = src[i];
        if (c == '+' && plus_space) {
            c = ' ';
        } else if (c == '%' && i + 2 < n) {
            int hi = hexval(src[i + 1]), lo = hexval(src[i + 2]);
            if (hi >= 0 && lo >= 0) {
                c = (char)(hi << 4 | lo);
                i += 2;
            }
        }
        dst[o++] = c;
    }
    dst[o] = '\0';
    return o;
}

/* Number of non-empty '&'-separated pairs in s. */
static size_t count_pairs(const char *s, size_t len)
{
    size_t n = 0, seglen = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || s[i] == '&') {
            n += seglen > 0;
            seglen = 0;
        } else {
            seglen++;
        }
    }
    return n;
}

static char *decode_dup(vg_arena_t *a, const char *s, size_t n, size_t *outlen)
{
    char *d = vg_arena_alloc(a, n + 1);
    if (d) *outlen = vg_http_unescape(d, s, n, 1);
    return d;
}

/* Decode one "name=value" segment into arg. */
static vg_err_t decode_pair(vg_arena_t *a, const char *s, size_t n, vg_http_arg *arg)
{
    const char *eq = memchr(s, '=', n);
    size_t nlen = eq ? (size_t)(eq - s) : n;
    arg->name = decode_dup(a, s, nlen, &arg->name_len);
    if (eq) {
        arg->value = decode_dup(a, eq + 1, n - nlen - 1, &arg->value_len);
    } else {
        arg->value = "";
        arg->value_len = 0;
    }
    return arg->name && arg->value ? VG_OK : VG_ENOMEM;
}

vg_err_t vg_http_parse_args(vg_arena_t *a, const char *s, size_t len, vg_http_args *out)
{
    size_t add = count_pairs(s, len);
    if (add == 0) return VG_OK;
    if (add > VG_HTTP_MAX_ARGS - out->n) return VG_ETOOLARGE;
    vg_http_arg *v = vg_arena_alloc(a, (out->n + add) * sizeof(*v));
    if (!v) return VG_ENOMEM;
    if (out->n) memcpy(v, out->v, out->n * sizeof(*v));
    size_t n = out->n, start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && s[i] != '&') continue;
        if (i > start && decode_pair(a, s + start, i - start, &v[n++]) != VG_OK) return VG_ENOMEM;
        start = i + 1;
    }
    out->v = v;
    out->n = n;
    return VG_OK;
}
