"""The Jinja2 environment for everything the product writes (mail bodies, digests).

HTML templates (`*.html.j2`) are autoescaped, so a question containing markup arrives as text.
"""

from __future__ import annotations

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

templates = Environment(
    loader=PackageLoader("handlers", "templates"),
    autoescape=select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
