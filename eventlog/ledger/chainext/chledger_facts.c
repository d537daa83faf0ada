/*
 * The audit's facts about requests, gathered row by row in the scan that walks the chain (the
 * `chledger_audit` aggregate, chledger_audit.c, drives it). Rows come in id order, each
 * `request.sent` joined to its `api_rate_limit_log` row. It does what `eventlog/audit_scan.py`
 * does in Python, by the same rules:
 * - the time (µs) and position of every send with since <= received_at < until;
 * - a send whose request_id is not among the recently queued ones (two generations of
 *   `queued_memory` ids) is a candidate orphan, settled later by an index lookup;
 * - an answer (response.received, request.rate_limited, request.transport_error) belongs to the
 *   newest send of its request_id still waiting; that send's table row must match the send and
 *   hold the answer's status, otherwise the send's position and the status are listed as an issue;
 * - sends still waiting at the end are listed (pending), and so are the positions of the rarer
 *   entries the report shows (429s, worker starts, emergency stops, stream gaps).
 * Python reads back only the rows those lists name.
 *
 * Exact or declined: at a row that is anything but plain (JSON it is not sure of, a received_at
 * not in the canonical form, a value of an unexpected type, ids out of order) it stops and notes
 * the position; the Python scan then does the range itself and reports what it finds.
 */
#include "chledger.h"

#include <stdlib.h>
#include <string.h>

#include "json_fields.h"
#include "strmap.h"

static int vec_push(I64Vec *a, int64_t x) {
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 1024;
        int64_t *v = (int64_t *)realloc(a->v, cap * sizeof *v);
        if (v == NULL) return 0;
        a->v = v;
        a->cap = cap;
    }
    a->v[a->n++] = x;
    return 1;
}

enum { T_OTHER, T_SENT, T_ANSWER, T_RATE_LIMITED, T_QUEUED, T_NOTED };

static int type_of(const unsigned char *s, size_t n) {
#define IS(name) (n == sizeof(name) - 1 && memcmp(s, name, n) == 0)
    if (IS("request.sent")) return T_SENT;
    if (IS("request.queued")) return T_QUEUED;
    if (IS("response.received") || IS("request.transport_error")) return T_ANSWER;
    if (IS("request.rate_limited")) return T_RATE_LIMITED;
    if (IS("worker.started") || IS("worker.emergency_stop") || IS("stream.gap")) return T_NOTED;
    return T_OTHER;
#undef IS
}

/* Python's str order: UTF-8 bytes compare in code point order. (An empty value's pointer may
 * be NULL, which memcmp must never see, even for 0 bytes.) */
static int cmp_bytes(const unsigned char *a, size_t an, const unsigned char *b, size_t bn) {
    size_t m = an < bn ? an : bn;
    int c = m ? memcmp(a, b, m) : 0;
    if (c) return c;
    return an < bn ? -1 : an > bn;
}

static int two(const unsigned char *p, int *out) {
    if (p[0] < '0' || p[0] > '9' || p[1] < '0' || p[1] > '9') return 0;
    *out = (p[0] - '0') * 10 + (p[1] - '0');
    return 1;
}

static int64_t days_from_civil(int64_t y, int m, int d) { /* Howard Hinnant's algorithm */
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* `audit_time.to_us` of the canonical form YYYY-MM-DDTHH:MM:SS.ffffffZ only; 0 otherwise. */
static int iso_us(const unsigned char *s, size_t n, int64_t *out) {
    static const int month_days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int c1, c2, mo, d, h, mi, se;
    if (n != 27 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' ||
        s[19] != '.' || s[26] != 'Z')
        return 0;
    if (!two(s, &c1) || !two(s + 2, &c2) || !two(s + 5, &mo) || !two(s + 8, &d) ||
        !two(s + 11, &h) || !two(s + 14, &mi) || !two(s + 17, &se))
        return 0;
    int64_t frac = 0;
    for (int i = 20; i < 26; i++) {
        if (s[i] < '0' || s[i] > '9') return 0;
        frac = frac * 10 + (s[i] - '0');
    }
    int64_t year = c1 * 100 + c2;
    int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    if (year < 1 || mo < 1 || mo > 12 || h > 23 || mi > 59 || se > 59) return 0;
    if (d < 1 || d > month_days[mo - 1] + (mo == 2 && leap)) return 0;
    int64_t minutes = (days_from_civil(year, mo, d) * 24 + h) * 60 + mi;
    *out = (minutes * 60 + se) * 1000000 + frac;
    return 1;
}

/* Column i of the table cursor is text equal to the bytes (p, n); p NULL: it must be NULL.
 * Python compares str == str here; any other type never equals a str. (One sqlite3_column_*
 * call per column: each takes the connection's mutex; the sqlite3_value_* calls don't.) */
static int column_is(sqlite3_stmt *st, int i, const unsigned char *p, size_t n) {
    sqlite3_value *v = sqlite3_column_value(st, i);
    int type = sqlite3_value_type(v);
    if (p == NULL) return type == SQLITE_NULL;
    if (type != SQLITE_TEXT) return 0;
    const void *b = sqlite3_value_blob(v);
    return (size_t)sqlite3_value_bytes(v) == n && (n == 0 || memcmp(b, p, n) == 0);
}

void facts_release(Facts *f) {
    I64Vec *vecs[] = {&f->times, &f->positions, &f->candidates, &f->noted, &f->issues, &f->extras};
    for (size_t k = 0; k < sizeof vecs / sizeof *vecs; k++) {
        free(vecs[k]->v);
        memset(vecs[k], 0, sizeof *vecs[k]);
    }
    free(f->since);
    free(f->until);
    f->since = f->until = NULL;
    sqlite3_finalize(f->table);
    f->table = NULL;
    strset_free(&f->recent);
    strset_free(&f->older);
    stackmap_free(&f->waiting);
}

static unsigned char *copy_bytes(sqlite3_value *v, size_t *n) {
    const void *b = sqlite3_value_blob(v);
    *n = (size_t)sqlite3_value_bytes(v);
    unsigned char *out = (unsigned char *)malloc(*n ? *n : 1);
    if (out != NULL && *n) memcpy(out, b, *n);
    return out;
}

/* The table cursor's next row; table_done after the last. 0 or an SQLite error code. */
static int table_next(Facts *f) {
    int rc = sqlite3_step(f->table);
    if (rc == SQLITE_ROW) {
        f->table_id = sqlite3_column_int64(f->table, 0);
        return 0;
    }
    f->table_done = 1;
    return rc == SQLITE_DONE ? 0 : rc;
}

int facts_begin(Facts *f, sqlite3 *db, sqlite3_value **args) {
    static const char *sql =
        "SELECT id, timestamp, request_type, response_status, company_number, request_id "
        "FROM api_rate_limit_log WHERE id BETWEEN ?1 AND ?2 ORDER BY id";
    memset(f, 0, sizeof *f);
    if (sqlite3_value_type(args[0]) != SQLITE_TEXT || sqlite3_value_type(args[1]) != SQLITE_TEXT)
        return SQLITE_MISUSE;
    f->since = copy_bytes(args[0], &f->since_n);
    f->until = copy_bytes(args[1], &f->until_n);
    f->queued_memory = sqlite3_value_int64(args[2]);
    if (f->since == NULL || f->until == NULL) return SQLITE_NOMEM;
    int rc = sqlite3_prepare_v2(db, sql, -1, &f->table, NULL);
    if (rc != SQLITE_OK) return rc;
    sqlite3_bind_int64(f->table, 1, sqlite3_value_int64(args[3]));
    sqlite3_bind_int64(f->table, 2, sqlite3_value_int64(args[4]));
    return table_next(f);
}

/* Stop at `position`: the Python scan takes the range over. */
static int decline(Facts *f, int64_t position) {
    f->declined = 1;
    f->declined_at = position;
    facts_release(f);
    return 0;
}

#define PUSH(vec, x) \
    do { \
        if (!vec_push(&(vec), (x))) return SQLITE_NOMEM; \
    } while (0)

/* A send at `id`: compare its api_rate_limit_log row (the table rows before it have no send:
 * extra) and put it on its request id's stack of waiting sends. */
static int sent(Facts *f, int64_t id, const unsigned char *at, size_t at_n, const Fields *fields,
                uint64_t h) {
    Waiting w = {id, 0, 0};
    sqlite3_stmt *t = f->table;
    int rc;
    while (!f->table_done && f->table_id < id) {
        PUSH(f->extras, f->table_id);
        if ((rc = table_next(f)) != 0) return rc;
    }
    if (!f->table_done && f->table_id == id) {
        if (column_is(t, 1, at, at_n) && column_is(t, 2, fields->kind.p, fields->kind.n) &&
            column_is(t, 4, fields->company.p, fields->company.n) &&
            column_is(t, 5, fields->request_id.p, fields->request_id.n)) {
            sqlite3_value *status = sqlite3_column_value(t, 3);
            int status_type = sqlite3_value_type(status);
            if (status_type == SQLITE_FLOAT) return decline(f, id); /* Python: 200.0 == 200 */
            w.row_ok = status_type == SQLITE_INTEGER ? 1 : 2; /* 2: no int status equals it */
            w.table_status = sqlite3_value_int64(status);
        }
        if ((rc = table_next(f)) != 0) return rc;
    }
    return stackmap_push(&f->waiting, fields->request_id.p, fields->request_id.n, h, w) ? 0 : SQLITE_NOMEM;
}

int facts_row(Facts *f, sqlite3_value **row) {
    if (f->declined) return 0;
    int64_t id = sqlite3_value_int64(row[0]);
    if (f->rows++ && id <= f->last_id) return decline(f, id); /* Python's scan orders its own */
    f->last_id = id;
    if (sqlite3_value_type(row[1]) != SQLITE_TEXT) return 0; /* matches none of the types below */
    const unsigned char *et = (const unsigned char *)sqlite3_value_blob(row[1]);
    int type = type_of(et, (size_t)sqlite3_value_bytes(row[1]));
    if (type == T_OTHER) return 0;
    /* A row with no body is skipped, whatever its type, as the Python scan skips it */
    if (sqlite3_value_type(row[3]) == SQLITE_NULL) return 0;
    /* Text that is not UTF-8 (tampering): Python can't read it; its scan says what it is */
    for (int i = 2; i <= 3; i++)
        if (sqlite3_value_type(row[i]) == SQLITE_TEXT &&
            !utf8_valid((const unsigned char *)sqlite3_value_blob(row[i]), (size_t)sqlite3_value_bytes(row[i])))
            return decline(f, id);
    if (type == T_NOTED) {
        PUSH(f->noted, id);
        return 0;
    }
    int data_type = sqlite3_value_type(row[3]);
    if (sqlite3_value_type(row[2]) != SQLITE_TEXT || (data_type != SQLITE_TEXT && data_type != SQLITE_BLOB))
        return decline(f, id);
    const unsigned char *data = (const unsigned char *)sqlite3_value_blob(row[3]);
    size_t data_n = (size_t)sqlite3_value_bytes(row[3]);
    Fields fields;
    if (type == T_SENT) {
        const unsigned char *at = (const unsigned char *)sqlite3_value_blob(row[2]);
        if (at == NULL) at = (const unsigned char *)""; /* empty text: not NULL to column_is */
        size_t at_n = (size_t)sqlite3_value_bytes(row[2]);
        f->sends++;
        if (cmp_bytes(f->since, f->since_n, at, at_n) <= 0 && cmp_bytes(at, at_n, f->until, f->until_n) < 0) {
            int64_t us;
            if (!iso_us(at, at_n, &us)) return decline(f, id);
            PUSH(f->times, us);
            PUSH(f->positions, id);
        }
        if (!json_fields(data, data_n, WANT_REQUEST_ID | WANT_KIND | WANT_COMPANY, &fields))
            return decline(f, id);
        const unsigned char *rid = fields.request_id.p;
        size_t rid_n = fields.request_id.n;
        uint64_t h = str_hash(rid, rid_n);
        if (!strset_contains(&f->recent, rid, rid_n, h) && !strset_contains(&f->older, rid, rid_n, h))
            PUSH(f->candidates, id);
        return sent(f, id, at, at_n, &fields, h);
    }
    if (type == T_ANSWER || type == T_RATE_LIMITED) {
        if (!json_fields(data, data_n, WANT_REQUEST_ID | WANT_STATUS, &fields)) return decline(f, id);
        f->answers++;
        Waiting w;
        uint64_t h = str_hash(fields.request_id.p, fields.request_id.n);
        if (stackmap_pop(&f->waiting, fields.request_id.p, fields.request_id.n, h, &w) &&
            !(w.row_ok == 1 && w.table_status == fields.status)) {
            PUSH(f->issues, w.position);
            PUSH(f->issues, fields.status);
        }
        if (type == T_RATE_LIMITED) PUSH(f->noted, id);
        return 0;
    }
    /* T_QUEUED */
    if (!json_fields(data, data_n, WANT_REQUEST_ID, &fields)) return decline(f, id);
    uint64_t h = str_hash(fields.request_id.p, fields.request_id.n);
    if (strset_add(&f->recent, fields.request_id.p, fields.request_id.n, h) < 0) return SQLITE_NOMEM;
    f->queued++;
    if ((int64_t)f->recent.count >= f->queued_memory) { /* the newest generation becomes the older */
        StrSet spare = f->older; /* emptied and reused: no fresh pages to fault in and zero */
        f->older = f->recent;
        f->recent = spare;
        strset_clear(&f->recent);
    }
    return 0;
}

int facts_end(Facts *f) {
    if (f->declined) return 0;
    while (!f->table_done) {
        PUSH(f->extras, f->table_id);
        int rc = table_next(f);
        if (rc != 0) return rc;
    }
    return 0;
}

static size_t pending_count(const Facts *f) {
    size_t n = 0;
    for (size_t i = 0; i < f->waiting.cap; i++) n += f->waiting.slots[i].count;
    return n;
}

int64_t *facts_blob(Facts *f, const Chain *chain, size_t *bytes) {
    enum { HEADER = 17 };
    size_t n_pending = f->declined ? 0 : pending_count(f);
    size_t total = HEADER;
    if (!f->declined)
        total += 2 * f->times.n + f->candidates.n + f->noted.n + f->issues.n + n_pending + f->extras.n;
    int64_t *out = (int64_t *)sqlite3_malloc64(total * sizeof *out);
    if (out == NULL) return NULL;
    int64_t header[HEADER] = {
        1, /* format version */
        chain ? chain->kind : CHAIN_UNCHECKED, chain ? chain->checked : 0, chain ? chain->position : 0,
        chain ? chain->next : 0, chain ? chain->last : 0,
        f->declined, f->declined_at, f->sends, f->queued, f->answers,
        (int64_t)f->times.n, (int64_t)f->candidates.n, (int64_t)f->noted.n, (int64_t)(f->issues.n / 2),
        (int64_t)n_pending, (int64_t)f->extras.n};
    if (f->declined) {
        for (int i = 8; i < HEADER; i++) header[i] = 0;
    }
    memcpy(out, header, sizeof header);
    int64_t *p = out + HEADER;
    if (!f->declined) {
        I64Vec *parts[] = {&f->times, &f->positions, &f->candidates, &f->noted, &f->issues};
        for (size_t k = 0; k < sizeof parts / sizeof *parts; k++) {
            if (parts[k]->n) memcpy(p, parts[k]->v, parts[k]->n * sizeof *p);
            p += parts[k]->n;
            free(parts[k]->v); /* copied: not held twice while the rest is */
            memset(parts[k], 0, sizeof *parts[k]);
        }
        for (size_t i = 0; i < f->waiting.cap; i++)
            for (size_t k = 0; k < f->waiting.slots[i].count; k++) *p++ = f->waiting.slots[i].items[k].position;
        if (f->extras.n) memcpy(p, f->extras.v, f->extras.n * sizeof *p);
    }
    *bytes = total * sizeof *out;
    return out;
}
