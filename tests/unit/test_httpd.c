/*
 * test_httpd.c - the embedded HTTP server, driven over loopback by vg_httpc.
 *
 * One server on 127.0.0.1:0 per test group; handlers echo what they saw so
 * each test checks routing, argument decoding, body caps and headers from
 * the client side, as a real peer would.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../common/httpd_args.h"
#include "vigil/alloc.h"
#include "vigil/httpc.h"
#include "vigil/httpd.h"
#include "vigil/metrics.h"

#define MAX_BODY 1024

static vg_httpd_t *srv;
static vg_metrics_t *reg;
static atomic_int hits;

static void h_hello(void *ud, const vg_http_req *req, vg_http_resp *resp)
{
    vg_buf_puts(&resp->body, "hello");
}

static void h_path(void *ud, const vg_http_req *req, vg_http_resp *resp)
{
    vg_buf_printf(&resp->body, "%s %s %s", (const char *)ud, vg_http_req_method(req),
                  vg_http_req_path(req));
}

static void h_echo(void *ud, const vg_http_req *req, vg_http_resp *resp)
{
    size_t n;
    const uint8_t *b = vg_http_req_body(req, &n);
    const char *x = vg_http_req_header(req, "x-test"); /* sent as X-Test */
    vg_buf_append(&resp->body, b, n);
    vg_http_resp_header(resp, "X-Echo", x ? x : "(none)");
    resp->content_type = "application/octet-stream";
    resp->status = 201;
}

/* "name=v1|v2|..." for each of match[], q and empty. */
static void h_args(void *ud, const vg_http_req *req, vg_http_resp *resp)
{
    static const char *const names[] = {"match[]", "q", "empty", "none"};
    atomic_fetch_add(&hits, 1);
    for (size_t i = 0; i < 4; i++) {
        const char *vals[8];
        size_t n = vg_http_req_args(req, names[i], vals, 8);
        vg_buf_printf(&resp->body, "%s=", names[i]);
        for (size_t j = 0; j < n && j < 8; j++)
            vg_buf_printf(&resp->body, "%s%s", j ? "|" : "", vals[j]);
        vg_buf_puts(&resp->body, ";");
    }
    const char *first = vg_http_req_arg(req, "match[]");
    vg_buf_printf(&resp->body, "first=%s", first ? first : "(null)");
}

static void h_nostatus(void *ud, const vg_http_req *req, vg_http_resp *resp)
{
    resp->status = 0;
}

static void h_big(void *ud, const vg_http_req *req, vg_http_resp *resp)
{
    for (int i = 0; i < 1000; i++) vg_buf_puts(&resp->body, "0123456789");
}

static int setup(void **state)
{
    vg_httpd_opts o = {.listen = "127.0.0.1:0", .threads = 2, .max_body = MAX_BODY};
    srv = vg_httpd_new(&o);
    reg = vg_metrics_new();
    if (!srv || !reg) return -1;
    vg_metric_add(vg_metrics_counter(reg, "test_requests_total", "Requests.", NULL), 3);
    int rc = vg_httpd_route(srv, "GET", "/hello", h_hello, NULL) ||
             vg_httpd_route(srv, "GET", "/static/*", h_path, "prefix") ||
             vg_httpd_route(srv, "GET", "/static/exact", h_path, "exact") ||
             vg_httpd_route(srv, NULL, "/any", h_path, "any") ||
             vg_httpd_route(srv, "POST", "/echo", h_echo, NULL) ||
             vg_httpd_route(srv, "PUT", "/echo", h_echo, NULL) ||
             vg_httpd_route(srv, "GET", "/args", h_args, NULL) ||
             vg_httpd_route(srv, "POST", "/args", h_args, NULL) ||
             vg_httpd_route(srv, "GET", "/nostatus", h_nostatus, NULL) ||
             vg_httpd_route(srv, "GET", "/big", h_big, NULL) || vg_metrics_serve(reg, srv);
    if (rc) return -1;
    vg_error err = {0};
    if (vg_httpd_start(srv, &err) != VG_OK) {
        fprintf(stderr, "start: %s\n", err.msg);
        return -1;
    }
    return vg_httpd_port(srv) ? 0 : -1;
}

static int teardown(void **state)
{
    vg_httpd_free(srv);
    vg_metrics_free(reg);
    return 0;
}

/* Perform one request; returns status, body in out (caller frees), headers in hdrs if given. */
static int call(vg_httpc_t *c, const char *method, const char *path, const char *body,
                size_t body_len, const char *const *headers, vg_buf *out, vg_buf *hdrs)
{
    char url[256];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", (unsigned)vg_httpd_port(srv), path);
    vg_httpc_req req = {.method = method,
                        .url = url,
                        .headers = headers,
                        .body = body,
                        .body_len = body_len,
                        .resp_headers = hdrs};
    int status = -1;
    vg_error err = {0};
    vg_err_t rc = vg_httpc_do(c, &req, &status, out, &err);
    if (rc) fprintf(stderr, "httpc: %s\n", err.msg);
    assert_int_equal(rc, VG_OK);
    return status;
}

static void test_routing(void **state)
{
    vg_httpc_t *c = vg_httpc_new();
    vg_buf out, hdrs;
    char v[128];
    vg_buf_init(&out, 0);
    vg_buf_init(&hdrs, 0);
    assert_int_equal(call(c, NULL, "/hello", NULL, 0, NULL, &out, &hdrs), 200);
    assert_string_equal(out.data, "hello");
    assert_true(vg_httpc_header(&hdrs, "content-type", v, sizeof(v)));
    assert_string_equal(v, "text/plain; charset=utf-8");
    assert_int_equal(call(c, NULL, "/static/a/b", NULL, 0, NULL, &out, NULL), 200);
    assert_string_equal(out.data, "prefix GET /static/a/b");
    /* the exact route beats the prefix route registered before it */
    assert_int_equal(call(c, NULL, "/static/exact", NULL, 0, NULL, &out, NULL), 200);
    assert_string_equal(out.data, "exact GET /static/exact");
    assert_int_equal(call(c, "DELETE", "/any", NULL, 0, NULL, &out, NULL), 200);
    assert_string_equal(out.data, "any DELETE /any");
    assert_int_equal(call(c, NULL, "/nope", NULL, 0, NULL, &out, NULL), 404);
    assert_int_equal(call(c, NULL, "/hellox", NULL, 0, NULL, &out, NULL), 404);
    assert_int_equal(call(c, "POST", "/hello", "x", 1, NULL, &out, &hdrs), 405);
    assert_true(vg_httpc_header(&hdrs, "Allow", v, sizeof(v)));
    assert_string_equal(v, "GET");
    assert_int_equal(call(c, "GET", "/echo", NULL, 0, NULL, &out, &hdrs), 405);
    assert_true(vg_httpc_header(&hdrs, "allow", v, sizeof(v)));
    assert_string_equal(v, "POST, PUT");
    assert_int_equal(call(c, "HEAD", "/hello", NULL, 0, NULL, &out, NULL), 200);
    assert_int_equal(out.len, 0);
    assert_int_equal(call(c, NULL, "/nostatus", NULL, 0, NULL, &out, NULL), 500);
    vg_buf_free(&out);
    vg_buf_free(&hdrs);
    vg_httpc_free(c);
}

static void test_query_args(void **state)
{
    vg_httpc_t *c = vg_httpc_new();
    vg_buf out;
    vg_buf_init(&out, 0);
    assert_int_equal(call(c, NULL,
                          "/args?match[]=up&match%5B%5D=a%20b&&match[]=x+y%2B&q=%zz%4&empty", NULL,
                          0, NULL, &out, NULL),
                     200);
    assert_string_equal(out.data, "match[]=up|a b|x y+;q=%zz%4;empty=;none=;first=up");
    assert_int_equal(call(c, NULL, "/args", NULL, 0, NULL, &out, NULL), 200);
    assert_string_equal(out.data, "match[]=;q=;empty=;none=;first=(null)");
    vg_buf_free(&out);
    vg_httpc_free(c);
}

static void test_form_args(void **state)
{
    vg_httpc_t *c = vg_httpc_new();
    vg_buf out;
    vg_buf_init(&out, 0);
    const char *form = "match[]=body1&q=1+2%3D3&match[]=body%262";
    /* curl sends application/x-www-form-urlencoded for a plain POST body */
    assert_int_equal(call(c, "POST", "/args?match[]=query", form, strlen(form), NULL, &out, NULL),
                     200);
    assert_string_equal(out.data, "match[]=body1|body&2|query;q=1 2=3;empty=;none=;first=body1");
    /* any other content type: the body is not parsed as a form */
    const char *const json[] = {"Content-Type: application/json", NULL};
    assert_int_equal(call(c, "POST", "/args", form, strlen(form), json, &out, NULL), 200);
    assert_string_equal(out.data, "match[]=;q=;empty=;none=;first=(null)");
    const char *const ct[] = {"Content-Type: Application/X-WWW-Form-Urlencoded; charset=utf-8",
                              NULL};
    assert_int_equal(call(c, "POST", "/args", "q=ok", 4, ct, &out, NULL), 200);
    assert_string_equal(out.data, "match[]=;q=ok;empty=;none=;first=(null)");
    vg_buf_free(&out);
    vg_httpc_free(c);
}

static void test_body_and_headers(void **state)
{
    vg_httpc_t *c = vg_httpc_new();
    vg_buf out, hdrs;
    char v[64];
    vg_buf_init(&out, 0);
    vg_buf_init(&hdrs, 0);
    const char *const h[] = {"X-Test: hello there", "Content-Type: application/octet-stream", NULL};
    char body[MAX_BODY];
    for (size_t i = 0; i < sizeof(body); i++) body[i] = (char)i; /* binary, with NULs */
    assert_int_equal(call(c, "POST", "/echo", body, sizeof(body), h, &out, &hdrs), 201);
    assert_int_equal(out.len, sizeof(body));
    assert_memory_equal(out.data, body, sizeof(body));
    assert_true(vg_httpc_header(&hdrs, "x-echo", v, sizeof(v)));
    assert_string_equal(v, "hello there");
    assert_true(vg_httpc_header(&hdrs, "Content-Type", v, sizeof(v)));
    assert_string_equal(v, "application/octet-stream");
    assert_int_equal(call(c, "PUT", "/echo", NULL, 0, NULL, &out, &hdrs), 201);
    assert_int_equal(out.len, 0);
    assert_true(vg_httpc_header(&hdrs, "X-Echo", v, sizeof(v)));
    assert_string_equal(v, "(none)");
    vg_buf_free(&out);
    vg_buf_free(&hdrs);
    vg_httpc_free(c);
}

static void test_body_cap(void **state)
{
    vg_httpc_t *c = vg_httpc_new();
    vg_buf out;
    vg_buf_init(&out, 0);
    const char *const h[] = {"Content-Type: application/octet-stream", NULL};
    size_t big = 3 << 20; /* over 1 MiB: curl waits for 100 Continue, refused early */
    char *body = vg_calloc(1, big);
    assert_non_null(body);
    assert_int_equal(call(c, "POST", "/echo", body, MAX_BODY + 1, h, &out, NULL), 413);
    assert_non_null(strstr(out.data, "larger than 1024 bytes"));
    assert_int_equal(call(c, "POST", "/echo", body, big, h, &out, NULL), 413);
    assert_non_null(strstr(out.data, "larger than 1024 bytes"));
    /* the server is still fine, and so is the client's next request */
    assert_int_equal(call(c, "POST", "/echo", body, 10, h, &out, NULL), 201);
    assert_int_equal(out.len, 10);
    vg_free(body);
    vg_buf_free(&out);
    vg_httpc_free(c);
}

static void *hammer(void *arg)
{
    int id = (int)(intptr_t)arg;
    vg_httpc_t *c = vg_httpc_new();
    vg_buf out;
    vg_buf_init(&out, 0);
    int bad = c == NULL;
    for (int i = 0; i < 100 && !bad; i++) {
        char path[64], want[128];
        snprintf(path, sizeof(path), "/args?q=t%d-%d", id, i);
        snprintf(want, sizeof(want), "match[]=;q=t%d-%d;empty=;none=;first=(null)", id, i);
        char url[128];
        snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", (unsigned)vg_httpd_port(srv), path);
        vg_httpc_req req = {.url = url};
        int status = 0;
        bad = vg_httpc_do(c, &req, &status, &out, NULL) != VG_OK || status != 200 ||
              strcmp(out.data, want) != 0;
    }
    vg_buf_free(&out);
    vg_httpc_free(c);
    return (void *)(intptr_t)bad;
}

static void test_concurrent(void **state)
{
    pthread_t t[2];
    int before = atomic_load(&hits);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, hammer, (void *)(intptr_t)i), 0);
    for (int i = 0; i < 2; i++) {
        void *bad;
        pthread_join(t[i], &bad);
        assert_null(bad);
    }
    assert_int_equal(atomic_load(&hits) - before, 200);
}

static void test_metrics_endpoints(void **state)
{
    vg_httpc_t *c = vg_httpc_new();
    vg_buf out, hdrs;
    char v[128];
    vg_buf_init(&out, 0);
    vg_buf_init(&hdrs, 0);
    assert_int_equal(call(c, NULL, "/metrics", NULL, 0, NULL, &out, &hdrs), 200);
    assert_string_equal(out.data, "# HELP test_requests_total Requests.\n"
                                  "# TYPE test_requests_total counter\n"
                                  "test_requests_total 3\n");
    assert_true(vg_httpc_header(&hdrs, "Content-Type", v, sizeof(v)));
    assert_string_equal(v, "text/plain; version=0.0.4; charset=utf-8");
    assert_int_equal(call(c, NULL, "/-/healthy", NULL, 0, NULL, &out, NULL), 200);
    assert_string_equal(out.data, "OK");
    assert_int_equal(call(c, NULL, "/-/ready", NULL, 0, NULL, &out, NULL), 503);
    vg_metrics_set_ready(reg, 1);
    assert_int_equal(call(c, NULL, "/-/ready", NULL, 0, NULL, &out, NULL), 200);
    assert_string_equal(out.data, "OK");
    assert_int_equal(call(c, "POST", "/metrics", "", 0, NULL, &out, NULL), 405);
    vg_buf_free(&out);
    vg_buf_free(&hdrs);
    vg_httpc_free(c);
}

static void test_address_in_use(void **state)
{
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", (unsigned)vg_httpd_port(srv));
    vg_httpd_opts o = {.listen = addr};
    vg_httpd_t *h = vg_httpd_new(&o);
    vg_error err = {0};
    assert_int_equal(vg_httpd_start(h, &err), VG_EIO);
    assert_non_null(strstr(err.msg, addr));
    assert_int_equal(vg_httpd_port(h), 0);
    vg_httpd_free(h);

    o.listen = "no-port-here";
    h = vg_httpd_new(&o);
    assert_int_equal(vg_httpd_start(h, &err), VG_ECONFIG);
    vg_httpd_free(h);
    vg_httpd_free(NULL);
}

static void test_response_cap(void **state)
{
    vg_httpc_t *c = vg_httpc_new();
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/big", (unsigned)vg_httpd_port(srv));
    vg_httpc_req req = {.url = url, .max_response = 100};
    vg_buf out;
    vg_buf_init(&out, 0);
    int status;
    vg_error err = {0};
    assert_int_equal(vg_httpc_do(c, &req, &status, &out, &err), VG_ETOOLARGE);
    assert_non_null(strstr(err.msg, "larger than 100 bytes"));
    req.max_response = 10000;
    assert_int_equal(vg_httpc_do(c, &req, &status, &out, &err), VG_OK);
    assert_int_equal(status, 200);
    assert_int_equal(out.len, 10000);
    vg_buf_free(&out);
    vg_httpc_free(c);
}

/* The decoder on its own: order, '+', escapes, empty pairs, caps. */
static void test_args_decoder(void **state)
{
    vg_arena_t *a = vg_arena_new(0);
    vg_http_args args = {0};
    const char *s = "a=1&&b&=e&c=x%2By+z%zz%4&d=%00q&a=2";
    assert_int_equal(vg_http_parse_args(a, s, strlen(s), &args), VG_OK);
    assert_int_equal(args.n, 6);
    assert_string_equal(args.v[0].name, "a");
    assert_string_equal(args.v[0].value, "1");
    assert_string_equal(args.v[1].name, "b");
    assert_string_equal(args.v[1].value, "");
    assert_string_equal(args.v[2].name, "");
    assert_string_equal(args.v[2].value, "e");
    assert_string_equal(args.v[3].value, "x+y z%zz%4");
    assert_int_equal(args.v[4].value_len, 2);
    assert_memory_equal(args.v[4].value, "\0q", 2);
    assert_string_equal(args.v[5].value, "2");
    /* a second source appends after the first */
    assert_int_equal(vg_http_parse_args(a, "z=9", 3, &args), VG_OK);
    assert_int_equal(args.n, 7);
    assert_string_equal(args.v[6].name, "z");
    assert_int_equal(vg_http_parse_args(a, "&&&", 3, &args), VG_OK);
    assert_int_equal(args.n, 7);

    char dst[16];
    assert_int_equal(vg_http_unescape(dst, "a+b%41%", 7, 0), 5);
    assert_string_equal(dst, "a+bA%");

    /* too many pairs: VG_ETOOLARGE and the list is unchanged */
    size_t n = 2 * (VG_HTTP_MAX_ARGS + 1);
    char *many = vg_malloc(n);
    for (size_t i = 0; i < n; i += 2) many[i] = 'x', many[i + 1] = '&';
    assert_int_equal(vg_http_parse_args(a, many, n, &args), VG_ETOOLARGE);
    assert_int_equal(args.n, 7);
    vg_free(many);
    vg_arena_free(a);
}

/* Construction and route registration survive every allocation failing. */
static void test_alloc_failures(void **state)
{
    vg_httpd_opts o = {.listen = "127.0.0.1:0"};
    for (long n = 1; n < 8; n++) {
        vg_alloc_fail_after(n);
        vg_httpd_t *h = vg_httpd_new(&o);
        vg_err_t rc = h ? vg_httpd_route(h, "GET", "/a*", h_hello, NULL) : VG_ENOMEM;
        if (!rc) rc = vg_httpd_route(h, NULL, "/b", h_hello, NULL);
        vg_alloc_fail_after(0);
        assert_true(rc == VG_OK || rc == VG_ENOMEM);
        vg_httpd_free(h);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_routing),           cmocka_unit_test(test_query_args),
        cmocka_unit_test(test_form_args),         cmocka_unit_test(test_body_and_headers),
        cmocka_unit_test(test_body_cap),          cmocka_unit_test(test_concurrent),
        cmocka_unit_test(test_metrics_endpoints), cmocka_unit_test(test_address_in_use),
        cmocka_unit_test(test_response_cap),      cmocka_unit_test(test_args_decoder),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
