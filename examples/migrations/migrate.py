#!/usr/bin/env python3
"""The migrations of teal's example, split into expand and contract halves.

    migrate.py expand VERSION     before VERSION starts (teal's pre_deploy hook)
    migrate.py contract VERSION   once VERSION is the oldest version that may run
                                  again (post_retire, with {previous_version})

Each migration belongs to the release that first needs it. Its expand half only
adds (tables, nullable columns), so the release before still works; its contract
half removes or tightens what only older releases needed. A contract runs once the
release that introduced the migration is itself the previous version: then no
release that can still come back (by `teal rollback`) predates it.

Every half runs once; the record of what ran lives in the database itself, so
running a step again is a no-op.
"""

import sqlite3
import sys
import os

DB = os.environ.get("NOTES_DB", "notes.db")


def create_notes(conn):
    conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL)")


def add_author(conn):
    # Nullable: 1.x inserts rows without it and must keep working.
    conn.execute("ALTER TABLE notes ADD COLUMN author TEXT")


def require_author(conn):
    # Only 2.x and later run now: fill the gaps 1.x left and make the column
    # required. SQLite cannot add NOT NULL in place: rebuild the table.
    conn.execute("UPDATE notes SET author = 'anonymous' WHERE author IS NULL")
    conn.execute(
        "CREATE TABLE notes_new (id INTEGER PRIMARY KEY, text TEXT NOT NULL, "
        "author TEXT NOT NULL DEFAULT 'anonymous')"
    )
    conn.execute("INSERT INTO notes_new (id, text, author) SELECT id, text, author FROM notes")
    conn.execute("DROP TABLE notes")
    conn.execute("ALTER TABLE notes_new RENAME TO notes")


# (release major version, name, expand, contract)
MIGRATIONS = [
    (1, "create notes", create_notes, None),
    (2, "notes.author", add_author, require_author),
]


def major(version):
    try:
        return int(version.split(".")[0])
    except ValueError:
        return 0


def run(half, version):
    conn = sqlite3.connect(DB, timeout=30, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE IF NOT EXISTS schema_steps (step TEXT PRIMARY KEY)")
    for release, name, expand, contract in MIGRATIONS:
        step = expand if half == "expand" else contract
        if step is None or release > major(version):
            continue
        key = f"{release}.{half}"
        conn.execute("BEGIN IMMEDIATE")
        done = conn.execute("SELECT 1 FROM schema_steps WHERE step = ?", (key,)).fetchone()
        if done:
            conn.execute("ROLLBACK")
            print(f"{half} {release} ({name}): already done")
            continue
        step(conn)
        conn.execute("INSERT INTO schema_steps (step) VALUES (?)", (key,))
        conn.execute("COMMIT")
        print(f"{half} {release} ({name}): done")


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("expand", "contract"):
        sys.exit("usage: migrate.py expand|contract VERSION")
    half, version = sys.argv[1], sys.argv[2]
    if not version:
        print(f"{half}: no version given (first deploy?): nothing to do")
        return
    run(half, version)


if __name__ == "__main__":
    main()
