/*
 * fuzz_siem_syslog.c - RFC 5424 framing of stored audit lines (out_syslog.c).
 *
 * The stored line is the collector's own JSON, but the syslog output parses
 * it defensively, so any bytes must give one well-formed frame: the octet
 * count equals the message length in bytes, the header is six space-free
 * tokens, the structured data closes with every '"', '\' and ']' in a value
 * escaped, and the whole message is valid UTF-8. Nothing may crash or leak.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "siem/output.h"
#include "vigil/buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int utf8_ok(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t len = s[i] < 0x80 ? 1 : (s[i] & 0xe0) == 0xc0 ? 2 : (s[i] & 0xf0) == 0xe0 ? 3 : 4;
        if (s[i] >= 0xf8 || (s[i] >= 0x80 && s[i] < 0xc2) || i + len > n) return 0;
        for (size_t k = 1; k < len; k++)
            if ((s[i + k] & 0xc0) != 0x80) return 0;
        i += len;
    }
    return 1;
}

/* Skip one SD-ELEMENT at p; returns the byte after its ']' or NULL. */
static const char *sd_element(const char *p, const char *end)
{
    if (p >= end || *p++ != '[') return NULL;
    while (p < end && *p != ']') {
        if (*p == '"') {
            for (p++; p < end && *p != '"'; p++) {
                if (*p == ']') return NULL; /* unescaped */
                if (*p == '\\' && (++p >= end || (*p != '"' && *p != '\\' && *p != ']')))
                    return NULL;
            }
            if (p >= end) return NULL;
        }
        p++;
    }
    return p < end ? p + 1 : NULL;
}

static void check(const char *f, size_t n)
{
    char *sp = memchr(f, ' ', n);
    if (!sp || (size_t)strtoul(f, NULL, 10) != n - (size_t)(sp + 1 - f)) abort();
    const char *m = sp + 1, *end = f + n;
    if (!utf8_ok((const unsigned char *)m, (size_t)(end - m)) || *m != '<') abort();
    for (int i = 0; i < 6; i++) { /* PRI+VERSION TIMESTAMP HOSTNAME APP PROCID MSGID */
        const char *t = memchr(m, ' ', (size_t)(end - m));
        if (!t || t == m) abort();
        m = t + 1;
    }
    m = sd_element(m, end);
    if (!m || (m != end && (end - m < 4 || memcmp(m, " \xef\xbb\xbf", 4)))) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    vg_siem_output_conf c = {
        .name = "fuzz", .type = "syslog", .app_name = "vigil", .facility = data[0] % 24};
    vg_siem_rec r = {.tenant = "acme",
                     .ts_ms = (int64_t)(data[0] * 977) * 86400000 * 16 - 1000,
                     .line = (const char *)data + 1,
                     .len = size - 1};
    vg_buf b;
    vg_buf_init(&b, 1u << 24);
    if (vg_siem_syslog_frame(&c, data[0] & 1 ? "host" : NULL, &r, &b) == VG_OK)
        check(b.data, b.len);
    vg_buf_free(&b);
    return 0;
}
