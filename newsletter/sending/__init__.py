"""Sending an issue. dispatcher: start it and write its delivery ledger; ledger: claim, lease, mark, release,
sweep; engine: one batch's send loop; control: pause, resume, cancel, progress; ratelimit and warmup: how fast.

May import: publishing, deliverability, readers, accounts, mail, models, core.
"""
