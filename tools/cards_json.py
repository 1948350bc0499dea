"""Print every card the bot can send (tests/cards/catalogue.py), as Teams receives it, in JSON:
{"name": {"card": {...}, "staff": true}}. Read by tools/render_cards.mjs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.render import ADAPTIVE_CARD, TEAMS, render
from tests.cards.catalogue import CARDS, STAFF_FACING


def main() -> None:
    cards = {}
    for name, message in CARDS.items():
        [card] = [a.content for a in render(message, channel_id=TEAMS).attachments if a.content_type == ADAPTIVE_CARD]
        cards[name] = {"card": card, "staff": name in STAFF_FACING}
    json.dump(cards, sys.stdout, ensure_ascii=False)


if __name__ == "__main__":
    main()
