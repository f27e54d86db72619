"""A password in a URL never shows, in waitfor or in logship, whatever it holds (property
tests over random passwords): written as users write it — percent-encoded or not — it is
either read back exactly, or refused with a message that hides it."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents._options import OptionError
from agents.logship.config import check_urls
from agents.logship.output.http import BadUrl, parse_nodes
from agents.waitfor.targets import TargetError, parse_target

# Printable ASCII passwords of 4+ characters, '/', '?', '#', '@' and ':' included: what
# password generators produce. Short ones would match text of the URL by chance.
PASSWORDS = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=4, max_size=24)


def refused_without_the_password(error: Exception, password: str) -> None:
    text = str(error)
    assert password not in text, text
    assert "***" in text, text


@settings(max_examples=300, deadline=None)
@given(password=PASSWORDS)
def test_logship_reads_an_encoded_password_back_or_refuses_an_unencoded_one(
    password: str,
) -> None:
    encoded = f"http://elastic:{quote(password, safe='')}@es.example:9200"
    check_urls([encoded])
    node = parse_nodes([encoded])[0]
    assert (node.host, node.port) == ("es.example", 9200)
    raw = f"http://elastic:{password}@es.example:9200"
    try:
        check_urls([raw])
    except OptionError as exc:
        refused_without_the_password(exc, password)
        with pytest.raises(BadUrl) as info:
            parse_nodes([raw])
        assert password not in str(info.value)
    else:  # accepted as written: then it was read as the password, the host as es.example
        node = parse_nodes([raw])[0]
        assert (node.host, node.port) == ("es.example", 9200), raw
        assert node.authorization is not None


@settings(max_examples=300, deadline=None)
@given(password=PASSWORDS, scheme=st.sampled_from(["postgres", "redis", "http", "amqp"]))
def test_waitfor_reads_an_encoded_password_back_or_refuses_an_unencoded_one(
    password: str, scheme: str
) -> None:
    encoded = parse_target(f"{scheme}://app:{quote(password, safe='')}@db.example:5432/x")
    assert (encoded.host, encoded.port, encoded.password) == ("db.example", 5432, password)
    assert password not in encoded.display
    raw = f"{scheme}://app:{password}@db.example:5432/x"
    try:
        target = parse_target(raw)
    except TargetError as exc:
        refused_without_the_password(exc, password)
    else:
        assert (target.host, target.port) == ("db.example", 5432), raw
        assert password not in target.display


@pytest.mark.parametrize("url", [
    "http://elastic:12345/cret@host:9200",  # the case: the password became the port
    "http://elastic:s3/cret@host:9200",  # urllib quoted 's3' in its port error
    "http://elastic:12?34@host:9200",
    "http://elastic:12#34@host:9200",
])  # fmt: skip
def test_a_password_split_by_slash_question_mark_or_hash_is_refused_in_both(url: str) -> None:
    with pytest.raises(OptionError) as logship:
        check_urls([url])
    with pytest.raises(TargetError) as waitfor:
        parse_target(url)
    for error in (logship.value, waitfor.value):
        text = str(error)
        assert "cret" not in text and "12" not in text.replace("%2F", ""), text
        assert "elastic:***@host" in text and "%2F" in text
