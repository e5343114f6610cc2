"""WhatsApp export parser: every layout of the format spec, written to files here and compared with Message
lists written down by hand (not produced by the parser), plus filters, date-order inference and errors."""

import datetime
import re

import pytest

from rnnjax.data import whatsapp
from rnnjax.data.whatsapp import Message

T = datetime.datetime
NNBSP = "\u202f"  # NARROW NO-BREAK SPACE, before AM/PM in recent Android exports
NBSP = "\u00a0"
LRM = "\u200e"  # LEFT-TO-RIGHT MARK, iOS
ENCRYPTION = (
    "Messages and calls are end-to-end encrypted. No one outside of this chat, not even WhatsApp, "
    "can read or listen to them. Tap to learn more."
)


def write(tmp_path, lines, name="chat.txt", bom=False, newline="\n"):
    """Write `lines` as an export file, with the byte-level details (BOM, CRLF) under the test's control."""
    path = tmp_path / name
    data = newline.join(lines) + newline
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data.encode("utf-8"))
    return path


def msg(ts, author, text, system=False, media=False, deleted=False):
    return Message(ts, author, text, system, media, deleted)


ANDROID_US = [
    f"12/31/20, 9:15{NNBSP}PM - {ENCRYPTION}",
    f'12/31/20, 9:16{NNBSP}PM - Alice Smith created group "New Year 🎉"',
    f"12/31/20, 9:17{NNBSP}PM - Alice Smith: Happy new year!",
    "Second line",
    "",
    "Fourth line after an empty one",
    f"12/31/20, 11:59{NNBSP}PM - +44 7700 900123: Note: the time is 23:59: almost",
    f"1/1/21, 12:00{NNBSP}AM - Bob 🎉: <Media omitted>",
    f"1/1/21, 12:30{NNBSP}PM - Bob 🎉: This message was deleted",
    f"1/1/21, 1:05{NNBSP}PM - Alice Smith: I fixed it <This message was edited>",
    f"1/1/21, 1:06{NNBSP}PM - Alice Smith: null",
    f"1/1/21, 1:07{NNBSP}PM - Alice Smith: You deleted this message",
    f'1/1/21, 1:08{NNBSP}PM - Bob 🎉 changed the subject from "New Year 🎉" to "Plans: 2021"',
    f"1/1/21, 1:09{NNBSP}PM - Alice Smith added +44 7700 900123",
    f"1/1/21, 1:10{NNBSP}PM - Bob 🎉 left",
]
ANDROID_US_EXPECTED = [
    msg(T(2020, 12, 31, 21, 15), None, ENCRYPTION, system=True),
    msg(T(2020, 12, 31, 21, 16), None, 'Alice Smith created group "New Year 🎉"', system=True),
    msg(
        T(2020, 12, 31, 21, 17),
        "Alice Smith",
        "Happy new year!\nSecond line\n\nFourth line after an empty one",
    ),
    msg(T(2020, 12, 31, 23, 59), "+44 7700 900123", "Note: the time is 23:59: almost"),
    msg(T(2021, 1, 1, 0, 0), "Bob 🎉", "<Media omitted>", media=True),
    msg(T(2021, 1, 1, 12, 30), "Bob 🎉", "This message was deleted", deleted=True),
    msg(T(2021, 1, 1, 13, 5), "Alice Smith", "I fixed it"),
    msg(T(2021, 1, 1, 13, 6), "Alice Smith", "null", media=True),
    msg(T(2021, 1, 1, 13, 7), "Alice Smith", "You deleted this message", deleted=True),
    msg(
        T(2021, 1, 1, 13, 8),
        None,
        'Bob 🎉 changed the subject from "New Year 🎉" to "Plans: 2021"',
        system=True,
    ),
    msg(T(2021, 1, 1, 13, 9), None, "Alice Smith added +44 7700 900123", system=True),
    msg(T(2021, 1, 1, 13, 10), None, "Bob 🎉 left", system=True),
]


def test_android_us_12h_two_digit_year_narrow_nbsp(tmp_path):
    assert whatsapp.parse(write(tmp_path, ANDROID_US)) == ANDROID_US_EXPECTED


def test_android_nbsp_before_pm(tmp_path):
    lines = [line.replace(NNBSP, NBSP) for line in ANDROID_US]
    assert whatsapp.parse(write(tmp_path, lines)) == ANDROID_US_EXPECTED


def test_android_dayfirst_24h_four_digit_year(tmp_path):
    path = write(
        tmp_path,
        [
            "31/12/2020, 21:15 - Alice: Hi",
            "01/01/2021, 00:05 - Bob O'Neil: Happy new year: 2021",
            "01/01/2021, 00:06 - Alice added Carol",
            "02/01/2021, 23:59 - Carol: Thanks",
        ],
    )
    assert whatsapp.parse(path) == [
        msg(T(2020, 12, 31, 21, 15), "Alice", "Hi"),
        msg(T(2021, 1, 1, 0, 5), "Bob O'Neil", "Happy new year: 2021"),
        msg(T(2021, 1, 1, 0, 6), None, "Alice added Carol", system=True),
        msg(T(2021, 1, 2, 23, 59), "Carol", "Thanks"),
    ]


def test_android_dots_separator(tmp_path):
    path = write(tmp_path, ["31.12.20, 21:15 - Alice: Prost!", "1.1.21, 0:01 - Bob: Frohes neues"])
    assert whatsapp.parse(path) == [
        msg(T(2020, 12, 31, 21, 15), "Alice", "Prost!"),
        msg(T(2021, 1, 1, 0, 1), "Bob", "Frohes neues"),
    ]


def test_android_iso_like_needs_no_inference(tmp_path):
    # Every date has both non-year fields <= 12, which would be ambiguous if they were not year-first.
    path = write(tmp_path, ["2021-01-02, 21:15 - Alice: a", "2021-03-04, 08:00 - Bob: b"])
    assert whatsapp.parse(path) == [
        msg(T(2021, 1, 2, 21, 15), "Alice", "a"),
        msg(T(2021, 3, 4, 8, 0), "Bob", "b"),
    ]


def test_android_am_pm_spellings(tmp_path):
    path = write(
        tmp_path,
        [
            "31/12/2020, 9:15 p.m. - Alice: dotted",
            "1/1/2021, 12:05 a.m. - Bob: midnight",
            "1/1/2021, 12:10 p.m. - Bob: noon",
            "1/1/2021, 7:00 am - Alice: lowercase",
            f"1/1/2021, 7:30{NBSP}pm - Alice: nbsp",
            f"1/1/2021, 8:00{NNBSP}p. m. - Alice: spanish",
        ],
    )
    assert whatsapp.parse(path) == [
        msg(T(2020, 12, 31, 21, 15), "Alice", "dotted"),
        msg(T(2021, 1, 1, 0, 5), "Bob", "midnight"),
        msg(T(2021, 1, 1, 12, 10), "Bob", "noon"),
        msg(T(2021, 1, 1, 7, 0), "Alice", "lowercase"),
        msg(T(2021, 1, 1, 19, 30), "Alice", "nbsp"),
        msg(T(2021, 1, 1, 20, 0), "Alice", "spanish"),
    ]


IOS_24H = [
    f"{LRM}[31/12/2020, 21:15:42] New Year 🎉: {LRM}Messages and calls are end-to-end encrypted. "
    "No one outside of this chat, not even WhatsApp, can read or listen to them.",
    f"[31/12/2020, 21:15:43] New Year 🎉: {LRM}Alice created group “New Year 🎉”",
    f"[31/12/2020, 21:16:00] New Year 🎉: {LRM}Alice added Bob",
    "[31/12/2020, 21:17:05] Alice: Hi: all",
    f"{LRM}[31/12/2020, 21:18:00] Bob: {LRM}image omitted",
    f"[31/12/2020, 21:18:01] Bob: IMG-001.jpg • {LRM}document omitted",
    f"[31/12/2020, 21:18:02] Alice: {LRM}Contact card omitted",
    f"[31/12/2020, 21:18:03] Bob: {LRM}This message was deleted.",
    "[31/12/2020, 21:19:00] Alice: a long",
    "message",
    "",
    f"{LRM}end",
    "[31/12/2020, 21:20:00] Bob: I added you to the list",
    f"[31/12/2020, 21:21:00] Alice: fixed {LRM}<This message was edited>",
    "[31/12/2020, 21:22:00] +1 (555) 010-9999: 12/31/20, 9:15 PM - quoting an Android line",
    f"[01/01/2021, 00:00:00] New Year 🎉: {LRM}Bob left",
]
IOS_24H_EXPECTED = [
    msg(
        T(2020, 12, 31, 21, 15, 42),
        "New Year 🎉",
        "Messages and calls are end-to-end encrypted. No one outside of this chat, not even WhatsApp, "
        "can read or listen to them.",
        system=True,
    ),
    msg(T(2020, 12, 31, 21, 15, 43), "New Year 🎉", "Alice created group “New Year 🎉”", system=True),
    msg(T(2020, 12, 31, 21, 16, 0), "New Year 🎉", "Alice added Bob", system=True),
    msg(T(2020, 12, 31, 21, 17, 5), "Alice", "Hi: all"),
    msg(T(2020, 12, 31, 21, 18, 0), "Bob", "image omitted", media=True),
    msg(T(2020, 12, 31, 21, 18, 1), "Bob", "IMG-001.jpg • document omitted", media=True),
    msg(T(2020, 12, 31, 21, 18, 2), "Alice", "Contact card omitted", media=True),
    msg(T(2020, 12, 31, 21, 18, 3), "Bob", "This message was deleted.", deleted=True),
    msg(T(2020, 12, 31, 21, 19, 0), "Alice", "a long\nmessage\n\nend"),
    msg(T(2020, 12, 31, 21, 20, 0), "Bob", "I added you to the list"),  # user text: no LRM, not system
    msg(T(2020, 12, 31, 21, 21, 0), "Alice", "fixed"),
    msg(T(2020, 12, 31, 21, 22, 0), "+1 (555) 010-9999", "12/31/20, 9:15 PM - quoting an Android line"),
    msg(T(2021, 1, 1, 0, 0, 0), "New Year 🎉", "Bob left", system=True),
]


def test_ios_24h_seconds_with_direction_marks(tmp_path):
    assert whatsapp.parse(write(tmp_path, IOS_24H)) == IOS_24H_EXPECTED


def test_ios_12h(tmp_path):
    path = write(
        tmp_path,
        [
            f"[12/31/20, 9:15:42{NNBSP}PM] Alice: evening",
            "[1/1/21, 12:00:01 AM] Bob: midnight",
            "[1/1/21, 12:00:02 PM] Bob: noon",
            "continued",
        ],
    )
    assert whatsapp.parse(path) == [
        msg(T(2020, 12, 31, 21, 15, 42), "Alice", "evening"),
        msg(T(2021, 1, 1, 0, 0, 1), "Bob", "midnight"),
        msg(T(2021, 1, 1, 12, 0, 2), "Bob", "noon\ncontinued"),
    ]


def test_ios_dots_separator(tmp_path):
    path = write(tmp_path, ["[31.12.20, 21:15:42] Alice: a", "[1.1.21, 00:00:00] Bob: b"])
    assert whatsapp.parse(path) == [
        msg(T(2020, 12, 31, 21, 15, 42), "Alice", "a"),
        msg(T(2021, 1, 1, 0, 0, 0), "Bob", "b"),
    ]


@pytest.mark.parametrize(
    "placeholder",
    ["image omitted", "video omitted", "audio omitted", "sticker omitted", "GIF omitted", "document omitted"]
    + ["Contact card omitted", "report.pdf • 3 pages document omitted", "<attached: 00000012-PHOTO.jpg>"],
)
def test_ios_media_placeholders(tmp_path, placeholder):
    path = write(tmp_path, [f"[31/12/2020, 21:15:42] Alice: {LRM}{placeholder}"])
    assert whatsapp.parse(path) == [msg(T(2020, 12, 31, 21, 15, 42), "Alice", placeholder, media=True)]


def test_bom_and_crlf(tmp_path):
    lines = ["31/12/2020, 21:15 - Alice: first", "", "third line", "01/01/2021, 00:05 - Bob: last"]
    path = write(tmp_path, lines, bom=True, newline="\r\n")
    assert path.read_bytes().startswith(b"\xef\xbb\xbf31/12/2020") and b"\r\n" in path.read_bytes()
    assert whatsapp.parse(path) == [
        msg(T(2020, 12, 31, 21, 15), "Alice", "first\n\nthird line"),
        msg(T(2021, 1, 1, 0, 5), "Bob", "last"),
    ]


def test_bom_crlf_ios(tmp_path):
    path = write(tmp_path, IOS_24H, bom=True, newline="\r\n")
    assert whatsapp.parse(path) == IOS_24H_EXPECTED


def test_empty_first_line_of_message(tmp_path):
    path = write(tmp_path, ["31/12/2020, 21:15 - Alice:", "body"])
    assert whatsapp.parse(path) == [msg(T(2020, 12, 31, 21, 15), "Alice", "\nbody")]


def test_blank_lines_before_first_message_are_allowed(tmp_path):
    path = write(tmp_path, ["", "   ", "31/12/2020, 21:15 - Alice: hi"])
    assert whatsapp.parse(path) == [msg(T(2020, 12, 31, 21, 15), "Alice", "hi")]


# ---- filters ----


def test_filter_authors(tmp_path):
    path = write(tmp_path, ANDROID_US)
    bob = [m for m in ANDROID_US_EXPECTED if m.author == "Bob 🎉"]
    assert len(bob) == 2
    assert whatsapp.parse(path, authors="Bob 🎉") == bob
    assert whatsapp.parse(path, authors=["Bob 🎉", "+44 7700 900123"]) == [
        ANDROID_US_EXPECTED[3],
        ANDROID_US_EXPECTED[4],
        ANDROID_US_EXPECTED[5],
    ]


def test_filter_drop_system_media_deleted(tmp_path):
    path = write(tmp_path, ANDROID_US)
    e = ANDROID_US_EXPECTED
    assert whatsapp.parse(path, drop_system=True) == [e[2], e[3], e[4], e[5], e[6], e[7], e[8]]
    assert whatsapp.parse(path, drop_media=True) == [
        e[0],
        e[1],
        e[2],
        e[3],
        e[5],
        e[6],
        e[8],
        e[9],
        e[10],
        e[11],
    ]
    assert whatsapp.parse(path, drop_deleted=True) == [
        e[0],
        e[1],
        e[2],
        e[3],
        e[4],
        e[6],
        e[7],
        e[9],
        e[10],
        e[11],
    ]
    assert whatsapp.parse(path, drop_system=True, drop_media=True, drop_deleted=True) == [e[2], e[3], e[6]]


def test_filter_ios_drop_system(tmp_path):
    e = IOS_24H_EXPECTED
    got = whatsapp.parse(write(tmp_path, IOS_24H), drop_system=True, drop_media=True, drop_deleted=True)
    assert got == [e[3], e[8], e[9], e[10], e[11]]


def test_unknown_author_lists_authors_present(tmp_path):
    path = write(tmp_path, ANDROID_US)
    with pytest.raises(ValueError, match=re.escape("authors ['Carol'] not found")) as info:
        whatsapp.parse(path, authors=["Carol", "Bob 🎉"])
    assert "['+44 7700 900123', 'Alice Smith', 'Bob 🎉']" in str(info.value)


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        (dict(authors=3), "authors must be None, a str or an iterable of str, got int"),
        (dict(authors=["Alice", 3]), "authors must contain only str, got 3"),
        (dict(dayfirst="yes"), "dayfirst must be None, True or False, got 'yes'"),
        (dict(drop_media=1), "drop_media must be True or False, got 1"),
    ],
)
def test_bad_argument_types(tmp_path, kwargs, pattern):
    path = write(tmp_path, ANDROID_US)
    with pytest.raises(TypeError, match=re.escape(pattern)):
        whatsapp.parse(path, **kwargs)


def test_empty_authors_and_bad_path(tmp_path):
    with pytest.raises(ValueError, match="authors is empty"):
        whatsapp.parse(write(tmp_path, ANDROID_US), authors=[])
    with pytest.raises(TypeError, match="path must be a str or os.PathLike"):
        whatsapp.parse(123)


# ---- date order ----


def test_month_first_inferred(tmp_path):
    path = write(tmp_path, ["01/02/2021, 10:00 - A: x", "01/13/2021, 10:00 - B: y"])
    assert [m.timestamp for m in whatsapp.parse(path)] == [T(2021, 1, 2, 10, 0), T(2021, 1, 13, 10, 0)]


def test_day_first_inferred_from_a_late_line(tmp_path):
    path = write(
        tmp_path, ["01/02/2021, 10:00 - A: x", "02/03/2021, 10:00 - A: y", "13/01/2021, 10:00 - B: z"]
    )
    expected = [T(2021, 2, 1, 10, 0), T(2021, 3, 2, 10, 0), T(2021, 1, 13, 10, 0)]
    assert [m.timestamp for m in whatsapp.parse(path)] == expected


def test_ambiguous_raises_and_dayfirst_resolves(tmp_path):
    path = write(tmp_path, ["01/02/2021, 10:00 - A: x", "[not a message]", "03/04/21, 11:00 - B: y"])
    with pytest.raises(ValueError, match=r"ambiguous date order.*dayfirst=True.*dayfirst=False"):
        whatsapp.parse(path)
    assert whatsapp.parse(path, dayfirst=True) == [
        msg(T(2021, 2, 1, 10, 0), "A", "x\n[not a message]"),
        msg(T(2021, 4, 3, 11, 0), "B", "y"),
    ]
    assert [m.timestamp for m in whatsapp.parse(path, dayfirst=False)] == [
        T(2021, 1, 2, 10),
        T(2021, 3, 4, 11),
    ]


def test_contradictory_date_order_raises(tmp_path):
    path = write(
        tmp_path, ["01/02/2021, 10:00 - A: x", "13/01/2021, 10:00 - A: y", "01/14/2021, 10:00 - A: z"]
    )
    with pytest.raises(ValueError, match=r"contradictory date order: line 2 .* line 3"):
        whatsapp.parse(path)


def test_forced_order_that_does_not_fit_names_the_line(tmp_path):
    path = write(tmp_path, ["01/02/2021, 10:00 - A: x", "13/01/2021, 10:00 - A: y"])
    with pytest.raises(ValueError, match=r"line 2: invalid timestamp '13/01/2021, 10:00 -' read month-first"):
        whatsapp.parse(path, dayfirst=False)


def test_invalid_date_names_the_line(tmp_path):
    path = write(tmp_path, ["31/01/2021, 10:00 - A: x", "30/02/2021, 10:00 - A: y"])
    with pytest.raises(ValueError, match=r"chat.txt: line 2: invalid timestamp '30/02/2021, 10:00 -'"):
        whatsapp.parse(path)


# ---- malformed files ----


def test_text_before_first_message_raises_with_line_numbers(tmp_path):
    path = write(tmp_path, ["Chat with Alice", "", "exported 2021", "31/12/2020, 21:15 - Alice: hi"])
    with pytest.raises(ValueError, match=r"chat.txt: text before the first message on lines 1, 3;.*line 4"):
        whatsapp.parse(path)


def test_no_valid_line_raises(tmp_path):
    path = write(
        tmp_path, ["hello", "31-12-2020 21:15 Alice hi", "[31/12/2020 21:15:42 Alice: hi"], name="bad.txt"
    )
    with pytest.raises(
        ValueError, match=r"bad.txt: no line matches a WhatsApp export layout \(non-blank lines 1, 2, 3\)"
    ):
        whatsapp.parse(path)


def test_empty_file_raises(tmp_path):
    path = write(tmp_path, [], name="empty.txt")
    with pytest.raises(ValueError, match=r"empty.txt: no line matches.*no non-blank line"):
        whatsapp.parse(path)


# ---- corpus ----


def test_to_text(tmp_path):
    msgs = whatsapp.parse(write(tmp_path, ANDROID_US), drop_system=True, drop_media=True, drop_deleted=True)
    assert whatsapp.to_text(msgs) == (
        "Happy new year!\nSecond line\n\nFourth line after an empty one\n"
        "Note: the time is 23:59: almost\nI fixed it"
    )
    assert whatsapp.to_text(msgs[1:], separator="\n\n", with_authors=True) == (
        "+44 7700 900123: Note: the time is 23:59: almost\n\nAlice Smith: I fixed it"
    )
    system = whatsapp.parse(write(tmp_path, ANDROID_US))[-1:]
    assert whatsapp.to_text(system, with_authors=True) == "Bob 🎉 left"
    assert whatsapp.to_text([]) == ""
    with pytest.raises(TypeError, match=r"messages\[0\] must be a whatsapp.Message, got str"):
        whatsapp.to_text(["hi"])
    with pytest.raises(TypeError, match="separator must be a str"):
        whatsapp.to_text(msgs, separator=None)


# ---- scale ----


def test_large_chat_one_pass(tmp_path):
    # 50,000 messages of 4 lines each (one of them empty) = 200,000 lines; minutes advance one per message.
    n = 50_000
    start = T(2020, 1, 1, 0, 0)
    lines = []
    for i in range(n):
        t = start + datetime.timedelta(minutes=i)
        author = ("Alice", "Bob 🎉", "+44 7700 900123")[i % 3]
        lines += [f"{t:%d/%m/%Y}, {t:%H:%M} - {author}: message {i}: part one", "part two", "", f"end {i}"]
    path = write(tmp_path, lines)
    msgs = whatsapp.parse(path)
    assert len(lines) == 200_000 and len(msgs) == n
    assert msgs[0] == msg(T(2020, 1, 1, 0, 0), "Alice", "message 0: part one\npart two\n\nend 0")
    # 12345 minutes = 8 days 13:45; 12345 % 3 == 0.
    assert msgs[12345] == msg(
        T(2020, 1, 9, 13, 45), "Alice", "message 12345: part one\npart two\n\nend 12345"
    )
    # 49999 minutes = 34 days 17:19; 49999 % 3 == 1.
    assert msgs[-1] == msg(T(2020, 2, 4, 17, 19), "Bob 🎉", "message 49999: part one\npart two\n\nend 49999")


# ---- lines that look like a message start but do not parse ----

# Each is the first line of a message with its timestamp or layout mangled, as a user's edit or a
# half-broken export leaves it; written by hand, not produced by the parser.
ANDROID_MANGLED = [
    "31/12/2020 21:16 Bob: comma and dash lost",
    "31/12/2020, 21:16 Bob: dash lost",
    "31/12/2020 - Bob: time lost",
    "31/12, 21:16 - Bob: year lost",
    "3l/12/2020, 21:16 - Bob: a letter l for a 1",
    "31/12/2020, 21h16 - Bob: h for a colon",
    "31/12/2020, 9:16 XM - Bob: no such half of the day",
]
IOS_MANGLED = [
    "[31/12/2020 21:16:00 Bob: bracket lost",
    "[31/12, 21:16:00] Bob: year lost",
    "31/12/2020, 21:16:00] Bob: opening bracket lost",
    f"{LRM}[31/12/2020, 21-16-00] Bob: dashes for colons, with a mark",
]


@pytest.mark.parametrize("mangled", ANDROID_MANGLED)
def test_android_mangled_line_is_reported_not_glued(tmp_path, mangled):
    path = write(
        tmp_path,
        ["31/12/2020, 21:15 - Alice: first", "alice goes on", mangled, "bob goes on", "",
         "01/01/2021, 00:05 - Alice: last"],
    )  # fmt: skip
    chat = whatsapp.read(path)
    assert chat.messages == [
        msg(T(2020, 12, 31, 21, 15), "Alice", "first\nalice goes on"),
        msg(T(2021, 1, 1, 0, 5), "Alice", "last"),
    ]
    assert chat.unparsed == [whatsapp.Unparsed(3, mangled, 2)]
    with pytest.raises(
        ValueError,
        match=r"chat.txt: line 3 looks like the start of a message but does not parse.*e.g. line 3: "
        + re.escape(repr(mangled)),
    ):
        whatsapp.parse(path)


@pytest.mark.parametrize("mangled", IOS_MANGLED)
def test_ios_mangled_line_is_reported_not_glued(tmp_path, mangled):
    path = write(
        tmp_path, ["[31/12/2020, 21:15:42] Alice: first", mangled, "[01/01/2021, 00:00:01] Alice: last"]
    )
    chat = whatsapp.read(path)
    assert chat.messages == [
        msg(T(2020, 12, 31, 21, 15, 42), "Alice", "first"),
        msg(T(2021, 1, 1, 0, 0, 1), "Alice", "last"),
    ]
    assert chat.unparsed == [whatsapp.Unparsed(2, mangled.lstrip(LRM), 0)]


# Continuation lines of ordinary messages that begin with digits, dashes or brackets: not a message start.
ANDROID_CONTINUATIONS = [
    "12:30 works for me",
    "1/2 cup of sugar",
    "10/10/2020 was great",
    "2020 was a long year",
    "- item: bread",
    "Sure, 10:30 - see you there",
    "3.14 - 2.71: about 0.43",
    "[31/12/2020, 21:15:42] Bob: an iOS line quoted in an Android chat",
]
IOS_CONTINUATIONS = [
    "[10:30] stand-up",
    "[citation needed]",
    "[note, 10:30:00 sharp]",
    "12/31/20, 9:15 PM - Bob: an Android line quoted in an iOS chat",
    "31/12/2020, 21:15 the day after",
]


def test_ordinary_continuation_lines_stay_in_their_message(tmp_path):
    android = write(tmp_path, ["31/12/2020, 21:15 - Alice: list", *ANDROID_CONTINUATIONS], name="a.txt")
    assert whatsapp.read(android).messages == [
        msg(T(2020, 12, 31, 21, 15), "Alice", "\n".join(["list", *ANDROID_CONTINUATIONS]))
    ]
    assert whatsapp.read(android).unparsed == []
    ios = write(tmp_path, ["[31/12/2020, 21:15:42] Alice: list", *IOS_CONTINUATIONS], name="i.txt")
    assert whatsapp.parse(ios) == [
        msg(T(2020, 12, 31, 21, 15, 42), "Alice", "\n".join(["list", *IOS_CONTINUATIONS]))
    ]


def test_parse_lists_every_unparsed_line_number(tmp_path):
    lines = ["31/12/2020, 21:15 - Alice: first"]
    for i in range(12):
        lines += [f"31/12/2020 21:{i:02d} Bob: mangled {i}", "more"]
    path = write(tmp_path, lines)
    numbers = list(range(2, 26, 2))
    assert [u.lineno for u in whatsapp.read(path).unparsed] == numbers
    listed = ", ".join(map(str, numbers[:10]))
    with pytest.raises(
        ValueError, match=re.escape(f"chat.txt: lines {listed} (and 2 more) look like the start")
    ):
        whatsapp.parse(path)


# ---- the corpus checks: file name, byte offset in the file, errors="replace", binary refused ----


def test_undecodable_byte_names_the_file_and_its_offset_in_the_file(tmp_path):
    # The bad byte sits far beyond the first read buffer (8 KiB), at byte 184,390 of the file.
    head = "01/01/2021, 00:05 - Alice: "
    body = "x" * (184_390 - 3 - len(head) - 1)  # BOM, header, body and newline fill bytes 0 .. 184,389
    data = (head + body + "\n").encode() + b"\xff tail\n"
    path = tmp_path / "big.txt"
    path.write_bytes(b"\xef\xbb\xbf" + data)  # the BOM is part of the offset
    assert path.read_bytes()[184_390] == 0xFF
    with pytest.raises(
        ValueError,
        match=r"path: '.*big.txt': expected UTF-8 text, got an undecodable byte 0xff at byte offset 184390 .*"
        r"errors='replace'",
    ):
        whatsapp.read(path, dayfirst=True)
    chat = whatsapp.read(path, dayfirst=True, errors="replace")
    assert chat.messages[0].text == body + "\n\ufffd tail"


@pytest.mark.parametrize(
    "content, pattern",
    [
        (b"31/12/2020, 21:15 - Alice: hi\x00\n",
         r"chat.txt': expected a text file, got binary data \(a NUL byte at byte offset 29\)"),
        (b"PK\x03\x04\x14\x00",
         r"chat.txt' is a zip archive; expected a WhatsApp export .txt: unzip the export"),
    ],
)  # fmt: skip
def test_binary_and_zip_files_are_refused(tmp_path, content, pattern):
    path = tmp_path / "chat.txt"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=pattern):
        whatsapp.read(path)


def test_missing_file_folder_and_bad_errors(tmp_path):
    with pytest.raises(
        FileNotFoundError, match=r"path: no such file '.*nope.txt'; expected a WhatsApp export"
    ):
        whatsapp.read(tmp_path / "nope.txt")
    with pytest.raises(ValueError, match=r"path: '.*' is a folder; expected a WhatsApp export .txt"):
        whatsapp.parse(tmp_path)
    with pytest.raises(ValueError, match=r"errors: expected 'strict' or 'replace', got 'ignore'"):
        whatsapp.read(write(tmp_path, ANDROID_US), errors="ignore")


# ---- summary and prompt ----


def test_read_counts_what_each_filter_left_out(tmp_path):
    path = write(tmp_path, ANDROID_US)
    chat = whatsapp.read(path, drop_system=True, drop_media=True, drop_deleted=True)
    e = ANDROID_US_EXPECTED
    assert chat.messages == [e[2], e[3], e[6]]
    # system: e0 e1 e9 e10 e11; media: e4 e7; deleted: e5 e8.
    assert chat.dropped == {"authors": 0, "system": 5, "media": 2, "deleted": 2}
    assert (chat.path, chat.layout, chat.dayfirst, chat.lines, chat.unparsed) == (
        str(path),
        "android",
        False,
        len(ANDROID_US),
        [],
    )
    # The authors filter goes first: it leaves out the 5 authorless system lines (counted as system lines,
    # not as other authors' messages) and the other authors' 5 messages.
    chat = whatsapp.read(path, authors="Bob 🎉", drop_media=True)
    assert chat.messages == [e[5]] and chat.dropped == {"authors": 5, "system": 5, "media": 1, "deleted": 0}
    assert sum(m.author is None for m in e) == 5 and sum(m.author not in (None, "Bob 🎉") for m in e) == 5


def test_author_counts_and_default_prompt(tmp_path):
    e = ANDROID_US_EXPECTED
    assert whatsapp.author_counts(e) == [("Alice Smith", 4), ("Bob 🎉", 2), ("+44 7700 900123", 1)]
    assert whatsapp.default_prompt(e) == "Alice Smith: "
    kept = [e[3], e[4], e[5], e[6]]  # one by the phone number, then two by Bob: Bob leads
    assert whatsapp.default_prompt(kept) == "Bob 🎉: "
    assert whatsapp.to_text(kept, with_authors=True).split("\n")[1].startswith(whatsapp.default_prompt(kept))
    tie = [e[3], e[6]]  # one each: the first to write wins
    assert whatsapp.author_counts(tie) == [("+44 7700 900123", 1), ("Alice Smith", 1)]
    assert whatsapp.default_prompt(tie) == "+44 7700 900123: "
    with pytest.raises(ValueError, match="messages: expected at least one message with an author, got none"):
        whatsapp.default_prompt([e[0], e[1]])


def test_describe(tmp_path):
    lines = ["31/12/2020, 21:15 - Alice: hi", "31/12/2020 21:16 Bob: mangled", "more", "",
             "01/01/2021, 00:05 - Bob: <Media omitted>", "01/01/2021, 00:06 - Bob: yes",
             "01/01/2021, 00:07 - Alice: ok", "01/01/2021, 00:08 - Alice added Carol"]  # fmt: skip
    chat = whatsapp.read(write(tmp_path, lines), drop_system=True, drop_media=True)
    path = chat.path
    assert whatsapp.describe(chat) == (
        f"WhatsApp export {path!r} (android layout, day-first dates, 8 lines): 3 messages kept\n"
        "- authors (2): Alice 2, Bob 1\n"
        "- left out: 0 by other authors, 1 system, 1 media, 0 deleted\n"
        "- unparsed lines: 1 looks like the start of a message but does not parse (a mangled timestamp?); "
        "left out, with the 2 line(s) after it that continue it:\n"
        "  - line 2: '31/12/2020 21:16 Bob: mangled'"
    )
    assert whatsapp.describe(chat, max_unparsed=0).endswith("continue it:\n  - ... and 1 more")
    clean = whatsapp.read(write(tmp_path, ["2021-01-02, 21:15 - Alice: a"], name="iso.txt"))
    assert (
        whatsapp.describe(clean)
        .split("\n")[0]
        .endswith("(android layout, year-first dates, 1 lines): 1 messages kept")
    )
    assert whatsapp.describe(clean).endswith("- unparsed lines: none")
