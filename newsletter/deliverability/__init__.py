"""What happens after mail leaves: bounces and complaints (DSN, ARF, relays' webhooks) and the sender
domain's DNS check.

May import: readers, accounts, mail, models, core.
"""
