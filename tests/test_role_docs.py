"""Each role's README documents its entry points and options from meta/argument_specs.yml (the one
source, rendered by scripts/role-docs.py), and no README or argument spec mentions a variable the
stack topology replaced."""

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

TOP = Path(__file__).resolve().parent.parent
ROLES_DIR = TOP / "roles"
SCRIPT = TOP / "scripts" / "role-docs.py"
# Every role of the project: a new role is checked as soon as it has an argument spec.
ROLES = sorted(path.parent.parent.name for path in ROLES_DIR.glob("*/meta/argument_specs.yml"))

#: Variables removed when the roles started reading the stack topology (plugins/filter/rtstack_topology.py)
#: instead of working out other tiers' addresses and ports themselves.
REMOVED_VARIABLES = (
    "centrifugo_hosts_group", "centrifugo_address", "centrifugo_internal_address", "centrifugo_redis_group",
    "centrifugo_redis_port", "centrifugo_redis_mode", "centrifugo_redis_address", "centrifugo_redis_sentinel_port",
    "centrifugo_redis_sentinel_master_name", "centrifugo_redis_sentinel_address", "centrifugo_django_group",
    "centrifugo_django_port",
    "django_hosts_group", "django_postgresql_group", "django_database_port", "django_centrifugo_group",
    "django_centrifugo_internal_port", "django_redis_group", "django_redis_port", "django_redis_mode",
    "django_redis_sentinel_port", "django_redis_sentinel_master_name", "django_redis_sentinels",
    "django_redis_shard_urls", "django_bind_address",
    "nginx_django_group", "nginx_django_port", "nginx_centrifugo_group", "nginx_centrifugo_port", "nginx_daphne_ports",
    "firewall_groups", "firewall_nginx_ports", "firewall_centrifugo_ports", "firewall_centrifugo_internal_ports",
    "firewall_django_port", "firewall_daphne_ports", "firewall_redis_port", "firewall_redis_sentinel_port",
    "firewall_redis_sentinel_enabled", "firewall_postgresql_port",
    "redis_hosts_group", "postgresql_client_group",
    # Replaced by a list when the app started failing over between every node's API (the failover issue).
    "django_centrifugo_api_url",
)
# A whole variable name: not part of a longer identifier (e.g. _centrifugo_address, an internal variable).
REMOVED = re.compile(r"(?<![\w])(" + "|".join(map(re.escape, REMOVED_VARIABLES)) + r")(?![\w])")


def role_docs():
    """scripts/role-docs.py as a module (its file name is not an identifier)."""
    spec = importlib.util.spec_from_file_location("role_docs", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_role_is_found():
    assert {"redis", "postgresql", "centrifugo", "django", "nginx", "firewall"} <= set(ROLES)


def test_no_readme_is_stale():
    """What CI runs: the renderer in check mode over every role."""
    result = subprocess.run([sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, (
        "README sections generated from meta/argument_specs.yml are stale; run "
        f".venv/bin/python scripts/role-docs.py\n{result.stdout}{result.stderr}"
    )


@pytest.mark.parametrize("role", ROLES)
def test_readme_section_is_generated_from_the_argument_spec(role):
    docs = role_docs()
    current, wanted = docs.check_role(ROLES_DIR, role)
    assert current == wanted, f"roles/{role}/README.md is stale: run .venv/bin/python scripts/role-docs.py {role}"
    section = current.split(docs.BEGIN, 1)[1].split(docs.END, 1)[0]
    specs = docs.load_specs(ROLES_DIR / role)
    for entry_point, spec in specs.items():
        assert f"### `{entry_point}`" in section, f"{role}: entry point {entry_point} is not documented"
        options = (spec or {}).get("options") or {}
        if entry_point != "main" and options == specs["main"].get("options"):
            continue  # "Takes the same options as `main`."
        for option in options:
            assert f"| `{option}` |" in section, f"{role}: option {option} of {entry_point} is not in a table"


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("path", ["README.md", "meta/argument_specs.yml"])
def test_no_removed_variable_is_mentioned(role, path):
    text = (ROLES_DIR / role / path).read_text(encoding="utf-8")
    found = sorted({(text.count("\n", 0, m.start()) + 1, m.group(1)) for m in REMOVED.finditer(text)})
    assert not found, (
        f"roles/{role}/{path} mentions removed variables (line, name): {found}; addresses and ports of other tiers "
        "come from the stack topology (README, \"Topology\")"
    )


def test_renderer_replaces_only_the_marked_section(tmp_path):
    """The renderer rewrites what is between the markers, keeps the rest, and --check reports a stale README."""
    docs = role_docs()
    role = tmp_path / "roles" / "demo"
    (role / "meta").mkdir(parents=True)
    (role / "meta" / "argument_specs.yml").write_text(
        "argument_specs:\n"
        "  main:\n"
        "    short_description: A demo\n"
        "    options: &options\n"
        "      demo_port: {type: int, default: 8000, description: Port of C(demo).}\n"
        "      demo_url:\n"
        "        type: str\n"
        "        description: [URL of the demo., Defaults to C(http://<address>:<demo_port>).]\n"
        "      demo_mode: {type: str, default: a, choices: [a, b], description: Mode | kind.}\n"
        "      demo_hosts: {type: list, elements: str, default: [], description: Hosts.}\n"
        "  assert:\n"
        "    short_description: Check\n"
        "    options: *options\n"
        "  op:\n"
        "    short_description: An operation\n"
        "    options:\n"
        "      demo_op_port: {type: int, required: true, description: Which one.}\n",
        encoding="utf-8")
    readme = role / "README.md"
    readme.write_text(f"# demo\n\nProse.\n\n{docs.BEGIN}\nold table\n{docs.END}\n\n## Handlers\n", encoding="utf-8")
    roles_dir = str(tmp_path / "roles")
    assert docs.main(["--check", "--roles-dir", roles_dir]) == 1
    assert docs.main(["--roles-dir", roles_dir]) == 0
    assert docs.main(["--check", "--roles-dir", roles_dir]) == 0
    text = readme.read_text(encoding="utf-8")
    assert text.startswith("# demo\n\nProse.\n\n" + docs.BEGIN + "\n") and text.endswith(docs.END + "\n\n## Handlers\n")
    assert "old table" not in text
    assert "| `demo_port` | int | no | `8000` |  | Port of `demo`. |" in text
    assert "| `demo_url` | str | no | computed: `http://<address>:<demo_port>` |  | URL of the demo. |" in text
    assert "| `demo_mode` | str | no | `a` | `a`, `b` | Mode \\| kind. |" in text
    assert "| `demo_hosts` | list of str | no | `[]` |" in text
    assert "### `assert`: Check" in text and "Takes the same options as `main`." in text
    assert "| `demo_op_port` | int | yes |  | Which one. |" in text
    readme.write_text("# demo\n", encoding="utf-8")
    assert docs.main(["--roles-dir", roles_dir]) == 2
