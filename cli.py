"""Admin commands: `python cli.py GROUP COMMAND ...`. Each group is a module of `admin/`."""

from __future__ import annotations

import importlib

import click

from admin.settings import CommandSettings

# Each name is a group (or command) defined under that name in the module of admin/ it names.
COMMANDS = ("db", "events", "faq", "mail", "outbox", "purge", "roles", "subject", "teams")


class _Groups(click.Group):
    """Imports a group's module only when that group runs (or the top-level --help lists them),
    so a command loads the libraries its own group needs, not every group's."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        command = getattr(importlib.import_module(f"admin.{cmd_name}"), cmd_name)
        assert isinstance(command, click.Command), cmd_name
        return command


@click.group(cls=_Groups)
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Colleague questions bot: admin commands."""
    ctx.obj = CommandSettings()  # read from the environment as each command needs


if __name__ == "__main__":
    cli()
