"""The lead pipeline: an inquiry from the contact form to a reply, a booked consultation, the waitlist or a
referral (intake; composing its mails; the pipeline in the admin; states; reports; scheduled jobs; booking;
waitlist; in a group practice, clinicians' profiles and routing), the practice calendar (business_days) and
crisis language (safety).

May import: readers, accounts, mail, models, core.
"""
