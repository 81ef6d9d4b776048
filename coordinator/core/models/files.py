"""The content-addressed file store: which files the coordinator lacks, and what it stored.

No `from __future__ import annotations` here: Python 3.11 would not see
`NotRequired` inside postponed annotations (see the package's docstring).
"""

from typing import Annotated, TypedDict

from coordinator.core.models.common import Limits, Sha256


class MissingRequest(TypedDict):
    """Hashes of the files a job will use."""

    hashes: Annotated[list[Sha256], "sha256 of each file"]


class MissingAnswer(TypedDict):
    """The files to upload before submitting."""

    missing: Annotated[list[Sha256], "the asked hashes the coordinator does not have, sorted"]


class StoredFile(TypedDict):
    """An uploaded file, now in the coordinator's store."""

    sha256: Annotated[Sha256, "its content hash"]
    size: Annotated[int, "bytes", Limits(minimum=0)]
