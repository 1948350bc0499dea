"""Hostile input: hypothesis settings for the whole folder, and the end-to-end bot fixtures.

Examples are few (40) and have no deadline, so the folder stays quick on a 2-core machine and
on PostgreSQL, where one example is several round trips. `HYPOTHESIS_PROFILE=hostile-long`
runs many more when hunting.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

from tests.e2e.conftest import bot, channel, settings_overrides

__all__ = ["bot", "channel", "settings_overrides"]

_COMMON = {
    "deadline": None,
    "database": None,  # nothing written into the work tree; a failure prints its reproduction blob
    # One bot (one database, one process) serves every example of a test: that is the point,
    # it must stay up across all of them.
    "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    "print_blob": True,
}
settings.register_profile("hostile", max_examples=40, **_COMMON)
settings.register_profile("hostile-long", max_examples=300, **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "hostile"))
