"""The therapist's area, behind sign-in: one blueprint, its views split by subject."""
from newsletter.admin import (  # noqa: F401  (each adds routes to bp)
    audit_log,
    auth,
    clinicians,
    dashboard,
    doctor,
    inquiries,
    issues,
    outbox,
    practice_profile,
    readers,
    sender_domain,
    sending,
    two_factor,
)
from newsletter.admin.blueprint import bp

__all__ = ["bp"]
