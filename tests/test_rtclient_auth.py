"""rtclient.auth: the test clients' cookie jar, which follows Set-Cookie like a browser's, and the secrets read from the
credentials directory, which never show in a traceback."""

from __future__ import annotations


def test_session_cookies_follow_set_cookie_like_a_browser():
    """rtclient.auth.SessionCookies: a cycled session key (Django re-signing a session with a new SECRET_KEY)
    replaces the old one in the header and in every bound mapping; an emptied cookie is dropped."""
    from http.cookies import SimpleCookie

    from rtclient.auth import SessionCookies

    cookies = SessionCookies({"csrftoken": "c1", "sessionid": "s1"})
    headers = cookies.bind({"Origin": "https://x"})
    assert headers["Cookie"] == cookies.header() == "csrftoken=c1; sessionid=s1"
    answer = SimpleCookie()
    answer["sessionid"] = "s2"
    cookies.update(answer)
    assert headers["Cookie"] == "csrftoken=c1; sessionid=s2"
    cookies.update({"sessionid": ""})
    assert str(cookies) == "csrftoken=c1" and headers["Cookie"] == "csrftoken=c1"


def test_a_credential_read_for_a_test_hides_its_value_in_tracebacks(tmp_path):
    """rtclient.auth.read_credential: the value without the lookup's ``salt=`` suffix, usable as a str, whose repr
    (what pytest prints for a failing test's arguments, in CI's log) is masked."""
    import json

    from rtclient.auth import Secret, read_credential

    (tmp_path / "centrifugo_http_api_key").write_text("k3y-Value salt=abc\n")
    key = read_credential("centrifugo_http_api_key", tmp_path)
    assert isinstance(key, Secret) and key == "k3y-Value" and f"Bearer {key}" == "Bearer k3y-Value"
    assert "k3y" not in repr(key) and "k3y" not in repr({"api_key": key}) and "k3y" not in repr([key])
    assert json.dumps({"key": key}) == '{"key": "k3y-Value"}' and key.encode() == b"k3y-Value"
