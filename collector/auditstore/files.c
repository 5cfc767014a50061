/*
 * files.c - the audit store's file-system helpers: tenant directory names,
 * atomic writes (temp, fsync, rename, fsync the directory) and listings.
 *
 * Tenant names come from agents, so they are percent-encoded (anything but
 * [A-Za-z0-9_-], and a leading '.') before they become a path component.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "auditstore/auditstore_int.h"
#include "vigil/alloc.h"

const char *const vg_audit_tiers[3] = {"hot", "warm", "cold"};
const int vg_audit_tier_level[3] = {3, 9, 19};

static int plain(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

vg_err_t vg_audit_tenant_dir(const char *tenant, char *out, size_t cap)
{
    size_t o = 0;
    if (!*tenant || strlen(tenant) > 200) return VG_EINVAL;
    for (const char *p = tenant; *p; p++) {
        if (o + 4 > cap) return VG_ETOOLARGE;
        if (plain(*p))
            out[o++] = *p;
        else
            o += (size_t)snprintf(out + o, cap - o, "%%%02X", (unsigned char)*p);
    }
    out[o] = 0;
    return VG_OK;
}

static int hexv(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int tenant_decode(const char *d, char *out, size_t cap)
{
    size_t o = 0;
    for (; *d; d++) {
        if (o + 1 >= cap) return -1;
        if (*d == '%') {
            int h = hexv(d[1]), l = h < 0 ? -1 : hexv(d[2]);
            if (l < 0) return -1;
            out[o++] = (char)(h * 16 + l), d += 2;
        } else if (plain(*d))
            out[o++] = *d;
        else
            return -1;
    }
    out[o] = 0;
    return o ? 0 : -1;
}

vg_err_t vg_audit_path(const char *dir, const char *tenant, const char *sub, char *out, size_t cap)
{
    char td[700];
    vg_err_t rc = vg_audit_tenant_dir(tenant, td, sizeof(td));
    if (rc) return rc;
    int n =
        sub ? snprintf(out, cap, "%s/%s/%s", dir, td, sub) : snprintf(out, cap, "%s/%s", dir, td);
    return n < 0 || (size_t)n >= cap ? VG_ETOOLARGE : VG_OK;
}

vg_err_t vg_audit_mkdirs(const char *path, vg_error *err)
{
    char tmp[1024];
    if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp))
        return vg_error_set(err, VG_ETOOLARGE, "path too long");
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
            return vg_error_set(err, VG_EIO, "mkdir %s: %s", tmp, strerror(errno));
        *p = '/';
    }
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
        return vg_error_set(err, VG_EIO, "mkdir %s: %s", tmp, strerror(errno));
    return VG_OK;
}

vg_err_t vg_audit_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return VG_EIO;
    int r = fsync(fd);
    close(fd);
    return r == 0 ? VG_OK : VG_EIO;
}

vg_err_t vg_audit_write_atomic(const char *dir, const char *name, const void *data, size_t len,
                               vg_error *err)
{
    char tmp[1200], dst[1200];
    snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, name);
    snprintf(dst, sizeof(dst), "%s/%s", dir, name);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return vg_error_set(err, VG_EIO, "%s: %s", tmp, strerror(errno));
    const char *p = data;
    size_t left = len;
    while (left) {
        ssize_t w = write(fd, p, left);
        if (w <= 0) break;
        p += w, left -= (size_t)w;
    }
    int ok = left == 0 && fsync(fd) == 0;
    close(fd);
    if (!ok || rename(tmp, dst) != 0) {
        vg_error_set(err, VG_EIO, "%s: %s", dst, strerror(errno));
        unlink(tmp);
        return VG_EIO;
    }
    return vg_audit_fsync_dir(dir) ? vg_error_set(err, VG_EIO, "fsync %s", dir) : VG_OK;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Names in path for which keep(name) holds, sorted. A missing dir is empty. */
static vg_err_t list_dir(const char *path, int (*keep)(const char *), char ***out, size_t *n,
                         vg_error *err)
{
    *out = NULL, *n = 0;
    DIR *d = opendir(path);
    if (!d)
        return errno == ENOENT ? VG_OK : vg_error_set(err, VG_EIO, "%s: %s", path, strerror(errno));
    vg_err_t rc = VG_OK;
    size_t cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) && !rc) {
        if (!keep(de->d_name)) continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            char **nv = vg_realloc(*out, cap * sizeof(char *));
            if (!nv) {
                rc = VG_ENOMEM;
                break;
            }
            *out = nv;
        }
        if (!((*out)[*n] = vg_strdup(de->d_name)))
            rc = VG_ENOMEM;
        else
            (*n)++;
    }
    closedir(d);
    if (rc) {
        vg_audit_free_names(*out, *n);
        *out = NULL, *n = 0;
        return vg_error_set(err, rc, "out of memory");
    }
    if (*n) qsort(*out, *n, sizeof(char *), name_cmp);
    return VG_OK;
}

static int is_tenant(const char *name)
{
    char t[256];
    return name[0] != '.' && strcmp(name, "LOCK") != 0 && tenant_decode(name, t, sizeof(t)) == 0;
}

static int is_segment(const char *name)
{
    size_t l = strlen(name);
    return name[0] != '.' && l > 4 && strcmp(name + l - 4, ".seg") == 0;
}

vg_err_t vg_audit_list_tenants(const char *dir, char ***out, size_t *n, vg_error *err)
{
    vg_err_t rc = list_dir(dir, is_tenant, out, n, err);
    for (size_t i = 0; i < *n && !rc; i++) {
        char t[256];
        tenant_decode((*out)[i], t, sizeof(t));
        char *d = vg_strdup(t);
        if (!d)
            rc = vg_error_set(err, VG_ENOMEM, "out of memory");
        else
            vg_free((*out)[i]), (*out)[i] = d;
    }
    return rc;
}

vg_err_t vg_audit_list_segments(const char *dir, const char *tenant, int tier, char ***out,
                                size_t *n, vg_error *err)
{
    char p[1024];
    *out = NULL, *n = 0;
    if (vg_audit_path(dir, tenant, vg_audit_tiers[tier], p, sizeof(p)))
        return vg_error_set(err, VG_EINVAL, "bad tenant");
    return list_dir(p, is_segment, out, n, err);
}

int64_t vg_audit_name_hour(const char *name)
{
    struct tm tm = {0};
    int y, mo, d, h, used = 0;
    if (sscanf(name, "%4d%2d%2d%2d-%n", &y, &mo, &d, &h, &used) != 4 || used != 11) return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h < 0 || h > 23) return -1;
    tm.tm_year = y - 1900, tm.tm_mon = mo - 1, tm.tm_mday = d, tm.tm_hour = h;
    return (int64_t)timegm(&tm) * 1000;
}

void vg_audit_free_names(char **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++) vg_free(v[i]);
    vg_free(v);
}
