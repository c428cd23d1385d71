from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import CommandError

User = get_user_model()


def run(*args: str) -> list[str]:
    out = StringIO()
    call_command("ensure_user", *args, stdout=out)
    return out.getvalue().splitlines()


@pytest.mark.django_db
def test_created_unchanged_updated(monkeypatch):
    monkeypatch.setenv("CHAT_PW", "s3cret-pass-1")
    assert run("carol", "--password-env", "CHAT_PW")[-1] == "created"
    carol = User.objects.get(username="carol")
    assert carol.check_password("s3cret-pass-1") and not carol.is_staff and not carol.is_superuser

    assert run("carol", "--password-env", "CHAT_PW")[-1] == "unchanged"

    monkeypatch.setenv("CHAT_PW", "s3cret-pass-2")
    assert run("carol", "--password-env", "CHAT_PW")[-1] == "updated"
    assert User.objects.get(username="carol").check_password("s3cret-pass-2")
    assert run("carol", "--password-env", "CHAT_PW")[-1] == "unchanged"


@pytest.mark.django_db
def test_flags_are_declarative(monkeypatch):
    monkeypatch.setenv("CHAT_PW", "pw-123456")
    assert run("dave", "--password-env", "CHAT_PW", "--staff")[-1] == "created"
    assert User.objects.get(username="dave").is_staff
    assert run("dave", "--password-env", "CHAT_PW", "--staff")[-1] == "unchanged"
    assert run("dave", "--password-env", "CHAT_PW", "--superuser")[-1] == "updated"
    dave = User.objects.get(username="dave")
    assert dave.is_staff and dave.is_superuser
    assert run("dave", "--password-env", "CHAT_PW")[-1] == "updated"
    dave.refresh_from_db()
    assert not dave.is_staff and not dave.is_superuser


@pytest.mark.django_db
def test_reactivates_inactive_user(monkeypatch):
    monkeypatch.setenv("CHAT_PW", "pw-123456")
    User.objects.create_user("erin", password="pw-123456", is_active=False)
    assert run("erin", "--password-env", "CHAT_PW")[-1] == "updated"
    assert User.objects.get(username="erin").is_active


@pytest.mark.django_db
def test_missing_env_var(monkeypatch):
    monkeypatch.delenv("CHAT_PW_MISSING", raising=False)
    with pytest.raises(CommandError, match="CHAT_PW_MISSING"):
        run("frank", "--password-env", "CHAT_PW_MISSING")
    assert not User.objects.filter(username="frank").exists()


@pytest.mark.django_db
def test_password_not_accepted_on_argv():
    with pytest.raises(CommandError):
        run("frank", "--password", "plain")
    with pytest.raises(CommandError):  # --password-env is required
        run("frank")


def test_help_has_no_password_value_option():
    from chat.management.commands.ensure_user import Command

    parser = Command().create_parser("manage.py", "ensure_user")
    options = {opt for action in parser._actions for opt in action.option_strings}
    assert "--password-env" in options
    assert "--password" not in options



@pytest.mark.django_db
def test_password_from_stdin(monkeypatch):
    monkeypatch.setattr("sys.stdin", StringIO("stdin-secret-1\n"))
    assert run("carol", "--password-stdin")[-1] == "created"
    monkeypatch.setattr("sys.stdin", StringIO("stdin-secret-1\n"))
    assert run("carol", "--password-stdin")[-1] == "unchanged"
    assert User.objects.get(username="carol").check_password("stdin-secret-1")


@pytest.mark.django_db
def test_empty_stdin_is_refused(monkeypatch):
    monkeypatch.setattr("sys.stdin", StringIO(""))
    with pytest.raises(CommandError, match="no password on standard input"):
        run("dave", "--password-stdin")


def group_names(username: str) -> list[str]:
    return sorted(User.objects.get(username=username).groups.values_list("name", flat=True))


@pytest.mark.django_db
def test_groups_are_declarative(monkeypatch):
    monkeypatch.setenv("CHAT_PW", "pw-123456")
    Group.objects.create(name="ops")
    assert run("gina", "--password-env", "CHAT_PW", "--group", "ops", "--group", "crew")[-1] == "created"
    assert group_names("gina") == ["crew", "ops"]  # crew was created
    assert run("gina", "--password-env", "CHAT_PW", "--group", "crew", "--group", "ops")[-1] == "unchanged"
    assert run("gina", "--password-env", "CHAT_PW", "--group", "crew")[-1] == "updated"
    assert group_names("gina") == ["crew"]
    assert run("gina", "--password-env", "CHAT_PW", "--group", "crew")[-1] == "unchanged"
    assert run("gina", "--password-env", "CHAT_PW")[-1] == "updated"  # no --group: no groups
    assert group_names("gina") == []
    assert run("gina", "--password-env", "CHAT_PW")[-1] == "unchanged"
    assert Group.objects.filter(name__in=["ops", "crew"]).count() == 2  # groups are kept


@pytest.mark.django_db
def test_groups_and_flags_change_together(monkeypatch):
    monkeypatch.setenv("CHAT_PW", "pw-123456")
    assert run("hal", "--password-env", "CHAT_PW")[-1] == "created"
    assert run("hal", "--password-env", "CHAT_PW", "--staff", "--group", "ops")[-1] == "updated"
    hal = User.objects.get(username="hal")
    assert hal.is_staff and group_names("hal") == ["ops"]


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["", "   ", "x" * 151])
def test_bad_group_name_refused(monkeypatch, name):
    monkeypatch.setenv("CHAT_PW", "pw-123456")
    with pytest.raises(CommandError, match="--group"):
        run("ivy", "--password-env", "CHAT_PW", "--group", name)
    assert not User.objects.filter(username="ivy").exists()
