"""Finding transaction control in SQL text (for atomic migrations, see ``walk``).

An atomic migration runs in one transaction together with its ``django_migrations`` row. A
``COMMIT`` inside its SQL (or ``END``, ``ROLLBACK``, ``ABORT``, ``BEGIN``, ``START TRANSACTION``,
``SAVEPOINT``, ``RELEASE``, ``ROLLBACK TO``, ``PREPARE TRANSACTION``), typically from a
``RunSQL``, would commit or undo part of the migration and run the rest outside the transaction:
the export refuses it, so the build fails instead of the deploy.

The rules are those of ``lockedmigrate``'s own check before applying
(``components/lockedmigrate/src/tx_control.rs``), so what exports also applies: statements end at
``;`` outside string literals ('...', E'...' with backslash escapes), quoted identifiers, dollar
quotes ($tag$...$tag$: function bodies, DO blocks), comments (``--``, nested ``/* */``),
parentheses, and the ``BEGIN ... END`` body of ``CREATE [OR REPLACE] FUNCTION|PROCEDURE ... BEGIN
ATOMIC`` (psql's heuristic); a statement's first words decide.
"""

_ALWAYS = {"BEGIN", "COMMIT", "END", "ROLLBACK", "ABORT", "SAVEPOINT", "RELEASE"}


def _ident_start(c):
    return c.isalpha() or c == "_" or ord(c) >= 0x80


def _ident_cont(c):
    return _ident_start(c) or c.isdigit() or c == "$"


def _skip_quoted(text, i, quote, backslash):
    j = i + 1
    while j < len(text):
        if backslash and text[j] == "\\":
            j += 2
        elif text[j] == quote:
            if text[j + 1 : j + 2] == quote:
                j += 2
            else:
                return j + 1
        else:
            j += 1
    return len(text)


def _skip_dollar(text, i):
    j = i + 1
    if j < len(text) and _ident_start(text[j]):
        while j < len(text) and _ident_cont(text[j]) and text[j] != "$":
            j += 1
    if text[j : j + 1] != "$":
        return max(i + 1, j)  # $1 (a parameter) or a stray $: not a quote
    tag = text[i : j + 1]
    end = text.find(tag, j + 1)
    return len(text) if end == -1 else end + len(tag)


def statements(text):
    """The first two words (upper case) of each statement of ``text``."""
    out, words = [], []
    i, paren, begin, count = 0, 0, 0, 0
    idents = ["", "", "", ""]
    while i < len(text):
        c = text[i]
        if text.startswith("--", i):
            j = text.find("\n", i)
            i = len(text) if j == -1 else j
        elif text.startswith("/*", i):
            depth = 0
            while i < len(text):
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                    if depth == 0:
                        break
                else:
                    i += 1
        elif c in "'\"":
            i = _skip_quoted(text, i, c, False)
        elif c == "$":
            i = _skip_dollar(text, i)
        elif c == "(":
            paren, i = paren + 1, i + 1
        elif c == ")":
            paren, i = max(paren - 1, 0), i + 1
        elif c == ";" and paren == 0 and begin == 0:
            if words:
                out.append(words)
            words, count, i = [], 0, i + 1
        elif _ident_start(c):
            s = i
            while i < len(text) and _ident_cont(text[i]):
                i += 1
            word = text[s:i].upper()
            if word == "E" and text[i : i + 1] == "'":
                i = _skip_quoted(text, i, "'", True)
                continue
            if count == 0:
                idents = ["", "", "", ""]
            if count < 4 and word in ("CREATE", "FUNCTION", "PROCEDURE", "OR", "REPLACE"):
                idents[count] = word[0]
            count += 1
            routine = idents[0] == "C" and (
                idents[1] in ("F", "P") or (idents[1] == "O" and idents[2] == "R" and idents[3] in ("F", "P"))
            )
            if routine and paren == 0:
                if word == "BEGIN":
                    begin += 1
                elif word == "CASE" and begin >= 1:
                    begin += 1
                elif word == "END":
                    begin = max(begin - 1, 0)
            if len(words) < 2:
                words.append(word)
        elif c.isdigit():
            while i < len(text) and (text[i].isalnum() or text[i] in "._"):
                i += 1
        else:
            i += 1
    if words:
        out.append(words)
    return out


def transaction_control(text):
    """The first transaction-control command in ``text`` (e.g. ``"COMMIT"``), or None."""
    for words in statements(text):
        first = words[0]
        second = words[1] if len(words) > 1 else None
        if first in _ALWAYS:
            return first
        if first in ("START", "PREPARE") and second == "TRANSACTION":
            return "%s TRANSACTION" % first
    return None
