"""The contact form for prospective clients."""
from newsletter.public.blueprint import bp  # noqa: F401
