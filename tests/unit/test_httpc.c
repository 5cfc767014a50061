/*
 * test_httpc.c - client failure modes that need no HTTP server: refused
 * connections, a peer that never answers, bad URLs, and header lookup.
 *
 * "Refused" and "never answers" use sockets this test holds itself (bound but
 * not listening; listening but never accepting), so no other process can
 * take the port in between and the outcome does not depend on timing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vigil/httpc.h"

/* A loopback TCP socket on a free port; listening when listen_too. */
static int loopback_socket(int listen_too, unsigned *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    if (listen_too) assert_int_equal(listen(fd, 4), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    *port = ntohs(sa.sin_port);
    return fd;
}

static void test_refused_is_retry(void **state)
{
    unsigned port;
    int fd = loopback_socket(0, &port);
    char url[128];
    snprintf(url, sizeof(url), "http://user:secret@127.0.0.1:%u/x?token=abc", port);
    vg_httpc_t *c = vg_httpc_new();
    assert_non_null(c);
    vg_httpc_req req = {.url = url};
    vg_error err = {0};
    int status = -1;
    assert_int_equal(vg_httpc_do(c, &req, &status, NULL, &err), VG_ERETRY);
    assert_int_equal(status, 0);
    assert_non_null(strstr(err.msg, "GET http://127.0.0.1:"));
    assert_non_null(strstr(err.msg, "/x: ")); /* curl's error text follows */
    assert_null(strstr(err.msg, "secret"));   /* credentials stay out of messages */
    assert_null(strstr(err.msg, "token"));
    vg_httpc_free(c);
    close(fd);
}

static void test_timeout_is_retry(void **state)
{
    unsigned port;
    int fd = loopback_socket(1, &port); /* the kernel accepts, nobody answers */
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/slow", port);
    vg_httpc_t *c = vg_httpc_new();
    vg_httpc_req req = {.url = url, .timeout_ms = 200, .body = "x", .body_len = 1};
    vg_error err = {0};
    assert_int_equal(vg_httpc_do(c, &req, NULL, NULL, &err), VG_ERETRY);
    assert_non_null(strstr(err.msg, "POST ")); /* body set, no method: POST */
    vg_httpc_free(c);
    close(fd);
}

static void test_bad_url(void **state)
{
    vg_httpc_t *c = vg_httpc_new();
    vg_httpc_req req = {.url = "gopher://127.0.0.1/"};
    vg_error err = {0};
    assert_int_equal(vg_httpc_do(c, &req, NULL, NULL, &err), VG_EINVAL);
    req.url = NULL;
    assert_int_equal(vg_httpc_do(c, &req, NULL, NULL, &err), VG_EINVAL);
    vg_httpc_free(c);
    vg_httpc_free(NULL);
}

static void test_header_lookup(void **state)
{
    vg_buf h;
    char v[32];
    vg_buf_init(&h, 0);
    vg_buf_puts(&h, "HTTP/1.1 429 Too Many Requests\r\nContent-Type: text/plain\r\n"
                    "Retry-After:   30  \r\nX-Empty:\r\n\r\n");
    assert_true(vg_httpc_header(&h, "retry-after", v, sizeof(v)));
    assert_string_equal(v, "30");
    assert_true(vg_httpc_header(&h, "X-Empty", v, sizeof(v)));
    assert_string_equal(v, "");
    assert_false(vg_httpc_header(&h, "Content", v, sizeof(v)));
    assert_false(vg_httpc_header(&h, "HTTP/1.1 429 Too Many Requests", v, sizeof(v)));
    assert_false(vg_httpc_header(NULL, "X", v, sizeof(v)));
    vg_buf_free(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refused_is_retry),
        cmocka_unit_test(test_timeout_is_retry),
        cmocka_unit_test(test_bad_url),
        cmocka_unit_test(test_header_lookup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
