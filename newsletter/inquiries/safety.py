"""Crisis language in an inquiry: the maintained list of phrases and the matcher that flags a message urgent.

An urgent inquiry is forwarded with [URGENT] in its subject, and the inquirer's thank-you page and
acknowledgement lead with crisis resources. A missed phrase costs more than a false alarm, but an
alarm on everyday speech ("killing it at work", "die-cast models") teaches the practice to ignore it.

How matching works: the message and every phrase go through the same `normalize` (Unicode NFKC,
lower case, curly quotes straightened, apostrophes dropped so "don't" and "dont" are one word,
every other character that is not a letter or digit becomes a space). A phrase then matches only
as whole words: "want to die" matches "I want to die." but not "die-cast".

How to maintain the list:
- Add the phrase in its plain form to the group it belongs to below. Write it as people write it
  ("kill myself", "don't want to live"); apostrophes, case, hyphens and curly quotes need no variants.
- Add a sentence that must flag, and if the words have an everyday meaning, one that must not,
  to tests/test_safety.py. Run it on every change.
- Prefer a phrase of two or three words to a single word that people use lightly ("dead", "kill").
"""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

SUICIDE = (
    "suicide", "suicidal", "kill myself", "killing myself", "end my life", "ending my life", "end it all",
    "take my own life", "taking my own life", "want to die", "wanna die", "wish i was dead", "wish i were dead",
    "better off dead", "better off without me", "dont want to live", "dont want to be alive",
    "no reason to live", "not worth living", "overdose", "overdosing",
)
SELF_HARM = (
    "self harm", "self harming", "selfharm", "hurt myself", "hurting myself", "harm myself", "harming myself",
    "cut myself", "cutting myself", "burn myself", "burning myself",
)
DANGER = (
    "threatened to kill", "threatens to kill", "want to kill", "wants to kill", "kill him", "kill her",
    "he hit me", "she hit me", "he hits me", "she hits me", "he beats me", "she beats me", "beat me up", "beats me up",
    "chokes me", "choked me", "strangled me", "shoved me",
    "afraid for my life", "afraid for my safety", "fear for my life", "fear for my safety",
    "not safe at home", "dont feel safe", "do not feel safe", "im not safe", "i am not safe",
    "domestic violence", "abusing me", "abuses me", "threatened me with", "has a gun", "has a knife",
)
CRISIS_PHRASES: tuple[str, ...] = SUICIDE + SELF_HARM + DANGER

_APOSTROPHES = dict.fromkeys(map(ord, "'\u2018\u2019\u201b\u2032`\u00b4"), None)
_NOT_WORD = re.compile(r"[^0-9a-z]+")


def normalize(text: str) -> str:
    """Lower case, apostrophes removed, everything but letters and digits turned into single spaces."""
    folded = unicodedata.normalize("NFKC", text or "").casefold().translate(_APOSTROPHES)
    return " ".join(_NOT_WORD.sub(" ", folded).split())


@lru_cache(maxsize=1)
def _pattern() -> re.Pattern[str]:
    phrases = sorted({normalize(p) for p in CRISIS_PHRASES}, key=len, reverse=True)
    return re.compile(r"(?<![0-9a-z])(?:" + "|".join(re.escape(p) for p in phrases) + r")(?![0-9a-z])")


def crisis_phrases_in(text: str) -> list[str]:
    """The crisis phrases (normalized) that occur in `text` as whole words, in order of appearance."""
    return [match.group(0) for match in _pattern().finditer(normalize(text))]


def is_urgent(text: str) -> bool:
    """True when `text` speaks of suicide, self-harm or danger."""
    return _pattern().search(normalize(text)) is not None
