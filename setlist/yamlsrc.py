"""YAML text to a tree of located nodes, so every later error can name file:line:column.

Pure: takes text, never opens files. Only YAML's structure is used (`yaml.compose`), and
scalars are typed here with a small, predictable rule set (YAML 1.2 core style), so no tag
can construct objects, `no` stays the word "no", and `1:15:00` stays a clock string.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import yaml

from setlist.errors import ArcError, DataFileError, Problem

#: Guard against alias bombs ("billion laughs"): no arc needs more nodes than this.
MAX_NODES = 50_000

_INT = re.compile(r"[-+]?[0-9]+\Z")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?\Z")
_STANDARD_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:map",
    "tag:yaml.org,2002:seq",
    # implicit resolutions of plain scalars; never constructed, typed by `_scalar` instead
    "tag:yaml.org,2002:timestamp",
    "tag:yaml.org,2002:merge",
    "tag:yaml.org,2002:value",
    "tag:yaml.org,2002:yaml",
}


@dataclass(frozen=True, slots=True)
class Mark:
    """A 1-based position in a named source."""

    origin: str
    line: int
    column: int


@dataclass(frozen=True, slots=True)
class Node:
    """A YAML value with where it was written (and where its key was, for mapping entries).

    `value` is a str, int, float, bool, None, `dict[str, Node]` or `list[Node]`.
    """

    value: Any
    mark: Mark
    key_mark: Mark | None = None

    def plain(self) -> Any:
        """The value with all marks stripped, for comparisons and JSON."""
        if isinstance(self.value, dict):
            return {k: v.plain() for k, v in self.value.items()}
        if isinstance(self.value, list):
            return [v.plain() for v in self.value]
        return self.value


def _short_tag(tag: str) -> str:
    prefix = "tag:yaml.org,2002:"
    return "!!" + tag[len(prefix) :] if tag.startswith(prefix) else tag


def _mark(origin: str, m: yaml.Mark) -> Mark:
    return Mark(origin, m.line + 1, m.column + 1)


def _problem(origin: str, m: yaml.Mark | None, message: str) -> Problem:
    if m is None:
        return Problem(origin, 1, 1, "", message)
    return Problem(origin, m.line + 1, m.column + 1, "", message)


def _scalar(node: yaml.ScalarNode) -> Any:
    text = node.value
    if node.style in ("'", '"', "|", ">") or node.tag == "tag:yaml.org,2002:str":
        return text
    if text in ("", "~", "null", "Null", "NULL"):
        return None
    if text in ("true", "True", "TRUE"):
        return True
    if text in ("false", "False", "FALSE"):
        return False
    if _INT.match(text):
        return int(text)
    if _FLOAT.match(text) and any(c.isdigit() for c in text):
        return float(text)
    return text


class _Builder:
    def __init__(self, origin: str, error: type[DataFileError]) -> None:
        self.origin = origin
        self.error = error
        self.count = 0
        self.problems: list[Problem] = []

    def build(self, node: yaml.Node, key_mark: Mark | None = None) -> Node:
        self.count += 1
        if self.count > MAX_NODES:
            raise self.error(
                [_problem(self.origin, node.start_mark, f"more than {MAX_NODES} values")],
                hint="anchors and aliases expand to too much data; write the arc out plainly",
            )
        mark = _mark(self.origin, node.start_mark)
        if node.tag not in _STANDARD_TAGS:
            self.problems.append(
                _problem(
                    self.origin,
                    node.start_mark,
                    f"YAML tag '{_short_tag(node.tag)}' is not allowed "
                    "(arc files hold plain data only)",
                )
            )
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Node] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    self.problems.append(
                        _problem(self.origin, key_node.start_mark, "a key must be a plain word")
                    )
                    continue
                if key_node.value == "<<":
                    self.problems.append(
                        _problem(
                            self.origin,
                            key_node.start_mark,
                            "merge keys ('<<') are not supported; use 'extends' instead",
                        )
                    )
                    continue
                key = str(_scalar(key_node))
                kmark = _mark(self.origin, key_node.start_mark)
                if key in out:
                    first = out[key].key_mark
                    where = f" (first at line {first.line})" if first else ""
                    self.problems.append(
                        Problem(
                            self.origin,
                            kmark.line,
                            kmark.column,
                            key,
                            f"duplicate key{where}",
                        )
                    )
                    continue
                out[key] = self.build(value_node, kmark)
            return Node(out, mark, key_mark)
        if isinstance(node, yaml.SequenceNode):
            return Node([self.build(item) for item in node.value], mark, key_mark)
        assert isinstance(node, yaml.ScalarNode)
        return Node(_scalar(node), mark, key_mark)


def parse_yaml(text: str, origin: str, error: type[DataFileError] = ArcError) -> Node:
    """Parse one YAML document into located nodes; raise `error` with positions."""
    try:
        documents = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = exc.problem or "invalid YAML"
        if exc.context:
            message = f"{message} ({exc.context})"
        raise error(
            [_problem(origin, mark, f"YAML syntax error: {message}")],
            hint="check indentation and that every 'key: value' has a space after the colon",
        ) from None
    except yaml.YAMLError as exc:
        raise error([Problem(origin, 1, 1, "", f"YAML error: {exc}")]) from None
    documents = [d for d in documents if d is not None]
    if not documents:
        raise error([Problem(origin, 1, 1, "", "the file is empty")])
    if len(documents) > 1:
        raise error([_problem(origin, documents[1].start_mark, "only one YAML document per file")])
    builder = _Builder(origin, error)
    root = builder.build(documents[0])
    if builder.problems:
        raise error(builder.problems)
    return root


# --- wording shared by every validator of located YAML (arcs, profiles, setlists) ------


def join_path(path: str, key: str | int) -> str:
    """The key path of a child: `phases[2]`, `phases[2].duration`."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def suggest(word: str, choices: Iterable[str]) -> str | None:
    """The nearest valid key for a typo, if one is close enough to help."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return close[0] if close else None


def show_value(value: Any) -> str:
    """A value as the user wrote it, short enough for a one-line message."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 40 else text[:37] + "..."
