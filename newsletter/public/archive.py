"""The web archive of sent issues and the Atom feed."""
from newsletter.public.blueprint import bp  # noqa: F401
