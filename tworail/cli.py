"""The `tworail` command line.

    tworail demo                  run the main job on the bundled real data
    tworail ingest PATH...        add HTML, text and Markdown files or folders to the index
    tworail ask QUESTION          answer one question (--json for the JSON record)
    tworail ask --jsonl [FILE]    answer one JSON object per line ({"question": ...})
    tworail learn PATH...         learn text files through the governed learn path
    tworail keys PRINCIPAL --out F  create a signing key; learning then requires signed requests
    tworail train CONFIG          pretrain and meta-train a TTT-E2E model, or bridge a Hugging Face
                                  checkpoint (bridge_from); resumes a stopped run
    tworail audit [--verify]      summarize or verify the audit log
    tworail policy, unlearn, revert, changes, contributors, expire, freeze, resume,
    learning-status               the governance control plane (see `tworail COMMAND -h`)

Every command takes --data-dir (default: $TWORAIL_DATA_DIR, else ~/.tworail).
Exit status: 0 on success, 1 when some input failed, 2 on invalid usage.
"""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import os
import sys
import textwrap
from pathlib import Path
from typing import TextIO

from pydantic import ValidationError

from tworail.records import MergedAnswer, Task

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# Idle OpenMP threads sleep instead of spinning. With spinning, the small tensor
# operations of the learnable rail ran up to 20x slower whenever another process
# shared the two cores of the machine this was measured on (torch 2.13, CPU build).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

EXIT_OK, EXIT_INPUT_ERROR, EXIT_USAGE = 0, 1, 2


class CommandError(Exception):
    """A failure to report to the user as one line, with a non-zero exit status."""


def _parser() -> argparse.ArgumentParser:
    from tworail.agent import DATA_DIR_ENV

    verbose = argparse.ArgumentParser(add_help=False)
    verbose.add_argument("-v", "--verbose", action="store_true", help="log progress of every component to stderr")
    common = argparse.ArgumentParser(add_help=False, parents=[verbose])
    common.add_argument("--data-dir", type=Path, default=None,
                        help=f"folder for the index, fast weights and logs (default: ${DATA_DIR_ENV}, else ~/.tworail)")

    parser = argparse.ArgumentParser(prog="tworail", description="Agents that learn at run time under governance.")
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", parents=[common], help="run the main job on the bundled real data")
    demo.add_argument("--threads", type=int, default=None, help="learn only the first N bundled threads")

    ingest = commands.add_parser("ingest", parents=[common], help="add files or folders to the index")
    ingest.add_argument("paths", nargs="+", type=Path, help="HTML, text or Markdown files, or folders to walk")
    ingest.add_argument("--tenant", default="default", help="tenant the documents belong to")
    ingest.add_argument("--owner", default="unknown", help="person or team accountable for the documents")

    ask = commands.add_parser("ask", parents=[common], help="answer questions")
    ask.add_argument("question", nargs="?", help="the question (omit with --jsonl)")
    ask.add_argument("--jsonl", nargs="?", const="-", default=None, metavar="FILE",
                     help="read one JSON object per line with a 'question' field from FILE (default: stdin)")
    ask.add_argument("--candidate", action="append", default=[], help="candidate answer to rank (repeatable)")
    ask.add_argument("--json", action="store_true", help="print the answer as JSON")

    learn = commands.add_parser("learn", parents=[common], help="learn text files through the governed learn path")
    learn.add_argument("paths", nargs="+", type=Path, help="text, HTML or Markdown files, or folders to walk")
    learn.add_argument("--tenant", default="default", help="tenant the documents belong to")
    learn.add_argument("--owner", default=getpass.getuser(),
                       help="person or team accountable for the documents (default: the current user)")
    learn.add_argument("--retention-days", type=int, default=None,
                       help="days the learned content may be kept (default: the policy's retention for the source)")
    learn.add_argument("--principal", default=None, help="sign each request as this principal (see `tworail keys`)")
    learn.add_argument("--key-file", type=Path, default=None, help="file with the principal's hex HMAC secret")
    learn.add_argument("--policy", type=Path, default=None,
                       help="learn policy TOML to put in force and keep in the data dir for later commands "
                            "(default: the data dir's, else the built-in one)")

    keys = commands.add_parser("keys", parents=[common],
                               help="create a principal's HMAC key; from then on learning requests must be signed")
    keys.add_argument("principal", help="name of the principal, for example support-bot")
    keys.add_argument("--out", type=Path, required=True, help="file to write the principal's hex secret to (mode 0600)")

    # A training run keeps everything in the config's run_dir, so train takes no --data-dir.
    train = commands.add_parser("train", parents=[verbose],
                                help="pretrain and meta-train a TTT-E2E model from a JSON config, or run the bridge "
                                "stage on a local Hugging Face checkpoint (bridge_from); resumes a stopped run")
    train.add_argument("config", type=Path, help="training config JSON (see tworail.rails.ttt.train.TrainConfig)")

    audit = commands.add_parser("audit", parents=[common], help="summarize or verify the audit log")
    audit.add_argument("--verify", action="store_true", help="check the hash chain and name the first broken row")
    audit.add_argument("--list", action="store_true", help="print every event as one JSON line")

    from tworail.governance.cli import add_commands

    add_commands(commands, common)
    return parser


def _agent(args: argparse.Namespace):
    from tworail.agent import TwoRail

    return TwoRail(args.data_dir)


# Output


def _print_answer(answer: MergedAnswer, out: TextIO = sys.stdout) -> None:
    out.write(f"\nQ: {answer.question}\n")
    out.write(f"   route: {answer.route.explain()}\n")
    if not answer.claims:
        out.write("   answer: (no answer found)\n")
    for claim in answer.claims:
        label = "cited" if claim.provenance == "cited" else "learned, uncited"
        confidence = f", confidence {claim.confidence:.2f}" if claim.confidence is not None else ""
        text = textwrap.shorten(claim.text, 300, placeholder=" ...")
        out.write(f"   [{claim.rail}: {label}{confidence}] {text}\n")
        for citation in claim.citations:
            quote = textwrap.shorten(citation.quote, 160, placeholder=" ...")
            out.write(f"      cite {citation.source}{citation.anchor} [{citation.start}:{citation.end}] \"{quote}\"\n")
    for conflict in answer.conflicts:
        out.write(f"   conflict: {textwrap.shorten(conflict.claim, 120)} ({conflict.reason})\n")


# Commands


def _cmd_demo(args: argparse.Namespace) -> int:
    from tworail.agent import default_data_dir
    from tworail.demo import run_demo

    data_dir = (args.data_dir or default_data_dir()) / "demo"
    print(f"tworail demo: data in {data_dir} (recreated on every run)")
    print("Ingesting the bundled SQLite docs and support threads, then learning the threads...")
    result = run_demo(data_dir, progress=True, threads_limit=args.threads, on_answer=_print_answer)
    print("\nLearnable rail, held-out support threads (loss per token, nats):")
    print(f"   W0, no test-time training:                  {result.heldout_loss_before:.4f}")
    print(f"   W0, per-request test-time training:         {result.heldout_loss_per_request:.4f}")
    print(f"   after learning {result.threads_learned} bundled threads, no TTT:  {result.heldout_loss_after:.4f}")
    print("\nAudit log:")
    for key, value in result.audit.items():
        print(f"   {key}: {value}")
    timings = ", ".join(f"{name} {value:.1f}s" for name, value in result.seconds.items())
    print(f"\nTimings: {timings}")
    return EXIT_OK


def _cmd_ingest(args: argparse.Namespace) -> int:
    with _agent(args) as agent:
        chunks = agent.ingest(args.paths, tenant=args.tenant, owner=args.owner, progress=True)
    print(f"ingested {chunks} chunks into {agent.data_dir / 'index'}")
    return EXIT_OK


def _parse_jsonl_line(number: int, line: str) -> Task:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise CommandError(f"line {number}: invalid JSON ({error.msg} at column {error.colno})") from None
    if not isinstance(record, dict) or not isinstance(record.get("question"), str):
        raise CommandError(f"line {number}: expected a JSON object with a string 'question' field")
    try:
        return Task(question=record["question"], candidates=record.get("candidates") or [],
                    tenant=record.get("tenant") or "default")
    except ValidationError as error:
        raise CommandError(f"line {number}: invalid task: {error.errors()[0]['msg']}") from None


def _ask_jsonl(args: argparse.Namespace, agent) -> int:
    if args.jsonl == "-":
        lines = sys.stdin
    else:
        try:
            lines = open(args.jsonl, encoding="utf-8")
        except OSError as error:
            raise CommandError(f"cannot read {args.jsonl}: {error.strerror}") from None
    failures = 0
    with lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                answer = agent.ask(_parse_jsonl_line(number, line))
            except (CommandError, ValueError) as error:
                failures += 1
                message = str(error) if isinstance(error, CommandError) else f"line {number}: {error}"
                print(f"tworail ask: {message}", file=sys.stderr)
                print(json.dumps({"line": number, "error": message}), flush=True)
                continue
            if args.json:
                print(json.dumps(answer.to_public_dict(), ensure_ascii=False), flush=True)
            else:
                _print_answer(answer)
    return EXIT_INPUT_ERROR if failures else EXIT_OK


def _cmd_ask(args: argparse.Namespace) -> int:
    if args.jsonl is not None and args.question:
        raise CommandError("give either a QUESTION or --jsonl, not both")
    if args.jsonl is None and not (args.question or "").strip():
        raise CommandError("the question is empty; pass a question, or --jsonl to read questions from a file")
    with _agent(args) as agent:
        if args.jsonl is not None:
            return _ask_jsonl(args, agent)
        answer = agent.ask(Task(question=args.question, candidates=args.candidate))
        if args.json:
            print(json.dumps(answer.to_public_dict(), ensure_ascii=False, indent=2))
        else:
            _print_answer(answer)
    return EXIT_OK


def _signer(args: argparse.Namespace):
    """Return a function that signs learning requests, or None without --principal."""
    from tworail.governance.auth import sign_request

    if (args.principal is None) != (args.key_file is None):
        raise CommandError("pass --principal and --key-file together to sign learning requests")
    if args.principal is None:
        return None
    try:
        key = bytes.fromhex(args.key_file.read_text(encoding="utf-8").strip())
    except (OSError, ValueError) as error:
        raise CommandError(f"cannot read a hex secret from {args.key_file}: {error}") from None
    return lambda text, provenance: sign_request(text, provenance, principal=args.principal, key=key)


def _cmd_keys(args: argparse.Namespace) -> int:
    from tworail.agent import default_data_dir
    from tworail.governance.keystore import add_hmac_key, keys_path

    data_dir = args.data_dir or default_data_dir()
    secret = add_hmac_key(data_dir, args.principal)
    descriptor = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(secret.hex() + "\n")
    print(f"key of {args.principal} written to {args.out}; {keys_path(data_dir)} now requires signed learning "
          f"requests (tworail learn --principal {args.principal} --key-file {args.out})")
    return EXIT_OK


def _cmd_learn(args: argparse.Namespace) -> int:
    from tworail.retrieval.documents import load_documents

    documents = load_documents(args.paths, tenant=args.tenant, owner=args.owner)
    items = []
    for document in documents:
        provenance = document.provenance
        if args.retention_days is not None:
            provenance = provenance.model_copy(update={"retention_days": args.retention_days})
        items.append((document.text, provenance))
    sign = _signer(args)
    with _agent(args) as agent:
        if args.policy is not None:
            agent.install_policy(args.policy, actor=f"cli:{getpass.getuser()}")
        outcomes = agent.learn_many(items, progress=True, total=len(items), sign=sign)
    for (_, provenance), outcome in zip(items, outcomes):
        event = outcome.event
        if outcome.committed:
            print(f"learned {provenance.source_id}: {event.tokens} tokens, loss {event.loss_before:.3f} -> "
                  f"{event.loss_after:.3f}, update norm {event.update_norm:.4f} (audit event {event.event_id})")
            for alert in outcome.alerts:
                print(f"drift alert after {provenance.source_id}: {alert.message}")
        else:
            print(f"{outcome.status} {provenance.source_id}: {outcome.reason} (rule {outcome.rule}, "
                  f"audit event {event.event_id})")
    if not all(outcome.committed for outcome in outcomes):
        print("some documents were not learned; `tworail policy --show-default` prints the default policy "
              "to start your own, and --policy puts it in force", file=sys.stderr)
        return EXIT_INPUT_ERROR
    return EXIT_OK


def _cmd_train(args: argparse.Namespace) -> int:
    from tworail.rails.ttt.checkpoint import CheckpointError
    from tworail.rails.ttt.config import ConfigError
    from tworail.rails.ttt.corpus import CorpusError
    from tworail.rails.ttt.debian_packages import DebianCorpusError
    from tworail.rails.ttt.hf_bridge import BridgeError
    from tworail.rails.ttt.train import TrainingStopped, train_from_config

    if not args.config.is_file():
        raise CommandError(f"training config {args.config} not found; pass the path of a JSON TrainConfig file")
    try:
        model_dir = train_from_config(args.config)
    except TrainingStopped as stopped:
        print(f"tworail train: {stopped}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    except json.JSONDecodeError as error:
        raise CommandError(f"{args.config} is not valid JSON: {error}") from None
    except (ConfigError, CorpusError, DebianCorpusError, CheckpointError, BridgeError) as error:
        raise CommandError(f"{args.config}: {error}") from None
    loader = "HFLearnableRail" if (model_dir / "ttt_config.json").is_file() else "LearnableRail"
    print(f"model written to {model_dir}; load it with {loader}.from_pretrained({str(model_dir)!r})")
    return EXIT_OK


def _cmd_audit(args: argparse.Namespace) -> int:
    from tworail.audit import AuditLog
    from tworail.agent import default_data_dir

    path = (args.data_dir or default_data_dir()) / "audit.sqlite"
    if not path.exists():
        raise CommandError(f"no audit log at {path}; run a learning command first or pass --data-dir")
    log = AuditLog(path)
    if args.list:
        for event in log.events():
            print(event.model_dump_json())
    if args.verify:
        report = log.verify()
        if not report.ok:
            print(f"audit log broken at event {report.first_broken}: {report.reason}")
            return EXIT_INPUT_ERROR
        print(f"audit log verified: {report.rows} events, hash chain intact")
        return EXIT_OK
    if not args.list:
        for key, value in log.summary().items():
            print(f"{key}: {value}")
    return EXIT_OK


COMMANDS = {
    "demo": _cmd_demo,
    "ingest": _cmd_ingest,
    "ask": _cmd_ask,
    "learn": _cmd_learn,
    "keys": _cmd_keys,
    "train": _cmd_train,
    "audit": _cmd_audit,
}


def main(argv: list[str] | None = None) -> int:
    """Run the command line and return its exit status."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from tworail.admission import InvalidTaskError
    from tworail.governance.errors import GovernanceError
    from tworail.retrieval.errors import EmbeddingModelError, IngestError, StoreError

    try:
        if hasattr(args, "handler"):
            return args.handler(args)
        return COMMANDS[args.command](args)
    except (CommandError, IngestError, InvalidTaskError, GovernanceError, StoreError, EmbeddingModelError) as error:
        print(f"tworail {args.command}: {error}", file=sys.stderr)
        return EXIT_INPUT_ERROR


if __name__ == "__main__":
    sys.exit(main())
