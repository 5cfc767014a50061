/*
 * sign.c - load, create and use the audit chain's HMAC key (see sign.h).
 *
 * A created key comes from getrandom() and is written with O_EXCL and mode
 * 0600, then fsynced with its directory: two processes racing to create it
 * (the collector and vigilctl) end up with one key, never two.
 */
#include "auditstore/sign.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "auditstore/segment.h"

#define KEY_ID_TAG "vigil-audit-key:"

vg_err_t vg_audit_signkey_set(vg_audit_signkey *key, const void *k, size_t len, vg_error *err)
{
    memset(key, 0, sizeof(*key));
    if (len < VG_AUDIT_KEY_MIN || len > VG_AUDIT_KEY_MAX)
        return vg_error_set(err, VG_EINVAL,
                            "signing key is %zu bytes; it must hold %d to %d bytes (create one "
                            "with: head -c 32 /dev/urandom > FILE; chmod 600 FILE)",
                            len, VG_AUDIT_KEY_MIN, VG_AUDIT_KEY_MAX);
    uint8_t buf[sizeof(KEY_ID_TAG) + VG_AUDIT_KEY_MAX], d[32];
    memcpy(buf, KEY_ID_TAG, sizeof(KEY_ID_TAG) - 1);
    memcpy(buf + sizeof(KEY_ID_TAG) - 1, k, len);
    memcpy(key->k, k, len);
    key->len = len;
    vg_err_t rc = vg_audit_sha256(buf, sizeof(KEY_ID_TAG) - 1 + len, d);
    OPENSSL_cleanse(buf, sizeof(buf));
    if (rc) return vg_error_set(err, rc, "SHA-256 failed");
    char hx[65];
    vg_audit_hex(d, hx);
    memcpy(key->id, hx, 16), key->id[16] = 0;
    return VG_OK;
}

vg_err_t vg_audit_signkey_load(const char *path, vg_audit_signkey *key, int *loose, vg_error *err)
{
    uint8_t buf[VG_AUDIT_KEY_MAX + 1];
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return vg_error_set(err, errno == ENOENT ? VG_ENOTFOUND : VG_EIO, "signing key %s: %s",
                            path, strerror(errno));
    vg_err_t rc = VG_OK;
    ssize_t n = 0, r = 0;
    while ((size_t)n < sizeof(buf) && (r = read(fd, buf + n, sizeof(buf) - (size_t)n)) > 0) n += r;
    if (r < 0 || fstat(fd, &st) != 0)
        rc = vg_error_set(err, VG_EIO, "signing key %s: %s", path, strerror(errno));
    close(fd);
    if (!rc && loose) *loose = (st.st_mode & 077) != 0;
    vg_error kerr = {0};
    if (!rc && vg_audit_signkey_set(key, buf, (size_t)n, &kerr))
        rc = vg_error_set(err, VG_EINVAL, "signing key %s: %s", path, kerr.msg);
    OPENSSL_cleanse(buf, sizeof(buf));
    return rc;
}

static vg_err_t write_key(int fd, const char *path, const uint8_t *k, vg_error *err)
{
    if (write(fd, k, VG_AUDIT_KEY_NEW) != VG_AUDIT_KEY_NEW || fsync(fd) != 0)
        return vg_error_set(err, VG_EIO, "signing key %s: write: %s", path, strerror(errno));
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s", path);
    int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) fsync(dfd), close(dfd);
    return VG_OK;
}

vg_err_t vg_audit_signkey_create(const char *path, vg_audit_signkey *key, vg_error *err)
{
    uint8_t k[VG_AUDIT_KEY_NEW];
    if (getrandom(k, sizeof(k), 0) != (ssize_t)sizeof(k))
        return vg_error_set(err, VG_EIO, "getrandom: %s", strerror(errno));
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 && errno == EEXIST) return vg_audit_signkey_load(path, key, NULL, err); /* raced */
    if (fd < 0) return vg_error_set(err, VG_EIO, "signing key %s: %s", path, strerror(errno));
    vg_err_t rc = write_key(fd, path, k, err);
    close(fd);
    if (rc)
        unlink(path);
    else
        rc = vg_audit_signkey_set(key, k, sizeof(k), err);
    OPENSSL_cleanse(k, sizeof(k));
    return rc;
}

vg_err_t vg_audit_mac(const vg_audit_signkey *key, const void *data, size_t len, char out[65])
{
    uint8_t d[32];
    unsigned int dl = 0;
    out[0] = 0;
    if (!HMAC(EVP_sha256(), key->k, (int)key->len, data, len, d, &dl) || dl != 32)
        return VG_EINTERNAL;
    vg_audit_hex(d, out);
    return VG_OK;
}
