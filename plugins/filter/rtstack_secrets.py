"""What playbooks/rotate_secrets.yml and the redis role's ``acl`` entry point compute (Ansible filter
plugins; pure functions, unit-tested in tests/test_secrets_plugin.py):

* ``rtstack_rotation_select(catalog, requested)``: the catalog entries of the secrets to rotate.
* ``rtstack_rotation_problems(selected, generated, new_values)``: why the rotation cannot start (a
  vault-held secret without its new value, a new value shorter than its minimum).
* ``rtstack_redis_acl_setuser(users, previous)``: the ``ACL SETUSER`` commands that give each Redis ACL
  user its current password and, during a rotation, the previous ones beside it.
* ``rtstack_redis_cli_script(passwords, commands)`` / ``rtstack_redis_cli_all_ok(stdout)``: what the redis role
  sends to ``redis-cli`` on standard input (log in with any of several passwords, then the commands), and
  whether every command answered OK; ``rtstack_redis_cli_summary`` says what each answered, without a value.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

try:  # inside Ansible
    from ansible.errors import AnsibleFilterError
except ImportError:  # pragma: no cover - the unit tests import Ansible too
    AnsibleFilterError = ValueError  # type: ignore[assignment,misc]


def rotation_select(catalog: Sequence[Mapping[str, Any]], requested: Any) -> list[dict[str, Any]]:
    """The catalog entries of the secrets to rotate, in catalog order.

    Args:
        catalog: ``[{"name": inventory variable, "file": credentials file name, "min_length": int, ...}]``
            (playbooks/rotate_secrets.yml's ``rotate_secrets_catalog``).
        requested: ``"all"``, one name, a comma-separated string of names, or a list of names.

    Returns:
        The matching entries (copies), each at most once, in catalog order.

    Raises:
        AnsibleFilterError: nothing requested, or a name the catalog does not hold (the message lists
            the names it holds).
    """
    if isinstance(requested, str):
        names = [part.strip() for part in requested.split(",") if part.strip()]
    else:
        names = [str(part).strip() for part in (requested or []) if str(part).strip()]
    known = [entry["name"] for entry in catalog]
    if not names:
        raise AnsibleFilterError(
            "rotate_secrets is empty: give -e rotate_secrets=all, or one or more of " + ", ".join(known))
    if "all" in names:
        return [dict(entry) for entry in catalog]
    unknown = [name for name in names if name not in known]
    if unknown:
        raise AnsibleFilterError(
            f"rotate_secrets names {', '.join(unknown)}, which this playbook does not rotate; "
            f"it rotates: all, {', '.join(known)}")
    return [dict(entry) for entry in catalog if entry["name"] in names]


def rotation_problems(selected: Sequence[Mapping[str, Any]], generated: bool,
                      new_values: Mapping[str, Any] | None) -> list[str]:
    """Why the rotation of ``selected`` cannot start; empty when it can.

    Args:
        selected: catalog entries (:func:`rotation_select`).
        generated: whether the inventory generates its secrets into a credentials directory
            (``credentials_dir`` is set); if not, every secret is held by the operator (ansible-vault).
        new_values: ``rotate_new_values``, the operator's new value per variable name (extra vars).

    Returns:
        One sentence per problem, naming the variable and the fix: a vault-held secret without a value
        in ``rotate_new_values``; a new value (given, or generated with the catalog's length) shorter than
        the entry's ``min_length`` characters; a new value equal to nothing (empty).
    """
    new_values = dict(new_values or {})
    problems: list[str] = []
    for entry in selected:
        name, minimum = entry["name"], int(entry["min_length"])
        if name in new_values:
            value = str(new_values[name] or "")
            if len(value) < minimum:
                problems.append(
                    f"rotate_new_values.{name} is {len(value)} characters long; the new {name} needs at least "
                    f"{minimum}.")
        elif not generated:
            problems.append(
                f"{name} is held by the inventory (ansible-vault; no credentials_dir generates it): give its new "
                f"value as rotate_new_values.{name} (-e @new-secrets.yml), then store that value in the vault.")
        elif int(entry.get("length", minimum)) < minimum:
            problems.append(f"rotate_secrets_catalog gives {name} a generated length under its minimum {minimum}.")
    return problems


def _sha256(password: str) -> str:
    return hashlib.sha256(str(password).encode()).hexdigest()


def redis_acl_setuser(users: Sequence[Mapping[str, Any]], previous: Mapping[str, Sequence[str]] | None = None
                      ) -> list[str]:
    """``ACL SETUSER`` commands that set each user's accepted passwords, and only those.

    ``resetpass`` drops every password the user had, then each ``#<sha256>`` adds one, in one atomic
    command: a client logging in meanwhile sees either the old set or the new one. The users' rules
    (keys, channels, commands) are left as they are. Source: https://redis.io/docs/latest/commands/acl-setuser/
    (Valkey's ACL is the same).

    Args:
        users: ``[{"name": str, "password": str, ...}]``: every user the config file declares (``default``
            included, with ``redis_requirepass``).
        previous: user name -> passwords still accepted beside the current one (a rotation's overlap).

    Returns:
        One command string per user, in ``users`` order: ``ACL SETUSER <name> resetpass #<hash> ...``
        (the hashes of the current password, then of each previous one not equal to it).

    Raises:
        AnsibleFilterError: a user without a name or password.
    """
    previous = dict(previous or {})
    commands = []
    for user in users:
        name, password = user.get("name"), user.get("password")
        if not name or not password:
            raise AnsibleFilterError(f"a Redis ACL user needs a name and a password: {sorted(user)}")
        hashes = redis_password_hashes(password, previous.get(name))
        commands.append(f"ACL SETUSER {name} resetpass " + " ".join("#" + digest for digest in hashes))
    return commands


def redis_password_hashes(password: str, previous: Sequence[str] | None = None) -> list[str]:
    """The SHA-256 hex digests of ``password`` then of each of ``previous`` (empty and repeated ones left
    out): the ``#<hash>`` items of a ``user`` line in redis.conf."""
    hashes = [_sha256(password)]
    for old in previous or []:
        if old and _sha256(old) not in hashes:
            hashes.append(_sha256(old))
    return hashes


#: The line redis-cli prints between the AUTH answers (some may fail) and the commands' answers.
CLI_MARKER = "rtstack-acl"


def redis_cli_script(passwords: Sequence[str], commands: Sequence[str]) -> str:
    """Standard input for ``redis-cli`` (not a terminal: one command per line, one answer per line): ``AUTH``
    with each of ``passwords`` (the connection stays logged in as the last that worked: a failed AUTH changes
    nothing), ``PING rtstack-acl`` (its answer is the marker; Sentinel has no ECHO), then ``commands``.

    Args:
        passwords: passwords of the ``default`` user, any of which may be the server's now (a rotation's two).
        commands: Redis commands, one per item, without newlines.

    Raises:
        AnsibleFilterError: no password, or a password or command with a newline (it would split the script).
    """
    passwords = [str(p) for p in passwords if p]
    if not passwords:
        raise AnsibleFilterError("redis_cli_script needs at least one password")
    lines = [f"AUTH {p}" for p in passwords] + [f"PING {CLI_MARKER}"] + [str(c) for c in commands]
    if any("\n" in line or "\r" in line for line in lines):
        raise AnsibleFilterError("a password or Redis command contains a newline")
    return "\n".join(lines) + "\n"


def _cli_answers(stdout: str) -> list[str] | None:
    """The answer lines after the marker of :func:`redis_cli_script`; None without the marker."""
    lines = [line.strip() for line in str(stdout).splitlines()]
    return lines[lines.index(CLI_MARKER) + 1:] if CLI_MARKER in lines else None


def redis_cli_all_ok(stdout: str) -> bool:
    """Whether every answer after the marker of :func:`redis_cli_script` is ``OK`` (and there is at least one):
    False when no AUTH worked (the commands then answer NOAUTH) or a command failed."""
    answers = _cli_answers(stdout)
    return bool(answers) and all(answer == "OK" for answer in answers)


def redis_cli_summary(stdout: str, commands: Sequence[str]) -> str:
    """What each command of a :func:`redis_cli_script` answered, safe to print: the command's first words (its
    name and target, never a value: three words, four for SENTINEL) and the first word of its answer (``OK``,
    ``ERR``, ``NOAUTH``, ``WRONGPASS``, ...), e.g. ``"ACL SETUSER default: OK; CONFIG REWRITE: ERR"``. A command
    without an answer shows ``(none)``; without the marker line, the AUTH lines did not run at all."""
    answers = _cli_answers(stdout)
    if answers is None:
        return "no answer after the login (redis-cli did not run the commands)"
    out = []
    for index, command in enumerate(commands):
        words = str(command).split()
        label = " ".join(words[:4 if words[:1] == ["SENTINEL"] else 3])
        answer = answers[index].split()[0] if index < len(answers) and answers[index] else "(none)"
        out.append(f"{label}: {answer}")
    return "; ".join(out)


class FilterModule:
    """Ansible entry point."""

    def filters(self) -> dict[str, Any]:
        return {
            "rtstack_rotation_select": rotation_select,
            "rtstack_rotation_problems": rotation_problems,
            "rtstack_redis_acl_setuser": redis_acl_setuser,
            "rtstack_redis_password_hashes": redis_password_hashes,
            "rtstack_redis_cli_script": redis_cli_script,
            "rtstack_redis_cli_all_ok": redis_cli_all_ok,
            "rtstack_redis_cli_summary": redis_cli_summary,
        }
