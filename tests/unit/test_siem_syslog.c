/* test_siem_syslog.c - the SIEM syslog output: RFC 5424 formatting (PRI,
 * timestamp, SD escaping, missing fields, BOM + original), RFC 6587 octet
 * counting in bytes, and sends to a listening socket on loopback (delivery,
 * a peer that closed, no listener, a receiver that never reads). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "siem/output.h"
#include "vigil/alloc.h"
#include "vigil/buf.h"

#define BOM "\xef\xbb\xbf"

static vg_siem_output_conf conf(void)
{
    vg_siem_output_conf c = {.name = "syslog-0",
                             .type = "syslog",
                             .address = "127.0.0.1:1",
                             .app_name = "vigil",
                             .facility = 13,
                             .timeout_ms = 5000};
    return c;
}

static vg_siem_rec rec(const char *tenant, int64_t ts, const char *line)
{
    vg_siem_rec r = {.tenant = tenant, .ts_ms = ts, .line = line, .len = strlen(line)};
    return r;
}

/* Frame r and check "<len> " counts the message's bytes; returns the message. */
static char *frame(const vg_siem_output_conf *c, const char *host, const vg_siem_rec *r)
{
    vg_buf b;
    vg_buf_init(&b, 0);
    assert_int_equal(vg_siem_syslog_frame(c, host, r, &b), VG_OK);
    char *sp = strchr(b.data, ' ');
    assert_non_null(sp);
    assert_int_equal(strtoul(b.data, NULL, 10), b.len - (size_t)(sp + 1 - b.data));
    char *msg = strdup(sp + 1);
    vg_buf_free(&b);
    return msg;
}

static void test_full_record(void **state)
{
    (void)state;
    vg_siem_output_conf c = conf();
    const char *line = "{\"ts_ms\":1764324000123,\"tenant\":\"acme\",\"user_id\":\"u1\","
                       "\"session_id\":\"s1\",\"action\":\"login\",\"resource\":\"/db\","
                       "\"result\":\"success\",\"ip_address\":\"10.0.0.1\",\"file_id\":\"f1\","
                       "\"offset\":4096,\"original\":\"{\\\"user_id\\\":\\\"u1\\\"}\"}";
    vg_siem_rec r = rec("acme", 1764324000123, line);
    char *m = frame(&c, "node-1", &r);
    assert_string_equal(m, "<110>1 2025-11-28T10:00:00.123Z node-1 vigil - audit "
                           "[vigil@32473 tenant=\"acme\" user_id=\"u1\" session_id=\"s1\" "
                           "action=\"login\" resource=\"/db\" result=\"success\" "
                           "ip_address=\"10.0.0.1\" file_id=\"f1\" offset=\"4096\"] " BOM
                           "{\"user_id\":\"u1\"}");
    free(m);
}

static void test_severity_and_facility(void **state)
{
    (void)state;
    vg_siem_output_conf c = conf();
    struct {
        const char *result;
        const char *pri;
    } cases[] = {{"success", "<110>"}, {"ALLOWED", "<110>"}, {"failure", "<108>"},
                 {"denied", "<108>"},  {"error", "<108>"},   {"maybe", "<109>"},
                 {"", "<109>"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char line[128];
        snprintf(line, sizeof line, "{\"result\":\"%s\"}", cases[i].result);
        vg_siem_rec r = rec("t", 0, line);
        char *m = frame(&c, "h", &r);
        assert_memory_equal(m, cases[i].pri, strlen(cases[i].pri));
        free(m);
    }
    c.facility = 4; /* auth: 4*8 + 6 */
    vg_siem_rec r = rec("t", 0, "{\"result\":\"ok\"}");
    char *m = frame(&c, "h", &r);
    assert_memory_equal(m, "<38>1 1970-01-01T00:00:00.000Z h ", 33);
    free(m);
}

static void test_timestamp(void **state)
{
    (void)state;
    vg_siem_output_conf c = conf();
    struct {
        int64_t ts;
        const char *want;
    } cases[] = {{-1, "1969-12-31T23:59:59.999Z "},
                 {951782400007, "2000-02-29T00:00:00.007Z "},
                 {253402300799999, "9999-12-31T23:59:59.999Z "},
                 {253402300800000, "- "},
                 {-62167219200000, "0000-01-01T00:00:00.000Z "},
                 {-62167219200001, "- "}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        vg_siem_rec r = rec("t", cases[i].ts, "{}");
        char *m = frame(&c, "h", &r);
        assert_memory_equal(m + 7, cases[i].want, strlen(cases[i].want));
        free(m);
    }
}

static void test_escaping_and_utf8(void **state)
{
    (void)state;
    vg_siem_output_conf c = conf();
    /* user_id = a"b\c]d, resource = é€😀 (2+3+4 bytes) */
    const char *line = "{\"user_id\":\"a\\\"b\\\\c]d\",\"resource\":\"\xc3\xa9\xe2\x82\xac"
                       "\xf0\x9f\x98\x80\",\"original\":\"{\\\"n\\\":\\\"\xc3\xa9\\\"}\"}";
    vg_siem_rec r = rec("t", 0, line);
    char *m = frame(&c, "h", &r);
    assert_non_null(strstr(m, " user_id=\"a\\\"b\\\\c\\]d\" "));
    assert_non_null(strstr(m, " resource=\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\" "));
    assert_non_null(strstr(m, "] " BOM "{\"n\":\"\xc3\xa9\"}"));
    free(m); /* frame() checked the prefix counts bytes, not characters */
}

static void test_missing_fields(void **state)
{
    (void)state;
    vg_siem_output_conf c = conf();
    c.app_name = NULL; /* default "vigil" */
    vg_siem_rec r = rec("acme", 0, "{\"user_id\":7}");
    char *m = frame(&c, NULL, &r);
    assert_string_equal(m, "<109>1 1970-01-01T00:00:00.000Z - vigil - audit [vigil@32473 "
                           "tenant=\"acme\" user_id=\"7\" session_id=\"\" action=\"\" "
                           "resource=\"\" result=\"\" ip_address=\"\" file_id=\"\" offset=\"\"]");
    free(m);
}

static void test_bad_line(void **state)
{
    (void)state;
    vg_siem_output_conf c = conf();
    vg_siem_rec r = rec("acme", 0, "not json \xff\xc3");
    char *m = frame(&c, "h b", &r); /* a space in the hostname would break the header */
    assert_string_equal(m, "<109>1 1970-01-01T00:00:00.000Z h_b vigil - audit [vigil@32473 "
                           "tenant=\"acme\" user_id=\"\" session_id=\"\" action=\"\" "
                           "resource=\"\" result=\"\" ip_address=\"\" file_id=\"\" "
                           "offset=\"\"] " BOM "not json \xef\xbf\xbd\xef\xbf\xbd");
    free(m);
    r = rec("acme", 0, "[1,2]");
    m = frame(&c, "h", &r);
    assert_non_null(strstr(m, "] " BOM "[1,2]"));
    free(m);
}

static void test_frames_append(void **state)
{
    (void)state;
    vg_siem_output_conf c = conf();
    vg_buf b;
    vg_buf_init(&b, 0);
    vg_siem_rec r = rec("t", 0, "{}");
    assert_int_equal(vg_siem_syslog_frame(&c, "h", &r, &b), VG_OK);
    size_t one = b.len;
    assert_int_equal(vg_siem_syslog_frame(&c, "h", &r, &b), VG_OK);
    assert_int_equal(b.len, 2 * one);
    assert_memory_equal(b.data, b.data + one, one);
    vg_buf_free(&b);
    vg_buf_init(&b, 20); /* over the cap: error, buffer unchanged */
    assert_int_equal(vg_siem_syslog_frame(&c, "h", &r, &b), VG_ETOOLARGE);
    assert_int_equal(b.len, 0);
    vg_buf_free(&b);
}

static void test_open_rejects(void **state)
{
    (void)state;
    const char *bad_addr[] = {"127.0.0.1", "127.0.0.1:0", "127.0.0.1:70000", ":514", "[::1]514",
                              "host:51x",  NULL};
    void *s = NULL;
    vg_error err = {0};
    for (int i = 0; i < 7; i++) {
        vg_siem_output_conf c = conf();
        c.address = bad_addr[i];
        assert_int_equal(vg_siem_out_syslog.open(&c, &s, &err), VG_ECONFIG);
        assert_null(s);
    }
    vg_siem_output_conf c = conf();
    c.facility = 24;
    assert_int_equal(vg_siem_out_syslog.open(&c, &s, &err), VG_ECONFIG);
    c = conf();
    c.app_name = "my app";
    assert_int_equal(vg_siem_out_syslog.open(&c, &s, &err), VG_ECONFIG);
    c = conf();
    c.tls = 1;
    c.ca_file = "/nonexistent/ca.pem";
    assert_int_equal(vg_siem_out_syslog.open(&c, &s, &err), VG_ECONFIG);
    assert_non_null(strstr(err.msg, "/nonexistent/ca.pem"));
    c = conf();
    c.address = "[::1]:6514";
    assert_int_equal(vg_siem_out_syslog.open(&c, &s, &err), VG_OK);
    vg_siem_out_syslog.close(s);
    vg_siem_out_syslog.close(NULL);
}

/* Every allocation of open() and frame() may fail: a clean error, no leak,
 * and frame() leaves the buffer as it was. */
static void test_alloc_failures(void **state)
{
    (void)state;
    vg_siem_output_conf c = conf();
    vg_siem_rec r = rec("t", 0, "{\"user_id\":\"u\",\"original\":\"{}\"}");
    int failed = 0;
    for (long n = 1; n < 40; n++) {
        void *s = NULL;
        vg_buf b;
        vg_buf_init(&b, 0);
        assert_int_equal(vg_buf_puts(&b, "keep"), VG_OK);
        vg_alloc_fail_after(n);
        vg_err_t rc1 = vg_siem_out_syslog.open(&c, &s, NULL);
        vg_err_t rc2 = vg_siem_syslog_frame(&c, "h", &r, &b);
        vg_alloc_fail_after(0);
        assert_true(rc1 == VG_OK || (rc1 == VG_ENOMEM && s == NULL));
        assert_true(rc2 == VG_OK || (rc2 == VG_ENOMEM && strcmp(b.data, "keep") == 0));
        failed += rc1 != VG_OK || rc2 != VG_OK;
        vg_siem_out_syslog.close(s);
        vg_buf_free(&b);
    }
    assert_true(failed > 0);
}

/* ---- loopback sends ---- */

static int listener(int *port, int rcvbuf)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    if (rcvbuf) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)*port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fd, 8), 0);
    socklen_t sl = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &sl);
    *port = ntohs(a.sin_port);
    return fd;
}

/* Read exactly n bytes from a new connection on lfd (5 s at most). */
static void expect_bytes(int conn, const char *want, size_t n)
{
    char *got = malloc(n + 1);
    size_t have = 0;
    while (have < n) {
        struct pollfd p = {.fd = conn, .events = POLLIN};
        assert_int_equal(poll(&p, 1, 5000), 1);
        ssize_t k = read(conn, got + have, n - have);
        assert_true(k > 0);
        have += (size_t)k;
    }
    assert_memory_equal(got, want, n);
    free(got);
}

static void batch(const vg_siem_output_conf *c, vg_siem_rec *r, size_t n, vg_buf *want)
{
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    vg_buf_reset(want);
    for (size_t i = 0; i < n; i++) assert_int_equal(vg_siem_syslog_frame(c, host, &r[i], want), 0);
}

/* An output for 127.0.0.1:port (addr must outlive it). */
static void *open_to(vg_siem_output_conf *c, char addr[32], int port, int64_t timeout_ms)
{
    snprintf(addr, 32, "127.0.0.1:%d", port);
    *c = conf();
    c->address = addr;
    c->timeout_ms = timeout_ms;
    void *s = NULL;
    assert_int_equal(vg_siem_out_syslog.open(c, &s, NULL), VG_OK);
    return s;
}

static void test_send_loopback(void **state)
{
    (void)state;
    int port = 0, lfd = listener(&port, 0);
    char addr[32];
    vg_siem_output_conf c;
    void *s = open_to(&c, addr, port, 5000);
    vg_error err = {0};
    vg_siem_rec r[2] = {rec("a", 1000, "{\"user_id\":\"x\",\"original\":\"{}\"}"),
                        rec("b", 2000, "{\"result\":\"denied\"}")};
    vg_buf want;
    vg_buf_init(&want, 0);
    batch(&c, r, 2, &want);
    /* The kernel ACKs into the listen backlog before accept(): OK means ACKed. */
    assert_int_equal(vg_siem_out_syslog.send(s, r, 2, &err), VG_OK);
    int conn = accept(lfd, NULL, NULL);
    expect_bytes(conn, want.data, want.len);

    /* The receiver closes: the next send notices and reconnects. */
    close(conn);
    usleep(50000);
    assert_int_equal(vg_siem_out_syslog.send(s, r + 1, 1, &err), VG_OK);
    conn = accept(lfd, NULL, NULL);
    batch(&c, r + 1, 1, &want);
    expect_bytes(conn, want.data, want.len);
    close(conn);

    /* Nobody listening: an error (the forwarder resends), then recovery. */
    close(lfd);
    usleep(50000);
    assert_int_not_equal(vg_siem_out_syslog.send(s, r, 1, &err), VG_OK);
    assert_int_not_equal(vg_siem_out_syslog.send(s, r, 1, &err), VG_OK);
    assert_non_null(strstr(err.msg, addr));
    lfd = listener(&port, 0);
    assert_int_equal(vg_siem_out_syslog.send(s, r, 2, &err), VG_OK);
    conn = accept(lfd, NULL, NULL);
    batch(&c, r, 2, &want);
    expect_bytes(conn, want.data, want.len);
    close(conn);
    close(lfd);
    vg_siem_out_syslog.close(s);
    vg_buf_free(&want);
}

/* A receiver that accepts but never reads: the batch cannot be ACKed in
 * full, so send must fail rather than claim delivery. */
static void test_send_stalled_receiver(void **state)
{
    (void)state;
    int port = 0, lfd = listener(&port, 4096);
    char addr[32];
    vg_siem_output_conf c;
    void *s = open_to(&c, addr, port, 300);
    vg_error err = {0};
    enum { N = 2000 };
    char *big = malloc(4096);
    memset(big, 'x', 4095);
    big[4095] = '\0';
    char *line = malloc(4200);
    snprintf(line, 4200, "{\"original\":\"%s\"}", big);
    vg_siem_rec *r = calloc(N, sizeof *r);
    for (int i = 0; i < N; i++) r[i] = rec("t", i, line);
    assert_int_equal(vg_siem_out_syslog.send(s, r, N, &err), VG_ERETRY);
    assert_non_null(strstr(err.msg, "resend"));
    vg_siem_out_syslog.close(s);
    close(lfd);
    free(r), free(line), free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_record),
        cmocka_unit_test(test_severity_and_facility),
        cmocka_unit_test(test_timestamp),
        cmocka_unit_test(test_escaping_and_utf8),
        cmocka_unit_test(test_missing_fields),
        cmocka_unit_test(test_bad_line),
        cmocka_unit_test(test_frames_append),
        cmocka_unit_test(test_open_rejects),
        cmocka_unit_test(test_alloc_failures),
        cmocka_unit_test(test_send_loopback),
        cmocka_unit_test(test_send_stalled_receiver),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
