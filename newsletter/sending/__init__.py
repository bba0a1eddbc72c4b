"""The issue sending engine: the delivery ledger, batches under a lease, the shared rate limit and warm-up.

May import: publishing, deliverability, readers, accounts, mail, models, core.
"""
