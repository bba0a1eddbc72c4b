"""Pages for readers and prospective clients: one blueprint, its views split by subject."""
from newsletter.public import archive, clicks, consultation, contact, pages, preferences, signup, team, waitlist  # noqa: F401  (each module adds its routes to bp)
from newsletter.public.blueprint import bp

__all__ = ["bp"]
