"""WhatsApp "Export chat" text files -> a list of `Message`s, to build chat corpora for language models.

Both layouts WhatsApp writes are read, in one pass over the lines of the file:

    Android:  12/31/20, 9:15 PM - Alice: Happy new year!       (system lines: `DATE, TIME - TEXT`)
    iOS:      [31/12/2020, 21:15:42] Alice: Happy new year!

with every date order (day-first, month-first, ISO-like `YYYY-MM-DD`), separator (`/`, `.`, `-`), 2- or
4-digit year, 12- or 24-hour clock (`PM`, `pm`, `p.m.`, with a space, U+00A0 or U+202F before it) and
optional seconds. Day-first vs month-first is inferred from the whole file; a file where every date has
both fields <= 12 is ambiguous and must be resolved with `dayfirst=`. Lines without a timestamp continue
the previous message, except a line that looks like a message start but does not parse (a mangled
timestamp): `read` reports it (`Chat.unparsed`, with its line number) and leaves it out. Media, deleted and
edited placeholders are recognised (English exports), as are the standard English system texts
(encryption notice, group created, member added/left, subject changed, ...). The file goes through the
corpus checks (`corpora.decode`): binary refused, an undecodable byte named with its offset in the file,
`errors="replace"` on request.

Example:

    >>> from rnnjax.data import whatsapp
    >>> chat = whatsapp.read("WhatsApp Chat with Alice.txt", drop_system=True, drop_media=True)
    >>> print(whatsapp.describe(chat))              # messages, authors, lines left out and why
    >>> corpus = whatsapp.to_text(chat.messages, with_authors=True)
    >>> prompt = whatsapp.default_prompt(chat.messages)   # "Alice: ", the most frequent author
"""

from __future__ import annotations

import datetime
import io
import os
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import NamedTuple

from rnnjax.data import _arguments, corpora

__all__ = [
    "Chat",
    "Message",
    "Unparsed",
    "author_counts",
    "default_prompt",
    "describe",
    "parse",
    "read",
    "to_text",
]


class Message(NamedTuple):
    """One chat message (or system notice) of an export."""

    timestamp: datetime.datetime  # naive local time, as written in the export
    author: str | None  # None for Android system lines, which have no author
    text: str  # continuation lines joined with "\n"; placeholders and system texts without direction marks
    is_system: bool  # group created, member added, encryption notice, ...
    is_media: bool  # "<Media omitted>", "image omitted", view-once "null", ...
    is_deleted: bool  # "This message was deleted", "You deleted this message"


class Unparsed(NamedTuple):
    """A line that looks like the start of a message but does not parse (a mangled timestamp or layout).

    It is left out of every message together with the lines after it that have no timestamp (they
    continue it), instead of being glued onto the message before it, which may be another author's.
    """

    lineno: int  # 1-based line number in the file
    line: str  # the line as written, leading direction marks removed
    continuation: int  # lines after it, up to the next message, left out with it


class Chat(NamedTuple):
    """What `read` found in an export: the messages kept and where every other line went."""

    path: str  # the file read
    messages: list[Message]  # in file order, after the filters
    unparsed: list[Unparsed]  # lines that look like a message start but do not parse, in file order
    layout: str  # "android" or "ios"
    dayfirst: bool | None  # the date order of `a/b/y` dates; None when every date is year-first
    dropped: dict[str, int]  # messages left out by each filter: "authors", "system", "media", "deleted"
    lines: int  # lines in the file


# Bidirectional-text marks WhatsApp puts at the start of lines and before placeholders / system texts.
_MARKS = "\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_NO_MARKS = str.maketrans("", "", _MARKS)
_SP = "[ \u00a0\u202f]"  # space, NO-BREAK SPACE, NARROW NO-BREAK SPACE

# Year-first dates need no inference (`iy-im-id`); the rest are `a/b/y` with a and b to be resolved.
_DATE = (
    r"(?:(?P<iy>\d{4})(?P<isep>[./-])(?P<im>\d{1,2})(?P=isep)(?P<id>\d{1,2})"
    r"|(?P<a>\d{1,2})(?P<sep>[./-])(?P<b>\d{1,2})(?P=sep)(?P<y>\d{4}|\d{2}))"
)
_TIME = (
    rf"(?P<H>\d{{1,2}})[:.](?P<M>\d{{2}})(?:[:.](?P<S>\d{{2}}))?(?:{_SP}*(?P<ampm>[AaPp])\.?{_SP}?[Mm]\.?)?"
)
_LAYOUTS = {
    "android": re.compile(rf"{_DATE},?{_SP}+{_TIME}{_SP}*[-\u2013]{_SP}(?P<rest>.*)", re.DOTALL),
    "ios": re.compile(rf"\[{_DATE},?{_SP}+{_TIME}\]{_SP}?(?P<rest>.*)", re.DOTALL),
}

# The shape of a message's first line with its timestamp or layout mangled, per layout (see `read`).
_FULL_DATE = r"\d{1,4}[./-]\d{1,2}[./-]\d{1,4}"
_SOME_DATE = r"(?=[^\s:,\]]{3,16},)[^\s:,\]]*\d[^\s:,\]]*"  # a short field holding a digit, then ','
_HEADER_LIKE = {
    "android": re.compile(
        rf"{_FULL_DATE},?{_SP}*\d{{1,2}}[:.hH]\d"  # date, time: '31/12/2020 21:15 Bob: hi'
        rf"|{_FULL_DATE}[^\n]{{0,20}}?[-\u2013]{_SP}[^:\n]{{1,60}}?: "  # date, NAME: '31/12/2020 - Bob: '
        rf"|{_SOME_DATE},{_SP}*\d{{1,2}}[:.]\d{{2}}[^\n]{{0,10}}?[-\u2013]{_SP}"  # '31/12, 21:15 - '
    ),
    "ios": re.compile(
        rf"\[{_SP}*{_FULL_DATE}"  # '[' and a date: '[31/12/2020 21:15:42 Bob: hi'
        rf"|\[{_SOME_DATE},{_SP}*\d{{1,2}}[:.]\d{{2}}[:.]\d{{2}}"  # '[31/12, 21:15:42] Bob: hi'
        rf"|{_FULL_DATE},?{_SP}*\d{{1,2}}[:.]\d{{2}}[:.]\d{{2}}\]"  # no '[': '31/12/2020, 21:15:42] '
    ),
}

_EDITED = re.compile(rf"[\s{_MARKS}]*<This message was edited>[{_MARKS}]*\Z")
_DELETED = frozenset(
    {
        "This message was deleted",
        "This message was deleted.",
        "You deleted this message",
        "You deleted this message.",
    }
)
_MEDIA = frozenset(
    {"<Media omitted>", "image omitted", "video omitted", "audio omitted", "sticker omitted", "GIF omitted"}
    | {"document omitted", "Contact card omitted", "contact card omitted"}
)
# iOS documents carry a file name (`report.pdf • 3 pages document omitted`); zip exports attach files.
_MEDIA_PATTERN = re.compile(r".*\sdocument omitted|<attached: [^\n]+>|[^\n]+ \(file attached\)")
_SYSTEM = re.compile(
    r"Messages and calls are end-to-end encrypted"
    r"|Messages to this (?:group|chat) are now secured with end-to-end encryption"
    r"|^(?:.+ )?created (?:group|this group)"
    r"|^.+ (?:added|removed) .+"
    r"|^.+ left\Z"
    r"|^.+ changed (?:the subject|this group's (?:icon|settings|description)"
    r"|the group (?:description|icon|name|settings))"
    r"|^.+ deleted this group's (?:icon|description)"
    r"|^.+ joined using (?:this group's|an|a group) invite link"
    r"|^.+ changed their phone number|^.+ changed to \+?\d"
    r"|security code (?:with .+ )?changed"
    r"|^You're (?:now|no longer) an admin"
    r"|turned (?:on|off) disappearing messages|^Disappearing messages"
    r"|^This chat is with a business account|^You (?:un)?blocked this contact"
)
_ENCRYPTION = re.compile(
    r"Messages and calls are end-to-end encrypted|now secured with end-to-end encryption"
)
_MAX_REPORTED = 10  # line numbers listed in an error message


class _Record:
    """A message while its continuation lines are collected; converted to `Message` after the pass."""

    __slots__ = ("lineno", "header", "date", "clock", "author", "lines", "marked", "system")

    def __init__(self, lineno, header, date, clock, author, first, marked, system):
        self.lineno = lineno
        self.header = header  # the timestamp as written, for error messages
        self.date = date  # (True, y, m, d) for ISO-like dates, else (False, a, b, y) with a/b unresolved
        self.clock = clock  # (hour, minute, second, "a" | "p" | None)
        self.author = author
        self.lines = [first]
        self.marked = marked  # the text began with a direction mark (iOS marks system texts that way)
        self.system = system


def _author_set(authors) -> frozenset[str] | None:
    if authors is None:
        return None
    if isinstance(authors, str):
        return frozenset([authors])
    if not isinstance(authors, Iterable):
        raise TypeError(f"authors must be None, a str or an iterable of str, got {type(authors).__name__}")
    names = list(authors)
    bad = [a for a in names if not isinstance(a, str)]
    if bad:
        raise TypeError(f"authors must contain only str, got {bad[0]!r} ({type(bad[0]).__name__})")
    if not names:
        raise ValueError("authors is empty: pass None to keep every author, or name at least one")
    return frozenset(names)


def _split(layout: str, rest: str) -> tuple[str | None, str, bool]:
    """`AUTHOR: TEXT` -> (author, text, is_system). Lines with no `: ` are authorless system lines."""
    head, colon, text = rest.partition(": ")
    if not colon:
        if rest.endswith(":") and not _SYSTEM.search(rest.translate(_NO_MARKS)):
            return rest[:-1].strip(_MARKS), "", False  # a message whose first line is empty
        return None, rest.translate(_NO_MARKS).strip(), True
    if layout == "android" and _SYSTEM.search(head.translate(_NO_MARKS)):
        # A system line whose own text contains ": " (`Ann changed the subject from "a" to "b: c"`).
        return None, rest.translate(_NO_MARKS).strip(), True
    return head.strip(_MARKS), text, False


def _timestamp(path, record: _Record, dayfirst: bool | None) -> datetime.datetime:
    iso, f1, f2, f3 = record.date
    if iso:
        year, month, day = f1, f2, f3
    else:
        year = f3 + 2000 if f3 < 100 else f3
        day, month = (f1, f2) if dayfirst else (f2, f1)
    hour, minute, second, ampm = record.clock
    try:
        if ampm is not None:
            if not 1 <= hour <= 12:
                raise ValueError(f"hour {hour} is not a 12-hour clock hour (1..12)")
            hour = hour % 12 + (12 if ampm == "p" else 0)
        return datetime.datetime(year, month, day, hour, minute, second)
    except ValueError as e:
        order = "" if iso else (" read day-first" if dayfirst else " read month-first")
        raise ValueError(
            f"{path}: line {record.lineno}: invalid timestamp {record.header!r}{order}: {e}"
        ) from None


def _lines_phrase(numbers: list[int], total: int) -> str:
    listed = ", ".join(map(str, numbers))
    more = f" (and {total - len(numbers)} more)" if total > len(numbers) else ""
    return f"line{'s' if total > 1 else ''} {listed}{more}"


def _read_text(path: str, errors: str) -> str:
    """The export's text through the corpus checks (`corpora.decode`): binary refused, UTF-8 errors named
    with their byte offset in the file, `errors="replace"` honoured, a BOM dropped."""
    expected = "expected a WhatsApp export .txt"
    data = corpora.read_file(path, expected=expected)
    if data.startswith(b"PK\x03\x04"):
        raise ValueError(
            f"path: {path!r} is a zip archive; {expected}: unzip the export and pass the text file inside "
            "it (_chat.txt on iOS, 'WhatsApp Chat with NAME.txt' on Android)"
        )
    return corpora.decode(data, f"path: {path!r}", errors=errors)


def _scan(path: str, text: str):
    """One pass over the lines: the records, the unparsed header-like lines, the layout, the date-order
    evidence (first line numbers of day-first, month-first and ambiguous dates) and the line count."""
    records: list[_Record] = []
    unparsed: list[Unparsed] = []
    layout_names = tuple(_LAYOUTS)  # narrowed to the first layout that matches, so quotes of the other
    current: _Record | None = None  # layout inside a message stay continuation lines
    stray: list[int] = []  # non-blank lines before the first message (first few)
    n_stray = lineno = 0
    evidence = {"dayfirst": None, "monthfirst": None, "ambiguous": None}
    # newline=None: universal newlines, so CRLF (and a lone CR) end a line as "\n" does.
    for lineno, raw in enumerate(io.StringIO(text, newline=None), start=1):
        line = raw[:-1] if raw.endswith("\n") else raw
        bare = line.lstrip(_MARKS)
        match = None
        if bare[:1].isdigit() or bare[:1] == "[":
            for name in layout_names:
                match = _LAYOUTS[name].match(bare)
                if match:
                    layout_names = (name,)
                    break
        if match is None:
            if records and _HEADER_LIKE[layout_names[0]].match(bare):
                unparsed.append(Unparsed(lineno, bare, 0))
                current = None
            elif current is not None:
                current.lines.append(bare)
            elif unparsed and records:
                unparsed[-1] = unparsed[-1]._replace(continuation=unparsed[-1].continuation + 1)
            elif line.strip(_MARKS + " \t\u00a0\u202f"):
                n_stray += 1
                if len(stray) < _MAX_REPORTED:
                    stray.append(lineno)
            continue
        g = match.groupdict()
        if g["iy"] is not None:
            date = (True, int(g["iy"]), int(g["im"]), int(g["id"]))
        else:
            a, b = int(g["a"]), int(g["b"])
            date = (False, a, b, int(g["y"]))
            kind = "dayfirst" if a > 12 else "monthfirst" if b > 12 else "ambiguous"
            if evidence[kind] is None:
                evidence[kind] = lineno
        ampm = g["ampm"].lower() if g["ampm"] else None
        clock = (int(g["H"]), int(g["M"]), int(g["S"] or 0), ampm)
        author, body, system = _split(layout_names[0], g["rest"])
        marked = body[:1] in _MARKS if body else False
        header = bare[: match.start("rest")].strip()
        current = _Record(lineno, header, date, clock, author, body.lstrip(_MARKS), marked, system)
        records.append(current)

    if not records:
        detail = f" (non-blank {_lines_phrase(stray, n_stray)})" if n_stray else " (it has no non-blank line)"
        raise ValueError(
            f"{path}: no line matches a WhatsApp export layout{detail}; expected messages like "
            "'12/31/20, 9:15 PM - Alice: text' (Android) or '[31/12/2020, 21:15:42] Alice: text' (iOS)"
        )
    if n_stray:
        raise ValueError(
            f"{path}: text before the first message on {_lines_phrase(stray, n_stray)}; every message "
            f"must start with a timestamp (the first one is on line {records[0].lineno}): is this a complete "
            "export?"
        )
    return records, unparsed, layout_names[0], evidence, lineno


def _date_order(path: str, dayfirst: bool | None, evidence: dict) -> bool | None:
    """`dayfirst` if given, else what the dates of the file say (None when every date is year-first)."""
    if dayfirst is not None or not any(evidence.values()):
        return dayfirst
    if evidence["dayfirst"] and evidence["monthfirst"]:
        raise ValueError(
            f"{path}: contradictory date order: line {evidence['dayfirst']} has a first date field > 12 "
            f"(day-first) but line {evidence['monthfirst']} has a second field > 12 (month-first)"
        )
    if evidence["dayfirst"]:
        return True
    if evidence["monthfirst"]:
        return False
    raise ValueError(
        f"{path}: ambiguous date order: every date has day and month <= 12, so day-first and "
        "month-first both fit; pass dayfirst=True (e.g. 31/12/2020; the command flag --dayfirst True) or "
        "dayfirst=False (12/31/2020; --dayfirst False)"
    )


def _message(path: str, r: _Record, layout: str, dayfirst: bool | None) -> Message:
    text = _EDITED.sub("", "\n".join(r.lines))
    plain = text.translate(_NO_MARKS).strip()
    is_deleted = plain in _DELETED
    is_media = not is_deleted and (
        plain in _MEDIA or (plain == "null" and layout == "android") or bool(_MEDIA_PATTERN.fullmatch(plain))
    )
    is_system = r.system or (
        not (is_media or is_deleted)
        and layout == "ios"
        and (bool(_ENCRYPTION.search(plain)) or (r.marked and bool(_SYSTEM.search(plain))))
    )
    if is_media or is_deleted or is_system:
        text = plain
    return Message(_timestamp(path, r, dayfirst), r.author, text, is_system, is_media, is_deleted)


def read(
    path: str | os.PathLike,
    *,
    dayfirst: bool | None = None,
    authors: str | Iterable[str] | None = None,
    drop_system: bool = False,
    drop_media: bool = False,
    drop_deleted: bool = False,
    errors: str = "strict",
) -> Chat:
    """Read a WhatsApp chat export (`.txt`, UTF-8, Android or iOS layout) in one streaming pass over its
    lines, accounting for every line: the messages kept, what the filters left out, and the lines that look
    like the start of a message but do not parse (`Chat.unparsed`). Summarise the result with `describe`.

    A line of a continuation position that begins like a message of the chat's layout but does not match
    it (a mangled timestamp: `31/12/2020 21:15 Bob: hi`, `31/12, 21:15 - Bob: hi`,
    `[31/12/2020 21:15:42 Bob: hi`) is reported in `Chat.unparsed` with the lines that follow it and left
    out of the messages, never glued onto the previous (possibly another author's) message. The test is a
    shape (a date and a time at the start of the line, or a date followed by `- NAME: `), so an ordinary
    continuation line that starts with a full date and a time is reported too.

    Args:
      path: the exported `.txt` file (`_chat.txt` or `WhatsApp Chat with NAME.txt` inside the export zip).
      dayfirst: whether `a/b/y` dates are day-first. None infers it from the whole file: a first field
        > 12 anywhere means day-first, a second field > 12 anywhere means month-first, both is an error,
        and neither (every date has both fields <= 12) is ambiguous and raises ValueError asking for
        `dayfirst=True/False`. ISO-like `YYYY-MM-DD` dates need no inference.
      authors: keep only messages by this author (str) or these authors (iterable of str); every name must
        occur in the chat. Authorless system lines are dropped by this filter too (and counted in
        `dropped["system"]`, not as other authors' messages).
      drop_system: drop system messages (group created, member added, encryption notice, ...).
      drop_media: drop media placeholders (`<Media omitted>`, `image omitted`, view-once `null`, ...).
      drop_deleted: drop deleted-message placeholders.
      errors: "strict" (an undecodable byte raises, naming the file and its byte offset) or "replace"
        (undecodable bytes become U+FFFD), as for `corpora.load`.

    Returns:
      A `Chat`. Its messages are in file order; continuation lines (including empty ones) are joined with
      "\\n"; a trailing `<This message was edited>` is removed; placeholder and system texts lose their
      direction marks (U+200E and friends); timestamps are naive `datetime`s in the phone's local time.

    Raises:
      FileNotFoundError: `path` does not exist.
      ValueError: the file is a folder, a zip archive, binary (a NUL byte) or not UTF-8 (with
        errors="strict"); no line of it has a known timestamp layout; text precedes the first message;
        day-first vs month-first is contradictory or ambiguous; a timestamp is not a valid date/time; or
        `authors` names someone absent from the chat. The message names the file and the line numbers
        or the byte offset.
      TypeError: an argument has the wrong type.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike to a .txt export, got {type(path).__name__}")
    if dayfirst is not None and not isinstance(dayfirst, bool):
        raise TypeError(f"dayfirst must be None, True or False, got {dayfirst!r} ({type(dayfirst).__name__})")
    drops = {"system": drop_system, "media": drop_media, "deleted": drop_deleted}
    for name, value in drops.items():
        _arguments.flag(f"drop_{name}", value)
    wanted = _author_set(authors)
    path = os.fspath(path)

    records, unparsed, layout, evidence, n_lines = _scan(path, _read_text(path, errors))
    dayfirst = _date_order(path, dayfirst, evidence)
    messages = [_message(path, r, layout, dayfirst) for r in records]

    dropped = dict.fromkeys(("authors", *drops), 0)
    if wanted is not None:
        present = {m.author for m in messages if m.author is not None}
        missing = sorted(wanted - present)
        if missing:
            raise ValueError(f"authors {missing} not found in {path}; authors present: {sorted(present)}")
        # Authorless (Android system) lines are not by another author: they are counted as system lines.
        dropped["authors"] = sum(m.author is not None and m.author not in wanted for m in messages)
        dropped["system"] = sum(m.author is None for m in messages)
        messages = [m for m in messages if m.author in wanted]
    kept = []
    for m in messages:
        kinds = {"system": m.is_system, "media": m.is_media, "deleted": m.is_deleted}
        reason = next((k for k, is_kind in kinds.items() if is_kind and drops[k]), None)
        if reason is None:
            kept.append(m)
        else:
            dropped[reason] += 1
    return Chat(path, kept, unparsed, layout, dayfirst, dropped, n_lines)


def parse(path: str | os.PathLike, **options) -> list[Message]:
    """The messages of a WhatsApp chat export: `read(path, **options).messages`, for a file whose every
    line parses.

    A line that looks like the start of a message but does not parse raises here (it is never glued onto
    the previous message); `read` returns the messages with such lines listed instead.

    Args:
      path: the exported `.txt` file.
      **options: `read`'s keyword arguments (`dayfirst`, `authors`, `drop_system`, `drop_media`,
        `drop_deleted`, `errors`).

    Returns:
      The messages in file order (see `read`).

    Raises:
      ValueError: as `read`, and for lines that look like a message start but do not parse (listed with
        their line numbers).
      TypeError: an argument has the wrong type.
    """
    chat = read(path, **options)
    if chat.unparsed:
        first, n = chat.unparsed[0], len(chat.unparsed)
        numbers = [u.lineno for u in chat.unparsed[:_MAX_REPORTED]]
        raise ValueError(
            f"{chat.path}: {_lines_phrase(numbers, n)} {'looks' if n == 1 else 'look'} like the start of a "
            f"message but {'does' if n == 1 else 'do'} not parse (a mangled timestamp?), e.g. line "
            f"{first.lineno}: {first.line[:80]!r}; "
            f"expected the {chat.layout} layout of the other messages; fix those lines, or use "
            "whatsapp.read, which lists them and leaves them out of the messages"
        )
    return chat.messages


def author_counts(messages: Iterable[Message]) -> list[tuple[str, int]]:
    """(author, number of messages) for each author of `messages`, most messages first, ties in the order
    of their first message; authorless (Android system) lines are not counted."""
    counts: Counter[str] = Counter()
    for m in _messages(messages):
        if m.author is not None:
            counts[m.author] += 1
    return counts.most_common()  # stable: equal counts keep first-occurrence order


def default_prompt(messages: Iterable[Message]) -> str:
    """A prompt for sampling a model trained on `to_text(messages, with_authors=True)`: the most frequent
    author's prefix as it appears in that text, `"AUTHOR: "` (ties: the author who wrote first).

    Args:
      messages: the messages of the training text (e.g. `read(...).messages`, after its filters).

    Returns:
      `f"{author}: "`.

    Raises:
      ValueError: no message has an author.
    """
    counts = author_counts(messages)
    if not counts:
        raise ValueError("messages: expected at least one message with an author, got none")
    return f"{counts[0][0]}: "


def describe(chat: Chat, *, max_unparsed: int | None = 20) -> str:
    """A Markdown summary of `read`'s result, for the screen and a run's `summary.md`: the messages kept,
    their authors with counts, the messages each filter left out, and the unparsed lines with their
    numbers.

    Args:
      chat: what `read` returned.
      max_unparsed: list at most this many unparsed lines in full (None: all); the rest are counted.

    Returns:
      Lines joined by "\\n", no trailing newline.
    """
    if not isinstance(chat, Chat):
        raise TypeError(f"chat must be a whatsapp.Chat (from whatsapp.read), got {type(chat).__name__}")
    if max_unparsed is not None and (
        isinstance(max_unparsed, bool) or not isinstance(max_unparsed, int) or max_unparsed < 0
    ):
        raise ValueError(f"max_unparsed: expected None or an int >= 0, got {max_unparsed!r}")
    order = {None: "year-first", True: "day-first", False: "month-first"}[chat.dayfirst]
    counts = author_counts(chat.messages)
    lines = [
        f"WhatsApp export {chat.path!r} ({chat.layout} layout, {order} dates, {chat.lines:,} lines): "
        f"{len(chat.messages):,} messages kept",
        f"- authors ({len(counts)}): " + (", ".join(f"{a} {n:,}" for a, n in counts) or "none"),
        "- left out: " + ", ".join(
            f"{n:,} {'by other authors' if k == 'authors' else k}" for k, n in chat.dropped.items()
        ),
    ]  # fmt: skip
    n = len(chat.unparsed)
    if not n:
        lines.append("- unparsed lines: none")
        return "\n".join(lines)
    follow = sum(u.continuation for u in chat.unparsed)
    lines.append(
        f"- unparsed lines: {n:,} {'looks' if n == 1 else 'look'} like the start of a message but "
        f"{'does' if n == 1 else 'do'} not parse (a mangled timestamp?); left out, with the {follow:,} "
        f"line(s) after {'it' if n == 1 else 'them'} that continue {'it' if n == 1 else 'them'}:"
    )
    shown = chat.unparsed if max_unparsed is None else chat.unparsed[:max_unparsed]
    lines += [f"  - line {u.lineno}: {u.line!r}" for u in shown]
    if len(shown) < n:
        lines.append(f"  - ... and {n - len(shown):,} more")
    return "\n".join(lines)


def _messages(messages: Iterable[Message]) -> Iterator[Message]:
    """`messages`, each checked to be a `Message` (a TypeError names the first that is not)."""
    if isinstance(messages, str) or not isinstance(messages, Iterable):
        raise TypeError(f"messages must be an iterable of whatsapp.Message, got {type(messages).__name__}")
    for i, m in enumerate(messages):
        if not isinstance(m, Message):
            raise TypeError(f"messages[{i}] must be a whatsapp.Message, got {type(m).__name__}")
        yield m


def to_text(messages: Iterable[Message], *, separator: str = "\n", with_authors: bool = False) -> str:
    """Join messages into one training text.

    Args:
      messages: `Message`s, e.g. from `parse` (filter them there: drop_system, drop_media, ...).
      separator: put between consecutive messages.
      with_authors: prefix each message with `AUTHOR: ` (authorless system lines get no prefix).

    Returns:
      The texts joined by `separator`.
    """
    if not isinstance(separator, str):
        raise TypeError(f"separator must be a str, got {separator!r} ({type(separator).__name__})")
    _arguments.flag("with_authors", with_authors)
    parts = []
    for m in _messages(messages):
        parts.append(f"{m.author}: {m.text}" if with_authors and m.author is not None else m.text)
    return separator.join(parts)
