"""Learn policy, data contract and field rules."""

from __future__ import annotations

import json

import pytest
from governance_helpers import START, provenance

from tworail.datasets import support_threads
from tworail.governance import ContractViolation, PolicyError, check_contract, default_policy, enforce_contract
from tworail.governance.fields import ListRules, filter_fields
from tworail.governance.policy import load_policy, parse_policy
from tworail.records import Provenance


def test_first_matching_rule_decides(policy):
    decision = policy.decide(provenance("crm/42"))
    assert decision.action == "learn-after-redaction"
    assert decision.rule == "rules[0] (crm)"


def test_unmatched_source_gets_default_action(policy):
    decision = policy.decide(provenance("web/page"))
    assert decision.action == "never"
    assert decision.rule == "default_action"


def test_never_rule_names_itself(policy):
    decision = policy.decide(provenance("secret/keys"))
    assert decision.action == "never"
    assert decision.rule == "rules[2] (blocked)"


def test_deny_lists_win_over_rules():
    policy = parse_policy("""
owner = "o"
[sources]
deny = ["crm/private/*"]
[content_types]
deny = ["application/pdf"]
[[rules]]
sources = ["crm/*"]
action = "learn"
""")
    assert policy.decide(provenance("crm/private/x")).rule == "sources.deny[0]"
    pdf = policy.decide(provenance("crm/a", content_type="application/pdf; charset=binary"))
    assert pdf.rule == "content_types.deny[0]"
    assert policy.decide(provenance("crm/a")).action == "learn"


def test_allowlists_reject_everything_else():
    policy = parse_policy("""
owner = "o"
default_action = "learn"
[sources]
allow = ["docs/*"]
[content_types]
allow = ["text/*"]
""")
    assert policy.decide(provenance("docs/a")).action == "learn"
    assert policy.decide(provenance("crm/a")).rule == "sources.allow"
    assert policy.decide(provenance("docs/a", content_type="image/png")).rule == "content_types.allow"


def test_tenant_scoped_rule():
    policy = parse_policy("""
owner = "o"
[[rules]]
sources = ["*"]
tenants = ["acme"]
action = "learn"
""")
    assert policy.decide(provenance("a", tenant="acme")).action == "learn"
    assert policy.decide(provenance("a", tenant="other")).action == "never"


def test_invalid_policy_names_the_key():
    with pytest.raises(PolicyError, match="rules.0.action"):
        parse_policy('owner = "o"\n[[rules]]\nsources = ["*"]\naction = "maybe"\n')


def test_policy_needs_a_named_owner():
    with pytest.raises(PolicyError, match="names nobody"):
        parse_policy('owner = "unknown"\n')


def test_unknown_key_is_rejected():
    with pytest.raises(PolicyError, match="Extra inputs"):
        parse_policy('owner = "o"\nlearn_everything = true\n')


def test_bad_toml_and_missing_file(tmp_path):
    with pytest.raises(PolicyError, match="not valid TOML"):
        parse_policy("owner = ")
    with pytest.raises(PolicyError, match="cannot read policy file"):
        load_policy(tmp_path / "missing.toml")


def test_policy_hash_changes_with_content(policy):
    changed = policy.model_copy(update={"version": "2"})
    assert policy.policy_hash() != changed.policy_hash()


def test_default_policy_learns_bundled_threads_after_redaction():
    policy = default_policy()
    thread = support_threads("learn")[0].provenance()
    assert policy.decide(thread).action == "learn-after-redaction"
    report = check_contract(thread, policy.contract, default_retention_days=policy.retention_default(thread))
    assert report.ok, report.problems
    assert report.retention_from == "policy"
    assert policy.decide(provenance("anything/else")).action == "never"


def test_contract_accepts_full_provenance():
    report = check_contract(provenance("crm/1"), now=START)
    assert report.ok
    assert report.retention_days == 30
    assert report.retention_from == "document"


@pytest.mark.parametrize(("field", "value"), [
    ("owner", "unknown"), ("owner", "  N/A "), ("uri", "no-scheme"), ("source_id", " "), ("tenant", ""),
    ("content_type", "plain text"), ("retention_days", None), ("retention_days", 0),
    ("ingested_at", START.replace(tzinfo=None)), ("ingested_at", START.replace(year=2030)),
])
def test_contract_names_missing_field(field, value):
    document = provenance("crm/1", **{field: value})
    report = check_contract(document, now=START)
    assert not report.ok
    assert report.missing == [field]
    with pytest.raises(ContractViolation) as raised:
        enforce_contract(document, now=START)
    assert raised.value.missing == [field]
    assert field in str(raised.value)


def test_default_provenance_breaks_contract():
    document = Provenance(source_id="a", uri="file:///a")
    report = check_contract(document)
    assert set(report.missing) == {"owner", "retention_days"}


def test_field_rules_drop_denied_json_keys():
    text = json.dumps({"subject": "printer", "email": "a@b.c", "user": {"password": "x", "name": "ann"}})
    result = filter_fields(text, "application/json", ListRules(deny=["email", "pass*"]))
    assert json.loads(result.text) == {"subject": "printer", "user": {"name": "ann"}}
    assert result.removed == ["email", "user.password"]


def test_field_allowlist_keeps_only_listed_scalars():
    text = json.dumps({"subject": "printer", "body": "it jams", "ssn": "1", "meta": [{"id": 1, "body": "x"}]})
    result = filter_fields(text, "application/vnd.ticket+json", ListRules(allow=["subject", "body"]))
    assert json.loads(result.text) == {"subject": "printer", "body": "it jams", "meta": [{"body": "x"}]}


def test_field_rules_leave_plain_text_alone():
    assert filter_fields("email: a@b.c", "text/plain", ListRules(deny=["email"])).text == "email: a@b.c"


def test_field_rules_reject_invalid_json():
    with pytest.raises(ContractViolation, match="not valid JSON"):
        filter_fields("{oops", "application/json", ListRules(deny=["x"]))
