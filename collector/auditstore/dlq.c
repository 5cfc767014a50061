/*
 * dlq.c - the audit dead-letter store: lines the agent could not turn into
 * records (bad JSON, missing fields, bad UTF-8, too long), kept durably per
 * tenant in <tenant>/dlq.log as JSON lines, once per source identity.
 *
 * The dedup keys share the store's key set (with their own prefix), and the
 * log is read back at open, so an agent that resends after a crash does not
 * count a bad line twice. Counts by reason are self-metrics.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "auditstore/auditstore_int.h"
#include "vigil/alloc.h"

#define MAX_DLQ_FILE (512u << 20)

static vg_err_t dlq_line(const char *tenant, const char *reason, const char *line,
                         const char *file_id, uint64_t offset, int64_t now, vg_buf *b)
{
    vg_err_t rc = vg_buf_printf(b, "{\"at_ms\":%" PRId64 ",\"tenant\":", now);
    if (!rc) rc = vg_buf_json_str(b, tenant, strlen(tenant));
    if (!rc) rc = vg_buf_puts(b, ",\"reason\":");
    if (!rc) rc = vg_buf_json_str(b, reason, strlen(reason));
    if (!rc) rc = vg_buf_puts(b, ",\"file_id\":");
    if (!rc) rc = vg_buf_json_str(b, file_id, strlen(file_id));
    if (!rc) rc = vg_buf_printf(b, ",\"offset\":%" PRIu64 ",\"line\":", offset);
    if (!rc) rc = vg_buf_json_str(b, line, strlen(line));
    if (!rc) rc = vg_buf_puts(b, "}\n");
    return rc;
}

vg_err_t vg_auditstore_dlq_add(vg_auditstore_t *s, const char *tenant, const char *reason,
                               const char *line, const char *file_id, uint64_t offset, int *dup,
                               vg_error *err)
{
    char td[1024], p[1100];
    *dup = 0;
    if (vg_audit_path(s->dir, tenant, NULL, td, sizeof(td)))
        return vg_error_set(err, VG_EINVAL, "bad tenant name");
    snprintf(p, sizeof(p), "%s/dlq.log", td);
    uint64_t key = vg_audit_key(tenant, file_id, offset, 1);
    vg_buf b;
    vg_buf_init(&b, VG_AUDIT_MAX_LINE * 2);
    vg_err_t rc = dlq_line(tenant, reason, line, file_id, offset, vg_audit_now(s), &b);
    if (rc) return vg_error_set(err, rc, "dead-letter entry too large");
    pthread_mutex_lock(&s->mu);
    if (vg_akeys_has(&s->keys, key)) {
        *dup = 1;
        goto out;
    }
    rc = vg_audit_mkdirs(td, err);
    int fd = rc ? -1 : open(p, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (!rc && fd < 0) rc = vg_error_set(err, VG_EIO, "%s: %s", p, strerror(errno));
    if (!rc && (write(fd, b.data, b.len) != (ssize_t)b.len || fdatasync(fd) != 0))
        rc = vg_error_set(err, VG_EIO, "%s: %s", p, strerror(errno));
    if (fd >= 0) close(fd);
    if (!rc && vg_akeys_add(&s->keys, key)) rc = vg_error_set(err, VG_ENOMEM, "out of memory");
out:
    pthread_mutex_unlock(&s->mu);
    vg_buf_free(&b);
    return rc;
}

/* Call fn for each entry of tenant's DLQ log (parsed); stops when fn returns non-zero. */
static vg_err_t vg_audit_dlq_each(const char *dir, const char *tenant,
                                  int (*fn)(void *ud, json_t *e, const char *raw, size_t len),
                                  void *ud)
{
    char td[1024], p[1100];
    if (vg_audit_path(dir, tenant, NULL, td, sizeof(td))) return VG_EINVAL;
    snprintf(p, sizeof(p), "%s/dlq.log", td);
    FILE *f = fopen(p, "r");
    if (!f) return errno == ENOENT ? VG_OK : VG_EIO;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int stop = 0;
    while (!stop && (n = getline(&line, &cap, f)) > 0) {
        if (line[n - 1] != '\n') break; /* torn tail */
        json_t *e = json_loadb(line, (size_t)n, 0, NULL);
        if (e) stop = fn(ud, e, line, (size_t)n);
        json_decref(e);
    }
    free(line); /* getline's buffer is libc's */
    fclose(f);
    return VG_OK;
}

struct loadctx {
    vg_auditstore_t *s;
    const char *tenant;
    vg_err_t rc;
};

static int load_one(void *ud, json_t *e, const char *raw, size_t len)
{
    (void)raw, (void)len;
    struct loadctx *c = ud;
    const char *fid = json_string_value(json_object_get(e, "file_id"));
    json_t *off = json_object_get(e, "offset");
    if (!fid || !json_is_integer(off)) return 0;
    c->rc = vg_akeys_add(&c->s->keys,
                         vg_audit_key(c->tenant, fid, (uint64_t)json_integer_value(off), 1));
    return c->rc != VG_OK;
}

vg_err_t vg_audit_dlq_load(vg_auditstore_t *s, const char *tenant, vg_error *err)
{
    struct loadctx c = {s, tenant, VG_OK};
    vg_err_t rc = vg_audit_dlq_each(s->dir, tenant, load_one, &c);
    if (!rc) rc = c.rc;
    return rc ? vg_error_set(err, rc, "cannot load the dead-letter log of %s", tenant) : VG_OK;
}

struct listctx {
    vg_buf *out;
    size_t left;
    vg_err_t rc;
};

static int list_one(void *ud, json_t *e, const char *raw, size_t len)
{
    (void)e;
    struct listctx *c = ud;
    if (!c->left) return 1;
    c->left--;
    c->rc = vg_buf_append(c->out, raw, len);
    return c->rc != VG_OK;
}

vg_err_t vg_auditstore_dlq_list(vg_auditstore_t *s, const char *tenant, size_t limit, vg_buf *out,
                                vg_error *err)
{
    struct listctx c = {out, limit ? limit : 1000, VG_OK};
    char **ten = NULL;
    size_t nt = 0;
    vg_err_t rc = VG_OK;
    if (tenant)
        rc = vg_audit_dlq_each(s->dir, tenant, list_one, &c);
    else
        rc = vg_audit_list_tenants(s->dir, &ten, &nt, err);
    for (size_t i = 0; i < nt && !rc && c.left; i++)
        rc = vg_audit_dlq_each(s->dir, ten[i], list_one, &c);
    vg_audit_free_names(ten, nt);
    if (!rc) rc = c.rc;
    return rc ? vg_error_set(err, rc, "cannot list the dead-letter log") : VG_OK;
}
