"""Articles as the therapist writes them become a title, a safe HTML body, wrapped text and a signature."""
from __future__ import annotations

import pytest

from newsletter.publishing import articles
from tests.support import SAMPLE_ARTICLE as SAMPLE


def sample() -> articles.Article:
    return articles.parse(SAMPLE.read_text(encoding="utf-8"), filename="sample-article.txt")


def test_sample_title_paragraphs_signature_and_closing_line_are_recognized():
    article = sample()
    body = article.body

    assert article.format == articles.TEXT
    assert article.title == "Why Small Moments of Disconnection Hurt More Than Big Fights"
    assert body.html.count("<p>") == 9
    assert body.html.startswith("<p>Many couples are surprised")
    assert "I invite you to reach out.</p>" in body.html
    assert body.signature.startswith("Shoshana Ort, LCSW")
    assert "📞 720-772-7149" in body.signature
    assert "Shoshana" not in body.html and "📍" not in body.html
    assert "strengthened—or slowly lost." in body.postscript_html
    assert body.opening == "Many couples are surprised by what hurts the most in their relationship."


def test_curly_quotes_dashes_and_emoji_are_kept():
    body = articles.parse("Title\nShe said “uh-huh”—it’s fine 🙂 isn’t it?\n").body
    assert "“uh-huh”—it’s fine 🙂" in body.html
    assert "“uh-huh”—it’s fine 🙂" in body.text


def test_web_links_email_addresses_and_phone_numbers_become_links():
    html = str(articles.linkify("See www.example.org/a, write to me@example.org or call (720) 772-7149."))
    assert '<a href="https://www.example.org/a">www.example.org/a</a>,' in html
    assert '<a href="mailto:me@example.org">me@example.org</a>' in html
    assert '<a href="tel:+17207727149">(720) 772-7149</a>.' in html


def test_markup_typed_in_a_plain_text_article_shows_as_text():
    body = articles.parse('Title\n<script>alert("x")</script> <b>bold</b> <a href="javascript:evil()">x</a>\n').body
    assert "<script>" not in body.html and "<b>" not in body.html and "<a href=\"javascript" not in body.html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in body.html
    assert '<script>alert("x")</script>' in body.text


def test_markdown_headings_lists_emphasis_links_quotes_and_images():
    source = ("# A title\n\nSome *gentle* and **strong** words, [a link](https://example.org) and "
              "[contact](/contact).\n\n## A section\n\n- one\n- two\n\n1. first\n2. second\n\n> a quote\n\n"
              "![A calm lake](https://example.org/lake.jpg)\n")
    article = articles.parse(source, base_url="https://news.example.org")
    html = str(article.body.html)

    assert article.format == articles.MARKDOWN and article.title == "A title"
    assert "<em>gentle</em>" in html and "<strong>strong</strong>" in html
    assert '<a href="https://example.org">a link</a>' in html
    assert '<a href="https://news.example.org/contact">contact</a>' in html
    assert "<h2>A section</h2>" in html and "<h1>" not in html
    assert "<ul>\n<li>one</li>" in html and "<ol>\n<li>first</li>" in html
    assert "<blockquote>\n<p>a quote</p>" in html
    assert '<img src="https://example.org/lake.jpg" alt="A calm lake"' in html
    text = article.body.text
    assert "a link (https://example.org)" in text
    assert "A section\n=========" in text
    assert "- one\n- two" in text and "1. first\n2. second" in text and "> a quote" in text


def test_markdown_raw_html_and_script_links_never_run():
    html = str(articles.parse("# T\n\n<img src=x onerror=alert(1)> [x](javascript:alert(1)) <iframe>\n").body.html)
    assert "<img" not in html and "<iframe" not in html and 'href="javascript' not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


def test_text_part_is_wrapped_near_76_columns_without_breaking_words_or_links():
    article = sample()
    lines = article.body.text.split("\n")
    assert max(len(line) for line in lines) <= 76
    assert len(lines) > 50  # wrapped, not one line per paragraph
    long_link = "https://example.org/" + "a" * 90
    assert long_link in articles.parse(f"T\nSee {long_link} for more.\n").body.text


def test_paragraphs_separated_by_blank_lines_join_their_wrapped_lines():
    body = articles.parse("Title\n\nOne line\nwrapped by hand.\n\nSecond paragraph.\n").body
    assert str(body.html) == "<p>One line wrapped by hand.</p>\n<p>Second paragraph.</p>"


def test_marker_lookalikes_in_an_article_are_neutralized():
    body = articles.parse("Title\nMy %%unsubscribe_url%% and %%reader_name%% text.\n").body
    assert "%%" not in body.html and "%%" not in body.text
    assert "unsubscribe_url" in body.text


def test_an_article_without_signature_keeps_every_paragraph():
    body = articles.parse("Title\nFirst.\nSecond.\nThird, and the end.\n").body
    assert body.signature == "" and body.html.count("<p>") == 3


def test_markdown_in_a_txt_file_is_recognized_by_its_syntax():
    source = ("A gentle guide\n\n## When it hurts\n\nSome **strong** words and [a link](https://example.org).\n\n"
              "- one\n- two\n\nBe gentle with yourself this week.\n")
    article = articles.parse(source, filename="guide.txt")
    html = str(article.body.html)

    assert article.format == articles.MARKDOWN
    assert "<h2>When it hurts</h2>" in html and "<strong>strong</strong>" in html and "<li>one</li>" in html
    assert "##" not in html and "**" not in html and "](" not in html


def test_a_plain_txt_article_stays_plain_text():
    assert sample().format == articles.TEXT


@pytest.mark.parametrize("closing, signature", [
    ("— Shoshana", "— Shoshana"),
    ("Warmly, Shoshana", "Warmly, Shoshana"),
    ("Shoshana Ort, LCSW", "Shoshana Ort, LCSW"),
    ("With care,\nShoshana", "With care,\nShoshana"),
])
def test_a_one_line_sign_off_is_her_signature(closing, signature):
    body = articles.parse(f"Title\n\nA paragraph about repair.\n\nAnother thought to end on.\n\n{closing}\n").body

    assert body.signature == signature
    assert "Shoshana" not in body.html and "Shoshana" not in body.text
    assert "Another thought to end on." in body.html


@pytest.mark.parametrize("ending", ["Small moments matter.", "Thank you for reading", "Reach out, friend."])
def test_a_closing_sentence_is_not_taken_for_a_signature(ending):
    body = articles.parse(f"Title\n\nA paragraph about repair.\n\n{ending}\n").body

    assert body.signature == ""
    assert ending in body.text
