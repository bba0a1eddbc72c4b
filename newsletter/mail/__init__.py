"""Mail primitives: safe headers and rendering (headers), the SMTP and folder transports, the outbox queue
of transactional mail, the suppression list and VERP return paths.

May import: core, models.
"""
