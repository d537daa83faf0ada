/*
 * A strict reader of the few top-level fields the audit needs from an entry's JSON.
 *
 * It is exact or it declines: it returns 1 only when the text is a JSON object that msgspec
 * would decode into the audit's small Structs with exactly the values it reports; anything it
 * is not sure of (escapes in a key or a wanted string, a wanted field twice or of another type,
 * exponents, very long numbers, deep nesting, invalid UTF-8, any invalid JSON) makes it return
 * 0, and the caller leaves the whole range to the Python scan, which decides.
 */
#ifndef CHLEDGER_JSON_FIELDS_H
#define CHLEDGER_JSON_FIELDS_H

#include <stddef.h>

enum {
    WANT_REQUEST_ID = 1, /* required string */
    WANT_KIND = 2,       /* optional string, default "" */
    WANT_COMPANY = 4,    /* optional string or null, default null */
    WANT_STATUS = 8,     /* optional integer, default 0 */
};

typedef struct Slice {
    const unsigned char *p; /* NULL when absent or JSON null */
    size_t n;
} Slice;

typedef struct Fields {
    Slice request_id, kind, company;
    long long status;
} Fields;

/* Reads `want`'s fields of the object in s[0..n); 1 when sure, 0 to decline. */
int json_fields(const unsigned char *s, size_t n, unsigned want, Fields *out);

#endif
