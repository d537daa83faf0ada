/*
 * See json_fields.h. The whole text is validated (RFC 8259, a little stricter), because the
 * Python scan reports an entry msgspec can't decode as malformed: accepting text msgspec would
 * refuse would hide that. Strings, most of the bytes, are skipped sixteen bytes at a time while
 * none of them is a quote, a backslash, a control character or non-ASCII.
 */
#include "json_fields.h"

#include <stdint.h>
#include <string.h>

#if !defined(__GNUC__) && !defined(__clang__)
#define __attribute__(x) /* inlining is only a hint, measured 10% on the audit's JSON */
#endif

#define MAX_DEPTH 64
#define MAX_DIGITS 18

typedef struct Reader {
    const unsigned char *p, *end;
} Reader;

static inline void skip_ws(Reader *r) {
    while (r->p < r->end && *r->p <= ' ' &&
           (*r->p == ' ' || *r->p == '\n' || *r->p == '\r' || *r->p == '\t'))
        r->p++;
}

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* The first byte at or after p that a string can't just skip: a quote, a backslash, a control
 * character or a byte >= 0x80 (end when none). Sixteen bytes at a time where SSE2 is there
 * (all x86-64), eight otherwise. */
static inline __attribute__((always_inline)) const unsigned char *next_special(
    const unsigned char *p, const unsigned char *end) {
#if defined(__SSE2__)
    const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\'), space = _mm_set1_epi8(0x20);
    while (end - p >= 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)p);
        /* signed compare: bytes >= 0x80 are negative, so "< 0x20" catches them too */
        __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, quote), _mm_cmpeq_epi8(x, backslash)),
                                   _mm_cmplt_epi8(x, space));
        int mask = _mm_movemask_epi8(hit);
        if (mask) return p + __builtin_ctz((unsigned)mask);
        p += 16;
    }
#else
    const uint64_t ones = 0x0101010101010101ULL, high = 0x8080808080808080ULL;
    while (end - p >= 8) {
        uint64_t x, q, b;
        memcpy(&x, p, 8);
        q = x ^ (ones * '"');
        b = x ^ (ones * '\\');
        if ((((q - ones) & ~q) | ((b - ones) & ~b) | ((x - ones * 0x20) & ~x) | x) & high) break;
        p += 8;
    }
#endif
    while (p < end && *p != '"' && *p != '\\' && *p >= 0x20 && *p < 0x80) p++;
    return p;
}

static int hex(unsigned char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* One UTF-8 sequence starting at a byte >= 0x80: well formed, shortest form, no surrogate. */
static int utf8_seq(Reader *r) {
    const unsigned char *p = r->p;
    size_t left = (size_t)(r->end - p);
    unsigned char c = p[0];
    size_t need;
    unsigned char lo = 0x80, hi = 0xBF; /* the allowed range of the second byte */
    if (c < 0xC2) return 0;
    if (c < 0xE0) {
        need = 1;
    } else if (c < 0xF0) {
        need = 2;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c < 0xF5) {
        need = 3;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else {
        return 0;
    }
    if (left <= need) return 0;
    if (p[1] < lo || p[1] > hi) return 0;
    for (size_t i = 2; i <= need; i++)
        if ((p[i] & 0xC0) != 0x80) return 0;
    r->p += need + 1;
    return 1;
}

/* A string at r->p (on its opening quote); leaves r->p after the closing one. `escaped` is set
 * when it holds a backslash escape (its bytes are then not its value). */
static inline __attribute__((always_inline)) int scan_string(Reader *r, int *escaped) {
    r->p++;
    for (;;) {
        r->p = next_special(r->p, r->end);
        if (r->p >= r->end) return 0;
        unsigned char c = *r->p;
        if (c == '"') {
            r->p++;
            return 1;
        }
        if (c == '\\') {
            *escaped = 1;
            if (r->end - r->p < 2) return 0;
            unsigned char e = r->p[1];
            if (e == 'u') {
                if (r->end - r->p < 6) return 0;
                int v = 0;
                for (int i = 2; i < 6; i++) {
                    int h = hex(r->p[i]);
                    if (h < 0) return 0;
                    v = v * 16 + h;
                }
                if (v >= 0xD800 && v <= 0xDFFF) return 0; /* surrogates: leave them to msgspec */
                r->p += 6;
            } else if (e == '"' || e == '\\' || e == '/' || e == 'b' || e == 'f' || e == 'n' ||
                       e == 'r' || e == 't') {
                r->p += 2;
            } else {
                return 0;
            }
        } else if (c < 0x20) {
            return 0;
        } else if (c >= 0x80) {
            if (!utf8_seq(r)) return 0;
        } else {
            r->p++;
        }
    }
}

static int digits(Reader *r) {
    const unsigned char *start = r->p;
    while (r->p < r->end && *r->p >= '0' && *r->p <= '9') r->p++;
    return (int)(r->p - start);
}

/* -?(0|[1-9][0-9]*)(.[0-9]+)?, short; an exponent is declined. `value` gets an integer's value
 * (and `integral` says whether it was one). */
static int scan_number(Reader *r, long long *value, int *integral) {
    int negative = 0;
    if (r->p < r->end && *r->p == '-') {
        negative = 1;
        r->p++;
    }
    const unsigned char *start = r->p;
    int n = digits(r);
    if (n == 0 || n > MAX_DIGITS || (n > 1 && *start == '0')) return 0;
    long long v = 0;
    for (int i = 0; i < n; i++) v = v * 10 + (start[i] - '0');
    *integral = 1;
    if (r->p < r->end && *r->p == '.') {
        r->p++;
        int f = digits(r);
        if (f == 0 || f > MAX_DIGITS) return 0;
        *integral = 0;
    }
    if (r->p < r->end && (*r->p == 'e' || *r->p == 'E')) return 0;
    *value = negative ? -v : v;
    return 1;
}

static int literal(Reader *r, const char *word, size_t n) {
    if ((size_t)(r->end - r->p) < n || memcmp(r->p, word, n) != 0) return 0;
    r->p += n;
    return 1;
}

/* Any JSON value, validated and skipped; `depth` is how deep it sits already. One loop with its
 * own stack of open containers (no call per value: most values are short strings). */
static int skip_value(Reader *r, int depth) {
    unsigned char stack[MAX_DEPTH]; /* the closing byte of each open container */
    int top = 0, escaped;
    long long ignored;
    int integral;
    const unsigned char *end = r->end;
value:
    if (r->p >= end) return 0;
    switch (*r->p) {
    case '"':
        if (!scan_string(r, &escaped)) return 0;
        break;
    case '{':
    case '[':
        if (depth + top >= MAX_DEPTH) return 0;
        stack[top++] = *r->p == '{' ? '}' : ']';
        r->p++;
        skip_ws(r);
        if (r->p < end && *r->p == stack[top - 1]) {
            r->p++;
            top--;
            break;
        }
        if (stack[top - 1] == ']') goto value;
        goto key;
    case 't':
        if (!literal(r, "true", 4)) return 0;
        break;
    case 'f':
        if (!literal(r, "false", 5)) return 0;
        break;
    case 'n':
        if (!literal(r, "null", 4)) return 0;
        break;
    default:
        if (!scan_number(r, &ignored, &integral)) return 0;
    }
    /* after a value */
    while (top) {
        skip_ws(r);
        if (r->p >= end) return 0;
        if (*r->p == ',') {
            r->p++;
            skip_ws(r);
            if (stack[top - 1] == ']') goto value;
            goto key;
        }
        if (*r->p != stack[top - 1]) return 0;
        r->p++;
        top--;
    }
    return 1;
key:
    if (r->p >= end || *r->p != '"' || !scan_string(r, &escaped)) return 0;
    skip_ws(r);
    if (r->p >= end || *r->p != ':') return 0;
    r->p++;
    skip_ws(r);
    goto value;
}

/* A wanted string field: a string with no escapes (or null, where `nullable`). */
static int wanted_string(Reader *r, Slice *out, int nullable) {
    if (r->p < r->end && *r->p == 'n' && nullable) {
        if (!literal(r, "null", 4)) return 0;
        out->p = NULL;
        out->n = 0;
        return 1;
    }
    if (r->p >= r->end || *r->p != '"') return 0;
    const unsigned char *start = r->p + 1;
    int escaped = 0;
    if (!scan_string(r, &escaped) || escaped) return 0;
    out->p = start;
    out->n = (size_t)(r->p - 1 - start);
    return 1;
}

static int key_is(const unsigned char *k, size_t n, const char *name) {
    return n == strlen(name) && memcmp(k, name, n) == 0;
}

int json_fields(const unsigned char *s, size_t n, unsigned want, Fields *out) {
    static const unsigned char empty[1] = {0};
    Reader r = {s, s + n};
    unsigned seen = 0;
    out->request_id.p = NULL;
    out->request_id.n = 0;
    out->kind.p = empty; /* "" by default */
    out->kind.n = 0;
    out->company.p = NULL;
    out->company.n = 0;
    out->status = 0;
    skip_ws(&r);
    if (r.p >= r.end || *r.p != '{') return 0;
    r.p++;
    skip_ws(&r);
    if (r.p < r.end && *r.p == '}') {
        r.p++;
    } else {
        for (;;) {
            if (r.p >= r.end || *r.p != '"') return 0;
            const unsigned char *key = r.p + 1;
            int escaped = 0;
            if (!scan_string(&r, &escaped) || escaped) return 0; /* "request\u005fid" is request_id */
            size_t key_n = (size_t)(r.p - 1 - key);
            skip_ws(&r);
            if (r.p >= r.end || *r.p != ':') return 0;
            r.p++;
            skip_ws(&r);
            unsigned field = 0;
            if ((want & WANT_REQUEST_ID) && key_is(key, key_n, "request_id")) field = WANT_REQUEST_ID;
            else if ((want & WANT_KIND) && key_is(key, key_n, "kind")) field = WANT_KIND;
            else if ((want & WANT_COMPANY) && key_is(key, key_n, "company_number")) field = WANT_COMPANY;
            else if ((want & WANT_STATUS) && key_is(key, key_n, "status")) field = WANT_STATUS;
            if (field & seen) return 0; /* a wanted key twice */
            seen |= field;
            int ok;
            if (field == WANT_REQUEST_ID) {
                ok = wanted_string(&r, &out->request_id, 0);
            } else if (field == WANT_KIND) {
                ok = wanted_string(&r, &out->kind, 0);
            } else if (field == WANT_COMPANY) {
                ok = wanted_string(&r, &out->company, 1);
            } else if (field == WANT_STATUS) {
                int integral = 0;
                ok = r.p < r.end && (*r.p == '-' || (*r.p >= '0' && *r.p <= '9')) &&
                     scan_number(&r, &out->status, &integral) && integral;
            } else {
                ok = skip_value(&r, 1);
            }
            if (!ok) return 0;
            skip_ws(&r);
            if (r.p >= r.end) return 0;
            if (*r.p == ',') {
                r.p++;
                skip_ws(&r);
                continue;
            }
            if (*r.p == '}') {
                r.p++;
                break;
            }
            return 0;
        }
    }
    skip_ws(&r);
    if (r.p != r.end) return 0;
    if ((want & WANT_REQUEST_ID) && !(seen & WANT_REQUEST_ID)) return 0;
    return 1;
}
