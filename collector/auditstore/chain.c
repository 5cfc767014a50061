/*
 * chain.c - append to and check the audit hash chain (see chain.h).
 *
 * A line is "seq kind name hour records digest extra at prev hash [sig]";
 * hash is SHA-256 over "prev|body" where body is the line up to prev, and
 * sig is "hmac-sha256:<key id>:<HMAC-SHA256 of the same prev|body>". Appends
 * take an flock so the collector and vigilctl never interleave lines.
 */
#include "auditstore/chain.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "auditstore/segment.h"
#include "vigil/alloc.h"
#include "vigil/buf.h"

#define MAX_CHAIN (256u << 20)
#define ZERO_HASH "0000000000000000000000000000000000000000000000000000000000000000"

static int body_of(const vg_achain_ent *e, char *out, size_t cap)
{
    return snprintf(out, cap, "%" PRIu64 " %s %s %" PRId64 " %" PRIu64 " %s %s %" PRId64, e->seq,
                    e->kind, e->name, e->hour_ms, e->records, e->digest, e->extra, e->at_ms);
}

/* "prev|body": what the hash and the signature cover. */
static size_t input_of(const vg_achain_ent *e, char *out, size_t cap)
{
    char body[512];
    body_of(e, body, sizeof(body));
    int n = snprintf(out, cap, "%s|%s", e->prev, body);
    return n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
}

static void hash_of(const vg_achain_ent *e, char out[65])
{
    char both[600];
    size_t n = input_of(e, both, sizeof(both));
    uint8_t d[32];
    vg_audit_sha256(both, n, d);
    vg_audit_hex(d, out);
}

#define SIG_ALG "hmac-sha256"

static vg_err_t sign(vg_achain_ent *e, const vg_audit_signkey *key)
{
    char both[600], mac[65];
    size_t n = input_of(e, both, sizeof(both));
    if (vg_audit_mac(key, both, n, mac)) return VG_EINTERNAL;
    snprintf(e->sig, sizeof(e->sig), SIG_ALG ":%s:%s", key->id, mac);
    return VG_OK;
}

int vg_achain_sig_check(const vg_achain_ent *e, const vg_audit_signkey *key)
{
    char want[sizeof(e->sig)];
    vg_achain_ent c = *e;
    size_t pre = sizeof(SIG_ALG ":") - 1;
    if (strncmp(e->sig, SIG_ALG ":", pre) != 0 || strlen(e->sig) != pre + 16 + 1 + 64)
        return VG_ACHAIN_SIG_BAD;
    if (strncmp(e->sig + pre, key->id, 16) != 0) return VG_ACHAIN_SIG_OTHER_KEY;
    if (sign(&c, key)) return VG_ACHAIN_SIG_BAD;
    memcpy(want, c.sig, sizeof(want));
    return CRYPTO_memcmp(want, e->sig, strlen(want)) == 0 ? VG_ACHAIN_SIG_OK : VG_ACHAIN_SIG_BAD;
}

static int is_hex64(const char *s)
{
    if (strlen(s) != 64) return 0;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f'))) return 0;
    return 1;
}

static int parse_line(const char *l, vg_achain_ent *e)
{
    memset(e, 0, sizeof(*e));
    int used = 0;
    int n =
        sscanf(l, "%" SCNu64 " %7s %63s %" SCNd64 " %" SCNu64 " %64s %64s %" SCNd64 " %64s %64s%n",
               &e->seq, e->kind, e->name, &e->hour_ms, &e->records, e->digest, e->extra, &e->at_ms,
               e->prev, e->hash, &used);
    if (n != 10) return -1;
    if (l[used] == ' ') { /* a signature: one more field, nothing after it */
        int more = 0;
        if (sscanf(l + used, " %99s%n", e->sig, &more) != 1) return -1;
        used += more;
    }
    if (l[used] != 0) return -1;
    if (!is_hex64(e->prev) || !is_hex64(e->hash)) return -1;
    return 0;
}

static vg_err_t read_all(int fd, vg_buf *b, vg_error *err)
{
    char tmp[65536];
    for (;;) {
        ssize_t r = read(fd, tmp, sizeof(tmp));
        if (r < 0) return vg_error_set(err, VG_EIO, "chain read: %s", strerror(errno));
        if (r == 0) return VG_OK;
        if (vg_buf_append(b, tmp, (size_t)r))
            return vg_error_set(err, VG_ETOOLARGE, "chain file too large");
    }
}

static vg_err_t check_line(const vg_achain_ent *e, uint64_t want_seq, const char *prev,
                           const char *path, vg_error *err)
{
    char h[65];
    if (e->seq != want_seq)
        return vg_error_set(err, VG_ECORRUPT,
                            "%s: line %" PRIu64 ": sequence %" PRIu64
                            " out of order (entries removed or reordered)",
                            path, want_seq, e->seq);
    if (strcmp(e->prev, prev) != 0)
        return vg_error_set(err, VG_ECORRUPT,
                            "%s: line %" PRIu64 " (%s): does not link to the previous line", path,
                            want_seq, e->name);
    hash_of(e, h);
    if (strcmp(h, e->hash) != 0)
        return vg_error_set(err, VG_ECORRUPT,
                            "%s: line %" PRIu64 " (%s): hash mismatch (line altered)", path,
                            want_seq, e->name);
    return VG_OK;
}

static vg_err_t parse_all(const vg_buf *b, const char *path, vg_achain_ent **out, size_t *n,
                          vg_error *err)
{
    vg_err_t rc = VG_OK;
    size_t cap = 0, cnt = 0;
    vg_achain_ent *v = NULL;
    const char *p = b->data ? b->data : "";
    char prev[65] = ZERO_HASH; /* a copy: v moves when it grows */
    while (*p && !rc) {
        const char *nl = strchr(p, '\n');
        if (!nl) {
            rc = vg_error_set(err, VG_ECORRUPT, "%s: torn last line", path);
            break;
        }
        char line[1024];
        size_t ll = (size_t)(nl - p);
        if (cnt == cap) {
            cap = cap ? cap * 2 : 64;
            vg_achain_ent *nv = vg_realloc(v, cap * sizeof(*nv));
            if (!nv) {
                rc = vg_error_set(err, VG_ENOMEM, "out of memory");
                break;
            }
            v = nv;
        }
        if (ll >= sizeof(line)) ll = sizeof(line) - 1;
        memcpy(line, p, ll), line[ll] = 0;
        if (parse_line(line, &v[cnt]))
            rc = vg_error_set(err, VG_ECORRUPT, "%s: line %zu does not parse", path, cnt + 1);
        if (!rc) rc = check_line(&v[cnt], cnt + 1, prev, path, err);
        if (!rc) memcpy(prev, v[cnt++].hash, sizeof(prev));
        p = nl + 1;
    }
    if (rc) vg_free(v), v = NULL, cnt = 0;
    *out = v, *n = cnt;
    return rc;
}

vg_err_t vg_achain_read(const char *path, vg_achain_ent **out, size_t *n, vg_error *err)
{
    *out = NULL, *n = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? VG_OK : vg_error_set(err, VG_EIO, "%s: %s", path, strerror(errno));
    vg_buf b;
    vg_buf_init(&b, MAX_CHAIN);
    vg_err_t rc = read_all(fd, &b, err);
    close(fd);
    if (!rc) rc = parse_all(&b, path, out, n, err);
    vg_buf_free(&b);
    return rc;
}

vg_err_t vg_achain_append(const char *path, vg_achain_ent *e, const vg_audit_signkey *key,
                          vg_error *err)
{
    vg_achain_ent *all = NULL;
    size_t n = 0;
    char line[700], body[512];
    int fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) return vg_error_set(err, VG_EIO, "%s: %s", path, strerror(errno));
    vg_err_t rc = flock(fd, LOCK_EX) == 0 ? VG_OK : vg_error_set(err, VG_EIO, "flock %s", path);
    if (!rc) rc = vg_achain_read(path, &all, &n, err);
    if (rc) goto out;
    e->seq = n + 1;
    snprintf(e->prev, sizeof(e->prev), "%s", n ? all[n - 1].hash : ZERO_HASH);
    if (!e->extra[0]) snprintf(e->extra, sizeof(e->extra), "-");
    if (!e->digest[0]) snprintf(e->digest, sizeof(e->digest), "-");
    hash_of(e, e->hash);
    if (key && sign(e, key)) {
        rc = vg_error_set(err, VG_EINTERNAL, "%s: HMAC failed", path);
        goto out;
    }
    body_of(e, body, sizeof(body));
    int ll = snprintf(line, sizeof(line), "%s %s %s%s%s\n", body, e->prev, e->hash,
                      e->sig[0] ? " " : "", e->sig);
    if (write(fd, line, (size_t)ll) != ll || fsync(fd) != 0)
        rc = vg_error_set(err, VG_EIO, "%s: append: %s", path, strerror(errno));
out:
    vg_free(all);
    close(fd); /* releases the flock */
    return rc;
}
