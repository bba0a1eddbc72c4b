"""Articles into issues: Markdown and plain-text import (articles), drafts and schedules (issues), an issue
rendered for one reader (issue_mail), the welcome series (series), optional per-link click counts (clicks), her
website's feed polled into drafts (feeds).

May import: readers, accounts, mail, models, core.
"""
