"""`cli.py` as the entry point: every command group is listed and reachable, and a mistyped
one is a usage error, as before the groups moved into their own modules."""

from __future__ import annotations

import subprocess
import sys

from tests.support.process import ROOT

GROUPS = {  # each group and how its one-line summary starts
    "db": "The database",
    "events": "Live events",
    "faq": "Check FAQ files",
    "mail": "Mail without Graph",
    "outbox": "Jobs that gave up",
    "purge": "Remove (or with --dry-run, count) data",
    "roles": "Hosts and moderators",
    "subject": "Subject rights (UK GDPR)",
    "teams": "The Teams app package",
}


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "cli.py"), *args], check=False, cwd=ROOT, capture_output=True,
                          text=True, timeout=60, env={"PATH": "/usr/bin:/bin"})


def test_help_lists_every_group_in_order() -> None:
    """Listing a group loads its module: each one is there and names itself as before."""
    done = cli("--help")
    assert done.returncode == 0, done.stderr
    listed = done.stdout.split("Commands:\n", 1)[1].splitlines()
    assert [line.split()[0] for line in listed] == sorted(GROUPS)
    for line in listed:
        name, summary = line.split(maxsplit=1)
        assert summary.startswith(GROUPS[name])


def test_an_unknown_group_is_a_usage_error() -> None:
    done = cli("event", "list")
    assert done.returncode == 2
    assert "Error: No such command 'event'." in done.stderr
    assert done.stdout == ""
