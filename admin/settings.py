"""The bot's settings as the admin commands read them: through the bot's own models (their
variables, defaults and rules), each model read once per run and only when a command first
needs it, so a setting the command does not use cannot stop it.

Kept apart from `common` (the store, SQLAlchemy) because `cli.py` itself puts `CommandSettings`
in the click context, and listing the groups should load nothing more."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

import click
from pydantic import ValidationError
from pydantic_settings import BaseSettings

from config.settings import Settings, one_setting

S = TypeVar("S", bound=BaseSettings)
Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


class BadSettings(click.ClickException):
    """The environment gets a setting wrong: exit 2, each problem named by its variable."""

    exit_code = 2


class CommandSettings:
    """What one run of `cli.py` has read from the environment (`ctx.obj`, set by the top group)."""

    def __init__(self) -> None:
        self._read: dict[type[BaseSettings], BaseSettings] = {}

    def load(self, model: type[S]) -> S:
        """`model` read from the environment and checked, the first time a command asks for it."""
        if model not in self._read:
            try:
                self._read[model] = model()
            except ValidationError as error:
                raise BadSettings(f"invalid settings:\n{error}") from None
        return cast(S, self._read[model])


pass_settings = click.make_pass_decorator(CommandSettings)


class SettingOption(click.Option):
    """An option that is also a setting of the bot's: given, it wins; not given, it is what the
    bot reads from the environment, checked by that setting's own rules alone. --help shows the
    bot's default and reads nothing."""

    def __init__(self, param_decls: Sequence[str], *, setting: str, **attrs: Any) -> None:
        attrs.setdefault("default", Settings.model_fields[setting].default)
        super().__init__(param_decls, **attrs)
        self.setting = setting

    def get_default(self, ctx: click.Context, call: bool = True) -> Any:
        if not call:  # --help
            return super().get_default(ctx, call=False)
        settings = ctx.find_object(CommandSettings)
        assert settings is not None, "cli.py's group puts CommandSettings in the context"
        read = settings.load(one_setting(self.setting))
        if self.setting in read.model_fields_set:
            return getattr(read, self.setting)
        return super().get_default(ctx)  # the bot's default, or the option's own (`faq match`)


def setting_option(*param_decls: str, setting: str, **attrs: Any) -> Decorator:
    """`click.option` for the bot's setting `setting` (a `Settings` field)."""
    return click.option(*param_decls, cls=SettingOption, setting=setting, **attrs)
