/*
 * test_auditstore.c - the audit store: dedup across restarts, WAL replay
 * with a torn tail, sealing and index lookups, the hash chain catching a
 * flipped byte / a removed segment / a reordered chain, erasure, and tier
 * moves and deletion under an injected clock. Signed erasure/deletion lines:
 * a re-hashed chain with an altered erasure count fails, a wrong key fails,
 * no key leaves signatures unchecked, old unsigned chains are legacy, not
 * tampering, and a stripped signature after a signed line fails. Dead
 * letters, added directly and as the agents' JSON (HTTP and Kafka).
 */
#include <dirent.h>
#include <fcntl.h>
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

#include "auditstore/auditstore.h"
#include "auditstore/chain.h"
#include "auditstore/segment.h"
#include "vigil/alloc.h"
#include "vigil/buf.h"

#define HOUR 3600000LL
#define T0   (1700000000000LL - 1700000000000LL % HOUR) /* an hour boundary */

static int64_t fake_now;

static int64_t fake_clock(void *ud)
{
    (void)ud;
    return fake_now;
}

struct fix {
    char dir[64];
    vg_auditstore_t *s;
};

static vg_auditstore_t *open_store(struct fix *f)
{
    vg_auditstore_opts o = {.dir = f->dir,
                            .hot_ms = 2 * HOUR,
                            .warm_ms = 4 * HOUR,
                            .cold_ms = 6 * HOUR,
                            .seal_grace_ms = -1,
                            .interval_ms = -1,
                            .clock = fake_clock};
    vg_error err = {0};
    vg_auditstore_t *s = NULL;
    vg_err_t rc = vg_auditstore_open(&o, &s, &err);
    if (rc) fprintf(stderr, "open: %s\n", err.msg);
    assert_int_equal(rc, VG_OK);
    return s;
}

static int setup(void **state)
{
    struct fix *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/vg-audit-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    fake_now = T0 + HOUR / 2;
    f->s = open_store(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fix *f = *state;
    vg_auditstore_free(f->s);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static void reopen(struct fix *f)
{
    vg_auditstore_free(f->s);
    f->s = open_store(f);
}

/* n records for user u<i%users>, action a<i%2>, file "f1", offsets off0.. */
static vg_audit_append_stats put(vg_auditstore_t *s, const char *tenant, uint64_t off0, size_t n,
                                 int64_t ts0, int users)
{
    Vigil__V1__AuditRecord *r = calloc(n, sizeof(*r)), **pr = calloc(n, sizeof(*pr));
    char(*user)[16] = calloc(n, 16);
    for (size_t i = 0; i < n; i++) {
        vigil__v1__audit_record__init(&r[i]);
        snprintf(user[i], 32, "u%zu", (off0 + i) % (size_t)users);
        r[i].ts_ms = ts0 + (int64_t)i;
        r[i].user_id = user[i];
        r[i].action = (off0 + i) % 2 ? "login" : "logout";
        r[i].result = "success";
        r[i].original_json = "{\"x\":1}";
        r[i].file_id = "f1";
        r[i].offset = off0 + i;
        pr[i] = &r[i];
    }
    vg_audit_append_stats st = {0};
    vg_error err = {0};
    assert_int_equal(vg_auditstore_append(s, tenant, pr, n, &st, &err), VG_OK);
    free(r), free(pr), free(user);
    return st;
}

static size_t count_lines(const vg_buf *b)
{
    size_t n = 0;
    for (size_t i = 0; i < b->len; i++) n += b->data[i] == '\n';
    return n;
}

static size_t query_count(vg_auditstore_t *s, const char *tenant, const char *user)
{
    vg_audit_query q = {.tenant = tenant, .user_id = user, .limit = 10000};
    vg_buf b;
    vg_buf_init(&b, 0);
    char next[64];
    vg_error err = {0};
    assert_int_equal(vg_auditstore_query(s, &q, &b, next, &err), VG_OK);
    size_t n = count_lines(&b);
    vg_buf_free(&b);
    return n;
}

/* verify with the store's own key (created at open) */
static int verify_st(struct fix *f, const char *tenant, vg_audit_verify_stats *st)
{
    char kp[128];
    vg_audit_signkey key;
    vg_error err = {0};
    snprintf(kp, sizeof(kp), "%s/signing.key", f->dir);
    assert_int_equal(vg_audit_signkey_load(kp, &key, NULL, &err), VG_OK);
    vg_audit_verify_opts o = {.dir = f->dir, .tenant = tenant, .key = &key};
    assert_int_equal(vg_audit_verify(&o, stderr, st, &err), VG_OK);
    return st->problems;
}

static int verify(struct fix *f, const char *tenant)
{
    vg_audit_verify_stats st;
    return verify_st(f, tenant, &st);
}

static void test_dedup_across_restart(void **state)
{
    struct fix *f = *state;
    vg_audit_append_stats st = put(f->s, "t1", 0, 50, T0, 5);
    assert_int_equal(st.stored, 50);
    st = put(f->s, "t1", 0, 50, T0, 5);
    assert_int_equal(st.stored, 0);
    assert_int_equal(st.duplicates, 50);
    st = put(f->s, "t2", 0, 10, T0, 5); /* same source identity, other tenant: distinct */
    assert_int_equal(st.stored, 10);
    reopen(f);
    st = put(f->s, "t1", 40, 20, T0, 5);
    assert_int_equal(st.stored, 10);
    assert_int_equal(st.duplicates, 10);
    assert_int_equal(query_count(f->s, "t1", NULL), 60);
    /* and after sealing, from the segment's key list */
    vg_error err = {0};
    assert_int_equal(vg_auditstore_seal_all(f->s, NULL, &err), VG_OK);
    reopen(f);
    st = put(f->s, "t1", 0, 60, T0, 5);
    assert_int_equal(st.stored, 0);
    assert_int_equal(query_count(f->s, "t1", NULL), 60);
    assert_int_equal(verify(f, NULL), 0);
}

static void wal_file(struct fix *f, char *out, size_t cap)
{
    snprintf(out, cap, "%s/t1/wal/%lld.wal", f->dir, (long long)T0);
}

static void test_wal_torn_tail(void **state)
{
    struct fix *f = *state;
    put(f->s, "t1", 0, 10, T0, 3);
    vg_auditstore_free(f->s), f->s = NULL;
    char p[256];
    wal_file(f, p, sizeof(p));
    struct stat sb;
    assert_int_equal(stat(p, &sb), 0);
    assert_int_equal(truncate(p, sb.st_size - 5), 0); /* the last record is torn */
    f->s = open_store(f);
    assert_int_equal(query_count(f->s, "t1", NULL), 9);
    vg_audit_append_stats st = put(f->s, "t1", 0, 10, T0, 3); /* the agent resends */
    assert_int_equal(st.stored, 1);
    reopen(f);
    assert_int_equal(query_count(f->s, "t1", NULL), 10);
}

/* Damage inside the WAL (not at its end) costs only the damaged frame: the
 * records after it were acknowledged and survive replay, twice. The damage
 * is a flipped payload byte (bad CRC) or a length that no longer fits. */
static void damage_frame(const char *path, int frame, int in_length)
{
    FILE *fp = fopen(path, "r+b");
    assert_non_null(fp);
    long off = 0;
    for (int i = 0; i < frame; i++) {
        uint8_t h[4];
        assert_int_equal(fseek(fp, off, SEEK_SET), 0);
        assert_int_equal(fread(h, 1, 4, fp), 4);
        off += 8 + (long)(h[0] | h[1] << 8 | h[2] << 16 | (uint32_t)h[3] << 24);
    }
    long at = in_length ? off + 3 : off + 8 + 20;
    uint8_t c;
    assert_int_equal(fseek(fp, at, SEEK_SET), 0);
    assert_int_equal(fread(&c, 1, 1, fp), 1);
    c ^= in_length ? 0x7f : 0x01;
    assert_int_equal(fseek(fp, at, SEEK_SET), 0);
    assert_int_equal(fwrite(&c, 1, 1, fp), 1);
    fclose(fp);
}

static void test_wal_damage_inside(void **state)
{
    struct fix *f = *state;
    char p[256];
    wal_file(f, p, sizeof(p));
    for (int in_length = 0; in_length < 2; in_length++) {
        put(f->s, "t1", (uint64_t)in_length * 100, 10, T0 + in_length * 100, 3);
        vg_auditstore_free(f->s), f->s = NULL;
        damage_frame(p, in_length ? 13 : 4, in_length); /* frames of both rounds are in one file */
        f->s = open_store(f);
        assert_int_equal(query_count(f->s, "t1", NULL), in_length ? 18 : 9);
        reopen(f);
        assert_int_equal(query_count(f->s, "t1", NULL), in_length ? 18 : 9);
    }
}

static void test_seal_and_index(void **state)
{
    struct fix *f = *state;
    put(f->s, "t1", 0, 2000, T0, 7); /* > one frame */
    fake_now = T0 + HOUR + 1;
    vg_error err = {0};
    assert_int_equal(vg_auditstore_maintain(f->s, &err), VG_OK);
    vg_audit_tier_stats ts;
    assert_int_equal(vg_auditstore_stats(f->s, &ts, &err), VG_OK);
    assert_int_equal(ts.segments[0], 1);
    assert_int_equal(ts.records[0], 2000);
    assert_int_equal(ts.open_records, 0);
    assert_int_equal(query_count(f->s, "t1", "u3"), 2000 / 7 + (3 < 2000 % 7));
    vg_audit_query q = {.tenant = "t1", .user_id = "u3", .action = "login", .limit = 10000};
    vg_buf b;
    vg_buf_init(&b, 0);
    char next[64];
    assert_int_equal(vg_auditstore_query(f->s, &q, &b, next, &err), VG_OK);
    assert_non_null(strstr(b.data, "\"user_id\":\"u3\""));
    assert_null(strstr(b.data, "\"action\":\"logout\""));
    vg_buf_free(&b);
    assert_int_equal(verify(f, "t1"), 0);
}

/* Page through everything with pages of limit; checks newest-first order and no repeats. */
static size_t page_all(vg_auditstore_t *s, const char *tenant, size_t limit)
{
    char cursor[64] = "";
    size_t total = 0;
    int64_t last = INT64_MAX;
    vg_error err = {0};
    for (int page = 0; page < 1000; page++) {
        vg_audit_query q = {.tenant = tenant, .limit = limit, .cursor = cursor};
        vg_buf b;
        vg_buf_init(&b, 0);
        char next[64];
        assert_int_equal(vg_auditstore_query(s, &q, &b, next, &err), VG_OK);
        for (char *p = b.data; p && *p; p = strchr(p, '\n') + 1) {
            long long ts = strtoll(p + strlen("{\"ts_ms\":"), NULL, 10);
            assert_true(ts <= last); /* newest first */
            last = ts;
            total++;
        }
        vg_buf_free(&b);
        if (!next[0]) break;
        memcpy(cursor, next, sizeof(cursor));
    }
    return total;
}

static void test_paging(void **state)
{
    struct fix *f = *state;
    put(f->s, "t1", 0, 100, T0, 4);
    vg_error err = {0};
    put(f->s, "t1", 100, 100, T0 + 100, 4); /* half sealed, half open */
    assert_int_equal(vg_auditstore_seal_all(f->s, NULL, &err), VG_OK);
    put(f->s, "t1", 200, 50, T0 + 200, 4);
    assert_int_equal(page_all(f->s, "t1", 30), 250);
    for (int h = 1; h < 6; h++) put(f->s, "t1", 1000 + (uint64_t)h * 100, 100, T0 + h * HOUR, 4);
    assert_int_equal(vg_auditstore_seal_all(f->s, NULL, &err), VG_OK);
    put(f->s, "t1", 5000, 10, T0 + 6 * HOUR, 4);
    assert_int_equal(page_all(f->s, "t1", 30), 760); /* across six segments and the WAL */
    assert_int_equal(page_all(f->s, "t1", 100), 760);
    assert_int_equal(page_all(f->s, "t1", 1), 760);
    vg_audit_query q = {
        .tenant = "t1", .from_ms = T0 + 2 * HOUR, .to_ms = T0 + 3 * HOUR - 1, .limit = 1000};
    vg_buf b;
    vg_buf_init(&b, 0);
    char next[64];
    assert_int_equal(vg_auditstore_query(f->s, &q, &b, next, &err), VG_OK);
    assert_int_equal(count_lines(&b), 100);
    assert_string_equal(next, "");
    vg_buf_free(&b);
}

static void seg_path(struct fix *f, const char *tier, char *out, size_t cap, int idx)
{
    char d[200];
    snprintf(d, sizeof(d), "%s/t1/%s", f->dir, tier);
    DIR *dir = opendir(d);
    assert_non_null(dir);
    struct dirent *de;
    int i = 0;
    out[0] = 0;
    while ((de = readdir(dir)))
        if (strstr(de->d_name, ".seg") && de->d_name[0] != '.' && i++ == idx)
            snprintf(out, cap, "%.200s/%.250s", d, de->d_name);
    closedir(dir);
    assert_true(out[0] != 0);
}

static void three_segments(struct fix *f)
{
    vg_error err = {0};
    for (int h = 0; h < 3; h++) put(f->s, "t1", (uint64_t)h * 100, 100, T0 + h * HOUR, 3);
    fake_now = T0 + 3 * HOUR;
    assert_int_equal(vg_auditstore_maintain(f->s, &err), VG_OK);
    assert_int_equal(verify(f, "t1"), 0);
}

static void flip(const char *path, long off)
{
    FILE *fp = fopen(path, "r+b");
    assert_non_null(fp);
    if (off < 0) {
        fseek(fp, 0, SEEK_END);
        off = ftell(fp) + off;
    }
    fseek(fp, off, SEEK_SET);
    int c = fgetc(fp);
    fseek(fp, off, SEEK_SET);
    fputc(c ^ 0x01, fp);
    fclose(fp);
}

static void test_verify_flip(void **state)
{
    struct fix *f = *state;
    three_segments(f);
    char p[600];
    seg_path(f, "hot", p, sizeof(p), 1);
    flip(p, -10); /* inside a zstd frame */
    assert_true(verify(f, "t1") > 0);
    flip(p, -10);
    assert_int_equal(verify(f, "t1"), 0);
    flip(p, 70); /* in the meta block */
    assert_true(verify(f, "t1") > 0);
}

static void test_verify_remove_and_swap(void **state)
{
    struct fix *f = *state;
    three_segments(f);
    char a[600], b[600], t[620];
    seg_path(f, "hot", a, sizeof(a), 0);
    seg_path(f, "hot", b, sizeof(b), 1);
    snprintf(t, sizeof(t), "%s.x", a);
    assert_int_equal(rename(a, t), 0);
    assert_int_equal(rename(b, a), 0);
    assert_int_equal(rename(t, b), 0); /* order altered: two segments swapped */
    assert_true(verify(f, "t1") > 0);
    assert_int_equal(rename(a, t), 0), assert_int_equal(rename(b, a), 0);
    assert_int_equal(rename(t, b), 0);
    assert_int_equal(verify(f, "t1"), 0);
    assert_int_equal(unlink(a), 0); /* removed */
    assert_true(verify(f, "t1") > 0);
}

static void test_verify_chain_reorder(void **state)
{
    struct fix *f = *state;
    three_segments(f);
    char p[200], cmd[1000];
    snprintf(p, sizeof(p), "%s/t1/chain.log", f->dir);
    snprintf(cmd, sizeof(cmd),
             "awk 'NR==1{a=$0;next} NR==2{print;print a;next} {print}' %s > %s.n && mv %s.n %s", p,
             p, p, p);
    assert_int_equal(system(cmd), 0);
    assert_true(verify(f, "t1") > 0);
}

static void test_verify_chain_edit_and_truncate(void **state)
{
    struct fix *f = *state;
    three_segments(f);
    char p[200], cmd[1000];
    snprintf(p, sizeof(p), "%s/t1/chain.log", f->dir);
    snprintf(cmd, sizeof(cmd), "cp %s %s.orig && sed -i '2s/ 100 / 99 /' %s", p, p, p);
    assert_int_equal(system(cmd), 0); /* a record count edited */
    assert_true(verify(f, "t1") > 0);
    snprintf(cmd, sizeof(cmd), "head -n 2 %s.orig > %s", p, p);
    assert_int_equal(system(cmd), 0); /* the last line dropped: its segment is unchained */
    assert_true(verify(f, "t1") > 0);
    snprintf(cmd, sizeof(cmd), "cp %s.orig %s && rm %s.orig", p, p, p);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(verify(f, "t1"), 0);
}

static void test_erasure(void **state)
{
    struct fix *f = *state;
    three_segments(f);
    put(f->s, "t1", 1000, 9, T0 + 3 * HOUR, 3); /* open records too */
    size_t before = query_count(f->s, "t1", "u1");
    assert_true(before > 0);
    uint64_t removed = 0;
    vg_error err = {0};
    assert_int_equal(vg_auditstore_erase(f->s, "t1", "u1", &removed, &err), VG_OK);
    assert_int_equal(removed, before);
    assert_int_equal(query_count(f->s, "t1", "u1"), 0);
    assert_int_equal(query_count(f->s, "t1", NULL), 309 - before);
    assert_int_equal(verify(f, "t1"), 0);
    /* the erasure is in the chain, with the subject hashed, never the id */
    char p[200], line[1024];
    snprintf(p, sizeof(p), "%s/t1/chain.log", f->dir);
    FILE *fp = fopen(p, "r");
    int erasures = 0;
    while (fgets(line, sizeof(line), fp)) {
        if (strstr(line, " erase ")) erasures++;
        assert_null(strstr(line, " u1 "));
    }
    fclose(fp);
    assert_true(erasures >= 1);
    /* a replay of an erased record stays erased, also after a restart */
    reopen(f);
    put(f->s, "t1", 0, 300, T0, 3);
    assert_int_equal(query_count(f->s, "t1", "u1"), 0);
}

/* Re-write the chain as someone without the key would: mutate lines with
 * fn, then re-link and re-hash every line (signatures kept as they are). */
static void rewrite_chain(struct fix *f, void (*fn)(vg_achain_ent *e, size_t i))
{
    char p[200];
    snprintf(p, sizeof(p), "%s/t1/chain.log", f->dir);
    vg_achain_ent *e = NULL;
    size_t n = 0;
    vg_error err = {0};
    assert_int_equal(vg_achain_read(p, &e, &n, &err), VG_OK);
    assert_int_equal(unlink(p), 0);
    for (size_t i = 0; i < n; i++) {
        fn(&e[i], i);
        assert_int_equal(vg_achain_append(p, &e[i], NULL, &err), VG_OK);
    }
    vg_free(e);
}

static void count_plus_one(vg_achain_ent *e, size_t i)
{
    (void)i;
    if (!strcmp(e->kind, "erase")) e->records++;
}

static void strip_all(vg_achain_ent *e, size_t i)
{
    (void)i;
    e->sig[0] = 0;
}

static size_t last_erase;

static void strip_last_erase(vg_achain_ent *e, size_t i)
{
    if (i == last_erase) e->sig[0] = 0;
}

static void erase_u1(struct fix *f)
{
    uint64_t removed = 0;
    vg_error err = {0};
    three_segments(f);
    assert_int_equal(vg_auditstore_erase(f->s, "t1", "u1", &removed, &err), VG_OK);
    assert_int_equal(removed, 100); /* u1 in each of the three hours */
}

static void test_erasure_signed(void **state)
{
    struct fix *f = *state;
    erase_u1(f);
    vg_audit_verify_stats st;
    assert_int_equal(verify_st(f, "t1", &st), 0);
    assert_int_equal(st.sig_checked, 3); /* one erasure line per segment */
    assert_int_equal(st.unsigned_legacy, 0);
    /* without a key: intact, signatures counted as not checked */
    vg_audit_verify_opts o = {.dir = f->dir, .tenant = "t1"};
    assert_int_equal(vg_audit_verify(&o, stderr, &st, NULL), VG_OK);
    assert_int_equal(st.problems, 0);
    assert_int_equal(st.sig_unchecked, 3);
    assert_int_equal(st.sig_checked, 0);
    /* with another key: every signed line fails */
    vg_audit_signkey other;
    uint8_t kb[32] = {9};
    assert_int_equal(vg_audit_signkey_set(&other, kb, sizeof(kb), NULL), VG_OK);
    o.key = &other;
    assert_int_equal(vg_audit_verify(&o, stderr, &st, NULL), VG_OK);
    assert_int_equal(st.problems, 3);
    /* erased counts altered and the chain re-hashed: the hash chain holds,
     * the signatures do not */
    rewrite_chain(f, count_plus_one);
    assert_int_equal(verify_st(f, "t1", &st), 3);
}

static void test_unsigned_legacy_and_stripped(void **state)
{
    struct fix *f = *state;
    erase_u1(f);
    vg_audit_verify_stats st;
    /* a chain from before signing: reported as unsigned, not as tampering */
    rewrite_chain(f, strip_all);
    assert_int_equal(verify_st(f, "t1", &st), 0);
    assert_int_equal(st.unsigned_legacy, 3);
    assert_int_equal(st.sig_checked, 0);
    vg_audit_verify_opts o = {.dir = f->dir, .tenant = "t1", .require_signed = 1};
    assert_int_equal(vg_audit_verify(&o, stderr, &st, NULL), VG_OK);
    assert_int_equal(st.problems, 3);
    /* the upgraded store signs from now on: old lines stay legacy */
    uint64_t removed = 0;
    vg_error err = {0};
    assert_int_equal(vg_auditstore_erase(f->s, "t1", "u2", &removed, &err), VG_OK);
    assert_int_equal(verify_st(f, "t1", &st), 0);
    assert_int_equal(st.unsigned_legacy, 3);
    assert_int_equal(st.sig_checked, 3);
    /* a signature stripped after the first signed line is a failure */
    char p[200];
    snprintf(p, sizeof(p), "%s/t1/chain.log", f->dir);
    vg_achain_ent *e = NULL;
    size_t n = 0;
    assert_int_equal(vg_achain_read(p, &e, &n, &err), VG_OK);
    last_erase = n - 1;
    assert_string_equal(e[last_erase].kind, "erase");
    vg_free(e);
    rewrite_chain(f, strip_last_erase);
    assert_int_equal(verify_st(f, "t1", &st), 1);
}

static void test_signing_key_file(void **state)
{
    struct fix *f = *state;
    char kp[128];
    snprintf(kp, sizeof(kp), "%s.key", f->dir);
    vg_auditstore_free(f->s);
    vg_auditstore_opts o = {.dir = f->dir, .interval_ms = -1, .signing_key_file = kp};
    vg_error err = {0};
    f->s = NULL;
    assert_int_equal(vg_auditstore_open(&o, &f->s, &err), VG_ECONFIG); /* must exist */
    assert_non_null(strstr(err.msg, kp));
    vg_audit_signkey k;
    assert_int_equal(vg_audit_signkey_create(kp, &k, &err), VG_OK);
    assert_int_equal(vg_auditstore_open(&o, &f->s, &err), VG_OK);
    put(f->s, "t1", 0, 10, T0, 2);
    uint64_t removed = 0;
    assert_int_equal(vg_auditstore_erase(f->s, "t1", "u1", &removed, &err), VG_OK);
    assert_int_equal(removed, 5);
    vg_audit_verify_stats st;
    vg_audit_verify_opts vo = {.dir = f->dir, .key = &k};
    assert_int_equal(vg_audit_verify(&vo, stderr, &st, &err), VG_OK);
    assert_int_equal(st.problems, 0);
    assert_int_equal(st.sig_checked, 1);
    unlink(kp);
}

static void test_tiers(void **state)
{
    struct fix *f = *state;
    three_segments(f); /* hours T0, T0+1h, T0+2h; hot < 2h, warm < 4h, cold < 6h */
    vg_error err = {0};
    vg_audit_tier_stats ts;
    fake_now = T0 + 4 * HOUR; /* ages 3h, 2h, 1h */
    assert_int_equal(vg_auditstore_maintain(f->s, &err), VG_OK);
    assert_int_equal(vg_auditstore_stats(f->s, &ts, &err), VG_OK);
    assert_int_equal(ts.segments[0], 1);
    assert_int_equal(ts.segments[1], 2);
    assert_int_equal(verify(f, "t1"), 0);
    fake_now = T0 + 6 * HOUR; /* ages 5h, 4h, 3h */
    assert_int_equal(vg_auditstore_maintain(f->s, &err), VG_OK);
    assert_int_equal(vg_auditstore_stats(f->s, &ts, &err), VG_OK);
    assert_int_equal(ts.segments[1], 1);
    assert_int_equal(ts.segments[2], 2);
    assert_int_equal(verify(f, "t1"), 0);
    assert_int_equal(query_count(f->s, "t1", NULL), 300); /* readable in every tier */
    fake_now = T0 + 8 * HOUR;                             /* ages 7h, 6h, 5h: two deleted */
    assert_int_equal(vg_auditstore_maintain(f->s, &err), VG_OK);
    assert_int_equal(vg_auditstore_stats(f->s, &ts, &err), VG_OK);
    assert_int_equal(ts.segments[0] + ts.segments[1] + ts.segments[2], 1);
    assert_int_equal(ts.deleted_segments, 2);
    assert_int_equal(query_count(f->s, "t1", NULL), 100);
    vg_audit_verify_stats st;
    assert_int_equal(verify_st(f, "t1", &st), 0); /* deletion past retention is not tampering */
    assert_int_equal(st.sig_checked, 2);          /* and each deletion is signed */
}

static void test_segment_roundtrip(void **state)
{
    (void)state;
    vg_aseg_rec r[3] = {
        {.ts_ms = 5, .key = 11, .line = "{\"a\":1}", .len = 7, .field = {"bob", "login", "ok"}},
        {.ts_ms = 7, .key = 12, .line = "{\"a\":2}", .len = 7, .field = {"amy", "login", NULL}},
        {.ts_ms = 6, .key = 13, .line = "{\"a\":3}", .len = 7, .field = {"bob", "read", "ok"}},
    };
    vg_buf b;
    vg_buf_init(&b, 0);
    uint8_t d[32], d2[32];
    vg_error err = {0};
    assert_int_equal(vg_aseg_encode(r, 3, NULL, 0, 0, 3, &b, d, &err), VG_OK);
    vg_aseg_t *s = NULL;
    assert_int_equal(vg_aseg_parse((uint8_t *)b.data, b.len, &s, &err), VG_OK);
    assert_int_equal(vg_aseg_count(s), 3);
    assert_int_equal(vg_aseg_min_ts(s), 5);
    assert_int_equal(vg_aseg_max_ts(s), 7);
    const uint32_t *o;
    size_t n;
    vg_aseg_lookup(s, VG_AFIELD_USER, "bob", &o, &n);
    assert_int_equal(n, 2);
    assert_int_equal(o[0], 0), assert_int_equal(o[1], 2);
    vg_aseg_lookup(s, VG_AFIELD_RESULT, "", &o, &n);
    assert_int_equal(n, 1);
    const char *line;
    size_t len;
    assert_int_equal(vg_aseg_line(s, 2, &line, &len, &err), VG_OK);
    assert_int_equal(len, 7);
    assert_memory_equal(line, "{\"a\":3}", 7);
    assert_int_equal(vg_aseg_digest(s, d2, &err), VG_OK);
    assert_memory_equal(d, d2, 32);
    for (size_t i = 0; i < b.len; i += 7) { /* no damage crashes the reader */
        vg_aseg_t *t = NULL;
        b.data[i] ^= 0x40;
        if (vg_aseg_parse((uint8_t *)b.data, b.len, &t, NULL) == VG_OK) {
            vg_aseg_digest(t, d2, NULL);
            vg_aseg_free(t);
        }
        b.data[i] ^= 0x40;
    }
    for (size_t cut = 0; cut < b.len; cut += 5) {
        vg_aseg_t *t = NULL;
        assert_int_not_equal(vg_aseg_parse((uint8_t *)b.data, cut, &t, NULL), VG_OK);
    }
    vg_aseg_free(s);
    vg_buf_free(&b);
}

static void test_dlq(void **state)
{
    struct fix *f = *state;
    vg_error err = {0};
    int dup = 0;
    assert_int_equal(
        vg_auditstore_dlq_add(f->s, "t1", "invalid_json", "{oops", "f9", 10, &dup, &err), VG_OK);
    assert_int_equal(dup, 0);
    assert_int_equal(
        vg_auditstore_dlq_add(f->s, "t1", "invalid_json", "{oops", "f9", 10, &dup, &err), VG_OK);
    assert_int_equal(dup, 1);
    reopen(f);
    assert_int_equal(
        vg_auditstore_dlq_add(f->s, "t1", "invalid_json", "{oops", "f9", 10, &dup, &err), VG_OK);
    assert_int_equal(dup, 1);
    assert_int_equal(vg_auditstore_dlq_add(f->s, "t1", "missing_field", "{}", "f9", 20, &dup, &err),
                     VG_OK);
    vg_buf b;
    vg_buf_init(&b, 0);
    assert_int_equal(vg_auditstore_dlq_list(f->s, "t1", 0, &b, &err), VG_OK);
    assert_int_equal(count_lines(&b), 2);
    assert_non_null(strstr(b.data, "\"reason\":\"missing_field\""));
    vg_buf_free(&b);
}

/* The agents' dead letters as JSON (POST /ingest/v1/dlq and the Kafka topic
 * share vg_auditstore_dlq_ingest): same dedup key as dlq_add, the transport's
 * tenant wins, arrays, and bad bodies are final errors (not retried). */
static void test_dlq_ingest(void **state)
{
    struct fix *f = *state;
    vg_error err = {0};
    int dup = 0;
    const char *one = "{\"tenant\":\"t1\",\"reason\":\"invalid_json\",\"line\":\"{oops\","
                      "\"file_id\":\"f9\",\"offset\":10}";
    const char *two = "[{\"reason\":\"too_long\",\"line\":\"x\",\"file_id\":\"f9\",\"offset\":30},"
                      "{\"reason\":\"too_long\",\"line\":\"y\",\"file_id\":\"f9\",\"offset\":40}]";
#define INGEST(t, j) vg_auditstore_dlq_ingest(f->s, t, (const uint8_t *)(j), strlen(j), &err)
    assert_int_equal(INGEST(NULL, one), VG_OK);
    assert_int_equal(INGEST("t1", one), VG_OK); /* a redelivery: stored once */
    assert_int_equal(
        vg_auditstore_dlq_add(f->s, "t1", "invalid_json", "{oops", "f9", 10, &dup, &err), VG_OK);
    assert_int_equal(dup, 1); /* the key HTTP and Kafka share */
    assert_int_equal(INGEST("t1", two), VG_OK);
    assert_int_equal(INGEST("t2", one), VG_OK); /* the key (transport tenant) decides */
    assert_int_equal(INGEST("t1", "{nope"), VG_EPARSE);
    assert_int_equal(INGEST("t1", "{\"reason\":\"x\",\"line\":\"l\",\"offset\":1}"), VG_EINVAL);
#undef INGEST
    vg_buf b;
    vg_buf_init(&b, 0);
    assert_int_equal(vg_auditstore_dlq_list(f->s, "t1", 0, &b, &err), VG_OK);
    assert_int_equal(count_lines(&b), 3);
    vg_buf_reset(&b);
    assert_int_equal(vg_auditstore_dlq_list(f->s, "t2", 0, &b, &err), VG_OK);
    assert_int_equal(count_lines(&b), 1);
    vg_buf_free(&b);
}

static void test_bad_batch_stores_nothing(void **state)
{
    struct fix *f = *state;
    Vigil__V1__AuditRecord r[2], *pr[2] = {&r[0], &r[1]};
    for (int i = 0; i < 2; i++) {
        vigil__v1__audit_record__init(&r[i]);
        r[i].ts_ms = T0, r[i].file_id = "f", r[i].offset = (uint64_t)i;
    }
    r[1].file_id = ""; /* no source identity: cannot be deduplicated */
    vg_error err = {0};
    assert_int_equal(vg_auditstore_append(f->s, "t1", pr, 2, NULL, &err), VG_EINVAL);
    r[1].file_id = "f", r[1].ts_ms = -5;
    assert_int_equal(vg_auditstore_append(f->s, "t1", pr, 2, NULL, &err), VG_EINVAL);
    assert_int_equal(query_count(f->s, "t1", NULL), 0);
    char longname[400];
    memset(longname, 'x', sizeof(longname) - 1), longname[sizeof(longname) - 1] = 0;
    r[1].ts_ms = T0;
    assert_int_not_equal(vg_auditstore_append(f->s, longname, pr, 2, NULL, &err), VG_OK);
}

/* Every allocation of encode/parse/rewrite failing in turn: an error, never a crash or leak. */
static void test_segment_alloc_failures(void **state)
{
    (void)state;
    vg_aseg_rec r[2] = {
        {.ts_ms = 1, .key = 1, .line = "{}", .len = 2, .field = {"a", "b", "c"}},
        {.ts_ms = 2, .key = 2, .line = "{}", .len = 2, .field = {"d", "b", NULL}},
    };
    int ok = 0;
    for (long n = 1; n < 200 && !ok; n++) {
        vg_buf b;
        vg_buf_init(&b, 0);
        uint8_t d[32], drop[1] = {1};
        vg_aseg_t *s = NULL;
        vg_alloc_fail_after(n);
        vg_err_t rc = vg_aseg_encode(r, 2, NULL, 0, 0, 1, &b, d, NULL);
        if (!rc) rc = vg_aseg_parse((uint8_t *)b.data, b.len, &s, NULL);
        vg_buf out;
        vg_buf_init(&out, 0);
        if (!rc) rc = vg_aseg_rewrite(s, drop, 1, &out, d, NULL);
        vg_alloc_fail_after(0);
        ok = rc == VG_OK;
        vg_aseg_free(s);
        vg_buf_free(&out), vg_buf_free(&b);
    }
    assert_true(ok);
}

/* Run op with the nth allocation failing, n = 1, 2, ... until it succeeds. */
static void sweep(struct fix *f, vg_err_t (*op)(struct fix *f, long n))
{
    int ok = 0;
    for (long n = 1; n < 2000 && !ok; n++) {
        vg_alloc_fail_after(n);
        vg_err_t rc = op(f, n);
        vg_alloc_fail_after(0);
        ok = rc == VG_OK;
    }
    assert_true(ok);
}

static vg_err_t op_append(struct fix *f, long n)
{
    Vigil__V1__AuditRecord r, *pr = &r;
    vigil__v1__audit_record__init(&r);
    r.ts_ms = T0 + HOUR, r.user_id = "u1", r.file_id = "f1", r.offset = 1000 + (uint64_t)n;
    return vg_auditstore_append(f->s, "t1", &pr, 1, NULL, NULL);
}

static vg_err_t op_seal(struct fix *f, long n)
{
    (void)n;
    return vg_auditstore_seal_all(f->s, "t1", NULL);
}

static vg_err_t op_query(struct fix *f, long n)
{
    (void)n;
    vg_buf b;
    vg_buf_init(&b, 0);
    char next[64];
    vg_audit_query q = {.tenant = "t1", .user_id = "u1"};
    vg_err_t rc = vg_auditstore_query(f->s, &q, &b, next, NULL);
    vg_buf_free(&b);
    return rc;
}

static vg_err_t op_erase(struct fix *f, long n)
{
    (void)n;
    uint64_t removed = 0;
    return vg_auditstore_erase(f->s, "t1", "u1", &removed, NULL);
}

static void test_store_alloc_failures(void **state)
{
    struct fix *f = *state;
    put(f->s, "t1", 0, 5, T0, 2);
    sweep(f, op_append);
    sweep(f, op_seal);
    sweep(f, op_query);
    sweep(f, op_erase);
    reopen(f);
    assert_int_equal(verify(f, "t1"), 0);
    assert_int_equal(query_count(f->s, "t1", "u1"), 0);
    assert_int_equal(query_count(f->s, "t1", NULL), 3); /* u0 at offsets 0, 2, 4 */
}

static void test_lock(void **state)
{
    struct fix *f = *state;
    vg_auditstore_opts o = {.dir = f->dir, .interval_ms = -1};
    vg_auditstore_t *s2 = NULL;
    vg_error err = {0};
    assert_int_equal(vg_auditstore_open(&o, &s2, &err), VG_EEXIST);
    assert_null(s2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_segment_roundtrip),
        cmocka_unit_test_setup_teardown(test_dedup_across_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wal_torn_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wal_damage_inside, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seal_and_index, setup, teardown),
        cmocka_unit_test_setup_teardown(test_paging, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_flip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_remove_and_swap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_chain_reorder, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_chain_edit_and_truncate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_erasure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_erasure_signed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unsigned_legacy_and_stripped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_signing_key_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tiers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dlq, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dlq_ingest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_batch_stores_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lock, setup, teardown),
        cmocka_unit_test(test_segment_alloc_failures),
        cmocka_unit_test_setup_teardown(test_store_alloc_failures, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
