import io
import json

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError

User = get_user_model()


def run(monkeypatch, users) -> list[str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(users if isinstance(users, str) else json.dumps(users)))
    out = io.StringIO()
    call_command("ensure_users", stdout=out)
    return out.getvalue().splitlines()


USERS = [
    {"username": "erin", "password": "pw-erin-1", "groups": ["team"]},
    {"username": "frank", "password": "pw-frank-1", "superuser": True},
]


@pytest.mark.django_db
def test_created_then_unchanged_then_one_updated(monkeypatch):
    assert run(monkeypatch, USERS) == ["erin: created", "frank: created", "changed"]
    erin, frank = User.objects.get(username="erin"), User.objects.get(username="frank")
    assert erin.check_password("pw-erin-1") and list(erin.groups.values_list("name", flat=True)) == ["team"]
    assert frank.is_superuser and frank.is_staff and not frank.groups.exists()

    assert run(monkeypatch, USERS) == ["erin: unchanged", "frank: unchanged", "unchanged"]

    changed = [USERS[0], {**USERS[1], "superuser": False, "password": "pw-frank-2"}]
    assert run(monkeypatch, changed) == ["erin: unchanged", "frank: updated", "changed"]
    frank = User.objects.get(username="frank")
    assert frank.check_password("pw-frank-2") and not frank.is_staff and not frank.is_superuser


@pytest.mark.django_db
@pytest.mark.parametrize("users, message", [
    ("not json", "not JSON"),
    ({"username": "x"}, "JSON list"),
    (["erin"], "entry 1 is not an object"),
    ([{"username": "erin", "password": "p", "admin": True}], "unknown keys ['admin']"),
    ([{"username": "erin", "password": "p", "staff": "yes"}], "staff must be a bool"),
    ([{"username": "erin", "password": ""}], "must be non-empty"),
    ([{"username": "erin", "password": "p", "groups": [""]}], "groups must be names"),
    ([{"username": "erin", "password": "p"}, {"username": "erin", "password": "q"}], "given twice"),
])
def test_bad_input_changes_nothing(monkeypatch, users, message):
    good = [{"username": "gina", "password": "pw-gina-1"}]
    with pytest.raises(CommandError, match=message.replace("[", r"\[").replace("]", r"\]")):
        run(monkeypatch, good + users if isinstance(users, list) else users)
    assert not User.objects.filter(username__in=["gina", "erin"]).exists()


@pytest.mark.django_db
def test_a_password_is_its_first_line(monkeypatch):
    assert run(monkeypatch, [{"username": "hana", "password": "pw-hana-1\n"}])[-1] == "changed"
    assert User.objects.get(username="hana").check_password("pw-hana-1")
    assert run(monkeypatch, [{"username": "hana", "password": "pw-hana-1\r\n"}])[-1] == "unchanged"


@pytest.mark.django_db
def test_the_password_never_reaches_an_error(monkeypatch):
    with pytest.raises(CommandError) as caught:
        run(monkeypatch, [{"username": "erin", "password": "secret-pw-9", "staff": 1}])
    assert "secret-pw-9" not in str(caught.value)
