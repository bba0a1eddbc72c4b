"""The report of where inquiries come from and how many became clients, by month in the practice's timezone."""
from __future__ import annotations

from datetime import datetime

from newsletter.core.extensions import db
from newsletter.inquiries.intake import InquiryDetails
from newsletter.inquiries.reports import SourceCount, source_report
from newsletter.models import Inquiry
from tests.helpers import place_in, submit


def received(heard_from: str, at: datetime, status: str = "new", spam: bool = False, n: int = 0) -> None:
    result = submit(email=f"person{heard_from}{at:%m%d%H}{n}@example.com", details=InquiryDetails(heard_from=heard_from),
                    message="casino" if spam else f"Hello {n}")
    inquiry = db.session.get(Inquiry, result.inquiry_id)
    inquiry.created_at = at
    place_in(inquiry, status)
    db.session.commit()


def test_inquiries_and_clients_by_source_and_local_month(auth, app, client):
    with app.app_context():
        auth.login(client)
        received("friend", datetime(2026, 11, 3, 17), status="client")
        received("friend", datetime(2026, 11, 10, 17), n=1)
        received("directory", datetime(2026, 11, 12, 17), status="client")
        received("", datetime(2026, 11, 20, 17))
        # 21:30 on October 31 in Denver is already November 1 in UTC: it belongs to October.
        received("search", datetime(2026, 11, 1, 3, 30))
        received("friend", datetime(2026, 11, 4, 17), spam=True)

        assert source_report() == [
            SourceCount("November 2026", "A friend or family member", 2, 1),
            SourceCount("November 2026", "A therapist directory", 1, 1),
            SourceCount("November 2026", "Not said", 1, 0),
            SourceCount("October 2026", "An internet search", 1, 0),
        ]

    page = client.get("/admin/inquiries/sources").get_data(as_text=True)
    assert "<td>November 2026</td><td>A friend or family member</td><td>2</td><td>1</td>" in page
    assert "<td>October 2026</td><td>An internet search</td><td>1</td><td>0</td>" in page
