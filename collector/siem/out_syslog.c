/*
 * out_syslog.c - the SIEM syslog output: RFC 5424 messages, octet-counted
 * (RFC 6587) over TCP, optionally TLS (RFC 5425, OpenSSL).
 *
 * Message: <PRI>1 TIMESTAMP HOSTNAME APP-NAME - audit [vigil@32473 ...] BOM+MSG
 *  - PRI = facility*8 + severity. Severity comes from the record's result:
 *    success/ok/allowed/granted... -> 6 (informational), failure/denied/error/
 *    rejected... -> 4 (warning), anything else (or none) -> 5 (notice).
 *  - TIMESTAMP is the record's ts in RFC 3339 UTC with milliseconds ("-" when
 *    it does not fit 0000..9999); HOSTNAME is gethostname().
 *  - The one SD-ELEMENT carries the audit fields. 32473 is the private
 *    enterprise number IANA reserves for documentation examples (RFC 5612):
 *    we own no PEN, and a receiver keys on the SD-ID as a whole. A field the
 *    stored line lacks is sent as an empty value, so every message has the
 *    same params. Values are escaped per RFC 5424 6.3.3 ('"', '\', ']').
 *  - MSG is a UTF-8 BOM followed by the redacted original JSON.
 * The stored line is produced by the collector, but it is parsed defensively:
 * a line that is not a JSON object still becomes a message (tenant and ts
 * from the record, empty fields, the line itself as MSG with bad UTF-8
 * replaced), so one damaged record can never wedge the forwarder's cursor.
 *
 * Delivery. Syslog over TCP has no application-level acknowledgement, so
 * send() approximates one from the kernel: before writing it checks that the
 * peer has not closed the connection (POLLRDHUP, or a read of 0) and
 * reconnects if so; after writing the batch it waits, up to timeout_ms, for
 * the socket's send queue to drain (SIOCOUTQ == 0: every byte ACKed by the
 * peer's TCP). Only then is the batch reported delivered; any failure closes
 * the connection (the next send reconnects) and the forwarder resends the
 * whole batch. This is at least once: a batch that was ACKed but whose
 * connection broke before we saw the drain is sent twice, and bytes ACKed by
 * a receiver that then dies before reading them are lost to it - only RELP
 * (an application ack) would close that gap.
 *
 * One forwarder thread drives an output, so the state needs no locks. All
 * socket I/O is non-blocking with poll() against one deadline per send.
 */
#include "siem/output.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "vigil/alloc.h"
#include "vigil/buf.h"
#include "vigil/clock.h"
#include "vigil/log.h"
#include "vigil/timefmt.h"

#define COMPONENT          "siem"
#define SD_ID              "vigil@32473"
#define DEFAULT_APP        "vigil"
#define DEFAULT_TIMEOUT_MS 10000
#define WIRE_MAX           ((size_t)256 << 20)
#define DRAIN_POLL_MS      5

/* ------------------------------------------------------------------ */
/* RFC 5424 formatting                                                 */
/* ------------------------------------------------------------------ */

/* The SD params, in wire order; all are valid PARAM-NAMEs (<= 32 PRINTUSASCII,
 * no '=', ' ', ']' or '"'). */
static const char *const sd_names[] = {"tenant", "user_id",    "session_id", "action", "resource",
                                       "result", "ip_address", "file_id",    "offset"};
enum { SD_N = sizeof sd_names / sizeof sd_names[0], SD_TENANT = 0, SD_RESULT = 5 };

/* Field values of one record, borrowed from the parsed JSON (or the record). */
typedef struct fields {
    const char *v[SD_N];
    size_t n[SD_N];
    char num[SD_N][24]; /* numbers ("offset") rendered as text */
    const char *msg;    /* original JSON, or NULL */
    size_t msg_len;
    int msg_raw; /* msg is the unparsed line: repair its UTF-8 */
} fields;

static int ieq(const char *s, size_t n, const char *lit)
{
    return strlen(lit) == n && strncasecmp(s, lit, n) == 0;
}

/* Severity from the result field (see the header comment). */
static int severity_of(const char *r, size_t n)
{
    static const char *const ok[] = {"success", "succeeded", "ok",      "allow", "allowed",
                                     "permit",  "permitted", "granted", "pass",  "passed"};
    static const char *const bad[] = {"failure",   "failed",       "fail",     "denied",
                                      "deny",      "error",        "rejected", "reject",
                                      "forbidden", "unauthorized", "blocked",  "invalid"};
    for (size_t i = 0; r && i < sizeof ok / sizeof ok[0]; i++)
        if (ieq(r, n, ok[i])) return 6;
    for (size_t i = 0; r && i < sizeof bad / sizeof bad[0]; i++)
        if (ieq(r, n, bad[i])) return 4;
    return 5;
}

/* RFC 3339 UTC with milliseconds, or the NILVALUE outside years 0000..9999
 * (RFC 5424's FULL-DATE has four digits). */
static vg_err_t put_timestamp(vg_buf *out, int64_t ts_ms)
{
    const int64_t day = 86400000;
    char ts[VG_TIMEFMT_RFC3339_MAX];
    if (ts_ms < vg_timefmt_days_from_civil(0, 1, 1) * day ||
        ts_ms >= vg_timefmt_days_from_civil(10000, 1, 1) * day)
        return vg_buf_putc(out, '-');
    return vg_buf_puts(out, vg_timefmt_format_rfc3339(ts_ms, ts));
}

/* A header token (HOSTNAME, APP-NAME): 1..max PRINTUSASCII, "-" when empty;
 * other bytes become '_' so a bad config or hostname cannot break framing. */
static vg_err_t put_token(vg_buf *out, const char *s, size_t max)
{
    if (!s || !*s) return vg_buf_putc(out, '-');
    vg_err_t rc = VG_OK;
    for (size_t i = 0; s[i] && i < max && !rc; i++) {
        unsigned char ch = (unsigned char)s[i];
        rc = vg_buf_putc(out, ch >= 33 && ch <= 126 ? (char)ch : '_');
    }
    return rc;
}

/* PARAM-VALUE per RFC 5424 6.3.3: '"', '\' and ']' get a backslash. */
static vg_err_t put_param_value(vg_buf *out, const char *s, size_t n)
{
    vg_err_t rc = VG_OK;
    size_t from = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        if (s[i] != '"' && s[i] != '\\' && s[i] != ']') continue;
        rc = vg_buf_append(out, s + from, i - from);
        if (!rc) rc = vg_buf_putc(out, '\\');
        from = i;
    }
    return rc ? rc : vg_buf_append(out, s + from, n - from);
}

/* Length of the valid UTF-8 sequence at s[0..n), or 0 when it is not one. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    size_t len;
    unsigned min;
    unsigned cp;
    if (s[0] < 0x80) return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        len = 2, min = 0x80, cp = s[0] & 0x1f;
    else if ((s[0] & 0xf0) == 0xe0)
        len = 3, min = 0x800, cp = s[0] & 0x0f;
    else if (s[0] >= 0xf0 && s[0] <= 0xf4)
        len = 4, min = 0x10000, cp = s[0] & 0x07;
    else
        return 0;
    if (n < len) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    return len;
}

/* Append s, replacing each invalid UTF-8 byte with U+FFFD. */
static vg_err_t put_utf8_repaired(vg_buf *out, const char *s, size_t n)
{
    vg_err_t rc = VG_OK;
    size_t i = 0;
    while (i < n && !rc) {
        size_t k = utf8_seq((const unsigned char *)s + i, n - i);
        rc = k ? vg_buf_append(out, s + i, k) : vg_buf_append(out, "\xef\xbf\xbd", 3);
        i += k ? k : 1;
    }
    return rc;
}

/* Pull the fields out of the parsed stored line; anything missing stays "". */
static void fields_from_json(fields *f, json_t *o)
{
    for (size_t i = 0; i < SD_N; i++) {
        json_t *v = json_object_get(o, sd_names[i]);
        if (json_is_string(v)) {
            f->v[i] = json_string_value(v);
            f->n[i] = json_string_length(v);
        } else if (json_is_integer(v)) {
            snprintf(f->num[i], sizeof f->num[i], "%" JSON_INTEGER_FORMAT, json_integer_value(v));
            f->v[i] = f->num[i];
            f->n[i] = strlen(f->num[i]);
        }
    }
    json_t *orig = json_object_get(o, "original");
    if (json_is_string(orig)) {
        f->msg = json_string_value(orig);
        f->msg_len = json_string_length(orig);
    }
}

static void fields_init(fields *f, const vg_siem_rec *r, json_t *o)
{
    memset(f, 0, sizeof *f);
    for (size_t i = 0; i < SD_N; i++) f->v[i] = "";
    if (o) {
        fields_from_json(f, o);
    } else {
        f->msg = r->line;
        f->msg_len = r->line ? r->len : 0;
        f->msg_raw = 1;
    }
    if (!*f->v[SD_TENANT] && r->tenant) {
        f->v[SD_TENANT] = r->tenant;
        f->n[SD_TENANT] = strlen(r->tenant);
    }
}

static vg_err_t put_sd(vg_buf *out, const fields *f)
{
    vg_err_t rc = vg_buf_puts(out, "[" SD_ID);
    for (size_t i = 0; i < SD_N && !rc; i++) {
        rc = vg_buf_printf(out, " %s=\"", sd_names[i]);
        if (!rc) rc = put_param_value(out, f->v[i], f->n[i]);
        if (!rc) rc = vg_buf_putc(out, '"');
    }
    return rc ? rc : vg_buf_putc(out, ']');
}

static vg_err_t put_message(const vg_siem_output_conf *c, const char *hostname,
                            const vg_siem_rec *r, const fields *f, vg_buf *out)
{
    int pri = c->facility * 8 + severity_of(f->v[SD_RESULT], f->n[SD_RESULT]);
    vg_err_t rc = vg_buf_printf(out, "<%d>1 ", pri);
    if (!rc) rc = put_timestamp(out, r->ts_ms);
    if (!rc) rc = vg_buf_putc(out, ' ');
    if (!rc) rc = put_token(out, hostname, 255);
    if (!rc) rc = vg_buf_putc(out, ' ');
    if (!rc) rc = put_token(out, c->app_name && *c->app_name ? c->app_name : DEFAULT_APP, 48);
    if (!rc) rc = vg_buf_puts(out, " - audit ");
    if (!rc) rc = put_sd(out, f);
    if (!rc && f->msg) rc = vg_buf_puts(out, " \xef\xbb\xbf");
    if (!rc && f->msg)
        rc = f->msg_raw ? put_utf8_repaired(out, f->msg, f->msg_len)
                        : vg_buf_append(out, f->msg, f->msg_len);
    return rc;
}

/* Prefix the message that starts at out->data[start] with "<len> ". */
static vg_err_t octet_count(vg_buf *out, size_t start)
{
    char pre[24];
    size_t mlen = out->len - start;
    int k = snprintf(pre, sizeof pre, "%zu ", mlen);
    vg_err_t rc = vg_buf_reserve(out, (size_t)k);
    if (rc) return rc;
    memmove(out->data + start + k, out->data + start, mlen);
    memcpy(out->data + start, pre, (size_t)k);
    out->len += (size_t)k;
    out->data[out->len] = '\0';
    return VG_OK;
}

vg_err_t vg_siem_syslog_frame(const vg_siem_output_conf *c, const char *hostname,
                              const vg_siem_rec *r, struct vg_buf *out)
{
    size_t start = out->len;
    json_t *o = r->line ? json_loadb(r->line, r->len, 0, NULL) : NULL;
    if (o && !json_is_object(o)) {
        json_decref(o);
        o = NULL;
    }
    fields f;
    fields_init(&f, r, o);
    vg_err_t rc = put_message(c, hostname, r, &f, out);
    if (!rc) rc = octet_count(out, start);
    json_decref(o);
    if (rc) { /* leave out as it was */
        out->len = start;
        if (out->data) out->data[start] = '\0';
    }
    return rc;
}

/* ------------------------------------------------------------------ */
/* Transport                                                           */
/* ------------------------------------------------------------------ */

typedef struct syslog_out {
    const vg_siem_output_conf *c;
    char host[256];
    char port[8];
    char hostname[256];
    int64_t timeout_ms;
    int fd;
    SSL_CTX *ctx;
    SSL *ssl;
    vg_buf wire;
} syslog_out;

/* Split "host:port" or "[v6]:port". */
static vg_err_t parse_address(syslog_out *s, const char *a, vg_error *err)
{
    const char *colon = a ? strrchr(a, ':') : NULL;
    const char *h = a, *he = colon;
    if (a && a[0] == '[') {
        const char *rb = strchr(a, ']');
        if (!rb || rb + 1 != colon) colon = NULL;
        h = a + 1, he = rb;
    }
    char *end = NULL;
    long port = colon ? strtol(colon + 1, &end, 10) : 0;
    if (!colon || he == h || (size_t)(he - h) >= sizeof s->host || *end || port < 1 || port > 65535)
        return vg_error_set(err, VG_ECONFIG,
                            "siem syslog: address \"%s\" is not host:port; write e.g. "
                            "\"127.0.0.1:6514\" or \"[::1]:6514\"",
                            a ? a : "");
    memcpy(s->host, h, (size_t)(he - h));
    s->host[he - h] = '\0';
    snprintf(s->port, sizeof s->port, "%ld", port);
    return VG_OK;
}

static vg_err_t check_conf(const vg_siem_output_conf *c, vg_error *err)
{
    if (c->facility < 0 || c->facility > 23)
        return vg_error_set(err, VG_ECONFIG,
                            "siem %s: facility %d is outside 0..23; 13 is log audit",
                            c->name ? c->name : "syslog", c->facility);
    const char *app = c->app_name ? c->app_name : DEFAULT_APP;
    size_t n = strlen(app);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)app[i] < 33 || (unsigned char)app[i] > 126) n = 0;
    if (n == 0 || n > 48)
        return vg_error_set(err, VG_ECONFIG,
                            "siem %s: app_name \"%s\" must be 1..48 printable ASCII characters "
                            "without spaces (RFC 5424 APP-NAME)",
                            c->name ? c->name : "syslog", app);
    if (c->tls && (!c->cert_file) != (!c->key_file))
        return vg_error_set(err, VG_ECONFIG,
                            "siem %s: tls client certificate needs both cert_file and key_file",
                            c->name ? c->name : "syslog");
    return VG_OK;
}

/* The newest queued OpenSSL error as text (the queue is emptied). */
static const char *ssl_errstr(char *buf, size_t n)
{
    unsigned long e, last = 0;
    while ((e = ERR_get_error())) last = e;
    if (!last) return snprintf(buf, n, "no detail"), buf;
    ERR_error_string_n(last, buf, n);
    return buf;
}

static vg_err_t tls_ctx_new(syslog_out *s, vg_error *err)
{
    const vg_siem_output_conf *c = s->c;
    char eb[256];
    const char *what = "SSL_CTX_new";
    ERR_clear_error();
    if (!(s->ctx = SSL_CTX_new(TLS_client_method()))) goto fail;
    SSL_CTX_set_min_proto_version(s->ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(s->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (c->insecure_skip_verify) {
        SSL_CTX_set_verify(s->ctx, SSL_VERIFY_NONE, NULL);
        vg_log_warn(COMPONENT, "tls verification disabled (insecure_skip_verify)", "output=%s",
                    c->name ? c->name : "syslog");
    } else {
        SSL_CTX_set_verify(s->ctx, SSL_VERIFY_PEER, NULL);
        what = c->ca_file ? c->ca_file : "the system CA store";
        if (!(c->ca_file ? SSL_CTX_load_verify_locations(s->ctx, c->ca_file, NULL)
                         : SSL_CTX_set_default_verify_paths(s->ctx)))
            goto fail;
    }
    if (c->cert_file) {
        what = c->cert_file;
        if (SSL_CTX_use_certificate_chain_file(s->ctx, c->cert_file) != 1) goto fail;
        what = c->key_file;
        if (SSL_CTX_use_PrivateKey_file(s->ctx, c->key_file, SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(s->ctx) != 1)
            goto fail;
    }
    return VG_OK;
fail:
    return vg_error_set(err, VG_ECONFIG, "siem %s: tls setup: loading %s: %s; check the tls paths",
                        c->name ? c->name : "syslog", what, ssl_errstr(eb, sizeof eb));
}

/* A TLS peer that goes away mid-write raises SIGPIPE from OpenSSL's write();
 * keep any handler the program installed itself (as common/httpd.c does). */
static void ignore_sigpipe(void)
{
    struct sigaction old;
    if (sigaction(SIGPIPE, NULL, &old) == 0 && old.sa_handler == SIG_DFL) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = SIG_IGN;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGPIPE, &sa, NULL);
    }
}

static void out_close(void *state);

static vg_err_t out_open(const vg_siem_output_conf *c, void **state, vg_error *err)
{
    *state = NULL;
    syslog_out *s = vg_calloc(1, sizeof *s);
    if (!s) return vg_error_set(err, VG_ENOMEM, "siem syslog: out of memory");
    s->fd = -1;
    s->c = c;
    vg_buf_init(&s->wire, WIRE_MAX);
    s->timeout_ms = c->timeout_ms > 0 ? c->timeout_ms : DEFAULT_TIMEOUT_MS;
    vg_err_t rc = check_conf(c, err);
    if (!rc) rc = parse_address(s, c->address, err);
    if (!rc && c->tls) rc = tls_ctx_new(s, err);
    if (rc) goto fail;
    if (c->tls) ignore_sigpipe();
    if (gethostname(s->hostname, sizeof s->hostname - 1) != 0) s->hostname[0] = '\0';
    *state = s;
    return VG_OK;
fail:
    out_close(s);
    return rc;
}

static void disconnect(syslog_out *s)
{
    if (s->ssl) SSL_free(s->ssl);
    s->ssl = NULL;
    if (s->fd >= 0) close(s->fd);
    s->fd = -1;
}

static void out_close(void *state)
{
    syslog_out *s = state;
    if (!s) return;
    if (s->ssl && s->fd >= 0) SSL_shutdown(s->ssl); /* best effort close_notify */
    disconnect(s);
    SSL_CTX_free(s->ctx);
    vg_buf_free(&s->wire);
    vg_free(s);
}

static int remaining(int64_t deadline)
{
    int64_t left = deadline - vg_clock_mono_ms();
    return left <= 0 ? 0 : left > 60000 ? 60000 : (int)left;
}

/* Wait for events on s->fd until the deadline; 1 ready, 0 timed out, -1 error. */
static int wait_fd(syslog_out *s, short events, int64_t deadline)
{
    for (;;) {
        struct pollfd p = {.fd = s->fd, .events = events};
        int n = poll(&p, 1, remaining(deadline));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return -1;
        return n > 0 ? 1 : 0;
    }
}

static vg_err_t connect_one(syslog_out *s, const struct addrinfo *ai, int64_t deadline,
                            vg_error *err)
{
    s->fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (s->fd < 0) return vg_error_set(err, VG_ERETRY, "siem syslog: socket: %s", strerror(errno));
    int one = 1;
    setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(s->fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) goto fail;
    int w = wait_fd(s, POLLOUT, deadline), soerr = 0;
    socklen_t sl = sizeof soerr;
    if (w == 0) errno = ETIMEDOUT;
    if (w <= 0) goto fail;
    if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0) goto fail;
    if (soerr) {
        errno = soerr;
        goto fail;
    }
    return VG_OK;
fail:;
    int e = errno;
    disconnect(s);
    return vg_error_set(err, VG_ERETRY,
                        "siem syslog: connect to %s:%s: %s; is the receiver up and listening?",
                        s->host, s->port, strerror(e));
}

static vg_err_t tcp_connect(syslog_out *s, int64_t deadline, vg_error *err)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}; /* no AI_ADDRCONFIG: lo-only hosts */
    struct addrinfo *res = NULL;
    int g = getaddrinfo(s->host, s->port, &hints, &res);
    if (g != 0)
        return vg_error_set(err, VG_ERETRY, "siem syslog: resolving %s: %s", s->host,
                            gai_strerror(g));
    vg_err_t rc = VG_ERETRY;
    for (struct addrinfo *ai = res; ai && rc; ai = ai->ai_next)
        rc = connect_one(s, ai, deadline, err);
    freeaddrinfo(res);
    return rc;
}

/* Drive a non-blocking SSL call's WANT_READ/WANT_WRITE; 1 call again, 0 fatal. */
static int tls_retry(syslog_out *s, int ret, int64_t deadline)
{
    int e = SSL_get_error(s->ssl, ret);
    if (e == SSL_ERROR_WANT_READ) return wait_fd(s, POLLIN, deadline) == 1;
    if (e == SSL_ERROR_WANT_WRITE) return wait_fd(s, POLLOUT, deadline) == 1;
    return 0;
}

static vg_err_t tls_set_peer(syslog_out *s)
{
    const char *name = s->c->server_name && *s->c->server_name ? s->c->server_name : s->host;
    unsigned char ip[16];
    int is_ip = inet_pton(AF_INET, name, ip) == 1 || inet_pton(AF_INET6, name, ip) == 1;
    if (!is_ip && SSL_set_tlsext_host_name(s->ssl, name) != 1) return VG_ENOMEM;
    if (s->c->insecure_skip_verify) return VG_OK;
    X509_VERIFY_PARAM *vp = SSL_get0_param(s->ssl);
    int ok =
        is_ip ? X509_VERIFY_PARAM_set1_ip_asc(vp, name) : X509_VERIFY_PARAM_set1_host(vp, name, 0);
    return ok == 1 ? VG_OK : VG_ENOMEM;
}

static vg_err_t tls_handshake(syslog_out *s, int64_t deadline, vg_error *err)
{
    char eb[256];
    ERR_clear_error();
    if (!(s->ssl = SSL_new(s->ctx)) || SSL_set_fd(s->ssl, s->fd) != 1 || tls_set_peer(s)) {
        disconnect(s);
        return vg_error_set(err, VG_ENOMEM, "siem syslog: tls session: %s",
                            ssl_errstr(eb, sizeof eb));
    }
    int ret;
    while ((ret = SSL_connect(s->ssl)) != 1)
        if (!tls_retry(s, ret, deadline)) goto fail;
    return VG_OK;
fail:;
    long v = SSL_get_verify_result(s->ssl);
    const char *why = v != X509_V_OK ? X509_verify_cert_error_string(v) : ssl_errstr(eb, sizeof eb);
    disconnect(s);
    return vg_error_set(err, VG_ERETRY,
                        "siem syslog: tls handshake with %s:%s failed: %s; check ca_file and "
                        "server_name",
                        s->host, s->port, why);
}

/* Read and drop whatever the peer sent; 0 when the connection is still usable. */
static int drain_input(syslog_out *s)
{
    char scratch[4096];
    for (int i = 0; i < 64; i++) {
        if (s->ssl) {
            ERR_clear_error();
            int n = SSL_read(s->ssl, scratch, sizeof scratch);
            if (n > 0) continue;
            int e = SSL_get_error(s->ssl, n);
            ERR_clear_error();
            return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? 0 : -1;
        }
        ssize_t n = recv(s->fd, scratch, sizeof scratch, MSG_DONTWAIT);
        if (n > 0) continue;
        return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? 0 : -1;
    }
    return 0;
}

/* Has the peer closed (or reset) the connection since the last send? */
static int peer_gone(syslog_out *s)
{
    struct pollfd p = {.fd = s->fd, .events = POLLIN | POLLRDHUP};
    if (poll(&p, 1, 0) <= 0) return 0;
    if (p.revents & (POLLERR | POLLHUP | POLLRDHUP | POLLNVAL)) return 1;
    return (p.revents & POLLIN) ? drain_input(s) != 0 : 0;
}

static vg_err_t ensure_connected(syslog_out *s, int64_t deadline, vg_error *err)
{
    if (s->fd >= 0 && peer_gone(s)) {
        vg_log_info(COMPONENT, "syslog receiver closed the connection; reconnecting", "output=%s",
                    s->c->name ? s->c->name : "syslog");
        disconnect(s);
    }
    if (s->fd >= 0) return VG_OK;
    vg_err_t rc = tcp_connect(s, deadline, err);
    if (!rc && s->ctx) rc = tls_handshake(s, deadline, err);
    return rc;
}

/* Write all n bytes (1) or fail (0). */
static int write_all(syslog_out *s, const char *p, size_t n, int64_t deadline)
{
    while (n > 0) {
        ssize_t w;
        if (s->ssl) {
            ERR_clear_error();
            int chunk = n > (1u << 30) ? (1 << 30) : (int)n;
            int r = SSL_write(s->ssl, p, chunk);
            if (r <= 0 && !tls_retry(s, r, deadline)) return 0;
            w = r > 0 ? r : 0;
        } else {
            w = send(s->fd, p, n, MSG_NOSIGNAL);
            if (w < 0 && errno == EINTR) continue;
            if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return 0;
            if (w < 0 && wait_fd(s, POLLOUT, deadline) != 1) return 0;
            if (w < 0) continue;
        }
        p += w, n -= (size_t)w;
    }
    return 1;
}

/* Wait until the peer's TCP has ACKed every byte we wrote (SIOCOUTQ == 0). */
static int wait_drained(syslog_out *s, int64_t deadline)
{
    for (;;) {
        int pending = 0;
        if (ioctl(s->fd, SIOCOUTQ, &pending) != 0) return 0;
        if (pending == 0) return 1;
        if (remaining(deadline) == 0) return 0;
        /* Sleep a little, but wake at once on an error or reset. */
        struct pollfd p = {.fd = s->fd, .events = 0};
        int t = remaining(deadline) < DRAIN_POLL_MS ? remaining(deadline) : DRAIN_POLL_MS;
        if (poll(&p, 1, t) > 0 && (p.revents & (POLLERR | POLLHUP | POLLNVAL))) {
            if (ioctl(s->fd, SIOCOUTQ, &pending) == 0 && pending == 0) return 1;
            return 0;
        }
    }
}

static vg_err_t frame_batch(syslog_out *s, const vg_siem_rec *recs, size_t n, vg_error *err)
{
    vg_buf_reset(&s->wire);
    for (size_t i = 0; i < n; i++) {
        vg_err_t rc = vg_siem_syslog_frame(s->c, s->hostname, &recs[i], &s->wire);
        if (rc)
            return vg_error_set(err, rc, "siem syslog: formatting record %zu of %zu: %s", i + 1, n,
                                vg_strerror(rc));
    }
    return VG_OK;
}

static vg_err_t out_send(void *state, const vg_siem_rec *recs, size_t n, vg_error *err)
{
    syslog_out *s = state;
    if (n == 0) return VG_OK;
    int64_t deadline = vg_clock_mono_ms() + s->timeout_ms;
    vg_err_t rc = frame_batch(s, recs, n, err);
    if (!rc) rc = ensure_connected(s, deadline, err);
    if (rc) return rc;
    const char *what = "writing";
    if (write_all(s, s->wire.data, s->wire.len, deadline)) {
        what = "waiting for the receiver to acknowledge";
        if (wait_drained(s, deadline)) return VG_OK;
    }
    int e = errno;
    char eb[256];
    const char *why = remaining(deadline) == 0 ? "timed out"
                      : s->ssl                 ? ssl_errstr(eb, sizeof eb)
                                               : strerror(e);
    disconnect(s);
    return vg_error_set(err, VG_ERETRY,
                        "siem syslog: %s %zu records (%zu bytes) to %s:%s: %s; will reconnect "
                        "and resend",
                        what, n, s->wire.len, s->host, s->port, why);
}

const vg_siem_output_ops vg_siem_out_syslog = {
    .type = "syslog",
    .open = out_open,
    .send = out_send,
    .close = out_close,
};
