"""Readers: signups and confirmation, preferences and leaving (subscriptions, preferences), lists, the monthly
digest (digests), per-reader links in mail (personalize), CSV in and out (csv_files) and other services'
exports read (moving_in).

May import: accounts, mail, models, core.
"""
