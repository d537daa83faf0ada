/*
 * The chledger SQLite extension: `chledger_chain` (chledger_chain.c) and `chledger_audit`
 * (chledger_audit.c). Built by setup.py at `pip install` time and loaded by
 * eventlog/native_chain.py with `Connection.load_extension(path, "sqlite3_chledger_init")`.
 */
#include <sqlite3ext.h>
SQLITE_EXTENSION_INIT1

int chledger_register_chain(sqlite3 *db);
int chledger_register_audit(sqlite3 *db);

#ifdef _WIN32
__declspec(dllexport)
#else
__attribute__((visibility("default"))) /* built with -fvisibility=hidden: only this is exported */
#endif
int sqlite3_chledger_init(sqlite3 *db, char **errmsg, const sqlite3_api_routines *api) {
    SQLITE_EXTENSION_INIT2(api);
    (void)errmsg;
    int rc = chledger_register_chain(db);
    if (rc == SQLITE_OK) rc = chledger_register_audit(db);
    return rc;
}
