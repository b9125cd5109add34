"""Proof that a service's migrations are reversible, on a real database.

Going down and back up must land on exactly the schema the first upgrade built (compared with
`schema_snapshot`), both in one go (head -> base -> head) and one revision at a time (each
revision down, then up again). A downgrade that forgets an index, restores a default differently
or leaves a table behind fails here, naming the object. Synchronous: Alembic runs its own event
loop, so call this from a thread without a running one.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from chassis.migrations import downgrade, revisions, upgrade
from fleetctl.schema_snapshot import SchemaSnapshot, snapshot_schema
from fleetctl.stack import Stack, spec

BASE = "base"


class RoundTripError(RuntimeError):
    """The schema after going down and up again is not the schema the upgrade built."""


@dataclass(frozen=True, slots=True)
class MigrationRoundTrip:
    service_dir: Path  # holds alembic.ini and alembic/
    url: str  # SQLAlchemy URL of the role that owns the schema, as the service migrates
    admin_dsn: str  # libpq DSN that may read the catalogs, for the snapshots
    schema: str

    @classmethod
    def of_service(cls, stack: Stack, service: str) -> MigrationRoundTrip:
        owner = spec(service)
        if owner.schema is None:
            msg = f"{service} owns no database schema"
            raise ValueError(msg)
        return cls(owner.directory, stack.database_url(owner), stack.admin_dsn, owner.schema)

    def full(self) -> None:
        """head -> base -> head: base leaves the schema as it was, head is rebuilt identically."""
        head = revisions(self.service_dir)[-1]
        before = self._unmigrated()
        built = self._to(head, down=False)
        self._expect(before, self._to(BASE, down=True), f"after downgrading {head} to base")
        self._expect(built, self._to(head, down=False), f"after upgrading base to {head} again")

    def stepwise(self) -> None:
        """Each revision, from head down: downgrade it, upgrade it again, downgrade it again."""
        chain = revisions(self.service_dir)
        states = [self._unmigrated()]
        states += [self._to(revision, down=False) for revision in chain]
        for index in range(len(chain), 0, -1):
            revision, below = chain[index - 1], (chain[index - 2] if index > 1 else BASE)
            upper, lower = states[index], states[index - 1]
            self._expect(lower, self._to(below, down=True), f"after downgrading {revision}")
            self._expect(upper, self._to(revision, down=False), f"after re-applying {revision}")
            self._expect(lower, self._to(below, down=True), f"after downgrading {revision} again")
        self._expect(states[-1], self._to(chain[-1], down=False), "after upgrading to head again")

    def _unmigrated(self) -> SchemaSnapshot:
        """The starting point: a schema no migration of this service has touched yet."""
        recorded = self._version()
        if recorded is not None:
            msg = f"schema {self.schema} is already at {recorded}: start from a fresh database"
            raise RoundTripError(msg)
        return self._snapshot()

    def _to(self, revision: str, *, down: bool) -> SchemaSnapshot:
        """Migrate to `revision`, check that it is the recorded version, snapshot the schema."""
        if down:
            downgrade(self.service_dir, self.url, revision)
        else:
            upgrade(self.service_dir, self.url, revision)
        recorded = self._version()
        if recorded != (None if revision == BASE else revision):
            msg = f"schema {self.schema}: migrating to {revision} recorded {recorded!r}"
            raise RoundTripError(msg)
        return self._snapshot()

    def _expect(self, expected: SchemaSnapshot, actual: SchemaSnapshot, when: str) -> None:
        differences = expected.differences(actual)
        if differences:
            listing = "\n  ".join(differences)
            msg = f"schema {self.schema} {when} differs:\n  {listing}"
            raise RoundTripError(msg)

    def _snapshot(self) -> SchemaSnapshot:
        return asyncio.run(snapshot_schema(self.admin_dsn, self.schema))

    def _version(self) -> str | None:
        async def read() -> str | None:
            conn = await asyncpg.connect(self.admin_dsn, timeout=5)
            try:
                table = await conn.fetchval(
                    "SELECT to_regclass($1)", f"{self.schema}.alembic_version"
                )
                if table is None:
                    return None
                return await conn.fetchval(f"SELECT version_num FROM {table}")  # type: ignore[no-any-return]
            finally:
                await conn.close()

        return asyncio.run(read())
