/*
 * The sliding-window count of eventlog/audit_windows.py `window_counts`, in C, for the audit's
 * million send times. Not an SQL function: a plain C function that eventlog/native_chain.py
 * calls through ctypes on the arrays it already holds (no SQLite call in here).
 *
 * counts[i] = the sends in [times[i], times[i] + span), times ascending (µs); sends that share a
 * timestamp share a window, each counted from the first of them, as in Python. Returns 1, or 0
 * (counts untouched) when the times do not ascend or t + span could overflow: Python decides.
 */
#include <stdint.h>

#ifdef _WIN32
__declspec(dllexport)
#else
__attribute__((visibility("default"))) /* built with -fvisibility=hidden: only this is exported */
#endif
int chledger_window_counts(const int64_t *times, int64_t n, int64_t span, int64_t *counts) {
    if (n <= 0) return 1;
    if (span <= 0) return 0;
    for (int64_t i = 1; i < n; i++)
        if (times[i] < times[i - 1]) return 0;
    if (times[n - 1] > INT64_MAX - span || times[0] < INT64_MIN + span) return 0;
    int64_t j = 0, lo = 0;
    for (int64_t i = 0; i < n; i++) {
        if (i == 0 || times[i] != times[i - 1]) lo = i;
        int64_t limit = times[i] + span;
        while (j < n && times[j] < limit) j++;
        counts[i] = j - lo;
    }
    return 1;
}
