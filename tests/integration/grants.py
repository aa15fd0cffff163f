"""What the endpoint's artifact front (`codepipeline_local.s3front.ArtifactFront`) asks before it lets a request
through to moto's S3: the grant of the access key id that signed it. `Grants` answers with the grants the test
issued, or those another lookup gives (the local endpoint's, `endpoint.store.grant`), and records every access key
id asked about and every request refused for its credentials: unknown (`InvalidAccessKeyId`) or expired
(`ExpiredToken`, which quotes the session token it refused, as S3 does)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from codepipeline_local.job import Grant, IssuedCredentials

if TYPE_CHECKING:
    from codepipeline_local.artifacts import Location

Lookup = Callable[[str], Grant | None]


class Grants:
    def __init__(self, lookup: Lookup | None = None) -> None:
        self.issued: dict[str, Grant] = {}
        self.lookup: Lookup = lookup or self.issued.get
        self.seen: list[str] = []
        self.refused = 0
        self._lock = threading.Lock()

    def __call__(self, access_key_id: str) -> Grant | None:
        grant = self.lookup(access_key_id)
        with self._lock:
            self.seen.append(access_key_id)
            self.refused += grant is None or grant.credentials.expired()
        return grant

    def issue(self, job_id: str, readable: set[Location], writable: set[Location], ttl_s: float) -> IssuedCredentials:
        """New credentials for a job: reading `readable` and `writable`, writing `writable`, for `ttl_s`."""
        credentials = IssuedCredentials.new(job_id, ttl_s)
        with self._lock:
            self.issued[credentials.access_key_id] = Grant(
                credentials, frozenset(readable | writable), frozenset(writable)
            )
        return credentials

    def expire(self, access_key_id: str) -> None:
        """From now on, S3 answers that these credentials expired."""
        with self._lock:
            self.issued[access_key_id].credentials.expires_at = 0.0


def expired_at_first_use(lookup: Lookup) -> Lookup:
    """`lookup`'s grants, with each job's credentials answered as expired the first time any of them is used: as S3
    refuses credentials that have just expired, so the job must fetch its details again and retry."""
    refused_once: set[str] = set()
    lock = threading.Lock()

    def answer(access_key_id: str) -> Grant | None:
        grant = lookup(access_key_id)
        if grant is None:
            return None
        with lock:
            first = grant.credentials.job_id not in refused_once
            refused_once.add(grant.credentials.job_id)
        return replace(grant, credentials=replace(grant.credentials, expires_at=0.0)) if first else grant

    return answer
