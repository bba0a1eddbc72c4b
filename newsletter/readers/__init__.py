"""Readers: signups and confirmation, preferences and leaving (subscriptions), per-reader links in mail
(personalize), CSV in and out (csv_files) and other services' exports read (moving_in).

May import: accounts, mail, models, core.
"""
