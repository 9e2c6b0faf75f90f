"""A fingerprint of a set of projections: equal digests mean equal risk pictures.

Used to show that a rebuild from the archive reproduces the live projections exactly.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from projections.model import Assessment


def projection_digest(assessments: Iterable[tuple[str, Assessment]]) -> str:
    """sha256 (hex) over the canonical JSON of the (subject, assessment) pairs, in sorted order."""
    return document_digest((subject, assessment.to_dict()) for subject, assessment in assessments)


def document_digest(documents: Iterable[tuple[str, Mapping[str, Any]]]) -> str:
    """The same digest over assessments already in their dict form (as stored by the live pipeline)."""
    return entries_digest(digest_entry(subject, document) for subject, document in documents)


def digest_entry(subject: str, document: Mapping[str, Any]) -> str:
    """One (subject, assessment) pair as the digest reads it; made where the document is (a rebuild's
    processes), so that only the text travels and the digest is a sort and a hash."""
    return _canonical([subject, document])


def entries_digest(entries: Iterable[str]) -> str:
    """The digest over `digest_entry` texts, in any order: sha256 of "[" + the sorted texts joined
    by "," + "]", in UTF-8, hashed entry by entry rather than as one text (a rebuild's are megabytes)."""
    digest = hashlib.sha256(b"[")
    separator = b""
    for entry in sorted(entries):
        digest.update(separator)
        digest.update(entry.encode())
        separator = b","
    digest.update(b"]")
    return digest.hexdigest()


# The encoder json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
# allow_nan=False) uses, made once: json.dumps makes a new one at every call with options, and a
# rebuild writes an entry per subject.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _canonical(value: object) -> str:
    return _CANONICAL.encode(value)
