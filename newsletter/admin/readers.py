"""Admin: readers."""
from newsletter.admin.blueprint import bp  # noqa: F401
