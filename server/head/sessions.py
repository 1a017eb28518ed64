"""Sessions of the encrypted-head service: each holds one device's public Galois keys.

A session is opened once per device connection (the key upload is the expensive part) and
identified by an unguessable token. The store bounds how many sessions are held at once and
forgets one that has been idle too long, so stale keys do not pile up in memory.
"""

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import tenseal.sealapi as seal


class UnknownSessionError(KeyError):
    """No open session has this id (never opened, closed, or expired)."""


class SessionLimitError(RuntimeError):
    """A bound was reached: sessions held by the service, or requests in flight in one."""


@dataclass
class HeadSession:
    """One device's keys, when it last used them (for idle expiry), and the lock that lets it
    run one request at a time."""

    galois_keys: seal.GaloisKeys
    last_used: float
    lock: threading.Lock = field(default_factory=threading.Lock)


class SessionStore:
    """Thread-safe map from session id to `HeadSession`, bounded in size and idle time."""

    def __init__(self, max_sessions: int = 32, idle_timeout_s: float = 600.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_sessions = max_sessions
        self.idle_timeout_s = idle_timeout_s
        self._clock = clock
        self._sessions: dict[str, HeadSession] = {}
        self._lock = threading.Lock()

    def _expire(self) -> None:
        now = self._clock()
        stale = [sid for sid, s in self._sessions.items()
                 if now - s.last_used > self.idle_timeout_s]
        for sid in stale:
            del self._sessions[sid]

    def open(self, galois_keys: seal.GaloisKeys) -> str:
        """Store the keys under a new random id; refuses when the store is full."""
        with self._lock:
            self._expire()
            if len(self._sessions) >= self.max_sessions:
                raise SessionLimitError(f"the service holds its maximum of {self.max_sessions} "
                                        "sessions; close one or retry later")
            session_id = secrets.token_urlsafe(24)
            self._sessions[session_id] = HeadSession(galois_keys, self._clock())
            return session_id

    def get(self, session_id: str) -> HeadSession:
        """The live session `session_id`, marked as used now."""
        with self._lock:
            self._expire()
            session = self._sessions.get(session_id)
            if session is None:
                raise UnknownSessionError(session_id)
            session.last_used = self._clock()
            return session

    def close(self, session_id: str) -> None:
        with self._lock:
            if self._sessions.pop(session_id, None) is None:
                raise UnknownSessionError(session_id)

    def __len__(self) -> int:
        with self._lock:
            self._expire()
            return len(self._sessions)
