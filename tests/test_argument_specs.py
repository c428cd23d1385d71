"""Each role's meta/argument_specs.yml documents exactly the variables of its defaults/main.yml."""

from pathlib import Path

import pytest
import yaml

ROLES_DIR = Path(__file__).resolve().parent.parent / "roles"
# Every role of the project: a new role is checked as soon as it exists.
ROLES = sorted(path.name for path in ROLES_DIR.iterdir() if (path / "defaults" / "main.yml").exists())
TYPES = {"str", "int", "bool", "list", "dict", "path", "raw", "float"}


def load_yaml(path):
    with path.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def defaults_of(role):
    return load_yaml(ROLES_DIR / role / "defaults" / "main.yml") or {}


def entry_points_of(role):
    return load_yaml(ROLES_DIR / role / "meta" / "argument_specs.yml")["argument_specs"]


def options_of(role, entry_point="main"):
    return entry_points_of(role)[entry_point]["options"]


@pytest.mark.parametrize("role", ROLES)
def test_main_options_match_defaults(role):
    options = set(options_of(role))
    defaults = set(defaults_of(role))
    assert options == defaults, (
        f"{role}: undocumented defaults {sorted(defaults - options)}, "
        f"options without a default {sorted(options - defaults)}"
    )


@pytest.mark.parametrize("role", ROLES)
def test_every_option_has_a_type_and_a_description(role):
    for name, spec in options_of(role).items():
        assert spec.get("type") in TYPES, f"{role}: {name} has no valid type"
        assert spec.get("description"), f"{role}: {name} has no description"
        if spec["type"] == "list":
            assert spec.get("elements"), f"{role}: list option {name} has no elements"


#: Entry points that take inputs of their own (an operation on the deployed role, not a part of
#: its deployment), rather than the role's variables.
OWN_OPTIONS = {("nginx", "upstream_member"), ("centrifugo", "restart")}


@pytest.mark.parametrize("role", ROLES)
def test_assert_entry_point_has_the_same_options(role):
    """Every role has `main` and `assert`; every other entry point (a task file the playbooks call
    alone, like centrifugo's `retire`) takes the same options as `main`, unless it is an operation
    with inputs of its own (OWN_OPTIONS), whose options are then all prefixed with the role's name."""
    entry_points = entry_points_of(role)
    assert {"main", "assert"} <= set(entry_points)
    for name, entry_point in entry_points.items():
        if (role, name) in OWN_OPTIONS:
            assert entry_point["options"], f"{role}: {name} documents no options"
            for option, spec in entry_point["options"].items():
                assert option.startswith(f"{role}_"), f"{role}: {name} option {option} lacks the role prefix"
                assert spec.get("type") in TYPES and spec.get("description"), f"{role}: {name} {option} undocumented"
            continue
        assert entry_point["options"] == entry_points["main"]["options"], f"{role}: {name} options differ from main"


@pytest.mark.parametrize("role", ROLES)
def test_literal_defaults_are_documented_as_is(role):
    defaults = defaults_of(role)
    for name, spec in options_of(role).items():
        if "default" in spec:
            assert spec["default"] == defaults[name], f"{role}: {name} default differs from defaults/main.yml"
        if "choices" in spec and "default" in spec:
            assert spec["default"] in spec["choices"], f"{role}: {name} default is not one of its choices"
