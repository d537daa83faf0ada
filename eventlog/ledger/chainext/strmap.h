/*
 * Hash tables keyed by byte strings (request ids), for the facts aggregate:
 * - StrSet: the request ids queued lately (a generation of them);
 * - StackMap: per request id, the sends still waiting for an answer, newest on top.
 * Keys are copied and compared in full: membership is exact, never a hash match alone.
 */
#ifndef CHLEDGER_STRMAP_H
#define CHLEDGER_STRMAP_H

#include <stddef.h>
#include <stdint.h>

uint64_t str_hash(const unsigned char *p, size_t n);

typedef struct StrSlot {
    uint64_t hash;
    unsigned char *key; /* NULL: empty slot */
    size_t n;
} StrSlot;

typedef struct StrSet {
    StrSlot *slots;
    size_t cap, count;
    unsigned char **chunks; /* the keys' bytes, in big blocks freed together */
    size_t n_chunks, chunk_used, chunk_size;
} StrSet;

void strset_init(StrSet *s);
void strset_free(StrSet *s);
/* Empty it, keeping its memory for what comes next. */
void strset_clear(StrSet *s);
int strset_contains(const StrSet *s, const unsigned char *p, size_t n, uint64_t h);
/* 1 added, 0 already there, -1 out of memory */
int strset_add(StrSet *s, const unsigned char *p, size_t n, uint64_t h);

typedef struct Waiting {
    int64_t position;
    int64_t table_status; /* the status its api_rate_limit_log row holds (when row_ok) */
    int row_ok;           /* its row exists and matches but for the status */
} Waiting;

typedef struct StackSlot {
    uint64_t hash;
    unsigned char *key; /* NULL: empty slot; malloc'd */
    size_t n;
    Waiting *items;
    size_t count, cap;
} StackSlot;

typedef struct StackMap {
    StackSlot *slots;
    size_t cap, count;
} StackMap;

void stackmap_init(StackMap *m);
void stackmap_free(StackMap *m);
/* Push onto the stack of key; 0 when out of memory. */
int stackmap_push(StackMap *m, const unsigned char *p, size_t n, uint64_t h, Waiting w);
/* Pop the top of key's stack into *out; 0 when key has none waiting. */
int stackmap_pop(StackMap *m, const unsigned char *p, size_t n, uint64_t h, Waiting *out);

#endif
