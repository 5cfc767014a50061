/*
 * error.h - the one error type of the project.
 *
 * Every fallible function returns vg_err_t, 0 meaning success, and may fill an
 * optional vg_error with a human message that says what failed, where, and what
 * to do. Keeping a single enum (instead of per-module codes with mixed
 * polarities) lets the core own retry policy: VG_EAGAIN and VG_ERETRY mean
 * "try again later", everything else is final for that input.
 */
#ifndef VIGIL_ERROR_H
#define VIGIL_ERROR_H

#include <stddef.h>

typedef enum vg_err {
    VG_OK = 0,
    VG_ENOMEM,       /* allocation failed */
    VG_EINVAL,       /* bad argument or bad input value */
    VG_EPARSE,       /* input could not be parsed */
    VG_ETOOLARGE,    /* input over a configured cap */
    VG_EIO,          /* file or socket I/O failed */
    VG_ENOTFOUND,    /* no such thing */
    VG_EEXIST,       /* already exists / duplicate */
    VG_ECONFIG,      /* configuration is invalid */
    VG_EPROTO,       /* peer spoke the protocol wrongly */
    VG_EUNSUPPORTED, /* valid but not supported here */
    VG_ECORRUPT,     /* stored data failed a checksum or sanity check */
    VG_ELIMIT,       /* a rate or size limit was hit; retry later */
    VG_EAGAIN,       /* nothing to do now; call again */
    VG_ERETRY,       /* transient failure; retry with backoff */
    VG_ECLOSED,      /* the object was shut down */
    VG_EINTERNAL,    /* a bug: an invariant did not hold */
    VG_ERR__COUNT
} vg_err_t;

/* Message buffer that callers may pass to get details; NULL is always allowed. */
typedef struct vg_error {
    vg_err_t code;
    char msg[512];
} vg_error;

/* Short static name for a code, e.g. "parse error". Never NULL. */
const char *vg_strerror(vg_err_t code);

/* Fill err (if not NULL) with code and a printf-style message; returns code. */
vg_err_t vg_error_set(vg_error *err, vg_err_t code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefix err->msg with "prefix: " (keeps the code); no-op on NULL. */
void vg_error_prefix(vg_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* err->msg, or vg_strerror(code) when err is NULL or empty. */
const char *vg_error_msg(const vg_error *err, vg_err_t code);

/* True for the codes a caller should retry later (EAGAIN, ERETRY, ELIMIT). */
int vg_err_retryable(vg_err_t code);

#endif
