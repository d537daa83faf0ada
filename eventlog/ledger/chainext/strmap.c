/* See strmap.h. Open addressing with linear probing, at most half full. */
#include "strmap.h"

#include <stdlib.h>
#include <string.h>

static uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

uint64_t str_hash(const unsigned char *p, size_t n) {
    uint64_t h = 0x9E3779B97F4A7C15ULL ^ (uint64_t)n, k;
    while (n >= 8) {
        memcpy(&k, p, 8);
        h = rotl(h ^ (k * 0xBF58476D1CE4E5B9ULL), 31) * 0x94D049BB133111EBULL;
        p += 8;
        n -= 8;
    }
    k = 0;
    if (n) memcpy(&k, p, n); /* p may be NULL when n is 0 */
    h = rotl(h ^ (k * 0xBF58476D1CE4E5B9ULL), 31) * 0x94D049BB133111EBULL;
    h ^= h >> 33;
    h *= 0xFF51AFD7ED558CCDULL;
    h ^= h >> 33;
    return h;
}

/* --- StrSet ---------------------------------------------------------------------------- */

void strset_init(StrSet *s) { memset(s, 0, sizeof *s); }

void strset_free(StrSet *s) {
    for (size_t i = 0; i < s->n_chunks; i++) free(s->chunks[i]);
    free(s->chunks);
    free(s->slots);
    strset_init(s);
}

void strset_clear(StrSet *s) {
    if (s->slots) memset(s->slots, 0, s->cap * sizeof *s->slots);
    s->count = 0;
    for (size_t i = 0; i < s->n_chunks; i++) free(s->chunks[i]); /* small blocks: the heap reuses them */
    s->n_chunks = s->chunk_used = s->chunk_size = 0;
}

static size_t find_slot(const StrSlot *slots, size_t cap, const unsigned char *p, size_t n, uint64_t h) {
    size_t i = (size_t)h & (cap - 1);
    while (slots[i].key != NULL &&
           !(slots[i].hash == h && slots[i].n == n && (n == 0 || memcmp(slots[i].key, p, n) == 0)))
        i = (i + 1) & (cap - 1);
    return i;
}

int strset_contains(const StrSet *s, const unsigned char *p, size_t n, uint64_t h) {
    if (s->cap == 0) return 0;
    return s->slots[find_slot(s->slots, s->cap, p, n, h)].key != NULL;
}

static int strset_grow(StrSet *s) {
    size_t cap = s->cap ? s->cap * 2 : 1024;
    StrSlot *slots = (StrSlot *)calloc(cap, sizeof *slots);
    if (slots == NULL) return 0;
    for (size_t i = 0; i < s->cap; i++) {
        if (s->slots[i].key == NULL) continue;
        size_t j = (size_t)s->slots[i].hash & (cap - 1);
        while (slots[j].key != NULL) j = (j + 1) & (cap - 1);
        slots[j] = s->slots[i];
    }
    free(s->slots);
    s->slots = slots;
    s->cap = cap;
    return 1;
}

static unsigned char *strset_copy(StrSet *s, const unsigned char *p, size_t n) {
    size_t need = n ? n : 1;
    if (s->n_chunks == 0 || s->chunk_used + need > s->chunk_size) {
        size_t size = need > 65536 ? need : 65536;
        unsigned char **chunks = (unsigned char **)realloc(s->chunks, (s->n_chunks + 1) * sizeof *chunks);
        if (chunks == NULL) return NULL;
        s->chunks = chunks;
        chunks[s->n_chunks] = (unsigned char *)malloc(size);
        if (chunks[s->n_chunks] == NULL) return NULL;
        s->n_chunks++;
        s->chunk_used = 0;
        s->chunk_size = size;
    }
    unsigned char *out = s->chunks[s->n_chunks - 1] + s->chunk_used;
    if (n) memcpy(out, p, n);
    s->chunk_used += need;
    return out;
}

int strset_add(StrSet *s, const unsigned char *p, size_t n, uint64_t h) {
    if ((s->count + 1) * 2 > s->cap && !strset_grow(s)) return -1;
    size_t i = find_slot(s->slots, s->cap, p, n, h);
    if (s->slots[i].key != NULL) return 0;
    unsigned char *key = strset_copy(s, p, n);
    if (key == NULL) return -1;
    s->slots[i].hash = h;
    s->slots[i].key = key;
    s->slots[i].n = n;
    s->count++;
    return 1;
}

/* --- StackMap -------------------------------------------------------------------------- */

void stackmap_init(StackMap *m) { memset(m, 0, sizeof *m); }

void stackmap_free(StackMap *m) {
    for (size_t i = 0; i < m->cap; i++) {
        free(m->slots[i].key);
        free(m->slots[i].items);
    }
    free(m->slots);
    stackmap_init(m);
}

static size_t stack_slot(const StackMap *m, const unsigned char *p, size_t n, uint64_t h) {
    size_t i = (size_t)h & (m->cap - 1);
    while (m->slots[i].key != NULL &&
           !(m->slots[i].hash == h && m->slots[i].n == n && (n == 0 || memcmp(m->slots[i].key, p, n) == 0)))
        i = (i + 1) & (m->cap - 1);
    return i;
}

static int stackmap_grow(StackMap *m) {
    size_t cap = m->cap ? m->cap * 2 : 64;
    StackSlot *slots = (StackSlot *)calloc(cap, sizeof *slots);
    if (slots == NULL) return 0;
    for (size_t i = 0; i < m->cap; i++) {
        if (m->slots[i].key == NULL) continue;
        size_t j = (size_t)m->slots[i].hash & (cap - 1);
        while (slots[j].key != NULL) j = (j + 1) & (cap - 1);
        slots[j] = m->slots[i];
    }
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
    return 1;
}

int stackmap_push(StackMap *m, const unsigned char *p, size_t n, uint64_t h, Waiting w) {
    if ((m->count + 1) * 2 > m->cap && !stackmap_grow(m)) return 0;
    size_t i = stack_slot(m, p, n, h);
    StackSlot *slot = &m->slots[i];
    if (slot->key == NULL) {
        slot->key = (unsigned char *)malloc(n ? n : 1);
        if (slot->key == NULL) return 0;
        if (n) memcpy(slot->key, p, n);
        slot->n = n;
        slot->hash = h;
        slot->items = NULL;
        slot->count = slot->cap = 0;
        m->count++;
    }
    if (slot->count == slot->cap) {
        size_t cap = slot->cap ? slot->cap * 2 : 2;
        Waiting *items = (Waiting *)realloc(slot->items, cap * sizeof *items);
        if (items == NULL) return 0;
        slot->items = items;
        slot->cap = cap;
    }
    slot->items[slot->count++] = w;
    return 1;
}

/* Remove slot i, shifting later members of its probe run back (no tombstones). */
static void stackmap_remove(StackMap *m, size_t i) {
    free(m->slots[i].key);
    free(m->slots[i].items);
    size_t mask = m->cap - 1, j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (m->slots[j].key == NULL) break;
        size_t home = (size_t)m->slots[j].hash & mask;
        /* move j back to i unless its home lies cyclically in (i, j] */
        if ((j > i && (home <= i || home > j)) || (j < i && (home <= i && home > j))) {
            m->slots[i] = m->slots[j];
            i = j;
        }
    }
    memset(&m->slots[i], 0, sizeof m->slots[i]);
    m->count--;
}

int stackmap_pop(StackMap *m, const unsigned char *p, size_t n, uint64_t h, Waiting *out) {
    if (m->cap == 0) return 0;
    size_t i = stack_slot(m, p, n, h);
    StackSlot *slot = &m->slots[i];
    if (slot->key == NULL || slot->count == 0) return 0;
    *out = slot->items[--slot->count];
    if (slot->count == 0) stackmap_remove(m, i);
    return 1;
}
