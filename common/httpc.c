/*
 * httpc.c - blocking HTTP client on one libcurl easy handle.
 *
 * One easy handle per vg_httpc_t, reset (not recreated) between calls:
 * curl_easy_reset keeps the connection cache, so consecutive requests to the
 * same collector reuse one TCP connection. curl_global_init is not
 * thread-safe, so it runs once under pthread_once. NOSIGNAL is set because
 * libcurl otherwise uses SIGALRM for DNS timeouts, which is unsafe in a
 * threaded process. The response is read into a capped buffer and an
 * oversize answer aborts the transfer with VG_ETOOLARGE rather than eating
 * memory. Error messages never carry the URL's user:password or query, since
 * callers log them.
 */
#include "vigil/httpc.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "vigil/alloc.h"

#define DEFAULT_TIMEOUT_MS   10000L
#define DEFAULT_MAX_RESPONSE ((size_t)16 << 20)

struct vg_httpc {
    CURL *curl;
    char errbuf[CURL_ERROR_SIZE];
};

/* Per-call state seen by the write callback. */
struct sink {
    vg_buf *out; /* may be NULL: count and drop */
    size_t got, max;
    int too_large;
    int nomem;
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_FAILED_INIT;

static void global_init(void)
{
    global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

vg_httpc_t *vg_httpc_new(void)
{
    pthread_once(&global_once, global_init);
    if (global_rc != CURLE_OK) return NULL;
    vg_httpc_t *c = vg_calloc(1, sizeof(*c));
    if (!c) return NULL;
    c->curl = curl_easy_init();
    if (!c->curl) {
        vg_free(c);
        return NULL;
    }
    return c;
}

void vg_httpc_free(vg_httpc_t *c)
{
    if (!c) return;
    if (c->curl) curl_easy_cleanup(c->curl);
    vg_free(c);
}

static size_t on_write(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct sink *s = ud;
    size_t n = size * nmemb;
    if (n > s->max - s->got) {
        s->too_large = 1;
        return 0; /* makes curl fail with CURLE_WRITE_ERROR */
    }
    vg_err_t rc = s->out ? vg_buf_append(s->out, ptr, n) : VG_OK;
    if (rc) {
        /* the caller's buffer may carry a smaller cap of its own */
        s->too_large = rc == VG_ETOOLARGE;
        s->nomem = rc != VG_ETOOLARGE;
        return 0;
    }
    s->got += n;
    return n;
}

struct hsink {
    vg_buf *out;
    size_t max;
    int too_large;
};

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct hsink *h = ud;
    size_t n = size * nmemb;
    /* A new status line starts a new response (after 100 Continue). */
    if (n >= 5 && memcmp(ptr, "HTTP/", 5) == 0) vg_buf_reset(h->out);
    if (n > h->max - h->out->len || vg_buf_append(h->out, ptr, n) != VG_OK) {
        h->too_large = 1;
        return 0;
    }
    return n;
}

static const char *trim_end(const char *b, const char *e)
{
    while (e > b && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n')) e--;
    return e;
}

int vg_httpc_header(const vg_buf *headers, const char *name, char *val, size_t n)
{
    size_t nlen = strlen(name);
    const char *p = headers && headers->data ? headers->data : "";
    while (*p) {
        const char *eol = strchr(p, '\n');
        const char *end = eol ? eol : p + strlen(p);
        if ((size_t)(end - p) > nlen && p[nlen] == ':' && strncasecmp(p, name, nlen) == 0) {
            const char *v = p + nlen + 1;
            while (v < end && (*v == ' ' || *v == '\t')) v++;
            const char *ve = trim_end(v, end);
            if (n) snprintf(val, n, "%.*s", (int)(ve - v), v);
            return 1;
        }
        p = eol ? eol + 1 : end;
    }
    return 0;
}

/* scheme://host[:port]/path of url, without user:password@ and ?query. */
static void safe_url(const char *url, char *buf, size_t n)
{
    const char *scheme_end = strstr(url, "://");
    const char *host = scheme_end ? scheme_end + 3 : url;
    size_t hostlen = strcspn(host, "/?#");
    const char *at = memchr(host, '@', hostlen);
    const char *rest = host + hostlen;
    size_t pathlen = strcspn(rest, "?#");
    if (at) hostlen -= (size_t)(at + 1 - host), host = at + 1;
    snprintf(buf, n, "%.*s%.*s%.*s", (int)(scheme_end ? scheme_end + 3 - url : 0), url,
             (int)hostlen, host, (int)pathlen, rest);
}

static const char *pick_method(const vg_httpc_req *req)
{
    if (req->method) return req->method;
    return req->body ? "POST" : "GET";
}

static void set_method(CURL *h, const vg_httpc_req *req)
{
    const char *m = pick_method(req);
    if (req->body || strcmp(m, "POST") == 0 || strcmp(m, "PUT") == 0 || strcmp(m, "PATCH") == 0) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->body ? (const char *)req->body : "");
    }
    if (strcmp(m, "HEAD") == 0)
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    else if (strcmp(m, "GET") != 0 && strcmp(m, "POST") != 0)
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, m);
}

static vg_err_t build_headers(const vg_httpc_req *req, struct curl_slist **out)
{
    *out = NULL;
    for (const char *const *p = req->headers; p && *p; p++) {
        struct curl_slist *n = curl_slist_append(*out, *p);
        if (!n) {
            curl_slist_free_all(*out);
            *out = NULL;
            return VG_ENOMEM;
        }
        *out = n;
    }
    return VG_OK;
}

static void set_options(vg_httpc_t *c, const vg_httpc_req *req, struct curl_slist *hdrs,
                        struct sink *s, struct hsink *hs)
{
    CURL *h = c->curl;
    long timeout = req->timeout_ms > 0 ? req->timeout_ms : DEFAULT_TIMEOUT_MS;
    curl_easy_reset(h);
    c->errbuf[0] = '\0';
    curl_easy_setopt(h, CURLOPT_URL, req->url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, c->errbuf);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout);
    curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    curl_easy_setopt(h, CURLOPT_USERAGENT, "vigil/" VIGIL_VERSION);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, s);
    if (hdrs) curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    if (hs->out) {
        curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(h, CURLOPT_HEADERDATA, hs);
    }
    set_method(h, req);
}

/* Map a failed transfer to a code and a message naming method and URL. */
static vg_err_t transfer_error(vg_httpc_t *c, const vg_httpc_req *req, CURLcode cc,
                               const struct sink *s, const struct hsink *hs, vg_error *err)
{
    char url[512];
    safe_url(req->url, url, sizeof(url));
    const char *m = pick_method(req);
    if (s->too_large)
        return vg_error_set(err, VG_ETOOLARGE, "%s %s: response larger than %zu bytes", m, url,
                            s->max);
    if (hs->too_large)
        return vg_error_set(err, VG_ETOOLARGE, "%s %s: response headers larger than %zu bytes", m,
                            url, hs->max);
    if (s->nomem || cc == CURLE_OUT_OF_MEMORY)
        return vg_error_set(err, VG_ENOMEM, "%s %s: out of memory", m, url);
    const char *why = c->errbuf[0] ? c->errbuf : curl_easy_strerror(cc);
    if (cc == CURLE_URL_MALFORMAT || cc == CURLE_UNSUPPORTED_PROTOCOL)
        return vg_error_set(err, VG_EINVAL, "%s %s: bad URL: %s", m, url, why);
    return vg_error_set(err, VG_ERETRY, "%s %s: %s", m, url, why);
}

vg_err_t vg_httpc_do(vg_httpc_t *c, const vg_httpc_req *req, int *status, vg_buf *resp,
                     vg_error *err)
{
    struct curl_slist *hdrs = NULL;
    struct sink s = {.out = resp,
                     .max = req && req->max_response ? req->max_response : DEFAULT_MAX_RESPONSE};
    struct hsink hs = {.out = req ? req->resp_headers : NULL, .max = s.max};
    if (status) *status = 0;
    if (!c || !req || !req->url) return vg_error_set(err, VG_EINVAL, "httpc: no URL");
    if (resp) vg_buf_reset(resp);
    if (hs.out) vg_buf_reset(hs.out);
    vg_err_t rc = build_headers(req, &hdrs);
    if (rc) return vg_error_set(err, rc, "httpc: out of memory building headers");
    set_options(c, req, hdrs, &s, &hs);
    CURLcode cc = curl_easy_perform(c->curl);
    if (cc != CURLE_OK) {
        rc = transfer_error(c, req, cc, &s, &hs, err);
        goto out;
    }
    long code = 0;
    curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &code);
    if (status) *status = (int)code;
out:
    /* The handle keeps pointers to hdrs and errbuf; drop them before freeing. */
    curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(hdrs);
    return rc;
}
