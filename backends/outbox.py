"""The event outbox: every batch recordEvents accepted, kept until Personalize has it.

`recordEvents` answers only once its batch is stored here; the sender
(`backends.events`) deletes a batch when PutEvents took it, and moves one Personalize
refuses for good to the dead letters, with the reason. What is left when a process
stops, cleanly or not, is sent again by the next one: delivery is at least once, and
every event keeps its eventId, so a copy is identifiable.

Two stores, one contract:

- `JournalOutbox` (default): SQLite in `events.journal_dir`, WAL mode with
  synchronous=FULL, so a batch is on disk (the WAL fsynced) before recordEvents answers,
  power loss included. The stdlib driver runs on one thread of its own, off the event
  loop. Processes on one machine (WORKERS > 1) may share the directory; a directory on
  a network file system may not (SQLite's locks are not reliable there).
- `backends.outbox_redis.RedisOutbox`: a Redis stream, for replicas whose disks do not
  outlive them; as durable as that Redis is configured to be (AOF, replicas).

Ownership: each process is an owner with a lease it renews every `events.lease / 3`
seconds; a batch belongs to the process that stored it. A batch whose owner let its
lease run out, stopped cleanly (it gives its batches up), or (journal only) is no longer
a running process on this host (same hostname; containers sharing a journal volume
have their own, so only leases count between them), is taken by the next process that looks, in one
transaction, so two processes never both own a batch; a process that stalls past its
lease and then sends what it held may duplicate a batch once (at least once, not twice
forever). The order of a session's batches is kept within a process.

`take(held)` returns, besides the batches taken over, this process's own batches whose
ids are not in `held` (the ids the sender holds in memory): a take or add whose reply
was lost (a timeout, a dropped connection) left batches owned by this live process that
it does not hold, and nobody would send them until it stops. The sender keeps a batch's
id in `held` until the batch has left the outbox (delivered and done, or dead-lettered),
so only a batch whose `done`/`dead` failed is taken again: at least once, not never.

`python -m backends.outbox dead-letters [--config F] [--requeue]` prints the dead
letters of the configured outbox as JSON lines (and, with --requeue, puts them back to
be sent by the next start or the running processes' next look).
"""

import argparse
import asyncio
import functools
import os
import socket
import sqlite3
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Container, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import orjson

from domain.errors import ConfigurationError
from settings import CacheSettings, EventsSettings

T = TypeVar("T")

JOURNAL_FILE = "events.sqlite3"


@dataclass(frozen=True)
class Stored:
    """One batch as the outbox holds it: `order` sorts a session's batches."""

    id: str
    order: tuple[int, int]
    session: str
    params: dict[str, Any]
    added: float


@dataclass(frozen=True)
class DeadLetter:
    """A batch Personalize refused for good, with why."""

    id: str
    session: str
    params: dict[str, Any]
    added: float
    failed: float
    code: str
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "sessionId": self.session,
            "events": len(self.params.get("eventList", [])),
            "added": self.added,
            "failed": self.failed,
            "code": self.code,
            "reason": self.reason,
            "params": self.params,
        }


class OutboxError(Exception):
    """The outbox could not store or change a batch (disk, database or Redis failure)."""


class Outbox(Protocol):
    """Where accepted batches wait for Personalize; see the module docstring."""

    kind: str

    async def add(self, params: dict[str, Any]) -> Stored:
        """Store one batch durably, owned by this process."""
        ...

    async def take(self, held: Container[str] = frozenset()) -> list[Stored]:
        """Take over the batches no live process owns (they are this process's now), and
        return too those this process owns already whose id is not in `held`."""
        ...

    async def renew(self) -> None:
        """Extend this process's lease."""
        ...

    async def done(self, stored: Stored) -> None:
        """Forget a delivered batch."""
        ...

    async def dead(self, stored: Stored, code: str, reason: str) -> None:
        """Move a batch refused for good to the dead letters."""
        ...

    async def dead_count(self) -> int: ...

    async def dead_letters(self, limit: int) -> list[DeadLetter]: ...

    async def requeue(self) -> int:
        """Put every dead letter back among the batches to send; how many."""
        ...

    async def release(self) -> None:
        """Give this process's batches up (clean shutdown): the next start takes them at once."""
        ...


def owner_token() -> str:
    """This process as an owner: host, pid and a nonce (a reused pid is another owner)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def _alive(token: str, pid: int) -> bool:
    """Whether the owner may still run. Only a process on this host (same hostname: the
    same container, or the same machine) can be seen to be gone; any other is taken at
    its word until its lease runs out, as another PID namespace's pids mean nothing here."""
    if token.split(":", 1)[0] != socket.gethostname():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    id INTEGER PRIMARY KEY AUTOINCREMENT, session TEXT NOT NULL, params BLOB NOT NULL,
    added REAL NOT NULL, owner TEXT);
CREATE INDEX IF NOT EXISTS batches_owner ON batches (owner);
CREATE TABLE IF NOT EXISTS owners (
    token TEXT PRIMARY KEY, pid INTEGER NOT NULL, lease_until REAL NOT NULL);
CREATE TABLE IF NOT EXISTS dead (
    id INTEGER PRIMARY KEY, session TEXT NOT NULL, params BLOB NOT NULL, added REAL NOT NULL,
    failed REAL NOT NULL, code TEXT NOT NULL, reason TEXT NOT NULL);
"""


class JournalOutbox:
    """The SQLite journal; every statement runs on the outbox's own thread."""

    kind = "journal"

    def __init__(self, path: Path, lease: float, token: str | None = None) -> None:
        self.path = path
        self._lease = lease
        self._token = token or owner_token()
        self._pid = os.getpid()
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="event-outbox")
        self._db: sqlite3.Connection | None = None
        # Writes waiting for the next commit, and the task committing them: what arrives
        # while one commit runs goes into the next, one fsync for all (group commit).
        self._writes: list[tuple[Callable[[sqlite3.Connection], Any], asyncio.Future[Any]]] = []
        self._writer: asyncio.Task[None] | None = None

    @classmethod
    @asynccontextmanager
    async def open(cls, directory: Path, lease: float) -> AsyncIterator["JournalOutbox"]:
        outbox = cls(directory / JOURNAL_FILE, lease)
        try:
            await outbox._run(outbox._open)
        except OutboxError as exc:
            outbox._thread.shutdown()
            raise ConfigurationError(
                f"events.journal_dir: cannot open the event journal: {exc}"
            ) from None
        try:
            yield outbox
        finally:
            await outbox._settle()
            await outbox._run(outbox._close)
            outbox._thread.shutdown()

    async def _run(self, work: Callable[[], T]) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._thread, work)
        except (sqlite3.Error, OSError) as exc:
            raise OutboxError(f"event journal {self.path}: {exc}") from exc

    async def _write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run `work` in the next group commit; its result once that commit is on disk."""
        done: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._writes.append((work, done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._commit_writes())
        # Shielded: a caller that stops waiting does not take the others' commit with it.
        return await asyncio.shield(done)

    async def _commit_writes(self) -> None:
        while self._writes:
            group, self._writes = self._writes, []
            try:
                results = await self._run(functools.partial(self._commit, group))
            except Exception as exc:
                for _, done in group:
                    if not done.done():
                        done.set_exception(exc)
                continue
            for (_, done), result in zip(group, results, strict=True):
                if not done.done():
                    done.set_result(result)

    def _commit(
        self, group: list[tuple[Callable[[sqlite3.Connection], Any], asyncio.Future[Any]]]
    ) -> list[Any]:
        with self._transaction() as tx:
            return [work(tx) for work, _ in group]

    async def _settle(self) -> None:
        """Wait for the writes already asked for (their failures are their callers')."""
        if self._writer is not None:
            await asyncio.wait([self._writer])

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Autocommit: each statement group below opens its own transaction.
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA busy_timeout = 10000")
        db.execute("PRAGMA journal_mode = WAL")
        # FULL: every commit fsyncs the WAL, so an accepted batch survives power loss,
        # not only the process (NORMAL in WAL mode may lose the last commits then).
        db.execute("PRAGMA synchronous = FULL")
        db.executescript(_SCHEMA)
        self._db = db
        with self._transaction() as tx:
            tx.execute(
                "INSERT OR REPLACE INTO owners VALUES (?, ?, ?)",
                (self._token, self._pid, time.time() + self._lease),
            )

    def _close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    @property
    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise sqlite3.ProgrammingError("the event journal is closed")
        return self._db

    def _transaction(self) -> "_Tx":
        return _Tx(self._conn)

    async def add(self, params: dict[str, Any]) -> Stored:
        session, blob, added = str(params["sessionId"]), orjson.dumps(params), time.time()

        def insert(tx: sqlite3.Connection) -> int:
            cursor = tx.execute(
                "INSERT INTO batches (session, params, added, owner) VALUES (?, ?, ?, ?)",
                (session, blob, added, self._token),
            )
            return int(cursor.lastrowid or 0)

        row = await self._write(insert)
        return Stored(str(row), (row, 0), session, params, added)

    async def take(self, held: Container[str] = frozenset()) -> list[Stored]:
        def adopt() -> tuple[list[Stored], list[int]]:
            now = time.time()
            with self._transaction() as tx:
                mine = [
                    i
                    for (i,) in tx.execute(
                        "SELECT id FROM batches WHERE owner = ?", (self._token,)
                    ).fetchall()
                ]
                owners = tx.execute("SELECT token, pid, lease_until FROM owners").fetchall()
                gone = [
                    token
                    for token, pid, until in owners
                    if token != self._token and (until < now or not _alive(token, pid))
                ]
                tx.executemany("DELETE FROM owners WHERE token = ?", [(t,) for t in gone])
                rows = tx.execute(
                    "UPDATE batches SET owner = ? WHERE owner IS NULL OR owner NOT IN "
                    "(SELECT token FROM owners) RETURNING id, session, params, added",
                    (self._token,),
                ).fetchall()
            return [_row(*row) for row in rows], mine

        def fetch(ids: list[int]) -> list[Stored]:
            found = []
            for at in range(0, len(ids), 500):
                chunk = ids[at : at + 500]
                found += self._conn.execute(
                    "SELECT id, session, params, added FROM batches "
                    f"WHERE owner = ? AND id IN ({', '.join('?' * len(chunk))})",
                    (self._token, *chunk),
                ).fetchall()
            return [_row(*row) for row in found]

        taken, mine = await self._run(adopt)
        # Checked here, on the loop, then fetched: a batch leaves `held` only once it
        # left the journal, so what is fetched is not held.
        missing = [i for i in mine if str(i) not in held]
        if missing:
            taken += await self._run(functools.partial(fetch, missing))
        return sorted(taken, key=lambda stored: stored.order)

    async def renew(self) -> None:
        def extend() -> None:
            with self._transaction() as tx:
                tx.execute(
                    "INSERT OR REPLACE INTO owners VALUES (?, ?, ?)",
                    (self._token, self._pid, time.time() + self._lease),
                )

        await self._run(extend)

    async def done(self, stored: Stored) -> None:
        def delete(tx: sqlite3.Connection) -> None:
            tx.execute("DELETE FROM batches WHERE id = ?", (int(stored.id),))

        await self._write(delete)

    async def dead(self, stored: Stored, code: str, reason: str) -> None:
        letter = (
            int(stored.id),
            stored.session,
            orjson.dumps(stored.params),
            stored.added,
            time.time(),
            code,
            reason,
        )

        def move(tx: sqlite3.Connection) -> None:
            tx.execute("INSERT OR REPLACE INTO dead VALUES (?, ?, ?, ?, ?, ?, ?)", letter)
            tx.execute("DELETE FROM batches WHERE id = ?", (int(stored.id),))

        await self._write(move)

    async def dead_count(self) -> int:
        def count() -> int:
            return int(self._conn.execute("SELECT count(*) FROM dead").fetchone()[0])

        return await self._run(count)

    async def dead_letters(self, limit: int) -> list[DeadLetter]:
        def read() -> list[DeadLetter]:
            rows = self._conn.execute(
                "SELECT id, session, params, added, failed, code, reason FROM dead "
                "ORDER BY id LIMIT ?",
                (limit,),
            ).fetchall()
            return [
                DeadLetter(str(i), s, orjson.loads(p), a, f, c, r) for i, s, p, a, f, c, r in rows
            ]

        return await self._run(read)

    async def requeue(self) -> int:
        def move() -> int:
            with self._transaction() as tx:
                moved = tx.execute(
                    "INSERT INTO batches (session, params, added, owner) "
                    "SELECT session, params, added, NULL FROM dead ORDER BY id"
                ).rowcount
                tx.execute("DELETE FROM dead")
            return int(moved)

        return await self._run(move)

    async def release(self) -> None:
        await self._settle()

        def give_up() -> None:
            with self._transaction() as tx:
                tx.execute("UPDATE batches SET owner = NULL WHERE owner = ?", (self._token,))
                tx.execute("DELETE FROM owners WHERE token = ?", (self._token,))

        await self._run(give_up)


def _row(i: int, session: str, params: bytes, added: float) -> Stored:
    return Stored(str(i), (i, 0), session, orjson.loads(params), added)


class _Tx:
    """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error): one writer at a time across processes."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> sqlite3.Connection:
        self._db.execute("BEGIN IMMEDIATE")
        return self._db

    def __exit__(self, kind: object, exc: object, tb: object) -> None:
        self._db.execute("COMMIT" if kind is None else "ROLLBACK")


def check_journal_dir(events: EventsSettings) -> None:
    """Before serving: the journal's directory exists (made if need be) and is writable.

    A mistake here is the user's (a path on a read-only disk, a file in the way), so it
    stops start-up with one line naming the setting, not with a lifespan traceback.
    """
    if events.tracking_id is None or events.outbox != "journal":
        return
    directory = events.journal_dir
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigurationError(
            f"events.journal_dir: cannot make {directory}: {exc.strerror or exc}"
        ) from None
    if not os.access(directory, os.W_OK | os.X_OK):
        raise ConfigurationError(f"events.journal_dir: {directory} is not writable")


@asynccontextmanager
async def open_outbox(events: EventsSettings, cache: CacheSettings) -> AsyncIterator[Outbox]:
    """The configured outbox, open for this process and closed when the block ends."""
    if events.outbox == "redis":
        from backends.outbox_redis import RedisOutbox

        async with RedisOutbox.open(cache.redis_url, cache.key_prefix, events.lease) as redis:
            yield redis
        return
    async with JournalOutbox.open(events.journal_dir, events.lease) as journal:
        yield journal


def _print_lines(lines: Iterator[dict[str, Any]]) -> None:
    for line in lines:
        sys.stdout.write(orjson.dumps(line).decode() + "\n")


async def _dead_letters(requeue: bool, limit: int) -> int:
    from settings import load_settings

    settings = load_settings()
    async with open_outbox(settings.events, settings.cache) as outbox:
        letters = await outbox.dead_letters(limit)
        _print_lines(letter.to_json() for letter in letters)
        total = await outbox.dead_count()
        print(f"{total} dead letter(s) in the {outbox.kind} outbox", file=sys.stderr)
        if requeue:
            moved = await outbox.requeue()
            print(f"{moved} requeued: sent again by the running or next process", file=sys.stderr)
        # Not an owner of anything: the CLI never sends, so it gives its lease up at once.
        await outbox.release()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m backends.outbox")
    commands = parser.add_subparsers(dest="command", required=True)
    dead = commands.add_parser("dead-letters", help="print the batches refused for good")
    dead.add_argument("--config", help="the subgraph's TOML config (default: SUBGRAPH_CONFIG)")
    dead.add_argument("--limit", type=int, default=1000, help="print at most this many")
    dead.add_argument("--requeue", action="store_true", help="send them again")
    args = parser.parse_args(argv)
    if args.config:
        os.environ["SUBGRAPH_CONFIG"] = args.config
    try:
        return asyncio.run(_dead_letters(args.requeue, args.limit))
    except (ConfigurationError, OutboxError) as exc:
        print(f"dead-letters: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
