"""The end-to-end fixtures (the bot on a real port, the fake channel, the Graph world) here too."""

from __future__ import annotations

from tests.e2e.conftest import bot, channel, graph_world, mail_bot, settings_overrides

__all__ = ["bot", "channel", "graph_world", "mail_bot", "settings_overrides"]
