"""The README and docs/*.md against the code: links resolve, `chatbot` command lines parse, the front page stays short.

Nothing here trains or serves: command lines are parsed with click's `make_context`, never run.
"""

from __future__ import annotations

import re
import shlex
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import click
import pytest

from chatbot.cli import main

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
README_MAX_BYTES = 12_000

FENCE = re.compile(r"^\s*(```+|~~~+)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$")
CODE_SPAN = re.compile(r"(`+)(.+?)\1")
LINK = re.compile(r"\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HTML_SRC = re.compile(r"""<(?:img|a)\b[^>]*?\b(?:src|href)=["']([^"']+)["']""")
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
PROGRAMS = {"chatbot", ".venv/bin/chatbot"}
# A line that runs `chatbot`: at its start or after &&, ||, | or ;, maybe after a `$ ` prompt and VAR=value prefixes.
COMMAND_LINE = re.compile(r"(?:^|&&|\|\|?|;)\s*(?:\$\s+)?(?:[A-Za-z_]\w*=\S*\s+)*(?:\.venv/bin/)?chatbot(?:\s|$)")
ENV_ASSIGNMENT = re.compile(r"[A-Za-z_]\w*=.*", re.DOTALL)


@dataclass(frozen=True)
class Page:
    """A markdown page split into prose lines (code blocks blanked) and fenced code blocks."""

    path: Path
    prose: list[str]  # one entry per line of the file; lines inside fences are ""
    blocks: list[list[tuple[int, str]]]  # (line number, text) of each fenced block's lines

    @classmethod
    def read(cls, path: Path) -> Page:
        prose: list[str] = []
        blocks: list[list[tuple[int, str]]] = []
        fence: str | None = None
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            marker = FENCE.match(line)
            if fence is None and marker:
                fence = marker.group(1)
                blocks.append([])
                prose.append("")
            elif fence is not None:
                if marker and marker.group(1).startswith(fence) and not line.strip().strip(fence[0]):
                    fence = None
                else:
                    blocks[-1].append((number, line))
                prose.append("")
            else:
                prose.append(line)
        return cls(path, prose, blocks)


def relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower-case, spaces to '-', punctuation dropped (markup first)."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = text.replace("`", "").replace("**", "").lower()
    kept = (ch for ch in text if ch in " -" or unicodedata.category(ch)[0] in "LMN" or unicodedata.category(ch) == "Pc")
    return "".join(kept).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found: set[str] = set()
    counts: dict[str, int] = {}
    for line in Page.read(path).prose:
        heading = HEADING.match(line)
        if heading:
            anchor = github_anchor(heading.group(1))
            found.add(anchor if anchor not in counts else f"{anchor}-{counts[anchor]}")
            counts[anchor] = counts.get(anchor, 0) + 1
    return found


def links(page: Page) -> list[tuple[int, str]]:
    """(line number, target) of every markdown link, image and HTML src/href outside code."""
    found = []
    for number, line in enumerate(page.prose, start=1):
        text = CODE_SPAN.sub("code", line)
        found += [(number, target) for target in LINK.findall(text) + HTML_SRC.findall(text)]
    return found


def link_cases() -> list:
    cases = []
    for path in PAGES:
        for number, target in links(Page.read(path)):
            if not SCHEME.match(target):
                cases.append(pytest.param(path, target, id=f"{relative(path)}:{number}:{target}"))
    return cases


@pytest.mark.parametrize(("page", "target"), link_cases())
def test_relative_link_resolves(page: Path, target: str) -> None:
    file_part, _, fragment = target.partition("#")
    linked = (page.parent / unquote(file_part)).resolve() if file_part else page
    assert linked.exists(), f"{relative(page)} links to {target}, but {linked} does not exist"
    assert linked.is_relative_to(ROOT), f"{relative(page)} links to {target}, outside the repository"
    if fragment:
        assert linked.suffix == ".md", f"{relative(page)}: an #anchor into {linked.name}, which is not markdown"
        assert unquote(fragment) in anchors(linked), f"{relative(page)} links to {target}: no such heading"


def test_pages_have_links_and_anchors_are_checked() -> None:
    """The checks above are not vacuous: the parser sees the README's links and the docs' headings."""
    targets = {target for _, target in links(Page.read(README))}
    assert "docs/cli.md" in targets
    assert "chatbot-train" in anchors(ROOT / "docs" / "cli.md")


def test_readme_links_every_docs_page() -> None:
    targets = {target.partition("#")[0] for _, target in links(Page.read(README))}
    missing = [relative(path) for path in PAGES[1:] if relative(path) not in targets]
    assert not missing, f"README.md does not link {missing}"


def test_github_anchor_rules() -> None:
    assert github_anchor("`chatbot train`") == "chatbot-train"
    assert github_anchor("intents.json") == "intentsjson"
    assert github_anchor("When the bot refuses too much or too little") == "when-the-bot-refuses-too-much-or-too-little"
    assert github_anchor("`chatbot import-csv`, `chatbot evaluate`") == "chatbot-import-csv-chatbot-evaluate"
    assert github_anchor("out_of_scope, ভালো!") == "out_of_scope-ভালো"


def test_readme_is_a_front_page() -> None:
    size = README.stat().st_size
    assert size <= README_MAX_BYTES, f"README.md is {size:,} bytes; move reference material to docs/"


# Command lines ------------------------------------------------------------------------------------------------------


def split_words(line: str) -> list[str]:
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    return list(lexer)


def chatbot_invocations(line: str) -> list[list[str]]:
    """The arguments of every `chatbot` run in a shell line: split on &&, ||, |, ;, without `$ ` and VAR=value."""
    invocations = []
    segment: list[str] = []
    for word in [*split_words(line), ";"]:
        if word and set(word) <= set("&|;()"):
            while segment and (segment[0] == "$" or ENV_ASSIGNMENT.fullmatch(segment[0])):
                segment.pop(0)
            if segment and segment[0] in PROGRAMS:
                invocations.append(segment[1:])
            segment = []
        else:
            segment.append(word)
    return invocations


def command_lines(page: Page) -> list[tuple[int, str, bool]]:
    """(line number, text, check names only) of each line that runs `chatbot`, in fenced blocks and inline code."""
    found = []
    for block in page.blocks:
        for index, (number, line) in enumerate(block):
            if not COMMAND_LINE.search(line):
                continue
            # A synopsis (`chatbot train [--intents intents.json] ...`) may go on over indented `[...]` lines.
            for _, more in block[index + 1 :]:
                if not re.match(r"\s+\[", more):
                    break
                line += " " + more.strip()
            found.append((number, line, "[" in line))
    for number, line in enumerate(page.prose, start=1):
        for _, span in CODE_SPAN.findall(line):
            if re.match(r"(?:\.venv/bin/)?chatbot\s", span.strip()):
                found.append((number, span.strip(), True))  # prose may leave out arguments: check names only
    return found


def command_cases() -> list:
    cases = []
    for path in PAGES:
        for number, line, names_only in command_lines(Page.read(path)):
            cases.append(pytest.param(line, names_only, id=f"{relative(path)}:{number}:{line[:60]}"))
    return cases


def group_context() -> click.Context:
    return main.make_context("chatbot", [], resilient_parsing=True)


def option_names(command: click.Command, context: click.Context) -> set[str]:
    return {name for param in command.get_params(context) for name in [*param.opts, *param.secondary_opts]}


def check_names(args: list[str]) -> None:
    """Synopses and prose: the subcommand exists and every `--option` in brackets is one of its options."""
    words = [word.strip("[]") for word in args]
    if words[0] in {"--help", "-h", "--version"}:  # the group's own options
        return
    group = main.make_context("chatbot", words[:1])
    name, command, _ = main.resolve_command(group, words)
    known = option_names(command, click.Context(command, info_name=name, parent=group))
    unknown = [word.split("=")[0] for word in words[1:] if word.startswith("-") and word.split("=")[0] not in known]
    if unknown:
        raise click.NoSuchOption(unknown[0], ctx=click.Context(command, info_name=name, parent=group))


def check_parses(args: list[str]) -> None:
    """A full command line parses as click would parse it, option values and arguments included."""
    try:
        group = main.make_context("chatbot", list(args))
        name, command, rest = main.resolve_command(group, list(args))
        command.make_context(name, rest, parent=group)
    except click.exceptions.Exit as stop:  # --help and --version stop parsing with exit code 0
        assert stop.exit_code == 0


@pytest.mark.parametrize(("line", "names_only"), command_cases())
def test_documented_command_parses(line: str, names_only: bool) -> None:
    try:
        invocations = chatbot_invocations(line)
    except ValueError as exc:
        pytest.fail(f"cannot split {line!r} as a shell line: {exc}")
    assert invocations, f"no chatbot command found in {line!r}"
    for args in invocations:
        try:
            check_names(args) if names_only else check_parses(args)
        except click.UsageError as exc:
            pytest.fail(f"`{' '.join(['chatbot', *args])}`: {exc.format_message()}")


def test_commands_are_found() -> None:
    """The collection above is not vacuous: it sees the set-up line, `$ ` prompts and VAR=value prefixes."""
    lines = [line for path in PAGES for _, line, _ in command_lines(Page.read(path))]
    invocations = [args for line in lines for args in chatbot_invocations(line)]
    assert ["train", "--if-needed"] in invocations
    assert ["serve"] in invocations
    assert {args[0] for args in invocations} >= set(main.commands)
    assert chatbot_invocations("$ X=1 Y='a b' chatbot serve | tee log && .venv/bin/chatbot chat -v") == [
        ["serve"],
        ["chat", "-v"],
    ]


def test_cli_page_shows_every_option() -> None:
    """docs/cli.md gives each subcommand a synopsis line that names every one of its options."""
    page = Page.read(ROOT / "docs" / "cli.md")
    synopses = [line for _, line, names_only in command_lines(page) if names_only and "[" in line]
    group = group_context()
    for name, command in main.commands.items():
        shown = {
            word.strip("[]").split("=")[0] for line in synopses if line.split()[1] == name for word in line.split()
        }
        assert shown, f"docs/cli.md has no synopsis of `chatbot {name}`"
        context = click.Context(command, info_name=name, parent=group)
        help_option = command.get_help_option(context)
        for param in command.get_params(context):
            if isinstance(param, click.Option) and not param.hidden and param is not help_option:
                assert shown & {*param.opts, *param.secondary_opts}, f"docs/cli.md: `chatbot {name}` lacks {param.opts}"
