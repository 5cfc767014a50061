/*
 * buf.h - a growable byte buffer with a hard cap (curl's dynbuf).
 *
 * Every buffer that holds untrusted input is created with a maximum size;
 * growing past it returns VG_ETOOLARGE instead of eating memory. The data is
 * always NUL-terminated so text can be used as a C string.
 */
#ifndef VIGIL_BUF_H
#define VIGIL_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "vigil/error.h"

typedef struct vg_buf {
    char *data; /* NUL-terminated; NULL until the first append */
    size_t len; /* bytes used, excluding the NUL */
    size_t cap; /* bytes allocated */
    size_t max; /* hard limit on len; 0 means SIZE_MAX */
} vg_buf;

/* Set up an empty buffer with a cap on its length (0 = no cap). Never fails. */
void vg_buf_init(vg_buf *b, size_t max);
/* Release the memory; the buffer is empty and reusable afterwards. */
void vg_buf_free(vg_buf *b);
/* Drop the contents but keep the memory. */
void vg_buf_reset(vg_buf *b);
/* Make room for n more bytes. VG_ETOOLARGE past max, VG_ENOMEM on failure. */
vg_err_t vg_buf_reserve(vg_buf *b, size_t n);
vg_err_t vg_buf_append(vg_buf *b, const void *p, size_t n);
vg_err_t vg_buf_puts(vg_buf *b, const char *s);
vg_err_t vg_buf_putc(vg_buf *b, char c);
vg_err_t vg_buf_printf(vg_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
vg_err_t vg_buf_vprintf(vg_buf *b, const char *fmt, va_list ap);
/* Append s as a JSON string literal, quotes included, escaping as RFC 8259 asks. */
vg_err_t vg_buf_json_str(vg_buf *b, const char *s, size_t n);
/* Take the data out: the caller owns it (vg_free) and the buffer is empty. */
char *vg_buf_steal(vg_buf *b, size_t *len);

#endif
