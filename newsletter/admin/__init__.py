"""The therapist's area, behind sign-in: one blueprint, its views split by subject."""
from newsletter.admin import auth  # noqa: F401  (each module adds its routes to bp)
from newsletter.admin.blueprint import bp

__all__ = ["bp"]
