/*
 * httpd.c - the embedded HTTP server, a thin layer over libmicrohttpd.
 *
 * MHD calls the access handler several times per request (headers, then each
 * body chunk, then once more at the end). This file hides that: it collects
 * the body into a capped vg_buf and calls the Vigil handler exactly once with
 * the whole request. Why it has this shape:
 *  - A per-request context is created in MHD's URI-log callback, the only
 *    place that sees the raw query string (MHD otherwise hands out its own
 *    decoded copy, without repeated-key order or '+' handling we want).
 *  - Past max_body the rest of the body is read and dropped, never stored,
 *    and the answer is 413. A client that announces an oversize body and
 *    waits for "100 Continue" gets the 413 before it sends anything.
 *  - Routing is a small linear table: the most specific route (exact, then
 *    the longest '*' prefix) that accepts the method wins; a path that exists
 *    under other methods gets 405 with Allow.
 *  - MHD runs its own thread pool (epoll where available), so handlers run
 *    concurrently and must be thread-safe.
 */
#include "vigil/httpd.h"

#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "httpd_args.h"
#include "vigil/alloc.h"
#include "vigil/arena.h"
#include "vigil/log.h"

#define COMP             "httpd"
#define DEFAULT_MAX_BODY ((size_t)32 << 20)
#define DEFAULT_CTYPE    "text/plain; charset=utf-8"
#define FORM_CTYPE       "application/x-www-form-urlencoded"

struct route {
    char *method; /* NULL matches any method */
    char *path;   /* without the trailing '*' of a prefix route */
    size_t plen;
    int prefix;
    vg_http_handler fn;
    void *ud;
};

struct vg_httpd {
    vg_httpd_opts opts;
    char *listen;
    struct route *routes;
    size_t nroutes;
    struct MHD_Daemon *d;
    uint16_t port;
    pthread_mutex_t log_mu;
    char lastlog[256]; /* last libmicrohttpd message, for start errors */
};

struct vg_http_req {
    vg_httpd_t *h;
    struct MHD_Connection *conn;
    const char *method, *path;
    char *query; /* raw query string (after '?'), or NULL */
    vg_buf body;
    vg_err_t body_err; /* set when the body went over the cap or out of memory */
    int started;
    vg_arena_t *arena; /* decoded arguments; created only when there are some */
    vg_http_args args;
};

/* ---- construction and routing table ---- */

vg_httpd_t *vg_httpd_new(const vg_httpd_opts *opts)
{
    vg_httpd_t *h = vg_calloc(1, sizeof(*h));
    if (!h) return NULL;
    if (opts) h->opts = *opts;
    if (!h->opts.threads) h->opts.threads = 2;
    if (!h->opts.max_body) h->opts.max_body = DEFAULT_MAX_BODY;
    if (!h->opts.timeout_s) h->opts.timeout_s = 30;
    h->listen = vg_strdup(h->opts.listen ? h->opts.listen : "127.0.0.1:0");
    if (!h->listen || pthread_mutex_init(&h->log_mu, NULL) != 0) {
        vg_free(h->listen);
        vg_free(h);
        return NULL;
    }
    h->opts.listen = h->listen;
    return h;
}

static void route_clear(struct route *rt)
{
    vg_free(rt->method);
    vg_free(rt->path);
}

vg_err_t vg_httpd_route(vg_httpd_t *h, const char *method, const char *path, vg_http_handler fn,
                        void *ud)
{
    if (!h || !path || !fn || h->d) return VG_EINVAL;
    struct route *v = vg_realloc(h->routes, (h->nroutes + 1) * sizeof(*v));
    if (!v) return VG_ENOMEM;
    h->routes = v;
    struct route *rt = &v[h->nroutes];
    memset(rt, 0, sizeof(*rt));
    size_t plen = strlen(path);
    rt->prefix = plen > 0 && path[plen - 1] == '*';
    rt->plen = plen - (size_t)rt->prefix;
    rt->path = vg_strndup(path, rt->plen);
    rt->method = method ? vg_strdup(method) : NULL;
    if (!rt->path || (method && !rt->method)) {
        route_clear(rt);
        return VG_ENOMEM;
    }
    rt->fn = fn;
    rt->ud = ud;
    h->nroutes++;
    return VG_OK;
}

static int path_match(const struct route *rt, const char *path)
{
    if (rt->prefix) return strncmp(path, rt->path, rt->plen) == 0;
    return strcmp(path, rt->path) == 0;
}

static int method_match(const struct route *rt, const char *method)
{
    if (!rt->method || strcmp(rt->method, method) == 0) return 1;
    /* HEAD is GET without the body; MHD drops the body for us. */
    return strcmp(method, "HEAD") == 0 && strcmp(rt->method, "GET") == 0;
}

/* Best route for method+path; *path_seen tells 405 from 404 when NULL. */
static const struct route *find_route(const vg_httpd_t *h, const char *method, const char *path,
                                      int *path_seen)
{
    const struct route *best = NULL;
    size_t best_score = 0;
    *path_seen = 0;
    for (size_t i = 0; i < h->nroutes; i++) {
        const struct route *rt = &h->routes[i];
        if (!path_match(rt, path)) continue;
        *path_seen = 1;
        size_t score = rt->prefix ? rt->plen + 1 : SIZE_MAX;
        if (method_match(rt, method) && (!best || score > best_score)) {
            best = rt;
            best_score = score;
        }
    }
    return best;
}

/* "GET, POST" for the routes that serve path, into buf. */
static void allow_list(const vg_httpd_t *h, const char *path, char *buf, size_t n)
{
    size_t o = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < h->nroutes; i++) {
        const struct route *rt = &h->routes[i];
        if (!rt->method || !path_match(rt, path)) continue;
        int dup = 0;
        for (size_t j = 0; j < i && !dup; j++)
            dup = h->routes[j].method && path_match(&h->routes[j], path) &&
                  strcmp(h->routes[j].method, rt->method) == 0;
        if (dup) continue;
        int w = snprintf(buf + o, n - o, "%s%s", o ? ", " : "", rt->method);
        if (w < 0 || (size_t)w >= n - o) break;
        o += (size_t)w;
    }
}

/* ---- request accessors ---- */

const char *vg_http_req_method(const vg_http_req *r)
{
    return r->method;
}

const char *vg_http_req_path(const vg_http_req *r)
{
    return r->path;
}

const char *vg_http_req_header(const vg_http_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

static int arg_is(const vg_http_arg *a, const char *name, size_t nlen)
{
    return a->name_len == nlen && memcmp(a->name, name, nlen) == 0;
}

const char *vg_http_req_arg(const vg_http_req *r, const char *name)
{
    size_t nlen = strlen(name);
    for (size_t i = 0; i < r->args.n; i++)
        if (arg_is(&r->args.v[i], name, nlen)) return r->args.v[i].value;
    return NULL;
}

size_t vg_http_req_args(const vg_http_req *r, const char *name, const char **vals, size_t max)
{
    size_t nlen = strlen(name), count = 0;
    for (size_t i = 0; i < r->args.n; i++) {
        if (!arg_is(&r->args.v[i], name, nlen)) continue;
        if (vals && count < max) vals[count] = r->args.v[i].value;
        count++;
    }
    return count;
}

const uint8_t *vg_http_req_body(const vg_http_req *r, size_t *len)
{
    if (len) *len = r->body.len;
    return r->body.data ? (const uint8_t *)r->body.data : (const uint8_t *)"";
}

/* ---- response helpers ---- */

static void copy_header_text(char *dst, size_t n, const char *src)
{
    snprintf(dst, n, "%s", src ? src : "");
    for (char *p = dst; *p; p++)
        if (*p == '\r' || *p == '\n') *p = ' '; /* no header injection */
}

void vg_http_resp_header(vg_http_resp *resp, const char *name, const char *value)
{
    if (resp->nheaders >= (int)(sizeof(resp->headers) / sizeof(resp->headers[0]))) {
        vg_log_warn(COMP, "too many response headers, dropped one", "name=%s", name);
        return;
    }
    struct vg_http_hdr *hd = &resp->headers[resp->nheaders++];
    copy_header_text(hd->name, sizeof(hd->name), name);
    copy_header_text(hd->value, sizeof(hd->value), value);
}

void vg_http_resp_text(vg_http_resp *resp, int status, const char *fmt, ...)
{
    va_list ap;
    resp->status = status;
    resp->content_type = DEFAULT_CTYPE;
    vg_buf_reset(&resp->body);
    va_start(ap, fmt);
    vg_buf_vprintf(&resp->body, fmt, ap);
    va_end(ap);
}

static void resp_init(vg_http_resp *resp)
{
    memset(resp, 0, sizeof(*resp));
    resp->status = 200;
    vg_buf_init(&resp->body, 0);
}

static int has_header(const vg_http_resp *resp, const char *name)
{
    for (int i = 0; i < resp->nheaders; i++)
        if (strcasecmp(resp->headers[i].name, name) == 0) return 1;
    return 0;
}

static void add_headers(struct MHD_Response *mr, const vg_http_resp *resp)
{
    if (!has_header(resp, "Content-Type"))
        MHD_add_response_header(mr, MHD_HTTP_HEADER_CONTENT_TYPE,
                                resp->content_type ? resp->content_type : DEFAULT_CTYPE);
    for (int i = 0; i < resp->nheaders; i++) {
        const struct vg_http_hdr *hd = &resp->headers[i];
        if (MHD_add_response_header(mr, hd->name, hd->value) != MHD_YES)
            vg_log_warn(COMP, "response header rejected", "name=%s", hd->name);
    }
}

/* Queue resp on conn; the body memory moves to MHD (freed with vg_free). */
static enum MHD_Result send_resp(struct MHD_Connection *conn, vg_http_resp *resp)
{
    size_t len = 0;
    char *data = vg_buf_steal(&resp->body, &len);
    struct MHD_Response *mr =
        MHD_create_response_from_buffer_with_free_callback(len, data, vg_free);
    if (!mr) {
        vg_free(data);
        return MHD_NO;
    }
    add_headers(mr, resp);
    enum MHD_Result rc = MHD_queue_response(conn, (unsigned)resp->status, mr);
    MHD_destroy_response(mr);
    return rc;
}

static enum MHD_Result reply_text(struct MHD_Connection *conn, int status, const char *text)
{
    vg_http_resp resp;
    resp_init(&resp);
    vg_http_resp_text(&resp, status, "%s", text);
    if (status == 413) vg_http_resp_header(&resp, "Connection", "close");
    return send_resp(conn, &resp);
}

/* ---- request processing ---- */

static int is_form(const struct vg_http_req *r)
{
    if (strcmp(r->method, "POST") && strcmp(r->method, "PUT") && strcmp(r->method, "PATCH"))
        return 0;
    const char *ct = vg_http_req_header(r, MHD_HTTP_HEADER_CONTENT_TYPE);
    size_t n = strlen(FORM_CTYPE);
    return ct && strncasecmp(ct, FORM_CTYPE, n) == 0 &&
           (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

/* Decode form-body then query arguments (Go's order: the body wins in r.Form). */
static vg_err_t parse_req_args(struct vg_http_req *r)
{
    int form = is_form(r) && r->body.len > 0;
    if (!r->query && !form) return VG_OK;
    r->arena = vg_arena_new(4096);
    if (!r->arena) return VG_ENOMEM;
    vg_err_t rc = VG_OK;
    if (form) rc = vg_http_parse_args(r->arena, r->body.data, r->body.len, &r->args);
    if (!rc && r->query) rc = vg_http_parse_args(r->arena, r->query, strlen(r->query), &r->args);
    return rc;
}

static void call_route(vg_httpd_t *h, struct vg_http_req *r, vg_http_resp *resp)
{
    int path_seen;
    const struct route *rt = find_route(h, r->method, r->path, &path_seen);
    if (!rt && !path_seen) {
        vg_http_resp_text(resp, 404, "404 page not found\n");
        return;
    }
    if (!rt) {
        char allow[256];
        allow_list(h, r->path, allow, sizeof(allow));
        vg_http_resp_text(resp, 405, "method %s not allowed for %s\n", r->method, r->path);
        vg_http_resp_header(resp, "Allow", allow);
        return;
    }
    rt->fn(rt->ud, r, resp);
    if (resp->status < 100 || resp->status > 999) {
        vg_log_error(COMP, "handler returned no status", "path=%s status=%d", r->path,
                     resp->status);
        if (resp->body.len == 0) vg_http_resp_text(resp, 500, "internal server error\n");
        resp->status = 500;
    }
}

static void handle(vg_httpd_t *h, struct vg_http_req *r, vg_http_resp *resp)
{
    if (r->body_err == VG_ETOOLARGE) {
        vg_http_resp_text(resp, 413, "request body larger than %zu bytes\n", h->opts.max_body);
        vg_http_resp_header(resp, "Connection", "close");
        return;
    }
    vg_err_t rc = r->body_err ? r->body_err : parse_req_args(r);
    if (rc == VG_ETOOLARGE) {
        vg_http_resp_text(resp, 400, "more than %d query or form arguments\n", VG_HTTP_MAX_ARGS);
    } else if (rc) {
        vg_http_resp_text(resp, 503, "out of memory, retry later\n");
    } else {
        call_route(h, r, resp);
    }
}

static unsigned long long content_length(struct MHD_Connection *conn)
{
    const char *v =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    return v ? strtoull(v, NULL, 10) : 0;
}

static int expects_continue(struct MHD_Connection *conn)
{
    const char *v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_EXPECT);
    return v && strcasecmp(v, "100-continue") == 0;
}

/* First call: headers are in, no body yet. Refuse a announced oversize body
 * early only when the client waits for 100 Continue, so nothing is in flight. */
static enum MHD_Result on_headers(vg_httpd_t *h, struct vg_http_req *r, struct MHD_Connection *conn)
{
    r->started = 1;
    r->conn = conn;
    if (expects_continue(conn) && content_length(conn) > h->opts.max_body) {
        char msg[96];
        snprintf(msg, sizeof(msg), "request body larger than %zu bytes\n", h->opts.max_body);
        return reply_text(conn, 413, msg);
    }
    return MHD_YES;
}

static void on_body(struct vg_http_req *r, const char *data, size_t n)
{
    if (r->body_err) return; /* past the cap: read and drop */
    r->body_err = vg_buf_append(&r->body, data, n);
    if (r->body_err) vg_buf_free(&r->body);
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *data,
                                 size_t *data_size, void **con_cls)
{
    vg_httpd_t *h = cls;
    struct vg_http_req *r = *con_cls;
    if (!r) return reply_text(conn, 503, "out of memory, retry later\n");
    if (!r->started) return on_headers(h, r, conn);
    if (*data_size) {
        on_body(r, data, *data_size);
        *data_size = 0;
        return MHD_YES;
    }
    r->method = method;
    r->path = url;
    vg_http_resp resp;
    resp_init(&resp);
    handle(h, r, &resp);
    return send_resp(conn, &resp);
}

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    vg_httpd_t *h = cls;
    struct vg_http_req *r = vg_calloc(1, sizeof(*r));
    if (!r) return NULL;
    r->h = h;
    vg_buf_init(&r->body, h->opts.max_body);
    const char *q = strchr(uri, '?');
    if (q && q[1] && q[1] != '#') {
        r->query = vg_strndup(q + 1, strcspn(q + 1, "#"));
        if (!r->query) {
            vg_free(r);
            return NULL;
        }
    }
    return r;
}

static void req_free(struct vg_http_req *r)
{
    if (!r) return;
    vg_buf_free(&r->body);
    vg_free(r->query);
    vg_arena_free(r->arena);
    vg_free(r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    req_free(*con_cls);
    *con_cls = NULL;
}

/* ---- start and stop ---- */

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    vg_httpd_t *h = cls;
    char line[256], q[300];
    vsnprintf(line, sizeof(line), fmt, ap);
    line[strcspn(line, "\r\n")] = '\0';
    pthread_mutex_lock(&h->log_mu);
    snprintf(h->lastlog, sizeof(h->lastlog), "%s", line);
    pthread_mutex_unlock(&h->log_mu);
    vg_log_warn(COMP, "libmicrohttpd", "detail=%s", vg_logq(q, sizeof(q), line));
}

/* Split "host:port" / "[v6]:port" / ":port" into host and port strings. */
static vg_err_t split_listen(const char *listen, char *host, size_t hn, char *port, size_t pn)
{
    const char *colon = strrchr(listen, ':');
    if (!colon || !colon[1] || strspn(colon + 1, "0123456789") != strlen(colon + 1) ||
        strlen(colon + 1) > 5 || atoi(colon + 1) > 65535)
        return VG_EINVAL;
    const char *hs = listen, *he = colon;
    if (*hs == '[' && he > hs && he[-1] == ']') hs++, he--;
    if ((size_t)(he - hs) >= hn) return VG_EINVAL;
    memcpy(host, hs, (size_t)(he - hs));
    host[he - hs] = '\0';
    if (!host[0]) snprintf(host, hn, "0.0.0.0");
    snprintf(port, pn, "%s", colon + 1);
    return VG_OK;
}

static vg_err_t resolve_listen(const char *listen, struct sockaddr_storage *ss, vg_error *err)
{
    char host[256], port[8];
    if (split_listen(listen, host, sizeof(host), port, sizeof(port)) != VG_OK)
        return vg_error_set(err, VG_ECONFIG,
                            "httpd: listen address '%s' is not host:port (e.g. 127.0.0.1:9400)",
                            listen);
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(host, port, &hints, &res);
    if (gai != 0 || !res)
        return vg_error_set(err, VG_ECONFIG, "httpd: cannot resolve listen host '%s': %s", host,
                            gai_strerror(gai));
    memset(ss, 0, sizeof(*ss));
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    return VG_OK;
}

static void ignore_sigpipe_once(void)
{
    /* A peer that goes away mid-write must not kill the process; keep any
     * handler the program installed itself. */
    struct sigaction old;
    if (sigaction(SIGPIPE, NULL, &old) == 0 && old.sa_handler == SIG_DFL) {
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = SIG_IGN;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGPIPE, &sa, NULL);
    }
}

static struct MHD_Daemon *start_daemon(vg_httpd_t *h, const struct sockaddr_storage *ss)
{
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    if (MHD_is_feature_supported(MHD_FEATURE_EPOLL) == MHD_YES) flags |= MHD_USE_EPOLL;
    if (ss->ss_family == AF_INET6) flags |= MHD_USE_IPv6;
    uint16_t port = ntohs(ss->ss_family == AF_INET6 ? ((const struct sockaddr_in6 *)ss)->sin6_port
                                                    : ((const struct sockaddr_in *)ss)->sin_port);
    /* A pool of one is just the polling thread; MHD warns if asked for it. */
    struct MHD_OptionItem pool[] = {
        {MHD_OPTION_THREAD_POOL_SIZE, (intptr_t)h->opts.threads, NULL},
        {MHD_OPTION_END, 0, NULL},
    };
    if (h->opts.threads <= 1) pool[0].option = MHD_OPTION_END;
    return MHD_start_daemon(flags, port, NULL, NULL, on_access, h, MHD_OPTION_EXTERNAL_LOGGER,
                            on_mhd_log, h, MHD_OPTION_ARRAY, pool, MHD_OPTION_CONNECTION_TIMEOUT,
                            (unsigned int)h->opts.timeout_s, MHD_OPTION_SOCK_ADDR,
                            (const struct sockaddr *)ss, MHD_OPTION_URI_LOG_CALLBACK, on_uri, h,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, h, MHD_OPTION_END);
}

static uint16_t bound_port(struct MHD_Daemon *d)
{
    const union MHD_DaemonInfo *i = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    if (i && i->port) return i->port;
    i = MHD_get_daemon_info(d, MHD_DAEMON_INFO_LISTEN_FD);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (!i || getsockname(i->listen_fd, (struct sockaddr *)&ss, &sl) != 0) return 0;
    if (ss.ss_family == AF_INET) return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6) return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return 0;
}

vg_err_t vg_httpd_start(vg_httpd_t *h, vg_error *err)
{
    static pthread_once_t sigpipe_once = PTHREAD_ONCE_INIT;
    struct sockaddr_storage ss;
    if (!h) return vg_error_set(err, VG_EINVAL, "httpd: no server");
    if (h->d) return vg_error_set(err, VG_EINVAL, "httpd: %s already started", h->listen);
    vg_err_t rc = resolve_listen(h->listen, &ss, err);
    if (rc) return rc;
    pthread_once(&sigpipe_once, ignore_sigpipe_once);
    h->lastlog[0] = '\0';
    h->d = start_daemon(h, &ss);
    if (!h->d)
        return vg_error_set(err, VG_EIO, "httpd: cannot listen on %s: %s (is the port in use?)",
                            h->listen, h->lastlog[0] ? h->lastlog : "libmicrohttpd failed");
    h->port = bound_port(h->d);
    vg_log_info(COMP, "listening", "listen=%s port=%u threads=%u", h->listen, (unsigned)h->port,
                h->opts.threads);
    return VG_OK;
}

uint16_t vg_httpd_port(const vg_httpd_t *h)
{
    return h && h->d ? h->port : 0;
}

void vg_httpd_free(vg_httpd_t *h)
{
    if (!h) return;
    if (h->d) MHD_stop_daemon(h->d);
    for (size_t i = 0; i < h->nroutes; i++) route_clear(&h->routes[i]);
    vg_free(h->routes);
    vg_free(h->listen);
    pthread_mutex_destroy(&h->log_mu);
    vg_free(h);
}
