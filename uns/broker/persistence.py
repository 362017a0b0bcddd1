"""Broker state on disk: retained messages and persistent sessions in one SQLite file (WAL), written behind.

Retained messages arrive at up to ~100k/s from the Sparkplug host, so the hot path only notes the
topic as dirty; :meth:`BrokerStore.flush` writes the latest value of each dirty topic (and each
changed persistent session) in one transaction, in a worker thread, every
``persistence.flush_interval_s`` and on a clean stop. A crash loses at most one flush interval.

A file that is not a readable database is moved aside (``broker.sqlite3.corrupt-<ts>``) with an
ERROR, and the broker starts empty: a damaged file never stops the hub from starting.
:class:`PersistentBroker` loads the file before the listeners open and runs the flush loop.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from amqtt.broker import RetainedApplicationMessage
from amqtt.mqtt.pubrel import PubrelPacket
from amqtt.session import OutgoingApplicationMessage, Session

from uns.broker.sessions import QueuedMessage, SessionBroker, SessionManager
from uns.logs import RateLimitedLog

__all__ = ["FILE_NAME", "BrokerStore", "InflightRow", "PersistentBroker", "SavedSession", "SavedState"]

log = logging.getLogger(__name__)

FILE_NAME = "broker.sqlite3"

_SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS retained (topic TEXT PRIMARY KEY, payload BLOB NOT NULL, qos INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (
    client_id TEXT PRIMARY KEY, username TEXT, last_disconnect REAL, dropped INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS subscriptions (
    client_id TEXT NOT NULL, filter TEXT NOT NULL, qos INTEGER NOT NULL, PRIMARY KEY (client_id, filter));
CREATE TABLE IF NOT EXISTS messages (
    client_id TEXT NOT NULL, seq INTEGER NOT NULL, packet_id INTEGER, topic TEXT NOT NULL,
    payload BLOB NOT NULL, qos INTEGER NOT NULL, state TEXT NOT NULL, PRIMARY KEY (client_id, seq));
"""
# messages.state: "inflight" (PUBLISH sent, not acknowledged), "pubrel" (QoS 2 PUBREC came), "queued"


@dataclass(frozen=True, slots=True, kw_only=True)
class InflightRow:
    """One unacknowledged outgoing QoS 1/2 message."""

    packet_id: int
    topic: str
    payload: bytes
    qos: int
    pubrel: bool
    """True when PUBREC came (QoS 2): only the PUBREL is owed."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SavedSession:
    """A clean_session=0 session as stored."""

    client_id: str
    username: str | None
    last_disconnect: float | None
    dropped: int
    subscriptions: tuple[tuple[str, int], ...]
    inflight: tuple[InflightRow, ...]
    queued: tuple[tuple[str, bytes, int], ...]
    """(topic, payload, qos) in queue order."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SavedState:
    """Everything loaded at start."""

    retained: tuple[tuple[str, bytes, int], ...]
    sessions: tuple[SavedSession, ...]


class BrokerStore:
    """The SQLite file under the data directory; every method but the constructor runs in a worker thread."""

    def __init__(self, *, data_dir: Path) -> None:
        self.path = data_dir / FILE_NAME
        self._lock = threading.Lock()  # one writer at a time (flush and close may overlap at shutdown)
        self._db: sqlite3.Connection | None = None
        self._saved_sessions: set[str] = set()

    # --- open and load ------------------------------------------------------------------------

    def load(self) -> SavedState:
        """Open (or create) the file and read it all; a corrupt file is moved aside and we start empty."""
        try:
            self._db = self._open()
            return self._read(self._db)
        except sqlite3.DatabaseError as exc:
            if self._db is not None:
                self._db.close()
                self._db = None
            moved = self._move_aside()
            log.error(
                "broker database %s is unreadable (%s): moved it to %s and started with no retained messages "
                "or sessions; restore a backup there to get them back, or delete the moved file",
                self.path,
                exc,
                moved,
            )
            self._db = self._open()
            return SavedState(retained=(), sessions=())

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable at checkpoints, fast commits
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version not in (0, _SCHEMA_VERSION):
            db.close()
            raise sqlite3.DatabaseError(f"schema version {version}, this broker reads {_SCHEMA_VERSION}")
        db.executescript(_SCHEMA)
        db.execute(f"PRAGMA user_version={_SCHEMA_VERSION}")
        return db

    def _move_aside(self) -> Path:
        stamp = time.strftime("%Y%m%dT%H%M%S")
        target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        for suffix in ("", "-wal", "-shm"):
            source = Path(f"{self.path}{suffix}")
            if source.exists():
                source.replace(Path(f"{target}{suffix}"))
        return target

    def _read(self, db: sqlite3.Connection) -> SavedState:
        retained = tuple(
            (str(t), bytes(p), int(q)) for t, p, q in db.execute("SELECT topic, payload, qos FROM retained")
        )
        subs: dict[str, list[tuple[str, int]]] = {}
        for client_id, topic_filter, qos in db.execute("SELECT client_id, filter, qos FROM subscriptions"):
            subs.setdefault(client_id, []).append((topic_filter, int(qos)))
        inflight: dict[str, list[InflightRow]] = {}
        queued: dict[str, list[tuple[str, bytes, int]]] = {}
        rows = db.execute(
            "SELECT client_id, packet_id, topic, payload, qos, state FROM messages ORDER BY client_id, seq"
        )
        for client_id, packet_id, topic, payload, qos, state in rows:
            if state == "queued":
                queued.setdefault(client_id, []).append((topic, bytes(payload), int(qos)))
            else:
                row = InflightRow(
                    packet_id=int(packet_id),
                    topic=topic,
                    payload=bytes(payload),
                    qos=int(qos),
                    pubrel=state == "pubrel",
                )
                inflight.setdefault(client_id, []).append(row)
        sessions = tuple(
            SavedSession(
                client_id=client_id,
                username=username,
                last_disconnect=last_disconnect,
                dropped=int(dropped),
                subscriptions=tuple(subs.get(client_id, ())),
                inflight=tuple(inflight.get(client_id, ())),
                queued=tuple(queued.get(client_id, ())),
            )
            for client_id, username, last_disconnect, dropped in db.execute(
                "SELECT client_id, username, last_disconnect, dropped FROM sessions"
            )
        )
        self._saved_sessions = {session.client_id for session in sessions}
        return SavedState(retained=retained, sessions=sessions)

    # --- write behind -------------------------------------------------------------------------

    def flush(
        self,
        *,
        retained_topics: Iterable[str],
        retained: Callable[[str], tuple[bytes, int] | None],
        sessions: Iterable[SavedSession],
        live_sessions: set[str],
    ) -> int:
        """Write dirty retained topics (latest value, or delete) and changed sessions in one transaction.

        Args:
            retained_topics: topics whose retained message changed.
            retained: ``topic -> (payload, qos)`` now, or None when it was cleared; called in this thread.
            sessions: persistent sessions that changed, as they are now.
            live_sessions: client ids of every persistent session that exists; stored others are deleted.

        Returns:
            Rows written.
        """
        with self._lock:
            db = self._db
            if db is None:
                return 0
            upserts: list[tuple[str, bytes, int]] = []
            deletes: list[tuple[str]] = []
            for topic in retained_topics:
                found = retained(topic)
                if found is None:
                    deletes.append((topic,))
                else:
                    upserts.append((topic, found[0], found[1]))
            gone = self._saved_sessions - live_sessions
            written = len(upserts) + len(deletes)
            db.execute("BEGIN")
            try:
                if upserts:
                    db.executemany("INSERT OR REPLACE INTO retained (topic, payload, qos) VALUES (?, ?, ?)", upserts)
                if deletes:
                    db.executemany("DELETE FROM retained WHERE topic = ?", deletes)
                for client_id in gone:
                    self._delete_session(db, client_id)
                for session in sessions:
                    written += self._write_session(db, session)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            self._saved_sessions -= gone
            return written

    def _delete_session(self, db: sqlite3.Connection, client_id: str) -> None:
        for table in ("sessions", "subscriptions", "messages"):
            db.execute(f"DELETE FROM {table} WHERE client_id = ?", (client_id,))  # noqa: S608  (fixed names)

    def _write_session(self, db: sqlite3.Connection, session: SavedSession) -> int:
        client_id = session.client_id
        self._delete_session(db, client_id)
        db.execute(
            "INSERT INTO sessions (client_id, username, last_disconnect, dropped) VALUES (?, ?, ?, ?)",
            (client_id, session.username, session.last_disconnect, session.dropped),
        )
        db.executemany(
            "INSERT INTO subscriptions (client_id, filter, qos) VALUES (?, ?, ?)",
            [(client_id, topic_filter, qos) for topic_filter, qos in session.subscriptions],
        )
        rows: list[tuple[str, int, int | None, str, bytes, int, str]] = [
            (client_id, seq, m.packet_id, m.topic, m.payload, m.qos, "pubrel" if m.pubrel else "inflight")
            for seq, m in enumerate(session.inflight)
        ]
        base = len(rows)
        rows += [(client_id, base + seq, None, t, p, q, "queued") for seq, (t, p, q) in enumerate(session.queued)]
        db.executemany(
            "INSERT INTO messages (client_id, seq, packet_id, topic, payload, qos, state) VALUES (?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        self._saved_sessions.add(client_id)
        return 1 + len(session.subscriptions) + len(rows)

    def close(self) -> None:
        """Close the file (after the last flush)."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None


def _snapshot(session: Session) -> SavedSession:
    """``session`` as it is now, to store (call on the event loop: it reads live state)."""
    state = SessionManager.state(session)
    inflight = tuple(
        InflightRow(
            packet_id=int(m.packet_id),
            topic=m.topic,
            payload=bytes(m.data),
            qos=int(m.qos or 0),
            pubrel=m.pubrel_packet is not None,
        )
        for m in list(session.inflight_out.values())
    )
    connected = session.transitions.state == "connected"
    return SavedSession(
        client_id=str(session.client_id),
        username=session.username,
        last_disconnect=None if connected else session.last_disconnect_time,
        dropped=state.dropped,
        subscriptions=tuple(state.subscriptions.items()),
        inflight=inflight,
        queued=tuple((q.topic, q.payload, q.qos) for q in state.queue),
    )


def _restore(session: Session, saved: SavedSession) -> None:
    """Fill an offline amqtt session from what was stored (subscriptions are the broker's job)."""
    session.clean_session = False
    session.username = saved.username
    if saved.last_disconnect is not None:
        session.last_disconnect_time = int(saved.last_disconnect)
    state = SessionManager.state(session)
    state.dropped = saved.dropped
    state.queue.extend(QueuedMessage(topic=t, payload=p, qos=q) for t, p, q in saved.queued)
    for row in saved.inflight:
        message = OutgoingApplicationMessage(row.packet_id, row.topic, row.qos, row.payload, False)
        message.publish_packet = message.build_publish_packet()  # it was sent: the re-send has DUP=1
        if row.pubrel:
            message.pubrel_packet = PubrelPacket.build(row.packet_id)
        session.inflight_out[row.packet_id] = message


class PersistentBroker(SessionBroker):
    """:class:`SessionBroker` whose retained messages and persistent sessions live in a :class:`BrokerStore`."""

    store: BrokerStore | None = None
    _flush_interval_s: float = 1.0
    _flusher: asyncio.Task[None] | None = None
    _retained_dirty: set[str]
    _warn: RateLimitedLog

    async def start(self) -> None:
        """Start amqtt (which loads the stored state, see below), then flush behind."""
        await super().start()
        if self.store is not None:
            self._flusher = asyncio.create_task(self._flush_loop(), name="uns.broker.persistence")

    async def _start_listeners(self) -> None:
        # amqtt's start() clears sessions and retained messages, then opens listeners: load in between
        if self.store is not None:
            self._load(await asyncio.to_thread(self.store.load))
            for session, _handler in list(self._sessions.values()):
                subscriptions = self.session_manager.state(session).subscriptions
                saved = dict(subscriptions)
                subscriptions.clear()
                for topic_filter, qos in saved.items():
                    await self.add_subscription((topic_filter, qos), session)  # the ACL may have changed
            self.session_manager.dirty.clear()
        await super()._start_listeners()

    def _load(self, saved: SavedState) -> None:
        for topic, payload, qos in saved.retained:
            self._retained_messages[topic] = RetainedApplicationMessage(None, topic, payload, qos)
        for item in saved.sessions:
            handler, session = self.create_offline_session(item.client_id)
            _restore(session, item)
            self.session_manager.state(session).subscriptions.update(item.subscriptions)
            self._sessions[item.client_id] = (session, handler)
        if saved.retained or saved.sessions:
            assert self.store is not None  # noqa: S101  (only called with a store)
            log.info(
                "broker state loaded from %s: %d retained messages, %d persistent sessions",
                self.store.path,
                len(saved.retained),
                len(saved.sessions),
            )

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(self._flush_interval_s)
            try:
                await self.flush()
            except sqlite3.Error as exc:  # disk full, permissions: keep serving, try again next time
                assert self.store is not None  # noqa: S101  (the loop runs only with a store)
                self._warn.warning(
                    "persistence", "could not write broker state to %s: %s (retrying)", self.store.path, exc
                )

    def _retained_value(self, topic: str) -> tuple[bytes, int] | None:
        found = self._retained_messages.get(topic)  # called from the flush thread: one dict read
        return None if found is None else (bytes(found.data), found.qos or 0)

    async def flush(self) -> int:
        """Write changed retained messages and persistent sessions to disk now; returns rows written."""
        store = self.store
        if store is None:
            return 0
        topics, self._retained_dirty = self._retained_dirty, set()
        changed, self.session_manager.dirty = self.session_manager.dirty, set()
        live = {cid for cid, (s, _) in self._sessions.items() if s.clean_session is False}
        saved = [_snapshot(self._sessions[cid][0]) for cid in changed if cid in live]
        try:
            return await asyncio.to_thread(
                store.flush, retained_topics=topics, retained=self._retained_value, sessions=saved, live_sessions=live
            )
        except BaseException:
            self._retained_dirty |= topics  # not written: the next flush tries again
            self.session_manager.dirty |= changed
            raise

    async def _stop_persistence(self) -> None:
        flusher, self._flusher = self._flusher, None
        if flusher is not None:
            flusher.cancel()
            await asyncio.gather(flusher, return_exceptions=True)
        if self.store is not None:
            try:
                await self.flush()
            except sqlite3.Error as exc:
                log.error("could not write broker state to %s at shutdown: %s", self.store.path, exc)
            await asyncio.to_thread(self.store.close)
