#!/usr/bin/env python3
"""Render each role's entry points and options from meta/argument_specs.yml into its README.

meta/argument_specs.yml is the one documentation of a role's variables (Ansible validates them
against it before the role runs; tests/test_argument_specs.py keeps it in step with
defaults/main.yml). This script writes, between the markers

    <!-- BEGIN generated from meta/argument_specs.yml by scripts/role-docs.py -->
    <!-- END generated -->

of roles/<role>/README.md, one section per entry point: its short description and, for `main`
and every entry point with options of its own, a table of its options (name, type, required,
default, choices, description). Everything between the markers is replaced; the rest of the
README is left alone.

Usage:
    scripts/role-docs.py [--check] [--roles-dir DIR] [ROLE ...]

Without --check, rewrites the READMEs whose generated section is out of date. With --check,
changes nothing and exits 1 listing the stale READMEs (tests/test_role_docs.py runs it so).
A README without the markers is an error (exit 2).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

BEGIN = "<!-- BEGIN generated from meta/argument_specs.yml by scripts/role-docs.py -->"
END = "<!-- END generated -->"
ROLES_DIR = Path(__file__).resolve().parent.parent / "roles"

#: Ansible's documentation markup: C(code), I(italic), B(bold), U(url), V(value), O(option),
#: E(env), M(module), P(plugin), L(text,url). Closed by the first ")", as ansible-doc does.
_MARKUP = re.compile(r"\b([CIBUVOEMPL])\(([^)]*)\)")
#: A sentence, clause or part of one that says how a computed default is made.
_DEFAULT_HINT = re.compile(r"(?i)\b(defaults? to|the default is|computed as|by default)\b")
_SENTENCE_END = re.compile(r"(?<=\.)\s+(?=[A-Z])")


class ReadmeError(Exception):
    """A README the generated section cannot be put in (no markers, or markers out of order)."""


def load_specs(role_dir: Path) -> dict[str, Any]:
    """The role's entry points, from meta/argument_specs.yml (YAML anchors resolved)."""
    with (role_dir / "meta" / "argument_specs.yml").open(encoding="utf-8") as handle:
        return (yaml.safe_load(handle) or {}).get("argument_specs") or {}


def _lines(description: Any) -> list[str]:
    if description is None:
        return []
    if isinstance(description, str):
        description = [description]
    return [" ".join(str(line).split()) for line in description if str(line).strip()]


def _escape_text(text: str, names: Iterable[str]) -> str:
    """Plain description text as Markdown: HTML-significant and emphasis characters escaped,
    known option names as code."""
    text = text.replace("\\", "\\\\").replace("*", "\\*").replace("<", "&lt;").replace(">", "&gt;")
    wanted = sorted(set(names), key=len, reverse=True)
    if wanted:
        pattern = re.compile(r"(?<![\w`])(" + "|".join(map(re.escape, wanted)) + r")(?![\w`])")
        text = pattern.sub(r"`\1`", text)
    return text


def _code(text: str) -> str:
    """A Markdown code span holding text (safe for any backticks inside)."""
    ticks = "`"
    while ticks in text:
        ticks += "`"
    pad = " " if text.startswith("`") or text.endswith("`") or not text.strip() else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def markdown(text: str, names: Iterable[str] = ()) -> str:
    """Ansible documentation markup (C(), I(), ...) as Markdown."""
    out, pos = [], 0
    for match in _MARKUP.finditer(text):
        out.append(_escape_text(text[pos:match.start()], names))
        kind, body = match.group(1), match.group(2)
        if kind in "CVOEMP":
            out.append(_code(body))
        elif kind == "I":
            out.append(f"*{_escape_text(body, ())}*")
        elif kind == "B":
            out.append(f"**{_escape_text(body, ())}**")
        elif kind == "U":
            out.append(f"<{body}>")
        else:  # L(text,url)
            label, _, url = body.partition(",")
            out.append(f"[{_escape_text(label, ())}]({url.strip()})")
        pos = match.end()
    out.append(_escape_text(text[pos:], names))
    return "".join(out)


def yaml_inline(value: Any) -> str:
    """A literal default as YAML in flow style, on one line."""
    dumped = yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=1 << 30, allow_unicode=True)
    dumped = dumped.strip()
    if dumped.endswith("\n..."):
        dumped = dumped[: -len("\n...")]
    elif dumped.endswith("..."):
        dumped = dumped[: -len("...")].rstrip()
    return " ".join(dumped.split("\n"))


def _type(spec: Mapping[str, Any]) -> str:
    kind = str(spec.get("type", "str"))
    if kind == "list" and spec.get("elements"):
        return f"list of {spec['elements']}"
    return kind


def split_computed_default(lines: list[str]) -> tuple[str, list[str]]:
    """For an option without a literal default: the first part of its description that says how
    the default is made (a clause with "Defaults to", "Computed as", "by default", "The default
    is"), and the description without it. ("", lines) when no part says so."""
    for index, line in enumerate(lines):
        sentences = _SENTENCE_END.split(line)
        for s_index, sentence in enumerate(sentences):
            clauses = sentence.split("; ")
            for c_index, clause in enumerate(clauses):
                hint = _DEFAULT_HINT.search(clause)
                if not hint:
                    continue
                said = clause.strip()
                lead = hint.group(1).lower()
                if hint.start() == 0 and lead in ("defaults to", "default to", "the default is", "computed as"):
                    said = said[hint.end():].strip()
                elif hint.start() > 0 and lead in ("defaults to", "computed as") and c_index > 0:
                    said = said[hint.end():].strip()
                elif lead == "by default":
                    said = (said[: hint.start()] + said[hint.end():]).strip()
                said = " ".join(said.split()).rstrip(".;, ")
                rest_clauses = clauses[:c_index] + clauses[c_index + 1:]
                rest_sentence = "; ".join(rest_clauses).strip()
                first_word = rest_sentence.split(" ", 1)[0]
                if c_index == 0 and first_word.isalpha() and first_word.islower():
                    rest_sentence = rest_sentence[:1].upper() + rest_sentence[1:]
                if rest_sentence and not rest_sentence.endswith((".", ":", "?", "!")):
                    rest_sentence = rest_sentence.rstrip(";, ") + "."
                rest_line = " ".join(s for s in sentences[:s_index] + [rest_sentence] + sentences[s_index + 1:] if s)
                rest = lines[:index] + ([rest_line] if rest_line else []) + lines[index + 1:]
                return said, rest
    return "", lines


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def options_table(options: Mapping[str, Any], names: Iterable[str]) -> list[str]:
    """The Markdown table of one entry point's options."""
    names = list(names)
    with_choices = any(spec.get("choices") for spec in options.values())
    header = ["Option", "Type", "Required", "Default"] + (["Choices"] if with_choices else []) + ["Description"]
    rows = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, spec in options.items():
        spec = spec or {}
        lines = _lines(spec.get("description"))
        if "default" in spec:
            default = _code(yaml_inline(spec["default"]))
        elif spec.get("required"):
            default = ""
        else:
            how, lines = split_computed_default(lines)
            default = "computed" + (": " + markdown(how, names) if how else "")
        description = " ".join(markdown(line, names) for line in lines)
        if spec.get("no_log"):
            description += " Secret (`no_log`)."
        row = [_code(name), _type(spec), "yes" if spec.get("required") else "no", default]
        if with_choices:
            row.append(", ".join(_code(yaml_inline(choice)) for choice in spec.get("choices") or []))
        row.append(description.strip())
        rows.append("| " + " | ".join(_cell(cell) for cell in row) + " |")
    return rows


def render(role: str, specs: Mapping[str, Any]) -> str:
    """The generated section of a role's README (without the markers)."""
    main = (specs.get("main") or {}).get("options") or {}
    names = set(main)
    for spec in specs.values():
        names |= set((spec or {}).get("options") or {})
    out = [
        "## Entry points and variables",
        "",
        f"Generated from `roles/{role}/meta/argument_specs.yml` by `scripts/role-docs.py`: edit the argument spec, then",
        "run `.venv/bin/python scripts/role-docs.py` (`--check` tells whether this section is up to date). Ansible",
        "validates these options before the entry point runs. Literal defaults are those of `defaults/main.yml`, as YAML;",
        "`computed` ones are templates there, evaluated on each host.",
    ]
    ordered = ["main"] + sorted(name for name in specs if name != "main")
    for entry in ordered:
        if entry not in specs:
            continue
        spec = specs[entry] or {}
        options = spec.get("options") or {}
        short = " ".join(str(spec.get("short_description") or "").split())
        out += ["", f"### `{entry}`" + (f": {markdown(short)}" if short else ""), ""]
        if entry != "main":
            out.append(f"`include_role: {{name: {role}, tasks_from: {entry}}}`.")
            details = " ".join(markdown(line, names) for line in _lines(spec.get("description")))
            if details:
                out[-1] += " " + details
            out.append("")
        if entry != "main" and options == main:
            out.append("Takes the same options as `main`.")
        elif not options:
            out.append("No options.")
        else:
            out += options_table(options, names)
    return "\n".join(out) + "\n"


def updated(readme: str, section: str) -> str:
    """The README with its generated section replaced by section."""
    begin, end = readme.find(BEGIN), readme.find(END)
    if begin < 0 or end < 0 or end < begin or readme.count(BEGIN) != 1 or readme.count(END) != 1:
        raise ReadmeError(f"needs exactly one pair of markers, in order:\n  {BEGIN}\n  {END}")
    return readme[: begin + len(BEGIN)] + "\n" + section + readme[end:]


def roles_in(roles_dir: Path) -> list[str]:
    """Every role of roles_dir with an argument spec."""
    return sorted(path.parent.parent.name for path in roles_dir.glob("*/meta/argument_specs.yml"))


def check_role(roles_dir: Path, role: str) -> tuple[str, str]:
    """(current README, README as it should be) of one role."""
    readme_path = roles_dir / role / "README.md"
    current = readme_path.read_text(encoding="utf-8")
    return current, updated(current, render(role, load_specs(roles_dir / role)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 when a README is stale")
    parser.add_argument("--roles-dir", type=Path, default=ROLES_DIR, help="the roles' directory (default: %(default)s)")
    parser.add_argument("roles", nargs="*", help="roles to render (default: every role with meta/argument_specs.yml)")
    args = parser.parse_args(argv)

    roles = args.roles or roles_in(args.roles_dir)
    stale, errors = [], []
    for role in roles:
        readme_path = args.roles_dir / role / "README.md"
        try:
            current, wanted = check_role(args.roles_dir, role)
        except (OSError, ReadmeError, yaml.YAMLError) as exc:
            errors.append(f"{readme_path}: {exc}")
            continue
        if current == wanted:
            continue
        stale.append(readme_path)
        if not args.check:
            readme_path.write_text(wanted, encoding="utf-8")
            print(f"updated {readme_path}")
    for error in errors:
        print(f"error: {error}", file=sys.stderr)
    if args.check and stale:
        print("Stale READMEs (run scripts/role-docs.py to update them):", file=sys.stderr)
        for path in stale:
            print(f"  {path}", file=sys.stderr)
        return 1
    return 2 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
