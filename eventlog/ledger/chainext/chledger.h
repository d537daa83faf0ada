/*
 * Shared by the extension's files: the SQLite API through the loadable-extension table, the
 * chain walker (chledger_chain.c) and the facts gatherer (chledger_facts.c), which the two SQL
 * aggregates (`chledger_chain`, `chledger_audit`) drive row by row.
 */
#ifndef CHLEDGER_H
#define CHLEDGER_H

#include <sqlite3ext.h>
SQLITE_EXTENSION_INIT3

#include <stddef.h>
#include <stdint.h>

#include "strmap.h"

#define HASH_LEN 32

enum { CHAIN_UNCHECKED = -1, CHAIN_OK = 0, CHAIN_GAP = 1, CHAIN_MISMATCH = 2, CHAIN_NOT_TEXT = 3 };

typedef struct Chain {
    int kind; /* CHAIN_OK while running; how it stopped otherwise */
    int64_t expected, checked, position, next, last;
    unsigned char prev[HASH_LEN];
    unsigned char *buf; /* the message being hashed, reused row after row */
    size_t len, cap;
} Chain;

void chain_begin(Chain *c, const void *prev_hash, int64_t first_id);
/* col: id, event_id, event_type, company_number, received_at, event_data, hash.
 * 0, or -1 when out of memory (or, never seen, when SHA-256 fails). A text column that is not
 * valid UTF-8 makes its row a mismatch. */
int chain_row(Chain *c, sqlite3_value **col);
void chain_release(Chain *c);
/* 1 when the n bytes are UTF-8 that Python's strict decoder reads (p may be NULL when n is 0). */
int utf8_valid(const unsigned char *p, size_t n);

typedef struct I64Vec {
    int64_t *v;
    size_t n, cap;
} I64Vec;

typedef struct Facts {
    int declined, table_done;
    int64_t declined_at, last_id, queued_memory, rows;
    int64_t sends, queued, answers;
    unsigned char *since, *until;
    size_t since_n, until_n;
    sqlite3_stmt *table; /* api_rate_limit_log rows of the range, in id order */
    int64_t table_id;    /* the id of the row it is on */
    I64Vec times, positions, candidates, noted, issues, extras;
    StrSet recent, older;
    StackMap waiting;
} Facts;

/* args: since, until, queued_memory, table_from, table_to. Opens a cursor on db's
 * api_rate_limit_log rows table_from..table_to (same connection, so the same snapshot).
 * 0, or an SQLite error code (SQLITE_MISUSE: since/until not text). */
int facts_begin(Facts *f, sqlite3 *db, sqlite3_value **args);
/* row: id, event_type, received_at, event_data. 0, or an SQLite error code. */
int facts_row(Facts *f, sqlite3_value **row);
/* After the last row: the table rows left over. 0, or an SQLite error code. */
int facts_end(Facts *f);
void facts_release(Facts *f);
/* The result blob (see chledger_audit.c), allocated with sqlite3_malloc64; NULL if out of
 * memory. It frees the lists as it copies them: only facts_release may follow. */
int64_t *facts_blob(Facts *f, const Chain *chain, size_t *bytes);

int chledger_register_chain(sqlite3 *db);
int chledger_register_audit(sqlite3 *db);

#endif
