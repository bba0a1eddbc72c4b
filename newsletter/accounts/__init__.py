"""People who sign in (users: passwords, second factor, lockout), what each role reaches (roles: one table of
admin areas by role, and which inquiries and profiles a clinician sees), people and their invitations (people),
the audit log of their actions, and the practice profile (name, address, timezone, hours).

May import: mail, models, core.
"""
