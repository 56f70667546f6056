from tworail.merge import exact_values, merge_answers
from tworail.records import Citation, Claim, RailAnswer, RouteDecision


def cited(quote: str) -> RailAnswer:
    citation = Citation(source="rescode.html", anchor="#busy", start=0, end=len(quote), quote=quote)
    claim = Claim(text=quote, provenance="cited", rail="reference", citations=[citation])
    return RailAnswer(rail="reference", answer=quote, claims=[claim])


def learned(text: str) -> RailAnswer:
    return RailAnswer(rail="learnable", answer=text, claims=[Claim(text=text, provenance="learned", rail="learnable")])


def decision(*rails) -> RouteDecision:
    return RouteDecision(rails=list(rails), precision=0.9, risk=0.0)


def test_exact_values_finds_codes_numbers_versions():
    assert exact_values("SQLITE_BUSY is 5 since 3.40.1 on 2022-12-28") == ["SQLITE_BUSY", "5", "3.40.1", "2022-12-28"]


def test_cited_claims_lead_for_reference_route():
    merged = merge_answers("q", decision("reference", "learnable"), [learned("it is busy"), cited("(5) SQLITE_BUSY")])
    assert [claim.provenance for claim in merged.claims] == ["cited", "learned"]


def test_learned_claims_lead_for_pattern_route():
    merged = merge_answers("q", decision("learnable", "reference"), [cited("see wal.html"), learned("users ask about sound")])
    assert [claim.provenance for claim in merged.claims] == ["learned", "cited"]


def test_unsupported_value_dropped_as_conflict():
    merged = merge_answers("q", decision("reference", "learnable"), [cited("(5) SQLITE_BUSY"), learned("SQLITE_BUSY is 6")])
    assert [claim.provenance for claim in merged.claims] == ["cited"]
    assert len(merged.conflicts) == 1
    assert "6" in merged.conflicts[0].reason


def test_supported_value_kept():
    merged = merge_answers("q", decision("reference", "learnable"), [cited("(5) SQLITE_BUSY"), learned("SQLITE_BUSY is 5")])
    assert len(merged.claims) == 2
    assert merged.conflicts == []


def test_conflict_kept_in_text_when_learnable_leads():
    merged = merge_answers("q", decision("learnable", "reference"), [cited("(5) SQLITE_BUSY"), learned("usually 7 retries")])
    assert merged.claims[0].text == "usually 7 retries"
    assert len(merged.conflicts) == 1


def test_public_dict_shape():
    merged = merge_answers("q", decision("reference"), [cited("(5) SQLITE_BUSY")])
    public = merged.to_public_dict()
    assert set(public) == {"question", "route", "answer", "claims", "conflicts"}
    assert set(public["route"]) == {"rails", "precision", "risk", "reasons"}
    assert set(public["claims"][0]["citations"][0]) == {"source", "anchor", "start", "end", "quote"}
