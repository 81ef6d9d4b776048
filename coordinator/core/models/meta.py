"""The coordinator's own answers: health, version and the job types.

No `from __future__ import annotations` here: Python 3.11 would not see
`NotRequired` inside postponed annotations (see the package's docstring).
"""

from typing import Annotated, Any, Literal, NotRequired, TypedDict

from coordinator.core.models.common import Limits
from coordinator.core.protocol import WorkerStatus


class Health(TypedDict):
    """Whether the coordinator is up (public: the add-on's list of farms asks it)."""

    status: Annotated[Literal["ok"], "always ok: an answer at all means it is up"]
    name: Annotated[str, "the farm's name, as advertised on the LAN"]
    workers: Annotated[int, "workers online (idle or busy)", Limits(minimum=0)]
    workers_by_status: Annotated[
        dict[WorkerStatus, int], "how many registered workers have each status"
    ]
    fingerprint: NotRequired[
        Annotated[
            str,
            "SHA-256 of the TLS certificate it serves, for a person to compare with the one"
            " `serve` printed; absent on plain HTTP (proof: POST /proof)",
        ]
    ]


class ProofRequest(TypedDict):
    """A client's challenge before it trusts a coordinator (docs/admin.md, Security)."""

    nonce: Annotated[
        str, "64 lower-case hex digits, fresh and random", Limits(pattern="^[0-9a-f]{64}$")
    ]
    key_id: Annotated[
        str,
        "which key the client holds: coordinator.core.trust.key_id of its key (a slow"
        " PBKDF2 of the farm token, or the SHA-256 of a worker secret)",
        Limits(pattern="^[0-9a-f]{32}$"),
    ]


class Proof(TypedDict):
    """The coordinator's answer: proof that it holds the key, bound to its certificate."""

    fingerprint: Annotated[str, "SHA-256 of the certificate it serves; empty on plain HTTP"]
    proof: Annotated[
        str, "HMAC-SHA256(key, context, nonce, fingerprint) in hex (coordinator.core.trust)"
    ]


class Version(TypedDict):
    """Which API and coordinator this is (public)."""

    api: Annotated[str, "the API version, as in the /api/v<N> prefix", Limits(example="1")]
    coordinator: Annotated[str, "the coordinator's release"]
    name: Annotated[str, "the farm's name"]


class SettingInfo(TypedDict):
    """One setting of a job type, as forms (add-on, dashboard, CLI) draw it."""

    name: Annotated[str, "its key in the job's settings"]
    type: Annotated[Literal["int", "float", "str", "bool", "choice"], "the kind of value"]
    label: Annotated[str, "what a form shows"]
    description: Annotated[str, "a tooltip: what it does, in an artist's words"]
    required: Annotated[bool, "a job must give it"]
    default: NotRequired[Annotated[Any, "used when a job leaves it out; null means unset"]]
    minimum: NotRequired[Annotated[float, "smallest value (int and float settings)"]]
    maximum: NotRequired[Annotated[float, "largest value (int and float settings)"]]
    choices: NotRequired[Annotated[list[str], "the values a choice setting takes"]]


class JobTypeInfo(TypedDict):
    """A job type: what its jobs do and the settings they take."""

    name: Annotated[str, "its id, the `type` of a job", Limits(example="blender-render")]
    label: Annotated[str, "for menus"]
    description: Annotated[str, "one or two sentences for artists"]
    needs_blend: Annotated[bool, "its jobs must come with a .blend (`blend` and `files`)"]
    settings: Annotated[list[SettingInfo], "its settings, in form order"]


class JobTypeList(TypedDict):
    """The job type catalogue."""

    job_types: Annotated[list[JobTypeInfo], "every job type this coordinator runs"]
