"""Text from the ledger made safe for a terminal: the tables, the CLI's messages and the console log lines show a
stored escape sequence, control character or bidi override escaped, and never let the terminal act on it."""

from __future__ import annotations


def terminal_safe(text: str) -> str:
    """``text`` with every character ``str.isprintable`` rejects written as a Python-style escape.

    Rejected: control characters (C0, DEL, C1: ESC sequences, CSI), format characters (bidi overrides and
    isolates, zero-width ones), lone surrogates, line and paragraph separators, private-use and unassigned code
    points, and every space but U+0020. ESC shows as ``\\x1b``, a newline as ``\\n``, U+202E as ``\\u202e``.
    Printable text, backslashes included, is shown exactly as stored so it can be copied back into a command.
    """
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else _escape(char) for char in text)


_SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(char: str) -> str:
    if char in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[char]
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"
