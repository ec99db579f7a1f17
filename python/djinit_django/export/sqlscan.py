"""Finding transaction control in SQL text (for atomic migrations, see ``walk``).

An atomic migration runs in one transaction together with its ``django_migrations`` row. A
``COMMIT`` (or ``BEGIN``, ``ROLLBACK``, ``END``, ...) inside its SQL, typically from a ``RunSQL``,
would commit part of the migration and leave the rest to fail on its own: the export refuses it.

The scanner splits text into statements the way PostgreSQL's lexer sees them: ``;`` outside
quotes ('...', E'...' with backslash escapes, "identifiers", $tag$ dollar quotes $tag$), outside
comments (``--`` to the end of the line, nested ``/* */``) and outside ``BEGIN ATOMIC ... END``
function bodies (with nested ``CASE ... END``), then looks at each statement's first words.
"""

import re

# First word(s) of a statement -> what to call it. ROLLBACK TO / RELEASE [SAVEPOINT] stay
# inside the transaction and are fine; SAVEPOINT too.
_CONTROL = {
    "begin": "BEGIN",
    "start": "START TRANSACTION",
    "commit": "COMMIT",
    "end": "END",
    "rollback": "ROLLBACK",
    "abort": "ABORT",
    "prepare": "PREPARE TRANSACTION",
}

_WORD = re.compile(r"[A-Za-z_][A-Za-z_0-9$]*")
_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z_0-9]*)?\$")


def _skip_quoted(text, i):
    """Index after the quoted token starting at ``text[i]``, or None when ``text[i]`` starts none."""
    c = text[i]
    if c == "'" or (c in "eE" and text[i + 1 : i + 2] == "'" and (i == 0 or not _is_word_char(text[i - 1]))):
        backslash = c != "'"
        j = i + (2 if backslash else 1)
        while j < len(text):
            if backslash and text[j] == "\\":
                j += 2
                continue
            if text[j] == "'":
                if text[j + 1 : j + 2] == "'":
                    j += 2
                    continue
                return j + 1
            j += 1
        return len(text)
    if c == '"':
        j = text.find('"', i + 1)
        while j != -1 and text[j + 1 : j + 2] == '"':
            j = text.find('"', j + 2)
        return len(text) if j == -1 else j + 1
    if c == "$" and (i == 0 or not _is_word_char(text[i - 1])):
        m = _DOLLAR_TAG.match(text, i)
        if m:
            end = text.find(m.group(0), m.end())
            return len(text) if end == -1 else end + len(m.group(0))
    if text.startswith("--", i):
        j = text.find("\n", i)
        return len(text) if j == -1 else j + 1
    if text.startswith("/*", i):
        depth, j = 1, i + 2
        while j < len(text) and depth:
            if text.startswith("/*", j):
                depth, j = depth + 1, j + 2
            elif text.startswith("*/", j):
                depth, j = depth - 1, j + 2
            else:
                j += 1
        return j
    return None


def _is_word_char(c):
    return c.isalnum() or c in "_$"


def statements(text):
    """The statements of ``text``, each as its list of lower-cased words outside quotes."""
    out, words = [], []
    depth = 0  # BEGIN ATOMIC / CASE nesting
    i = 0
    while i < len(text):
        end = _skip_quoted(text, i)
        if end is not None:
            i = end
            continue
        c = text[i]
        if c == ";" and depth == 0:
            if words:
                out.append(words)
            words = []
            i += 1
            continue
        m = _WORD.match(text, i)
        if m and (i == 0 or not _is_word_char(text[i - 1])):
            word = m.group(0).lower()
            if word == "atomic" and words and words[-1] == "begin" and words[0] != "begin":
                depth += 1
            elif word == "case" and depth:
                depth += 1
            elif word == "end" and depth:
                depth -= 1
            words.append(word)
            i = m.end()
            continue
        i += 1
    if words:
        out.append(words)
    return out


def transaction_control(text):
    """The first transaction-control command in ``text`` (e.g. ``"COMMIT"``), or None."""
    for words in statements(text):
        first = words[0]
        if first not in _CONTROL:
            continue
        if first == "rollback" and len(words) > 1 and words[1] in ("to", "prepared"):
            if words[1] == "to":
                continue
            return "ROLLBACK PREPARED"
        if first == "commit" and len(words) > 1 and words[1] == "prepared":
            return "COMMIT PREPARED"
        if first == "start" and (len(words) < 2 or words[1] != "transaction"):
            continue
        if first == "prepare" and (len(words) < 2 or words[1] != "transaction"):
            continue  # PREPARE name AS ... is a prepared statement
        return _CONTROL[first]
    return None
