/*
 * test_audit_sign.c - the audit chain's HMAC signing (sign.h, chain.h):
 * the MAC against an RFC 4231 vector, key files (size limits, a created key
 * is 32 bytes with mode 0600 and never overwritten), and chain lines that
 * verify under their key, fail under another key and fail once altered.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "auditstore/chain.h"
#include "auditstore/sign.h"
#include "vigil/alloc.h"

struct fix {
    char dir[64];
};

static int setup(void **state)
{
    struct fix *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/vg-sign-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fix *f = *state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static void key_of(vg_audit_signkey *k, uint8_t byte, size_t len)
{
    uint8_t b[VG_AUDIT_KEY_MAX];
    memset(b, byte, sizeof(b));
    assert_int_equal(vg_audit_signkey_set(k, b, len, NULL), VG_OK);
}

static void test_mac_rfc4231(void **state)
{
    (void)state;
    vg_audit_signkey k;
    key_of(&k, 0x0b, 20); /* RFC 4231 test case 1 */
    char mac[65];
    assert_int_equal(vg_audit_mac(&k, "Hi There", 8, mac), VG_OK);
    assert_string_equal(mac, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
    assert_int_equal(strlen(k.id), 16);
    vg_audit_signkey k2;
    key_of(&k2, 0x0c, 20);
    assert_string_not_equal(k.id, k2.id);
}

static void test_key_sizes(void **state)
{
    (void)state;
    vg_audit_signkey k;
    uint8_t b[VG_AUDIT_KEY_MAX + 1] = {0};
    vg_error err = {0};
    assert_int_equal(vg_audit_signkey_set(&k, b, VG_AUDIT_KEY_MIN - 1, &err), VG_EINVAL);
    assert_non_null(strstr(err.msg, "/dev/urandom")); /* says what to do */
    assert_int_equal(vg_audit_signkey_set(&k, b, VG_AUDIT_KEY_MAX + 1, NULL), VG_EINVAL);
    assert_int_equal(vg_audit_signkey_set(&k, b, VG_AUDIT_KEY_MIN, NULL), VG_OK);
}

static void write_file(const char *p, const void *d, size_t n, mode_t mode)
{
    FILE *fp = fopen(p, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(d, 1, n, fp), n);
    fclose(fp);
    assert_int_equal(chmod(p, mode), 0);
}

static void test_key_files(void **state)
{
    struct fix *f = *state;
    char p[128];
    vg_audit_signkey k, k2;
    vg_error err = {0};
    int loose = -1;
    snprintf(p, sizeof(p), "%s/none.key", f->dir);
    assert_int_equal(vg_audit_signkey_load(p, &k, NULL, &err), VG_ENOTFOUND);
    assert_int_equal(vg_audit_signkey_create(p, &k, &err), VG_OK);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_size, VG_AUDIT_KEY_NEW);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(vg_audit_signkey_load(p, &k2, &loose, &err), VG_OK);
    assert_int_equal(loose, 0);
    assert_string_equal(k.id, k2.id);
    assert_int_equal(vg_audit_signkey_create(p, &k2, &err), VG_OK); /* exists: loads, keeps */
    assert_string_equal(k.id, k2.id);
    snprintf(p, sizeof(p), "%s/short.key", f->dir);
    write_file(p, "0123456789", 10, 0600);
    assert_int_equal(vg_audit_signkey_load(p, &k, NULL, &err), VG_EINVAL);
    assert_non_null(strstr(err.msg, p)); /* names the file */
    snprintf(p, sizeof(p), "%s/loose.key", f->dir);
    write_file(p, "0123456789abcdef0123", 20, 0644);
    assert_int_equal(vg_audit_signkey_load(p, &k, &loose, &err), VG_OK);
    assert_int_equal(loose, 1);
}

static vg_achain_ent ent(const char *kind, const char *name, uint64_t records)
{
    vg_achain_ent e = {.hour_ms = 3600000, .records = records, .at_ms = 5};
    snprintf(e.kind, sizeof(e.kind), "%s", kind);
    snprintf(e.name, sizeof(e.name), "%s", name);
    snprintf(e.digest, sizeof(e.digest), "%064d", 7);
    return e;
}

static void test_chain_sign_verify(void **state)
{
    struct fix *f = *state;
    char p[128];
    snprintf(p, sizeof(p), "%s/chain.log", f->dir);
    vg_audit_signkey k, other;
    key_of(&k, 1, 32);
    key_of(&other, 2, 32);
    vg_error err = {0};
    vg_achain_ent a = ent("seal", "2023-a.seg", 100), b = ent("erase", "2023-a.seg", 3);
    assert_int_equal(vg_achain_append(p, &a, NULL, &err), VG_OK);
    assert_int_equal(vg_achain_append(p, &b, &k, &err), VG_OK);
    assert_string_equal(a.sig, "");
    assert_true(strncmp(b.sig, "hmac-sha256:", 12) == 0);
    vg_achain_ent *e = NULL;
    size_t n = 0;
    assert_int_equal(vg_achain_read(p, &e, &n, &err), VG_OK); /* 10- and 11-field lines */
    assert_int_equal(n, 2);
    assert_string_equal(e[0].sig, "");
    assert_string_equal(e[1].sig, b.sig);
    assert_int_equal(vg_achain_sig_check(&e[1], &k), VG_ACHAIN_SIG_OK);
    assert_int_equal(vg_achain_sig_check(&e[1], &other), VG_ACHAIN_SIG_OTHER_KEY);
    e[1].records = 2; /* the erased count altered */
    assert_int_equal(vg_achain_sig_check(&e[1], &k), VG_ACHAIN_SIG_BAD);
    e[1].records = 3;
    e[1].sig[strlen(e[1].sig) - 1] ^= 1; /* the MAC altered */
    assert_int_equal(vg_achain_sig_check(&e[1], &k), VG_ACHAIN_SIG_BAD);
    snprintf(e[1].sig, sizeof(e[1].sig), "hmac-sha256:%s:short", k.id);
    assert_int_equal(vg_achain_sig_check(&e[1], &k), VG_ACHAIN_SIG_BAD);
    vg_free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mac_rfc4231),
        cmocka_unit_test(test_key_sizes),
        cmocka_unit_test_setup_teardown(test_key_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chain_sign_verify, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
