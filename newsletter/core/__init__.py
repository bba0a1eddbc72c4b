"""The ground floor: settings, extension objects, signed tokens, encryption, log redaction.

May import: nothing else of the app (only libraries).
"""
