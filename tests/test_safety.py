"""The crisis-phrase list: what must flag an inquiry urgent, and everyday speech that must not.

When you add a phrase to newsletter/safety.py, add a sentence here that must flag and, if its words
have an everyday meaning, one that must not.
"""
from __future__ import annotations

import pytest

from newsletter.inquiries import safety

URGENT = [
    "I want to die",
    "Honestly some days I just want to die.",
    "I don’t want to live like this anymore",  # curly apostrophe
    "I dont want to live anymore",
    "I've been having SUICIDAL thoughts",
    "My husband attempted suicide last spring",
    "I think about killing myself",
    "I might kill myself",
    "She has been cutting herself? No, I have been cutting myself",
    "history of self-harm",
    "self harm",
    "I feel like everyone would be better off without me",
    "He threatened to kill me when I said I'd leave",
    "I'm afraid for my safety at home",
    "I don't feel safe with my partner",
    "He hit me last week",
    "When he drinks he beats me up",
    "My partner choked me during an argument",
    "There is domestic violence in our relationship",
    "I took an overdose in March",
    "“I want to end my life,” I told her.",
]

EVERYDAY = [
    "I collect die-cast models with my son",
    "She's been killing it at work lately",
    "We can't go on like this, we fight every night",
    "Our communication is dead in the water",
    "It finally hit me that we need help",
    "This commute is killing me",
    "I'd die for a free Saturday",
    "My mom would kill me if she knew we were in therapy",
    "We are dying to try couples therapy",
    "I want to dye my hair",
    "He beat me at chess again",
    "We'd like to improve our sex life",
    "My safety net is gone since I lost my job",
    "",
]


@pytest.mark.parametrize("text", URGENT)
def test_crisis_phrases_flag_the_message_urgent(text):
    assert safety.is_urgent(text), safety.normalize(text)


@pytest.mark.parametrize("text", EVERYDAY)
def test_everyday_speech_is_not_flagged(text):
    assert not safety.is_urgent(text), safety.crisis_phrases_in(text)


def test_normalize_straightens_quotes_drops_apostrophes_and_punctuation():
    assert safety.normalize("  I DON’T—want\tto  live!! ") == "i dont want to live"


def test_every_listed_phrase_matches_itself_in_a_sentence():
    for phrase in safety.CRISIS_PHRASES:
        assert safety.is_urgent(f"Lately, {phrase}.  "), phrase


def test_the_matched_phrases_are_reported_in_order():
    assert safety.crisis_phrases_in("I want to die. I also think about self-harm.") == ["want to die", "self harm"]
