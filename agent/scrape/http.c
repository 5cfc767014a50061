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
 * DNS cache: libcurl 7.88 walks its whole DNS cache (one entry per
 * host:port) at the end of every transfer to prune old entries, which with
 * a few hundred targets was ~3% of the agent's CPU in agent_vs_vmagent. A
 * target whose host is an IP literal never needs a fresh answer, so its
 * handle caches forever (-1: no prune walk, no staleness check), and the
 * loop lets one such scrape a minute prune with curl's default timeout so
 * entries of vanished targets still go. Host names keep the default.
 */
#include <arpa/inet.h>
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
/* curl's default DNS cache timeout, used by the scrapes that prune. */
#define VG_SCRAPE_DNS_CACHE_S 60L

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

/* Is the host of host:port (or [v6]:port) an IP address? */
static int ip_literal(const char *address)
{
    char host[64];
    const char *end = strrchr(address, ':');
    size_t n = end ? (size_t)(end - address) : strlen(address);
    if (n >= 2 && address[0] == '[' && address[n - 1] == ']') {
        unsigned char a6[16];
        if (n - 2 >= sizeof host) return 0;
        memcpy(host, address + 1, n - 2);
        host[n - 2] = '\0';
        return inet_pton(AF_INET6, host, a6) == 1;
    }
    unsigned char a4[4];
    if (n >= sizeof host) return 0;
    memcpy(host, address, n);
    host[n] = '\0';
    return inet_pton(AF_INET, host, a4) == 1;
}

void vg_scrape_http_dns_policy(vg_scrape_target_t *t, int prune)
{
    long tmo = prune ? VG_SCRAPE_DNS_CACHE_S : -1L;
    if (!t->dns_pinned || tmo == t->dns_tmo) return;
    if (curl_easy_setopt(t->easy, CURLOPT_DNS_CACHE_TIMEOUT, tmo) == CURLE_OK) t->dns_tmo = tmo;
}

vg_err_t vg_scrape_http_setup(vg_scrape_target_t *t, curl_write_callback write_cb)
{
    const vg_scrape_auth_t *a = &t->sc->auth;
    CURL *e = t->easy = curl_easy_init();
    if (!e) return VG_ENOMEM;
    const char *url;
    char *owned = NULL;
    vg_err_t rc = route_server_name(t, &url, &owned);
    if (!rc && (setup_fixed(t, e, url, write_cb) | setup_tls(e, a) | setup_basic(e, a)))
        rc = VG_EINTERNAL;
    vg_free(owned); /* curl copies string options */
    if (!rc) rc = build_headers(t, a->credentials_file ? NULL : a->credentials);
    t->dns_pinned = t->address && ip_literal(t->address);
    t->dns_tmo = VG_SCRAPE_DNS_CACHE_S;
    if (!rc) vg_scrape_http_dns_policy(t, 0);
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
    curl_slist_free_all(t->headers);
    curl_slist_free_all(t->connect_to);
    t->headers = t->connect_to = NULL;
}
