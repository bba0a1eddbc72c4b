"""Readers: signups and confirmation, preferences and leaving (subscriptions), per-reader links in mail
(personalize).

May import: accounts, mail, models, core.
"""
