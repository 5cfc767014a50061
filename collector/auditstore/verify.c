/*
 * verify.c - `vigilctl audit verify`: check every tenant's chain against
 * the segment files.
 *
 * The chain is replayed into the set of segments that must exist and the
 * content digest each must have: a seal adds one, an erasure changes its
 * digest, a deletion past retention removes it. Then each expected segment
 * is looked up in any tier, decompressed and hashed, and any segment file
 * the chain does not know is reported too. Problems name the segment;
 * deletions and erasures are listed so an auditor sees them.
 *
 * Signatures (sign.h): erasure and deletion lines are checked under the key
 * when there is one. Lines written before signing existed carry none; they
 * are listed as unsigned, not failed, as long as they come before the
 * chain's first signed line: a store cannot go back to not signing, so an
 * unsigned one after it has had its signature stripped. A chain re-written
 * whole without signatures looks like an old one, which require_signed
 * (`--require-signatures`) turns into a failure for stores that began signed.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "auditstore/auditstore_int.h"
#include "auditstore/chain.h"
#include "vigil/alloc.h"

struct expect {
    const vg_achain_ent *e; /* the latest event for this name */
    int deleted;
    int seen;
};

struct vstate {
    const vg_audit_verify_opts *o;
    const char *dir, *tenant;
    FILE *rep;
    vg_audit_verify_stats *st;
    int problems;
    int seen_signed; /* in this tenant's chain */
};

static void say(struct vstate *v, int problem, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void say(struct vstate *v, int problem, const char *fmt, ...)
{
    if (problem) v->problems++;
    if (!v->rep) return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(v->rep, "%s tenant=%s ", problem ? "FAIL" : "info", v->tenant);
    vfprintf(v->rep, fmt, ap);
    fputc('\n', v->rep);
    va_end(ap);
}

static struct expect *find(struct expect *x, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(x[i].e->name, name)) return &x[i];
    return NULL;
}

static int takes_away(const vg_achain_ent *e)
{
    return !strcmp(e->kind, "erase") || !strcmp(e->kind, "delete");
}

static void check_unsigned(struct vstate *v, const vg_achain_ent *e)
{
    if (!takes_away(e)) return;
    if (v->seen_signed || v->o->require_signed) {
        say(v, 1, "segment=%s: chain line %" PRIu64 " (%s): signature missing (%s)", e->name,
            e->seq, e->kind,
            v->seen_signed ? "stripped: earlier lines are signed" : "signatures are required");
        return;
    }
    v->st->unsigned_legacy++;
    say(v, 0, "segment=%s: chain line %" PRIu64 " (%s): unsigned (written before signing)", e->name,
        e->seq, e->kind);
}

static void check_sig(struct vstate *v, const vg_achain_ent *e)
{
    if (!e->sig[0]) {
        check_unsigned(v, e);
        return;
    }
    v->seen_signed = 1;
    if (!v->o->key) {
        v->st->sig_unchecked++;
        return;
    }
    int r = vg_achain_sig_check(e, v->o->key);
    if (r == VG_ACHAIN_SIG_OK)
        v->st->sig_checked++;
    else if (r == VG_ACHAIN_SIG_OTHER_KEY)
        say(v, 1,
            "segment=%s: chain line %" PRIu64 " (%s): signed with another key (%.28s..., the key "
            "given has id %s)",
            e->name, e->seq, e->kind, e->sig, v->o->key->id);
    else
        say(v, 1, "segment=%s: chain line %" PRIu64 " (%s): bad signature (line altered)", e->name,
            e->seq, e->kind);
}

static size_t replay_chain(struct vstate *v, const vg_achain_ent *e, size_t n, struct expect *x)
{
    size_t nx = 0;
    for (size_t i = 0; i < n; i++) {
        struct expect *p = find(x, nx, e[i].name);
        check_sig(v, &e[i]);
        if (!strcmp(e[i].kind, "seal")) {
            if (!p) p = &x[nx++];
            *p = (struct expect){.e = &e[i]};
        } else if (!p || p->deleted) {
            say(v, 1,
                "segment=%s: chain line %" PRIu64 " (%s) names a segment that was never sealed",
                e[i].name, e[i].seq, e[i].kind);
        } else if (!strcmp(e[i].kind, "erase")) {
            p->e = &e[i];
            say(v, 0,
                "segment=%s: erasure of %" PRIu64 " records of subject sha256=%s at_ms=%" PRId64,
                e[i].name, e[i].records, e[i].extra, e[i].at_ms);
        } else if (!strcmp(e[i].kind, "delete")) {
            p->deleted = 1;
            say(v, 0, "segment=%s: deleted past retention at_ms=%" PRId64, e[i].name, e[i].at_ms);
        } else {
            say(v, 1, "segment=%s: unknown chain event %s", e[i].name, e[i].kind);
        }
    }
    return nx;
}

static void check_file(struct vstate *v, struct expect *x, const char *path, const char *name)
{
    vg_aseg_t *seg = NULL;
    vg_error err = {0};
    uint8_t d[32];
    char hx[65];
    if (vg_aseg_load(path, &seg, &err) || vg_aseg_digest(seg, d, &err)) {
        say(v, 1, "segment=%s: unreadable (changed?): %s", name, err.msg);
    } else {
        vg_audit_hex(d, hx);
        if (strcmp(hx, x->e->digest) != 0)
            say(v, 1, "segment=%s: content digest differs from the chain (changed or swapped)",
                name);
        else if (vg_aseg_hour(seg) != x->e->hour_ms)
            say(v, 1, "segment=%s: hour differs from the chain (out of order)", name);
    }
    vg_aseg_free(seg);
}

static void check_disk(struct vstate *v, struct expect *x, size_t nx)
{
    char dir[1024], p[1200];
    for (int t = 0; t < 3; t++) {
        char **names = NULL;
        size_t n = 0;
        if (vg_audit_list_segments(v->dir, v->tenant, t, &names, &n, NULL)) continue;
        vg_audit_path(v->dir, v->tenant, vg_audit_tiers[t], dir, sizeof(dir));
        for (size_t i = 0; i < n; i++) {
            struct expect *e = find(x, nx, names[i]);
            snprintf(p, sizeof(p), "%s/%s", dir, names[i]);
            if (!e || e->deleted) {
                say(v, 1, "segment=%s/%s: not in the chain", vg_audit_tiers[t], names[i]);
                continue;
            }
            e->seen = 1;
            check_file(v, e, p, names[i]);
        }
        vg_audit_free_names(names, n);
    }
    for (size_t i = 0; i < nx; i++)
        if (!x[i].deleted && !x[i].seen)
            say(v, 1, "segment=%s: removed (in the chain, not on disk)", x[i].e->name);
}

static vg_err_t verify_tenant(struct vstate *v, vg_error *err)
{
    char cp[1024];
    vg_achain_ent *e = NULL;
    size_t n = 0;
    vg_error cerr = {0};
    if (vg_audit_path(v->dir, v->tenant, "chain.log", cp, sizeof(cp)))
        return vg_error_set(err, VG_EINVAL, "bad tenant %s", v->tenant);
    if (vg_achain_read(cp, &e, &n, &cerr)) {
        say(v, 1, "chain broken: %s", cerr.msg);
        return VG_OK;
    }
    struct expect *x = vg_calloc(n + 1, sizeof(*x));
    if (!x) {
        vg_free(e);
        return vg_error_set(err, VG_ENOMEM, "out of memory");
    }
    int before = v->problems;
    v->seen_signed = 0;
    size_t nx = replay_chain(v, e, n, x);
    check_disk(v, x, nx);
    if (v->problems == before) say(v, 0, "ok: %zu chain events, %zu segments", n, nx);
    vg_free(x);
    vg_free(e);
    return VG_OK;
}

vg_err_t vg_audit_verify(const vg_audit_verify_opts *o, FILE *rep, vg_audit_verify_stats *st,
                         vg_error *err)
{
    *st = (vg_audit_verify_stats){0};
    struct vstate v = {.o = o, .dir = o->dir, .rep = rep, .st = st};
    char **ten = NULL;
    size_t nt = 0;
    vg_err_t rc = VG_OK;
    if (o->tenant) {
        v.tenant = o->tenant;
        rc = verify_tenant(&v, err);
    } else {
        rc = vg_audit_list_tenants(o->dir, &ten, &nt, err);
        for (size_t i = 0; i < nt && !rc; i++) {
            v.tenant = ten[i];
            rc = verify_tenant(&v, err);
        }
    }
    vg_audit_free_names(ten, nt);
    st->problems = v.problems;
    return rc;
}
