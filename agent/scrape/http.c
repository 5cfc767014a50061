/*
 * http.c - a target's libcurl easy handle: headers, auth, TLS.
 *
 * Each target keeps one easy handle for its life, so everything that does
 * not change between scrapes is set once here. Secrets only ever travel
 * through curl options and header lists, never through the URL, the error
 * buffer or a log line. password_file and credentials_file are read again
 * before each scrape (as Prometheus does), so a rotated secret is picked up
 * without a restart; the file is small and local, read with a cap.
 *
 * tls_config.server_name: curl verifies the certificate and sends SNI for
 * the host in the URL, so the request URL names server_name and
 * CURLOPT_CONNECT_TO sends the connection to the real address; a Host
 * header keeps the target's own address, as a Prometheus scrape would send.
 * (CURLOPT_RESOLVE would need the address already resolved to an IP.)
 *
 * Each handle has its own CURLSH holding its connection cache and its DNS
 * cache. With the multi handle's shared caches, libcurl 7.88 walked every
 * target's entry on every transfer: the DNS cache prune at the end of each
 * transfer, the connect-only sweep in curl_multi_remove_handle, and the
 * once-a-second liveness check (a poll per idle connection) of the dead
 * connection prune, together ~5% of the agent's CPU with 200 targets in
 * agent_vs_vmagent. Per target they see one entry each; a target still keeps
 * its connection between scrapes, and DNS answers still expire after
 * curl's default 60 s.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "scrape/scrape_int.h"
#include "vigil/alloc.h"

#define SECRET_FILE_MAX 65536
/* curl's receive buffer. The default 16 KiB takes a dozen recv calls, each
 * followed by a readiness poll, for a 200 KB body; 128 KiB takes one or two.
 * In the agent_vs_vmagent bench peak RSS did not move (curl's buffer is only
 * touched while a transfer runs, and only a few run at a time). */
#define VG_SCRAPE_RECV_BUF 131072L
/* Seconds as Go's FormatFloat(s, 'f', -1, 64) prints them: "10", "0.5". */
static void format_seconds(char *out, size_t n, int64_t ms)
{
    int len = snprintf(out, n, "%lld.%03lld", (long long)(ms / 1000), (long long)(ms % 1000));
    while (len > 0 && out[len - 1] == '0') out[--len] = '\0';
    if (len > 0 && out[len - 1] == '.') out[--len] = '\0';
}

static int append_header(struct curl_slist **l, const char *h)
{
    struct curl_slist *n = curl_slist_append(*l, h);
    if (!n) return 0;
    *l = n;
    return 1;
}

/* Read a secret file, trimmed of surrounding white space like Go's
 * strings.TrimSpace. Returns a vg_malloc'd string or NULL (errno set). */
static char *read_secret(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = vg_malloc(SECRET_FILE_MAX + 1);
    size_t n = buf ? fread(buf, 1, SECRET_FILE_MAX + 1, f) : 0;
    int bad = !buf || ferror(f) || n > SECRET_FILE_MAX;
    fclose(f);
    if (bad) {
        vg_free(buf);
        errno = buf ? EFBIG : ENOMEM;
        return NULL;
    }
    while (n && strchr(" \t\r\n", buf[n - 1])) n--;
    buf[n] = '\0';
    size_t lead = strspn(buf, " \t\r\n");
    memmove(buf, buf + lead, n - lead + 1);
    return buf;
}

/* The fixed headers plus Host (server_name) and Authorization. */
static vg_err_t build_headers(vg_scrape_target_t *t, const char *credentials)
{
    const vg_scrape_auth_t *a = &t->sc->auth;
    char tmo[32], hdr[96];
    curl_slist_free_all(t->headers);
    t->headers = NULL;
    format_seconds(tmo, sizeof tmo, t->timeout_ms);
    snprintf(hdr, sizeof hdr, "X-Prometheus-Scrape-Timeout-Seconds: %s", tmo);
    if (!append_header(&t->headers, "Accept: " VG_SCRAPE_ACCEPT) ||
        !append_header(&t->headers, "Expect:") || !append_header(&t->headers, hdr))
        return VG_ENOMEM;
    if (t->connect_to) {
        char *h = vg_malloc(strlen(t->address) + 8);
        if (!h) return VG_ENOMEM;
        sprintf(h, "Host: %s", t->address);
        int ok = append_header(&t->headers, h);
        vg_free(h);
        if (!ok) return VG_ENOMEM;
    }
    if (credentials && *credentials) {
        size_t n = strlen(a->auth_type) + strlen(credentials) + 32;
        char *h = vg_malloc(n);
        if (!h) return VG_ENOMEM;
        snprintf(h, n, "Authorization: %s %s", a->auth_type, credentials);
        int ok = append_header(&t->headers, h);
        memset(h, 0, n); /* do not leave the secret in freed memory */
        vg_free(h);
        if (!ok) return VG_ENOMEM;
    }
    return curl_easy_setopt(t->easy, CURLOPT_HTTPHEADER, t->headers) == CURLE_OK ? VG_OK
                                                                                 : VG_EINTERNAL;
}

/* server_name: request https://server_name:port/..., connect to the address. */
static vg_err_t route_server_name(vg_scrape_target_t *t, const char **req_url, char **owned)
{
    const char *sn = t->sc->auth.server_name;
    *req_url = t->url;
    *owned = NULL;
    if (!sn || !*sn || strcmp(t->scheme, "https")) return VG_OK;
    const char *colon = strrchr(t->address, ':');
    const char *rest = t->url + strlen(t->scheme) + 3 + strlen(t->address);
    size_t hl = (size_t)(colon - t->address);
    size_t n = strlen(sn) + strlen(t->url) + strlen(t->address) + 32;
    char *map = vg_malloc(n), *url = vg_malloc(n);
    if (!map || !url) {
        vg_free(map);
        vg_free(url);
        return VG_ENOMEM;
    }
    snprintf(map, n, "%s%s:%.*s%s", sn, colon, (int)hl, t->address, colon);
    snprintf(url, n, "https://%s%s%s", sn, colon, rest);
    struct curl_slist *l = curl_slist_append(NULL, map);
    vg_free(map);
    if (!l) {
        vg_free(url);
        return VG_ENOMEM;
    }
    t->connect_to = l;
    *req_url = *owned = url;
    return curl_easy_setopt(t->easy, CURLOPT_CONNECT_TO, l) == CURLE_OK ? VG_OK : VG_EINTERNAL;
}

static int setup_tls(CURL *e, const vg_scrape_auth_t *a)
{
    int bad = 0;
    if (a->ca_file && *a->ca_file) bad |= curl_easy_setopt(e, CURLOPT_CAINFO, a->ca_file) != 0;
    if (a->cert_file && *a->cert_file)
        bad |= curl_easy_setopt(e, CURLOPT_SSLCERT, a->cert_file) != 0;
    if (a->key_file && *a->key_file) bad |= curl_easy_setopt(e, CURLOPT_SSLKEY, a->key_file) != 0;
    if (a->insecure_skip_verify) {
        bad |= curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L) != 0;
        bad |= curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L) != 0;
    }
    return bad;
}

static int setup_basic(CURL *e, const vg_scrape_auth_t *a)
{
    if (!a->basic) return 0;
    int bad = curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC) != 0;
    bad |= curl_easy_setopt(e, CURLOPT_USERNAME, a->username ? a->username : "") != 0;
    if (a->password) bad |= curl_easy_setopt(e, CURLOPT_PASSWORD, a->password) != 0;
    return bad;
}

static int setup_fixed(vg_scrape_target_t *t, CURL *e, const char *url, curl_write_callback cb)
{
    int bad = curl_easy_setopt(e, CURLOPT_URL, url) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "gzip") != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_USERAGENT, "vigil-agent/" VIGIL_VERSION) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)t->timeout_ms) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, cb) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_WRITEDATA, t) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_PRIVATE, t) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_BUFFERSIZE, VG_SCRAPE_RECV_BUF) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_MAXREDIRS, 10L) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https") != CURLE_OK;
    return bad;
}

/* The handle's own connection and DNS caches (see the file comment). */
static int setup_share(vg_scrape_target_t *t)
{
    t->share = curl_share_init();
    if (!t->share) return 1;
    int bad = curl_share_setopt(t->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT) != CURLSHE_OK;
    bad |= curl_share_setopt(t->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) != CURLSHE_OK;
    bad |= curl_easy_setopt(t->easy, CURLOPT_SHARE, t->share) != CURLE_OK;
    return bad;
}

vg_err_t vg_scrape_http_setup(vg_scrape_target_t *t, curl_write_callback write_cb)
{
    const vg_scrape_auth_t *a = &t->sc->auth;
    CURL *e = t->easy = curl_easy_init();
    if (!e) return VG_ENOMEM;
    const char *url;
    char *owned = NULL;
    vg_err_t rc = route_server_name(t, &url, &owned);
    if (!rc &&
        (setup_fixed(t, e, url, write_cb) | setup_tls(e, a) | setup_basic(e, a) | setup_share(t)))
        rc = VG_EINTERNAL;
    vg_free(owned); /* curl copies string options */
    if (!rc) rc = build_headers(t, a->credentials_file ? NULL : a->credentials);
    return rc;
}

vg_err_t vg_scrape_http_refresh(vg_scrape_target_t *t, char *msg, size_t msgn)
{
    const vg_scrape_auth_t *a = &t->sc->auth;
    const char *path = a->basic && a->password_file && *a->password_file ? a->password_file
                       : a->credentials_file && *a->credentials_file     ? a->credentials_file
                                                                         : NULL;
    if (!path) return VG_OK;
    char *secret = read_secret(path);
    if (!secret) {
        snprintf(msg, msgn, "unable to read %s file %s: %s",
                 a->basic ? "password" : "authorization credentials", path, strerror(errno));
        return VG_EIO;
    }
    vg_err_t rc = VG_OK;
    if (a->basic)
        rc = curl_easy_setopt(t->easy, CURLOPT_PASSWORD, secret) == CURLE_OK ? VG_OK : VG_EINTERNAL;
    else
        rc = build_headers(t, secret);
    memset(secret, 0, strlen(secret));
    vg_free(secret);
    if (rc) snprintf(msg, msgn, "cannot set up the request: %s", vg_strerror(rc));
    return rc;
}

void vg_scrape_http_cleanup(vg_scrape_target_t *t)
{
    if (t->easy) curl_easy_cleanup(t->easy);
    t->easy = NULL;
    if (t->share) curl_share_cleanup(t->share); /* closes its connection */
    t->share = NULL;
    curl_slist_free_all(t->headers);
    curl_slist_free_all(t->connect_to);
    t->headers = t->connect_to = NULL;
}
