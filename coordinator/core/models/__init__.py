"""The one shape of every JSON body the coordinator's HTTP API takes or gives.

The server's OpenAPI document is generated from these TypedDicts
(`coordinator.server.openapi`), and the API tests check every response they
receive against that document, so a field added here and not sent (or sent
and not added here) fails a test. Clients may import them for type checks:
standard library only, as the add-on shares Blender's site-packages.

How to read a field: `Annotated[type, "what it means", Limits(...)]`. The
string is the field's description in the document; `Limits` adds the JSON
Schema keywords its type cannot say. `NotRequired` marks a field that may be
absent (a request's optional field, or a response field sent only in some
answers, as the description says). `X | None` is a field that is always
there and may be null.

The models live in one module per resource (common, meta, jobs, files,
workers, protocol, events) and are all importable from here.

No `from __future__ import annotations` in these modules: with postponed
annotations Python 3.11 cannot see `NotRequired` inside the strings, and
`__required_keys__`, which the document's `required` lists come from,
would claim every field.
"""

from coordinator.core.models.common import (
    _STAGE as _STAGE,
)
from coordinator.core.models.common import (
    _WARM as _WARM,
)
from coordinator.core.models.common import (
    UNSET as UNSET,
)
from coordinator.core.models.common import (
    Error as Error,
)
from coordinator.core.models.common import (
    Fraction as Fraction,
)
from coordinator.core.models.common import (
    Id as Id,
)
from coordinator.core.models.common import (
    JobAction as JobAction,
)
from coordinator.core.models.common import (
    JobSettings as JobSettings,
)
from coordinator.core.models.common import (
    Limits as Limits,
)
from coordinator.core.models.common import (
    NoFields as NoFields,
)
from coordinator.core.models.common import (
    Seconds as Seconds,
)
from coordinator.core.models.common import (
    Sha256 as Sha256,
)
from coordinator.core.models.common import (
    TaskAction as TaskAction,
)
from coordinator.core.models.common import (
    Timestamp as Timestamp,
)
from coordinator.core.models.common import (
    WorkerAction as WorkerAction,
)
from coordinator.core.models.events import (
    Event as Event,
)
from coordinator.core.models.files import (
    MissingAnswer as MissingAnswer,
)
from coordinator.core.models.files import (
    MissingRequest as MissingRequest,
)
from coordinator.core.models.files import (
    StoredFile as StoredFile,
)
from coordinator.core.models.jobs import (
    BlocklistEntry as BlocklistEntry,
)
from coordinator.core.models.jobs import (
    ClearBlocklistRequest as ClearBlocklistRequest,
)
from coordinator.core.models.jobs import (
    Deleted as Deleted,
)
from coordinator.core.models.jobs import (
    Job as Job,
)
from coordinator.core.models.jobs import (
    JobDetail as JobDetail,
)
from coordinator.core.models.jobs import (
    JobNeeds as JobNeeds,
)
from coordinator.core.models.jobs import (
    JobPage as JobPage,
)
from coordinator.core.models.jobs import (
    JobSubmission as JobSubmission,
)
from coordinator.core.models.jobs import (
    Output as Output,
)
from coordinator.core.models.jobs import (
    OutputList as OutputList,
)
from coordinator.core.models.jobs import (
    PriorityRequest as PriorityRequest,
)
from coordinator.core.models.jobs import (
    Regenerated as Regenerated,
)
from coordinator.core.models.jobs import (
    RegeneratedJob as RegeneratedJob,
)
from coordinator.core.models.jobs import (
    RegenerateRequest as RegenerateRequest,
)
from coordinator.core.models.jobs import (
    RequeueRequest as RequeueRequest,
)
from coordinator.core.models.jobs import (
    Task as Task,
)
from coordinator.core.models.jobs import (
    TaskDetail as TaskDetail,
)
from coordinator.core.models.jobs import (
    TaskFailure as TaskFailure,
)
from coordinator.core.models.jobs import (
    TaskPage as TaskPage,
)
from coordinator.core.models.jobs import (
    TaskStages as TaskStages,
)
from coordinator.core.models.meta import (
    Health as Health,
)
from coordinator.core.models.meta import (
    JobTypeInfo as JobTypeInfo,
)
from coordinator.core.models.meta import (
    JobTypeList as JobTypeList,
)
from coordinator.core.models.meta import (
    Proof as Proof,
)
from coordinator.core.models.meta import (
    ProofRequest as ProofRequest,
)
from coordinator.core.models.meta import (
    SettingInfo as SettingInfo,
)
from coordinator.core.models.meta import (
    Version as Version,
)
from coordinator.core.models.protocol import (
    Assignment as Assignment,
)
from coordinator.core.models.protocol import (
    ClaimRequest as ClaimRequest,
)
from coordinator.core.models.protocol import (
    CompleteAnswer as CompleteAnswer,
)
from coordinator.core.models.protocol import (
    CompleteRequest as CompleteRequest,
)
from coordinator.core.models.protocol import (
    Control as Control,
)
from coordinator.core.models.protocol import (
    FailAnswer as FailAnswer,
)
from coordinator.core.models.protocol import (
    FailRequest as FailRequest,
)
from coordinator.core.models.protocol import (
    Ok as Ok,
)
from coordinator.core.models.protocol import (
    RestRequest as RestRequest,
)
from coordinator.core.models.protocol import (
    TaskUpdate as TaskUpdate,
)
from coordinator.core.models.protocol import (
    Upcoming as Upcoming,
)
from coordinator.core.models.protocol import (
    UpdateAnswer as UpdateAnswer,
)
from coordinator.core.models.workers import (
    DisableRequest as DisableRequest,
)
from coordinator.core.models.workers import (
    Removed as Removed,
)
from coordinator.core.models.workers import (
    Worker as Worker,
)
from coordinator.core.models.workers import (
    WorkerCapabilities as WorkerCapabilities,
)
from coordinator.core.models.workers import (
    WorkerCredentials as WorkerCredentials,
)
from coordinator.core.models.workers import (
    WorkerList as WorkerList,
)
from coordinator.core.models.workers import (
    WorkerRegistration as WorkerRegistration,
)
from coordinator.core.models.workers import (
    WorkerReport as WorkerReport,
)
from coordinator.core.models.workers import (
    WorkerTags as WorkerTags,
)
from coordinator.core.models.workers import (
    WorkerTask as WorkerTask,
)
