import sys, time, apsw, collections
from projections.registry import PROJECTORS
from projections.runner import read_batches
from projections.records import Batch
from projections.tables import fresh_tables
from projections.replay.rebuild import _finish
from eventlog.ledger.db import transaction
import shutil
src = sys.argv[1]; dst = "/tmp/i18/prof.db"
shutil.copy(src, dst)
conn = apsw.Connection(dst); conn.execute("PRAGMA cache_size=-65536"); conn.execute("PRAGMA foreign_keys=OFF")
t = collections.Counter()
with transaction(conn):
    head = conn.execute("select max(id) from event_log").fetchone()[0]
    t0=time.process_time(); later = fresh_tables(conn, PROJECTORS); t['fresh']+=time.process_time()-t0
    t0=time.process_time()
    it = read_batches(conn, 0, head, 5000)
    while True:
        a=time.process_time()
        try: recs = next(it)
        except StopIteration: break
        t['read+decode']+=time.process_time()-a
        b = Batch(recs)
        for p in PROJECTORS:
            if hasattr(p, "apply_range"):
                continue  # once over the whole ledger, below
            a=time.process_time(); p.apply(conn, b); t[p.NAME]+=time.process_time()-a
    for p in PROJECTORS:
        if hasattr(p, "apply_range"):
            a=time.process_time(); p.apply_range(conn, 0, head); t[p.NAME+" (range)"]+=time.process_time()-a
    a=time.process_time(); _finish(conn, PROJECTORS, later, head); t['finish']+=time.process_time()-a
a=time.process_time(); t['commit']+=0
tot=sum(t.values())
for k,v in t.most_common(): print(f"{k:28s} {v:6.2f} s  {v/head*1e6:5.1f} us/entry")
print(f"total {tot:.2f} s CPU, {head} entries, {head/tot:,.0f}/s")
