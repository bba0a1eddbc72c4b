"""The data model. Times are naive UTC everywhere (`utcnow()`); pages convert to the practice's timezone."""
from newsletter.models.audit import AuditEntry
from newsletter.models.base import utcnow
from newsletter.models.bounces import BounceEvent, ComplaintPause, WebhookNonce
from newsletter.models.clinicians import Clinician
from newsletter.models.feeds import BlogFeed, FeedPost
from newsletter.models.heartbeats import Heartbeat
from newsletter.models.inquiries import Inquiry, InquiryAccess, InquiryNote
from newsletter.models.issues import Delivery, Issue, IssueReply, LinkClick
from newsletter.models.leads import Consultation, InquiryResponse, WaitlistEntry
from newsletter.models.lists import IssueList, ListMembership, NewsletterList, SeriesStep
from newsletter.models.outbox import OutgoingMail
from newsletter.models.practice import PracticeProfile
from newsletter.models.readers import ConsentEvent, ReaderDigest, SignupRequest, Subscriber, Suppression
from newsletter.models.sending import SendRateBucket
from newsletter.models.users import AdminUser, RecoveryCode

__all__ = [
    "AdminUser",
    "AuditEntry",
    "BlogFeed",
    "BounceEvent",
    "Clinician",
    "ComplaintPause",
    "ConsentEvent",
    "Consultation",
    "Delivery",
    "FeedPost",
    "Heartbeat",
    "Inquiry",
    "InquiryAccess",
    "InquiryNote",
    "InquiryResponse",
    "Issue",
    "IssueReply",
    "IssueList",
    "LinkClick",
    "ListMembership",
    "NewsletterList",
    "SeriesStep",
    "OutgoingMail",
    "PracticeProfile",
    "ReaderDigest",
    "RecoveryCode",
    "SendRateBucket",
    "SignupRequest",
    "Subscriber",
    "Suppression",
    "WebhookNonce",
    "WaitlistEntry",
    "utcnow",
]
