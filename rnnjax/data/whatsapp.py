"""WhatsApp "Export chat" text files -> a list of `Message`s, to build chat corpora for language models.

Both layouts WhatsApp writes are read, in one streaming pass over the file:

    Android:  12/31/20, 9:15 PM - Alice: Happy new year!       (system lines: `DATE, TIME - TEXT`)
    iOS:      [31/12/2020, 21:15:42] Alice: Happy new year!

with every date order (day-first, month-first, ISO-like `YYYY-MM-DD`), separator (`/`, `.`, `-`), 2- or
4-digit year, 12- or 24-hour clock (`PM`, `pm`, `p.m.`, with a space, U+00A0 or U+202F before it) and
optional seconds. Day-first vs month-first is inferred from the whole file; a file where every date has
both fields <= 12 is ambiguous and must be resolved with `dayfirst=`. Lines without a timestamp continue
the previous message. Media, deleted and edited placeholders are recognised (English exports), as are the
standard English system texts (encryption notice, group created, member added/left, subject changed, ...).

Example:

    >>> from rnnjax.data import whatsapp
    >>> msgs = whatsapp.parse("WhatsApp Chat with Alice.txt", drop_system=True, drop_media=True)
    >>> corpus = whatsapp.to_text(msgs, with_authors=True)
"""

from __future__ import annotations

import datetime
import os
import re
from collections.abc import Iterable
from typing import NamedTuple

__all__ = ["Message", "parse", "to_text"]


class Message(NamedTuple):
    """One chat message (or system notice) of an export."""

    timestamp: datetime.datetime  # naive local time, as written in the export
    author: str | None  # None for Android system lines, which have no author
    text: str  # continuation lines joined with "\n"; placeholders and system texts without direction marks
    is_system: bool  # group created, member added, encryption notice, ...
    is_media: bool  # "<Media omitted>", "image omitted", view-once "null", ...
    is_deleted: bool  # "This message was deleted", "You deleted this message"


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


def _check_flag(name: str, value) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {value!r} ({type(value).__name__})")


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


def parse(
    path: str | os.PathLike,
    *,
    dayfirst: bool | None = None,
    authors: str | Iterable[str] | None = None,
    drop_system: bool = False,
    drop_media: bool = False,
    drop_deleted: bool = False,
) -> list[Message]:
    """Parse a WhatsApp chat export (`.txt`, UTF-8, Android or iOS layout) in one streaming pass.

    Args:
      path: the exported `.txt` file (`_chat.txt` or `WhatsApp Chat with NAME.txt` inside the export zip).
      dayfirst: whether `a/b/y` dates are day-first. None infers it from the whole file: a first field
        > 12 anywhere means day-first, a second field > 12 anywhere means month-first, both is an error,
        and neither (every date has both fields <= 12) is ambiguous and raises ValueError asking for
        `dayfirst=True/False`. ISO-like `YYYY-MM-DD` dates need no inference.
      authors: keep only messages by this author (str) or these authors (iterable of str); every name must
        occur in the chat. Authorless system lines are dropped by this filter.
      drop_system: drop system messages (group created, member added, encryption notice, ...).
      drop_media: drop media placeholders (`<Media omitted>`, `image omitted`, view-once `null`, ...).
      drop_deleted: drop deleted-message placeholders.

    Returns:
      The messages in file order. Continuation lines (including empty ones) are joined with "\\n"; a
      trailing `<This message was edited>` is removed; placeholder and system texts lose their direction
      marks (U+200E and friends); timestamps are naive `datetime`s in the exporting phone's local time.

    Raises:
      ValueError: no line of the file has a known timestamp layout, text precedes the first message,
        day-first vs month-first is contradictory or ambiguous, a timestamp is not a valid date/time, or
        `authors` names someone absent from the chat. The message names the file and the line numbers.
      TypeError: an argument has the wrong type.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike to a .txt export, got {type(path).__name__}")
    if dayfirst is not None and not isinstance(dayfirst, bool):
        raise TypeError(f"dayfirst must be None, True or False, got {dayfirst!r} ({type(dayfirst).__name__})")
    for name, value in (
        ("drop_system", drop_system),
        ("drop_media", drop_media),
        ("drop_deleted", drop_deleted),
    ):
        _check_flag(name, value)
    wanted = _author_set(authors)
    path = os.fspath(path)

    records: list[_Record] = []
    layout_names = tuple(_LAYOUTS)  # narrowed to the first layout that matches, so quotes of the other
    current: _Record | None = None  # layout inside a message stay continuation lines
    stray: list[int] = []  # non-blank lines before the first message (first few)
    n_stray = 0
    dayfirst_line = monthfirst_line = ambiguous_line = None  # evidence for the date order
    # utf-8-sig drops a byte-order mark; universal newlines turn CRLF into "\n".
    with open(path, encoding="utf-8-sig", newline=None) as f:
        for lineno, raw in enumerate(f, start=1):
            line = raw[:-1] if raw.endswith("\n") else raw
            bare = line.lstrip(_MARKS)
            match = None
            if bare[:1].isdigit() or bare[:1] == "[":
                for name in layout_names:
                    match = _LAYOUTS[name].match(bare)
                    if match:
                        if len(layout_names) > 1:
                            layout_names = (name,)
                        break
            if match is None:
                if current is not None:
                    current.lines.append(bare)
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
                if a > 12 and dayfirst_line is None:
                    dayfirst_line = lineno
                elif b > 12 and monthfirst_line is None:
                    monthfirst_line = lineno
                elif ambiguous_line is None:
                    ambiguous_line = lineno
            ampm = g["ampm"].lower() if g["ampm"] else None
            clock = (int(g["H"]), int(g["M"]), int(g["S"] or 0), ampm)
            rest = g["rest"]
            author, text, system = _split(layout_names[0], rest)
            marked = text[:1] in _MARKS if text else False
            header = bare[: match.start("rest")].strip()
            current = _Record(lineno, header, date, clock, author, text.lstrip(_MARKS), marked, system)
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

    if dayfirst is None and (dayfirst_line or monthfirst_line or ambiguous_line):
        if dayfirst_line and monthfirst_line:
            raise ValueError(
                f"{path}: contradictory date order: line {dayfirst_line} has a first date field > 12 "
                f"(day-first) but line {monthfirst_line} has a second field > 12 (month-first)"
            )
        if dayfirst_line:
            dayfirst = True
        elif monthfirst_line:
            dayfirst = False
        else:
            raise ValueError(
                f"{path}: ambiguous date order: every date has day and month <= 12, so day-first and "
                "month-first both fit; pass dayfirst=True (e.g. 31/12/2020) or dayfirst=False (12/31/2020)"
            )

    messages = []
    for r in records:
        text = _EDITED.sub("", "\n".join(r.lines))
        plain = text.translate(_NO_MARKS).strip()
        is_deleted = plain in _DELETED
        is_media = not is_deleted and (
            plain in _MEDIA
            or (plain == "null" and layout_names[0] == "android")
            or bool(_MEDIA_PATTERN.fullmatch(plain))
        )
        is_system = r.system or (
            not (is_media or is_deleted)
            and layout_names[0] == "ios"
            and (bool(_ENCRYPTION.search(plain)) or (r.marked and bool(_SYSTEM.search(plain))))
        )
        if is_media or is_deleted or is_system:
            text = plain
        messages.append(
            Message(_timestamp(path, r, dayfirst), r.author, text, is_system, is_media, is_deleted)
        )

    if wanted is not None:
        present = {m.author for m in messages if m.author is not None}
        missing = sorted(wanted - present)
        if missing:
            raise ValueError(f"authors {missing} not found in {path}; authors present: {sorted(present)}")
        messages = [m for m in messages if m.author in wanted]
    return [
        m
        for m in messages
        if not (drop_system and m.is_system or drop_media and m.is_media or drop_deleted and m.is_deleted)
    ]


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
    _check_flag("with_authors", with_authors)
    parts = []
    for i, m in enumerate(messages):
        if not isinstance(m, Message):
            raise TypeError(f"messages[{i}] must be a whatsapp.Message, got {type(m).__name__}")
        parts.append(f"{m.author}: {m.text}" if with_authors and m.author is not None else m.text)
    return separator.join(parts)
