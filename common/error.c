/*
 * error.c - names and message helpers for vg_err_t.
 *
 * Messages are formatted into a fixed buffer in the caller's vg_error so that
 * reporting an error never allocates (allocation may be what failed).
 */
#include "vigil/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const names[VG_ERR__COUNT] = {
    [VG_OK] = "ok",
    [VG_ENOMEM] = "out of memory",
    [VG_EINVAL] = "invalid argument",
    [VG_EPARSE] = "parse error",
    [VG_ETOOLARGE] = "too large",
    [VG_EIO] = "I/O error",
    [VG_ENOTFOUND] = "not found",
    [VG_EEXIST] = "already exists",
    [VG_ECONFIG] = "configuration error",
    [VG_EPROTO] = "protocol error",
    [VG_EUNSUPPORTED] = "unsupported",
    [VG_ECORRUPT] = "corrupt data",
    [VG_ELIMIT] = "limit exceeded",
    [VG_EAGAIN] = "try again",
    [VG_ERETRY] = "transient failure",
    [VG_ECLOSED] = "closed",
    [VG_EINTERNAL] = "internal error",
};

const char *vg_strerror(vg_err_t code)
{
    if ((unsigned)code >= VG_ERR__COUNT) return "unknown error";
    return names[code];
}

vg_err_t vg_error_set(vg_error *err, vg_err_t code, const char *fmt, ...)
{
    if (!err) return code;
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    return code;
}

void vg_error_prefix(vg_error *err, const char *fmt, ...)
{
    if (!err) return;
    char pre[256], old[sizeof(err->msg)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof(pre), fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof(old));
    /* Truncation is intended: the prefix and as much of the old text as fits. */
    size_t n = strlen(pre);
    if (n > sizeof(err->msg) - 3) n = sizeof(err->msg) - 3;
    memcpy(err->msg, pre, n);
    memcpy(err->msg + n, ": ", 2);
    n += 2;
    size_t rest = strnlen(old, sizeof(old));
    if (rest > sizeof(err->msg) - 1 - n) rest = sizeof(err->msg) - 1 - n;
    memcpy(err->msg + n, old, rest);
    err->msg[n + rest] = '\0';
}

const char *vg_error_msg(const vg_error *err, vg_err_t code)
{
    if (err && err->msg[0]) return err->msg;
    return vg_strerror(code);
}

int vg_err_retryable(vg_err_t code)
{
    return code == VG_EAGAIN || code == VG_ERETRY || code == VG_ELIMIT;
}
