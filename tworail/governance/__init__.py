"""The governance control plane around the learnable rail.

It decides what the rail may learn (`LearnPolicy`, the data contract,
redaction and quarantine) and records every change in the hash-chained audit
log. It checks each batch on a shadow copy before it commits
(`AcceptanceGate`) and watches for drift (`DriftMonitor`). It can take any
change back (`GovernedLearner.unlearn`, `.revert`, `.sweep_expired`).
`GovernedLearner` ties the steps into the one path by which text reaches the
fast weights.
"""

from tworail.governance.acceptance import AcceptanceGate, AcceptanceReport, AcceptanceThresholds
from tworail.governance.auth import KeyRing, RequestVerifier, SignedRequest, sign_request
from tworail.governance.budgets import BudgetConfig
from tworail.governance.canaries import Canary, ExposureResult, exposure
from tworail.governance.contracts import ContractConfig, ContractReport, check_contract, enforce_contract
from tworail.governance.drift import DriftAlert, DriftMonitor, DriftThresholds
from tworail.governance.errors import (
    AuthenticationError,
    ContractViolation,
    GovernanceError,
    LearnRejected,
    LineageError,
    NothingToUnlearn,
    PayloadErased,
    PolicyError,
    RateLimitExceeded,
    ReplayedNonceError,
    SignatureError,
    SnapshotCorrupted,
    SnapshotNotFound,
    StaleRequestError,
    UnknownPrincipalError,
)
from tworail.governance.learner import GovernedLearner, LearnOutcome, RemovalReport, default_gold_texts
from tworail.governance.lineage import Commit, Lineage
from tworail.governance.payloads import PayloadStore
from tworail.governance.policy import LearnPolicy, PolicyDecision, SourceRule, default_policy, load_policy, parse_policy
from tworail.governance.probes import Probe
from tworail.governance.protocol import FastWeightModel
from tworail.governance.queries import ChangeReport, Contribution, changes_between, top_contributors
from tworail.governance.ratelimit import BucketConfig, RateLimitConfig, RateLimiter
from tworail.governance.redaction import Redactor, RedactionResult
from tworail.governance.sanitize import sanitize
from tworail.governance.quarantine import screen
from tworail.governance.snapshots import InMemorySnapshotStore, LocalFolderSnapshotStore, SnapshotStore, state_id
from tworail.governance.toy import ToyFastWeightModel

__all__ = [
    "AcceptanceGate", "AcceptanceReport", "AcceptanceThresholds", "AuthenticationError", "BucketConfig",
    "BudgetConfig", "Canary", "ChangeReport", "Commit", "ContractConfig", "ContractReport", "ContractViolation",
    "Contribution", "DriftAlert", "DriftMonitor", "DriftThresholds", "ExposureResult", "FastWeightModel",
    "GovernanceError", "GovernedLearner", "InMemorySnapshotStore", "KeyRing", "LearnOutcome", "LearnPolicy",
    "LearnRejected", "Lineage", "LineageError", "LocalFolderSnapshotStore", "NothingToUnlearn",
    "PayloadErased", "PayloadStore", "PolicyDecision", "PolicyError", "Probe", "RateLimitConfig",
    "RateLimitExceeded", "RateLimiter", "RedactionResult", "Redactor", "RemovalReport", "ReplayedNonceError",
    "RequestVerifier", "SignatureError", "SignedRequest", "SnapshotCorrupted", "SnapshotNotFound", "SnapshotStore",
    "SourceRule", "StaleRequestError", "ToyFastWeightModel", "UnknownPrincipalError", "changes_between",
    "check_contract", "default_gold_texts", "default_policy", "enforce_contract", "exposure", "load_policy",
    "parse_policy", "sanitize", "screen", "sign_request", "state_id", "top_contributors",
]
