"""YAML text → plain data, plus where every key and value sits in the file.

``yaml.safe_load`` throws positions away, and FILE:LINE:COL errors need them, so this
module composes the node graph itself (``yaml.compose``) and builds the plain data from it,
remembering the start of each key and value under its key path (``("rules", 0, "when")``).
On the way it does the three things that must happen on nodes rather than on data:

* ``${VAR}`` / ``${VAR:-default}`` in scalar *values* are replaced from the environment
  (never in keys; comments never reach the composer). ``$${`` writes a literal ``${``.
  A plain scalar is re-typed after substitution, as if its text had been written there,
  so ``max_in_flight: ${N:-16}`` is the number 16.
* Duplicate keys are reported (PyYAML would silently keep the last one).
* Aliases are expanded with a cap on the total size and a guard against cycles, so a
  hostile file cannot make loading explode.

Nothing here raises for bad input: problems become ``ConfigIssue``s on the result.

Lines are counted the way editors, ``grep -n`` and ``sed -n`` count them, by ``\n``: YAML
also breaks lines at NEL, U+2028 and U+2029, so PyYAML's own line numbers would point at the
wrong line of a file holding one of them (text pasted from a word processor). Positions are
therefore taken from PyYAML's character offsets, never from its line numbers.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from ..errors import ConfigIssue

#: Where a value sits in the data: ``("rules", 0, "when")``.
KeyPath = tuple[str | int, ...]

#: Upper bound on nodes after alias expansion; a real config has a few hundred.
MAX_NODES = 100_000

_TAG = "tag:yaml.org,2002:"
_MERGE = _TAG + "merge"
#: ``${...}`` problems reported one by one in a value; the rest are counted in one line.
_ISSUES_PER_VALUE = 10

# A default stops at the next "${" (references do not nest): were it free to run to the
# end of the text, each of many unclosed "${a:-" would rescan the rest (quadratic).
_REF = re.compile(
    r"\$\$\{"  # escaped: a literal ${
    r"|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>(?:[^$}]|\$(?!\{))*))?\}"
    r"|\$\{"  # anything else after ${ is a mistake
)


@dataclass(frozen=True, slots=True)
class _Span:
    """Where a node's text starts (0-based line and column, by ``\n``) and what it spans."""

    index: int
    line: int
    col: int
    end: int


@dataclass(slots=True)
class YamlSource:
    """A parsed file: its plain data, the issues found so far, and a position for every path.

    ``fatal`` is set when the text is not YAML at all; ``data`` is then ``None``.
    """

    filename: str
    text: str
    data: Any = None
    issues: list[ConfigIssue] = field(default_factory=list)
    fatal: bool = False
    #: (start, end) 1-based positions of values that used an unset variable: whatever else
    #: is wrong there follows from that, and is not worth a second message.
    tainted: list[tuple[tuple[int, int], tuple[int, int]]] = field(default_factory=list)
    _values: dict[KeyPath, _Span] = field(default_factory=dict)
    _keys: dict[KeyPath, _Span] = field(default_factory=dict)
    _line_starts: list[int] = field(default_factory=list)

    def where(self, index: int) -> tuple[int, int]:
        """1-based (line, col) of character ``index`` of the text, lines split at ``\n``."""
        if not self._line_starts:
            self._line_starts = [0] + [m.end() for m in re.finditer("\n", self.text)]
        line = bisect.bisect_right(self._line_starts, index) - 1
        return line + 1, index - self._line_starts[line] + 1

    def span(self, node: yaml.Node) -> _Span:
        line, col = self.where(node.start_mark.index)
        return _Span(node.start_mark.index, line - 1, col - 1, node.end_mark.index)

    def issue(self, path: KeyPath, message: str, *, key: bool = False) -> ConfigIssue:
        line, col = self.position(path, key=key)
        return ConfigIssue(self.filename, line, col, message)

    def issue_at(self, path: KeyPath, offset: int, message: str) -> ConfigIssue:
        """An issue at character ``offset`` of the string value at ``path``."""
        line, col = self.offset_position(path, offset)
        return ConfigIssue(self.filename, line, col, message)

    def is_tainted(self, issue: ConfigIssue) -> bool:
        at = (issue.line, issue.col)
        return any(start <= at <= end for start, end in self.tainted)

    def position(self, path: KeyPath, *, key: bool = False) -> tuple[int, int]:
        """1-based (line, col) of the value (or key) at ``path``, or of its nearest ancestor.

        A missing key is thus reported at the mapping that should have held it.
        """
        found = self._keys.get(path) if key else None
        while found is None and path:
            found = self._values.get(path)
            path = path[:-1]
        found = found or self._values.get(())
        return (found.line + 1, found.col + 1) if found is not None else (1, 1)

    def offset_position(self, path: KeyPath, offset: int) -> tuple[int, int]:
        """Where character ``offset`` of a string value lies, for single-line, quoted,
        folded and literal scalars alike (see ``_raw_offset``)."""
        span = self._values.get(path)
        if span is None:
            return self.position(path)
        value = _get(self.data, path)
        if not isinstance(value, str):
            return self.position(path)
        return self._at(span, _raw_offset(self.text[span.index : span.end], value, offset))

    def locate(self, loc: Sequence[str | int]) -> tuple[KeyPath, bool]:
        """Turn a pydantic error ``loc`` into the longest known path and whether it names a key.

        Pydantic appends ``"[key]"`` when a mapping key itself is invalid.
        """
        path: KeyPath = ()
        for i, part in enumerate(loc):
            if part == "[key]" and path:
                return path, True
            candidate = (*path, part)
            if candidate not in self._values:
                break
            path = candidate
            if i == len(loc) - 1:
                return path, False
        return path, False

    def _at(self, span: _Span, rel: int) -> tuple[int, int]:
        return self.where(span.index + rel)


def parse_yaml(text: str, filename: str, env: Mapping[str, str]) -> YamlSource:
    """Compose ``text`` and build its plain data; never raises for any input text."""
    src = YamlSource(filename, text)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        src.issues.append(_syntax_issue(src, exc))
        src.fatal = True
        return src
    except yaml.YAMLError as exc:  # ReaderError: a character YAML does not allow
        line, col = src.where(getattr(exc, "position", 0))
        src.issues.append(ConfigIssue(filename, line, col, f"invalid YAML: {_reader_reason(exc)}"))
        src.fatal = True
        return src
    except RecursionError:
        src.issues.append(ConfigIssue(filename, 1, 1, "invalid YAML: nesting is too deep"))
        src.fatal = True
        return src
    if root is None:
        return src
    builder = _Builder(src, env)
    try:
        src.data = builder.build(root, ())
    except RecursionError:
        src.issues.append(ConfigIssue(filename, 1, 1, "invalid YAML: nesting is too deep"))
        src.fatal = True
    except _TooLarge:
        line, col = src.position(())
        src.issues.append(
            ConfigIssue(filename, line, col, f"document expands to more than {MAX_NODES} nodes")
        )
        src.fatal = True
    return src


_MAX_BASE60_PARTS = 8  # sexagesimal 1:2:3 numbers: no clock or duration needs more


class _TooLarge(Exception):
    pass


class _Builder:
    """Turns a node graph into plain data, recording spans and issues on ``src``."""

    def __init__(self, src: YamlSource, env: Mapping[str, str]) -> None:
        self.src = src
        self.env = env
        self.count = 0
        self.active: set[int] = set()  # ids of the collections being built (cycle guard)
        self.scalars: dict[int, Any] = {}  # an alias reuses its node: substitute only once
        self.loader = yaml.SafeLoader("")

    def build(self, node: yaml.Node, path: KeyPath) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise _TooLarge
        self.src._values.setdefault(path, self.src.span(node))
        if isinstance(node, yaml.ScalarNode):
            if id(node) not in self.scalars:
                self.scalars[id(node)] = self._scalar(node, path)
            return self.scalars[id(node)]
        if id(node) in self.active:
            self._issue(path, "an alias refers to the node that contains it")
            return None
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                self._check_tag(node, "seq", path)
                return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
            assert isinstance(node, yaml.MappingNode)
            if node.tag != _TAG + "map":
                self._issue(path, f"unsupported YAML tag {node.tag!r} on a mapping")
            return self._mapping(node, path)
        finally:
            self.active.discard(id(node))

    def _mapping(self, node: yaml.MappingNode, path: KeyPath) -> dict[str, Any]:
        out: dict[str, Any] = {}
        merges: list[yaml.Node] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                merges.append(value_node)
                continue
            line, col = self.src.where(key_node.start_mark.index)
            if not isinstance(key_node, yaml.ScalarNode):
                self.src.issues.append(
                    ConfigIssue(
                        self.src.filename,
                        line,
                        col,
                        "a key must be plain text, not a list or mapping",
                    )
                )
                continue
            key = str(key_node.value)
            if key in out:
                first = self.src._keys[(*path, key)]
                self.src.issues.append(
                    ConfigIssue(
                        self.src.filename,
                        line,
                        col,
                        f"duplicate key '{key}' (first set at line {first.line + 1})",
                    )
                )
                continue
            self.src._keys.setdefault((*path, key), self.src.span(key_node))
            out[key] = self.build(value_node, (*path, key))
        # Explicit keys win over merged ones, and earlier merge sources over later ones.
        for merge in merges:
            sources = merge.value if isinstance(merge, yaml.SequenceNode) else [merge]
            for source in sources:
                if not isinstance(source, yaml.MappingNode):
                    self._issue(path, "'<<' merges only mappings (or a list of them)")
                    continue
                for key, value in self.build(source, path).items():
                    out.setdefault(key, value)
        return out

    def _scalar(self, node: yaml.ScalarNode, path: KeyPath) -> Any:
        text = str(node.value)
        if "${" in text:
            text = self._interpolate(text, path)
            if node.style is None:  # plain: type it as if the text had been written there
                tag = self.loader.resolve(  # type: ignore[no-untyped-call]
                    yaml.ScalarNode, text, (True, False)
                )
                node = yaml.ScalarNode(tag, text, node.start_mark, node.end_mark, node.style)
            else:
                return text
        kind = node.tag[len(_TAG) :] if node.tag.startswith(_TAG) else node.tag
        if kind in ("str", "timestamp", "value", "merge"):
            return str(node.value)
        constructors = {
            "null": self.loader.construct_yaml_null,
            "bool": self.loader.construct_yaml_bool,
            "int": self.loader.construct_yaml_int,
            "float": self.loader.construct_yaml_float,
        }
        construct = constructors.get(kind)
        if kind in ("int", "float") and str(node.value).count(":") > _MAX_BASE60_PARTS:
            # YAML 1.1 reads 1:30 as 90; PyYAML builds a long one with a quadratic loop.
            self._issue(path, f"this value is not a valid !!{kind}: too many ':' parts")
            return str(node.value)
        if construct is None:
            self._issue(path, f"unsupported YAML tag {node.tag!r}")
            return str(node.value)
        try:
            return construct(node)
        except (ValueError, LookupError, TypeError, OverflowError, yaml.YAMLError):
            self._issue(path, f"this value is not a valid !!{kind}")
            return str(node.value)

    def _interpolate(self, text: str, path: KeyPath) -> str:
        # Placing an issue walks the value up to it, so a value with thousands of bad
        # references would take quadratic time to report; past a few, they are counted.
        told = [0]
        first_untold = [0]

        def issue(offset: int, message: str) -> None:
            told[0] += 1
            if told[0] <= _ISSUES_PER_VALUE:
                self._issue_at(path, text, offset, message)
            elif told[0] == _ISSUES_PER_VALUE + 1:
                first_untold[0] = offset

        def substitute(m: re.Match[str]) -> str:
            if m.group(0) == "$${":
                return "${"
            name = m.group("name")
            if name is None:
                issue(m.start(), "malformed ${...}: write ${NAME} or ${NAME:-default}")
                return m.group(0)
            value = self.env.get(name)
            if value:
                return value
            default = m.group("default")
            if default is not None:
                return default
            if value is None:
                span = self.src._values[path]
                start = (span.line + 1, span.col + 1)
                self.src.tainted.append((start, self.src._at(span, span.end - span.index)))
                issue(
                    m.start(),
                    f"environment variable '{name}' is not set "
                    f"(write ${{{name}:-default}} to give a default)",
                )
            return ""

        out = _REF.sub(substitute, text)
        if told[0] > _ISSUES_PER_VALUE:
            more = told[0] - _ISSUES_PER_VALUE
            message = f"and {more} more ${{...}} problems in this value"
            self._issue_at(path, text, first_untold[0], message)
        return out

    def _check_tag(self, node: yaml.Node, kind: str, path: KeyPath) -> None:
        if node.tag != _TAG + kind:
            self._issue(path, f"unsupported YAML tag {node.tag!r}")

    def _issue(self, path: KeyPath, message: str) -> None:
        self.src.issues.append(self.src.issue(path, message))

    def _issue_at(self, path: KeyPath, value: str, offset: int, message: str) -> None:
        span = self.src._values[path]
        rel = _raw_offset(self.src.text[span.index : span.end], value, offset)
        line, col = self.src._at(span, rel)
        self.src.issues.append(ConfigIssue(self.src.filename, line, col, message))


def _raw_offset(raw: str, value: str, offset: int) -> int:
    """Index in ``raw`` (a scalar's source text) of character ``offset`` of its ``value``.

    The value is, apart from escapes, a subsequence of its source: quotes, block headers,
    indentation and folded line breaks are what YAML drops. So each value character is
    matched to the next equal source character (any whitespace matches any whitespace).
    That is exact for plain, quoted, literal and folded scalars without escapes, and
    degrades to a nearby position with them. ``offset >= len(value)`` means just after the
    last visible character (a block scalar's final line break is not where text ends).
    """
    if offset >= len(value.rstrip()) and offset > 0:
        visible = len(value.rstrip())
        return _raw_offset(raw, value, visible - 1) + 1 if visible else 0
    j = 0
    last = 0
    for i in range(min(offset, len(value)) + 1):
        if i == len(value):
            return last
        ch = value[i]
        if ch.isspace():
            k = next((n for n in range(j, len(raw)) if raw[n].isspace()), -1)
        else:
            k = raw.find(ch, j)
        if k < 0:
            return min(j, max(len(raw) - 1, 0))
        if i == offset:
            return k
        j = k + 1
        last = j
    return last


def _get(data: Any, path: KeyPath) -> Any:
    for part in path:
        if isinstance(data, dict) and isinstance(part, str):
            data = data.get(part)
        elif isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data):
            data = data[part]
        else:
            return None
    return data


def _reader_reason(exc: yaml.YAMLError) -> str:
    char = getattr(exc, "character", None)
    if isinstance(char, str) and len(char) == 1:
        char = ord(char)
    if isinstance(char, int):
        return f"character U+{char:04X} is not allowed in YAML"
    return "the text cannot be read as YAML"


def _syntax_issue(src: YamlSource, exc: yaml.MarkedYAMLError) -> ConfigIssue:
    """PyYAML's own phrasing: "while scanning a quoted scalar at 6:11, found unexpected
    end of stream", at the problem's mark."""
    mark = exc.problem_mark or exc.context_mark
    line, col = src.where(mark.index) if mark is not None else (1, 1)
    parts = []
    if exc.context:
        ctx = exc.context_mark
        where = ""
        if ctx is not None and ctx is not mark:
            where = " at {}:{}".format(*src.where(ctx.index))
        parts.append(exc.context + where)
    parts.append(exc.problem or "not valid YAML")
    return ConfigIssue(src.filename, line, col, "invalid YAML: " + ", ".join(parts))
