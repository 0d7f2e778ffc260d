#!/usr/bin/env python3
"""Notes: the app of teal's migrations example (Python standard library only).

One SQLite file is shared by every instance of both slots. What the app expects
of the schema depends on its major version (from TEAL_VERSION):

- 1.x reads and writes notes(id, text);
- 2.x and later also read and write `author`, a column migration 2 adds.

1.x keeps working once the column exists (it never names it, and the column
accepts NULL until migration 2 is contracted), so a rollback from 2.x to 1.x is
safe. 2.x reads NULL authors (rows 1.x wrote) as "anonymous".

GET /healthz answers 200 only when the schema has what this version needs, so a
2.x deployed without its `pre_deploy` expand never passes the health gate.

  GET  /           {"version": ..., "notes": [...]}
  POST /notes      the body is the note's text; ?author=NAME (2.x)
  GET  /schema     the notes table's columns (name, notnull), for the test
  GET  /healthz    200 "ok", or 503 naming what is missing
"""

import json
import os
import signal
import sqlite3
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

VERSION = os.environ.get("TEAL_VERSION", "1.0.0")
MAJOR = int(VERSION.split(".")[0])
DB = os.environ.get("NOTES_DB", "notes.db")


def connect():
    conn = sqlite3.connect(DB, timeout=10)
    conn.execute("PRAGMA busy_timeout = 10000")
    return conn


def columns(conn):
    return {row[1]: row[3] for row in conn.execute("PRAGMA table_info(notes)")}


def missing(conn):
    """What this version needs from the schema and does not find, if anything."""
    have = columns(conn)
    if "text" not in have:
        return "table notes(text) is missing: run `migrate.py expand`"
    if MAJOR >= 2 and "author" not in have:
        return "column notes.author is missing: run `migrate.py expand`"
    return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def answer(self, status, body):
        data = json.dumps(body).encode() if not isinstance(body, str) else body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        path = urlparse(self.path).path
        with connect() as conn:
            if path == "/healthz":
                problem = missing(conn)
                return self.answer(503 if problem else 200, problem or "ok")
            if path == "/schema":
                return self.answer(200, {"columns": columns(conn)})
            if MAJOR >= 2:
                rows = conn.execute(
                    "SELECT id, text, COALESCE(author, 'anonymous') FROM notes ORDER BY id"
                )
                notes = [{"id": i, "text": t, "author": a} for i, t, a in rows]
            else:
                rows = conn.execute("SELECT id, text FROM notes ORDER BY id")
                notes = [{"id": i, "text": t} for i, t in rows]
        self.answer(200, {"app": "notes", "version": VERSION, "notes": notes})

    def do_POST(self):
        url = urlparse(self.path)
        if url.path != "/notes":
            return self.answer(404, {"error": "not found"})
        length = int(self.headers.get("Content-Length") or 0)
        text = self.rfile.read(length).decode()
        with connect() as conn:
            if MAJOR >= 2:
                author = parse_qs(url.query).get("author", ["anonymous"])[0]
                conn.execute("INSERT INTO notes (text, author) VALUES (?, ?)", (text, author))
            else:
                conn.execute("INSERT INTO notes (text) VALUES (?)", (text,))
        self.answer(201, {"version": VERSION, "saved": text})

    def log_message(self, *args):
        pass


def main():
    server = ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler)
    server.daemon_threads = True
    # SIGTERM (teal stopping the slot, after draining it): finish and exit.
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(f"notes {VERSION} listening on port {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
