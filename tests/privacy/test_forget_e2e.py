"""`forget` end to end on a database the real worker wrote: the simulated stream, the sender
sealing officer pages, the Snov.io stage finding e-mails (sealed too), then `forget EMAIL`.

Afterwards no byte of the person's name or e-mail address is left in the database file, its WAL,
a backup, or any export made afterwards (raw bytes, free pages included), while `audit` still
passes, `replay --verify` agrees and a replay rebuilds exactly the live tables.
"""

from __future__ import annotations

import json
from pathlib import Path

import apsw


def query(db: Path, sql: str, args: tuple = ()) -> list[tuple]:
    conn = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def raw_hits(paths: list[Path], *needles: str) -> dict[str, int]:
    found = {n: 0 for n in needles}
    for path in paths:
        if path.exists():
            data = path.read_bytes()
            for n in needles:
                found[n] += data.count(n.encode())
    return found


def a_distinct_person(db: Path) -> tuple[str, str, str]:
    """An officer with an e-mail found whose name and address no one else's contain."""
    rows = query(db, "SELECT DISTINCT o.officer_id, o.name, e.email FROM emails e JOIN officers o "
                     "ON o.officer_id = e.officer_id WHERE e.state = 'found' AND e.email LIKE '%@%' ORDER BY e.id")
    for officer_id, name, email in rows:
        names = query(db, "SELECT count(*) FROM officers WHERE instr(name, ?) > 0 AND officer_id <> ?", (name, officer_id))
        mails = query(db, "SELECT count(*) FROM emails WHERE instr(email, ?) > 0 AND officer_id <> ?", (email, officer_id))
        if names[0][0] == 0 and mails[0][0] == 0:
            return officer_id, name, email
    raise AssertionError(f"no officer with a distinct name and e-mail among {len(rows)}")


def table(db: Path, name: str) -> list[tuple]:
    return query(db, f"SELECT * FROM {name} ORDER BY rowid")


def test_forget_an_email_leaves_no_byte_of_the_person_anywhere_while_audit_and_replay_hold(tmp_path, run_cli):
    db = tmp_path / "companies.db"
    ran = run_cli("ingest", "--simulate", "--duration", "8", "--db", db, timeout=60)
    assert ran.returncode == 0, ran.stderr
    officer_id, name, email = a_distinct_person(db)
    # Sealed from the start: the ledger never held them in clear, only the tables did.
    assert query(db, "SELECT count(*) FROM event_log WHERE instr(event_data, ?) > 0 OR instr(event_data, ?) > 0",
                 (name, email))[0][0] == 0
    before = run_cli("export", "--leads", "--all-companies", tmp_path / "before.csv", "--db", db)
    assert before.returncode == 0, before.stderr
    hits = raw_hits([tmp_path / "before.csv"], name, email)  # the person was a lead before
    assert hits[name] >= 1 and hits[email] >= 1, hits

    forgot = run_cli("forget", email, "--db", db)
    assert forgot.returncode == 0, forgot.stderr
    assert f"officer:{officer_id}: key deleted" in forgot.stdout and "scrubbed" in forgot.stdout
    assert name not in forgot.stdout + forgot.stderr and email not in forgot.stdout + forgot.stderr

    outputs = {
        "leads.csv": ("export", "--leads", tmp_path / "leads.csv"),
        "leads.jsonl": ("export", "--leads", "--format", "jsonl", tmp_path / "leads.jsonl"),
        "leads.sqlite": ("export", "--leads", "--format", "sqlite", tmp_path / "leads.sqlite"),
        "all.csv": ("export", tmp_path / "all.csv"),
        "all.jsonl": ("export", "--format", "jsonl", tmp_path / "all.jsonl"),
        "copy.sqlite": ("export", "--format", "sqlite", tmp_path / "copy.sqlite"),
        "backup.db": ("backup", tmp_path / "backup.db"),
    }
    for name_, args in outputs.items():
        done = run_cli(*args, "--db", db)
        assert done.returncode == 0, (name_, done.stderr)
    files = [db, Path(f"{db}-wal"), *(tmp_path / n for n in outputs)]
    assert raw_hits(files, name, email) == {name: 0, email: 0}
    # ... and not by accident: the other people are still there, byte for byte.
    other = query(db, "SELECT name FROM officers WHERE name <> '[erased]' AND officer_id <> ? LIMIT 1", (officer_id,))[0][0]
    assert raw_hits([db], other)[other] > 0 and raw_hits([tmp_path / "all.csv"], other)[other] > 0
    assert query(db, "SELECT DISTINCT name FROM officers WHERE officer_id = ?", (officer_id,)) == [("[erased]",)]
    assert query(db, "SELECT count(*) FROM event_log WHERE event_type = 'person.forgotten'")[0][0] == 2

    audited = run_cli("audit", "--json", "--db", db)
    assert audited.returncode == 0, audited.stdout[-2000:]
    assert json.loads(audited.stdout)["verdict"] == "compliant"
    live = {t: table(db, t) for t in ("officers", "emails", "domains", "companies")}
    assert run_cli("replay", "--verify", "--db", db).returncode == 0
    assert run_cli("replay", "--db", db).returncode == 0
    assert {t: table(db, t) for t in live} == live
    # Forgetting again is safe, and changes nothing.
    again = run_cli("forget", officer_id, "--db", db)
    assert again.returncode == 0 and "already forgotten" in again.stdout
