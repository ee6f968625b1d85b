#!/usr/bin/env python3
"""Write the parameter tables of a Helm chart's README.md from its values.yaml.

values.yaml documents each parameter on a comment line, in the notation of Bitnami's readme
generator (only the two keywords this chart uses):

    ## @section Title of a group of parameters
    ## @param dotted.key Description of the parameter

The tables replace whatever README.md holds between the `<!-- parameters:start -->` and
`<!-- parameters:end -->` markers; the rest of the README is written by hand. Defaults are read
from the parsed values, so they cannot drift from values.yaml.

The run fails when a documented key does not exist in values.yaml, or when a value is not
documented by its own `@param` or an ancestor's.

    scripts/chart-readme.py [CHART_DIR]           rewrite README.md (default charts/realtimeorder)
    scripts/chart-readme.py --check [CHART_DIR]   exit 1 when README.md is out of date
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

START = "<!-- parameters:start -->"
END = "<!-- parameters:end -->"
SECTION = re.compile(r"^\s*##\s*@section\s+(?P<title>.+?)\s*$")
PARAM = re.compile(r"^\s*##\s*@param\s+(?P<key>\S+)\s+(?P<text>.+?)\s*$")
_MISSING = object()


@dataclass
class Section:
    title: str
    params: list[tuple[str, str]] = field(default_factory=list)


def parse_docs(text: str) -> list[Section]:
    sections: list[Section] = []
    for line in text.splitlines():
        if match := SECTION.match(line):
            sections.append(Section(match["title"]))
        elif match := PARAM.match(line):
            if not sections:
                sections.append(Section("Parameters"))
            sections[-1].params.append((match["key"], match["text"]))
    return sections


def lookup(values: Any, key: str) -> Any:
    node = values
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


def leaves(values: Any, prefix: str = "") -> list[str]:
    """Dotted keys of every value that is not a non-empty mapping."""
    if not isinstance(values, dict) or not values:
        return [prefix] if prefix else []
    found: list[str] = []
    for key, value in values.items():
        found.extend(leaves(value, f"{prefix}.{key}" if prefix else str(key)))
    return found


def problems(sections: list[Section], values: Any) -> list[str]:
    documented = [key for section in sections for key, _ in section.params]
    errors = [
        f"@param {key}: no such value" for key in documented if lookup(values, key) is _MISSING
    ]
    for leaf in leaves(values):
        parts = leaf.split(".")
        if not any(".".join(parts[:n]) in documented for n in range(1, len(parts) + 1)):
            errors.append(f"{leaf}: not documented by an @param line")
    return errors


def render_value(value: Any) -> str:
    text = json.dumps(value, separators=(", ", ": "), ensure_ascii=False)
    return "`" + text.replace("|", "\\|") + "`"


def render_tables(sections: list[Section], values: Any) -> str:
    parts: list[str] = []
    for section in sections:
        if not section.params:
            continue
        parts += [
            f"### {section.title}",
            "",
            "| Name | Description | Default |",
            "| --- | --- | --- |",
        ]
        for key, text in section.params:
            description = text.replace("|", "\\|")
            parts.append(f"| `{key}` | {description} | {render_value(lookup(values, key))} |")
        parts.append("")
    return "\n".join(parts)


def updated_readme(readme: str, tables: str) -> str:
    if START not in readme or END not in readme:
        raise ValueError(f"README.md lacks the {START} / {END} markers")
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n\n{tables}\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("chart", nargs="?", default="charts/realtimeorder", type=Path)
    parser.add_argument("--check", action="store_true", help="fail when README.md is stale")
    args = parser.parse_args(argv)

    values_text = (args.chart / "values.yaml").read_text(encoding="utf-8")
    values = yaml.safe_load(values_text) or {}
    sections = parse_docs(values_text)
    errors = problems(sections, values)
    if errors:
        print("values.yaml documentation:\n  " + "\n  ".join(errors), file=sys.stderr)
        return 1

    readme_path = args.chart / "README.md"
    readme = readme_path.read_text(encoding="utf-8")
    new = updated_readme(readme, render_tables(sections, values))
    if args.check:
        if new != readme:
            print(f"{readme_path} is out of date: run scripts/chart-readme.py", file=sys.stderr)
            return 1
        return 0
    if new != readme:
        readme_path.write_text(new, encoding="utf-8")
        print(f"updated {readme_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
