/*
 * audit.c - `vigilctl audit verify|erase`.
 *
 * Both work on the files, not over HTTP, so an auditor can check a copy of
 * the store on another machine. DIR is the collector's data_dir (the store
 * is DIR/audit) or the audit directory itself. Erase opens the store as
 * the collector does, so it takes the store's lock: against a running
 * collector use DELETE /api/v1/audit/subject/{user_id} instead.
 *
 * The signing key: --key-file names it (it must be the collector's
 * audit.signing_key_file when that is set, or erase signs with another key
 * and verify names the mismatch); without it both use the store's own
 * signing.key, and verify says "signatures not checked" when it has no key
 * it can read.
 */
#include "audit.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auditstore/auditstore.h"

static void usage(void)
{
    fprintf(stderr, "usage: vigilctl audit verify --data-dir DIR [--tenant T] [--key-file F] "
                    "[--require-signatures]\n"
                    "       vigilctl audit erase --subject USER_ID --tenant T --data-dir DIR "
                    "[--key-file F]\n");
}

struct args {
    const char *data_dir, *tenant, *subject, *key_file;
    int require_signed;
};

static int parse(int argc, char **argv, struct args *a)
{
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--require-signatures")) {
            a->require_signed = 1;
            continue;
        }
        const char **dst = !strcmp(argv[i], "--data-dir")   ? &a->data_dir
                           : !strcmp(argv[i], "--tenant")   ? &a->tenant
                           : !strcmp(argv[i], "--subject")  ? &a->subject
                           : !strcmp(argv[i], "--key-file") ? &a->key_file
                                                            : NULL;
        if (!dst || i + 1 >= argc) return -1;
        *dst = argv[++i];
    }
    return a->data_dir ? 0 : -1;
}

/* DIR/audit when it exists, else DIR. */
static void store_dir(const char *d, char *out, size_t cap)
{
    struct stat st;
    snprintf(out, cap, "%s/audit", d);
    if (stat(out, &st) != 0 || !S_ISDIR(st.st_mode)) snprintf(out, cap, "%s", d);
}

/* --key-file, which must load; else the store's signing.key if readable.
 * Returns 0 with *have = 0 when there is no key, -1 on a bad --key-file. */
static int verify_key(const struct args *a, const char *dir, vg_audit_signkey *key, int *have)
{
    char def[4200];
    vg_error err = {0};
    *have = 0;
    if (a->key_file) {
        if (vg_audit_signkey_load(a->key_file, key, NULL, &err)) {
            fprintf(stderr, "vigilctl audit verify: %s\n", err.msg);
            return -1;
        }
        *have = 1;
        return 0;
    }
    snprintf(def, sizeof(def), "%s/" VG_AUDIT_KEY_DEFAULT, dir);
    if (access(def, R_OK) != 0) return 0; /* none, or not ours to read: not checked */
    if (vg_audit_signkey_load(def, key, NULL, &err) == VG_OK)
        *have = 1;
    else
        fprintf(stderr, "vigilctl audit verify: %s; signatures not checked\n", err.msg);
    return 0;
}

static void verify_summary(const vg_audit_verify_stats *st, int have_key)
{
    if (have_key)
        printf("signatures checked: %" PRIu64 " ok\n", st->sig_checked);
    else
        printf("signatures not checked: no key (%" PRIu64 " signed lines; pass --key-file)\n",
               st->sig_unchecked);
    if (st->unsigned_legacy)
        printf("unsigned erasure/deletion lines from before signing: %" PRIu64 "\n",
               st->unsigned_legacy);
}

static int cmd_verify(const struct args *a)
{
    char dir[4096];
    store_dir(a->data_dir, dir, sizeof(dir));
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        fprintf(stderr, "vigilctl audit verify: %s: not a directory\n", dir);
        return 2;
    }
    vg_audit_signkey key;
    int have = 0;
    if (verify_key(a, dir, &key, &have)) return 2;
    vg_audit_verify_opts o = {.dir = dir,
                              .tenant = a->tenant,
                              .key = have ? &key : NULL,
                              .require_signed = a->require_signed};
    vg_audit_verify_stats st;
    vg_error err = {0};
    vg_err_t rc = vg_audit_verify(&o, stdout, &st, &err);
    if (rc) {
        fprintf(stderr, "vigilctl audit verify: %s\n", vg_error_msg(&err, rc));
        return 2;
    }
    verify_summary(&st, have);
    if (st.problems) {
        fprintf(stderr, "audit store NOT intact: %d problem(s)\n", st.problems);
        return 1;
    }
    printf("audit store intact\n");
    return 0;
}

static int cmd_erase(const struct args *a)
{
    if (!a->subject || !a->tenant) {
        usage();
        return 2;
    }
    char dir[4096];
    store_dir(a->data_dir, dir, sizeof(dir));
    vg_auditstore_opts o = {
        .dir = dir, .interval_ms = -1, .seal_grace_ms = -1, .signing_key_file = a->key_file};
    vg_auditstore_t *s = NULL;
    vg_error err = {0};
    uint64_t removed = 0;
    vg_err_t rc = vg_auditstore_open(&o, &s, &err);
    if (!rc) rc = vg_auditstore_erase(s, a->tenant, a->subject, &removed, &err);
    vg_auditstore_free(s);
    if (rc) {
        fprintf(stderr, "vigilctl audit erase: %s\n", vg_error_msg(&err, rc));
        return 2;
    }
    printf("erased %" PRIu64 " records of the subject from tenant %s\n", removed, a->tenant);
    return 0;
}

int vg_ctl_audit_main(int argc, char **argv)
{
    struct args a = {0};
    if (argc < 2 || parse(argc - 2, argv + 2, &a) != 0) {
        usage();
        return 2;
    }
    if (!strcmp(argv[1], "verify")) return cmd_verify(&a);
    if (!strcmp(argv[1], "erase")) return cmd_erase(&a);
    usage();
    return 2;
}
