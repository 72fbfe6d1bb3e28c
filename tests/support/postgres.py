"""The test session's embedded PostgreSQL: fresh databases, roles and auth rules on demand.

One server per test session (``deployment.embedded_postgres`` in a temporary directory,
about a second to start); every test or server that needs isolation gets a database of its
own, so runs never see each other's state.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from psycopg import sql

from deployment import embedded_postgres


class TestPostgres:
    """An embedded PostgreSQL server owned by the test session."""

    __test__ = False

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.admin_uri = embedded_postgres.acquire(directory)
        self.socket_dir = psycopg.conninfo.conninfo_to_dict(self.admin_uri)["host"]

    def close(self) -> None:
        embedded_postgres.release(self.directory)
        shutil.rmtree(self.directory, ignore_errors=True)

    def uri(self, database: str, user: str = "postgres", password: str | None = None) -> str:
        """A URI for ``database`` on this server, over its Unix socket."""
        secret = f":{quote(password)}" if password is not None else ":"
        return f"postgresql://{quote(user)}{secret}@/{database}?host={self.socket_dir}"

    def execute(self, statement: str | sql.Composable, database: str = "postgres") -> None:
        """Run one statement as the superuser."""
        with psycopg.connect(self.uri(database), autocommit=True) as conn:
            conn.execute(statement if isinstance(statement, sql.Composable) else sql.SQL(statement))

    def create_database(self, prefix: str = "test", owner: str | None = None) -> str:
        """A new, empty database; returns its name."""
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if owner is not None:
            statement = sql.SQL("{} OWNER {}").format(statement, sql.Identifier(owner))
        self.execute(statement)
        return name

    def fresh_uri(self, prefix: str = "test") -> str:
        """The URI of a new, empty database."""
        return self.uri(self.create_database(prefix))

    def create_role(self, name: str, password: str | None = None) -> None:
        """A login role without superuser rights."""
        statement = sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(name))
        if password is not None:
            statement = sql.SQL("{} PASSWORD {}").format(statement, sql.Literal(password))
        self.execute(statement)

    def require_password(self, role: str) -> None:
        """Make the server check ``role``'s password (the embedded server trusts local users)."""
        hba = self.directory / "pg_hba.conf"
        hba.write_text(f"local all {role} scram-sha-256\n" + hba.read_text())
        self.execute("SELECT pg_reload_conf()")


@pytest.fixture(scope="session")
def test_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestPostgres]:
    """The session's embedded PostgreSQL (started on first use)."""
    server = TestPostgres(tmp_path_factory.mktemp("postgres") / "data")
    try:
        yield server
    finally:
        server.close()
