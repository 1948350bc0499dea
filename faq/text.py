"""Normalise question text before it is embedded.

Staff write "pay slip", "hols", "WFH" and British spellings; the embedding model was trained
mostly on American text and has never seen council shorthand. Mapping both the FAQ phrasings
and incoming questions onto one vocabulary lets a short FAQ match the words people use.
"""

from __future__ import annotations

import re
import unicodedata

# British spellings the model knows less well -> the spelling it saw in training.
_SPELLING = {
    "organisation": "organization",
    "organisations": "organizations",
    "authorise": "authorize",
    "authorised": "authorized",
    "authorisation": "authorization",
    "cancelled": "canceled",
    "cheque": "check",
    "programme": "program",
    "programmes": "programs",
    "licence": "license",
    "enrolment": "enrollment",
    "enrol": "enroll",
    "centre": "center",
    "colour": "color",
    "favourite": "favorite",
    "cancelling": "canceling",
    "travelling": "traveling",
    "recognise": "recognize",
    "apologise": "apologize",
    "utilise": "utilize",
    "minimise": "minimize",
    "behaviour": "behavior",
    "counselling": "counseling",
    "analyse": "analyze",
    "practise": "practice",
    "mum": "mom",
}

# Council shorthand and variants -> one canonical phrase (applied after lower-casing).
_PHRASES = {
    r"pay ?slips?": "payslip",
    r"p60s?": "p60 tax form",
    r"hols|holiday entitlement": "annual leave",
    r"a/l": "annual leave",
    r"wfh": "work from home",
    r"mfa|2fa|(?:two|multi)[- ]factor(?: authentication)?": "multi-factor authentication",
    r"lgps": "local government pension scheme",
    r"eap": "employee assistance programme",
    r"dbs": "dbs criminal record check",
    r"ooo": "out of office",
    r"pw|passwd|pword": "password",
    r"pls|plz": "please",
    r"u": "you",
    r"ur": "your",
    r"r": "are",
    r"im": "i am",
    r"cant": "can not",
    r"dont": "do not",
    r"wont": "will not",
    r"whats": "what is",
    r"hr": "human resources",
    r"spl": "shared parental leave",
    r"hot-?desk(?:ing)?": "hot desk",
    r"mil(?:l)?age": "mileage",
}
_PHRASE_RE = re.compile(
    r"\b(?:" + "|".join(f"(?P<p{i}>{pattern})" for i, pattern in enumerate(_PHRASES)) + r")\b"
)
_PHRASE_VALUES = list(_PHRASES.values())
_WORD_RE = re.compile(r"[a-z]+")
_SPACE_RE = re.compile(r"\s+")


def normalise(text: str) -> str:
    """Lower-case, fold accents and quotes, expand shorthand and unify spelling."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = text.replace("\u2019", "'").replace("'", "")
    text = _PHRASE_RE.sub(_expand, text)
    text = _WORD_RE.sub(lambda m: _SPELLING.get(m.group(0), m.group(0)), text)
    return _SPACE_RE.sub(" ", text).strip()


def _expand(match: re.Match[str]) -> str:
    assert match.lastgroup is not None
    return _PHRASE_VALUES[int(match.lastgroup[1:])]
