"""People who sign in (users: passwords, second factor, lockout), the audit log of their actions, and the
practice profile (name, address, timezone, hours).

May import: mail, models, core.
"""
