"""Command-line commands of the governance control plane.

`add_commands(subparsers, common)` registers these on the `tworail` parser:

    tworail policy [--file F] [--source S ...]   validate a policy; show the decision for a document
    tworail unlearn --source S | --event-id N | --tenant T   exact unlearning by replay
    tworail revert --to TIME                     restore the fast weights as of TIME
    tworail changes --since T [--until T]        what changed between two times and why
    tworail contributors [--since T] [--by update_norm|probe]   sources that changed the weights most
    tworail expire [--now T]                     unlearn what outlived its retention
    tworail freeze --reason R / tworail resume --reason R      stop or restart learning
    tworail learning-status                      frozen or not, head snapshot, active commits

Every handler returns an exit status (0 ok, 1 failed input) and reads
`args.data_dir` (None means `tworail.agent.default_data_dir()`). Times are
ISO 8601; a time without a zone is read as UTC.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from tworail.governance.errors import GovernanceError
from tworail.governance.protocol import FastWeightModel

EXIT_OK, EXIT_INPUT_ERROR = 0, 1

RailFactory = Callable[[], FastWeightModel]
"""Builds the governed model for commands that replay or restore fast weights."""


def _bundled_rail() -> FastWeightModel:
    from tworail.rails.ttt.rail import LearnableRail

    return LearnableRail.from_pretrained()


def _time(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an ISO 8601 time such as 2024-05-01T12:00:00Z") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def _data_dir(args: argparse.Namespace) -> Path:
    from tworail.agent import default_data_dir

    return Path(args.data_dir) if args.data_dir is not None else default_data_dir()


def _fail(command: str, message: str) -> int:
    print(f"tworail {command}: {message}", file=sys.stderr)
    return EXIT_INPUT_ERROR


def _policy_for(args: argparse.Namespace):
    from tworail.governance.policy import default_policy, load_policy

    if getattr(args, "policy", None) is not None:
        return load_policy(args.policy)
    stored = _data_dir(args) / "governance" / "policy.toml"
    return load_policy(stored) if stored.exists() else default_policy()


def _learner(args: argparse.Namespace):
    from tworail.governance.learner import GovernedLearner

    return GovernedLearner(args.rail_factory(), _data_dir(args), _policy_for(args), actor=args.actor)


def _audit(args: argparse.Namespace):
    from tworail.audit import AuditLog

    path = _data_dir(args) / "audit.sqlite"
    if not path.exists():
        raise GovernanceError(f"no audit log at {path}; learn something first or pass --data-dir")
    return AuditLog(path)


def _print_json(data: object) -> None:
    print(json.dumps(data, indent=2, default=str, ensure_ascii=False))


# Handlers


def _cmd_policy(args: argparse.Namespace) -> int:
    from tworail.governance.contracts import check_contract
    from tworail.governance.policy import DEFAULT_POLICY_TOML
    from tworail.records import Provenance

    if args.show_default:
        print(DEFAULT_POLICY_TOML, end="")
        return EXIT_OK
    policy = _policy_for(args)
    print(f"policy of {policy.owner}, version {policy.version}, sha256 {policy.policy_hash()}")
    for index, rule in enumerate(policy.rules):
        print(f"  rules[{index}] {rule.name or '(unnamed)'}: {rule.sources} -> {rule.action}")
    print(f"  otherwise -> {policy.default_action}")
    if args.source is None:
        return EXIT_OK
    provenance = Provenance(source_id=args.source, uri=args.uri or f"urn:tworail:{args.source}", owner=args.owner,
                            tenant=args.tenant, content_type=args.content_type, retention_days=args.retention_days)
    decision = policy.decide(provenance)
    contract = check_contract(provenance, policy.contract, default_retention_days=policy.retention_default(provenance))
    print(f"decision for {args.source!r}: {decision.action} by {decision.rule} ({'; '.join(decision.reasons)})")
    if not contract.ok:
        print("data contract: rejected: " + "; ".join(contract.problems))
        return EXIT_INPUT_ERROR
    print(f"data contract: ok, retention {contract.retention_days} days (from the {contract.retention_from})")
    return EXIT_OK


def _cmd_unlearn(args: argparse.Namespace) -> int:
    if args.source is None and args.event_id is None and args.tenant is None:
        return _fail("unlearn", "say what to unlearn: pass --source, --event-id or --tenant")
    with _learner(args) as learner:
        report = learner.unlearn(source=args.source, event_id=args.event_id, tenant=args.tenant, actor=args.actor,
                                 reason=args.reason or "", progress=True)
    print(f"unlearned events {report.removed}; replayed {report.replayed} later events"
          f"{f', dropped {report.dropped} that failed the acceptance gate on replay' if report.dropped else ''}; "
          f"fast weights now {report.event.snapshot_id[:12]} (audit event {report.event.event_id})")
    return EXIT_OK


def _cmd_revert(args: argparse.Namespace) -> int:
    with _learner(args) as learner:
        report = learner.revert(args.to, actor=args.actor, reason=args.reason or "")
    print(f"reverted to {args.to.isoformat()}: events {report.removed} left the fast weights, now "
          f"{report.event.snapshot_id[:12]} (audit event {report.event.event_id})")
    return EXIT_OK


def _cmd_changes(args: argparse.Namespace) -> int:
    from tworail.governance.queries import changes_between

    until = args.until or datetime.now(timezone.utc)
    with _audit(args) as audit:
        report = changes_between(audit, args.since, until)
    if args.json:
        _print_json(report.model_dump(mode="json"))
        return EXIT_OK
    state = "changed" if report.changed else "unchanged"
    print(f"fast weights {state}: {report.state_before[:12]} -> {report.state_after[:12]}; events {report.counts}")
    for item in report.items:
        why = "; ".join(item.reasons)
        print(f"  {item.time.isoformat()} #{item.event_id} {item.kind} {item.source} by {item.actor} "
              f"[{item.rule}] {why}")
    return EXIT_OK


def _cmd_contributors(args: argparse.Namespace) -> int:
    from tworail.governance.queries import top_contributors

    with _audit(args) as audit:
        ranked = top_contributors(audit, args.since, args.until, by=args.by, metric=args.metric, limit=args.top)
    if args.json:
        _print_json([entry.model_dump() for entry in ranked])
        return EXIT_OK
    for entry in ranked:
        print(f"{entry.source} ({entry.tenant}): {entry.events} events, {entry.tokens} tokens, "
              f"update norm {entry.update_norm:.4f}, {args.metric} change {entry.probe_change:+.4f}")
    return EXIT_OK


def _cmd_expire(args: argparse.Namespace) -> int:
    with _learner(args) as learner:
        report = learner.sweep_expired(args.now, actor=args.actor)
    if report is None:
        print("nothing has outlived its retention period")
    else:
        print(f"expired events {report.removed}; replayed {report.replayed} (audit event {report.event.event_id})")
    return EXIT_OK


def _cmd_freeze(args: argparse.Namespace) -> int:
    from tworail.governance.drift import freeze

    with _audit(args) as audit:
        event = freeze(audit, actor=args.actor, reason=args.reason, rule="freeze.manual")
    print(f"learning frozen (audit event {event.event_id})")
    return EXIT_OK


def _cmd_resume(args: argparse.Namespace) -> int:
    from tworail.governance.drift import freeze_event, resume

    with _audit(args) as audit:
        if freeze_event(audit) is None:
            return _fail("resume", "learning is not frozen; there is nothing to resume")
        event = resume(audit, actor=args.actor, reason=args.reason)
    print(f"learning resumed by {args.actor} (audit event {event.event_id})")
    return EXIT_OK


def _cmd_status(args: argparse.Namespace) -> int:
    from tworail.governance.drift import freeze_event
    from tworail.governance.lineage import Lineage

    with _audit(args) as audit:
        lineage = Lineage.from_audit(audit)
        frozen = freeze_event(audit)
        chain = audit.verify()
    status = {
        "frozen": frozen is not None,
        "frozen_by_event": frozen.event_id if frozen else None,
        "head_snapshot": lineage.head_id,
        "w0_snapshot": lineage.base_id,
        "active_commits": len(lineage.commits),
        "active_tokens": sum(commit.tokens for commit in lineage.commits),
        "sources": len({commit.source for commit in lineage.commits}),
        "chain_ok": chain.ok,
    }
    if args.json:
        _print_json(status)
    else:
        for key, value in status.items():
            print(f"{key}: {value}")
    return EXIT_OK if chain.ok else EXIT_INPUT_ERROR


def _guarded(command: str, handler: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except (GovernanceError, ValueError) as error:
            return _fail(command, str(error))
    run.__doc__ = handler.__doc__
    return run


def add_commands(subparsers: argparse._SubParsersAction, common_parent_parser: argparse.ArgumentParser, *,
                 rail_factory: RailFactory | None = None) -> None:
    """Register the governance commands on `subparsers`, each with `handler(args) -> int` as a default.

    `rail_factory` builds the governed model for unlearn, revert and expire
    (default: the bundled `LearnableRail` checkpoint).
    """
    factory = rail_factory or _bundled_rail
    parents = [common_parent_parser]
    actor = f"cli:{getpass.getuser()}"

    def add(name: str, handler, help_text: str) -> argparse.ArgumentParser:
        parser = subparsers.add_parser(name, parents=parents, help=help_text, description=help_text)
        parser.set_defaults(handler=_guarded(name, handler), rail_factory=factory)
        parser.add_argument("--actor", default=actor, help=f"who runs the command, for the audit trail (default {actor})")
        return parser

    policy = add("policy", _cmd_policy, "validate the learn policy and show the decision for a document")
    policy.add_argument("--policy", type=Path, default=None, help="policy TOML file (default: the data dir's, else built in)")
    policy.add_argument("--show-default", action="store_true", help="print the built-in default policy as TOML")
    policy.add_argument("--source", default=None, help="source id of a document to decide on")
    policy.add_argument("--uri", default=None, help="URI of that document")
    policy.add_argument("--owner", default="unknown", help="owner of that document")
    policy.add_argument("--tenant", default="default", help="tenant of that document")
    policy.add_argument("--content-type", default="text/plain", help="MIME type of that document")
    policy.add_argument("--retention-days", type=int, default=None, help="retention of that document, in days")

    for name, handler, help_text in (
        ("unlearn", _cmd_unlearn, "remove a source, event or tenant from the fast weights by exact replay"),
        ("revert", _cmd_revert, "restore the fast weights as of a time"),
        ("expire", _cmd_expire, "unlearn every commit whose retention period has ended"),
    ):
        parser = add(name, handler, help_text)
        parser.add_argument("--policy", type=Path, default=None, help="policy TOML file (default: the data dir's, else built in)")
        parser.add_argument("--reason", default=None, help="why, for the audit trail")
        if name == "unlearn":
            parser.add_argument("--source", default=None, help="source id to unlearn and erase")
            parser.add_argument("--event-id", type=int, default=None, help="audit event id of one learning event")
            parser.add_argument("--tenant", default=None, help="tenant to unlearn (with --source: only its copy)")
        elif name == "revert":
            parser.add_argument("--to", type=_time, required=True, help="ISO 8601 time to restore (UTC if no zone)")
        else:
            parser.add_argument("--now", type=_time, default=None, help="sweep as of this time (default: now)")

    changes = add("changes", _cmd_changes, "show what changed in the fast weights between two times and why")
    changes.add_argument("--since", type=_time, required=True, help="start of the window, ISO 8601")
    changes.add_argument("--until", type=_time, default=None, help="end of the window, ISO 8601 (default: now)")
    changes.add_argument("--json", action="store_true", help="print the report as JSON")

    contributors = add("contributors", _cmd_contributors, "rank sources by how much they changed the fast weights")
    contributors.add_argument("--since", type=_time, default=None, help="start of the window, ISO 8601")
    contributors.add_argument("--until", type=_time, default=None, help="end of the window, ISO 8601")
    contributors.add_argument("--by", choices=("update_norm", "probe"), default="update_norm",
                              help="rank by summed update norm or by the change of --metric")
    contributors.add_argument("--metric", default="probe_pass_rate", help="metric for --by probe (default probe_pass_rate)")
    contributors.add_argument("--top", type=int, default=10, help="number of sources to list")
    contributors.add_argument("--json", action="store_true", help="print the ranking as JSON")

    for name, handler, help_text in (("freeze", _cmd_freeze, "stop all learning until someone resumes it"),
                                     ("resume", _cmd_resume, "resume learning after a freeze")):
        parser = add(name, handler, help_text)
        parser.add_argument("--reason", required=True, help="why, for the audit trail")

    status = add("learning-status", _cmd_status, "show whether learning is frozen and what the fast weights hold")
    status.add_argument("--json", action="store_true", help="print the status as JSON")
