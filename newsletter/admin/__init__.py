"""The therapist's area, behind sign-in: one blueprint, its views split by subject."""
from newsletter.admin import (  # noqa: F401  (each adds routes to bp)
    audit_log,
    auth,
    blog_feed,
    clinicians,
    dashboard,
    doctor,
    inquiries,
    issues,
    outbox,
    people,
    practice_profile,
    reach,
    readers,
    sender_domain,
    sending,
    two_factor,
)
from newsletter.admin.blueprint import bp

__all__ = ["bp"]
