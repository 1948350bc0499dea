"""The admin commands read the bot's settings as the bot does (the same variables, spellings and
rules), and only those they use: a bad setting stops the commands that use it, with exit 2 and
the variable named, and no other; an option given on the command line wins without reading its
variable; --help shows the bot's defaults whatever the environment says."""

from __future__ import annotations

import asyncio
import json
import zipfile
from pathlib import Path

from click.testing import CliRunner, Result

from cli import cli

# Each setting here is one the bot refuses to start with; `db` and `roles` use none of them.
BAD_UNRELATED = {
    "SHARED_MAILBOX": "questions@council.example",  # Graph half set up: no GRAPH_TENANT_ID, ...
    "GRAPH_MAX_SENDS_PER_MINUTE": "lots",
    "METRICS_TOKEN": "short",
    "MicrosoftAppType": "AnyTenant",
    "TIMEZONE": "Mars/Olympus_Mons",
}
NO_ROLES = "No hosts or moderators yet (admins come from the ADMINS setting).\n"


async def _cli(*args: str, env: dict[str, str | None]) -> Result:
    """`cli.py ARGS` with `env` (in a thread: a command runs its own event loop)."""
    return await asyncio.to_thread(CliRunner().invoke, cli, list(args), env=env)


async def _granted(database_url: str) -> str:
    """What `roles list` shows of the database at `database_url`."""
    return (await _cli("roles", "list", "--database-url", database_url, env={})).stdout


async def test_a_bad_setting_a_command_does_not_use_does_not_stop_it(database_url: str) -> None:
    env: dict[str, str | None] = {**BAD_UNRELATED, "DATABASE_URL": database_url}
    upgraded = await _cli("db", "upgrade", env=env)
    assert (upgraded.exit_code, upgraded.stdout, upgraded.stderr) == (0, "database schema is up to date\n", "")
    granted = await _cli("roles", "grant", "moderator", "eve@x.example", env=env)
    assert (granted.exit_code, granted.stderr) == (0, "")
    assert await _granted(database_url) == "moderator  eve@x.example  (granted by cli)\n"  # DATABASE_URL was read


async def test_a_bad_setting_a_command_uses_stops_it_naming_the_variable(database_url: str) -> None:
    not_upgraded = await _cli("db", "upgrade", env={"DATABASE_URL": "mysql://db/bot"})
    assert (not_upgraded.exit_code, not_upgraded.stdout) == (2, "")
    assert "DATABASE_URL must be a sqlite:/// or postgresql:// URL" in not_upgraded.stderr
    refused = await _cli("roles", "grant", "moderator", "eve@x.example", env={"DATABASE_URL": "mysql://db/bot"})
    assert (refused.exit_code, refused.stdout) == (2, "")
    assert refused.stderr.startswith("Error: invalid settings:\n")
    assert "DATABASE_URL\n  Value error, DATABASE_URL must be a sqlite:/// or postgresql:// URL" in refused.stderr

    not_purged = await _cli("purge", "--database-url", database_url, env={"RETENTION_DAYS": "0"})
    assert (not_purged.exit_code, not_purged.stdout) == (2, "")
    assert "RETENTION_DAYS\n  Input should be greater than or equal to 1" in not_purged.stderr
    assert await _granted(database_url) == NO_ROLES


async def test_an_option_given_wins_and_its_variable_is_not_read(database_url: str, tmp_path: Path) -> None:
    env: dict[str, str | None] = {"DATABASE_URL": "mysql://db/bot", "RETENTION_DAYS": "soon"}
    granted = await _cli("roles", "grant", "host", "jo@x.example", "--database-url", database_url, env=env)
    assert (granted.exit_code, granted.stderr) == (0, "")
    assert await _granted(database_url) == "host       jo@x.example  (granted by cli)\n"
    purged = await _cli("purge", "--dry-run", "--days", "30", "--mail-outbox-dir", str(tmp_path),
                        "--database-url", database_url, env=env)
    assert purged.exit_code == 0, purged.stderr
    assert purged.stdout.startswith("would remove (data older than 30 days, audit entries older than 730 days):")


async def test_a_setting_is_read_as_the_bot_reads_it(database_url: str, tmp_path: Path) -> None:
    purged = await _cli("purge", "--dry-run", "--database-url", database_url,
                        env={"RETENTION_DAYS": "30", "AUDIT_RETENTION_DAYS": "90", "MAIL_OUTBOX_DIR": str(tmp_path)})
    assert purged.exit_code == 0, purged.stderr
    assert purged.stdout.startswith("would remove (data older than 30 days, audit entries older than 90 days):")

    app_id = "0f8fad5b-d9cb-469f-a165-70867728950e"  # the upper-case spelling the bot accepts too
    packaged = await _cli("teams", "package", "--output", str(tmp_path / "app.zip"),
                          env={"MicrosoftAppId": None, "MICROSOFTAPPID": app_id})
    assert packaged.exit_code == 0, packaged.stderr
    with zipfile.ZipFile(tmp_path / "app.zip") as archive:
        assert json.loads(archive.read("manifest.json"))["id"] == app_id


def test_help_shows_the_bots_defaults_whatever_the_environment_says() -> None:
    shown = CliRunner().invoke(cli, ["purge", "--help"], env={"RETENTION_DAYS": "soon", "DATABASE_URL": "mysql://x"})
    assert shown.exit_code == 0, shown.stderr
    said = " ".join(shown.stdout.split())
    assert "older than this [env RETENTION_DAYS]. [default: 365; x>=1]" in said
    assert "A plain SQLAlchemy URL [env DATABASE_URL]. [default: sqlite:///var/bot.db]" in said


def test_a_command_that_acts_as_the_bot_does_reads_its_whole_configuration(tmp_path: Path) -> None:
    """`mail receive` decides as the bot's inbox does, from the mail settings and more: a Graph
    mailbox half set up is refused as the bot would refuse it, before the mail is read."""
    refused = CliRunner().invoke(cli, ["mail", "receive", str(tmp_path / "none.eml"), "--database-url",
                                       f"sqlite:///{tmp_path}/bot.db"], env={"SHARED_MAILBOX": "q@council.example"})
    assert (refused.exit_code, refused.stdout) == (2, "")
    assert "Graph mail needs SHARED_MAILBOX, GRAPH_TENANT_ID and GRAPH_CLIENT_ID together" in refused.stderr


async def test_a_refused_setting_is_named_but_its_value_never_shown(database_url: str) -> None:
    """A value refused can be a secret: a metrics token too short, a password in a database URL."""
    refused = await _cli("db", "upgrade", env={"DATABASE_URL": "mysql://bot:Tr0ub4dor@db/bot"})
    assert refused.exit_code == 2 and "DATABASE_URL" in refused.stderr
    assert "Tr0ub4dor" not in refused.stderr
    token = "secret-but-short"
    whole = await _cli("subject", "export", "--user", "jo@council.example", "--database-url", database_url,
                       env={"METRICS_TOKEN": token})
    assert whole.exit_code == 2 and "METRICS_TOKEN must be at least" in whole.stderr
    assert token not in whole.stderr
