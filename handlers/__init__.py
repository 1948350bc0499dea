"""What the product does: ask, triage, forward, feedback. Plain async functions over services.

Nothing here imports aiohttp, SQLAlchemy or botbuilder: bot/ and mail/ turn the outside world
into the calls below, and the store, FAQ matcher, mail transport and outbox do the rest.
"""
