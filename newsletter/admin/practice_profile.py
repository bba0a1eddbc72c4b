"""Admin: practice_profile."""
from newsletter.admin.blueprint import bp  # noqa: F401
