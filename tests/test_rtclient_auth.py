"""rtclient.auth's SessionCookies: the test clients' cookie jar, which follows Set-Cookie like a browser's."""

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
