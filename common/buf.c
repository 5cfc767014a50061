/*
 * buf.c - growable capped buffer.
 *
 * Growth doubles (amortised O(1) appends) but never allocates beyond max+1,
 * so a hostile peer cannot make us reserve more than the cap.
 */
#include "vigil/buf.h"

#include <stdio.h>
#include <string.h>

#include "vigil/alloc.h"

void vg_buf_init(vg_buf *b, size_t max)
{
    b->data = NULL;
    b->len = b->cap = 0;
    b->max = max ? max : SIZE_MAX - 1;
}

void vg_buf_free(vg_buf *b)
{
    vg_free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void vg_buf_reset(vg_buf *b)
{
    b->len = 0;
    if (b->data) b->data[0] = '\0';
}

vg_err_t vg_buf_reserve(vg_buf *b, size_t n)
{
    if (n > b->max - b->len) return VG_ETOOLARGE;
    size_t need = b->len + n + 1;
    if (need <= b->cap) return VG_OK;
    size_t ncap = b->cap ? b->cap : 64;
    while (ncap < need) ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
    if (ncap > b->max + 1) ncap = b->max + 1;
    char *p = vg_realloc(b->data, ncap);
    if (!p) return VG_ENOMEM;
    b->data = p;
    b->cap = ncap;
    return VG_OK;
}

vg_err_t vg_buf_append(vg_buf *b, const void *p, size_t n)
{
    vg_err_t rc = vg_buf_reserve(b, n);
    if (rc) return rc;
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return VG_OK;
}

vg_err_t vg_buf_puts(vg_buf *b, const char *s)
{
    return vg_buf_append(b, s, strlen(s));
}

vg_err_t vg_buf_putc(vg_buf *b, char c)
{
    return vg_buf_append(b, &c, 1);
}

vg_err_t vg_buf_vprintf(vg_buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0) return VG_EINVAL;
    vg_err_t rc = vg_buf_reserve(b, (size_t)n);
    if (rc) return rc;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return VG_OK;
}

vg_err_t vg_buf_printf(vg_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vg_err_t rc = vg_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

vg_err_t vg_buf_json_str(vg_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    vg_err_t rc = vg_buf_putc(b, '"');
    for (size_t i = 0; i < n && !rc; i++) {
        unsigned char c = (unsigned char)s[i];
        size_t run = i;
        while (run < n && (unsigned char)s[run] >= 0x20 && s[run] != '"' && s[run] != '\\') run++;
        if (run > i) {
            rc = vg_buf_append(b, s + i, run - i);
            i = run - 1;
            continue;
        }
        char esc[7] = {'\\', 0};
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        default:
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
        }
        rc = vg_buf_append(b, esc, esc[1] == 'u' ? 6 : 2);
    }
    return rc ? rc : vg_buf_putc(b, '"');
}

char *vg_buf_steal(vg_buf *b, size_t *len)
{
    char *p = b->data;
    if (len) *len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}
