/*
 * The ledger's hash chain, walked in C inside SQLite (SHA-256 from OpenSSL's libcrypto, which
 * uses the CPU's SHA instructions where it has them).
 *
 *   chledger_chain(prev_hash, first_id, id, event_id, event_type, company_number, received_at,
 *                  event_data, hash)
 *
 * fed the rows of `event_log` in id order, recomputes exactly `eventlog.ledger.chain_hash`:
 *
 *   sha256(prev || "<id>\x1f<event_id>\x1f<event_type>\x1f<company_number or ''>\x1f
 *                   <received_at>\x1f<event_data>")
 *
 * from the columns' stored bytes (never converted by SQL), starting from `prev_hash` (the stored
 * hash of the row before `first_id`, or 32 zero bytes at genesis). It checks that the ids run
 * first_id, first_id + 1, ... with no gap, which also guards against any scan order but id
 * order, compares each digest with the stored `hash`, and stops checking at the first break.
 *
 * The result is a text of five integers, "kind checked position next last":
 *   kind 0: every row matched; `checked` rows, `last` the last id seen
 *   kind 1: a gap: the id `position` is missing, `next` was found in its place
 *   kind 2: the row at `position` does not match its stored hash, or holds text that is not
 *           valid UTF-8 (only tampering stores it; Python can't read it)
 *   kind 3: the row at `position` holds a value that is not text (a blob, say), which Python's
 *           f-string would render differently: the caller hashes that row itself and goes on
 * `checked` counts the rows that matched before the stop. eventlog/native_chain.py words it as
 * `Ledger.verify` does. With no rows at all the result is NULL.
 */
#include "chledger.h"

#define OPENSSL_SUPPRESS_DEPRECATED 1 /* SHA256_Init & co: the leanest call, no EVP fetch per row */
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>

static const unsigned char SEP = 0x1f;

void chain_begin(Chain *c, const void *prev_hash, int64_t first_id) {
    memset(c, 0, sizeof *c);
    c->kind = CHAIN_OK;
    memcpy(c->prev, prev_hash, HASH_LEN);
    c->expected = first_id;
}

void chain_release(Chain *c) {
    sqlite3_free(c->buf);
    c->buf = NULL;
    c->cap = c->len = 0;
}

/* Room for `more` bytes after the message so far; 0 when out of memory. */
static int reserve(Chain *c, size_t more) {
    if (c->len + more <= c->cap) return 1;
    size_t cap = c->cap ? c->cap : 4096;
    while (cap < c->len + more) cap *= 2;
    unsigned char *buf = (unsigned char *)sqlite3_realloc64(c->buf, cap);
    if (buf == NULL) return 0;
    c->buf = buf;
    c->cap = cap;
    return 1;
}

/* Decimal digits of v, as Python's str(int) writes them; returns the length. */
static int format_int(int64_t v, char *out) {
    char tmp[24];
    int n = 0, len = 0;
    uint64_t u = v < 0 ? 0ULL - (uint64_t)v : (uint64_t)v;
    do {
        tmp[n++] = (char)('0' + (u % 10));
        u /= 10;
    } while (u);
    if (v < 0) out[len++] = '-';
    while (n) out[len++] = tmp[--n];
    return len;
}

/* Valid UTF-8 as Python's strict decoder takes it: no overlong forms, no surrogates, nothing
 * above U+10FFFF. A text column that is not (only tampering stores one) can't be read by Python
 * at all, so its row is a mismatch. ASCII runs are skipped 32 bytes at a time: the full check
 * costs only where a byte >= 0x80 is. */
static int utf8_check(const unsigned char *s, size_t n) {
    static const uint64_t HIGH = 0x8080808080808080ULL;
    size_t i = 0;
    while (i < n) {
        while (n - i >= 32) {
            uint64_t w[4];
            memcpy(w, s + i, 32);
            if ((w[0] | w[1] | w[2] | w[3]) & HIGH) break;
            i += 32;
        }
        while (i < n && s[i] < 0x80) i++;
        if (i >= n) break;
        unsigned char c = s[i], lo = 0x80, hi = 0xBF;
        size_t need;
        if (c >= 0xC2 && c <= 0xDF) need = 1;
        else if (c == 0xE0) need = 2, lo = 0xA0;
        else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) need = 2;
        else if (c == 0xED) need = 2, hi = 0x9F; /* no surrogates */
        else if (c == 0xF0) need = 3, lo = 0x90;
        else if (c >= 0xF1 && c <= 0xF3) need = 3;
        else if (c == 0xF4) need = 3, hi = 0x8F;
        else return 0; /* a continuation byte, an overlong lead (C0, C1), or F5..FF */
        if (n - i - 1 < need || s[i + 1] < lo || s[i + 1] > hi) return 0;
        for (size_t k = 2; k <= need; k++)
            if ((s[i + k] & 0xC0) != 0x80) return 0;
        i += need + 1;
    }
    return 1;
}

int utf8_valid(const unsigned char *p, size_t n) { return utf8_check(p, n); }

/* Append one column's bytes and a separator: 1, 0 when the value is not text, 2 when it is text
 * but not UTF-8, -1 no memory. */
static int put_text(Chain *c, sqlite3_value *v, int null_is_empty) {
    int type = sqlite3_value_type(v);
    if (type == SQLITE_NULL && null_is_empty) {
        if (!reserve(c, 1)) return -1;
        c->buf[c->len++] = SEP;
        return 1;
    }
    if (type != SQLITE_TEXT) return 0;
    /* The blob view of a text value is its stored bytes (UTF-8: the caller checks the database's
     * encoding); sqlite3_value_text would first copy it to add a terminator. */
    const void *text = sqlite3_value_blob(v);
    size_t n = (size_t)sqlite3_value_bytes(v);
    if (!utf8_check((const unsigned char *)text, n)) return 2;
    if (!reserve(c, n + 1)) return -1;
    if (n) memcpy(c->buf + c->len, text, n);
    c->len += n;
    c->buf[c->len++] = SEP;
    return 1;
}

int chain_row(Chain *c, sqlite3_value **col) {
    if (c->kind != CHAIN_OK) return 0; /* stopped at the first break; the scan just runs out */
    int64_t id = sqlite3_value_int64(col[0]);
    c->last = id;
    if (id != c->expected) {
        c->kind = CHAIN_GAP;
        c->position = c->expected;
        c->next = id;
        return 0;
    }
    /* The whole message in one buffer, hashed by one call: feeding SHA256_Update column by
     * column costs a copy into its block buffer per small piece, which measured slower. */
    c->len = 0;
    if (!reserve(c, HASH_LEN + 24 + 1)) return -1;
    memcpy(c->buf, c->prev, HASH_LEN);
    c->len = HASH_LEN;
    c->len += (size_t)format_int(id, (char *)c->buf + c->len);
    c->buf[c->len++] = SEP;
    for (int i = 1; i <= 4; i++) { /* event_id, event_type, company_number, received_at */
        int r = put_text(c, col[i], i == 3); /* company_number: NULL hashes as '' */
        if (r < 0) return -1;
        if (r != 1) {
            c->kind = r == 0 ? CHAIN_NOT_TEXT : CHAIN_MISMATCH;
            c->position = id;
            return 0;
        }
    }
    if (sqlite3_value_type(col[5]) != SQLITE_TEXT) {
        c->kind = CHAIN_NOT_TEXT;
        c->position = id;
        return 0;
    }
    /* event_data, most of the bytes, is hashed where SQLite put it */
    const unsigned char *data = (const unsigned char *)sqlite3_value_blob(col[5]);
    size_t data_n = (size_t)sqlite3_value_bytes(col[5]);
    unsigned char digest[HASH_LEN];
    SHA256_CTX sha; /* not SHA256(): in OpenSSL 3 it fetches an EVP digest on every call */
    int valid = utf8_check(data, data_n);
    if (valid && (!SHA256_Init(&sha) || !SHA256_Update(&sha, c->buf, c->len) ||
                  (data_n && !SHA256_Update(&sha, data, data_n)) || !SHA256_Final(digest, &sha)))
        return -1; /* never seen: an error, not a finding */
    if (!valid || sqlite3_value_type(col[6]) != SQLITE_BLOB || sqlite3_value_bytes(col[6]) != HASH_LEN ||
        memcmp(sqlite3_value_blob(col[6]), digest, HASH_LEN) != 0) {
        c->kind = CHAIN_MISMATCH;
        c->position = id;
        return 0;
    }
    memcpy(c->prev, digest, HASH_LEN);
    c->expected = id + 1;
    c->checked++;
    return 0;
}

/* --- the chledger_chain aggregate ------------------------------------------------------- */

typedef struct ChainAgg {
    int started, failed;
    Chain chain;
} ChainAgg;

static void chain_step(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    ChainAgg *a = (ChainAgg *)sqlite3_aggregate_context(ctx, sizeof(ChainAgg));
    (void)argc;
    if (a == NULL) {
        sqlite3_result_error_nomem(ctx);
        return;
    }
    if (a->failed) return;
    if (!a->started) {
        a->started = 1;
        if (sqlite3_value_type(argv[0]) != SQLITE_BLOB || sqlite3_value_bytes(argv[0]) != HASH_LEN) {
            a->failed = 1;
            sqlite3_result_error(ctx, "chledger_chain: prev_hash must be a 32-byte blob", -1);
            return;
        }
        chain_begin(&a->chain, sqlite3_value_blob(argv[0]), sqlite3_value_int64(argv[1]));
    }
    if (chain_row(&a->chain, argv + 2) < 0) {
        a->failed = 1;
        chain_release(&a->chain);
        sqlite3_result_error_nomem(ctx);
    }
}

static void chain_final(sqlite3_context *ctx) {
    ChainAgg *a = (ChainAgg *)sqlite3_aggregate_context(ctx, 0);
    if (a == NULL || !a->started) {
        sqlite3_result_null(ctx);
        return;
    }
    chain_release(&a->chain);
    if (a->failed) return; /* the error was set by the step */
    const Chain *c = &a->chain;
    char out[128];
    int n = snprintf(out, sizeof out, "%d %lld %lld %lld %lld", c->kind, (long long)c->checked,
                     (long long)c->position, (long long)c->next, (long long)c->last);
    sqlite3_result_text(ctx, out, n, SQLITE_TRANSIENT);
}

int chledger_register_chain(sqlite3 *db) {
    return sqlite3_create_function(db, "chledger_chain", 9, SQLITE_UTF8, NULL, NULL, chain_step,
                                   chain_final);
}
