"""The therapist's area, behind sign-in: one blueprint, its views split by subject."""
from newsletter.admin import auth, inquiries, issues, practice_profile, readers, sender_domain, sending  # noqa: F401  (each adds routes to bp)
from newsletter.admin.blueprint import bp

__all__ = ["bp"]
