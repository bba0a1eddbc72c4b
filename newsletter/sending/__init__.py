"""Sending an issue. dispatcher: start it and write its delivery ledger; ledger: claim, lease, mark, release,
sweep; marks: how a batch records each accepted message; engine: one batch's send loop; control: pause, resume,
cancel, progress; ratelimit and warmup: how fast; reach: what became of an issue in the week after it went out.

May import: publishing, deliverability, readers, accounts, mail, models, core.
"""
