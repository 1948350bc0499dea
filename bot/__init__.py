"""Speaks Teams through the Bot Framework. The only package that imports botbuilder, so a move to
Microsoft's successor SDK (the Microsoft 365 Agents SDK) changes this folder and nothing else."""
