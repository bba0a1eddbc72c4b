"""Mail primitives: safe headers, rendering and DKIM (compose), the one address rule (addresses), the database
queue of transactional mail (outgoing), the SMTP and outbox-folder transports, the suppression list and VERP
return paths. "Outbox" means only the development folder of .eml files (OUTBOX_DIR, transports.OutboxTransport).

May import: core, models.
"""
