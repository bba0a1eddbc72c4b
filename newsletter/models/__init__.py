"""The data model. Times are naive UTC everywhere (`utcnow()`); pages convert to the practice's timezone."""
from newsletter.models.base import utcnow
from newsletter.models.inquiries import Inquiry, InquiryAccess, InquiryNote
from newsletter.models.issues import Delivery, Issue
from newsletter.models.outbox import OutgoingMail
from newsletter.models.practice import PracticeProfile
from newsletter.models.readers import ConsentEvent, Subscriber, Suppression
from newsletter.models.sending import SendRateBucket
from newsletter.models.users import AdminUser

__all__ = [
    "AdminUser",
    "ConsentEvent",
    "Delivery",
    "Inquiry",
    "InquiryAccess",
    "InquiryNote",
    "Issue",
    "OutgoingMail",
    "PracticeProfile",
    "SendRateBucket",
    "Subscriber",
    "Suppression",
    "utcnow",
]
