/*
 * out_hec.c - the Splunk HTTP Event Collector output.
 *
 * One POST to <url>/services/collector/event per batch, the body the
 * concatenated event objects HEC accepts ({"time":<s.ms>,"host":..,
 * "source":..,"sourcetype":..,"index":..,"event":<stored record>}), with
 * `Authorization: Splunk <token>`. It drives its own libcurl easy handle
 * (not vigil/httpc) because it needs the TLS options (CA, client cert,
 * insecure_skip_verify) per output.
 *
 * Outcomes: 2xx delivered. 400 means HEC refused the events themselves (a
 * bad event stays bad however often it is sent): the batch is given up as
 * VG_EPROTO, which the forwarder logs and counts as dropped, so one bad
 * record cannot wedge the queue. Every other status (401/403 a wrong token,
 * 404 a wrong url, 429, 5xx) and every transport error is retried: those
 * are fixed on the receiver's side and the records must still arrive.
 * The token is never logged; HEC's "text" and "code" are.
 */
#include <curl/curl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "siem/output.h"
#include "siem/siem.h"
#include "vigil/alloc.h"
#include "vigil/buf.h"
#include "vigil/log.h"

typedef struct hec {
    const vg_siem_output_conf *c;
    CURL *curl;
    struct curl_slist *hdrs;
    char url[2048], host[256];
    vg_buf body, resp;
} hec;

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_FAILED_INIT;

static void curl_init(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static vg_err_t put_meta(vg_buf *b, const char *key, const char *v)
{
    if (!v) return VG_OK;
    vg_err_t rc = vg_buf_printf(b, ",\"%s\":", key);
    return rc ? rc : vg_buf_json_str(b, v, strlen(v));
}

vg_err_t vg_siem_hec_body(const vg_siem_output_conf *c, const char *host, const vg_siem_rec *recs,
                          size_t n, vg_buf *out)
{
    vg_err_t rc = VG_OK;
    for (size_t i = 0; i < n && !rc; i++) {
        int64_t t = recs[i].ts_ms;
        rc = vg_buf_printf(out, "{\"time\":%s%" PRId64 ".%03" PRId64, t < 0 ? "-" : "",
                           (t < 0 ? -t : t) / 1000, (t < 0 ? -t : t) % 1000);
        if (!rc) rc = put_meta(out, "host", host);
        if (!rc) rc = put_meta(out, "source", c->source);
        if (!rc) rc = put_meta(out, "sourcetype", c->sourcetype);
        if (!rc) rc = put_meta(out, "index", c->index);
        if (!rc) rc = vg_buf_puts(out, ",\"event\":");
        if (!rc) rc = vg_buf_append(out, recs[i].line, recs[i].len);
        if (!rc) rc = vg_buf_putc(out, '}');
    }
    return rc;
}

static size_t on_write(char *p, size_t sz, size_t nm, void *ud)
{
    vg_buf *b = ud;
    size_t n = sz * nm;
    if (b->len + n > 65536) n = b->len < 65536 ? 65536 - b->len : 0; /* keep the head */
    if (n && vg_buf_append(b, p, n)) return 0;
    return sz * nm;
}

static vg_err_t hec_setup(hec *h, vg_error *err)
{
    const vg_siem_output_conf *c = h->c;
    char auth[4200];
    size_t ul = strlen(c->url);
    while (ul && c->url[ul - 1] == '/') ul--;
    snprintf(h->url, sizeof(h->url), "%.*s/services/collector/event", (int)ul, c->url);
    snprintf(auth, sizeof(auth), "Authorization: Splunk %s", c->token);
    if (!(h->hdrs = curl_slist_append(NULL, auth)) ||
        !curl_slist_append(h->hdrs, "Content-Type: application/json"))
        return vg_error_set(err, VG_ENOMEM, "siem %s: out of memory", c->name);
    CURL *e = h->curl;
    curl_easy_setopt(e, CURLOPT_URL, h->url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h->hdrs);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(c->timeout_ms > 0 ? c->timeout_ms : 10000));
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &h->resp);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    if (c->ca_file) curl_easy_setopt(e, CURLOPT_CAINFO, c->ca_file);
    if (c->cert_file) curl_easy_setopt(e, CURLOPT_SSLCERT, c->cert_file);
    if (c->key_file) curl_easy_setopt(e, CURLOPT_SSLKEY, c->key_file);
    if (c->insecure_skip_verify) {
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    return VG_OK;
}

static void hec_close(void *state)
{
    hec *h = state;
    if (!h) return;
    if (h->curl) curl_easy_cleanup(h->curl);
    curl_slist_free_all(h->hdrs);
    vg_buf_free(&h->body), vg_buf_free(&h->resp);
    vg_free(h);
}

static vg_err_t hec_open(const vg_siem_output_conf *c, void **state, vg_error *err)
{
    if (!c->url || !c->token)
        return vg_error_set(err, VG_ECONFIG, "siem %s: splunk_hec needs url and token", c->name);
    pthread_once(&curl_once, curl_init);
    if (curl_init_rc != CURLE_OK)
        return vg_error_set(err, VG_EINTERNAL, "siem %s: libcurl init failed", c->name);
    hec *h = vg_calloc(1, sizeof(*h));
    if (!h) return vg_error_set(err, VG_ENOMEM, "siem %s: out of memory", c->name);
    h->c = c;
    vg_buf_init(&h->body, 0), vg_buf_init(&h->resp, 0);
    if (gethostname(h->host, sizeof(h->host) - 1) != 0) snprintf(h->host, sizeof(h->host), "vigil");
    vg_err_t rc = (h->curl = curl_easy_init())
                      ? hec_setup(h, err)
                      : vg_error_set(err, VG_ENOMEM, "siem %s: curl handle", c->name);
    if (rc) {
        hec_close(h);
        return rc;
    }
    *state = h;
    return VG_OK;
}

/* HEC's error answer: {"text":"...","code":N}; both kept in the message. */
static vg_err_t answer_error(hec *h, long status, vg_error *err)
{
    char text[300] = "";
    int code = -1;
    const char *t = h->resp.data ? strstr(h->resp.data, "\"text\":\"") : NULL;
    const char *k = h->resp.data ? strstr(h->resp.data, "\"code\":") : NULL;
    if (t) sscanf(t + 8, "%299[^\"]", text);
    if (k) sscanf(k + 7, "%d", &code);
    vg_err_t rc = status == 400 ? VG_EPROTO : VG_ERETRY;
    return vg_error_set(err, rc, "siem %s: HEC answered %ld (text=\"%s\" code=%d)%s", h->c->name,
                        status, text, code,
                        rc == VG_EPROTO ? ": the events are refused, not retried" : "; will retry");
}

static vg_err_t hec_send(void *state, const vg_siem_rec *recs, size_t n, vg_error *err)
{
    hec *h = state;
    vg_buf_reset(&h->body), vg_buf_reset(&h->resp);
    if (vg_siem_hec_body(h->c, h->host, recs, n, &h->body))
        return vg_error_set(err, VG_ENOMEM, "siem %s: out of memory", h->c->name);
    curl_easy_setopt(h->curl, CURLOPT_POSTFIELDS, h->body.data);
    curl_easy_setopt(h->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)h->body.len);
    CURLcode cc = curl_easy_perform(h->curl);
    if (cc != CURLE_OK)
        return vg_error_set(err, VG_ERETRY, "siem %s: POST %s: %s", h->c->name, h->url,
                            curl_easy_strerror(cc));
    long status = 0;
    curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &status);
    if (status >= 200 && status < 300) return VG_OK;
    return answer_error(h, status, err);
}

const vg_siem_output_ops vg_siem_out_hec = {
    .type = "splunk_hec",
    .open = hec_open,
    .send = hec_send,
    .close = hec_close,
};
