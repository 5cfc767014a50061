/*
 * labels.c - label sets: sorting, validation, series ids, comparison, printing.
 *
 * A label set is a caller-owned array of (name, value) pointers; this module
 * never allocates for one, so sets can live in arenas, in the intern table or
 * on the stack. The series id is XXH3-64 over "name\xffvalue\xff..." (0xff
 * cannot occur in valid UTF-8, so no two different sets share a byte string).
 * Short sets are hashed from a stack buffer in one call; long ones through a
 * stack-allocated streaming state, which yields the same digest, so hashing
 * never touches the heap. Comparison and printing follow Prometheus
 * (labels.Compare and the text exposition format) so ids, ordering and output
 * agree with what users see from Prometheus itself.
 */
#define XXH_STATIC_LINKING_ONLY
#include "vigil/labels.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define HASH_STACK_BUF 1024

static int label_order(const void *pa, const void *pb)
{
    const vg_label_t *a = pa, *b = pb;
    int c = strcmp(a->name, b->name);
    return c ? c : strcmp(a->value, b->value);
}

void vg_labels_sort(vg_label_t *l, size_t n)
{
    if (n > 1) qsort(l, n, sizeof(*l), label_order);
}

static int is_alpha_(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

int vg_label_name_valid(const char *s, size_t n)
{
    if (!s || n == 0 || !is_alpha_(s[0])) return 0;
    for (size_t i = 1; i < n; i++)
        if (!is_alpha_(s[i]) && !is_digit(s[i])) return 0;
    return 1;
}

int vg_metric_name_valid(const char *s, size_t n)
{
    if (!s || n == 0 || !(is_alpha_(s[0]) || s[0] == ':')) return 0;
    for (size_t i = 1; i < n; i++)
        if (!is_alpha_(s[i]) && !is_digit(s[i]) && s[i] != ':') return 0;
    return 1;
}

/* Length of the UTF-8 sequence starting at s (at most n bytes), 0 if invalid. */
static size_t utf8_seq_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len = c < 0x80                ? 1
                 : c >= 0xc2 && c < 0xe0 ? 2
                 : c >= 0xe0 && c < 0xf0 ? 3
                 : c >= 0xf0 && c < 0xf5 ? 4
                                         : 0;
    if (len == 0 || len > n) return 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xc0) != 0x80) return 0;
    if (c == 0xe0 && s[1] < 0xa0) return 0;  /* overlong */
    if (c == 0xed && s[1] >= 0xa0) return 0; /* surrogate */
    if (c == 0xf0 && s[1] < 0x90) return 0;  /* overlong */
    if (c == 0xf4 && s[1] >= 0x90) return 0; /* > U+10FFFF */
    return len;
}

static int utf8_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    while (n) {
        size_t k = utf8_seq_len(p, n);
        if (!k) return 0;
        p += k;
        n -= k;
    }
    return 1;
}

static vg_err_t check_label(const vg_label_t *l, vg_error *err)
{
    if (!l->name || !l->value)
        return vg_error_set(err, VG_EINVAL, "label with a NULL name or value");
    if (!vg_label_name_valid(l->name, strlen(l->name)))
        return vg_error_set(err, VG_EINVAL,
                            "invalid label name \"%.64s\": must match [a-zA-Z_][a-zA-Z0-9_]*",
                            l->name);
    if (l->value[0] == '\0')
        return vg_error_set(err, VG_EINVAL, "label \"%s\" has an empty value; drop it instead",
                            l->name);
    if (!utf8_valid(l->value))
        return vg_error_set(err, VG_EINVAL, "label \"%s\" has a value that is not valid UTF-8",
                            l->name);
    if (strcmp(l->name, VG_METRIC_NAME) == 0 && !vg_metric_name_valid(l->value, strlen(l->value)))
        return vg_error_set(err, VG_EINVAL,
                            "invalid metric name \"%.64s\": must match [a-zA-Z_:][a-zA-Z0-9_:]*",
                            l->value);
    return VG_OK;
}

vg_err_t vg_labels_validate(const vg_label_t *l, size_t n, vg_error *err)
{
    for (size_t i = 0; i < n; i++) {
        vg_err_t rc = check_label(&l[i], err);
        if (rc) return rc;
        if (i == 0) continue;
        int c = strcmp(l[i - 1].name, l[i].name);
        if (c == 0) return vg_error_set(err, VG_EINVAL, "duplicate label name \"%s\"", l[i].name);
        if (c > 0)
            return vg_error_set(err, VG_EINVAL,
                                "labels are not sorted: \"%s\" comes after \"%s\"; sort first",
                                l[i].name, l[i - 1].name);
    }
    return VG_OK;
}

static uint64_t hash_streaming(const vg_label_t *l, size_t n)
{
    static const char sep = '\xff';
    XXH3_state_t st;
    XXH3_INITSTATE(&st);
    XXH3_64bits_reset(&st);
    for (size_t i = 0; i < n; i++) {
        XXH3_64bits_update(&st, l[i].name, strlen(l[i].name));
        XXH3_64bits_update(&st, &sep, 1);
        XXH3_64bits_update(&st, l[i].value, strlen(l[i].value));
        XXH3_64bits_update(&st, &sep, 1);
    }
    return XXH3_64bits_digest(&st);
}

uint64_t vg_labels_hash(const vg_label_t *l, size_t n)
{
    char buf[HASH_STACK_BUF];
    size_t used = 0;
    for (size_t i = 0; i < n; i++) {
        size_t nl = strlen(l[i].name), vl = strlen(l[i].value);
        if (nl + vl + 2 > sizeof(buf) - used) return hash_streaming(l, n);
        memcpy(buf + used, l[i].name, nl);
        used += nl;
        buf[used++] = '\xff';
        memcpy(buf + used, l[i].value, vl);
        used += vl;
        buf[used++] = '\xff';
    }
    return XXH3_64bits(buf, used);
}

static int sign(int c)
{
    return (c > 0) - (c < 0);
}

int vg_labels_cmp(const vg_label_t *a, size_t na, const vg_label_t *b, size_t nb)
{
    for (size_t i = 0; i < na && i < nb; i++) {
        int c = strcmp(a[i].name, b[i].name);
        if (c) return sign(c);
        c = strcmp(a[i].value, b[i].value);
        if (c) return sign(c);
    }
    return (na > nb) - (na < nb);
}

const char *vg_labels_get(const vg_label_t *l, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(l[i].name, name) == 0) return l[i].value;
    return NULL;
}

/* Append s with the exposition format's escapes for label values. */
static vg_err_t put_escaped(vg_buf *buf, const char *s)
{
    vg_err_t rc = VG_OK;
    while (*s && !rc) {
        size_t run = strcspn(s, "\\\"\n");
        rc = vg_buf_append(buf, s, run);
        s += run;
        if (rc || !*s) break;
        rc = vg_buf_append(buf, *s == '\n' ? "\\n" : *s == '"' ? "\\\"" : "\\\\", 2);
        s++;
    }
    return rc;
}

vg_err_t vg_labels_format(const vg_label_t *l, size_t n, vg_buf *buf)
{
    const char *name = vg_labels_get(l, n, VG_METRIC_NAME);
    vg_err_t rc = name ? vg_buf_puts(buf, name) : VG_OK;
    size_t others = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        if (strcmp(l[i].name, VG_METRIC_NAME) == 0) continue;
        rc = vg_buf_putc(buf, others++ ? ',' : '{');
        if (!rc) rc = vg_buf_puts(buf, l[i].name);
        if (!rc) rc = vg_buf_append(buf, "=\"", 2);
        if (!rc) rc = put_escaped(buf, l[i].value);
        if (!rc) rc = vg_buf_putc(buf, '"');
    }
    if (rc) return rc;
    if (others) return vg_buf_putc(buf, '}');
    return name ? VG_OK : vg_buf_append(buf, "{}", 2);
}
