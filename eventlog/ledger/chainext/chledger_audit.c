/*
 * chledger_audit: the hash chain and the request facts of a range of positions, in one scan.
 *
 *   chledger_audit(prev_hash, first_id, since, until, queued_memory, table_from, table_to,
 *                  id, event_id, event_type, company_number, received_at, event_data, hash)
 *
 * over `event_log` rows in id order; it reads the `api_rate_limit_log` rows table_from..table_to
 * itself, alongside, in the same snapshot (a merge by id costs less than a join per row). One
 * aggregate rather than `chledger_chain` beside another: SQLite copies a column's value for each
 * function that takes it, and event_data is most of the bytes. `prev_hash` NULL leaves the chain
 * unchecked (its predecessor is missing: the range before reports that gap).
 *
 * The result is a blob of native int64s: a header
 *   [version 1, chain_kind, chain_checked, chain_position, chain_next, chain_last,
 *    declined, declined_at, sends, queued, answers,
 *    n_times, n_candidates, n_noted, n_issues, n_pending, n_extras]
 * (chain_* as chledger_chain.c describes them, chain_kind -1 when unchecked; declined as
 * chledger_facts.c describes, and then the counts are 0 and no lists follow) then times[n_times]
 * (µs), positions[n_times], candidates[], noted[], issues[2 * n_issues] as (send position,
 * answer status) pairs, pending[], extras[] (ids of table rows with no send).
 * eventlog/audit_native.py reads it.
 */
#include "chledger.h"

#include <string.h>

typedef struct AuditAgg {
    int started, failed, chained;
    Chain chain;
    Facts facts;
} AuditAgg;

static void fail(sqlite3_context *ctx, AuditAgg *a, int rc) {
    a->failed = 1;
    chain_release(&a->chain);
    facts_release(&a->facts);
    if (rc == SQLITE_NOMEM) {
        sqlite3_result_error_nomem(ctx);
    } else if (rc == SQLITE_MISUSE) {
        sqlite3_result_error(ctx, "chledger_audit: prev_hash must be a 32-byte blob or NULL, "
                                  "since and until text", -1);
    } else {
        sqlite3_result_error(ctx, sqlite3_errmsg(sqlite3_context_db_handle(ctx)), -1);
        sqlite3_result_error_code(ctx, rc);
    }
}

static void audit_step(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    AuditAgg *a = (AuditAgg *)sqlite3_aggregate_context(ctx, sizeof(AuditAgg));
    int rc;
    (void)argc;
    if (a == NULL) {
        sqlite3_result_error_nomem(ctx);
        return;
    }
    if (a->failed) return;
    if (!a->started) {
        a->started = 1;
        int prev_type = sqlite3_value_type(argv[0]);
        if (prev_type != SQLITE_NULL) {
            if (prev_type != SQLITE_BLOB || sqlite3_value_bytes(argv[0]) != HASH_LEN) {
                fail(ctx, a, SQLITE_MISUSE);
                return;
            }
            a->chained = 1;
            chain_begin(&a->chain, sqlite3_value_blob(argv[0]), sqlite3_value_int64(argv[1]));
        }
        if ((rc = facts_begin(&a->facts, sqlite3_context_db_handle(ctx), argv + 2)) != 0) {
            fail(ctx, a, rc);
            return;
        }
    }
    if (a->chained && chain_row(&a->chain, argv + 7) < 0) {
        fail(ctx, a, SQLITE_NOMEM);
        return;
    }
    sqlite3_value *row[4] = {argv[7], argv[9], argv[11], argv[12]}; /* id, type, at, data */
    if ((rc = facts_row(&a->facts, row)) != 0) fail(ctx, a, rc);
}

static void audit_final(sqlite3_context *ctx) {
    AuditAgg *a = (AuditAgg *)sqlite3_aggregate_context(ctx, 0);
    int rc;
    if (a == NULL || !a->started) {
        sqlite3_result_null(ctx);
        return;
    }
    if (a->failed) return; /* the error was set by the step */
    if ((rc = facts_end(&a->facts)) != 0) {
        fail(ctx, a, rc);
        return;
    }
    size_t bytes = 0;
    int64_t *out = facts_blob(&a->facts, a->chained ? &a->chain : NULL, &bytes);
    chain_release(&a->chain);
    facts_release(&a->facts);
    if (out == NULL) {
        sqlite3_result_error_nomem(ctx);
        return;
    }
    sqlite3_result_blob64(ctx, out, bytes, sqlite3_free);
}

int chledger_register_audit(sqlite3 *db) {
    return sqlite3_create_function(db, "chledger_audit", 14, SQLITE_UTF8, NULL, NULL, audit_step,
                                   audit_final);
}
